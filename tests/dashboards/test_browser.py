"""The dashboard in real headless Chromium (issue 19): upload a real capture from the page,
watch it analysed, land on its findings-first page; an evidence link selects the frame and puts
it in the URL, which a second browser opens to the same moment. Skipped when Chromium or
chromedriver is absent (``.ci/run`` installs them)."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dash")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SC = REPO / "captures" / "scenarios"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from werkzeug.serving import make_server

    from analyzer.dashboards import create_app

    app = create_app(tmp_path_factory.mktemp("store"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = make_server("127.0.0.1", port, app.server, threaded=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{port}"
    srv.shutdown()


#: the swimlane's lane labels once it is drawn
LANES_JS = """
const gd = document.querySelector('#swimlane .js-plotly-plot');
return gd && gd._fullLayout && gd._fullLayout.yaxis ? gd._fullLayout.yaxis.ticktext : null;
"""


def _browser() -> Any:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}",
    ):
        opts.add_argument(flag)  # fmt: skip
    return webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=opts)


def test_upload_then_triage_then_share_the_moment(server: str) -> None:
    b = _browser()
    try:
        wait = WebDriverWait(b, 60)
        b.get(server + "/")
        picker = wait.until(ec.presence_of_element_located((By.ID, "upload-file")))
        picker.send_keys(str(SC / "a2dp_rejected_hfp_fallback.btsnoop"))
        wait.until(ec.url_contains("/capture/"))
        verdict = wait.until(ec.presence_of_element_located((By.ID, "verdict")))
        assert "errors" in verdict.text
        findings = b.find_element(By.ID, "findings").text
        assert "rejected AVDTP SET_CONFIGURATION" in findings
        assert "audio ran over eSCO" in findings
        incidents = b.find_element(By.ID, "incidents").text  # the incident's verdict
        assert "ERROR" in incidents and "rejected AVDTP SET_CONFIGURATION" in incidents
        assert b.find_element(By.ID, "swimlane").is_displayed()
        lanes = WebDriverWait(b, 60).until(lambda d: d.execute_script(LANES_JS))
        assert any("BR/EDR ACL" in t for t in lanes) and any("incidents" in t for t in lanes)
        # the capture page as docs/dashboard.md and the README show it, taken here
        img = REPO / "docs" / "img" / "dashboard-capture.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        b.set_window_size(1400, 1800)
        assert b.save_screenshot(str(img)) and img.stat().st_size > 10_000
        link = b.find_elements(By.CSS_SELECTOR, "a.evidence")[0]
        frame = link.text
        link.click()
        wait.until(ec.url_contains(f"frame={frame}"))
        sel = wait.until(ec.text_to_be_present_in_element((By.ID, "selected-frame"), frame))
        assert sel
        shared = b.current_url
    finally:
        b.quit()
    colleague = _browser()
    try:
        colleague.get(shared)
        WebDriverWait(colleague, 60).until(
            ec.text_to_be_present_in_element((By.ID, "selected-frame"), f"Selected frame {frame}")
        )
        home = server + "/"
        colleague.get(home)
        table = WebDriverWait(colleague, 60).until(
            ec.presence_of_element_located((By.ID, "captures-table"))
        )
        assert "a2dp_rejected_hfp_fallback.btsnoop" in table.text
    finally:
        colleague.quit()


def test_non_capture_upload_shows_the_error(server: str, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a capture\n")
    b = _browser()
    try:
        b.get(server + "/")
        picker = WebDriverWait(b, 60).until(ec.presence_of_element_located((By.ID, "upload-file")))
        picker.send_keys(str(junk))
        err = WebDriverWait(b, 60).until(ec.presence_of_element_located((By.ID, "job-error")))
        assert "not a capture" in err.text
    finally:
        b.quit()


def _serve(app: Any) -> tuple[str, Any]:
    """Serve a dashboard app on a free loopback port: (its URL, the server to shut down)."""
    from werkzeug.serving import make_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", srv


def _upload(b: Any, url: str, path: Path) -> None:
    b.get(url + "/")
    picker = WebDriverWait(b, 60).until(ec.presence_of_element_located((By.ID, "upload-file")))
    picker.send_keys(str(path))


def test_damaged_capture_upload_shows_the_reader_warning(server: str, tmp_path: Path) -> None:
    """A capture cut inside its last record: analysed from what is there, the page says at its
    top what the reader skipped."""
    whole = (SC / "a2dp_rejected_hfp_fallback.btsnoop").read_bytes()
    cut = tmp_path / "cut_short.btsnoop"
    cut.write_bytes(whole[: len(whole) * 2 // 3 + 7])
    b = _browser()
    try:
        _upload(b, server, cut)
        warn = WebDriverWait(b, 60).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#reader-warnings li"))
        )
        assert "damaged bytes" in warn.text and "last record cut" in warn.text
        assert b.find_element(By.ID, "verdict").text  # and the findings of what was read
    finally:
        b.quit()


def test_cancel_a_running_analysis_from_the_page(tmp_path: Path) -> None:
    """The job page's Cancel button stops an analysis that would never end."""
    from analyzer.dashboards import create_app

    app = create_app(tmp_path / "store")
    app.library.hang_on = ".upload"  # every analysis here hangs until cancelled
    url, srv = _serve(app)
    b = _browser()
    try:
        _upload(b, url, SC / "link_loss.btsnoop")
        wait = WebDriverWait(b, 60)
        jobs = app.library.jobs
        wait.until(lambda _d: any(j.status == "analysing" for j in jobs.values()))  # running
        wait.until(ec.element_to_be_clickable((By.ID, "job-cancel"))).click()
        done = wait.until(ec.presence_of_element_located((By.ID, "job-cancelled")))
        assert "analysis cancelled" in done.text
        assert all(j.status == "cancelled" for j in app.library.jobs.values())
    finally:
        b.quit()
        srv.shutdown()


