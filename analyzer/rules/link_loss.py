"""``link_loss``: a link that went down on its own (Core v5.4 Vol 1 Part F): 0x08 Connection
Timeout (the link supervision timer ran out: nothing heard from the peer for the supervision
timeout, Vol 2 Part B §3.1 / Vol 6 Part B §4.5.2), 0x22 LMP/LL Response Timeout, 0x28 Instant
Passed (Vol 6 Part B §5.5.1) and 0x3D MIC Failure — with what was running then: an A2DP stream
streaming, an HFP call, an SCO/eSCO link. (0x3E on a just-created link is a failed set-up:
``connection_failed``.)
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Analysis, Connection, L2capSignal, LlConnection
from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.rules.queries import LOSS_REASONS, by_connection, running_at

SHORT_SUPERVISION = Threshold(
    "short_supervision_ms",
    500.0,
    "ms",
    "an LE supervision timeout below this is named as the cause of a 0x08 loss",
)


def _short_timeout(a: Analysis, c: Connection, below_ms: float) -> tuple[str, list[int]]:
    """The LE link's supervision timeout, when it was short enough to explain a 0x08 loss, and
    whether the peer asked for it (its request precedes the update that set it)."""
    to = c.supervision_timeout_ms
    if c.transport != "le" or c.disconnect_reason != 0x08 or to is None or to >= below_ms:
        return "", []
    set_at = c.supervision_timeout_frame
    asked = c.params_requested_frame
    signals: list[L2capSignal] = by_connection(a, "l2cap_signals").get(c.id, [])
    for s in signals:
        if (
            s.code == 0x12  # Connection Parameter Update Request (Vol 3 Part A §4.20)
            and s.direction == "received"
            and (set_at is None or s.frame < set_at)
        ):
            asked = s.frame
    by = f", requested by the device at frame {asked}" if asked is not None else ""
    frames = [f for f in (asked, set_at) if f is not None]
    return f": the supervision timeout was only {to:.0f} ms (set at frame {set_at}{by})", frames


@rule(
    id="link_loss",
    severity="error",
    title="Link lost",
    summary="a link dropped by supervision timeout (0x08), LMP/LL response timeout (0x22), "
    "instant passed (0x28) or MIC failure (0x3D), with what was running then",
    thresholds=[SHORT_SUPERVISION],
    example="Link to Headset (AA:BB:CC:DD:EE:FF) lost after 14.0 s: 0x08 Connection Timeout "
    "(frame 908) while A2DP (SBC) was streaming",
)
def link_loss(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    groups: dict[tuple[str | None, int], list[tuple[Connection, list[str], list[int]]]] = {}
    for c in a.connections:
        if c.transport not in ("br_edr", "le") or c.status != 0:
            continue
        if c.disconnect_reason not in LOSS_REASONS or c.end_time_us is None:
            continue
        what, frames = running_at(a, c, c.end_time_us)
        groups.setdefault((c.address, c.disconnect_reason or 0), []).append((c, what, frames))
    for (addr, reason), items in groups.items():
        c, what, wframes = items[-1]
        dur = (
            f" after {(c.end_time_us - c.start_time_us) / 1e6:.1f} s"
            if c.end_time_us is not None and c.start_time_us is not None and not c.inferred
            else ""
        )
        during = f" while {' and '.join(what)}" if what else ""
        times = f" ({len(items)} times)" if len(items) > 1 else ""
        hint = " (supervision timeout)" if reason == 0x08 else ""
        lls: list[LlConnection] = by_connection(a, "ll_connections").get(c.id, [])
        air = next((x for x in lls if x.peer_silent_from_frame), None)
        silent = (
            f": the peer stopped answering at frame {air.peer_silent_from_frame} (crashed, "
            f"reset or out of range) while the central kept sending for {air.peer_silent_s:.1f} "
            f"s ({air.unanswered_pdus} unanswered PDUs), with no LL_TERMINATE_IND"
            if air is not None and air.peer_silent_s is not None
            else ""
        )
        short, short_frames = (
            _short_timeout(a, c, ctx.threshold("short_supervision_ms")) if not silent else ("", [])
        )
        yield ctx.finding(
            message=f"Link to {a.device_label(addr)} lost{dur}: {reason:#04x} "
            f"{c.disconnect_reason_name}{hint} (frame {c.end_frame}){silent}{short}{during}"
            f"{times}",
            explanation="A link ends normally when one side's host asks for it (reasons "
            "0x13-0x16). Here the controllers ended it on their own: "
            f"{LOSS_REASONS[reason]}."
            + (
                " On the air the peripheral's answers stop while the central's packets go on "
                "until the supervision timeout: the peripheral itself went silent (a firmware "
                "crash or reset, power loss, or it moved out of range) — the central is not at "
                "fault."
                if silent
                else ""
            )
            + (
                " A supervision timeout this short ends the link after a handful of missed "
                "connection events (a moment of interference or a body between the devices)."
                if short
                else ""
            )
            + (f" The user heard it: {', '.join(what)}." if what else ""),
            fix=(
                "Have the device's firmware request a supervision timeout of a few seconds "
                "(Android and iOS use 5-6 s) instead of the short one it asks for; meanwhile "
                "keep the devices close."
                if short
                else "Keep the devices close with no body or metal in between, move away from "
                "Wi-Fi 2.4 GHz / USB 3 interference, charge the device; if it repeats at the "
                "same place in a stream or call, update the device's firmware."
            ),
            address=addr,
            connection=c.id,
            time_us=c.end_time_us,
            frames=sorted(
                {x.end_frame or 0 for x, _, _ in items}
                | set(wframes)
                | ({air.peer_silent_from_frame or 0} if air is not None else set())
                | set(short_frames)
            ),
            count=len(items),
            details={
                "reason": reason,
                "reason_name": c.disconnect_reason_name,
                "running": what,
                "connections": [x.id for x, _, _ in items],
                "transport": c.transport,
            },
        )
