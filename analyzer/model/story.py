"""One remote device's story: what happened to it, in time order, told from the model (the
timeline, its connections, inquiry results and findings) for the text and Markdown reports.

Bursts of AVDTP signalling become one line ("AVDTP DISCOVER, GET_CAPABILITIES ×2,
SET_CONFIGURATION, OPEN → A2DP AAC open"); runs that repeat (46 identical SDP queries, a
connect/disconnect cycle twelve times) become one line with the count and the span; a long story
is cut after ``limit`` lines, keeping its warnings and errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.model.analysis import TABLE_RECORDS, Analysis
from analyzer.model.audio import AvdtpSignal
from analyzer.model.base import field_types
from analyzer.model.findings import TimelineEvent
from analyzer.model.links import Connection

#: AVDTP signals of one negotiation are this close together (a 2 s gap starts a new line)
BURST_US = 2_000_000
#: the longest repeating cycle looked for (paging → connected → auth → encryption → SDP → …)
MAX_CYCLE = 8
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
METHODS = {
    "stored_key": "stored link key",
    "legacy_pin": "legacy PIN",
    "numeric_comparison": "numeric comparison",
    "just_works": "Just Works",
    "passkey": "passkey entry",
    "oob": "out of band",
}


@dataclass
class StoryLine:
    """One line of a device's story; ``count`` > 1 when it stands for a repeated run."""

    time_us: int | None
    frame: int | None
    text: str
    severity: str = "info"
    kind: str = ""
    finding: str | None = None  # the finding id, when the line is a finding
    count: int = 1
    last_time_us: int | None = None
    last_frame: int | None = None
    #: the texts of one repeated cycle (count > 1 and more than one step)
    cycle: list[str] = field(default_factory=list)
    #: AVDTP lines: the signal as told in a burst ("SET_CONFIGURATION AAC rejected: …"), who
    #: sent the command, and for stream states the state reached ("A2DP AAC open")
    step: str | None = None
    who: str | None = None


@dataclass
class DeviceStory:
    address: str
    lines: list[StoryLine]
    hidden: int = 0  # lines left out after ``limit`` (see --json: timeline, findings)
    #: after the cut: the warnings and errors still told (up to ``limit`` of them)
    tail: list[StoryLine] = field(default_factory=list)


def _method(raw: str) -> str:
    """A pairing method as users read it: "le_legacy_just_works" → "LE legacy Just Works"."""
    prefix = ""
    for p, nice in (("le_legacy_", "LE legacy "), ("le_sc_", "LE Secure Connections ")):
        if raw.startswith(p):
            prefix, raw = nice, raw[len(p) :]
    return prefix + METHODS.get(raw, raw.replace("_", " "))


def _frame_times(a: Analysis, wanted: set[int]) -> dict[int, int]:
    """The capture time of each wanted frame that some record of the model dates (every
    ``*frame`` field with its ``*time_us`` twin)."""
    out: dict[int, int] = {}
    if not wanted:
        return out
    for table, rec in TABLE_RECORDS.items():
        names = {n for n, _ in field_types(rec)}
        pairs = [(f, f[: -len("frame")] + "time_us") for f in names if f.endswith("frame")]
        pairs = [(f, t) for f, t in pairs if t in names]
        if not pairs:
            continue
        for row in a.rows(table):
            for f, t in pairs:
                fr = getattr(row, f)
                if isinstance(fr, int) and fr in wanted and fr not in out:
                    tm = getattr(row, t)
                    if tm is not None:
                        out[fr] = tm
    return out


def _finding_frame(frames: list[int], time_us: int | None, times: dict[int, int]) -> int | None:
    """The evidence frame of the moment a finding is pinned at: the one dated at its time,
    else the last one dated before it, else its first."""
    if not frames:
        return None
    if time_us is not None:
        at = [f for f in frames if times.get(f) == time_us]
        if at:
            return at[0]
        before = [f for f in frames if f in times and times[f] <= time_us]
        if before:
            return max(before, key=lambda f: (times[f], f))
    return frames[0]


def _link(c: Connection) -> str:
    return {"br_edr": "ACL", "le": "LE link", "sco": "SCO", "esco": "eSCO"}.get(
        c.transport, c.transport
    )


