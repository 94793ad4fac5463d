"""The capture page's part-2 sections (issue 21): procedure sequence charts with device and
procedure selection, the A2DP negotiation matrix — built from the stored analysis — and their
callbacks. URL state: ``?seq=<key>`` selects a sequence chart (``?frame=N`` and ``?device=``
as on the rest of the page)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from analyzer.dashboards import negotiation, path_parts, url
from analyzer.dashboards import sequences as seqs
from analyzer.model import Analysis

ERROR_RED = seqs.COLOURS["error"]


def _href(cid: str, **params: str | int | None) -> str:
    qs = "&".join(f"{k}={quote(str(v))}" for k, v in params.items() if v is not None)
    return url(f"/capture/{cid}") + (f"?{qs}" if qs else "")


def _first(v: list[str] | None) -> str | None:
    return v[0] if v else None


def default_sequence(all_seqs: list[seqs.Sequence]) -> seqs.Sequence | None:
    """The chart shown first: one with an error, else one with a missing step, else the first."""
    for test in (lambda s: s.errors, lambda s: s.ghosts, lambda s: True):
        got = [s for s in all_seqs if test(s)]
        if got:
            return got[0]
    return None


def steps_list(a: Analysis, cid: str, s: seqs.Sequence) -> Any:
    """The chart's messages as a list with frame links (and classes ok / error / ghost)."""
    from dash import dcc, html

    t0 = a.capture.first_time_us or 0
    items = []
    for m in s.messages:
        when = f" {(m.time_us - t0) / 1e6:.6f} s" if m.time_us is not None else ""
        link: Any = (
            dcc.Link(f"#{m.frame}", href=_href(cid, frame=m.frame, seq=s.key), className="evidence")
            if m.frame is not None
            else html.I("never seen")
        )
        items.append(
            html.Li(
                [
                    f"{m.src} → {m.dst}: ",
                    html.B(m.label),
                    " ",
                    link,
                    when,
                    f" — {m.detail}" if m.detail else "",
                ],
                className=f"msg {m.kind}",
                style={
                    "color": seqs.COLOURS[m.kind],
                    "fontStyle": "italic" if m.kind == "ghost" else "normal",
                },
            )
        )
    if s.truncated:
        items.append(html.Li(f"… {s.truncated} more messages not shown"))
    return html.Ol(items, id="seq-steps", style={"fontSize": "13px"})


def procedures_section(a: Analysis, cid: str, query: dict[str, list[str]]) -> Any:
    from dash import dcc, html

    device = _first(query.get("device"))
    all_seqs = seqs.sequences(a)
    wanted = _first(query.get("seq"))
    shown = [s for s in all_seqs if device is None or s.address == device]
    pick = next((s for s in all_seqs if s.key == wanted), None) or default_sequence(shown)
    devices = sorted({s.address for s in all_seqs if s.address})
    if pick is None:
        return html.Div(
            [
                html.H3("Procedures", id="procedures"),
                html.P("No procedure (pairing, SDP, AVDTP, HFP, L2CAP, LE) seen."),
            ]
        )
    return html.Div(
        [
            html.H3("Procedures", id="procedures"),
            html.P(
                "Messages between the host, its controller and the remote device in order; "
                "rejects and errors in red; the steps the specification expects next that never "
                "came as dashed grey ghosts. Click a message for its frame."
            ),
            html.Div(
                [
                    dcc.Dropdown(
                        id="seq-device",
                        options=[{"label": a.device_label(d), "value": d} for d in devices],
                        value=device,
                        placeholder="every device",
                        style={"width": "420px", "display": "inline-block"},
                    ),
                    dcc.Dropdown(
                        id="seq-pick",
                        options=[{"label": seqs.label(a, s), "value": s.key} for s in shown],
                        value=pick.key,
                        clearable=False,
                        style={"width": "720px", "display": "inline-block"},
                    ),
                ]
            ),
            dcc.Graph(
                id="seq-graph", figure=seqs.figure(a, pick), config={"displayModeBar": False}
            ),
            html.Div(steps_list(a, cid, pick), id="seq-steps-box"),
        ],
        id="procedures-box",
    )


