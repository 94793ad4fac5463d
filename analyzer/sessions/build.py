"""Rebuild what happened: one pass over the signalling frames, columnar work for the bulk.

1. :func:`frame_index` gathers header fields of every HCI frame (numpy).
2. Pass 1 (Python, signalling only): HCI commands/events (except the bulk Number Of Completed
   Packets) and the L2CAP signalling channel, in frame order → connections, devices, pairing,
   HCI transactions, the channel table.
3. ACL frames are assigned to connections and channels with polars joins; frames of handles with
   no Connection Complete in the capture get an *inferred* connection.
4. Pass 2 (Python): PDUs of channels some protocol session consumes (SDP, AVDTP signalling,
   RFCOMM, ATT, SMP …) are reassembled and dispatched. Media channels stay columnar.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import polars as pl

from analyzer.capture import DIRECTION_DTYPE, PASS_WINDOW, Capture, release_heap, release_pages
from analyzer.decode.hci import decode_command, decode_event
from analyzer.decode.hci_names import company_name
from analyzer.decode.l2cap import basic_header, guess_protocol
from analyzer.decode.oui import oui_vendor
from analyzer.model import Analysis, Anomaly, Connection, ControllerInfo, Device, Scope
from analyzer.model.scope import narrow_to_device
from analyzer.sessions import l2cap as l2
from analyzer.sessions.hci import HciState
from analyzer.sessions.index import ADV_SUBEVENTS, BULK_EVENTS, HANDLE_DTYPE, frame_index

S = TypeVar("S")

#: session modules that register PDU consumers and stages (imported once)
_SESSION_MODULES_LOADED = False

StageFn = Callable[["BuildContext"], None]


@dataclass(frozen=True)
class Stage:
    """A step after pass 2 that reads what earlier steps built (``after``: their names)."""

    name: str
    run: StageFn
    after: tuple[str, ...] = ()
    #: reads ``ctx.acl`` (the per-frame ACL table is freed after the last stage that does)
    reads_acl: bool = False


#: every stage, by name; run in :func:`stage_order`
STAGES: dict[str, Stage] = {}


def stage(
    name: str, *, after: Iterable[str] = (), reads_acl: bool = False
) -> Callable[[StageFn], StageFn]:
    """Declare a build stage, the stages whose results it reads, and whether it reads the
    per-frame ACL table ``ctx.acl``."""

    def deco(fn: StageFn) -> StageFn:
        STAGES[name] = Stage(name, fn, tuple(after), reads_acl)
        return fn

    return deco


class PipelineError(Exception):
    """Stages whose dependencies are missing or circular."""


def stage_order(stages: dict[str, Stage]) -> list[Stage]:
    """The stages in an order where each runs after what it declares (ties: the stages that
    read the per-frame ACL table first, so it can be freed early, then by name — the order
    does not depend on import order)."""
    missing = {d for s in stages.values() for d in s.after if d not in stages}
    if missing:
        raise PipelineError(f"stages depend on unknown stages: {sorted(missing)}")
    done: list[Stage] = []
    left = dict(stages)
    while left:
        ready = sorted(
            (n for n, s in left.items() if all(d not in left for d in s.after)),
            key=lambda n: (not left[n].reads_acl, n),
        )
        if not ready:
            raise PipelineError(f"circular stage dependencies among {sorted(left)}")
        for n in ready:
            done.append(left.pop(n))
    return done


def load_session_modules() -> None:
    """Import every session module (each registers its build stages)."""
    global _SESSION_MODULES_LOADED
    if _SESSION_MODULES_LOADED:
        return
    import analyzer.sessions as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("build", "model", "index", "hci", "l2cap"):
            importlib.import_module(f"analyzer.sessions.{mod.name}")
    _SESSION_MODULES_LOADED = True


class BuildContext:
    """What pass 2 consumers and post passes share."""

    def __init__(
        self,
        cap: Capture,
        idx: pl.DataFrame,
        hci: HciState,
        table: l2.ChannelTable,
        analysis: Analysis,
    ) -> None:
        self.cap = cap
        self.idx = idx
        self.hci = hci
        self.table = table
        self.analysis = analysis
        self.consumers: dict[int, Any] = {}  # id(channel) or ("cid", conn, cid) → consumer
        self.acl: pl.DataFrame = pl.DataFrame()  # ACL frames with conn/channel assignment
        self._shared: dict[type, object] = {}
        #: the last frame number of the index (open-ended ranges end after it)
        self.last_index = int(idx["index"].max() or 0) if idx.height else 0  # type: ignore[arg-type]
        #: frames of a controller's debug log carried as ACL data (counted, not decoded)
        self.debug_frames = int(idx["diag"].sum()) if idx.height else 0

    def after_l2cap(self) -> None:
        """Once the L2CAP passes are done, the per-frame tables keep only what the later
        stages read (a long log has millions of ACL frames): ``acl`` each frame's number, time,
        L2CAP length, PB flag, CID, direction and its connection and channel numbers. (``idx``
        stays whole: its frame columns are the frame table's own, not a copy.)"""
        if self.acl.width:
            self.acl = self.acl.select(
                "index", "time_us", "l2cap_len", "pb", "cid", "dir", "conn_no", "chan_no"
            )

    def shared(self, kind: type[S]) -> S:
        """The one instance of a protocol's shared build state (made on first use)."""
        obj = self._shared.get(kind)
        if obj is None:
            obj = self._shared[kind] = kind()
        return cast(S, obj)

    def anomaly(self, frame: int, layer: str, message: str) -> None:
        self.analysis.anomalies.append(Anomaly(frame, layer, message))


def rebuild(
    cap: Capture,
    *,
    device: str | None = None,
    time_from_us: int | None = None,
    time_to_us: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Analysis:
    """Rebuild sessions from a capture (optionally narrowed to a device and a time window)."""
    load_session_modules()
    analysis = Analysis(
        capture=cap.summary_record(),
        scope=Scope(time_from_us=time_from_us, time_to_us=time_to_us),
    )
    say = progress or (lambda _phase: None)
    say("frame index")
    release_heap()  # the reader's temporaries
    idx = frame_index(cap)
    if time_from_us is not None:
        idx = idx.filter(pl.col("time_us") >= time_from_us)
    if time_to_us is not None:
        idx = idx.filter(pl.col("time_us") <= time_to_us)
    hci = HciState()
    table = l2.ChannelTable()
    ctx = BuildContext(cap, idx, hci, table, analysis)
    # each pass below touches the file where it needs to (sparse reads map large page-cache
    # folios); releasing the mapping between passes keeps only one pass's pages resident
    release_heap()
    say("links and channels")
    _pass1(ctx)
    _assign(ctx)
    say("protocol sessions")
    _pass2(ctx)
    ctx.after_l2cap()
    release_pages(cap.buffer, 0, len(cap.buffer))
    release_heap()
    order = stage_order(STAGES)
    last_acl = max((i for i, st in enumerate(order) if st.reads_acl), default=-1)
    for i, st in enumerate(order):
        say(st.name.replace("_", " "))
        st.run(ctx)
        if i == last_acl:
            ctx.acl = pl.DataFrame()  # no later stage reads it: millions of rows freed
        release_pages(cap.buffer, 0, len(cap.buffer))
        release_heap()
    _finish(ctx)
    return analysis if device is None else narrow_to_device(analysis, device)


# -- pass 1 ----------------------------------------------------------------------------------


def _pass1(ctx: BuildContext) -> None:
    idx = ctx.idx
    sel = idx.filter(
        (pl.col("kind") == "command")
        | (
            (pl.col("kind") == "event")
            & ~pl.col("code").is_in(list(BULK_EVENTS))
            & ~pl.col("subevent").is_in(list(ADV_SUBEVENTS))
        )
        | ((pl.col("kind") == "acl") & pl.col("cid").is_in(list(l2.SIGNALLING_CIDS)))
    )
    buf = ctx.cap.buffer
    hci, table = ctx.hci, ctx.table
    reasm = l2.Reassembler(ctx.analysis.anomalies)
    cols = [
        sel[c].to_list()
        for c in (
            "index",
            "time_us",
            "kind",
            "offset",
            "length",
            "orig_length",
            "handle",
            "pb",
            "direction",
        )
    ]
    for frame, t, kind, off, ln, orig, handle, pb, direction in zip(*cols, strict=True):
        raw = bytes(buf[off : off + ln])
        if kind == "event":
            ev = decode_event(raw)
            if ev.anomaly:
                ctx.anomaly(frame, "hci", f"{ev.name}: {ev.anomaly}")
            if ev.code == 0x05 and ev.status == 0:
                c = hci.conn_by_handle(ev.handle)
                if c is not None:
                    table.close_connection(c.id, frame)
            hci.on_event(ev, frame, t)
        elif kind == "command":
            cmd = decode_command(raw)
            if cmd.anomaly:
                ctx.anomaly(frame, "hci", f"{cmd.name}: {cmd.anomaly}")
            if cmd.opcode == 0x0C03:  # HCI Reset ends every link and its channels
                for c in hci._open.values():
                    table.close_connection(c.id, frame)
            hci.on_command(cmd, frame, t)
        else:  # signalling ACL
            conn = hci.conn_by_handle(handle)
            if conn is None:
                conn = hci.inferred_connection(handle, frame, t, le=False)
            done = reasm.feed(handle, direction, pb, frame, raw[4:], orig > ln)
            if done is None:
                continue
            _first, pdu, _trunc = done
            ln2, cid = basic_header(pdu) or (0, -1)
            if cid == 0x0005:
                conn.transport = "le" if conn.inferred else conn.transport
            table.on_signalling(conn, direction, frame, t, pdu[4 : 4 + ln2], ctx.analysis.anomalies)


# -- assignment ------------------------------------------------------------------------------


def _conn_ranges(hci: HciState, last_frame: int) -> pl.DataFrame:
    rows = [
        (c.handle, c.start_frame or 0, c.end_frame or last_frame + 1, i)
        for i, c in enumerate(hci.connections)
        if c.status == 0 and c.transport in ("br_edr", "le")
    ]
    return pl.DataFrame(
        rows,
        schema={
            "handle": HANDLE_DTYPE,
            "c_start": pl.Int64,
            "c_end": pl.Int64,
            "conn_no": pl.Int32,
        },
        orient="row",
    ).sort("c_start")


#: rows joined per step by :func:`_chunked_join_asof`
JOIN_CHUNK = 1 << 20


def _chunked_join_asof(
    left: pl.DataFrame,
    right: pl.DataFrame,
    span: tuple[str, str],
    number: str,
    by: list[str],
    *,
    within: bool = True,
) -> pl.DataFrame:
    """``left`` (sorted by frame ``index``, one row per ACL frame: millions) given the
    ``number`` of the last ``right`` row (of the same ``by`` keys) starting at or before it —
    only while the frame lies within that row's ``span`` (start, end) when ``within`` — joined a
    slice of rows at a time: the join's hash tables and gathers stay a slice's size, the span
    columns are dropped per slice (never a column of the whole table), and the result's left
    columns are the slices' own buffers."""
    start, end = span
    keep = (
        pl.when(pl.col("index") <= pl.col(end)).then(pl.col(number)) if within else pl.col(number)
    )
    parts = [
        left.slice(a, JOIN_CHUNK)
        .join_asof(
            right, left_on="index", right_on=start, by=by, strategy="backward",
            check_sortedness=False,
        )
        .with_columns(keep.alias(number))
        .drop(start, end)
        for a in range(0, max(left.height, 1), JOIN_CHUNK)
    ]  # fmt: skip
    return parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)


def _assign(ctx: BuildContext) -> None:
    """Connection and channel of every ACL frame (columnar)."""
    acl = l2.channel_frames(ctx.idx).sort("index")
    if acl.height == 0:
        ctx.acl = acl.with_columns(
            pl.col("direction").alias("dir"),
            pl.lit(None, pl.Int32).alias("conn_no"),
            pl.lit(None, pl.Int32).alias("chan_no"),
        )
        return
    last = int(acl["index"].max())  # type: ignore[arg-type]
    ranges = _conn_ranges(ctx.hci, last)
    acl = _chunked_join_asof(acl, ranges, ("c_start", "c_end"), "conn_no", ["handle"])
    # frames of handles with no known connection: one inferred connection per run of them
    orphans = acl.filter(pl.col("conn_no").is_null())
    if orphans.height:
        hci = ctx.hci
        on_handle: dict[int, list[Connection]] = {}  # (one dict, not a scan per handle)
        for c in hci.connections:
            if c.status == 0:
                on_handle.setdefault(c.handle, []).append(c)
        for (handle,), grp in orphans.group_by(["handle"], maintain_order=True):
            first = grp.row(0, named=True)
            h, f0, t0 = int(handle), int(first["index"]), int(first["time_us"])  # type: ignore[call-overload]
            later = sorted(
                (c for c in on_handle.get(h, []) if (c.start_frame or 0) > f0),
                key=lambda c: c.start_frame or 0,
            )
            if later and later[0].inferred:
                # pass 1 met this link first at a signalling frame; its data started earlier
                later[0].start_frame, later[0].start_time_us = f0, t0
                continue
            c = hci.inferred_connection(h, f0, t0, le=False)
            hci._open.pop(("acl", h), None)
            c.end_frame = None
            c.start_frame = f0
        ranges = _conn_ranges(ctx.hci, last)
        acl = _chunked_join_asof(
            acl.drop("conn_no"), ranges, ("c_start", "c_end"), "conn_no", ["handle"], within=False
        )
    conns = ctx.hci.connections
    _date_inferred(conns, acl)
    # channel of every frame: (connection, side, cid) within the channel's lifetime
    ch_rows = []
    conn_no_of = {c.id: i for i, c in enumerate(conns)}
    for chan_no, ch in enumerate(ctx.table.channels):
        cn = conn_no_of.get(ch.connection)
        if cn is None:
            continue
        start = ch.request_frame or 0
        end = ch.close_frame or last + 1
        if ch.remote_cid is not None:
            ch_rows.append((cn, "sent", ch.remote_cid, start, end, chan_no))
        if ch.local_cid is not None:
            ch_rows.append((cn, "received", ch.local_cid, start, end, chan_no))
    chans = (
        pl.DataFrame(
            ch_rows,
            schema={
                "conn_no": pl.Int32,
                "dir": pl.String,
                "cid": pl.Int32,
                "ch_start": pl.Int64,
                "ch_end": pl.Int64,
                "chan_no": pl.Int32,
            },
            orient="row",
        )
        .with_columns(pl.col("dir").cast(DIRECTION_DTYPE))
        .sort("ch_start")
    )
    # "dir": the direction (an Enum: one byte a frame, strings only when listed)
    acl = acl.with_columns(pl.col("direction").alias("dir"))
    acl = _chunked_join_asof(
        acl.sort("index"), chans, ("ch_start", "ch_end"), "chan_no", ["conn_no", "dir", "cid"]
    )
    # per-connection ACL totals
    # (two columns selected first: the table is in slices, and a group-by over all of its
    # columns would first copy them into one piece)
    tot = (
        acl.select("conn_no", "length")
        .group_by("conn_no")
        .agg(pl.len().alias("n"), pl.col("length").sum().alias("b"))
    )
    for cn, n, b in tot.iter_rows():
        if cn is not None:
            conns[cn].acl_packets = int(n)
            conns[cn].acl_bytes = int(b)
    per_chan = (
        acl.select("chan_no", "length")
        .filter(pl.col("chan_no").is_not_null())
        .group_by("chan_no")
        .agg(pl.len().alias("n"), pl.col("length").sum().alias("b"))
    )
    for chn, n, b in per_chan.iter_rows():
        ctx.table.channels[chn].frames = int(n)
        ctx.table.channels[chn].bytes = int(b)
    ctx.acl = acl


def _date_inferred(conns: list[Connection], acl: pl.DataFrame) -> None:
    """Start of connections known only by their Disconnection Complete: their first ACL frame,
    else the disconnection itself."""
    todo = [i for i, c in enumerate(conns) if c.inferred and c.start_time_us is None]
    if not todo:
        return
    first = (
        acl.filter(pl.col("conn_no").is_in(todo))
        .group_by("conn_no")
        .agg(pl.col("index").min().alias("f"), pl.col("time_us").min().alias("t"))
    )
    seen = {int(cn): (int(f), int(t)) for cn, f, t in first.iter_rows()}
    for i in todo:
        c = conns[i]
        c.start_frame, c.start_time_us = seen.get(i, (c.end_frame, c.end_time_us))  # type: ignore[assignment]


# -- inference of channels whose setup is not in the capture ----------------------------------


def _pass2(ctx: BuildContext) -> None:
    acl = ctx.acl
    if acl.height == 0:
        return
    table = ctx.table
    fixed = [c for c in l2.CID_CONSUMERS if c not in l2.SIGNALLING_CIDS]
    # dynamic CIDs with no channel: infer from their first PDUs
    unknown = acl.filter(
        pl.col("chan_no").is_null() & (pl.col("cid") >= 0x40) & pl.col("conn_no").is_not_null()
    )
    if unknown.height:
        buf = ctx.cap.buffer
        firsts = (
            unknown.filter(pl.col("pb") != 1)
            .group_by(["conn_no", "dir", "cid"], maintain_order=True)
            .head(4)
        )
        for (cn, d, cid), grp in firsts.group_by(["conn_no", "dir", "cid"], maintain_order=True):
            pls = [
                bytes(buf[o + 8 : o + n]) for o, n in zip(grp["offset"], grp["length"], strict=True)
            ]
            guess = guess_protocol(pls)
            if guess is None:
                continue
            conn = ctx.hci.connections[int(cn)]  # type: ignore[call-overload]
            ch = table.infer(conn, str(d), int(cid), guess[0], guess[1], int(grp["index"][0]))  # type: ignore[call-overload]
            ch.request_frame = int(grp["index"][0])
        # re-run the channel assignment for the inferred channels
        _assign(ctx)
        acl = ctx.acl
    # channels some protocol session consumes (media stays columnar), inferred ones included
    consumer_chans = [
        i
        for i, ch in enumerate(table.channels)
        if ch.psm in l2.PSM_CONSUMERS and ch.role != "avdtp_media"
    ]
    sel = acl.filter(
        pl.col("chan_no").is_in(consumer_chans)
        | (pl.col("chan_no").is_null() & pl.col("cid").is_in(fixed))
    )
    if sel.height == 0:
        return
    buf = ctx.cap.buffer
    reasm = l2.Reassembler(ctx.analysis.anomalies)
    conns = ctx.hci.connections
    cols = [
        sel[c].to_list()
        for c in (
            "index",
            "time_us",
            "offset",
            "length",
            "orig_length",
            "handle",
            "pb",
            "dir",
            "conn_no",
            "chan_no",
        )
    ]
    released = 0  # frames come in file order: release the pages behind the cursor
    for frame, t, off, ln, orig, handle, pb, d, cn, chn in zip(*cols, strict=True):
        if off - released > PASS_WINDOW:
            release_pages(buf, released, off)
            released = off
        done = reasm.feed(handle, d, pb, frame, bytes(buf[off + 4 : off + ln]), orig > ln)
        if done is None or cn is None:
            continue
        first, pdu, trunc = done
        pconn: Connection = conns[cn]
        pch = table.channels[chn] if chn is not None else None
        plen, pcid = basic_header(pdu) or (0, -1)
        key: Any = id(pch) if pch is not None else ("cid", cn, pcid)
        consumer = ctx.consumers.get(key)
        if consumer is None:
            factory = (
                l2.PSM_CONSUMERS.get(pch.psm or -1)
                if pch is not None
                else l2.CID_CONSUMERS.get(pcid)
            )
            if factory is None:
                continue
            consumer = ctx.consumers[key] = factory(ctx)
        consumer.on_pdu(l2.Pdu(pconn, pch, pcid, d, frame, first, t, pdu[4 : 4 + plen], trunc))


# -- finishing -------------------------------------------------------------------------------


def _finish(ctx: BuildContext) -> None:
    a, hci = ctx.analysis, ctx.hci
    a.connections = hci.connections
    a.pairing = hci.pairing
    a.l2cap_channels = ctx.table.channels
    devs = hci.devices
    if hci.local_address and hci.local_address in devs:
        devs[hci.local_address].role = "local"
        if hci.local_name:
            devs[hci.local_address].name = hci.local_name
        if hci.local_version:
            d = devs[hci.local_address]
            d.lmp_version = hci.local_version.lmp_version
            d.lmp_subversion = hci.local_version.lmp_subversion
            d.manufacturer = hci.local_version.manufacturer
            d.manufacturer_name = d.manufacturer_name or company_name(d.manufacturer)
    for c in a.connections:
        if c.address and c.address not in devs:
            hci.device(c.address)
    for d in _public(a, hci, devs):
        d.oui_vendor = oui_vendor(d.address)
    a.devices = sorted(devs.values(), key=lambda d: (d.role != "local", d.address))
    a.timeline = sorted(hci.timeline + a.timeline, key=lambda e: (e.time_us, e.frame))
    a.hci_commands = hci.commands
    a.controller = ControllerInfo(
        address=hci.local_address,
        name=hci.local_name,
        page_timeout_s=hci.page_timeout_s,
        version=hci.local_version,
        resets=hci.resets,
        hardware_errors=hci.hardware_errors,
    )
    a.discovered = hci.discovered
    a.l2cap_signals = ctx.table.signals
    a.controller_debug_frames = ctx.debug_frames


def _public(a: Analysis, hci: HciState, devs: dict[str, Device]) -> list[Device]:
    """The devices whose address is an IEEE public address and so carries an OUI: an LE
    public (identity) address, and any BD_ADDR — the local controller's, a peer seen on BR/EDR
    (paged, connected, found by inquiry) — which is always public (Core v5.4 Vol 2 Part B §1.2).
    An LE address of unknown type is left out: it may be random (Vol 6 Part B §1.3)."""
    bredr = {c.address for c in a.connections if c.transport in ("br_edr", "sco", "esco")}
    bredr |= {x.address for x in hci.discovered}
    adv_type = {x.address: x.address_type for x in a.advertisers}
    out = []
    for d in devs.values():
        kind = (d.address_type or adv_type.get(d.address) or "").lower()
        if "random" in kind or "anonymous" in kind:
            continue
        if "public" in kind or d.role == "local" or d.address in bredr:
            out.append(d)
    return out


def media_frames(ctx: BuildContext, chan_nos: list[int]) -> pl.DataFrame:
    """Start fragments (= L2CAP PDUs) of the given channels: index, time_us, l2cap_len,
    chan_no (only the columns the media statistics read: this can be most of the capture)."""
    if ctx.acl.height == 0:
        return pl.DataFrame()
    return ctx.acl.select("index", "time_us", "l2cap_len", "chan_no").filter(
        pl.col("chan_no").is_in(chan_nos) & (ctx.acl["pb"] != 1)
    )


__all__ = [
    "STAGES",
    "BuildContext",
    "PipelineError",
    "Stage",
    "media_frames",
    "rebuild",
    "stage",
    "stage_order",
]
