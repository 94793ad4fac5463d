"""The results store reads tables written by older analyzers (columns added since are null)."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def test_files_from_an_older_analyzer_read_with_the_new_columns(tmp_path: Path) -> None:
    """A store written before a model field was added (keys are only ever added): reading the
    table or querying it gives every row, the new column null for the old files."""
    from analyzer.store import Store, read_parquet_files

    store = Store(tmp_path / "store")
    d = store.table_dir("devices")
    d.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"capture_id": ["old"], "address": ["AA"]}).write_parquet(d / "old.parquet")
    pl.DataFrame({"capture_id": ["new"], "address": ["BB"], "oui_vendor": ["Acme"]}).write_parquet(
        d / "new.parquet"
    )
    df = read_parquet_files(store.files("devices"))
    assert sorted(df["capture_id"].to_list()) == ["new", "old"]
    assert df.filter(pl.col("capture_id") == "new")["oui_vendor"].to_list() == ["Acme"]
    con = store.connect()
    rows = con.execute("select capture_id, oui_vendor from devices order by 1").fetchall()  # type: ignore[attr-defined]
    assert rows == [("new", "Acme"), ("old", None)]
