"""Advertising interval estimation (Core v5.4 Vol 6 Part B §4.4.2.2.1: events every
advInterval + advDelay, advDelay uniform 0-10 ms) on synthetic trains with scanner loss, and on
the scenario captures whose manifest gives the configured interval (the truth)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from analyzer.analysis import analyze, analyze_capture
from analyzer.capture import CaptureError
from analyzer.readers import load
from analyzer.sessions import advertising
from analyzer.sessions.advertising import estimate_interval
from tests.builders import h4_phdr, pcap_file
from tests.conftest import REPO, corpus

SCENARIOS = REPO / "captures" / "scenarios"


def train(
    interval_ms: float,
    seconds: float,
    seed: int,
    scan: tuple[float, float] | None = None,
    jitter_ms: float = 0.3,
) -> np.ndarray:
    """Event times (µs) an ideal advertiser sends, kept when they fall in a scan window."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 1000 / (interval_ms + 5)) + 1
    t = np.cumsum(interval_ms + rng.uniform(0.0, 10.0, n)) + rng.uniform(0, 1000)
    if scan is not None and scan[1] < scan[0]:
        phase = rng.uniform(0, scan[0])
        t = t[((t + phase) % scan[0]) < scan[1]]
    t = t + rng.normal(0.0, jitter_ms, t.size)
    return (t * 1000).astype(np.int64)


def tol(truth: float) -> float:
    return max(1.0, 0.01 * truth)


# scanner models: short windows every 100 ms (as the scenario captures) and Android's
# low power / balanced / low latency modes (512/5120, 1024/4096, 4096/4096 ms)
SCANS = [(100.0, 10.0), (100.0, 25.0), (100.0, 100.0), (5120.0, 512.0), (4096.0, 1024.0)]


@pytest.mark.parametrize("interval", [20.0, 100.0, 152.5, 1000.0, 2000.0])
@pytest.mark.parametrize("scan", SCANS)
def test_synthetic_accuracy(interval: float, scan: tuple[float, float]) -> None:
    checked = 0
    for seed in range(8):
        t = train(interval, 300.0, seed, scan)
        if t.size < 20:
            continue
        est = estimate_interval(t, scan=scan)
        assert est.interval_ms is not None, (seed, est)
        assert abs(est.interval_ms - interval) <= tol(interval), (seed, est)
        assert 0.0 < est.confidence <= 1.0
        checked += 1
    if checked == 0:
        pytest.skip("fewer than 20 events heard in every train")


def test_confidence_falls_with_sparse_data() -> None:
    dense = [estimate_interval(train(100.0, 120.0, s)).confidence for s in range(6)]
    few = [estimate_interval(train(100.0, 1.2, s)).confidence for s in range(6)]
    lossy = [
        estimate_interval(train(1000.0, 120.0, s, (5120.0, 512.0)), scan=(5120.0, 512.0)).confidence
        for s in range(6)
    ]
    assert np.mean(few) < np.mean(dense)
    assert np.mean(lossy) < np.mean(dense)


def test_not_estimable() -> None:
    assert estimate_interval([0, 100_000, 205_000]).interval_ms is None  # too few
    rng = np.random.default_rng(1)
    noise = np.cumsum(rng.exponential(300_000, 60)).astype(np.int64)  # Poisson, no interval
    est = estimate_interval(noise)
    assert est.interval_ms is None or est.confidence < 0.5


def test_no_adv_delay() -> None:
    # a controller that adds no advDelay (bumble's legacy advertiser): exact multiples
    t = (np.arange(0, 200) * 160.0 * 1000).astype(np.int64)
    est = estimate_interval(t)
    assert est.interval_ms is not None and abs(est.interval_ms - 160.0) <= 1.0
    assert not est.adv_delay


def _manifest() -> list[dict]:
    path = SCENARIOS / "manifest.json"
    if not path.is_file():
        return []
    return [
        c
        for c in json.loads(path.read_text())["captures"]
        if c.get("ground_truth", {}).get("advertisers")
    ]