def test_static_html_opens_offline(tmp_path: Path) -> None:
    from analyzer.analysis import analyze
    from analyzer.dashboards import static_html

    page = tmp_path / "report.html"
    page.write_text(static_html(analyze(SC / "link_loss.btsnoop")))
    b = _browser()
    try:
        b.get(page.as_uri())
        WebDriverWait(b, 60).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#swimlane .main-svg"))
        )
        assert "error" in b.find_element(By.ID, "verdict").text
    finally:
        b.quit()


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """Lab mode: the dashboard over a batch store of every scenario capture (>= 40)."""
    from werkzeug.serving import make_server

    from analyzer.dashboards import create_app
    from analyzer.store import Store
    from analyzer.store.batch import run_batch

    root = tmp_path_factory.mktemp("lab-store")
    run_batch([str(SC)], Store(root), workers=2)
    app = create_app(root, retention_days=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}", Store(root)
    srv.shutdown()


def test_lab_mode_filters_opens_and_compares(lab_server: tuple[str, object]) -> None:
    import time

    from analyzer.store import Store

    url, store = lab_server
    assert isinstance(store, Store)
    caps = store.captures()
    assert caps.height >= 40
    b = _browser()
    try:
        wait = WebDriverWait(b, 60)
        b.get(url + "/")
        count = wait.until(ec.presence_of_element_located((By.ID, "captures-count")))
        assert f"({caps.height} of {caps.height})" in count.text
        # filter by a finding: only the captures that have it
        b.get(url + "/?finding=connection_failed")
        table = wait.until(ec.presence_of_element_located((By.ID, "captures-table")))
        rows = table.find_elements(By.TAG_NAME, "tr")
        with_it = (
            store.read("findings")
            .filter(store.read("findings")["id"] == "connection_failed")["capture_id"]
            .n_unique()
        )
        assert len(rows) == with_it > 0
        # and by a device
        link = b.find_elements(By.CSS_SELECTOR, "a.facet-device")[0]
        link.click()
        wait.until(ec.url_contains("device="))
        wait.until(ec.presence_of_element_located((By.ID, "filter-note")))
        # open one capture from the stored analysis (no re-analysis: the page is quick)
        b.get(url + "/")
        first = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#captures-table a")))
        t0 = time.perf_counter()
        first.click()
        wait.until(ec.presence_of_element_located((By.ID, "verdict")))
        assert time.perf_counter() - t0 < 10
        # compare: a clean A2DP run against one whose SET_CONFIGURATION is rejected
        ids = dict(zip(caps["path"].to_list(), caps["capture_id"].to_list(), strict=True))
        a = ids[str(SC / "a2dp_sbc_clean.btsnoop")]
        bad = ids[str(SC / "a2dp_rejected_hfp_fallback.btsnoop")]
        b.get(url + f"/?a={a}")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "a.compare")))
        b.get(url + f"/compare?a={a}&b={bad}")
        div = wait.until(ec.presence_of_element_located((By.ID, "first-divergence")))
        assert "avdtp step" in div.text and "SET_CONFIGURATION" in div.text
        assert "avdtp_rejected" in b.find_element(By.ID, "only-b").text
    finally:
        b.quit()


def test_behind_a_reverse_proxy_prefix(tmp_path: Path) -> None:
    """--url-prefix (issue 19 §2): pages, the upload route, the job API and the links all live
    under the prefix; a file chosen in the page's input is uploaded and analysed there, and the
    capture page's links keep the prefix."""
    from analyzer import dashboards
    from analyzer.dashboards import create_app

    app = create_app(tmp_path / "store", url_prefix="bt/tools")
    try:
        client = app.server.test_client()
        assert client.get("/bt/tools/").status_code == 200
        assert client.post("/upload", data=b"x").status_code in (404, 405)  # not outside it
        url, srv = _serve(app)
        b = _browser()
        try:
            wait = WebDriverWait(b, 60)
            b.get(f"{url}/bt/tools/")
            picker = wait.until(ec.presence_of_element_located((By.ID, "upload-file")))
            picker.send_keys(str(SC / "a2dp_rejected_hfp_fallback.btsnoop"))
            wait.until(ec.url_contains("/bt/tools/capture/"))
            wait.until(ec.presence_of_element_located((By.ID, "verdict")))
            hrefs = [
                a.get_attribute("href") for a in b.find_elements(By.CSS_SELECTOR, "a.evidence")
            ]
            assert hrefs and all("/bt/tools/capture/" in h for h in hrefs)
        finally:
            b.quit()
            srv.shutdown()
    finally:
        dashboards.PREFIX = "/"  # the module's other apps are served at the root
