"""``btanalyze convert IN -o OUT [--format btsnoop|pcapng] [--log NAME] [--annotate] [--force]``
(issue 3 §5, issue 16 §3 and §5).

Writes whatever we read (btsnoop, pcap/pcapng, btsnooz, PacketLogger, a log inside a bugreport)
as a file Wireshark opens, keeping every frame's time, direction and bytes (see
:mod:`analyzer.writers`). ``--annotate`` analyses the capture and writes each finding as a packet
comment on its evidence frames (pcapng). An existing OUT is never overwritten without ``--force``,
the input never. Exit 2 with one line on unreadable input or an impossible conversion.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import click

from analyzer.commands.common import annotate_findings, fail_input, load_or_exit, refuse_overwrite
from analyzer.readers.limits import printable
from analyzer.writers import WriteError, choose_format, write


@click.command("convert")
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "-o", "--output", "output", required=True, type=click.Path(path_type=str), help="File to write."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["btsnoop", "pcapng"]),
    default=None,
    help="Output format (default: from OUT's extension, else btsnoop for HCI "
    "captures and pcapng for air captures).",
)
@click.option("--log", default=None, help="Which log to read inside a bugreport or zip.")
@click.option(
    "--annotate",
    is_flag=True,
    help="Analyse the capture and write each finding as a packet comment on its evidence "
    "frames (pcapng; Wireshark: frame.comment).",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists (never the input).")
def command(
    file: str, output: str, fmt: str | None, log: str | None, annotate: bool, force: bool
) -> None:
    """Convert a capture to btsnoop or pcapng."""
    refuse_overwrite(output, [file], force)
    cap = load_or_exit(file, log=log)
    fmt = fmt or choose_format(cap, output)
    if annotate:
        if fmt != "pcapng":
            fail_input("--annotate writes packet comments: they need --format pcapng")
        from analyzer.analysis import analyze_capture

        annotate_findings(cap, analyze_capture(cap).findings)
    tmp = ""
    try:
        # a fresh temporary file beside OUT, created with O_EXCL (tempfile.mkstemp): a symlink
        # planted at any name we might pick is never followed, then renamed over OUT
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(output)}.tmp-", dir=os.path.dirname(output) or "."
        )
        with os.fdopen(fd, "wb") as out:
            warnings = write(cap, out, fmt)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, output)
    except WriteError as exc:
        _unlink(tmp)
        fail_input(str(exc))
    except OSError as exc:
        _unlink(tmp)
        fail_input(f"cannot write {printable(output)}: {exc.strerror or exc}")
    for w in warnings:
        click.echo(f"btanalyze: warning: {w}", err=True)
    click.echo(f"wrote {len(cap)} frames to {printable(output)} ({fmt})", err=True)


def _unlink(path: str) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
