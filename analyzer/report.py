"""The terminal report: incidents first (unrecovered first, then by severity), each with its
root cause, consequences and recovery; then every finding; then the story."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from analyzer.model import Analysis, HfpSession

SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _frames(frames: list[int], limit: int = 8) -> str:
    s = ", ".join(str(f) for f in frames[:limit])
    return s + (f" … (+{len(frames) - limit})" if len(frames) > limit else "")


def print_report(a: Analysis, console: Console | None = None) -> None:
    con = console or Console()
    cap = a.capture
    con.print(
        f"[bold]{cap.path}[/bold]  {cap.format} {cap.link_type}  "
        f"{cap.frames} frames  {cap.first_time} → {cap.last_time}"
    )
    if cap.filtered:
        con.print("[yellow]filtered Android snoop log: media and some payloads are missing[/]")
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
                f"[{SEV_STYLE[f.severity]}]{f.severity.upper():7}[/] [bold]{f.id}[/]{count}: "
                f"{f.message}",
                highlight=False,
            )
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
    if a.devices:
        t = Table(
            "address",
            "role",
            "name",
            "LMP ver/subver",
            "manufacturer",
            "device id",
            title="Devices",
            title_justify="left",
        )
        for d in a.devices:
            ver = "" if d.lmp_version is None else f"{d.lmp_version}/{d.lmp_subversion}"
            did = (
                ""
                if not d.device_id
                else (
                    f"{d.device_id.vendor_id or 0:#06x}/"
                    f"{d.device_id.product_id or 0:#06x} "
                    f"v{d.device_id.version or 0:#06x}"
                )
            )
            t.add_row(d.address, d.role, d.name or "", ver, d.manufacturer_name or "", did)
        con.print(t)
    if a.connections:
        t = Table(
            "id",
            "transport",
            "address",
            "start",
            "end",
            "status / reason",
            title="Connections",
            title_justify="left",
        )
        for c in a.connections:
            why = c.status_name if c.status else (c.disconnect_reason_name or "open")
            t.add_row(
                c.id + (" (inferred)" if c.inferred else ""),
                c.transport,
                c.address or "?",
                str(c.start_frame),
                str(c.end_frame or ""),
                why,
            )
        con.print(t)
    if a.pairing:
        t = Table(
            "address",
            "method",
            "link key",
            "outcome",
            "status",
            "frames",
            title="Pairing / authentication",
            title_justify="left",
        )
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
        t = Table(
            "req",
            "rsp",
            "pdu",
            "uuids",
            "latency ms",
            "services / error",
            title="SDP",
            title_justify="left",
        )
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
        t = Table(
            "cmd",
            "rsp",
            "dir",
            "signal",
            "response",
            "error",
            "latency ms",
            title="AVDTP signals",
            title_justify="left",
        )
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
        t = Table(
            "connection",
            "SEIDs",
            "codec",
            "states",
            "media pkts",
            "kbit/s",
            "delay ms",
            title="A2DP streams",
            title_justify="left",
        )
        for st in a.avdtp_streams:
            states = " → ".join(s.state for s in st.states)
            delay = ", ".join(f"{d.delay_ms:.1f}" for d in st.delay_reports[:3])
            t.add_row(
                st.connection or "?",
                f"{st.acp_seid}/{st.int_seid}",
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
        con.print(f"{len(a.advertisers)} LE advertisers")
    if a.anomalies:
        con.print(f"[dim]{len(a.anomalies)} decode anomalies (see --json)[/dim]")


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
