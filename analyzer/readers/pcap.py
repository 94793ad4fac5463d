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

Link types: :mod:`analyzer.readers.pcap_linktypes`; pcapng blocks: :mod:`analyzer.readers.pcapng`.

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

from analyzer.capture import (
    PASS_WINDOW,
    Capture,
    CaptureError,
    CaptureMeta,
    DamagedRange,
    release_pages,
)
from analyzer.readers import compiled, record_heads, skip_damaged, zero_run_end

if TYPE_CHECKING:
    import mmap
    from typing import TypeAlias

    from analyzer.readers import Source

    _Buf: TypeAlias = bytes | mmap.mmap | memoryview

from analyzer.readers.pcap_linktypes import (
    LINK_TYPE_NAMES,
    MAX_PACKET,
    PCAP_MAGICS,
    PCAPNG_MAGIC,
    RESYNC_CHUNK,
    RESYNC_WINDOW_S,
    _classify,
    _finish,
    _u32_all,
    u32_at,
)
from analyzer.readers.pcapng import _read_pcapng


def sniff(head: bytes) -> bool:
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


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
    release_at = PASS_WINDOW
    ext = compiled()
    run = np.empty(PASS_WINDOW // 16 + 2, dtype=np.int64) if ext is not None else None
    while off < size:
        if ext is not None and run is not None:
            # runs of plausible records walked in C (a window at a time, its pages released);
            # anything else comes back here to the Python walk below
            n_run, stop, status = ext.pcap_walk(data, off, off + PASS_WINDOW, big, limit, run)
            if n_run:
                offs.frombytes(run[:n_run].tobytes())
                prev_off = int(run[n_run - 1])
                release_pages(buf, off, stop)
                off = stop
                release_at = off + PASS_WINDOW
            if status != 2:
                continue
        if off + 16 <= size:
            sec, incl, orig = unpack_rec(buf, off)
            end = off + 16 + incl
            if incl <= limit and incl <= orig and end <= size and orig and sec not in magic_secs:
                offs.append(off)
                prev_off = off
                off = end
                if off >= release_at:  # the walk's pages behind it: released
                    release_pages(buf, release_at - PASS_WINDOW, off)
                    release_at = off + PASS_WINDOW
                continue
            if sec in magic_secs:  # a second pcap header: two files joined end to end
                off = _pcap_join(buf, off, size, warnings, damaged)
                prev_off = None
                continue
            if not (sec or orig or incl) and not any(buf[off : off + 16]):
                zend = zero_run_end(data, off)
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
    heads = record_heads(data, pos, 16, buf)  # one pass over the file, its pages released
    sec = u32_at(heads, 0, big)
    frac = u32_at(heads, 4, big)
    incl_np = u32_at(heads, 8, big)
    orig_np = u32_at(heads, 12, big)
    del heads
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
        buf=buf,
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


def read(src: Source) -> Capture:
    buf = src.buffer
    data = np.frombuffer(buf, dtype=np.uint8) if len(buf) else np.zeros(0, dtype=np.uint8)
    if bytes(buf[:4]) == PCAPNG_MAGIC:
        return _read_pcapng(src, buf, data)
    if bytes(buf[:4]) in PCAP_MAGICS:
        return _read_pcap(src, buf, data)
    raise CaptureError("not a capture file: no pcap or pcapng magic")
