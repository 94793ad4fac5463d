"""``adv_interval_irregular``: an LE advertiser whose advertising events do not keep to its
interval. Core v5.4 Vol 6 Part B §4.4.2.2.1: consecutive advertising events are advInterval plus
a pseudo-random advDelay of 0-10 ms apart, so every gap between heard events is k × advInterval
plus up to k × 10 ms (k - 1 events missed). Two departures are reported:

* *strays* — a share of gaps (default ≥ 25 %, at least 5) that fit no k × (advInterval + 0..10 ms);
* *silences* — the advertiser was heard far less often than its interval predicts (below a
  quarter of the others' median reception ratio) while the others were heard at least half as
  often as their intervals predict, and most of its gaps are short: it stopped advertising for
  long stretches.

Judged only on host scans (HCI advertising reports) whose scan duty cycle (window / interval) is
at least 50 %: with a low duty cycle missed events are expected and the interval itself is hard
to pin down; sniffer (air) captures hop channels and are not judged either.
"""

from __future__ import annotations

from collections.abc import Iterator
from statistics import median

from analyzer.model import Advertiser, Analysis, GapHistogram
from analyzer.rules.base import Finding, RuleContext, Threshold, rule

STRAY_SHARE = Threshold("stray_share", 0.25, "ratio", "share of gaps off the interval grid")
SILENCE = Threshold("silence_ratio", 0.25, "ratio", "reception below this × the others' median")
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


def _ratio(x: Advertiser) -> float | None:
    t_ms = x.interval_ms
    first, last = x.first_time_us, x.last_time_us
    ev = x.events or x.reports or 0
    if not t_ms or first is None or last is None or last <= first or ev < 10:
        return None
    span_ms = (last - first) / 1000
    if span_ms < 20 * t_ms:
        return None
    return float(ev * (t_ms + MAX_DELAY_MS / 2) / span_ms)


@rule(
    id="adv_interval_irregular",
    severity="warning",
    title="Advertising interval irregular",
    summary="an LE advertiser whose events stray from its interval (beyond advDelay) or that "
    "falls silent for long stretches while others are still heard",
    thresholds=[STRAY_SHARE, SILENCE],
    example="Tracker (C4:7C:8D:6A:10:01) advertising every ~100 ms was heard only 8 % as often "
    "as its interval predicts, while other advertisers were heard 92 % as often",
)
def adv_interval_irregular(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    share_min = ctx.threshold("stray_share")
    silence = ctx.threshold("silence_ratio")
    duty = _duty(a)
    if duty is not None and duty < MIN_DUTY:
        return  # misses are expected: the scanner listened only part of the time
    advs = [
        x for x in a.advertisers if (x.interval_confidence or 0) >= MIN_CONF and x.source == "hci"
    ]
    ratios = {id(x): r for x in advs if (r := _ratio(x)) is not None}
    for x in advs:
        addr = x.address
        t_ms = float(x.interval_ms or 0)
        label = a.device_label(addr)
        frames = [f for f in (x.first_frame, x.last_frame) if f]
        off, total = stray_gaps(x.gap_histogram, t_ms)
        if total and off >= 5 and off / total >= share_min:
            yield ctx.finding(
                message=f"{label} advertising every ~{t_ms:.0f} ms: {off} of {total} gaps "
                f"({off / total:.0%}) fit no multiple of the interval plus advDelay",
                explanation="Advertising events come advInterval + 0-10 ms (advDelay) apart "
                "(Core Vol 6 Part B §4.4.2.2.1), so heard gaps are whole multiples of that. "
                "Many gaps off that grid mean the device's advertising timing is unstable "
                "(a busy radio shared with a connection or another role, or a firmware timer "
                "problem), which makes it slow or unreliable to find and connect.",
                fix="Update the device's firmware; disconnect other links it holds to see "
                "whether they steal its radio time.",
                address=addr,
                time_us=x.first_time_us,
                frames=frames,
                count=off,
                details={
                    "kind": "strays",
                    "interval_ms": t_ms,
                    "stray_gaps": off,
                    "gaps": total,
                    "scan_duty_cycle": duty,
                },
            )
            continue
        r = ratios.get(id(x))
        others = [v for k, v in ratios.items() if k != id(x)]
        if r is None or len(others) < 1:
            continue
        r_o = median(others)
        ev = int(x.events or x.reports or 0)
        if r_o >= MIN_DUTY and total >= 0.5 * (ev - 1) and r < silence * r_o:
            yield ctx.finding(
                message=f"{label} advertising every ~{t_ms:.0f} ms was heard only {r:.0%} as "
                f"often as its interval predicts, while other advertisers were heard "
                f"{r_o:.0%} as often",
                explanation="The scanner heard the other advertisers at the rate their "
                "intervals predict, so it was listening; this device's events were missing "
                "for long stretches: it stopped advertising at times (connected elsewhere, "
                "power saving, or a firmware stall).",
                fix="Check whether the device was connected to another host or in a power "
                "saving mode then; update its firmware.",
                address=addr,
                time_us=x.first_time_us,
                frames=frames,
                details={
                    "kind": "silences",
                    "interval_ms": t_ms,
                    "reception_ratio": round(r, 3),
                    "others_median_ratio": round(r_o, 3),
                    "scan_duty_cycle": duty,
                },
            )
