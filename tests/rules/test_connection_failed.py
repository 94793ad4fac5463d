"""Rule tests: connection_failed.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_fields
from tests.rules.helpers import ENTRIES, _fresh, _mine, _real, _rerun, _scen


def test_page_timeout_grouped_with_key_frames() -> None:
    kf = ENTRIES["page_timeout.btsnoop"]["ground_truth"]["key_frames"]
    [f] = _mine(_scen("page_timeout.btsnoop"), "connection_failed")
    assert f.count == len(kf["connection_complete_page_timeout_all"]) == 2
    assert set(kf["connection_complete_page_timeout_all"]) <= set(f.frames)
    # pages right after Bluetooth started, before any connection: the host reconnecting a
    # known device at start-up, a warning that says so (not an error the user caused)
    assert f.details["status"] == 0x04 and f.severity == "warning"
    assert "Page Timeout" in f.message and "00:1B:66:4C:A2:31" in f.message
    assert "right after Bluetooth started" in f.message


def test_page_timeout_later_in_the_session_is_an_error() -> None:
    a = _fresh("page_timeout.btsnoop")
    for r in a.controller.resets:
        r.time_us -= 60_000_000  # the stack started a minute earlier: a page the user asked for
    (f,) = [x for x in _rerun(a) if x.id == "connection_failed"]
    assert f.severity == "error"


@pytest.mark.tshark
def test_connection_failed_matches_tshark_real() -> None:
    name = "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered"
    a = _real(name)
    rows = tshark_fields(
        SHARED_CAPTURES / name,
        ["frame.number"],
        "-Y",
        "bthci_evt.code == 0x03 && bthci_evt.status == 0x04",
    )
    want = {int(r[0]) for r in rows}
    [f] = _mine(a, "connection_failed")
    assert f.count == len(want) == 3 and want <= set(f.frames)


@pytest.mark.tshark
def test_le_failed_to_be_established_real() -> None:
    name = "durnerj_PoGo-Plus-BLE_btsnoop_hci.log"
    a = _real(name)
    rows = tshark_fields(SHARED_CAPTURES / name, ["frame.number"], "-Y", "bthci_evt.reason == 0x3e")
    [f] = _mine(a, "connection_failed")
    assert f.details["status"] == 0x3E and f.details["transport"] == "le"
    assert {int(r[0]) for r in rows} <= set(f.frames)


def test_cancelled_attempt_is_not_a_failure() -> None:
    a = _fresh("page_timeout.btsnoop")
    for c in a.connections:
        c.status, c.status_name = 0x02, "Unknown Connection Identifier"
    assert not [f for f in _rerun(a) if f.id == "connection_failed"]


def test_page_timeout_then_retry_connects() -> None:
    """Leafspy: a page times out (271), the retry connects (274): a warning that says so, and
    the slow-but-successful page is not a second finding."""
    a = _real("AshMartian_HappyLeaf_Leafspy_Read_DCT_btsnoop_hci.log")
    (f,) = _mine(a, "connection_failed")
    assert f.severity == "warning" and f.recovered_at_frame == 274
    assert "recovered at frame 274" in f.message
    assert not _mine(a, "late_response")
    (inc,) = [i for i in a.incidents if i.root_cause == f.ref]
    assert inc.recovered_at_frame == 274 and f.incident == inc.id
