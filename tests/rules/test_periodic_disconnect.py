"""Rule tests: periodic_disconnect — disconnections at a regular interval with one reason."""

from __future__ import annotations

import pytest

from analyzer.rules.base import run_rules
from tests.rules.helpers import _bare, _conn


@pytest.mark.parametrize(
    ("durations", "reasons", "fires"),
    [
        ([30.0, 29.0, 31.0], [0x13, 0x13, 0x13], True),
        ([30.0, 29.0, 31.0], [0x13, 0x08, 0x13], False),  # mixed reasons: no common timer
        ([30.0, 29.0, 39.0], [0x13, 0x13, 0x13], False),  # 39 s is 19 % off the mean
        ([30.0, 30.0, 30.0], [0x3E, 0x3E, 0x3E], False),  # never established: not drops
    ],
)
def test_periodic_disconnect_needs_one_reason_within_15_percent(
    durations: list[float], reasons: list[int], fires: bool
) -> None:
    a = _bare()
    a.connections = [
        _conn(i + 1, "AA:BB:CC:00:00:01", (0.0, 100.0, 500.0)[i], d, r)
        for i, (d, r) in enumerate(zip(durations, reasons, strict=True))
    ]
    got = [f for f in run_rules(a) if f.id == "periodic_disconnect"]
    assert bool(got) == fires
