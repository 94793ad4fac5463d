"""``btanalyze scrub IN -o OUT [--keep-oui] [--seed S] [--log NAME]`` (issue 23).

Writes a copy of a capture that is safe to attach to a public bug report (see
:mod:`analyzer.scrub` and docs/scrub.md): same container format, addresses remapped
consistently, keys/PINs/passkeys zeroed, names and phone numbers replaced, OBEX payloads
blanked, pcapng comments dropped. gzip, btsnooz and bugreport inputs are written as the
extracted log (btsnoop). Exit 2 with one line on unreadable input or an unwritable OUT.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import click

from analyzer.commands.common import fail_input, load_or_exit
from analyzer.readers.limits import printable
from analyzer.scrub import scrub
from analyzer.writers import WriteError


@click.command("scrub")
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "-o", "--output", "output", required=True, type=click.Path(path_type=str), help="File to write."
)
@click.option("--keep-oui", is_flag=True, help="Keep the vendor part (OUI) of public addresses.")
@click.option(
    "--seed",
    default=None,
    help="Derive the mapping from this text (reproducible output); default: a random secret.",
)
@click.option("--log", default=None, help="Which log to read inside a bugreport or zip.")
def command(file: str, output: str, keep_oui: bool, seed: str | None, log: str | None) -> None:
    """Write a copy of a capture with addresses, keys, names and numbers scrubbed."""
    cap = load_or_exit(file, log=log)
    try:
        result = scrub(cap, seed=seed, keep_oui=keep_oui)
    except WriteError as exc:
        fail_input(str(exc))
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(output)}.tmp-", dir=os.path.dirname(output) or "."
        )
        with os.fdopen(fd, "wb") as out:
            out.write(result.data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, output)
    except OSError as exc:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        fail_input(f"cannot write {printable(output)}: {exc.strerror or exc}")
    for w in result.warnings:
        click.echo(f"btanalyze: warning: {w}", err=True)
    if result.rewritten:
        click.echo(
            f"btanalyze: note: {cap.meta.format}{' (gzip)' if cap.meta.compressed else ''} input "
            f"written as the extracted log in {result.format} format",
            err=True,
        )
    c = result.counts
    keys = sum(v for k, v in c.items() if k.startswith("zeroed_"))
    click.echo(
        f"wrote {len(cap)} frames to {printable(output)} ({result.format}): "
        f"{c.get('addresses', 0)} addresses remapped, {keys} key/PIN/passkey fields zeroed, "
        f"{c.get('names', 0)} names and {c.get('numbers', 0)} numbers replaced",
        err=True,
    )
