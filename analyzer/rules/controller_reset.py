"""``controller_reset``: an HCI Reset (Core v5.4 Vol 4 Part E §7.3.2) in mid-capture — after
connections existed or after the threshold (default 30 s) of traffic — followed by a new start-up:
the Bluetooth stack restarted (turned off and on, or recovering from a crash). The resets of the
start-up itself (several in a row while firmware loads) are normal, and so is a last Reset with
nothing after it (Bluetooth being turned off).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from analyzer.rules.base import Finding, RuleContext, Threshold, rule

AFTER = Threshold("after_s", 30.0, "s", "a reset this long after the capture start is mid-capture")


@rule(
    id="controller_reset",
    severity="warning",
    title="Bluetooth stack restarted",
    summary="an HCI Reset in mid-capture (after connections or traffic), followed by a new "
    "start-up",
    thresholds=[AFTER],
    example="HCI Reset at frame 553, 95.2 s into the capture after 2 connections: the "
    "Bluetooth stack restarted",
)
def controller_reset(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    after_us = round(ctx.threshold("after_s") * 1e6)
    first = a.capture.first_time_us
    if a.scope.narrowed:
        return  # a one-device analysis: the controller's story is out of scope
    if first is None:
        return
    made = [c for c in a.connections
            if c.start_time_us is not None and not c.inferred and c.status == 0]  # fmt: skip
    starts = sorted(c.start_time_us or 0 for c in made)
    # the last command other than a Reset: a Reset after it is Bluetooth being turned off
    last_other = max((tx.frame for tx in a.hci_commands if tx.opcode != 0x0C03), default=-1)
    hits = []
    for r in a.controller.resets:
        t, frame = r.time_us, r.frame
        if bisect.bisect_left(starts, t) == 0 and t - first <= after_us:
            continue  # start-up: no connection before it, early in the capture
        if last_other <= frame:
            continue  # nothing after it: Bluetooth was turned off
        hits.append(r)
    if not hits:
        return
    r = hits[0]
    t = r.time_us
    before = [c for c in made if (c.start_time_us or 0) < t]
    dropped = [c for c in before if c.end_time_us is None or c.end_time_us >= t]
    yield ctx.finding(
        message=f"HCI Reset at frame {r.frame}, {(t - (first or t)) / 1e6:.1f} s into the "
        f"capture after {len(before)} connection{'s' if len(before) != 1 else ''}: the "
        "Bluetooth stack restarted" + (f" ({len(hits)} times)" if len(hits) > 1 else ""),
        explanation="A host resets its controller when it starts; a Reset in the middle of a "
        f"session, followed by a fresh start-up, means Bluetooth on {a.host} was turned off and "
        "on or its stack restarted after a crash. Every link is dropped"
        + (f" ({len(dropped)} were still up)" if dropped else "")
        + " and must be set up again.",
        fix=f"If nobody toggled Bluetooth, the Bluetooth stack of {a.host} crashed: capture "
        "its logs right after it happens and report it; update its software.",
        time_us=t,
        frames=[h.frame for h in hits],
        count=len(hits),
        details={
            "reset_frames": [h.frame for h in hits],
            "connections_before": len(before),
            "connections_dropped": [c.id for c in dropped],
        },
    )
