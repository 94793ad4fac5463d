"""HCI commands, events and ACL headers (Core v5.4 Vol 4 Part E §5.4, §7).

Input payloads are HCI packets *without* the H4 type byte (see :mod:`analyzer.capture`).
Decoding is table driven: ``COMMANDS`` / ``EVENTS`` / ``LE_SUBEVENTS`` map a code to
``(minimum parameter size, field decoder)``. A packet shorter than its row's minimum keeps its
header fields and gets an ``anomaly``; unknown codes get a name and no fields. Nothing raises.

Array parameters (Inquiry Result, Advertising Report, Number Of Completed Packets) are read
element by element (interleaved), as BlueZ's monitor and Wireshark do.

The ``*_columns`` helpers are the vectorised hot path: they gather header fields of many frames
at once from the capture's uint8 buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analyzer.decode.base import Buffer, as_bytes, bd_addr, never_raise, s8, u8, u16, u24, u32
from analyzer.decode.hci_names import (
    command_name,
    company_name,
    error_name,
    event_name,
    le_subevent_name,
)

# ------------------------------------------------------------------------------------------------
# value tables

LINK_TYPES: dict[int, str] = {0x00: "SCO", 0x01: "ACL", 0x02: "eSCO"}
AIR_MODES: dict[int, str] = {
    0x00: "u-law log",
    0x01: "A-law log",
    0x02: "CVSD",
    0x03: "Transparent Data",
}
#: Link Key Notification key types (Core Vol 4 Part E §7.7.24).
KEY_TYPES: dict[int, str] = {
    0x00: "Combination Key",
    0x01: "Local Unit Key",
    0x02: "Remote Unit Key",
    0x03: "Debug Combination Key",
    0x04: "Unauthenticated Combination Key generated from P-192",
    0x05: "Authenticated Combination Key generated from P-192",
    0x06: "Changed Combination Key",
    0x07: "Unauthenticated Combination Key generated from P-256",
    0x08: "Authenticated Combination Key generated from P-256",
}
IO_CAPABILITIES: dict[int, str] = {
    0x00: "DisplayOnly",
    0x01: "DisplayYesNo",
    0x02: "KeyboardOnly",
    0x03: "NoInputNoOutput",
}
ROLES: dict[int, str] = {0x00: "Central", 0x01: "Peripheral"}
LE_ADDRESS_TYPES: dict[int, str] = {
    0x00: "Public",
    0x01: "Random",
    0x02: "Public Identity",
    0x03: "Random Identity",
    0xFF: "Anonymous",
}
#: Legacy advertising report event types (Core Vol 4 Part E §7.7.65.2).
ADV_REPORT_TYPES: dict[int, str] = {
    0x00: "ADV_IND",
    0x01: "ADV_DIRECT_IND",
    0x02: "ADV_SCAN_IND",
    0x03: "ADV_NONCONN_IND",
    0x04: "SCAN_RSP",
}
#: Extended advertising report Data_Status (bits 5-6 of Event_Type).
DATA_STATUS: dict[int, str] = {
    0: "complete",
    1: "incomplete, more data to come",
    2: "incomplete, truncated",
    3: "reserved",
}
SCAN_ENABLE: dict[int, str] = {
    0: "No Scans",
    1: "Inquiry Scan",
    2: "Page Scan",
    3: "Inquiry Scan + Page Scan",
}
#: HCI coding format ids (Assigned Numbers §2.11).
CODING_FORMATS: dict[int, str] = {
    0x00: "u-law",
    0x01: "A-law",
    0x02: "CVSD",
    0x03: "Transparent",
    0x04: "Linear PCM",
    0x05: "mSBC",
    0x06: "LC3",
    0x07: "G.729A",
    0xFF: "Vendor Specific",
}


def _name(table: dict[int, str], v: int | None) -> str | None:
    if v is None:
        return None
    return table.get(v, f"unknown 0x{v:02X}")


# ------------------------------------------------------------------------------------------------
# records


@dataclass(slots=True)
class HciCommand:
    """One HCI command packet (Core Vol 4 Part E §5.4.1)."""

    opcode: int
    name: str
    ogf: int
    ocf: int
    vendor: bool = False
    param_len: int | None = None
    handle: int | None = None
    bd_addr: str | None = None
    reason: int | None = None
    reason_name: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    params: bytes = b""
    anomaly: str | None = None


@dataclass(slots=True)
class InquiryResponse:
    """One device of an Inquiry Result / with RSSI / Extended Inquiry Result event."""

    bd_addr: str
    class_of_device: int | None = None
    clock_offset: int | None = None
    page_scan_repetition_mode: int | None = None
    rssi: int | None = None
    name: str | None = None  # from the EIR Shortened/Complete Local Name
    eir: bytes = b""


@dataclass(slots=True)
class AdvReport:
    """One report of LE Advertising Report (legacy) or LE Extended Advertising Report."""

    event_type: int
    event_type_name: str
    address_type: int
    address: str
    data: bytes
    rssi: int | None
    extended: bool = False
    data_status: int = 0  # 0 complete, 1 more to come, 2 truncated (extended reports)
    primary_phy: int | None = None
    secondary_phy: int | None = None
    sid: int | None = None
    tx_power: int | None = None
    periodic_interval: int | None = None
    direct_address_type: int | None = None
    direct_address: str | None = None


@dataclass(slots=True)
class HciEvent:
    """One HCI event packet (Core Vol 4 Part E §5.4.4); LE Meta events carry ``subevent``."""

    code: int
    name: str
    param_len: int | None = None
    subevent: int | None = None
    status: int | None = None
    status_name: str | None = None
    handle: int | None = None
    bd_addr: str | None = None
    reason: int | None = None
    reason_name: str | None = None
    vendor: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    params: bytes = b""
    anomaly: str | None = None


@dataclass(slots=True)
class AclHeader:
    """HCI ACL data packet header (Core Vol 4 Part E §5.4.2)."""

    handle: int | None
    pb: int | None  # packet boundary flag: 0b00/0b10 start an L2CAP PDU, 0b01 continues one
    bc: int | None
    length: int | None
    data: bytes = b""
    anomaly: str | None = None

    @property
    def starts_pdu(self) -> bool:
        return self.pb in (0, 2)


# ------------------------------------------------------------------------------------------------
# field decoders: commands

CmdDecoder = Callable[[bytes, HciCommand], None]


def _c_inquiry(p: bytes, r: HciCommand) -> None:
    r.fields.update(lap=u24(p, 0), inquiry_length=p[3], num_responses=p[4])
    r.fields["inquiry_seconds"] = p[3] * 1.28


def _c_bdaddr(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)


def _c_create_connection(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields.update(
        packet_type=u16(p, 6),
        page_scan_repetition_mode=u8(p, 8),
        clock_offset=u16(p, 10),
        allow_role_switch=u8(p, 12),
    )


def _c_disconnect(p: bytes, r: HciCommand) -> None:
    r.handle = u16(p, 0) & 0x0FFF  # type: ignore[operator]
    r.reason = p[2]
    r.reason_name = error_name(p[2])


def _c_handle(p: bytes, r: HciCommand) -> None:
    r.handle = u16(p, 0) & 0x0FFF  # type: ignore[operator]


def _c_accept_conn(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields["role"] = u8(p, 6)


def _c_bdaddr_reason(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.reason = p[6]
    r.reason_name = error_name(p[6])


def _c_pin_reply(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields["pin_length"] = p[6]


def _c_set_encryption(p: bytes, r: HciCommand) -> None:
    _c_handle(p, r)
    r.fields["encryption_enable"] = p[2]


def _c_remote_name(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields.update(page_scan_repetition_mode=u8(p, 6), clock_offset=u16(p, 8))


def _io_capability(p: bytes) -> dict[str, Any]:
    """BD_ADDR, IO_Capability, OOB_Data_Present, Authentication_Requirements: the layout shared
    by IO Capability Request Reply (§7.1.29) and IO Capability Response (§7.7.41)."""
    return {
        "io_capability": p[6],
        "io_capability_name": _name(IO_CAPABILITIES, p[6]),
        "oob_data_present": p[7],
        "authentication_requirements": p[8],
    }


def _c_io_cap_reply(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields.update(_io_capability(p))


def _c_passkey_reply(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)
    r.fields["passkey"] = u32(p, 6)


def _sync_params(p: bytes, i: int, r: HciCommand) -> None:
    r.fields.update(
        transmit_bandwidth=u32(p, i),
        receive_bandwidth=u32(p, i + 4),
        max_latency=u16(p, i + 8),
        voice_setting=u16(p, i + 10),
        air_coding_format=(u16(p, i + 10) or 0) & 0x3,
        retransmission_effort=u8(p, i + 12),
        packet_type=u16(p, i + 13),
    )


def _c_setup_sync(p: bytes, r: HciCommand) -> None:
    _c_handle(p, r)
    _sync_params(p, 2, r)


def _c_accept_sync(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)
    _sync_params(p, 6, r)


def _enh_sync_params(p: bytes, i: int, r: HciCommand) -> None:
    # Core Vol 4 Part E §7.1.45: bandwidths, coding formats (5 bytes: id, company, vendor codec)...
    tx_fmt, rx_fmt = u8(p, i + 8), u8(p, i + 13)
    r.fields.update(
        transmit_bandwidth=u32(p, i),
        receive_bandwidth=u32(p, i + 4),
        transmit_coding_format=tx_fmt,
        transmit_coding_format_name=_name(CODING_FORMATS, tx_fmt),
        receive_coding_format=rx_fmt,
        receive_coding_format_name=_name(CODING_FORMATS, rx_fmt),
        max_latency=u16(p, i + 52),
        packet_type=u16(p, i + 54),
        retransmission_effort=u8(p, i + 56),
    )


def _c_enh_setup_sync(p: bytes, r: HciCommand) -> None:
    _c_handle(p, r)
    _enh_sync_params(p, 2, r)


def _c_enh_accept_sync(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 0)
    _enh_sync_params(p, 6, r)


def _utf8_name(p: bytes) -> str:
    """A 248-octet UTF-8 name field, null-terminated when shorter (Vol 4 Part E §7.3.11)."""
    return p[:248].split(b"\0", 1)[0].decode("utf-8", "replace")


def _c_write_local_name(p: bytes, r: HciCommand) -> None:
    r.fields["local_name"] = _utf8_name(p)


def _c_write_page_timeout(p: bytes, r: HciCommand) -> None:
    r.fields["page_timeout_s"] = (u16(p, 0) or 0) * 0.000625  # 0.625 ms slots (§7.3.16)


def _c_write_scan_enable(p: bytes, r: HciCommand) -> None:
    r.fields.update(scan_enable=p[0], scan_enable_name=_name(SCAN_ENABLE, p[0]))


def _c_le_scan_params(p: bytes, r: HciCommand) -> None:
    r.fields.update(
        scan_type=p[0],
        scan_interval=u16(p, 1),
        scan_window=u16(p, 3),
        own_address_type=p[5],
        filter_policy=p[6],
        scan_interval_ms=(u16(p, 1) or 0) * 0.625,
        scan_window_ms=(u16(p, 3) or 0) * 0.625,
    )


def _c_le_ext_scan_params(p: bytes, r: HciCommand) -> None:
    r.fields.update(own_address_type=p[0], filter_policy=p[1], scanning_phys=p[2])
    phys: list[dict[str, Any]] = []
    i = 3
    for bit, phy in ((0, "LE 1M"), (2, "LE Coded")):
        if p[2] & (1 << bit):
            if i + 5 > len(p):
                r.anomaly = "short per-PHY scan parameters"
                break
            phys.append(
                {
                    "phy": phy,
                    "scan_type": p[i],
                    "scan_interval": u16(p, i + 1),
                    "scan_window": u16(p, i + 3),
                    "scan_interval_ms": (u16(p, i + 1) or 0) * 0.625,
                    "scan_window_ms": (u16(p, i + 3) or 0) * 0.625,
                }
            )
            i += 5
    r.fields["phys"] = phys


def _c_le_adv_params(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 7)  # peer address (directed advertising)
    r.fields.update(
        interval_min=u16(p, 0),
        interval_max=u16(p, 2),
        interval_min_ms=(u16(p, 0) or 0) * 0.625,
        interval_max_ms=(u16(p, 2) or 0) * 0.625,
        advertising_type=p[4],
        own_address_type=p[5],
        peer_address_type=p[6],
        channel_map=p[13],
        filter_policy=p[14],
    )


def _c_le_ext_adv_params(p: bytes, r: HciCommand) -> None:
    # handle(1) properties(2) interval min(3) max(3) channel map(1) own type(1) peer type(1)
    # peer address(6) filter policy(1) tx power(1) primary PHY(1) max skip(1) secondary PHY(1)
    # SID(1) scan request notification(1): Core Vol 4 Part E §7.8.53
    r.bd_addr = bd_addr(p, 12)
    r.fields.update(
        advertising_handle=p[0],
        event_properties=u16(p, 1),
        interval_min=u24(p, 3),
        interval_max=u24(p, 6),
        interval_min_ms=(u24(p, 3) or 0) * 0.625,
        interval_max_ms=(u24(p, 6) or 0) * 0.625,
        channel_map=p[9],
        own_address_type=p[10],
        peer_address_type=p[11],
        filter_policy=p[18],
        tx_power=s8(p, 19),
        primary_phy=p[20],
        secondary_max_skip=p[21],
        secondary_phy=p[22],
        sid=p[23],
    )


def _c_le_create_conn(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 6)
    r.fields.update(
        scan_interval=u16(p, 0),
        scan_window=u16(p, 2),
        initiator_filter_policy=p[4],
        peer_address_type=p[5],
        own_address_type=p[12],
        conn_interval_min=u16(p, 13),
        conn_interval_max=u16(p, 15),
        max_latency=u16(p, 17),
        supervision_timeout=u16(p, 19),
    )


def _c_le_ext_create_conn(p: bytes, r: HciCommand) -> None:
    r.bd_addr = bd_addr(p, 3)
    r.fields.update(
        initiator_filter_policy=p[0],
        own_address_type=p[1],
        peer_address_type=p[2],
        initiating_phys=p[9],
    )
    phys: list[dict[str, Any]] = []
    i = 10
    for bit, phy in ((0, "LE 1M"), (1, "LE 2M"), (2, "LE Coded")):
        if p[9] & (1 << bit):
            if i + 16 > len(p):
                r.anomaly = "short per-PHY connection parameters"
                break
            phys.append(
                {
                    "phy": phy,
                    "scan_interval": u16(p, i),
                    "scan_window": u16(p, i + 2),
                    "conn_interval_min": u16(p, i + 4),
                    "conn_interval_max": u16(p, i + 6),
                    "max_latency": u16(p, i + 8),
                    "supervision_timeout": u16(p, i + 10),
                }
            )
            i += 16
    r.fields["phys"] = phys


def _c_le_start_encryption(p: bytes, r: HciCommand) -> None:
    _c_handle(p, r)
    r.fields.update(random=p[2:10].hex(), ediv=u16(p, 10))


#: opcode -> (minimum parameter length, decoder). Core v5.4 Vol 4 Part E §7.1-7.8.
COMMANDS: dict[int, tuple[int, CmdDecoder | None]] = {
    0x0401: (5, _c_inquiry),
    0x0405: (6, _c_create_connection),
    0x0406: (3, _c_disconnect),
    0x0408: (6, _c_bdaddr),  # Create Connection Cancel
    0x0409: (6, _c_accept_conn),
    0x040A: (7, _c_bdaddr_reason),
    0x040B: (6, _c_bdaddr),
    0x040C: (6, _c_bdaddr),
    0x040D: (7, _c_pin_reply),
    0x040E: (6, _c_bdaddr),
    0x0411: (2, _c_handle),
    0x0413: (3, _c_set_encryption),
    0x0415: (2, _c_handle),  # Change Connection Link Key
    0x0419: (6, _c_remote_name),
    0x041A: (6, _c_bdaddr),  # Remote Name Request Cancel
    0x041B: (2, _c_handle),  # Read Remote Supported Features
    0x041C: (2, _c_handle),  # Read Remote Extended Features
    0x041D: (2, _c_handle),
    0x0428: (17, _c_setup_sync),
    0x0429: (21, _c_accept_sync),
    0x042A: (7, _c_bdaddr_reason),
    0x042B: (9, _c_io_cap_reply),
    0x042C: (6, _c_bdaddr),
    0x042D: (6, _c_bdaddr),
    0x042E: (10, _c_passkey_reply),
    0x042F: (6, _c_bdaddr),
    0x0434: (7, _c_bdaddr_reason),
    0x043D: (59, _c_enh_setup_sync),
    0x043E: (63, _c_enh_accept_sync),
    0x0803: (2, _c_handle),  # Sniff Mode
    0x0804: (2, _c_handle),  # Exit Sniff Mode
    0x080B: (6, _c_bdaddr),  # Switch Role
    0x0C03: (0, None),
    0x0C13: (1, _c_write_local_name),
    0x0C18: (2, _c_write_page_timeout),
    0x0C1A: (1, _c_write_scan_enable),
    0x2006: (15, _c_le_adv_params),
    0x200B: (7, _c_le_scan_params),
    0x200D: (25, _c_le_create_conn),
    0x2019: (28, _c_le_start_encryption),
    0x201A: (18, _c_handle),
    0x201B: (2, _c_handle),
    0x2036: (25, _c_le_ext_adv_params),
    0x2041: (3, _c_le_ext_scan_params),
    0x2043: (10, _c_le_ext_create_conn),
}


def _raw_command(data: Buffer, anomaly: str | None = None) -> HciCommand:
    b = as_bytes(data) if isinstance(data, bytes | bytearray | memoryview) else b""
    op = u16(b, 0)
    if op is None:
        return HciCommand(0, "Unknown", 0, 0, params=b, anomaly=anomaly or "short command")
    return HciCommand(op, command_name(op), op >> 10, op & 0x3FF, op >> 10 == 0x3F, u8(b, 2),
                      params=b[3:], anomaly=anomaly)  # fmt: skip


@never_raise(_raw_command)
def decode_command(data: Buffer) -> HciCommand:
    """Decode an HCI command packet (opcode, parameter length, parameters)."""
    b = as_bytes(data)
    if len(b) < 3:
        return _raw_command(b, f"short command header: {len(b)} < 3 bytes")
    op = b[0] | (b[1] << 8)
    plen = b[2]
    params = b[3 : 3 + plen]
    rec = HciCommand(op, command_name(op), op >> 10, op & 0x3FF, op >> 10 == 0x3F, plen,
                     params=params)  # fmt: skip
    if len(b) - 3 < plen:
        rec.anomaly = f"parameters truncated: {len(b) - 3} of {plen} bytes"
    elif len(b) - 3 > plen:
        rec.anomaly = f"{len(b) - 3 - plen} bytes after the declared parameters"
    row = COMMANDS.get(op)
    if row is not None:
        min_len, dec = row
        if len(params) < min_len:
            rec.anomaly = f"parameters too short for {rec.name}: {len(params)} < {min_len}"
        elif dec is not None:
            dec(params, rec)
    return rec


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


def _ext_event_type_name(et: int) -> str:
    if et & 0x10:  # legacy PDU: Core Vol 4 Part E Table 7.x
        legacy = {0x13: "ADV_IND", 0x15: "ADV_DIRECT_IND", 0x12: "ADV_SCAN_IND",
                  0x10: "ADV_NONCONN_IND", 0x1B: "SCAN_RSP to ADV_IND",
                  0x1A: "SCAN_RSP to ADV_SCAN_IND"}  # fmt: skip
        return legacy.get(et & 0x1F, f"legacy 0x{et & 0x1F:02X}")
    parts = [n for bit, n in ((0, "connectable"), (1, "scannable"), (2, "directed"),
                              (3, "scan response")) if et & (1 << bit)]  # fmt: skip
    return "extended " + (", ".join(parts) if parts else "non-connectable")


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
                event_type_name=_ext_event_type_name(et),
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
    )


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


# ------------------------------------------------------------------------------------------------
# ACL


def _raw_acl(data: Buffer, anomaly: str | None = None) -> AclHeader:
    return AclHeader(None, None, None, None, anomaly=anomaly)


@never_raise(_raw_acl)
def decode_acl(data: Buffer) -> AclHeader:
    """Decode an HCI ACL data packet header; ``data`` is the ACL payload (an L2CAP fragment)."""
    b = as_bytes(data)
    if len(b) < 4:
        return AclHeader(None, None, None, None, anomaly=f"short ACL header: {len(b)} < 4 bytes")
    hf = b[0] | (b[1] << 8)
    ln = b[2] | (b[3] << 8)
    rec = AclHeader(hf & 0x0FFF, (hf >> 12) & 0x3, (hf >> 14) & 0x3, ln, data=b[4 : 4 + ln])
    if len(b) - 4 < ln:
        rec.anomaly = f"ACL data truncated: {len(b) - 4} of {ln} bytes"
    elif len(b) - 4 > ln:
        rec.anomaly = f"{len(b) - 4 - ln} bytes after the declared ACL data"
    return rec


# ------------------------------------------------------------------------------------------------
# vectorised hot path


def _block(
    data: np.ndarray, offset: np.ndarray, length: np.ndarray, width: int, chunk: int = 65536
) -> np.ndarray:
    """The first ``width`` bytes of each frame as an (n, width) uint8 array, zero past a
    frame's end: one cache-friendly gather per frame, in chunks to bound the index array."""
    off = np.asarray(offset, dtype=np.int64)
    ln = np.asarray(length, dtype=np.int64)
    out = np.zeros((off.shape[0], width), dtype=np.uint8)
    if data.shape[0] == 0 or off.shape[0] == 0:
        return out
    cols = np.arange(width, dtype=np.int64)
    last = data.shape[0] - 1
    for i in range(0, off.shape[0], chunk):
        o, n = off[i : i + chunk, None], ln[i : i + chunk, None]
        inside = cols[None, :] < n
        idx = np.minimum(o + cols, last)
        out[i : i + o.shape[0]] = np.where(inside, data[idx], 0)
    return out


