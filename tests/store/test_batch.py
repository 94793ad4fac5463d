"""``btanalyze batch`` into a results store (issue 20): every capture stored once, bad inputs
listed with their errors, a re-run skips what is stored, crashed and overdue workers cost only
their own file, a killed batch leaves a store that reads, Dask gives the same store as the local
pool, and ``query`` / ``summary`` / ``store rm`` / ``store compact`` work on it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest

from analyzer.model import TABLES
from analyzer.store import Store
from analyzer.store.batch import run_batch

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "captures" / "scenarios"
REAL = REPO / "captures" / "real"
CLI = [sys.executable, "-c", "from analyzer.cli import main; main()"]


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab folder: 6 scenario captures, a real one, a cut file, random bytes, a text file,
    and a zip holding two captures (each its own row, ``zip::member``)."""
    d = tmp_path_factory.mktemp("lab")
    names = sorted(p.name for p in SCENARIOS.glob("*.btsnoop"))[:6]
    for n in names:
        shutil.copy(SCENARIOS / n, d / n)
    real = sorted(REAL.glob("*"))[0]
    shutil.copy(real, d / real.name)
    (d / "cut.btsnoop").write_bytes((SCENARIOS / names[0]).read_bytes()[:700])
    (d / "random.bin").write_bytes(os.urandom(4096))
    (d / "notes.txt").write_text("not a capture\n")
    with zipfile.ZipFile(d / "two.zip", "w") as z:
        z.write(SCENARIOS / "page_timeout.btsnoop", "run1/btsnoop_hci.log")
        z.write(SCENARIOS / "link_loss.btsnoop", "run2/btsnoop_hci.log")
    return d


