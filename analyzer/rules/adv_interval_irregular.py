"""``adv_interval_irregular``: an LE advertiser whose advertising events do not keep to its
interval. Core v5.4 Vol 6 Part B §4.4.2.2.1: consecutive advertising events are advInterval plus
a pseudo-random advDelay of 0-10 ms apart, so every gap between heard events is k × advInterval
plus up to k × 10 ms (k - 1 events missed). Two departures are reported:

* *strays* — a share of gaps (default ≥ 25 %, at least 5) that fit no k × (advInterval + 0..10 ms);
* *silences* (warning) — the advertiser's silences (:mod:`analyzer.sessions.adv_segments`: a
  gap chance misses do not explain, while the scanner scanned and heard others throughout, the
  device heard well on both sides), with their frames and times;
* *interval changes* (info) — more than one segment: fast-then-slow advertising is common and
  legitimate, so it is reported, not graded.

Strays are judged only on host scans (HCI advertising reports) whose scan duty cycle (window /
interval) is at least 50 %: with a low duty cycle missed events are expected and the interval
itself is hard to pin down; sniffer (air) captures hop channels and are not judged either.
Silences carry their own tests of the scanner's state and are judged at any duty cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from analyzer.model import Advertiser, Analysis, GapHistogram
from analyzer.rules.base import Finding, RuleContext, Threshold, rule

STRAY_SHARE = Threshold("stray_share", 0.25, "ratio", "share of gaps off the interval grid")
SILENCE_S = Threshold("silence_s", 5.0, "s", "a silence this long is reported")
SILENT_SHARE = Threshold(
    "silent_share", 0.25, "ratio", "... or shorter silences covering this share of its span"
)
MIN_CONF = 0.3
#: below this scan duty cycle (window / interval) missed events are expected: not judged
MIN_DUTY = 0.5
MAX_DELAY_MS = 10.0


def _duty(a: Analysis) -> float | None:
    duties = [p.duty_cycle for p in a.advertising.scan_parameters if p.duty_cycle]
    return min(duties) if duties else None


def stray_gaps(hist: GapHistogram | None, t_ms: float) -> tuple[int, int]:
    """(gaps off the k × (T + 0..10 ms) grid, all gaps) from a gap histogram."""
    if not hist or not hist.edges_ms:
        return 0, 0
    edges, counts = hist.edges_ms, hist.counts
    tol = max(2.0, 0.02 * t_ms)
    off = total = 0
    for i, n in enumerate(counts):
        if not n:
            continue
        total += int(n)
        lo, hi = edges[i], edges[i + 1]
        ok = False
        for k in range(1, 64):
            g0, g1 = k * t_ms - tol, k * (t_ms + MAX_DELAY_MS) + tol
            if g0 > hi:
                break
            if lo <= g1 and hi >= g0:
                ok = True
                break
        if not ok:
            off += int(n)
    return off, total


def _clock(t_us: int) -> str:
    """UTC wall-clock time of a capture timestamp, to the millisecond."""
    return datetime.fromtimestamp(t_us / 1e6, UTC).strftime("%H:%M:%S.%f")[:-3]


@rule(
    id="adv_interval_irregular",
    severity="warning",
    title="Advertising interval irregular",
    summary="an LE advertiser whose events stray from its interval (beyond advDelay), that "
    "falls silent for long stretches while others are still heard, or (info) that changes "
    "its interval",
    thresholds=[STRAY_SHARE, SILENCE_S, SILENT_SHARE],
    example="Tracker (C4:7C:8D:6A:10:01) advertising every ~100 ms fell silent 6× (longest "
    "4.1 s, frames 120–181) while the scanner heard other advertisers",
)
def adv_interval_irregular(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    share_min = ctx.threshold("stray_share")
    duty = _duty(a)
    for x in a.advertisers:
        if x.source != "hci" or (x.interval_confidence or 0) < MIN_CONF:
            continue
        addr = x.address
        t_ms = float(x.interval_ms or 0)
        label = a.device_label(addr)
        # an advertiser that changed its interval has gaps of both: judged per change instead
        off, total = stray_gaps(x.gap_histogram, t_ms) if len(x.segments) <= 1 else (0, 0)
        if (duty is None or duty >= MIN_DUTY) and total and off >= 5 and off / total >= share_min:
            # with a low duty cycle missed events are expected: strays are not judged
            yield _stray_finding(ctx, x, label, t_ms, off, total, duty)
        elif x.silences and _silences_matter(ctx, x):
            yield _silence_finding(ctx, x, label, t_ms)
    for x in a.advertisers:
        if len(x.segments) > 1:
            yield _change_finding(ctx, x, a.device_label(x.address))


def _stray_finding(
    ctx: RuleContext, x: Advertiser, label: str, t_ms: float, off: int, total: int,
    duty: float | None,
) -> Finding:  # fmt: skip
    return ctx.finding(
        message=f"{label} advertising every ~{t_ms:.0f} ms: {off} of {total} gaps "
        f"({off / total:.0%}) fit no multiple of the interval plus advDelay",
        explanation="Advertising events come advInterval + 0-10 ms (advDelay) apart "
        "(Core Vol 6 Part B §4.4.2.2.1), so heard gaps are whole multiples of that. "
        "Many gaps off that grid mean the device's advertising timing is unstable "
        "(a busy radio shared with a connection or another role, or a firmware timer "
        "problem), which makes it slow or unreliable to find and connect.",
        fix="Update the device's firmware; disconnect other links it holds to see "
        "whether they steal its radio time.",
        address=x.address,
        time_us=x.first_time_us,
        frames=[f for f in (x.first_frame, x.last_frame) if f],
        count=off,
        details={
            "kind": "strays",
            "interval_ms": t_ms,
            "stray_gaps": off,
            "gaps": total,
            "scan_duty_cycle": duty,
        },
    )


def _silences_matter(ctx: RuleContext, x: Advertiser) -> bool:
    """One silence of at least ``silence_s``, or silences covering ``silent_share`` of the
    advertiser's span (a device mostly absent in short stretches)."""
    longest = max(s.duration_ms for s in x.silences)
    span = (x.last_time_us or 0) - (x.first_time_us or 0)
    covered = sum(s.duration_ms for s in x.silences) * 1000
    return longest >= ctx.threshold("silence_s") * 1000 or (
        span > 0 and covered >= ctx.threshold("silent_share") * span
    )


