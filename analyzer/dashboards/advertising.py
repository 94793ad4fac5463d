"""The advertising view (issue 21): per advertiser, its heard events over time with the
segments (one advertising interval each) and silences the analysis found, the scanner's scan
sessions drawn behind with their duty cycle (a low duty cycle is visible); for one advertiser,
the gap histogram with the estimated interval and the 0–10 ms advDelay band (Core Vol 6 Part B
§4.4.2.2.1: the time between events is advInterval + advDelay) marked, and RSSI over time.

Segments, silences, the histogram, the interval and the scan parameters come from the stored
analysis; each heard report (its time and RSSI) from the capture's file through the packet table
(:meth:`analyzer.dashboards.packets.PacketTable.reports`). Without the file the view draws the
segments and silences only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from analyzer.model import Advertiser, Analysis

#: advertisers drawn in the overview (the most heard first)
MAX_ADVERTISERS = 25
#: heard-event markers per advertiser at most (events within one bucket drawn once)
MAX_POINTS = 3000
SEGMENT_COLOURS = ("#1565c0", "#00897b", "#6a1b9a", "#ef6c00", "#5d4037")
RED = "#c62828"


def scanner_note(a: Analysis) -> str | None:
    """Say where the reports come from: a host's scanner hears only inside its scan windows."""
    if not any(x.source == "hci" for x in a.advertisers):
        return None
    duty = sorted({p.duty_cycle for p in a.advertising.scan_parameters if p.duty_cycle})
    how = ""
    if duty:
        how = f", scan duty cycle {duty[0]:.0%}" + (f"–{duty[-1]:.0%}" if len(duty) > 1 else "")
    return (
        f"Heard through the host's own scanner (HCI advertising reports{how}), not a sniffer: "
        "an advertiser is heard only inside the scan windows, so gaps and missing events can "
        "be the scanner's, not the advertiser's."
    )


def ranked(a: Analysis) -> list[Advertiser]:
    return sorted(a.advertisers, key=lambda x: -x.events)[:MAX_ADVERTISERS]


def _label(x: Advertiser) -> str:
    return f"{x.name} ({x.address})" if x.name else x.address


def thin(times: np.ndarray, span: float, n: int = MAX_POINTS) -> np.ndarray:
    """The times, at most one per bucket of ``span / n`` seconds (what a pixel can show)."""
    if times.size <= n or span <= 0:
        return times
    keys = np.clip((times / (span / n)).astype(np.int64), 0, n - 1)
    _, first = np.unique(keys, return_index=True)
    return times[np.sort(first)]


def rssi_points(rep: pl.DataFrame, span: float, n: int = MAX_POINTS) -> pl.DataFrame:
    """RSSI over time, at most ``2 n`` points: beyond ``n`` reports, each of ``n`` time buckets
    keeps its lowest and highest reading (the spread a pixel column shows)."""
    if rep.height <= n or span <= 0:
        return rep.select("time_s", "rssi")
    b = (pl.col("time_s") / (span / n)).floor().cast(pl.Int64).alias("bucket")
    g = (
        rep.with_columns(b)
        .group_by("bucket")
        .agg(
            pl.col("time_s").first(),
            pl.col("rssi").min().alias("lo"),
            pl.col("rssi").max().alias("hi"),
        )
    )
    return (
        pl.concat(
            [
                g.select("time_s", pl.col("lo").alias("rssi")),
                g.select("time_s", pl.col("hi").alias("rssi")),
            ]
        )
        .unique()
        .sort("time_s")
    )


def _frame_times(table: Any | None, frames: list[int]) -> dict[int, float]:
    if table is None or not frames:
        return {}
    got = table.df.filter(pl.col("frame").is_in(frames)).select("frame", "time_s")
    return dict(zip(got["frame"].to_list(), got["time_s"].to_list(), strict=True))


