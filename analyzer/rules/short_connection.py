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

from analyzer.analysis import Analysis
from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.sessions.model import Connection

MAX_AGE = Threshold("max_duration_s", 35.0, "s", "a remote disconnect sooner than this is short")
#: Vol 1 Part F: the remote's host chose to end the link
REMOTE_REASONS = frozenset({0x13, 0x14, 0x15})


def own_disconnect(a: Analysis, c: Connection) -> int | None:
    """Frame of an HCI Disconnect (0x0406) our host sent for this connection, if any. In a
    sniffer capture there is no "our host": the central, which set the link up, ending it with
    LL_TERMINATE_IND counts as ending its own link (the peripheral is the device under test)."""
    for ll in a.extra.get("ll_connections", []):
        if ll.get("connection") == c.id and ll.get("terminated_by") == "central":
            return int(ll["terminate_frame"]) if ll.get("terminate_frame") else c.end_frame
    for tx in a.extra.get("hci_commands", []):
        if getattr(tx, "opcode", None) != 0x0406:
            continue
        if tx.connection == c.id or (
            tx.handle == c.handle
            and (c.start_time_us or 0) <= tx.time_us <= (c.end_time_us or tx.time_us)
        ):
            return int(tx.frame)
    return None


def remote_ended(a: Analysis, c: Connection) -> bool:
    """The remote's host ended the link (0x13-0x15, not after our own Disconnect)."""
    return (
        c.status == 0
        and c.end_frame is not None
        and c.disconnect_reason in REMOTE_REASONS
        and own_disconnect(a, c) is None
    )


def profiles_connected(a: Analysis, c: Connection) -> tuple[list[str], list[int]]:
    """Profiles set up on the connection (opened L2CAP channels, streams, HFP) and frames."""
    names: list[str] = []
    frames: list[int] = []
    for ch in a.l2cap_channels:
        if ch.connection == c.id and ch.result == 0 and not ch.inferred:
            if ch.psm_name not in names:
                names.append(ch.psm_name)
            if ch.response_frame:
                frames.append(ch.response_frame)
    for st in a.avdtp_streams:
        if st.connection == c.id and st.configure_frame and "A2DP" not in names:
            names.append("A2DP")
            frames.append(st.configure_frame)
    for h in a.hfp:
        if getattr(h, "connection", None) == c.id:
            prof = str(getattr(h, "profile", "hfp")).upper()
            if prof not in names:
                names.append(prof)
            if getattr(h, "start_frame", None):
                frames.append(h.start_frame)
    return names, sorted(set(frames))


def phone_was_done(a: Analysis, c: Connection) -> bool:
    """The phone itself had closed every profile channel (other than SDP queries) first."""
    closers = {
        s.get("frame"): s.get("direction")
        for s in a.extra.get("l2cap_signals", [])
        if s.get("connection") == c.id and s.get("name") == "Disconnection Request"
    }
    chans = [ch for ch in a.l2cap_channels if ch.connection == c.id and ch.result == 0]
    chans = [ch for ch in chans if ch.psm != 0x0001]
    return bool(chans) and all(
        ch.close_frame is not None and closers.get(ch.close_frame) == "sent" for ch in chans
    )


def short_remote_drops(a: Analysis, max_s: float) -> list[tuple[Connection, list[str], list[int]]]:
    out = []
    for c in a.connections:
        if c.transport not in ("br_edr", "le") or c.inferred or not remote_ended(a, c):
            continue
        if c.start_time_us is None or c.end_time_us is None:
            continue
        if (c.end_time_us - c.start_time_us) / 1e6 >= max_s:
            continue
        names, frames = profiles_connected(a, c)
        if names and not phone_was_done(a, c):
            out.append((c, names, frames))
    return out


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
            explanation="The device's own host ended the link (no Disconnect came from the "
            f"phone) only {dur_s} after the phone connected "
            f"{', '.join(profs)}. A device that is happy with a connection keeps it; one that "
            "drops it soon after the profiles come up usually failed a check of the phone "
            "(codec, security, a missing service), or is set to leave after a fixed time.",
            fix="Look at what happened just before the disconnect (rejected commands, missing "
            "services); forget and re-pair the device; update its firmware; try it with "
            "another phone to see which side is at fault.",
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