def _event_line(
    e: TimelineEvent, conns: dict[str, Connection], signals: dict[int, AvdtpSignal]
) -> StoryLine:
    """The timeline event told for the story: who initiated, why it closed, plain names."""
    line = StoryLine(e.time_us, e.frame, e.text, e.severity, e.kind)
    c = conns.get(e.lane)
    text = e.text
    if e.kind == "connect" and text.startswith("paging"):
        line.text = "paging (Create Connection from the local host)"
    elif e.kind in ("connect", "sco") and c is not None and c.ok:
        who = {"local": "local", "remote": "remote"}.get(c.initiator or "")
        extra = [f"{who} initiated"] if who else []
        if c.transport == "le" and c.role:
            extra.append(f"local role {c.role}")
        if c.sco is not None:
            extra += [x for x in (c.sco.codec, c.sco.air_mode_name and
                                  f"air mode {c.sco.air_mode_name}") if x]  # fmt: skip
        line.text = f"{_link(c)} connected" + (f" ({', '.join(extra)})" if extra else "")
    elif e.kind == "disconnect" and c is not None:
        reason = c.disconnect_reason_name or "reason unknown"
        code = f" ({c.disconnect_reason:#04x})" if c.disconnect_reason is not None else ""
        line.text = f"{_link(c)} disconnected: {reason}{code}"
    elif e.kind == "pair" and "(" in text:
        head, _, rest = text.partition("(")
        raw, _, tail = rest.partition(")")
        line.text = f"{head}({_method(raw)}){tail}"
    elif e.kind == "sdp" and ": " in text:
        line.text = "SDP: " + text.split(": ", 1)[1]
    elif e.kind == "avdtp":
        sig = signals.get(e.frame)
        if sig is not None:
            step = sig.signal
            if sig.details.codec and e.frame == sig.command_frame:
                step += f" {sig.details.codec}"
            if e.frame == sig.response_frame and sig.response == "reject":
                step = f"{sig.signal} rejected ({sig.error_name or sig.error_code})"
            elif e.frame == sig.response_frame and sig.response == "general_reject":
                step = f"{sig.signal} general reject"
            line.step = step
            line.who = "local" if sig.direction == "sent" else "remote"
            line.text = f"AVDTP {step} ({line.who})"
    elif e.kind == "stream_state" and text.startswith("A2DP stream"):
        line.step = " ".join(("A2DP" + text[len("A2DP stream") :]).split())
        line.text = line.step
    return line


def _avdtp_bursts(lines: list[StoryLine]) -> list[StoryLine]:
    """Consecutive AVDTP signals and A2DP stream states, close in time, as one line."""
    out: list[StoryLine] = []
    run: list[StoryLine] = []

    def flush() -> None:
        if not run:
            return
        if len(run) == 1:
            out.append(run[0])
        else:
            out.append(_merge_avdtp(run))
        run.clear()

    for ln in lines:
        if ln.kind in ("avdtp", "stream_state") and (
            not run or (ln.time_us or 0) - (run[-1].time_us or 0) <= BURST_US
        ):
            run.append(ln)
            continue
        flush()
        if ln.kind in ("avdtp", "stream_state"):
            run.append(ln)
        else:
            out.append(ln)
    flush()
    return out


def _merge_avdtp(run: list[StoryLine]) -> StoryLine:
    signals: list[str] = []
    who: str | None = None
    state: str | None = None
    for ln in run:
        if ln.kind == "stream_state":
            state = ln.step or ln.text
            continue
        name = ln.step or ln.text
        who = who or ln.who
        if signals and signals[-1].split(" ×")[0] == name and "reject" not in name:
            head, _, n = signals[-1].partition(" ×")
            signals[-1] = f"{head} ×{int(n or 1) + 1}"
        else:
            signals.append(name)
    text = ("AVDTP " + ", ".join(signals) + (f" ({who})" if who else "")) if signals else ""
    if state:
        text = f"{text} → {state}" if text else state
    worst = max(run, key=lambda x: SEVERITY_RANK.get(x.severity, 0)).severity
    return StoryLine(run[0].time_us, run[0].frame, text, worst, "avdtp")


def _key(ln: StoryLine) -> tuple[str, str, str]:
    return (ln.kind, ln.text, ln.severity)


