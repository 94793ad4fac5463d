"""Android bugreport zips, and any zip holding captures (issue 3 §1; DOMAIN.md "Android bugreport").

An ``adb bugreport`` zip (AOSP ``frameworks/native/cmds/dumpstate``) holds the device's files under
``FS/`` — the snoop logs under ``FS/data/misc/bluetooth/logs/`` (Samsung: ``FS/data/log/bt/``) — and
the dumpstate text ``bugreport-<device>-<build>-<date>.txt`` at the top, whose ``dumpsys
bluetooth_manager`` part may hold a ``BTSNOOP_LOG_SUMMARY`` section (btsnooz, see
:mod:`analyzer.readers.btsnooz`).

Logs found: every entry named like Android's file set (``btsnoop_hci.log``, ``.last``,
``.filtered``, ``.filtered.last``, ``btsnooz_hci.log``, ``.last``; any folder), every other entry
whose bytes a reader recognises, and the summary section of each bugreport text (named
``BTSNOOP_LOG_SUMMARY``). A log and its ``.last`` are one capture when they continue each other
(AOSP ``snoop_logger.cc`` ``OpenNextSnoopLogFile`` renames the full file to ``.last`` and starts a
new one): ``.last`` is read first, the current file after it, frames renumbered, offsets pointing
into one combined buffer (the two buffers back to back).

Default pick: the fullest log — full snoop log, then filtered, then btsnooz, then the summary,
then any other capture; most frames first within a kind. ``--log
NAME`` (``Source.log``) picks by entry path, base name or listed name. ``meta.extra["logs"]`` lists
every log with frame counts and spans; ``meta.extra["selected"]`` names the one read.
"""

from __future__ import annotations

import io
import mmap
import os
import zipfile
from typing import IO, Any, cast

import numpy as np
import polars as pl

from analyzer.capture import Capture, CaptureError, iso_utc
from analyzer.readers import Source
from analyzer.readers.limits import (
    MAX_ZIP_CAPTURES,
    MAX_ZIP_ENTRIES,
    LimitError,
    printable,
    read_zip_entry,
)

ANDROID_LOGS = (
    "btsnoop_hci.log",
    "btsnoop_hci.log.last",
    "btsnoop_hci.log.filtered",
    "btsnoop_hci.log.filtered.last",
    "btsnooz_hci.log",
    "btsnooz_hci.log.last",
)
SUMMARY = "BTSNOOP_LOG_SUMMARY"
PRIORITY = {"btsnoop_hci.log": 0, "btsnoop_hci.log.filtered": 1, "btsnooz_hci.log": 2, SUMMARY: 3}
#: unix file-type bits of a zip entry's external attributes: a symbolic link
S_IFLNK = 0o120000


def sniff(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _is_bugreport_text(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".txt") and (base.startswith(("bugreport", "dumpstate")))


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and (info.external_attr >> 16) & 0o170000 == S_IFLNK


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, src: Source) -> bytes:
    """An entry's bytes, inflated within ``src.budget`` (:mod:`analyzer.readers.limits`)."""
    what = f"zip entry {printable(info.filename)!r}"
    try:
        return read_zip_entry(zf, info, what=what, budget=src.budget, archive_size=len(src.buffer))
    except LimitError:
        raise
    except Exception as exc:  # BadZipFile, zlib.error, NotImplementedError... from a bad member
        raise CaptureError(f"cannot read {what}: {printable(str(exc))}") from None


def _read_capture(data: bytes, path: str, size: int, src: Source) -> Capture | None:
    """Read one entry with the ordinary readers (not zips: no nesting). A gzip entry is inflated
    against the same budget as the zip."""
    from analyzer.readers import _gunzip, read_source

    compressed = False
    if data[:2] == b"\x1f\x8b":
        what = f"gzip stream in zip entry {printable(path.rsplit('!', 1)[-1])!r}"
        data, _ = _gunzip(data, src.budget, what)
        compressed = True
    if not data or sniff(data[:4]):
        return None
    try:
        return read_source(
            Source(buffer=data, path=path, size=size, compressed=compressed, budget=src.budget)
        )
    except LimitError:
        raise
    except CaptureError:
        return None


