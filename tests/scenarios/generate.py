"""Regenerate every scenario capture: ``python -m tests.scenarios.generate [OUTDIR] [-k NAME]``.

Writes ``<name>.btsnoop`` files (btsnoop v1, datalink 1002) and ``manifest.json`` into
``captures/scenarios/`` (or OUTDIR). Deterministic: fixed seeds, virtual clock, fixed epoch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.scenarios import clean, faults, le, voice  # noqa: F401  (registers scenarios)
from tests.scenarios.harness import CAPTURE_EPOCH, run_virtual
from tests.scenarios.scenarios import SCENARIOS, Ctx, Scenario

# registered after the older scenarios, so that their manifest entries keep their order
importlib.import_module("tests.scenarios.stack")
importlib.import_module("tests.scenarios.missing")
importlib.import_module("tests.scenarios.adv")
importlib.import_module("tests.scenarios.races")

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "captures" / "scenarios"


def run_scenario(sc: Scenario) -> tuple[bytes, dict[str, Any]]:
    """Run one scenario; return the btsnoop bytes and its manifest entry."""

    async def main() -> Ctx:
        ctx = Ctx(sc.seed)
        await sc.run(ctx)
        return ctx

    ctx = run_virtual(main, sc.seed)
    data = ctx.buffer.getvalue()
    records = ctx.snoop.records
    truth = dict(ctx.truth)
    truth["injected_faults"] = ctx.faults
    truth["key_frames"] = ctx.key_frames
    entry = {
        "file": f"{sc.name}.btsnoop",
        "group": sc.group,
        "description": sc.description,
        "seed": sc.seed,
        "start_time": CAPTURE_EPOCH.isoformat().replace("+00:00", "Z"),
        "frames": len(records),
        "duration_s": round(records[-1].time - records[0].time, 6) if records else 0.0,
        "ground_truth": truth,
        "expected_findings": sorted(sc.expected_findings),
    }
    return data, entry


def generate(out: Path, only: list[str] | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for sc in SCENARIOS:
        if only and sc.name not in only:
            continue
        t0 = time.perf_counter()
        data, entry = run_scenario(sc)
        (out / entry["file"]).write_bytes(data)
        entries.append(entry)
        print(
            f"{sc.name:45s} {len(data) / 1e6:6.2f} MB {entry['frames']:7d} frames "
            f"{time.perf_counter() - t0:6.2f} s",
            file=sys.stderr,
        )
    manifest = {
        "generator": "python -m tests.scenarios.generate",
        "format": "btsnoop v1, datalink 1002 (H4), captured at the phone's HCI",
        "captures": entries,
    }
    path = out / "manifest.json"
    if only and path.is_file():  # regenerate some: keep the others' entries, in registry order
        new = {e["file"]: e for e in entries}
        old = {e["file"]: e for e in json.loads(path.read_text())["captures"]}
        order = [f"{sc.name}.btsnoop" for sc in SCENARIOS]
        merged = {**old, **new}
        manifest["captures"] = [merged[f] for f in order if f in merged]
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("-k", action="append", dest="only", help="only this scenario")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    generate(args.outdir, args.only)
    print(f"total {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
