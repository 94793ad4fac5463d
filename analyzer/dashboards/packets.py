"""The packet table (issue 21): every frame of a stored capture, paged and filtered on the
server, a detail pane with our decode and a hex view, and a "Wireshark view" (``tshark -T json``
on a small temporary capture of the frame plus the frames that set up its context).

The store keeps each capture's *analysis*, not its bytes; the ``captures`` row names the file
(``file``, and ``member`` for a log inside an archive: an upload stays in ``STORE/uploads``, a
batch input where it was). This module reads that file through :mod:`analyzer.readers` — reading,
not re-analysing: the columns per frame come from the header index every analysis builds
(:func:`analyzer.sessions.index.frame_index`, numpy over the buffer), the connection, device and
L2CAP channel of each frame from the stored analysis, and the one-line summary of the frames the
analysis named (signalling, SDP, AVDTP, SMP, ATT, AT commands) from it too. Only the selected
frame is decoded (by :mod:`analyzer.decode`), for the detail pane.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from analyzer.capture import Capture, CaptureError
from analyzer.decode.hci_names import COMMAND_NAMES, EVENT_NAMES, LE_SUBEVENT_NAMES
from analyzer.model import Analysis

#: the grid's columns (and the filterable ones)
COLUMNS = (
    "frame",
    "time_s",
    "direction",
    "kind",
    "device",
    "connection",
    "protocol",
    "length",
    "summary",
)
FIXED_CIDS = {
    1: "L2CAP signalling",
    2: "connectionless",
    3: "AMP",
    4: "ATT",
    5: "LE signalling",
    6: "SMP",
    7: "BR/EDR SMP",
}
#: the AVDTP signals Wireshark needs before a media packet: the endpoints (media type, SEP type),
#: the configuration (codec) and OPEN (the next channel of the PSM carries the media)
MEDIA_CONTEXT = (
    "DISCOVER",
    "GET_CAPABILITIES",
    "GET_ALL_CAPABILITIES",
    "SET_CONFIGURATION",
    "OPEN",
    "START",
)
#: tables kept in memory (one per capture; a 1M-frame table is ~150 MB)
CACHE_SIZE = 3


class PacketsUnavailable(Exception):
    """The capture's file is gone (deleted upload, moved batch input) or unreadable."""


@dataclass
class PacketTable:
    cap: Capture
    df: pl.DataFrame  # one row per frame, COLUMNS plus handle, cid, pb, search
    t0: int
    le_meta: pl.DataFrame | None = None  # advertising report events: index, time_us, offset, …
    _reports: pl.DataFrame | None = None

    @property
    def frames(self) -> int:
        return self.df.height

    def reports(self) -> pl.DataFrame:
        """Every LE advertising report heard (frame, time_s, address, rssi, pdu), decoded
        columnar by :func:`analyzer.decode.adv_reports.advertising_reports`."""
        from analyzer.decode.adv_reports import advertising_reports

        if self._reports is None:
            ev = self.le_meta if self.le_meta is not None else pl.DataFrame()
            rep = advertising_reports(self.cap.data, self.cap.buffer, ev, {})
            self._reports = rep.select(
                "frame",
                ((pl.col("time_us") - self.t0) / 1e6).alias("time_s"),
                "address",
                "rssi",
                "pdu",
            )
        return self._reports


def _names_from_model(a: Analysis) -> pl.DataFrame:
    """frame → what the analysis says that frame was (the signalling it decoded)."""
    out: dict[int, str] = {}

    def put(frame: int | None, text: str) -> None:
        if frame is not None and frame not in out:
            out[frame] = text

    for s in a.l2cap_signals:
        put(s.frame, s.name + (f" (result {s.result})" if s.result not in (None, 0) else ""))
    for t in a.sdp:
        put(t.request_frame, f"SDP {t.pdu} {', '.join(t.uuids)}".strip())
        put(
            t.response_frame,
            f"SDP {t.response_pdu or 'response'}" + (f": {t.error_name}" if t.error_name else ""),
        )
    for v in a.avdtp.signals:
        what = v.signal + (f" {v.details.codec}" if v.details.codec else "")
        put(v.command_frame, f"AVDTP {what}")
        put(
            v.response_frame,
            f"AVDTP {v.signal} {v.response or ''}" + (f" {v.error_name}" if v.error_name else ""),
        )
    for p in a.smp.pdus:
        put(p.frame, f"SMP {p.name}" + (f": {p.reason_name}" if p.reason_name else ""))
    for x in a.att.transactions:
        put(x.request_frame, f"ATT {x.request}")
        put(
            x.response_frame,
            f"ATT {x.response or ''}" + (f": {x.error_name}" if x.error_name else ""),
        )
    for h in a.hfp:
        for at in h.at:
            put(at.frame, at.text)
            put(at.result_frame, at.result or "")
    for hc in a.hci_commands:
        if hc.status not in (None, 0):
            put(hc.status_frame, f"{hc.name}: {hc.status_name}")
    return pl.DataFrame(
        {"index": list(out), "named": list(out.values())},
        schema={"index": pl.Int64, "named": pl.Utf8},
    )