def _silence_finding(ctx: RuleContext, x: Advertiser, label: str, t_ms: float) -> Finding:
    sil = x.silences
    longest = max(sil, key=lambda s: s.duration_ms)
    first = sil[0]
    frames: list[int] = []
    for s in sil[:5]:
        frames += [s.from_frame, s.to_frame]
    times = ", ".join(f"{_clock(s.from_time_us)}–{_clock(s.to_time_us)}" for s in sil[:3]) + (
        f" and {len(sil) - 3} more" if len(sil) > 3 else ""
    )
    return ctx.finding(
        message=f"{label} advertising every ~{t_ms:.0f} ms fell silent {len(sil)}× (longest "
        f"{longest.duration_ms / 1000:.1f} s, frames {longest.from_frame}–{longest.to_frame}) "
        f"while the scanner heard other advertisers: {times}",
        explanation="Each silence lasted far longer than the scanner's misses explain (given how "
        "often this device's next event was heard), the scanner was scanning and heard other "
        "advertisers throughout, and the device was heard well just before and after: it "
        "stopped advertising (connected to another host, a power-saving or advertising "
        "timeout, or a firmware stall) — a device that does this is 'not discoverable' then.",
        fix="Check whether the device was connected elsewhere or in a power-saving or "
        "advertising-timeout state at those times; if not, report it to the device vendor "
        "with these times (a firmware stall).",
        address=x.address,
        time_us=first.from_time_us,
        frames=frames,
        count=len(sil),
        details={
            "kind": "silences",
            "interval_ms": t_ms,
            "silences": len(sil),
            "longest_ms": longest.duration_ms,
            "silence_from_frames": [s.from_frame for s in sil[:20]],
            "silence_to_frames": [s.to_frame for s in sil[:20]],
            "scan_duty_cycle": longest.scan_duty_cycle,
        },
    )


def _change_finding(ctx: RuleContext, x: Advertiser, label: str) -> Finding:
    segs = x.segments
    steps = " → ".join(
        f"{s.interval_ms:.4g} ms" if s.interval_ms is not None else "?" for s in segs
    )
    at = segs[1]
    return ctx.finding(
        severity="info",
        key=f"{x.address}:interval_change",
        message=f"{label} changed its advertising interval {steps} (first change at frame "
        f"{at.from_frame}, {_clock(at.from_time_us)})",
        explanation="Advertisers commonly advertise fast for a while (to be found quickly) and "
        "then slow down to save power, or speed up when a button is pressed; each segment's "
        "interval is estimated on its own events.",
        fix="Nothing to fix unless the slow interval makes the device too slow to find: then "
        "ask the vendor for a shorter interval in that mode.",
        address=x.address,
        time_us=at.from_time_us,
        frames=[s.from_frame for s in segs[1:6]],
        count=len(segs) - 1,
        details={
            "kind": "interval_change",
            "intervals_ms": [s.interval_ms or 0.0 for s in segs],
            "change_frames": [s.from_frame for s in segs[1:]],
        },
    )
