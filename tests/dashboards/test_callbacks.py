"""Issue 21's callbacks through the Dash HTTP endpoint (what the browser posts), no browser: the
packet table's blocks, a click on the timeline scrolling the table to that frame, and a capture
whose file is gone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dash")

from analyzer.dashboards import create_app
from analyzer.store import Store
from analyzer.store.batch import run_batch

SC = Path(__file__).resolve().parents[2] / "captures" / "scenarios"


def _call(
    client: Any,
    outputs: list[tuple[Any, str]],
    inputs: list[Any],
    state: list[tuple[Any, str, Any]],
    changed: str | None = None,
    output: str | None = None,
) -> dict[str, Any]:
    """One callback request as the browser posts it: each input (id, property, value), or a
    list of them for a pattern-matching ALL input (ids may be dicts); ``output`` names the
    callback where an output has ``allow_duplicate`` (its key has a suffix)."""

    def one(i: Any) -> Any:
        return [one(x) for x in i] if isinstance(i, list) else {"id": i[0], "property": i[1],
                                                                "value": i[2]}  # fmt: skip

    def name(i: Any) -> str:
        return json.dumps(i, sort_keys=True, separators=(",", ":")) if isinstance(i, dict) else i

    out = "...".join(f"{name(i)}.{p}" for i, p in outputs)
    body = {
        "output": output or (f"..{out}.." if len(outputs) > 1 else out),
        "outputs": [{"id": i, "property": p} for i, p in outputs]
        if len(outputs) > 1
        else {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": [one(i) for i in inputs],
        "state": [one(s) for s in state],
        "changedPropIds": [changed] if changed else [f"{i}.{p}" for i, p, _ in inputs],
    }
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code in (200, 204), r.data[:500]
    return r.get_json() if r.status_code == 200 else {}


def stored_app(tmp_path: Path, scenario: str) -> tuple[Any, Store, str, Path]:
    """The dashboard over a store holding a copy of one scenario capture: (app, store, its
    capture id, the copy)."""
    src = tmp_path / f"{scenario}.btsnoop"
    shutil.copy(SC / f"{scenario}.btsnoop", src)
    store = Store(tmp_path / "store")
    run_batch([str(src)], store, workers=1)
    cid = store.captures()["capture_id"][0]
    return create_app(tmp_path / "store", retention_days=0), store, cid, src


def test_rows_and_timeline_click_scroll(tmp_path: Path) -> None:
    app, _store, cid, src = stored_app(tmp_path, "a2dp_sbc_clean")
    client = app.server.test_client()
    where = [("url", "pathname", f"/capture/{cid}")]
    grid = [("packet-grid", "getRowsResponse"), ("packet-note", "children")]
    text = {"summary": {"filterType": "text", "type": "contains", "filter": "avdtp start"}}
    got = _call(
        client,
        grid,
        [("packet-grid", "getRowsRequest", {"startRow": 0, "endRow": 100, "filterModel": text})],
        where,
    )
    rows = got["response"]["packet-grid"]["getRowsResponse"]
    assert rows["rowCount"] == 2  # START and its accept
    start = rows["rowData"][0]
    # a click on the timeline at START's time: the table scrolls to START's row
    click = {"points": [{"x": start["time_s"], "customdata": None}]}

    def scroll(click: Any, model: Any, compress: list[str]) -> Any:
        got = _call(
            client,
            [("packet-grid", "scrollTo")],
            [("swimlane", "clickData", click)],
            [("packet-grid", "filterModel", model), *where, ("swim-compress", "value", compress)],
        )
        return got["response"]["packet-grid"]["scrollTo"]["rowIndex"]

    assert scroll(click, None, []) == start["frame"] - 1
    assert scroll(click, text, []) == 0  # under the filter
    # idle gaps collapsed: a click's place on the axis is not its time; the table still finds it
    from analyzer.dashboards import swimlane

    a = app.library.analysis(cid)
    (close,) = [s for s in a.avdtp.signals if s.signal == "CLOSE"]
    at = (close.command_time_us - a.capture.first_time_us) / 1e6
    x = swimlane.x_of(a, at, True)
    assert x < at - 1  # after a collapsed gap
    assert scroll({"points": [{"x": x, "customdata": None}]}, None, ["on"]) == (
        close.command_frame - 1
    )
    # the file gone: the table says so instead of failing; the audio view draws the model only
    src.unlink()
    fresh = create_app(tmp_path / "store", retention_days=0).server.test_client()
    got = _call(
        fresh, grid, [("packet-grid", "getRowsRequest", {"startRow": 0, "endRow": 100})], where
    )
    assert got["response"]["packet-grid"]["getRowsResponse"]["rowCount"] == 0
    assert "no longer at" in got["response"]["packet-note"]["children"]
    got = _call(
        fresh,
        [("audio-graph", "figure"), ("audio-note", "children")],
        [("sections-go", "data", 1)],  # the timeline drawn: the audio section asks
        [("audio-cid", "data", cid)],
    )
    assert "stored analysis only" in got["response"]["audio-note"]["children"]
    names = [tr.get("name", "") for tr in got["response"]["audio-graph"]["figure"]["data"]]
    assert "events" in names and not any(n.startswith("media:") for n in names)
