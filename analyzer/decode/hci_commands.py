"""HCI command packets (Core v5.4 Vol 4 Part E §5.4.1, §7.1-§7.8): ``COMMANDS`` maps an opcode
to ``(minimum parameter size, field decoder)``; a shorter packet keeps its header fields and gets
an ``anomaly``; unknown opcodes get a name and no fields. Nothing raises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analyzer.decode.base import Buffer, as_bytes, bd_addr, never_raise, s8, u8, u16, u24, u32
from analyzer.decode.hci_names import (
    command_name,
    error_name,
)
from analyzer.decode.hci_types import (
    CODING_FORMATS,
    IO_CAPABILITIES,
    SCAN_ENABLE,
    HciCommand,
    _name,
)

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


def _c_le_scan_enable(p: bytes, r: HciCommand) -> None:
    """LE Set Scan Enable (§7.8.11) and LE Set Extended Scan Enable (§7.8.65): the first two
    parameters are LE_Scan_Enable and Filter_Duplicates in both."""
    r.fields.update(scan_enable=p[0], filter_duplicates=p[1])


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


def _c_enable(p: bytes, r: HciCommand) -> None:
    """The first parameter of the LE enable commands: Advertising_Enable (§7.8.9), Enable of
    Extended Advertising (§7.8.56) and Periodic Advertising (§7.8.63)."""
    r.fields["enable"] = p[0]


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
    0x200A: (1, _c_enable),
    0x200B: (7, _c_le_scan_params),
    0x200C: (2, _c_le_scan_enable),
    0x200D: (25, _c_le_create_conn),
    0x2019: (28, _c_le_start_encryption),
    0x201A: (18, _c_handle),
    0x201B: (2, _c_handle),
    0x2036: (25, _c_le_ext_adv_params),
    0x2039: (1, _c_enable),
    0x2040: (1, _c_enable),
    0x2041: (3, _c_le_ext_scan_params),
    0x2042: (2, _c_le_scan_enable),
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
