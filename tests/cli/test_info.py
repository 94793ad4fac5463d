"""`btanalyze info`: output, JSON keys and exit codes, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUNDLED, shared_captures

SAMPLE = BUNDLED / "real" / "Swastik36_OPPO-Earbuds_btsnoop_hci.log"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from analyzer.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_info_json_keys_and_values() -> None:
    r = run("info", "--json", str(SAMPLE))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in (
        "format",
        "link_type",
        "frames",
        "first_time",
        "last_time",
        "truncated",
        "drops",
        "warnings",
    ):
        assert key in d
    assert d["format"] == "btsnoop"
    assert d["link_type"] == 1002
    assert d["frames"] == 2981  # tshark: 2981 frames (catalog)
    assert d["first_time"].startswith("2026-07-18T13:52:12")
    assert d["first_time"].endswith("Z")
    assert sum(d["frames_by_kind"].values()) == d["frames"]


def test_info_text() -> None:
    r = run("info", str(SAMPLE))
    assert r.returncode == 0
    assert "btsnoop" in r.stdout and "2981" in r.stdout


def test_random_bytes_exit_2_one_line(tmp_path: Path) -> None:
    p = tmp_path / "random.log"
    p.write_bytes(np.random.default_rng(7).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    r = run("info", str(p))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert "not a capture file" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_file_exit_2(tmp_path: Path) -> None:
    r = run("info", str(tmp_path / "nope.log"))
    assert r.returncode == 2
    assert "no such file" in r.stderr


def test_every_shared_capture_reads_without_traceback() -> None:
    present = [p for p in shared_captures() if p.exists()]
    if not present:
        pytest.skip("../shared/captures missing")
    for p in present:
        r = run("info", "--json", str(p))
        assert r.returncode in (0, 2), (p.name, r.stderr)
        assert "Traceback" not in r.stderr, p.name
        if r.returncode == 0:
            json.loads(r.stdout)
