"""The dashboard (``btanalyze dashboard``): upload a capture, watch it analysed, triage it on a
findings-first page with a connection swimlane timeline; every view is a URL.

The app reads stored analyses only (a results store, :mod:`analyzer.store`: the same folder
``btanalyze batch`` writes), never re-decodes: an upload is saved under a server-chosen name,
analysed in a background thread into the store, and its page opens the stored analysis.

URL state: ``/`` (upload, stored captures), ``/job/<id>`` (an analysis in progress),
``/capture/<capture_id>?frame=N&device=ADDR&t0=S&t1=S&gaps=1`` (the capture, the selected
evidence frame and device, the timeline's window in seconds from the capture's start and its
idle-gap compression) — a colleague opening the link sees the same moment.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from analyzer.model import Analysis
from analyzer.store import Store
from analyzer.store.batch import DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT_S

SEVERITY_COLOUR = {"error": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}
ASSETS = Path(__file__).with_name("assets")
#: bytes read per chunk of an upload's body
CHUNK = 1 << 20


@dataclass
class Job:
    """An upload being analysed."""

    id: str
    name: str
    status: str = "queued"  # queued / analysing / storing / done / failed / cancelled
    error: str | None = None
    capture_ids: list[str] = field(default_factory=list)
    cancel_requested: bool = False
    future: Any = None  # the queued task
    progress_file: str | None = None  # the worker's current phase (analysing)

    @property
    def phase(self) -> str | None:
        """What the analysis is doing now ("analysing: advertising"), while it runs."""
        if self.status != "analysing" or not self.progress_file:
            return None
        try:
            return Path(self.progress_file).read_text(encoding="utf-8")[:200] or None
        except OSError:
            return None


#: where the app is served (``--url-prefix``, behind a reverse proxy): "/" or "/path/"
PREFIX = "/"


def url(path: str) -> str:
    """An app path ("/capture/x") under the URL prefix ("/bt/capture/x" behind a proxy)."""
    return PREFIX.rstrip("/") + path


def path_parts(pathname: str | None) -> list[str]:
    """The page path's parts without the URL prefix (``/bt/capture/x`` → ``[capture, x]``)."""
    path = pathname or "/"
    if PREFIX != "/" and path.startswith(PREFIX.rstrip("/")):
        path = path[len(PREFIX.rstrip("/")) :]
    return [p for p in path.split("/") if p]


def normal_prefix(prefix: str | None) -> str:
    """``bt``, ``/bt``, ``/bt/`` → ``/bt/``; empty or "/" → "/" (printable characters only)."""
    inner = "/".join(x for x in (prefix or "").split("/") if x)
    if any(not (ch.isalnum() or ch in "-_.~") for ch in inner.replace("/", "")):
        raise ValueError(f"not a URL path prefix: {prefix!r}")
    return f"/{inner}/" if inner else "/"


