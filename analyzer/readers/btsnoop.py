"""btsnoop v1 reader (RFC 1761-like format used by Android and BlueZ ``btmon -w``).

File header (16 bytes): ``btsnoop\\0``, version u32 BE (1), datalink u32 BE: 1001 HCI without type
byte, 1002 HCI H4 UART, 2001 Linux monitor. Records: 24-byte big-endian header (original length,
included length, flags, cumulative drops, timestamp i64 in µs since 0000-01-01) then the packet.

Flags: 1001/1002: bit 0 received (controller→host), bit 1 command/event. 2001: adapter index in the
upper 16 bits, monitor opcode in the lower 16 (BlueZ ``monitor/bt.h``: 0/1 new/del index, 2 command,
3 event, 4/5 ACL TX/RX, 6/7 SCO TX/RX, 8 open index, 9 close index, 10 index info, 11 vendor diag,
12 system note, 13 user logging, 14-17 control, 18/19 ISO TX/RX).

Damage: a record whose length runs past the end of the file or is implausible is skipped by looking
for the next plausible record header (sane lengths and flags, timestamp near the last good one, and
a plausible record after it); each skipped range becomes a :class:`DamagedRange` and a warning.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import threading
from array import array
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzer.codes import (
    D_RECEIVED,
    D_SENT,
    D_UNKNOWN,
    H4_KIND_CODE,
    INT32_MAX,
    K_ACL,
    K_COMMAND,
    K_EVENT,
    K_ISO,
    K_MONITOR,
    K_SCO,
    K_UNKNOWN,
    PASS_WINDOW,
    PAYLOAD_HEAD,
    CaptureError,
    KeptPayloads,
    releasable,
    release_pages,
)
from analyzer.readers import (
    Source,
    backwards_warning,
    compiled,
    record_heads,
    skip_damaged,
    zero_run_end,
)

if TYPE_CHECKING:  # the frame table (polars) is built in read() only: `info` needs none
    from analyzer.capture import Capture, DamagedRange

Buffer = bytes | mmap.mmap

MAGIC = b"btsnoop\x00"
HEADER = struct.Struct(">8sII")
RECORD = struct.Struct(">IIIIq")
REC_LEN = RECORD.size  # 24

#: btsnoop timestamps count µs from 0000-01-01 (proleptic); subtract this for Unix µs.
EPOCH_DELTA_US = 0x00DCDDB30F2F8000

DATALINK_NAMES = {
    1001: "HCI UART without packet type (btsnoop 1001)",
    1002: "HCI UART H4 (btsnoop 1002)",
    1003: "HCI BSCP (btsnoop 1003)",
    1004: "HCI serial three-wire (btsnoop 1004)",
    2001: "Linux monitor (btsnoop 2001)",
}

#: largest plausible record: an HCI packet is at most 65535 + 5 bytes; monitor notes are short.
MAX_RECORD = 0x10000 + 16
#: a resynchronised record must lie within this many µs of the last good timestamp.
RESYNC_WINDOW_US = 48 * 3600 * 1_000_000
#: bytes screened per vectorised resync step
RESYNC_CHUNK = 1 << 20
#: all-zero record headers (orig 0, incl 0, flags 0, ts year 0) are padding, never a record
ZERO_HEADER = bytes(REC_LEN)

# Monitor opcode -> (kind code, direction code)
MONITOR_OPCODES: dict[int, tuple[int, int]] = {
    2: (K_COMMAND, D_SENT),
    3: (K_EVENT, D_RECEIVED),
    4: (K_ACL, D_SENT),
    5: (K_ACL, D_RECEIVED),
    6: (K_SCO, D_SENT),
    7: (K_SCO, D_RECEIVED),
    18: (K_ISO, D_SENT),
    19: (K_ISO, D_RECEIVED),
}
MONITOR_MAX_OPCODE = 0x20


HEAD3 = struct.Struct(">III")  # original length, included length, flags


#: a record header and the first byte after it (the H4 packet type in datalink 1002)
HEADER_DTYPE = np.dtype(
    [("orig", ">u4"), ("incl", ">u4"), ("flags", ">u4"), ("drops", ">u4"), ("ts", ">i8"),
     ("first", "u1")]
)  # fmt: skip


#: payload bytes of every frame handed to the frame index with the frame table (its HCI
#: headers: read while the record's pages are resident, not faulted in again); tests switch
#: it off to check the frame index read from the file gives the same
KEEP_HEADS = True
#: LE Meta event payload bytes the compiled walk keeps (:attr:`Capture.kept`, with the heads):
#: bounds the copy on a long scan's log, whose later reports are read from the file again
KEEP_BYTES = 16 << 20
#: record bytes gathered per record with them: the header, the H4 byte, then the payload's
HEAD_WIDTH = REC_LEN + 1 + PAYLOAD_HEAD


#: the lockstep walk: files at least this large, chains of about this many bytes each
FAST_MIN_SIZE = 1 << 22
FAST_SEGMENT = 1 << 18
#: bytes screened at the start of each segment for its first record boundary
FAST_WINDOW = 1024


def _valid(u: np.ndarray, cur: np.ndarray, size: int, flag_mask: int, flag_max: int) -> np.ndarray:
    """Which cursors hold a plausible record header (``u``: their orig, incl, flags)."""
    orig, incl, flags = u[:, 0], u[:, 1], u[:, 2]
    return (
        (incl <= orig)
        & (incl <= MAX_RECORD)
        & (cur + REC_LEN + incl <= size)
        & ((flags & flag_mask) <= flag_max)
        & ((orig != 0) | (flags != 0))
    )


def _head3(rows: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """orig, incl, flags (big-endian u32) of the record headers at ``cur``, as int64
    (``rows``: a 12-byte window at every offset, :func:`_windows`)."""
    return rows[cur].view(">u4").astype(np.int64)


def _windows(data: np.ndarray) -> np.ndarray:
    """A read-only (n - 11, 12) view: row i is the 12 bytes at offset i (no copy)."""
    n = max(data.shape[0] - 11, 0)
    return np.lib.stride_tricks.as_strided(data, shape=(n, 12), strides=(1, 1), writeable=False)


#: the lockstep walk runs window by window over this many bytes, releasing each behind it
#: (the compiled walk releases its pages as often)
WALK_WINDOW = PASS_WINDOW
#: bytes the compiled walk covers per call: all (it releases pages itself, so one call without
#: the GIL reads the file); tests make it small to check the walk resumes where it stopped
COMPILED_CALL = 1 << 62


def _walk(data: np.ndarray, start: int, size: int, datalink: int, buf: object) -> np.ndarray | None:
    """Record offsets by the lockstep walk (:func:`_fast_offsets`), one window of the file at a
    time from a proven record boundary, the window's pages released behind it — so the walk
    never holds more than a window of a memory-mapped file resident. None: use the careful
    record-by-record walk. Where the compiled walk is built, :func:`_compiled_columns` reads the
    file instead."""
    if size - start < FAST_MIN_SIZE:
        return None
    parts: list[np.ndarray] = []
    pos = start
    while pos < size:
        limit = pos + WALK_WINDOW
        if size - limit < WALK_WINDOW // 2:
            limit = size  # the last window takes the rest
        found = _fast_offsets(data, pos, size, datalink, limit)
        if found is None:
            return None
        offs, nxt = found
        parts.append(offs)
        release_pages(buf, pos, nxt)
        pos = nxt
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _fast_offsets(
    data: np.ndarray, start: int, size: int, datalink: int, limit: int | None = None
) -> tuple[np.ndarray, int] | None:
    """Record offsets of an undamaged file, walked in lockstep: the file is cut into segments,
    each segment's first record boundary is guessed by screening its first bytes (a header whose
    next two records are plausible too), and all segments' record chains are then followed
    together, one record per numpy step. The chain from the file header is right by
    construction; each chain must land exactly on the next live segment's start, which proves
    that start. A chain that overshoots the next start, or a chain that meets an implausible
    header, shows that start was a false guess inside a payload: that segment is dropped (with
    what its chain found) and the chain before it walks on. Damage the guesses cannot explain —
    an implausible header on a proven chain, padding, joined logs, a cut end — returns None and
    the record-by-record walk, which knows how to recover, reads the file instead.

    ``limit`` (default: the end of the file) ends the walk early: segments start before it and
    the last chain walks on to the first record boundary at or past it, which is returned with
    the offsets (the proven start of the next window)."""
    limit = size if limit is None else min(limit, size)
    soft = limit < size
    rows = _windows(data)
    flag_mask = 0xFFFF if datalink == 2001 else 0xFFFFFFFF
    flag_max = MONITOR_MAX_OPCODE if datalink == 2001 else 3
    seg_starts = np.arange(start + FAST_SEGMENT, limit - FAST_WINDOW - 3 * REC_LEN, FAST_SEGMENT)
    # -- a guessed first record boundary per segment (all segments screened at once) ---------
    win = seg_starts[:, None] + np.arange(FAST_WINDOW - REC_LEN, dtype=np.int64)
    cand = win.ravel()
    ok = _valid(_head3(rows, cand), cand, size, flag_mask, flag_max)
    for _ in range(2):  # the next two records must be plausible too
        idx = np.flatnonzero(ok)
        nxt = cand[idx] + REC_LEN + _head3(rows, cand[idx])[:, 1]
        good = nxt + REC_LEN <= size
        good[good] = _valid(_head3(rows, nxt[good]), nxt[good], size, flag_mask, flag_max)
        ok[idx] = good
        cand[idx] = np.where(good, nxt, cand[idx])
    ok2 = ok.reshape(win.shape)
    found = ok2.any(axis=1)
    guess = win[np.arange(win.shape[0]), ok2.argmax(axis=1)][found]
    starts = np.concatenate(([start], guess)).astype(np.int64)
    nseg = starts.shape[0]
    ends = np.concatenate((starts[1:], [limit])).astype(np.int64)
    boundary = size  # where the last chain ended (the next window's start)
    alive = np.ones(nseg, dtype=bool)
    done = np.zeros(nseg, dtype=bool)
    # -- follow every chain, one record per step ----------------------------------------------
    cur = starts.copy()
    seg = np.arange(nseg)
    out_off: list[np.ndarray] = []
    out_seg: list[np.ndarray] = []

    def drop(k: int) -> bool:
        """Segment k's start was a false guess: the live chain before it walks on to k's end.
        False when that chain had already proven k's start (then this is real damage)."""
        alive[k] = False
        p = k - 1
        while not alive[p]:
            p -= 1
        if done[p]:
            return False
        ends[p] = ends[k]
        return True

    while cur.shape[0]:
        keep = alive[seg]
        cur, seg = cur[keep], seg[keep]
        if not cur.shape[0]:
            break
        inside = cur + REC_LEN <= size
        u = np.zeros((cur.shape[0], 3), dtype=np.int64)
        u[inside] = _head3(rows, cur[inside])
        valid = inside & _valid(u, cur, size, flag_mask, flag_max)
        if not valid.all():
            for k in seg[~valid].tolist():
                if k == 0 or not alive[k]:
                    if k == 0:
                        return None
                    continue
                if not drop(k):
                    return None
            keep = valid & alive[seg]
            cur, seg, u = cur[keep], seg[keep], u[keep]
        out_off.append(cur)
        out_seg.append(seg)
        cur = cur + REC_LEN + u[:, 1]
        end = ends[seg]
        # the last live chain of an early-ended walk may cross the limit: it ends there
        open_end = (end == limit) if soft else np.zeros(cur.shape[0], dtype=bool)
        over = (cur > end) & ~open_end
        while over.any():  # overshot the next start: it was a false guess
            for i in np.flatnonzero(over).tolist():
                k = int(seg[i]) + 1
                while k < nseg and not alive[k]:
                    k += 1
                if k >= nseg or not drop(k):
                    return None  # overshot the end of the file: a cut or damaged record
            end = ends[seg]
            open_end = (end == limit) if soft else np.zeros(cur.shape[0], dtype=bool)
            over = (cur > end) & ~open_end
        fin = (cur == end) | (open_end & (cur >= end))
        if soft and (fin & open_end).any():
            boundary = int(cur[fin & open_end][0])
        if fin.any():
            done[seg[fin]] = True
            cur, seg = cur[~fin], seg[~fin]
    offs = np.concatenate(out_off)
    segs = np.concatenate(out_seg)
    offs = offs[alive[segs]]
    offs.sort()
    return offs, boundary


