"""``a2dp_fallback_hfp``: the remote offers A2DP, yet audio runs over SCO/eSCO (narrow-band mono
HFP/HSP) with no call in progress and no A2DP stream streaming — the classic "my headphones sound
like a phone call" fallback. The finding names why A2DP did not stream."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Analysis, AvdtpStream, HfpSession
from analyzer.rules.base import Finding, RuleContext, rule

#: AT texts that mean a call is being set up or answered (HFP 1.9 §4.13-§4.19, HSP §4.2)
CALL_AT = ("RING", "ATA", "ATD", "AT+BLDN", "+CIEV")
#: look back this far before the SCO link for call set-up
CALL_LOOKBACK_US = 30_000_000


def _overlaps(t0: int, t1: int, s0: int | None, s1: int | None) -> bool:
    return s0 is not None and s0 <= t1 and (s1 is None or s1 >= t0)


def call_in_progress(a: Analysis, address: str | None, t0: int, t1: int) -> bool:
    """Did an HFP/HSP call (or call set-up) overlap [t0, t1] for this device?"""
    for h in a.hfp:
        if h.address != address:
            continue
        for call in h.calls:
            if _overlaps(t0, t1, call.start_time_us, call.end_time_us):
                return True
        for at in h.at:
            if t0 - CALL_LOOKBACK_US <= at.time_us <= t1 and at.text.upper().startswith(CALL_AT):
                # of the +CIEV indicators only call / callsetup mean a call
                if at.text.upper().startswith("+CIEV") and not _ciev_is_call(h, at.text):
                    continue
                return True
    return False


def _ciev_is_call(h: HfpSession, text: str) -> bool:
    order = getattr(h, "indicator_order", None)
    try:
        idx = int(text.split(":", 1)[1].split(",", maxsplit=1)[0])
        val = int(text.split(",")[1])
    except (IndexError, ValueError):
        return False
    if order and 0 < idx <= len(order):
        return order[idx - 1] in ("call", "callsetup", "call_setup") and val > 0
    return idx in (2, 3) and val > 0  # the usual CIND order: service, call, callsetup


def _offers_a2dp(a: Analysis, address: str | None, conn_ids: set[str]) -> list[int]:
    """Evidence frames that the remote offers A2DP (SDP Audio Sink record, AVDTP endpoints)."""
    frames: list[int] = []
    for t in a.sdp:
        if (
            t.address == address
            and t.response_frame
            and any(s in ("Audio Sink", "Advanced Audio Distribution") for s in t.services)
        ):
            frames.append(t.response_frame)
    for ep in a.avdtp_endpoints:
        if ep.connection in conn_ids and ep.side == "remote" and ep.frame:
            frames.append(ep.frame)
    return sorted(set(frames))


def why_no_a2dp(a: Analysis, conn_ids: set[str], t_end: int) -> tuple[str, list[int]]:
    """The reason A2DP did not stream, with evidence frames."""
    rejects = [
        s
        for s in a.avdtp_signals
        if s.connection in conn_ids
        and s.response == "reject"
        and (s.response_time_us or 0) <= t_end
    ]
    if rejects:
        setconf = [s for s in rejects if s.signal in ("SET_CONFIGURATION", "RECONFIGURE")]
        s = (setconf or rejects)[-1]
        return (
            f"AVDTP {s.signal} was rejected ({s.error_name})",
            [x.response_frame for x in rejects if x.response_frame],
        )
    chans = [c for c in a.l2cap_channels if c.connection in conn_ids and c.psm == 0x19]
    if not chans:
        return "A2DP was never attempted: no AVDTP signalling channel was opened", []
    refused = [c for c in chans if c.result not in (None, 0, 1)]
    if refused and all(c.result not in (None, 0) for c in chans):
        c = refused[-1]
        return (
            f"the AVDTP channel was refused ({c.result_name})",
            [c.response_frame] if c.response_frame else [],
        )
    streams = [s for s in a.avdtp_streams if s.connection in conn_ids and not s.inferred]
    if not streams:
        sigs = [s for s in a.avdtp_signals if s.connection in conn_ids]
        if not sigs:
            return "the AVDTP channel opened but no signalling followed", []
        return (f"AVDTP negotiation stopped after {sigs[-1].signal}", [sigs[-1].command_frame or 0])
    st = streams[-1]
    states = [x.state for x in st.states]
    if "streaming" not in states:
        if "open" in states:
            f = next(x.frame for x in st.states if x.state == "open")
            return "the A2DP stream was opened but never started", [f]
        return "the A2DP stream was configured but never opened", [st.configure_frame or 0]
    last = st.states[-1]
    return (
        f"the A2DP stream was {last.state if last.state != 'open' else 'suspended'}",
        [last.frame],
    )


@rule(
    id="a2dp_fallback_hfp",
    severity="error",
    title="Audio fell back from A2DP to HFP/HSP",
    summary="the remote offers A2DP but audio ran over SCO/eSCO with no call and no A2DP stream",
    example="Headset (AA:BB:CC:DD:EE:FF) offers A2DP, yet audio ran over eSCO (frame 900) with "
    "no call in progress: AVDTP SET_CONFIGURATION was rejected (UNSUPPORTED_CONFIGURATION)",
)
def a2dp_fallback_hfp(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    end_us = a.capture.last_time_us or 0
    seen: set[str | None] = set()
    for sco in a.connections:
        if sco.transport not in ("sco", "esco") or sco.status != 0 or sco.address in seen:
            continue
        addr = sco.address
        acls = {c.id for c in a.connections if c.address == addr and c.transport == "br_edr"}
        t0 = sco.start_time_us or 0
        t1 = sco.end_time_us or end_us
        offers = _offers_a2dp(a, addr, acls)
        if not offers:
            continue
        if call_in_progress(a, addr, t0, t1):
            continue
        if any(s.connection in acls and _streaming_during(s, t0, t1) for s in a.avdtp_streams):
            continue
        seen.add(addr)
        reason, why_frames = why_no_a2dp(a, acls, t1)
        link = {"sco": "SCO", "esco": "eSCO"}[sco.transport]
        codec = (sco.sco.codec or sco.sco.air_mode_name) if sco.sco else None
        yield ctx.finding(
            message=f"{a.device_label(addr)} offers A2DP, yet audio ran over {link} "
            f"(frame {sco.start_frame}) with no call in progress: {reason}",
            explanation="A2DP carries stereo, wide-band music; SCO/eSCO carries the mono, "
            "narrow-band voice of HFP/HSP. The device advertises A2DP (SDP Audio Sink / AVDTP "
            f"endpoints), but no A2DP stream was streaming while the {link} link carried "
            f"audio{f' ({codec})' if codec else ''}, and no call was ringing or active. This "
            "is the 'sounds like a phone call' fallback.",
            fix=(
                "AVDTP was rejected, so A2DP could not stream: forget and re-pair, and update "
                "the headset's firmware (see the rejected step)."
                if "reject" in reason
                else f"Make media audio use A2DP: enable media audio for the device on {a.host} "
                "(on a PC pick the 'Stereo'/'Headphones' output, not 'Hands-Free')."
            ),
            address=addr,
            connection=sco.id,
            time_us=t0,
            frames=sorted({sco.start_frame or 0, *offers[:3], *[f for f in why_frames if f]}),
            details={
                "reason": reason,
                "sco_connection": sco.id,
                "link": sco.transport,
                "a2dp_evidence_frames": offers[:10],
            },
        )


def _streaming_during(st: AvdtpStream, t0: int, t1: int) -> bool:
    streaming_from = None
    for s in st.states:
        if s.state == "streaming":
            streaming_from = s.time_us
        elif streaming_from is not None:
            if _overlaps(t0, t1, streaming_from, s.time_us):
                return True
            streaming_from = None
    return streaming_from is not None and streaming_from <= t1
