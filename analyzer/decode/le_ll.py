"""LE link-layer packets as sniffers capture them (Core v5.4 Vol 6 Part B §2).

Input is the LL packet from the 4-byte access address on (capture.py's convention): access
address, 2-byte PDU header, payload, then (usually) the 3-byte CRC, which is ignored — the
header's length field says where the payload ends.

* Advertising physical channel PDUs (§2.3): header PDU type (bits 0-3), ChSel (5), TxAdd (6),
  RxAdd (7), length (second byte). ADV_IND / ADV_NONCONN_IND / ADV_SCAN_IND / SCAN_RSP carry
  AdvA + AdvData, ADV_DIRECT_IND AdvA + TargetA, SCAN_REQ ScanA + AdvA, CONNECT_IND InitA + AdvA
  + LLData (§2.3.3.1), ADV_EXT_IND and the AUX_* PDUs the Common Extended Advertising Payload
  (§2.3.4).
* Data physical channel PDUs (§2.4): header LLID (bits 0-1: 1 L2CAP continuation or empty,
  2 L2CAP start, 3 LL control), NESN (2), SN (3), MD (4), CP (5), length; LL control PDU opcodes
  (§2.4.2).

:func:`adv_columns` gathers the advertising header fields of many frames at once (numpy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analyzer.decode.base import Buffer, as_bytes, bd_addr, never_raise, u16, u24, u32

ADV_ACCESS_ADDRESS = 0x8E89BED6

ADV_PDU_TYPES: dict[int, str] = {
    0: "ADV_IND",
    1: "ADV_DIRECT_IND",
    2: "ADV_NONCONN_IND",
    3: "SCAN_REQ",
    4: "SCAN_RSP",
    5: "CONNECT_IND",
    6: "ADV_SCAN_IND",
    7: "ADV_EXT_IND",
    8: "AUX_CONNECT_RSP",
}
#: PDU types whose payload starts with the advertiser's AdvA followed by AdvData
ADVA_DATA_TYPES = frozenset({0, 2, 4, 6})

LL_CONTROL_OPCODES: dict[int, str] = {
    0x00: "LL_CONNECTION_UPDATE_IND",
    0x01: "LL_CHANNEL_MAP_IND",
    0x02: "LL_TERMINATE_IND",
    0x03: "LL_ENC_REQ",
    0x04: "LL_ENC_RSP",
    0x05: "LL_START_ENC_REQ",
    0x06: "LL_START_ENC_RSP",
    0x07: "LL_UNKNOWN_RSP",
    0x08: "LL_FEATURE_REQ",
    0x09: "LL_FEATURE_RSP",
    0x0A: "LL_PAUSE_ENC_REQ",
    0x0B: "LL_PAUSE_ENC_RSP",
    0x0C: "LL_VERSION_IND",
    0x0D: "LL_REJECT_IND",
    0x0E: "LL_PERIPHERAL_FEATURE_REQ",
    0x0F: "LL_CONNECTION_PARAM_REQ",
    0x10: "LL_CONNECTION_PARAM_RSP",
    0x11: "LL_REJECT_EXT_IND",
    0x12: "LL_PING_REQ",
    0x13: "LL_PING_RSP",
    0x14: "LL_LENGTH_REQ",
    0x15: "LL_LENGTH_RSP",
    0x16: "LL_PHY_REQ",
    0x17: "LL_PHY_RSP",
    0x18: "LL_PHY_UPDATE_IND",
    0x19: "LL_MIN_USED_CHANNELS_IND",
    0x1A: "LL_CTE_REQ",
    0x1B: "LL_CTE_RSP",
    0x1C: "LL_PERIODIC_SYNC_IND",
    0x1D: "LL_CLOCK_ACCURACY_REQ",
    0x1E: "LL_CLOCK_ACCURACY_RSP",
    0x1F: "LL_CIS_REQ",
    0x20: "LL_CIS_RSP",
    0x21: "LL_CIS_IND",
    0x22: "LL_CIS_TERMINATE_IND",
    0x23: "LL_POWER_CONTROL_REQ",
    0x24: "LL_POWER_CONTROL_RSP",
    0x25: "LL_POWER_CHANGE_IND",
    0x26: "LL_SUBRATE_REQ",
    0x27: "LL_SUBRATE_IND",
    0x28: "LL_CHANNEL_REPORTING_IND",
    0x29: "LL_CHANNEL_STATUS_IND",
}
LLID_NAMES = {0: "reserved", 1: "L2CAP continuation", 2: "L2CAP start", 3: "LL control"}
#: extended header flag bits → (field name, size) in transmission order (§2.3.4.1)
_EXT_FIELDS = (
    (0, "adva", 6),
    (1, "targeta", 6),
    (2, "cte_info", 1),
    (3, "adi", 2),
    (4, "aux_ptr", 3),
    (5, "sync_info", 18),
    (6, "tx_power", 1),
)


@dataclass(slots=True)
class LlAdvPdu:
    """One advertising physical channel PDU."""

    access_address: int | None
    pdu_type: int | None
    name: str
    ch_sel: int = 0
    tx_add: int = 0  # 0 public, 1 random AdvA / ScanA / InitA
    rx_add: int = 0
    length: int = 0
    adv_a: str | None = None
    target_a: str | None = None  # ADV_DIRECT_IND / extended TargetA
    scan_a: str | None = None
    init_a: str | None = None
    data: bytes = b""  # AdvData / ScanRspData
    connect: dict[str, Any] | None = None  # CONNECT_IND LLData
    ext: dict[str, Any] = field(default_factory=dict)  # extended header fields
    anomaly: str | None = None


@dataclass(slots=True)
class LlDataPdu:
    """One data physical channel PDU (header fields and payload)."""

    access_address: int | None
    llid: int | None
    nesn: int = 0
    sn: int = 0
    md: int = 0
    length: int = 0
    payload: bytes = b""
    control_opcode: int | None = None
    control_name: str | None = None
    anomaly: str | None = None


def _raw_adv(data: Buffer, anomaly: str | None = None) -> LlAdvPdu:
    return LlAdvPdu(None, None, "unknown", anomaly=anomaly)


def _raw_data(data: Buffer, anomaly: str | None = None) -> LlDataPdu:
    return LlDataPdu(None, None, anomaly=anomaly)


def _ext_header(p: bytes, r: LlAdvPdu) -> bytes:
    """Common Extended Advertising Payload (§2.3.4): fields into ``r.ext``; returns AdvData."""
    if not p:
        return b""
    hlen = p[0] & 0x3F
    r.ext["adv_mode"] = p[0] >> 6
    if 1 + hlen > len(p):  # read what is there (a bad-CRC packet), as Wireshark does
        r.anomaly = f"extended header length {hlen} runs past the payload"
    hdr = p[1 : 1 + hlen]
    if hlen and hdr:
        flags = hdr[0]
        i = 1
        for bit, name, size in _EXT_FIELDS:
            if not flags & (1 << bit):
                continue
            if i + size > len(hdr):
                r.anomaly = f"extended header too short for {name}"
                break
            v = hdr[i : i + size]
            if name == "adva":
                r.adv_a = bd_addr(v)
            elif name == "targeta":
                r.target_a = bd_addr(v)
            elif name == "adi":
                adi = v[0] | (v[1] << 8)
                r.ext["did"] = adi & 0x0FFF
                r.ext["sid"] = adi >> 12
            elif name == "aux_ptr":
                ap = int.from_bytes(v, "little")
                r.ext["aux_channel"] = ap & 0x3F
                r.ext["aux_offset_units_us"] = 300 if ap & 0x80 else 30
                r.ext["aux_offset"] = (ap >> 11) & 0x1FFF
                r.ext["aux_phy"] = (ap >> 21) & 0x7
            elif name == "tx_power":
                r.ext["tx_power"] = v[0] - 256 if v[0] > 127 else v[0]
            else:
                r.ext[name] = v.hex()
            i += size
    return p[1 + hlen :]


@never_raise(_raw_adv)
def decode_adv_pdu(data: Buffer) -> LlAdvPdu:
    """Decode an advertising channel PDU starting at the access address (Vol 6 Part B §2.3)."""
    b = as_bytes(data)
    if len(b) < 6:
        return LlAdvPdu(u32(b, 0), None, "unknown", anomaly=f"short LL packet: {len(b)} < 6 bytes")
    h0, ln = b[4], b[5]
    t = h0 & 0x0F
    r = LlAdvPdu(
        u32(b, 0),
        t,
        ADV_PDU_TYPES.get(t, f"reserved 0x{t:X}"),
        ch_sel=(h0 >> 5) & 1,
        tx_add=(h0 >> 6) & 1,
        rx_add=(h0 >> 7) & 1,
        length=ln,
    )
    p = b[6 : 6 + ln]
    if len(p) < ln:
        r.anomaly = f"payload truncated: {len(p)} of {ln} bytes"
    if t in ADVA_DATA_TYPES:
        r.adv_a = bd_addr(p, 0)
        r.data = p[6:]
        if len(p) < 6:
            r.anomaly = r.anomaly or f"{r.name} payload shorter than AdvA"
    elif t == 1:
        r.adv_a, r.target_a = bd_addr(p, 0), bd_addr(p, 6)
    elif t == 3:
        r.scan_a, r.adv_a = bd_addr(p, 0), bd_addr(p, 6)
    elif t == 5:
        r.init_a, r.adv_a = bd_addr(p, 0), bd_addr(p, 6)
        ll = p[12:34]
        if len(ll) >= 22:
            r.connect = {
                "access_address": u32(ll, 0),
                "crc_init": u24(ll, 4),
                "win_size": ll[7],
                "win_offset": u16(ll, 8),
                "interval": u16(ll, 10),
                "interval_ms": (u16(ll, 10) or 0) * 1.25,
                "latency": u16(ll, 12),
                "timeout": u16(ll, 14),
                "timeout_ms": (u16(ll, 14) or 0) * 10,
                "channel_map": ll[16:21].hex(),
                "hop": ll[21] & 0x1F,
                "sca": ll[21] >> 5,
            }
        else:
            r.anomaly = r.anomaly or "CONNECT_IND LLData truncated"
    elif t in (7, 8):
        r.data = _ext_header(p, r)
    return r


@never_raise(_raw_data)
def decode_data_pdu(data: Buffer) -> LlDataPdu:
    """Decode a data channel PDU starting at the access address (Vol 6 Part B §2.4)."""
    b = as_bytes(data)
    if len(b) < 6:
        return LlDataPdu(u32(b, 0), None, anomaly=f"short LL packet: {len(b)} < 6 bytes")
    h0, ln = b[4], b[5]
    r = LlDataPdu(
        u32(b, 0),
        h0 & 0x3,
        nesn=(h0 >> 2) & 1,
        sn=(h0 >> 3) & 1,
        md=(h0 >> 4) & 1,
        length=ln,
    )
    r.payload = b[6 : 6 + ln]
    if len(r.payload) < ln:
        r.anomaly = f"payload truncated: {len(r.payload)} of {ln} bytes"
    if r.llid == 3 and r.payload:
        r.control_opcode = r.payload[0]
        r.control_name = LL_CONTROL_OPCODES.get(r.payload[0], f"unknown 0x{r.payload[0]:02X}")
    elif r.llid == 0:
        r.anomaly = r.anomaly or "reserved LLID 0"
    return r


def adv_columns(data: np.ndarray, offset: np.ndarray, length: np.ndarray) -> dict[str, np.ndarray]:
    """Header fields of many advertising PDUs at once.

    Returns int arrays ``pdu_type``, ``tx_add``, ``pdu_len`` (-1 when the frame is shorter than
    access address + header), ``adva`` (the AdvA as a 48-bit integer, -1 when the PDU type has
    none at a fixed place or the frame is too short; extended PDUs are left to
    :func:`decode_adv_pdu`) and ``data_off`` (offset of AdvData from the frame start, or -1).
    """
    off = np.asarray(offset, dtype=np.int64)
    ln = np.asarray(length, dtype=np.int64)
    n = data.shape[0]
    ok = ln >= 6
    if n == 0:
        z = np.full(off.shape[0], -1, np.int64)
        return {"pdu_type": z, "tx_add": z, "pdu_len": z, "adva": z, "data_off": z}
    i4 = np.clip(np.where(ok, off + 4, 0), 0, n - 1)
    i5 = np.clip(np.where(ok, off + 5, 0), 0, n - 1)
    h0 = data[i4].astype(np.int64)
    plen = data[i5].astype(np.int64)
    t = np.where(ok, h0 & 0x0F, -1)
    tx = np.where(ok, (h0 >> 6) & 1, -1)
    # AdvA position: after the header (ADV_IND/DIRECT/NONCONN/SCAN_RSP/SCAN_IND), after ScanA or
    # InitA (SCAN_REQ, CONNECT_IND)
    pos = np.where(np.isin(t, [0, 1, 2, 4, 6]), 6, np.where(np.isin(t, [3, 5]), 12, -1)).astype(
        np.int64
    )
    # AdvA is read when the frame holds it even if the length field is shorter (a damaged
    # packet), as Wireshark does; AdvData only within the declared length
    have = ok & (pos > 0) & (ln >= pos + 6)
    adva = np.zeros(off.shape[0], np.int64)
    for k in range(6):
        idx = np.clip(np.where(have, off + pos + k, 0), 0, n - 1)
        adva |= data[idx].astype(np.int64) << (8 * k)
    adva = np.where(have, adva, -1)
    # a received frame's RxAdd bit for SCAN_REQ/CONNECT_IND describes AdvA
    rx = np.where(ok, (h0 >> 7) & 1, -1)
    addr_rand = np.where(np.isin(t, [3, 5]), rx, tx)
    data_off = np.where(have & np.isin(t, [0, 2, 4, 6]) & (plen >= 6), 12, -1)
    return {
        "pdu_type": t,
        "tx_add": addr_rand,
        "pdu_len": np.where(ok, plen, -1),
        "adva": adva,
        "data_off": data_off,
    }


@dataclass(slots=True)
class DataPduFields:
    """The fields of an LL data PDU the session pass needs, without a full decode."""

    access_address: int
    llid: int
    sn: int
    length: int  # the header's length field
    payload: bytes  # up to that length (fewer bytes when the capture cut the packet)


def data_pdu_fields(raw: bytes) -> DataPduFields | None:
    """Access address, LLID, SN, length and payload of a data channel PDU (§2.4: header byte
    0 = LLID bits 0-1, NESN 2, SN 3, MD 4; byte 1 = length); None when shorter than access
    address + header."""
    if len(raw) < 6:
        return None
    h0, plen = raw[4], raw[5]
    return DataPduFields(
        int.from_bytes(raw[0:4], "little"), h0 & 0x3, (h0 >> 3) & 1, plen, raw[6 : 6 + plen]
    )


def terminate_reason(ctr: bytes) -> int | None:
    """The error code of an LL_TERMINATE_IND (opcode + ErrorCode, §2.4.2.3)."""
    return ctr[1] if len(ctr) > 1 else None


#: LL control PDU sizes (opcode + CtrData, §2.4.2) used to tell plaintext from ciphertext
CONTROL_PDU_SIZES = {0x00: 12, 0x01: 8, 0x02: 2, 0x03: 23, 0x04: 13, 0x05: 1, 0x06: 1, 0x07: 2,
                     0x08: 9, 0x09: 9, 0x0A: 1, 0x0B: 1, 0x0C: 6, 0x0D: 2, 0x0E: 9, 0x0F: 24,
                     0x10: 24, 0x11: 3, 0x12: 1, 0x13: 1, 0x14: 9, 0x15: 9, 0x16: 3, 0x17: 3,
                     0x18: 5, 0x19: 3}  # fmt: skip


def looks_plaintext(llid: int, payload: bytes, l2cap_in_progress: bool) -> bool:
    """After LL_ENC_RSP: does this PDU still read as plaintext? (A sniffer that is a party to
    the link, or one that decrypts, logs plaintext; ciphertext carries a 4-byte MIC and random
    bytes, so a consistent LL control or L2CAP header is a reliable sign of plaintext; a
    continuation is plaintext when an L2CAP PDU is in progress on that side.)"""
    if llid == 3:
        return bool(payload) and CONTROL_PDU_SIZES.get(payload[0]) == len(payload)
    if llid == 2:
        if len(payload) < 4:
            return False
        ln, cid = payload[0] | (payload[1] << 8), payload[2] | (payload[3] << 8)
        return ln + 4 == len(payload) or (ln + 4 > len(payload) and cid in (4, 5, 6))
    return l2cap_in_progress


def addr_str(v: int) -> str:
    """A 48-bit address integer (little-endian wire order gathered) as ``AA:BB:...``."""
    return ":".join(f"{(v >> (8 * k)) & 0xFF:02X}" for k in range(5, -1, -1))


__all__ = [
    "ADV_ACCESS_ADDRESS",
    "ADV_PDU_TYPES",
    "LL_CONTROL_OPCODES",
    "LlAdvPdu",
    "LlDataPdu",
    "addr_str",
    "adv_columns",
    "decode_adv_pdu",
    "decode_data_pdu",
]
