"""``capture_incomplete``: what the analysis cannot see in this capture — one finding listing
the reasons: frames truncated by the capture tool (``orig_length > length``), an Android
*filtered* snoop log (payloads cut, A2DP media left out), packets the capture tool dropped, a
capture that starts in the middle of a connection (connections, L2CAP channels or streams seen
only through their data), time stamps going backwards, and damaged byte ranges the reader skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import DetailValue
from analyzer.model.analysis import AIR_LINK_TYPES
from analyzer.rules.base import Finding, RuleContext, rule


@rule(
    id="capture_incomplete",
    severity="info",
    title="Capture incomplete",
    summary="what the analysis cannot see: truncated/filtered payloads, drops, a start "
    "mid-connection, time going backwards, damaged ranges",
    example="The capture is incomplete: 86 frames truncated; Android filtered snoop log "
    "(payloads cut, media not logged)",
)
def capture_incomplete(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    cap = a.capture
    reasons: list[str] = []
    details: dict[str, DetailValue] = {}
    frames: list[int] = []
    trunc = cap.truncated
    if trunc:
        reasons.append(f"{trunc} frames truncated by the capture tool")
        details["truncated_frames"] = trunc
        frames += cap.truncated_frames
    if cap.filtered:
        reasons.append("Android filtered snoop log (payloads cut, A2DP media not logged)")
        details["filtered"] = True
    if cap.drops:
        reasons.append(f"{cap.drops} packets dropped by the capture tool")
        details["drops"] = cap.drops
    inf_c = [c for c in a.connections if c.inferred]
    inf_ch = [c for c in a.l2cap_channels if c.inferred]
    inf_s = [s for s in a.avdtp_streams if s.inferred]
    if inf_c or inf_ch or inf_s:
        parts = [
            f"{len(x)} {name}{'s' if len(x) != 1 else ''}"
            for x, name in ((inf_c, "connection"), (inf_ch, "L2CAP channel"), (inf_s, "stream"))
            if x
        ]
        reasons.append(
            f"{', '.join(parts)} seen only through their data (their set-up is not in the "
            "capture: it started mid-connection or missed frames)"
        )
        details["inferred_connections"] = len(inf_c)
        details["inferred_l2cap_channels"] = len(inf_ch)
        details["inferred_streams"] = len(inf_s)
        frames += [c.start_frame for c in inf_c[:3] if c.start_frame]
    if cap.time_backwards:
        reasons.append(f"time goes backwards {cap.time_backwards} times")
        details["time_backwards"] = cap.time_backwards
        frames += cap.time_backwards_frames
    if cap.damaged:
        n = cap.damaged_bytes
        reasons.append(f"{n} damaged bytes skipped in {len(cap.damaged)} ranges")
        details["damaged"] = [str(d) for d in cap.damaged[:10]]
    if not reasons:
        return
    yield ctx.finding(
        message=f"The capture is incomplete: {'; '.join(reasons)}",
        explanation="The analysis sees only what the capture holds. Missing, cut or "
        "misordered packets hide steps of the story: a finding may be missing, and a request "
        "whose answer was not captured may look unanswered.",
        fix=(
            "Capture again with the sniffer started before the devices connect (so it sees the "
            "CONNECT_IND and follows the hopping), placed close to both devices; with an nRF "
            "Sniffer, select the device to follow first; an encrypted link needs its LTK (or "
            "the pairing in the capture) to be decoded."
            if a.capture.link_type in AIR_LINK_TYPES
            else "Capture again with the full HCI snoop log (Android: Developer options → "
            "Enable Bluetooth HCI snoop log → 'Enabled', not 'Filtered'), started before "
            "Bluetooth is turned on or the device is connected."
        ),
        time_us=cap.first_time_us,
        frames=sorted(set(frames)),
        count=len(reasons),
        details=details,
    )
