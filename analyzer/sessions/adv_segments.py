"""One advertiser's train of heard advertising events cut where it changes (issue 15).

Core Vol 6 Part B §4.4.2.2.1: events come advInterval + advDelay (0-10 ms) apart; a scanner hears
only some of them (scan window / interval, channel), so a gap between heard events spans k events.

* **Silences** — a gap that chance misses do not explain: at least :data:`SILENCE_MIN_MS`,
  :data:`SILENCE_INTERVALS` intervals, and so many intervals that missing them all in a row has
  probability below :data:`SILENCE_CHANCE` given how often this advertiser's next event is heard
  (the share of one-event gaps among its short gaps); judged only while the scanner was scanning
  (inside an HCI scan session when the capture shows them) and heard other advertisers throughout
  the gap (no stretch without another event longer than :func:`_max_quiet_ms`), and only when
  the advertiser itself was heard well just before and just after (:data:`FLANK_EVENTS`: not a
  device at the edge of radio range heard now and then). A silence does not
  split a segment: the interval before and after may well be the same.
* **Interval switches** — the level of the log-gaps shifts (binary segmentation by the CUSUM
  statistic, both sides ≥ :data:`MIN_EVENTS` events, the shift significant against the scatter),
  confirmed only when the two sides' own interval estimates differ by ≥ :data:`MIN_RATIO`, their
  shortest gaps (20th percentile) differ as much, and the hearing rate changed the way the interval
  did (a slower interval is heard less often: rate ratio ≥ √ interval ratio). A steady advertiser
  heard irregularly — low scan duty, scanning toggled — fails these and stays one segment.

Gaps that span a stretch where the scanner was off (between HCI scan sessions) are unobserved:
neither silences nor evidence of a switch, and their time is not counted in hearing rates.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analyzer.model import AdvSegment, AdvSilence
from analyzer.sessions.adv_interval import IntervalEstimate, estimate_interval

SILENCE_MIN_MS = 3000.0
SILENCE_INTERVALS = 5.0
SILENCE_CHANCE = 1e-4
MIN_EVENTS = 10
MIN_RATIO = 1.3
MAX_DEPTH = 4
#: a level shift of the log-gaps must stand this many standard errors clear of zero
SHIFT_Z = 6.0
#: both sides of an interval switch need estimates at least this certain
SWITCH_MIN_CONFIDENCE = 0.3
#: ... and their 20th-percentile gap within this many of their own intervals
SUPPORT_K = 3.5
#: other advertisers' events needed inside a gap to call it a silence
OTHERS_HEARD = 3
#: silences are judged only on a train whose interval is this certain (a gap of "many
#: intervals" means nothing when the interval is a guess)
SILENCE_MIN_CONFIDENCE = 0.3
MIN_ADV_INTERVAL_MS = 19.0  # 20 ms, less the estimate's tolerance
#: own events needed just before and just after a silence (within max(2 s, 20 intervals)): the
#: advertiser was heard well on both sides, so its absence is not the edge of radio range
FLANK_EVENTS = 5
CONNECTABLE = {"ADV_IND", "ADV_DIRECT_IND", "extended connectable", "extended connectable directed"}


@dataclass
class ScanTimeline:
    """LE Set (Extended) Scan Parameters in force over time: sorted start times (µs) and the
    scan interval and window (ms) set then."""

    times_us: np.ndarray
    interval_ms: np.ndarray
    window_ms: np.ndarray

    def duty(self, times_us: np.ndarray) -> np.ndarray:
        """Scan duty cycle (window / interval) in force at each time; 1 where none was set."""
        i = np.searchsorted(self.times_us, times_us, "right") - 1
        iv = np.where(i >= 0, self.interval_ms[np.maximum(i, 0)], 0.0)
        win = np.where(i >= 0, self.window_ms[np.maximum(i, 0)], 0.0)
        ok = (iv > 0) & (win > 0) & (win <= iv)
        return np.where(ok, win / np.where(iv > 0, iv, 1.0), 1.0)

    def at(self, time_us: int) -> tuple[float, float]:
        """(interval, window) ms in force at ``time_us``; (0, 0) when none was set yet."""
        i = int(np.searchsorted(self.times_us, time_us, "right")) - 1
        if i < 0:
            return 0.0, 0.0
        return float(self.interval_ms[i]), float(self.window_ms[i])


@dataclass
class Train:
    """One advertiser's heard advertising events, sorted by time."""

    times_us: np.ndarray  # int64
    frames: np.ndarray  # int64
    pdus: np.ndarray  # each event's PDU type: integer codes into pdu_names
    flags: np.ndarray  # AD Flags of each event's report, -1 where it carried none
    pdu_names: Sequence[str]

    @classmethod
    def named(
        cls, times_us: np.ndarray, frames: np.ndarray, pdus: Sequence[str], flags: Sequence[int]
    ) -> Train:
        """A train from each event's PDU type name."""
        names = sorted(set(pdus))
        code = {x: i for i, x in enumerate(names)}
        return cls(times_us, frames, np.asarray([code[x] for x in pdus], dtype=np.int64),
                   np.asarray(flags, dtype=np.int64), names)  # fmt: skip


