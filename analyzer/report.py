"""The terminal report: incidents first (unrecovered first, then by severity), each with its
root cause, consequences and recovery; then every finding; then each remote device's story
(:mod:`analyzer.model.story`); then the tables. The Markdown report tells the same for tickets."""

from __future__ import annotations

from datetime import UTC, datetime

from rich import box
from rich.console import Console
from rich.table import Table

from analyzer.model import Advertiser, Analysis, HfpSession, Incident
from analyzer.model.story import DeviceStory, StoryLine, device_story, story_devices

SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
ADDRESS_WIDTH = 17  # AA:BB:CC:DD:EE:FF: never cut


def clock(t_us: int | None) -> str:
    """Wall-clock time of a capture timestamp (UTC, ms), as users quote it ("it dropped at
    14:32")."""
    if t_us is None:
        return "—"
    return datetime.fromtimestamp(t_us / 1e6, UTC).strftime("%H:%M:%S.%f")[:-3]


def verdict(a: Analysis) -> str:
    """One line: what the capture shows, worst first."""
    sev = [f.severity for f in a.findings]
    if not sev:
        return "No problems found" + (" for this device" if a.scope.device else "") + "."
    n_err, n_warn, n_info = sev.count("error"), sev.count("warning"), sev.count("info")
    top = next((i for i in a.incidents if i.severity == "error"), None) or next(
        (i for i in a.incidents if i.severity == "warning"), None
    )
    head = f"{n_err} error(s), {n_warn} warning(s), {n_info} note(s)"
    return head + (f": {top.verdict}" if top is not None else "")


#: columns whose text may wrap (on words); every other column keeps its values whole
WRAPPING = frozenset(
    {"name", "chip vendor", "OUI vendor", "status / reason", "services / error", "uuids",
     "states", "error", "frames", "device id", "method", "status"}
)  # fmt: skip


def _table(title: str, *columns: str) -> Table:
    t = Table(title=title, title_justify="left", box=box.ASCII2)
    for c in columns:
        if c == "address":
            t.add_column(c, no_wrap=True, min_width=ADDRESS_WIDTH)
        else:
            t.add_column(c, no_wrap=c not in WRAPPING, overflow="fold")
    return t


def _lmp(version: int | None, sub: int | None) -> str:
    if version is None:
        return ""
    return f"{version}/{sub:#06x}" if sub is not None else str(version)


def _frames(frames: list[int], limit: int = 8) -> str:
    s = ", ".join(str(f) for f in frames[:limit])
    return s + (f" … (+{len(frames) - limit})" if len(frames) > limit else "")


def incident_evidence(a: Analysis, inc: Incident) -> tuple[list[str], list[int]]:
    """The finding ids of an incident (root cause first) and all their evidence frames."""
    mine = [f for f in a.findings if f.incident == inc.id]
    mine.sort(key=lambda f: (f.ref != inc.root_cause, f.time_us or 0))
    ids = list(dict.fromkeys(f.id for f in mine))
    frames = sorted({fr for f in mine for fr in f.frames})
    return ids, frames


def wireshark_filter(frames: list[int]) -> str:
    """A Wireshark display filter selecting these frames (``frame.number in {1, 2, 3}``;
    Wireshark 4 separates set members with commas)."""
    return "frame.number in {" + ", ".join(str(f) for f in frames) + "}"


