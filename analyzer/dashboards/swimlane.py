"""The swimlane timeline (issue 19 item 4): lanes grouped device → link → channel / profile, each
drawn as states and intervals — connections up, pairing, SDP exchanges, L2CAP channels, AVDTP
stream states (configured / open / streaming / suspended), HFP service level connections and
calls, SCO/eSCO links, advertising trains and silences — with the timeline's point events
(signalling), the findings as diamonds and the incidents on a lane of their own.

Everything comes from the stored :class:`~analyzer.model.Analysis` (never the capture's bytes).
:func:`lane_model` turns it once into sorted numpy arrays; :func:`figure` draws one time window
at one pixel width with at most one mark per pixel per lane (dense point events and intervals
closer than a pixel are merged into one mark whose hover counts them), so the figure stays small
whatever the capture's size. The dashboard re-draws on zoom and pan (``relayoutData``), keeps the
window in the URL (``?t0=&t1=`` seconds from the capture's start), has an overview strip of the
whole capture, idle-gap compression, a Δt measure between two clicked marks and pinned lanes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analyzer.dashboards import SEVERITY_COLOUR
from analyzer.model import Analysis

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
SEVERITIES = ("info", "warning", "error")
#: the pixel width a figure is bucketed at when the browser has not said (and for --html)
DEFAULT_WIDTH = 1200
#: advertisers given a lane (the most heard first); the figure says how many were left out
MAX_ADVERTISERS = 12
#: lanes drawn at most (pinned lanes always); the figure says how many were left out
MAX_LANES = 120
#: marks (points and bars) in one figure at most: beyond it the window is bucketed coarser
MAX_MARKS = 12_000
#: hover texts are cut to this many characters
TEXT_MAX = 90
#: idle-gap compression: a gap with nothing happening longer than this (and than
#: IDLE_FRACTION of the capture) is drawn IDLE_KEEP of its threshold wide
IDLE_MIN_S = 5.0
IDLE_FRACTION = 0.02
IDLE_KEEP = 0.2
LANE_PX = 22
#: a frame link (``?frame=N`` without ``t0`` / ``t1``) opens a window this wide around the
#: frame, or this fraction of the capture when that is wider (at most the whole capture)
FRAME_WINDOW_S = 4.0
FRAME_WINDOW_FRACTION = 0.02

#: interval kinds, in legend order, and their colours
STATE_COLOURS: dict[str, str] = {
    "incident error": "rgba(198,40,40,0.35)",
    "incident warning": "rgba(239,108,0,0.35)",
    "incident info": "rgba(21,101,192,0.25)",
    "connection": "#90a4ae",
    "pairing": "#7e57c2",
    "pairing failed": "#c62828",
    "SDP": "#26a69a",
    "SDP error": "#e57373",
    "L2CAP channel": "#b0bec5",
    "A2DP configured": "#ffe082",
    "A2DP open": "#ffb74d",
    "A2DP streaming": "#43a047",
    "A2DP suspended": "#bdbdbd",
    "HFP SLC set-up": "#ce93d8",
    "HFP SLC": "#8e24aa",
    "HFP SLC incomplete": "#ef6c00",
    "call": "#d81b60",
    "SCO/eSCO": "#1e88e5",
    "advertising": "#80cbc4",
    "advertising silence": "#e53935",
}
KINDS = tuple(STATE_COLOURS)


@dataclass(frozen=True)
class Lane:
    """One row of the timeline: ``level`` 0 a device (or the capture / incidents), 1 a link,
    2 a channel or profile on that link."""

    key: str
    label: str
    level: int
    group: str  # the device (or "capture") the lane belongs to
    parent: str = ""  # a channel / profile lane: its link lane


@dataclass
class LaneModel:
    """An analysis's lanes, intervals, point events and findings as sorted arrays (times in µs
    from the capture's first frame)."""

    lanes: list[Lane]
    t_end: float  # µs: the capture's span
    # intervals, sorted by (lane, kind, start)
    iv_lane: np.ndarray
    iv_kind: np.ndarray
    iv_start: np.ndarray
    iv_end: np.ndarray
    iv_frame: np.ndarray  # start frame (-1: unknown)
    iv_end_frame: np.ndarray
    iv_text: list[str]
    # point events (the analysis's timeline), sorted by (lane, time)
    pt_lane: np.ndarray
    pt_time: np.ndarray
    pt_frame: np.ndarray
    pt_sev: np.ndarray
    pt_text: list[str]
    # findings, sorted by (lane, time)
    fd_lane: np.ndarray
    fd_time: np.ndarray
    fd_frame: np.ndarray
    fd_sev: np.ndarray
    fd_text: list[str]
    # frame → time (µs from the start): the model's known (frame, time) pairs
    clock_frames: np.ndarray
    clock_times: np.ndarray
    notes: list[str] = field(default_factory=list)
    #: lanes by key
    index: dict[str, int] = field(default_factory=dict)
    #: finding / incident → (lane key, [frames], start µs, end µs)
    focus: dict[str, tuple[list[tuple[int, str]], float, float]] = field(default_factory=dict)

    def frame_time(self, frame: int) -> float:
        """µs from the start of ``frame`` (exact for frames the model dates, else between the
        nearest dated frames)."""
        if self.clock_frames.size == 0:
            return 0.0
        return float(np.interp(frame, self.clock_frames, self.clock_times))


# -- the lane model ------------------------------------------------------------------------------


class _Builder:
    def __init__(self, a: Analysis) -> None:
        self.a = a
        self.t0 = a.capture.first_time_us or 0
        self.lanes: dict[str, Lane] = {}
        self.order: list[str] = []
        self.iv: list[tuple[str, str, float, float, int, int, str]] = []
        self.pts: list[tuple[str, float, int, int, str]] = []
        self.fds: list[tuple[str, float, int, int, str]] = []
        self.pairs: dict[int, float] = {}

    def rel(self, t_us: int | None) -> float | None:
        return None if t_us is None else float(t_us - self.t0)

    def date(self, frame: int | None, t_us: int | None) -> None:
        if frame is not None and t_us is not None:
            self.pairs.setdefault(frame, float(t_us - self.t0))

    def lane(self, key: str, label: str, level: int, group: str, parent: str = "") -> str:
        if key not in self.lanes:
            self.lanes[key] = Lane(key, label, level, group, parent)
            self.order.append(key)
        return key


#: a link's channel / profile lanes in this order (then as first seen)
SUB_ORDER = ("pairing", "SDP", "L2CAP", "A2DP", "HFP", "HSP", "SCO")


def _sub_rank(key: str) -> int:
    name = key.rsplit(":", 1)[-1]
    return next((i for i, p in enumerate(SUB_ORDER) if name.startswith(p)), len(SUB_ORDER))


def _short(text: str) -> str:
    return text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 1] + "…"


def _fmt_s(us: float) -> str:
    return f"{us / 1e6:.6f} s"


def _dur(us: float) -> str:
    return f"{us / 1e3:.3f} ms" if us < 1e6 else f"{us / 1e6:.3f} s"


_CACHE: dict[int, tuple[Analysis, LaneModel]] = {}


def lane_model(a: Analysis) -> LaneModel:
    """The analysis's lanes and marks (built once per analysis object)."""
    hit = _CACHE.get(id(a))
    if hit is not None and hit[0] is a:
        return hit[1]
    m = _build(a)
    if len(_CACHE) >= 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(a)] = (a, m)
    return m


