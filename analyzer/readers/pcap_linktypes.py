"""The parts of the pcap and pcapng readers that do not depend on the container: shared limits,
byte gathers, the link-type classification of every frame (vectorised) and the frame table.

Link types (www.tcpdump.org/linktypes.html) and what ``offset``/``length`` point at (capture.py):

* 187 H4: first byte is the H4 packet type; payload after it. Commands are ``sent`` and events
  ``received`` (HCI host→controller / controller→host by definition); other kinds unknown.
* 201 H4 with a 4-byte big-endian direction word: bit 0 clear = ``sent``, set = ``received`` (as
  Wireshark's wiretap reads it), then the H4 type byte.
* 254 Linux monitor: 4-byte header, adapter index u16 BE + opcode u16 BE (BlueZ monitor/bt.h):
  2 command sent, 3 event received, 4/5 ACL sent/received, 6/7 SCO, 18/19 ISO; any other opcode is
  kind ``monitor`` with direction unknown. ``adapter`` comes from the header; payload after it.
* 251 LE link layer: starts at the access address.
* 256 LE link layer with the 10-byte RF pseudo-header (rf_channel, signal dBm, noise dBm, access
  address offenses, reference AA, flags u16 LE; Wireshark packet-btle_rf.c): RF channel → LL
  channel index (RF 0→37, 12→38, 39→39, 1..11→0..10, 13..38→11..36); RSSI = signal dBm when the
  "signal power valid" flag (0x0002) is set; flags PDU type (bits 7-9) 2/4 = central→peripheral
  (``sent``), 3/5 = peripheral→central (``received``).
* 272 Nordic nRF Sniffer (Wireshark packet-nordic_ble.c): board id + header version 0 (legacy,
  ``BE EF`` marker), 1 or ≥2; all put flags at byte 8, channel index at 9, RSSI (negated) at 10
  and the LL packet at 17. A data-channel PDU (protocol version ≥ 3: packet id 6; older: access
  address ≠ advertising AA) takes its direction from flags bit 1: central→peripheral = ``sent``,
  peripheral→central = ``received``. Advertising PDUs have no direction.
* 192 PPI (old Ubertooth) wrapping DLT 147/251 LE packets: the PPI header length tells where the LL
  packet starts; a first field of type 30006 (libbtbb ``ppi_btle_t``: version u8, channel MHz u16
  LE, ...) gives the channel. Its RSSI bytes are raw Ubertooth values and are not used.
* 255 BR/EDR baseband: kind ``unknown``, kept whole. Any other link type: kind ``unknown``, kept
  whole, and one warning naming it.

LE link-layer frames are ``ll_adv`` when the access address is 0x8E89BED6 (Core Vol 6 Part B §2.1.2;
also a Nordic v3 advertising packet id 2), else ``ll_data``. H4 frames with a non-standard type byte
(0x07, 0x09 in the wild) are kind ``unknown`` whose payload starts at the type byte. Frames too
short for their pseudo-header are kind ``unknown`` and kept whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from analyzer.capture import (
    D_RECEIVED,
    D_SENT,
    D_UNKNOWN,
    H4_KIND_CODE,
    K_ACL,
    K_COMMAND,
    K_EVENT,
    K_ISO,
    K_LL_ADV,
    K_LL_DATA,
    K_MONITOR,
    K_SCO,
    K_UNKNOWN,
    Capture,
    CaptureMeta,
    DamagedRange,
    build_frames,
    release_pages,
    windows,
)
from analyzer.readers import backwards_warning

if TYPE_CHECKING:
    import mmap
    from typing import TypeAlias

    from analyzer.readers import Source

    _Buf: TypeAlias = bytes | mmap.mmap | memoryview


# pcap magic as it appears on disk -> (struct byte order, fraction is ns)
PCAP_MAGICS: dict[bytes, tuple[str, bool]] = {
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\x3c\x4d": (">", True),
    b"\x4d\x3c\xb2\xa1": ("<", True),
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
BYTE_ORDER_MAGIC = 0x1A2B3C4D

BT_IDB, BT_PB, BT_SPB, BT_NRB, BT_ISB, BT_EPB = 1, 2, 3, 4, 5, 6
#: block types a resync may land on (pcapng §11.1: SHB, IDB..DSB, custom blocks).
KNOWN_BLOCKS = frozenset({PCAPNG_SHB, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xBAD, 0x40000BAD})

#: largest plausible packet (Wireshark's maximum snapshot length).
MAX_PACKET = 262144
#: largest plausible pcapng block during resync (a packet plus generous options).
MAX_BLOCK = MAX_PACKET + 65536
#: a resynchronised record must lie within this many seconds of the last good one.
RESYNC_WINDOW_S = 48 * 3600
#: largest |if_tsoffset| taken (seconds; ~3,000 years): beyond it µs overflow int64 arithmetic.
MAX_TSOFFSET_S = 1 << 36
#: bytes scanned per vectorised resync step.
RESYNC_CHUNK = 1 << 20

ADV_ACCESS_ADDRESS = 0x8E89BED6

LINK_TYPE_NAMES: dict[int, str] = {
    1: "Ethernet",
    147: "USER0",
    187: "Bluetooth HCI H4",
    192: "PPI",
    201: "Bluetooth HCI H4 with phdr",
    251: "Bluetooth LE LL",
    254: "Bluetooth Linux monitor",
    255: "Bluetooth BR/EDR baseband",
    256: "Bluetooth LE LL with RF phdr",
    272: "Nordic BLE sniffer",
}
SUPPORTED_LINK_TYPES = frozenset({187, 192, 201, 251, 254, 255, 256, 272})

# Linux monitor opcode -> (kind, direction); others are K_MONITOR / D_UNKNOWN.
_MON_MAX = 0x20
MON_KIND = np.full(_MON_MAX + 1, K_MONITOR, dtype=np.uint8)
MON_DIR = np.full(_MON_MAX + 1, D_UNKNOWN, dtype=np.uint8)
for _op, (_k, _d) in {
    2: (K_COMMAND, D_SENT),
    3: (K_EVENT, D_RECEIVED),
    4: (K_ACL, D_SENT),
    5: (K_ACL, D_RECEIVED),
    6: (K_SCO, D_SENT),
    7: (K_SCO, D_RECEIVED),
    18: (K_ISO, D_SENT),
    19: (K_ISO, D_RECEIVED),
}.items():
    MON_KIND[_op] = _k
    MON_DIR[_op] = _d

#: RF channel (0-39) -> LL channel index (Core Vol 6 Part A §2; packet-btle_rf.c); -1 = invalid.
RF_TO_LL = np.full(256, -1, dtype=np.int16)
RF_TO_LL[0] = 37
RF_TO_LL[12] = 38
RF_TO_LL[39] = 39
RF_TO_LL[1:12] = np.arange(0, 11)
RF_TO_LL[13:39] = np.arange(11, 37)

# btle_rf flags PDU type (bits 7-9) -> direction
RF_PDU_DIR = np.array(
    [D_UNKNOWN, D_UNKNOWN, D_SENT, D_RECEIVED, D_SENT, D_RECEIVED, D_UNKNOWN, D_UNKNOWN],
    dtype=np.uint8,
)


# ---------------------------------------------------------------------------------------------
# byte gathers (indices are clipped so that masked-out rows never index past the buffer)


def _u8(data: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return data[np.clip(idx, 0, data.size - 1)].astype(np.int64)


def _u16(data: np.ndarray, idx: np.ndarray, big: bool) -> np.ndarray:
    a, b = _u8(data, idx), _u8(data, idx + 1)
    return (a << 8) | b if big else a | (b << 8)


def _u32(data: np.ndarray, idx: np.ndarray, big: bool) -> np.ndarray:
    lo, hi = _u16(data, idx, big), _u16(data, idx + 2, big)
    return (lo << 16) | hi if big else lo | (hi << 16)


def u16_at(heads: np.ndarray, rel: int, big: bool) -> np.ndarray:
    """u16 at byte ``rel`` of every row of a record-header block
    (:func:`analyzer.readers.record_heads`)."""
    a, b = heads[:, rel].astype(np.int64), heads[:, rel + 1].astype(np.int64)
    return (a << 8) | b if big else a | (b << 8)


def u32_at(heads: np.ndarray, rel: int, big: bool) -> np.ndarray:
    """u32 at byte ``rel`` of every row of a record-header block."""
    lo, hi = u16_at(heads, rel, big), u16_at(heads, rel + 2, big)
    return (lo << 16) | hi if big else lo | (hi << 16)


def _u32_all(chunk: np.ndarray, big: bool) -> np.ndarray:
    """u32 starting at every byte offset of ``chunk`` (length ``chunk.size - 3``)."""
    c = chunk.astype(np.uint32)
    if big:
        return (c[:-3] << 24) | (c[1:-2] << 16) | (c[2:-1] << 8) | c[3:]
    return c[:-3] | (c[1:-2] << 8) | (c[2:-1] << 16) | (c[3:] << 24)


# ---------------------------------------------------------------------------------------------
# link-type classification (vectorised)


def _classify(
    *,
    data: np.ndarray,
    off: np.ndarray,
    incl: np.ndarray,
    orig: np.ndarray,
    link: np.ndarray,
    warnings: list[str],
    buf: object = None,
) -> dict[str, np.ndarray]:
    """Kind/direction/payload columns from each frame's link type and leading bytes (``buf``:
    the memory-mapped capture whose pages are released as the frames are read)."""
    n = off.size
    kind = np.full(n, K_UNKNOWN, dtype=np.uint8)
    dirn = np.full(n, D_UNKNOWN, dtype=np.uint8)
    adapter = np.zeros(n, dtype=np.int64)
    strip = np.zeros(n, dtype=np.int64)  # pseudo-header bytes removed from the payload
    channel = np.full(n, -1, dtype=np.int16)
    rssi = np.full(n, -1000, dtype=np.int16)
    incl = incl.astype(np.int64)
    orig = orig.astype(np.int64)
    kinds_of_link = np.unique(link)
    other = kinds_of_link[~np.isin(kinds_of_link, list(SUPPORTED_LINK_TYPES))].tolist()
    if other:
        n_other = int(np.isin(link, other).sum())
        named = ", ".join(
            f"{lt}{f' ({LINK_TYPE_NAMES[lt]})' if lt in LINK_TYPE_NAMES else ''}"
            for lt in other[:5]
        )
        more = f" and {len(other) - 5} more" if len(other) > 5 else ""
        warnings.append(
            f"link type{'s' if len(other) > 1 else ''} {named}{more} "
            f"{'are' if len(other) > 1 else 'is'} not a Bluetooth link type: "
            f"{n_other} frames kept whole as kind 'unknown'"
        )
    # a window of frames at a time, its pages released after it: the leading bytes of every
    # frame are read, which would otherwise make a large memory-mapped capture resident
    ordered = off.size < 2 or bool((np.diff(off) >= 0).all())
    for a, b in windows(off) if ordered else [(0, n)]:
        for lt in kinds_of_link.tolist():
            if lt not in SUPPORTED_LINK_TYPES:
                continue
            sel = a + np.flatnonzero(link[a:b] == lt)
            o, ln = off[sel], incl[sel]
            if lt in (187, 201):
                hdr = 4 if lt == 201 else 0
                ok = ln > hdr
                h4 = np.where(ok, _u8(data, o + hdr), 0)
                k = np.where(ok, H4_KIND_CODE[h4], K_UNKNOWN)
                std = k != K_UNKNOWN
                kind[sel] = k
                strip[sel] = np.where(std, hdr + 1, np.where(ok, hdr, 0))
                if lt == 201:
                    word = _u32(data, o, True)
                    d = np.where(word & 1, D_RECEIVED, D_SENT)
                    dirn[sel] = np.where(ln >= 4, d, D_UNKNOWN)
                else:
                    dirn[sel] = np.where(
                        k == K_COMMAND, D_SENT, np.where(k == K_EVENT, D_RECEIVED, D_UNKNOWN)
                    )
            elif lt == 254:
                ok = ln >= 4
                op = np.minimum(_u16(data, o + 2, True), _MON_MAX)
                kind[sel] = np.where(ok, MON_KIND[op], K_UNKNOWN)
                dirn[sel] = np.where(ok, MON_DIR[op], D_UNKNOWN)
                adapter[sel] = np.where(ok, _u16(data, o, True), 0)
                strip[sel] = np.where(ok, 4, 0)
            elif lt == 251:
                _ll(data=data, sel=sel, o=o, ln=ln, hdr=0, kind=kind, strip=strip)
            elif lt == 256:
                ll = _ll(data=data, sel=sel, o=o, ln=ln, hdr=10, kind=kind, strip=strip)
                rf = _u8(data, o)
                flags = _u16(data, o + 8, False)
                ch = RF_TO_LL[rf]
                channel[sel] = np.where(ll & (ch >= 0), ch, -1)
                sig = _u8(data, o + 1)
                sig = np.where(sig > 127, sig - 256, sig)
                rssi[sel] = np.where(ll & ((flags & 0x0002) != 0), sig, -1000)
                dirn[sel] = np.where(ll, RF_PDU_DIR[(flags >> 7) & 7], D_UNKNOWN)
            elif lt == 272:
                ll = _ll(data=data, sel=sel, o=o, ln=ln, hdr=17, kind=kind, strip=strip)
                legacy = (_u8(data, o) == 0xBE) & (_u8(data, o + 1) == 0xEF)
                protover = np.where(legacy, 0, _u8(data, o + 3))
                pid = np.where(legacy, _u8(data, o + 2), _u8(data, o + 6))
                aa = _u32(data, o + 17, False)
                v3 = protover >= 3
                is_data = np.where(v3, pid == 6, aa != ADV_ACCESS_ADDRESS)
                kind[sel] = np.where(ll & v3 & (pid == 2), K_LL_ADV, kind[sel])
                flags = _u8(data, o + 8)
                d = np.where(flags & 2, D_SENT, D_RECEIVED)
                dirn[sel] = np.where(ll & is_data, d, D_UNKNOWN)
                ch = _u8(data, o + 9)
                channel[sel] = np.where(ll & (ch <= 39), ch, -1)
                rssi[sel] = np.where(ll, -_u8(data, o + 10), -1000)
            elif lt == 192:
                plen = _u16(data, o + 2, False)
                inner = _u32(data, o + 4, False)
                ok = (ln >= 8) & (plen >= 8) & (plen + 4 <= ln) & ((inner == 147) | (inner == 251))
                aa = _u32(data, o + plen, False)
                k = np.where(aa == ADV_ACCESS_ADDRESS, K_LL_ADV, K_LL_DATA)
                kind[sel] = np.where(ok, k, K_UNKNOWN)
                strip[sel] = np.where(ok, plen, 0)
                has_btle = (
                    ok
                    & (plen >= 24)
                    & (_u16(data, o + 8, False) == 30006)
                    & (_u16(data, o + 10, False) >= 12)
                )
                mhz = _u16(data, o + 13, False)
                rf = (mhz - 2402) // 2
                valid = has_btle & (mhz >= 2402) & (mhz <= 2480) & (mhz % 2 == 0)
                channel[sel] = np.where(valid, RF_TO_LL[np.clip(rf, 0, 255)], -1)
            # 255 BR/EDR baseband: kept whole as unknown
        if b > a:
            release_pages(buf, int(off[a]), int(off[b - 1] + incl[b - 1]))
    return {
        "kind": kind,
        "direction": dirn,
        "adapter": adapter,
        "offset": off + strip,
        "length": np.maximum(incl - strip, 0),
        "orig_length": np.maximum(orig - strip, 0),
        "channel": channel,
        "rssi": rssi,
        "link_type": link,
    }


def _ll(
    *,
    data: np.ndarray,
    sel: np.ndarray,
    o: np.ndarray,
    ln: np.ndarray,
    hdr: int,
    kind: np.ndarray,
    strip: np.ndarray,
) -> np.ndarray:
    """LE LL frames behind an ``hdr``-byte pseudo-header: kind by access address; returns the
    mask of frames long enough to hold the access address."""
    ok = ln >= hdr + 4
    aa = _u32(data, o + hdr, False)
    k = np.where(aa == ADV_ACCESS_ADDRESS, K_LL_ADV, K_LL_DATA)
    kind[sel] = np.where(ok, k, K_UNKNOWN)
    strip[sel] = np.where(ok, hdr, 0)
    return ok


# ---------------------------------------------------------------------------------------------


def _finish(
    *,
    src: Source,
    meta: CaptureMeta,
    time_us: np.ndarray,
    cols: dict[str, np.ndarray],
    warnings: list[str],
    damaged: list[DamagedRange],
    comments: dict[int, str],
) -> Capture:
    warnings += backwards_warning(time_us)
    for d in damaged:
        warnings.append(str(d))
    frames = build_frames(
        time_us=time_us,
        direction=cols["direction"],
        kind=cols["kind"],
        offset=cols["offset"],
        length=cols["length"],
        orig_length=cols["orig_length"],
        adapter=cols["adapter"],
        link_type=cols["link_type"],
    )
    ch = cols["channel"]
    rs = cols["rssi"]
    # per-frame channel and RSSI where the container gives some (else the frame table's null
    # constants stay)
    known = []
    if (ch >= 0).any():
        known.append(pl.Series("channel", np.where(ch >= 0, ch, np.nan), nan_to_null=True))
    if (rs > -1000).any():
        known.append(pl.Series("rssi", np.where(rs > -1000, rs, np.nan), nan_to_null=True))
    if known:
        frames = frames.with_columns(s.cast(pl.Int16) for s in known)
    return Capture(
        meta=meta,
        frames=frames,
        buffer=src.buffer,
        warnings=warnings,
        damaged=damaged,
        comments=comments,
    )
