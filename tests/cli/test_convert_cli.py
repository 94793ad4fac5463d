"""``btanalyze convert``: never overwrites its input, an existing file only with --force, and
``--annotate`` writes each finding as a packet comment on its evidence frames (issue 16 §3, §5).
Wireshark reads the comments back (the oracle)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.test_report import _run
from tests.conftest import REPO

SC = REPO / "captures" / "scenarios" / "a2dp_rejected_hfp_fallback.btsnoop"


def test_existing_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out.btsnoop"
    out.write_bytes(b"precious")
    r = _run("convert", str(SC), "-o", str(out))
    assert r.returncode == 2 and "exists: use --force" in r.stderr
    assert out.read_bytes() == b"precious"
    r = _run("convert", str(SC), "-o", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == SC.read_bytes()  # btsnoop in, btsnoop out: the same bytes


def test_never_its_own_input(tmp_path: Path) -> None:
    inp = tmp_path / "in.btsnoop"
    shutil.copy(SC, inp)
    link = tmp_path / "alias.btsnoop"
    link.symlink_to(inp)
    for target in (inp, link):
        r = _run("convert", str(inp), "-o", str(target), "--force")
        assert r.returncode == 2 and "is the input" in r.stderr
    r = _run("analyze", str(inp), "--annotate", str(inp))
    assert r.returncode == 2 and "is the input" in r.stderr
    assert inp.read_bytes() == SC.read_bytes()


@pytest.mark.tshark
def test_annotate_comments_the_evidence_frames(tmp_path: Path) -> None:
    from tests.oracle import run_tshark

    out = tmp_path / "a.pcapng"
    r = _run("convert", str(SC), "-o", str(out), "--annotate")
    assert r.returncode == 0, r.stderr
    doc = json.loads(_run("analyze", "--json", str(SC)).stdout)
    want: dict[int, set[str]] = {}
    for f in doc["findings"]:
        for fr in f["frames"]:
            want.setdefault(fr, set()).add(f["id"])
    assert want
    rows = run_tshark(out, "-Y", "frame.comment", "-T", "fields", "-e", "frame.number",
                      "-e", "frame.comment").splitlines()  # fmt: skip
    got: dict[int, set[str]] = {}
    for row in rows:
        num, comment = row.split("\t", 1)
        # several findings on one frame: one comment line each, each starting with the id
        got[int(num)] = {c.split(" ", 1)[0] for c in comment.replace("\\n", "\n").splitlines()}
    assert got == want
    filt = run_tshark(out, "-Y", 'frame.comment contains "avdtp_rejected"', "-T", "fields",
                      "-e", "frame.number").split()  # fmt: skip
    assert filt and {int(x) for x in filt} <= set(got)


def test_annotate_needs_pcapng(tmp_path: Path) -> None:
    r = _run("convert", str(SC), "-o", str(tmp_path / "a.btsnoop"), "--annotate")
    assert r.returncode == 2 and "pcapng" in r.stderr


def test_rules_id_shows_one_rule_in_full() -> None:
    r = _run("rules", "high_audio_latency")
    assert r.returncode == 0, r.stderr
    assert "High audio latency" in r.stdout and "warn_delay_ms = 500" in r.stdout
    assert "Delay Report" in r.stdout  # the rule's explanation (module doc), not only a line
    doc = json.loads(_run("rules", "high_audio_latency", "--json").stdout)
    assert doc["id"] == "high_audio_latency" and doc["explanation"]
    bad = _run("rules", "high_audio_latncy")
    assert bad.returncode == 2 and "did you mean: high_audio_latency" in bad.stderr


@pytest.mark.tshark
def test_markdown_incident_filter_selects_its_evidence() -> None:
    """Each incident in Markdown names its rules and a Wireshark display filter; tshark, run with
    that filter on the capture, selects exactly the evidence frames of the incident's findings."""
    import re

    from tests.oracle import run_tshark

    md = _run("analyze", "--format", "markdown", str(SC)).stdout
    filters = re.findall(r"Wireshark: `(frame\.number in \{[0-9, ]+\})`", md)
    assert filters and "rules: `avdtp_rejected`, `a2dp_fallback_hfp`" in md
    doc = json.loads(_run("analyze", "--json", str(SC)).stdout)
    inc = doc["incidents"][0]["id"]
    want = sorted({fr for f in doc["findings"] if f["incident"] == inc for fr in f["frames"]})
    got = [int(x) for x in run_tshark(SC, "-Y", filters[0], "-T", "fields",
                                      "-e", "frame.number").split()]  # fmt: skip
    assert got == want
    text = _run("analyze", str(SC), columns=120).stdout
    assert "rules: avdtp_rejected, a2dp_fallback_hfp" in text
