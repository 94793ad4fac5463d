"""`btanalyze analyze` and `btanalyze rules` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.rules.docs import render
from tests.conftest import BUNDLED, REPO

SAMPLE = BUNDLED / "real" / "Swastik36_OPPO-Earbuds_btsnoop_hci.log"
SCEN = BUNDLED / "scenarios"
TOP_KEYS = {
    "schema",
    "capture",
    "devices",
    "connections",
    "l2cap_channels",
    "pairing",
    "sdp",
    "avdtp",
    "hfp",
    "advertisers",
    "timeline",
    "findings",
    "anomalies",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from analyzer.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def analyze_json(*args: str) -> dict:
    r = run("analyze", "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_json_contract_on_sample() -> None:
    d = analyze_json(str(SAMPLE))
    assert set(d) >= TOP_KEYS
    assert {"signals", "streams"} <= set(d["avdtp"])
    assert d["capture"]["frames"] == 2981
    for c in d["connections"]:
        assert {
            "id",
            "address",
            "transport",
            "status",
            "status_name",
            "disconnect_reason",
            "disconnect_reason_name",
        } <= set(c)
        assert c["transport"] in ("br_edr", "le", "sco", "esco")
    for s in d["sdp"]:
        assert "request_frame" in s and "response_frame" in s
    streams = d["avdtp"]["streams"]
    assert any(s["codec"] == "AAC" for s in streams)  # catalog: OPPO earbuds use AAC
    assert all("media_packets" in s and "connection" in s for s in streams)


def test_text_report_leads_with_findings() -> None:
    r = run("analyze", str(SCEN / "stale_bond_key_missing.btsnoop"))
    assert r.returncode == 0
    out = r.stdout
    assert out.index("Findings") < out.index("Connections")
    assert "auth_key_missing" in out and "fix:" in out


def test_fail_on_exit_codes() -> None:
    bad = str(SCEN / "stale_bond_key_missing.btsnoop")
    clean = str(SCEN / "pairing_ssp_just_works.btsnoop")
    assert run("analyze", "--fail-on", "error", bad).returncode == 3
    assert run("analyze", "--fail-on", "warning", bad).returncode == 3
    assert run("analyze", "--fail-on", "error", clean).returncode == 0


def test_deadline_option_changes_the_verdict() -> None:
    late = str(SCEN / "requests_late.btsnoop")  # answers come after 8.5 s
    ids = {f["id"] for f in analyze_json(late)["findings"]}
    assert "late_response" in ids
    ids10 = {f["id"] for f in analyze_json("--deadline", "10s", late)["findings"]}
    assert "late_response" not in ids10


def test_config_file_overrides_and_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "rules.toml"
    cfg.write_text("[late_response]\ndeadline_s = 20\n")
    late = str(SCEN / "requests_late.btsnoop")
    ids = {f["id"] for f in analyze_json("--config", str(cfg), late)["findings"]}
    assert "late_response" not in ids
    cfg.write_text("[no_such_rule]\nx = 1\n")
    r = run("analyze", "--config", str(cfg), late)
    assert r.returncode == 2 and "unknown rule" in r.stderr
    cfg.write_text("not toml [")
    r = run("analyze", "--config", str(cfg), late)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_device_and_time_window() -> None:
    """No false all-clear (issue 16): an unknown or mistyped device is an error naming the
    close matches; a device can be named by its name; a time window narrows the whole analysis
    (devices keep their names, no slice edge becomes a finding)."""
    r = run("analyze", "--device", "00:00:00:00:00:01", str(SAMPLE))
    assert r.returncode == 2 and "no device '00:00:00:00:00:01'" in r.stderr
    assert "60:55:56:00:00:00" in r.stderr  # the device the capture does have
    typo = run("analyze", "--device", "60:55:56:00:00:01", str(SAMPLE))
    assert typo.returncode == 2 and "did you mean: 60:55:56:00:00:00" in typo.stderr
    by_name = analyze_json("--device", "oppo enco", str(SAMPLE))
    assert by_name["scope"]["device"] == "60:55:56:00:00:00"
    assert {c["address"] for c in by_name["connections"]} == {"60:55:56:00:00:00"}
    full = analyze_json(str(SAMPLE))
    first = full["capture"]["first_time_us"]
    d = analyze_json("--to", "+1", str(SAMPLE))
    assert all(c["start_time_us"] <= first + 1_000_000 for c in d["connections"])
    assert all(e["time_us"] <= first + 1_000_000 for e in d["timeline"])
    assert [x["name"] for x in d["devices"]] == [x["name"] for x in full["devices"]]
    assert not [f for f in d["findings"] if f["id"] == "capture_incomplete"] or [
        f for f in full["findings"] if f["id"] == "capture_incomplete"
    ]
    outside = run("analyze", "--from", "+99999", str(SAMPLE))
    assert outside.returncode == 2 and "outside the capture" in outside.stderr


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(b"\x00" * 100)
    r = run("analyze", str(p))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = run("analyze", "--from", "yesterday-ish", str(SAMPLE))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_rules_listing() -> None:
    r = run("rules", "--json")
    assert r.returncode == 0
    ids = {x["id"] for x in json.loads(r.stdout)}
    assert {
        "response_timeout",
        "auth_key_missing",
        "firmware_changed",
        "a2dp_fallback_hfp",
        "avdtp_rejected",
        "a2dp_stream_not_started",
        "late_response",
    } <= ids


def test_rules_doc_is_current() -> None:
    doc = REPO / "docs" / "rules.md"
    if not doc.exists():
        pytest.fail("docs/rules.md missing: run python -m analyzer.rules.docs")
    assert doc.read_text() == render(), "docs/rules.md is stale: run python -m analyzer.rules.docs"
