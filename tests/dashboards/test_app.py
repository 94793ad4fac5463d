"""The dashboard app (issue 19) without a browser: the streamed upload route (size limit,
server-chosen names, a bad file reported), the analysis job, and the pages built from the stored
analysis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("dash")

from analyzer.dashboards import create_app
from analyzer.dashboards.swimlane import figure as swimlane
from analyzer.store import Store

SC = Path(__file__).resolve().parents[2] / "captures" / "scenarios"


def _wait(client: object, job: str, deadline_s: float = 180.0) -> dict[str, object]:
    """The job's final status. The deadline only catches a job that never ends: analyses run in
    worker processes that ten concurrent uploads queue for, on a CI machine of unknown load
    (speed is measured by the benchmarks, not here)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        st = client.get(f"/api/job/{job}").get_json()  # type: ignore[attr-defined]
        if st["status"] in ("done", "failed", "cancelled"):
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
    lanes = fig.layout.yaxis.ticktext
    assert any("BR/EDR ACL" in str(y) for y in lanes)
    assert any(tr.name == "findings" for tr in fig.data)
    assert fig.layout.shapes  # the selected frame's line
    app = create_app(tmp_path / "store")
    client = app.server.test_client()
    assert client.get(f"/capture/{cid}").status_code == 200  # served by the Dash router


def test_same_upload_twice_is_not_analysed_again_and_delete_removes_it(tmp_path: Path) -> None:
    app = create_app(tmp_path / "store")
    client = app.server.test_client()
    data = (SC / "link_loss.btsnoop").read_bytes()
    first = _wait(client, client.post("/upload", data=data).get_json()["job"])
    second = _wait(client, client.post("/upload", data=data).get_json()["job"])
    assert first["status"] == second["status"] == "done"
    assert first["captures"] == second["captures"]  # content-hash cache
    assert len(list((tmp_path / "store" / "uploads").iterdir())) == 1  # no second copy
    cid = str(first["captures"][0])  # type: ignore[index]
    lib = app.library
    assert lib.delete(cid)
    assert Store(tmp_path / "store").captures().is_empty()
    assert not list((tmp_path / "store" / "uploads").iterdir())
    assert not (tmp_path / "store" / "analyses" / f"{cid}.json.gz").exists()


def test_retention_expires_old_uploads(tmp_path: Path) -> None:
    import os

    app = create_app(tmp_path / "store")
    client = app.server.test_client()
    data = (SC / "link_loss.btsnoop").read_bytes()
    _wait(client, client.post("/upload", data=data).get_json()["job"])
    (up,) = (tmp_path / "store" / "uploads").iterdir()
    old = time.time() - 8 * 86400
    os.utime(up, (old, old))
    create_app(tmp_path / "store", retention_days=7)  # a restart applies the retention
    assert Store(tmp_path / "store").captures().is_empty() and not up.exists()


def test_token_required_beyond_loopback(tmp_path: Path) -> None:
    app = create_app(tmp_path / "store", token="s3cret")
    client = app.server.test_client()
    assert client.get("/").status_code == 403
    assert client.post("/upload", data=b"x").status_code == 403
    r = client.get("/?token=s3cret")
    assert r.status_code == 302 and "btanalyze_token" in r.headers.get("Set-Cookie", "")
    assert client.get("/").status_code == 200  # the cookie carries it from now on
    assert client.get("/?token=wrong").status_code == 403


def test_ten_concurrent_uploads_over_loopback(tmp_path: Path) -> None:
    import socket
    import threading
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from werkzeug.serving import make_server

    app = create_app(tmp_path / "store")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    files = sorted(SC.glob("*.btsnoop"))[:10]

    def upload(p: Path) -> tuple[Path, dict[str, object]]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/upload", data=p.read_bytes(), method="POST",
            headers={"X-File-Name": p.name, "Content-Type": "application/octet-stream"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=60) as r:
            job = __import__("json").loads(r.read())["job"]
        client = app.server.test_client()
        return p, _wait(client, job)

    try:
        with ThreadPoolExecutor(10) as ex:
            results = list(ex.map(upload, files))
    finally:
        srv.shutdown()
    caps = Store(tmp_path / "store").captures()
    by_name = dict(zip(caps["path"].to_list(), caps["capture_id"].to_list(), strict=True))
    for p, st in results:
        assert st["status"] == "done", (p.name, st)
        assert st["captures"] == [by_name[p.name]]  # each upload got its own capture
    assert caps.height == len(files)


