"""Rule tests: capture_incomplete.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import SHARED_CAPTURES
from tests.oracle import PPI_USER_DLT, tshark_fields
from tests.rules.helpers import ENTRIES, _mine, _real, _scen


@pytest.mark.tshark
def test_filtered_capture_incomplete_matches_tshark() -> None:
    name = "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered"
    a = _real(name)
    rows = tshark_fields(
        SHARED_CAPTURES / name, ["frame.number"], "-Y", "frame.cap_len < frame.len"
    )
    [f] = _mine(a, "capture_incomplete")
    assert f.details["truncated_frames"] == len(rows) == 86 and f.details["filtered"]
    assert not _mine(a, "a2dp_media_stall")  # filtered logs leave media out


@pytest.mark.tshark
def test_time_backwards_and_mid_connection() -> None:
    name = "mikeryan_crackle_numeric_pin.pcap"
    a = _real(name)
    [f] = _mine(a, "capture_incomplete")
    rows = tshark_fields(SHARED_CAPTURES / name, ["frame.time_epoch"], "-o", PPI_USER_DLT)
    ts = [float(r[0]) for r in rows]
    back = sum(1 for x, y in itertools.pairwise(ts) if y < x)
    assert back > 0 and abs(f.details["time_backwards"] - back) <= 0.05 * back
    # the TheoLestandi capture starts in the middle of an A2DP stream (CATALOG.md)
    [g] = _mine(_real("TheoLestandi_Projet_RP_capture.snoop"), "capture_incomplete")
    assert g.details["inferred_connections"] >= 1 and g.details["inferred_streams"] >= 1


def test_clean_scenarios_are_complete() -> None:
    for name, e in ENTRIES.items():
        if e["group"] == "clean":
            assert not _mine(_scen(name), "capture_incomplete"), name