def _gather(
    data: np.ndarray, offset: np.ndarray, length: np.ndarray, at: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Little-endian unsigned ``width``-byte field at ``at`` of each frame, and a validity mask."""
    blk = _block(data, offset, length, at + width)
    return _field(blk, np.asarray(length, dtype=np.int64), at, width)


def _field(blk: np.ndarray, ln: np.ndarray, at: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Little-endian field of a gathered block, and where the frame was long enough for it."""
    out = np.zeros(blk.shape[0], dtype=np.int64)
    for k in range(width):
        out |= blk[:, at + k].astype(np.int64) << (8 * k)
    ok = ln >= at + width
    return np.where(ok, out, 0), ok


def acl_columns(data: np.ndarray, offset: np.ndarray, length: np.ndarray) -> dict[str, np.ndarray]:
    """Header fields of many ACL frames at once (payloads without the H4 byte).

    Returns int32 arrays ``handle``, ``pb``, ``bc``, ``data_len`` (-1 where the frame is shorter
    than the 4-byte ACL header) and ``l2cap_len``, ``cid`` (-1 unless the frame starts an L2CAP
    PDU, pb 0b00/0b10, and holds >= 8 bytes).
    """
    ln = np.asarray(length, dtype=np.int64)
    blk = _block(data, offset, ln, 8)
    hf, ok = _field(blk, ln, 0, 2)
    dl, _ = _field(blk, ln, 2, 2)
    pb = (hf >> 12) & 0x3
    l2len, _ = _field(blk, ln, 4, 2)
    cid, ok8 = _field(blk, ln, 6, 2)
    start = ok8 & ((pb == 0) | (pb == 2))
    m1 = np.int32(-1)
    return {
        "handle": np.where(ok, hf & 0x0FFF, m1).astype(np.int32),
        "pb": np.where(ok, pb, m1).astype(np.int32),
        "bc": np.where(ok, (hf >> 14) & 0x3, m1).astype(np.int32),
        "data_len": np.where(ok, dl, m1).astype(np.int32),
        "l2cap_len": np.where(start, l2len, m1).astype(np.int32),
        "cid": np.where(start, cid, m1).astype(np.int32),
    }


def event_columns(
    data: np.ndarray, offset: np.ndarray, length: np.ndarray
) -> dict[str, np.ndarray]:
    """Event code and LE subevent (-1 when absent / not LE Meta) of many event frames."""
    ln = np.asarray(length, dtype=np.int64)
    blk = _block(data, offset, ln, 3)
    code, ok = _field(blk, ln, 0, 1)
    sub, ok3 = _field(blk, ln, 2, 1)
    m1 = np.int32(-1)
    return {
        "code": np.where(ok, code, m1).astype(np.int32),
        "subevent": np.where(ok3 & (code == 0x3E), sub, m1).astype(np.int32),
    }


def command_columns(
    data: np.ndarray, offset: np.ndarray, length: np.ndarray
) -> dict[str, np.ndarray]:
    """Opcode (-1 when shorter than 2 bytes) of many command frames."""
    op, ok = _gather(data, offset, length, 0, 2)
    return {"opcode": np.where(ok, op, np.int32(-1)).astype(np.int32)}
