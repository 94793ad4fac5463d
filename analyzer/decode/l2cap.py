"""L2CAP basic frames and the signalling channel (Core v5.4 Vol 3 Part A §3, §4).

:func:`decode_l2cap` reads the basic header of a complete (reassembled) PDU;
:func:`decode_signalling` reads every command of a C-frame on CID 0x0001 (BR/EDR) or 0x0005 (LE).
Which session consumes a channel is registered by the session modules themselves
(:func:`analyzer.sessions.l2cap.on_psm`, ``on_cid``): one registry, in the sessions layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.base import Buffer, as_bytes, never_raise, u16

#: Protocol/Service Multiplexer values (Assigned Numbers §5.4).
PSM_NAMES: dict[int, str] = {
    0x0001: "SDP",
    0x0003: "RFCOMM",
    0x0005: "TCS-BIN",
    0x0007: "TCS-BIN-CORDLESS",
    0x000F: "BNEP",
    0x0011: "HID Control",
    0x0013: "HID Interrupt",
    0x0015: "UPnP",
    0x0017: "AVCTP",
    0x0019: "AVDTP",
    0x001B: "AVCTP Browsing",
    0x001D: "UDI C-Plane",
    0x001F: "ATT",
    0x0021: "3DSP",
    0x0023: "IPSP",
    0x0025: "OTS",
    0x0027: "EATT",
}

#: Fixed channel identifiers (Core Vol 3 Part A §2.1).
FIXED_CIDS: dict[int, str] = {
    0x0001: "L2CAP Signaling",
    0x0002: "Connectionless",
    0x0003: "AMP Manager",
    0x0004: "ATT",
    0x0005: "LE L2CAP Signaling",
    0x0006: "SMP",
    0x0007: "BR/EDR SMP",
    0x003F: "AMP Test Manager",
}

SIGNAL_CODES: dict[int, str] = {
    0x01: "Command Reject",
    0x02: "Connection Request",
    0x03: "Connection Response",
    0x04: "Configuration Request",
    0x05: "Configuration Response",
    0x06: "Disconnection Request",
    0x07: "Disconnection Response",
    0x08: "Echo Request",
    0x09: "Echo Response",
    0x0A: "Information Request",
    0x0B: "Information Response",
    0x0C: "Create Channel Request",
    0x0D: "Create Channel Response",
    0x0E: "Move Channel Request",
    0x0F: "Move Channel Response",
    0x10: "Move Channel Confirmation Request",
    0x11: "Move Channel Confirmation Response",
    0x12: "Connection Parameter Update Request",
    0x13: "Connection Parameter Update Response",
    0x14: "LE Credit Based Connection Request",
    0x15: "LE Credit Based Connection Response",
    0x16: "Flow Control Credit Indication",
    0x17: "Credit Based Connection Request",
    0x18: "Credit Based Connection Response",
    0x19: "Credit Based Reconfigure Request",
    0x1A: "Credit Based Reconfigure Response",
}

REJECT_REASONS: dict[int, str] = {
    0x0000: "Command not understood",
    0x0001: "Signaling MTU exceeded",
    0x0002: "Invalid CID in request",
}

#: Connection / Create Channel Response results (Core Vol 3 Part A §4.3).
CONNECTION_RESULTS: dict[int, str] = {
    0x0000: "Connection successful",
    0x0001: "Connection pending",
    0x0002: "Connection refused - PSM not supported",
    0x0003: "Connection refused - security block",
    0x0004: "Connection refused - no resources available",
    0x0005: "Connection refused - Controller ID not supported",
    0x0006: "Connection refused - invalid Source CID",
    0x0007: "Connection refused - Source CID already allocated",
}
CONNECTION_STATUS: dict[int, str] = {
    0x0000: "No further information available",
    0x0001: "Authentication pending",
    0x0002: "Authorization pending",
}
CONFIG_RESULTS: dict[int, str] = {
    0x0000: "Success",
    0x0001: "Failure - unacceptable parameters",
    0x0002: "Failure - rejected",
    0x0003: "Failure - unknown options",
    0x0004: "Pending",
    0x0005: "Failure - flow spec rejected",
}
#: LE / enhanced credit based connection results (Core Vol 3 Part A §4.23, §4.26).
LE_CONNECTION_RESULTS: dict[int, str] = {
    0x0000: "Connection successful",
    0x0002: "Connection refused - SPSM not supported",
    0x0004: "Connection refused - no resources available",
    0x0005: "Connection refused - insufficient authentication",
    0x0006: "Connection refused - insufficient authorization",
    0x0007: "Connection refused - encryption key size too short",
    0x0008: "Connection refused - insufficient encryption",
    0x0009: "Connection refused - invalid Source CID",
    0x000A: "Connection refused - Source CID already allocated",
    0x000B: "Connection refused - unacceptable parameters",
    0x000C: "Connection refused - invalid parameters",
}
INFO_TYPES: dict[int, str] = {
    0x0001: "Connectionless MTU",
    0x0002: "Extended features supported",
    0x0003: "Fixed channels supported",
}
CONFIG_OPTIONS: dict[int, str] = {
    0x01: "MTU",
    0x02: "Flush Timeout",
    0x03: "QoS",
    0x04: "Retransmission and Flow Control",
    0x05: "FCS",
    0x06: "Extended Flow Specification",
    0x07: "Extended Window Size",
}


def psm_name(psm: int | None) -> str | None:
    if psm is None:
        return None
    return PSM_NAMES.get(psm, f"dynamic 0x{psm:04X}" if psm >= 0x1001 else f"0x{psm:04X}")


def _name(table: dict[int, str], v: int | None) -> str | None:
    if v is None:
        return None
    return table.get(v, f"unknown 0x{v:04X}")


@dataclass(slots=True)
class L2capFrame:
    """An L2CAP basic frame: Length, Channel ID, information payload (Core Vol 3 Part A §3.1)."""

    length: int | None
    cid: int | None
    payload: bytes = b""
    anomaly: str | None = None

    @property
    def cid_name(self) -> str | None:
        if self.cid is None:
            return None
        return FIXED_CIDS.get(self.cid, "dynamic" if self.cid >= 0x40 else "reserved")


@dataclass(slots=True)
class L2capSignal:
    """One signalling command (Core Vol 3 Part A §4)."""

    code: int
    name: str
    ident: int
    length: int
    psm: int | None = None
    scid: int | None = None
    dcid: int | None = None
    result: int | None = None
    result_name: str | None = None
    status: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    data: bytes = b""
    anomaly: str | None = None

    @property
    def psm_name(self) -> str | None:
        return psm_name(self.psm)


# ------------------------------------------------------------------------------------------------
# basic header, and a channel's protocol guessed from its content


def basic_header(pdu: Buffer) -> tuple[int, int] | None:
    """(payload length, channel ID) of a B-frame's basic L2CAP header (Vol 3 Part A §3.1);
    None when shorter than the header."""
    if len(pdu) < 4:
        return None
    return pdu[0] | (pdu[1] << 8), pdu[2] | (pdu[3] << 8)


def guess_protocol(payloads: list[bytes]) -> tuple[int, str | None] | None:
    """(PSM, role) of a dynamic channel whose set-up is not in the capture, from its first PDU
    payloads: RTP v2 in large PDUs is A2DP media (AVDTP 1.3 §7.2), an SDP PDU header with a
    consistent length is SDP (Vol 3 Part B §4.2), an RFCOMM address + control field is RFCOMM
    (TS 07.10 §5.2). AVDTP signalling is not guessed: its 2-byte header matches too much."""
    if not payloads:
        return None
    p = payloads[0]
    big = [x for x in payloads if len(x) > 100]
    if big and all(x[0] & 0xC0 == 0x80 for x in big):
        return 0x19, "avdtp_media"
    if len(p) >= 5 and 1 <= p[0] <= 7 and (p[3] << 8 | p[4]) == len(p) - 5:
        return 0x01, None
    if len(p) >= 3 and p[0] & 0x01 and (p[1] & 0xEF) in (0x2F, 0x63, 0x0F, 0x43, 0xEF, 0x03):
        return 0x03, None
    return None


# ------------------------------------------------------------------------------------------------
# basic frame


def _raw_frame(data: Buffer, anomaly: str | None = None) -> L2capFrame:
    return L2capFrame(None, None, anomaly=anomaly)


@never_raise(_raw_frame)
def decode_l2cap(data: Buffer) -> L2capFrame:
    """Decode the basic header of a complete L2CAP PDU (ACL payload after reassembly)."""
    b = as_bytes(data)
    if len(b) < 4:
        return L2capFrame(None, None, b, anomaly=f"short L2CAP header: {len(b)} < 4 bytes")
    ln = b[0] | (b[1] << 8)
    cid = b[2] | (b[3] << 8)
    rec = L2capFrame(ln, cid, b[4 : 4 + ln])
    if len(b) - 4 < ln:
        rec.anomaly = f"L2CAP payload incomplete: {len(b) - 4} of {ln} bytes"
    elif len(b) - 4 > ln:
        rec.anomaly = f"{len(b) - 4 - ln} bytes after the L2CAP payload"
    if cid == 0:
        rec.anomaly = "null CID 0x0000"
    return rec


# ------------------------------------------------------------------------------------------------
# signalling commands

SigDecoder = Callable[[bytes, L2capSignal], None]


def _s_reject(p: bytes, r: L2capSignal) -> None:
    reason = u16(p, 0)
    r.result, r.result_name = reason, _name(REJECT_REASONS, reason)
    if reason == 0x0001:
        r.fields["actual_mtu"] = u16(p, 2)
    elif reason == 0x0002:
        r.scid, r.dcid = u16(p, 2), u16(p, 4)


def _s_conn_req(p: bytes, r: L2capSignal) -> None:
    r.psm, r.scid = u16(p, 0), u16(p, 2)


def _s_conn_rsp(p: bytes, r: L2capSignal) -> None:
    r.dcid, r.scid, r.result, r.status = u16(p, 0), u16(p, 2), u16(p, 4), u16(p, 6)
    r.result_name = _name(CONNECTION_RESULTS, r.result)
    r.fields["status_name"] = _name(CONNECTION_STATUS, r.status)


def _options(p: bytes, r: L2capSignal) -> None:
    opts: list[dict[str, Any]] = []
    i = 0
    while i + 2 <= len(p):
        t, ln = p[i], p[i + 1]
        val = p[i + 2 : i + 2 + ln]
        if len(val) < ln:
            r.anomaly = f"configuration option 0x{t:02X} truncated"
            break
        o: dict[str, Any] = {"type": t & 0x7F, "hint": bool(t & 0x80), "value": val}
        o["name"] = CONFIG_OPTIONS.get(t & 0x7F, f"unknown 0x{t & 0x7F:02X}")
        if t & 0x7F == 0x01 and ln >= 2:
            r.fields["mtu"] = o["mtu"] = u16(val, 0)
        elif t & 0x7F == 0x02 and ln >= 2:
            r.fields["flush_timeout"] = u16(val, 0)
        elif t & 0x7F == 0x04 and ln >= 1:
            r.fields["mode"] = val[0]
        opts.append(o)
        i += 2 + ln
    r.fields["options"] = opts


def _s_conf_req(p: bytes, r: L2capSignal) -> None:
    r.dcid = u16(p, 0)
    r.fields["flags"] = u16(p, 2)
    r.fields["continuation"] = bool((u16(p, 2) or 0) & 1)
    _options(p[4:], r)


def _s_conf_rsp(p: bytes, r: L2capSignal) -> None:
    r.scid = u16(p, 0)
    r.fields["flags"] = u16(p, 2)
    r.fields["continuation"] = bool((u16(p, 2) or 0) & 1)
    r.result = u16(p, 4)
    r.result_name = _name(CONFIG_RESULTS, r.result)
    _options(p[6:], r)


def _s_disconn(p: bytes, r: L2capSignal) -> None:
    r.dcid, r.scid = u16(p, 0), u16(p, 2)


def _s_info_req(p: bytes, r: L2capSignal) -> None:
    t = u16(p, 0)
    r.fields.update(info_type=t, info_type_name=_name(INFO_TYPES, t))


def _s_info_rsp(p: bytes, r: L2capSignal) -> None:
    _s_info_req(p, r)
    r.result = u16(p, 2)
    r.result_name = {0: "Success", 1: "Not supported"}.get(r.result or 0, "unknown")
    r.fields["info_data"] = p[4:]


def _s_create_req(p: bytes, r: L2capSignal) -> None:
    r.psm, r.scid = u16(p, 0), u16(p, 2)
    r.fields["controller_id"] = p[4]


def _s_move_req(p: bytes, r: L2capSignal) -> None:
    r.scid = u16(p, 0)
    r.fields["dest_controller_id"] = p[2]


def _s_move_rsp(p: bytes, r: L2capSignal) -> None:
    r.scid, r.result = u16(p, 0), u16(p, 2)


def _s_move_cfm_rsp(p: bytes, r: L2capSignal) -> None:
    r.scid = u16(p, 0)


def _s_param_update_req(p: bytes, r: L2capSignal) -> None:
    r.fields.update(
        interval_min=u16(p, 0), interval_max=u16(p, 2), latency=u16(p, 4), timeout=u16(p, 6)
    )


def _s_param_update_rsp(p: bytes, r: L2capSignal) -> None:
    r.result = u16(p, 0)
    r.result_name = {0: "Accepted", 1: "Rejected"}.get(r.result or 0, "unknown")


def _s_le_conn_req(p: bytes, r: L2capSignal) -> None:
    r.psm, r.scid = u16(p, 0), u16(p, 2)
    r.fields.update(mtu=u16(p, 4), mps=u16(p, 6), credits=u16(p, 8))


def _s_le_conn_rsp(p: bytes, r: L2capSignal) -> None:
    r.dcid = u16(p, 0)
    r.fields.update(mtu=u16(p, 2), mps=u16(p, 4), credits=u16(p, 6))
    r.result = u16(p, 8)
    r.result_name = _name(LE_CONNECTION_RESULTS, r.result)


def _s_credit(p: bytes, r: L2capSignal) -> None:
    r.scid = u16(p, 0)
    r.fields["credits"] = u16(p, 2)


def _cids(p: bytes, i: int) -> list[int]:
    return [u16(p, k) or 0 for k in range(i, len(p) - 1, 2)]


def _s_ecbfc_req(p: bytes, r: L2capSignal) -> None:
    r.psm = u16(p, 0)
    r.fields.update(mtu=u16(p, 2), mps=u16(p, 4), credits=u16(p, 6), scids=_cids(p, 8))
    if r.fields["scids"]:
        r.scid = r.fields["scids"][0]


def _s_ecbfc_rsp(p: bytes, r: L2capSignal) -> None:
    r.fields.update(mtu=u16(p, 0), mps=u16(p, 2), credits=u16(p, 4), dcids=_cids(p, 8))
    r.result = u16(p, 6)
    r.result_name = _name(LE_CONNECTION_RESULTS, r.result)
    if r.fields["dcids"]:
        r.dcid = r.fields["dcids"][0]


def _s_reconf_req(p: bytes, r: L2capSignal) -> None:
    r.fields.update(mtu=u16(p, 0), mps=u16(p, 2), dcids=_cids(p, 4))


def _s_reconf_rsp(p: bytes, r: L2capSignal) -> None:
    r.result = u16(p, 0)


#: code -> (minimum data length, decoder). Core v5.4 Vol 3 Part A §4.
SIGNALS: dict[int, tuple[int, SigDecoder | None]] = {
    0x01: (2, _s_reject),
    0x02: (4, _s_conn_req),
    0x03: (8, _s_conn_rsp),
    0x04: (4, _s_conf_req),
    0x05: (6, _s_conf_rsp),
    0x06: (4, _s_disconn),
    0x07: (4, _s_disconn),
    0x08: (0, None),
    0x09: (0, None),
    0x0A: (2, _s_info_req),
    0x0B: (4, _s_info_rsp),
    0x0C: (5, _s_create_req),
    0x0D: (8, _s_conn_rsp),
    0x0E: (3, _s_move_req),
    0x0F: (4, _s_move_rsp),
    0x10: (4, _s_move_rsp),
    0x11: (2, _s_move_cfm_rsp),
    0x12: (8, _s_param_update_req),
    0x13: (2, _s_param_update_rsp),
    0x14: (10, _s_le_conn_req),
    0x15: (10, _s_le_conn_rsp),
    0x16: (4, _s_credit),
    0x17: (8, _s_ecbfc_req),
    0x18: (8, _s_ecbfc_rsp),
    0x19: (4, _s_reconf_req),
    0x1A: (2, _s_reconf_rsp),
}

#: codes allowed on the LE signalling channel (Core Vol 3 Part A Table 4.1).
LE_SIGNAL_CODES = frozenset({0x01, 0x06, 0x07, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
                             0x1A})  # fmt: skip


def _raw_signals(data: Buffer, le: bool = False, anomaly: str | None = None) -> list[L2capSignal]:
    return [L2capSignal(0, "Unknown", 0, 0, anomaly=anomaly)]


@never_raise(_raw_signals)
def decode_signalling(data: Buffer, le: bool = False) -> list[L2capSignal]:
    """Decode all commands of a signalling C-frame payload (after the 4-byte basic header)."""
    b = as_bytes(data)
    out: list[L2capSignal] = []
    i = 0
    while i < len(b):
        if i + 4 > len(b):
            code = b[i]
            ident = b[i + 1] if i + 1 < len(b) else 0
            name = SIGNAL_CODES.get(code, f"Unknown 0x{code:02X}")
            short = f"short signalling command header: {len(b) - i} < 4 bytes"
            out.append(L2capSignal(code, name, ident, 0, data=b[i:], anomaly=short))
            break
        code, ident, ln = b[i], b[i + 1], b[i + 2] | (b[i + 3] << 8)
        d = b[i + 4 : i + 4 + ln]
        rec = L2capSignal(code, SIGNAL_CODES.get(code, f"Unknown 0x{code:02X}"), ident, ln, data=d)
        if len(d) < ln:
            rec.anomaly = f"command data truncated: {len(d)} of {ln} bytes"
        if ident == 0:
            rec.anomaly = "identifier 0x00 is not allowed"
        if le and code not in LE_SIGNAL_CODES:
            rec.anomaly = f"{rec.name} is not allowed on the LE signalling channel"
        row = SIGNALS.get(code)
        if row is None:
            rec.anomaly = rec.anomaly or f"unknown signalling code 0x{code:02X}"
        else:
            min_len, dec = row
            if len(d) < min_len:
                rec.anomaly = f"data too short for {rec.name}: {len(d)} < {min_len}"
            elif dec is not None:
                dec(d, rec)
        out.append(rec)
        i += 4 + ln
    return out