def _channels(a: Analysis) -> pl.DataFrame:
    """(connection, direction, CID seen in the frame, from frame) → the channel's protocol. A
    frame the host sent carries the remote's CID, one it received the local CID."""
    rows: list[tuple[str, str, int, int, str]] = []
    for ch in a.l2cap_channels:
        name = {"avdtp_media": "AVDTP media", "avdtp_signalling": "AVDTP"}.get(
            ch.role or "", ch.psm_name or "L2CAP"
        )
        start = ch.request_frame or 0
        if ch.remote_cid is not None:
            rows.append((ch.connection, "sent", ch.remote_cid, start, name))
        if ch.local_cid is not None:
            rows.append((ch.connection, "received", ch.local_cid, start, name))
    return pl.DataFrame(
        rows,
        schema={
            "connection": pl.Utf8,
            "direction": pl.Utf8,
            "cid": pl.Int32,
            "start": pl.Int64,
            "channel": pl.Utf8,
        },
        orient="row",
    ).sort("start")


def build(cap: Capture, a: Analysis) -> PacketTable:
    """The table of every frame (columnar: no Python object per frame)."""
    from analyzer.sessions.index import HANDLE_DTYPE, frame_index

    frames = cap.frames.select("index", "time_us", "direction", "kind", "length")
    full = frame_index(cap)
    le_meta = full.filter((pl.col("code") == 0x3E) & pl.col("subevent").is_in([0x02, 0x0D, 0x0B]))
    le_meta = le_meta.select("index", "time_us", "offset", "length", "subevent")
    hci = full.select("index", "code", "subevent", "opcode", "handle", "pb", "cid")
    df = frames.join(hci, on="index", how="left").with_columns(
        pl.col("code", "subevent", "opcode", "handle", "pb", "cid").fill_null(-1),
        pl.col("direction").cast(pl.Utf8),
        pl.col("kind").cast(pl.Utf8),
    )
    t0 = a.capture.first_time_us or (int(frames["time_us"][0]) if frames.height else 0)
    # the connection of each frame: the last connection on its handle that started before it
    conns = pl.DataFrame(
        [
            (c.handle, c.start_frame or 0, c.id, c.address or "")
            for c in a.connections
            if c.transport not in ("ll",)
        ],
        schema={
            "handle": HANDLE_DTYPE,
            "start": pl.Int64,
            "connection": pl.Utf8,
            "device": pl.Utf8,
        },
        orient="row",
    ).sort("start")
    df = (
        df.sort("index")
        .join_asof(
            conns,
            left_on="index",
            right_on="start",
            by="handle",
            strategy="backward",
            check_sortedness=False,
        )
        .drop("start")
    )
    # HCI commands and their answers: the connection / device the analysis tied them to
    tied: dict[int, tuple[str, str]] = {}
    for h in a.hci_commands:
        if h.connection or h.address:
            for f in (h.frame, h.status_frame, h.complete_frame):
                if f is not None:
                    tied.setdefault(f, (h.connection or "", h.address or ""))
    if tied:
        by_frame = pl.DataFrame(
            [(f, c, d) for f, (c, d) in tied.items()],
            schema={"index": pl.Int64, "conn2": pl.Utf8, "dev2": pl.Utf8},
            orient="row",
        )
        df = (
            df.join(by_frame, on="index", how="left")
            .with_columns(
                pl.coalesce("connection", pl.col("conn2").replace("", None)).alias("connection"),
                pl.coalesce("device", pl.col("dev2").replace("", None)).alias("device"),
            )
            .drop("conn2", "dev2")
        )
    chans = _channels(a)
    df = df.join_asof(
        chans,
        left_on="index",
        right_on="start",
        by=["connection", "direction", "cid"],
        strategy="backward",
        check_sortedness=False,
    ).drop("start")
    cmd = pl.col("opcode").replace_strict(COMMAND_NAMES, default=None, return_dtype=pl.Utf8)
    evt = pl.col("code").replace_strict(EVENT_NAMES, default=None, return_dtype=pl.Utf8)
    sub = pl.col("subevent").replace_strict(LE_SUBEVENT_NAMES, default=None, return_dtype=pl.Utf8)
    fixed = pl.col("cid").replace_strict(FIXED_CIDS, default=None, return_dtype=pl.Utf8)
    kind = pl.col("kind")
    protocol = (
        pl.when(kind == "command")
        .then(pl.lit("HCI command"))
        .when(kind == "event")
        .then(pl.lit("HCI event"))
        .when((kind == "acl") & (pl.col("pb") == 1))
        .then(pl.lit("L2CAP continuation"))
        .when(kind == "acl")
        .then(pl.coalesce(fixed, pl.col("channel"), pl.lit("L2CAP")))
        .otherwise(pl.col("kind").str.to_uppercase())
    )
    df = df.with_columns(protocol.alias("protocol")).join(
        _names_from_model(a), on="index", how="left"
    )
    summary = (
        pl.when(pl.col("named").is_not_null())
        .then(pl.col("named"))
        .when(kind == "command")
        .then(pl.coalesce(cmd, pl.format("opcode 0x{}", pl.col("opcode"))))
        .when((kind == "event") & (pl.col("code") == 0x3E))
        .then(pl.coalesce(sub, pl.lit("LE Meta")))
        .when(kind == "event")
        .then(pl.coalesce(evt, pl.format("event {}", pl.col("code"))))
        .when(kind == "acl")
        .then(pl.format("{} {} bytes", pl.col("protocol"), pl.col("length")))
        .otherwise(pl.format("{} {} bytes", pl.col("kind"), pl.col("length")))
    )
    df = (
        df.with_columns(
            pl.col("index").alias("frame"),
            ((pl.col("time_us") - t0) / 1e6).round(6).alias("time_s"),
            summary.alias("summary"),
            pl.col("device").fill_null(""),
            pl.col("connection").fill_null(""),
        )
        .with_columns(
            pl.concat_str([pl.col("summary"), pl.col("protocol")], separator=" ")
            .str.to_lowercase()
            .alias("search"),
        )
        .select(*COLUMNS, "handle", "cid", "pb", "search")
    )
    return PacketTable(cap, df.rechunk(), t0, le_meta)