class Library:
    """The store the dashboard reads, uploads and the jobs that analyse them."""

    def __init__(
        self,
        store: Store,
        max_upload: int,
        retention_days: float = 7.0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_bytes: int | None = DEFAULT_MEMORY_BYTES,
    ) -> None:
        self.store = store
        self.max_upload = max_upload
        self.timeout_s = timeout_s  # one analysis's bounds: over them the job fails, others go on
        self.memory_bytes = memory_bytes
        self.retention_s = retention_days * 86400
        self.hang_on: str | None = None  # test hook: analyses of matching files never end
        #: uploads analysed from a scrubbed copy (issue 23): pages and exports name no device
        self.anonymize = False
        self.hog_on: str | None = None  # test hook: analyses of matching files grow unbounded
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analyse")
        from analyzer.dashboards.packets import Tables

        self.packets = Tables()  # packet tables of the captures opened (read from their files)
        store.create()
        (store.root / "uploads").mkdir(exist_ok=True)

    def analysis(self, cid: str) -> Analysis | None:
        try:
            return _cached_analysis(str(self.store.root), cid)
        except (OSError, ValueError):
            return None

    def submit(self, path: Path, name: str) -> Job:
        job = Job(uuid.uuid4().hex[:12], name)
        with self.lock:
            self.jobs[job.id] = job
        job.future = self.pool.submit(self._run, job, path)
        return job

    def shown_name(self, cid: str) -> str:
        """A stored capture's file name as the user knows it: its ``captures`` row names an
        upload by the browser's file name (never the server-chosen file) and a batch input by
        its path."""
        caps = self.store.captures()
        row = caps.filter(caps["capture_id"] == cid)
        return Path(str(row["path"][0])).name if row.height else cid

    def cancel(self, job_id: str) -> bool:
        """Stop a queued or running analysis (its worker process is killed)."""
        job = self.jobs.get(job_id)
        if job is None or job.status in ("done", "failed", "cancelled"):
            return False
        job.cancel_requested = True  # the running pool sees it within 0.2 s and kills its worker
        if job.future is not None and job.future.cancel():
            job.status = "cancelled"
        return True

    def _run(self, job: Job, path: Path) -> None:
        from analyzer.store.batch import LocalPool
        from analyzer.store.worker import FileTask, staged_path

        if job.cancel_requested:
            job.status = "cancelled"
            return
        job.status = "analysing"
        try:
            from analyzer import __version__

            # the same content uploaded again is not analysed again (content-hash cache); the
            # analysis runs in a worker process, so that cancel can stop it at once
            done = frozenset(self.store.done(__version__, self.anonymize))
            self.store.tmp.mkdir(parents=True, exist_ok=True)
            job.progress_file = str(self.store.tmp / f"progress-{job.id}")
            task = FileTask(
                str(path), str(self.store.root), done, hang_on=self.hang_on, hog_on=self.hog_on,
                anonymize=self.anonymize, progress=job.progress_file,
            )  # fmt: skip
            pool = LocalPool(
                1, self.timeout_s, self.memory_bytes, should_stop=lambda: job.cancel_requested
            )
            results = []
            for _task, rs in pool.run([task]):
                results = rs
            Path(job.progress_file).unlink(missing_ok=True)  # the worker is done with it
            Path(job.progress_file + ".tmp").unlink(missing_ok=True)
            if job.cancel_requested:
                job.status = "cancelled"
                path.unlink(missing_ok=True)
                return
            job.status = "storing"
            if all(r.skipped for r in results):
                path.unlink(missing_ok=True)  # already stored: keep no second copy
            for r in results:
                if not r.skipped:
                    r.row["path"] = str(r.row.get("path", "")).replace(str(path), job.name)
                    self.store.commit(r.capture_id, staged_path(r), r.row)
                job.capture_ids.append(r.capture_id)
            statuses = {str(r.row.get("status", "ok")) for r in results if not r.skipped}
            bad = [r for r in results if r.row.get("status") not in (None, "ok")]
            if bad and statuses != {"ok"} and len(bad) == len(results):
                job.status, job.error = "failed", str(bad[0].row.get("error"))
            else:
                job.status = "done"
        except Exception as exc:  # recorded for the user; the server goes on
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"

    def delete(self, cid: str) -> bool:
        """Remove a capture's rows, analysis and uploaded file (the delete button)."""
        caps = self.store.captures()
        row = caps.filter(caps["capture_id"] == cid)
        if row.is_empty():
            return False
        f = str(row["file"][0] or "")
        self.store.remove([cid])
        self.packets.clear(cid)
        up = Path(f)
        if up.parent == self.store.root / "uploads":
            up.unlink(missing_ok=True)
        _cached_analysis.cache_clear()
        return True

    def expire(self) -> int:
        """Delete uploads (and their analyses) older than the retention period: captures hold
        link keys and phone numbers. Returns how many captures were removed."""
        import time

        if self.retention_s <= 0:
            return 0
        cutoff = time.time() - self.retention_s
        n = 0
        caps = self.store.captures()
        for cid, f in zip(caps["capture_id"].to_list(), caps["file"].to_list(), strict=True):
            up = Path(f or "")
            uploaded = up.parent == self.store.root / "uploads" and up.exists()
            if uploaded and up.stat().st_mtime < cutoff:
                n += int(self.delete(cid))
        for up in (self.store.root / "uploads").glob("*.upload"):
            if up.stat().st_mtime < cutoff:
                up.unlink(missing_ok=True)
        return n


@lru_cache(maxsize=16)
def _cached_analysis(root: str, cid: str) -> Analysis:
    return Store(root).analysis(cid)


# -- upload route (Flask, streamed) -----------------------------------------------------------