def test_static_html_report(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "r.html"
    r = subprocess.run(
        [sys.executable, "-c", "from analyzer.cli import main; main()", "analyze",
         str(SC / "a2dp_rejected_hfp_fallback.btsnoop"), "--html", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "2 errors, 0 warnings" in text and "avdtp_rejected" in text
    assert "https://cdn" not in text.split("<h3>Timeline</h3>")[0]  # self-contained
    assert 'id="swimlane"' in text


def test_device_cards_and_rule_docs(tmp_path: Path) -> None:
    from analyzer.dashboards import _device_card
    from analyzer.store.batch import run_batch

    store = Store(tmp_path / "store")
    run_batch([str(SC / "a2dp_rejected_hfp_fallback.btsnoop")], store, workers=1)
    cid = store.captures()["capture_id"][0]
    a = store.analysis(cid)
    (dev,) = [d for d in a.devices if d.role == "remote"]
    text = str(_device_card(a, dev, cid))
    assert "Sonic Buds Pro" in text and "LMP 11 / 0x0310" in text
    assert f"OUI vendor {dev.oui_vendor}; chip Qualcomm" in text and dev.oui_vendor  # via the store
    assert "HFP" in text and "rejected AVDTP SET_CONFIGURATION" in text  # its incident
    client = create_app(tmp_path / "store").server.test_client()
    doc = client.get("/rules/avdtp_rejected")
    assert doc.status_code == 200 and b"avdtp_rejected" in doc.data
    assert client.get("/rules/nope").status_code == 404


def test_cancel_a_running_analysis(tmp_path: Path) -> None:
    app = create_app(tmp_path / "store")
    app.library.hang_on = ".upload"  # every analysis hangs until cancelled
    client = app.server.test_client()
    job = client.post("/upload", data=(SC / "link_loss.btsnoop").read_bytes()).get_json()["job"]
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if client.get(f"/api/job/{job}").get_json()["status"] == "analysing":
            break
        time.sleep(0.05)
    t0 = time.perf_counter()
    assert client.post(f"/api/job/{job}/cancel").get_json()["cancelled"]
    st = _wait(client, job)
    # the hanging analysis would never end: cancelled it is, promptly (a loaded CI machine
    # still kills a worker within seconds)
    assert st["status"] == "cancelled" and time.perf_counter() - t0 < 30
    assert Store(tmp_path / "store").captures().is_empty()
    assert client.post("/api/job/nope/cancel").status_code == 404


def test_an_upload_over_its_bounds_fails_and_the_next_goes_on(tmp_path: Path) -> None:
    """Each upload's analysis is bounded in time and memory (issue 18 §2): over a bound the job
    fails with the reason, and the next upload is analysed."""
    app = create_app(tmp_path / "store", timeout_s=3, memory_bytes=3 << 30)
    lib = app.library
    client = app.server.test_client()
    data = (SC / "link_loss.btsnoop").read_bytes()
    lib.hang_on = ".upload"
    slow = client.post("/upload", data=data).get_json()["job"]
    st = _wait(client, slow)
    assert st["status"] == "failed" and st["error"] == "analysis took longer than 3 s"
    lib.hang_on, lib.hog_on = None, ".upload"
    hog = client.post("/upload", data=data + b"\0").get_json()["job"]
    st = _wait(client, hog)
    assert st["status"] == "failed" and "out of memory" in str(st["error"])
    lib.hog_on = None
    ok = client.post("/upload", data=data).get_json()["job"]
    assert _wait(client, ok)["status"] == "done"


def test_dashboard_command_passes_its_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``btanalyze dashboard --timeout --max-memory`` bound the captures it is given and the
    uploads; the defaults are those of ``batch``."""
    from click.testing import CliRunner

    import analyzer.dashboards
    import analyzer.store.batch
    from analyzer.commands.dashboard import command
    from analyzer.store.batch import DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT_S

    seen: list[dict[str, object]] = []

    class App:
        def run(self, **_kw: object) -> None:
            pass

    def fake_app(_root: object, **kw: object) -> App:
        seen.append(kw)
        return App()

    def fake_batch(_paths: object, _store: object, **kw: object) -> object:
        seen.append(kw)
        return analyzer.store.batch.BatchStats()

    monkeypatch.setattr(analyzer.dashboards, "create_app", fake_app)
    monkeypatch.setattr(analyzer.store.batch, "run_batch", fake_batch)
    cap = str(SC / "link_loss.btsnoop")
    args = [cap, "--store", str(tmp_path / "s"), "--timeout", "12", "--max-memory", "2G"]
    assert CliRunner().invoke(command, args).exit_code == 0
    assert seen[0]["timeout_s"] == 12 and seen[0]["memory_bytes"] == 2 << 30  # the captures
    assert seen[1]["timeout_s"] == 12 and seen[1]["memory_bytes"] == 2 << 30  # the uploads
    seen.clear()
    assert CliRunner().invoke(command, ["--store", str(tmp_path / "s")]).exit_code == 0
    assert seen[0]["timeout_s"] == DEFAULT_TIMEOUT_S
    assert seen[0]["memory_bytes"] == DEFAULT_MEMORY_BYTES


def _find(c: object, cid: str) -> object | None:
    """The component with this id in a Dash layout tree."""
    if getattr(c, "id", None) == cid:
        return c
    kids = getattr(c, "children", None)
    for k in kids if isinstance(kids, list) else [kids] if kids is not None else []:
        hit = _find(k, cid)
        if hit is not None:
            return hit
    return None


def _links(c: object, cls: str) -> list[object]:
    out = [c] if getattr(c, "className", None) == cls else []
    kids = getattr(c, "children", None)
    for k in kids if isinstance(kids, list) else [kids] if kids is not None else []:
        out += _links(k, cls)
    return out


def test_lab_mode_firmware_facet_and_trend(tmp_path: Path) -> None:
    """Lab mode (issue 22): a firmware facet (chip vendor + LMP version/subversion) lists each
    build with its capture count and filters the list; the per-day trend follows the facets."""
    from analyzer.dashboards import _home
    from analyzer.store.batch import run_batch

    files = [SC / f for f in ("a2dp_sbc_clean.btsnoop", "reconnect_stored_key.btsnoop",
                              "firmware_update_stale_bond.btsnoop")]  # fmt: skip
    run_batch([str(f) for f in files], Store(tmp_path / "store"), workers=1)
    app = create_app(tmp_path / "store")
    layout = _home(app.library, {})
    facets = {link.children: link.href for link in _links(layout, "facet-firmware")}  # type: ignore[attr-defined]
    old = next(k for k in facets if "11/0x0310" in k)
    new = next(k for k in facets if "11/0x0420" in k)  # the updated headset's build
    assert old.endswith("(2)") and new.endswith("(1)")
    key = new.rsplit(" (", 1)[0]
    filtered = _home(app.library, {"fw": [key]})
    rows = _find(filtered, "captures-table").children  # type: ignore[union-attr]
    assert len(rows) == 1 and "firmware_update_stale_bond" in str(rows[0])
    assert "filtered:" in str(_find(filtered, "filter-note"))


def test_anonymized_uploads_name_no_device(tmp_path: Path) -> None:
    """dashboard --anonymize (issue 23): an upload is analysed from a scrubbed copy, so its
    page, its stored tables and its exports name only fake addresses — with the same findings."""
    from analyzer.analysis import analyze

    cap = SC / "a2dp_rejected_hfp_fallback.btsnoop"
    real = {d.address for d in analyze(cap).devices}
    app = create_app(tmp_path / "store", anonymize=True)
    client = app.server.test_client()
    job = client.post("/upload", data=cap.read_bytes(), headers={"X-File-Name": cap.name})
    st = _wait(client, job.get_json()["job"])
    assert st["status"] == "done", st
    store = Store(tmp_path / "store")
    stored = set(store.read("devices")["address"].to_list())
    assert stored and not stored & real
    a = store.analysis(store.captures()["capture_id"][0])
    assert sorted(f.id for f in a.findings) == sorted(f.id for f in analyze(cap).findings)
    assert not any(addr in str(a.to_json()) for addr in real)


def test_an_upload_is_shown_by_its_own_name(tmp_path: Path) -> None:
    """The server stores an upload under a name it chooses (never the client's path), but the
    list and the capture page show the file name the user chose; delete removes the upload."""
    from analyzer.dashboards import _capture, _home

    app = create_app(tmp_path / "store")
    client = app.server.test_client()
    cap = SC / "a2dp_rejected_hfp_fallback.btsnoop"
    r = client.post("/upload", data=cap.read_bytes(),
                    headers={"X-File-Name": "../../etc/my%20headset.log"})  # fmt: skip
    st = _wait(client, r.get_json()["job"])
    assert st["status"] == "done", st
    cid = st["captures"][0]
    assert "my headset.log" in str(_find(_home(app.library, {}), "captures-table"))
    assert "my headset.log" in str(_find(_capture(app.library, cid, {}), "capture-title"))
    uploads = tmp_path / "store" / "uploads"
    assert [p.suffix for p in uploads.iterdir()] == [".upload"]
    assert app.library.delete(cid) and list(uploads.iterdir()) == []


def test_analysis_reports_its_phase(tmp_path: Path) -> None:
    """Per-phase progress (issue 19 §2): the analysis tells each phase as it starts, in order,
    and a running job shows its phase on the job page and in /api/job."""
    from analyzer.analysis import analyze_capture
    from analyzer.readers import load

    phases: list[str] = []
    analyze_capture(load(SC / "a2dp_rejected_hfp_fallback.btsnoop"), progress=phases.append)
    assert phases[:3] == ["frame index", "links and channels", "protocol sessions"]
    assert "advertising" in phases and phases[-1] == "rules"

    app = create_app(tmp_path / "store")
    app.library.hang_on = ".upload"  # the worker says it is reading, then hangs
    client = app.server.test_client()
    job = client.post("/upload", data=(SC / "link_loss.btsnoop").read_bytes()).get_json()["job"]
    end = time.monotonic() + 60
    st: dict[str, object] = {}
    while time.monotonic() < end:
        st = client.get(f"/api/job/{job}").get_json()
        if st.get("phase"):
            break
        time.sleep(0.05)
    assert st["status"] == "analysing" and st["phase"] == "reading the capture"
    assert client.post(f"/api/job/{job}/cancel").get_json()["cancelled"]
    assert _wait(client, job)["status"] == "cancelled"
    assert not list((tmp_path / "store" / ".tmp").glob("progress-*"))