# -- filtering and paging -----------------------------------------------------------------------


def _text_filter(col: str, f: dict[str, Any]) -> pl.Expr | None:
    v = str(f.get("filter", "")).lower()
    if not v:
        return None
    c = pl.col("search") if col == "summary" else pl.col(col).cast(pl.Utf8).str.to_lowercase()
    kind = f.get("type", "contains")
    if kind == "equals":
        return c == v
    if kind == "notEqual":
        return c != v
    if kind == "startsWith":
        return c.str.starts_with(v)
    if kind == "endsWith":
        return c.str.ends_with(v)
    if kind == "notContains":
        return ~c.str.contains(v, literal=True)
    return c.str.contains(v, literal=True)


def _number_filter(col: str, f: dict[str, Any]) -> pl.Expr | None:
    try:
        v = float(f["filter"]) if f.get("filter") is not None else None
        hi = float(f["filterTo"]) if f.get("filterTo") is not None else None
    except (TypeError, ValueError):
        return None
    if v is None:
        return None
    c = pl.col(col)
    kind = f.get("type", "equals")
    ops = {
        "equals": c == v,
        "notEqual": c != v,
        "lessThan": c < v,
        "lessThanOrEqual": c <= v,
        "greaterThan": c > v,
        "greaterThanOrEqual": c >= v,
    }
    if kind == "inRange" and hi is not None:
        return (c >= v) & (c <= hi)
    return ops.get(kind)


