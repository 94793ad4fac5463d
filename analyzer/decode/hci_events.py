"""HCI event packets (Core v5.4 Vol 4 Part E §5.4.4, §7.7): ``EVENTS`` / ``LE_SUBEVENTS`` map a
code to ``(minimum parameter size, field decoder)``. Array parameters (Inquiry Result,
Advertising Report, Number Of Completed Packets) are read element by element (interleaved), as
BlueZ's monitor and Wireshark do. Nothing raises.

Over 500 lines by design: one table-driven decoder per event of the Core spec that the sessions
read, each a few lines; splitting it would only scatter the table."""

from __future__ import annotations

from collections.abc import Callable

from analyzer.decode.base import Buffer, as_bytes, bd_addr, never_raise, s8, u8, u16, u24, u32
from analyzer.decode.hci_commands import _io_capability, _utf8_name
from analyzer.decode.hci_names import (
    command_name,
    company_name,
    error_name,
    event_name,
    le_subevent_name,
)
from analyzer.decode.hci_types import (
    ADV_REPORT_TYPES,
    AIR_MODES,
    KEY_TYPES,
    LE_ADDRESS_TYPES,
    LINK_TYPES,
    ROLES,
    AdvReport,
    HciEvent,
    InquiryResponse,
    _name,
)

# ------------------------------------------------------------------------------------------------
# field decoders: events

EvtDecoder = Callable[[bytes, HciEvent], None]


def _set_status(r: HciEvent, v: int | None) -> None:
    r.status = v
    r.status_name = error_name(v)


def _e_status(p: bytes, r: HciEvent) -> None:
    _set_status(r, p[0])


def _e_status_handle(p: bytes, r: HciEvent) -> None:
    _set_status(r, p[0])
    r.handle = (u16(p, 1) or 0) & 0x0FFF


def _e_handle(p: bytes, r: HciEvent) -> None:
    r.handle = (u16(p, 0) or 0) & 0x0FFF


def _e_bdaddr(p: bytes, r: HciEvent) -> None:
    r.bd_addr = bd_addr(p, 0)


def _e_status_bdaddr(p: bytes, r: HciEvent) -> None:
    _set_status(r, p[0])
    r.bd_addr = bd_addr(p, 1)


def eir_name(eir: bytes) -> str | None:
    """Local name from EIR / advertising data (AD types 0x09 complete, 0x08 shortened)."""
    i, short = 0, None
    while i + 1 < len(eir):
        ln = eir[i]
        if ln == 0:
            break
        t = eir[i + 1]
        if t in (0x08, 0x09):
            s = eir[i + 2 : i + 1 + ln].decode("utf-8", "replace")
            if t == 0x09:
                return s
            short = s
        i += 1 + ln
    return short


def _e_inquiry_result(p: bytes, r: HciEvent, *, rssi: bool, extended: bool) -> None:
    n = p[0]
    size = 14  # with RSSI: 1 reserved byte + RSSI; without: 2 reserved bytes
    out: list[InquiryResponse] = []
    i = 1
    for _ in range(n):
        if i + size > len(p):
            r.anomaly = f"inquiry result truncated: {len(out)} of {n} responses"
            break
        # BD_ADDR(6) PSRM(1) reserved(1 or 2) CoD(3) clock offset(2) [RSSI(1)]
        cod_at = i + 8 if rssi else i + 9
        resp = InquiryResponse(
            bd_addr=bd_addr(p, i) or "",
            page_scan_repetition_mode=p[i + 6],
            class_of_device=u24(p, cod_at),
            clock_offset=u16(p, cod_at + 3),
            rssi=s8(p, cod_at + 5) if rssi else None,
        )
        i += size
        if extended:
            resp.eir = p[i:]
            resp.name = eir_name(resp.eir)
            out.append(resp)
            break
        out.append(resp)
    r.fields["responses"] = out
    if out:
        r.bd_addr = out[0].bd_addr


def _e_inq(p: bytes, r: HciEvent) -> None:
    _e_inquiry_result(p, r, rssi=False, extended=False)


def _e_inq_rssi(p: bytes, r: HciEvent) -> None:
    _e_inquiry_result(p, r, rssi=True, extended=False)


def _e_ext_inq(p: bytes, r: HciEvent) -> None:
    _e_inquiry_result(p, r, rssi=True, extended=True)