def print_report(a: Analysis, console: Console | None = None) -> None:
    """The terminal report: verdict, incidents, findings, each remote device's story, then the
    tables."""
    con = console or Console()
    cap = a.capture
    span = f"  {cap.first_time} → {cap.last_time}" if cap.first_time else ""
    con.print(
        f"[bold]{cap.path}[/bold]  {cap.format} {cap.link_type or ''}  {cap.frames} frames{span}",
        highlight=False,
    )
    worst = next((x for x in ("error", "warning", "info") if any(
        f.severity == x for f in a.findings)), None)  # fmt: skip
    con.print(
        f"[{SEV_STYLE.get(worst or '', 'bold green')}]Verdict: {verdict(a)}[/]", highlight=False
    )
    scope = a.scope
    if scope.device or scope.time_from_us or scope.time_to_us:
        con.print(
            f"[dim]scope: {scope.device or 'all devices'}"
            + (f", {clock(scope.time_from_us)} → {clock(scope.time_to_us)}"
               if scope.time_from_us or scope.time_to_us else "")
            + "[/dim]", highlight=False,
        )  # fmt: skip
    if cap.filtered:
        con.print("[yellow]filtered Android snoop log: media and some payloads are missing[/]")
    for w in cap.warnings:
        con.print(f"[yellow]reader: {w}[/]", highlight=False)
    con.print()
    by_ref = {f.ref: f for f in a.findings}
    shown = [i for i in a.incidents if i.severity != "info"]
    if shown:
        con.print(f"[bold]Incidents ({len(shown)})[/bold]")
        for inc in shown:
            con.print(
                f"[{SEV_STYLE[inc.severity]}]{inc.id:>3} {inc.severity.upper():7}[/] {inc.verdict}",
                highlight=False,
            )
            ids, _ = incident_evidence(a, inc)
            con.print(f"        rules: {', '.join(ids)} (btanalyze rules ID)", highlight=False)
            for ref in inc.consequences:
                then = by_ref.get(ref)
                if then is not None:
                    con.print(f"        then {then.id}: {then.message}", highlight=False)
        con.print()
    if a.findings:
        con.print(f"[bold]Findings ({len(a.findings)})[/bold]")
        for f in a.findings:
            count = f" ×{f.count}" if f.count > 1 else ""
            con.print(
                f"[{SEV_STYLE[f.severity]}]{f.severity.upper():7}[/] {clock(f.time_us)} "
                f"[bold]{f.id}[/]{count}: {f.message}",
                highlight=False,
            )
            con.print(f"         why: {f.explanation}", highlight=False)
            con.print(f"         fix: {f.fix}", highlight=False)
            if f.frames:
                con.print(f"         frames: {_frames(f.frames)}", highlight=False)
        con.print()
    else:
        con.print("[green]No findings.[/green]\n")
    if a.suppressed:
        con.print(
            f"[dim]{len(a.suppressed)} benign protocol events recognised and not reported "
            "(--json: suppressed)[/dim]\n"
        )
    print_stories(a, con)
    if a.devices:
        with_did = any(d.device_id for d in a.devices)
        t = _table("Devices", "address", "role", "name", "OUI vendor", "chip vendor", "LMP",
                   *(["device id"] if with_did else []))  # fmt: skip
        for d in a.devices:
            did = (
                ""
                if not d.device_id
                else (
                    f"{d.device_id.vendor_id or 0:#06x}/"
                    f"{d.device_id.product_id or 0:#06x} "
                    f"v{d.device_id.version or 0:#06x}"
                )
            )
            t.add_row(d.address, d.role, d.name or "", d.oui_vendor or "",
                      d.manufacturer_name or "", _lmp(d.lmp_version, d.lmp_subversion),
                      *([did] if with_did else []))  # fmt: skip
        con.print(t)
    if a.connections:
        t = _table("Connections", "id", "transport", "address", "start", "frames",
                   "status / reason")  # fmt: skip
        background = [c for c in a.connections
                      if c.cancelled and c.connect_mode == "filter_accept_list"]  # fmt: skip
        for c in a.connections:
            if c in background:
                continue
            why = c.status_name if c.status else (c.disconnect_reason_name or "open")
            if c.cancelled:
                why = f"cancelled by the host after {(c.attempt_ms or 0) / 1000:.1f} s"
            t.add_row(
                c.id + (" (inferred)" if c.inferred else ""),
                c.transport,
                c.address or "—",
                clock(c.start_time_us),
                f"{c.start_frame}-{c.end_frame}" if c.end_frame else f"{c.start_frame}-",
                why,
            )
        con.print(t)
        if background:
            con.print(f"[dim]{len(background)} background (filter accept list) connect "
                      "attempts cancelled by the host: routine, not shown[/dim]")  # fmt: skip
    if a.pairing:
        t = _table("Pairing / authentication", "address", "method", "link key", "outcome",
                   "status", "frames")  # fmt: skip
        for p in a.pairing:
            t.add_row(
                p.address or "?",
                p.method or "?",
                p.link_key_request or "",
                p.outcome,
                p.status_name or "",
                _frames(p.frames, 5),
            )
        con.print(t)
    if a.sdp:
        t = _table("SDP", "req", "rsp", "pdu", "uuids", "latency ms", "services / error")
        for s in a.sdp:
            t.add_row(
                str(s.request_frame),
                str(s.response_frame or "—"),
                s.pdu,
                ", ".join(s.uuids[:4]),
                "" if s.latency_ms is None else f"{s.latency_ms:.1f}",
                s.error_name or ", ".join(s.services[:5]),
            )
        con.print(t)
    if a.avdtp_signals:
        t = _table("AVDTP signals", "cmd", "rsp", "dir", "signal", "response", "error",
                   "latency ms")  # fmt: skip
        for sg in a.avdtp_signals:
            t.add_row(
                str(sg.command_frame or ""),
                str(sg.response_frame or "—"),
                sg.direction,
                sg.signal,
                sg.response or "none",
                sg.error_name or "",
                "" if sg.latency_ms is None else f"{sg.latency_ms:.1f}",
            )
        con.print(t)
    if a.avdtp_streams:
        t = _table("A2DP streams", "connection", "SEIDs", "codec", "states", "media pkts",
                   "kbit/s", "delay ms")  # fmt: skip
        for st in a.avdtp_streams:
            states = " → ".join(s.state for s in st.states)
            delay = ", ".join(f"{d.delay_ms:.1f}" for d in st.delay_reports[:3])
            t.add_row(
                st.connection or "?",
                f"{_dash(st.acp_seid)}/{_dash(st.int_seid)}",
                st.codec or "?",
                states,
                str(st.media_packets),
                "" if st.media_bitrate_kbps is None else f"{st.media_bitrate_kbps:.0f}",
                delay,
            )
        con.print(t)
    if a.hfp:
        for h in a.hfp:
            con.print(f"{h.profile.upper()}: {session_summary(h)}", highlight=False)
    if a.advertisers:
        top = sorted(a.advertisers, key=lambda x: -x.events)[:15]
        t = _table(f"LE advertisers ({len(a.advertisers)}; the {len(top)} heard most; flags: "
                   "C connectable, D discoverable)",
                   "address", "name", "events", "interval ms", "silent", "RSSI",
                   "flags")  # fmt: skip
        for x in top:
            t.add_row(
                x.address, x.name or "", str(x.events), _intervals(x), _silences(x),
                "" if x.rssi is None else f"{x.rssi.mean:.0f}", _adv_flags(x),
            )  # fmt: skip
        con.print(t)
    if a.anomalies:
        con.print(f"[dim]{len(a.anomalies)} decode anomalies (see --json)[/dim]")