def test_batch_stores_every_capture_once_and_lists_bad_inputs(lab: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    r = _cli("batch", str(lab), "--out", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "files:" in r.stdout and "failed" in r.stdout
    caps = Store(out).captures()
    files = sorted(str(p) for p in lab.iterdir())
    assert set(caps["file"].to_list()) == set(files)  # one row (at least) per input file
    assert caps["capture_id"].n_unique() == caps.height  # each capture once
    status = dict(zip(caps["path"].to_list(), caps["status"].to_list(), strict=True))
    assert status[str(lab / "random.bin")] == "not_a_capture"
    assert status[str(lab / "notes.txt")] == "not_a_capture"
    assert status[str(lab / "cut.btsnoop")] == "ok"  # damaged: every good frame, a warning
    members = sorted(p for p in status if "::" in p)
    assert members == [f"{lab / 'two.zip'}::run1/btsnoop_hci.log",
                       f"{lab / 'two.zip'}::run2/btsnoop_hci.log"]  # fmt: skip
    errors = caps.filter(pl.col("status") != "ok")["error"].to_list()
    assert all(e and "not a capture" in e for e in errors)
    # every analysis table reads with its fixed schema and the capture id
    st = Store(out)
    for t in TABLES:
        df = st.read(t)
        assert df.columns[0] == "capture_id"
        assert set(df["capture_id"].to_list()) <= set(caps["capture_id"].to_list())
    # the findings stored equal a direct analysis of one capture
    from analyzer.analysis import analyze

    one = lab / "page_timeout.btsnoop" if (lab / "page_timeout.btsnoop").exists() else None
    sample = one or next(p for p in lab.glob("*.btsnoop") if p.name != "cut.btsnoop")
    cid = caps.filter(pl.col("path") == str(sample))["capture_id"][0]
    stored = st.read("findings").filter(pl.col("capture_id") == cid)
    assert sorted(stored["id"].to_list()) == sorted(f.id for f in analyze(sample).findings)
    assert st.analysis(cid).capture.frames == caps.filter(pl.col("capture_id") == cid)["frames"][0]
    # a second run analyses nothing again and says so
    again = _cli("batch", str(lab), "--out", str(out), "--workers", "2")
    assert again.returncode == 0
    assert f"0 captures analysed, 0 failed, {caps.height} skipped" in again.stdout
    assert Store(out).captures().height == caps.height


def test_crashed_and_overdue_workers_cost_only_their_file(lab: Path, tmp_path: Path) -> None:
    st = Store(tmp_path / "store")
    stats = run_batch([str(lab)], st, workers=2, timeout_s=8.0, crash_on="notes", hang_on="random")
    caps = st.captures()
    status = dict(zip(caps["file"].to_list(), caps["status"].to_list(), strict=True))
    assert status[str(lab / "notes.txt")] == "crashed"
    assert status[str(lab / "random.bin")] == "timeout"
    assert sum(1 for s in status.values() if s == "ok") >= 8
    assert stats.failed == 2
    # --force redoes them (no hooks now): they become ordinary not_a_capture rows
    run_batch([str(lab)], st, workers=2, force=True)
    caps = st.captures()
    assert caps["capture_id"].n_unique() == caps.height
    assert caps.filter(pl.col("file") == str(lab / "notes.txt"))["status"][0] == "not_a_capture"


def test_memory_bound_costs_only_its_file(tmp_path: Path) -> None:
    """A capture whose analysis grows past the worker's memory bound (issue 18 §2) is recorded
    as out of memory; the other capture of the batch is analysed."""
    lab = tmp_path / "in"
    lab.mkdir()
    for n in ("link_loss.btsnoop", "page_timeout.btsnoop"):
        shutil.copy(SCENARIOS / n, lab / n)
    st = Store(tmp_path / "store")
    stats = run_batch([str(lab)], st, workers=1, memory_bytes=3 << 30, hog_on="link_loss")
    caps = st.captures()
    rows = {Path(f).name: (s, e) for f, s, e in caps.select("file", "status", "error").iter_rows()}
    assert rows["link_loss.btsnoop"] == ("failed", "out of memory (over the worker's memory bound)")
    assert rows["page_timeout.btsnoop"][0] == "ok"
    assert stats.failed == 1 and stats.done == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_batch_then_rerun_stores_everything_once(
    lab: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "store"
    big = tmp_path / "in"
    big.mkdir()
    for i in range(3):  # enough files that the kill lands half way
        for p in lab.glob("*.btsnoop"):
            shutil.copy(p, big / f"{i}-{p.name}")
            (big / f"{i}-{p.name}").write_bytes(p.read_bytes() + bytes(i))  # distinct content
    proc = subprocess.Popen(
        [*CLI, "batch", str(big), "--out", str(out), "--workers", "1"], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(list((out / "captures").glob("*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(30)
    first = len(list((out / "captures").glob("*.parquet")))
    assert 0 < first < len(list(big.iterdir())), "the kill should land half way"
    r = _cli("batch", str(big), "--out", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    st = Store(out)
    caps = st.captures()
    assert caps.height == len(list(big.iterdir()))
    assert caps["capture_id"].n_unique() == caps.height
    for t in TABLES:
        ids = set(st.read(t)["capture_id"].to_list())
        assert ids <= set(caps["capture_id"].to_list()), t
    assert not list((out / ".tmp").glob("*")) or all(
        p.name == "empty" for p in (out / ".tmp").iterdir()
    )


def test_dask_cluster_gives_the_same_store(lab: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    local, remote = Store(tmp_path / "local"), Store(tmp_path / "dask")
    run_batch([str(lab)], local, workers=2)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        run_batch([str(lab)], remote, dask_address=cluster.scheduler_address)

    def key(st: Store, t: str) -> pl.DataFrame:
        df = st.read(t).drop([c for c in ("analysed_at", "seconds") if c in st.read(t).columns])
        return df.sort(df.columns[:3])

    for t in ("captures", "findings", "devices", "connections"):
        assert key(local, t).equals(key(remote, t)), t


def test_query_summary_rm_and_compact(lab: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    run_batch([str(lab)], Store(out), workers=2)
    st = Store(out)
    n_findings = st.read("findings").height
    q = _cli("query", str(out), "select count(*) as n from findings", "--csv")
    assert q.returncode == 0, q.stderr
    assert q.stdout.splitlines() == ["n", str(n_findings)]
    bad = _cli("query", str(out), "select * from nonexistent")
    assert bad.returncode == 2 and "SQL error" in bad.stderr
    s = _cli("summary", str(out))
    assert s.returncode == 0 and "captures in" in s.stdout and "not_a_capture" in s.stdout
    # compact: one file per table, same rows
    before = {t: st.read(t).height for t in ("captures", "findings", "connections")}
    assert _cli("store", "compact", str(out)).returncode == 0
    assert len(st.files("captures")) == 1
    assert {t: st.read(t).height for t in before} == before
    # rm a capture by path: its rows leave every table
    victim = str(lab / "notes.txt")
    assert _cli("store", "rm", str(out), victim).returncode == 0
    caps = st.captures()
    assert victim not in caps["path"].to_list() and caps.height == before["captures"] - 1
    not_store = _cli("summary", str(tmp_path))
    assert not_store.returncode == 2


def test_a_killed_batch_leaves_no_worker_behind(lab: Path, tmp_path: Path) -> None:
    """SIGKILL while a worker hangs: the worker (and the fork server) end with the batch."""
    out = tmp_path / "store"
    code = (
        "import sys; from analyzer.store import Store; from analyzer.store.batch import run_batch\n"
        f"run_batch([{str(lab)!r}], Store({str(out)!r}), workers=1, hang_on='two.zip')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the files sorted before two.zip are done
            if len(list((out / "captures").glob("*.parquet"))) >= 3:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        proc.kill()
        proc.wait(20)
        survivors: list[str] = []
        for _ in range(100):
            pgrep = ["pgrep", "-g", str(proc.pid)]
            survivors = subprocess.run(
                pgrep, capture_output=True, text=True, check=False
            ).stdout.split()
            if not survivors:
                break
            time.sleep(0.2)
        assert survivors == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_query_reads_the_store_only(lab: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    assert _cli("batch", str(SCENARIOS / "page_timeout.btsnoop"), "--out", str(out)).returncode == 0
    evil = tmp_path / "evil.csv"
    r = _cli("query", str(out), f"copy (select 1) to '{evil}'")
    assert r.returncode == 2 and not evil.exists(), r.stdout
    r = _cli("query", str(out), "select * from read_csv('/etc/passwd')")
    assert r.returncode == 2
    r = _cli("query", str(out), "select count(*) n from captures", "--csv")
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "1"]


def test_firmware_change_then_stale_bond_across_captures(tmp_path: Path) -> None:
    """Store-level history: a device's version changes between two captures, and the later
    capture's auth_key_missing is marked as following that update (whatever the processing
    order)."""
    import polars as pl

    from analyzer.store.batch import update_history

    st = Store(tmp_path / "store")
    st.create()
    caps = pl.DataFrame(
        {"capture_id": ["c1", "c2"], "path": ["before.log", "after.log"],
         "first_time": ["2026-01-01", "2026-01-02"], "first_time_us": [1, 2],
         "analysed_at": ["x", "x"], "status": ["ok", "ok"]}
    )  # fmt: skip
    from analyzer.store import captures_frame

    for row in caps.iter_rows(named=True):
        captures_frame([row]).write_parquet(
            st.table_dir("captures") / f"c-{row['capture_id']}.parquet"
        )
    dev_schema = {
        "capture_id": pl.Utf8,
        **__import__("analyzer").model.Analysis.table_schema("devices"),
    }
    devs = pl.DataFrame(
        [{"capture_id": c, "address": "AA:BB:CC:DD:EE:FF", "role": "remote", "name": "Buds",
          "lmp_version": 11, "lmp_subversion": sub} for c, sub in (("c2", 0x0320), ("c1", 0x0310))],
        schema_overrides=dev_schema,
    )  # fmt: skip
    devs = devs.select([pl.col(k).cast(v) if k in devs.columns else pl.lit(None, v).alias(k)
                        for k, v in dev_schema.items()])  # fmt: skip
    devs.write_parquet(st.table_dir("devices") / "c-x.parquet")
    f_schema = {
        "capture_id": pl.Utf8,
        **__import__("analyzer").model.Analysis.table_schema("findings"),
    }
    fnd = pl.DataFrame(
        [{"capture_id": "c2", "id": "auth_key_missing", "address": "AA:BB:CC:DD:EE:FF"}]
    )
    fnd = fnd.select([pl.col(k).cast(v) if k in fnd.columns else pl.lit(None, v).alias(k)
                      for k, v in f_schema.items()])  # fmt: skip
    fnd.write_parquet(st.table_dir("findings") / "c-c2.parquet")
    update_history(st)
    sf = st.read("store_findings")
    assert sf["id"].to_list() == ["firmware_changed", "auth_key_missing"]
    assert "before.log → after.log" in sf["message"][1]
    hist = st.read("device_history")
    assert hist["capture_id"].to_list() == ["c1", "c2"]  # by capture time, not storage order


def test_missing_input_is_an_error_not_an_empty_batch(tmp_path: Path) -> None:
    r = _cli("batch", str(tmp_path / "nope"), "--out", str(tmp_path / "store"))
    assert r.returncode == 2 and "no such file or folder" in r.stderr
