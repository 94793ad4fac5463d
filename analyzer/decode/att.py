"""Attribute Protocol PDUs (Core v5.4 Vol 3 Part F §3.4) and what GATT discovery returns.

:func:`decode_att` reads one ATT PDU (fixed CID 0x0004 on LE, PSM 0x001F on BR/EDR): opcode
(method bits 0-5, command flag bit 6, authentication signature flag bit 7, §3.3.1), the handles
and values of each method, the Error Response's request opcode / handle / error code (§3.4.1.1,
Table 3.4). Discovery responses (Read By Group Type, Find By Type Value, Read By Type, Find
Information) are split into their (handle, ..., value) tuples; GATT meaning (primary services
0x2800, characteristic declarations 0x2803, Vol 3 Part G §3.1-§3.3) is read by
:func:`characteristic_decl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.base import Buffer, as_bytes, never_raise, u16
from analyzer.decode.le_adv import uuid_label

OPCODES: dict[int, str] = {
    0x01: "Error Response",
    0x02: "Exchange MTU Request",
    0x03: "Exchange MTU Response",
    0x04: "Find Information Request",
    0x05: "Find Information Response",
    0x06: "Find By Type Value Request",
    0x07: "Find By Type Value Response",
    0x08: "Read By Type Request",
    0x09: "Read By Type Response",
    0x0A: "Read Request",
    0x0B: "Read Response",
    0x0C: "Read Blob Request",
    0x0D: "Read Blob Response",
    0x0E: "Read Multiple Request",
    0x0F: "Read Multiple Response",
    0x10: "Read By Group Type Request",
    0x11: "Read By Group Type Response",
    0x12: "Write Request",
    0x13: "Write Response",
    0x16: "Prepare Write Request",
    0x17: "Prepare Write Response",
    0x18: "Execute Write Request",
    0x19: "Execute Write Response",
    0x1B: "Handle Value Notification",
    0x1D: "Handle Value Indication",
    0x1E: "Handle Value Confirmation",
    0x20: "Read Multiple Variable Request",
    0x21: "Read Multiple Variable Response",
    0x23: "Multiple Handle Value Notification",
    0x52: "Write Command",
    0xD2: "Signed Write Command",
}
#: request (or indication) opcode → its response (or confirmation) opcode
RESPONSE_OF: dict[int, int] = {
    0x02: 0x03,
    0x04: 0x05,
    0x06: 0x07,
    0x08: 0x09,
    0x0A: 0x0B,
    0x0C: 0x0D,
    0x0E: 0x0F,
    0x10: 0x11,
    0x12: 0x13,
    0x16: 0x17,
    0x18: 0x19,
    0x20: 0x21,
    0x1D: 0x1E,
}
RESPONSES = frozenset(RESPONSE_OF.values()) | {0x01}
#: Error codes (§3.4.1.1 Table 3.4; 0xE0-0xFF Core Specification Supplement Part B §1.2)
ERRORS: dict[int, str] = {
    0x01: "Invalid Handle",
    0x02: "Read Not Permitted",
    0x03: "Write Not Permitted",
    0x04: "Invalid PDU",
    0x05: "Insufficient Authentication",
    0x06: "Request Not Supported",
    0x07: "Invalid Offset",
    0x08: "Insufficient Authorization",
    0x09: "Prepare Queue Full",
    0x0A: "Attribute Not Found",
    0x0B: "Attribute Not Long",
    0x0C: "Encryption Key Size Too Short",
    0x0D: "Invalid Attribute Value Length",
    0x0E: "Unlikely Error",
    0x0F: "Insufficient Encryption",
    0x10: "Unsupported Group Type",
    0x11: "Insufficient Resources",
    0x12: "Database Out Of Sync",
    0x13: "Value Not Allowed",
    0xFC: "Write Request Rejected",
    0xFD: "Client Characteristic Configuration Descriptor Improperly Configured",
    0xFE: "Procedure Already in Progress",
    0xFF: "Out of Range",
}
CHAR_PROPERTIES = (
    "broadcast",
    "read",
    "write_without_response",
    "write",
    "notify",
    "indicate",
    "authenticated_signed_writes",
    "extended_properties",
)


def error_name(code: int | None) -> str | None:
    if code is None:
        return None
    if code in ERRORS:
        return ERRORS[code]
    if 0x80 <= code <= 0x9F:
        return f"Application Error 0x{code:02X}"
    return f"Reserved 0x{code:02X}"


def method_kind(op: int) -> str:
    """request / response / command / notification / indication / confirmation (§3.3)."""
    if op in RESPONSES:
        return "confirmation" if op == 0x1E else "response"
    if op in (0x1B, 0x23):
        return "notification"
    if op == 0x1D:
        return "indication"
    if op & 0x40:
        return "command"
    return "request"


@dataclass(slots=True)
class AttPdu:
    opcode: int | None
    name: str
    kind: str = "unknown"
    handle: int | None = None
    start_handle: int | None = None
    end_handle: int | None = None
    attr_type: str | None = None  # UUID of Read By Type / Read By Group Type / Find By Type Value
    value: bytes = b""
    mtu: int | None = None
    offset: int | None = None
    request_opcode: int | None = None  # Error Response
    error: int | None = None
    error_name: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)  # discovery response tuples
    anomaly: str | None = None


def _raw(data: Buffer, anomaly: str | None = None) -> AttPdu:
    b = as_bytes(data) if isinstance(data, bytes | bytearray | memoryview) else b""
    op = b[0] if b else None
    return AttPdu(op, OPCODES.get(op, "unknown") if op is not None else "empty", anomaly=anomaly)


#: minimum size including the opcode
_MIN: dict[int, int] = {
    0x01: 5,
    0x02: 3,
    0x03: 3,
    0x04: 5,
    0x05: 2,
    0x06: 7,
    0x08: 7,
    0x09: 2,
    0x0A: 3,
    0x0C: 5,
    0x0E: 5,
    0x10: 7,
    0x11: 2,
    0x12: 3,
    0x16: 5,
    0x17: 5,
    0x18: 2,
    0x1B: 3,
    0x1D: 3,
    0x20: 5,
    0x52: 3,
    0xD2: 15,
}


@never_raise(_raw)
def decode_att(data: Buffer) -> AttPdu:
    """Decode one ATT PDU (the L2CAP information payload)."""
    b = as_bytes(data)
    if not b:
        return AttPdu(None, "empty", anomaly="empty ATT PDU")
    op = b[0]
    name = OPCODES.get(op)
    if name is None:
        return AttPdu(op, f"unknown 0x{op:02X}", anomaly=f"unknown ATT opcode 0x{op:02X}")
    r = AttPdu(op, name, method_kind(op))
    need = _MIN.get(op, 1)
    if len(b) < need:
        r.anomaly = f"{name} too short: {len(b)} < {need} bytes"
        return r
    p = b[1:]
    if op == 0x01:
        r.request_opcode, r.handle, r.error = p[0], u16(p, 1), p[3]
        r.error_name = error_name(p[3])
    elif op in (0x02, 0x03):
        r.mtu = u16(p, 0)
    elif op in (0x04, 0x06, 0x08, 0x10):
        r.start_handle, r.end_handle = u16(p, 0), u16(p, 2)
        if op == 0x06:
            r.attr_type = uuid_label(p[4:6])
            r.value = p[6:]
        elif op in (0x08, 0x10):
            t = p[4:]
            if len(t) not in (2, 16):
                r.anomaly = f"{name}: attribute type of {len(t)} bytes"
            r.attr_type = uuid_label(t)
    elif op == 0x05:
        _find_info(p, r)
    elif op == 0x07:
        for i in range(0, len(p) - 3, 4):
            r.items.append({"handle": u16(p, i), "end_handle": u16(p, i + 2)})
        if len(p) % 4:
            r.anomaly = f"{name}: {len(p) % 4} stray bytes"
    elif op in (0x09, 0x11):
        _list_rsp(p, r, group=op == 0x11)
    elif op in (0x0A, 0x12, 0x1B, 0x1D, 0x52, 0xD2):
        r.handle = u16(p, 0)
        r.value = p[2:-12] if op == 0xD2 else p[2:]
    elif op == 0x0C:
        r.handle, r.offset = u16(p, 0), u16(p, 2)
    elif op in (0x16, 0x17):
        r.handle, r.offset = u16(p, 0), u16(p, 2)
        r.value = p[4:]
    elif op in (0x0B, 0x0D, 0x0F, 0x21):
        r.value = p
    elif op in (0x0E, 0x20):
        r.items = [{"handle": u16(p, i)} for i in range(0, len(p) - 1, 2)]
    elif op == 0x18:
        r.value = p[:1]  # flags: 0x00 cancel, 0x01 write all prepared values
    elif op == 0x23:
        i = 0
        while i + 4 <= len(p):
            ln = u16(p, i + 2) or 0
            r.items.append({"handle": u16(p, i), "value": p[i + 4 : i + 4 + ln].hex()})
            i += 4 + ln
    return r


def _find_info(p: bytes, r: AttPdu) -> None:
    fmt = p[0]
    w = 2 if fmt == 1 else 16 if fmt == 2 else 0
    if not w:
        r.anomaly = f"Find Information Response: format 0x{fmt:02X}"
        return
    body = p[1:]
    for i in range(0, len(body) - (w + 1), w + 2):
        r.items.append({"handle": u16(body, i), "uuid": uuid_label(body[i + 2 : i + 2 + w])})
    if len(body) % (w + 2):
        r.anomaly = "Find Information Response: stray bytes"


def _list_rsp(p: bytes, r: AttPdu, group: bool) -> None:
    ln = p[0]
    head = 4 if group else 2
    if ln < head:
        r.anomaly = f"{r.name}: element length {ln}"
        return
    body = p[1:]
    for i in range(0, len(body) - ln + 1, ln):
        e = body[i : i + ln]
        item: dict[str, Any] = {"handle": u16(e, 0)}
        if group:
            item["end_handle"] = u16(e, 2)
        item["value"] = e[head:]
        r.items.append(item)
    if len(body) % ln:
        r.anomaly = f"{r.name}: {len(body) % ln} stray bytes"


def characteristic_decl(value: bytes) -> dict[str, Any] | None:
    """Characteristic declaration value (Vol 3 Part G §3.3.1): properties, value handle, UUID."""
    if len(value) not in (5, 19):
        return None
    props = value[0]
    return {
        "properties": [n for bit, n in enumerate(CHAR_PROPERTIES) if props & (1 << bit)],
        "value_handle": u16(value, 1),
        "uuid": uuid_label(value[3:]),
    }


__all__ = [
    "ERRORS",
    "OPCODES",
    "RESPONSE_OF",
    "AttPdu",
    "characteristic_decl",
    "decode_att",
    "error_name",
    "method_kind",
]