def _collapse(lines: list[StoryLine]) -> list[StoryLine]:
    """Runs that repeat (one line, or a cycle of up to MAX_CYCLE lines) as one line."""
    keys = [_key(x) for x in lines]
    out: list[StoryLine] = []
    i, n = 0, len(lines)
    while i < n:
        best_k, best_r = 1, 1
        for k in range(1, min(MAX_CYCLE, (n - i) // 2) + 1):
            r = 1
            while i + (r + 1) * k <= n and keys[i + r * k : i + (r + 1) * k] == keys[i : i + k]:
                r += 1
            if r >= 2 and k * r > best_k * best_r:
                best_k, best_r = k, r
        if best_r < 2:
            out.append(lines[i])
            i += 1
            continue
        first, last = lines[i], lines[i + best_k * best_r - 1]
        steps = [x.text for x in lines[i : i + best_k]]
        worst = max(lines[i : i + best_k], key=lambda x: SEVERITY_RANK.get(x.severity, 0))
        out.append(
            StoryLine(
                first.time_us,
                first.frame,
                " → ".join(steps),
                worst.severity,
                first.kind if best_k == 1 else "cycle",
                first.finding if best_k == 1 else None,
                best_r,
                last.time_us,
                last.frame,
                steps if best_k > 1 else [],
            )
        )
        i += best_k * best_r
    return out


def device_story(a: Analysis, address: str, limit: int = 30) -> DeviceStory:
    """The story of ``address`` from ``a`` (already narrowed by --device/--from/--to)."""
    conns = {c.id: c for c in a.connections if c.address == address}
    conns.update({c.id: c for c in a.connections if c.acl in conns})
    signals: dict[int, AvdtpSignal] = {}
    for sig in a.avdtp.signals:
        if sig.connection in conns:
            for fr in (sig.command_frame, sig.response_frame):
                if fr is not None:
                    signals[fr] = sig
    raw: list[tuple[int, int, int, StoryLine]] = []
    for e in a.timeline:
        if e.lane != address and e.lane not in conns:
            continue
        raw.append((e.time_us, e.frame, 0, _event_line(e, conns, signals)))
    found = [x for x in a.discovered if x.address == address]
    if found:
        rssi = f", RSSI {found[0].rssi} dBm" if found[0].rssi is not None else ""
        more = f" ({len(found)} inquiry responses)" if len(found) > 1 else ""
        line = StoryLine(found[0].time_us, found[0].frame, f"found by inquiry{rssi}{more}",
                         kind="inquiry")  # fmt: skip
        raw.append((found[0].time_us, found[0].frame, 0, line))
    far = 1 << 62
    mine = [f for f in a.findings if f.address == address or f.connection in conns]
    times = _frame_times(a, {fr for f in mine for fr in f.frames})
    for f in mine:
        tag = f" [{f.incident}]" if f.incident else ""
        text = f"{f.severity.upper()} {f.id}{tag}: {f.message}"
        frame = _finding_frame(f.frames, f.time_us, times)
        line = StoryLine(f.time_us, frame, text, f.severity, "finding", f.id)
        raw.append((f.time_us if f.time_us is not None else far, frame or 0, 1, line))
    raw.sort(key=lambda x: (x[0], x[2], x[1]))
    lines = _collapse(_avdtp_bursts([x[3] for x in raw]))
    if len(lines) <= limit:
        return DeviceStory(address, lines)
    tail = [x for x in lines[limit:] if x.severity != "info"][:limit]
    return DeviceStory(address, lines[:limit], len(lines) - limit - len(tail), tail)


def story_devices(a: Analysis, max_devices: int = 8) -> list[str]:
    """The remote devices worth a story, most involved first: those with a connection (or an
    attempt), pairing or finding; with --device, that one."""
    if a.scope.device:
        return [a.scope.device]
    weight: dict[str, int] = {}
    for c in a.connections:
        if c.address and not (c.cancelled and c.connect_mode == "filter_accept_list"):
            weight[c.address] = weight.get(c.address, 0) + 10
    for p in a.pairing:
        if p.address:
            weight[p.address] = weight.get(p.address, 0) + 5
    for f in a.findings:
        if f.address:
            weight[f.address] = weight.get(f.address, 0) + 20
    local = {d.address for d in a.devices if d.role == "local"}
    ranked = sorted((x for x in weight if x not in local), key=lambda x: (-weight[x], x))
    return ranked[:max_devices]


__all__ = ["DeviceStory", "StoryLine", "device_story", "story_devices"]
