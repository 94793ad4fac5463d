"""The text and Markdown reports (issue 16): verdict first, wall-clock times on findings, the
explanation shown, reader warnings in the report, every Bluetooth address whole at 80 columns
(piped), no Python ``None`` leaking, Markdown that pastes into a ticket."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CAPTURES = sorted((REPO / "captures" / "scenarios").glob("*.btsnoop"))[::4] + sorted(
    (REPO / "captures" / "real").glob("*")
)
ADDR = re.compile(r"\b[0-9A-F]{2}(?::[0-9A-F]{2}){5}\b")


def _run(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-c", "from analyzer.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=REPO, check=False,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_text_report_at_80_columns(path: Path) -> None:
    import json

    r = _run("analyze", str(path))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    lines = out.splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("Verdict:"))
    assert verdict <= 4  # verdict first, right after the capture line
    assert "None" not in out
    doc = json.loads(_run("analyze", "--json", str(path)).stdout)
    table_addrs = {d["address"] for d in doc["devices"]} | {
        c["address"] for c in doc["connections"] if c["address"] and not c.get("cancelled")
    }
    shown = set(ADDR.findall(out))
    assert table_addrs <= shown, sorted(table_addrs - shown)  # whole, never cut
    for f in doc["findings"]:
        assert f["id"] in out
        assert f["explanation"].split(".")[0][:40] in out.replace("\n", " ").replace("  ", " ")


def test_findings_carry_wall_clock_time_and_reader_warnings_show(tmp_path: Path) -> None:
    sc = REPO / "captures" / "scenarios" / "link_loss.btsnoop"
    out = _run("analyze", str(sc)).stdout
    assert re.search(r"ERROR\s+10:00:17\.082 link_loss", out)
    cut = tmp_path / "cut.btsnoop"
    cut.write_bytes(sc.read_bytes()[:5000])
    out = _run("analyze", str(cut)).stdout
    assert "reader:" in out and "cut" in out


def test_markdown_for_tickets() -> None:
    sc = REPO / "captures" / "scenarios" / "a2dp_rejected_hfp_fallback.btsnoop"
    r = _run("analyze", "--format", "markdown", str(sc))
    assert r.returncode == 0
    md = r.stdout
    assert md.startswith("## btanalyze:") and "**Verdict: 2 error(s)" in md
    assert "- **ERROR** `avdtp_rejected` at 10:00:03.110:" in md
    assert "| address | role | name | OUI vendor | chip vendor | LMP ver/subver |" in md
    assert "┃" not in md and "│" not in md  # no box drawing in a ticket
    assert "None" not in md


def test_empty_capture_says_so_without_none(tmp_path: Path) -> None:
    empty = tmp_path / "empty.btsnoop"
    empty.write_bytes(b"btsnoop\x00\x00\x00\x00\x01\x00\x00\x03\xea")
    r = _run("analyze", str(empty))
    assert r.returncode == 0 and "None" not in r.stdout and "Verdict: No problems found" in r.stdout


def test_rule_ids_whole_at_80_columns() -> None:
    from analyzer.rules.base import load_all

    out = _run("rules").stdout
    for rid in load_all():
        assert rid in out, rid


@pytest.mark.tshark
def test_annotated_pcapng_comments_every_evidence_frame(tmp_path: Path) -> None:
    """Wireshark is the oracle: the evidence frames of every finding carry its comment, and the
    frames themselves are unchanged in number."""
    import json

    from tests.oracle import run_tshark

    sc = REPO / "captures" / "scenarios" / "a2dp_rejected_hfp_fallback.btsnoop"
    out = tmp_path / "a.pcapng"
    r = _run("analyze", str(sc), "--annotate", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(_run("analyze", "--json", str(sc)).stdout)
    want = {fr for f in doc["findings"] for fr in f["frames"]}
    lines = run_tshark(out, "-Y", "frame.comment", "-T", "fields", "-e", "frame.number",
                       "-e", "frame.comment").splitlines()  # fmt: skip
    got = {int(x.split("\t")[0]) for x in lines if x.strip()}
    assert got == want
    assert all("btanalyze" in x for x in lines)
    total = run_tshark(out, "-T", "fields", "-e", "frame.number").split()
    assert len(total) == doc["capture"]["frames"]
