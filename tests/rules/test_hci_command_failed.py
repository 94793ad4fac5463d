"""Rule tests: hci_command_failed.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_fields
from tests.rules.helpers import _mine, _real, _scen


@pytest.mark.tshark
def test_accept_connection_sent_twice_is_not_a_failure() -> None:
    name = "ap4y_iSAP_hci_dump.pklg"
    a = _real(name)
    rows = tshark_fields(SHARED_CAPTURES / name, ["frame.number"], "-Y", "bthci_evt.status == 0x0c")
    assert len(rows) == 2  # catalog: evt0x0f st0x0c ×2
    assert not [f for f in _mine(a, "hci_command_failed") if f.details["opcode"] == 0x0409]
    sup = [s for s in a.suppressed if "Accept Connection Request" in s.what]
    assert {int(r[0]) for r in rows} <= {fr for s in sup for fr in s.frames}


def test_startup_probes_are_silent_but_later_probes_info() -> None:
    a = _scen("pairing_ssp_just_works.btsnoop")  # Write SC Host Support → 0x01 at start-up
    assert any(tx.status == 0x01 for tx in a.hci_commands)
    assert not _mine(a, "hci_command_failed")
    o = _real("Swastik36_OPPO-Earbuds_btsnoop_205240.log")
    fs = _mine(o, "hci_command_failed")
    assert fs and all(f.severity == "info" for f in fs)  # Sniff Subrating 0x1A, LSTO 0x0C
    assert not [f for f in fs if f.details["opcode"] >> 10 == 0x3F]  # vendor: not judged


def test_create_connection_failure_is_not_hci_command_failed() -> None:
    assert not _mine(_scen("page_timeout.btsnoop"), "hci_command_failed")
