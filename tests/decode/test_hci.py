"""HCI decoder: spec-built packets (Core v5.4 Vol 4 Part E §5.4, §7) and the vectorised helpers."""

from __future__ import annotations

import numpy as np

from analyzer.decode import hci
from analyzer.decode.hci_names import command_name, company_name, error_name, event_name

ADDR = bytes([0x95, 0x67, 0xF7, 0x13, 0xC4, 0x0C])  # little-endian on the wire
ADDR_STR = "0C:C4:13:F7:67:95"


def test_error_names_follow_core_spec_table() -> None:
    assert error_name(0x04) == "Page Timeout"
    assert error_name(0x05) == "Authentication Failure"
    assert error_name(0x06) == "PIN or Key Missing"
    assert error_name(0x08) == "Connection Timeout"
    assert error_name(0x13) == "Remote User Terminated Connection"
    assert error_name(0x16) == "Connection Terminated By Local Host"
    assert error_name(0x22) == "LMP Response Timeout / LL Response Timeout"
    assert error_name(0x3D) == "Connection Terminated due to MIC Failure"
    assert error_name(0x3E) == "Connection Failed to be Established / Synchronization Timeout"
    assert error_name(0xEE) == "Reserved (0xEE)"


def test_names() -> None:
    assert command_name(0x0405) == "Create Connection"
    assert command_name(0x200B) == "LE Set Scan Parameters"
    assert command_name(0xFC4C).startswith("Vendor")
    assert event_name(0x05) == "Disconnection Complete"
    assert company_name(0x000F) == "Broadcom Corporation"  # Assigned Numbers company id 15


def test_disconnect_command() -> None:
    c = hci.decode_command(bytes([0x06, 0x04, 0x03, 0x0B, 0x00, 0x13]))
    assert (c.opcode, c.ogf, c.ocf, c.name) == (0x0406, 0x01, 0x06, "Disconnect")
    assert c.handle == 0x0B and c.reason == 0x13
    assert c.reason_name == "Remote User Terminated Connection"
    assert c.anomaly is None


def test_create_connection_reverses_address() -> None:
    p = ADDR + bytes([0x18, 0xCC, 0x01, 0x00, 0x00, 0x00, 0x01])
    c = hci.decode_command(bytes([0x05, 0x04, len(p)]) + p)
    assert c.bd_addr == ADDR_STR
    assert c.fields["packet_type"] == 0xCC18
    assert c.fields["allow_role_switch"] == 1


def test_vendor_command_and_short_command() -> None:
    c = hci.decode_command(bytes([0x4C, 0xFC, 0x01, 0xAA]))
    assert c.vendor and c.ogf == 0x3F and c.ocf == 0x04C
    short = hci.decode_command(b"\x05")
    assert short.anomaly is not None
    trunc = hci.decode_command(bytes([0x06, 0x04, 0x03, 0x0B]))
    assert trunc.anomaly is not None and trunc.reason is None


def test_le_scan_and_extended_scan_parameters() -> None:
    c = hci.decode_command(bytes([0x0B, 0x20, 7, 0x01, 0x12, 0x00, 0x12, 0x00, 0x01, 0x00]))
    assert c.fields["scan_interval"] == 0x12 and c.fields["scan_interval_ms"] == 0x12 * 0.625
    body = bytes([0x00, 0x00, 0x05, 0x01, 0x60, 0x00, 0x30, 0x00, 0x00, 0x20, 0x00, 0x10, 0x00])
    e = hci.decode_command(bytes([0x41, 0x20, len(body)]) + body)
    assert [p["phy"] for p in e.fields["phys"]] == ["LE 1M", "LE Coded"]
    assert e.fields["phys"][1]["scan_interval"] == 0x20


def test_io_capability_reply_and_sync_setup() -> None:
    c = hci.decode_command(bytes([0x2B, 0x04, 9]) + ADDR + bytes([1, 0, 3]))
    assert c.bd_addr == ADDR_STR and c.fields["io_capability_name"] == "DisplayYesNo"
    p = bytes([0x0C, 0x00]) + (8000).to_bytes(4, "little") * 2 + bytes([0x0D, 0, 0x60, 0, 2])
    p += bytes([0x3F, 0x03])
    s = hci.decode_command(bytes([0x28, 0x04, len(p)]) + p)
    assert s.handle == 0x0C and s.fields["max_latency"] == 0x0D
    assert s.fields["retransmission_effort"] == 2 and s.fields["packet_type"] == 0x033F


