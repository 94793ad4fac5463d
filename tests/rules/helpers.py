"""Helpers of the rule tests: analyses of scenario and real captures (cached), and fresh copies
to inject faults into."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from analyzer.analysis import Analysis, analyze
from analyzer.rules.base import Finding, RuleConfig, run_rules
from tests.conftest import BUNDLED, SHARED_CAPTURES

SCEN = BUNDLED / "scenarios"
MANIFEST = json.loads((SCEN / "manifest.json").read_text())
ENTRIES = {e["file"]: e for e in MANIFEST["captures"]}
MINE = {
    "connection_failed", "link_loss", "short_connection", "periodic_disconnect",
    "pairing_failed", "encryption_failed", "l2cap_connection_refused", "sdp_error",
    "a2dp_media_stall", "codec_choice", "high_audio_latency", "hci_command_failed",
    "controller_reset", "hardware_error", "adv_interval_irregular", "capture_incomplete",
}  # fmt: skip


@cache
def _analysis(path: Path) -> Analysis:
    return analyze(path)


def _scen(name: str) -> Analysis:
    return _analysis(SCEN / name)


def _real(name: str) -> Analysis:
    p = SHARED_CAPTURES / name
    if not p.is_file():
        pytest.skip(f"{name} not in ../shared/captures")
    return _analysis(p)


def _mine(a: Analysis, rule_id: str) -> list[Finding]:
    return [f for f in a.findings if f.id == rule_id]


def _rerun(a: Analysis, cfg: RuleConfig | None = None) -> list[Finding]:
    return run_rules(a, cfg)


def _fresh(name: str) -> Analysis:
    """A private copy of a scenario's sessions to inject faults into."""
    a = analyze(SCEN / name)
    a.findings = []
    return a


def _no_rule_errors(a: Analysis) -> None:
    assert not [x for x in a.anomalies if x.layer == "rules"]
