"""Batch analysis into a :class:`~analyzer.store.Store`: find the input files, analyse each in a
worker process (a local pool by default, or an existing dask.distributed cluster), commit each
capture atomically as its results arrive, then recompute the store-level device history.

The local pool is hand-rolled on ``multiprocessing`` (spawn or forkserver start method) rather than
``concurrent.futures``: a worker that crashes, exceeds the per-file timeout or its memory bound must
cost only its own file — the executor's pool breaks as a whole on a dead worker and cannot kill a
task that runs too long.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import polars as pl

from analyzer import __version__
from analyzer.store import Store, capture_id
from analyzer.store.worker import CaptureResult, FileTask, analyse_file, staged_path, worker_main

#: the bounds of one capture's analysis, in ``batch`` and the dashboard (issue 18 §2): a capture
#: over them gets a ``timeout`` / ``failed`` (out of memory) row and the rest go on
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MAX_MEMORY = "4G"
DEFAULT_MEMORY_BYTES = 4 << 30


@dataclass
class BatchStats:
    files: int = 0
    done: int = 0  # captures analysed and stored
    failed: int = 0  # captures stored with an error status
    skipped: int = 0  # already in the store
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{self.files} files: {self.done} captures analysed, {self.failed} failed, "
            f"{self.skipped} skipped (already stored) in {self.seconds:.1f} s"
        )


def discover(paths: Iterable[str], store_root: Path | None = None) -> list[str]:
    """Every regular file under the given files and folders (sorted; the store itself, hidden
    files and symbolic links to folders skipped). Formats are decided by content, later."""
    out: list[str] = []
    skip = store_root.resolve() if store_root is not None else None
    for p in paths:
        path = Path(p)
        if path.is_file():
            out.append(str(path))
            continue
        if not path.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            d = Path(dirpath)
            if skip is not None and (d.resolve() == skip or skip in d.resolve().parents):
                dirnames[:] = []
                continue
            dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
            for name in sorted(filenames):
                f = d / name
                if not name.startswith(".") and f.is_file():
                    out.append(str(f))
    return sorted(dict.fromkeys(out))


@dataclass
class _Worker:
    proc: mp.process.BaseProcess
    conn: Connection
    task: FileTask | None = None
    started: float = 0.0


class LocalPool:
    """N worker processes; each runs one file at a time; a dead or overdue worker is replaced
    and its file recorded as crashed / timed out."""

    def __init__(
        self,
        workers: int,
        timeout_s: float,
        memory_bytes: int | None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self.ctx: Any = mp.get_context(method)
        self.n = max(1, workers)
        self.timeout_s = timeout_s
        self.memory_bytes = memory_bytes
        self.should_stop = should_stop  # checked between waits: True stops (kills) every worker
        self.workers: list[_Worker] = []

    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(
            target=worker_main, args=(child, self.memory_bytes, os.getpid()), daemon=True
        )
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def run(self, tasks: list[FileTask]) -> Generator[tuple[FileTask, list[CaptureResult]]]:
        pending = list(reversed(tasks))
        self.workers = [self._spawn() for _ in range(min(self.n, max(1, len(tasks))))]
        try:
            while pending or any(w.task for w in self.workers):
                if self.should_stop is not None and self.should_stop():
                    for w in self.workers:
                        w.proc.kill()
                    return
                for w in self.workers:
                    if w.task is None and pending:
                        w.task, w.started = pending.pop(), time.monotonic()
                        w.conn.send(w.task)
                busy = [w for w in self.workers if w.task is not None]
                ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], 0.2)
                for i, w in enumerate(self.workers):
                    if w.task is None:
                        continue
                    task = w.task
                    if w.conn in ready:
                        try:
                            results = w.conn.recv()
                        except (EOFError, OSError):
                            results = None
                        if results is not None:
                            w.task = None
                            yield task, results
                            continue
                    overdue = time.monotonic() - w.started > self.timeout_s
                    if w.proc.is_alive() and not overdue:
                        continue
                    status, error = (
                        ("timeout", f"analysis took longer than {self.timeout_s:g} s")
                        if overdue and w.proc.is_alive()
                        else ("crashed", f"the worker process died (exit code {w.proc.exitcode})")
                    )
                    w.proc.kill()
                    w.proc.join(5)
                    self.workers[i] = self._spawn()
                    yield task, [_failed(task, status, error)]
        finally:
            self.close()

    def close(self) -> None:
        for w in self.workers:
            try:
                if w.task is None:
                    w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        deadline = time.monotonic() + 2
        for w in self.workers:
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(2)
        self.workers = []


def _failed(task: FileTask, status: str, error: str) -> CaptureResult:
    """A ``captures`` row for a file whose worker crashed or ran out of time (its content hash
    is computed here, so a re-run recognises it)."""
    from datetime import UTC, datetime

    from analyzer.store import file_sha256

    try:
        sha, size = file_sha256(task.path), os.path.getsize(task.path)
    except OSError:
        sha, size = "", 0
    cid = capture_id(sha, None)
    row: dict[str, object] = {
        "capture_id": cid, "path": task.path, "file": task.path, "member": None,
        "sha256": sha, "size": size, "status": status, "error": error,
        "analyzer_version": __version__,
        "analysed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    return CaptureResult(cid, row)


def _dask_results(
    address: str, tasks: list[FileTask]
) -> Generator[tuple[FileTask, list[CaptureResult]]]:
    """The same per-file function on an existing dask.distributed cluster (workers read the
    paths from shared storage and stage into the store's ``.tmp``; this process commits)."""
    from distributed import Client, as_completed

    with Client(address) as client:
        futures = {client.submit(analyse_file, t, pure=False): t for t in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                yield task, fut.result()
            except Exception as exc:  # a worker that died or a task that failed on the cluster
                yield task, [_failed(task, "crashed", f"{type(exc).__name__}: {exc}")]


def run_batch(
    paths: Iterable[str],
    store: Store,
    *,
    workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_bytes: int | None = DEFAULT_MEMORY_BYTES,
    force: bool = False,
    dask_address: str | None = None,
    progress: Callable[[BatchStats, int], None] | None = None,
    crash_on: str | None = None,
    hang_on: str | None = None,
    anonymize: bool = False,
    hog_on: str | None = None,
) -> BatchStats:
    """Analyse every file into ``store``; returns the counts. A bad file is a row, not a stop."""
    t0 = time.perf_counter()
    store.recover()
    store.create()
    files = discover(paths, store.root)
    done = frozenset() if force else frozenset(store.done(__version__, anonymize))
    tasks = [
        FileTask(f, str(store.root), done, crash_on, hang_on, anonymize, hog_on=hog_on)
        for f in files
    ]
    stats = BatchStats(files=len(files))

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # committed captures stay; the in-flight ones are redone

    old = signal.signal(signal.SIGTERM, on_term)
    results = (
        _dask_results(dask_address, tasks)
        if dask_address
        else LocalPool(workers or os.cpu_count() or 1, timeout_s, memory_bytes).run(tasks)
    )
    try:
        for _task, rs in results:
            for r in rs:
                if r.skipped:
                    stats.skipped += 1
                    continue
                store.commit(r.capture_id, staged_path(r), r.row)
                status = str(r.row.get("status"))
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
                if status == "ok":
                    stats.done += 1
                else:
                    stats.failed += 1
            if progress is not None:
                progress(stats, len(files))
    finally:
        results.close()  # stops the workers at once (also on SIGTERM / Ctrl-C)
        signal.signal(signal.SIGTERM, old)
    update_history(store)
    stats.seconds = time.perf_counter() - t0
    return stats


# -- store-level pass ---------------------------------------------------------------------------


def update_history(store: Store) -> None:
    """Per device, its captures in time order with the versions seen (``device_history``), and
    the version changes between consecutive captures (``store_findings``, id firmware_changed).
    Recomputed over the whole store, so it does not depend on processing order; order by the
    capture's first frame time (capture clocks can be wrong: the ``ordered_by`` column says so)."""
    devices = store.read("devices")
    caps = store.captures()
    if devices.is_empty() or caps.is_empty():
        store.write_derived("device_history", _history_schema())
        store.write_derived("store_findings", _findings_schema())
        return
    hist = (
        devices.filter(pl.col("role") == "remote")
        .join(
            caps.select("capture_id", "path", "first_time", "first_time_us", "analysed_at"),
            on="capture_id",
        )
        .select(
            "address",
            "name",
            "capture_id",
            "path",
            "first_time",
            "first_time_us",
            "lmp_version",
            "lmp_subversion",
            "manufacturer",
            pl.lit("capture first frame time").alias("ordered_by"),
        )
        .sort(["address", "first_time_us", "capture_id"], nulls_last=True)
    )
    store.write_derived("device_history", hist)
    rows: list[dict[str, object]] = []
    findings = store.read("findings")
    stale = {
        (str(c), str(a))
        for c, a in findings.filter(pl.col("id") == "auth_key_missing")
        .select("capture_id", "address")
        .iter_rows()
    }
    for (addr,), g in hist.group_by(["address"], maintain_order=True):
        prev: dict[str, object] | None = None
        change: dict[str, object] | None = None  # the last firmware change seen for it
        for r in g.iter_rows(named=True):
            if change is not None and (str(r["capture_id"]), str(addr)) in stale:
                rows.append({
                    "id": "auth_key_missing", "address": addr, "name": r["name"],
                    "from_capture": change["from_capture"], "to_capture": r["capture_id"],
                    "from_path": change["from_path"], "to_path": r["path"],
                    "from_version": change["from_version"], "to_version": change["to_version"],
                    "message": f"{r['name'] or addr} rejected the stored key in {r['path']} "
                    f"after a firmware update ({change['from_path']} → {change['to_path']}): "
                    "the update wiped its bonds; pair it again",
                })  # fmt: skip
                change = None
            if r["lmp_subversion"] is None and r["lmp_version"] is None:
                continue
            if prev is not None and (prev["lmp_version"], prev["lmp_subversion"]) != (
                r["lmp_version"],
                r["lmp_subversion"],
            ):
                rows.append({
                    "id": "firmware_changed", "address": addr, "name": r["name"] or prev["name"],
                    "from_capture": prev["capture_id"], "to_capture": r["capture_id"],
                    "from_path": prev["path"], "to_path": r["path"],
                    "from_version": _ver(prev), "to_version": _ver(r),
                    "message": f"{r['name'] or addr} changed firmware between captures: "
                    f"{_ver(prev)} ({prev['path']}) → {_ver(r)} ({r['path']})",
                })  # fmt: skip
                change = rows[-1]
                if (str(r["capture_id"]), str(addr)) in stale:
                    rows.append({**change, "id": "auth_key_missing",
                                 "message": f"{r['name'] or addr} rejected the stored key right "
                                 f"after a firmware update ({prev['path']} → {r['path']}): the "
                                 "update wiped its bonds; pair it again"})  # fmt: skip
                    change = None
            prev = r
    store.write_derived(
        "store_findings",
        pl.DataFrame(rows, schema=_findings_schema().schema) if rows else _findings_schema(),
    )


def _ver(r: dict[str, object]) -> str:
    sub = r.get("lmp_subversion")
    return (
        f"LMP {r.get('lmp_version')} / subversion {sub:#06x}"
        if isinstance(sub, int)
        else (f"LMP {r.get('lmp_version')}")
    )


def _history_schema() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "address": pl.Utf8, "name": pl.Utf8, "capture_id": pl.Utf8, "path": pl.Utf8,
            "first_time": pl.Utf8, "first_time_us": pl.Int64, "lmp_version": pl.Int64,
            "lmp_subversion": pl.Int64, "manufacturer": pl.Int64, "ordered_by": pl.Utf8,
        }
    )  # fmt: skip


def _findings_schema() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "id": pl.Utf8, "address": pl.Utf8, "name": pl.Utf8, "from_capture": pl.Utf8,
            "to_capture": pl.Utf8, "from_path": pl.Utf8, "to_path": pl.Utf8,
            "from_version": pl.Utf8, "to_version": pl.Utf8, "message": pl.Utf8,
        }
    )  # fmt: skip
