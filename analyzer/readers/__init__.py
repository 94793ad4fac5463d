"""Readers: one module per container format. Format is detected from the bytes, never the name.

Each reader module exposes ``sniff(head: bytes) -> bool`` (does this look like my format?) and
``read(src: Source) -> Capture``. They are tried in :data:`READERS` order.
"""

from __future__ import annotations

import mmap
import os
import select
import stat
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from analyzer.codes import CaptureError
from analyzer.readers.limits import MAX_ENTRY, Budget, LimitError, inflate, printable

if TYPE_CHECKING:  # (the frame table needs polars: loaded by the readers that build it)
    from analyzer.capture import Capture, DamagedRange

_ext: ModuleType | None
try:  # the compiled record walks and gather (built at install where a C compiler exists)
    from analyzer.readers import _btsnoop_c as _ext
except ImportError:  # pragma: no cover - depends on the install
    _ext = None

#: use the compiled record walks and gather when built (tests switch it off to check the
#: numpy and Python paths)
USE_COMPILED = True


def compiled() -> ModuleType | None:
    """The compiled record walks and gather (``_btsnoop_c.c``) when built and not switched
    off; None: the readers' numpy and Python paths, which read the same records."""
    return _ext if USE_COMPILED else None


#: record headers gathered per step by :func:`record_heads`
HEAD_CHUNK = 65536


def record_heads(
    data: np.ndarray,
    offsets: np.ndarray,
    width: int,
    buf: object = None,
) -> np.ndarray:
    """The ``width`` bytes at each of the sorted ``offsets`` (record headers), one row each, in
    one compact (n, width) array — so that later column gathers read this array, not the
    capture. Gathered a chunk of records at a time (the compiled gather when
    :func:`compiled`, else numpy), each chunk's pages of a memory-mapped capture released
    behind it: a whole pass over a large file never holds it resident. Bytes past the end of the
    buffer are zero (compiled) or repeat its last byte (numpy): callers do not read them."""
    from analyzer.codes import release_pages

    n = int(offsets.shape[0])
    out = np.zeros((n, width), dtype=np.uint8)
    ext = compiled()
    offs = np.ascontiguousarray(offsets, dtype=np.int64)
    cols = np.arange(width, dtype=np.int64)
    last = data.size - 1
    for i in range(0, n, HEAD_CHUNK):
        o = offs[i : i + HEAD_CHUNK]
        if ext is not None:
            ext.gather(data, o, width, out[i : i + o.shape[0]])
        elif last >= 0:
            out[i : i + o.shape[0]] = data[np.clip(o[:, None] + cols, 0, last)]
        if o.shape[0]:
            release_pages(buf, int(o[0]), int(o[-1]))  # done with these pages
    return out


#: seconds to wait for the first byte from a FIFO / pipe given as input (no writer: refused)
FIFO_WAIT_S = 10.0


@dataclass
class Source:
    """The bytes of one input, with where they came from."""

    buffer: bytes | mmap.mmap
    path: str
    size: int  # size on disk
    compressed: bool = False
    log: str | None = None  # which log to pick inside a container (bugreport zip)
    budget: Budget = field(default_factory=Budget)  # decompression still allowed (limits.py)


def skip_damaged(
    offs: MutableSequence[int],
    damaged: list[DamagedRange],
    prev_off: int | None,
    off: int,
    cand: int,
) -> None:
    """Record the bytes skipped between a record that failed at ``off`` and the resync point
    ``cand``. A resync point inside the previous record means that record's length overran
    real records: it is the damaged one and is dropped."""
    from analyzer.capture import DamagedRange

    if prev_off is not None and cand < off:
        offs.pop()
        damaged.append(DamagedRange(prev_off, cand, "record length overruns the records after it"))
    else:
        damaged.append(DamagedRange(off, cand, "implausible record header"))


def zero_run_end(data: np.ndarray, off: int, chunk: int = 1 << 20) -> int:
    """The first offset >= ``off`` holding a non-zero byte (``data.size`` when none): the end of
    zero padding, scanned with numpy ``chunk`` bytes at a time."""
    pos = off
    while pos < data.size:
        nz = np.flatnonzero(data[pos : pos + chunk])
        if nz.size:
            return pos + int(nz[0])
        pos += chunk
    return int(data.size)