def _build(a: Analysis) -> LaneModel:
    b = _Builder(a)
    cap = a.capture
    span = float(((cap.last_time_us or b.t0) - b.t0) if cap.last_time_us else 0)
    conns = {c.id: c for c in a.connections}
    remote = [d.address for d in a.devices if d.role == "remote"]
    local = {d.address for d in a.devices if d.role == "local"}

    at_cmds = [cmd for hs in a.hfp for cmd in hs.at]
    dated: list[tuple[list[Any], str, str]] = [
        (a.timeline, "frame", "time_us"),
        (a.connections, "start_frame", "start_time_us"),
        (a.connections, "end_frame", "end_time_us"),
        (a.hci_commands, "frame", "time_us"),
        (a.hci_commands, "status_frame", "status_time_us"),
        (a.hci_commands, "complete_frame", "complete_time_us"),
        (a.l2cap_signals, "frame", "time_us"),
        (a.l2cap_signals, "response_frame", "response_time_us"),
        (a.sdp, "request_frame", "request_time_us"),
        (a.sdp, "response_frame", "response_time_us"),
        (a.avdtp.signals, "command_frame", "command_time_us"),
        (a.avdtp.signals, "response_frame", "response_time_us"),
        (a.hfp, "start_frame", "start_time_us"),
        (at_cmds, "frame", "time_us"),
        (at_cmds, "result_frame", "result_time_us"),
        (a.pairing, "start_frame", "start_time_us"),
        (a.smp.pdus, "frame", "time_us"),
    ]
    for rows, frame_attr, time_attr in dated:  # every (frame, time) pair the model knows
        for r in rows:
            b.date(getattr(r, frame_attr), getattr(r, time_attr))
    b.date(1, cap.first_time_us)
    b.date(cap.frames, cap.last_time_us)
    clock_f = np.array(sorted(b.pairs), dtype=np.float64)  # float: np.interp converts no copy
    clock_t = np.array([b.pairs[int(f)] for f in clock_f.tolist()], dtype=np.float64)
    if clock_t.size:
        clock_t = np.maximum.accumulate(clock_t)  # a monotonic clock (frames in capture order)

    def at(frame: int | None) -> float | None:
        if frame is None or clock_f.size == 0:
            return None
        return float(np.interp(frame, clock_f, clock_t))

    # lanes: the incidents, the capture (controller), then device → link → channel / profile
    b.lane("incidents", "<b>incidents</b>", 0, "capture")
    b.lane("capture", "<b>capture / controller</b>", 0, "capture")
    addresses: list[str] = []
    for addr in [*remote, *(c.address for c in a.connections if c.address)]:
        if addr not in addresses and addr not in local:
            addresses.append(addr)
    advertisers = sorted(a.advertisers, key=lambda x: -x.events)
    shown_adv = advertisers[:MAX_ADVERTISERS]
    for x in shown_adv:
        if x.address not in addresses:
            addresses.append(x.address)
    if len(advertisers) > MAX_ADVERTISERS:
        b_note = (
            f"advertising: the {MAX_ADVERTISERS} most heard of {len(advertisers)} advertisers "
            "have a lane"
        )
    else:
        b_note = ""

    def device_lane(addr: str | None) -> str:
        if addr is None:
            return b.lane("dev:?", "<b>unknown device</b>", 0, "dev:?")
        if f"dev:{addr}" in b.lanes:
            return f"dev:{addr}"
        label = a.device_label(addr)
        if len(label) > 48 and label.endswith(f" ({addr})"):  # the name cut, not the address
            label = label[: 44 - len(addr)].rstrip() + f"… ({addr})"
        return b.lane(f"dev:{addr}", f"<b>{label}</b>", 0, addr)

    for addr in addresses:
        device_lane(addr)

    link_names = {"br_edr": "BR/EDR ACL", "le": "LE link"}

    links: dict[str | None, str | None] = {}

    def link_lane(c_id: str | None) -> str | None:
        if c_id not in links:
            links[c_id] = _link_lane(c_id)
        return links[c_id]

    def _link_lane(c_id: str | None) -> str | None:
        c = conns.get(c_id or "")
        if c is None:
            return None
        if c.transport in ("sco", "esco"):
            parent = conns.get(c.acl or "")
            if parent is not None:
                c = parent
            else:
                device_lane(c.address)
                key = f"link:{c.address}:br_edr"
                return b.lane(key, "\u2003BR/EDR ACL", 1, c.address or "dev:?")
        device_lane(c.address)
        key = f"link:{c.address}:{c.transport}"
        return b.lane(
            key, f"\u2003{link_names.get(c.transport, c.transport)}", 1, c.address or "dev:?"
        )

    def sub_lane(c_id: str | None, name: str) -> str | None:
        link = link_lane(c_id)
        if link is None:
            return None
        group = b.lanes[link].group
        return b.lane(f"{link}:{name}", f"\u2003\u2003{name}", 2, group, link)

    def interval(
        lane: str,
        kind: str,
        start: float | None,
        end: float | None,
        f0: int | None,
        f1: int | None,
        text: str,
    ) -> None:
        if start is None:
            start = 0.0
        if end is None or end < start:
            end = start
        b.iv.append(
            (
                lane,
                kind,
                start,
                end,
                -1 if f0 is None else f0,
                -1 if f1 is None else f1,
                _short(text),
            )
        )

    def frames_text(f0: int | None, f1: int | None) -> str:
        a_ = a.frame_ref(f0) if f0 is not None else "?"
        b_ = a.frame_ref(f1) if f1 is not None else "…"
        return f"frames {a_} → {b_}"

    # connections (ACL / LE on the link lane, SCO / eSCO on their own lane under the ACL)
    for c in a.connections:
        if not c.ok:
            continue
        start = b.rel(c.start_time_us) if c.start_time_us is not None else 0.0
        end = b.rel(c.end_time_us) if c.end_time_us is not None else span
        why = f", {c.disconnect_reason_name}" if c.disconnect_reason_name else ""
        still = "" if c.end_frame is not None else " (up at the capture's end)"
        if c.transport in ("sco", "esco"):
            lane = sub_lane(c.id, "SCO/eSCO")
            if lane is None:
                continue
            sco = c.sco
            codec = f" {sco.codec or sco.air_mode_name or ''}" if sco else ""
            interval(
                lane,
                "SCO/eSCO",
                start,
                end,
                c.start_frame,
                c.end_frame,
                f"{c.transport} {c.id}{codec}{why}{still}, "
                f"{frames_text(c.start_frame, c.end_frame)}",
            )
            continue
        lane = link_lane(c.id)
        if lane is None:
            continue
        interval(
            lane,
            "connection",
            start,
            end,
            c.start_frame,
            c.end_frame,
            f"{c.transport} {c.id} handle {c.handle:#x}{why}{still}, "
            f"{frames_text(c.start_frame, c.end_frame)}",
        )

    def conn_end(c_id: str | None) -> float:
        c = conns.get(c_id or "")
        if c is not None and c.end_time_us is not None:
            return float(c.end_time_us - b.t0)
        return span

    # pairing
    for p in a.pairing:
        lane = sub_lane(p.connection, "pairing") if p.connection else None
        lane = lane or device_lane(p.address)
        kind = "pairing failed" if p.outcome == "failure" else "pairing"
        last = p.frames[-1] if p.frames else None
        end = b.rel(p.end_time_us) if p.end_time_us is not None else at(last)
        interval(
            lane,
            kind,
            b.rel(p.start_time_us),
            end,
            p.start_frame,
            last,
            f"{p.transport} pairing {p.method or ''} {p.outcome}"
            f"{' ' + p.status_name if p.status_name else ''}, "
            f"{frames_text(p.start_frame, last)}",
        )
    # SDP exchanges
    for sd in a.sdp:
        lane = sub_lane(sd.connection, "SDP") or device_lane(sd.address)
        kind = "SDP error" if sd.error_name else "SDP"
        answer = sd.error_name or sd.response_pdu or "no answer"
        interval(
            lane,
            kind,
            b.rel(sd.request_time_us),
            b.rel(sd.response_time_us),
            sd.request_frame,
            sd.response_frame,
            f"SDP {sd.pdu} ({sd.direction}) → {answer}"
            f"{' ' + ', '.join(sd.services[:3]) if sd.services else ''}, "
            f"{frames_text(sd.request_frame, sd.response_frame)}",
        )
    # L2CAP channels (one lane per PSM on each link)
    for ch in a.l2cap_channels:
        if not (ch.result == 0 or ch.inferred):
            continue
        lane = sub_lane(ch.connection, f"L2CAP {ch.psm_name}")
        if lane is None:
            continue
        start_f = ch.response_frame or ch.request_frame
        start = b.rel(ch.open_time_us) if ch.open_time_us is not None else at(start_f)
        end = at(ch.close_frame) if ch.close_frame is not None else conn_end(ch.connection)
        cids = (
            f"CIDs {ch.local_cid:#06x}/{ch.remote_cid:#06x}"
            if ch.local_cid and ch.remote_cid
            else "CIDs ?"
        )
        interval(
            lane,
            "L2CAP channel",
            start,
            end,
            start_f,
            ch.close_frame,
            f"L2CAP {ch.psm_name} {ch.role or ''} {cids} ({ch.requester}), {ch.frames} "
            f"frames, {frames_text(start_f, ch.close_frame)}",
        )
    # AVDTP stream states: each state until the next one (an open after streaming: suspended)
    for st in a.avdtp.streams:
        lane = sub_lane(st.connection, "A2DP stream")
        if lane is None:
            continue
        states = st.states
        for i, s in enumerate(states):
            name = s.state
            if name == "open" and i > 0 and states[i - 1].state in ("streaming", "suspended"):
                name = "suspended"
            kind = f"A2DP {name}"
            if kind not in STATE_COLOURS:
                continue
            nxt = states[i + 1] if i + 1 < len(states) else None
            end = b.rel(nxt.time_us) if nxt is not None else conn_end(st.connection)
            interval(
                lane,
                kind,
                b.rel(s.time_us),
                end,
                s.frame,
                nxt.frame if nxt else None,
                f"A2DP {st.codec or ''} SEID {st.acp_seid} {name}, "
                f"{frames_text(s.frame, nxt.frame if nxt else None)}",
            )
    # HFP / HSP service level connections and calls
    for hs in a.hfp:
        label = hs.profile.upper() + " SLC"
        lane = sub_lane(hs.connection, label) or device_lane(hs.address)
        end_t = at(hs.end_frame) if hs.end_frame is not None else conn_end(hs.connection)
        start = b.rel(hs.start_time_us)
        if hs.slc_complete and hs.slc_frame is not None:
            slc = at(hs.slc_frame)
            interval(
                lane,
                "HFP SLC set-up",
                start,
                slc,
                hs.start_frame,
                hs.slc_frame,
                f"{label} set-up (AT+BRSF … AT+CMER), {frames_text(hs.start_frame, hs.slc_frame)}",
            )
            interval(
                lane,
                "HFP SLC",
                slc,
                end_t,
                hs.slc_frame,
                hs.end_frame,
                f"{label} up{', codec ' + hs.codec_name if hs.codec_name else ''}, "
                f"{frames_text(hs.slc_frame, hs.end_frame)}",
            )
        else:
            interval(
                lane,
                "HFP SLC incomplete",
                start,
                end_t,
                hs.start_frame,
                hs.end_frame,
                f"{label} never completed, {frames_text(hs.start_frame, hs.end_frame)}",
            )
        for call in hs.calls:
            end = b.rel(call.end_time_us) if call.end_time_us is not None else end_t
            interval(
                lane,
                "call",
                b.rel(call.start_time_us),
                end,
                call.start_frame,
                call.end_frame,
                f"{call.direction} call, {frames_text(call.start_frame, call.end_frame)}",
            )
    # advertising trains (segments) and silences
    for x in shown_adv:
        lane = device_lane(x.address)
        spans = [
            ("advertising", seg.from_time_us, seg.to_time_us, seg.from_frame, seg.to_frame,
             "advertising " + (f"interval {seg.interval_ms:.1f} ms" if seg.interval_ms
                               else (seg.note or "")) + f", {seg.events} events")
            for seg in x.segments
        ] + [
            ("advertising silence", sil.from_time_us, sil.to_time_us, sil.from_frame,
             sil.to_frame, f"silent {sil.duration_ms:.0f} ms")
            for sil in x.silences
        ]  # fmt: skip
        for kind, t_from, t_to, f_from, f_to, text in spans:
            interval(lane, kind, b.rel(t_from), b.rel(t_to), f_from, f_to,
                     f"{text}, {frames_text(f_from, f_to)}")  # fmt: skip

    # point events: the analysis's timeline, each on its lane
    kind_lane = {
        "sdp": "SDP",
        "avdtp": "A2DP stream",
        "stream_state": "A2DP stream",
        "slc": "HFP SLC",
        "call": "HFP SLC",
        "codec": "HFP SLC",
        "sco": "SCO/eSCO",
    }
    adv_lanes = {x.address for x in shown_adv}
    for e in a.timeline:
        lane2: str | None
        if e.lane in conns:
            sub = kind_lane.get(e.kind)
            if sub == "HFP SLC":
                hs2 = next((h for h in a.hfp if h.connection == e.lane), None)
                sub = (hs2.profile.upper() + " SLC") if hs2 else sub
            if e.kind == "sco" or conns[e.lane].transport in ("sco", "esco"):
                sub = "SCO/eSCO"
            lane2 = sub_lane(e.lane, sub) if sub else link_lane(e.lane)
        elif e.lane == "controller":
            lane2 = "capture"
        elif e.kind == "adv" and e.lane not in adv_lanes and e.lane not in addresses:
            continue  # an advertiser without a lane
        elif e.lane in addresses or e.lane in adv_lanes:
            lane2 = device_lane(e.lane)
        else:
            lane2 = "capture"
        b.pts.append(
            (
                lane2 or "capture",
                float(e.time_us - b.t0),
                e.frame,
                SEVERITY_RANK.get(e.severity, 0),
                _short(f"#{e.frame} {e.kind}: {e.text}"),
            )
        )

    # findings and incidents
    focus: dict[str, tuple[list[tuple[int, str]], float, float]] = {}
    by_ref: dict[str, tuple[list[tuple[int, str]], float, float]] = {}
    for i, f in enumerate(a.findings):
        lane3 = link_lane(f.connection) if f.connection else None
        if lane3 is None and f.address and (f.address in addresses):
            lane3 = device_lane(f.address)
        lane3 = lane3 or "capture"
        t = b.rel(f.time_us)
        if t is None and f.frames:
            t = at(f.frames[0])
        if t is None:
            continue
        first = f.frames[0] if f.frames else -1
        b.fds.append(
            (lane3, t, first, SEVERITY_RANK.get(f.severity, 0), _short(f"{f.id}: {f.message}"))
        )
        times = [t]
        if f.frames and clock_f.size:
            times += np.interp(f.frames[:200], clock_f, clock_t).tolist()
        marks = [(fr, lane3) for fr in f.frames[:200]]
        entry = (marks, min(times), max(times))
        focus[f"F{i}"] = entry
        if f.ref:
            by_ref[f.ref] = entry
    for j, inc in enumerate(a.incidents):
        refs = [inc.root_cause, *inc.consequences]
        marks2: list[tuple[int, str]] = []
        lo = b.rel(inc.start_time_us)
        hi = b.rel(inc.end_time_us)
        for r in refs:
            got = by_ref.get(r)
            if got is None:
                continue
            marks2 += got[0]
            lo = got[1] if lo is None else min(lo, got[1])
            hi = got[2] if hi is None else max(hi, got[2])
        if lo is None:
            continue
        hi = lo if hi is None else hi
        focus[f"I{j}"] = (marks2, lo, hi)
        first_f = marks2[0][0] if marks2 else None
        interval(
            "incidents",
            f"incident {inc.severity}",
            lo,
            hi,
            first_f,
            marks2[-1][0] if marks2 else None,
            f"{inc.id}: {inc.verdict}",
        )

    # lanes in group order: incidents, capture, then each device with its links and channels
    groups: dict[str, list[str]] = {}
    for key in b.order:
        if b.lanes[key].level < 2:
            groups.setdefault(b.lanes[key].group, []).append(key)
    children: dict[str, list[str]] = {}
    for key in b.order:
        if b.lanes[key].parent:
            children.setdefault(b.lanes[key].parent, []).append(key)
    # a device with nothing drawn on any of its lanes has none (a name heard in an inquiry)
    used = {r[0] for r in b.iv} | {r[0] for r in b.pts} | {r[0] for r in b.fds}
    busy = {b.lanes[k].group for k in used} | {"capture"}
    ordered: list[str] = []
    for group, keys in groups.items():
        if group not in busy:
            continue
        for key in sorted(keys, key=lambda k: b.lanes[k].level):  # the device, then its links
            ordered.append(key)
            ordered += sorted(children.get(key, []), key=_sub_rank)
    lanes = [b.lanes[k] for k in ordered]
    index = {ln.key: i for i, ln in enumerate(lanes)}
    notes = [b_note] if b_note else []

    iv = sorted(b.iv, key=lambda r: (index[r[0]], KINDS.index(r[1]), r[2]))
    pts = sorted(b.pts, key=lambda r: (index[r[0]], r[1]))
    fds = sorted(b.fds, key=lambda r: (index[r[0]], r[1]))
    end_us = max([span, *(r[3] for r in iv), *(r[1] for r in pts), *(r[1] for r in fds)])
    return LaneModel(
        lanes=lanes,
        t_end=float(end_us),
        iv_lane=np.array([index[r[0]] for r in iv], dtype=np.int64),
        iv_kind=np.array([KINDS.index(r[1]) for r in iv], dtype=np.int64),
        iv_start=np.array([r[2] for r in iv], dtype=np.float64),
        iv_end=np.array([r[3] for r in iv], dtype=np.float64),
        iv_frame=np.array([r[4] for r in iv], dtype=np.int64),
        iv_end_frame=np.array([r[5] for r in iv], dtype=np.int64),
        iv_text=[r[6] for r in iv],
        pt_lane=np.array([index[r[0]] for r in pts], dtype=np.int64),
        pt_time=np.array([r[1] for r in pts], dtype=np.float64),
        pt_frame=np.array([r[2] for r in pts], dtype=np.int64),
        pt_sev=np.array([r[3] for r in pts], dtype=np.int64),
        pt_text=[r[4] for r in pts],
        fd_lane=np.array([index[r[0]] for r in fds], dtype=np.int64),
        fd_time=np.array([r[1] for r in fds], dtype=np.float64),
        fd_frame=np.array([r[2] for r in fds], dtype=np.int64),
        fd_sev=np.array([r[3] for r in fds], dtype=np.int64),
        fd_text=[r[4] for r in fds],
        clock_frames=clock_f,
        clock_times=clock_t,
        notes=notes,
        index=index,
        focus=focus,
    )


