"""The audio view (issue 21): A2DP media packet rate and SCO/eSCO packet rate over time (binned),
the streams' states (streaming shaded), media gaps, delay reports, codec changes (AVDTP
SET_CONFIGURATION / RECONFIGURE accepted, HFP +BCS) and the audio findings (stalls, fallbacks)
marked — on one shared time axis, seconds from the capture start.

The rates need each media / SCO frame's time: they come from the packet table (the capture
file read again, :mod:`analyzer.dashboards.packets`); without it (the file is gone) the view
draws what the stored analysis has: states, gaps, delay reports, codec changes, findings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from analyzer.model import Analysis

#: at most this many bins on the time axis (the figure stays small for any capture length)
MAX_BINS = 1500
AUDIO_FINDINGS = ("a2dp", "avdtp", "hfp", "sco", "audio", "media", "codec", "latency")
RED = "#c62828"


def bin_width(duration_s: float) -> float:
    """Seconds per bin: 0.1 s, or coarser so that the capture fits in MAX_BINS bins."""
    return max(0.1, duration_s / MAX_BINS)


def rate(times_s: np.ndarray, width: float, span: float) -> tuple[np.ndarray, np.ndarray]:
    """(bin start times, packets per second in each bin)."""
    n = max(1, int(np.ceil(span / width)))
    counts = np.bincount(np.clip((times_s / width).astype(np.int64), 0, n - 1), minlength=n)
    return np.arange(n) * width, counts / width


def _rel(a: Analysis, t: int | None) -> float | None:
    return None if t is None else (t - (a.capture.first_time_us or 0)) / 1e6


def _band(x0: float, x1: float, colour: str) -> dict[str, Any]:
    """A shaded time interval over the first row (the media rate)."""
    return {
        "type": "rect",
        "xref": "x",
        "yref": "y domain",
        "x0": x0,
        "x1": x1,
        "y0": 0,
        "y1": 1,
        "fillcolor": colour,
        "line_width": 0,
        "layer": "below",
    }


def audio_figure(a: Analysis, table: Any | None = None) -> Any:
    """The audio figure: rows A2DP media packets/s, SCO packets/s, delay reports (ms)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    span = a.capture.duration_s or 0.0
    width = bin_width(span)
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.45, 0.3, 0.25],
        subplot_titles=("A2DP media packets/s", "SCO/eSCO packets/s", "delay reports (ms)"),
    )
    df = table.df if table is not None else None
    shapes: list[dict[str, Any]] = []  # set at once: add_vrect per shape is quadratic
    for s in a.avdtp.streams:
        label = f"{s.codec or 'stream'} {a.device_label(s.address)} SEID {s.acp_seid}"
        if df is not None:
            ts = df.filter(
                (pl.col("protocol") == "AVDTP media")
                & (pl.col("connection") == (s.connection or ""))
            )["time_s"]
            x, y = rate(ts.to_numpy(), width, span)
            fig.add_trace(
                go.Scatter(x=x, y=y, mode="lines", name=f"media: {label}", line={"shape": "hv"}),
                row=1,
                col=1,
            )
        # streaming intervals shaded, from the stream's states
        states = [(st.state, _rel(a, st.time_us)) for st in s.states]
        for i, (state, at) in enumerate(states):
            if state != "streaming" or at is None:
                continue
            end = next((t for _, t in states[i + 1 :] if t is not None), span)
            shapes.append(_band(at, end, "rgba(46,125,50,0.08)"))
        for g in s.media_gaps:
            at = _rel(a, g.time_us) or 0.0
            shapes.append(_band(at, at + g.gap_ms / 1000, "rgba(198,40,40,0.25)"))
        if s.delay_reports:
            fig.add_trace(
                go.Scatter(
                    x=[_rel(a, d.time_us) for d in s.delay_reports],
                    y=[d.delay_ms for d in s.delay_reports],
                    mode="markers+lines",
                    name=f"delay: {label}",
                    customdata=[d.frame for d in s.delay_reports],
                ),
                row=3,
                col=1,
            )
    for c in a.connections:
        if c.transport not in ("sco", "esco") or df is None:
            continue
        ts = df.filter(pl.col("connection") == c.id)["time_s"]
        if ts.is_empty():
            continue
        x, y = rate(ts.to_numpy(), width, span)
        codec = c.sco.codec if c.sco and c.sco.codec else c.transport
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                line={"shape": "hv"},
                name=f"{c.transport} {codec} {a.device_label(c.address)}",
            ),
            row=2,
            col=1,
        )
    marks: list[tuple[float, str, str]] = []  # (time, text, colour)
    for v in a.avdtp.signals:
        if v.signal in ("SET_CONFIGURATION", "RECONFIGURE") and v.response == "accept":
            at = _rel(a, v.response_time_us or v.command_time_us)
            if at is not None:
                marks.append((at, f"{v.signal} {v.details.codec or ''}".strip(), "#1565c0"))
    for h in a.hfp:
        if h.codec_frame is not None:
            at_time = next(
                (x.time_us for x in h.at if h.codec_frame in (x.frame, x.result_frame)), None
            )
            at = _rel(a, at_time)
            if at is not None:
                marks.append((at, f"HFP codec {h.codec_name or h.codec}", "#6a1b9a"))
    for f in a.findings:
        if f.time_us is not None and any(k in f.id for k in AUDIO_FINDINGS):
            at = _rel(a, f.time_us)
            if at is not None:
                marks.append(
                    (at, f"{f.id}: {f.message}", RED if f.severity == "error" else "#ef6c00")
                )
    if marks:
        fig.add_trace(
            go.Scatter(
                x=[m[0] for m in marks],
                y=[0] * len(marks),
                mode="markers",
                name="events",
                marker={"symbol": "diamond", "size": 12, "color": [m[2] for m in marks]},
                text=[m[1] for m in marks],
                hoverinfo="text+x",
            ),
            row=1,
            col=1,
        )
    fig.update_layout(shapes=shapes)
    fig.update_layout(
        height=620,
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
        legend_orientation="h",
        hovermode="closest",
    )
    fig.update_xaxes(title_text="seconds from the capture start", row=3, col=1)
    return fig


__all__ = ["audio_figure", "bin_width", "rate"]
