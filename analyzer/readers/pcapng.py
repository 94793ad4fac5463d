"""pcapng (draft-ietf-opsawg-pcapng): see :mod:`analyzer.readers.pcap` for the container rules
and :mod:`analyzer.readers.pcap_linktypes` for what each link type's frames hold."""

from __future__ import annotations

import struct
from array import array
from typing import TYPE_CHECKING

import numpy as np

from analyzer.capture import (
    D_RECEIVED,
    D_SENT,
    D_UNKNOWN,
    PASS_WINDOW,
    Capture,
    CaptureError,
    CaptureMeta,
    DamagedRange,
    release_pages,
)

if TYPE_CHECKING:
    import mmap
    from typing import TypeAlias

    from analyzer.readers import Source

    _Buf: TypeAlias = bytes | mmap.mmap | memoryview

from analyzer.readers import compiled, record_heads
from analyzer.readers.pcap_linktypes import (
    BT_EPB,
    BT_IDB,
    BT_ISB,
    BT_PB,
    BT_SPB,
    KNOWN_BLOCKS,
    LINK_TYPE_NAMES,
    MAX_BLOCK,
    MAX_TSOFFSET_S,
    PCAPNG_SHB,
    RESYNC_CHUNK,
    _classify,
    _finish,
    _u32_all,
    u16_at,
    u32_at,
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
    release_at = PASS_WINDOW
    ext = compiled()
    run = np.empty(PASS_WINDOW // 32 + 2, dtype=np.int64) if ext is not None else None
    while off < size:
        if ext is not None and run is not None and n_sec:
            # runs of option-less Enhanced Packet Blocks walked in C (a window at a time, its
            # pages released); any other block comes back here to the Python walk below
            n_run, stop, status = ext.ng_walk(
                data, off, off + PASS_WINDOW, endian == ">", n_sec, run
            )
            if n_run:
                pk_pos.frombytes(run[:n_run].tobytes())
                release_pages(buf, off, stop)
                off = stop
                release_at = off + PASS_WINDOW
            if status != 2:
                continue
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
                    if off >= release_at:  # the walk's pages behind it: released
                        release_pages(buf, release_at - PASS_WINDOW, off)
                        release_at = off + PASS_WINDOW
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

    # every packet block's first 28 bytes, in one pass over the file (its pages released)
    heads = record_heads(data, pos, 28, buf)

    def g32(rel: int) -> np.ndarray:
        le = u32_at(heads, rel, False)
        if not any_big:
            return le
        return np.where(big, u32_at(heads, rel, True), le)

    typ = np.full(n, BT_EPB, dtype=np.int8)
    if special:
        typ[np.fromiter(special.keys(), dtype=np.int64, count=len(special))] = np.fromiter(
            special.values(), dtype=np.int8, count=len(special)
        )
    ifx = g32(8)
    if special:
        is_pb = typ == BT_PB
        pb_if = np.where(big, u16_at(heads, 8, True), u16_at(heads, 8, False))
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

    cols = _classify(
        data=data, off=off_data, incl=cap, orig=orig, link=link_col, warnings=warnings, buf=buf
    )
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