# -- time axis: seconds from the start, idle gaps optionally compressed ---------------------------


@dataclass
class Axis:
    """True time (µs from the start) ↔ the x axis (seconds; idle gaps collapsed when
    compressed): piecewise linear through ``knots_t`` → ``knots_x``."""

    knots_t: np.ndarray
    knots_x: np.ndarray
    gaps: list[tuple[float, float]]  # collapsed (from, to) in µs

    def x(self, t_us: Any) -> Any:
        return (
            np.interp(t_us, self.knots_t, self.knots_x, left=None, right=None)
            if self.gaps
            else np.asarray(t_us, dtype=np.float64) / 1e6
        )

    def t(self, x: float) -> float:
        """µs from the start at axis position ``x``."""
        if not self.gaps:
            return x * 1e6
        return float(np.interp(x, self.knots_x, self.knots_t))


def axis(m: LaneModel, compress: bool = False) -> Axis:
    """The x axis: plain seconds, or with every idle gap (no event, no state change, no finding
    for longer than max(IDLE_MIN_S, IDLE_FRACTION of the capture)) collapsed."""
    plain = Axis(np.array([0.0, max(m.t_end, 1.0)]), np.array([0.0, max(m.t_end, 1.0) / 1e6]), [])
    if not compress:
        return plain
    busy = np.unique(
        np.concatenate([m.pt_time, m.fd_time, m.iv_start, m.iv_end, np.array([0.0, m.t_end])])
    )
    threshold = max(IDLE_MIN_S * 1e6, IDLE_FRACTION * m.t_end)
    d = np.diff(busy)
    idx = np.flatnonzero(d > threshold)
    if idx.size == 0:
        return plain
    keep = threshold * IDLE_KEEP
    kt: list[float] = [0.0]
    kx: list[float] = [0.0]
    gaps: list[tuple[float, float]] = []
    for i in idx.tolist():
        g0, g1 = float(busy[i]), float(busy[i + 1])
        if g0 > kt[-1]:
            kx.append(kx[-1] + (g0 - kt[-1]) / 1e6)
            kt.append(g0)
        kx.append(kx[-1] + keep / 1e6)
        kt.append(g1)
        gaps.append((g0, g1))
    if m.t_end > kt[-1]:
        kx.append(kx[-1] + (m.t_end - kt[-1]) / 1e6)
        kt.append(m.t_end)
    return Axis(np.array(kt), np.array(kx), gaps)


