"""``short_connection``: the remote ended a freshly set-up connection within a short time.

The remote's host ends a link with 0x13 Remote User Terminated, 0x14 Low Resources or 0x15
Power Off (Core v5.4 Vol 1 Part F; Vol 4 Part E §7.7.5) — a Disconnection Complete with no HCI
Disconnect from our own host before it. When that comes soon (default 35 s) after a profile
connected (an L2CAP channel for SDP/AVDTP/RFCOMM/... opened, audio configured), the device gave
up on the connection: an incompatibility, a failed check of the phone, or a device that drops
every connection after a fixed time. Not when the phone had itself closed every profile channel
(other than SDP) before: the device then just ends an idle link.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Connection
from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.rules.queries import short_remote_drops

MAX_AGE = Threshold("max_duration_s", 35.0, "s", "a remote disconnect sooner than this is short")


@rule(
    id="short_connection",
    severity="warning",
    title="Remote ended a fresh connection",
    summary="the remote disconnected (0x13/0x14/0x15) soon after a profile connected "
    "(default 35 s)",
    thresholds=[MAX_AGE],
    example="Headset (AA:BB:CC:DD:EE:FF) ended the connection 29.0 s after it was set up "
    "(SDP, AVDTP connected): 0x13 Remote User Terminated Connection (frame 70)",
)
def short_connection(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    max_s = ctx.threshold("max_duration_s")
    groups: dict[tuple[str | None, int], list[tuple[Connection, list[str], list[int]]]] = {}
    for item in short_remote_drops(a, max_s):
        groups.setdefault((item[0].address, item[0].disconnect_reason or 0), []).append(item)
    for (addr, reason), items in groups.items():
        c, _names, pframes = items[0]
        durs = [((x.end_time_us or 0) - (x.start_time_us or 0)) / 1e6 for x, _, _ in items]
        dur_s = (
            f"{durs[0]:.1f} s"
            if len(durs) == 1
            else f"{min(durs):.1f}-{max(durs):.1f} s ({len(durs)} times)"
        )
        profs = sorted({n for _, ns, _ in items for n in ns})
        yield ctx.finding(
            message=f"{a.device_label(addr)} ended the connection {dur_s} after it was set up "
            f"({', '.join(profs)} connected): {reason:#04x} {c.disconnect_reason_name} "
            f"(frame {c.end_frame})",
            explanation="The device's own host ended the link (no Disconnect came from "
            f"{a.host}) only {dur_s} after {a.host} connected "
            f"{', '.join(profs)}. A device that is happy with a connection keeps it; one that "
            "drops it soon after the profiles come up usually failed a check of the host "
            "(codec, security, a missing service), or is set to leave after a fixed time.",
            fix="Look at what happened just before the disconnect (rejected commands, missing "
            "services); forget and re-pair the device; update its firmware; try it with "
            "another host to see which side is at fault.",
            address=addr,
            connection=c.id,
            time_us=c.end_time_us,
            frames=sorted({x.end_frame or 0 for x, _, _ in items} | set(pframes[:3])),
            count=len(items),
            details={
                "reason": reason,
                "reason_name": c.disconnect_reason_name,
                "durations_s": [round(d, 3) for d in durs],
                "profiles": profs,
                "connections": [x.id for x, _, _ in items],
                "max_duration_s": max_s,
            },
        )
