"""The swimlane timeline (issue 19 item 4) without a browser: lanes and states built from the
stored analysis of scenario captures, per-pixel bucketing bounds, the figure's size on large
analyses, idle-gap compression, incident focus, and its callbacks through Dash's HTTP endpoint."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("dash")

from analyzer.dashboards import swimlane as sw
from analyzer.model import Analysis, Finding, TimelineEvent
from tests.conftest import analysis_of
from tests.dashboards.test_callbacks import _call, stored_app

SC = Path(__file__).resolve().parents[2] / "captures" / "scenarios"
BENCH = Path("/tmp/bench/a2dp_100k.btsnoop")
LIMIT = 2_000_000  # bytes: the bound on any figure sent to the browser


def _analysis(name: str) -> Analysis:
    a = analysis_of(SC / f"{name}.btsnoop")
    assert isinstance(a, Analysis), a
    return a


def _intervals(m: sw.LaneModel, kind: str) -> list[tuple[str, float, float, int, int]]:
    k = sw.KINDS.index(kind)
    return [
        (m.lanes[int(m.iv_lane[i])].key, float(m.iv_start[i]), float(m.iv_end[i]),
         int(m.iv_frame[i]), int(m.iv_end_frame[i]))
        for i in np.flatnonzero(m.iv_kind == k)
    ]  # fmt: skip


def test_a2dp_states_start_and_end_at_their_frames() -> None:
    a = _analysis("a2dp_sbc_clean")
    m = sw.lane_model(a)
    (start,) = [s for s in a.avdtp.signals if s.signal == "START" and s.response == "accept"]
    (streaming,) = _intervals(m, "A2DP streaming")
    lane, t0, t1, f0, f1 = streaming
    assert f0 == start.response_frame  # streaming from the START accept
    (suspend,) = [s for s in a.avdtp.signals if s.signal == "SUSPEND"]
    assert f1 == suspend.response_frame  # … to the SUSPEND accept
    assert t1 == pytest.approx(suspend.response_time_us - (a.capture.first_time_us or 0))
    assert t0 == pytest.approx(start.response_time_us - (a.capture.first_time_us or 0))
    assert [x[3] for x in _intervals(m, "A2DP suspended")] == [suspend.response_frame]
    assert {x[3] for x in _intervals(m, "A2DP configured")} and _intervals(m, "A2DP open")
    (conn,) = a.connections
    (link,) = _intervals(m, "connection")
    assert (link[3], link[4]) == (conn.start_frame, conn.end_frame)  # complete → disconnection
    # grouped device → link → channel / profile: the stream's lane sits under the link's
    keys = [ln.key for ln in m.lanes]
    dev, acl = f"dev:{conn.address}", f"link:{conn.address}:br_edr"
    assert keys.index(dev) < keys.index(acl) < keys.index(lane)
    assert lane.startswith(acl) and m.lanes[keys.index(lane)].level == 2
    assert {f"{acl}:SDP", f"{acl}:L2CAP AVDTP", f"{acl}:pairing"} <= set(keys)
    # hover texts name the frames
    fig = sw.figure(a)
    (bar,) = [t for t in fig.data if t.name == "A2DP streaming"]
    assert f"#{start.response_frame}" in bar.hovertext[0] and bar.customdata[0] == f0


def test_hfp_sco_and_advertising_lanes() -> None:
    a = _analysis("hfp_call_msbc")
    m = sw.lane_model(a)
    (hs,) = a.hfp
    assert [x[3] for x in _intervals(m, "HFP SLC")] == [hs.slc_frame]
    (sco,) = [c for c in a.connections if c.transport in ("sco", "esco")]
    (link,) = _intervals(m, "SCO/eSCO")
    assert link[0].endswith(":SCO/eSCO") and link[3] == sco.start_frame
    assert _intervals(m, "call")
    le = _analysis("le_adv_silence_50")
    m2 = sw.lane_model(le)
    silences = [s for x in le.advertisers for s in x.silences]
    assert silences
    got = _intervals(m2, "advertising silence")
    assert sorted(x[3] for x in got) == sorted(s.from_frame for s in silences)
    assert len(_intervals(m2, "advertising")) == sum(len(x.segments) for x in le.advertisers)


def _dense(base: Analysis, events: int, findings: int) -> Analysis:
    """``base`` with ``events`` extra timeline events on its links and the controller, and
    ``findings`` findings, spread over an hour (a large capture's model)."""
    a = Analysis.from_json(base.to_json())
    rnd = random.Random(7)
    t0 = a.capture.first_time_us or 0
    lanes = [c.id for c in a.connections] + ["controller"]
    span = 3_600_000_000
    times = sorted(rnd.randrange(span) for _ in range(events))
    a.timeline += [
        TimelineEvent(t0 + t, 10_000 + i, lanes[i % len(lanes)], "avdtp", f"AVDTP DELAYREPORT {i}",
                      "warning" if i % 97 == 0 else "info")
        for i, t in enumerate(times)
    ]  # fmt: skip
    a.findings += [
        Finding("x_rule", "warning", "t", f"m {i}", "e", "f", connection=lanes[0],
                time_us=t0 + rnd.randrange(span), frames=[10_000 + i])
        for i in range(findings)
    ]  # fmt: skip
    a.capture.last_time_us = t0 + span
    return a


def test_bucketing_bounds_and_size() -> None:
    a = _dense(_analysis("a2dp_sbc_clean"), 300_000, 5_000)
    width = 600
    fig = sw.figure(a, width=width)
    per_lane: dict[int, int] = {}
    for tr in fig.data:
        if tr.type == "scatter" and tr.name.endswith("events"):
            for y in tr.y:
                per_lane[y] = per_lane.get(y, 0) + 1
    assert per_lane and max(per_lane.values()) <= width  # at most one mark per pixel per lane
    merged = [t for tr in fig.data if tr.name == "info events" for t in tr.text]
    assert any(" events, frames #" in t for t in merged)  # the hover counts what it merged
    assert len(fig.to_json()) < LIMIT
    # a narrow window shows single events again, each with its frame
    win = (1000.0, 1000.5)
    zoom = sw.figure(a, window=win, width=width)
    pts = [x for tr in zoom.data if tr.name == "info events" for x in tr.x]
    assert pts and all(win[0] <= x <= win[1] for x in pts)
    texts = [t for tr in zoom.data if tr.name == "info events" for t in tr.text]
    assert all(t.startswith("#") for t in texts)
    # the whole budget holds even at a huge width
    assert len(sw.figure(a, width=20_000).to_json()) < LIMIT


def test_many_dense_lanes_stay_small() -> None:
    """300 lanes of dense events (100 devices, each a link with its channels): the lanes beyond
    the cap are left out (and said so), the marks bucketed coarser, the figure under 2 MB."""
    import dataclasses

    a = Analysis.from_json(_analysis("a2dp_sbc_clean").to_json())
    rnd = random.Random(3)
    t0, span = a.capture.first_time_us or 0, 3_600_000_000
    first = a.connections[0]
    text = "AVDTP DELAYREPORT (remote) with a long text to fill the hover " * 3
    for k in range(100):
        c = dataclasses.replace(first, id=f"acl-x-{k}", address=f"00:11:22:33:44:{k:02X}",
                                start_time_us=t0, end_time_us=t0 + span)  # fmt: skip
        a.connections.append(c)
        a.timeline += [TimelineEvent(t0 + rnd.randrange(span), 10_000 + k * 1000 + i, c.id,
                                     "avdtp", text) for i in range(1000)]  # fmt: skip
    a.timeline.sort(key=lambda e: e.time_us)
    a.capture.last_time_us = t0 + span
    fig = sw.figure(a, width=2000)
    assert len(fig.layout.yaxis.ticktext) == sw.MAX_LANES
    assert "more lanes not drawn" in fig.layout.legend.title.text
    marks = sum(len(t.x) for t in fig.data if t.x is not None)
    assert marks <= sw.MAX_MARKS
    assert len(fig.to_json()) < LIMIT


def test_benchmark_capture_figure_is_small() -> None:
    if not BENCH.is_file():
        pytest.skip(f"{BENCH} not present (python -m benchmarks.gen_a2dp_btsnoop)")
    a = analysis_of(BENCH)
    assert isinstance(a, Analysis)
    for fig in (sw.figure(a), sw.figure(a, compress=True), sw.overview(a)):
        assert len(fig.to_json()) < LIMIT
    assert any(t.name == "A2DP streaming" for t in sw.figure(a).data)


def test_idle_gaps_collapse_and_ticks_keep_true_times() -> None:
    a = _analysis("periodic_disconnect")
    m = sw.lane_model(a)
    plain, packed = sw.axis(m), sw.axis(m, compress=True)
    assert not plain.gaps and packed.gaps
    assert float(packed.x(m.t_end)) < float(plain.x(m.t_end))  # shorter
    for t in (0.0, m.t_end / 3, m.t_end):
        assert packed.t(float(packed.x(t))) == pytest.approx(t, abs=1.0)  # µs round trip
    fig = sw.figure(a, compress=True)
    assert fig.layout.xaxis.tickvals and fig.layout.xaxis.ticktext
    for x, label in zip(fig.layout.xaxis.tickvals, fig.layout.xaxis.ticktext, strict=True):
        assert packed.t(x) / 1e6 == pytest.approx(float(label), abs=0.06)
    # a zoom on the compressed axis is a window in true seconds
    g0, g1 = packed.gaps[0]
    x0, x1 = float(packed.x(g0 - 1e6)), float(packed.x(g1 + 1e6))
    got = sw.window_from_relayout(a, {"xaxis.range[0]": x0, "xaxis.range[1]": x1}, True)
    assert isinstance(got, tuple)
    assert got[0] == pytest.approx((g0 - 1e6) / 1e6, abs=1e-3)
    assert got[1] == pytest.approx((g1 + 1e6) / 1e6, abs=1e-3)
    assert sw.window_from_relayout(a, {"xaxis.autorange": True}, True) is None
    assert sw.window_from_relayout(a, {"autosize": True}, True) == "same"


def test_incident_focus_pins_and_url_window() -> None:
    a = _analysis("link_loss")
    assert a.incidents
    (lo, hi), marks = sw.focus_window(a, "I0")
    m = sw.lane_model(a)
    frames = {f for f, _ in marks}
    assert frames and all(lo <= m.frame_time(f) / 1e6 <= hi for f in frames)
    fig = sw.figure(a, window=(lo, hi), highlight=marks)
    assert list(fig.layout.xaxis.range) == pytest.approx([lo, hi])
    assert fig.data[1].name == "highlight" and len(fig.data[1].x) == len(marks)
    assert sw.parse_window("1.5", "0.5") == (0.5, 1.5)
    assert sw.parse_window("x", "1") is None and sw.parse_window(None, None) is None
    # a pinned lane is drawn first
    last = m.lanes[-1].key
    pinned = sw.figure(a, pinned=[last])
    assert pinned.layout.yaxis.ticktext[0].startswith("(pinned)")
    assert sw.lane_order(m, [last])[0] == len(m.lanes) - 1
    # the URL's window, compression and pins open the section as they were
    query = {"t0": ["1.25"], "t1": ["2.5"], "gaps": ["1"], "pin": [f"{last}|nonsense"]}
    found = _by_id(sw.section(a, "cid", query, None))
    assert found["swim-window"].data == [1.25, 2.5]
    assert found["swim-compress"].value == ["on"] and found["swim-pin"].value == [last]
    fig2 = found["swimlane"].figure
    assert fig2.layout.yaxis.ticktext[0].startswith("(pinned)")
    assert "idle gaps collapsed" in fig2.layout.xaxis.title.text


def _by_id(component: Any) -> dict[str, Any]:
    """Every component with a string id in a layout tree, by id."""
    out: dict[str, Any] = {}
    stack = [component]
    while stack:
        c = stack.pop()
        if isinstance(getattr(c, "id", None), str):
            out[c.id] = c
        kids = getattr(c, "children", None)
        stack += kids if isinstance(kids, list) else [kids] if kids is not None else []
    return out


def _post(*args: Any) -> dict[str, Any]:
    return _call(*args).get("response", {})  # type: ignore[no-any-return]


def test_callbacks_window_render_and_measure(tmp_path: Path) -> None:
    app, store, cid, _src = stored_app(tmp_path, "link_loss")
    client = app.server.test_client()
    a = store.analysis(cid)
    page = client.get(f"/capture/{cid}")
    assert page.status_code == 200
    focus = [[({"type": "swim-focus", "index": f"I{i}"}, "n_clicks", 0)
              for i in range(len(a.incidents))]]  # fmt: skip
    focus[0] += [({"type": "swim-focus", "index": f"F{i}"}, "n_clicks", 0)
                 for i in range(len(a.findings))]  # fmt: skip
    win_out = [("swim-window", "data"), ("swim-highlight", "data")]

    def window(relayout: Any = None, clicks: Any = None, changed: str = "swimlane.relayoutData",
               selected: Any = None, click: Any = None, current: Any = None
               ) -> dict[str, Any]:  # fmt: skip
        return _post(client, win_out, [
            ("swimlane", "relayoutData", relayout), ("swimlane-overview", "selectedData", selected),
            ("swimlane-overview", "clickData", click), clicks or focus[0],
            ("swim-reset", "n_clicks", 1 if changed.startswith("swim-reset") else 0)],
            [("swim-window", "data", current), ("swim-compress", "value", []),
             ("swim-cid", "data", cid)], changed)  # fmt: skip

    # the overview: a drag across it is the window, a click moves the window there
    got = window(selected={"range": {"x": [4.0, 2.0]}, "points": []},
                 changed="swimlane-overview.selectedData")  # fmt: skip
    assert got["swim-window"]["data"] == [2.0, 4.0]
    got = window(selected={"range": {"x": [2.0, 4.0]}}, click={"points": [{"x": 7.0}]},
                 current=[2.0, 4.0], changed="swimlane-overview.clickData")  # fmt: skip
    assert got["swim-window"]["data"] == [6.0, 8.0]
    assert (
        window(
            current=[2.0, 4.0],
            click={"points": [{"x": 7.0}]},
            changed="swimlane-overview.selectedData",
        )
        == {}
    )  # a selection cleared
    got = window(current=[2.0, 4.0], changed="swim-reset.n_clicks")
    assert got["swim-window"]["data"] is None and got["swim-highlight"]["data"] is None
    # a zoom on the graph: its range is the new window
    got = window({"xaxis.range[0]": 1.0, "xaxis.range[1]": 2.5})
    assert got["swim-window"]["data"] == [1.0, 2.5]
    assert window({"autosize": True}) == {}  # nothing about the x axis: no update
    # an incident's button: the window around its frames, the frames to highlight
    clicks = [(i, p, 1 if i["index"] == "I0" else 0) for i, p, _ in focus[0]]
    got = window(clicks=clicks, changed='{"index":"I0","type":"swim-focus"}.n_clicks')
    lo, hi = got["swim-window"]["data"]
    assert [lo, hi] == list(sw.focus_window(a, "I0")[0])
    hl = got["swim-highlight"]["data"]
    assert hl["key"] == "I0" and hl["marks"]
    # the window's render: the figure's range is the window, the overview's band patched
    out = _post(
        client,
        [("swimlane", "figure"), ("swimlane-overview", "figure"), ("swim-note", "children")],
        [("swim-window", "data", [lo, hi]), ("swim-highlight", "data", hl),
         ("swim-compress", "value", []), ("swim-pin", "value", [])],
        [("swim-cid", "data", cid), ("swim-px", "data", 800), ("packet-selected", "data", None)],
        "swim-window.data",
    )  # fmt: skip
    fig = out["swimlane"]["figure"]
    assert fig["layout"]["xaxis"]["range"] == pytest.approx([lo, hi])
    assert "Highlighted: I0" in out["swim-note"]["children"]
    assert len(json.dumps(out)) < LIMIT
    # Δt: two clicks on marks carrying frames
    f1, f2 = a.timeline[2].frame, a.timeline[-1].frame
    measure_out = [("swim-dt", "children"), ("swim-measure", "data"), ("swimlane", "figure")]

    def click(frame: int, held: Any) -> dict[str, Any]:
        return _post(client, measure_out,
                     [("swimlane", "clickData", {"points": [{"customdata": frame, "y": 3}]})],
                     [("swim-measure", "data", held), ("swim-cid", "data", cid),
                      ("swim-compress", "value", [])], "swimlane.clickData",
                     next(k for k in app.callback_map if "swim-dt.children" in k))  # fmt: skip

    first = click(f1, None)
    held = first["swim-measure"]["data"]
    assert "click another" in first["swim-dt"]["children"]
    second = click(f2, held)
    text = second["swim-dt"]["children"]
    dt = (a.timeline[-1].time_us - a.timeline[2].time_us) / 1e6
    assert f"{dt:+.6f} s" in text and f"{f2 - f1} frames apart" in text


def _find_store(tree: Any, key: str) -> Any:
    """A component's props in a page's JSON layout (the route callback's answer), by id."""
    stack = [tree]
    while stack:
        c = stack.pop()
        if isinstance(c, list):
            stack += c
        elif isinstance(c, dict):
            props = c.get("props", {})
            if props.get("id") == key:
                return props
            stack.append(props.get("children"))
    return None


def test_frame_link_opens_the_timeline_on_its_frame(tmp_path: Path) -> None:
    """An evidence link (``?frame=N``, no window in the URL) opens the timeline centred on the
    frame's time, its marks ringed and its dotted line drawn; a window in the URL wins; the route
    renders the page again for a frame link after the timeline wrote its window into the URL."""
    a = _analysis("link_loss")
    m = sw.lane_model(a)
    end = m.t_end / 1e6
    width = min(end, max(sw.FRAME_WINDOW_S, sw.FRAME_WINDOW_FRACTION * end))
    ev = a.timeline[len(a.timeline) // 2]
    at = m.frame_time(ev.frame) / 1e6
    lo, hi = sw.frame_window(a, ev.frame) or (0.0, 0.0)
    assert hi - lo == pytest.approx(width, abs=1e-5) and 0 <= lo <= at <= hi <= end + 1e-6
    if lo > 0 and hi < end:  # not clipped: centred
        assert (lo + hi) / 2 == pytest.approx(at, abs=1e-5)
    first = sw.frame_window(a, 1) or (1.0, 0.0)  # clipped to the capture, the same width
    assert first[0] == 0 and first[1] == pytest.approx(width, abs=1e-5)
    last = sw.frame_window(a, a.capture.frames) or (0.0, 0.0)
    assert last[1] == pytest.approx(end, abs=1e-5)
    rings = sw.frame_marks(a, ev.frame)
    assert rings and {k for _, k in rings} <= set(m.index)
    found = _by_id(sw.section(a, "cid", {"frame": [str(ev.frame)]}, ev.frame))
    assert found["swim-window"].data == [lo, hi]
    assert found["swim-highlight"].data["marks"] == [list(x) for x in rings]
    fig = found["swimlane"].figure
    assert list(fig.layout.xaxis.range) == pytest.approx([lo, hi])
    assert fig.data[1].name == "highlight" and len(fig.data[1].x) == len(rings)
    assert [s.x0 for s in fig.layout.shapes] == pytest.approx([at], abs=1e-5)  # the dotted line
    assert "Highlighted: frame" in found["swim-note"].children
    # a window in the URL wins over the frame's
    both = _by_id(sw.section(a, "cid", {"frame": [str(ev.frame)], "t0": ["0.5"], "t1": ["1"]},
                             ev.frame))  # fmt: skip
    assert both["swim-window"].data == [0.5, 1.0]

    # through the page's route, as a dcc.Link click changes the URL
    app, store, cid, _src = stored_app(tmp_path, "link_loss")
    client = app.server.test_client()
    b = store.analysis(cid)
    frame = b.timeline[len(b.timeline) // 2].frame

    def route(search: str, written: str | None, changed: str = "url.search") -> Any:
        got = _call(client, [("page", "children")],
                    [("url", "pathname", f"/capture/{cid}"), ("url", "search", search)],
                    [("url-written", "data", written)], changed)  # fmt: skip
        return got.get("response", {}).get("page", {}).get("children")

    page = route(f"?frame={frame}", None)
    assert _find_store(page, "swim-window")["data"] == list(sw.frame_window(b, frame) or [])
    assert _find_store(page, "packet-selected")["data"] == frame  # the cursor stays on re-draws
    # the timeline wrote its window (replaceState, then told dcc.Location): nothing re-rendered
    zoomed = f"?frame={frame}&t0=0.1&t1=0.2"
    assert route(zoomed, f"/capture/{cid}{zoomed}") is None
    # the same frame's link clicked after that zoom: a new search, the frame's window again
    again = route(f"?frame={frame}", f"/capture/{cid}{zoomed}")
    assert _find_store(again, "swim-window")["data"] == list(sw.frame_window(b, frame) or [])
    # back to a page whose URL the timeline wrote: the path changed too, so it is rendered
    assert route(zoomed, f"/capture/{cid}{zoomed}", "url.pathname") is not None
