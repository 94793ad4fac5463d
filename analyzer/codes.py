"""Frame codes and byte-buffer helpers shared by the readers and the frame table, without
polars: the kinds and directions of frames and their integer codes, the H4 packet-type table,
how a sequential pass releases a mapped file's pages, and the capture error. ``btanalyze info``
reads a btsnoop log with these and numpy alone (:func:`analyzer.readers.btsnoop.quick_summary`);
:mod:`analyzer.capture` re-exports them beside the polars frame table."""

from __future__ import annotations

import itertools
import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

KINDS: tuple[str, ...] = (
    "command",
    "event",
    "acl",
    "sco",
    "iso",
    "ll_adv",
    "ll_data",
    "monitor",
    "unknown",
)
DIRECTIONS: tuple[str, ...] = ("sent", "received", "unknown")


#: H4 packet-type byte -> kind (Core Vol 4 Part A §2). Other values are non-standard: ``unknown``.
H4_KIND: dict[int, str] = {1: "command", 2: "acl", 3: "sco", 4: "event", 5: "iso"}


# Integer codes used by readers while building columns (index into KINDS / DIRECTIONS).
K_COMMAND, K_EVENT, K_ACL, K_SCO, K_ISO, K_LL_ADV, K_LL_DATA, K_MONITOR, K_UNKNOWN = range(9)
D_SENT, D_RECEIVED, D_UNKNOWN = range(3)

#: lookup table H4 type byte -> kind code, for vectorised classification.
H4_KIND_CODE = np.full(256, K_UNKNOWN, dtype=np.uint8)
for _t, _k in H4_KIND.items():
    H4_KIND_CODE[_t] = KINDS.index(_k)


#: page size for releasing mapped file pages behind a sequential pass
PAGE = mmap.PAGESIZE
#: bytes of the file a sequential pass handles between releases (bounds its resident pages)
PASS_WINDOW = 32 << 20


def releasable(buffer: object) -> bool:
    """Can :func:`release_pages` (or the compiled walk, which does the same) drop this
    buffer's pages: a memory-mapped file on a platform with ``MADV_DONTNEED``."""
    return isinstance(buffer, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED")


def release_pages(buffer: object, lo: int, hi: int) -> None:
    """Drop the resident pages of a memory-mapped capture between byte offsets ``lo`` and
    ``hi`` (whole pages only) once a sequential pass is done with them: they are clean file
    pages, read back from the page cache if a later stage needs them, so peak memory is one
    window of the file instead of all of it. No-op for in-memory buffers."""
    if not isinstance(buffer, mmap.mmap) or not releasable(buffer):
        return
    a = -(-max(lo, 0) // PAGE) * PAGE
    b = (min(hi, len(buffer)) // PAGE) * PAGE
    if b > a:
        try:
            buffer.madvise(mmap.MADV_DONTNEED, a, b - a)
        except (OSError, ValueError):  # a platform without it: memory stays as before
            return


def code_counts(codes: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    """How many frames carry each code (an index into ``names``): the names that occur, in
    ``names``' order (a frame table's kind or direction column as its integer codes)."""
    counts = np.bincount(codes, minlength=len(names)).tolist()
    return {name: n for name, n in zip(names, counts, strict=True) if n}


def iter_payloads(buffer: Any, offsets: np.ndarray, lengths: np.ndarray) -> Iterator[bytes]:
    """The bytes of many frames given their offset/length columns, in order: read window by
    window from a memory-mapped capture with sorted offsets, each window's pages released after
    it (:func:`release_pages`) — such frames may be scattered over the whole file, and a read
    maps its whole page-cache folio."""
    offs, lens = offsets.tolist(), lengths.tolist()
    if not isinstance(buffer, mmap.mmap) or len(offs) < 2 or offs != sorted(offs):
        for o, n in zip(offs, lens, strict=True):
            yield bytes(buffer[o : o + n])
        return
    for a, b in windows(offsets):
        for o, n in zip(offs[a:b], lens[a:b], strict=True):
            yield bytes(buffer[o : o + n])
        release_pages(buffer, offs[a], offs[b - 1] + lens[b - 1])


_libc: Any = None


def release_heap() -> None:
    """Return the C heap's free memory to the system (glibc ``malloc_trim``) between build
    stages: numpy's large temporaries come from that heap, and glibc's growing mmap threshold
    otherwise keeps them resident after they are freed. No-op where glibc is absent."""
    global _libc
    if _libc is None:
        import ctypes
        import ctypes.util

        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


#: payload bytes a reader may keep per frame (:attr:`Capture.heads`): every HCI header field
#: the frame index reads (Core Vol 4 Part E §5.4: ACL header + L2CAP basic header = 8 bytes)
PAYLOAD_HEAD = 8


@dataclass(slots=True)
class KeptPayloads:
    """Payloads a reader copied out while their pages were in memory (the LE Meta events: the
    advertising reports a later pass reads all of), so that the pass does not fault the
    released pages of a large file back in. Row k: the frame whose payload starts at
    ``offset[k]`` in the buffer (sorted) is ``blob[start[k] : start[k + 1]]``."""

    offset: np.ndarray  # int64, the kept frames' payload offsets in the capture buffer
    start: np.ndarray  # int64, len(offset) + 1: where each payload starts in ``blob``, then its end
    blob: np.ndarray  # uint8

    def find(self, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
        """Where each of the frames at ``offsets`` (at most ``lengths`` bytes each) starts in
        ``blob``; None unless every one was kept."""
        n = self.offset.size
        if n == 0 or offsets.size == 0:
            return None
        pos = np.minimum(np.searchsorted(self.offset, offsets), n - 1)
        kept = self.start[pos + 1] - self.start[pos]
        if not bool(((self.offset[pos] == offsets) & (lengths <= kept)).all()):
            return None
        return self.start[pos]


def windows(offsets: np.ndarray, span: int = PASS_WINDOW) -> list[tuple[int, int]]:
    """Row ranges [i, j) of sorted byte ``offsets`` covering at most about ``span`` bytes each:
    a sequential pass handles one range, then releases its pages (:func:`release_pages`)."""
    n = int(offsets.shape[0])
    if n == 0:
        return []
    first, last = int(offsets[0]), int(offsets[-1])
    if last - first <= span:
        return [(0, n)]
    cuts = np.searchsorted(offsets, np.arange(first + span, last + 1, span), "left")
    bounds = [0, *[int(c) for c in cuts if 0 < c < n], n]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


class CaptureError(Exception):
    """The input is not a capture we can read (the message is one line naming the reason)."""


def iso_utc(time_us: int | None) -> str | None:
    """Unix microseconds -> ISO 8601 UTC with microseconds and a Z suffix."""
    if time_us is None:
        return None
    try:
        dt = datetime.fromtimestamp(time_us / 1e6, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    secs, us = divmod(time_us, 1_000_000)
    dt = datetime.fromtimestamp(secs, tz=UTC).replace(microsecond=us)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


INT32_MAX = (1 << 31) - 1
