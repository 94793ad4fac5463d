"""``btanalyze batch PATH… --out STORE``: analyse a lab's captures into a Parquet results store
(docs/store.md) — in parallel, resumable, a bad file recorded and skipped over."""

from __future__ import annotations

import sys

import click

from analyzer.commands.common import fail_input
from analyzer.store.batch import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT_S


def _bytes(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b")
    mult = units.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if t[-1:] in units else t) * mult)
    except ValueError:
        raise click.BadParameter(f"not a size: {text!r} (try 4G, 512M)") from None


@click.command("batch")
@click.argument("paths", nargs=-1, required=True, type=str)
@click.option("--out", "out", required=True, type=str, help="The results store folder.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: one per core).")
@click.option(
    "--dask", "dask_address", default=None, help="An existing dask.distributed scheduler."
)
@click.option(
    "--timeout",
    type=float,
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Seconds per file; a file over it is recorded as timed out.",
)
@click.option(
    "--max-memory", default=DEFAULT_MAX_MEMORY, show_default=True,
    help="Memory bound per worker (0: none); a file over it is recorded as out of memory.",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Analyse again captures already in the store.")
@click.option(
    "--anonymize",
    is_flag=True,
    help="Analyse scrubbed copies (btanalyze scrub's mapping): the store names only fake "
    "addresses and placeholder names.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default=None,
    help="Exit 3 when a capture of this batch has a finding this severe.",
)
def command(
    paths: tuple[str, ...],
    out: str,
    workers: int | None,
    dask_address: str | None,
    timeout: float,
    max_memory: str,
    force: bool,
    anonymize: bool,
    fail_on: str | None,
) -> None:
    """Analyse every capture under PATHS into the results store OUT."""
    import os

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from analyzer.store import Store
    from analyzer.store.batch import BatchStats, run_batch

    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        fail_input(f"{missing[0]}: no such file or folder")
    store = Store(out)
    if store.root.exists() and not store.root.is_dir():
        fail_input(f"{out}: exists and is not a folder")
    with Progress(
        TextColumn("[bold]batch"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        TextColumn("{task.fields[counts]}"),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as bar:
        job = bar.add_task("batch", total=None, counts="")
        seen = {"files": 0}

        def progress(stats: BatchStats, total: int) -> None:
            seen["files"] += 1
            bar.update(
                job,
                total=total,
                completed=seen["files"],
                counts=f"{stats.done} ok, {stats.failed} failed, {stats.skipped} skipped",
            )

        stats = run_batch(
            paths, store, workers=workers, timeout_s=timeout, memory_bytes=_bytes(max_memory),
            force=force, dask_address=dask_address, progress=progress, anonymize=anonymize,
        )  # fmt: skip
    click.echo(stats.line())
    if fail_on:
        import polars as pl

        caps = store.captures()
        col = "errors" if fail_on == "error" else None
        hit = (
            caps.filter(pl.col(col) > 0).height
            if col
            else caps.filter((pl.col("errors") > 0) | (pl.col("warnings") > 0)).height
        )
        if hit:
            sys.exit(3)
