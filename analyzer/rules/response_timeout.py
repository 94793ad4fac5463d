"""``response_timeout``: a request with no response within the deadline (default 7 s).

Headsets open a short window in pairing mode; a page, connect, SDP query, AVDTP signal or AT
command left unanswered past it makes the attempt fail. Excluded: steps that wait on a person
(PIN, confirmation, passkey), requests cut short by their link going down (that is the link's
finding) and requests too close to the end of the capture to judge. Also the pairing-window
case: a device found (inquiry result / advertising report) but paged only after the deadline,
and the page then failing.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Analysis
from analyzer.model.analysis import memo
from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.rules.queries import Exchange, exchanges

DEADLINE = Threshold("deadline_s", 7.0, "s", "a response later than this is missing")


#: AT command prefixes that are vendor extensions, not HFP/HSP commands (Apple's accessory
#: commands, CSR's, Plantronics'): a host that does not know them should answer ERROR
VENDOR_AT = ("AT+X", "AT+IPHONE", "AT+APL", "AT+CSR")


def _vendor_at(what: str) -> bool:
    cmd = what.removeprefix("AT command ").upper()
    return cmd.startswith(VENDOR_AT)


def _conn_end(ctx: RuleContext, ex: Exchange) -> int | None:
    c = ctx.analysis.connection(ex.connection)
    return c.end_time_us if c else None


@rule(
    id="response_timeout",
    severity="error",
    title="Request left unanswered",
    summary="a request (HCI, L2CAP, SDP, AVDTP, AT, SMP, ATT) got no response within the deadline",
    thresholds=[DEADLINE],
    example="SDP ServiceSearchAttributeRequest to AA:BB:CC:DD:EE:FF (frame 412) got no response "
    "within 7 s: the remote device was silent",
)
def response_timeout(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    # silence is judged against the shorter of the configured and the standard deadline: a
    # longer --deadline moves what counts as late, never hides a request nobody answered
    deadline_default = min(ctx.threshold("deadline_s"), DEADLINE.default)
    end_us = a.capture.last_time_us or 0
    groups: dict[tuple[str, str, str | None], list[Exchange]] = {}
    for ex in exchanges(a):
        if ex.response_frame is not None:
            continue
        deadline_us = round(ex.deadline(deadline_default) * 1e6)
        due = ex.request_time_us + deadline_us
        if due > end_us:
            continue  # the capture ends before the deadline: cannot judge
        gone = _conn_end(ctx, ex)
        if gone is not None and gone < due:
            continue  # the link went down first: that is the link's finding
        groups.setdefault((ex.what, ex.silent, ex.connection), []).append(ex)
    for (what, silent, conn), exs in groups.items():
        first = exs[0]
        dl = first.deadline(deadline_default)
        if silent == "controller":
            target = "got no Command Status/Complete from the controller"
        else:
            who = a.device_label(first.address) if first.address else "the peer"
            target = (
                f"to {who} got no response"
                if silent == "remote device"
                else (f"from {who} got no response from {a.host}")
            )
        vendor_at = first.layer == "at" and silent == "local host" and _vendor_at(what)
        tail = f"the {silent} was silent"
        if first.layer == "att" and "Indication" in what:
            target = target.replace("got no response", "got no Handle Value Confirmation")
            tail = f"the {silent} never confirmed it"
        yield ctx.finding(
            key=f"{first.layer}/{what}",
            severity="warning" if vendor_at else None,
            message=f"{what} (frame {first.request_frame}) {target} within {dl:g} s: {tail}"
            + (f" ({len(exs)} times)" if len(exs) > 1 else ""),
            explanation=(
                f"The device sent a vendor extension of HFP/HSP ({what.split()[-1]}); the AG "
                "must answer every AT command with OK or ERROR (HFP 1.9 §4.34.1) but "
                f"{a.host} ignored it. The device carries on without the extension (battery "
                "or accessory reports), so only that feature is lost."
                if vendor_at
                else f"Every {first.layer.upper()} request expects an answer; none came in "
                f"{dl:g} s. A device in pairing mode keeps its window open only briefly (about "
                "7 s on many headsets), so an unanswered step makes the whole attempt fail."
            ),
            fix=_fix(first, silent, a.host),
            address=first.address,
            connection=conn,
            time_us=first.request_time_us,
            frames=[e.request_frame for e in exs],
            count=len(exs),
            details={
                "layer": first.layer,
                "request": what,
                "silent_side": silent,
                "deadline_s": dl,
            },
        )
    yield from _pairing_window(ctx, deadline_default)


def _fix(ex: Exchange, silent: str, host: str) -> str:
    if silent == "controller":
        return (
            f"The Bluetooth controller stopped answering its host: restart Bluetooth (or {host}); "
            "if it repeats, report it to the host/controller vendor with this log."
        )
    if silent == "local host":
        return (
            f"The Bluetooth stack of {host} did not answer the remote: update its "
            "software; as a workaround forget the device and pair again."
        )
    return (
        "The remote device did not answer in time: keep it close, make sure it is in pairing/"
        "connectable mode for the whole attempt, restart it, and retry quickly after it "
        "starts advertising."
    )


def _command_times(a: Analysis) -> dict[int, int]:
    """The time of each HCI command, by frame (the first command of a frame)."""
    out: dict[int, int] = {}
    for tx in a.hci_commands:
        out.setdefault(tx.frame, tx.time_us)
    return out


def _last_connected(a: Analysis) -> dict[str | None, int]:
    """The latest start of a link made to each device."""
    out: dict[str | None, int] = {}
    for o in a.connections:
        if o.ok:
            out[o.address] = max(out.get(o.address, -(1 << 62)), o.start_time_us or 0)
    return out


def _pairing_window(ctx: RuleContext, deadline_s: float) -> Iterator[Finding]:
    """Found by inquiry but paged only after the deadline, and the page failed. (LE advertising
    says nothing about BR/EDR page scanning: an LE-only address paged over BR/EDR is
    ``wrong_transport``.)"""
    a = ctx.analysis
    found: dict[str, tuple[int, int]] = {}
    for d in a.discovered:
        found.setdefault(d.address, (d.time_us, d.frame))
    for c in a.connections:
        if c.status == 0 or c.address not in found or c.initiator != "local":
            continue
        if c.transport != "br_edr" or c.cancelled:
            continue
        t_found, f_found = found[c.address]
        page_time = c.start_time_us or 0
        if c.request_frame is not None:
            sent = memo(a, "command_time_by_frame", lambda: _command_times(a))
            page_time = sent.get(c.request_frame, page_time)
        waited = (page_time - t_found) / 1e6
        if waited <= deadline_s:
            continue
        last_up = memo(a, "response_timeout:last_up", lambda: _last_connected(a))
        if last_up.get(c.address, -(1 << 62)) - t_found > waited * 1e6:
            continue  # a later page, even later after discovery, connected: no such window
        yield ctx.finding(
            message=f"{a.device_label(c.address)} was found at frame {f_found} but paged only "
            f"{waited:.1f} s later; the page failed: {c.status_name}",
            explanation="A headset in pairing mode answers pages only for a short window after "
            f"it is discovered. {a.Host} found it, waited longer than the window, and the page "
            "then failed.",
            fix="Start pairing right after the device shows up in the list, or put the device "
            "back into pairing mode just before tapping it.",
            address=c.address,
            connection=c.id,
            time_us=page_time,
            frames=[f_found]
            + ([c.request_frame] if c.request_frame else [])
            + [c.start_frame or 0],
            details={
                "layer": "page",
                "waited_s": round(waited, 3),
                "status": c.status,
                "status_name": c.status_name,
                "silent_side": "remote device",
            },
        )
