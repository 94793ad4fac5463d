"""Shared test fixtures: where the real corpus lives and how to ask tshark."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CAPTURES = (REPO / ".." / "shared" / "captures").resolve()
BUNDLED = REPO / "captures"
TSHARK = shutil.which("tshark")
PPI_USER_DLT = 'uat:user_dlts:"User 0 (DLT=147)","btle","0","","0",""'


def shared_captures() -> list[Path]:
    if not SHARED_CAPTURES.is_dir():
        return []
    return sorted(p for p in SHARED_CAPTURES.iterdir() if p.is_file() and p.suffix != ".md")


def corpus() -> list[Path]:
    """Every real capture of ../shared/captures and every bundled capture (real and scenario)."""
    bundled = sorted(
        p for p in BUNDLED.rglob("*") if p.is_file() and p.suffix not in (".md", ".json")
    )
    return shared_captures() + bundled


@cache
def analysis_of(path: Path) -> object:
    """The analysis of a capture, computed once per test session (an exception is returned, not
    raised, so a test can assert on it)."""
    from analyzer.analysis import analyze

    try:
        return analyze(path)
    except Exception as exc:  # a non-capture is a result too
        return exc


def shared_capture(name: str) -> Path:
    """A capture of ../shared/captures by name (the test is skipped where it is missing)."""
    p = SHARED_CAPTURES / name
    if not p.is_file():
        pytest.skip(f"{name} not in ../shared/captures")
    return p


def tshark_fields(
    path: Path, fields: list[str], *extra: str, occurrence: str = "f"
) -> list[list[str]]:
    """Run tshark -T fields and return one list of values per frame (``occurrence`` "f": the
    first value of a repeated field, "a": all of them, comma-separated)."""
    if TSHARK is None:
        pytest.skip("tshark not installed")
    cmd = [
        TSHARK,
        "-n",
        "-r",
        str(path),
        "-T",
        "fields",
        "-E",
        f"occurrence={occurrence}",
        "-E",
        "separator=\t",
        *extra,
    ]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED_CAPTURES.is_dir():
        pytest.skip("../shared/captures not present")
    return SHARED_CAPTURES