def _intervals(x: Advertiser) -> str:
    """The advertising interval, or each segment's when it changed ("100.0→1000.0")."""
    segs = x.segments if len(x.segments) > 1 else []
    if segs:
        return "→".join("?" if s.interval_ms is None else f"{s.interval_ms:.4g}" for s in segs)
    return "" if x.interval_ms is None else f"{x.interval_ms:.1f}"


def _silences(x: Advertiser) -> str:
    """How many silences and the longest ("2×9.2s")."""
    if not x.silences:
        return ""
    longest = max(s.duration_ms for s in x.silences) / 1000
    return f"{len(x.silences)}×{longest:.1f}s"


def _adv_flags(x: Advertiser) -> str:
    """C: connectable, D: discoverable (from the PDU types and the AD Flags heard)."""
    segs = x.segments
    conn = any(s.connectable for s in segs)
    disc = any(s.discoverable for s in segs)
    return "".join(n for n, on in (("C", conn), ("D", disc)) if on)


# -- per-device stories ---------------------------------------------------------------------


def device_heading(a: Analysis, address: str) -> tuple[str, str]:
    """The device's name and address, and one line of what it is: the address's OUI vendor
    (the product's maker as registered with the IEEE), the controller chip's vendor and LMP
    version, or why an LE random address names no vendor."""
    d = a.device(address)
    label = a.device_label(address)
    if d is None:
        return label, ""
    facts = []
    if d.oui_vendor:
        facts.append(f"OUI vendor {d.oui_vendor}")
    elif d.random_kind:
        facts.append(f"LE {d.random_kind} random address (no OUI)")
    if d.manufacturer_name:
        ver = _lmp(d.lmp_version, d.lmp_subversion)
        facts.append(f"chip {d.manufacturer_name}" + (f", LMP {ver}" if ver else ""))
    return label, "; ".join(facts)


def _story_time(ln: StoryLine) -> str:
    return clock(ln.time_us) if ln.time_us is not None else "—"


def _story_text(ln: StoryLine) -> str:
    if ln.count == 1:
        return ln.text
    until = f"{clock(ln.last_time_us)} (#{ln.last_frame})" if ln.last_frame else ""
    if ln.cycle:
        return f"{ln.count}× until {until}: {ln.text}"
    return f"{ln.text} ×{ln.count}, last at {until}"


def stories(a: Analysis, limit: int = 30) -> list[DeviceStory]:
    """The stories the reports print (see :func:`analyzer.model.story.story_devices`)."""
    out = [device_story(a, x, limit) for x in story_devices(a)]
    return [s for s in out if s.lines]


def print_stories(a: Analysis, con: Console) -> None:
    """Per remote device: what it is, then its story with wall-clock times and frames."""
    for st in stories(a):
        label, facts = device_heading(a, st.address)
        con.print(f"[bold]Device {label}[/bold]", highlight=False)
        if facts:
            con.print(f"  {facts}", highlight=False)
        for i, ln in enumerate(st.lines + st.tail):
            if i == len(st.lines) and st.hidden:
                con.print(f"  … {st.hidden} more events, see --json (timeline, findings)"
                          + ("; the warnings and errors after them:" if st.tail else ""),
                          highlight=False)  # fmt: skip
            frame = f"#{ln.frame}" if ln.frame is not None else ""
            style = SEV_STYLE.get(ln.severity, "") if ln.severity != "info" else ""
            text = _story_text(ln)
            body = f"[{style}]{_esc(text)}[/]" if style else _esc(text)
            con.print(f"  {_story_time(ln)} {frame:>7}  {body}", highlight=False)
        if st.hidden and not st.tail:
            con.print(f"  … {st.hidden} more events, see --json (timeline, findings)",
                      highlight=False)  # fmt: skip
        con.print()


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _dash(v: object) -> str:
    return "—" if v is None else str(v)


