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
import os
import zipfile
from typing import Any

import numpy as np
import polars as pl

from analyzer.capture import Capture, CaptureError, iso_utc
from analyzer.readers import Source

ANDROID_LOGS = (
    "btsnoop_hci.log",
    "btsnoop_hci.log.last",
    "btsnoop_hci.log.filtered",
    "btsnoop_hci.log.filtered.last",
    "btsnooz_hci.log",
    "btsnooz_hci.log.last",
)
SUMMARY = "BTSNOOP_LOG_SUMMARY"
MAX_ENTRY = 1 << 30  # refuse to inflate an entry larger than 1 GiB
PRIORITY = {"btsnoop_hci.log": 0, "btsnoop_hci.log.filtered": 1, "btsnooz_hci.log": 2, SUMMARY: 3}


def sniff(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _is_bugreport_text(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".txt") and (base.startswith(("bugreport", "dumpstate")))


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
    if info.file_size > MAX_ENTRY:
        return None
    try:
        return zf.read(info)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,
        OSError,
        EOFError,
        ValueError,
    ) as exc:
        raise CaptureError(f"cannot read {info.filename} in the zip: {exc}") from None
    except Exception as exc:  # zlib.error and friends from a damaged member
        raise CaptureError(f"cannot read {info.filename} in the zip: {exc}") from None


def _read_capture(data: bytes, path: str, size: int) -> Capture | None:
    """Read one entry with the ordinary readers (not zips: no nesting)."""
    from analyzer.readers import _gunzip, read_source

    compressed = False
    if data[:2] == b"\x1f\x8b":
        data, _ = _gunzip(data)
        compressed = True
    if not data or sniff(data[:4]):
        return None
    try:
        return read_source(Source(buffer=data, path=path, size=size, compressed=compressed))
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


def _continues(last: Capture, cur: Capture) -> bool:
    """Does ``cur`` start where ``last`` (its ``.last``) ended? Same format, time order."""
    if last.meta.format != cur.meta.format or last.meta.link_type != cur.meta.link_type:
        return False
    if not len(last) or not len(cur):
        return True
    lt, ct = last.last_time_us, cur.first_time_us
    return lt is not None and ct is not None and lt <= ct


def _span(cap: Capture) -> dict[str, Any]:
    return {
        "frames": len(cap),
        "first_time": iso_utc(cap.first_time_us),
        "last_time": iso_utc(cap.last_time_us),
        "format": cap.meta.format,
        "filtered": cap.meta.filtered,
    }


def read(src: Source) -> Capture:
    from analyzer.readers import filtered
    from analyzer.readers.btsnooz import decode_snooz, find_summary

    try:
        zf = zipfile.ZipFile(io.BytesIO(bytes(src.buffer)))
        infos = [i for i in zf.infolist() if not i.is_dir()]
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        OSError,
        ValueError,
        EOFError,
    ) as exc:
        raise CaptureError(f"not a readable zip: {exc}") from None
    names = {i.filename for i in infos}
    bugreport = any(_is_bugreport_text(n) for n in names) or any(n.startswith("FS/") for n in names)
    entries: dict[str, Capture] = {}  # entry path -> capture
    summaries: dict[str, Capture] = {}
    for info in infos:
        name = info.filename
        base = name.rsplit("/", 1)[-1]
        if _is_bugreport_text(name):
            data = _read_entry(zf, info)
            blob = find_summary(data) if data else None
            if blob is None:
                continue
            label = SUMMARY if not summaries else f"{SUMMARY} ({base})"
            path = f"{src.path}!{name}#{SUMMARY}"
            try:
                summaries[label] = decode_snooz(
                    blob, Source(buffer=blob, path=path, size=info.file_size), form=SUMMARY
                )
            except CaptureError:
                continue
            continue
        known = base in ANDROID_LOGS or base.removesuffix(".gz") in ANDROID_LOGS
        if not known and info.file_size < 16:
            continue
        data = _read_entry(zf, info)
        if data is None:
            continue
        cap = _read_capture(data, f"{src.path}!{name}", info.file_size)
        if cap is None:
            continue
        filtered.apply(cap, base)
        entries[name] = cap

    # pair X.last with X
    logs: dict[str, tuple[Capture, list[str]]] = {}
    used: set[str] = set()
    for name in sorted(entries):
        if name.endswith(".last") and name[: -len(".last")] in entries:
            cur_name = name[: -len(".last")]
            last, cur = entries[name], entries[cur_name]
            if _continues(last, cur):
                logs[cur_name] = (_concat(last, cur), [name, cur_name])
                used.update((name, cur_name))
    for name, cap in entries.items():
        if name not in used:
            logs[name] = (cap, [name])
    for label, cap in summaries.items():
        logs[label] = (cap, [label])
    if not logs:
        what = "bugreport" if bugreport else "zip"
        raise CaptureError(
            f"no Bluetooth capture in this {what} (no snoop log, no {SUMMARY} section)"
        )

    def rank(item: tuple[str, tuple[Capture, list[str]]]) -> tuple[int, int, str]:
        name, (cap, _) = item
        base = name.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".last")
        return (PRIORITY.get(base if name != SUMMARY else SUMMARY, 9), -len(cap), name)

    ordered = sorted(logs.items(), key=rank)
    listing = []
    for name, (cap, parts) in ordered:
        item = {"name": name, **_span(cap)}
        if len(parts) > 1:
            item["parts"] = parts
        listing.append(item)
    if src.log:
        want = src.log
        match = [n for n, _ in ordered if n == want] or [
            n
            for n, (_, parts) in ordered
            if want in parts
            or n.rsplit("/", 1)[-1] == want
            or any(p.rsplit("/", 1)[-1] == want for p in parts)
        ]
        if not match:
            avail = ", ".join(n for n, _ in ordered)
            raise CaptureError(
                f"no log named {want!r} in {os.path.basename(src.path)}; logs: {avail}"
            )
        chosen = match[0]
    else:
        chosen = ordered[0][0]
    cap = logs[chosen][0]
    cap.meta.path = src.path
    cap.meta.size = src.size
    cap.meta.extra = {
        **cap.meta.extra,
        "container": "bugreport" if bugreport else "zip",
        "selected": chosen,
        "logs": listing,
    }
    if len(ordered) > 1:
        cap.warnings.insert(
            0,
            f"{len(ordered)} logs in the {cap.meta.extra['container']}; "
            f"reading {chosen!r} (pick another with --log)",
        )
    return cap
