"""Security Manager Protocol PDUs (Core v5.4 Vol 3 Part H §3).

:func:`decode_smp` reads one SMP PDU (fixed CID 0x0006 on LE, 0x0007 on BR/EDR). Pairing
Request/Response (§3.5.1/§3.5.2) give IO capability, OOB flag, AuthReq (bonding, MITM, SC,
keypress, CT2), maximum key size and the key distribution bits. :func:`pairing_method` picks the
pairing method from both sides' parameters as §2.3.5.1 (Tables 2.6-2.8) says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.base import Buffer, as_bytes, bd_addr, never_raise, u16

OPCODES: dict[int, str] = {
    0x01: "Pairing Request",
    0x02: "Pairing Response",
    0x03: "Pairing Confirm",
    0x04: "Pairing Random",
    0x05: "Pairing Failed",
    0x06: "Encryption Information",
    0x07: "Central Identification",
    0x08: "Identity Information",
    0x09: "Identity Address Information",
    0x0A: "Signing Information",
    0x0B: "Security Request",
    0x0C: "Pairing Public Key",
    0x0D: "Pairing DHKey Check",
    0x0E: "Pairing Keypress Notification",
}
#: PDU size including the opcode (§3.5-§3.6)
SIZES: dict[int, int] = {
    0x01: 7,
    0x02: 7,
    0x03: 17,
    0x04: 17,
    0x05: 2,
    0x06: 17,
    0x07: 11,
    0x08: 17,
    0x09: 8,
    0x0A: 17,
    0x0B: 2,
    0x0C: 65,
    0x0D: 17,
    0x0E: 2,
}
#: Pairing Failed reason codes (§3.5.5, Table 3.7)
REASONS: dict[int, str] = {
    0x01: "Passkey Entry Failed",
    0x02: "OOB Not Available",
    0x03: "Authentication Requirements",
    0x04: "Confirm Value Failed",
    0x05: "Pairing Not Supported",
    0x06: "Encryption Key Size",
    0x07: "Command Not Supported",
    0x08: "Unspecified Reason",
    0x09: "Repeated Attempts",
    0x0A: "Invalid Parameters",
    0x0B: "DHKey Check Failed",
    0x0C: "Numeric Comparison Failed",
    0x0D: "BR/EDR Pairing In Progress",
    0x0E: "Cross-transport Key Derivation/Generation Not Allowed",
    0x0F: "Key Rejected",
    0x10: "Busy",
}
IO_CAPS: dict[int, str] = {
    0x00: "DisplayOnly",
    0x01: "DisplayYesNo",
    0x02: "KeyboardOnly",
    0x03: "NoInputNoOutput",
    0x04: "KeyboardDisplay",
}
KEYPRESS: dict[int, str] = {
    0: "Passkey entry started",
    1: "Passkey digit entered",
    2: "Passkey digit erased",
    3: "Passkey cleared",
    4: "Passkey entry completed",
}
KEY_DIST_BITS = ("EncKey", "IdKey", "SignKey", "LinkKey")
#: SMP PDUs that start the SMP timer as procedure starts (§3.4)
REQUESTS = frozenset({0x01, 0x0B})


@dataclass(slots=True)
class SmpPdu:
    opcode: int | None
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    reason: int | None = None
    reason_name: str | None = None
    anomaly: str | None = None


def _raw(data: Buffer, anomaly: str | None = None) -> SmpPdu:
    b = as_bytes(data) if isinstance(data, bytes | bytearray | memoryview) else b""
    op = b[0] if b else None
    return SmpPdu(op, OPCODES.get(op, "unknown") if op is not None else "empty", anomaly=anomaly)


def key_dist_names(v: int) -> list[str]:
    return [n for bit, n in enumerate(KEY_DIST_BITS) if v & (1 << bit)]


def auth_req(v: int) -> dict[str, Any]:
    """AuthReq field (§3.5.1, Figure 3.3)."""
    return {
        "bonding": (v & 0x3) == 0x1,
        "mitm": bool(v & 0x04),
        "sc": bool(v & 0x08),
        "keypress": bool(v & 0x10),
        "ct2": bool(v & 0x20),
    }


@never_raise(_raw)
def decode_smp(data: Buffer) -> SmpPdu:
    """Decode one SMP PDU (the L2CAP information payload on CID 0x0006/0x0007)."""
    b = as_bytes(data)
    if not b:
        return SmpPdu(None, "empty", anomaly="empty SMP PDU")
    op = b[0]
    name = OPCODES.get(op)
    if name is None:
        return SmpPdu(op, f"unknown 0x{op:02X}", anomaly=f"unknown SMP opcode 0x{op:02X}")
    r = SmpPdu(op, name)
    need = SIZES[op]
    if len(b) < need:
        r.anomaly = f"{name} too short: {len(b)} < {need} bytes"
        return r
    if len(b) > need:
        r.anomaly = f"{len(b) - need} bytes after {name}"
    p = b[1:need]
    f = r.fields
    if op in (0x01, 0x02):
        f.update(
            io_capability=p[0],
            io_capability_name=IO_CAPS.get(p[0], f"reserved 0x{p[0]:02X}"),
            oob=p[1],
            auth_req=p[2],
            **auth_req(p[2]),
            max_key_size=p[3],
            initiator_key_dist=key_dist_names(p[4]),
            responder_key_dist=key_dist_names(p[5]),
        )
        if not 7 <= p[3] <= 16:
            r.anomaly = f"maximum encryption key size {p[3]} outside 7-16"
    elif op == 0x05:
        r.reason = p[0]
        r.reason_name = REASONS.get(p[0], f"reserved 0x{p[0]:02X}")
        f.update(reason=r.reason, reason_name=r.reason_name)
    elif op == 0x07:
        f.update(ediv=u16(p, 0), rand=p[2:10].hex())
    elif op == 0x09:
        f.update(address_type=p[0], address=bd_addr(p, 1))
    elif op == 0x0B:
        f.update(auth_req=p[0], **auth_req(p[0]))
    elif op == 0x0E:
        f.update(notification=p[0], notification_name=KEYPRESS.get(p[0], "reserved"))
    return r


# Table 2.8: (initiator IO cap, responder IO cap) → method; "NC/PK" = numeric comparison on
# Secure Connections, passkey entry on legacy pairing.
_JW, _PK, _NC = "just_works", "passkey", "NC/PK"
_IO_TABLE: dict[int, tuple[str, ...]] = {
    # responder:  DisplayOnly DisplayYesNo KeyboardOnly NoInputNoOutput KeyboardDisplay
    0: (_JW, _JW, _PK, _JW, _PK),
    1: (_JW, "NC/JW", _PK, _JW, _NC),
    2: (_PK, _PK, _PK, _JW, _PK),
    3: (_JW, _JW, _JW, _JW, _JW),
    4: (_PK, _NC, _PK, _JW, _NC),
}


def pairing_method(req: dict[str, Any], rsp: dict[str, Any]) -> str:
    """Pairing method from Pairing Request / Response fields (§2.3.5.1).

    Returns ``le_sc_*`` or ``le_legacy_*`` with ``just_works``, ``passkey``,
    ``numeric_comparison`` or ``oob``.
    """
    sc = bool(req.get("sc")) and bool(rsp.get("sc"))
    prefix = "le_sc_" if sc else "le_legacy_"
    oob_i, oob_r = bool(req.get("oob")), bool(rsp.get("oob"))
    if (sc and (oob_i or oob_r)) or (not sc and oob_i and oob_r):
        return prefix + "oob"
    if not req.get("mitm") and not rsp.get("mitm"):
        return prefix + "just_works"
    i, r = req.get("io_capability"), rsp.get("io_capability")
    if not isinstance(i, int) or not isinstance(r, int) or i > 4 or r > 4:
        return prefix + "just_works"  # reserved IO capabilities are treated as NoInputNoOutput
    m = _IO_TABLE[i][r]
    if m == "NC/PK":
        m = "numeric_comparison" if sc else "passkey"
    elif m == "NC/JW":
        m = "numeric_comparison" if sc else "just_works"
    return prefix + m


__all__ = ["IO_CAPS", "OPCODES", "REASONS", "SmpPdu", "decode_smp", "pairing_method"]
