"""pcap and pcapng reader for Bluetooth link types.

Containers (detected by magic, never by file name):

* **pcap** (libpcap file format, draft-ietf-opsawg-pcap): 24-byte global header whose magic
  gives the byte order and time unit — ``a1b2c3d4`` µs, ``a1b23c4d`` ns, in either byte order.
  16-byte record headers (seconds, fraction, included length, original length). A fraction ≥ 1 s
  or < 0 (old Ubertooth files; the fraction is read as a signed 32-bit value) is simply added,
  as Wireshark does. Records longer than the header's snaplen (but ≤ 262144) are accepted
  with one warning when the record after them is plausible, since Wireshark reads them.
* **pcapng** (draft-ietf-opsawg-pcapng): blocks ``type, total length, body, total length``.
  Section Header Block (either byte order, several sections allowed), Interface Description
  Blocks (each with its own link type, ``if_tsresol`` §4.2 option 9 and ``if_tsoffset`` option
  14), Enhanced Packet Block, Simple Packet Block (no timestamp: the previous frame's time is used,
  and a warning says so), obsolete Packet Block, Interface Statistics Block. ``opt_comment``
  (option 1) of a packet goes to ``Capture.comments[frame index]``. ``meta.drops`` = for each
  interface the last ``isb_ifdrop`` (option 5, a cumulative count) plus every ``epb_dropcount``
  (EPB option 4) and PB drops count. ``epb_flags`` (EPB option 2) inbound/outbound gives the
  direction when the link type has none. ``adapter`` = the frame's interface index (0-based over
  the whole file), except on link type 254 where the monitor header says it.

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

Damage: a record running past EOF or implausible (pcap: included length > snaplen or > 262144,
or included > original; pcapng: a block whose length is < 12, not a multiple of 4 or whose
trailing copy differs, or a packet block naming an undefined interface)
does not end the read: the reader looks for the next plausible record (sane lengths, timestamp
near the previous one, and a plausible record after it; for pcapng a known block type with a
matching trailing length) and resumes there, recording a :class:`DamagedRange` and a warning. A
record merely cut by EOF ends the read (its bytes also become a :class:`DamagedRange`, as in the
btsnoop reader). Only an unusable global header raises.
"""

from __future__ import annotations

import struct
from array import array
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
    CaptureError,
    CaptureMeta,
    DamagedRange,
    build_frames,
)
from analyzer.readers import backwards_warning, skip_damaged

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


def sniff(head: bytes) -> bool:
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


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


def _u32_all(chunk: np.ndarray, big: bool) -> np.ndarray:
    """u32 starting at every byte offset of ``chunk`` (length ``chunk.size - 3``)."""
    c = chunk.astype(np.uint32)
    if big:
        return (c[:-3] << 24) | (c[1:-2] << 16) | (c[2:-1] << 8) | c[3:]
    return c[:-3] | (c[1:-2] << 8) | (c[2:-1] << 16) | (c[3:] << 24)


# ---------------------------------------------------------------------------------------------
# pcap


# A plausible record fraction lies in (-1 s, +1 s) as a signed 32-bit value (ns or µs):
# shifted by 1e9 modulo 2**32 it lies below 2e9.
_FRAC_SHIFT = 1_000_000_000
_FRAC_LIMIT = 2_000_000_000