def filter_expr(model: dict[str, Any] | None) -> pl.Expr | None:
    """AG Grid's filter model (text / number filters, AND/OR conditions) as one expression."""
    exprs: list[pl.Expr] = []
    for col, f in (model or {}).items():
        if col not in COLUMNS or not isinstance(f, dict):
            continue
        parts = f.get("conditions") or [f]
        one = _number_filter if col in ("frame", "time_s", "length") else _text_filter
        got = [e for e in (one(col, p) for p in parts if isinstance(p, dict)) if e is not None]
        if not got:
            continue
        e = got[0]
        for g in got[1:]:
            e = (e | g) if f.get("operator") == "OR" else (e & g)
        exprs.append(e)
    if not exprs:
        return None
    out = exprs[0]
    for e in exprs[1:]:
        out = out & e
    return out


def page(t: PacketTable, request: dict[str, Any]) -> dict[str, Any]:
    """One block of rows for AG Grid's infinite row model (``getRowsRequest`` →
    ``getRowsResponse``): filtered and sorted on the server; ``rowCount`` the filtered total."""
    start = max(0, int(request.get("startRow") or 0))
    end = max(start, min(int(request.get("endRow") or start + 100), start + 1000))
    df = t.df
    e = filter_expr(request.get("filterModel"))
    if e is not None:
        df = df.filter(e)
    sort = [s for s in request.get("sortModel") or [] if s.get("colId") in COLUMNS]
    if sort:
        df = df.sort([s["colId"] for s in sort], descending=[s.get("sort") == "desc" for s in sort])
    rows = df.slice(start, end - start).select(COLUMNS).to_dicts()
    return {"rowData": rows, "rowCount": df.height}


def position(t: PacketTable, frame: int, model: dict[str, Any] | None = None) -> int | None:
    """The row index of ``frame`` under a filter model (the grid scrolls there)."""
    df = t.df.select(*COLUMNS[:-1], "search")  # the grid's columns, summary's search text
    e = filter_expr(model)
    if e is not None:
        df = df.filter(e)
    idx = np.nonzero(df["frame"].to_numpy() == frame)[0]
    return int(idx[0]) if idx.size else None


def nearest_frame(t: PacketTable, time_s: float) -> int | None:
    """The first frame at or after ``time_s`` seconds from the capture start."""
    ts = t.df["time_s"].to_numpy()
    i = int(np.searchsorted(ts, time_s, side="left")) if ts.size else 0
    if i >= ts.size:
        return None
    return int(t.df["frame"][i])


# -- one frame: our decode, hex, Wireshark --------------------------------------------------------


def _plain(obj: object) -> object:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, bytes | bytearray | memoryview):
        b = bytes(obj)
        return b.hex(" ") if len(b) <= 64 else b[:64].hex(" ") + f" … ({len(b)} bytes)"
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def decode_frame(t: PacketTable, frame: int) -> list[tuple[str, object]]:
    """Our decoders on one frame: (layer, decoded record as plain data), outermost first."""
    from analyzer.decode.att import decode_att
    from analyzer.decode.avdtp import decode_avdtp
    from analyzer.decode.hci import decode_acl
    from analyzer.decode.hci_commands import decode_command
    from analyzer.decode.hci_events import decode_event
    from analyzer.decode.l2cap import decode_l2cap, decode_signalling
    from analyzer.decode.rfcomm import decode_rfcomm
    from analyzer.decode.sdp import decode_sdp
    from analyzer.decode.smp import decode_smp

    row = t.df.filter(pl.col("frame") == frame)
    if row.is_empty():
        return []
    r = row.row(0, named=True)
    data = t.cap.payload(frame)
    out: list[tuple[str, object]] = []
    if r["kind"] == "command":
        out.append(("HCI command", _plain(decode_command(data))))
    elif r["kind"] == "event":
        out.append(("HCI event", _plain(decode_event(data))))
    elif r["kind"] == "acl":
        acl = decode_acl(data)
        out.append(("HCI ACL", _plain(acl)))
        if r["pb"] == 1:
            return out  # a continuation fragment: its PDU starts in an earlier frame
        l2 = decode_l2cap(data[4:])
        out.append(("L2CAP", _plain(l2)))
        proto = r["protocol"]
        upper: Callable[[bytes], object] | None = {
            "L2CAP signalling": decode_signalling,
            "LE signalling": lambda p: decode_signalling(p, le=True),
            "SDP": decode_sdp,
            "AVDTP": decode_avdtp,
            "SMP": decode_smp,
            "BR/EDR SMP": decode_smp,
            "ATT": decode_att,
            "RFCOMM": decode_rfcomm,
        }.get(proto)
        if upper is not None and l2.length is not None and l2.length <= len(l2.payload):
            out.append((proto, _plain(upper(l2.payload))))
    return out


