"""The ``btanalyze`` command line. Each sub-command lives in ``analyzer/commands/<name>.py`` and
exposes a click command named ``command``.

Exit codes: 0 success; 1 internal error; 2 unreadable input or not a capture; 3 ``--fail-on`` hit.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from analyzer import __version__

COMMAND_MODULES = (
    "info", "analyze", "convert", "rules", "diff", "batch", "query", "summary", "store",
    "dashboard", "scrub",
)  # fmt: skip


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="btanalyze")
def cli() -> None:
    """btanalyze: read Bluetooth captures, rebuild what happened, say what went wrong."""


for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f"analyzer.commands.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"analyzer.commands.{_name}":
            raise
        continue
    cli.add_command(_mod.command)


def main() -> None:
    """Entry point: never lets a traceback reach the user."""
    code = 0
    try:
        cli.main(standalone_mode=True)
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    except KeyboardInterrupt:
        sys.stderr.write("btanalyze: interrupted\n")
        code = 130
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # last resort: one line, exit 1
        sys.stderr.write(f"btanalyze: internal error: {type(exc).__name__}: {exc}\n")
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    # Skip the interpreter's teardown (freeing a large memory-mapped capture and the modules
    # takes a noticeable part of a second on big files); everything is written by now.
    os._exit(code)
