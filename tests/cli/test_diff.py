"""``btanalyze diff A B`` (issue 22): two scenario captures that differ in one procedure step —
the step is named as the first divergence, with the codecs that differ and the findings present
in only one; text, Markdown and JSON; saved analyses compare like captures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SC = REPO / "captures" / "scenarios"
CLI = [sys.executable, "-c", "from analyzer.cli import main; main()"]


def _diff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "diff", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, check=False)  # fmt: skip


def test_rejected_configuration_is_the_first_divergence() -> None:
    good, bad = SC / "a2dp_sbc_clean.btsnoop", SC / "a2dp_rejected_hfp_fallback.btsnoop"
    r = _diff(str(good), str(bad), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    first = doc["first_divergence"]
    assert first["procedure"] == "avdtp"
    assert first["a"]["text"].startswith("SET_CONFIGURATION SBC") and "accept" in first["a"]["text"]
    assert "reject UNSUPPORTED_CONFIGURATION" in first["b"]["text"]
    (dev,) = [d for d in doc["devices"] if d["address"] == "00:1B:66:4C:A2:31"]
    assert dev["differs"]["codecs"] == {"a": "SBC", "b": "HFP mSBC"}
    only_b = {f["id"] for f in doc["findings_only_b"]}
    assert {"avdtp_rejected", "a2dp_fallback_hfp"} <= only_b
    assert "avdtp_rejected" not in {f["id"] for f in doc["findings_only_a"]}
    text = _diff(str(good), str(bad)).stdout
    assert "First divergence: Sonic Buds Pro (00:1B:66:4C:A2:31), avdtp step" in text
    md = _diff(str(good), str(bad), "--format", "markdown").stdout
    assert md.startswith("## Comparing") and "`SET_CONFIGURATION SBC (sent) → accept`" in md


def test_hfp_codec_negotiation_step() -> None:
    r = _diff(str(SC / "hfp_call_cvsd.btsnoop"), str(SC / "hfp_call_msbc.btsnoop"), "--format",
              "json")  # fmt: skip
    doc = json.loads(r.stdout)
    assert doc["first_divergence"]["procedure"] == "hfp"
    assert doc["first_divergence"]["a"] is None  # the CVSD run has no codec negotiation
    assert doc["first_divergence"]["b"]["text"] == "AT+BAC → OK"
    (dev,) = doc["devices"]
    assert dev["differs"]["codecs"] == {"a": "HFP CVSD", "b": "HFP mSBC"}


def test_a_capture_equals_itself_and_its_saved_analysis(tmp_path: Path) -> None:
    cap = SC / "link_loss.btsnoop"
    saved = tmp_path / "a.json"
    out = subprocess.run([*CLI, "analyze", "--json", str(cap)], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout  # fmt: skip
    saved.write_text(out)
    r = _diff(str(cap), str(saved), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["first_divergence"] is None and doc["devices"] == []
    assert doc["findings_only_a"] == [] and doc["findings_only_b"] == []
    assert "No procedure step differs." in _diff(str(cap), str(cap)).stdout


def test_missing_or_bad_input_exits_2(tmp_path: Path) -> None:
    r = _diff(str(tmp_path / "nope.btsnoop"), str(SC / "link_loss.btsnoop"))
    assert r.returncode == 2 and r.stderr.startswith("btanalyze:")
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert _diff(str(junk), str(SC / "link_loss.btsnoop")).returncode == 2