def hex_dump(data: bytes, width: int = 16) -> str:
    lines = []
    for i in range(0, len(data), width):
        chunk = data[i : i + width]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:04x}  {chunk.hex(' '):<{width * 3}} {text}")
    return "\n".join(lines)


def context_frames(t: PacketTable, a: Analysis, frame: int) -> list[int]:
    """The frames tshark needs to dissect ``frame`` as it would in the whole capture: the
    connection's set-up (handle → address), the L2CAP channel's Connection Request / Response
    (CID → PSM, so SDP / AVDTP / RFCOMM are dissected), for AVDTP media the signalling channel,
    DISCOVER, capabilities, SET_CONFIGURATION, OPEN and START (Wireshark follows the media channel
    opened after OPEN), for a
    response its request, and the earlier fragments of the frame's L2CAP PDU."""
    row = t.df.filter(pl.col("frame") == frame)
    if row.is_empty():
        return []
    r = row.row(0, named=True)
    want: set[int] = {frame}
    conn = a.connection(r["connection"] or None)
    if conn is not None:
        want.update(f for f in (conn.request_frame, conn.start_frame) if f is not None)
        chans = [
            c
            for c in a.l2cap_channels
            if c.connection == conn.id and (c.request_frame or 0) <= frame
        ]
        mine = [c for c in chans if r["cid"] in (c.local_cid, c.remote_cid)]
        keep = mine[-1:]
        if keep and keep[0].role == "avdtp_media":
            keep += [c for c in chans if c.role == "avdtp_signalling"][-1:]
            for s in a.avdtp.signals:
                if (
                    s.connection == conn.id
                    and s.signal in MEDIA_CONTEXT
                    and (s.command_frame or 0) < frame
                ):
                    want.update(f for f in (s.command_frame, s.response_frame) if f is not None)
        for c in keep:
            want.update(f for f in (c.request_frame, c.response_frame) if f is not None)
    for tr in a.sdp:
        if tr.response_frame == frame or frame in tr.frames:
            want.update(f for f in tr.frames if f <= frame)
            want.add(tr.request_frame)
    if r["kind"] == "acl" and r["pb"] == 1:  # the fragments before, back to the PDU's start
        same = t.df.filter(
            (pl.col("frame") < frame)
            & (pl.col("handle") == r["handle"])
            & (pl.col("direction") == r["direction"])
            & (pl.col("kind") == "acl")
        ).tail(64)
        starts = same.filter(pl.col("pb") != 1)
        if not starts.is_empty():
            first = int(starts["frame"][-1])
            want.update(same.filter(pl.col("frame") >= first)["frame"].to_list())
    return sorted(f for f in want if 1 <= f <= t.frames)


def tshark_tree(t: PacketTable, a: Analysis, frame: int, timeout: float = 30.0) -> dict[str, Any]:
    """tshark's dissection (``-T json``) of ``frame`` in a temporary capture of it and its
    context frames; ``{"layers": …, "frames": [...], "error": None}``."""
    from analyzer.writers import WriteError, choose_format, write

    tshark = shutil.which("tshark")
    if tshark is None:
        return {"layers": None, "frames": [], "error": "tshark is not installed"}
    keep = context_frames(t, a, frame)
    if not keep:
        return {"layers": None, "frames": [], "error": f"no frame {frame}"}
    sub = Capture(t.cap.meta, t.cap.frames.filter(pl.col("index").is_in(keep)), t.cap.buffer)
    with tempfile.TemporaryDirectory(prefix="btanalyze-ws-") as d:
        fmt = choose_format(sub)
        path = os.path.join(d, f"frame.{'pcapng' if fmt == 'pcapng' else 'btsnoop'}")
        try:
            with open(path, "wb") as fh:
                write(sub, fh, fmt)
        except WriteError as exc:
            return {"layers": None, "frames": keep, "error": str(exc)}
        k = keep.index(frame) + 1
        try:
            res = subprocess.run(
                [tshark, "-r", path, "-T", "json", "-Y", f"frame.number == {k}"],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"layers": None, "frames": keep, "error": "tshark took too long"}
    try:
        doc = json.loads(res.stdout or b"[]")
    except ValueError:
        doc = []
    if not doc:
        err = res.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return {"layers": None, "frames": keep, "error": f"tshark: {err[0]}"}
    return {"layers": doc[0].get("_source", {}).get("layers", {}), "frames": keep, "error": None}


