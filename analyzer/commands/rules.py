"""``btanalyze rules``: every rule with its id, severity, thresholds and one line."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from analyzer.commands.common import print_json


@click.command("rules")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def command(as_json: bool) -> None:
    """List the diagnostic rules."""
    from analyzer.rules.base import load_all

    rules = sorted(load_all().values(), key=lambda r: r.id)
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "severity": r.severity,
                    "title": r.title,
                    "summary": r.summary,
                    "thresholds": [
                        {"name": t.name, "default": t.default, "unit": t.unit, "doc": t.doc}
                        for t in r.thresholds
                    ],
                }
                for r in rules
            ]
        )
        return
    from rich import box

    t = Table(box=box.ASCII2)
    t.add_column("id", no_wrap=True)  # typed into a --config file: never cut
    t.add_column("severity", no_wrap=True)
    t.add_column("thresholds", overflow="fold")
    t.add_column("what it finds")
    for r in rules:
        th = ", ".join(f"{x.name}={x.default:g}{x.unit}" for x in r.thresholds)
        t.add_row(r.id, r.severity, th, r.summary)
    Console().print(t)