def _nice_ticks(ax: Axis, x0: float, x1: float, n: int = 8) -> tuple[list[float], list[str]]:
    """Tick positions on a compressed axis at round true times, labelled with the true time."""
    t0, t1 = ax.t(x0) / 1e6, ax.t(x1) / 1e6
    raw = max((t1 - t0) / n, 1e-6)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 5, 10) if s * mag >= raw)
    vals: list[float] = []
    text: list[str] = []
    k = math.ceil(t0 / step)
    digits = max(0, -math.floor(math.log10(step)))
    last_x = -math.inf
    min_dx = (x1 - x0) / (n * 2.5)
    while k * step <= t1 and len(vals) < 4 * n:
        t_us = k * step * 1e6
        tx = float(ax.x(t_us))
        hidden = any(g0 < t_us < g1 for g0, g1 in ax.gaps)  # inside a collapsed gap
        if tx - last_x >= min_dx and not hidden:
            vals.append(tx)
            text.append(f"{k * step:.{digits}f}")
            last_x = tx
        k += 1
    for edge in (t for g in ax.gaps for t in g):  # each collapsed gap's ends: their true times
        gx = float(ax.x(edge))
        if x0 <= gx <= x1 and all(abs(gx - v) >= min_dx / 2 for v in vals):
            vals.append(gx)
            text.append(f"{edge / 1e6:.{max(digits, 1)}f}")
    return vals, text


# -- bucketing -----------------------------------------------------------------------------------


@dataclass
class Marks:
    """What one window at one width draws (x in axis seconds)."""

    bars: dict[int, dict[str, list[Any]]]  # kind → x0, dx, lane, frame, text
    points: dict[int, dict[str, list[Any]]]  # severity rank → x, lane, frame, text, n
    findings: dict[str, list[Any]]  # x, lane, frame, text, sev
    width: int