def _concat(first: Capture, second: Capture) -> Capture:
    """``first`` then ``second`` as one capture over one buffer."""
    b1 = bytes(first.buffer)
    buf = b1 + bytes(second.buffer)
    f2 = second.frames.with_columns(pl.col("offset") + len(b1))
    frames = pl.concat([first.frames, f2]).with_columns(
        pl.Series("index", np.arange(1, first.frames.height + f2.height + 1, dtype=np.int64))
    )
    comments = dict(first.comments)
    comments.update({k + first.frames.height: v for k, v in second.comments.items()})
    meta = second.meta
    meta.drops = first.meta.drops + second.meta.drops
    meta.filtered = first.meta.filtered or second.meta.filtered
    warnings = [f"{first.meta.path}: {w}" for w in first.warnings] + [
        f"{second.meta.path}: {w}" for w in second.warnings
    ]
    damaged = list(second.damaged)
    return Capture(
        meta=meta, frames=frames, buffer=buf, warnings=warnings, damaged=damaged, comments=comments
    )


#: a log continues its ``.last`` only when it starts within this many seconds of its end (a
#: rotation, or a Bluetooth restart after a crash); days apart they are two captures: joined,
#: their frame numbers would match neither file in Wireshark
MAX_JOIN_GAP_S = 1800.0


def _continues(last: Capture, cur: Capture) -> bool:
    """Does ``cur`` start where ``last`` (its ``.last``) ended? Same format, time order, and a
    gap under :data:`MAX_JOIN_GAP_S`."""
    if last.meta.format != cur.meta.format or last.meta.link_type != cur.meta.link_type:
        return False
    if not len(last) or not len(cur):
        return True
    lt, ct = last.last_time_us, cur.first_time_us
    return lt is not None and ct is not None and 0 <= ct - lt <= MAX_JOIN_GAP_S * 1e6


def _span(cap: Capture) -> dict[str, Any]:
    return {
        "frames": len(cap),
        "first_time": iso_utc(cap.first_time_us),
        "last_time": iso_utc(cap.last_time_us),
        "format": cap.meta.format,
        "filtered": cap.meta.filtered,
    }


class _BufferFile(io.RawIOBase):
    """A read-only, seekable file over the input's bytes or mmap (no copy, unlike BytesIO)."""

    def __init__(self, buf: bytes | mmap.mmap | memoryview) -> None:
        super().__init__()
        self._mv = memoryview(buf).cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._mv)}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, b: Any) -> int:
        out = memoryview(b).cast("B")
        n = max(0, min(len(out), len(self._mv) - self._pos))
        out[:n] = self._mv[self._pos : self._pos + n]
        self._pos += n
        return n


def _rank(name: str, frames: int) -> tuple[int, int, str]:
    base = name.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".last")
    return (PRIORITY.get(base if name != SUMMARY else SUMMARY, 9), -frames, name)


def _matches(want: str, name: str, parts: list[str]) -> bool:
    return (
        name == want
        or want in parts
        or name.rsplit("/", 1)[-1] == want
        or any(p.rsplit("/", 1)[-1] == want for p in parts)
    )