@pytest.mark.parametrize("entry", _manifest(), ids=lambda c: c["file"])
def test_scenario_intervals(entry: dict) -> None:
    a = analyze(SCENARIOS / entry["file"])
    by = {x.address: x for x in a.advertisers}
    for truth in entry["ground_truth"]["advertisers"]:
        adv = by[truth["address"]]
        assert adv.name == truth["name"]
        if adv.reports >= 20:
            assert adv.interval_ms is not None, adv.interval_note
            assert abs(adv.interval_ms - truth["adv_interval_ms"]) <= tol(
                truth["adv_interval_ms"]
            ), (truth, adv.interval_ms)
        assert 0.0 <= adv.interval_confidence <= 1.0


def test_scenario_confidence_orders_duty_cycles() -> None:
    entries = {
        c["ground_truth"]["scan"]["duty_cycle_percent"]: c
        for c in _manifest()
        if c["file"].startswith("le_adv_scan_duty_")  # the same advertisers at each duty cycle
    }
    if not {10, 100} <= set(entries):
        pytest.skip("LE scan scenarios not generated")
    conf: dict[int, dict[str, float]] = {}
    for duty in (10, 100):
        a = analyze(SCENARIOS / entries[duty]["file"])
        conf[duty] = {x.address: x.interval_confidence for x in a.advertisers}
    common = [k for k in conf[10] if k in conf[100]]
    assert common
    assert sum(conf[10][k] for k in common) < sum(conf[100][k] for k in common)


# -- HCI details: duplicate filtering, extended report fragments ----------------------------------


def _cmd(opcode: int, params: bytes) -> bytes:
    return h4_phdr(True) + bytes([1]) + struct.pack("<HB", opcode, len(params)) + params


def _evt(code: int, params: bytes) -> bytes:
    return h4_phdr(False) + bytes([4, code, len(params)]) + params


def _legacy_report(addr: bytes, data: bytes, rssi: int = -60) -> bytes:
    rep = bytes([0x00, 0x01]) + addr + bytes([len(data)]) + data + struct.pack("<b", rssi)
    return _evt(0x3E, bytes([0x02, 1]) + rep)


def _ext_report(addr: bytes, data: bytes, status: int) -> bytes:
    et = 0x0001 | (status << 5)  # connectable, data status
    rep = (
        struct.pack("<H", et) + bytes([0x01]) + addr + bytes([1, 0, 0xFF, 0x7F])
        + struct.pack("<b", -55) + b"\x00\x00" + bytes([0]) + bytes(6) + bytes([len(data)]) + data
    )  # fmt: skip
    return _evt(0x3E, bytes([0x0D, 1]) + rep)


def _capture(tmp_path: Path, packets: list[bytes], step_us: int = 100_000) -> Path:
    recs = [(1_700_000_000_000_000 + i * step_us, p) for i, p in enumerate(packets)]
    data, _ = pcap_file(recs, 201)
    path = tmp_path / "le.pcap"
    path.write_bytes(data)
    return path


def test_duplicate_filtering_not_estimable(tmp_path: Path) -> None:
    addr = bytes([1, 2, 3, 4, 5, 0xC6])
    pkts = [_cmd(0x200C, bytes([1, 1]))]  # LE Set Scan Enable, filter duplicates
    pkts += [_legacy_report(addr, bytes([2, 1, 6])) for _ in range(40)]
    a = analyze(_capture(tmp_path, pkts))
    (adv,) = a.advertisers
    assert adv.reports == 40
    assert adv.interval_ms is None and "duplicate" in (adv.interval_note or "")


def test_legacy_reports_interval(tmp_path: Path) -> None:
    addr = bytes([1, 2, 3, 4, 5, 0xC6])
    pkts = [_cmd(0x200C, bytes([1, 0]))]
    pkts += [_legacy_report(addr, bytes([2, 1, 6, 4, 9]) + b"abc") for _ in range(40)]
    a = analyze(_capture(tmp_path, pkts))
    (adv,) = a.advertisers
    assert adv.address == "C6:05:04:03:02:01" and adv.name == "abc"
    assert adv.interval_ms is not None and abs(adv.interval_ms - 100.0) <= 1.0
    assert adv.rssi is not None
    assert (adv.rssi.min, adv.rssi.max, adv.rssi.mean) == (-60.0, -60.0, -60.0)


