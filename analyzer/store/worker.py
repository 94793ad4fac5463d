"""One input file analysed for the store: every capture in it (one, or each log inside an archive)
read, analysed, and its tables staged under the store's ``.tmp`` — run in a worker process (or a
Dask worker). Never raises for a bad input: a failure is a result with its status and error."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from analyzer import __version__
from analyzer.capture import Capture, CaptureError
from analyzer.readers.limits import printable
from analyzer.store import Store, capture_id, file_sha256


@dataclass
class CaptureResult:
    """What the worker did with one capture (the ``captures`` row, the staged folder)."""

    capture_id: str
    row: dict[str, object]
    staged: str | None = None
    skipped: bool = False


@dataclass
class FileTask:
    path: str
    store: str
    done: frozenset[str] = field(default_factory=frozenset)  # capture ids to skip
    #: test hooks: crash or hang the worker on a file whose name contains this text, or make
    #: its analysis grow without limit (untouched memory: only a memory bound stops it)
    crash_on: str | None = None
    hang_on: str | None = None
    #: analyse a scrubbed copy (issue 23): the stored analysis names only fake addresses
    anonymize: bool = False
    #: a file the worker writes its current phase to (the dashboard's job page reads it)
    progress: str | None = None
    hog_on: str | None = None


def _row(
    task: FileTask, sha: str, size: int, member: str | None, **kw: object
) -> dict[str, object]:
    shown = task.path if member is None else f"{task.path}::{member}"
    return {
        "capture_id": capture_id(sha, member),
        "path": shown,
        "file": task.path,
        "member": member,
        "sha256": sha,
        "size": size,
        "analyzer_version": __version__,
        "analysed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "anonymized": task.anonymize,
        **kw,
    }


def _members(cap: Capture) -> list[str | None]:
    """The logs of an archive (each its own capture), or [None] for a plain capture file."""
    logs = cap.meta.extra.get("logs") if isinstance(cap.meta.extra, dict) else None
    if not logs:
        return [None]
    return [str(item["name"]) for item in logs if isinstance(item, dict) and "name" in item]


def _phase_writer(path: str | None) -> Callable[[str], None]:
    """Write each phase to ``path`` (replaced atomically, so a reader never sees half a line);
    a no-op without a path. Progress is advisory: a failed write is ignored."""
    if not path:
        return lambda _phase: None

    def say(phase: str) -> None:
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(phase)
            os.replace(tmp, path)
        except OSError:
            pass

    return say


def analyse_file(task: FileTask) -> list[CaptureResult]:
    """Analyse every capture in one input file; stage its tables in the store's ``.tmp``."""
    from analyzer.analysis import analyze_capture
    from analyzer.readers import load

    name = os.path.basename(task.path)
    say = _phase_writer(task.progress)
    say("reading the capture")
    if task.crash_on and task.crash_on in name:
        os._exit(70)  # a worker that dies mid-task (test hook)
    if task.hang_on and task.hang_on in name:
        time.sleep(3600)  # a worker that never finishes (test hook)
    store = Store(task.store)
    try:
        size = os.path.getsize(task.path)
        sha = file_sha256(task.path)
    except OSError as exc:
        return [CaptureResult(capture_id(task.path, None), _row(task, "", 0, None,
                              status="unreadable", error=printable(str(exc))))]  # fmt: skip
    if capture_id(sha, None) in task.done:
        return [CaptureResult(capture_id(sha, None), {}, skipped=True)]
    t0 = time.perf_counter()
    try:
        first = load(task.path)
    except CaptureError as exc:
        status = "not_a_capture" if "not a capture" in str(exc) else "unreadable"
        return [CaptureResult(capture_id(sha, None), _row(task, sha, size, None, status=status,
                              error=printable(str(exc))))]  # fmt: skip
    except MemoryError:
        return [CaptureResult(capture_id(sha, None), _row(task, sha, size, None, status="failed",
                              error="out of memory (over the worker's memory bound)"))]  # fmt: skip
    members = _members(first)
    selected = first.meta.extra.get("selected") if isinstance(first.meta.extra, dict) else None
    out: list[CaptureResult] = []
    for member in members:
        cid = capture_id(sha, member)
        if cid in task.done:
            out.append(CaptureResult(cid, {}, skipped=True))
            continue
        t1 = time.perf_counter()
        try:
            cap = first if member is None or member == selected else load(task.path, log=member)
            if task.anonymize:
                from analyzer.scrub import scrubbed_capture

                cap, _ = scrubbed_capture(cap)
            if task.hog_on and task.hog_on in name:
                _hog()
            a = analyze_capture(cap, progress=lambda ph: say(f"analysing: {ph}"))
            say("storing")
            staged = store.staging(cid)
            a.to_parquet(staged, cid)
            with gzip.open(staged / "analysis.json.gz", "wt", encoding="utf-8") as fh:
                json.dump(a.to_json(), fh)
            sev = [f.severity for f in a.findings]
            c = a.capture
            row = _row(
                task, sha, size, member, status="ok", error=None, format=c.format,
                frames=c.frames, first_time=c.first_time, last_time=c.last_time,
                first_time_us=c.first_time_us, last_time_us=c.last_time_us,
                errors=sev.count("error"), warnings=sev.count("warning"),
                infos=sev.count("info"), seconds=round(time.perf_counter() - t1, 3),
            )  # fmt: skip
            out.append(CaptureResult(cid, row, str(staged)))
        except CaptureError as exc:
            out.append(CaptureResult(cid, _row(task, sha, size, member, status="unreadable",
                                               error=printable(str(exc)))))  # fmt: skip
        except MemoryError:
            out.append(CaptureResult(cid, _row(task, sha, size, member, status="failed",
                       error="out of memory (over the worker's memory bound)")))  # fmt: skip
        except Exception as exc:  # an analyzer bug: recorded, the batch goes on
            out.append(CaptureResult(cid, _row(task, sha, size, member, status="failed",
                       error=printable(f"{type(exc).__name__}: {exc}"))))  # fmt: skip
    del t0
    return out


def _hog() -> None:
    """Test hook: reserve memory (64 GiB of untouched pages) as an analysis that grows without
    limit would; under the worker's memory bound this raises MemoryError."""
    import numpy as np

    held = [np.empty(1 << 28, np.uint8) for _ in range(256)]
    raise RuntimeError(f"no memory bound: {len(held) >> 2} GiB reserved")


def _die_with_batch(batch_pid: int) -> None:
    """A worker must not outlive its batch: killed (SIGKILL) mid-file, the batch would otherwise
    leave its forkserver and a hung worker running (a worker's parent is the fork server, which
    outlives the batch). A thread waits on the batch process (a pidfd on Linux, else polling)
    and ends the worker when it is gone."""
    import select
    import threading

    def watch() -> None:
        try:
            fd = os.pidfd_open(batch_pid)
        except (AttributeError, OSError):
            fd = -1
        if fd >= 0:
            select.select([fd], [], [])  # readable once the batch process has ended
        else:
            while True:
                try:
                    os.kill(batch_pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
                time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="btanalyze-batch-watch").start()


def worker_main(conn: object, memory_bytes: int | None, batch_pid: int | None = None) -> None:
    """A pool worker: receive a :class:`FileTask`, send back its results, until told to stop."""
    if batch_pid is not None:
        _die_with_batch(batch_pid)
    if memory_bytes:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        except (ImportError, ValueError, OSError):
            pass
    from multiprocessing.connection import Connection

    assert isinstance(conn, Connection)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(analyse_file(task))


def staged_path(result: CaptureResult) -> Path | None:
    return Path(result.staged) if result.staged else None