def _bucket_points(
    x: np.ndarray, lane: np.ndarray, x0: float, bucket: float, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(first index, count) of each (lane, bucket) run among the kept marks (sorted by lane,
    then time)."""
    sel = np.flatnonzero(keep)
    if sel.size == 0:
        return sel, sel
    bk = np.floor((x[sel] - x0) / bucket).astype(np.int64)
    key = lane[sel] * (1 << 40) + bk
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    counts = np.diff(np.concatenate([starts, [sel.size]]))
    return sel[starts], counts


def marks(m: LaneModel, ax: Axis, x0: float, x1: float, width: int) -> Marks:
    """The marks of the window [x0, x1] (axis seconds) at ``width`` pixels: per lane at most one
    point per pixel (events in one pixel merged, the hover counts them, the colour is the worst
    severity), intervals closer than a pixel merged into one bar (the hover counts them)."""
    width = max(int(width), 50)
    while True:
        got = _marks(m, ax, x0, x1, width)
        n = (
            sum(len(v["x0"]) for v in got.bars.values())
            + sum(len(v["x"]) for v in got.points.values())
            + len(got.findings["x"])
        )
        if n <= MAX_MARKS or width <= 50:
            return got
        width = max(50, min(width // 2, int(width * MAX_MARKS / n * 0.9)))


def _marks(m: LaneModel, ax: Axis, x0: float, x1: float, width: int) -> Marks:
    bucket = max((x1 - x0) / width, 1e-9)
    ivs, ive = ax.x(m.iv_start), ax.x(m.iv_end)
    bars: dict[int, dict[str, list[Any]]] = {}
    keep = np.flatnonzero((ive >= x0) & (ivs <= x1))
    if keep.size:
        group = m.iv_lane[keep] * 64 + m.iv_kind[keep]
        bounds = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1], [True]]))
        for g0, g1 in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            sel = keep[g0:g1]
            s, e = ivs[sel], ive[sel]
            run_end = np.maximum.accumulate(e)
            brk = np.concatenate([[True], s[1:] - run_end[:-1] >= bucket])
            starts = np.flatnonzero(brk)
            stops = np.concatenate([starts[1:], [sel.size]])
            kind = int(m.iv_kind[sel[0]])
            lane = int(m.iv_lane[sel[0]])
            out = bars.setdefault(kind, {"x0": [], "dx": [], "lane": [], "frame": [], "text": []})
            for a_, b_ in zip(starts.tolist(), stops.tolist(), strict=True):
                lo = max(float(s[a_]), x0 - bucket)
                hi = min(float(run_end[b_ - 1]), x1 + bucket)
                out["x0"].append(round(lo, 6))
                out["dx"].append(round(max(hi - lo, bucket), 6))
                out["lane"].append(lane)
                i0 = int(sel[a_])
                out["frame"].append(int(m.iv_frame[i0]) if m.iv_frame[i0] >= 0 else None)
                n = b_ - a_
                if n == 1:
                    t_s, t_e = m.iv_start[i0], m.iv_end[i0]
                    out["text"].append(
                        f"{m.iv_text[i0]}<br>{_fmt_s(t_s)} → {_fmt_s(t_e)} ({_dur(t_e - t_s)})"
                    )
                else:
                    last = int(sel[b_ - 1])
                    f_a, f_b = int(m.iv_frame[i0]), int(m.iv_end_frame[last])
                    rng = f"frames #{f_a} … #{f_b}" if f_a >= 0 and f_b >= 0 else ""
                    out["text"].append(
                        f"{n} × {KINDS[kind]} merged (zoom in): "
                        f"{_fmt_s(m.iv_start[i0])} → "
                        f"{_fmt_s(float(m.iv_end[sel[a_:b_]].max()))} {rng}"
                        f"<br>first: {m.iv_text[i0]}"
                    )
    points: dict[int, dict[str, list[Any]]] = {}
    px = ax.x(m.pt_time)
    first, counts = _bucket_points(px, m.pt_lane, x0, bucket, (px >= x0) & (px <= x1))
    if first.size:
        sev = (
            np.maximum.reduceat(m.pt_sev[_expand(first, counts)], _offsets(counts))
            if counts.max() > 1
            else m.pt_sev[first]
        )
        for i, n, s in zip(first.tolist(), counts.tolist(), sev.tolist(), strict=True):
            out2 = points.setdefault(
                int(s), {"x": [], "lane": [], "frame": [], "text": [], "n": []}
            )
            out2["x"].append(round(float(px[i]), 6))
            out2["lane"].append(int(m.pt_lane[i]))
            out2["frame"].append(int(m.pt_frame[i]))
            out2["n"].append(n)
            if n == 1:
                out2["text"].append(f"{m.pt_text[i]}<br>{_fmt_s(m.pt_time[i])}")
            else:
                j = i + n - 1
                out2["text"].append(
                    f"{n} events, frames #{m.pt_frame[i]} … #{m.pt_frame[j]}, "
                    f"{_fmt_s(m.pt_time[i])} → {_fmt_s(m.pt_time[j])} (zoom "
                    f"in)<br>first: {m.pt_text[i]}"
                )
    fx = ax.x(m.fd_time)
    ffirst, fcounts = _bucket_points(fx, m.fd_lane, x0, bucket, (fx >= x0) & (fx <= x1))
    fnd: dict[str, list[Any]] = {"x": [], "lane": [], "frame": [], "text": [], "sev": []}
    for i, n in zip(ffirst.tolist(), fcounts.tolist(), strict=True):
        sl = slice(i, i + n)
        worst = int(m.fd_sev[sl].max())
        fnd["x"].append(round(float(fx[i]), 6))
        fnd["lane"].append(int(m.fd_lane[i]))
        fnd["frame"].append(int(m.fd_frame[i]) if m.fd_frame[i] >= 0 else None)
        fnd["sev"].append(SEVERITIES[worst])
        more = f"<br>+{n - 1} more findings here (zoom in)" if n > 1 else ""
        fnd["text"].append(f"{m.fd_text[i]}<br>{_fmt_s(m.fd_time[i])}{more}")
    return Marks(bars, points, fnd, width)


def _expand(first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The indices of every member of each (first, count) run, run after run."""
    return np.repeat(first - _offsets(counts), counts) + np.arange(int(counts.sum()))


def _offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


# -- the figure ----------------------------------------------------------------------------------


def lane_order(m: LaneModel, pinned: list[str] | tuple[str, ...] = ()) -> list[int]:
    """Lane indices top to bottom: the pinned ones first (in the order pinned), then the rest
    (at most MAX_LANES in all)."""
    pins = [m.index[k] for k in pinned if k in m.index]
    rest = [i for i in range(len(m.lanes)) if i not in set(pins)]
    return (pins + rest)[: max(MAX_LANES, len(pins))]


def window_x(m: LaneModel, ax: Axis, window: tuple[float, float] | None) -> tuple[float, float]:
    """The window (true seconds from the start, or None: all) on the axis."""
    full0, full1 = 0.0, float(ax.x(m.t_end))
    if window is None:
        pad = max((full1 - full0) * 0.01, 1e-3)
        return full0 - pad, full1 + pad
    t0, t1 = sorted(window)
    if not ax.gaps:
        x0, x1 = t0, t1
    else:  # inside the capture through the knots, beyond its ends 1:1
        x0 = float(ax.x(min(max(t0, 0.0), m.t_end / 1e6) * 1e6)) + min(t0, 0.0)
        x1 = float(ax.x(min(max(t1, 0.0), m.t_end / 1e6) * 1e6)) + max(t1 - m.t_end / 1e6, 0.0)
    if x1 - x0 < 1e-6:
        x1 = x0 + 1e-6
    return x0, x1


def figure(
    a: Analysis,
    frame: int | None = None,
    *,
    window: tuple[float, float] | None = None,
    width: int = DEFAULT_WIDTH,
    compress: bool = False,
    pinned: list[str] | tuple[str, ...] = (),
    highlight: list[tuple[int, str]] | None = None,
    static: bool = False,
) -> Any:
    """The swimlane figure of ``window`` (true seconds from the capture's start; None: the whole
    capture) bucketed at ``width`` pixels; ``frame`` drawn as a dotted line, ``highlight`` (frame,
    lane key) marks ringed. Trace 0 is the Δt measure, trace 1 the highlight (both patched in
    place by the dashboard)."""
    import plotly.graph_objects as go

    m = lane_model(a)
    ax = axis(m, compress)
    x0, x1 = window_x(m, ax, window)
    order = lane_order(m, pinned)
    row = {li: r for r, li in enumerate(order)}
    pins = {m.index[k] for k in pinned if k in m.index}
    mk = marks(m, ax, x0, x1, width)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[],
            y=[],
            mode="markers+lines+text",
            name="Δt",
            line={"color": "#000", "dash": "dash"},
            showlegend=False,
            marker={"symbol": "x-thin-open", "size": 14, "color": "#000"},
            textposition="top center",
            hoverinfo="skip",
        )
    )
    hx: list[float] = []
    hy: list[int] = []
    ht: list[str] = []
    for fr, key in highlight or []:
        li = m.index.get(key)
        if li is None or li not in row:
            continue
        hx.append(round(float(ax.x(m.frame_time(fr))), 6))
        hy.append(row[li])
        ht.append(f"highlighted frame {a.frame_ref(fr)}")
    fig.add_trace(
        go.Scatter(
            x=hx,
            y=hy,
            mode="markers",
            name="highlight",
            text=ht,
            customdata=[int(fr) for fr, key in highlight or [] if m.index.get(key) in row],
            marker={"symbol": "circle-open", "size": 20, "color": "#ffd600", "line": {"width": 3}},
            hoverinfo="text",
            showlegend=bool(hx),
        )
    )
    for kind in sorted(mk.bars):
        bb = mk.bars[kind]
        ys = [row.get(li) for li in bb["lane"]]
        ok = [i for i, y in enumerate(ys) if y is not None]
        name = KINDS[kind]
        fig.add_trace(
            go.Bar(
                orientation="h",
                base=[bb["x0"][i] for i in ok],
                x=[bb["dx"][i] for i in ok],
                y=[ys[i] for i in ok],
                name=name,
                marker_color=STATE_COLOURS[name],
                marker_line_width=0,
                width=0.8 if name.startswith("incident") else 0.6,
                hovertext=[bb["text"][i] for i in ok],
                hoverinfo="text",
                customdata=[bb["frame"][i] for i in ok],
            )
        )
    for sev in sorted(mk.points):
        pp = mk.points[sev]
        ys = [row.get(li) for li in pp["lane"]]
        ok = [i for i, y in enumerate(ys) if y is not None]
        fig.add_trace(
            go.Scatter(
                x=[pp["x"][i] for i in ok],
                y=[ys[i] for i in ok],
                mode="markers",
                name=f"{SEVERITIES[sev]} events",
                marker={
                    "color": SEVERITY_COLOUR[SEVERITIES[sev]],
                    "symbol": "line-ns-open",
                    "size": [9 if pp["n"][i] == 1 else 14 for i in ok],
                    "line": {"width": 2},
                },
                text=[pp["text"][i] for i in ok],
                customdata=[pp["frame"][i] for i in ok],
                hoverinfo="text",
            )
        )
    fd = mk.findings
    ys = [row.get(li) for li in fd["lane"]]
    ok = [i for i, y in enumerate(ys) if y is not None]
    if ok:
        fig.add_trace(
            go.Scatter(
                x=[fd["x"][i] for i in ok],
                y=[ys[i] for i in ok],
                mode="markers",
                name="findings",
                marker={
                    "color": [SEVERITY_COLOUR[fd["sev"][i]] for i in ok],
                    "size": 14,
                    "symbol": "diamond",
                    "line": {"width": 1, "color": "#fff"},
                },
                text=[fd["text"][i] for i in ok],
                customdata=[fd["frame"][i] for i in ok],
                hoverinfo="text",
            )
        )
    gx = [float(ax.x((g0 + g1) / 2)) for g0, g1 in ax.gaps]
    if gx:
        fig.add_trace(
            go.Scatter(
                x=gx,
                y=[-0.5] * len(gx),
                mode="markers",
                name="collapsed gaps",
                marker={
                    "symbol": "line-ns",
                    "size": 600,
                    "color": "rgba(0,0,0,0.15)",
                    "line": {"width": 6, "color": "rgba(0,0,0,0.12)"},
                },
                text=[
                    f"{_dur(g1 - g0)} with nothing happening collapsed: {_fmt_s(g0)} → {_fmt_s(g1)}"
                    for g0, g1 in ax.gaps
                ],
                hoverinfo="text",
                showlegend=False,
            )
        )
    if frame is not None:
        fig.add_vline(
            x=round(float(ax.x(m.frame_time(frame))), 6), line_dash="dot", line_color="#444"
        )
    labels = [("(pinned) " if li in pins else "") + m.lanes[li].label for li in order]
    xaxis: dict[str, Any] = {
        "range": [x0, x1],
        "title": "seconds from the capture start" + (" (idle gaps collapsed)" if ax.gaps else ""),
        "showgrid": True,
        "zeroline": False,
    }
    if ax.gaps:
        vals, text = _nice_ticks(ax, x0, x1)
        xaxis |= {"tickmode": "array", "tickvals": vals, "ticktext": text}
    if static:
        xaxis["rangeslider"] = {"visible": True, "thickness": 0.06}
    notes = list(m.notes)
    if len(m.lanes) > len(order):
        notes.append(f"{len(m.lanes) - len(order)} more lanes not drawn (pin one to see it)")
    if mk.width < width:
        notes.append("dense window: bucketed coarser than a pixel")
    fig.update_layout(
        height=max(300, 170 + LANE_PX * len(order) + (60 if static else 0)),
        margin={"l": 10, "r": 10, "t": 70, "b": 40},
        xaxis=xaxis,
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(len(order))),
            "ticktext": labels,
            "range": [len(order) - 0.5, -0.7],
            "fixedrange": True,
            "automargin": True,
            "showgrid": True,
            "gridcolor": "#eee",
            "zeroline": False,
        },
        barmode="overlay",
        # the legend above the lanes, after what the figure leaves out (its title)
        legend={
            "orientation": "h",
            "x": 0,
            "y": 1.0,
            "yanchor": "bottom",
            "title": {
                "text": "; ".join(notes) + ":" if notes else "",
                "font": {"size": 12, "color": "#b71c1c"},
                "side": "top left",
            },
        },
        hovermode="closest",
        dragmode="zoom",
        bargap=0.2,
        plot_bgcolor="#fff",
    )
    return fig


