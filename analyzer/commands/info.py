"""``btanalyze info FILE``: what a capture holds — format, frames by kind and direction, span,
truncation, drops and warnings."""

from __future__ import annotations

import click

from analyzer.commands.common import load_or_exit, print_json


@click.command("info")
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--log", default=None, help="Which log to read inside a bugreport or zip.")
def command(file: str, as_json: bool, log: str | None) -> None:
    """Summarise a capture file."""
    from analyzer.readers.btsnoop import quick_summary

    # a btsnoop log the compiled walk reads end to end: from the reader's columns alone
    info = quick_summary(file) if log is None else None
    if info is None:
        info = load_or_exit(file, log=log).summary()
    if as_json:
        print_json(info)
        return
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("file", info["path"])
    t.add_row("format", f"{info['format']}" + (" (gzip)" if info["compressed"] else ""))
    t.add_row("link type", f"{info['link_type']} {info['link_type_name']}")
    t.add_row("frames", str(info["frames"]))
    for k, v in info["frames_by_kind"].items():
        t.add_row(f"  {k}", str(v))
    t.add_row("direction", ", ".join(f"{k} {v}" for k, v in info["frames_by_direction"].items()))
    t.add_row("first", str(info["first_time"]))
    t.add_row("last", str(info["last_time"]))
    if info["duration_s"] is not None:
        t.add_row("duration", f"{info['duration_s']:.3f} s")
    t.add_row("truncated", str(info["truncated"]))
    t.add_row("drops", str(info["drops"]))
    if info["filtered"]:
        t.add_row("filtered", "yes (Android filtered snoop log: payloads cut, media dropped)")
    con.print(t)
    logs = (info.get("extra") or {}).get("logs") or []
    if logs:
        lt = Table(
            "log",
            "format",
            "frames",
            "first",
            "last",
            title="Logs in this container",
            title_justify="left",
        )
        for lg in logs:
            lt.add_row(
                str(lg.get("name")),
                str(lg.get("format", "")),
                str(lg.get("frames", "")),
                str(lg.get("first_time", "")),
                str(lg.get("last_time", "")),
            )
        con.print(lt)
        con.print(f"reading: {info['extra'].get('selected')} (choose another with --log NAME)")
    for w in info["warnings"]:
        con.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