def _install_upload_route(server: Any, lib: Library) -> None:
    from flask import jsonify, request

    @server.route(url("/upload"), methods=["POST"])
    def upload() -> Any:
        declared = request.content_length
        if declared is not None and declared > lib.max_upload:
            return jsonify(error=f"too large: {declared} bytes (limit {lib.max_upload})"), 413
        raw_name = request.headers.get("X-File-Name", "capture")
        from urllib.parse import unquote

        base = Path(unquote(raw_name).replace("\\", "/")).name
        shown = "".join(ch for ch in base if ch.isprintable())[:200] or "capture"
        dest = lib.store.root / "uploads" / f"{uuid.uuid4().hex}.upload"  # never the client's name
        total = 0
        with dest.open("wb") as fh:
            while True:
                chunk = request.stream.read(CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > lib.max_upload:
                    fh.close()
                    dest.unlink(missing_ok=True)
                    return jsonify(error=f"too large (limit {lib.max_upload} bytes)"), 413
                fh.write(chunk)
        if total == 0:
            dest.unlink(missing_ok=True)
            return jsonify(error="empty upload"), 400
        job = lib.submit(dest, shown)
        return jsonify(job=job.id, bytes=total)

    @server.route(url("/rules/<rule_id>"))
    def rule_doc(rule_id: str) -> Any:
        from html import escape

        from analyzer.rules.base import load_all

        r = load_all().get(rule_id)
        if r is None:
            return "no such rule", 404
        th = "".join(f"<li><code>{escape(t.name)}</code> = {t.default:g} {escape(t.unit)}: "
                     f"{escape(t.doc)}</li>" for t in r.thresholds)  # fmt: skip
        return (
            f"<html><body style='font-family:sans-serif'><h2><code>{escape(r.id)}</code> — "
            f"{escape(r.title)} ({r.severity})</h2><p>{escape(r.summary)}</p>"
            f"<p>Example: {escape(r.example)}</p><ul>{th}</ul></body></html>"
        )

    @server.route(url("/api/job/<job_id>/cancel"), methods=["POST"])
    def job_cancel(job_id: str) -> Any:
        if job_id not in lib.jobs:
            return jsonify(error="no such job"), 404
        return jsonify(cancelled=lib.cancel(job_id))

    @server.route(url("/api/job/<job_id>"))
    def job_status(job_id: str) -> Any:
        job = lib.jobs.get(job_id)
        if job is None:
            return jsonify(error="no such job"), 404
        return jsonify(status=job.status, phase=job.phase, error=job.error,
                       captures=job.capture_ids)  # fmt: skip


def _install_token(server: Any, token: str) -> None:
    import hmac

    from flask import make_response, redirect, request

    @server.before_request
    def check() -> Any:
        given = request.args.get("token") or request.cookies.get("btanalyze_token") or ""
        if not hmac.compare_digest(given, token):
            return make_response("a token is required (the URL printed at start-up)", 403)
        if request.args.get("token"):
            resp = make_response(redirect(request.path))
            resp.set_cookie("btanalyze_token", token, httponly=True, samesite="Strict")
            return resp
        return None


# -- pages --------------------------------------------------------------------------------------


def _home(lib: Library, query: dict[str, list[str]] | None = None) -> Any:
    """Upload, then the stored captures (lab mode over a batch store): facets by finding, device
    and firmware (``?finding=ID&device=ADDR&fw=KEY``), captures and captures with errors per day
    for what the facets select (one device's or one firmware's nights), and compare (pick A, then
    compare any other capture with it)."""
    import plotly.graph_objects as go
    import polars as pl
    from dash import dcc, html

    q = query or {}
    finding = _first(q.get("finding"))
    device = _first(q.get("device"))
    fw = _first(q.get("fw"))
    pick_a = _first(q.get("a"))
    caps = lib.store.captures()
    findings = lib.store.read("findings")
    devices = lib.store.read("devices")
    firmware = _firmware(devices)
    shown = caps
    if finding:
        ids = findings.filter(pl.col("id") == finding)["capture_id"].unique().to_list()
        shown = shown.filter(pl.col("capture_id").is_in(ids))
    if device:
        ids = devices.filter(pl.col("address") == device)["capture_id"].unique().to_list()
        shown = shown.filter(pl.col("capture_id").is_in(ids))
    if fw:
        ids = firmware.filter(pl.col("firmware") == fw)["capture_id"].unique().to_list()
        shown = shown.filter(pl.col("capture_id").is_in(ids))

    def href(**kw: str | None) -> str:
        params = {"finding": finding, "device": device, "fw": fw, "a": pick_a, **kw}
        qs = "&".join(f"{k}={quote(v)}" for k, v in params.items() if v)
        return url("/") + (f"?{qs}" if qs else "")

    rows = []
    for r in shown.sort("analysed_at", descending=True).iter_rows(named=True):
        cid = r["capture_id"]
        ok = r["status"] == "ok"
        link = dcc.Link(r["path"], href=url(f"/capture/{cid}")) if ok else html.Span(r["path"])
        if not ok:
            compare: Any = ""
        elif pick_a and pick_a != cid:
            compare = dcc.Link("compare with A", href=url(f"/compare?a={pick_a}&b={cid}"),
                               className="compare")  # fmt: skip
        elif pick_a == cid:
            compare = html.B("A")
        else:
            compare = dcc.Link("pick as A", href=href(a=cid), className="pick-a")
        rows.append(
            html.Tr([
                html.Td(link), html.Td(r["status"]), html.Td(r["frames"]), html.Td(r["errors"]),
                html.Td(r["warnings"]), html.Td(r["first_time"] or ""), html.Td(compare),
                html.Td(r["error"] or ""),
            ])
        )  # fmt: skip
    facets: list[Any] = []
    if findings.height:
        serious = findings.filter(pl.col("severity") != "info")
        top = serious.group_by("id").agg(pl.col("capture_id").n_unique().alias("n"))
        top = top.sort("n", descending=True)
        facets.append(html.Div(["Findings: ", *[
            x for fid, n in top.head(15).iter_rows()
            for x in (dcc.Link(f"{fid} ({n})", href=href(finding=fid), className="facet-finding"),
                      " ")
        ]]))  # fmt: skip
    if devices.height:
        rem = devices.filter(pl.col("role") == "remote")
        topd = (rem.group_by("address").agg(pl.col("capture_id").n_unique().alias("n"),
                                            pl.col("name").drop_nulls().first().alias("name"))
                .sort("n", descending=True))  # fmt: skip
        facets.append(html.Div(["Devices: ", *[
            x for addr, n, name in topd.head(15).iter_rows()
            for x in (dcc.Link(f"{name or addr} ({n})", href=href(device=addr),
                               className="facet-device"), " ")
        ]]))  # fmt: skip
    if firmware.height:
        topf = (firmware.group_by("firmware").agg(pl.col("capture_id").n_unique().alias("n"))
                .sort(["n", "firmware"], descending=[True, False]))  # fmt: skip
        facets.append(html.Div(["Firmware: ", *[
            x for key, n in topf.head(15).iter_rows()
            for x in (dcc.Link(f"{key} ({n})", href=href(fw=key), className="facet-firmware"), " ")
        ]]))  # fmt: skip
    if finding or device or fw:
        facets.append(html.Div([f"filtered: {' '.join(x for x in (finding, device, fw) if x)} ",
                                dcc.Link("clear", href=url("/"))], id="filter-note"))  # fmt: skip
    trend: list[Any] = []
    # the trend follows the facets: one device's (or firmware's, or finding's) nights
    dated = shown.filter(pl.col("first_time").is_not_null() & (pl.col("status") == "ok"))
    if dated.height > 1:
        per_day = (dated.with_columns(pl.col("first_time").str.slice(0, 10).alias("day"))
                   .group_by("day").agg(pl.len().alias("captures"),
                                        (pl.col("errors") > 0).sum().alias("with errors"))
                   .sort("day"))  # fmt: skip
        fig = go.Figure([
            go.Bar(x=per_day["day"].to_list(), y=per_day["captures"].to_list(), name="captures"),
            go.Bar(x=per_day["day"].to_list(), y=per_day["with errors"].to_list(),
                   name="with errors", marker_color=SEVERITY_COLOUR["error"]),
        ])  # fmt: skip
        fig.update_layout(height=220, barmode="overlay", margin={"l": 10, "r": 10, "t": 10,
                                                                 "b": 30})  # fmt: skip
        trend = [dcc.Graph(id="trend", figure=fig)]
    return html.Div([
        html.H2("btanalyze"),
        html.P("Upload a capture (btsnoop_hci.log, bugreport zip, pcap/pcapng, PacketLogger, "
               f"btsnooz, gzip; up to {lib.max_upload // (1 << 20)} MB):"),
        html.Div([
            html.Label("Capture: ", htmlFor="upload-file"),
            # upload.js puts a plain file input here and streams the file to /upload
            html.Div(id="upload-slot"),
            html.Progress(id="upload-progress", value="0", max="100"),
            html.Span(id="upload-note"),
        ]),
        html.H3(f"Analysed captures ({shown.height} of {caps.height})", id="captures-count"),
        *facets, *trend,
        html.Table([
            html.Thead(html.Tr([html.Th(h) for h in ("capture", "status", "frames", "errors",
                                                     "warnings", "first frame", "compare",
                                                     "error")])),
            html.Tbody(rows, id="captures-table"),
        ]),
    ])  # fmt: skip


def _firmware(devices: Any) -> Any:
    """(capture_id, firmware) of every remote device whose controller reported its version: a
    firmware build named by the chip vendor and its LMP version / subversion (Core Vol 2 Part C
    §4.3.11: the subversion is the vendor's build number), e.g. "Qualcomm … 11/0x0310"."""
    import polars as pl

    cols = {"capture_id", "role", "lmp_version", "lmp_subversion", "manufacturer_name"}
    if devices.height == 0 or not cols <= set(devices.columns):
        return pl.DataFrame(schema={"capture_id": pl.String, "firmware": pl.String})
    rem = devices.filter((pl.col("role") == "remote") & pl.col("lmp_subversion").is_not_null())
    rows = [
        (cid, f"{chip or 'chip ?'} {ver}/{sub:#06x}")
        for cid, chip, ver, sub in rem.select(
            "capture_id", "manufacturer_name", "lmp_version", "lmp_subversion"
        ).iter_rows()
    ]
    return pl.DataFrame(rows, schema={"capture_id": pl.String, "firmware": pl.String},
                        orient="row")  # fmt: skip


def _first(v: list[str] | None) -> str | None:
    return v[0] if v else None


def _compare(lib: Library, query: dict[str, list[str]]) -> Any:
    """Two stored captures side by side (analyzer.diff): the first divergence highlighted."""
    from dash import dcc, html

    from analyzer.diff import diff

    a_id, b_id = (query.get("a") or [""])[0], (query.get("b") or [""])[0]
    a, b = lib.analysis(a_id), lib.analysis(b_id)
    if a is None or b is None:
        return html.Div(
            [html.H3("Pick two stored captures to compare"), dcc.Link("Back", href=url("/"))]
        )
    d = diff(a, b)
    first = d.first

    def step(x: Any) -> str:
        return "(no such step)" if x is None else f"{x.text} (frame {x.frame})"

    blocks: list[Any] = [
        dcc.Link("← all captures", href=url("/")),
        html.H2("Compare"),
        html.P(["A: ", dcc.Link(lib.shown_name(a_id), href=url(f"/capture/{a_id}")),
                "   B: ", dcc.Link(lib.shown_name(b_id), href=url(f"/capture/{b_id}"))]),
    ]  # fmt: skip
    if first is not None:
        dev, dv = first
        blocks.append(html.Div([
            html.B("First divergence: "), f"{dev.name or dev.address} ({dev.address}), "
            f"{dv.procedure} step {dv.index + 1}: ", html.Br(),
            html.Span(f"A: {step(dv.a)}"), html.Br(), html.Span(f"B: {step(dv.b)}"),
        ], id="first-divergence", style={"background": "#fff3e0", "padding": "8px"}))  # fmt: skip
        from analyzer.dashboards.views import compare_section

        blocks.append(compare_section(a, b, dev.address, dv.procedure,
                                      dv.a.frame if dv.a else None,
                                      dv.b.frame if dv.b else None))  # fmt: skip
    else:
        blocks.append(html.P("No procedure step differs.", id="first-divergence"))
    for dev in d.devices:
        items = [html.Li(f"{k}: A {va or '—'} → B {vb or '—'}") for k, (va, vb) in
                 dev.versions.items()]  # fmt: skip
        items += [html.Li(f"{dv.procedure} differs at step {dv.index + 1}: A {step(dv.a)}; "
                          f"B {step(dv.b)}") for dv in dev.divergences]  # fmt: skip
        if dev.only_in:
            items.append(html.Li(f"only in {dev.only_in.upper()}"))
        blocks += [html.H3(f"{dev.name or 'unnamed'} ({dev.address})"), html.Ul(items)]
    for label, fs in (("A", d.findings_only_a), ("B", d.findings_only_b)):
        blocks += [html.H3(f"Findings only in {label} ({len(fs)})"),
                   html.Ul([html.Li(f"{fid} ({sev}): {msg}") for fid, sev, msg in fs],
                           id=f"only-{label.lower()}")]  # fmt: skip
    return html.Div(blocks)


def _job_status(job: Job) -> str:
    return f"{job.name}: {job.phase or job.status}…"


def _job(lib: Library, job_id: str) -> Any:
    from dash import dcc, html

    job = lib.jobs.get(job_id)
    if job is None:
        return html.Div([html.H3("No such analysis job"), dcc.Link("Back", href=url("/"))])
    if job.status == "done" and job.capture_ids:
        return html.Div([
            html.H3(f"{job.name}: analysed"),
            html.Ul([html.Li(dcc.Link(f"Open {cid}", href=url(f"/capture/{cid}"), id="job-open"))
                     for cid in job.capture_ids]),
            dcc.Location(id="job-redirect", href=url(f"/capture/{job.capture_ids[0]}"),
                         refresh=True),
        ])  # fmt: skip
    if job.status == "failed":
        return html.Div([
            html.H3(f"{job.name}: could not be analysed"),
            html.P(job.error or "", id="job-error", style={"color": SEVERITY_COLOUR["error"]}),
            dcc.Link("Back", href=url("/")),
        ])  # fmt: skip
    if job.status == "cancelled":
        return html.Div([html.H3(f"{job.name}: analysis cancelled", id="job-cancelled"),
                         dcc.Link("Back", href=url("/"))])  # fmt: skip
    import dash_ag_grid as dag

    return html.Div([
        html.H3(_job_status(job), id="job-status"),
        html.Button("Cancel", id="job-cancel", n_clicks=0),
        dcc.Interval(id="job-poll", interval=500, n_intervals=0),
        # hidden: the browser fetches and compiles the graph and grid libraries (Plotly is
        # ~5 MB) while the analysis runs, not after the capture page arrives
        html.Div([dcc.Graph(id="job-preload-graph", figure={}),
                  dag.AgGrid(id="job-preload-grid", rowData=[], columnDefs=[])],
                 style={"display": "none"}),
    ])  # fmt: skip


def _frame_link(cid: str, frame: int, device: str | None = None) -> Any:
    from dash import dcc

    href = url(f"/capture/{cid}?frame={frame}") + (f"&device={quote(device)}" if device else "")
    return dcc.Link(str(frame), href=href, className="evidence")


def _capture(lib: Library, cid: str, query: dict[str, list[str]]) -> Any:
    import dash_ag_grid as dag
    from dash import dcc, html

    from analyzer.dashboards import swimlane, views

    a = lib.analysis(cid)
    if a is None:
        return html.Div([html.H3("No such capture in the store"), dcc.Link("Back", href=url("/"))])
    frame = _int(query.get("frame"))
    dev_q = query.get("device")
    device = dev_q[0] if dev_q else None
    c = a.capture
    sev = [f.severity for f in a.findings]
    worst = next((s for s in ("error", "warning", "info") if s in sev), None)
    verdict = (
        f"{sev.count('error')} errors, {sev.count('warning')} warnings, {sev.count('info')} notes"
        if worst
        else "No findings"
    )
    findings = [f for f in a.findings if device is None or f.address == device]
    cards = []
    position = {id(f): i for i, f in enumerate(a.findings)}
    for f in findings:
        cards.append(html.Div([
            html.Div([html.B(f.severity.upper(), style={"color": SEVERITY_COLOUR[f.severity]}),
                      "  ", html.A(f.id, href=url(f"/rules/{f.id}"), className="rule-tag",
                                    target="_blank"), "  ",
                      html.Span(f.message, className="message"),
                      swimlane.focus_button(f"F{position[id(f)]}")]),
            html.Div(f.explanation, className="explanation"),
            html.Div(["Fix: ", f.fix], className="fix"),
            html.Div(["Evidence frames: ",
                      *[x for fr in f.frames[:12] for x in (_frame_link(cid, fr, device), " ")]]),
        ], className=f"finding {f.severity}", style={
            "borderLeft": f"4px solid {SEVERITY_COLOUR[f.severity]}", "padding": "4px 8px",
            "margin": "6px 0"}))  # fmt: skip
    incidents = [
        html.Li([html.B(i.severity.upper(), style={"color": SEVERITY_COLOUR[i.severity]}), " ",
                 i.verdict,
                 *([" — recovered at frame ", _frame_link(cid, i.recovered_at_frame)]
                   if i.recovered_at_frame else []),
                 swimlane.focus_button(f"I{n}")], className="incident")
        for n, i in enumerate(a.incidents)
    ]  # fmt: skip
    devices = [_device_card(a, d, cid) for d in a.devices if d.role == "remote"]
    t0 = c.first_time_us or 0
    rows: list[dict[str, Any]] = [
        {"frame": e.frame, "time_s": round((e.time_us - t0) / 1e6, 6), "lane": e.lane,
         "kind": e.kind, "severity": e.severity, "text": e.text}
        for e in a.timeline
    ]  # fmt: skip
    selected = [r for r in rows if frame is not None and r["frame"] == frame]
    if frame is not None and not selected:
        near = [r for r in rows if r["frame"] >= frame][:1]
        selected = near
    return html.Div([
        dcc.Link("← all captures", href=url("/")),
        html.H2(lib.shown_name(cid), id="capture-title"),
        # set in the browser once the timeline is drawn: the audio and advertising figures
        # (the heaviest) are asked for only then, so they do not delay it
        dcc.Store(id="sections-go"),
        html.Button("Delete this capture", id="delete-capture", n_clicks=0),
        html.Span(id="delete-note"),
        html.P(f"{c.format}, {c.frames} frames, {c.first_time} → {c.last_time}"),
        # a damaged file: said at the top, before what was read around the damage
        html.Div([html.B("Reader warnings: "), html.Ul([html.Li(w) for w in c.warnings])],
                 id="reader-warnings", style={"color": SEVERITY_COLOUR["warning"]})
        if c.warnings else html.Div(id="reader-warnings"),
        html.Div(["Go to: ", *[x for anchor, text in (
            ("procedures", "procedures"), ("negotiation", "A2DP negotiation"),
            ("audio", "audio"), ("advertising", "advertising"), ("packets", "packets"),
            ("device-cards", "devices"))
            for x in (html.A(text, href=f"#{anchor}"), " · ")]]),
        html.H3(verdict, id="verdict",
                style={"color": SEVERITY_COLOUR.get(worst or "", "#2e7d32")}),
        html.Div(f"Selected frame {frame}" if frame is not None else "", id="selected-frame"),
        html.Div(f"Device {device}" if device else "", id="selected-device"),
        html.H3("Incidents"), html.Ul(incidents or [html.Li("none")], id="incidents"),
        html.H3("Findings"), html.Div(cards or [html.P("No findings.")], id="findings"),
        swimlane.section(a, cid, query, frame),
        dag.AgGrid(
            id="timeline-grid", rowData=rows,
            columnDefs=[{"field": k} for k in ("frame", "time_s", "lane", "kind", "severity",
                                               "text")],
            selectedRows=selected, dashGridOptions={"rowSelection": "single"},
            scrollTo={"data": selected[0]} if selected else None,
            style={"height": "360px"},
        ),
        views.procedures_section(a, cid, query),
        views.matrix_section(a, cid, device),
        views.audio_section(a, cid),
        views.advertising_section(a, cid),
        views.packets_section(frame),
        html.H3("Devices"), html.Div(devices, id="device-cards"),
    ])  # fmt: skip


def _device_card(a: Analysis, d: Any, cid: str) -> Any:
    """Name, address, chip vendor, versions, bond, profiles and the device's incidents."""
    from dash import dcc, html

    conns = [c for c in a.connections if c.address == d.address]
    ids = {c.id for c in conns}
    profiles = sorted({ch.psm_name for ch in a.l2cap_channels if ch.connection in ids
                       and ch.result == 0 and ch.psm_name})  # fmt: skip
    codecs = sorted({s.codec for s in a.avdtp.streams if s.connection in ids and s.codec})
    hfp = [h for h in a.hfp if h.connection in ids]
    bonds = [p for p in a.pairing if p.address == d.address]
    bond = f"{bonds[-1].method or 'pairing'}: {bonds[-1].outcome}" if bonds else "no pairing seen"
    ver = (
        f"LMP {d.lmp_version}" + (f" / {d.lmp_subversion:#06x}" if d.lmp_subversion is not None
                                  else "")
        if d.lmp_version is not None else "version not seen"
    )  # fmt: skip
    incs = [i for i in a.incidents if d.address in i.devices]
    return html.Div([
        html.B(dcc.Link(a.device_label(d.address),
                        href=url(f"/capture/{cid}?device={quote(d.address)}"))),
        html.Div(f"OUI vendor {d.oui_vendor or '—'}; chip {d.manufacturer_name or '—'}; {ver}"),
        html.Div(f"bond: {bond}; links: {len(conns)}"),
        html.Div("profiles: " + (", ".join(profiles + [f"A2DP {c}" for c in codecs]
                                            + [h.profile.upper() for h in hfp]) or "none")),
        html.Ul([html.Li([html.B(i.severity.upper(), style={"color": SEVERITY_COLOUR[i.severity]}),
                          " ", i.verdict]) for i in incs]),
    ], className="device-card", style={"border": "1px solid #ccc", "padding": "6px",
                                        "margin": "4px 0"})  # fmt: skip


def _int(v: list[str] | None) -> int | None:
    try:
        return int(v[0]) if v else None
    except ValueError:
        return None


def create_app(
    store_root: str | Path,
    *,
    max_upload: int = 500 << 20,
    retention_days: float = 7.0,
    token: str | None = None,
    url_prefix: str = "/",
    anonymize: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_bytes: int | None = DEFAULT_MEMORY_BYTES,
) -> Any:
    """The Dash app over a results store folder (created if missing). With ``token``, every
    request must carry it (``?token=`` once, then a cookie) — required when the server is bound
    beyond loopback. ``url_prefix`` serves every page, route and asset under that path (a
    reverse proxy passing ``/bt/…`` through). Each upload is analysed in a worker process bounded
    by ``timeout_s`` and ``memory_bytes``: an analysis over them fails with its reason, the next
    upload goes on."""
    global PREFIX
    PREFIX = normal_prefix(url_prefix)
    import dash
    import dash_ag_grid  # noqa: F401  (component libraries load before any callback runs)
    from dash import Input, Output, State, dcc, html

    lib = Library(Store(store_root), max_upload, retention_days, timeout_s, memory_bytes)
    lib.anonymize = anonymize
    lib.expire()
    app = dash.Dash(
        __name__, assets_folder=str(ASSETS), suppress_callback_exceptions=True,
        title="btanalyze", url_base_pathname=PREFIX,
    )  # fmt: skip
    app.server.config["MAX_CONTENT_LENGTH"] = max_upload
    # url-written: the path and search the timeline last wrote into the URL itself
    app.layout = html.Div([dcc.Location(id="url"), dcc.Store(id="url-written"),
                           html.Div(id="page")],
                          style={"fontFamily": "sans-serif", "margin": "12px"})  # fmt: skip
    _install_upload_route(app.server, lib)
    if token:
        _install_token(app.server, token)

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"),
                  State("url-written", "data"))  # fmt: skip
    def route(pathname: str | None, search: str | None, written: str | None) -> Any:
        changed = [t["prop_id"] for t in dash.callback_context.triggered]
        if changed == ["url.search"] and written == f"{pathname or ''}{search or ''}":
            return dash.no_update  # the timeline wrote its window there: the page shows it
        query = parse_qs((search or "").lstrip("?"))
        parts = path_parts(pathname)
        if parts[:1] == ["capture"] and len(parts) == 2:
            return _capture(lib, parts[1], query)
        if parts[:1] == ["job"] and len(parts) == 2:
            return _job(lib, parts[1])
        if parts[:1] == ["compare"]:
            return _compare(lib, query)
        return _home(lib, query)

    # a running job's page stays (its Cancel button is not re-rendered under the pointer: a
    # click during a re-render was lost); only its status line changes until the job ends
    @app.callback(Output("page", "children", allow_duplicate=True),
                  Output("job-status", "children", allow_duplicate=True),
                  Input("job-poll", "n_intervals"), State("url", "pathname"),
                  prevent_initial_call=True)  # fmt: skip
    def poll(_n: int, pathname: str | None) -> Any:
        parts = path_parts(pathname)
        job = lib.jobs.get(parts[1]) if parts[:1] == ["job"] and len(parts) == 2 else None
        if job is None:
            return dash.no_update, dash.no_update
        if job.status in ("done", "failed", "cancelled"):
            return _job(lib, job.id), dash.no_update
        return dash.no_update, _job_status(job)

    @app.callback(
        Output("job-status", "children", allow_duplicate=True),
        Output("job-cancel", "disabled"),
        Input("job-cancel", "n_clicks"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def cancel(n: int, pathname: str | None) -> Any:
        parts = path_parts(pathname)
        job = lib.jobs.get(parts[1]) if parts[:1] == ["job"] and len(parts) == 2 else None
        if not n or job is None:
            return dash.no_update, dash.no_update
        lib.cancel(job.id)  # the poll shows the cancelled page once the worker is stopped
        return f"{job.name}: cancelling…", True

    @app.callback(
        Output("delete-note", "children"),
        Input("delete-capture", "n_clicks"),
        Input("url", "pathname"),
        prevent_initial_call=True,
    )
    def delete(n: int, pathname: str | None) -> Any:
        parts = path_parts(pathname)
        if not n or parts[:1] != ["capture"] or len(parts) != 2:
            return dash.no_update
        ok = lib.delete(parts[1])
        return " deleted: the capture, its analysis and its upload are gone" if ok else " not found"

    from analyzer.dashboards import views

    views.install(app, lib)
    from analyzer.dashboards import swimlane

    swimlane.install(app, lib)
    app.library = lib  # type: ignore[attr-defined]
    return app


def static_html(a: Analysis) -> str:
    """One self-contained HTML page (Plotly inline, no server, no network): verdict, incidents,
    findings and the swimlane timeline — to attach to a ticket (``analyze --html``)."""
    from html import escape

    from analyzer.dashboards import swimlane

    fig = swimlane.figure(a, static=True)
    plot = fig.to_html(full_html=False, include_plotlyjs="inline", div_id="swimlane")
    c = a.capture
    sev = [f.severity for f in a.findings]
    verdict = (
        f"{sev.count('error')} errors, {sev.count('warning')} warnings, {sev.count('info')} notes"
        if sev
        else "No findings"
    )
    items = []
    for f in a.findings:
        col = SEVERITY_COLOUR[f.severity]
        items.append(
            f'<div class="finding" style="border-left:4px solid {col};padding:4px 8px;'
            f'margin:6px 0"><b style="color:{col}">{f.severity.upper()}</b> '
            f"<code>{escape(f.id)}</code> {escape(f.message)}<br>{escape(f.explanation)}<br>"
            f"<i>Fix:</i> {escape(f.fix)}<br>Frames: {', '.join(map(str, f.frames[:12]))}</div>"
        )
    incidents = "".join(
        f"<li><b>{i.severity.upper()}</b> {escape(i.verdict)}</li>" for i in a.incidents
    )
    warnings = "".join(f"<li>{escape(w)}</li>" for w in c.warnings)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>btanalyze: "
        f"{escape(Path(c.path).name)}</title></head><body style='font-family:sans-serif'>"
        f"<h2>{escape(Path(c.path).name)}</h2><p>{escape(c.format)}, {c.frames} frames, "
        f"{escape(str(c.first_time))} → {escape(str(c.last_time))}</p>"
        f"<h3 id='verdict'>{verdict}</h3>"
        + (f"<h3>Reader warnings</h3><ul>{warnings}</ul>" if warnings else "")
        + f"<h3>Incidents</h3><ul>{incidents or '<li>none</li>'}</ul>"
        f"<h3>Findings</h3>{''.join(items) or '<p>No findings.</p>'}"
        f"<h3>Timeline</h3>{plot}</body></html>"
    )


__all__ = ["Job", "Library", "create_app", "static_html"]
