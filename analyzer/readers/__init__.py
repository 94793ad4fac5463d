"""Readers: one module per container format. Format is detected from the bytes, never the name.

Each reader module exposes ``sniff(head: bytes) -> bool`` (does this look like my format?) and
``read(src: Source) -> Capture``. They are tried in :data:`READERS` order.
"""

from __future__ import annotations

import gzip
import mmap
import os
import zlib
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from analyzer.capture import Capture, CaptureError, DamagedRange


@dataclass
class Source:
    """The bytes of one input, with where they came from."""

    buffer: bytes | mmap.mmap
    path: str
    size: int  # size on disk
    compressed: bool = False
    log: str | None = None  # which log to pick inside a container (bugreport zip)


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
    if prev_off is not None and cand < off:
        offs.pop()
        damaged.append(DamagedRange(prev_off, cand, "record length overruns the records after it"))
    else:
        damaged.append(DamagedRange(off, cand, "implausible record header"))


def backwards_warning(time_us: np.ndarray) -> list[str]:
    """A warning when timestamps go backwards (seen in real Android and Ubertooth logs)."""
    back = int((np.diff(time_us) < 0).sum()) if time_us.size > 1 else 0
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
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            if size == 0:
                return b"", 0
            # MAP_POPULATE (Linux): fault the whole file in at once; every page is read anyway
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            return mmap.mmap(fh.fileno(), 0, flags=flags, prot=mmap.PROT_READ), size
    except IsADirectoryError:
        raise CaptureError(f"cannot read {path}: is a directory") from None
    except FileNotFoundError:
        raise CaptureError(f"cannot read {path}: no such file") from None
    except PermissionError:
        raise CaptureError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror or exc}") from None


def _gunzip(buf: bytes | mmap.mmap) -> tuple[bytes, str | None]:
    """Decompress a gzip stream; a cut stream yields what could be decompressed plus a warning."""
    try:
        return gzip.decompress(buf), None
    except (EOFError, OSError, zlib.error) as exc:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(bytes(buf))
        except zlib.error:
            out = b""
        return out, f"gzip stream damaged or cut ({exc}); read {len(out)} decompressed bytes"


def load(path: str | os.PathLike[str], *, log: str | None = None) -> Capture:
    """Read a capture file of any supported format into a :class:`Capture`.

    Raises :class:`CaptureError` (one-line reason) for anything that is not a capture.
    """
    path = os.fspath(path)
    buf, size = _open_bytes(path)
    compressed = False
    gz_warning = None
    if size >= 2 and buf[:2] == b"\x1f\x8b":
        buf, gz_warning = _gunzip(buf)
        compressed = True
    src = Source(buffer=buf, path=path, size=size, compressed=compressed, log=log)
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
