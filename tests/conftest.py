"""Shared test fixtures: where the real corpus lives, the golden-file option."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the team's real-capture corpus (BTANALYZE_SHARED points elsewhere, e.g. to check the skips)
SHARED_CAPTURES = Path(
    os.environ.get("BTANALYZE_SHARED", str(REPO / ".." / "shared" / "captures"))
).resolve()


def _listing() -> dict[str, str]:
    out = {}
    for raw in (Path(__file__).resolve().parent / "shared_corpus.txt").read_text().splitlines():
        line = raw.partition("#")[0].strip()
        if line:
            name, fmt = line.split()
            out[name] = fmt
    return out


#: the corpus's file names and container formats, so that its tests are collected (and skipped)
#: when it is missing
SHARED_LISTING = _listing()
SHARED_NAMES = tuple(SHARED_LISTING)
BUNDLED = REPO / "captures"


#: what an --update-golden run changed, one line per golden file (printed at the end of the run)
GOLDEN_CHANGES: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden from the current analysis and print what changed per file "
        "(refused when the CI environment variable is set)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--update-golden") and os.environ.get("CI"):
        raise pytest.UsageError(
            "--update-golden refuses to run under CI (CI is set): there the golden files are "
            "the oracle; refresh them on a workstation and review the diff"
        )


def update_golden(request: pytest.FixtureRequest) -> bool:
    """Is this an --update-golden run? (Never under CI: pytest_configure refuses it.)"""
    return bool(request.config.getoption("--update-golden"))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if not config.getoption("--update-golden"):
        return
    terminalreporter.section("--update-golden")
    for line in sorted(GOLDEN_CHANGES):
        terminalreporter.write_line(line)
    terminalreporter.write_line(
        f"{len(GOLDEN_CHANGES)} golden file(s) changed"
        if GOLDEN_CHANGES
        else "no golden file changed"
    )


#: classic pcap in either byte order, micro- or nanosecond time stamps
PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1")


def container_format(path: Path) -> str:
    """btsnoop, pcap, pcapng or other, from the file's first bytes."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head == b"btsnoop\x00":
        return "btsnoop"
    if head[:4] in (
        b"\xa1\xb2\xc3\xd4",
        b"\xd4\xc3\xb2\xa1",
        b"\xa1\xb2\x3c\x4d",
        b"\x4d\x3c\xb2\xa1",
    ):
        return "pcap"
    if head[:4] == b"\x0a\x0d\x0d\x0a":
        return "pcapng"
    return "other"


def shared_captures(*formats: str) -> list[Path]:
    """Every capture of the shared corpus, or those of the given container formats (the listed
    ones even when absent: their tests skip; a present one not yet listed is included too)."""
    present = (
        {p.name for p in SHARED_CAPTURES.iterdir() if p.is_file() and p.suffix != ".md"}
        if SHARED_CAPTURES.is_dir()
        else set()
    )
    out = []
    for name in sorted(present | set(SHARED_NAMES)):
        path = SHARED_CAPTURES / name
        fmt = SHARED_LISTING.get(name) or container_format(path)
        if not formats or fmt in formats:
            out.append(path)
    return out


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


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED_CAPTURES.is_dir():
        pytest.skip("../shared/captures not present")
    return SHARED_CAPTURES
