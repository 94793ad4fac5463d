"""``connection_failed``: a connection that could not be set up (Core v5.4 Vol 1 Part F error
codes in Connection Complete §7.7.3, LE (Enhanced) Connection Complete §7.7.65.1/.10 and
Synchronous Connection Complete §7.7.35), grouped per device and code with a count.

Page Timeout (0x04) means the remote never answered the page (off, out of range, or not page
scanning); 0x0D-0x0F the remote refused it; 0x10 a host did not accept an incoming connection in
time; 0x3E (LE) the link was created but the peer never answered its first packets (Vol 6 Part B
§4.5.2) — also when it comes as the Disconnection Complete reason of a just-created LE link.
A host cancelling its own attempt (Create Connection Cancel / LE Create Connection Cancel →
0x02 Unknown Connection Identifier, §7.1.7/§7.8.13; 0x44 Operation Cancelled by Host) and 0x0B
Connection Already Exists are not failures of the link.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from analyzer.model import Analysis, Connection
from analyzer.model.analysis import memo
from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.rules.queries import le_only_evidence

#: statuses that are the host's own doing, not a failed set-up
NOT_FAILURES = frozenset({0x02, 0x0B, 0x44})
#: Vol 1 Part F §2: what each set-up failure means, in words a user can act on
MEANING: dict[int, str] = {
    0x04: "the device never answered the page: it is off, out of range, or not connectable "
    "(not page scanning — e.g. busy with another host or out of pairing mode)",
    0x05: "authentication failed while the link was set up",
    0x07: "the controller ran out of memory for another connection",
    0x08: "the link timed out while it was being set up",
    0x09: "the controller's connection limit was reached",
    0x0A: "the limit of synchronous (SCO/eSCO) links to the device was reached",
    0x0D: "the device refused the connection for lack of resources (it may already be "
    "connected to its maximum number of hosts)",
    0x0E: "the device refused the connection for security reasons",
    0x0F: "the device refused the connection: it does not accept this address (filter list)",
    0x10: "the incoming connection was not accepted by the host in time",
    0x1A: "the device does not support the requested link type or feature",
    0x1E: "the device rejected the link parameters",
    0x1F: "unspecified error while setting up the link",
    0x22: "the device stopped answering during link set-up (LMP/LL response timeout)",
    0x3E: "the link was created but the device never answered its first packets "
    "(interference, distance, or the device stopped advertising)",
}
FIX = {
    0x04: "Turn the device on and bring it close; if it is connected to another host or "
    "computer, disconnect it there or put it back in pairing/connectable mode, then retry.",
    0x3E: "Bring the device closer and retry; if it keeps failing, restart the device and "
    "Bluetooth on {host}.",
}
DEFAULT_FIX = (
    "Retry with the device close by and in connectable (pairing) mode; restart the device; if "
    "it refuses repeatedly, forget it on {host} and pair again."
)


def failed_setups(conns: list[Connection]) -> list[Connection]:
    """Connections whose set-up failed (status != 0), plus LE links ended at once by 0x3E."""
    out: list[Connection] = []
    for c in conns:
        if c.status != 0:
            if c.status not in NOT_FAILURES:
                out.append(c)
        elif c.disconnect_reason == 0x3E and not c.inferred:
            out.append(c)
    return out


CANCELLED_AFTER = Threshold(
    "cancelled_after_s",
    5.0,
    "s",
    "a direct connect the host cancelled after waiting this long is a failure (kind cancelled)",
)


#: a page this soon after the controller's start-up (HCI Reset), before any connection, is the
#: host reconnecting the devices it knows (Android, BlueZ do at Bluetooth-on)
AUTO_RECONNECT_S = 10.0


def _auto_reconnect(a: Analysis, cs: list[Connection]) -> bool:
    """Pages that began within :data:`AUTO_RECONNECT_S` of an HCI Reset (and their retries),
    with no connection made since that reset: the host reconnecting at Bluetooth-on."""
    idx = memo(a, "connection_failed:auto_reconnect", lambda: _PageIndex(a))
    starts = [idx.asked.get(c.request_frame or -1, c.start_time_us) for c in cs]
    if any(t is None for t in starts):
        return False
    first, last = min(t for t in starts if t is not None), max(t for t in starts if t is not None)
    # the last reset at or before the first page (in capture order, as the resets came)
    k = bisect.bisect_right(idx.reset_times, first)
    if k == 0:
        return False
    reset = idx.last_reset_before[k - 1]
    if first - reset > AUTO_RECONNECT_S * 1e6:
        return False
    j = bisect.bisect_left(idx.ok_starts, reset)
    return not (j < len(idx.ok_starts) and idx.ok_starts[j] <= last)


class _PageIndex:
    """Pages by frame, resets, and the starts of the links made (sorted), for
    :func:`_auto_reconnect` (one look-up per failed group, not a scan: issue 18 §2)."""

    def __init__(self, a: Analysis) -> None:
        self.asked = {tx.frame: tx.time_us for tx in a.hci_commands if tx.opcode == 0x0405}
        self.ok_starts = sorted(
            o.start_time_us for o in a.connections if o.ok and o.start_time_us is not None
        )
        # reset times sorted; at each position, the time of the reset that came last in the
        # capture among those up to it: "the last reset at or before t" is one bisect
        order = sorted(
            range(len(a.controller.resets)), key=lambda i: a.controller.resets[i].time_us
        )
        self.reset_times: list[int] = []
        self.last_reset_before: list[int] = []
        best = -1
        for i in order:
            best = max(best, i)
            self.reset_times.append(a.controller.resets[i].time_us)
            self.last_reset_before.append(a.controller.resets[best].time_us)


@rule(
    id="connection_failed",
    severity="error",
    title="Connection could not be set up",
    summary="Connection Complete / LE Connection Complete / Synchronous Connection Complete "
    "failed (page timeout, rejected, accept timeout, failed to be established), per device",
    thresholds=[CANCELLED_AFTER],
    example="Connection to Headset (AA:BB:CC:DD:EE:FF) failed 2 times: 0x04 Page Timeout "
    "(frames 45, 48)",
)
def connection_failed(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    groups: dict[tuple[str | None, str, int], list[Connection]] = {}
    # a recognised race is listed even where its status is no failure (0x0B: the link exists)
    benign = [c for c in a.connections if c.status != 0 and c.benign is not None]
    for c in [*failed_setups(a.connections), *(c for c in benign if c.status in NOT_FAILURES)]:
        if c.benign is not None:
            ctx.suppress(
                what=f"{c.transport} connection to {a.device_label(c.address)} failed: "
                f"{c.status:#04x} {c.status_name}",
                why=c.benign,
                frames=[f for f in (c.request_frame, c.start_frame) if f],
                address=c.address,
                connection=c.id,
                time_us=c.start_time_us,
            )
            continue
        code = c.status if c.status != 0 else 0x3E
        groups.setdefault((c.address, c.transport, code), []).append(c)
    yield from _cancelled(ctx)
    for (addr, transport, code), cs in groups.items():
        first = cs[0]
        name = first.status_name if first.status != 0 else first.disconnect_reason_name
        frames = sorted({f for c in cs for f in (c.request_frame, c.start_frame, c.end_frame) if f})
        evidence = sorted({c.end_frame or c.start_frame or 0 for c in cs})
        link = {"le": "LE connection", "sco": "SCO link", "esco": "eSCO link"}.get(
            transport, "Connection"
        )
        who = {"local": f"by {a.host}", "remote": "by the device"}.get(first.initiator or "", "")
        times = f" {len(cs)} times" if len(cs) > 1 else ""
        auto = code == 0x04 and first.initiator == "local" and _auto_reconnect(a, cs)
        le_only = (
            le_only_evidence(a, addr)[0] if code == 0x04 and transport == "br_edr" and addr else []
        )
        yield ctx.finding(
            severity="warning" if auto or le_only else None,
            message=f"{link} to {a.device_label(addr)} failed{times}: {code:#04x} {name} "
            f"(frame{'s' if len(evidence) > 1 else ''} {', '.join(map(str, evidence[:8]))})"
            + (
                f"; {a.host} was reconnecting its last device right after Bluetooth started "
                "and the device was off or out of range"
                if auto
                else ""
            ),
            explanation=f"A link set-up {('requested ' + who) if who else ''} ends with a "
            f"completion event whose status is 0 on success; here it was {code:#04x} {name}: "
            f"{MEANING.get(code, 'the controller reported this error code (Core Vol 1 Part F)')}.",
            fix=(
                "The device is known here only over LE (see wrong_transport): connect it over "
                "LE, not BR/EDR; it cannot answer pages."
                if le_only
                else FIX.get(code, DEFAULT_FIX).format(host=a.host)
            ),
            address=addr,
            connection=first.id,
            time_us=first.start_time_us,
            frames=frames,
            count=len(cs),
            details={
                "status": code,
                "status_name": name,
                "transport": transport,
                "initiator": first.initiator,
                "connections": [c.id for c in cs],
                "established_then_lost": first.status == 0,
            },
        )


def _cancelled(ctx: RuleContext) -> Iterator[Finding]:
    """Direct connects the host gave up on (cancelled after waiting): the peer never answered.
    Background (filter accept list) connects are cancelled routinely to change the list."""
    a = ctx.analysis
    after_ms = ctx.threshold("cancelled_after_s") * 1000
    groups: dict[tuple[str | None, str], list[Connection]] = {}
    for c in a.connections:
        if not c.cancelled or c.attempt_ms is None or c.attempt_ms < after_ms:
            continue
        if c.transport == "le" and c.connect_mode != "direct":
            continue
        groups.setdefault((c.address, c.transport), []).append(c)
    for (addr, transport), cs in groups.items():
        first = cs[0]
        waited = ", ".join(f"{(c.attempt_ms or 0) / 1000:.1f}" for c in cs[:6])
        times = f" {len(cs)} times" if len(cs) > 1 else ""
        le = transport == "le"
        yield ctx.finding(
            key="cancelled",
            severity="warning",
            message=f"{'LE connection' if le else 'Connection'} to {a.device_label(addr)} "
            f"given up{times}: {a.host} cancelled the attempt after {waited} s (frame"
            f"{'s' if len(cs) > 1 else ''} {', '.join(str(c.start_frame) for c in cs[:8])})",
            explanation=(
                "The host asked its controller to connect to this one device and cancelled "
                "after waiting: the device was never heard "
                + (
                    "advertising connectably (it was not advertising, out of range, or "
                    "already connected to another central). Android apps see this as GATT "
                    "error 133 or 147 after connectGatt(autoConnect=false) times out."
                    if le
                    else "answering the page (off, out of range, or not page scanning)."
                )
            ),
            fix=(
                "Check that the device advertises (wake it, take it off its charger, disconnect "
                "it from other phones) and is in range; an app can use autoConnect=true (a "
                "background connect) to wait for it instead of failing."
                if le
                else "Turn the device on, bring it close, and make it connectable (disconnect "
                "it from other hosts)."
            ),
            address=addr,
            connection=first.id,
            time_us=first.start_time_us,
            frames=sorted(
                {f for c in cs for f in (c.request_frame, c.cancel_frame, c.start_frame) if f}
            ),
            count=len(cs),
            details={
                "status": 0x02,
                "kind": "cancelled",
                "transport": transport,
                "waited_s": [round((c.attempt_ms or 0) / 1000, 3) for c in cs],
                "connections": [c.id for c in cs],
            },
        )
