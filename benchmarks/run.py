"""Time btanalyze against tshark, btmon and btsnoop-parser on one large A2DP btsnoop capture.

``python -m benchmarks.run [--packets N] [--file F] [--keep] [--json OUT]`` generates the capture
(default 1,000,000 frames, ~320 MB) into a temporary folder (or reads ``--file``), then runs each
tool once, in its own subprocess, on the same file and reports wall time, frames per second, peak
resident memory (GNU ``time -f %M`` when installed, i.e. the largest single process; else psutil
polling of the process tree) and the time relative to tshark. A tool that is not installed is
reported as such.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.gen_a2dp_btsnoop import generate

_PARSE_SNIPPET = (
    "import sys\n"
    "from btsnoop_parser import iter_records\n"
    "n = sum(1 for _ in iter_records(sys.argv[1]))\n"
    "print(n)\n"
)


@dataclass
class Tool:
    name: str
    argv: list[str] | None  # None: not installed / not available
    note: str = ""


@dataclass
class Result:
    name: str
    command: str
    status: str  # "ok", "not installed", "not available", "failed (exit N)", "timeout"
    wall_s: float | None = None
    cpu_s: float | None = None
    frames_per_s: float | None = None
    peak_rss_mb: float | None = None
    vs_tshark: float | None = None  # wall time / tshark's wall time
    detail: str = ""


def _btanalyze_argv() -> list[str]:
    """The installed ``btanalyze`` entry point: the one beside this interpreter (what a user's
    virtualenv runs) before the first on PATH — a version manager's shim on PATH (pyenv: a bash
    script that execs ``pyenv exec``) adds ~0.1 s that is not btanalyze's."""
    beside = Path(sys.executable).with_name("btanalyze")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    exe = shutil.which("btanalyze")
    if exe:
        return [exe]
    return [sys.executable, "-c", "from analyzer.cli import main; main()"]