def overview(a: Analysis, window: tuple[float, float] | None = None, bins: int = 400) -> Any:
    """The whole capture in one strip: marks per time bin (events, state changes, findings),
    the connections' span behind, the window shown as a shaded band; drag across it to pick a
    window, click to move the window there."""
    import plotly.graph_objects as go

    m = lane_model(a)
    end = max(m.t_end, 1.0)
    edges = np.linspace(0.0, end, bins + 1)
    times = np.concatenate([m.pt_time, m.iv_start, m.fd_time])
    counts, _ = np.histogram(times, bins=edges)
    centres = ((edges[:-1] + edges[1:]) / 2 / 1e6).round(6)
    errs, _ = np.histogram(m.fd_time, bins=edges)
    fig = go.Figure(
        [
            go.Bar(
                x=centres,
                y=np.log1p(counts).round(3),
                name="activity",
                marker_color="#90a4ae",
                marker_line_width=0,
                hovertext=[
                    f"{c} marks around {x:.1f} s"
                    for c, x in zip(counts.tolist(), centres.tolist(), strict=True)
                ],
                hoverinfo="text",
            ),
            go.Scatter(
                x=centres[errs > 0],
                y=np.zeros(int((errs > 0).sum())),
                mode="markers",
                marker={"symbol": "diamond", "color": SEVERITY_COLOUR["error"], "size": 8},
                name="findings",
                hoverinfo="skip",
            ),
        ]
    )
    fig.update_layout(
        height=110,
        margin={"l": 10, "r": 10, "t": 4, "b": 24},
        showlegend=False,
        xaxis={"range": [0, end / 1e6], "fixedrange": True, "title": None},
        yaxis={"visible": False, "fixedrange": True},
        bargap=0,
        dragmode="select",
        selectdirection="h",
        plot_bgcolor="#fafafa",
        shapes=window_shapes(window),
    )
    return fig


def window_shapes(window: tuple[float, float] | None) -> list[dict[str, Any]]:
    """The overview's band for the window shown (none for the whole capture)."""
    if window is None:
        return []
    return [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": window[0],
            "x1": window[1],
            "y0": 0,
            "y1": 1,
            "fillcolor": "rgba(21,101,192,0.18)",
            "line": {"color": "#1565c0", "width": 1},
        }
    ]


def focus_window(a: Analysis, key: str) -> tuple[tuple[float, float], list[tuple[int, str]]]:
    """The window showing a finding (``F<n>``: the n-th) or an incident (``I<n>``) with some
    context around it, and its frames (with their lanes) to highlight. KeyError if unknown."""
    m = lane_model(a)
    marks_, lo, hi = m.focus[key]
    span = hi - lo
    pad = max(span * 0.25, 0.25e6)
    return (round((lo - pad) / 1e6, 6), round((hi + pad) / 1e6, 6)), marks_


def frame_window(a: Analysis, frame: int) -> tuple[float, float] | None:
    """The window an evidence frame link opens: FRAME_WINDOW_S (or FRAME_WINDOW_FRACTION of the
    capture, if wider) centred on the frame's time, shifted to stay inside the capture; None
    (the whole capture) for a capture with no span."""
    m = lane_model(a)
    end = m.t_end / 1e6
    if end <= 0:
        return None
    width = min(end, max(FRAME_WINDOW_S, FRAME_WINDOW_FRACTION * end))
    at = min(max(m.frame_time(frame) / 1e6, 0.0), end)
    lo = min(max(at - width / 2, 0.0), end - width)
    return (round(lo, 6), round(lo + width, 6))