def session_summary(s: HfpSession) -> str:
    """One line for the text report: profile, role, SLC, codec, calls, SCO links."""
    slc = f"SLC at #{s.slc_frame}" if s.slc_complete else "SLC not complete/not captured"
    unanswered = sum(1 for c in s.at if c.kind == "command" and c.result is None)
    parts = [
        f"{s.profile.upper()} ch {s.rfcomm_channel} with {s.address or '?'}",
        f"local {s.local_role.upper()}" + (" (inferred)" if s.inferred else ""),
        slc,
        f"codec {s.codec_name or '?'}",
        f"{len(s.calls)} call(s)",
        f"{sum(1 for c in s.at if c.kind == 'command')} AT commands"
        + (f", {unanswered} unanswered" if unanswered else ""),
    ]
    if s.sco:
        parts.append("SCO " + ", ".join(s.sco))
    return "; ".join(parts)


def markdown_report(a: Analysis) -> str:
    """The report as Markdown that pastes into GitHub, GitLab or Jira tickets: verdict first,
    incidents, findings (time, message, why, fix, frames), devices and connections."""
    cap = a.capture
    out = [f"## btanalyze: `{cap.path}`", ""]
    span = f", {cap.first_time} → {cap.last_time}" if cap.first_time else ""
    out += [f"{cap.format}, {cap.frames} frames{span}", "", f"**Verdict: {verdict(a)}**", ""]
    for w in cap.warnings:
        out.append(f"> reader: {w}")
    if cap.warnings:
        out.append("")
    shown = [i for i in a.incidents if i.severity != "info"]
    if shown:
        out += ["### Incidents", ""]
        for inc in shown:
            ids, frames = incident_evidence(a, inc)
            out.append(f"- **{inc.severity.upper()}** {inc.verdict}")
            out.append(f"  - rules: {', '.join(f'`{x}`' for x in ids)}")
            if frames:
                out.append(f"  - Wireshark: `{wireshark_filter(frames)}`")
        out.append("")
    if a.findings:
        out += ["### Findings", ""]
        for f in a.findings:
            out.append(f"- **{f.severity.upper()}** `{f.id}` at {clock(f.time_us)}: {f.message}")
            out.append(f"  - why: {f.explanation}")
            out.append(f"  - fix: {f.fix}")
            if f.frames:
                out.append(f"  - frames: {_frames(f.frames)}")
        out.append("")
    else:
        out += ["No findings.", ""]

    def row(*cells: str) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    for st in stories(a):
        label, facts = device_heading(a, st.address)
        out += [f"### Device {label}", ""]
        if facts:
            out += [facts, ""]
        out += [row("time", "frame", "event"), row("---", "---:", "---")]
        for i, ln in enumerate(st.lines + st.tail):
            if i == len(st.lines) and st.hidden:
                out.append(row("…", "", f"*{st.hidden} more events, see `--json`*"))
            frame = str(ln.frame) if ln.frame is not None else ""
            text = _story_text(ln)
            text = f"**{text}**" if ln.severity != "info" else text
            out.append(row(_story_time(ln), frame, text))
        if st.hidden and not st.tail:
            out.append(row("…", "", f"*{st.hidden} more events, see `--json`*"))
        out.append("")
    if a.devices:
        out += ["### Devices", "", row("address", "role", "name", "OUI vendor", "chip vendor",
                                       "LMP ver/subver"), row(*["---"] * 6)]  # fmt: skip
        for d in a.devices:
            out.append(row(d.address, d.role, d.name or "", d.oui_vendor or "",
                           d.manufacturer_name or "",
                           _lmp(d.lmp_version, d.lmp_subversion)))  # fmt: skip
        out.append("")
    conns = [
        c for c in a.connections if not (c.cancelled and c.connect_mode == "filter_accept_list")
    ]
    if conns:
        head = row("id", "transport", "address", "start", "status / reason")
        out += ["### Connections", "", head, row(*["---"] * 5)]
        for c in conns:
            why = c.status_name if c.status else (c.disconnect_reason_name or "open")
            out.append(row(c.id, c.transport, c.address or "—", clock(c.start_time_us), why))
        out.append("")
    return "\n".join(out)
