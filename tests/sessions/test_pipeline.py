"""The build pipeline runs declared stages in dependency order, and device narrowing is a pure
function over the finished model that records its scope."""

from __future__ import annotations

import json

import pytest

from analyzer.analysis import analyze
from analyzer.model.scope import narrow_to_device
from analyzer.sessions.build import (
    STAGES,
    PipelineError,
    Stage,
    load_session_modules,
    stage_order,
)
from tests.conftest import REPO

SCEN = REPO / "captures" / "scenarios"


def _noop(_ctx: object) -> None:
    return None


def test_stages_run_after_what_they_read() -> None:
    load_session_modules()
    order = [s.name for s in stage_order(STAGES)]
    assert set(order) == {
        "a2dp_media", "advertising", "le_air", "smp", "att", "rfcomm", "sco", "benign"
    }  # fmt: skip
    for s in STAGES.values():
        for dep in s.after:
            assert order.index(dep) < order.index(s.name), (dep, s.name)
    assert STAGES["smp"].after == ("le_air",) and STAGES["sco"].after == ("rfcomm",)


def test_stage_order_is_topological_and_refuses_bad_graphs() -> None:
    st = {n: Stage(n, _noop, a) for n, a in (("c", ("b",)), ("b", ("a",)), ("a", ()), ("z", ()))}
    assert [s.name for s in stage_order(st)] == ["a", "z", "b", "c"]
    with pytest.raises(PipelineError, match="unknown"):
        stage_order({"x": Stage("x", _noop, ("missing",))})
    with pytest.raises(PipelineError, match="circular"):
        stage_order({"x": Stage("x", _noop, ("y",)), "y": Stage("y", _noop, ("x",))})


def test_narrowing_is_pure_and_records_its_scope() -> None:
    a = analyze(SCEN / "a2dp_then_call_clean.btsnoop")
    before = json.dumps(a.to_json(), sort_keys=True)
    remote = next(d.address for d in a.devices if d.role == "remote")
    n = narrow_to_device(a, remote)
    assert json.dumps(a.to_json(), sort_keys=True) == before  # the input is unchanged
    assert n.scope.device == remote and n.scope.narrowed and not a.scope.narrowed
    ids = {c.id for c in n.connections}
    assert ids and all(c.address == remote or c.acl in ids for c in n.connections)
    assert all(s.connection in ids for s in n.sdp + n.avdtp.signals + n.hfp)  # type: ignore[operator]
    assert {d.address for d in n.devices} <= {remote} | {
        d.address for d in a.devices if d.role == "local"
    }


def test_narrowing_to_an_absent_device_keeps_no_links() -> None:
    a = analyze(SCEN / "a2dp_sbc_clean.btsnoop")
    n = narrow_to_device(a, "00:00:00:00:00:01")
    assert n.connections == [] and n.sdp == [] and n.avdtp.streams == []
    assert n.hci_commands == a.hci_commands  # the controller's story stays, rules read scope


def test_analyze_device_option_is_the_narrowed_analysis() -> None:
    path = SCEN / "a2dp_then_call_clean.btsnoop"
    full = analyze(path)
    remote = next(d.address for d in full.devices if d.role == "remote")
    via_option = analyze(path, device=remote)
    assert via_option.scope.device == remote
    assert via_option.connections == narrow_to_device(full, remote).connections