def matrix_section(a: Analysis, cid: str, device: str | None = None) -> Any:
    """One block per remote stream endpoint: offered / configured rows over the columns, the
    configured cells outside the offer in red, the answer and the reasons."""
    from dash import dcc, html

    rows = negotiation.matrix(a, device)
    if not rows:
        return html.Div(
            [
                html.H3("A2DP negotiation", id="negotiation"),
                html.P(
                    "No remote stream endpoint seen (no AVDTP DISCOVER / GET_CAPABILITIES answer)."
                ),
            ],
            id="negotiation-box",
        )
    cols = [
        c
        for c in negotiation.COLUMNS
        if any(c in negotiation.values(r.caps) or c in negotiation.values(r.config) for r in rows)
    ]
    head = html.Tr(
        [html.Th(x) for x in ("endpoint", "", *cols, "answer", "media", "outside the offer")]
    )
    body = []
    cell = {"border": "1px solid #ddd", "padding": "2px 6px", "fontSize": "13px"}
    for r in rows:
        bad_cols = {c for c, _ in r.flags}
        offered, chosen = negotiation.values(r.caps), negotiation.values(r.config)
        ep = f"{a.device_label(r.address)} SEID {r.seid} ({r.tsep})"
        ep_link = [
            ep,
            html.Br(),
            "caps ",
            dcc.Link(f"#{r.caps_frame}", href=_href(cid, frame=r.caps_frame), className="evidence")
            if r.caps_frame
            else "",
        ]
        answers: list[Any] = []
        for x in r.answers:
            txt = f"{x.codec or ''} {x.answer}" + (f" {x.error}" if x.error else "")
            answers.append(
                html.Div(
                    [
                        html.Span(
                            txt,
                            className="answer "
                            + ("accepted" if x.answer == "accepted" else "rejected"),
                            style={"color": "#2e7d32" if x.answer == "accepted" else ERROR_RED},
                        ),
                        " ",
                        dcc.Link(
                            f"#{x.frame}", href=_href(cid, frame=x.frame), className="evidence"
                        )
                        if x.frame
                        else "",
                    ]
                )
            )
        if not r.answers:
            answers = [html.Span("not configured", style={"color": "#777"})]
        flagged = bool(r.flags)
        body.append(
            html.Tr(
                [
                    html.Td(ep_link, rowSpan=2, style=cell),
                    html.Td("offered", style=cell),
                    *[html.Td(offered.get(c, ""), style=cell) for c in cols],
                    html.Td(answers, rowSpan=2, style=cell),
                    html.Td(
                        str(r.media_packets) + " packets" if r.media_packets is not None else "",
                        rowSpan=2,
                        style=cell,
                    ),
                    html.Td(
                        html.Ul([html.Li(w) for _, w in r.flags]) if flagged else "—",
                        rowSpan=2,
                        className="flags",
                        style={**cell, "color": ERROR_RED if flagged else "#555"},
                    ),
                ],
                className="offered" + (" flagged" if flagged else ""),
            )
        )
        conf_cells = []
        for c in cols:
            bad = c in bad_cols
            conf_cells.append(
                html.Td(
                    chosen.get(c, ""),
                    className="outside" if bad else "",
                    style={
                        **cell,
                        **(
                            {"background": "#ffcdd2", "color": ERROR_RED, "fontWeight": "bold"}
                            if bad
                            else {}
                        ),
                    },
                )
            )
        who = f"configured by {r.configured_by}" if r.configured_by else "configured"
        body.append(
            html.Tr(
                [
                    html.Td(
                        [
                            who,
                            html.Br(),
                            dcc.Link(
                                f"#{r.config_frame}",
                                href=_href(cid, frame=r.config_frame),
                                className="evidence",
                            )
                            if r.config_frame
                            else "—",
                        ],
                        style=cell,
                    ),
                    *conf_cells,
                ],
                className="configured" + (" flagged" if flagged else ""),
            )
        )
    return html.Div(
        [
            html.H3("A2DP negotiation", id="negotiation"),
            html.P(
                "Per remote stream endpoint: what it offered (capabilities) against what the "
                "source configured and the answer; configured values outside the offer in red "
                "(A2DP 1.4 §4.3.2-§4.7.2). Media: packets that flowed on the stream."
            ),
            html.Table(
                [html.Thead(head), html.Tbody(body)],
                id="negotiation-matrix",
                style={"borderCollapse": "collapse"},
            ),
            html.P(
                "Whether the media matched the configured codec is not in the stored analysis "
                "(it keeps packet counts, not the payload's codec): the button has tshark "
                "dissect one media packet of each stream with the configured codec.",
                style={"fontSize": "12px", "color": "#777"},
            ),
            html.Button("Check the media with tshark", id="media-check", n_clicks=0),
            dcc.Loading(html.Ul(id="media-check-out")),
        ],
        id="negotiation-box",
    )


