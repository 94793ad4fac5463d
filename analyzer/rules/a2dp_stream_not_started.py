"""``a2dp_stream_not_started``: an A2DP stream configured or opened with no START within the
deadline (AVDTP 1.3 §5.4: open → streaming needs START). Informational: phones open the stream
at connection and START only when something plays, so this alone is normal; it becomes the
reason in ``a2dp_fallback_hfp`` when audio went over SCO instead."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.rules.base import Finding, RuleContext, Threshold, rule

DEADLINE = Threshold("deadline_s", 7.0, "s", "time allowed from OPEN (or configuration) to START")


@rule(
    id="a2dp_stream_not_started",
    severity="info",
    title="A2DP stream never started",
    summary="an A2DP stream was configured or opened but not started within the deadline",
    thresholds=[DEADLINE],
    example="A2DP stream (SBC) to Headset (AA:BB:CC:DD:EE:FF) opened at frame 350 but no START "
    "followed in 7 s",
)
def a2dp_stream_not_started(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    dl = ctx.threshold("deadline_s")
    end_us = a.capture.last_time_us or 0
    for st in a.avdtp_streams:
        if st.inferred or not st.states:
            continue
        ref = next((s for s in st.states if s.state == "open"), st.states[0])
        due = ref.time_us + round(dl * 1e6)
        started = next((s for s in st.states if s.state == "streaming"), None)
        if started is not None and started.time_us <= due:
            continue
        if started is None:
            if due > end_us:
                continue  # capture ends first
            closed = next(
                (s for s in st.states if s.state == "idle" and s.time_us >= ref.time_us),
                None,
            )
            conn = a.connection(st.connection)
            if (closed is not None and closed.time_us < due) or (
                conn is not None and conn.end_time_us is not None and conn.end_time_us < due
            ):
                continue  # torn down before the deadline: another finding's story
        label = a.device_label(st.address)
        late = (
            ""
            if started is None
            else (
                f"; START came only after {(started.time_us - ref.time_us) / 1e6:.1f} s "
                f"(frame {started.frame})"
            )
        )
        yield ctx.finding(
            message=f"A2DP stream ({st.codec or 'codec unknown'}) to {label} {ref.state} at "
            f"frame {ref.frame} but no START followed in {dl:g} s{late}",
            explanation="An A2DP stream carries audio only after AVDTP START. A stream left "
            "open without START is normal while nothing plays, but if audio was expected the "
            f"{a.host} held the stream back (another audio route won, e.g. a call or HFP) or the "
            "headset never asked for it.",
            fix=f"If music was playing, check the audio output route of {a.host} and that media "
            "audio is enabled for this device in its Bluetooth settings.",
            address=st.address,
            connection=st.connection,
            time_us=ref.time_us,
            frames=[ref.frame] + ([started.frame] if started else []),
            details={"codec": st.codec, "state": ref.state, "started_late": bool(started)},
        )