def _max_quiet_ms(gap_ms: float, scan_interval_ms: float) -> float:
    """The longest stretch without any other advertiser's event that a silence of ``gap_ms``
    may contain: the scanner must have been heard working throughout (a windowed scanner hears
    nothing between its windows)."""
    return max(2000.0, 1.5 * scan_interval_ms, 0.2 * gap_ms)


def _alias_dead_ms(period: float, si: float, sw: float) -> float:
    """How long a windowed scanner may miss an advertiser whose period is close to a multiple
    of the scan interval: each event lands only δ = (period mod si, folded) later in the scan
    cycle (at least the advDelay's spread), so crossing the (si − sw) ms outside the window takes
    about (si − sw) / δ events; three times that, for the random walk of advDelay."""
    d = period % si
    delta = max(min(d, si - d), 2.9)
    return 3.0 * (si - sw) / delta * period


def _window_hearing_prob(t: np.ndarray, counted: np.ndarray, g_ms: np.ndarray, si: float) -> float:
    """Probability that this advertiser is heard in a given scan window of a windowed scanner
    (scan interval ``si`` ms): the share of scan intervals, over the observed time, in which at
    least one of its events was heard."""
    span = float(g_ms[counted].sum())
    if span <= 0:
        return 0.5
    bins = np.unique(((t - t[0]) / 1000.0 // si).astype(np.int64)).size
    return float(np.clip(bins / (span / si + 1.0), 0.05, 0.999))


def _duty_at(scan_at: ScanTimeline | None, time_us: int) -> float | None:
    """Scan duty cycle (window / interval) in force at ``time_us``, if the capture set one."""
    si, sw = scan_at.at(time_us) if scan_at is not None else (0.0, 0.0)
    return round(sw / si, 3) if si > 0 else None


def _hearing_prob(g: np.ndarray, period: float) -> float:
    """Probability that the next event is heard: the share of one-event gaps among the gaps
    spanning at most ten events (a geometric number of events per heard gap)."""
    k = np.rint(g / period)
    short = (k >= 1) & (k <= 10)
    if short.sum() < 3:
        return 0.5
    return float(np.clip(np.mean(k[short] == 1), 0.05, 0.999))


def _unobserved(t: np.ndarray, scan_on: np.ndarray | None) -> np.ndarray:
    """Per gap: the scanner was off during part of it (not inside one scan session)."""
    if scan_on is None or scan_on.size == 0:
        return np.zeros(max(t.size - 1, 0), dtype=bool)
    starts, ends = scan_on[:, 0], scan_on[:, 1]
    i = np.searchsorted(starts, t[:-1], "right") - 1  # session holding the gap's start
    ok = (i >= 0) & (t[1:] <= ends[np.maximum(i, 0)])
    return ~ok


def _silences(
    tr: Train,
    g_ms: np.ndarray,
    period: float,
    unobserved: np.ndarray,
    all_us: np.ndarray | None,
    scan_at: ScanTimeline | None,
    within: tuple[int, int] | None = None,
) -> list[int]:
    """Gap indexes (in ``within``, a gap index range [a, b), when given) that are silences of
    a train with this period (see the module docstring)."""
    if all_us is None or all_us.size == 0:
        return []
    lo_g, hi_g = within if within is not None else (0, g_ms.size)
    in_range = np.zeros(g_ms.size, dtype=bool)
    in_range[lo_g:hi_g] = True
    observed = ~unobserved & in_range
    p = _hearing_prob(g_ms[observed], period)
    k_min = max(SILENCE_INTERVALS, float(np.log(SILENCE_CHANCE) / np.log1p(-p)))
    floor = max(SILENCE_MIN_MS, SILENCE_INTERVALS * period)
    out: list[int] = []
    t = tr.times_us
    flank = int(max(2000.0, 20.0 * period) * 1000)
    q_by_si: dict[float, float] = {}
    for i in np.flatnonzero((g_ms >= floor) & observed).tolist():
        a, b = int(t[i]), int(t[i + 1])
        before = i + 1 - int(np.searchsorted(t, a - flank, "left"))
        after = int(np.searchsorted(t, b + flank, "right")) - (i + 1)
        if min(before, after) < FLANK_EVENTS:
            continue
        si, sw = scan_at.at(a) if scan_at is not None else (0.0, 0.0)
        if 0 < sw < si:
            # a windowed scanner misses windows, not events: a period near a multiple of the
            # scan interval falls in or out of the window for runs of events, so consecutive
            # events are not independent — count missed windows instead
            q = q_by_si.get(si)
            if q is None:  # once per scan interval in force (linear in the train)
                q = q_by_si[si] = _window_hearing_prob(t, observed, g_ms, si)
            m_min = float(np.log(SILENCE_CHANCE) / np.log1p(-q))
            need = max((m_min + 1.0) * si, _alias_dead_ms(period, si, sw))
        else:  # continuous scanning: each event heard independently with probability p
            need = k_min * period
        if g_ms[i] < need:
            continue
        lo, hi = np.searchsorted(all_us, a, "right"), np.searchsorted(all_us, b, "left")
        inside = all_us[lo:hi]
        if inside.size < OTHERS_HEARD:
            continue
        quiet = float(np.diff(np.concatenate([[a], inside, [b]])).max()) / 1000.0
        if quiet <= _max_quiet_ms(float(g_ms[i]), si):
            out.append(i)
    return out


def _split_points(lg: np.ndarray, lo: int, hi: int, depth: int, out: list[int]) -> None:
    """Candidate switch points (indexes into ``lg``) in lg[lo:hi] by recursive CUSUM."""
    n = hi - lo
    if depth >= MAX_DEPTH or n < 2 * MIN_EVENTS:
        return
    x = lg[lo:hi]
    c = np.cumsum(x)
    k = np.arange(MIN_EVENTS, n - MIN_EVENTS + 1)
    left = c[k - 1] / k
    right = (c[-1] - c[k - 1]) / (n - k)
    stat = k * (n - k) / n * (left - right) ** 2
    b = int(np.argmax(stat))
    kk = int(k[b])
    shift = abs(float(left[b] - right[b]))
    resid = np.concatenate([x[:kk] - left[b], x[kk:] - right[b]])
    sd = max(float(resid.std()), 0.02)
    z = shift / (sd * np.sqrt(1.0 / kk + 1.0 / (n - kk)))
    if shift < np.log(MIN_RATIO) or z < SHIFT_Z:
        return
    out.append(lo + kk)
    _split_points(lg, lo, lo + kk, depth + 1, out)
    _split_points(lg, lo + kk, hi, depth + 1, out)


def _rate(g_ms: np.ndarray, counted: np.ndarray, duty: np.ndarray) -> float:
    """Heard events per second of listening over the counted gaps (time weighted by the scan
    duty cycle in force, so that a scanner turned from full to a quarter duty does not look
    like an advertiser slowing down)."""
    span = float((g_ms[counted] * duty[counted]).sum())
    return float(counted.sum()) / span * 1000.0 if span > 0 else 0.0


def _switch(
    g_ms: np.ndarray,
    counted: np.ndarray,
    duty: np.ndarray,
    left: tuple[int, int],
    right: tuple[int, int],
    e_l: IntervalEstimate,
    e_r: IntervalEstimate,
) -> bool:
    """The interval really changed between the event ranges ``left`` and ``right``."""
    if e_l.interval_ms is None or e_r.interval_ms is None:
        return False
    if min(e_l.confidence, e_r.confidence) < SWITCH_MIN_CONFIDENCE:
        return False
    ratio = max(e_l.interval_ms, e_r.interval_ms) / min(e_l.interval_ms, e_r.interval_ms)
    if ratio < MIN_RATIO:
        return False
    gl, gr = g_ms[left[0] : left[1]], g_ms[right[0] : right[1]]
    cl, cr = counted[left[0] : left[1]], counted[right[0] : right[1]]
    if cl.sum() < 3 or cr.sum() < 3:
        return False
    ql, qr = float(np.quantile(gl[cl], 0.2)), float(np.quantile(gr[cr], 0.2))
    if max(ql, qr) / max(min(ql, qr), 0.5) < MIN_RATIO or (ql < qr) != (
        e_l.interval_ms < e_r.interval_ms
    ):
        return False
    # each side's short gaps span few of its own intervals (an estimate no short gap supports
    # is a sub-multiple of whatever the scanner let through), unless the scanner was windowed
    for q, e, d in ((ql, e_l, duty[left[0] : left[1]]), (qr, e_r, duty[right[0] : right[1]])):
        if float(np.median(d)) >= 0.5 and q > SUPPORT_K * ((e.interval_ms or 0.0) + 5.0):
            return False
    dl, dr = duty[left[0] : left[1]], duty[right[0] : right[1]]
    r_l, r_r = _rate(gl, cl, dl), _rate(gr, cr, dr)
    if min(r_l, r_r) <= 0:
        return False
    slower_heard_less = (r_l > r_r) == (e_l.interval_ms < e_r.interval_ms)
    return slower_heard_less and max(r_l, r_r) / min(r_l, r_r) >= float(np.sqrt(ratio))


def _segment(
    tr: Train, a: int, b: int, est: IntervalEstimate, note: str | None = None
) -> AdvSegment:
    counts = np.bincount(tr.pdus[a : b + 1], minlength=len(tr.pdu_names))
    types = {tr.pdu_names[i]: int(c) for i, c in enumerate(counts.tolist()) if c}
    fl = tr.flags[a : b + 1]
    fl = fl[fl >= 0]
    return AdvSegment(
        from_time_us=int(tr.times_us[a]),
        to_time_us=int(tr.times_us[b]),
        from_frame=int(tr.frames[a]),
        to_frame=int(tr.frames[b]),
        interval_ms=est.interval_ms,
        confidence=round(est.confidence, 3) if est.interval_ms is not None else 0.0,
        events=b - a + 1,
        pdu_types=dict(sorted(types.items())),
        connectable=any(x in CONNECTABLE for x in types) if types else None,
        discoverable=bool((fl & 0x03).any()) if fl.size else None,
        note=note if note is not None else est.note,
    )


def whole_train(tr: Train, note: str | None) -> list[AdvSegment]:
    """The whole train as one segment without an interval (``note`` says why)."""
    if tr.times_us.size == 0:
        return []
    return [_segment(tr, 0, int(tr.times_us.size) - 1, IntervalEstimate(None, 0.0), note)]


def segment_train(
    tr: Train,
    whole: IntervalEstimate,
    all_us: np.ndarray | None,
    scan_on: np.ndarray | None = None,
    scan: tuple[float, float] | None = None,
    scan_at: ScanTimeline | None = None,
) -> tuple[list[AdvSegment], list[AdvSilence]]:
    """Segments and silences of one advertiser. ``whole``: the estimate over the whole train
    (kept when the train is one segment); ``all_us``: sorted times of every advertising event
    heard from any advertiser; ``scan_on``: (n, 2) µs [start, end] of the scan sessions, or
    None when the capture does not show when the scanner ran."""
    n = int(tr.times_us.size)
    if n == 0:
        return [], []
    if n == 1 or (n < 2 * MIN_EVENTS and not _sure(whole)):
        return [_segment(tr, 0, n - 1, whole)], []  # nothing to split, no interval to judge by
    t = tr.times_us.astype(np.int64)
    g_ms = np.diff(t) / 1000.0
    period = (whole.interval_ms + (5.0 if whole.adv_delay else 0.0)) if whole.interval_ms else None
    unobserved = _unobserved(t, scan_on)
    silent = (
        _silences(tr, g_ms, period, unobserved, all_us, scan_at) if period and _sure(whole) else []
    )
    silences = [_silence(tr, t, g_ms, i, scan_at) for i in silent]
    counted = ~unobserved
    counted[silent] = False
    # switch candidates on the log-gaps that are evidence (observed, not silences)
    idx = np.flatnonzero(counted)
    cand: list[int] = []
    if idx.size >= 2 * MIN_EVENTS:
        lg = np.log(np.maximum(g_ms[idx], 0.5))
        pos: list[int] = []
        _split_points(lg, 0, int(idx.size), 0, pos)
        cand = sorted({int(idx[p]) for p in pos})  # gap index where the right side starts
    if not cand:
        return [_segment(tr, 0, n - 1, whole)], silences
    duty = scan_at.duty(t[:-1]) if scan_at is not None else np.ones(n - 1)
    # event ranges [a, b): the gap at a switch is the first slow (or fast) gap, its left event
    # the last of the old interval
    pieces = list(itertools.pairwise([0, *(c + 1 for c in cand), n]))
    ests = [estimate_interval(t[a:b], scan=scan) for a, b in pieces]
    merged: list[tuple[int, int]] = [pieces[0]]
    merged_e: list[IntervalEstimate] = [ests[0]]
    for (a, b), e_r in zip(pieces[1:], ests[1:], strict=True):
        pa, pb = merged[-1]
        big = (pb - pa) >= MIN_EVENTS and (b - a) >= MIN_EVENTS
        # gaps of the left piece: pa..pb-2 (pb-1 is the gap to the right piece)
        if big and _switch(g_ms, counted, duty, (pa, pb - 1), (a, b - 1), merged_e[-1], e_r):
            merged.append((a, b))
            merged_e.append(e_r)
        else:
            merged[-1] = (pa, b)
            merged_e[-1] = estimate_interval(t[pa:b], scan=scan)
    if len(merged) == 1:
        return [_segment(tr, 0, n - 1, whole)], silences
    # silences again, each segment judged by its own interval (a gap of many fast intervals
    # may be a few slow ones)
    silent = []
    for (a, b), e in zip(merged, merged_e, strict=True):
        if _sure(e) and e.interval_ms is not None:
            per = e.interval_ms + (5.0 if e.adv_delay else 0.0)
            silent += _silences(tr, g_ms, per, unobserved, all_us, scan_at, (a, b - 1))
    silences = [_silence(tr, t, g_ms, i, scan_at) for i in silent]
    return [_segment(tr, a, b - 1, e) for (a, b), e in zip(merged, merged_e, strict=True)], silences


def _sure(est: IntervalEstimate) -> bool:
    """An interval certain enough to call a gap 'many intervals' (advInterval is at least 20 ms,
    Vol 6 Part B §4.4.2.2.1: a shorter estimate is no interval)."""
    return (est.interval_ms or 0.0) >= MIN_ADV_INTERVAL_MS and (
        est.confidence >= SILENCE_MIN_CONFIDENCE
    )


def _silence(
    tr: Train, t: np.ndarray, g_ms: np.ndarray, i: int, scan_at: ScanTimeline | None
) -> AdvSilence:
    return AdvSilence(
        int(t[i]), int(t[i + 1]), int(tr.frames[i]), int(tr.frames[i + 1]),
        round(float(g_ms[i]), 1), _duty_at(scan_at, int(t[i])),
    )  # fmt: skip


__all__ = ["ScanTimeline", "Train", "segment_train", "whole_train"]