@dataclass
class _Columns:
    """The frame table's columns of a btsnoop file, in their final dtypes."""

    time_us: np.ndarray  # int64, Unix µs
    offset: np.ndarray  # int64, the payload's offset (after a stripped H4 byte)
    length: np.ndarray  # int32
    orig_length: np.ndarray  # int32, clipped to 2**31 - 1
    kind: np.ndarray  # uint8 codes into KINDS
    direction: np.ndarray  # uint8 codes into DIRECTIONS
    adapter: np.ndarray | None  # uint16 (monitor logs), else None
    heads: np.ndarray | None  # (n, PAYLOAD_HEAD) uint8: each payload's first bytes (KEEP_HEADS)
    drops: tuple[int, int, int]  # cumulative drops of the first and last record, and the most
    kept: KeptPayloads | None = None  # the LE Meta events copied out as the walk passed them
    #: how many records have an earlier timestamp than the one before (None: not counted yet)
    backwards: int | None = None


#: records converted per step (the header gather and its int64 temporaries stay this small)
COLUMN_CHUNK = 1 << 18


def _monitor_luts() -> tuple[np.ndarray, np.ndarray]:
    """Monitor opcode → (kind code, direction code)."""
    kind_lut = np.full(MONITOR_MAX_OPCODE + 1, K_MONITOR, dtype=np.uint8)
    dir_lut = np.full(MONITOR_MAX_OPCODE + 1, D_UNKNOWN, dtype=np.uint8)
    for op, (k_code, d_code) in MONITOR_OPCODES.items():
        kind_lut[op] = k_code
        dir_lut[op] = d_code
    return kind_lut, dir_lut


