"""``btanalyze analyze FILE``: rebuild what happened and diagnose it.

The terminal report leads with the findings (most severe first: message, fix, evidence frames),
then each remote device's story (links, pairing, SDP, AVDTP, HFP, SCO, disconnects and its
findings, with wall-clock times and frames; ``--device`` tells one), then the tables: devices
(OUI vendor and chip vendor), connections, pairing, SDP, AVDTP/A2DP, HFP, advertisers.
``--json`` prints the stable document of docs/json-schema.md. ``--fail-on error|warning`` exits 3
when such a finding exists (for lab CI).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from analyzer.commands.common import (
    annotate_findings,
    fail_input,
    load_or_exit,
    print_json,
    refuse_overwrite,
)
from analyzer.readers.limits import printable

if TYPE_CHECKING:
    from analyzer.rules.base import RuleConfig

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")


def parse_duration_s(text: str) -> float:
    """'7s', '7', '500ms', '2m', '1h' -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise click.BadParameter(f"not a duration: {text!r} (try 7s, 500ms, 2m)")
    value = float(m.group(1))
    unit = m.group(2) or "s"
    scale = {"ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}.get(unit, 1.0)
    return value * scale


def parse_time_us(text: str, first_us: int | None) -> int:
    """A point in the capture: an offset from its start ('+12.5', '30', '5m', '+1h', '500ms'),
    a wall-clock time of day ('14:32', '14:32:05.250', UTC, on the capture's day — the next
    day if that is before the capture started), or a full ISO 8601 time (UTC if no zone)."""
    t = text.strip()
    off = t.lstrip("+")
    if t.startswith("+") or re.fullmatch(r"\d+(\.\d+)?", t) or _DURATION.fullmatch(off):
        if first_us is None:
            raise click.BadParameter("relative time on an empty capture")
        secs = float(off) if re.fullmatch(r"\d+(\.\d+)?", off) else parse_duration_s(off)
        return first_us + round(secs * 1e6)
    clock_m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?", t)
    if clock_m:
        if first_us is None:
            raise click.BadParameter("a time of day on an empty capture")
        h, m, sec = int(clock_m.group(1)), int(clock_m.group(2)), float(clock_m.group(3) or 0)
        if h > 23 or m > 59 or sec >= 60:
            raise click.BadParameter(f"not a time of day: {text!r}")
        start = datetime.fromtimestamp(first_us / 1e6, UTC)
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        us = round(day.timestamp() * 1e6) + round((h * 3600 + m * 60 + sec) * 1e6)
        return us + 86_400_000_000 if us < first_us - 1_000_000 else us
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"not a time: {text!r} (an offset like +30 or 5m, a time of day like 14:32, "
            "or ISO 8601)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1e6)


@click.command("analyze")
@click.argument("files", nargs=-1, required=True, type=str)
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
    help="text (terminal), markdown (for tickets) or json (same as --json).",
)  # fmt: skip
@click.option(
    "--config",
    "config_path",
    type=str,
    default=None,
    help="TOML file of rule thresholds ([rule_id] name = value).",
)
@click.option(
    "--deadline",
    type=str,
    default=None,
    help="Response deadline for response_timeout (default 7s).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "info"]),
    default=None,
    help="Exit 3 when a finding of this severity (or worse) exists.",
)
@click.option("--device", type=str, default=None, help="Only this remote address.")
@click.option(
    "--from",
    "time_from",
    type=str,
    default=None,
    help="Start of the window: an offset (+30, 5m), a time of day (14:32, UTC) or ISO time.",
)
@click.option("--to", "time_to", type=str, default=None, help="End of the window.")
@click.option("--log", default=None, help="Which log to read inside a bugreport or zip.")
@click.option(
    "--annotate", "annotate_out", default=None, type=str,
    help="Also write the capture as pcapng with each finding's evidence frames commented "
    "(Wireshark: frame.comment).",
)  # fmt: skip
@click.option(
    "--html", "html_out", default=None, type=str,
    help="Also write a self-contained HTML report (timeline included) to this file.",
)  # fmt: skip
@click.option(
    "--timeline", "show_timeline", is_flag=True,
    help="Also print the cross-layer timeline (wall clock, +offset, frame, device, layer, event).",
)  # fmt: skip
@click.option("--no-color", is_flag=True, help="Plain text (also when stdout is not a terminal).")
@click.option(
    "-v", "--verbose", is_flag=True,
    help="Also explain each finding (what the spec expects and what happened).",
)  # fmt: skip
@click.option(
    "--anonymize", is_flag=True,
    help="Analyse a scrubbed copy (docs/scrub.md): the report, --annotate and --html show fake "
    "addresses and placeholder names, with the same findings.",
)  # fmt: skip
def command(
    files: tuple[str, ...],
    as_json: bool,
    fmt: str,
    config_path: str | None,
    deadline: str | None,
    fail_on: str | None,
    device: str | None,
    time_from: str | None,
    time_to: str | None,
    log: str | None,
    annotate_out: str | None,
    html_out: str | None,
    show_timeline: bool = False,
    no_color: bool = False,
    verbose: bool = False,
    anonymize: bool = False,
) -> None:
    """Rebuild what happened in one or more captures and say what went wrong (several: a
    header per file, JSON as a list; the exit code is the worst of them)."""
    from analyzer.readers import btsnoop

    btsnoop.prefetch(files[0])  # the first file's records are walked while these import
    from analyzer.analysis import load_stages
    from analyzer.rules.base import ConfigError, RuleConfig

    load_stages()

    if len(files) > 1 and (annotate_out or html_out):
        fail_input("--annotate and --html write one file: give one capture with them")
    try:  # one configuration for every file
        config = RuleConfig.from_toml(config_path) if config_path else RuleConfig()
    except ConfigError as exc:
        fail_input(str(exc))
    if deadline is not None:
        config.set("response_timeout", "deadline_s", parse_duration_s(deadline))
    opts = _Options(
        config, as_json or fmt == "json", fmt, fail_on, device, time_from, time_to, log,
        annotate_out, html_out, anonymize, show_timeline, no_color, verbose,
    )  # fmt: skip
    worst = 0
    docs: list[object] = []
    for i, file in enumerate(files):
        if len(files) > 1 and not opts.as_json:
            head = f"# {printable(file)}" if fmt == "markdown" else f"== {printable(file)} =="
            click.echo(("\n" if i else "") + head)
        try:
            code = _one(file, opts, docs if len(files) > 1 else None)
        except SystemExit as exc:  # fail_input: this file's one-line error, the others go on
            if len(files) == 1:
                raise
            code = exc.code if isinstance(exc.code, int) else 1
        worst = max(worst, code)
    if len(files) > 1 and opts.as_json:
        print_json(docs)
    if worst:
        sys.exit(worst)


