"""Golden expected findings: every real and scenario capture has a reviewed file of the findings
it must produce (ids, severities, counts, key frames); the analysis must match it exactly.

Besides the reviewed findings summary (``golden/<kind>/<capture>.json``), the whole analysis is
baselined: one JSON-lines file per table of ``Analysis.to_json()`` under
``golden/<kind>/<capture>/<table>.jsonl`` (the capture's own path is left out: it differs from
machine to machine), so a change to any session shows.

Refresh after a reviewed change with ``python -m pytest tests/test_golden.py --update-golden``
(it prints what changed per file, and refuses to run under CI) and describe the change in the
commit message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analyzer.analysis import TABLES, Analysis
from analyzer.model import to_jsonable
from tests.conftest import BUNDLED, GOLDEN_CHANGES, analysis_of, shared_captures, update_golden

GOLDEN = Path(__file__).resolve().parent / "golden"
SCENARIOS = BUNDLED / "scenarios"
MANIFEST = json.loads((SCENARIOS / "manifest.json").read_text()) if SCENARIOS.is_dir() else {}


def _cases() -> list[tuple[str, Path]]:
    cases = [("real", p) for p in shared_captures()]
    cases += [("scenarios", p) for p in sorted(SCENARIOS.glob("*.btsnoop"))]
    return cases


def _analysis(path: Path) -> Analysis:
    a = analysis_of(path)
    if isinstance(a, Exception):
        raise a
    assert isinstance(a, Analysis)
    return a


def summarize(a: Analysis) -> list[dict[str, Any]]:
    return sorted(
        (
            {
                "id": f.id,
                "severity": f.severity,
                "count": f.count,
                "frames": f.frames[:12],
                "connection": f.connection,
            }
            for f in a.findings
        ),
        key=lambda d: (d["id"], d["frames"]),
    )


@pytest.mark.parametrize(("kind", "path"), _cases(), ids=lambda x: getattr(x, "name", x))
def test_findings_match_golden(kind: str, path: Path, request: pytest.FixtureRequest) -> None:
    try:
        a = _analysis(path)
    except Exception as exc:  # a non-capture is its own golden result
        got: list[dict[str, Any]] = [{"error": type(exc).__name__}]
    else:
        failures = [x.message for x in a.anomalies if x.layer == "rules"]
        assert not failures, failures  # a rule that crashed is a bug, not a silence
        got = summarize(a)
    target = GOLDEN / kind / f"{path.name}.json"
    if update_golden(request):
        old = json.loads(target.read_text()) if target.exists() else None
        if old != got:
            GOLDEN_CHANGES.append(f"{target.relative_to(GOLDEN)}: findings summary changed")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(got, indent=1) + "\n")
        return
    assert target.exists(), f"no golden file {target}: create it with --update-golden"
    assert got == json.loads(target.read_text())


def table_lines(a: Analysis) -> dict[str, list[str]]:
    """Every table of the analysis as JSON lines (the capture's path reduced to its name)."""
    out: dict[str, list[str]] = {}
    for name in TABLES:
        rows = [to_jsonable(r) for r in a.rows(name)]
        if name == "capture":
            for r in rows:
                assert isinstance(r, dict)
                r["path"] = Path(str(r["path"])).name
        out[name] = [json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows]
    return out


@pytest.mark.parametrize(("kind", "path"), _cases(), ids=lambda x: getattr(x, "name", x))
def test_every_table_matches_golden(kind: str, path: Path, request: pytest.FixtureRequest) -> None:
    try:
        a = _analysis(path)
    except Exception:
        pytest.skip("not a capture: its error is the findings golden")
    got = table_lines(a)
    folder = GOLDEN / kind / path.name
    if update_golden(request):
        folder.mkdir(parents=True, exist_ok=True)
        for name, lines in got.items():
            f = folder / f"{name}.jsonl"
            old = f.read_text().splitlines() if f.exists() else []
            if old != lines:
                added = len(set(lines) - set(old))
                removed = len(set(old) - set(lines))
                GOLDEN_CHANGES.append(
                    f"{f.relative_to(GOLDEN)}: {len(old)} → {len(lines)} rows "
                    f"(+{added} −{removed} distinct)"
                )
            if lines:
                f.write_text("".join(line + "\n" for line in lines))
            else:
                f.unlink(missing_ok=True)  # an empty table has no file
        return
    diffs = []
    for name, lines in got.items():
        f = folder / f"{name}.jsonl"
        old = f.read_text().splitlines() if f.exists() else []
        if old != lines:
            changed = len(set(old) ^ set(lines))
            diffs.append(f"{name}: golden {len(old)} rows, now {len(lines)} ({changed} differ)")
    assert not diffs, f"{path.name}: " + "; ".join(diffs) + " (review, then --update-golden)"


def _manifest_entries() -> list[dict[str, Any]]:
    return list(MANIFEST.get("captures", []))


@pytest.mark.parametrize("entry", _manifest_entries(), ids=lambda e: e["file"])
def test_scenario_expected_finding_ids(entry: dict[str, Any]) -> None:
    """The finding ids each scenario must produce — and nothing else on the clean ones."""
    a = _analysis(SCENARIOS / entry["file"])
    got = {f.id for f in a.findings}
    assert got == set(entry["expected_findings"]), [f.message for f in a.findings]
