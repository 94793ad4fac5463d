"""``high_audio_latency``: the sink's AVDTP Delay Report (AVDTP 1.3 §8.19; A2DP 1.4 §5.7.4:
the delay in 1/10 ms units from the sink's input to its audio output) above the threshold
(default 180 ms). Video looks out of sync and games lag once the delay is this long — but the
report exists so that the source can delay video by that much (Android does, A2DP 1.3+), so a
reported delay is information about the headset (severity info); above ``warn_delay_ms``
(default 500 ms) compensation no longer hides it (video start, UI sounds, games: warning).
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import AvdtpStream, DelayReport
from analyzer.rules.base import Finding, RuleContext, Threshold, rule

MAX_DELAY = Threshold("max_delay_ms", 180.0, "ms", "a reported delay above this is high (info)")
WARN_DELAY = Threshold(
    "warn_delay_ms", 500.0, "ms", "... and above this too high for the source to hide (warning)"
)


@rule(
    id="high_audio_latency",
    severity="warning",
    title="High audio latency",
    summary="the headset's AVDTP delay report is above the threshold (default 180 ms)",
    thresholds=[MAX_DELAY, WARN_DELAY],
    example="Headset (AA:BB:CC:DD:EE:FF) reports 250 ms of audio delay on the SBC stream "
    "(Delay Report, frame 87)",
)
def high_audio_latency(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    limit = ctx.threshold("max_delay_ms")
    by_addr: dict[str | None, list[tuple[AvdtpStream, DelayReport]]] = {}
    for st in a.avdtp_streams:
        for r in st.delay_reports:
            if (r.delay_ms or 0) > limit:
                by_addr.setdefault(st.address, []).append((st, r))
    for addr, high in by_addr.items():
        st, worst = max(high, key=lambda x: x[1].delay_ms)
        codecs = sorted({s.codec or "A2DP" for s, _ in high})
        n_streams = len({id(s) for s, _ in high})
        warn = worst.delay_ms > ctx.threshold("warn_delay_ms")
        yield ctx.finding(
            severity="warning" if warn else "info",
            message=f"{a.device_label(addr)} reports {worst.delay_ms:.0f} ms of audio "
            f"delay on the {'/'.join(codecs)} stream (Delay Report, frame {worst.frame})"
            + (f" ({len(high)} reports" if len(high) > 1 else "")
            + (f" on {n_streams} streams)" if n_streams > 1 else ")" if len(high) > 1 else ""),
            explanation=f"With AVDTP Delay Reporting the headset tells {a.host} how long audio "
            "takes from the radio to its speaker. Above about "
            f"{limit:.0f} ms, speech in videos visibly lags the lips and sounds in games or "
            "calls come late, unless the app compensates with the reported value"
            + (
                f"; at {worst.delay_ms:.0f} ms even compensated video starts late and UI "
                "sounds and games lag."
                if warn
                else " — video players on a source that honours Delay Reports (Android does) "
                "stay in sync; games and UI sounds still lag."
            ),
            fix="Use a low-latency mode on the headset (gaming mode) if it has one, a "
            "lower-latency codec (aptX Low Latency / LC3 where supported), or keep to apps "
            "that compensate A/V sync.",
            address=addr,
            connection=st.connection,
            time_us=worst.time_us,
            frames=[r.frame for _, r in high],
            count=len(high),
            details={
                "max_delay_ms": worst.delay_ms,
                "delays_ms": [r.delay_ms for _, r in high],
                "threshold_ms": limit,
                "codecs": codecs,
                "streams": n_streams,
            },
        )
