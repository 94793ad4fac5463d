"""Helpers shared by the sub-commands."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from analyzer.capture import Capture, CaptureError
from analyzer.readers import load
from analyzer.readers.limits import printable


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
    click.echo(json.dumps(obj, indent=2, default=str))
