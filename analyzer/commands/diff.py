"""``btanalyze diff A B``: a good run beside a bad one — per device the versions and codecs that
differ, each procedure's steps aligned with the first divergence named, and the findings present
in only one. A and B are captures, or analyses saved with ``analyze --json``."""

from __future__ import annotations

import json

import click

from analyzer.commands.common import fail_input, load_or_exit, print_json


def _analysis(path: str) -> object:
    from analyzer.analysis import analyze_capture
    from analyzer.model import Analysis, ModelError

    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith(b"{"):
        try:
            with open(path, "rb") as fh:
                return Analysis.from_json(fh.read())
        except (ModelError, ValueError, json.JSONDecodeError) as exc:
            fail_input(f"{path}: not an analysis document: {exc}")
    return analyze_capture(load_or_exit(path))


@click.command("diff")
@click.argument("a", type=str)
@click.argument("b", type=str)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
    show_default=True, help="Output format.",
)  # fmt: skip
def command(a: str, b: str, fmt: str) -> None:
    """Compare capture A (e.g. a good run) with capture B (e.g. a failing one)."""
    from analyzer.diff import diff, render, to_json
    from analyzer.model import Analysis

    for p in (a, b):
        try:
            open(p, "rb").close()
        except OSError as exc:
            fail_input(f"{p}: {exc.strerror or exc}")
    aa, bb = _analysis(a), _analysis(b)
    assert isinstance(aa, Analysis) and isinstance(bb, Analysis)
    d = diff(aa, bb)
    if fmt == "json":
        print_json(to_json(d))
    else:
        click.echo(render(d, markdown=fmt == "markdown"), nl=False)