def media_results(a: Analysis, cid: str, checks: list[Any]) -> list[Any]:
    """One line per stream: what tshark made of its media against the configured codec."""
    from dash import dcc, html

    out = []
    for s, c in checks:
        what = f"{a.device_label(s.address)} SEID {s.acp_seid}, configured {s.codec}: "
        link = (
            dcc.Link(f"#{c.frame}", href=_href(cid, frame=c.frame), className="evidence")
            if c.frame
            else ""
        )
        if c.error:
            out.append(html.Li([what, c.error], className="media-unchecked"))
        elif not c.checked:
            out.append(
                html.Li(
                    [
                        what,
                        f"tshark has no dissector for this payload ({c.layer}): not checked ",
                        link,
                    ],
                    className="media-unchecked",
                )
            )
        elif c.problems:
            out.append(
                html.Li(
                    [
                        what,
                        html.B(f"media does not decode as {s.codec}: "),
                        "; ".join(c.problems),
                        " (tshark, frame ",
                        link,
                        ")",
                    ],
                    className="media-mismatch",
                    style={"color": ERROR_RED},
                )
            )
        else:
            out.append(
                html.Li(
                    [what, f"decodes as {s.codec} (tshark {c.layer}, frame ", link, ")"],
                    className="media-ok",
                )
            )
    return out


#: analyzer.diff's procedures → the sequence charts' procedures
DIFF_PROCEDURES = {"pairing": "pairing", "sdp": "sdp", "avdtp": "avdtp", "hfp": "hfp", "le": "le"}


def _holding(a: Analysis, procedure: str, address: str, frame: int | None) -> seqs.Sequence | None:
    mine = [s for s in seqs.sequences(a, address) if s.procedure == procedure]
    hit = [s for s in mine if frame is not None and any(m.frame == frame for m in s.messages)]
    got = hit or mine
    return got[0] if got else None


def compare_section(
    a: Analysis, b: Analysis, address: str, procedure: str, frame_a: int | None, frame_b: int | None
) -> Any:
    """The first divergent procedure of two captures as two sequence charts side by side, the
    divergent step outlined in each (the alignment is :func:`analyzer.diff.diff`'s)."""
    from dash import dcc, html

    proc = DIFF_PROCEDURES.get(procedure)
    if proc is None:
        return html.Div()
    cols = []
    for side, x, frame in (("A", a, frame_a), ("B", b, frame_b)):
        s = _holding(x, proc, address, frame)
        body: Any = (
            dcc.Graph(
                id=f"compare-seq-{side.lower()}",
                figure=seqs.figure(x, s, [frame] if frame is not None else []),
                config={"displayModeBar": False},
            )
            if s is not None
            else html.P(f"{side} has no {proc} procedure with this device.")
        )
        cols.append(
            html.Div(
                [html.H4(f"{side}: {s.title if s else proc}"), body],
                style={"flex": "1", "minWidth": "0"},
            )
        )
    return html.Div(cols, id="compare-sequences", style={"display": "flex", "gap": "12px"})


