"""SMP decoder (Core v5.4 Vol 3 Part H §3) and the pairing-method choice (§2.3.5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.decode.smp import decode_smp, pairing_method


def pairing(op: int, io: int, oob: int, auth: int, key: int = 16, i: int = 7, r: int = 7) -> bytes:
    return bytes([op, io, oob, auth, key, i, r])


def test_pairing_request_fields() -> None:
    # IO NoInputNoOutput, no OOB, AuthReq bonding|MITM|SC (0x0D), key 16, EncKey|IdKey|SignKey
    rec = decode_smp(pairing(0x01, 0x03, 0x00, 0x0D))
    assert rec.name == "Pairing Request" and rec.anomaly is None
    f = rec.fields
    assert f["io_capability_name"] == "NoInputNoOutput"
    assert f["bonding"] and f["mitm"] and f["sc"] and not f["keypress"]
    assert f["max_key_size"] == 16
    assert f["initiator_key_dist"] == ["EncKey", "IdKey", "SignKey"]


@pytest.mark.parametrize(
    ("reason", "name"),
    [(0x04, "Confirm Value Failed"), (0x05, "Pairing Not Supported"), (0x0B, "DHKey Check Failed")],
)
def test_pairing_failed_reason(reason: int, name: str) -> None:
    rec = decode_smp(bytes([0x05, reason]))
    assert rec.reason == reason and rec.reason_name == name


def test_lengths_checked() -> None:
    assert decode_smp(b"\x03" + bytes(10)).anomaly  # Pairing Confirm needs 16 bytes
    assert decode_smp(b"\x87").anomaly  # unknown opcode (SweynTooth fuzzing)
    assert decode_smp(b"").anomaly
    rec = decode_smp(bytes([0x07, 0x34, 0x12]) + bytes(range(8)))
    assert rec.name == "Central Identification" and rec.fields["ediv"] == 0x1234


# Table 2.8 (initiator rows, responder columns) for MITM set on one side, legacy and SC.
@pytest.mark.parametrize(
    ("i_io", "r_io", "sc", "method"),
    [
        (0x01, 0x01, False, "le_legacy_just_works"),  # DisplayYesNo both: JW on legacy
        (0x01, 0x01, True, "le_sc_numeric_comparison"),
        (0x04, 0x04, False, "le_legacy_passkey"),  # KeyboardDisplay both
        (0x04, 0x04, True, "le_sc_numeric_comparison"),
        (0x02, 0x00, True, "le_sc_passkey"),  # KeyboardOnly ↔ DisplayOnly
        (0x00, 0x02, False, "le_legacy_passkey"),
        (0x03, 0x04, True, "le_sc_just_works"),  # NoInputNoOutput initiator
        (0x04, 0x03, False, "le_legacy_just_works"),
    ],
)
def test_method_table(i_io: int, r_io: int, sc: bool, method: str) -> None:
    auth = 0x04 | (0x08 if sc else 0)
    req = decode_smp(pairing(0x01, i_io, 0, auth)).fields
    rsp = decode_smp(pairing(0x02, r_io, 0, auth)).fields
    assert pairing_method(req, rsp) == method


def test_method_no_mitm_and_oob() -> None:
    req = decode_smp(pairing(0x01, 0x04, 0, 0x01)).fields
    rsp = decode_smp(pairing(0x02, 0x04, 0, 0x01)).fields
    assert pairing_method(req, rsp) == "le_legacy_just_works"  # neither sets MITM
    # legacy OOB needs both OOB flags; Secure Connections one
    req_oob = decode_smp(pairing(0x01, 0x04, 1, 0x0D)).fields
    rsp_sc = decode_smp(pairing(0x02, 0x04, 0, 0x0D)).fields
    assert pairing_method(req_oob, rsp_sc) == "le_sc_oob"
    req_l = decode_smp(pairing(0x01, 0x04, 1, 0x05)).fields
    rsp_l = decode_smp(pairing(0x02, 0x04, 0, 0x05)).fields
    assert pairing_method(req_l, rsp_l) == "le_legacy_passkey"


@given(st.binary(max_size=80))
def test_never_raises(data: bytes) -> None:
    rec = decode_smp(data)
    assert isinstance(rec.name, str)