MONITOR_KIND, MONITOR_DIRECTION = _monitor_luts()


def _convert(raw: np.ndarray, rec: np.ndarray, datalink: int) -> _Columns:
    """The columns of one chunk of records from their gathered bytes ``raw`` (a row per record:
    its header, then — when ``raw`` is :data:`HEAD_WIDTH` wide — the bytes after it) at the
    record offsets ``rec``, which becomes the payload offset column (changed in place)."""
    m = int(rec.shape[0])
    hdr = np.ascontiguousarray(raw[:, : HEADER_DTYPE.itemsize]).view(HEADER_DTYPE)[:, 0]
    incl = hdr["incl"].astype(np.int64)
    orig = hdr["orig"].astype(np.int64)
    flags = hdr["flags"].astype(np.int64)
    d = hdr["drops"]
    drops = (int(d[0]), int(d[-1]), int(d.max())) if m else (0, 0, 0)
    time_us = np.subtract(hdr["ts"], EPOCH_DELTA_US, dtype=np.int64)
    adapter = None
    if datalink == 1002:
        has = incl > 0
        h4 = np.where(has, hdr["first"], 0).astype(np.uint8)
        kind = H4_KIND_CODE[h4]
        kind[~has] = K_ACL  # an empty record: nothing to say (rare)
        direction = np.where(flags & 1, D_RECEIVED, D_SENT).astype(np.uint8)
        # the H4 byte is dropped for standard types; a non-standard one stays in the payload
        strip = (has & (kind != K_UNKNOWN)).astype(np.int64)
    elif datalink == 1001:
        is_ce = (flags & 2) != 0
        kind = np.where(is_ce, np.where(flags & 1, K_EVENT, K_COMMAND), K_ACL).astype(np.uint8)
        direction = np.where(flags & 1, D_RECEIVED, D_SENT).astype(np.uint8)
        strip = np.zeros(m, dtype=np.int64)
    else:  # 2001 monitor
        opcode = flags & 0xFFFF
        kind = MONITOR_KIND[opcode]
        direction = MONITOR_DIRECTION[opcode]
        adapter = ((flags >> 16) & 0xFFFF).astype(np.uint16)
        strip = np.zeros(m, dtype=np.int64)
    rec += REC_LEN + strip
    length = (incl - strip).astype(np.int32)
    orig_length = np.clip(orig - strip, 0, INT32_MAX).astype(np.int32)
    heads = None
    if raw.shape[1] >= HEAD_WIDTH:  # the payload's first bytes (after a stripped H4 byte)
        heads = np.where(strip[:, None] == 1, raw[:, REC_LEN + 1 :], raw[:, REC_LEN:-1])
        heads[np.arange(PAYLOAD_HEAD)[None, :] >= length[:, None]] = 0  # zero past the end
    return _Columns(time_us, rec, length, orig_length, kind, direction, adapter, heads, drops)


