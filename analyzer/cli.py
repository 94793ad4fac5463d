"""The ``btanalyze`` command line. Each sub-command lives in ``analyzer/commands/<name>.py`` and
exposes a click command named ``command``.

Exit codes: 0 success; 1 internal error; 2 unreadable input or not a capture; 3 ``--fail-on`` hit.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

import click

from analyzer import __version__

COMMAND_MODULES = (
    "info", "analyze", "convert", "rules", "diff", "batch", "query", "summary", "store",
    "dashboard", "scrub",
)  # fmt: skip


class _LazyGroup(click.Group):
    """Sub-commands imported when used (``btanalyze info`` does not pay for importing the
    dashboard, the store or the scrubber); ``--help`` lists them all."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(n for n in COMMAND_MODULES if _mod(n))})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMAND_MODULES:
            return found
        mod = _mod(cmd_name)
        if mod is None:
            return None
        command: click.Command = mod.command
        self.add_command(command, cmd_name)
        return command


def _mod(name: str) -> ModuleType | None:
    """The sub-command's module, or None when this install lacks it."""
    try:
        return importlib.import_module(f"analyzer.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"analyzer.commands.{name}":
            raise
        return None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="btanalyze")
def cli() -> None:
    """btanalyze: read Bluetooth captures, rebuild what happened, say what went wrong.

    \b
    Exit codes:
      0  success
      1  internal error (a bug: please report it)
      2  unreadable input, not a capture, or a usage error (one line on stderr says why)
      3  a finding at or above --fail-on (analyze, batch)
    """


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
