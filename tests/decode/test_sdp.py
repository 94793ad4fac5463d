"""SDP decoder: spec-built PDUs and data elements (Core v5.4 Vol 3 Part B §3, §4)."""

from __future__ import annotations

from analyzer.decode import sdp


def _pdu(pid: int, tid: int, params: bytes) -> bytes:
    return bytes([pid]) + tid.to_bytes(2, "big") + len(params).to_bytes(2, "big") + params


def test_data_element_types_and_sizes() -> None:
    assert sdp.decode_element(b"\x00") == (None, None)
    assert sdp.decode_element(b"\x08\x7f")[0] == 0x7F
    assert sdp.decode_element(b"\x0a\x00\x01\x00\x00")[0] == 0x10000
    assert sdp.decode_element(b"\x10\xff")[0] == -1
    assert sdp.decode_element(b"\x28\x01")[0] is True
    assert sdp.decode_element(b"\x25\x03abc")[0] == "abc"  # text, 8-bit length
    assert sdp.decode_element(b"\x26\x00\x02hi")[0] == "hi"  # text, 16-bit length
    assert sdp.decode_element(b"\x27\x00\x00\x00\x01x")[0] == "x"  # text, 32-bit length
    assert sdp.decode_element(b"\x45\x04http")[0] == "http"  # URL
    u = sdp.decode_element(b"\x19\x11\x0b")[0]
    assert isinstance(u, sdp.Uuid) and u.short == 0x110B and u.name == "Audio Sink"
    full = bytes.fromhex("0000110a00001000800000805f9b34fb")
    u128 = sdp.decode_element(b"\x1c" + full)[0]
    assert u128.short == 0x110A and u128.name == "Audio Source"
    nested = sdp.decode_element(b"\x35\x08\x35\x03\x19\x01\x00\x09\x00\x19")[0]
    assert nested[0][0].short == 0x0100 and nested[1] == 0x19
    alt = sdp.decode_element(b"\x3d\x02\x08\x01")[0]
    assert isinstance(alt, sdp.Alternative) and alt == [1]
    assert sdp.decode_element(b"\x35\x05\x19\x11")[1] is not None  # truncated
    assert sdp.decode_element(b"\x35" * 200)[1] is not None  # deep nesting: anomaly, no crash


def test_service_search_attribute_request() -> None:
    params = b"\x35\x03\x19\x11\x0b" + b"\x03\xf0" + b"\x35\x08\x09\x00\x01\x0a\x02\x00\x02\x05"
    params += b"\x00"
    p = sdp.decode_sdp(_pdu(0x06, 7, params))
    assert p.name == "ServiceSearchAttributeRequest" and p.tid == 7 and p.param_len == len(params)
    assert [u.short for u in p.uuids] == [0x110B]
    assert p.max_count == 0x03F0
    assert p.attr_ids == [0x0001, (0x0200, 0x0205)]
    assert p.continuation == b"" and p.anomaly is None and p.is_request


def test_search_request_response_and_error() -> None:
    req = sdp.decode_sdp(_pdu(0x02, 1, b"\x35\x03\x19\x12\x00\x00\x05\x00"))
    assert [u.short for u in req.uuids] == [0x1200] and req.max_count == 5
    rsp = sdp.decode_sdp(_pdu(0x03, 1, b"\x00\x02\x00\x02\x00\x01\x00\x00\x00\x01\x00\x01\x00"))
    assert rsp.total_count == 2 and rsp.handles == [0x10000, 0x10001]
    err = sdp.decode_sdp(_pdu(0x01, 1, b"\x00\x05"))
    assert err.error_code == 5 and err.error_name == "Invalid Continuation State"
    attr = sdp.decode_sdp(
        _pdu(0x04, 2, b"\x00\x01\x00\x00\x00\x40\x35\x05\x0a\x00\x00\xff\xff\x00")
    )
    assert attr.record_handle == 0x10000 and attr.attr_ids == [(0, 0xFFFF)]


def test_response_with_continuation_and_short() -> None:
    body = b"\x35\x10\x35\x0e"
    rsp = sdp.decode_sdp(_pdu(0x07, 3, len(body).to_bytes(2, "big") + body + b"\x02\xab\xcd"))
    assert rsp.attribute_bytes == body and rsp.continuation == b"\xab\xcd"
    assert sdp.decode_sdp(b"\x07\x00").anomaly is not None
    assert sdp.decode_sdp(_pdu(0x07, 3, b"\x00\x09\x35")).anomaly is not None
    assert sdp.decode_sdp(_pdu(0x42, 3, b"")).anomaly is not None


def _record(*pairs: bytes) -> bytes:
    body = b"".join(pairs)
    return b"\x35" + bytes([len(body)]) + body


PNP = _record(
    b"\x09\x00\x01\x35\x03\x19\x12\x00",
    b"\x09\x02\x00\x09\x01\x03",
    b"\x09\x02\x01\x09\x00\x0a",
    b"\x09\x02\x02\x09\x30\x03",
    b"\x09\x02\x03\x09\x01\x24",
    b"\x09\x02\x04\x28\x01",
    b"\x09\x02\x05\x09\x00\x01",
)
HFP = _record(
    b"\x09\x00\x01\x35\x06\x19\x11\x1e\x19\x12\x03",
    b"\x09\x00\x04\x35\x0c\x35\x03\x19\x01\x00\x35\x05\x19\x00\x03\x08\x03",
    b"\x09\x00\x09\x35\x08\x35\x06\x19\x11\x1e\x09\x01\x08",
    b"\x09\x02\x01\x09\x00\x0a",  # 0x0201 outside a PnP record: not a vendor id
)


def test_attribute_lists_pnp_and_rfcomm() -> None:
    outer = b"\x35" + bytes([len(PNP) + len(HFP)]) + PNP + HFP
    recs = sdp.parse_attribute_lists(outer)
    assert recs.anomaly is None and len(recs.records) == 2
    pnp = sdp.pnp_info(recs.records[0])
    assert pnp is not None and pnp.vendor_id == 0x000A and pnp.product_id == 0x3003
    assert pnp.version == 0x0124 and pnp.version_str == "1.2.4" and pnp.primary_record is True
    assert pnp.vendor_id_source_name == "Bluetooth SIG"
    assert sdp.pnp_info(recs.records[1]) is None
    assert sdp.rfcomm_channel(recs.records[1]) == 3 and sdp.rfcomm_channel(recs.records[0]) is None
    assert sdp.service_classes(recs.records[1]) == [0x111E, 0x1203]
    assert sdp.profile_versions(recs.records[1]) == {0x111E: 0x0108}
    single = sdp.parse_attribute_list(HFP)
    assert 0x0004 in single.records[0]
    assert sdp.parse_attribute_lists(b"\x08\x01").anomaly is not None