def _e_conn_complete(p: bytes, r: HciEvent) -> None:
    _e_status_handle(p, r)
    r.bd_addr = bd_addr(p, 3)
    r.fields.update(
        link_type=p[9], link_type_name=_name(LINK_TYPES, p[9]), encryption_enabled=p[10]
    )


def _e_conn_request(p: bytes, r: HciEvent) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields.update(
        class_of_device=u24(p, 6), link_type=p[9], link_type_name=_name(LINK_TYPES, p[9])
    )


def _e_disconn_complete(p: bytes, r: HciEvent) -> None:
    _e_status_handle(p, r)
    r.reason = p[3]
    r.reason_name = error_name(p[3])


def _e_remote_name(p: bytes, r: HciEvent) -> None:
    _e_status_bdaddr(p, r)
    raw = p[7:255]
    r.fields["remote_name"] = raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _e_encryption_change(p: bytes, r: HciEvent) -> None:
    _e_status_handle(p, r)
    r.fields["encryption_enabled"] = p[3]
    if r.code == 0x59 and len(p) >= 5:
        r.fields["key_size"] = p[4]


def _e_remote_version(p: bytes, r: HciEvent) -> None:
    _e_status_handle(p, r)
    company = u16(p, 4)
    r.fields.update(
        version=p[3],
        manufacturer=company,
        manufacturer_name=company_name(company),
        subversion=u16(p, 6),
    )


def _e_command_complete(p: bytes, r: HciEvent) -> None:
    op = u16(p, 1) or 0
    r.fields.update(num_packets=p[0], opcode=op, opcode_name=command_name(op))
    ret = p[3:]
    r.fields["return_params"] = ret
    if ret:
        _set_status(r, ret[0])
        # many return parameter blocks carry the handle after the status
        if op in _CC_HANDLE_OPCODES and len(ret) >= 3:
            r.handle = (u16(ret, 1) or 0) & 0x0FFF
        if op == 0x1009 and len(ret) >= 7:  # Read BD_ADDR
            r.bd_addr = bd_addr(ret, 1)
        elif op == 0x0C14 and len(ret) >= 2 and ret[0] == 0:  # Read Local Name (§7.3.12)
            r.fields["local_name"] = _utf8_name(ret[1:])
        elif op == 0x1001 and len(ret) >= 9:  # Read Local Version Information (§7.4.1)
            r.fields["local_version"] = {
                "hci_version": ret[1],
                "hci_revision": ret[2] | (ret[3] << 8),
                "lmp_version": ret[4],
                "manufacturer": ret[5] | (ret[6] << 8),
                "lmp_subversion": ret[7] | (ret[8] << 8),
            }


# Command Complete return parameters starting Status, Connection_Handle.
_CC_HANDLE_OPCODES = frozenset({0x040C, 0x0809, 0x0C08, 0x1405, 0x201A, 0x201B, 0x2016})


def _e_command_status(p: bytes, r: HciEvent) -> None:
    _set_status(r, p[0])
    op = u16(p, 2) or 0
    r.fields.update(num_packets=p[1], opcode=op, opcode_name=command_name(op))


def _e_hardware_error(p: bytes, r: HciEvent) -> None:
    r.fields["hardware_code"] = p[0]


def _e_role_change(p: bytes, r: HciEvent) -> None:
    _e_status_bdaddr(p, r)
    r.fields.update(new_role=p[7], new_role_name={0: "Central", 1: "Peripheral"}.get(p[7]))


def _e_num_completed(p: bytes, r: HciEvent) -> None:
    n = p[0]
    pairs: list[tuple[int, int]] = []
    for k in range(n):
        h, c = u16(p, 1 + 4 * k), u16(p, 3 + 4 * k)
        if h is None or c is None:
            r.anomaly = f"truncated: {k} of {n} handles"
            break
        pairs.append((h & 0x0FFF, c))
    r.fields["completed"] = pairs


def _e_link_key_notification(p: bytes, r: HciEvent) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields.update(key_type=p[22], key_type_name=_name(KEY_TYPES, p[22]))


def _e_io_cap_response(p: bytes, r: HciEvent) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields.update(_io_capability(p))


def _e_user_confirmation(p: bytes, r: HciEvent) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields["numeric_value"] = u32(p, 6)


def _e_passkey_notification(p: bytes, r: HciEvent) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields["passkey"] = u32(p, 6)