def read(src: Source) -> Capture:
    """Entries are examined one at a time and only the best log so far (or the one ``--log``
    names) is kept: the others leave a line in the listing, not their frames, in memory. Entry
    names are only labels: never used as file-system paths; symlink entries are ignored."""
    from analyzer.readers import filtered
    from analyzer.readers.btsnooz import decode_snooz, find_summary

    try:
        zf = zipfile.ZipFile(cast(IO[bytes], _BufferFile(src.buffer)))
        all_infos = zf.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        OSError,
        ValueError,
        EOFError,
    ) as exc:
        raise CaptureError(f"not a readable zip: {printable(str(exc))}") from None
    if len(all_infos) > MAX_ZIP_ENTRIES:
        raise LimitError(
            f"refused: the zip holds {len(all_infos)} entries (limit {MAX_ZIP_ENTRIES})"
        )
    infos = [i for i in all_infos if not i.is_dir() and not _is_symlink(i)]
    skipped_links = sum(1 for i in all_infos if _is_symlink(i))
    names = {i.filename for i in infos}
    bugreport = any(_is_bugreport_text(n) for n in names) or any(n.startswith("FS/") for n in names)
    listing: dict[str, dict[str, Any]] = {}  # log name -> listing line
    best: tuple[tuple[int | str, ...], str, Capture] | None = None
    examined = 0
    not_examined = 0
    n_summaries = 0

    def offer(name: str, cap: Capture, parts: list[str]) -> None:
        """A log found: list it; keep it if it beats the best so far (or is the one wanted)."""
        nonlocal best
        item: dict[str, Any] = {"name": name, **_span(cap)}
        if len(parts) > 1:
            item["parts"] = parts
        listing[name] = item
        key: tuple[int | str, ...] = _rank(name, len(cap))
        if src.log is not None:
            if not _matches(src.log, name, parts):
                return
            key = (0 if name == src.log else 1, *key)  # an exact name beats a part's name
        if best is None or key < best[0]:
            best = (key, name, cap)

    def entry_capture(info: zipfile.ZipInfo) -> Capture | None:
        data = _read_entry(zf, info, src)
        cap = _read_capture(data, f"{src.path}!{printable(info.filename)}", info.file_size, src)
        if cap is not None:
            filtered.apply(cap, info.filename.rsplit("/", 1)[-1])
        return cap

    by_name = {i.filename: i for i in infos}
    pending_last: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        base = name.rsplit("/", 1)[-1]
        if _is_bugreport_text(name):
            blob = find_summary(_read_entry(zf, info, src))
            if blob is None:
                continue
            label = SUMMARY if not n_summaries else f"{SUMMARY} ({base})"
            n_summaries += 1
            path = f"{src.path}!{name}#{SUMMARY}"
            try:
                summ = decode_snooz(
                    blob,
                    Source(buffer=blob, path=path, size=info.file_size, budget=src.budget),
                    form=SUMMARY,
                )
            except LimitError:
                raise
            except CaptureError:
                continue
            offer(label, summ, [label])
            continue
        known = base in ANDROID_LOGS or base.removesuffix(".gz") in ANDROID_LOGS
        if not known and info.file_size < 16 and info.compress_size < 16:
            continue
        if name.endswith(".last") and name[: -len(".last")] in by_name:
            pending_last[name] = info  # read with its current file, below
            continue
        if examined >= MAX_ZIP_CAPTURES:
            not_examined += 1
            continue
        examined += 1
        got = entry_capture(info)
        if got is None:
            continue
        parts = [name]
        last_info = by_name.get(name + ".last")
        if last_info is not None:
            pending_last.pop(name + ".last", None)
            last = entry_capture(last_info)
            if last is not None and _continues(last, got):
                n_last, n_cur = len(last), len(got)
                got = _concat(last, got)
                parts = [name + ".last", name]
                got.meta.extra = {
                    **got.meta.extra,
                    "sources": [
                        {"name": base + ".last", "first_frame": 1, "frames": n_last},
                        {"name": base, "first_frame": n_last + 1, "frames": n_cur},
                    ],
                }
            elif last is not None:
                offer(name + ".last", last, [name + ".last"])
            del last
        offer(name, got, parts)
        del got
    for name, info in pending_last.items():  # a .last whose current file was never read
        if examined >= MAX_ZIP_CAPTURES:
            not_examined += 1
            continue
        examined += 1
        got = entry_capture(info)
        if got is not None:
            offer(name, got, [name])
    container = "bugreport" if bugreport else "zip"
    if best is None:
        if src.log and listing:
            avail = ", ".join(printable(n) for n in sorted(listing, key=lambda n: _rank(n, 0)))
            raise CaptureError(
                f"no log named {printable(src.log)!r} in {printable(os.path.basename(src.path))}; "
                f"logs: {avail}"
            )
        raise CaptureError(
            f"no Bluetooth capture in this {container} (no snoop log, no {SUMMARY} section)"
        )
    _key, chosen, cap = best
    ordered = sorted(listing.values(), key=lambda it: _rank(it["name"], it["frames"]))
    cap.meta.path = src.path
    cap.meta.size = src.size
    cap.meta.extra = {
        **cap.meta.extra,
        "container": container,
        "selected": chosen,
        "logs": ordered,
    }
    if not_examined:
        cap.warnings.insert(
            0,
            f"{not_examined} more entries of the {container} not examined "
            f"(at most {MAX_ZIP_CAPTURES} are read)",
        )
    if skipped_links:
        cap.warnings.insert(0, f"{skipped_links} symbolic-link entries of the {container} ignored")
    if len(ordered) > 1:
        cap.warnings.insert(
            0,
            f"{len(ordered)} logs in the {container}; "
            f"reading {printable(chosen)!r} (pick another with --log)",
        )
    return cap