def frame_marks(a: Analysis, frame: int) -> list[tuple[int, str]]:
    """The frame on the lanes that draw it (its events, findings, the states it starts or
    ends), to ring: (frame, lane key) pairs; none when no mark carries it."""
    m = lane_model(a)
    lanes = {
        *m.pt_lane[m.pt_frame == frame].tolist(),
        *m.fd_lane[m.fd_frame == frame].tolist(),
        *m.iv_lane[(m.iv_frame == frame) | (m.iv_end_frame == frame)].tolist(),
    }
    return [(frame, m.lanes[li].key) for li in sorted(lanes)]


def parse_window(t0: str | None, t1: str | None) -> tuple[float, float] | None:
    """The URL's ``t0`` / ``t1`` (seconds) as a window, or None."""
    try:
        a_, b_ = float(t0 or ""), float(t1 or "")
    except ValueError:
        return None
    if not (math.isfinite(a_) and math.isfinite(b_)) or a_ == b_:
        return None
    return (min(a_, b_), max(a_, b_))


def window_from_relayout(
    a: Analysis, relayout: dict[str, Any] | None, compress: bool
) -> tuple[float, float] | str | None:
    """What a zoom / pan / double click on the graph asks for: a window (true seconds), None
    (the whole capture) or "same" (nothing about the x axis)."""
    r = relayout or {}
    if r.get("xaxis.autorange"):
        return None
    if "xaxis.range[0]" in r and "xaxis.range[1]" in r:
        x0, x1 = float(r["xaxis.range[0]"]), float(r["xaxis.range[1]"])
    elif isinstance(r.get("xaxis.range"), list) and len(r["xaxis.range"]) == 2:
        x0, x1 = float(r["xaxis.range"][0]), float(r["xaxis.range"][1])
    else:
        return "same"
    ax = axis(lane_model(a), compress)
    return (round(ax.t(x0) / 1e6, 6), round(ax.t(x1) / 1e6, 6))


def x_of(a: Analysis, t_s: float, compress: bool) -> float:
    """The axis position of true time ``t_s`` (seconds from the start)."""
    return round(float(axis(lane_model(a), compress).x(t_s * 1e6)), 6)


def frame_seconds(a: Analysis, frame: int) -> float:
    """Seconds from the start of a frame, from the model's dated frames."""
    return lane_model(a).frame_time(frame) / 1e6


def lane_options(a: Analysis) -> list[dict[str, str]]:
    """The pin control's choices: every lane, indented by its level."""
    out = []
    for ln in lane_model(a).lanes:
        text = ln.label.replace("<b>", "").replace("</b>", "").replace("\u2003", "")
        if ln.level:
            group = next(
                (x.label for x in lane_model(a).lanes if x.group == ln.group and x.level == 0), ""
            )
            text = f"{group.replace('<b>', '').replace('</b>', '')} › {text}"
        out.append({"label": text, "value": ln.key})
    return out


__all__ = [
    "DEFAULT_WIDTH",
    "Lane",
    "LaneModel",
    "axis",
    "figure",
    "focus_window",
    "frame_marks",
    "frame_window",
    "lane_model",
    "marks",
    "overview",
    "parse_window",
    "window_from_relayout",
]


# -- the capture page's timeline section and its callbacks ----------------------------------------


def section(a: Analysis, cid: str, query: dict[str, list[str]], frame: int | None) -> Any:
    """The timeline on the capture page: controls, the overview strip, the swimlane (the
    window from the URL's ``t0`` / ``t1``) and the stores its callbacks keep their state in."""
    from dash import dcc, html

    window = parse_window(_first(query.get("t0")), _first(query.get("t1")))
    highlight: dict[str, Any] | None = None
    if frame is not None:  # an evidence frame link: its moment (unless the URL has a window)
        if window is None and "t0" not in query and "t1" not in query:
            window = frame_window(a, frame)
        rings = frame_marks(a, frame)
        highlight = {"key": f"frame {frame}", "marks": [list(x) for x in rings]}
    compress = _first(query.get("gaps")) == "1"
    known = lane_model(a).index
    pins = [k for k in (_first(query.get("pin")) or "").split("|") if k in known]
    return html.Div(
        [
            html.H3("Timeline", id="timeline"),
            html.P(
                "Lanes per device: its links, then each link's channels and profiles, drawn as "
                "states; ticks are signalling events, diamonds findings. Drag on the timeline to "
                "zoom (double-click: the whole capture), drag across the strip above it to pick "
                "a window; click two marks for the time between them.",
                style={"fontSize": "13px", "color": "#555"},
            ),
            html.Div(
                [
                    dcc.Checklist(
                        id="swim-compress",
                        options=[
                            {
                                "label": f" collapse idle gaps (over {IDLE_MIN_S:g} s or "
                                f"{IDLE_FRACTION:.0%} of the capture with nothing happening)",
                                "value": "on",
                            }
                        ],
                        value=["on"] if compress else [],
                        style={"display": "inline-block", "marginRight": "16px"},
                    ),
                    html.Button("Whole capture", id="swim-reset", n_clicks=0),
                    dcc.Dropdown(
                        id="swim-pin",
                        options=lane_options(a),
                        multi=True,
                        value=pins,
                        placeholder="pin lanes to the top…",
                        style={
                            "width": "560px",
                            "display": "inline-block",
                            "verticalAlign": "middle",
                            "marginLeft": "16px",
                        },
                    ),
                ]
            ),
            html.Div(
                "Click a mark, then another: the time between them.",
                id="swim-dt",
                style={"fontFamily": "monospace", "fontSize": "13px", "margin": "4px 0"},
            ),
            html.Div(
                _window_note(a, window, highlight),
                id="swim-note",
                style={"fontSize": "12px", "color": "#555"},
            ),
            dcc.Graph(
                id="swimlane-overview", figure=overview(a, window), config={"displayModeBar": False}
            ),
            dcc.Graph(
                id="swimlane",
                figure=figure(
                    a,
                    frame,
                    window=window,
                    compress=compress,
                    pinned=pins,
                    highlight=[(int(f), str(k)) for f, k in (highlight or {}).get("marks", [])],
                ),
                config={"displaylogo": False, "scrollZoom": False},
            ),
            dcc.Store(id="swim-cid", data=cid),
            dcc.Store(id="swim-window", data=list(window) if window else None),
            dcc.Store(id="swim-highlight", data=highlight),
            dcc.Store(id="swim-measure"),
            dcc.Store(id="swim-px"),
            dcc.Store(id="swim-url"),
        ],
        id="timeline-box",
    )


def _first(v: list[str] | None) -> str | None:
    return v[0] if v else None


def _window_note(
    a: Analysis, window: tuple[float, float] | None, highlight: dict[str, Any] | None = None
) -> str:
    end = lane_model(a).t_end / 1e6
    if window is None:
        note = f"The whole capture: 0 → {end:.3f} s."
    else:
        note = (
            f"Window {window[0]:.6f} → {window[1]:.6f} s ({window[1] - window[0]:.6f} s) of "
            f"0 → {end:.3f} s."
        )
    if highlight:
        note += f" Highlighted: {highlight.get('key')} ({len(highlight.get('marks') or [])} marks)."
    return note


def focus_button(key: str) -> Any:
    """The "on the timeline" button of a finding (``F<n>``) or an incident (``I<n>``)."""
    from dash import html

    return html.Button(
        "on the timeline",
        id={"type": "swim-focus", "index": key},
        n_clicks=0,
        className="swim-focus",
        title="zoom the timeline to its frames",
        style={"fontSize": "11px", "marginLeft": "6px"},
    )


