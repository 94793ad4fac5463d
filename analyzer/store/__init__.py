"""The results store of ``btanalyze batch``: a folder of Parquet tables with fixed schemas.

Layout (docs/store.md): one folder per table — ``STORE/captures/`` (one row per input capture,
unreadable and non-capture files included) and one per analysis table (``STORE/findings/``,
``STORE/connections/``, ... :data:`analyzer.model.TABLES`), each holding only ``.parquet`` files
with the table's fixed schema and a leading ``capture_id`` column; ``STORE/analyses/`` holds each
capture's whole analysis as gzip'd JSON (the dashboard opens it without re-analysing);
``STORE/device_history/`` and ``STORE/store_findings/`` are derived over the whole store after
each batch. Temporary files live in ``STORE/.tmp/``.

A capture lands atomically: its tables are written under ``.tmp`` and renamed into place, the
``captures`` row last, so a capture whose ``captures`` row exists is complete; files of a
capture without one (a batch killed between renames) are removed by :meth:`Store.recover`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from analyzer.model import TABLES, Analysis

#: the ``captures`` table: one row per input capture (docs/store.md)
CAPTURES_SCHEMA = pl.Schema(
    {
        "capture_id": pl.Utf8,
        "path": pl.Utf8,  # the input file; "archive.zip::member" for a log inside an archive
        "file": pl.Utf8,
        "member": pl.Utf8,
        "sha256": pl.Utf8,
        "size": pl.Int64,
        "format": pl.Utf8,
        "frames": pl.Int64,
        "first_time": pl.Utf8,
        "last_time": pl.Utf8,
        "first_time_us": pl.Int64,
        "last_time_us": pl.Int64,
        "status": pl.Utf8,  # ok / not_a_capture / unreadable / failed / crashed / timeout
        "error": pl.Utf8,
        "errors": pl.Int64,  # findings by severity
        "warnings": pl.Int64,
        "infos": pl.Int64,
        "analyzer_version": pl.Utf8,
        "analysed_at": pl.Utf8,
        "seconds": pl.Float64,
        #: analysed from a scrubbed copy (--anonymize): fake addresses, placeholder names
        "anonymized": pl.Boolean,
    }
)
DERIVED = ("device_history", "store_findings")
CAPTURE_FILE = "c-{}.parquet"


def capture_id(sha256: str, member: str | None) -> str:
    """Stable id of a capture: its content hash (and the log's name inside an archive)."""
    key = sha256 if member is None else f"{sha256}::{member}"
    return hashlib.sha256(key.encode()).hexdigest()[:24] if member else sha256[:24]


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def captures_frame(rows: Iterable[dict[str, object]]) -> pl.DataFrame:
    rows = list(rows)
    if not rows:
        return pl.DataFrame(schema=CAPTURES_SCHEMA)
    full = [{k: r.get(k) for k in CAPTURES_SCHEMA} for r in rows]
    return pl.DataFrame(full, schema=CAPTURES_SCHEMA, orient="row")


class Store:
    """A results store folder (created on first use)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.tmp = self.root / ".tmp"

    # -- layout ------------------------------------------------------------------------------
    def table_dir(self, table: str) -> Path:
        return self.root / table

    def create(self) -> None:
        for t in ("captures", *TABLES, "analyses"):
            self.table_dir(t).mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def staging(self, cid: str) -> Path:
        """A fresh folder under ``.tmp`` for one capture's files."""
        d = self.tmp / f"{cid}-{uuid.uuid4().hex[:8]}"
        d.mkdir(parents=True)
        return d

    # -- reading -----------------------------------------------------------------------------
    def files(self, table: str) -> list[Path]:
        d = self.table_dir(table)
        return sorted(d.glob("*.parquet")) if d.is_dir() else []

    def read(self, table: str) -> pl.DataFrame:
        """A whole table (an empty frame with the fixed schema when nothing is stored)."""
        files = self.files(table)
        if files:
            return read_parquet_files(files)
        if table == "captures":
            return pl.DataFrame(schema=CAPTURES_SCHEMA)
        if table in TABLES:
            empty = Analysis.table_schema(table)
            return pl.DataFrame(schema={"capture_id": pl.Utf8, **empty})
        return pl.DataFrame()

    def captures(self) -> pl.DataFrame:
        return self.read("captures")

    def done(self, version: str, anonymized: bool = False) -> dict[str, str]:
        """capture id → status of the captures already stored by this analyzer version (and
        anonymized or not, as asked: an --anonymize run redoes plain results and the reverse)."""
        c = self.captures()
        if c.is_empty():
            return {}
        c = c.filter(
            (pl.col("analyzer_version") == version)
            & (pl.col("anonymized").fill_null(False) == anonymized)
        )
        return dict(zip(c["capture_id"].to_list(), c["status"].to_list(), strict=True))

    def analysis(self, cid: str) -> Analysis:
        """A stored capture's whole analysis (no re-analysis)."""
        path = self.table_dir("analyses") / f"{cid}.json.gz"
        with gzip.open(path, "rb") as fh:
            return Analysis.from_json(fh.read())

    # -- writing -----------------------------------------------------------------------------
    def commit(self, cid: str, staged: Path | None, row: dict[str, object]) -> None:
        """Move a capture's staged tables into place, then its ``captures`` row (last)."""
        self.create()
        self._remove_files(cid)  # --force: the new rows replace the old ones
        if staged is not None and staged.is_dir():
            for t in TABLES:
                src = staged / f"{t}.parquet"
                if src.exists():
                    os.replace(src, self.table_dir(t) / CAPTURE_FILE.format(cid))
            js = staged / "analysis.json.gz"
            if js.exists():
                os.replace(js, self.table_dir("analyses") / f"{cid}.json.gz")
        tmp = self.tmp / f"captures-{cid}-{uuid.uuid4().hex[:8]}.parquet"
        captures_frame([row]).write_parquet(tmp)
        os.replace(tmp, self.table_dir("captures") / CAPTURE_FILE.format(cid))
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)

    def _remove_files(self, cid: str) -> None:
        for t in ("captures", *TABLES):
            p = self.table_dir(t) / CAPTURE_FILE.format(cid)
            p.unlink(missing_ok=True)
        (self.table_dir("analyses") / f"{cid}.json.gz").unlink(missing_ok=True)

    def recover(self) -> int:
        """Remove what a killed batch left: staged files, and per-capture table files whose
        ``captures`` row was never written. Returns how many capture ids were cleaned."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        if not self.root.is_dir():
            return 0
        committed = {p.name for p in self.files("captures") if p.name.startswith("c-")}
        orphans: set[str] = set()
        for t in TABLES:
            for p in self.table_dir(t).glob("c-*.parquet"):
                if p.name not in committed:
                    orphans.add(p.name)
                    p.unlink(missing_ok=True)
        ids = {n[2:-8] for n in committed} | self._compacted_ids()  # read once
        for p in self.table_dir("analyses").glob("*.json.gz"):
            if p.name.removesuffix(".json.gz") not in ids:
                p.unlink(missing_ok=True)
        return len(orphans)

    def _compacted_ids(self) -> set[str]:
        parts = [p for p in self.files("captures") if p.name.startswith("part-")]
        if not parts:
            return set()
        return set(pl.read_parquet(parts)["capture_id"].to_list())

    def remove(self, cids: Iterable[str]) -> int:
        """Delete captures' rows from every table (``btanalyze store rm``)."""
        cids = set(cids)
        n = 0
        for cid in cids:
            if (self.table_dir("captures") / CAPTURE_FILE.format(cid)).exists():
                n += 1
            self._remove_files(cid)
        for t in ("captures", *TABLES, *DERIVED):
            for p in self.files(t):
                if not p.name.startswith("part-"):
                    continue
                df = pl.read_parquet(p)
                if "capture_id" not in df.columns:
                    continue
                keep = df.filter(~pl.col("capture_id").is_in(list(cids)))
                if keep.height != df.height:
                    if t == "captures":
                        n += df.height - keep.height
                    self._rewrite(p, keep)
        return n

    def _rewrite(self, path: Path, df: pl.DataFrame) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"rw-{uuid.uuid4().hex}.parquet"
        df.write_parquet(tmp)
        os.replace(tmp, path)

    def compact(self) -> int:
        """Merge each table's small per-capture files into one part file (the ``captures``
        table last: until its part lands, the per-capture files still count). Returns how many
        files were merged."""
        merged = 0
        for t in (*TABLES, "captures"):
            files = self.files(t)
            if len(files) < 2:
                continue
            df = read_parquet_files(files)
            self.tmp.mkdir(parents=True, exist_ok=True)
            tmp = self.tmp / f"compact-{uuid.uuid4().hex}.parquet"
            df.write_parquet(tmp)
            os.replace(tmp, self.table_dir(t) / f"part-{uuid.uuid4().hex[:12]}.parquet")
            for f in files:
                f.unlink(missing_ok=True)
            merged += len(files)
        return merged

    def write_derived(self, name: str, df: pl.DataFrame) -> None:
        """A store-level table, recomputed over the whole store (replaces the previous one)."""
        d = self.table_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{name}-{uuid.uuid4().hex}.parquet"
        df.write_parquet(tmp)
        os.replace(tmp, d / "all.parquet")

    # -- SQL ---------------------------------------------------------------------------------
    def sql(self, query: str) -> pl.DataFrame:
        """Run DuckDB SQL over the store's tables; the result as a polars DataFrame. The SQL can
        read the store only and write no file (``COPY … TO`` and ``read_csv('/etc/…')`` are
        refused)."""
        con = self.connect()
        root = str(self.root.resolve()).replace("'", "''")
        con.execute(f"SET allowed_directories = ['{root}/']")  # type: ignore[attr-defined]
        con.execute("SET enable_external_access = false")  # type: ignore[attr-defined]
        con.execute("SET lock_configuration = true")  # type: ignore[attr-defined]
        cur = con.execute(query)  # type: ignore[attr-defined]
        cols = [d[0] for d in cur.description or []]
        rows = cur.fetchall()
        return (
            pl.DataFrame(rows, schema=cols, orient="row")
            if rows
            else pl.DataFrame(schema=dict.fromkeys(cols, pl.Utf8))
        )

    def connect(self) -> object:
        """A DuckDB connection with one view per stored table (``SELECT * FROM findings``)."""
        import duckdb

        con = duckdb.connect()
        for t in ("captures", *TABLES, *DERIVED):
            files = self.files(t)
            if files:
                pattern = str(self.table_dir(t) / "*.parquet").replace("'", "''")
                # union_by_name: files written by an older analyzer lack columns added since
                con.execute(
                    f"CREATE VIEW \"{t}\" AS SELECT * FROM read_parquet('{pattern}', "
                    "union_by_name = true)"
                )
            elif t in ("captures", *TABLES):
                # nothing stored yet: an empty file with the table's fixed schema
                empty = self.tmp / "empty" / f"{t}.parquet"
                empty.parent.mkdir(parents=True, exist_ok=True)
                self.read(t).write_parquet(empty)
                pattern = str(empty).replace("'", "''")
                con.execute(f"CREATE VIEW \"{t}\" AS SELECT * FROM read_parquet('{pattern}')")
        return con


def read_parquet_files(files: list[Path]) -> pl.DataFrame:
    """Several Parquet files of one table as one frame. Files written by an older analyzer may
    lack columns added to the model since (keys are only ever added): those are null there.
    (Reading them as one scan would take the first file's columns and drop the others'.)"""
    schemas = {tuple(pl.read_parquet_schema(f).items()) for f in files}
    if len(schemas) <= 1:
        return pl.read_parquet(files)
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")


def update_derived(store: Store) -> None:
    """Recompute the store-level tables (device history, cross-capture findings)."""
    from analyzer.store.batch import update_history

    update_history(store)


__all__ = [
    "CAPTURES_SCHEMA",
    "Store",
    "capture_id",
    "captures_frame",
    "file_sha256",
    "update_derived",
]