#: the array columns of :class:`_Columns` (adapter and heads: None where not kept)
_ARRAYS = ("time_us", "offset", "length", "orig_length", "kind", "direction", "adapter", "heads")


def _allocate(
    rows: int, datalink: int, offset: np.ndarray | None = None, *, heads: bool = True
) -> _Columns:
    """Empty columns for ``rows`` records (``offset``: the array to use as the offset column;
    ``heads``: with the payloads' first bytes when :data:`KEEP_HEADS`)."""
    return _Columns(
        time_us=np.empty(rows, np.int64),
        offset=np.empty(rows, np.int64) if offset is None else offset,
        length=np.empty(rows, np.int32),
        orig_length=np.empty(rows, np.int32),
        kind=np.empty(rows, np.uint8),
        direction=np.empty(rows, np.uint8),
        adapter=np.empty(rows, np.uint16) if datalink == 2001 else None,
        heads=np.empty((rows, PAYLOAD_HEAD), np.uint8) if KEEP_HEADS and heads else None,
        drops=(0, 0, 0),
    )


def _columns(data: np.ndarray, rec: np.ndarray, buf: object, datalink: int) -> _Columns:
    """Gather the record headers at ``rec`` and convert them, chunk by chunk, into the frame
    table's final dtypes (no full-length int64 temporaries beside the table; ``rec`` itself
    becomes the offset column)."""
    n = int(rec.shape[0])
    out = _allocate(n, datalink, offset=rec)
    width = HEAD_WIDTH if KEEP_HEADS else HEADER_DTYPE.itemsize
    first = last = most = 0
    for a in range(0, n, COLUMN_CHUNK):
        part = rec[a : a + COLUMN_CHUNK]
        piece = _convert(record_heads(data, part, width, buf), part, datalink)
        for name in _ARRAYS:
            column = getattr(out, name)
            if column is not None:
                column[a : a + part.shape[0]] = getattr(piece, name)
        first = piece.drops[0] if a == 0 else first
        last, most = piece.drops[1], max(most, piece.drops[2])
    out.drops = (first, last, most)
    return out