@dataclass(frozen=True)
class _Options:
    """What ``analyze`` was asked, the same for every file."""

    config: RuleConfig
    as_json: bool
    fmt: str
    fail_on: str | None
    device: str | None
    time_from: str | None
    time_to: str | None
    log: str | None
    annotate_out: str | None
    html_out: str | None
    anonymize: bool
    show_timeline: bool
    no_color: bool
    verbose: bool


def _one(file: str, opts: _Options, docs: list[object] | None) -> int:
    """Analyse and report one capture; the exit code it asks for (0 or 3). ``docs``: collect
    the JSON document there instead of printing it (several files)."""
    device, time_from, time_to = opts.device, opts.time_from, opts.time_to
    annotate_out, html_out = opts.annotate_out, opts.html_out
    cap = load_or_exit(file, log=opts.log)
    from analyzer.analysis import analyze_capture
    from analyzer.model.scope import narrow_to_device, narrow_to_window, resolve_device

    if opts.anonymize:
        from analyzer.scrub import scrubbed_capture

        cap, mapper = scrubbed_capture(cap)
        if device:  # an original address given on the command line: its fake
            device = mapper.display_fake(device) or device
    first = cap.first_time_us
    t_from = parse_time_us(time_from, first) if time_from else None
    t_to = parse_time_us(time_to, first) if time_to else None
    if t_from is not None and t_to is not None and t_to < t_from:
        fail_input(f"--to ({time_to}) is before --from ({time_from})")
    # analysed whole, then narrowed: names, recoveries and completeness come from the whole
    # capture, never from a slice
    analysis = analyze_capture(cap, opts.config)
    if device:
        address, suggestions = resolve_device(analysis, device)
        if address is None:
            hint = "; did you mean: " + ", ".join(suggestions) if suggestions else ""
            fail_input(f"no device {device!r} in this capture{hint}")
        analysis = narrow_to_device(analysis, address)
    if t_from is not None or t_to is not None:
        last = cap.last_time_us
        if (t_from is not None and last is not None and t_from > last) or (
            t_to is not None and first is not None and t_to < first
        ):
            fail_input("the --from/--to window lies outside the capture")
        analysis = narrow_to_window(analysis, t_from, t_to)
    if annotate_out:
        from analyzer.writers import write_pcapng

        refuse_overwrite(annotate_out, [file], force=True)  # never the input
        annotate_findings(cap, analysis.findings)
        try:
            with open(annotate_out, "wb") as out:
                write_pcapng(cap, out)
        except OSError as exc:
            fail_input(f"cannot write {annotate_out}: {exc.strerror or exc}")
    if html_out:
        from analyzer.dashboards import static_html

        try:
            with open(html_out, "w", encoding="utf-8") as fh:
                fh.write(static_html(analysis))
        except OSError as exc:
            fail_input(f"cannot write {html_out}: {exc.strerror or exc}")
    if opts.as_json:
        if docs is not None:
            docs.append(analysis.to_json())
        else:
            print_json(analysis.to_json())
    elif opts.fmt == "markdown":
        from analyzer.report import markdown_report

        click.echo(markdown_report(analysis))
    else:
        from rich.console import Console

        from analyzer.report import print_report, print_timeline

        # plain text when piped (rich's default) or asked for; colours only on a terminal
        con = Console(no_color=True, highlight=False) if opts.no_color else None
        print_report(analysis, con, verbose=opts.verbose)
        if opts.show_timeline:
            print_timeline(analysis, con)
    if opts.fail_on:
        levels = {"error": ("error",), "warning": ("error", "warning"),
                  "info": ("error", "warning", "info")}[opts.fail_on]  # fmt: skip
        if any(f.severity in levels for f in analysis.findings):
            return 3
    return 0
