"""Helpers of the rule tests: analyses of scenario and real captures (cached), and fresh copies
to inject faults into."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from analyzer.analysis import Analysis, analyze
from analyzer.model import CaptureSummary, Connection
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


def _bare() -> Analysis:
    cap = CaptureSummary("x", "btsnoop", 1002, "HCI", 0, frames=500, first_time_us=0,
                         last_time_us=3_600_000_000)  # fmt: skip
    return Analysis(capture=cap)


def _conn(n: int, addr: str, start_s: float, dur_s: float, reason: int) -> Connection:
    s, e = round(start_s * 1e6), round((start_s + dur_s) * 1e6)
    return Connection(f"acl-0x00{n}-1", n, addr, "br_edr", 0, "Success", n * 10, s,
                      end_frame=n * 10 + 5, end_time_us=e, disconnect_reason=reason,
                      initiator="local")  # fmt: skip
