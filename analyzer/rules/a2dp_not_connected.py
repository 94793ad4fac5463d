"""``a2dp_not_connected``: the remote offers Audio Sink (its SDP record, A2DP 1.4 §5.3), this
host is the audio source that looked for it, the ACL stayed up with other profiles connected
(HFP, AVRCP, ...), and no AVDTP signalling channel (L2CAP PSM 0x0019, AVDTP 1.3 §6.2) was ever
opened on it — media audio cannot play. Typical after an out-of-band (NFC) pairing or a host
that connects only Hands-Free. When audio ran over SCO/eSCO instead, ``a2dp_fallback_hfp``
reports it.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Analysis, Connection
from analyzer.model.analysis import memo
from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.rules.queries import profiles_connected

MIN_UP = Threshold(
    "min_up_s", 20.0, "s", "the ACL stayed up at least this long without an AVDTP channel"
)
AUDIO_SINK = "0x110B"


def _sink_offered(a: Analysis, addr: str) -> int | None:
    """Frame of our SDP answer that shows the remote's Audio Sink record (we asked: a source)."""
    return memo(a, "a2dp_not_connected:sinks", lambda: _sinks(a)).get(addr)


def _sinks(a: Analysis) -> dict[str | None, int]:
    out: dict[str | None, int] = {}
    for t in a.sdp:
        if t.direction != "sent" or t.response_frame is None or t.address in out:
            continue
        if any(AUDIO_SINK in r.service_classes for r in t.records):
            out[t.address] = t.response_frame
    return out


def _avdtp_on(a: Analysis, c: Connection) -> bool:
    return c.id in memo(a, "a2dp_not_connected:avdtp", lambda: _avdtp_links(a))


def _avdtp_links(a: Analysis) -> set[str | None]:
    on = {ch.connection for ch in a.l2cap_channels if ch.psm == 0x0019}
    return on | {s.connection for s in a.avdtp_signals}


@rule(
    id="a2dp_not_connected",
    severity="warning",
    title="A2DP never connected",
    summary="the remote offers Audio Sink and other profiles connected, but no AVDTP channel "
    "was opened while the link stayed up (default 20 s): media audio cannot play",
    thresholds=[MIN_UP],
    example="Sonic Buds Pro (AA:BB:CC:DD:EE:FF) offers Audio Sink (SDP, frame 88) and HFP "
    "connected, but no A2DP (AVDTP) channel was opened during the 31 s the link was up",
)
def a2dp_not_connected(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    min_up_us = ctx.threshold("min_up_s") * 1e6
    for c in a.connections:
        if c.transport != "br_edr" or not c.ok or c.inferred or not c.address:
            continue
        if c.start_time_us is None:
            continue
        sdp_frame = _sink_offered(a, c.address)
        if sdp_frame is None or _avdtp_on(a, c):
            continue
        sco_acls = memo(
            a,
            "a2dp_not_connected:sco",
            lambda: {o.acl for o in a.connections if o.transport in ("sco", "esco") and o.ok},
        )
        if c.id in sco_acls:
            continue  # audio ran over SCO/eSCO: a2dp_fallback_hfp
        end_us = c.end_time_us
        if end_us is None:
            last = memo(
                a, "last_timeline_us", lambda: max((e.time_us for e in a.timeline), default=None)
            )
            end_us = last if last is not None else c.start_time_us
        up_us = end_us - c.start_time_us
        if up_us < min_up_us:
            continue
        names, frames = profiles_connected(a, c)
        others = [{"AVCTP": "AVRCP"}.get(n, n) for n in names if n not in ("SDP", "AVDTP", "A2DP")]
        if {"HFP", "HSP"} & set(others):
            others = [n for n in others if n != "RFCOMM"]  # the transport of HFP/HSP
        if not others:
            continue  # nothing but SDP: the link was not in use
        yield ctx.finding(
            message=f"{a.device_label(c.address)} offers Audio Sink (SDP, frame {sdp_frame}) and "
            f"{', '.join(others)} connected, but no A2DP (AVDTP) channel was opened during the "
            f"{up_us / 1e6:.0f} s the link was up"
            + ("" if c.end_time_us is not None else " (until the capture ended)"),
            explanation=(
                f"{a.Host} found the device's Audio Sink service but never opened the AVDTP "
                "signalling channel, so media audio (music, video, navigation prompts) has no "
                "path to the device; only the connected profiles work. Typical after an "
                "out-of-band (NFC) pairing, or when A2DP is disabled for this device on "
                f"{a.host}, or the device accepted only one profile."
            ),
            fix=(
                f"Check that Media audio is enabled for the device in {a.host}'s Bluetooth "
                "settings; disconnect and reconnect it; if it persists, forget and pair it "
                "again (not by NFC)."
            ),
            address=c.address,
            connection=c.id,
            time_us=c.start_time_us,
            frames=sorted({c.start_frame or 0, sdp_frame, *frames[:4]} - {0}),
            details={"profiles": others, "up_s": round(up_us / 1e6, 3),
                     "until_capture_end": c.end_time_us is None},
        )  # fmt: skip