def test_disconnection_complete() -> None:
    e = hci.decode_event(bytes([0x05, 0x04, 0x00, 0x0B, 0x00, 0x08]))
    assert e.status == 0 and e.handle == 0x0B
    assert e.reason == 0x08 and e.reason_name == "Connection Timeout"


def test_connection_complete_failed() -> None:
    e = hci.decode_event(bytes([0x03, 11, 0x04, 0x00, 0x00]) + ADDR + bytes([0x01, 0x00]))
    assert e.status_name == "Page Timeout" and e.bd_addr == ADDR_STR
    assert e.fields["link_type_name"] == "ACL"


def test_command_complete_and_status() -> None:
    e = hci.decode_event(bytes([0x0E, 0x04, 0x01, 0x03, 0x0C, 0x00]))
    assert e.fields["opcode"] == 0x0C03 and e.fields["opcode_name"] == "Reset" and e.status == 0
    bare = hci.decode_event(bytes([0x0E, 0x03, 0x01, 0x00, 0x00]))
    assert bare.status is None and bare.anomaly is None
    s = hci.decode_event(bytes([0x0F, 0x04, 0x0C, 0x01, 0x05, 0x04]))
    assert s.status == 0x0C and s.status_name == "Command Disallowed"
    assert s.fields["opcode_name"] == "Create Connection"


def test_encryption_change_v1_v2_and_version() -> None:
    assert hci.decode_event(bytes([0x08, 4, 0, 0x0B, 0, 1])).fields["encryption_enabled"] == 1
    v2 = hci.decode_event(bytes([0x59, 5, 0, 0x0B, 0, 1, 16]))
    assert v2.fields["key_size"] == 16
    rv = hci.decode_event(bytes([0x0C, 8, 0, 0x0B, 0, 0x0A, 0x0F, 0x00, 0x34, 0x12]))
    assert rv.fields["version"] == 0x0A and rv.fields["subversion"] == 0x1234
    assert rv.fields["manufacturer_name"] == "Broadcom Corporation"


def test_pairing_events() -> None:
    lk = hci.decode_event(bytes([0x18, 23]) + ADDR + bytes(16) + bytes([0x07]))
    assert lk.fields["key_type_name"] == "Unauthenticated Combination Key generated from P-256"
    uc = hci.decode_event(bytes([0x33, 10]) + ADDR + (123456).to_bytes(4, "little"))
    assert uc.fields["numeric_value"] == 123456 and uc.bd_addr == ADDR_STR
    sp = hci.decode_event(bytes([0x36, 7, 0x05]) + ADDR)
    assert sp.status_name == "Authentication Failure"


def test_synchronous_connection_complete() -> None:
    p = bytes([0x00, 0x0C, 0x00]) + ADDR + bytes([0x02, 0x0C, 0x06, 0x3C, 0, 0x3C, 0, 0x03])
    e = hci.decode_event(bytes([0x2C, len(p)]) + p)
    assert e.fields["link_type_name"] == "eSCO" and e.fields["air_mode_name"] == "Transparent Data"
    assert e.fields["tx_packet_length"] == 60 and e.fields["transmission_interval"] == 12


def test_extended_inquiry_result_name() -> None:
    eir = bytes([5, 0x09]) + b"WH-1" + bytes(3)
    p = bytes([1]) + ADDR + bytes([1, 0]) + bytes([0x04, 0x04, 0x24]) + bytes([0, 0]) + b"\xc4"
    e = hci.decode_event(bytes([0x2F, len(p + eir)]) + p + eir)
    r = e.fields["responses"][0]
    assert r.bd_addr == ADDR_STR and r.class_of_device == 0x240404 and r.rssi == -60
    assert r.name == "WH-1"


def test_le_advertising_report_two_reports() -> None:
    r1 = bytes([0x00, 0x01]) + ADDR + bytes([3, 2, 1, 6]) + b"\xb0"
    r2 = bytes([0x04, 0x00]) + bytes(6) + bytes([0]) + b"\x7f"
    p = bytes([0x02, 2]) + r1 + r2
    e = hci.decode_event(bytes([0x3E, len(p)]) + p)
    assert e.subevent == 0x02 and e.name == "LE Advertising Report"
    reps = e.fields["reports"]
    assert [r.event_type_name for r in reps] == ["ADV_IND", "SCAN_RSP"]
    assert reps[0].data == bytes([2, 1, 6]) and reps[0].rssi == -80 and reps[1].rssi == 127
    cut = hci.decode_event(bytes([0x3E, len(p) - 3]) + p[:-3])
    assert cut.anomaly is not None and len(cut.fields["reports"]) == 1


