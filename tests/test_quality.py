"""The code base stays ruff-clean, ruff-formatted and mypy-clean (strict for the model and the
rules; a check, like the others, that can fail)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_ruff_clean() -> None:
    if shutil.which("ruff") is None:
        pytest.skip("ruff not installed")
    r = subprocess.run(
        ["ruff", "check", "analyzer", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:]


def test_ruff_format_clean() -> None:
    if shutil.which("ruff") is None:
        pytest.skip("ruff not installed")
    r = subprocess.run(
        ["ruff", "format", "--check", "analyzer", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:]


def test_mypy_clean() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "analyzer"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if "No module named mypy" in r.stderr:
        pytest.skip("mypy not installed")
    assert r.returncode == 0, r.stdout[-3000:]


def _runs_tshark(text: str) -> bool:
    """Does a module start tshark itself, or keep its own tshark plumbing?"""
    starts = "subprocess" in text and re.search(r"TSHARK|[\"']tshark[\"']", text)
    return bool(starts or re.search(r"which\(\s*[\"']tshark|^def tshark_", text, re.M))


def test_only_the_oracle_runs_tshark() -> None:
    """One tshark oracle (tests/oracle.py): no other test module starts tshark or keeps its own
    tshark plumbing (a helper that runs it, its own lookup of the binary)."""
    here = REPO / "tests"
    mine = {here / "oracle.py", Path(__file__).resolve()}
    offenders = [
        str(p.relative_to(REPO))
        for p in sorted(here.rglob("*.py"))
        if p not in mine and _runs_tshark(p.read_text())
    ]
    assert not offenders, offenders
    # the check sees the plumbing it forbids
    assert _runs_tshark('import subprocess\nsubprocess.run(["tshark", "-r", str(p)])')
    assert _runs_tshark('TSHARK = shutil.which("tshark")')
    assert _runs_tshark("def tshark_fields(path):\n    ...")
    assert not _runs_tshark("from tests.oracle import tshark_fields")


#: the per-module flags of mypy --strict (the global-only ones cannot be scoped to a package)
STRICT_FLAGS = {
    "disallow_any_generics",
    "disallow_untyped_calls",
    "disallow_untyped_defs",
    "disallow_incomplete_defs",
    "check_untyped_defs",
    "disallow_untyped_decorators",
    "disallow_subclassing_any",
    "warn_return_any",
    "warn_unused_ignores",
    "no_implicit_reexport",
    "strict_equality",
    "extra_checks",
}


def test_model_and_rules_are_mypy_strict() -> None:
    """test_mypy_clean checks them strictly: the override stays in pyproject.toml."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    strict = [
        o
        for o in config["overrides"]
        if {"analyzer.model.*", "analyzer.rules.*"} <= set(o["module"])
    ]
    assert len(strict) == 1
    assert {k for k, v in strict[0].items() if v is True} >= STRICT_FLAGS


def test_runs_without_bumble() -> None:
    """bumble is a test/scenario dependency (issue 16 §7): the analyzer's name tables are stored
    (analyzer/decode/hci_tables.json), so analysing and the report work with bumble absent."""
    code = "import sys; sys.modules['bumble'] = None; from analyzer.cli import main; main()"
    cap = REPO / "captures" / "scenarios" / "a2dp_rejected_hfp_fallback.btsnoop"
    without = subprocess.run([sys.executable, "-c", code, "analyze", "--json", str(cap)],
                             capture_output=True, text=True, cwd=REPO, check=False)  # fmt: skip
    assert without.returncode == 0, without.stderr
    withb = subprocess.run(
        [sys.executable, "-c", "from analyzer.cli import main; main()", "analyze", "--json",
         str(cap)], capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert without.stdout == withb.stdout