#: the browser keeps the window in the URL without reloading the page (replaceState), and tells
#: the page's dcc.Location the new search and href (written down in ``url-written``: the page's
#: route renders nothing again for it) — else a later link to the search Location still holds
#: (the same ``?frame=N`` after a zoom) would not count as a change and not re-render the page;
#: the href too, or Location (refresh) would load its stale href
URL_JS = """
function(win, compress, pins) {
    const u = new URL(window.location.href);
    if (win && win.length === 2) {
        u.searchParams.set('t0', win[0].toFixed(6));
        u.searchParams.set('t1', win[1].toFixed(6));
    } else {
        u.searchParams.delete('t0');
        u.searchParams.delete('t1');
    }
    if (compress && compress.length) { u.searchParams.set('gaps', '1'); }
    else { u.searchParams.delete('gaps'); }
    if (pins && pins.length) { u.searchParams.set('pin', pins.join('|')); }
    else { u.searchParams.delete('pin'); }
    if (u.toString() !== window.location.href) {
        window.history.replaceState(window.history.state, '', u.toString());
    }
    return [u.search, u.pathname + u.search, u.search, u.toString()];
}
"""
#: the graph's plotting width in pixels (what a window is bucketed at)
WIDTH_JS = """
function(cid) {
    const el = document.getElementById('swimlane');
    return el ? Math.max(300, Math.round(el.getBoundingClientRect().width) - 260) : null;
}
"""


def install(app: Any, lib: Any) -> None:
    """The timeline's callbacks: window changes (zoom / pan / overview / incident / reset) →
    one re-render bucketed for that window; Δt clicks patch the measure trace; the window goes
    into the URL."""
    import dash
    from dash import ALL, Input, Output, Patch, State, ctx

    app.clientside_callback(WIDTH_JS, Output("swim-px", "data"), Input("swim-cid", "data"))
    app.clientside_callback(
        URL_JS,
        Output("swim-url", "data"),
        Output("url-written", "data"),
        Output("url", "search", allow_duplicate=True),
        Output("url", "href"),
        Input("swim-window", "data"),
        Input("swim-compress", "value"),
        Input("swim-pin", "value"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("swim-window", "data"),
        Output("swim-highlight", "data"),
        Input("swimlane", "relayoutData"),
        Input("swimlane-overview", "selectedData"),
        Input("swimlane-overview", "clickData"),
        Input({"type": "swim-focus", "index": ALL}, "n_clicks"),
        Input("swim-reset", "n_clicks"),
        State("swim-window", "data"),
        State("swim-compress", "value"),
        State("swim-cid", "data"),
        prevent_initial_call=True,
    )
    def set_window(
        relayout: dict[str, Any] | None,
        selected: dict[str, Any] | None,
        click: dict[str, Any] | None,
        _focus: list[int | None],
        _reset: int,
        current: list[float] | None,
        compress: list[str] | None,
        cid: str | None,
    ) -> Any:
        a = lib.analysis(cid) if cid else None
        trig = ctx.triggered_id
        if a is None or trig is None:
            return dash.no_update, dash.no_update
        if isinstance(trig, dict):  # an incident's or a finding's button
            if not (ctx.triggered and ctx.triggered[0].get("value")):
                return dash.no_update, dash.no_update
            try:
                win, marks_ = focus_window(a, str(trig.get("index")))
            except KeyError:
                return dash.no_update, dash.no_update
            return list(win), {"key": trig.get("index"), "marks": [list(x) for x in marks_]}
        if trig == "swim-reset":
            return None, None
        if trig == "swimlane":
            got = window_from_relayout(a, relayout, bool(compress))
            if got == "same":
                return dash.no_update, dash.no_update
            win2 = None if got is None else list(got)
            if win2 == current:
                return dash.no_update, dash.no_update
            return win2, dash.no_update
        if trig == "swimlane-overview":
            prop = ctx.triggered[0]["prop_id"] if ctx.triggered else ""
            rng = ((selected or {}).get("range") or {}).get("x")
            if prop.endswith("selectedData") and rng:  # a drag across the strip
                lo, hi = sorted(float(v) for v in rng)
                return [round(lo, 6), round(hi, 6)], dash.no_update
            pts = (click or {}).get("points") or []
            if prop.endswith("clickData") and pts and "x" in pts[0]:  # a click: move there
                mid = float(pts[0]["x"])
                half = (current[1] - current[0]) / 2 if current else lane_model(a).t_end / 2e7
                return [round(mid - half, 6), round(mid + half, 6)], dash.no_update
        return dash.no_update, dash.no_update

    @app.callback(
        Output("swimlane", "figure"),
        Output("swimlane-overview", "figure"),
        Output("swim-note", "children"),
        Input("swim-window", "data"),
        Input("swim-highlight", "data"),
        Input("swim-compress", "value"),
        Input("swim-pin", "value"),
        State("swim-cid", "data"),
        State("swim-px", "data"),
        State("packet-selected", "data"),
        prevent_initial_call=True,
    )
    def render(
        window: list[float] | None,
        highlight: dict[str, Any] | None,
        compress: list[str] | None,
        pinned: list[str] | None,
        cid: str | None,
        px: int | None,
        selected: int | None,
    ) -> Any:
        a = lib.analysis(cid) if cid else None
        if a is None:
            return dash.no_update, dash.no_update, dash.no_update
        win = (float(window[0]), float(window[1])) if window else None
        marks_ = [(int(f), str(k)) for f, k in (highlight or {}).get("marks", [])]
        fig = figure(
            a,
            selected if isinstance(selected, int) else None,
            window=win,
            width=int(px or DEFAULT_WIDTH),
            compress=bool(compress),
            pinned=pinned or [],
            highlight=marks_,
        )
        strip = Patch()  # the overview: its band moves, a drag's selection box goes
        strip["layout"]["shapes"] = window_shapes(win)
        strip["layout"]["selections"] = []
        strip["data"][0]["selectedpoints"] = None
        return fig, strip, _window_note(a, win, highlight)

    @app.callback(
        Output("swim-dt", "children"),
        Output("swim-measure", "data"),
        Output("swimlane", "figure", allow_duplicate=True),
        Input("swimlane", "clickData"),
        State("swim-measure", "data"),
        State("swim-cid", "data"),
        State("swim-compress", "value"),
        prevent_initial_call=True,
    )
    def measure(
        click: dict[str, Any] | None,
        held: list[Any] | None,
        cid: str | None,
        compress: list[str] | None,
    ) -> Any:
        a = lib.analysis(cid) if cid else None
        pts = (click or {}).get("points") or []
        if a is None or not pts:
            return dash.no_update, dash.no_update, dash.no_update
        got = click_point(a, pts[0], bool(compress))
        if got is None:
            return dash.no_update, dash.no_update, dash.no_update
        first = held[0] if held and len(held) == 1 else None
        marks_ = [first, got] if first else [got]
        patch = Patch()  # trace 0 is the measure: only it changes
        patch["data"][0]["x"] = [x_of(a, p[1], bool(compress)) for p in marks_]
        patch["data"][0]["y"] = [p[2] for p in marks_]
        patch["data"][0]["text"] = [f"#{p[0]}" if p[0] is not None else "" for p in marks_]
        return measure_text(a, marks_), marks_, patch


def click_point(a: Analysis, pt: dict[str, Any], compress: bool) -> list[Any] | None:
    """A clicked mark as [frame or None, true seconds, lane row]: the time of the frame it
    carries (its first frame: a bar's start), else its axis position."""
    cd = pt.get("customdata")
    frame = cd[0] if isinstance(cd, list) and cd else cd
    y = pt.get("y")
    if isinstance(frame, int):
        return [frame, round(frame_seconds(a, frame), 6), y]
    x = pt.get("base", pt.get("x"))
    if not isinstance(x, int | float):
        return None
    return [None, round(axis(lane_model(a), compress).t(float(x)) / 1e6, 6), y]


def measure_text(a: Analysis, marks_: list[list[Any]]) -> str:
    """The Δt line: one mark held, or the time and frames between two."""

    def name(p: list[Any]) -> str:
        return (a.frame_ref(p[0]) if p[0] is not None else "a mark") + f" at {p[1]:.6f} s"

    if len(marks_) == 1:
        return f"From {name(marks_[0])}: click another mark for Δt."
    p, q = marks_
    dt = q[1] - p[1]
    frames = f", {abs(q[0] - p[0])} frames apart" if p[0] is not None and q[0] is not None else ""
    return f"Δt = {dt * 1e3:+.3f} ms ({dt:+.6f} s) from {name(p)} to {name(q)}{frames}"
