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


def test_batch_anonymize_stores_no_original_address(tmp_path: Path) -> None:
    """batch --anonymize (issue 23): the store holds the analysis of a scrubbed copy — the same
    findings, no original address; a plain run into the same store analyses again."""
    from analyzer.store import Store
    from analyzer.store.batch import run_batch
    from tests.conftest import REPO

    cap = REPO / "captures" / "scenarios" / "a2dp_rejected_hfp_fallback.btsnoop"
    plain, anon = Store(tmp_path / "plain"), Store(tmp_path / "anon")
    run_batch([str(cap)], plain, workers=1)
    run_batch([str(cap)], anon, workers=1, anonymize=True)
    real = set(plain.read("devices")["address"].to_list())
    fake = set(anon.read("devices")["address"].to_list())
    assert real and fake and not real & fake
    ids = sorted(plain.read("findings")["id"].to_list())
    assert ids and sorted(anon.read("findings")["id"].to_list()) == ids
    assert anon.captures()["anonymized"].to_list() == [True]
    stats = run_batch([str(cap)], anon, workers=1)  # plain results are not the anonymized ones
    assert stats.done == 1 and stats.skipped == 0