def _luts(datalink: int) -> bytes:
    """The code tables the compiled column walk reads (``_btsnoop_c.columns``): kind then
    direction code by H4 type (1002) or monitor opcode (2001), then the codes of ACL, event,
    command, unknown, sent and received."""
    kind = np.full(256, K_UNKNOWN, dtype=np.uint8)
    direction = np.full(256, D_UNKNOWN, dtype=np.uint8)
    if datalink == 2001:
        kind[: MONITOR_KIND.size], direction[: MONITOR_DIRECTION.size] = (
            MONITOR_KIND, MONITOR_DIRECTION
        )  # fmt: skip
    else:
        kind[:] = H4_KIND_CODE
    codes = bytes((K_ACL, K_EVENT, K_COMMAND, K_UNKNOWN, D_SENT, D_RECEIVED))
    return kind.tobytes() + direction.tobytes() + codes


def _compiled_columns(
    ext: ModuleType,
    data: np.ndarray,
    start: int,
    size: int,
    datalink: int,
    buf: object,
    *,
    for_analysis: bool = True,
) -> _Columns | None:
    """The frame table's columns in one pass of the compiled walk, which writes each record's
    fields (and, ``for_analysis``, its payload's first bytes and the LE Meta events' payloads
    while they are in memory) into the columns as it steps over it, releasing the pages of a
    mapped file every :data:`WALK_WINDOW` bytes behind it — in one call without the GIL. The
    columns are allocated for the most records the file could hold (24 bytes each): pages never
    written are never resident, and the filled part is returned as views. None at the first
    record the walk cannot explain: the careful walk reads the file."""
    flag_mask = 0xFFFF if datalink == 2001 else 0xFFFFFFFF
    flag_max = MONITOR_MAX_OPCODE if datalink == 2001 else 3
    try:
        cols = _allocate(max((size - start) // REC_LEN, 0) + 1, datalink, heads=for_analysis)
    except MemoryError:  # no address space for that many: the careful walk reads the file
        return None
    none = np.zeros(0, np.uint8)
    luts = _luts(datalink)
    # the LE Meta events' payloads (no more than the file) and their (offset, end) pairs; an
    # event holds at least 16 bytes that matter, so a pair per 16 bytes is room enough
    keep = min(KEEP_BYTES, max(size - start, 0)) if cols.heads is not None else 0
    blob = np.empty(keep, np.uint8)
    kept_at = np.empty((keep // 16 + 1, 2), np.int64)
    keep_n = keep_used = 0
    keep_full = keep == 0
    release = WALK_WINDOW if releasable(buf) else 0
    n = 0
    pos = start
    first = last = most_drops = backwards = 0
    while True:
        got, stop, status, d0, d1, dmax, keep_n, keep_used, keep_full, back = ext.columns(
            data[:size], pos, pos + COMPILED_CALL, flag_mask, flag_max, MAX_RECORD, datalink,
            EPOCH_DELTA_US, luts, cols.offset[n:], cols.time_us[n:], cols.length[n:],
            cols.orig_length[n:], cols.kind[n:], cols.direction[n:],
            cols.adapter[n:] if cols.adapter is not None else none,
            cols.heads[n:] if cols.heads is not None else none,
            blob, kept_at, keep_n, keep_used, keep_full, release,
        )  # fmt: skip
        if status == 2:
            return None
        if got:
            first = d0 if n == 0 else first
            last, most_drops = d1, max(most_drops, dmax)
            backwards += back + int(n > 0 and cols.time_us[n] < cols.time_us[n - 1])
        n += got
        if status == 0:
            break
        pos = stop
    for name in _ARRAYS:  # the filled rows
        column = getattr(cols, name)
        if column is not None:
            setattr(cols, name, column[:n])
    cols.drops = (first, last, most_drops)
    cols.backwards = backwards
    if keep_n:
        start_at = np.zeros(keep_n + 1, np.int64)
        start_at[1:] = kept_at[:keep_n, 1]
        cols.kept = KeptPayloads(kept_at[:keep_n, 0].copy(), start_at, blob[:keep_used])
    return cols


# -- prefetch: the walk on a thread while a command imports -------------------------------------

#: files being walked ahead of their read: (device, inode, size, mtime, ctime) → the thread,
#: its result, the file's datalink
_PREFETCH: dict[tuple[int, int, int, int, int], tuple[threading.Thread, list[_Columns], int]] = {}


def _file_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    # (ctime too: a file rewritten in place with its mtime restored still changes it)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def prefetch(path: str) -> None:
    """Start the compiled walk of a btsnoop log on a thread, so that a command's imports
    (polars, the model, the rules: a good part of a second's start-up) overlap the read — the
    walk releases the GIL. :func:`read` of the same unchanged file takes its columns (waiting
    for the thread if need be). Does nothing unless the compiled walk is built and ``path`` is
    a plain btsnoop file; a walk that fails or declines leaves the read to walk it itself."""
    ext = compiled()
    if ext is None:
        return
    try:  # only a regular file: opening a FIFO would take (and then drop) its writer
        if not stat.S_ISREG(os.stat(path).st_mode):
            return
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size <= HEADER.size:
            return
        head = os.pread(fd, HEADER.size, 0)
        if len(head) < HEADER.size or head[:8] != MAGIC:
            return
        _magic, version, datalink = HEADER.unpack_from(head, 0)
        if version != 1 or datalink not in (1001, 1002, 2001):
            return
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return
    finally:
        os.close(fd)
    result: list[_Columns] = []

    def walk() -> None:
        data = np.frombuffer(mapped, dtype=np.uint8)
        try:
            cols = _compiled_columns(ext, data, HEADER.size, data.size, datalink, mapped)
            if cols is not None:
                result.append(cols)
        except Exception:  # (the read walks the file itself)
            pass

    thread = threading.Thread(target=walk, name="btsnoop-prefetch", daemon=True)
    _PREFETCH[_file_key(st)] = (thread, result, datalink)
    thread.start()


def _prefetched(src: Source) -> tuple[_Columns, int] | None:
    """The columns a :func:`prefetch` of this very file walked and the datalink it walked them
    as (None: none, or the file is not the one prefetched: compressed, changed since)."""
    if not _PREFETCH or src.compressed:
        return None
    try:
        key = _file_key(os.stat(src.path))
    except (OSError, ValueError):
        return None
    found = _PREFETCH.pop(key, None)
    if found is None or key[2] != len(src.buffer):
        return None
    thread, result, walked_as = found
    thread.join()
    return (result[0], walked_as) if result else None


def sniff(head: bytes) -> bool:
    return head[:8] == MAGIC


def _plausible(
    buf: Buffer, off: int, size: int, datalink: int, last_ts: int | None, *, strict: bool
) -> bool:
    """Is there a plausible record header at ``off``? (An all-zero header is padding.)"""
    if off + REC_LEN > size:
        return False
    orig, incl, flags, _drops, ts = RECORD.unpack_from(buf, off)
    if incl > orig or incl > MAX_RECORD or off + REC_LEN + incl > size or not (orig or flags):
        return False
    if datalink == 2001:
        if (flags & 0xFFFF) > MONITOR_MAX_OPCODE:
            return False
    elif flags > 3:
        return False
    if datalink == 1002 and incl and buf[off + REC_LEN] not in (1, 2, 3, 4, 5):
        # non-standard H4 types exist in the wild, but a resync anchor should be a standard one
        return not strict
    return last_ts is None or abs(ts - last_ts) <= RESYNC_WINDOW_US


def _be32_all(chunk: np.ndarray) -> np.ndarray:
    """Big-endian u32 (as int64) starting at every byte of ``chunk`` (``chunk.size - 3``)."""
    c = chunk.astype(np.int64)
    return (c[:-3] << 24) | (c[1:-2] << 16) | (c[2:-1] << 8) | c[3:]


def _resync(buf: Buffer, start: int, size: int, datalink: int, last_ts: int | None) -> int | None:
    """Find the next offset >= start where two consecutive plausible records (or one ending
    exactly at EOF) begin. Candidates are screened with numpy over :data:`RESYNC_CHUNK`-byte
    windows (every offset at once), then checked one by one."""
    data = np.frombuffer(buf, dtype=np.uint8)
    pos = start
    while pos + REC_LEN <= size:
        end = min(size, pos + RESYNC_CHUNK + REC_LEN)
        u = _be32_all(data[pos:end])
        m = u.size - 20  # offsets with a whole 24-byte header in the window
        if m <= 0:
            break
        orig, incl, flags = u[:m], u[4 : m + 4], u[8 : m + 8]
        offs = np.arange(pos, pos + m, dtype=np.int64)
        ok = (incl <= orig) & (incl <= MAX_RECORD) & (offs + REC_LEN + incl <= size)
        ok &= (orig != 0) | (flags != 0)
        ok &= (flags & 0xFFFF) <= MONITOR_MAX_OPCODE if datalink == 2001 else flags <= 3
        if last_ts is not None:
            hi = u[16 : m + 16]
            hi = np.where(hi >= 1 << 31, hi - (1 << 32), hi)
            ts = (hi << 32) | u[20 : m + 20]
            ok &= np.abs(ts - last_ts) <= RESYNC_WINDOW_US
        for rel in np.flatnonzero(ok).tolist():
            cand = pos + rel
            if not _plausible(buf, cand, size, datalink, last_ts, strict=True):
                continue
            nxt = cand + REC_LEN + int(incl[rel])
            if nxt == size or _plausible(buf, nxt, size, datalink, None, strict=False):
                return cand
        pos += m
    return None


def _join(
    buf: Buffer,
    off: int,
    size: int,
    datalink: int,
    warnings: list[str],
    damaged: list[DamagedRange],
) -> int:
    """A btsnoop file header at ``off`` (two logs joined end to end): where reading goes on."""
    from analyzer.capture import DamagedRange

    if off + HEADER.size > size:
        damaged.append(DamagedRange(off, size, "a second btsnoop header, cut by end of file"))
        return size
    _magic, version, link = HEADER.unpack_from(buf, off)
    if version != 1 or link != datalink:
        damaged.append(
            DamagedRange(
                off, size, f"a second btsnoop header (version {version}, datalink {link}) at "
                f"offset {off}: a different log, not read"
            )
        )  # fmt: skip
        return size
    warnings.append(
        f"a second btsnoop header at offset {off}: two logs joined end to end, read as one "
        "capture (times may jump at the join)"
    )
    return off + HEADER.size


def _drops_and_warnings(cols: _Columns) -> tuple[int, list[str]]:
    """The capture's drop count (the last record's cumulative counter, or the largest when it
    was reset) and the warnings its columns call for."""
    drops_first, drops_last, drops_max = cols.drops
    total = drops_max if drops_first > drops_last else drops_last
    warnings = [f"the capture reports {total} dropped packets"] if total else []
    return total, warnings + backwards_warning(cols.time_us, cols.backwards)


def quick_summary(path: str) -> dict[str, Any] | None:
    """``btanalyze info`` of an uncompressed btsnoop log that the compiled walk reads end to
    end, from the reader's columns alone (no frame table, so polars is not loaded): the dict
    ``load(path).summary()`` gives. None when the log needs the full reader — no compiled walk,
    gzip, btsnooz records, damage, padding, joined logs, or anything that is not btsnoop."""
    ext = compiled()
    if ext is None:
        return None
    from analyzer.readers import _open_bytes

    try:
        buf, size = _open_bytes(path)
    except CaptureError:
        return None  # the full reader says why
    if size < HEADER.size or buf[:8] != MAGIC:
        return None
    _magic, version, datalink = HEADER.unpack_from(buf, 0)
    if version != 1 or datalink not in (1001, 1002, 2001):
        return None
    if size > HEADER.size and not _plausible(buf, HEADER.size, size, datalink, None, strict=True):
        return None
    data = np.frombuffer(buf, np.uint8)
    cols = _compiled_columns(ext, data, HEADER.size, size, datalink, buf, for_analysis=False)
    if cols is None:
        return None
    from analyzer.codes import DIRECTIONS, KINDS, code_counts, iso_utc
    from analyzer.readers import filtered

    drops, warnings = _drops_and_warnings(cols)
    reason = filtered.detect_columns(path, "btsnoop", datalink, cols.kind, cols.length,
                                     cols.orig_length, cols.offset, buf)  # fmt: skip
    if reason:
        warnings.append(filtered.warning(reason))
    n = int(cols.offset.size)
    first = int(cols.time_us.min()) if n else None
    last = int(cols.time_us.max()) if n else None
    return {
        "path": path,
        "format": "btsnoop",
        "link_type": datalink,
        "link_type_name": DATALINK_NAMES.get(datalink, f"btsnoop datalink {datalink}"),
        "size": size,
        "compressed": False,
        "filtered": reason is not None,
        "frames": n,
        "frames_by_kind": code_counts(cols.kind, KINDS),
        "frames_by_direction": code_counts(cols.direction, DIRECTIONS),
        "first_time": iso_utc(first),
        "last_time": iso_utc(last),
        "first_time_us": first,
        "last_time_us": last,
        "duration_s": None if first is None or last is None else (last - first) / 1e6,
        "truncated": int((cols.orig_length > cols.length).sum()),
        "drops": drops,
        "damaged_bytes": 0,
        "warnings": warnings,
    }


def read(src: Source) -> Capture:
    prefetched = _prefetched(src)  # (taken whatever happens next: its columns are large)
    buf = src.buffer
    size = len(buf)
    if size < HEADER.size:
        raise CaptureError(f"not a capture file: btsnoop header cut short ({size} of 16 bytes)")
    _magic, version, datalink = HEADER.unpack_from(buf, 0)
    if version != 1:
        raise CaptureError(f"unsupported btsnoop version {version} (only version 1 exists)")
    if datalink not in (1001, 1002, 2001):
        raise CaptureError(f"unsupported btsnoop datalink {datalink}")
    # btsnooz records behind a btsnoop header (issue 3 §2): hand over to the btsnooz reader.
    if size > HEADER.size and not _plausible(buf, HEADER.size, size, datalink, None, strict=True):
        from analyzer.readers import btsnooz

        if btsnooz.looks_like_records(buf, HEADER.size):
            return btsnooz.read_behind_btsnoop(src, HEADER.size)

    warnings: list[str] = []
    damaged: list[DamagedRange] = []
    offs = array("q")  # record offsets; the header fields are gathered from them afterwards

    unpack = RECORD.unpack_from
    unpack_head = HEAD3.unpack_from
    off = HEADER.size
    prev_off: int | None = None
    max_incl = MAX_RECORD
    flag_mask = 0xFFFF if datalink == 2001 else 0xFFFFFFFF  # monitor: opcode in the low half
    flag_max = MONITOR_MAX_OPCODE if datalink == 2001 else 3
    append = offs.append
    data = np.frombuffer(buf, dtype=np.uint8) if size else np.zeros(0, np.uint8)
    ext = compiled()
    cols = prefetched[0] if prefetched is not None and prefetched[1] == datalink else None
    if cols is None and ext is not None:
        cols = _compiled_columns(ext, data, off, size, datalink, buf)
    # (the compiled walk declined: the lockstep walk would stop at the same record)
    fast = _walk(data, off, size, datalink, buf) if ext is None else None
    if cols is not None or fast is not None:
        off = size  # every record found by the compiled or the lockstep walk
    if off < size:  # the careful walk (imported here: the fast walks need no polars)
        from analyzer.capture import DamagedRange
    while off < size:
        # the hot loop: one unpack, five comparisons, one append per record
        if off + REC_LEN <= size:
            orig, incl, flags = unpack_head(buf, off)
            end = off + REC_LEN + incl
            if (
                incl <= orig
                and incl <= max_incl
                and end <= size
                and flags & flag_mask <= flag_max
                and (orig or flags)  # an all-zero header is padding
            ):
                append(off)
                prev_off = off
                off = end
                continue
        # -- padding: zero bytes where a record header should be (zero-filled log tails) -------
        if buf[off : off + REC_LEN] == ZERO_HEADER or (
            off + REC_LEN > size and not any(buf[off:size])
        ):
            zend = zero_run_end(data, off)
            if zend >= size:
                warnings.append(f"{size - off} bytes of zero padding at offset {off} ignored")
                break
            cand = _resync(buf, max(off + 1, zend - REC_LEN + 1), size, datalink, None)
            if cand is None:
                damaged.append(DamagedRange(off, size, "zero padding then no plausible record"))
                break
            warnings.append(f"{cand - off} bytes of zero padding at offset {off} ignored")
            prev_off = None
            off = cand
            continue
        # -- a second btsnoop header: files joined end to end (a rotated log joined by hand) --
        if buf[off : off + 8] == MAGIC:
            off = _join(buf, off, size, datalink, warnings, damaged)
            prev_off = None
            continue
        # -- damage: the record at `off` is cut or implausible -------------------------------
        # The previous record's length may be the corrupt one (it then swallowed real records):
        # look for a resync point inside it first.
        search_from = off + 1 if prev_off is None else prev_off + REC_LEN
        last_ts = unpack(buf, offs[-1])[4] if offs else None
        cand = _resync(buf, search_from, size, datalink, last_ts)
        joined = buf.find(MAGIC, search_from, size if cand is None else cand + 8)
        if joined >= 0 and (cand is None or joined <= cand):
            if joined != off:
                skip_damaged(offs, damaged, prev_off, off, joined)
            off = _join(buf, joined, size, datalink, warnings, damaged)
            prev_off = None
            continue
        if cand is None:
            if off + REC_LEN > size:
                reason = "record header cut by end of file"
            else:
                orig, incl, *_ = unpack(buf, off)
                cut = off + REC_LEN + incl > size and incl <= orig and incl <= max_incl
                reason = (
                    f"last record cut: {incl} bytes announced, {size - off - REC_LEN} present"
                    if cut
                    else "no plausible record after this offset"
                )
            damaged.append(DamagedRange(off, size, reason))
            break
        skip_damaged(offs, damaged, prev_off, off, cand)
        prev_off = None
        off = cand

    if cols is None:
        rec = fast if fast is not None else np.frombuffer(offs, dtype=np.int64).copy()
        cols = _columns(data, rec, buf, datalink)
    total_drops, found = _drops_and_warnings(cols)
    warnings += found
    for d in damaged:
        warnings.append(str(d))

    from analyzer.capture import Capture, CaptureMeta, build_frames

    frames = build_frames(
        time_us=cols.time_us,
        direction=cols.direction,
        kind=cols.kind,
        offset=cols.offset,
        length=cols.length,
        orig_length=cols.orig_length,
        adapter=cols.adapter if cols.adapter is not None else 0,
        link_type=datalink,
    )
    meta = CaptureMeta(
        format="btsnoop",
        link_type=datalink,
        link_type_name=DATALINK_NAMES.get(datalink, f"btsnoop datalink {datalink}"),
        path=src.path,
        size=src.size,
        compressed=src.compressed,
        drops=total_drops,
    )
    return Capture(
        meta=meta, frames=frames, buffer=buf, warnings=warnings, damaged=damaged,
        heads=cols.heads, kept=cols.kept,
    )  # fmt: skip
