"""ATT decoder (Core v5.4 Vol 3 Part F §3.4) and GATT declarations (Part G §3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analyzer.decode.att import characteristic_decl, decode_att, method_kind


def test_error_response() -> None:
    # Error Response to Read By Group Type (0x10) at handle 0x0015: Attribute Not Found (0x0A)
    rec = decode_att(bytes([0x01, 0x10, 0x15, 0x00, 0x0A]))
    assert rec.kind == "response"
    assert (rec.request_opcode, rec.handle, rec.error) == (0x10, 0x15, 0x0A)
    assert rec.error_name == "Attribute Not Found"
    assert decode_att(bytes([0x01, 0x12, 0x03, 0x00, 0x05])).error_name == (
        "Insufficient Authentication"
    )
    assert decode_att(bytes([0x01, 0x12, 0x03, 0x00, 0x80])).error_name.startswith("Application")


def test_read_by_group_type_response() -> None:
    # element length 6: (0x0001, 0x0007, 0x1800), (0x0008, 0x000B, 0x1801)
    body = bytes([0x11, 6, 1, 0, 7, 0, 0x00, 0x18, 8, 0, 11, 0, 0x01, 0x18])
    rec = decode_att(body)
    assert rec.anomaly is None
    assert [(i["handle"], i["end_handle"], i["value"]) for i in rec.items] == [
        (1, 7, b"\x00\x18"),
        (8, 11, b"\x01\x18"),
    ]


def test_request_fields_and_kinds() -> None:
    rec = decode_att(bytes([0x10, 1, 0, 0xFF, 0xFF, 0x00, 0x28]))
    assert rec.kind == "request" and rec.attr_type is not None
    assert rec.attr_type.startswith("0x2800")
    assert (rec.start_handle, rec.end_handle) == (1, 0xFFFF)
    assert decode_att(b"\x02\x05\x02").mtu == 517
    assert method_kind(0x52) == "command" and method_kind(0x1B) == "notification"
    assert method_kind(0x1D) == "indication" and method_kind(0x1E) == "confirmation"
    ntf = decode_att(bytes([0x1B, 0x12, 0x00, 0x01]))
    assert ntf.handle == 0x12 and ntf.value == b"\x01"


def test_characteristic_declaration() -> None:
    # properties read|notify (0x12), value handle 0x0003, UUID 0x2A19 Battery Level
    decl = characteristic_decl(bytes([0x12, 0x03, 0x00, 0x19, 0x2A]))
    assert decl is not None
    assert decl["properties"] == ["read", "notify"]
    assert decl["value_handle"] == 3 and decl["uuid"].startswith("0x2A19")


def test_short_and_unknown() -> None:
    assert decode_att(b"\x01\x10").anomaly
    assert decode_att(b"\x7f").anomaly
    assert decode_att(b"").anomaly


@given(st.binary(max_size=64))
def test_never_raises(data: bytes) -> None:
    rec = decode_att(data)
    assert isinstance(rec.name, str)