def test_extended_report_fragments_joined(tmp_path: Path) -> None:
    addr = bytes([9, 8, 7, 6, 5, 0xD4])
    name = bytes([9, 0x09]) + b"LongName"
    pkts = [
        _ext_report(addr, bytes([2, 1, 6]) + name[:4], status=1),
        _ext_report(addr, name[4:], status=0),
    ]
    a = analyze(_capture(tmp_path, pkts, step_us=1000))
    (adv,) = a.advertisers
    assert adv.reports == 1 and adv.name == "LongName"


def _refine_one(
    g: np.ndarray, T: float, mu: float, sd2: float, strict_k: bool
) -> tuple[float, np.ndarray, np.ndarray] | None:
    """The least-squares refinement one seed at a time, as written before the seeds were
    refined together (the reference for :func:`adv_interval._refine_many`)."""
    inl = np.zeros(g.size, dtype=bool)
    k = np.ones(g.size)
    for _ in range(8):
        P = T + mu
        if P <= 0:
            return None
        k = np.maximum(1.0, np.rint(g / P))
        var = k * sd2 + 0.25
        r = g - k * P
        inl = np.abs(r) <= 3.5 * np.sqrt(var)
        if strict_k:
            inl &= np.sqrt(k * sd2) < P / 4
        if inl.sum() < 3:
            return None
        T_new = float(np.sum(g[inl] - mu * k[inl]) / np.sum(k[inl]))
        done = abs(T_new - T) < 1e-4
        T = T_new
        if done:
            break
    return (T, inl, k) if T >= 10.0 else None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("strict_k", [True, False])
def test_seeds_refined_together_as_one_by_one(seed: int, strict_k: bool) -> None:
    """Refining many candidate intervals as rows of one array gives each seed's own result:
    the same inliers, the same k, the interval to 1e-9 ms (only the summation order differs),
    and the same failures (period ≤ 0, fewer than 3 inliers, interval below 10 ms)."""
    from analyzer.sessions import adv_interval

    rng = np.random.default_rng(seed)
    period = rng.uniform(20.0, 1500.0)
    k = rng.geometric(rng.uniform(0.3, 1.0), size=int(rng.integers(2, 400)))
    g = k * period + rng.uniform(0.0, 10.0, k.size) + rng.normal(0.0, 0.3, k.size)
    seeds = [*rng.uniform(-20.0, 2 * period, 150).tolist(), period - 5.0, 3.0, -50.0]
    got = adv_interval._refine_many(g, seeds, 5.0, 100.0 / 12.0, strict_k)
    assert len(got) == len(seeds)
    for seed_t, fit in zip(seeds, got, strict=True):
        ref = _refine_one(g, seed_t, 5.0, 100.0 / 12.0, strict_k)
        assert (fit is None) == (ref is None), seed_t
        if fit is not None and ref is not None:
            assert fit[0] == pytest.approx(ref[0], abs=1e-9)
            assert np.array_equal(fit[1], ref[1]) and np.array_equal(fit[2], ref[2])


def test_intervals_on_two_threads_equal_one_after_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """The advertisers' interval estimates run on two threads on a large log: the same
    advertisers (intervals, confidences, segments, histograms) as one after the other, on every
    capture of the corpus with several HCI advertisers."""
    checked = 0
    for path in corpus():
        if not path.exists():
            continue
        try:
            one = analyze_capture(load(path))
        except CaptureError:
            continue
        if sum(a.source == "hci" for a in one.advertisers) < 2:
            continue
        with monkeypatch.context() as mp:
            mp.setattr(advertising, "PARALLEL_EVENTS", 0)
            two = analyze_capture(load(path))
        assert json.dumps(two.to_json()["advertisers"]) == json.dumps(one.to_json()["advertisers"])
        checked += 1
    assert checked >= 3
