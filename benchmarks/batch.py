"""Batch throughput: ``python -m benchmarks.batch [--captures 100] [--packets 20000]`` generates
that many distinct A2DP logs (benchmarks.gen_a2dp_btsnoop, one seed each) and times
``btanalyze batch`` into a fresh store with 1 and with 2 workers (issue 20: 2 workers at least
1.6x faster than 1 on a 2-core machine)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--captures", type=int, default=100)
    ap.add_argument("--packets", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="btanalyze-batch-bench-"))
    try:
        src = work / "in"
        src.mkdir()
        for i in range(args.captures):
            subprocess.run(
                [sys.executable, "-m", "benchmarks.gen_a2dp_btsnoop", str(src / f"run{i:03d}.log"),
                 "--packets", str(args.packets), "--seed", str(i + 1)],
                check=True, capture_output=True,
            )  # fmt: skip
        size = sum(p.stat().st_size for p in src.iterdir())
        print(f"{args.captures} captures, {args.packets} packets each, {size / 1e6:.0f} MB")
        base = None
        for w in args.workers:
            store = work / f"store{w}"
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", "from analyzer.cli import main; main()", "batch", str(src),
                 "--out", str(store), "--workers", str(w)],
                check=True, capture_output=True,
            )  # fmt: skip
            dt = time.perf_counter() - t0
            base = base or dt
            print(f"workers={w}: {dt:.1f} s, {args.captures / dt:.1f} captures/s, "
                  f"speed-up {base / dt:.2f}x")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