class _PcapWalker:
    def __init__(self, buf: _Buf, data: np.ndarray, big: bool, limit: int) -> None:
        self.buf = buf
        self.data = data
        self.size = data.size
        self.big = big
        self.limit = limit
        self.hdr = struct.Struct((">" if big else "<") + "IIII")

    def plausible(self, off: int, last_sec: int | None) -> bool:
        if off + 16 > self.size:
            return False
        sec, frac, incl, orig = self.hdr.unpack_from(self.buf, off)
        if (
            incl > self.limit
            or incl > orig
            or not orig  # an all-zero header is padding, never a record
            or (frac + _FRAC_SHIFT) % (1 << 32) >= _FRAC_LIMIT
        ):
            return False
        return last_sec is None or abs(sec - last_sec) <= RESYNC_WINDOW_S

    def plausible_at(self, off: int, limit: int) -> bool:
        """A record header with sane lengths at off (time not checked)."""
        if off + 16 > self.size:
            return False
        _sec, frac, incl, orig = self.hdr.unpack_from(self.buf, off)
        return (
            incl <= limit
            and incl <= orig
            and orig > 0
            and (frac + _FRAC_SHIFT) % (1 << 32) < _FRAC_LIMIT
        )

    def resync(self, start: int, last_sec: int | None) -> int | None:
        """First offset >= start with a plausible record followed by another (or by EOF)."""
        size = self.size
        pos = start
        while pos + 16 <= size:
            end = min(size, pos + RESYNC_CHUNK + 15)
            u = _u32_all(self.data[pos:end], self.big)
            m = u.size - 12
            if m <= 0:
                break
            sec, frac, incl, orig = u[:m], u[4 : m + 4], u[8 : m + 8], u[12 : m + 12]
            offs = np.arange(pos, pos + m, dtype=np.int64)
            ok = (
                (incl <= self.limit)
                & (incl <= orig)
                & (orig != 0)
                & (frac + np.uint32(_FRAC_SHIFT) < _FRAC_LIMIT)  # array add wraps mod 2**32
                & (offs + 16 + incl.astype(np.int64) <= size)
            )
            if last_sec is not None:
                ok &= np.abs(sec.astype(np.int64) - last_sec) <= RESYNC_WINDOW_S
            for cand in np.flatnonzero(ok).tolist():
                c = pos + cand
                nxt = c + 16 + int(incl[cand])
                if nxt == size or self.plausible(nxt, int(sec[cand])):
                    return c
            pos += m
        return None


def _zero_run_end(data: np.ndarray, off: int) -> int:
    """The first offset >= off holding a non-zero byte (data.size when none)."""
    pos = off
    while pos < data.size:
        nz = np.flatnonzero(data[pos : pos + RESYNC_CHUNK])
        if nz.size:
            return pos + int(nz[0])
        pos += RESYNC_CHUNK
    return int(data.size)


def _pcap_join(
    buf: _Buf, off: int, size: int, warnings: list[str], damaged: list[DamagedRange]
) -> int:
    """A pcap global header at ``off`` (two files joined end to end): where reading goes on.
    Only a header of the same byte order, time unit and link type continues the capture."""
    first = (bytes(buf[:4]), struct.unpack_from(PCAP_MAGICS[bytes(buf[:4])][0] + "I", buf, 20))
    if off + 24 > size:
        damaged.append(DamagedRange(off, size, "a second pcap header, cut by end of file"))
        return size
    magic = bytes(buf[off : off + 4])
    second = (magic, struct.unpack_from(PCAP_MAGICS[magic][0] + "I", buf, off + 20))
    if second != first:
        damaged.append(
            DamagedRange(off, size, "a second pcap header of another format or link type: not read")
        )
        return size
    warnings.append(
        f"a second pcap header at offset {off}: two files joined end to end, read as one "
        "capture (times may jump at the join)"
    )
    return off + 24


