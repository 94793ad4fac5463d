"""Bounds on what a hostile input may make us inflate, read or print (issue 18 §3).

Every decompression (a gzip file, a gzip inside a zip entry, a zip entry itself, the zlib stream
of a btsnooz log, in any nesting) is streamed through :func:`inflate` or :func:`read_zip_entry`,
which count the bytes they produce and stop *before* producing more than the limit: a bomb is
refused with a one-line :class:`LimitError` (a :class:`CaptureError`, exit 2), never inflated.
Declared sizes (zip central directory, gzip trailer) are never trusted; only bytes produced count.

Limits (all on decompressed bytes):

* :data:`MAX_INFLATED_TOTAL` — everything one input inflates, over every nesting level (a gzip
  inside a zip entry counts against the same budget as the zip entry).
* :data:`MAX_ENTRY` — one stream (a gzip member chain, one zip entry, one btsnooz zlib stream).
* :data:`MAX_RATIO` — one stream may produce at most this many times its compressed size, once
  past :data:`RATIO_FLOOR` (real captures compress 1-7×, bugreport text ~10×; bombs 1000×).
* :data:`MAX_ZIP_ENTRIES` — entries in a zip's central directory.
* :data:`MAX_ZIP_CAPTURES` — capture entries in one zip that are parsed (the rest are listed
  as not examined, with a warning).
"""

from __future__ import annotations

import mmap
import zipfile
import zlib
from dataclasses import dataclass, field

from analyzer.codes import CaptureError

MiB = 1 << 20
#: everything one input may inflate, all nesting levels together
MAX_INFLATED_TOTAL = 2048 * MiB
#: one decompressed stream (gzip, zip entry, btsnooz zlib)
MAX_ENTRY = 1024 * MiB
#: one stream may inflate to at most MAX_RATIO × its compressed size ...
MAX_RATIO = 30
#: ... once past this many bytes (small inputs may compress very well)
RATIO_FLOOR = 128 * MiB
#: entries in a zip's central directory
MAX_ZIP_ENTRIES = 50_000
#: capture entries of one zip that are parsed
MAX_ZIP_CAPTURES = 32
#: input bytes fed to the inflater per step
CHUNK = 64 * 1024


class LimitError(CaptureError):
    """An input over one of the limits above (a decompression bomb, a zip of too many entries)."""


@dataclass
class Budget:
    """Decompressed bytes still allowed for one input (shared across nesting levels)."""

    remaining: int = field(default_factory=lambda: MAX_INFLATED_TOTAL)

    def cap_for(self, compressed: int) -> tuple[int, str]:
        """The most one stream of ``compressed`` bytes may produce, and the limit's name."""
        by_ratio = max(RATIO_FLOOR, MAX_RATIO * compressed)
        caps = [
            (by_ratio, f"{MAX_RATIO}× its {_size(compressed)}, at least {_size(RATIO_FLOOR)}"),
            (MAX_ENTRY, "the per-stream limit"),
            (self.remaining, f"the {_size(MAX_INFLATED_TOTAL)} total for one input"),
        ]
        return min(caps, key=lambda c: c[0])


def _size(n: int) -> str:
    if n >= MiB:
        return f"{n / MiB:.0f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} bytes"


def _refuse(what: str, cap: int, why: str) -> LimitError:
    return LimitError(f"refused: {what} inflates past {_size(cap)} ({why}); a decompression bomb?")


def inflate(
    data: bytes | memoryview | mmap.mmap,
    *,
    wbits: int,
    what: str,
    budget: Budget,
    members: bool = False,
) -> tuple[bytes, str | None]:
    """Decompress ``data`` (zlib ``wbits``: 31 gzip, 15 zlib) within the budget.

    ``members``: a gzip file may hold several members back to back (all are read). Returns the
    bytes and a warning for a damaged or cut stream or trailing bytes (what could be decompressed
    is kept). Raises :class:`LimitError` before producing more than the cap."""
    mv = memoryview(data).cast("B")
    n = len(mv)
    cap, why = budget.cap_for(n)
    out: list[bytes] = []
    total = 0
    pos = 0
    warning: str | None = None
    while pos < n:
        d = zlib.decompressobj(wbits)
        start = pos
        try:
            while pos < n and not d.eof:
                chunk: bytes | memoryview = mv[pos : pos + CHUNK]
                pos += len(chunk)
                while chunk:
                    piece = d.decompress(chunk, cap - total + 1)
                    total += len(piece)
                    if total > cap:
                        raise _refuse(what, cap, why)
                    out.append(piece)
                    if d.eof:
                        break
                    chunk = d.unconsumed_tail
        except zlib.error as exc:
            warning = f"{what} damaged ({exc}); read {total} decompressed bytes"
            break
        if not d.eof:
            warning = f"{what} cut short; read {total} decompressed bytes"
            break
        pos -= len(d.unused_data)
        if not members or pos >= n:
            break
        if bytes(mv[pos : pos + 2]) != b"\x1f\x8b":
            rest = mv[pos:]
            if any(rest):
                warning = f"{n - pos} bytes after the end of the {what} ignored"
            break
        if pos == start:  # cannot happen (a member is at least 18 bytes); no endless loop
            break
    budget.remaining -= total
    return b"".join(out), warning


def read_zip_entry(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, what: str, budget: Budget, archive_size: int
) -> bytes:
    """An entry's bytes, streamed in chunks and counted (its declared size is not trusted)."""
    compressed = min(max(info.compress_size, 0), archive_size)
    cap, why = budget.cap_for(compressed)
    out: list[bytes] = []
    total = 0
    with zf.open(info) as fh:
        while True:
            piece = fh.read(min(CHUNK * 16, cap - total + 1))
            if not piece:
                break
            total += len(piece)
            if total > cap:
                raise _refuse(what, cap, why)
            out.append(piece)
    budget.remaining -= total
    return b"".join(out)


def printable(name: str, limit: int = 200) -> str:
    """A file or entry name safe to put on one terminal line: control characters (newline,
    escape, ...) and other non-printables shown as escapes, cut to ``limit`` characters."""
    text = name if name.isprintable() else name.encode("unicode_escape").decode("ascii")
    if not text.isprintable():  # pragma: no cover - unicode_escape output is ASCII printable
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