def _e_sync_complete(p: bytes, r: HciEvent) -> None:
    _e_status_handle(p, r)
    r.bd_addr = bd_addr(p, 3)
    r.fields.update(
        link_type=p[9],
        link_type_name=_name(LINK_TYPES, p[9]),
        transmission_interval=p[10],
        retransmission_window=p[11],
        rx_packet_length=u16(p, 12),
        tx_packet_length=u16(p, 14),
        air_mode=p[16],
        air_mode_name=_name(AIR_MODES, p[16]),
    )


def _e_sync_changed(p: bytes, r: HciEvent) -> None:
    _e_status_handle(p, r)
    r.fields.update(
        transmission_interval=p[3],
        retransmission_window=p[4],
        rx_packet_length=u16(p, 5),
        tx_packet_length=u16(p, 7),
    )


def _e_vendor(p: bytes, r: HciEvent) -> None:
    r.vendor = True
    if p:
        r.fields["vendor_subcode"] = p[0]


def _e_le_meta(p: bytes, r: HciEvent) -> None:
    sub = p[0]
    r.subevent = sub
    r.name = le_subevent_name(sub)
    row = LE_SUBEVENTS.get(sub)
    if row is None:
        return
    min_len, dec = row
    body = p[1:]
    if len(body) < min_len:
        r.anomaly = f"parameters too short for {r.name}: {len(body)} < {min_len}"
        return
    dec(body, r)


# -- LE subevents (Core Vol 4 Part E §7.7.65)


def _le_conn_complete(p: bytes, r: HciEvent, enhanced: bool) -> None:
    _e_status_handle(p, r)
    r.bd_addr = bd_addr(p, 5)
    i = 23 if enhanced else 11
    r.fields.update(
        role=p[3],
        role_name=_name(ROLES, p[3]),
        peer_address_type=p[4],
        peer_address_type_name=_name(LE_ADDRESS_TYPES, p[4]),
        conn_interval=u16(p, i),
        conn_interval_ms=(u16(p, i) or 0) * 1.25,
        peripheral_latency=u16(p, i + 2),
        supervision_timeout=u16(p, i + 4),
        supervision_timeout_ms=(u16(p, i + 4) or 0) * 10,
        central_clock_accuracy=u8(p, i + 6),
    )
    if enhanced:
        r.fields.update(local_rpa=bd_addr(p, 11), peer_rpa=bd_addr(p, 17))
        if r.subevent == 0x29:
            r.fields.update(advertising_handle=u8(p, 30), sync_handle=u16(p, 31))


def _le_cc(p: bytes, r: HciEvent) -> None:
    _le_conn_complete(p, r, enhanced=False)


def _le_ecc(p: bytes, r: HciEvent) -> None:
    _le_conn_complete(p, r, enhanced=True)


def _le_adv_report(p: bytes, r: HciEvent) -> None:
    n = p[0]
    reports: list[AdvReport] = []
    i = 1
    for _ in range(n):
        if i + 10 > len(p):
            r.anomaly = f"advertising report truncated: {len(reports)} of {n} reports"
            break
        et, at, dl = p[i], p[i + 1], p[i + 8]
        if i + 9 + dl + 1 > len(p):
            r.anomaly = f"advertising report truncated: {len(reports)} of {n} reports"
            break
        reports.append(
            AdvReport(
                event_type=et,
                event_type_name=_name(ADV_REPORT_TYPES, et) or "",
                address_type=at,
                address=bd_addr(p, i + 2) or "",
                data=p[i + 9 : i + 9 + dl],
                rssi=s8(p, i + 9 + dl),
            )
        )
        i += 10 + dl
    r.fields["reports"] = reports


#: Extended report Event_Type with the legacy bit (4) set: the legacy PDU it stands for
#: (§7.7.65.13; a scan response to ADV_IND and to ADV_SCAN_IND are both SCAN_RSP, as in a
#: legacy report)
_LEGACY_IN_EXTENDED = {0x13: "ADV_IND", 0x15: "ADV_DIRECT_IND", 0x12: "ADV_SCAN_IND",
                       0x10: "ADV_NONCONN_IND", 0x1B: "SCAN_RSP", 0x1A: "SCAN_RSP"}  # fmt: skip


