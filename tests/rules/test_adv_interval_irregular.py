"""Rule tests: adv_interval_irregular.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import pytest

from analyzer.model import (
    GapHistogram,
)
from tests.rules.helpers import _fresh, _mine, _rerun, _scen


def test_low_duty_scans_stay_silent() -> None:
    for n in (
        "le_adv_scan_duty_10.btsnoop",
        "le_adv_scan_duty_25.btsnoop",
        "le_adv_scan_duty_100.btsnoop",
    ):
        assert not _mine(_scen(n), "adv_interval_irregular")


def test_silent_advertiser_injected() -> None:
    a = _fresh("le_adv_scan_duty_100.btsnoop")
    fast = max(a.advertisers, key=lambda x: x.events)
    assert fast.interval_ms == pytest.approx(20, abs=1)  # ground truth: 20 ms + advDelay
    fast.events = fast.events // 10  # heard a tenth as often: silent for long stretches
    fast.gap_histogram = GapHistogram([0.0, 25.0, 50.0], [fast.events, 0])
    [f] = [f for f in _rerun(a) if f.id == "adv_interval_irregular"]
    assert f.address == fast.address and f.details["kind"] == "silences"


def test_stray_advertiser_injected() -> None:
    a = _fresh("le_adv_scan_duty_100.btsnoop")
    x = next(x for x in a.advertisers if x.interval_ms and abs(x.interval_ms - 100) < 2)
    # half the gaps at 150 ms: no k x (100 + 0..10 ms) fits
    x.gap_histogram = GapHistogram([0.0, 100.0, 110.0, 145.0, 155.0], [0, 40, 0, 40])
    [f] = [f for f in _rerun(a) if f.id == "adv_interval_irregular"]
    assert f.details["kind"] == "strays" and f.details["stray_gaps"] == 40
