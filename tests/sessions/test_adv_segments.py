"""Advertisers that change (issue 15): segments where one interval holds, interval switches
and silences — on bumble scenario captures whose manifest gives the truth, on synthetic trains
(steady trains heard at low scan duty must stay one segment), and on the real corpus (no
advertiser split into many small pieces)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analyzer.analysis import analyze
from analyzer.model import Analysis
from analyzer.sessions.adv_interval import estimate_interval
from analyzer.sessions.adv_segments import MIN_EVENTS, ScanTimeline, Train, segment_train
from tests.conftest import REPO, analysis_of, shared_captures
from tests.scenarios.harness import CAPTURE_EPOCH
from tests.sessions.test_adv_interval import train

SCENARIOS = REPO / "captures" / "scenarios"
EPOCH_US = int(CAPTURE_EPOCH.timestamp() * 1_000_000)


def tol(truth: float) -> float:
    return max(1.0, 0.01 * truth)


def _entries() -> list[dict]:
    path = SCENARIOS / "manifest.json"
    if not path.is_file():
        return []
    return [
        c
        for c in json.loads(path.read_text())["captures"]
        if any("segments" in x for x in c.get("ground_truth", {}).get("advertisers", []))
    ]


ENTRIES = _entries()


def test_scenarios_cover_switches_silences_and_duty_cycles() -> None:
    duties = {c["ground_truth"]["scan"]["duty_cycle_percent"] for c in ENTRIES}
    assert {25, 50, 100} <= duties
    ext = {c["ground_truth"]["scan"]["duty_cycle_percent"] for c in ENTRIES
           if c["ground_truth"]["scan"].get("extended")}  # fmt: skip
    assert {25, 100} <= ext  # LE Extended Advertising Reports count like legacy ones
    intervals = {x["adv_interval_ms"] for c in ENTRIES for x in c["ground_truth"]["advertisers"]}
    assert min(intervals) <= 20 and max(intervals) >= 2500
    assert any(i != int(i) for i in intervals)  # not only round numbers of ms
    assert any(len(x["segments"]) > 1 for c in ENTRIES for x in c["ground_truth"]["advertisers"])
    assert any(x["silences"] for c in ENTRIES for x in c["ground_truth"]["advertisers"])


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda c: c["file"])
def test_segments_and_silences_match_the_truth(entry: dict) -> None:
    a = analyze(SCENARIOS / entry["file"])
    duty = entry["ground_truth"]["scan"]["duty_cycle_percent"]
    by = {x.address: x for x in a.advertisers}
    for truth in entry["ground_truth"]["advertisers"]:
        adv = by[truth["address"]]
        want = truth["segments"]
        assert len(adv.segments) == len(want), (truth["name"], adv.segments)
        for seg, w in zip(adv.segments, want, strict=True):
            if seg.events >= MIN_EVENTS and duty >= 25:
                assert seg.interval_ms is not None, (truth["name"], seg)
                assert abs(seg.interval_ms - w["interval_ms"]) <= tol(w["interval_ms"]), seg
            if "from_s" in w:  # the switch is placed where it happened (within a slow gap)
                slack = 2 * 1000 * (1 + w["interval_ms"] / 100)
                assert abs((seg.from_time_us - EPOCH_US) / 1000 - w["from_s"] * 1000) <= slack
            assert seg.from_time_us <= seg.to_time_us and seg.from_frame <= seg.to_frame
            assert seg.pdu_types == {"ADV_IND": seg.events} and seg.connectable
            assert seg.discoverable is True  # LE General Discoverable flag in every report
        assert sum(s.events for s in adv.segments) == adv.events
        # interval_ms is the longest segment's, never a sub-multiple of it
        longest = max(adv.segments, key=lambda s: s.to_time_us - s.from_time_us)
        assert adv.interval_ms == longest.interval_ms
        assert adv.interval_ms is None or adv.interval_ms > 0.9 * truth["adv_interval_ms"]
        got = [(s.from_time_us - EPOCH_US, s.to_time_us - EPOCH_US) for s in adv.silences]
        if duty >= 50:  # every silence of >= 5 s is found at >= 50 % duty ...
            assert len(got) == len(truth["silences"]), (truth["name"], adv.silences)
        else:  # ... and none is invented below that
            assert len(got) <= len(truth["silences"]), (truth["name"], adv.silences)
        for (f, t), w in zip(got, truth["silences"], strict=False):
            # the silence runs from the last event heard before the stop to the first after
            assert w["from_s"] * 1e6 - 2 * tol_us(truth) <= f <= w["from_s"] * 1e6
            assert w["to_s"] * 1e6 <= t <= w["to_s"] * 1e6 + 2 * tol_us(truth)
    ids = {(f.id, f.severity) for f in a.findings}
    if any(len(t["segments"]) > 1 for t in entry["ground_truth"]["advertisers"]):
        assert ("adv_interval_irregular", "info") in ids  # a change is legitimate: info
    if any(t["silences"] for t in entry["ground_truth"]["advertisers"]):
        f = next(f for f in a.findings if f.details.get("kind") == "silences")
        assert f.severity == "warning" and len(f.frames) >= 2


def tol_us(truth: dict) -> float:
    """Time a scanner may take to hear the first event after a change (a few intervals)."""
    return 1000.0 * 4 * (truth["adv_interval_ms"] + 10)


@pytest.mark.parametrize("name", ["le_adv_scan_duty_10", "le_adv_scan_duty_25",
                                  "le_adv_scan_duty_100", "le_adv_silent_advertiser"])  # fmt: skip
def test_steady_advertisers_are_one_segment(name: str) -> None:
    path = SCENARIOS / f"{name}.btsnoop"
    if not path.is_file():
        pytest.skip("scenario not generated")
    for x in analyze(path).advertisers:
        assert len(x.segments) == 1, (x.name, x.segments)
        assert x.segments[0].events == x.events
        assert x.segments[0].interval_ms == x.interval_ms
        if "Tracker" not in (x.name or ""):
            assert x.silences == []


def _train(t: np.ndarray) -> Train:
    n = t.size
    return Train.named(t, np.arange(1, n + 1), ["ADV_IND"] * n, [6] * n)


@pytest.mark.parametrize("interval", [20.0, 152.5, 1000.0, 2000.0])
@pytest.mark.parametrize("scan", [(100.0, 10.0), (100.0, 30.0), (5120.0, 512.0), (4096.0, 1024.0)])
def test_steady_train_at_low_duty_stays_one_segment(
    interval: float, scan: tuple[float, float]
) -> None:
    timeline = ScanTimeline(np.asarray([0]), np.asarray([scan[0]]), np.asarray([scan[1]]))
    for seed in range(4):
        t = train(interval, 600.0, seed, scan)
        if t.size < 2:
            continue
        others = np.sort(np.concatenate([train(100.0, 600.0, seed + 50, scan), t]))
        segs, sil = segment_train(_train(t), estimate_interval(t, scan=scan), others,
                                  scan=scan, scan_at=timeline)  # fmt: skip
        assert len(segs) == 1, (seed, [(s.interval_ms, s.events) for s in segs])
        assert sil == [], (seed, sil)


def test_synthetic_switch_and_silence_at_full_duty() -> None:
    fast = train(100.0, 20.0, 1)
    slow = train(1000.0, 60.0, 2) + fast[-1] + 1_000_000
    t = np.concatenate([fast, slow])
    # a 12 s silence inside the slow part, others heard throughout
    gap_at = int(np.searchsorted(t, slow[10]))
    t = np.concatenate([t[:gap_at], t[gap_at:] + 12_000_000])
    others = np.sort(np.concatenate([train(211.25, 120.0, 3), t]))
    segs, sil = segment_train(_train(t), estimate_interval(t), others)
    assert [round(s.interval_ms or 0) for s in segs] == [100, 1000]
    assert segs[1].from_frame == fast.size + 1  # the first slow event starts the new segment
    assert len(sil) == 1 and 12_000 < sil[0].duration_ms < 15_000
    # without others heard in the gap, the scanner may have been off: no silence
    alone = np.sort(np.concatenate([others[others < t[gap_at - 1]], others[others > t[gap_at]]]))
    _, sil2 = segment_train(_train(t), estimate_interval(t), alone)
    assert sil2 == []


@pytest.mark.parametrize("path", shared_captures(), ids=lambda p: p.name)
def test_real_corpus_advertisers_not_cut_into_pieces(path: Path) -> None:
    a = analysis_of(path)
    if isinstance(a, Analysis):
        for x in a.advertisers:
            assert len(x.segments) <= 3, (path.name, x.address, x.segments)
            assert sum(s.events for s in x.segments) == x.events
            if len(x.segments) > 1:
                assert all(s.events >= MIN_EVENTS for s in x.segments), (path.name, x.address)


def _gappy(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` events at 100 ms with a 6 s gap after every 40th (many silence candidates), and
    other advertisers heard every 50 ms throughout."""
    rng = np.random.default_rng(n)
    g = 100_000 + rng.integers(0, 10_000, n - 1)
    g[39::40] = 6_000_000
    t = np.concatenate([[0], np.cumsum(g)]).astype(np.int64)
    others = np.arange(0, int(t[-1]), 50_000, dtype=np.int64)
    return t, others


def test_segmentation_is_linear_in_the_train() -> None:
    """Silence candidates and switch confirmation cost O(n log n): 4x the events, at most ~3x
    the time per event (CPU time, best of three, robust on a loaded machine)."""
    import time

    timeline = ScanTimeline(np.asarray([0]), np.asarray([100.0]), np.asarray([50.0]))

    def cost(n: int) -> float:
        t, others = _gappy(n)
        est = estimate_interval(t)
        best = float("inf")
        for _ in range(3):
            t0 = time.process_time()
            segment_train(_train(t), est, others, scan_at=timeline)
            best = min(best, time.process_time() - t0)
        return best / n

    small, large = cost(5_000), cost(20_000)
    assert large <= 3 * small + 2e-6, (small, large)
