"""The typed analysis model: no loose types, exact JSON round trips, fixed table schemas that
concatenate across captures, Parquet per table, pickling to a worker, and the engine's findings
identity (keys, merging, precedence)."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from analyzer.analysis import Analysis, analyze
from analyzer.model import TABLE_RECORDS, TABLES, CaptureSummary, ModelError, schema_of
from analyzer.model.base import loose_types, record
from analyzer.model.findings import Finding
from analyzer.model.le import Advertiser
from analyzer.model.links import Connection, HciTransaction
from analyzer.rules.base import RuleConfig, apply_precedence, load_all, merge_findings, run_rules
from tests.conftest import REPO, analysis_of, corpus, shared_capture

CORPUS = corpus()


def _analyses() -> list[tuple[Path, Analysis]]:
    out = []
    for p in CORPUS:
        a = analysis_of(p)
        if isinstance(a, Analysis):
            out.append((p, a))
    return out


def test_no_model_field_is_loose() -> None:
    assert loose_types(Analysis) == []
    assert set(TABLES) == set(TABLE_RECORDS)
    # the schema-1 table names scripts use are still tables
    for name in ("devices", "connections", "l2cap_channels", "pairing", "sdp", "avdtp_signals",
                 "avdtp_streams", "avdtp_endpoints", "hfp", "advertisers", "timeline",
                 "findings", "anomalies"):  # fmt: skip
        assert name in TABLES


@record
class _Loose:
    x: dict[str, Any] = field(default_factory=dict)


def test_loose_types_catches_any() -> None:
    assert loose_types(_Loose) == ["_Loose.x: dict[str, typing.Any]"]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_json_round_trip_and_fixed_schemas(path: Path) -> None:
    a = analysis_of(path)
    if isinstance(a, Exception):
        pytest.skip(f"not a capture: {type(a).__name__}")
    assert isinstance(a, Analysis)
    doc = a.to_json()
    assert Analysis.from_json(doc) == a
    assert Analysis.from_json(json.dumps(doc)) == a  # through JSON text too
    for key in ("frames",):
        assert key in doc["capture"]  # type: ignore[operator]
    for name in TABLES:
        df = a.table(name)
        assert df.schema == schema_of(TABLE_RECORDS[name]), name
        assert df.height == len(a.rows(name))


def test_tables_concatenate_across_captures() -> None:
    analyses = _analyses()
    if len(analyses) < 10:
        pytest.skip("corpus missing")
    for name in TABLES:
        frames = [a.table(name) for _, a in analyses]
        both = pl.concat(frames, how="vertical")
        assert both.height == sum(f.height for f in frames)


def _round_trip(blobs: list[bytes]) -> list[str]:
    return [json.dumps(pickle.loads(b).to_json(), sort_keys=True) for b in blobs]


def test_analysis_pickles_to_a_worker_process() -> None:
    analyses = _analyses()
    if not analyses:
        pytest.skip("no captures")
    blobs = [pickle.dumps(a) for _, a in analyses]
    with ProcessPoolExecutor(max_workers=1) as pool:
        got = pool.submit(_round_trip, blobs).result(timeout=300)
    assert got == [json.dumps(a.to_json(), sort_keys=True) for _, a in analyses]


def test_to_parquet_one_file_per_table(tmp_path: Path) -> None:
    a = analyze(REPO / "captures/scenarios/a2dp_sbc_clean.btsnoop")
    written = a.to_parquet(tmp_path, "night-1/a2dp_sbc_clean")
    assert {p.stem for p in written} == set(TABLES)
    conns = pl.read_parquet(tmp_path / "connections.parquet")
    assert conns.columns[0] == "capture_id"
    assert conns["capture_id"].unique().to_list() == ["night-1/a2dp_sbc_clean"]
    assert conns.height == len(a.connections)
    findings = pl.read_parquet(tmp_path / "findings.parquet")
    assert findings.height == len(a.findings)
    assert all(k.startswith(i + ":") for i, k in findings.select("id", "key").iter_rows())


def test_from_json_refuses_other_documents() -> None:
    with pytest.raises(ModelError, match="schema"):
        Analysis.from_json({"schema": "btanalyze/analysis/1"})
    a = Analysis(capture=CaptureSummary("x", "btsnoop", 1002, "HCI", 0))
    doc = a.to_json()
    doc["connections"] = [{"id": 5}]
    with pytest.raises(ModelError):
        Analysis.from_json(doc)


# -- the two rule bugs the loose model hid -----------------------------------------------------


def test_att_indication_never_confirmed_times_out() -> None:
    """johnfidel: the phone (GATT server) indicates the Device Name at frame 1640; the peer never
    confirms and the phone drops the link exactly 30 s later (ATT timeout, Vol 3 Part F
    §3.3.3). The old rules skipped every ATT/SMP transaction (they were not dicts)."""
    a = analyze(shared_capture("johnfidel_smartEnergyMeter_btsnoop_hci.log"))
    hits = [f for f in a.findings if f.id == "response_timeout" and 1640 in f.frames]
    assert len(hits) == 1
    assert "ATT Handle Value Indication" in hits[0].message
    assert hits[0].key == "response_timeout:att/ATT Handle Value Indication"


def _scenario_analysis() -> Analysis:
    return Analysis(capture=CaptureSummary("x", "btsnoop", 1002, "HCI", 0, frames=100,
                                           first_time_us=0, last_time_us=60_000_000))  # fmt: skip


def test_le_advertiser_paged_over_bredr_is_wrong_transport() -> None:
    """An address heard only advertising over LE, paged over BR/EDR 20 s later, page failed:
    not a missed pairing window (LE advertising says nothing about page scanning) but
    wrong_transport; found by inquiry instead, it is the pairing-window case of
    response_timeout."""
    from analyzer.model import DiscoveredDevice

    a = _scenario_analysis()
    addr = "AA:BB:CC:DD:EE:01"
    a.advertisers = [
        Advertiser(addr, "public", reports=30, first_frame=10, first_time_us=1_000_000)
    ]
    a.hci_commands = [HciTransaction(50, 21_000_000, 0x0405, "Create Connection", False)]
    a.connections = [
        Connection("acl-0x000-1", 0, addr, "br_edr", 0x04, "Page Timeout", 60, 26_000_000,
                   initiator="local", request_frame=50)
    ]  # fmt: skip
    found = run_rules(a, RuleConfig())
    assert "wrong_transport" in {f.id for f in found}
    assert not [f for f in found if "was found at frame" in f.message]
    a.discovered = [DiscoveredDevice(addr, 10, 1_000_000)]
    found = run_rules(a, RuleConfig())
    assert "wrong_transport" not in {f.id for f in found}
    late = [f for f in found if f.id == "response_timeout"]
    assert any("was found at frame 10" in f.message for f in late), late


def test_unanswered_smp_pairing_request_times_out() -> None:
    from analyzer.model.le import SmpTransaction

    a = _scenario_analysis()
    a.connections = [Connection("le-0x040-1", 0x40, "AA:BB:CC:DD:EE:02", "le", 0, "Success", 1, 0)]
    a.smp.transactions = [
        SmpTransaction("le-0x040-1", "AA:BB:CC:DD:EE:02", 6, "Pairing Request", 5, 1_000_000,
                       "sent"),
        # a Security Request may be answered by encryption, not SMP: never timed
        SmpTransaction("le-0x040-1", "AA:BB:CC:DD:EE:02", 6, "Security Request", 6, 1_000_000,
                       "received"),
    ]  # fmt: skip
    found = [f for f in run_rules(a, RuleConfig()) if f.id == "response_timeout"]
    assert [f.frames for f in found] == [[5]]
    assert "SMP Pairing Request" in found[0].message


# -- findings identity ----------------------------------------------------------------------------


def _f(rule: str, key: str, frames: list[int], conn: str | None = "c1") -> Finding:
    return Finding(rule, "warning", "t", f"{rule} {frames}", "e", "x", connection=conn,
                   frames=frames, key=f"{rule}:{key}")  # fmt: skip


def test_engine_merges_one_key_per_connection() -> None:
    merged = merge_findings([_f("r", "k", [3]), _f("r", "k", [1, 3]), _f("r", "other", [9]),
                             _f("r", "k", [7], conn="c2")])  # fmt: skip
    assert [(f.key, f.connection, f.count, f.frames) for f in merged] == [
        ("r:k", "c1", 2, [1, 3]),
        ("r:other", "c1", 1, [9]),
        ("r:k", "c2", 1, [7]),
    ]


def test_precedence_drops_the_same_event_only() -> None:
    rules = load_all()
    stale = _f("auth_key_missing", "a", [10, 11])
    same_event = _f("pairing_failed", "a", [11])
    other_event = _f("pairing_failed", "a", [11, 40])
    consequence = _f("a2dp_fallback_hfp", "a", [10])
    kept = apply_precedence([stale, same_event, other_event, consequence], rules)
    assert kept == [stale, other_event, consequence]


def test_every_finding_has_a_stable_key() -> None:
    for path, a in _analyses():
        for f in a.findings:
            assert f.key.startswith(f"{f.id}:"), (path.name, f.key)
            assert "acl-0x" not in f.key and "le-0x" not in f.key, (path.name, f.key)


def test_json_schema_doc_is_current() -> None:
    from analyzer.model.docs import OUT, render

    assert OUT.read_text() == render(), "run: python -m analyzer.model.docs"


@pytest.mark.parametrize(
    ("name", "key", "what"),
    [
        ("le_smp_unanswered.btsnoop", "smp_pairing_request", "SMP Pairing Request"),
        ("le_att_unanswered.btsnoop", "att_read_request", "ATT Read Request"),
    ],
)
def test_unanswered_smp_and_att_requests_in_scenarios(name: str, key: str, what: str) -> None:
    """bumble scenarios: a peripheral whose SMP layer / ATT server stops answering; the 30 s
    transaction timers run out (Vol 3 Part H §3.4, Part F §3.3.3)."""
    manifest = json.loads((REPO / "captures/scenarios/manifest.json").read_text())
    entry = next(e for e in manifest["captures"] if e["file"] == name)
    frame = entry["ground_truth"]["key_frames"][key]
    a = analyze(REPO / "captures/scenarios" / name)
    (f,) = [f for f in a.findings if f.id == "response_timeout"]
    assert f.frames == [frame] and what in f.message and "30 s" in f.message


def test_frozen_lookups_agree_with_scans_and_end_with_the_scope() -> None:
    """While the rules read an analysis (:meth:`Analysis.frozen`), look-ups by id and address
    and :func:`memo` tables are built once; they give what a scan gives, and an analysis
    changed after the scope is read afresh."""
    from analyzer.model.analysis import memo

    analyses = _analyses()
    if not analyses:
        pytest.skip("no captures")
    _, a = max(analyses, key=lambda x: len(x[1].connections))
    ids = [c.id for c in a.connections] + ["nope", None]
    addrs = [d.address for d in a.devices] + ["00:00:00:00:00:00", None]
    outside = [a.connection(i) for i in ids], [a.device_label(x) for x in addrs], a.local_device
    calls = []

    def count() -> int:
        calls.append(1)
        return len(a.connections)

    with a.frozen():
        inside = [a.connection(i) for i in ids], [a.device_label(x) for x in addrs], a.local_device
        for _ in range(3):
            memo(a, "n", count)
    assert inside == outside and len(calls) == 1
    added = Connection(
        id="added", handle=1, address=None, transport="le", status=0, status_name="Success",
        start_frame=1, start_time_us=0,
    )  # fmt: skip
    a.connections.append(added)
    try:
        assert a.connection("added") is a.connections[-1]
        assert memo(a, "n", lambda: len(a.connections)) == len(ids) - 1
    finally:
        a.connections.pop()


def test_record_equality_and_repr_are_the_dataclass_ones() -> None:
    """``record`` writes equality and repr once instead of generating them per class: they
    must behave as the dataclass ones do (same class and equal field tuple; ``Name(f=v, ...)``;
    unhashable), for records of no, one and many fields."""
    import dataclasses

    def both(body: dict[str, object], hints: dict[str, object]) -> tuple[type, type]:
        ours = record(type("Rec", (), {"__annotations__": hints, **body}))
        theirs = dataclasses.dataclass(slots=True)(
            type("Rec", (), {"__annotations__": hints, **body})
        )
        return ours, theirs

    nan = float("nan")
    cases: list[tuple[dict[str, object], dict[str, object], list[tuple[object, ...]]]] = [
        ({}, {}, [()]),
        ({}, {"a": "int"}, [(1,), (2,)]),
        (
            {"c": field(default_factory=list)},
            {"a": "int", "b": "str | None", "c": "list[int]"},
            [(1, None, []), (1, "x", [1]), (1, "x", [2]), (2, None, []), (nan, None, [])],
        ),
    ]
    for body, hints, rows in cases:
        ours, theirs = both(body, hints)
        for x in rows:
            for y in rows:
                assert (ours(*x) == ours(*y)) == (theirs(*x) == theirs(*y)), (x, y)
                assert (ours(*x) != ours(*y)) == (theirs(*x) != theirs(*y)), (x, y)
            assert repr(ours(*x)) == repr(theirs(*x))
            one = ours(*x)
            assert one == one  # noqa: PLR0124 (a NaN field: the same object, as in a tuple)
            with pytest.raises(TypeError):
                hash(one)
            assert ours(*x) != theirs(*x)  # another class: never equal
    # and the model's own: every table record of a real analysis equals its JSON round trip
    a = analysis_of(CORPUS[0])
    assert isinstance(a, Analysis)
    assert Analysis.from_json(json.loads(json.dumps(a.to_json()))) == a
    other = Analysis.from_json(a.to_json())
    other.findings = [*other.findings, Finding("x", "info", "t", "m", "e", "f")]
    assert other != a
