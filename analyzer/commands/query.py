"""``btanalyze query STORE "SQL"``: DuckDB SQL over a results store's tables (one view per
table: ``captures``, ``findings``, ``devices``, ``connections``, ... , ``device_history``)."""

from __future__ import annotations

import json
import sys

import click

from analyzer.commands.common import fail_input


@click.command("query")
@click.argument("store", type=str)
@click.argument("sql", type=str)
@click.option("--csv", "as_csv", is_flag=True, help="CSV output.")
@click.option("--json", "as_json", is_flag=True, help="JSON output (a list of rows).")
def command(store: str, sql: str, as_csv: bool, as_json: bool) -> None:
    """Run SQL over the results store STORE."""
    import duckdb

    from analyzer.store import Store

    st = Store(store)
    if not (st.root / "captures").is_dir():
        fail_input(f"{store}: not a results store (no captures/ folder; see btanalyze batch)")
    try:
        df = st.sql(sql)
    except duckdb.Error as exc:
        fail_input(f"SQL error: {str(exc).splitlines()[0]}")
    if as_json:
        click.echo(json.dumps(df.to_dicts(), indent=2, default=str))
    elif as_csv:
        sys.stdout.write(df.write_csv())
    else:
        import polars as pl

        with pl.Config(tbl_rows=200, tbl_cols=30, fmt_str_lengths=80, tbl_width_chars=200):
            click.echo(df)