def packets_section(frame: int | None = None) -> Any:
    """The packet table (AG Grid, infinite row model: every block of rows is served by the
    server, filtered and sorted there), the selected frame's detail and its Wireshark view;
    ``frame`` (the URL's ``?frame=N``): the table scrolls there once its first block is in."""
    import dash_ag_grid as dag
    from dash import dcc, html

    from analyzer.dashboards.packets import COLUMNS

    number = {"frame", "time_s", "length"}
    cols = [
        {
            "field": c,
            "filter": "agNumberColumnFilter" if c in number else "agTextColumnFilter",
            "filterParams": {"buttons": ["reset"], "maxNumConditions": 2},
            "floatingFilter": True,
            "sortable": c in ("frame", "time_s", "length"),
            **({"flex": 1, "minWidth": 300} if c == "summary" else {"width": 130}),
        }
        for c in COLUMNS
    ]
    return html.Div(
        [
            html.H3("Packets", id="packets"),
            html.P(
                "Every frame, served page by page; filter any column (device, connection, "
                "protocol, time, summary text) in the row under the header. Select a frame: the "
                "timeline marks it and its detail shows below; click on the timeline to find "
                "the frame there."
            ),
            html.Div(id="packet-note", style={"color": ERROR_RED}),
            dag.AgGrid(
                id="packet-grid",
                rowModelType="infinite",
                columnDefs=cols,
                dashGridOptions={
                    "rowSelection": {
                        "mode": "singleRow",
                        "checkboxes": False,
                        "enableClickSelection": True,
                    },
                    "cacheBlockSize": 100,
                    # dash-ag-grid answers one datasource request at a time (getRowsResponse)
                    "maxConcurrentDatasourceRequests": 1,
                    "maxBlocksInCache": 50,
                    "infiniteInitialRowCount": 100,
                    "rowBuffer": 20,
                },
                style={"height": "420px"},
            ),
            dcc.Store(id="packet-selected", data=frame),  # the URL's frame: the cursor
            dcc.Store(id="packet-goto", data=frame),
            html.Div(id="packet-detail"),
            html.Button("Wireshark view", id="ws-button", n_clicks=0),
            dcc.Loading(html.Div(id="ws-tree")),
        ],
        id="packets-box",
    )


def detail(t: Any, frame: int) -> Any:
    """Our decode of one frame and its bytes."""
    import json

    from dash import html

    from analyzer.dashboards import packets

    row = t.df.filter(t.df["frame"] == frame)
    if row.is_empty():
        return html.P(f"No frame {frame}.")
    r = row.row(0, named=True)
    layers = packets.decode_frame(t, frame)
    return html.Div(
        [
            html.H4(f"Frame {frame}: {r['summary']}", id="packet-detail-title"),
            html.Div(
                f"{r['time_s']:.6f} s, {r['direction']}, {r['kind']}, {r['length']} bytes"
                + (f", {r['connection']}" if r["connection"] else "")
                + (f", {r['device']}" if r["device"] else "")
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.B("Our decode"),
                            *[
                                html.Div(
                                    [
                                        html.I(name),
                                        html.Pre(
                                            json.dumps(v, indent=1), style={"margin": "2px 0"}
                                        ),
                                    ]
                                )
                                for name, v in layers
                            ],
                        ],
                        id="packet-decode",
                        style={"flex": "1", "minWidth": "0"},
                    ),
                    html.Div(
                        [
                            html.B("Bytes"),
                            html.Pre(packets.hex_dump(t.cap.payload(frame)), id="packet-hex"),
                        ],
                        style={"flex": "1", "minWidth": "0"},
                    ),
                ],
                style={"display": "flex", "gap": "12px", "fontSize": "12px"},
            ),
        ]
    )


def ws_tree(layers: dict[str, Any], depth: int = 0) -> list[Any]:
    """tshark's ``-T json`` layers as an expandable tree (the protocol layers open)."""
    from dash import html

    out: list[Any] = []
    for k, v in list(layers.items())[:200]:
        if isinstance(v, dict):
            out.append(
                html.Details(
                    [
                        html.Summary(k, className="ws-node"),
                        html.Div(ws_tree(v, depth + 1), style={"marginLeft": "14px"}),
                    ],
                    open=depth == 0,
                    className=f"ws-layer ws-{k}" if depth == 0 else "",
                )
            )
        elif isinstance(v, list):
            out.append(html.Div(f"{k}: " + ", ".join(str(x) for x in v[:20]), className="ws-field"))
        else:
            out.append(html.Div(f"{k}: {v}", className="ws-field"))
    return out


