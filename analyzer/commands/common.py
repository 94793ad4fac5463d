"""Helpers shared by the sub-commands."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from analyzer.codes import CaptureError
from analyzer.readers import load
from analyzer.readers.limits import printable

if TYPE_CHECKING:  # (no polars for `btanalyze info` on a btsnoop log)
    from analyzer.capture import Capture
    from analyzer.model import Finding


def fail_input(reason: str) -> NoReturn:
    """Exit 2 with one line on stderr naming why the input could not be read."""
    # one line whatever the input: names from paths and archives may hold newlines or escapes
    click.echo(f"btanalyze: {printable(reason, limit=2000)}", err=True)
    sys.exit(2)


def load_or_exit(path: str, *, log: str | None = None) -> Capture:
    try:
        return load(path, log=log)
    except CaptureError as exc:
        fail_input(str(exc))


def print_json(obj: Any) -> None:
    """JSON on stdout: indented for a person at a terminal, else on one line (the C encoder:
    a large analysis piped to a file or a tool is written several times faster)."""
    indent = 2 if sys.stdout.isatty() else None
    click.echo(json.dumps(obj, indent=indent, default=str))


def annotate_findings(cap: Capture, findings: list[Finding]) -> None:
    """Each finding as a packet comment on its evidence frames (pcapng ``opt_comment``): the
    comment starts with the finding id, then severity and message, so Wireshark's
    ``frame.comment contains "auth_key_missing"`` finds them; several on one frame are joined."""
    for f in findings:
        note = f"{f.id} {f.severity} (btanalyze): {f.message}"
        for fr in f.frames:
            old = cap.comments.get(fr)
            cap.comments[fr] = f"{old}\n{note}" if old else note


def refuse_overwrite(output: str, inputs: list[str], force: bool) -> None:
    """Exit 2 when ``output`` is one of the inputs (always) or exists (unless ``force``)."""
    for i in inputs:
        try:
            same = os.path.samefile(output, i)
        except OSError:
            same = os.path.abspath(output) == os.path.abspath(i)
        if same:
            fail_input(f"{printable(output)} is the input: refusing to overwrite it")
    if os.path.lexists(output) and not force:
        fail_input(f"{printable(output)} exists: use --force to overwrite it")
