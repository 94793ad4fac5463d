"""``btanalyze store rm STORE ID|PATH…`` (delete captures' rows, e.g. for privacy) and
``btanalyze store compact STORE`` (merge the per-capture files into one file per table)."""

from __future__ import annotations

import click

from analyzer.commands.common import fail_input


@click.group("store")
def command() -> None:
    """Maintain a results store."""


def _open(store: str) -> object:
    from analyzer.store import Store

    st = Store(store)
    if not (st.root / "captures").is_dir():
        fail_input(f"{store}: not a results store (no captures/ folder; see btanalyze batch)")
    return st


@command.command("rm")
@click.argument("store", type=str)
@click.argument("captures", nargs=-1, required=True, type=str)
def rm(store: str, captures: tuple[str, ...]) -> None:
    """Delete captures (by capture id or path) from every table of STORE."""
    import polars as pl

    from analyzer.store import Store, update_derived

    st = _open(store)
    assert isinstance(st, Store)
    caps = st.captures()
    ids = caps.filter(
        pl.col("capture_id").is_in(list(captures))
        | pl.col("path").is_in(list(captures))
        | pl.col("file").is_in(list(captures))
    )["capture_id"].to_list()
    if not ids:
        fail_input("no such capture in the store (give a capture id or a path as stored)")
    n = st.remove(ids)
    update_derived(st)
    click.echo(f"removed {n} capture{'s' if n != 1 else ''}")


@command.command("compact")
@click.argument("store", type=str)
def compact(store: str) -> None:
    """Merge STORE's small per-capture files into one file per table."""
    from analyzer.store import Store

    st = _open(store)
    assert isinstance(st, Store)
    n = st.compact()
    click.echo(f"merged {n} files")
