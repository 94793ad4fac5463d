"""The dashboard app (issue 19) without a browser: the streamed upload route (size limit,
server-chosen names, a bad file reported), the analysis job, and the pages built from the stored
analysis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("dash")

from analyzer.dashboards import create_app, swimlane
from analyzer.store import Store

SC = Path(__file__).resolve().parents[2] / "captures" / "scenarios"


def _wait(client: object, job: str) -> dict[str, object]:
    for _ in range(200):
        st = client.get(f"/api/job/{job}").get_json()  # type: ignore[attr-defined]
        if st["status"] in ("done", "failed"):
            return st  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("job never finished")


def test_upload_is_streamed_analysed_and_stored(tmp_path: Path) -> None:
    app = create_app(tmp_path / "store", max_upload=5 << 20)
    client = app.server.test_client()
    data = (SC / "a2dp_rejected_hfp_fallback.btsnoop").read_bytes()
    r = client.post("/upload", data=data, headers={"X-File-Name": "../../etc/passwd"})
    assert r.status_code == 200
    st = _wait(client, r.get_json()["job"])
    assert st["status"] == "done" and len(st["captures"]) == 1  # type: ignore[arg-type]
    uploads = list((tmp_path / "store" / "uploads").iterdir())
    assert [p.suffix for p in uploads] == [".upload"]  # a server-chosen name, in the store
    caps = Store(tmp_path / "store").captures()
    assert caps["path"].to_list() == ["passwd"]  # shown by its base name only
    assert caps["errors"][0] > 0


def test_upload_limits_and_bad_files(tmp_path: Path) -> None:
    app = create_app(tmp_path / "store", max_upload=1000)
    client = app.server.test_client()
    big = client.post("/upload", data=b"x" * 5000)
    assert big.status_code == 413
    assert client.post("/upload", data=b"").status_code == 400
    junk = client.post("/upload", data=b"not a capture at all", headers={"X-File-Name": "a.txt"})
    st = _wait(client, junk.get_json()["job"])
    assert st["status"] == "failed" and "not a capture" in str(st["error"])
    assert client.get("/api/job/nope").status_code == 404


def test_capture_page_and_swimlane_from_the_stored_analysis(tmp_path: Path) -> None:
    from analyzer.store.batch import run_batch

    store = Store(tmp_path / "store")
    run_batch([str(SC / "link_loss.btsnoop")], store, workers=1)
    cid = store.captures()["capture_id"][0]
    a = store.analysis(cid)
    fig = swimlane(a, frame=a.findings[0].frames[0])
    lanes = {y for tr in fig.data for y in tr.y}
    assert any("br_edr" in str(y) for y in lanes)
    assert any(tr.name == "findings" for tr in fig.data)
    assert fig.layout.shapes  # the selected frame's line
    app = create_app(tmp_path / "store")
    client = app.server.test_client()
    assert client.get(f"/capture/{cid}").status_code == 200  # served by the Dash router