def _has_subcommand(base: list[str], name: str) -> bool:
    try:
        out = subprocess.run(
            [*base, "--help"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    in_commands = False
    for line in out.splitlines():
        if line.strip().lower().startswith("commands"):
            in_commands = True
            continue
        if in_commands and line.split()[:1] == [name]:
            return True
    return False


def tools(file: str) -> list[Tool]:
    """The commands to time, in table order; missing ones carry ``argv=None``."""
    bt = _btanalyze_argv()
    have_bt = shutil.which("btanalyze") is not None or importlib.util.find_spec("analyzer")
    out: list[Tool] = [Tool("btanalyze info", [*bt, "info", file] if have_bt else None)]
    if have_bt and _has_subcommand(bt, "analyze"):
        out.append(Tool("btanalyze analyze --json", [*bt, "analyze", file, "--json"]))
    else:
        out.append(Tool("btanalyze analyze --json", None, "not available"))
    tshark = shutil.which("tshark")
    fields = ["frame.number", "frame.time_epoch", "bthci_acl.chandle", "btl2cap.cid"]
    out.append(
        Tool(
            "tshark -T fields (4 fields)",
            [tshark, "-r", file, "-T", "fields", *[x for f in fields for x in ("-e", f)]]
            if tshark
            else None,
        )
    )
    btmon = shutil.which("btmon")
    with open(file, "rb") as fh:
        is_btsnoop = fh.read(8) == b"btsnoop\x00"
    note = "" if is_btsnoop else "btmon reads btsnoop only"
    for name, flag in (("btmon -r", "-r"), ("btmon -a", "-a")):
        out.append(Tool(name, [btmon, flag, file] if btmon and is_btsnoop else None, note))
    has_parser = importlib.util.find_spec("btsnoop_parser") is not None
    out.append(
        Tool(
            "btsnoop-parser iter_records",
            [sys.executable, "-c", _PARSE_SNIPPET, file] if has_parser else None,
        )
    )
    cli = shutil.which("btsnoop_parser")
    out.append(
        Tool("btsnoop_parser --stats", [cli, "--stats", "--no-color", file] if cli else None)
    )
    return out


def _gnu_time() -> str | None:
    """GNU time (Debian package ``time``): reports the child's own peak RSS via wait4."""
    path = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "GNU" in (out.stdout + out.stderr) else None


#: CPU seconds (user + system) of the last :func:`measure` run (GNU time only)
LAST_CPU_S: list[float | None] = [None]

RSS_METHOD = "GNU time %M" if _gnu_time() else "psutil tree polling (20 ms)"


def _poll_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    """Sum RSS over the process tree every 20 ms, keeping the maximum (needs psutil)."""
    try:
        import psutil
    except ImportError:
        return
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    continue
            peak[0] = max(peak[0], total)
        except psutil.Error:
            return
        stop.wait(0.02)


def measure(argv: list[str], timeout: float) -> tuple[str, float, float | None, str]:
    """Run argv (stdout to /dev/null); (status, wall seconds, peak RSS MB, stderr tail).
    The CPU seconds (user + system) of the last run are left in ``LAST_CPU_S``.

    Peak RSS comes from GNU ``time -f %M`` when installed (exact, per the child's own wait4),
    else from psutil polling of the process tree. ``wait4`` on our own child is not used: a
    child forked from this (large) Python process inherits its high-water mark.
    """
    gnu_time = _gnu_time()
    fd, err_path = tempfile.mkstemp(prefix="bench-err-")
    os.close(fd)
    fd, time_path = tempfile.mkstemp(prefix="bench-time-")
    os.close(fd)
    full = [gnu_time, "-f", "%M %U %S", "-o", time_path, *argv] if gnu_time else argv
    peak = [0]
    stop = threading.Event()
    timed_out = threading.Event()
    try:
        with open(os.devnull, "wb") as devnull, open(err_path, "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                full, stdout=devnull, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
            )
            poller = None
            if gnu_time is None:
                poller = threading.Thread(target=_poll_rss, args=(proc.pid, stop, peak))
                poller.start()

            def kill() -> None:
                timed_out.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                code = proc.wait()
            finally:
                timer.cancel()
                stop.set()
                if poller is not None:
                    poller.join()
            wall = time.perf_counter() - t0
        tail = Path(err_path).read_text(errors="replace").strip().splitlines()[-3:]
        rss_mb: float | None = None
        LAST_CPU_S[0] = None
        if gnu_time:
            fields = Path(time_path).read_text(errors="replace").split()
            if len(fields) >= 3 and fields[-3].isdigit():
                rss_mb = int(fields[-3]) / 1024  # KiB
                with contextlib.suppress(ValueError):
                    LAST_CPU_S[0] = float(fields[-2]) + float(fields[-1])
        elif peak[0]:
            rss_mb = peak[0] / (1024 * 1024)
    finally:
        os.unlink(err_path)
        os.unlink(time_path)
    if timed_out.is_set():
        return f"timeout ({timeout:.0f} s)", wall, rss_mb, ""
    if code != 0:
        return f"failed (exit {code})", wall, rss_mb, " | ".join(tail)
    return "ok", wall, rss_mb, ""


def count_frames(file: str) -> int:
    """Frames in the file, by our reader (falls back to walking btsnoop record headers)."""
    try:
        from analyzer import load

        return len(load(file))
    except Exception:
        import struct

        n = 0
        with open(file, "rb") as fh:
            fh.seek(16)
            while len(rec := fh.read(24)) == 24:
                incl = struct.unpack(">I", rec[4:8])[0]
                fh.seek(incl, 1)
                n += 1
        return n


def warm_cache(file: str) -> None:
    """Read the file once so every tool starts with it in the page cache."""
    with open(file, "rb") as fh:
        while fh.read(1 << 24):
            pass


def versions() -> dict[str, str]:
    v: dict[str, str] = {"python": platform.python_version()}
    for dist in ("btanalyze", "btsnoop-parser"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            v[dist] = importlib.metadata.version(dist)
    for exe, args in (("tshark", ["--version"]), ("btmon", ["--version"])):
        path = shutil.which(exe)
        if path:
            try:
                out = subprocess.run(
                    [path, *args], capture_output=True, text=True, timeout=30, check=False
                ).stdout
                v[exe] = out.splitlines()[0].strip() if out else "?"
            except (OSError, subprocess.SubprocessError):
                v[exe] = "?"
    return v


def run_all(file: str, frames: int, timeout: float, repeat: int = 1) -> list[Result]:
    """Every tool ``repeat`` times, interleaved (round by round, so a busy moment of the
    machine hits all tools alike); each tool's median wall, CPU and peak RSS."""
    todo = tools(file)
    runs: dict[str, list[tuple[str, float, float | None, float | None, str]]] = {}
    for k in range(repeat):
        for tool in todo:
            if tool.argv is None:
                continue
            print(f"  [{k + 1}/{repeat}] {tool.name} ...", file=sys.stderr, flush=True)
            status, wall, rss, detail = measure(tool.argv, timeout)
            runs.setdefault(tool.name, []).append((status, wall, rss, LAST_CPU_S[0], detail))
    results: list[Result] = []
    for tool in todo:
        if tool.argv is None:
            results.append(Result(tool.name, "", tool.note or "not installed"))
            continue
        got = runs[tool.name]
        bad = next((g for g in got if g[0] != "ok"), None)
        if bad is not None:
            results.append(Result(tool.name, " ".join(tool.argv), bad[0], detail=bad[4]))
            continue
        wall = statistics.median(g[1] for g in got)
        cpus = [g[3] for g in got if g[3] is not None]
        rsss = [g[2] for g in got if g[2] is not None]
        results.append(
            Result(
                tool.name,
                " ".join(tool.argv),
                "ok",
                wall_s=wall,
                cpu_s=statistics.median(cpus) if cpus else None,
                frames_per_s=frames / wall if wall > 0 else None,
                peak_rss_mb=statistics.median(rsss) if rsss else None,
            )
        )
    ref = next((r for r in results if r.name.startswith("tshark") and r.status == "ok"), None)
    if ref is not None and ref.wall_s:
        for r in results:
            if r.status == "ok" and r.wall_s is not None:
                r.vs_tshark = r.wall_s / ref.wall_s
    return results


def scaling(sizes: list[int], timeout: float, repeat: int, keep_dir: Path | None) -> int:
    """``btanalyze analyze --json`` on generated logs of each size: wall, CPU and peak RSS, and
    how far each is from linear in the smallest run (1.00 = exactly linear)."""
    folder = keep_dir or Path(tempfile.mkdtemp(prefix="btanalyze-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for n in sizes:
            file = folder / f"a2dp_{n}.btsnoop"
            if not file.exists():
                print(f"generating {n:,} frames into {file} ...", file=sys.stderr, flush=True)
                generate(str(file), n)
            warm_cache(str(file))
            argv = [*_btanalyze_argv(), "analyze", str(file), "--json"]
            got = []
            for _ in range(repeat):
                status, wall, rss, _detail = measure(argv, timeout)
                if status != "ok":
                    print(f"{n:,} frames: {status}", file=sys.stderr)
                    return 1
                got.append((wall, LAST_CPU_S[0], rss))
            rows.append((
                n,
                statistics.median(g[0] for g in got),
                statistics.median(g[1] or 0.0 for g in got),
                statistics.median(g[2] or 0.0 for g in got),
            ))  # fmt: skip
    finally:
        if keep_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    n0, w0, c0, _ = rows[0]
    print("| frames | wall s | CPU s | peak RSS MB | wall / linear | CPU / linear |")
    print("|---|---|---|---|---|---|")
    for n, w, c, r in rows:
        f = n / n0
        print(f"| {n:,} | {w:.2f} | {c:.2f} | {r:,.0f} | {w / (w0 * f):.2f} | {c / (c0 * f):.2f} |")
    return 0


def print_table(results: list[Result], file: str, size: int, frames: int) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain fallback
        print(f"{file}: {frames} frames, {size / 1e6:.1f} MB")
        for r in results:
            print(
                f"{r.name:34} {r.status:18} {_fmt(r.wall_s, '.2f')} s  "
                f"{_fmt(r.cpu_s, '.2f')} CPU s  "
                f"{_fmt(r.frames_per_s, ',.0f')} fr/s  {_fmt(r.peak_rss_mb, ',.0f')} MB  "
                f"x{_fmt(r.vs_tshark, '.3f')}"
            )
        return
    t = Table(title=f"{Path(file).name}: {frames:,} frames, {size / 1e6:.1f} MB")
    t.add_column("tool")
    t.add_column("status")
    t.add_column("wall s", justify="right")
    t.add_column("CPU s", justify="right")
    t.add_column("frames/s", justify="right")
    t.add_column("peak RSS MB", justify="right")
    t.add_column("time / tshark", justify="right")
    for r in results:
        ok = r.status == "ok"
        t.add_row(
            r.name,
            r.status if ok else f"[yellow]{r.status}[/yellow]",
            _fmt(r.wall_s, ".2f") if ok else "",
            _fmt(r.cpu_s, ".2f") if ok else "",
            _fmt(r.frames_per_s, ",.0f"),
            _fmt(r.peak_rss_mb, ",.0f") if ok else "",
            _fmt(r.vs_tshark, ".3f"),
        )
    con = Console(width=None if sys.stdout.isatty() else 120)
    con.print(t)
    for r in results:
        if r.detail:
            con.print(f"[yellow]{r.name}:[/yellow] {r.detail}", highlight=False)


def _fmt(v: float | None, spec: str) -> str:
    return "" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Time btanalyze, tshark, btmon and btsnoop-parser on one A2DP btsnoop file.",
    )
    ap.add_argument("--packets", type=int, default=1_000_000, help="frames to generate")
    ap.add_argument("--file", type=Path, help="use this capture instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the generated capture")
    ap.add_argument("--json", type=Path, dest="json_out", help="also write results as JSON here")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per tool (default 900)")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds; medians reported")
    ap.add_argument(
        "--scaling",
        help="comma-separated frame counts (e.g. 1000000,3000000,10000000): time btanalyze "
        "analyze on each and print the scaling table instead",
    )
    ap.add_argument("--dir", type=Path, help="with --scaling: keep (and reuse) the logs here")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if args.scaling:
        try:
            sizes = sorted(int(x.replace("_", "")) for x in args.scaling.split(","))
        except ValueError:
            ap.error("--scaling takes comma-separated integers")
        if not sizes or sizes[0] < 1:
            ap.error("--scaling sizes must be >= 1")
        return scaling(sizes, args.timeout, args.repeat, args.dir)

    tmpdir: str | None = None
    gen_s: float | None = None
    if args.file is not None:
        if not args.file.is_file():
            ap.error(f"{args.file}: no such file")
        file = str(args.file)
    else:
        if args.packets < 1:
            ap.error("--packets must be >= 1")
        tmpdir = tempfile.mkdtemp(prefix="btanalyze-bench-")
        file = str(Path(tmpdir) / f"a2dp_{args.packets}.btsnoop")
        print(f"generating {args.packets:,} frames into {file} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        generate(file, args.packets)
        gen_s = time.perf_counter() - t0
        print(f"  generated in {gen_s:.1f} s", file=sys.stderr)
    try:
        size = os.path.getsize(file)
        frames = count_frames(file)
        warm_cache(file)
        results = run_all(file, frames, args.timeout, args.repeat)
        print_table(results, file, size, frames)
        if args.json_out is not None:
            doc: dict[str, Any] = {
                "file": file,
                "size_bytes": size,
                "frames": frames,
                "generated_in_s": gen_s,
                "cpus": os.cpu_count(),
                "machine": platform.platform(),
                "versions": versions(),
                "rss_method": RSS_METHOD,
                "results": [asdict(r) for r in results],
            }
            args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
    finally:
        if tmpdir is not None:
            if args.keep:
                print(f"kept {file}", file=sys.stderr)
            else:
                shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
