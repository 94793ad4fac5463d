"""The short fuzz run (issue 18 §1): mutated real and scenario captures and structure-aware
hostile captures through every reader, every decoder and whole analyses for a few seconds; the
long run is ``python -m benchmarks.fuzz --minutes N``."""

from __future__ import annotations

from benchmarks import fuzz


def test_short_fuzz_run_finds_nothing() -> None:
    rep = fuzz.run(15, seed=18)
    assert rep["inputs"] > 50
    assert rep["exceptions"] == [], rep["exceptions"]
    assert rep["hangs"] == [], rep["hangs"]
    assert rep["memory"] == [], rep["memory"]
    assert rep["analyzed"] > 0 and rep["readable"] > 0