def test_le_extended_advertising_report_data_status() -> None:
    rep = (0x0020 | 0x01).to_bytes(2, "little") + bytes([0x01]) + ADDR
    rep += bytes([0x01, 0x02, 0x03, 0x7F, 0xB0, 0, 0, 0]) + bytes(6) + bytes([2, 0xAA, 0xBB])
    p = bytes([0x0D, 1]) + rep
    e = hci.decode_event(bytes([0x3E, len(p)]) + p)
    r = e.fields["reports"][0]
    assert r.data_status == 1 and r.sid == 3 and r.rssi == -80 and r.data == b"\xaa\xbb"
    assert r.primary_phy == 1 and r.secondary_phy == 2 and r.address == ADDR_STR


def test_le_enhanced_connection_complete_and_ltk_request() -> None:
    p = bytes([0x0A, 0x00, 0x40, 0x00, 0x01, 0x00]) + ADDR + bytes(12)
    p += bytes([0x18, 0x00, 0x00, 0x00, 0xC8, 0x00, 0x01])
    e = hci.decode_event(bytes([0x3E, len(p)]) + p)
    assert e.handle == 0x40 and e.bd_addr == ADDR_STR and e.fields["role_name"] == "Peripheral"
    assert (
        e.fields["conn_interval_ms"] == 0x18 * 1.25 and e.fields["supervision_timeout_ms"] == 2000
    )
    ltk = hci.decode_event(bytes([0x3E, 13, 0x05, 0x40, 0x00]) + bytes(8) + b"\x34\x12")
    assert ltk.handle == 0x40 and ltk.fields["ediv"] == 0x1234


def test_vendor_and_unknown_events_and_short() -> None:
    assert hci.decode_event(bytes([0xFF, 2, 0x55, 0x01])).vendor
    u = hci.decode_event(bytes([0x77, 1, 0]))
    assert u.anomaly is None and u.name.startswith("Unknown")
    assert hci.decode_event(b"\x05").anomaly is not None
    assert hci.decode_event(bytes([0x05, 4, 0])).anomaly is not None


def test_acl_header() -> None:
    a = hci.decode_acl(bytes([0x0B, 0x20, 0x08, 0x00, 0x04, 0x00, 0x01, 0x00, 1, 2, 3, 4]))
    assert (a.handle, a.pb, a.bc, a.length) == (0x0B, 2, 0, 8) and a.starts_pdu
    assert hci.decode_acl(b"\x0b").anomaly is not None


def test_vectorised_columns() -> None:
    frames = [
        bytes([0x0B, 0x20, 0x08, 0x00, 0x04, 0x00, 0x41, 0x00, 1, 2, 3, 4]),  # start, CID 0x41
        bytes([0x0B, 0x10, 0x02, 0x00, 9, 9]),  # continuation
        bytes([0x0C, 0x00, 0x03, 0x00, 0x01, 0x00, 0x01]),  # start but < 8 bytes
        bytes([0x0D]),  # short
    ]
    buf = b"".join(frames)
    off = np.cumsum([0] + [len(f) for f in frames[:-1]])
    ln = np.array([len(f) for f in frames])
    cols = hci.acl_columns(np.frombuffer(buf, dtype=np.uint8), off, ln)
    assert cols["handle"].tolist() == [0x0B, 0x0B, 0x0C, -1]
    assert cols["pb"].tolist() == [2, 1, 0, -1]
    assert cols["data_len"].tolist() == [8, 2, 3, -1]
    assert cols["l2cap_len"].tolist() == [4, -1, -1, -1]
    assert cols["cid"].tolist() == [0x41, -1, -1, -1]
    ev = [bytes([0x3E, 3, 0x02, 0, 0]), bytes([0x05, 4, 0, 0, 0, 0]), b"\x3e"]
    eb = b"".join(ev)
    eoff = np.array([0, 5, 11])
    ec = hci.event_columns(np.frombuffer(eb, dtype=np.uint8), eoff, np.array([5, 6, 1]))
    assert ec["code"].tolist() == [0x3E, 0x05, 0x3E] and ec["subevent"].tolist() == [2, -1, -1]
    cc = hci.command_columns(np.frombuffer(b"\x03\x0c\x00\x05", dtype=np.uint8),
                             np.array([0, 3]), np.array([3, 1]))  # fmt: skip
    assert cc["opcode"].tolist() == [0x0C03, -1]
