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


def test_analyze_several_files(tmp_path: Path) -> None:
    """analyze A B C (issue 16 §4): a header per file, JSON as a list, a bad file reported and
    the others analysed, the exit code the worst of them."""
    clean = REPO / "captures" / "scenarios" / "a2dp_sbc_clean.btsnoop"
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture\n")
    r = _run("analyze", str(clean), str(bad), str(SC))
    assert r.returncode == 2, r.stderr  # the unreadable one; no --fail-on
    assert f"== {clean} ==" in r.stdout and f"== {SC} ==" in r.stdout
    assert "not a capture" in r.stderr and r.stdout.count("Verdict:") == 2
    r = _run("analyze", str(clean), str(SC), "--fail-on", "error")
    assert r.returncode == 3
    docs = json.loads(_run("analyze", "--json", str(clean), str(SC)).stdout)
    assert [d["capture"]["path"] for d in docs] == [str(clean), str(SC)]
    r = _run("analyze", str(clean), str(SC), "--annotate", str(tmp_path / "a.pcapng"))
    assert r.returncode == 2 and "one capture" in r.stderr


def test_fail_on_info() -> None:
    """--fail-on info: a capture whose only findings are notes exits 3; one without any, 0."""
    clean = REPO / "captures" / "scenarios" / "a2dp_sbc_clean.btsnoop"
    doc = json.loads(_run("analyze", "--json", str(clean)).stdout)
    sev = {f["severity"] for f in doc["findings"]}
    assert sev <= {"info"}
    r = _run("analyze", str(clean), "--fail-on", "info")
    assert r.returncode == (3 if sev else 0)
    assert _run("analyze", str(clean), "--fail-on", "warning").returncode == 0


def test_timeline_and_plain_text() -> None:
    """--timeline prints the cross-layer timeline in time order with wall clock, offset and
    frame; --no-color output has no escape sequences (and piped output never has)."""
    doc = json.loads(_run("analyze", "--json", str(SC)).stdout)
    r = _run("analyze", str(SC), "--timeline", "--no-color", columns=200)
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout
    body = r.stdout.split("Timeline (", 1)[1]
    frames = [int(line.split("|")[3]) for line in body.splitlines()
              if line.startswith("| ") and line.split("|")[3].strip().isdigit()]  # fmt: skip
    assert frames == sorted(frames) and len(frames) == len(doc["timeline"])
    assert "\x1b[" not in _run("analyze", str(SC)).stdout


def test_device_by_address_prefix() -> None:
    """--device takes an address prefix naming one device (issue 16 §4)."""
    cap = REPO / "captures" / "real" / "Swastik36_OPPO-Earbuds_btsnoop_hci.log"
    doc = json.loads(_run("analyze", "--json", str(cap)).stdout)
    remote = next(d["address"] for d in doc["devices"] if d["role"] == "remote")
    r = _run("analyze", "--json", str(cap), "--device", remote[:8].lower())
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["scope"]["device"] == remote
    bad = _run("analyze", str(cap), "--device", "FE:DC:BA")
    assert bad.returncode == 2


def test_rule_config_refuses_unknown_names_in_the_api_too(tmp_path: Path) -> None:
    """A misspelt threshold or rule id is an error in the Python API as in the CLI, and a
    config disabling a rule that does not exist is refused (issue 16 §4)."""
    from analyzer.rules.base import ConfigError, RuleConfig

    cfg = RuleConfig()
    with pytest.raises(ConfigError, match="no threshold 'deadlin_s'"):
        cfg.set("response_timeout", "deadlin_s", 3)
    with pytest.raises(ConfigError, match="unknown rule"):
        cfg.set("no_such_rule", "x", 3)
    with pytest.raises(ConfigError, match="unknown rule"):
        cfg.disable("no_such_rule")
    cfg.set("response_timeout", "deadline_s", 3)
    assert cfg.overrides == {"response_timeout": {"deadline_s": 3.0}}
    toml = tmp_path / "c.toml"
    toml.write_text('disabled = ["codec_choise"]\n')
    r = _run("analyze", str(SC), "--config", str(toml))
    assert r.returncode == 2 and "unknown rule 'codec_choise'" in r.stderr


def test_window_by_offset_duration_and_time_of_day() -> None:
    """--from/--to take +30, 5s/2m/1h and a wall-clock time of day (UTC) as well as ISO."""
    doc = json.loads(_run("analyze", "--json", str(SC)).stdout)
    t0 = doc["capture"]["first_time_us"]
    a = json.loads(_run("analyze", "--json", str(SC), "--from", "+3", "--to", "8s").stdout)
    assert (a["scope"]["time_from_us"], a["scope"]["time_to_us"]) == (t0 + 3_000_000,
                                                                     t0 + 8_000_000)  # fmt: skip
    clock = doc["capture"]["first_time"][11:19]  # HH:MM:SS of the first frame
    b = json.loads(_run("analyze", "--json", str(SC), "--from", clock).stdout)
    assert abs(b["scope"]["time_from_us"] - t0) < 1_000_000
    bad = _run("analyze", str(SC), "--from", "25:61")
    assert bad.returncode == 2
