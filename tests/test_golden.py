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

import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analyzer.analysis import TABLES, Analysis
from analyzer.model import to_jsonable
from tests.conftest import (
    BUNDLED,
    GOLDEN_CHANGES,
    REPO,
    analysis_of,
    shared_captures,
    update_golden,
)

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


def row_diff(old: list[str], new: list[str]) -> tuple[int, int, int]:
    """(added, removed, changed) rows from ``old`` to ``new`` (a row replaced in place counts
    as changed; order matters, as the tables are in frame order)."""
    added = removed = changed = 0
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "replace":
            both = min(i2 - i1, j2 - j1)
            changed += both
            removed += i2 - i1 - both
            added += j2 - j1 - both
        elif tag == "delete":
            removed += i2 - i1
        elif tag == "insert":
            added += j2 - j1
    return added, removed, changed


def describe(old: list[str], new: list[str]) -> str:
    """What changed in one golden file, e.g. ``+2 -0 ~1 rows (93 -> 95)``."""
    if not old:
        return f"new file, {len(new)} rows"
    if not new:
        return f"removed (was {len(old)} rows)"
    added, removed, changed = row_diff(old, new)
    return f"+{added} -{removed} ~{changed} rows ({len(old)} -> {len(new)})"


def refresh(target: Path, lines: list[str]) -> None:
    """--update-golden: write ``lines`` to ``target`` (no file for no rows) and note the change."""
    old = target.read_text().splitlines() if target.exists() else []
    if old == lines:
        return
    GOLDEN_CHANGES.append(f"{target.relative_to(GOLDEN)}: {describe(old, lines)}")
    if lines:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(line + "\n" for line in lines))
    else:
        target.unlink(missing_ok=True)


def _summary_lines(summary: list[dict[str, Any]]) -> list[str]:
    return json.dumps(summary, indent=1).splitlines()


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
        refresh(target, _summary_lines(got))
        return
    assert target.exists(), f"no golden file {target}: create it with --update-golden"
    want = json.loads(target.read_text())
    assert got == want, describe(_summary_lines(want), _summary_lines(got))


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
        for name, lines in got.items():
            refresh(folder / f"{name}.jsonl", lines)
        return
    diffs = []
    for name, lines in got.items():
        f = folder / f"{name}.jsonl"
        old = f.read_text().splitlines() if f.exists() else []
        if old != lines:
            diffs.append(f"{name}: {describe(old, lines)}")
    assert not diffs, f"{path.name}: " + "; ".join(diffs) + " (review, then --update-golden)"


def test_no_orphan_golden_files(request: pytest.FixtureRequest) -> None:
    """Every golden file belongs to a capture of the corpus and a table of the model (a renamed
    capture or table must not leave a baseline nobody checks)."""
    expected = {f"{kind}/{p.name}" for kind, p in _cases()}
    orphans = []
    for kind in ("real", "scenarios"):
        for entry in sorted((GOLDEN / kind).iterdir()):
            key = f"{kind}/{entry.name.removesuffix('.json') if entry.is_file() else entry.name}"
            if key not in expected:
                orphans.append(entry)
            elif entry.is_dir():
                orphans += [
                    f for f in entry.iterdir() if f.name.removesuffix(".jsonl") not in TABLES
                ]
    if update_golden(request):
        for entry in orphans:
            GOLDEN_CHANGES.append(
                f"{entry.relative_to(GOLDEN)}: removed (no such capture or table)"
            )
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        return
    assert not orphans, [str(o.relative_to(GOLDEN)) for o in orphans]


def test_row_diff() -> None:
    old = ["a", "b", "c", "d"]
    assert row_diff(old, old) == (0, 0, 0)
    assert row_diff(old, ["a", "b", "c", "d", "e"]) == (1, 0, 0)
    assert row_diff(old, ["a", "c", "d"]) == (0, 1, 0)
    assert row_diff(old, ["a", "B", "c", "d"]) == (0, 0, 1)
    assert row_diff(old, ["a", "B", "X", "c", "d"]) == (1, 0, 1)
    assert describe([], ["x"]) == "new file, 1 rows"
    assert describe(["x"], []) == "removed (was 1 rows)"
    assert describe(old, ["a", "B", "c"]) == "+0 -1 ~1 rows (4 -> 3)"


def _manifest_entries() -> list[dict[str, Any]]:
    return list(MANIFEST.get("captures", []))


@pytest.mark.parametrize("entry", _manifest_entries(), ids=lambda e: e["file"])
def test_scenario_expected_finding_ids(entry: dict[str, Any]) -> None:
    """The finding ids each scenario must produce — and nothing else on the clean ones."""
    a = _analysis(SCENARIOS / entry["file"])
    got = {f.id for f in a.findings}
    assert got == set(entry["expected_findings"]), [f.message for f in a.findings]


def test_refresh_writes_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.GOLDEN", tmp_path)
    changes: list[str] = []
    monkeypatch.setattr(f"{__name__}.GOLDEN_CHANGES", changes)
    target = tmp_path / "real" / "x.log" / "timeline.jsonl"
    refresh(target, ['{"a": 1}', '{"a": 2}'])
    assert target.read_text() == '{"a": 1}\n{"a": 2}\n'
    refresh(target, ['{"a": 1}', '{"a": 2}'])  # unchanged: nothing to report
    refresh(target, ['{"a": 1}', '{"a": 3}', '{"a": 4}'])
    refresh(target, [])
    assert not target.exists()  # an empty table has no file
    assert changes == [
        "real/x.log/timeline.jsonl: new file, 2 rows",
        "real/x.log/timeline.jsonl: +1 -0 ~1 rows (2 -> 3)",
        "real/x.log/timeline.jsonl: removed (was 3 rows)",
    ]


def test_update_golden_refused_under_ci() -> None:
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--update-golden", __file__],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, r.stdout[-2000:] + r.stderr[-2000:]
    assert "--update-golden refuses to run under CI" in r.stderr