def ext_event_type_name(et: int) -> str:
    """The name of an extended advertising report's Event_Type: the legacy PDU name, or
    "AUX_SCAN_RSP", or "extended connectable|scannable|non-connectable[ directed]"."""
    if et & 0x10:
        return _LEGACY_IN_EXTENDED.get(et & 0x1F, f"legacy 0x{et & 0x1F:02X}")
    if et & 0x08:
        return "AUX_SCAN_RSP"
    kind = "connectable" if et & 1 else "scannable" if et & 2 else "non-connectable"
    return f"extended {kind}" + (" directed" if et & 4 else "")


def _le_ext_adv_report(p: bytes, r: HciEvent) -> None:
    n = p[0]
    reports: list[AdvReport] = []
    i = 1
    for _ in range(n):
        if i + 24 > len(p):
            r.anomaly = f"extended advertising report truncated: {len(reports)} of {n} reports"
            break
        et = u16(p, i) or 0
        dl = p[i + 23]
        if i + 24 + dl > len(p):
            r.anomaly = f"extended advertising report truncated: {len(reports)} of {n} reports"
            break
        # event type(2) addr type(1) addr(6) primary PHY(1) secondary PHY(1) SID(1) tx power(1)
        # RSSI(1) periodic interval(2) direct addr type(1) direct addr(6) data length(1) data
        sid = p[i + 11]
        reports.append(
            AdvReport(
                event_type=et,
                event_type_name=ext_event_type_name(et),
                address_type=p[i + 2],
                address=bd_addr(p, i + 3) or "",
                data=p[i + 24 : i + 24 + dl],
                rssi=s8(p, i + 13),
                extended=True,
                data_status=(et >> 5) & 0x3,
                primary_phy=p[i + 9],
                secondary_phy=p[i + 10],
                sid=None if sid == 0xFF else sid,
                tx_power=s8(p, i + 12),
                periodic_interval=u16(p, i + 14),
                direct_address_type=p[i + 16],
                direct_address=bd_addr(p, i + 17),
            )
        )
        i += 24 + dl
    r.fields["reports"] = reports


def _le_ltk_request(p: bytes, r: HciEvent) -> None:
    r.handle = (u16(p, 0) or 0) & 0x0FFF
    r.fields.update(random=p[2:10].hex(), ediv=u16(p, 10))


def _le_conn_update(p: bytes, r: HciEvent) -> None:
    _e_status_handle(p, r)
    r.fields.update(
        conn_interval=u16(p, 3),
        conn_interval_ms=(u16(p, 3) or 0) * 1.25,
        peripheral_latency=u16(p, 5),
        supervision_timeout=u16(p, 7),
        supervision_timeout_ms=(u16(p, 7) or 0) * 10,
    )


def _le_remote_param_request(p: bytes, r: HciEvent) -> None:
    """LE Remote Connection Parameter Request (§7.7.65.6): handle, interval min/max, latency,
    timeout."""
    r.handle = (u16(p, 0) or 0) & 0x0FFF
    r.fields.update(supervision_timeout_ms=(u16(p, 8) or 0) * 10)


def _le_remote_features(p: bytes, r: HciEvent) -> None:
    _e_status_handle(p, r)
    r.fields["features"] = p[3:11].hex()


def _le_phy_update(p: bytes, r: HciEvent) -> None:
    _e_status_handle(p, r)
    r.fields.update(tx_phy=p[3], rx_phy=p[4])


def _le_data_length(p: bytes, r: HciEvent) -> None:
    r.handle = (u16(p, 0) or 0) & 0x0FFF
    r.fields.update(
        max_tx_octets=u16(p, 2), max_tx_time=u16(p, 4), max_rx_octets=u16(p, 6),
        max_rx_time=u16(p, 8),
    )  # fmt: skip


#: LE subevent code -> (minimum size after the subevent byte, decoder).
LE_SUBEVENTS: dict[int, tuple[int, EvtDecoder]] = {
    0x01: (18, _le_cc),
    0x02: (1, _le_adv_report),
    0x03: (9, _le_conn_update),
    0x04: (11, _le_remote_features),
    0x05: (12, _le_ltk_request),
    0x06: (10, _le_remote_param_request),
    0x07: (10, _le_data_length),
    0x0A: (30, _le_ecc),
    0x0C: (5, _le_phy_update),
    0x0D: (1, _le_ext_adv_report),
    0x29: (33, _le_ecc),
}

