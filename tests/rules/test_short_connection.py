"""Rule tests: short_connection and periodic_disconnect.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import pytest

from analyzer.rules.base import RuleConfig
from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_fields
from tests.rules.helpers import ENTRIES, _fresh, _mine, _real, _rerun, _scen


def test_periodic_disconnect_key_frames() -> None:
    a = _scen("periodic_disconnect.btsnoop")
    kf = ENTRIES["periodic_disconnect.btsnoop"]["ground_truth"]["key_frames"]
    [p] = _mine(a, "periodic_disconnect")
    assert p.frames == kf["disconnection_complete"]
    assert p.count == 3 and 28 <= p.details["mean_s"] <= 32  # "about 30 s after each setup"
    [s] = _mine(a, "short_connection")
    assert s.count == 3 and set(kf["disconnection_complete"]) <= set(s.frames)
    assert s.details["reason"] == 0x13


def test_short_connection_threshold() -> None:
    a = _fresh("periodic_disconnect.btsnoop")
    cfg = RuleConfig()
    cfg.set("short_connection", "max_duration_s", 20)
    assert not [f for f in _rerun(a, cfg) if f.id == "short_connection"]


@pytest.mark.tshark
def test_short_connection_real_not_after_our_disconnect() -> None:
    """bluffs: the buds end 4 links with 0x13 (tshark); three come after the phone itself
    closed every profile channel, the fourth while AVDTP was still up."""
    name = "francozappa_bluffs_sc-pixelbuds-aseries.pcapng"
    a = _real(name)
    rows = tshark_fields(
        SHARED_CAPTURES / name, ["frame.number", "bthci_evt.reason"], "-Y", "bthci_evt.code == 0x05"
    )
    assert {int(r[1], 16) for r in rows} == {0x13}
    [f] = _mine(a, "short_connection")
    assert f.frames[-1] in {int(r[0]) for r in rows}
    assert "AVDTP" in f.details["profiles"]
