"""Procedure sequence charts (issue 21): per remote device and procedure, the messages between
the host, its controller and the remote device, in order, each with its frame and time; rejects
and errors marked; and the steps the procedure's specification expects next that never came,
as *ghost* messages — so a missing START or an SLC that stopped after AT+BRSF is visible.

Built from the stored :class:`~analyzer.model.Analysis` only (no decoding). Procedures and the
specification order their ghosts follow:

* ``avdtp`` — AVDTP 1.3 §8 / A2DP 1.4 §3.2: DISCOVER → GET_(ALL_)CAPABILITIES →
  SET_CONFIGURATION → OPEN → START (each command answered by accept / reject).
* ``sdp`` — Core Vol 3 Part B §4: every request answered by its response (or ErrorResponse).
* ``pairing`` — BR/EDR Secure Simple Pairing and legacy pairing as the host drives it (Core Vol
  4 Part E §7.1.x, Vol 3 Part C §5.2.2): Authentication Requested → Link Key Request (Negative)
  Reply → IO Capability Request Reply → the confirmation for the method → Authentication
  Complete → Set Connection Encryption → Encryption Change.
* ``hfp`` — HFP 1.9 §4.2.1: AT+BRSF → AT+CIND=? → AT+CIND? → AT+CMER (each answered OK).
* ``l2cap`` — Core Vol 3 Part A §4: every signalling request answered by its response.
* ``le`` — LE connection (Vol 4 Part E §7.8.12, §7.7.65.1), SMP (Vol 3 Part H §2.3, §3.5) and
  encryption (§7.7.8): Pairing Request → Pairing Response → (Public Keys, SC) → Confirm →
  Random → (DHKey Check, SC) → Encryption Change.

Ghosts are drawn only for steps after the procedure's first observed step: a capture that
starts mid-procedure does not earn ghosts for its beginning. Devices and their connections are
the ones :mod:`analyzer.diff` aligns (its ``_remotes`` and ``_conn_ids``), so the compare page
can show the same procedure of two captures with their first divergent step marked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from analyzer.diff import _conn_ids, _remotes
from analyzer.model import Analysis

HOST, CONTROLLER, REMOTE = "host", "controller", "remote"
LIFELINES = (HOST, CONTROLLER, REMOTE)
#: message kinds and their colours (errors as the findings' error red)
COLOURS = {"ok": "#37474f", "error": "#c62828", "ghost": "#9e9e9e"}
#: the most messages one chart shows (a long HFP session or a stream with delay reports)
MAX_MESSAGES = 160


@dataclass
class Message:
    src: str  # host / controller / remote
    dst: str
    label: str
    frame: int | None
    time_us: int | None
    kind: str = "ok"  # ok / error / ghost
    step: str | None = None  # the specification step this message is (for the ghosts)
    detail: str = ""
    order: float = 0.0  # where it goes: its frame (an answer that never came: after the ask)

    def __post_init__(self) -> None:
        if self.frame is not None and not self.order:
            self.order = float(self.frame)


@dataclass
class Sequence:
    key: str  # unique in the capture, e.g. "avdtp:acl-0x001-1"
    procedure: str
    address: str | None
    connection: str | None
    title: str
    messages: list[Message] = field(default_factory=list)
    truncated: int = 0  # messages left out beyond MAX_MESSAGES

    @property
    def ghosts(self) -> list[Message]:
        return [m for m in self.messages if m.kind == "ghost"]

    @property
    def errors(self) -> list[Message]:
        return [m for m in self.messages if m.kind == "error"]

    @property
    def first_frame(self) -> int:
        return min((m.frame for m in self.messages if m.frame is not None), default=0)


def _side(direction: str | None) -> tuple[str, str]:
    """(source, destination) of a message the host sent / received over the air."""
    return (HOST, REMOTE) if direction == "sent" else (REMOTE, HOST)


def _ghosts(
    msgs: list[Message],
    order: list[tuple[str, ...]],
    src: str,
    dst: str,
    why: str,
    *,
    failure_ends: bool = False,
) -> list[Message]:
    """Insert ghost messages for the steps of ``order`` (each a tuple of equivalent step
    names, the first one shown) that no message took, after the first step that was taken.
    ``failure_ends``: a failure ends the procedure (pairing, SMP: Authentication Complete or
    Pairing Failed), so no step after the failed one is expected."""
    index = {name: i for i, names in enumerate(order) for name in names}
    taken = {index[m.step] for m in msgs if m.step in index and m.kind != "ghost"}
    if not taken:
        return msgs
    end = len(order)
    if failure_ends and any(m.kind == "error" for m in msgs):
        failed = [index[m.step] for m in msgs if m.kind == "error" and m.step in index]
        end = min(failed) if failed else max(taken) + 1
    out = list(msgs)
    for i in range(min(taken) + 1, end):
        if i in taken:
            continue
        # after the last message of an earlier step (or of an earlier ghost)
        pos = max(
            (k + 1 for k, m in enumerate(out) if m.step in index and index[m.step] < i),
            default=len(out),
        )
        out.insert(pos, Message(src, dst, order[i][0], None, None, "ghost", order[i][0], why))
    return out


def _answer_ghost(req: Message, label: str) -> Message:
    return Message(
        req.dst, req.src, label, None, None, "ghost", req.step, "never answered", req.order + 0.5
    )


def _in_order(msgs: list[Message]) -> list[Message]:
    return sorted(msgs, key=lambda m: m.order)


# -- procedures ---------------------------------------------------------------------------------

AVDTP_ORDER: list[tuple[str, ...]] = [
    ("DISCOVER",),
    ("GET_ALL_CAPABILITIES", "GET_CAPABILITIES"),
    ("SET_CONFIGURATION",),
    ("OPEN",),
    ("START",),
]


def avdtp(a: Analysis, conn: str, address: str | None) -> Sequence:
    msgs: list[Message] = []
    sigs = sorted(
        (s for s in a.avdtp.signals if s.connection == conn), key=lambda s: s.command_frame or 0
    )
    initiator = next((s.direction for s in sigs if s.signal == "DISCOVER"), None) or next(
        (s.direction for s in sigs if s.signal == "SET_CONFIGURATION"), "sent"
    )
    for s in sigs:
        src, dst = _side(s.direction)
        what = s.signal + (f" SEID {s.seid}" if s.seid is not None else "")
        if s.details.codec:
            what += f" {s.details.codec}"
        if s.details.delay_ms is not None:
            what += f" {s.details.delay_ms:g} ms"
        msgs.append(Message(src, dst, what, s.command_frame, s.command_time_us, "ok", s.signal))
        if s.response is None:
            msgs.append(_answer_ghost(msgs[-1], f"{s.signal} answer"))
            continue
        bad = s.response in ("reject", "general_reject")
        ans = f"{s.signal} {s.response}" + (f" {s.error_name}" if s.error_name else "")
        if s.error_code is not None and s.error_name is None:
            ans += f" 0x{s.error_code:02X}"
        msgs.append(
            Message(
                dst,
                src,
                ans,
                s.response_frame,
                s.response_time_us,
                "error" if bad else "ok",
                s.signal,
            )
        )
    msgs = _in_order(msgs)
    src, dst = _side(initiator)
    msgs = _ghosts(msgs, AVDTP_ORDER, src, dst, "expected by AVDTP 1.3 §8, never sent")
    return Sequence(f"avdtp:{conn}", "avdtp", address, conn, f"AVDTP negotiation on {conn}", msgs)


def sdp(a: Analysis, conn: str | None, address: str | None) -> Sequence:
    msgs: list[Message] = []
    for t in sorted(
        (t for t in a.sdp if t.connection == conn and t.address == address),
        key=lambda t: t.request_frame,
    ):
        src, dst = _side(t.direction)
        what = f"{t.pdu} " + (", ".join(t.uuids) or "")
        if t.continuations:
            what += f" (+{t.continuations} continued)"
        msgs.append(
            Message(src, dst, what.strip(), t.request_frame, t.request_time_us, "ok", "req")
        )
        if t.response_frame is None:
            msgs.append(_answer_ghost(msgs[-1], "response"))
            continue
        err = (
            t.error_name is not None
            or t.error_code is not None
            or (t.response_pdu or "").startswith("Error")
        )
        ans = (t.response_pdu or "response") + (f": {t.error_name}" if t.error_name else "")
        if t.services:
            ans += " — " + ", ".join(t.services[:4])
        msgs.append(
            Message(dst, src, ans, t.response_frame, t.response_time_us, "error" if err else "ok")
        )
    msgs = _in_order(msgs)
    return Sequence(f"sdp:{conn}:{address}", "sdp", address, conn, f"SDP on {conn}", msgs)


#: the confirmation the host sends for each SSP method (Vol 4 Part E §7.1.30-§7.1.35)
SSP_CONFIRM = {
    "numeric_comparison": "User Confirmation Request Reply",
    "just_works": "User Confirmation Request Reply",
    "passkey": "User Passkey Request Reply",
    "oob": "Remote OOB Data Request Reply",
}
PAIRING_COMMANDS = (
    "Authentication Requested",
    "Link Key Request Reply",
    "Link Key Request Negative Reply",
    "PIN Code Request Reply",
    "PIN Code Request Negative Reply",
    "IO Capability Request Reply",
    "IO Capability Request Negative Reply",
    "User Confirmation Request Reply",
    "User Confirmation Request Negative Reply",
    "User Passkey Request Reply",
    "User Passkey Request Negative Reply",
    "Remote OOB Data Request Reply",
    "Remote OOB Data Request Negative Reply",
    "Set Connection Encryption",
)


def pairing(a: Analysis, index: int) -> Sequence:
    p = a.pairing[index]
    nxt = [q.start_frame for q in a.pairing[index + 1 :] if q.address == p.address]
    last = max([*p.frames, p.start_frame])
    stop = min([*nxt, last + 40])  # the encryption that follows the pairing
    cmds = [
        h
        for h in a.hci_commands
        if p.start_frame <= h.frame <= stop
        and h.name in PAIRING_COMMANDS
        and (h.address == p.address or (h.connection is not None and h.connection == p.connection))
    ]
    msgs: list[Message] = []
    used: set[int] = set()
    for h in cmds:
        used.update(f for f in (h.frame, h.status_frame, h.complete_frame) if f is not None)
    pending = sorted(f for f in p.frames if f not in used)
    for h in cmds:
        if h.name.endswith(" Reply"):
            # the event this command answers (Vol 4 Part E §7.7.x: "… Request" → "… Reply")
            asked = h.name.replace(" Negative Reply", "").replace(" Reply", "")
            before = [f for f in pending if f < h.frame]
            if before:
                f = before[-1]
                pending.remove(f)
                msgs.append(Message(CONTROLLER, HOST, asked, f, None, "ok", asked))
        bad = h.status not in (None, 0)
        label = h.name + (f": {h.status_name}" if bad else "")
        msgs.append(
            Message(HOST, CONTROLLER, label, h.frame, h.time_us, "error" if bad else "ok", h.name)
        )
        if h.complete_frame is not None:
            done = {
                "Authentication Requested": "Authentication Complete",
                "Set Connection Encryption": "Encryption Change",
            }.get(h.name, f"{h.name} complete")
            fail = h.complete_status not in (None, 0)
            msgs.append(
                Message(
                    CONTROLLER,
                    HOST,
                    done + (f": {h.complete_status_name}" if fail else ""),
                    h.complete_frame,
                    h.complete_time_us,
                    "error" if fail else "ok",
                    done,
                )
            )
    conn = a.connection(p.connection)
    if conn is not None:  # the Encryption Change that ends it (the attempt's own frame too)
        seen = {m.frame for m in msgs}
        failed = {e.frame: e for e in conn.encryption_failures}
        for f in conn.encryption_frames:
            if p.start_frame <= f <= stop and f not in seen:
                e = failed.get(f)
                label = "Encryption Change" + (f": {e.status_name}" if e else "")
                kind = "error" if e else "ok"
                msgs.append(Message(CONTROLLER, HOST, label, f, None, kind, "Encryption Change"))
                if f in pending:
                    pending.remove(f)
    for f in pending:
        msgs.append(Message(CONTROLLER, HOST, "HCI event (pairing)", f, None, "ok", None))
    msgs = _in_order(msgs)
    gave_up = p.outcome != "success" and bool(p.status_name) and p.status not in (None, 0)
    if gave_up and not any(m.kind == "error" for m in msgs):
        msgs.append(
            Message(
                CONTROLLER,
                HOST,
                f"pairing failed: {p.status_name}",
                max([*p.frames, p.start_frame]),
                p.end_time_us,
                "error",
            )
        )
    order: list[tuple[str, ...]] = []
    method = p.method or ""
    if p.transport == "br_edr":
        local_started = any(m.step == "Authentication Requested" for m in msgs)
        if local_started:
            order.append(("Authentication Requested",))
        if method == "stored_key":
            order.append(("Link Key Request Reply",))
        elif method == "legacy_pin":
            order += [("Link Key Request Negative Reply",), ("PIN Code Request Reply",)]
        elif method in SSP_CONFIRM:
            order += [
                ("Link Key Request Negative Reply",),
                ("IO Capability Request Reply",),
                (SSP_CONFIRM[method],),
            ]
        if local_started:
            order += [("Authentication Complete",), ("Set Connection Encryption",)]
        order.append(("Encryption Change",))
    msgs = _ghosts(
        msgs,
        order,
        HOST,
        CONTROLLER,
        "expected by the pairing procedure, never sent",
        failure_ends=True,
    )
    for m in msgs:  # the event ghosts come from the controller
        if m.kind == "ghost" and m.step in ("Authentication Complete", "Encryption Change"):
            m.src, m.dst = CONTROLLER, HOST
    title = f"{p.transport} pairing ({method or 'method unknown'}): {p.outcome}"
    return Sequence(f"pairing:{index}", "pairing", p.address, p.connection, title, msgs)


HFP_ORDER: list[tuple[str, ...]] = [("AT+BRSF",), ("AT+CIND=?",), ("AT+CIND?",), ("AT+CMER",)]


def _at_step(text: str) -> str:
    if text.startswith("AT+CIND"):
        return "AT+CIND=?" if "=?" in text else "AT+CIND?"
    return text.split("=", maxsplit=1)[0].split("?", maxsplit=1)[0]


def hfp(a: Analysis, index: int) -> Sequence:
    h = a.hfp[index]
    msgs: list[Message] = []
    for at in h.at:
        src, dst = _side(at.direction)
        if at.kind != "command":
            msgs.append(Message(src, dst, at.text, at.frame, at.time_us, "ok"))
            continue
        msgs.append(Message(src, dst, at.text, at.frame, at.time_us, "ok", _at_step(at.text)))
        if at.result is None:
            msgs.append(_answer_ghost(msgs[-1], "OK"))
            continue
        ans = "; ".join([*at.responses[:2], at.result])
        bad = "ERROR" in at.result
        msgs.append(
            Message(
                dst,
                src,
                ans,
                at.result_frame,
                at.result_time_us,
                "error" if bad else "ok",
                _at_step(at.text),
            )
        )
    msgs = _in_order(msgs)
    # the HF sends the SLC commands: the side that sent the first command
    first = next((at.direction for at in h.at if at.kind == "command"), None)
    src, dst = _side(first or ("sent" if h.local_role != "ag" else "received"))
    if not h.slc_complete:
        msgs = _ghosts(msgs, HFP_ORDER, src, dst, "expected by HFP 1.9 §4.2.1, never sent")
    if h.profile == "hfp":
        title = "HFP service level connection" + ("" if h.slc_complete else " (not completed)")
    else:  # HSP has no SLC exchange (HSP 1.2 §4.2): the session's AT commands
        title = f"{h.profile.upper()} session"
    return Sequence(f"hfp:{index}", "hfp", h.address, h.connection, title, msgs)


def l2cap(a: Analysis, conn: str, address: str | None) -> Sequence:
    psm = {c.request_frame: c.psm_name for c in a.l2cap_channels if c.connection == conn}
    msgs: list[Message] = []
    sigs = sorted((s for s in a.l2cap_signals if s.connection == conn), key=lambda s: s.frame)
    for s in sigs:
        src, dst = _side(s.direction)
        label = s.name + (f" {psm[s.frame]}" if psm.get(s.frame) else "")
        # a result of 0 is success; 1 (Connection Response: pending) is not a refusal
        bad = not s.is_request and s.result not in (None, 0, 1)
        if bad:
            label += f" (result {s.result})"
        msgs.append(Message(src, dst, label, s.frame, s.time_us, "error" if bad else "ok"))
        if s.is_request and s.response_frame is None:
            msgs.append(_answer_ghost(msgs[-1], s.name.replace("Request", "Response")))
    msgs = _in_order(msgs)
    return Sequence(f"l2cap:{conn}", "l2cap", address, conn, f"L2CAP signalling on {conn}", msgs)


SMP_ORDER_LEGACY: list[tuple[str, ...]] = [
    ("Pairing Request",),
    ("Pairing Response",),
    ("Pairing Confirm",),
    ("Pairing Random",),
    ("Encryption Change",),
]
SMP_ORDER_SC: list[tuple[str, ...]] = [
    ("Pairing Request",),
    ("Pairing Response",),
    ("Pairing Public Key",),
    ("Pairing Confirm",),
    ("Pairing Random",),
    ("Pairing DHKey Check",),
    ("Encryption Change",),
]


def le(a: Analysis, conn_id: str) -> Sequence:
    c = a.connection(conn_id)
    assert c is not None
    msgs: list[Message] = []
    if c.request_frame is not None:
        label = "LE Create Connection" + (" (cancelled)" if c.cancelled else "")
        msgs.append(Message(HOST, CONTROLLER, label, c.request_frame, None, "ok", "connect"))
    if c.start_frame is not None:
        label = "LE Connection Complete" + ("" if c.ok else f": {c.status_name}")
        msgs.append(
            Message(
                CONTROLLER,
                HOST,
                label,
                c.start_frame,
                c.start_time_us,
                "ok" if c.ok else "error",
                "connected",
            )
        )
    for p in a.smp.pdus:
        if p.connection != conn_id:
            continue
        src, dst = _side(p.direction)
        bad = p.name == "Pairing Failed"
        label = p.name + (f": {p.reason_name}" if p.reason_name else "")
        msgs.append(Message(src, dst, label, p.frame, p.time_us, "error" if bad else "ok", p.name))
    for h in a.hci_commands:
        if h.connection == conn_id and h.name in (
            "LE Enable Encryption",
            "LE Start Encryption",
            "LE Long Term Key Request Reply",
            "LE Long Term Key Request Negative Reply",
        ):
            bad = h.status not in (None, 0)
            msgs.append(
                Message(
                    HOST,
                    CONTROLLER,
                    h.name + (f": {h.status_name}" if bad else ""),
                    h.frame,
                    h.time_us,
                    "error" if bad else "ok",
                )
            )
    failed = {e.frame: e for e in c.encryption_failures}
    for f in c.encryption_frames:
        e = failed.get(f)
        msgs.append(
            Message(
                CONTROLLER,
                HOST,
                "Encryption Change" + (f": {e.status_name}" if e else ""),
                f,
                e.time_us if e else None,
                "error" if e else "ok",
                "Encryption Change",
            )
        )
    if c.end_frame is not None:
        why = c.disconnect_reason_name or "disconnected"
        msgs.append(
            Message(
                CONTROLLER,
                HOST,
                f"Disconnection Complete: {why}",
                c.end_frame,
                c.end_time_us,
                "ok",
                "end",
            )
        )
    msgs = _in_order(msgs)
    if any(m.step == "Pairing Request" for m in msgs):
        sc = any(
            t.connection == conn_id and t.method and t.method.startswith("le_sc")
            for t in a.smp.transactions
        ) or any(m.step == "Pairing Public Key" for m in msgs)
        req = next(m for m in msgs if m.step == "Pairing Request")
        msgs = _ghosts(
            msgs,
            SMP_ORDER_SC if sc else SMP_ORDER_LEGACY,
            req.src,
            req.dst,
            "expected by SMP (Vol 3 Part H §2.3), never sent",
            failure_ends=True,
        )
        for m in msgs:
            if m.kind == "ghost" and m.step == "Pairing Response":
                m.src, m.dst = req.dst, req.src
            if m.kind == "ghost" and m.step == "Encryption Change":
                m.src, m.dst = CONTROLLER, HOST
        end = next((k for k, m in enumerate(msgs) if m.step == "end"), None)
        if end is not None:  # the disconnection stays the last message
            msgs.append(msgs.pop(end))
    title = f"LE connection {conn_id}" + (" (encrypted)" if c.encrypted else "")
    return Sequence(f"le:{conn_id}", "le", c.address, conn_id, title, msgs)


# -- all sequences of a capture -----------------------------------------------------------------


def sequences(a: Analysis, address: str | None = None) -> list[Sequence]:
    """Every procedure's sequence in the capture (of one remote device when ``address``),
    devices in :mod:`analyzer.diff`'s order, each device's procedures by their first frame."""
    out: list[Sequence] = []
    remotes = list(_remotes(a)) if address is None else [address]
    for addr in remotes:
        ids = _conn_ids(a, addr)
        mine: list[Sequence] = []
        # LE pairing is drawn in its connection's chart (SMP, then encryption)
        mine += [
            pairing(a, i)
            for i, p in enumerate(a.pairing)
            if p.address == addr and p.transport == "br_edr"
        ]
        for conn in sorted(
            {t.connection for t in a.sdp if t.address == addr}, key=lambda c: c or ""
        ):
            mine.append(sdp(a, conn, addr))
        for conn in sorted({s.connection for s in a.avdtp.signals if s.connection in ids} - {None}):
            assert conn is not None
            mine.append(avdtp(a, conn, addr))
        mine += [hfp(a, i) for i, h in enumerate(a.hfp) if h.address == addr or h.connection in ids]
        for conn in sorted({s.connection for s in a.l2cap_signals if s.connection in ids}):
            mine.append(l2cap(a, conn, addr))
        mine += [le(a, c.id) for c in a.connections if c.address == addr and c.transport == "le"]
        mine = [s for s in mine if s.messages]
        mine.sort(key=lambda s: s.first_frame)
        out += mine
    for s in out:
        if len(s.messages) > MAX_MESSAGES:
            s.truncated = len(s.messages) - MAX_MESSAGES
            keep = s.messages[:MAX_MESSAGES]
            # a ghost past the cut is the point of the chart: keep every ghost
            keep += [m for m in s.messages[MAX_MESSAGES:] if m.kind == "ghost"]
            s.messages = keep
    return out


def label(a: Analysis, s: Sequence) -> str:
    """How the selection list names a sequence."""
    mark = " ✗" if s.errors else (" ⋯" if s.ghosts else "")
    return f"{a.device_label(s.address)} · {s.title} · from frame {s.first_frame}{mark}"


def figure(a: Analysis, s: Sequence, highlight: Iterable[int] = ()) -> object:
    """A Plotly sequence chart: three lifelines (host, controller, remote), one horizontal
    arrow per message from top to bottom, labelled with the message, frame and time; errors
    red, ghosts dashed grey; frames in ``highlight`` drawn thicker (the compare page's first
    divergence)."""
    import plotly.graph_objects as go

    t0 = a.capture.first_time_us or 0
    xs = {HOST: 0.0, CONTROLLER: 1.0, REMOTE: 2.0}
    hl = set(highlight)
    n = len(s.messages)
    fig = go.Figure()
    names = {
        HOST: f"host ({a.controller.name})" if a.controller.name else "host",
        CONTROLLER: "controller",
        REMOTE: a.device_label(s.address) if s.address else "remote",
    }
    for who, x in xs.items():
        fig.add_shape(
            type="line", x0=x, x1=x, y0=0.5, y1=-n - 0.5, line={"color": "#b0bec5", "width": 2}
        )
        fig.add_annotation(
            x=x, y=0.9, text=f"<b>{names[who]}</b>", showarrow=False, yanchor="bottom"
        )
    for kind in ("ok", "error", "ghost"):
        lx: list[float | None] = []
        ly: list[float | None] = []
        hx: list[float] = []
        hy: list[float] = []
        sym: list[str] = []
        tx: list[float] = []
        ty: list[float] = []
        texts: list[str] = []
        hover: list[str] = []
        frames: list[int | None] = []
        for i, m in enumerate(s.messages):
            if m.kind != kind:
                continue
            y = -float(i)
            x0, x1 = xs[m.src], xs[m.dst]
            lx += [x0, x1, None]
            ly += [y, y, None]
            hx.append(x1 - 0.03 * (1 if x1 > x0 else -1))
            hy.append(y)
            sym.append("triangle-right" if x1 > x0 else "triangle-left")
            when = f"{(m.time_us - t0) / 1e6:.6f} s" if m.time_us is not None else ""
            at = f"#{m.frame}" if m.frame is not None else "never seen"
            tx.append((x0 + x1) / 2)
            ty.append(y + 0.18)
            texts.append(
                f"{m.label}  [{at}{' ' + when if when else ''}]" + (" ◀" if m.frame in hl else "")
            )
            hover.append(f"{m.label}<br>{at} {when}<br>{m.detail}")
            frames.append(m.frame)
        if not lx:
            continue
        colour = COLOURS[kind]
        fig.add_trace(
            go.Scatter(
                x=lx,
                y=ly,
                mode="lines",
                name=f"{kind} messages",
                line={"color": colour, "width": 2, "dash": "dash" if kind == "ghost" else "solid"},
                hoverinfo="skip",
                legendgroup=kind,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=hx,
                y=hy,
                mode="markers",
                name=f"{kind} arrowheads",
                showlegend=False,
                marker={"symbol": sym, "size": 11, "color": colour},
                legendgroup=kind,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=tx,
                y=ty,
                mode="text",
                text=texts,
                name=f"{kind} labels",
                showlegend=False,
                textfont={"color": colour, "size": 11},
                hovertext=hover,
                hoverinfo="text",
                customdata=frames,
                legendgroup=kind,
            )
        )
    for i, m in enumerate(s.messages):
        if m.frame is not None and m.frame in hl:
            fig.add_shape(
                type="rect",
                x0=-0.2,
                x1=2.2,
                y0=-i - 0.4,
                y1=-i + 0.45,
                line={"color": "#f9a825", "width": 2},
                fillcolor="rgba(249,168,37,0.12)",
            )
    fig.update_layout(
        height=max(260, 120 + 34 * n),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"visible": False, "range": [-0.35, 2.35]},
        yaxis={"visible": False, "range": [-n - 0.2, 1.4]},
        legend_orientation="h",
        plot_bgcolor="white",
        title={"text": s.title, "x": 0.01, "font": {"size": 14}},
    )
    return fig


__all__ = [
    "COLOURS",
    "LIFELINES",
    "Message",
    "Sequence",
    "figure",
    "label",
    "sequences",
]