def _read_pcap(src: Source, buf: _Buf, data: np.ndarray) -> Capture:
    size = data.size
    if size < 24:
        raise CaptureError(f"not a capture file: pcap global header cut short ({size} of 24 bytes)")
    endian, is_ns = PCAP_MAGICS[bytes(buf[:4])]
    big = endian == ">"
    vmaj, vmin, _zone, _sigfigs, snaplen, network = struct.unpack_from(endian + "HHiIII", buf, 4)
    link = network & 0xFFFF  # upper bits: FCS length flags (pcap §4)
    warnings: list[str] = []
    damaged: list[DamagedRange] = []
    if vmaj != 2:
        warnings.append(f"unusual pcap version {vmaj}.{vmin} (expected 2.4)")
    limit = min(snaplen, MAX_PACKET) if snaplen > 0 else MAX_PACKET
    # Some writers put a smaller snaplen than their packets; only refuse what is also > 262144
    # when the snaplen itself is implausibly small.
    if limit < 16:
        limit = MAX_PACKET

    walker = _PcapWalker(buf, data, big, limit)
    unpack = struct.Struct(endian + "8xII").unpack_from
    unpack_rec = struct.Struct(endian + "I4xII").unpack_from
    sec_of = struct.Struct(endian + "I").unpack_from
    magic_secs = {struct.unpack(endian + "I", m)[0] for m in PCAP_MAGICS}
    offs = array("q")
    off = 24
    prev_off: int | None = None
    while off < size:
        if off + 16 <= size:
            sec, incl, orig = unpack_rec(buf, off)
            end = off + 16 + incl
            if incl <= limit and incl <= orig and end <= size and orig and sec not in magic_secs:
                offs.append(off)
                prev_off = off
                off = end
                continue
            if sec in magic_secs:  # a second pcap header: two files joined end to end
                off = _pcap_join(buf, off, size, warnings, damaged)
                prev_off = None
                continue
            if not (sec or orig or incl) and not any(buf[off : off + 16]):
                zend = _zero_run_end(data, off)
                if zend >= size:
                    warnings.append(f"{size - off} bytes of zero padding at offset {off} ignored")
                    break
                cand = walker.resync(zend - 15 if zend - 15 > off else off + 1, None)
                if cand is None:
                    damaged.append(DamagedRange(off, size, "zero padding then no plausible record"))
                    break
                warnings.append(f"{cand - off} bytes of zero padding at offset {off} ignored")
                prev_off = None
                off = cand
                continue
        # -- damage ---------------------------------------------------------------------------
        if limit < MAX_PACKET and off + 16 <= size:
            # a writer may put a snaplen below its packets: accept that once the record after
            # the oversized one is plausible too
            incl, orig = unpack(buf, off)
            end = off + 16 + incl
            if (
                incl <= MAX_PACKET
                and incl <= orig
                and end <= size
                and (end == size or walker.plausible_at(end, MAX_PACKET))
            ):
                warnings.append(
                    f"records are longer than the header's snaplen {snaplen} (first at offset "
                    f"{off})"
                )
                limit = walker.limit = MAX_PACKET
                continue
        last_sec = sec_of(buf, offs[-1])[0] if offs else None
        search_from = off + 1 if prev_off is None else prev_off + 16
        cand = walker.resync(search_from, last_sec)
        if cand is None:
            if off + 16 > size:
                damaged.append(
                    DamagedRange(
                        off,
                        size,
                        f"last record header cut by end of file ({size - off} of 16 bytes)",
                    )
                )
                break
            incl, orig = unpack(buf, off)
            if incl <= limit and incl <= orig:
                damaged.append(
                    DamagedRange(
                        off,
                        size,
                        f"last record cut by end of file: {incl} bytes announced, "
                        f"{size - off - 16} present",
                    )
                )
                break
            damaged.append(
                DamagedRange(
                    off,
                    size,
                    f"implausible record header (incl {incl}, orig {orig}), no "
                    "plausible record after it",
                )
            )
            break
        skip_damaged(offs, damaged, prev_off, off, cand)
        prev_off = None
        off = cand

    pos = np.frombuffer(offs, dtype=np.int64)
    sec = _u32(data, pos, big)
    frac = _u32(data, pos + 4, big)
    incl_np = _u32(data, pos + 8, big)
    orig_np = _u32(data, pos + 12, big)
    # wiretap reads the fraction as a signed 32-bit value (old Ubertooth files hold negative µs)
    frac = np.where(frac >= 1 << 31, frac - (1 << 32), frac)
    time_us = sec * 1_000_000 + (frac // 1000 if is_ns else frac)
    n = pos.size
    cols = _classify(
        data=data,
        off=pos + 16,
        incl=incl_np,
        orig=orig_np,
        link=np.full(n, link, dtype=np.int64),
        warnings=warnings,
    )
    meta = CaptureMeta(
        format="pcap",
        link_type=link,
        link_type_name=LINK_TYPE_NAMES.get(link, f"link type {link}"),
        path=src.path,
        size=src.size,
        compressed=src.compressed,
        extra={
            "byte_order": "big" if big else "little",
            "time_resolution": "ns" if is_ns else "us",
            "snaplen": snaplen,
        },
    )
    return _finish(
        src=src,
        meta=meta,
        time_us=time_us,
        cols=cols,
        warnings=warnings,
        damaged=damaged,
        comments={},
    )


# ---------------------------------------------------------------------------------------------
# pcapng


class _Iface:
    __slots__ = ("drops", "link", "name", "tsoffset", "tsresol")

    def __init__(self, link: int) -> None:
        self.link = link
        self.tsresol = 6
        self.tsoffset = 0
        self.name: str | None = None
        self.drops: int | None = None


def _options(buf: _Buf, start: int, end: int, endian: str) -> list[tuple[int, bytes]]:
    """pcapng options (§3.5) between start and end; stops quietly at anything malformed."""
    out: list[tuple[int, bytes]] = []
    hdr = struct.Struct(endian + "HH")
    pos = start
    while pos + 4 <= end:
        code, ln = hdr.unpack_from(buf, pos)
        if code == 0:
            break
        if pos + 4 + ln > end:
            break
        out.append((code, bytes(buf[pos + 4 : pos + 4 + ln])))
        pos += 4 + ln + (-ln % 4)
    return out


def _packet_options(
    buf: _Buf,
    start: int,
    end: int,
    endian: str,
    row: int,
    comments: dict[int, str],
    epb_dir: dict[int, int],
) -> int:
    """Read a packet block's options: comments, epb_flags direction; returns epb_dropcount."""
    drops = 0
    for code, val in _options(buf, start, end, endian):
        if code == 1:
            text = val.decode("utf-8", "replace").rstrip("\x00")
            prev = comments.get(row + 1)
            comments[row + 1] = text if prev is None else prev + "\n" + text
        elif code == 2 and len(val) >= 4:
            d = struct.unpack_from(endian + "I", val, 0)[0] & 3
            if d == 1:
                epb_dir[row] = D_RECEIVED
            elif d == 2:
                epb_dir[row] = D_SENT
        elif code == 4 and len(val) >= 8:
            drops += struct.unpack_from(endian + "Q", val, 0)[0]
    return drops


class _NgWalker:
    def __init__(self, buf: _Buf, data: np.ndarray) -> None:
        self.buf = buf
        self.data = data
        self.size = data.size

    def block_ok(self, off: int, endian: str) -> int | None:
        """Total length of a well-framed block at off (known type, trailing copy), else None."""
        size = self.size
        if off + 12 > size:
            return None
        btype = struct.unpack_from(endian + "I", self.buf, off)[0]
        if btype == PCAPNG_SHB:
            if off + 16 > size:
                return None
            bom = bytes(self.buf[off + 8 : off + 12])
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                return None
        elif btype not in KNOWN_BLOCKS:
            return None
        blen = struct.unpack_from(endian + "I", self.buf, off + 4)[0]
        if blen < 12 or blen % 4 or blen > MAX_BLOCK or off + blen > size:
            return None
        if struct.unpack_from(endian + "I", self.buf, off + blen - 4)[0] != blen:
            return None
        return int(blen)

    def resync(self, start: int, endian: str, n_ifaces: int) -> int | None:
        size = self.size
        big = endian == ">"
        pos = start
        while pos + 12 <= size:
            end = min(size, pos + RESYNC_CHUNK + 11)
            u = _u32_all(self.data[pos:end], big)
            m = u.size - 4
            if m <= 0:
                break
            btype, blen = u[:m], u[4 : m + 4]
            offs = np.arange(pos, pos + m, dtype=np.int64)
            shb = btype == PCAPNG_SHB
            ok = shb | (
                np.isin(btype, np.array(sorted(KNOWN_BLOCKS), dtype=np.uint32))
                & (blen % 4 == 0)
                & (blen >= 12)
                & (offs + blen.astype(np.int64) <= size)
            )
            for cand in np.flatnonzero(ok).tolist():
                c = pos + cand
                blen_c = self.block_ok(c, endian)
                if blen_c is None:
                    continue
                t = int(btype[cand])
                if t == BT_EPB and (
                    blen_c < 32
                    or struct.unpack_from(endian + "I", self.buf, c + 8)[0] >= max(n_ifaces, 1)
                ):
                    continue
                return c
            pos += m
        return None


def _read_pcapng(src: Source, buf: _Buf, data: np.ndarray) -> Capture:
    size = data.size
    warnings: list[str] = []
    damaged: list[DamagedRange] = []
    comments: dict[int, str] = {}
    walker = _NgWalker(buf, data)
    if size < 28:
        raise CaptureError(f"not a capture file: pcapng section header cut short ({size} bytes)")
    bom = bytes(buf[8:12])
    if bom == b"\x4d\x3c\x2b\x1a":
        endian = "<"
    elif bom == b"\x1a\x2b\x3c\x4d":
        endian = ">"
    else:
        raise CaptureError("not a capture file: pcapng section header has no byte-order magic")
    if walker.block_ok(0, endian) is None:
        raise CaptureError("not a capture file: pcapng section header block length is broken")

    ifaces: list[_Iface] = []
    base = 0  # index in ifaces of the current section's interface 0
    n_sec = 0  # interfaces defined so far in the current section
    pk_pos = array("q")  # block offset of every packet block
    special: dict[int, int] = {}  # row -> block type, for the rare PB / SPB rows
    sections: list[tuple[int, int, bool]] = [(0, 0, endian == ">")]  # (first row, base, big)
    epb_dir: dict[int, int] = {}  # frame row -> direction code from epb_flags
    extra_drops = 0
    u32 = struct.Struct(endian + "I").unpack_from
    u32x2 = struct.Struct(endian + "II").unpack_from
    ifcap = struct.Struct(endian + "I8xI").unpack_from
    append = pk_pos.append

    off = 0
    while off < size:
        blen: int | None = None
        if off + 12 <= size:
            btype, blen = u32x2(buf, off)
            # fast path: a well-framed Enhanced Packet Block
            if (
                btype == BT_EPB
                and blen >= 32
                and not blen & 3
                and off + blen <= size
                and u32(buf, off + blen - 4)[0] == blen
            ):
                iface, cap = ifcap(buf, off + 8)
                data_end = off + 28 + cap + (-cap & 3)
                if iface < n_sec and data_end <= off + blen - 4:
                    if data_end < off + blen - 4:
                        extra_drops += _packet_options(
                            buf, data_end, off + blen - 4, endian, len(pk_pos), comments, epb_dir
                        )
                    append(off)
                    off += blen
                    continue
            if btype == PCAPNG_SHB:
                b = bytes(buf[off + 8 : off + 12])
                if b in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                    e = "<" if b[0] == 0x4D else ">"
                    if e != endian:
                        endian = e
                        u32 = struct.Struct(e + "I").unpack_from
                        u32x2 = struct.Struct(e + "II").unpack_from
                        ifcap = struct.Struct(e + "I8xI").unpack_from
                        blen = u32(buf, off + 4)[0]
            if blen < 12 or blen % 4 or off + blen > size or u32(buf, off + blen - 4)[0] != blen:
                blen = None
        if blen is None:
            # -- damage -----------------------------------------------------------------------
            cand = walker.resync(off + 1, endian, n_sec)
            if cand is None:
                if off + 12 > size:
                    damaged.append(
                        DamagedRange(
                            off, size, f"last block cut by end of file ({size - off} bytes)"
                        )
                    )
                else:
                    announced = u32(buf, off + 4)[0]
                    if announced >= 12 and announced % 4 == 0 and off + announced > size:
                        damaged.append(
                            DamagedRange(
                                off,
                                size,
                                f"last block cut by end of file: {announced} bytes announced, "
                                f"{size - off} present",
                            )
                        )
                    else:
                        damaged.append(
                            DamagedRange(off, size, "broken block framing, no valid block after it")
                        )
                break
            damaged.append(DamagedRange(off, cand, "broken block framing"))
            off = cand
            continue
        if btype in (BT_EPB, BT_PB):
            if blen < 32:
                damaged.append(DamagedRange(off, off + blen, "packet block too short"))
                off += blen
                continue
            if btype == BT_EPB:
                iface = u32(buf, off + 8)[0]
            else:
                iface = struct.unpack_from(endian + "H", buf, off + 8)[0]
            cap = u32(buf, off + 20)[0]
            data_end = off + 28 + cap + (-cap % 4)
            if data_end > off + blen - 4 or iface >= n_sec:
                why = (
                    f"packet names interface {iface}, section has {n_sec}"
                    if iface >= n_sec
                    else f"captured length {cap} runs past its block"
                )
                damaged.append(DamagedRange(off, off + blen, why))
                off += blen
                continue
            row = len(pk_pos)
            if btype == BT_PB:
                special[row] = BT_PB
                pb_drops = struct.unpack_from(endian + "H", buf, off + 10)[0]
                if pb_drops != 0xFFFF:
                    extra_drops += pb_drops
            if data_end < off + blen - 4:
                extra_drops += _packet_options(
                    buf, data_end, off + blen - 4, endian, row, comments, epb_dir
                )
            append(off)
        elif btype == BT_SPB:
            if n_sec < 1 or blen < 16:
                damaged.append(DamagedRange(off, off + blen, "simple packet block, no interface"))
                off += blen
                continue
            special[len(pk_pos)] = BT_SPB
            append(off)
        elif btype == BT_IDB:
            if blen >= 20:
                link, _res, _snap = struct.unpack_from(endian + "HHI", buf, off + 8)
                ifc = _Iface(link)
                for code, val in _options(buf, off + 16, off + blen - 4, endian):
                    if code == 9 and val:
                        ifc.tsresol = val[0]
                    elif code == 14 and len(val) >= 8:
                        tsoff = struct.unpack_from(endian + "q", val, 0)[0]
                        if abs(tsoff) <= MAX_TSOFFSET_S:
                            ifc.tsoffset = tsoff
                        else:
                            warnings.append(f"implausible if_tsoffset {tsoff} s ignored")
                    elif code == 2:
                        ifc.name = val.decode("utf-8", "replace").rstrip("\x00")
                ifaces.append(ifc)
                n_sec += 1
            else:
                damaged.append(DamagedRange(off, off + blen, "interface block too short"))
        elif btype == BT_ISB:
            if blen >= 24:
                iface = u32(buf, off + 8)[0]
                if iface < n_sec:
                    for code, val in _options(buf, off + 20, off + blen - 4, endian):
                        if code == 5 and len(val) >= 8:
                            ifaces[base + iface].drops = struct.unpack_from(endian + "Q", val, 0)[0]
        elif btype == PCAPNG_SHB and off > 0:
            base = len(ifaces)
            n_sec = 0
            sections.append((len(pk_pos), base, endian == ">"))
        off += blen

    n = len(pk_pos)
    pos = np.frombuffer(pk_pos, dtype=np.int64)
    big = np.zeros(n, dtype=bool)
    sec_base = np.zeros(n, dtype=np.int64)
    for k, (r0, sbase, sbig) in enumerate(sections):
        r1 = sections[k + 1][0] if k + 1 < len(sections) else n
        big[r0:r1] = sbig
        sec_base[r0:r1] = sbase
    any_big = bool(big.any())

    def g32(rel: int) -> np.ndarray:
        le = _u32(data, pos + rel, False)
        if not any_big:
            return le
        return np.where(big, _u32(data, pos + rel, True), le)

    typ = np.full(n, BT_EPB, dtype=np.int8)
    if special:
        typ[np.fromiter(special.keys(), dtype=np.int64, count=len(special))] = np.fromiter(
            special.values(), dtype=np.int8, count=len(special)
        )
    ifx = g32(8)
    if special:
        is_pb = typ == BT_PB
        pb_if = np.where(big, _u16(data, pos + 8, True), _u16(data, pos + 8, False))
        ifx = np.where(is_pb, pb_if, np.where(typ == BT_SPB, 0, ifx))
    ifx = ifx + sec_base
    spb_count = int((typ == BT_SPB).sum())
    is_spb = typ == BT_SPB
    ts = (g32(12).astype(np.uint64) << np.uint64(32)) | g32(16).astype(np.uint64)
    cap = g32(20)
    orig = g32(24)
    off_data = pos + 28
    if is_spb.any():
        spb_orig = g32(8)
        blens = g32(4)
        orig = np.where(is_spb, spb_orig, orig)
        cap = np.where(is_spb, np.minimum(spb_orig, blens - 16), cap)
        off_data = np.where(is_spb, pos + 12, off_data)

    # per-interface values gathered by index: cost frames + interfaces, not their product
    time_us = np.zeros(n, dtype=np.int64)
    link_col = np.zeros(n, dtype=np.int64)
    if ifaces and n:
        ifx_ok = np.clip(ifx, 0, len(ifaces) - 1)
        link_col = np.array([i.link for i in ifaces], dtype=np.int64)[ifx_ok]
        resol = np.array([i.tsresol for i in ifaces], dtype=np.int64)[ifx_ok]
        tsoff = np.array([i.tsoffset for i in ifaces], dtype=np.int64)[ifx_ok]
        for r in np.unique(resol).tolist():
            sel = resol == r
            time_us[sel] = _ts_to_us(ts[sel], int(r))
        time_us += tsoff * 1_000_000
    if spb_count:
        last = np.where(is_spb, -1, np.arange(n))
        np.maximum.accumulate(last, out=last)
        filled = np.where(last >= 0, time_us[np.maximum(last, 0)], 0)
        time_us = np.where(is_spb, filled, time_us)
        warnings.append(
            f"{spb_count} simple packet blocks carry no timestamp: previous frame's time used"
        )

    cols = _classify(data=data, off=off_data, incl=cap, orig=orig, link=link_col, warnings=warnings)
    if epb_dir:
        rows = np.fromiter(epb_dir.keys(), dtype=np.int64, count=len(epb_dir))
        dirs = np.fromiter(epb_dir.values(), dtype=np.uint8, count=len(epb_dir))
        unknown = cols["direction"][rows] == D_UNKNOWN
        cols["direction"][rows[unknown]] = dirs[unknown]
    if (link_col != 254).any():
        cols["adapter"] = np.where(link_col == 254, cols["adapter"], ifx)

    drops = extra_drops + sum(i.drops or 0 for i in ifaces)
    first_link = ifaces[0].link if ifaces else None
    meta = CaptureMeta(
        format="pcapng",
        link_type=first_link,
        link_type_name=(
            LINK_TYPE_NAMES.get(first_link, f"link type {first_link}")
            if first_link is not None
            else "no interface"
        ),
        path=src.path,
        size=src.size,
        compressed=src.compressed,
        drops=drops,
        extra={
            "interfaces": [
                {"link_type": i.link, "tsresol": i.tsresol, "tsoffset": i.tsoffset, "name": i.name}
                for i in ifaces
            ]
        },
    )
    if drops:
        warnings.append(f"the capture reports {drops} dropped packets")
    return _finish(
        src=src,
        meta=meta,
        time_us=time_us,
        cols=cols,
        warnings=warnings,
        damaged=damaged,
        comments=comments,
    )


def _ts_to_us(ts: np.ndarray, resol: int) -> np.ndarray:
    """pcapng timestamp units -> µs (if_tsresol §4.2: bit 7 clear 10^-v, set 2^-v)."""
    ts = ts.astype(np.uint64)
    v = resol & 0x7F
    if resol & 0x80:
        v = min(v, 63)
        sec = ts >> np.uint64(v)
        frac = ts & np.uint64((1 << v) - 1)
        if v > 40:
            frac >>= np.uint64(v - 40)
            v = 40
        return (
            sec * np.uint64(1_000_000) + ((frac * np.uint64(1_000_000)) >> np.uint64(v))
        ).astype(np.int64)
    if v >= 6:
        if v - 6 > 19:
            return np.zeros(ts.size, dtype=np.int64)
        return (ts // np.uint64(10 ** (v - 6))).astype(np.int64)
    return (ts * np.uint64(10 ** (6 - v))).astype(np.int64)


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
) -> dict[str, np.ndarray]:
    """Kind/direction/payload columns from each frame's link type and leading bytes."""
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
    for lt in kinds_of_link.tolist():
        if lt not in SUPPORTED_LINK_TYPES:
            continue
        sel = np.flatnonzero(link == lt)
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
    frames = frames.with_columns(
        pl.Series("channel", np.where(ch >= 0, ch, np.nan), nan_to_null=True).cast(pl.Int16),
        pl.Series("rssi", np.where(rs > -1000, rs, np.nan), nan_to_null=True).cast(pl.Int16),
    )
    return Capture(
        meta=meta,
        frames=frames,
        buffer=src.buffer,
        warnings=warnings,
        damaged=damaged,
        comments=comments,
    )


def read(src: Source) -> Capture:
    buf = src.buffer
    data = np.frombuffer(buf, dtype=np.uint8) if len(buf) else np.zeros(0, dtype=np.uint8)
    if bytes(buf[:4]) == PCAPNG_MAGIC:
        return _read_pcapng(src, buf, data)
    if bytes(buf[:4]) in PCAP_MAGICS:
        return _read_pcap(src, buf, data)
    raise CaptureError("not a capture file: no pcap or pcapng magic")
