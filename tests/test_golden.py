"""Golden expected findings: every real and scenario capture has a reviewed file of the findings
it must produce (ids, severities, counts, key frames); the analysis must match it exactly.

Refresh after a reviewed change with ``BTANALYZE_UPDATE_GOLDEN=1 python -m pytest
tests/test_golden.py`` and describe the change in the commit message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from analyzer.analysis import Analysis
from tests.conftest import BUNDLED, analysis_of, shared_captures

GOLDEN = Path(__file__).resolve().parent / "golden"
SCENARIOS = BUNDLED / "scenarios"
UPDATE = os.environ.get("BTANALYZE_UPDATE_GOLDEN") == "1"
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
def test_findings_match_golden(kind: str, path: Path) -> None:
    try:
        a = _analysis(path)
    except Exception as exc:  # a non-capture is its own golden result
        got: list[dict[str, Any]] = [{"error": type(exc).__name__}]
    else:
        failures = [x.message for x in a.anomalies if x.layer == "rules"]
        assert not failures, failures  # a rule that crashed is a bug, not a silence
        got = summarize(a)
    target = GOLDEN / kind / f"{path.name}.json"
    if UPDATE:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(got, indent=1) + "\n")
        return
    assert target.exists(), f"no golden file {target}: create it with BTANALYZE_UPDATE_GOLDEN=1"
    assert got == json.loads(target.read_text())


def _manifest_entries() -> list[dict[str, Any]]:
    return list(MANIFEST.get("captures", []))


@pytest.mark.parametrize("entry", _manifest_entries(), ids=lambda e: e["file"])
def test_scenario_expected_finding_ids(entry: dict[str, Any]) -> None:
    """The finding ids each scenario must produce — and nothing else on the clean ones."""
    a = _analysis(SCENARIOS / entry["file"])
    got = {f.id for f in a.findings}
    assert got == set(entry["expected_findings"]), [f.message for f in a.findings]
