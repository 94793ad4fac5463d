"""Shared test fixtures: where the real corpus lives and how to ask tshark."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the team's real-capture corpus (BTANALYZE_SHARED points elsewhere, e.g. to check the skips)
SHARED_CAPTURES = Path(
    os.environ.get("BTANALYZE_SHARED", str(REPO / ".." / "shared" / "captures"))
).resolve()
#: the corpus's file names, so that its tests are collected (and skipped) when it is missing
SHARED_NAMES = (Path(__file__).resolve().parent / "shared_corpus.txt").read_text().split()
BUNDLED = REPO / "captures"
TSHARK = shutil.which("tshark")
PPI_USER_DLT = 'uat:user_dlts:"User 0 (DLT=147)","btle","0","","0",""'


#: what an --update-golden run rewrote (printed at the end of the run)
GOLDEN_CHANGES: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden from the current analysis (refused under CI)",
    )


def update_golden(request: pytest.FixtureRequest) -> bool:
    """Is this an --update-golden run? (Never under CI: there the files are the oracle.)"""
    if not request.config.getoption("--update-golden"):
        return False
    if os.environ.get("CI"):
        pytest.fail("--update-golden refuses to run under CI")
    return True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if GOLDEN_CHANGES:
        terminalreporter.section("golden files changed")
        for line in GOLDEN_CHANGES:
            terminalreporter.write_line(line)


def shared_captures() -> list[Path]:
    """Every capture of the shared corpus (listed ones even when absent: their tests skip)."""
    present = (
        {p.name for p in SHARED_CAPTURES.iterdir() if p.is_file() and p.suffix != ".md"}
        if SHARED_CAPTURES.is_dir()
        else set()
    )
    return [SHARED_CAPTURES / n for n in sorted(present | set(SHARED_NAMES))]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test of a shared capture that is not on this machine is skipped, with the reason."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        for v in params.values():
            path = SHARED_CAPTURES / v if isinstance(v, str) and v in SHARED_NAMES else v
            if isinstance(path, Path) and path.parent == SHARED_CAPTURES and not path.exists():
                item.add_marker(pytest.mark.skip(reason=f"{path.name}: ../shared/captures missing"))


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
