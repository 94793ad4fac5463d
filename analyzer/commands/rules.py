"""``btanalyze rules [ID]``: every rule with its id, severity, thresholds and one line; with an
id, that rule in full (what it finds and why, its thresholds, an example). An unknown id exits 2
naming the close ones."""

from __future__ import annotations

import difflib
import inspect
import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from analyzer.commands.common import fail_input, print_json

if TYPE_CHECKING:
    from analyzer.rules.base import Rule


@click.command("rules")
@click.argument("rule_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def command(rule_id: str | None, as_json: bool) -> None:
    """List the diagnostic rules, or show one (RULE_ID) in full."""
    from analyzer.rules.base import load_all

    registry = load_all()
    if rule_id is not None:
        _show(registry, rule_id, as_json)
        return
    rules = sorted(registry.values(), key=lambda r: r.id)
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


def _show(registry: dict[str, Rule], rule_id: str, as_json: bool) -> None:
    r = registry.get(rule_id.strip().lower())
    if r is None:
        close = difflib.get_close_matches(rule_id.lower(), list(registry), n=3, cutoff=0.5)
        hint = f"; did you mean: {', '.join(close)}" if close else "; see btanalyze rules"
        fail_input(f"no rule {rule_id!r}{hint}")
    doc = inspect.getdoc(sys.modules.get(r.func.__module__)) or ""
    if as_json:
        print_json(
            {
                "id": r.id, "severity": r.severity, "title": r.title, "summary": r.summary,
                "explanation": doc, "example": r.example,
                "thresholds": [
                    {"name": t.name, "default": t.default, "unit": t.unit, "doc": t.doc}
                    for t in r.thresholds
                ],
            }
        )  # fmt: skip
        return
    out = [f"{r.id} — {r.title} (severity {r.severity})", "", r.summary, ""]
    if doc:
        out += [doc, ""]
    if r.thresholds:
        out.append("Thresholds (set in a --config TOML file under [" + r.id + "]):")
        out += [f"  {t.name} = {t.default:g} {t.unit}  — {t.doc}" for t in r.thresholds]
        out.append("")
    if r.example:
        out += ["Example:", f"  {r.example}"]
    click.echo("\n".join(out).rstrip())
