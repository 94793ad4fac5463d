"""Rule tests: l2cap_connection_refused.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_fields
from tests.rules.helpers import _mine, _real


@pytest.mark.tshark
def test_l2cap_refusals_match_tshark() -> None:
    name = "francozappa_bluffs_sc-pixelbuds-aseries.pcapng"
    a = _real(name)
    rows = tshark_fields(
        SHARED_CAPTURES / name,
        ["frame.number", "btl2cap.result"],
        "-Y",
        "btl2cap.cmd_code == 0x03 && btl2cap.result >= 2",
    )
    want = {int(r[0]) for r in rows}
    fs = _mine(a, "l2cap_connection_refused")
    sup = [s for s in a.suppressed if s.rule == "l2cap_connection_refused"]
    # every refusal tshark sees is accounted for: reported, or recognised as benign with a reason
    got = {fr for f in fs for fr in f.frames} | {fr for s in sup for fr in s.frames}
    assert want <= got
    assert sum(f.count for f in fs) + len(sup) == len(want)
    assert all("AVCTP" in s.what for s in sup)
    assert not [f for f in fs if f.severity == "error"]  # collisions and teardowns, all of them