def audio_section(a: Analysis, cid: str) -> Any:
    """A2DP / SCO rates, states, gaps, delay reports, codec changes; drawn by a callback (the
    rates read the capture file)."""
    from dash import dcc, html

    has = a.avdtp.streams or a.hfp or any(c.transport in ("sco", "esco") for c in a.connections)
    if not has:
        return html.Div(id="audio-box")
    return html.Div(
        [
            html.H3("Audio", id="audio"),
            html.P(
                "A2DP media and SCO/eSCO packets per second over time (binned), streaming "
                "shaded green, media gaps red, delay reports, codec changes and audio findings "
                "as diamonds."
            ),
            dcc.Store(id="audio-cid", data=cid),
            html.Div(id="audio-note", style={"color": "#777"}),
            dcc.Loading(dcc.Graph(id="audio-graph")),
        ],
        id="audio-box",
    )


def advertising_section(a: Analysis, cid: str) -> Any:
    from dash import dcc, html

    from analyzer.dashboards import advertising as adv

    if not a.advertisers:
        return html.Div(id="advertising-box")
    ranked = adv.ranked(a)
    return html.Div(
        [
            html.H3("Advertising", id="advertising"),
            html.P(adv.scanner_note(a) or "", id="adv-source-note"),
            dcc.Store(id="adv-cid", data=cid),
            html.Div(id="adv-note", style={"color": "#777"}),
            dcc.Loading(dcc.Graph(id="adv-overview")),
            dcc.Dropdown(
                id="adv-pick",
                options=[
                    {"label": f"{x.name or x.address} ({x.events} events)", "value": x.address}
                    for x in ranked
                ],
                value=ranked[0].address,
                clearable=False,
                style={"width": "520px"},
            ),
            dcc.Loading(dcc.Graph(id="adv-detail")),
        ],
        id="advertising-box",
    )


#: resolves once the page's timeline is drawn (or after 8 s, or at once on a page without
#: one): the moment the heavy sections are asked for
TIMELINE_DRAWN_JS = """
async function(_title) {
  const t0 = Date.now();
  while (Date.now() - t0 < 8000) {
    const box = document.getElementById('swimlane');
    if (!box) { break; }
    const gd = box.querySelector('.js-plotly-plot');
    if (gd && gd._fullLayout) { break; }
    await new Promise(r => setTimeout(r, 100));
  }
  return Date.now();
}
"""


