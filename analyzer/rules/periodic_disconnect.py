"""``periodic_disconnect``: drops that repeat at a regular period — three or more connections to
one device ended the same way by the device's host (0x13-0x15) or by the link (0x08, 0x22, 0x28,
0x3D), never by our own host, whose durations or start-to-start intervals each lie within 15 %
of their mean (by default). A device with a timer (an idle or auth timeout, a watchdog reset)
disconnects this way; random drops from interference do not line up. Links that failed to be
established (0x3E) and locally closed links are not drops.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from statistics import mean, pstdev

from analyzer.model import Connection
from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.rules.queries import own_disconnect

MIN_DROPS = Threshold("min_drops", 3, "connections", "at least this many drops to one device")
MAX_SPREAD = Threshold(
    "max_spread", 0.15, "ratio", "every duration or interval within this fraction of their mean"
)
#: reasons of a drop: the device's host ended the link, or the link itself failed
DROP_REASONS = frozenset({0x13, 0x14, 0x15, 0x08, 0x22, 0x28, 0x3D})


def _spread(xs: list[float]) -> float | None:
    """The largest relative deviation from the mean (None for fewer than two values)."""
    if len(xs) < 2:
        return None
    m = mean(xs)
    return max(abs(x - m) for x in xs) / m if m > 0 else None


@rule(
    id="periodic_disconnect",
    severity="warning",
    title="Connection drops at a regular period",
    summary="three or more drops of one device's connection at a regular duration or interval",
    thresholds=[MIN_DROPS, MAX_SPREAD],
    example="Headset (AA:BB:CC:DD:EE:FF) dropped the connection 3 times, each about 29.7 s after "
    "it was set up (±1.1 s): 0x13 Remote User Terminated Connection",
)
def periodic_disconnect(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    min_n = int(ctx.threshold("min_drops"))
    max_spread = ctx.threshold("max_spread")
    by_addr: dict[tuple[str, int], list[Connection]] = {}
    for c in a.connections:
        if (
            c.transport not in ("br_edr", "le")
            or c.status != 0
            or c.inferred
            or c.address is None
            or c.start_time_us is None
            or c.end_time_us is None
            or c.disconnect_reason not in DROP_REASONS
            or own_disconnect(a, c) is not None
        ):
            continue
        by_addr.setdefault((c.address, c.disconnect_reason or 0), []).append(c)
    for (addr, _reason), cs in by_addr.items():
        if len(cs) < min_n:
            continue
        cs.sort(key=lambda c: c.start_time_us or 0)
        durs = [((c.end_time_us or 0) - (c.start_time_us or 0)) / 1e6 for c in cs]
        ivals = [
            ((b.start_time_us or 0) - (x.start_time_us or 0)) / 1e6
            for x, b in itertools.pairwise(cs)
        ]
        sp_d, sp_i = _spread(durs), _spread(ivals) if len(ivals) >= min_n - 1 else None
        if sp_d is not None and sp_d <= max_spread:
            kind, xs, cv = "duration", durs, sp_d
            what = "after it was set up"
        elif sp_i is not None and sp_i <= max_spread:
            kind, xs, cv = "interval", ivals, sp_i
            what = "after the previous connection started"
        else:
            continue
        reasons = sorted({c.disconnect_reason or 0 for c in cs})
        names = sorted({c.disconnect_reason_name or "" for c in cs})
        m, sd = mean(xs), pstdev(xs)
        yield ctx.finding(
            message=f"{a.device_label(addr)} dropped the connection {len(cs)} times, each about "
            f"{m:.1f} s {what} (±{sd:.1f} s): "
            + ", ".join(f"{r:#04x}" for r in reasons)
            + f" {'/'.join(names)}",
            explanation=f"{len(cs)} connections to the device ended without {a.host} asking, "
            f"at a regular {kind} of {m:.1f} s (each within {cv:.0%} of it). Random "
            "drops (range, interference) do not line up like this; a timer does: the device "
            "disconnects when a check or a setup step it waits for does not happen in time, "
            "or it resets on a watchdog.",
            fix=f"Find what the device waits for in that time (a profile {a.host} does not "
            "connect, an authentication, a keep-alive); update the device's firmware; forget "
            "and re-pair it.",
            address=addr,
            connection=cs[0].id,
            time_us=cs[0].end_time_us,
            frames=[c.end_frame or 0 for c in cs],
            count=len(cs),
            details={
                "regular": kind,
                "mean_s": round(m, 3),
                "stdev_s": round(sd, 3),
                "max_spread": round(cv, 4),
                "durations_s": [round(d, 3) for d in durs],
                "intervals_s": [round(i, 3) for i in ivals],
                "reasons": reasons,
                "connections": [c.id for c in cs],
            },
        )
