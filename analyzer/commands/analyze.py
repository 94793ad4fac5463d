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
from datetime import UTC, datetime

import click

from analyzer.commands.common import (
    annotate_findings,
    fail_input,
    load_or_exit,
    print_json,
    refuse_overwrite,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*$")


def parse_duration_s(text: str) -> float:
    """'7s', '7', '500ms', '2m' -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise click.BadParameter(f"not a duration: {text!r} (try 7s, 500ms, 2m)")
    value = float(m.group(1))
    unit = m.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit in ("m", "min") else value


def parse_time_us(text: str, first_us: int | None) -> int:
    """An ISO time (UTC if no zone), or seconds relative to the capture start ('+12.5')."""
    t = text.strip()
    if t.startswith("+") or re.fullmatch(r"\d+(\.\d+)?", t):
        if first_us is None:
            raise click.BadParameter("relative time on an empty capture")
        return first_us + round(float(t.lstrip("+")) * 1e6)
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"not a time: {text!r} (ISO 8601, or +SECONDS from start)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1e6)


@click.command("analyze")
@click.argument("file", type=str)
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
    type=click.Choice(["error", "warning"]),
    default=None,
    help="Exit 3 when a finding of this severity (or worse) exists.",
)
@click.option("--device", type=str, default=None, help="Only this remote address.")
@click.option(
    "--from",
    "time_from",
    type=str,
    default=None,
    help="Start of the window (ISO time or +seconds).",
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
    "--anonymize", is_flag=True,
    help="Analyse a scrubbed copy (docs/scrub.md): the report, --annotate and --html show fake "
    "addresses and placeholder names, with the same findings.",
)  # fmt: skip
def command(
    file: str,
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
    anonymize: bool = False,
) -> None:
    """Rebuild what happened in a capture and say what went wrong."""
    from analyzer.analysis import analyze_capture
    from analyzer.rules.base import ConfigError, RuleConfig

    try:
        config = RuleConfig.from_toml(config_path) if config_path else RuleConfig()
    except ConfigError as exc:
        fail_input(str(exc))
    if deadline is not None:
        config.set("response_timeout", "deadline_s", parse_duration_s(deadline))
    from analyzer.model.scope import narrow_to_device, narrow_to_window, resolve_device

    cap = load_or_exit(file, log=log)
    if anonymize:
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
    analysis = analyze_capture(cap, config)
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
    if as_json or fmt == "json":
        print_json(analysis.to_json())
    elif fmt == "markdown":
        from analyzer.report import markdown_report

        click.echo(markdown_report(analysis))
    else:
        from analyzer.report import print_report

        print_report(analysis)
    if fail_on:
        worst = {"error": ("error",), "warning": ("error", "warning")}[fail_on]
        if any(f.severity in worst for f in analysis.findings):
            sys.exit(3)