def install(app: Any, lib: Any) -> None:
    """The callbacks of these sections."""
    import dash
    from dash import Input, Output, State

    def _cid(pathname: str | None) -> str | None:
        parts = path_parts(pathname)
        return parts[1] if parts[:1] == ["capture"] and len(parts) == 2 else None

    from dash import Patch

    from analyzer.dashboards import packets

    def table(cid: str | None) -> Any:
        """The capture's packet table (raises PacketsUnavailable)."""
        a = lib.analysis(cid) if cid else None
        if a is None or cid is None:
            raise packets.PacketsUnavailable("no such capture in the store")
        caps = lib.store.captures()
        row = caps.filter(caps["capture_id"] == cid)
        path = str(row["file"][0] or "") if row.height else ""
        member = row["member"][0] if row.height else None
        return lib.packets.get(cid, path, member, a)

    def table_or_note(cid: str | None) -> tuple[Any, str]:
        try:
            return table(cid), ""
        except packets.PacketsUnavailable as exc:
            return None, f"{exc} — drawn from the stored analysis only."

    @app.callback(
        Output("media-check-out", "children"),
        Input("media-check", "n_clicks"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def check_media(n: int, pathname: str | None) -> Any:
        from dash import html

        cid = _cid(pathname)
        a = lib.analysis(cid) if cid else None
        if not n or a is None or cid is None:
            return dash.no_update
        try:
            t = table(cid)
        except packets.PacketsUnavailable as exc:
            return [html.Li(str(exc))]
        checks = [
            (s, packets.media_check(t, a, s.connection))
            for s in a.avdtp.streams
            if s.connection and s.media_packets
        ]
        return media_results(a, cid, checks) or [html.Li("no stream carried media")]

    app.clientside_callback(TIMELINE_DRAWN_JS, Output("sections-go", "data"),
                            Input("capture-title", "children"))  # fmt: skip

    @app.callback(
        Output("audio-graph", "figure"),
        Output("audio-note", "children"),
        Input("sections-go", "data"),
        State("audio-cid", "data"),
    )
    def audio_view(go: int | None, cid: str | None) -> Any:
        from analyzer.dashboards.audio import audio_figure

        return late_section(go, cid, audio_figure)

    @app.callback(
        Output("adv-overview", "figure"),
        Output("adv-note", "children"),
        Input("sections-go", "data"),
        State("adv-cid", "data"),
    )
    def advertising_view(go: int | None, cid: str | None) -> Any:
        from analyzer.dashboards.advertising import overview_figure

        return late_section(go, cid, overview_figure)

    def late_section(go: int | None, cid: str | None, draw: Any) -> Any:
        """(figure, note) of a section asked for once the timeline is drawn (``go``), its figure
        drawn from the stored analysis and the capture's packet table."""
        if go is None:
            return dash.no_update, dash.no_update
        a = lib.analysis(cid) if cid else None
        if a is None:
            return dash.no_update, "no such capture"
        t, note = table_or_note(cid)
        return draw(a, t), note

    @app.callback(
        Output("adv-detail", "figure"),
        Input("adv-pick", "value"),
        Input("sections-go", "data"),
        State("adv-cid", "data"),
    )
    def advertiser_detail(address: str | None, go: int | None, cid: str | None) -> Any:
        from analyzer.dashboards.advertising import detail_figure

        a = lib.analysis(cid) if cid else None
        if a is None or address is None or go is None:
            return dash.no_update
        t, _note = table_or_note(cid)
        return detail_figure(a, address, t)

    @app.callback(
        Output("packet-grid", "getRowsResponse"),
        Output("packet-note", "children"),
        Input("packet-grid", "getRowsRequest"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def rows(request: dict[str, Any] | None, pathname: str | None) -> Any:
        if not request:
            return dash.no_update, dash.no_update
        try:
            t = table(_cid(pathname))
        except packets.PacketsUnavailable as exc:
            return {"rowData": [], "rowCount": 0}, str(exc)
        return packets.page(t, request), ""

    @app.callback(
        Output("swimlane", "figure", allow_duplicate=True),
        Output("packet-detail", "children"),
        Output("packet-selected", "data"),
        Output("selected-frame", "children", allow_duplicate=True),
        Output("ws-tree", "children", allow_duplicate=True),
        Input("packet-grid", "selectedRows"),
        State("url", "pathname"),
        State("swim-compress", "value"),
        prevent_initial_call=True,
    )
    def select_row(
        selected: list[dict[str, Any]] | None, pathname: str | None, compress: list[str] | None
    ) -> Any:
        from analyzer.dashboards import swimlane

        if not selected:
            return (dash.no_update,) * 5
        r = selected[0]
        frame, at = int(r["frame"]), float(r["time_s"])
        a = lib.analysis(_cid(pathname)) if compress else None
        if a is not None:  # idle gaps collapsed: the frame's place on the compressed axis
            at = swimlane.x_of(a, at, True)
        cursor = Patch()
        cursor["layout"]["shapes"] = [
            {
                "type": "line",
                "x0": at,
                "x1": at,
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"dash": "dot", "color": "#444", "width": 2},
                "name": f"frame {frame}",
            }
        ]
        try:
            body = detail(table(_cid(pathname)), frame)
        except packets.PacketsUnavailable as exc:
            body = str(exc)
        return cursor, body, frame, f"Selected frame {frame}", ""

    @app.callback(
        Output("ws-tree", "children"),
        Input("ws-button", "n_clicks"),
        State("packet-selected", "data"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def wireshark(n: int, frame: int | None, pathname: str | None) -> Any:
        from dash import html

        if not n or frame is None:
            return html.P("Select a frame in the table first.")
        cid = _cid(pathname)
        try:
            t = table(cid)
        except packets.PacketsUnavailable as exc:
            return html.P(str(exc))
        a = lib.analysis(cid)
        got = packets.tshark_tree(t, a, int(frame))
        if got["error"]:
            return html.P(got["error"], id="ws-error")
        return html.Div(
            [
                html.Div(
                    f"tshark on frame {frame} with its context frames {got['frames']}",
                    id="ws-context",
                ),
                *ws_tree(got["layers"]),
            ],
            id="ws-view",
            style={"fontFamily": "monospace", "fontSize": "12px"},
        )

    @app.callback(
        Output("packet-grid", "scrollTo", allow_duplicate=True),
        Output("packet-goto", "data"),
        Input("packet-grid", "getRowsResponse"),
        State("packet-goto", "data"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def goto_frame(_rows: Any, frame: int | None, pathname: str | None) -> Any:
        """The URL's frame: once the table has rows, scroll there (once)."""
        if frame is None:
            return dash.no_update, dash.no_update
        try:
            i = packets.position(table(_cid(pathname)), int(frame))
        except packets.PacketsUnavailable:
            return dash.no_update, None
        scroll = {"rowIndex": i, "rowPosition": "middle"} if i is not None else dash.no_update
        return scroll, None

    @app.callback(
        Output("packet-grid", "scrollTo"),
        Input("swimlane", "clickData"),
        State("packet-grid", "filterModel"),
        State("url", "pathname"),
        State("swim-compress", "value"),
        prevent_initial_call=True,
    )
    def timeline_to_table(
        click: dict[str, Any] | None, model: Any, pathname: str | None, compress: Any = None
    ) -> Any:
        from analyzer.dashboards import swimlane

        pts = (click or {}).get("points") or []
        if not pts:
            return dash.no_update
        try:
            t = table(_cid(pathname))
        except packets.PacketsUnavailable:
            return dash.no_update
        frame = pts[0].get("customdata")
        if not isinstance(frame, int):  # the clicked place's time (true time, a bar's start)
            a = lib.analysis(_cid(pathname))
            got = swimlane.click_point(a, pts[0], bool(compress)) if a is not None else None
            frame = packets.nearest_frame(t, got[1] if got else 0.0)
        i = packets.position(t, frame, model) if frame is not None else None
        return dash.no_update if i is None else {"rowIndex": i, "rowPosition": "middle"}

    @app.callback(
        Output("seq-pick", "options"),
        Output("seq-pick", "value"),
        Input("seq-device", "value"),
        State("url", "pathname"),
        State("seq-pick", "value"),
        prevent_initial_call=True,
    )
    def pick_device(device: str | None, pathname: str | None, current: str | None) -> Any:
        cid = _cid(pathname)
        a = lib.analysis(cid) if cid else None
        if a is None:
            return dash.no_update, dash.no_update
        shown = [s for s in seqs.sequences(a) if device is None or s.address == device]
        keep = current if any(s.key == current for s in shown) else None
        first = default_sequence(shown)
        return (
            [{"label": seqs.label(a, s), "value": s.key} for s in shown],
            keep or (first.key if first else None),
        )

    @app.callback(
        Output("seq-graph", "figure"),
        Output("seq-steps-box", "children"),
        Input("seq-pick", "value"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def pick_sequence(key: str | None, pathname: str | None) -> Any:
        cid = _cid(pathname)
        a = lib.analysis(cid) if cid else None
        s = next((s for s in seqs.sequences(a) if s.key == key), None) if a else None
        if a is None or s is None or cid is None:
            return dash.no_update, dash.no_update
        return seqs.figure(a, s), steps_list(a, cid, s)

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("seq-graph", "clickData"),
        State("seq-pick", "value"),
        prevent_initial_call=True,
    )
    def click_message(click: dict[str, Any] | None, key: str | None) -> Any:
        pts = (click or {}).get("points") or []
        frame = pts[0].get("customdata") if pts else None
        if not isinstance(frame, int):
            return dash.no_update
        return f"?frame={frame}" + (f"&seq={quote(key)}" if key else "")


__all__ = ["install", "matrix_section", "procedures_section"]