@dataclass
class MediaCheck:
    """What tshark made of a stream's media: Wireshark dissects an A2DP payload with the codec
    the SET_CONFIGURATION named (``bta2dp.codec``), so media of another codec shows up as
    expert errors (an SBC frame without its 0x9C syncword, A2DP 1.4 §12.2) or a malformed
    packet; a codec it has no payload dissector for (``data``) cannot be checked."""

    connection: str
    frame: int | None
    layer: str | None  # tshark's payload dissector (sbc, ldac, aptx, …; "data": none)
    problems: list[str]
    error: str | None = None

    @property
    def checked(self) -> bool:
        return self.error is None and self.layer not in (None, "data")


def _experts(node: object, out: list[str]) -> None:
    if isinstance(node, dict):
        msg, sev = node.get("_ws.expert.message"), node.get("_ws.expert.severity")
        try:
            level = int(str(sev))
        except ValueError:
            level = 0
        if msg and level >= 0x00600000 and str(msg) not in out:  # PI_WARN and above
            out.append(str(msg))
        for v in node.values():
            _experts(v, out)
    elif isinstance(node, list):
        for v in node:
            _experts(v, out)


def media_check(t: PacketTable, a: Analysis, connection: str, nth: int = 2) -> MediaCheck:
    """tshark on one media packet of the connection's stream (the ``nth`` whole one)."""
    media = t.df.filter(
        (pl.col("protocol") == "AVDTP media") & (pl.col("connection") == connection)
        & (pl.col("pb") != 1)
    )  # fmt: skip
    if media.is_empty():
        return MediaCheck(connection, None, None, [], "no media packet on this connection")
    frame = int(media["frame"][min(nth, media.height - 1)])
    got = tshark_tree(t, a, frame)
    if got["error"]:
        return MediaCheck(connection, frame, None, [], str(got["error"]))
    layers = got["layers"] or {}
    protos = str(layers.get("frame", {}).get("frame.protocols", "")).split(":")
    layer = protos[protos.index("rtp") + 1] if "rtp" in protos[:-1] else None
    problems: list[str] = []
    _experts({k: v for k, v in layers.items() if k in (layer, "rtp")}, problems)
    if "_ws.malformed" in layers:
        problems.append("malformed packet")
    return MediaCheck(connection, frame, layer, problems)


# -- the tables of the stored captures ------------------------------------------------------------


class Tables:
    """Packet tables of stored captures, built on first use and kept (LRU)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.cache: OrderedDict[str, PacketTable] = OrderedDict()
        self.building: dict[str, threading.Lock] = {}

    def get(self, cid: str, path: str, member: str | None, a: Analysis) -> PacketTable:
        with self.lock:
            if cid in self.cache:
                self.cache.move_to_end(cid)
                return self.cache[cid]
            lock = self.building.setdefault(cid, threading.Lock())
        with lock:  # one build per capture, however many requests ask at once
            with self.lock:
                if cid in self.cache:
                    return self.cache[cid]
            from analyzer.readers import load

            if not path or not os.path.exists(path):
                raise PacketsUnavailable(
                    f"the capture file is no longer at {path or '(no path)'}: the store keeps "
                    "the analysis, not the frames"
                )
            try:
                cap = load(path, log=member)
            except CaptureError as exc:
                raise PacketsUnavailable(str(exc)) from None
            table = build(cap, a)
            with self.lock:
                self.cache[cid] = table
                while len(self.cache) > self.size:
                    self.cache.popitem(last=False)
            return table

    def clear(self, cid: str | None = None) -> None:
        with self.lock:
            if cid is None:
                self.cache.clear()
            else:
                self.cache.pop(cid, None)


__all__ = [
    "COLUMNS",
    "MediaCheck",
    "PacketTable",
    "PacketsUnavailable",
    "Tables",
    "build",
    "context_frames",
    "decode_frame",
    "filter_expr",
    "hex_dump",
    "media_check",
    "nearest_frame",
    "page",
    "position",
    "tshark_tree",
]