#: event code -> (minimum parameter length, decoder). Core v5.4 Vol 4 Part E §7.7.
EVENTS: dict[int, tuple[int, EvtDecoder | None]] = {
    0x01: (1, _e_status),
    0x02: (1, _e_inq),
    0x03: (11, _e_conn_complete),
    0x04: (10, _e_conn_request),
    0x05: (4, _e_disconn_complete),
    0x06: (3, _e_status_handle),
    0x07: (7, _e_remote_name),
    0x08: (4, _e_encryption_change),
    0x09: (3, _e_status_handle),  # Change Connection Link Key Complete
    0x0B: (3, _e_status_handle),  # Read Remote Supported Features Complete
    0x0C: (8, _e_remote_version),
    0x0E: (3, _e_command_complete),
    0x0F: (4, _e_command_status),
    0x10: (1, _e_hardware_error),
    0x12: (8, _e_role_change),
    0x13: (1, _e_num_completed),
    0x0A: (3, _e_status_handle),  # Central Link Key Complete
    0x0D: (3, _e_status_handle),  # QoS Setup Complete
    0x14: (3, _e_status_handle),  # Mode Change
    0x1B: (3, _e_handle),  # Max Slots Change
    0x1C: (3, _e_status_handle),  # Read Clock Offset Complete
    0x1D: (3, _e_status_handle),  # Connection Packet Type Changed
    0x20: (6, _e_bdaddr),  # Page Scan Repetition Mode Change
    0x21: (3, _e_status_handle),  # Flow Specification Complete
    0x35: (6, _e_bdaddr),  # Remote OOB Data Request
    0x38: (2, _e_handle),  # Link Supervision Timeout Changed
    0x3D: (6, _e_bdaddr),  # Remote Host Supported Features Notification
    0x48: (2, _e_handle),  # Authenticated Payload Timeout Expired
    0x16: (6, _e_bdaddr),
    0x17: (6, _e_bdaddr),
    0x18: (23, _e_link_key_notification),
    0x22: (1, _e_inq_rssi),
    0x23: (3, _e_status_handle),  # Read Remote Extended Features Complete
    0x2C: (17, _e_sync_complete),
    0x2D: (9, _e_sync_changed),
    0x2E: (3, _e_status_handle),  # Sniff Subrating
    0x2F: (1, _e_ext_inq),
    0x30: (3, _e_status_handle),
    0x31: (6, _e_bdaddr),
    0x32: (9, _e_io_cap_response),
    0x33: (10, _e_user_confirmation),
    0x34: (6, _e_bdaddr),
    0x36: (7, _e_status_bdaddr),
    0x3B: (10, _e_passkey_notification),
    0x3E: (1, _e_le_meta),
    0x59: (5, _e_encryption_change),
    0xFF: (0, _e_vendor),
}


def _raw_event(data: Buffer, anomaly: str | None = None) -> HciEvent:
    b = as_bytes(data) if isinstance(data, bytes | bytearray | memoryview) else b""
    code = u8(b, 0)
    if code is None:
        return HciEvent(0, "Unknown", anomaly=anomaly or "empty event")
    ev = HciEvent(code, event_name(code), u8(b, 1), params=b[2:], anomaly=anomaly)
    ev.vendor = code == 0xFF
    if code == 0x3E and len(b) > 2:
        ev.subevent = b[2]
        ev.name = le_subevent_name(b[2])
    return ev


@never_raise(_raw_event)
def decode_event(data: Buffer) -> HciEvent:
    """Decode an HCI event packet (code, parameter length, parameters)."""
    b = as_bytes(data)
    if len(b) < 2:
        return _raw_event(b, f"short event header: {len(b)} < 2 bytes")
    code, plen = b[0], b[1]
    params = b[2 : 2 + plen]
    rec = HciEvent(code, event_name(code), plen, params=params, vendor=code == 0xFF)
    if len(b) - 2 < plen:
        rec.anomaly = f"parameters truncated: {len(b) - 2} of {plen} bytes"
    elif len(b) - 2 > plen:
        rec.anomaly = f"{len(b) - 2 - plen} bytes after the declared parameters"
    row = EVENTS.get(code)
    if row is not None:
        min_len, dec = row
        if len(params) < min_len:
            rec.anomaly = f"parameters too short for {rec.name}: {len(params)} < {min_len}"
            if code == 0x3E and params:
                rec.subevent = params[0]
                rec.name = le_subevent_name(params[0])
        elif dec is not None:
            dec(params, rec)
    return rec
