"""Rule tests: pairing_failed and encryption_failed.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

from collections import Counter

import pytest

from analyzer.model import (
    EncryptionFailure,
)
from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_fields
from tests.rules.helpers import ENTRIES, _fresh, _mine, _real, _rerun, _scen


@pytest.mark.tshark
def test_smp_pairing_failed_reasons_match_tshark() -> None:
    name = "Matheus-Garbelini_sweyntooth_capture_cypress_psoc6_crash_llid.pcapng"
    a = _real(name)
    rows = tshark_fields(SHARED_CAPTURES / name, ["btsmp.reason"], "-Y", "btsmp.opcode == 0x05")
    want = Counter(int(r[0], 16) for r in rows if r and r[0])
    got = Counter({f.details["code"]: f.count for f in _mine(a, "pairing_failed")})
    assert got == want and sum(want.values()) == 14


def test_stale_bond_is_not_pairing_failed() -> None:
    for name in ("stale_bond_key_missing.btsnoop", "stale_bond_key_mismatch.btsnoop"):
        a = _scen(name)
        assert _mine(a, "auth_key_missing") and not _mine(a, "pairing_failed")
        assert not _mine(a, "encryption_failed")


def test_legacy_pin_refused_is_pairing_failed() -> None:
    a = _fresh("stale_bond_key_missing.btsnoop")
    p = a.pairing[0]
    p.link_key_request, p.method = "negative_reply", "legacy_pin"
    p.details.pin_negative_reply = True
    [f] = [f for f in _rerun(a) if f.id == "pairing_failed"]
    assert "PIN Code Request Negative Reply" in f.explanation and f.details["code"] == 0x06


def test_encryption_failed_injected() -> None:
    a = _fresh("pairing_ssp_just_works.btsnoop")
    kf = ENTRIES["pairing_ssp_just_works.btsnoop"]["ground_truth"]["key_frames"]
    frame = kf["encryption_change"]
    conn = a.connections[0]
    conn.encryption_failures.append(
        EncryptionFailure(
            frame,
            conn.start_time_us or 0,
            0x22,
            "LMP Response Timeout / LL Response Timeout",
            "Encryption Change",
        )
    )
    [f] = [f for f in _rerun(a) if f.id == "encryption_failed"]
    assert frame in f.frames and f.address == conn.address and f.connection == conn.id
    assert f.details.get("status", 0x22) == 0x22
