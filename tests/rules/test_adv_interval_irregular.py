"""Rule tests: adv_interval_irregular.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import pytest

from analyzer.model import AdvSegment, AdvSilence, GapHistogram
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
    t0 = fast.first_time_us or 0
    fast.silences = [AdvSilence(t0 + 1_000_000, t0 + 7_000_000, 40, 300, 6000.0, 1.0)]
    [f] = [f for f in _rerun(a) if f.id == "adv_interval_irregular"]
    assert f.address == fast.address and f.details["kind"] == "silences"
    assert f.severity == "warning" and f.frames[:2] == [40, 300]
    # a short silence alone is not reported; short ones covering a quarter of the span are
    fast.silences = [AdvSilence(t0 + 1_000_000, t0 + 4_000_000, 40, 300, 3000.0, 1.0)]
    assert not [f for f in _rerun(a) if f.id == "adv_interval_irregular"]
    span = (fast.last_time_us or 0) - t0
    n = int(0.3 * span / 3_000_000) + 1
    fast.silences = [
        AdvSilence(t0 + i * 3_100_000, t0 + i * 3_100_000 + 3_000_000, 40 + i, 41 + i, 3000.0)
        for i in range(n)
    ]
    [f] = [f for f in _rerun(a) if f.id == "adv_interval_irregular"]
    assert f.count == n


def test_interval_change_is_info() -> None:
    a = _fresh("le_adv_scan_duty_100.btsnoop")
    x = next(x for x in a.advertisers if x.interval_ms and abs(x.interval_ms - 100) < 2)
    t0, t1 = x.first_time_us or 0, x.last_time_us or 0
    mid = (t0 + t1) // 2
    x.segments = [
        AdvSegment(t0, mid, 10, 200, 100.0, 0.9, 50),
        AdvSegment(mid + 1000, t1, 210, 400, 1000.0, 0.9, 12),
    ]
    [f] = [f for f in _rerun(a) if f.id == "adv_interval_irregular"]
    assert f.severity == "info" and f.details["intervals_ms"] == [100.0, 1000.0]
    assert f.frames == [210] and "100 ms → 1000 ms" in f.message


def test_stray_advertiser_injected() -> None:
    a = _fresh("le_adv_scan_duty_100.btsnoop")
    x = next(x for x in a.advertisers if x.interval_ms and abs(x.interval_ms - 100) < 2)
    # half the gaps at 150 ms: no k x (100 + 0..10 ms) fits
    x.gap_histogram = GapHistogram([0.0, 100.0, 110.0, 145.0, 155.0], [0, 40, 0, 40])
    [f] = [f for f in _rerun(a) if f.id == "adv_interval_irregular"]
    assert f.details["kind"] == "strays" and f.details["stray_gaps"] == 40
