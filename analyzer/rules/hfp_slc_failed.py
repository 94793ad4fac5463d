"""``hfp_slc_failed``: the HFP service level connection (HFP 1.9 §4.2.1: AT+BRSF, AT+BAC,
AT+CIND=?, AT+CIND?, AT+CMER, AT+CHLD=?, AT+BIND) did not come up — one of its commands was
answered ERROR / +CME ERROR, or the SLC never completed while its RFCOMM channel was up. Without
an SLC there are no calls, no call audio and no in-call controls.

Graded: error when no SLC ever completed on that link while it was up (calls could not work);
warning when an SLC command failed but an SLC completed anyway (a later attempt, or the command
was optional for this pair). Errors after the SLC (AT+XAPL, AT+BTRH?, vendor commands) are
ordinary "not supported" answers and not this rule's business. A session whose start is not in
the capture (no AT+BRSF seen) is never judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from analyzer.model import Analysis, AtCommand, HfpSession
from analyzer.model.analysis import memo
from analyzer.rules.base import Finding, RuleContext, Threshold, rule

#: the SLC establishment commands (HFP 1.9 §4.2.1.1-§4.2.1.6), as they start the AT line
SLC_COMMANDS = ("AT+BRSF", "AT+BAC", "AT+CIND", "AT+CMER", "AT+CHLD=?", "AT+BIND")
NEVER = Threshold(
    "slc_wait_s",
    10.0,
    "s",
    "an RFCOMM channel up this long after AT+BRSF without an SLC is a failure",
)


def _slc_command(c: AtCommand) -> str | None:
    if c.kind != "command":
        return None
    text = c.text.upper()
    for name in SLC_COMMANDS:
        if text.startswith(name):
            return name
    return None


def _malformed(c: AtCommand) -> str | None:
    """A parameter that is not what §4.34.1 defines (BRSF: a decimal feature bitmap)."""
    text = c.text.strip()
    if text.upper().startswith("AT+BRSF="):
        value = text[8:]
        if not re.fullmatch(r"\d{1,4}", value):
            return f"the feature value {value!r} is not a decimal number (HFP 1.9 §4.34.1)"
    return None


def _any_slc(a: Analysis, s: HfpSession) -> HfpSession | None:
    """The first session (in the analysis's order) on the same link or device whose SLC
    completed (look-ups built once while the rules run)."""
    by_conn, by_addr = memo(a, "hfp_slc_failed:slc", lambda: _slc_sessions(a))
    found = [by_conn.get(s.connection)] + ([by_addr.get(s.address)] if s.address else [])
    hits = [x for x in found if x is not None]
    return min(hits, key=lambda x: x[0])[1] if hits else None


SlcFirst = dict[str | None, tuple[int, HfpSession]]


def _slc_sessions(a: Analysis) -> tuple[SlcFirst, SlcFirst]:
    by_conn: SlcFirst = {}
    by_addr: SlcFirst = {}
    for n, o in enumerate(a.hfp):
        if o.slc_complete:
            by_conn.setdefault(o.connection, (n, o))
            by_addr.setdefault(o.address, (n, o))
    return by_conn, by_addr


@rule(
    id="hfp_slc_failed",
    severity="warning",
    title="HFP service level connection failed",
    summary="an SLC command (AT+BRSF, AT+BAC, AT+CIND, AT+CMER, AT+CHLD=?, AT+BIND) answered "
    "ERROR, or the SLC never completing while its RFCOMM channel was up",
    thresholds=[NEVER],
    example="The phone answered the headset's AT+BRSF=abc with ERROR (frame 310): the feature "
    "value 'abc' is not a decimal number; no service level connection was established, so calls "
    "cannot use the headset",
)
def hfp_slc_failed(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    wait_us = ctx.threshold("slc_wait_s") * 1e6
    for s in a.hfp:
        if s.profile != "hfp":
            continue
        brsf = [c for c in s.at if _slc_command(c) == "AT+BRSF"]
        if not brsf:
            continue  # the SLC set-up is not in the capture
        failed = [
            c
            for c in s.at
            if _slc_command(c)
            and c.result is not None
            and "ERROR" in c.result
            and (s.slc_frame is None or c.frame < s.slc_frame)
        ]
        conn = a.connection(s.connection)
        last_us = max((c.result_time_us or c.time_us) for c in s.at)
        end_us = conn.end_time_us if conn is not None and conn.end_time_us else last_us
        ended = s.end_frame is not None or end_us - brsf[0].time_us >= wait_us
        if not failed and (s.slc_complete or not ended):
            continue
        other = _any_slc(a, s)
        hf = a.host if s.local_role == "hf" else a.device_label(s.address)
        ag = a.host if s.local_role == "ag" else a.device_label(s.address)
        if failed:
            c = failed[0]
            name = _slc_command(c) or c.text
            sender = a.host if c.direction == "sent" else a.device_label(s.address)
            answerer = a.device_label(s.address) if c.direction == "sent" else a.host
            bad = _malformed(c)
            what = (
                f"{answerer[0].upper() + answerer[1:]} answered {sender}'s {c.text} with "
                f"{c.result} (frame {c.result_frame})" + (f": {bad}" if bad else "")
            )
            key = name
        else:
            c = brsf[0]
            what = (
                f"The HFP service level connection between {ag} and {hf} never completed: "
                f"AT+BRSF at frame {c.frame}, last AT exchange at frame "
                f"{max(x.result_frame or x.frame for x in s.at)}"
            )
            key = "incomplete"
        if s.slc_complete:
            sev, then = "warning", f"; the SLC completed anyway (frame {s.slc_frame})"
        elif other is not None and other is not s:
            sev, then = "warning", f"; a later SLC completed (frame {other.slc_frame})"
        else:
            sev, then = (
                "error",
                "; no service level connection was established, so calls cannot use it",
            )
        yield ctx.finding(
            key=key,
            severity=sev,
            message=what + then,
            explanation=(
                "The Hands-Free profile works only after the service level connection (HFP 1.9 "
                "§4.2.1): the hands-free unit states its features (AT+BRSF), learns the phone's "
                "indicators (AT+CIND) and turns on indicator reporting (AT+CMER). "
                + (
                    f"Here {c.text} was refused, so the set-up stopped there. "
                    if failed
                    else "Here the exchange stopped before the last step was acknowledged. "
                )
                + ("The command's parameter is malformed. " if failed and _malformed(c) else "")
            ).strip(),
            fix=(
                f"Report it to the maker of {hf} (a malformed command) — the phone is right to "
                "refuse it."
                if failed and _malformed(c)
                else f"Compare {c.text} with HFP 1.9 §4.34: the side that refused it "
                f"({a.device_label(s.address) if c.direction == 'sent' else a.host}) may not "
                "support a feature the other announced; update the firmware of both sides."
                if failed
                else f"Check which side stopped answering (the last AT line); toggle Bluetooth "
                f"on {a.host} and reconnect; update the hands-free unit's firmware."
            ),
            address=s.address,
            connection=s.connection,
            time_us=(c.result_time_us or c.time_us),
            frames=[f for f in (c.frame, c.result_frame) if f is not None],
            details={"command": c.text, "result": c.result, "slc_complete": s.slc_complete,
                     "malformed": _malformed(c) if failed else None},
        )  # fmt: skip
