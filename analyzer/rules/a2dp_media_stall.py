"""``a2dp_media_stall``: media stopped flowing while an A2DP stream was streaming.

After AVDTP START (AVDTP 1.3 §8.13) the source sends media packets at the codec's frame rate
(SBC at 44.1 kHz: a packet every ~20 ms) until SUSPEND or CLOSE; a gap above the threshold
(default 500 ms) inside a streaming period is audible as a drop-out. Also counted: media that
stopped before the link was lost (supervision timeout etc.) while the stream was still
streaming — the buffers stop draining first. Not judged on Android *filtered* snoop logs, which
leave media packets out of the log.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from analyzer.model import Analysis, AvdtpStream
from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.rules.queries import LOSS_REASONS, stream_state_at

GAP = Threshold("gap_ms", 500.0, "ms", "a gap in media longer than this is a stall")


def streaming_periods(st: AvdtpStream, end_us: int) -> list[tuple[int, int]]:
    """[start, end] of each streaming period from the stream's states."""
    out: list[tuple[int, int]] = []
    start = None
    for s in st.states:
        if s.state == "streaming":
            if start is None:
                start = s.time_us
        elif start is not None:
            out.append((start, s.time_us))
            start = None
    if start is not None:
        out.append((start, end_us))
    if not st.states and st.inferred and st.media_first_time_us is not None:
        out.append((st.media_first_time_us, st.media_last_time_us or end_us))
    return out


@dataclass(slots=True)
class Stall:
    from_frame: int | None
    to_frame: int | None
    gap_ms: float
    time_us: int
    kind: str  # gap / before_link_loss


def stalls(a: Analysis, st: AvdtpStream, gap_ms: float) -> list[Stall]:
    conn = a.connection(st.connection)
    end_us = (conn.end_time_us if conn else None) or a.capture.last_time_us or 0
    periods = sorted(streaming_periods(st, end_us))
    starts = [p0 for p0, _ in periods]
    reach = list(itertools.accumulate((p1 for _, p1 in periods), max))  # latest end so far
    out = []
    for g in st.media_gaps:
        t0 = g.time_us
        ms = g.gap_ms
        if ms < gap_ms:
            continue
        t1 = t0 + round(ms * 1000)
        k = bisect.bisect_right(starts, t0)  # a period from before the gap that outlasts it
        if k and reach[k - 1] >= t1:
            out.append(Stall(g.from_frame, g.to_frame, g.gap_ms, g.time_us, "gap"))
    # media stopped, then the link was lost while still streaming
    if (
        conn is not None
        and conn.end_time_us is not None
        and conn.disconnect_reason in LOSS_REASONS
        and st.media_last_time_us is not None
        and stream_state_at(st.states, conn.end_time_us) == "streaming"
    ):
        ms = (conn.end_time_us - st.media_last_time_us) / 1000
        if ms >= gap_ms:
            out.append(
                Stall(None, conn.end_frame, round(ms, 1), st.media_last_time_us, "before_link_loss")
            )
    return out


@rule(
    id="a2dp_media_stall",
    severity="warning",
    title="A2DP media stalled",
    summary="gaps in A2DP media above the threshold (default 500 ms) while the stream was "
    "streaming",
    thresholds=[GAP],
    example="A2DP (SBC) media to Headset (AA:BB:CC:DD:EE:FF) stalled for 800 ms while "
    "streaming (frames 450-452)",
)
def a2dp_media_stall(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    if a.capture.filtered:
        return
    gap_ms = ctx.threshold("gap_ms")
    for st in a.avdtp_streams:
        found = stalls(a, st, gap_ms)
        if not found:
            continue
        worst = max(found, key=lambda g: g.gap_ms)
        frames = sorted({f for g in found for f in (g.from_frame, g.to_frame) if f})
        where = (
            f"frames {worst.from_frame}-{worst.to_frame}"
            if worst.kind == "gap"
            else f"from the last media packet until the link was lost at frame {worst.to_frame}"
        )
        many = f" ({len(found)} stalls, longest shown)" if len(found) > 1 else ""
        yield ctx.finding(
            message=f"A2DP ({st.codec or 'codec unknown'}) media to {a.device_label(st.address)} "
            f"stalled for {worst.gap_ms:.0f} ms while streaming ({where}){many}",
            explanation="While a stream is streaming the source sends a media packet every "
            "few tens of milliseconds; no media for "
            f"{worst.gap_ms:.0f} ms, with no SUSPEND, empties the headset's buffer and "
            "the music drops out. A stall right before a link loss means the radio link was "
            f"failing; one on a healthy link means the encoder or audio path of {a.host} stalled "
            "(CPU load, Wi-Fi coexistence).",
            fix=(
                "The stall is the start of the link loss that followed (see that finding): "
                "keep the devices close, with nothing in between."
                if all(g.kind == "before_link_loss" for g in found)
                else "Keep the devices close and away from 2.4 GHz interference; turn off Wi-Fi "
                "or move to 5 GHz to test coexistence; choose a lower-bitrate codec or quality "
                "setting."
            ),
            address=st.address,
            connection=st.connection,
            time_us=worst.time_us,
            frames=frames,
            count=len(found),
            details={
                "codec": st.codec,
                "longest_gap_ms": worst.gap_ms,
                "gaps_ms": [g.gap_ms for g in found[:20]],
                "stall_kinds": [g.kind for g in found[:20]],
                "threshold_ms": gap_ms,
            },
        )