def backwards_warning(time_us: np.ndarray, count: int | None = None) -> list[str]:
    """A warning when timestamps go backwards (seen in real Android and Ubertooth logs);
    ``count``: how many times, when the reader counted them already."""
    back = count
    if back is None:
        back = int((time_us[1:] < time_us[:-1]).sum())  # (no difference: it could overflow)
    return [f"time goes backwards {back} times"] if back else []


_reader_modules: list[ModuleType] = []


def _readers() -> list[ModuleType]:
    if not _reader_modules:
        from analyzer.readers import btsnoop

        mods: list[ModuleType] = [btsnoop]
        for name in ("pcap", "bugreport", "btsnooz", "packetlogger"):
            try:
                mods.append(__import__(f"analyzer.readers.{name}", fromlist=["read"]))
            except ImportError:  # reader not present in this build
                continue
        _reader_modules.extend(mods)
    return _reader_modules


def _open_bytes(path: str) -> tuple[bytes | mmap.mmap, int]:
    shown = printable(path)
    try:
        st = os.stat(path)
        if stat.S_ISFIFO(st.st_mode):
            data = _read_stream(path, shown)
            return data, len(data)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):
            raise CaptureError(f"cannot read {shown}: not a regular file or pipe")
        size = st.st_size
        with open(path, "rb") as fh:
            if size == 0:
                return b"", 0
            # pages are faulted in as the passes reach them and released behind them
            # (capture.release_pages): never the whole file resident at once
            return mmap.mmap(fh.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ), size
    except IsADirectoryError:
        raise CaptureError(f"cannot read {shown}: is a directory") from None
    except FileNotFoundError:
        raise CaptureError(f"cannot read {shown}: no such file") from None
    except PermissionError:
        raise CaptureError(f"cannot read {shown}: permission denied") from None
    except OSError as exc:
        raise CaptureError(f"cannot read {shown}: {printable(str(exc.strerror or exc))}") from None


def _read_stream(path: str, shown: str) -> bytes:
    """A FIFO or pipe (``<(zcat log.gz)``): read to its end, at most :data:`MAX_ENTRY` bytes.
    Opened without blocking; no byte (and no writer) within :data:`FIFO_WAIT_S` is refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(FIFO_WAIT_S * 1000):
            raise CaptureError(f"cannot read {shown}: no data from the pipe in {FIFO_WAIT_S:g} s")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while True:
            piece = os.read(fd, 1 << 20)
            if not piece:
                break
            total += len(piece)
            if total > MAX_ENTRY:
                raise LimitError(f"refused: {shown} streams more than {MAX_ENTRY >> 20} MiB")
            chunks.append(piece)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _gunzip(
    buf: bytes | mmap.mmap, budget: Budget | None = None, what: str = "gzip stream"
) -> tuple[bytes, str | None]:
    """Decompress a gzip stream (every member) within the budget; a cut or damaged stream yields
    what could be decompressed plus a warning; a bomb raises :class:`LimitError`."""
    return inflate(buf, wbits=16 + 15, what=what, budget=budget or Budget(), members=True)


def load(path: str | os.PathLike[str], *, log: str | None = None) -> Capture:
    """Read a capture file of any supported format into a :class:`Capture`.

    Raises :class:`CaptureError` (one-line reason) for anything that is not a capture.
    """
    path = os.fspath(path)
    buf, size = _open_bytes(path)
    compressed = False
    gz_warning = None
    budget = Budget()
    if size >= 2 and buf[:2] == b"\x1f\x8b":
        buf, gz_warning = _gunzip(buf, budget)
        compressed = True
    src = Source(buffer=buf, path=path, size=size, compressed=compressed, log=log, budget=budget)
    cap = read_source(src)
    from analyzer.readers import filtered  # Android filtered snoop mode (issue 3 §3)

    filtered.apply(cap)
    if gz_warning:
        cap.warnings.insert(0, gz_warning)
    return cap


def read_source(src: Source) -> Capture:
    head = bytes(src.buffer[:4096])
    if not head:
        raise CaptureError("not a capture file: the file is empty")
    for mod in _readers():
        sniff: Callable[[bytes], bool] = mod.sniff
        if sniff(head):
            cap: Capture = mod.read(src)
            return cap
    raise CaptureError("not a capture file: no known magic in the first 16 bytes")
