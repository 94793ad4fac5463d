"""RFCOMM frames (RFCOMM 1.2 over ETSI TS 07.10 basic option).

Frame layout (TS 07.10 §5.2.1; RFCOMM 1.2 §4-§6): address (EA, C/R, DLCI = D bit + 5-bit server
channel, §5.2.1.2 and RFCOMM §5.4), control (frame type with the P/F bit 0x10, §5.2.1.3), length
(1 byte with EA=1, or 2 bytes for lengths ≥ 128, §5.2.1.5), the credit byte of a UIH frame with
P/F set on a credit-based DLC (RFCOMM §6.5.2), information, and the FCS (§5.2.1.6: over address +
control for UIH, address + control + length for the others; RFCOMM §5.1.1).

Multiplexer control commands travel in UIH frames on DLCI 0 (TS 07.10 §5.4.6.3; RFCOMM §4.3):
PN (§5.4.6.3.1 / RFCOMM §5.5.3), MSC (§5.4.6.3.7), RPN (§5.4.6.3.9), RLS (§5.4.6.3.10), Test,
FCon/FCoff and NSC. Their type and length fields use the same EA bit-chaining as the address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.base import Buffer, as_bytes, never_raise

#: control field with the P/F bit cleared (TS 07.10 §5.2.1.3, Table 2)
FRAME_TYPES: dict[int, str] = {0x2F: "SABM", 0x63: "UA", 0x0F: "DM", 0x43: "DISC", 0xEF: "UIH"}
#: multiplexer command types (the 6-bit type value, TS 07.10 §5.4.6.3)
MCC_TYPES: dict[int, str] = {
    0x20: "PN",
    0x08: "Test",
    0x28: "FCon",
    0x18: "FCoff",
    0x38: "MSC",
    0x04: "NSC",
    0x24: "RPN",
    0x14: "RLS",
    0x10: "PSC",
    0x30: "CLD",
    0x34: "SNC",
}


def _crc_table() -> list[int]:
    """CRC-8 with the reversed generator x^8 + x^2 + x + 1 (TS 07.10 §5.2.1.6, Annex B)."""
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xE0 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def fcs(data: bytes) -> int:
    """The FCS over ``data`` (ones' complement of the CRC, initial value 0xFF)."""
    crc = 0xFF
    for b in data:
        crc = CRC_TABLE[crc ^ b]
    return 0xFF - crc


@dataclass
class Mcc:
    """One multiplexer control command or response (TS 07.10 §5.4.6.1)."""

    type: int  # the 6-bit type value (0x20 PN, 0x38 MSC, ...)
    name: str
    cr: int  # 1 command, 0 response
    value: bytes = b""
    fields: dict[str, Any] = field(default_factory=dict)
    anomaly: str | None = None

    @property
    def is_command(self) -> bool:
        return self.cr == 1


@dataclass
class RfcommFrame:
    """One RFCOMM frame."""

    raw: bytes
    dlci: int | None = None
    cr: int | None = None
    ea: int | None = None
    control: int | None = None
    frame_type: int | None = None  # control & ~P/F
    frame_name: str | None = None
    pf: int | None = None
    length: int | None = None
    credits: int | None = None
    payload: bytes = b""
    fcs: int | None = None
    fcs_ok: bool | None = None
    mcc: list[Mcc] = field(default_factory=list)
    anomaly: str | None = None

    @property
    def channel(self) -> int | None:
        """Server channel (DLCI >> 1, RFCOMM §5.4)."""
        return None if self.dlci is None else self.dlci >> 1

    @property
    def direction_bit(self) -> int | None:
        """The D bit: 0 for a server on the non-initiating device, 1 on the initiator (§5.4)."""
        return None if self.dlci is None else self.dlci & 1


def _raw(data: Buffer, credit_based: bool = True, *, anomaly: str | None = None) -> RfcommFrame:
    return RfcommFrame(raw=as_bytes(data), anomaly=anomaly)


def _ea_value(b: bytes, i: int, max_bytes: int = 4) -> tuple[int | None, int]:
    """EA-chained value starting at ``i`` (bit 0 = EA, 7 value bits per octet, LSB first)."""
    v = 0
    shift = 0
    for k in range(max_bytes):
        if i + k >= len(b):
            return None, i + k
        o = b[i + k]
        v |= (o >> 1) << shift
        shift += 7
        if o & 1:
            return v, i + k + 1
    return v, i + max_bytes


@never_raise(_raw)
def decode_rfcomm(data: Buffer, credit_based: bool = True) -> RfcommFrame:
    """Decode one RFCOMM frame (the L2CAP payload of a PSM 0x0003 channel).

    ``credit_based``: whether the DLC uses credit based flow control (RFCOMM §6.5); when it does,
    a UIH frame with P/F set on a DLCI other than 0 carries a credit byte after the length.
    """
    b = as_bytes(data)
    f = RfcommFrame(raw=b)
    if len(b) < 3:
        f.anomaly = f"frame too short ({len(b)} bytes)"
        return f
    addr, ctl = b[0], b[1]
    f.ea, f.cr, f.dlci = addr & 1, (addr >> 1) & 1, addr >> 2
    f.control = ctl
    f.pf = (ctl >> 4) & 1
    f.frame_type = ctl & 0xEF
    f.frame_name = FRAME_TYPES.get(f.frame_type, f"unknown 0x{f.frame_type:02X}")
    problems: list[str] = []
    if not f.ea:
        problems.append("address EA bit clear (extended address not used by RFCOMM)")
    if f.frame_type not in FRAME_TYPES:
        problems.append(f"unknown frame type 0x{f.frame_type:02X}")
    ln = b[2] >> 1
    pos = 3
    if not b[2] & 1:
        if len(b) < 4:
            f.anomaly = "2-byte length field cut short"
            return f
        ln |= b[3] << 7
        pos = 4
    f.length = ln
    is_uih = f.frame_type == 0xEF
    if is_uih and f.pf and credit_based and f.dlci != 0:
        if pos < len(b):
            f.credits = b[pos]
            pos += 1
        else:
            problems.append("credit byte missing")
    end = pos + ln
    if end + 1 > len(b):
        problems.append(f"length {ln} exceeds frame ({len(b) - pos - 1} bytes of information)")
        f.payload = b[pos : max(pos, len(b) - 1)]
    else:
        f.payload = b[pos:end]
        f.fcs = b[end]
        covered = b[:2] if is_uih else b[: 4 if not b[2] & 1 else 3]
        f.fcs_ok = fcs(covered) == f.fcs
        if not f.fcs_ok:
            problems.append(f"bad FCS 0x{f.fcs:02X} (expected 0x{fcs(covered):02X})")
        if end + 1 < len(b):
            problems.append(f"{len(b) - end - 1} bytes after the FCS")
    if not is_uih and ln:
        problems.append(f"{f.frame_name} frame with {ln} bytes of information")
    if is_uih and f.dlci == 0 and f.payload:
        f.mcc = decode_mcc(f.payload)
        problems += [f"{m.name}: {m.anomaly}" for m in f.mcc if m.anomaly]
    if problems:
        f.anomaly = "; ".join(problems)
    return f


def decode_mcc(data: bytes) -> list[Mcc]:
    """The multiplexer control messages in the information field of a UIH frame on DLCI 0."""
    out: list[Mcc] = []
    i = 0
    while i < len(data):
        t = data[i]
        mtype = t >> 2
        cr = (t >> 1) & 1
        name = MCC_TYPES.get(mtype, f"unknown 0x{mtype:02X}")
        ln, j = _ea_value(data, i + 1, 2)
        if ln is None:
            out.append(Mcc(mtype, name, cr, anomaly="length field cut short"))
            break
        value = data[j : j + ln]
        m = Mcc(mtype, name, cr, value)
        if j + ln > len(data):
            m.anomaly = f"length {ln} exceeds the {len(data) - j} bytes left"
        _mcc_fields(m)
        out.append(m)
        i = j + ln
    return out


def _mcc_fields(m: Mcc) -> None:
    v = m.value
    f = m.fields
    need = {0x20: 8, 0x38: 2, 0x14: 2, 0x24: 1, 0x04: 1}.get(m.type, 0)
    if len(v) < need:
        m.anomaly = (m.anomaly + "; " if m.anomaly else "") + f"value {len(v)} bytes < {need}"
        return
    if m.type == 0x20:  # PN: RFCOMM §5.5.3, Table 5.3
        f["dlci"] = v[0] & 0x3F
        f["frame_type"] = v[1] & 0x0F  # I bits: 0 = UIH
        f["convergence_layer"] = v[1] >> 4  # CL: 0xF request / 0xE accept credit flow
        f["priority"] = v[2] & 0x3F
        f["ack_timer"] = v[3]
        f["max_frame_size"] = v[4] | (v[5] << 8)
        f["max_retransmissions"] = v[6]
        f["credits"] = v[7] & 0x07  # initial credits (K) with credit based flow control
        f["credit_flow"] = f["convergence_layer"] in (0x0F, 0x0E)
    elif m.type == 0x38:  # MSC: TS 07.10 §5.4.6.3.7
        f["dlci"] = v[0] >> 2
        s = v[1]
        f["fc"] = (s >> 1) & 1
        f["rtc"] = (s >> 2) & 1
        f["rtr"] = (s >> 3) & 1
        f["ic"] = (s >> 6) & 1
        f["dv"] = (s >> 7) & 1
        if len(v) >= 3:
            f["break"] = v[2]
    elif m.type == 0x24:  # RPN: §5.4.6.3.9 (1 byte = request, 8 bytes = values)
        f["dlci"] = v[0] >> 2
        if len(v) >= 8:
            f["baud_rate"] = v[1]
            f["data_bits"] = 5 + (v[2] & 3)
            f["stop_bits"] = (v[2] >> 2) & 1
            f["parity"] = (v[2] >> 3) & 1
            f["parity_type"] = (v[2] >> 4) & 3
            f["flow_control"] = v[3] & 0x3F
            f["xon"] = v[4]
            f["xoff"] = v[5]
            f["mask"] = v[6] | (v[7] << 8)
    elif m.type == 0x14:  # RLS: §5.4.6.3.10
        f["dlci"] = v[0] >> 2
        f["line_status"] = v[1] & 0x0F
    elif m.type == 0x04:  # NSC: §5.4.6.3.8 — the command type not supported
        f["not_supported_type"] = v[0] >> 2
        f["not_supported_cr"] = (v[0] >> 1) & 1
        f["not_supported_name"] = MCC_TYPES.get(v[0] >> 2, f"unknown 0x{v[0] >> 2:02X}")
    elif m.type == 0x08:  # Test: arbitrary echo pattern
        f["pattern_length"] = len(v)


def build_frame(
    dlci: int,
    frame_type: int,
    *,
    cr: int = 1,
    pf: int = 0,
    payload: bytes = b"",
    credits: int | None = None,
) -> bytes:
    """Encode one RFCOMM frame (for tests and scenario generation)."""
    addr = (dlci << 2) | (cr << 1) | 1
    ctl = frame_type | (pf << 4)
    ln = len(payload)
    lb = bytes([(ln << 1) | 1]) if ln < 128 else bytes([(ln & 0x7F) << 1, ln >> 7])
    head = bytes([addr, ctl]) + lb
    cov = head[:2] if frame_type == 0xEF else head
    body = (bytes([credits]) if credits is not None else b"") + payload
    return head + body + bytes([fcs(cov)])


__all__ = [
    "FRAME_TYPES",
    "MCC_TYPES",
    "Mcc",
    "RfcommFrame",
    "build_frame",
    "decode_mcc",
    "decode_rfcomm",
    "fcs",
]
