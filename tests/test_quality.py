"""The code base stays ruff-clean, ruff-formatted and mypy-clean (strict for the model and the
rules; a check, like the others, that can fail)."""

from __future__ import annotations

import shutil
import subprocess
import sys

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