def overview_figure(a: Analysis, table: Any | None = None) -> Any:
    """Advertisers (rows) over time: heard events as ticks, segments as bars coloured by
    interval, silences as red bars; the scan sessions shaded behind."""
    import plotly.graph_objects as go

    t0 = a.capture.first_time_us or 0
    span = a.capture.duration_s or 0.0
    advs = ranked(a)
    fig = go.Figure()
    reports = table.reports() if table is not None else None
    rows = [_label(x) for x in advs]
    for i, x in enumerate(advs):
        y = rows[i]
        for k, s in enumerate(x.segments):
            iv = f"{s.interval_ms:.1f} ms" if s.interval_ms else "interval unknown"
            fig.add_trace(
                go.Scatter(
                    x=[(s.from_time_us - t0) / 1e6, (s.to_time_us - t0) / 1e6],
                    y=[y, y],
                    mode="lines",
                    line={"width": 10, "color": SEGMENT_COLOURS[k % 5]},
                    opacity=0.35,
                    name=f"segment {iv}",
                    legendgroup="segments",
                    showlegend=False,
                    hovertext=f"{_label(x)}: segment, {iv}, {s.events} events, "
                    f"confidence {s.confidence:.2f}",
                    hoverinfo="text",
                )
            )
        for sil in x.silences:
            fig.add_trace(
                go.Scatter(
                    x=[(sil.from_time_us - t0) / 1e6, (sil.to_time_us - t0) / 1e6],
                    y=[y, y],
                    mode="lines",
                    line={"width": 10, "color": RED},
                    name="silence",
                    legendgroup="silences",
                    showlegend=False,
                    hovertext=f"{_label(x)}: silent {sil.duration_ms / 1000:.1f} s"
                    + (f" (scan duty {sil.scan_duty_cycle:.0%})" if sil.scan_duty_cycle else ""),
                    hoverinfo="text",
                )
            )
        if reports is not None:
            ts = reports.filter(pl.col("address") == x.address)["time_s"].to_numpy()
            ts = thin(np.sort(ts), span)
            fig.add_trace(
                go.Scatter(
                    x=ts,
                    y=[y] * ts.size,
                    mode="markers",
                    name="heard",
                    legendgroup="heard",
                    showlegend=False,
                    marker={"symbol": "line-ns-open", "size": 9, "color": "#263238"},
                    hoverinfo="x",
                )
            )
    sessions = a.advertising.scan_sessions
    edges = [f for ss in sessions for f in (ss.start_frame, ss.end_frame) if f is not None]
    times = _frame_times(table, edges)
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    last_duty: str | None = None
    for ss in sessions:  # shapes set at once: add_vrect per session is quadratic in plotly
        x0 = times.get(ss.start_frame)
        if x0 is None:
            continue
        x1 = times.get(ss.end_frame or -1, span)
        d = [
            p.duty_cycle
            for p in a.advertising.scan_parameters
            if p.frame <= ss.start_frame and p.duty_cycle
        ]
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": x0,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "fillcolor": "rgba(21,101,192,0.07)",
                "line_width": 0,
                "layer": "below",
            }
        )
        text = f"scanning{f' {d[-1]:.0%} duty' if d else ''}"
        if text != last_duty:  # labelled where the duty cycle changes
            notes.append(
                {
                    "x": x0,
                    "y": 1,
                    "xref": "x",
                    "yref": "paper",
                    "text": text,
                    "showarrow": False,
                    "xanchor": "left",
                    "yanchor": "bottom",
                }
            )
            last_duty = text
    fig.update_layout(shapes=shapes, annotations=notes)
    # the legend: one entry per kind
    for name, colour, dash in (
        ("segment (one interval)", SEGMENT_COLOURS[0], None),
        ("silence", RED, None),
        ("heard event", "#263238", None),
    ):
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name=name,
                line={"color": colour, "width": 6, "dash": dash},
            )
        )
    fig.update_layout(
        height=max(240, 80 + 30 * len(advs)),
        margin={"l": 10, "r": 10, "t": 30, "b": 30},
        xaxis_title="seconds from the capture start",
        legend_orientation="h",
        yaxis={"categoryorder": "array", "categoryarray": rows[::-1]},
    )
    return fig


def detail_figure(a: Analysis, address: str, table: Any | None = None) -> Any:
    """One advertiser: the gap histogram with the interval estimate and the +0–10 ms advDelay
    band, and RSSI over time (when the reports can be read)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x = next((v for v in a.advertisers if v.address == address), None)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.5, 0.5],
        subplot_titles=("gaps between heard events (ms)", "RSSI (dBm)"),
    )
    if x is None:
        return fig
    h = x.gap_histogram
    if h is not None and h.counts:
        mids = [(lo + hi) / 2 for lo, hi in zip(h.edges_ms[:-1], h.edges_ms[1:], strict=False)]
        widths = [hi - lo for lo, hi in zip(h.edges_ms[:-1], h.edges_ms[1:], strict=False)]
        fig.add_trace(
            go.Bar(x=mids, y=h.counts, width=widths, name="gaps", marker_color="#546e7a"),
            row=1,
            col=1,
        )
    intervals = sorted(
        {s.interval_ms for s in x.segments if s.interval_ms}
        or ({x.interval_ms} if x.interval_ms else set())
    )
    for iv in intervals:
        fig.add_vrect(
            x0=iv, x1=iv + 10, fillcolor="rgba(21,101,192,0.18)", line_width=0, row=1, col=1
        )
        fig.add_vline(
            x=iv,
            line_color="#1565c0",
            line_width=2,
            row=1,
            col=1,
            annotation_text=f"interval {iv:.1f} ms (+0–10 ms advDelay)",
            annotation_position="top right",
        )
    if table is not None:
        rep = rssi_points(
            table.reports().filter(pl.col("address") == address), a.capture.duration_s or 0.0
        )
        fig.add_trace(
            go.Scattergl(
                x=rep["time_s"].to_list(),
                y=rep["rssi"].to_list(),
                mode="markers",
                marker={"size": 4},
                name="RSSI",
            ),
            row=1,
            col=2,
        )
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
        showlegend=False,
        title={"text": _label(x), "x": 0.01},
    )
    fig.update_xaxes(title_text="seconds from the capture start", row=1, col=2)
    return fig


__all__ = ["detail_figure", "overview_figure", "ranked", "scanner_note", "thin"]
