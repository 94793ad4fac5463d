"""``a2dp_fallback_hfp``: the remote offers A2DP, yet audio runs over SCO/eSCO (narrow-band mono
HFP/HSP) with no call in progress and no A2DP stream streaming — the classic "my headphones sound
like a phone call" fallback. The finding names why A2DP did not stream."""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterator

from analyzer.model import (
    Analysis,
    AvdtpStream,
    Connection,
    HfpSession,
    SdpTransaction,
    StreamEndpoint,
)
from analyzer.model.analysis import memo
from analyzer.rules.base import Finding, RuleContext, rule
from analyzer.rules.queries import by_connection, group_by

#: AT texts that mean a call is being set up or answered (HFP 1.9 §4.13-§4.19, HSP §4.2)
CALL_AT = ("RING", "ATA", "ATD", "AT+BLDN", "+CIEV")
#: look back this far before the SCO link for call set-up
CALL_LOOKBACK_US = 30_000_000


class _Intervals:
    """Time intervals (end None: still open), for "does any overlap [t0, t1]" by bisect: a
    device with thousands of SCO links and calls stays linear (issue 18 §2)."""

    def __init__(self, spans: list[tuple[int, int | None]]) -> None:
        spans.sort(key=lambda x: x[0])
        self.starts = [s for s, _ in spans]
        self.max_end: list[float] = []  # the latest end among the spans up to each
        m = float("-inf")
        for _, e in spans:
            m = max(m, float("inf") if e is None else e)
            self.max_end.append(m)

    def overlaps(self, t0: int, t1: int) -> bool:
        k = bisect.bisect_right(self.starts, t1)
        return k > 0 and self.max_end[k - 1] >= t0


def _streaming_spans(st: AvdtpStream) -> list[tuple[int, int | None]]:
    """The intervals a stream was streaming (the last one open when it still was)."""
    spans: list[tuple[int, int | None]] = []
    streaming_from = None
    for s in st.states:
        if s.state == "streaming":
            streaming_from = s.time_us
        elif streaming_from is not None:
            spans.append((streaming_from, s.time_us))
            streaming_from = None
    if streaming_from is not None:
        spans.append((streaming_from, None))
    return spans


class _Device:
    """What the rule asks of one device, gathered once: its BR/EDR links, the evidence that it
    offers A2DP, its calls and call set-up AT lines, and when its A2DP streams streamed."""

    def __init__(self, a: Analysis, addr: str | None) -> None:
        by_addr: dict[Hashable, list[Connection]] = memo(
            a, "connections_by_address", lambda: group_by(a.connections, lambda c: c.address)
        )
        self.acls = {c.id for c in by_addr.get(addr, []) if c.transport == "br_edr"}
        self.offers = _offers_a2dp(a, addr, self.acls)
        hfp: dict[Hashable, list[HfpSession]] = memo(
            a, "hfp_by_address", lambda: group_by(a.hfp, lambda h: h.address)
        )
        hfps = hfp.get(addr, []) if self.offers else []
        self.calls = _Intervals(
            [(c.start_time_us, c.end_time_us) for h in hfps for c in h.calls
             if c.start_time_us is not None]
        )  # fmt: skip
        self.call_at = sorted(at.time_us for h in hfps for at in h.at if _is_call_at(h, at.text))
        streams: dict[Hashable, list[AvdtpStream]] = by_connection(a, "avdtp_streams")
        self.streaming = _Intervals(
            [sp for cid in self.acls for st in streams.get(cid, []) for sp in _streaming_spans(st)]
        )

    def call_at_within(self, lo: int, hi: int) -> bool:
        k = bisect.bisect_left(self.call_at, lo)
        return k < len(self.call_at) and self.call_at[k] <= hi


def _is_call_at(h: HfpSession, text: str) -> bool:
    """An AT line that sets up or answers a call (of the +CIEV indicators, call / callsetup)."""
    up = text.upper()
    return up.startswith(CALL_AT) and (not up.startswith("+CIEV") or _ciev_is_call(h, text))


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
    sdp: dict[Hashable, list[SdpTransaction]] = memo(
        a, "sdp_by_address", lambda: group_by(a.sdp, lambda t: t.address)
    )
    for t in sdp.get(address, []):
        if t.response_frame and any(
            s in ("Audio Sink", "Advanced Audio Distribution") for s in t.services
        ):
            frames.append(t.response_frame)
    eps: dict[Hashable, list[StreamEndpoint]] = by_connection(a, "avdtp_endpoints")
    for cid in conn_ids:
        for ep in eps.get(cid, []):
            if ep.side == "remote" and ep.frame:
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
    devices: dict[str | None, _Device] = {}  # built once per device, not once per SCO link
    for sco in a.connections:
        if sco.transport not in ("sco", "esco") or sco.status != 0 or sco.address in seen:
            continue
        addr = sco.address
        dev = devices.get(addr)
        if dev is None:
            dev = devices[addr] = _Device(a, addr)
        acls = dev.acls
        t0 = sco.start_time_us or 0
        t1 = sco.end_time_us or end_us
        offers = dev.offers
        if not offers:
            continue
        if dev.calls.overlaps(t0, t1) or dev.call_at_within(t0 - CALL_LOOKBACK_US, t1):
            continue
        if dev.streaming.overlaps(t0, t1):
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
