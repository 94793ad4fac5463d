"""Issue 21 views in real headless Chromium: the AVDTP sequence chart of a rejected
configuration draws the rejects red; one without START draws START as a dashed ghost; the A2DP
matrix flags a configuration outside the sink's capabilities (a bumble scenario generated
here). Each view's screenshot goes to docs/img/ (the images docs/dashboard.md shows).
Skipped when Chromium or chromedriver is absent (``.ci/run`` installs them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dash")
pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.dashboards.test_browser import CHROMIUM, DRIVER, SC, _browser, _serve
from tests.oracle import TSHARK

REPO = Path(__file__).resolve().parents[2]
IMG = REPO / "docs" / "img"
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The dashboard over a store of the scenario captures these views are tested on."""

    from analyzer.dashboards import create_app
    from analyzer.store import Store
    from analyzer.store.batch import run_batch
    from tests.scenarios.a2dp_config_outside_caps import MEDIA_SCENARIO, generate

    caps = tmp_path_factory.mktemp("caps")
    outside = generate(caps)
    aac_on_sbc = generate(caps, MEDIA_SCENARIO)
    files = [str(SC / f"{n}.btsnoop") for n in ("a2dp_rejected_hfp_fallback",
                                                 "a2dp_open_without_start",
                                                 "sdp_stale_record_handle",
                                                 "a2dp_media_stall",
                                                 "le_adv_silence_50")]  # fmt: skip
    root = tmp_path_factory.mktemp("store")
    run_batch([*files, str(outside), str(aac_on_sbc)], Store(root), workers=1)
    rows = Store(root).captures()
    ids = {Path(p).stem: c for p, c in zip(rows["path"], rows["capture_id"], strict=True)}
    url, srv = _serve(create_app(root, retention_days=0))
    yield url, ids
    srv.shutdown()


#: the rendered sequence chart: each trace's name, its SVG stroke / dash and its text fills
CHART_JS = """
const gd = document.querySelector('#seq-graph .js-plotly-plot');
const layers = gd.querySelectorAll('g.scatterlayer g.trace');
return gd._fullData.map((t, i) => {
  const g = layers[i];
  const path = g ? g.querySelector('path.js-line') : null;
  const texts = g ? Array.from(g.querySelectorAll('g.textpoint text')) : [];
  return {name: t.name,
          stroke: path ? getComputedStyle(path).stroke : null,
          dash: path ? (path.style.strokeDasharray || '') : '',
          texts: texts.map(x => [x.textContent, getComputedStyle(x).fill])};
});
"""


def _chart(b: Any, url: str) -> list[dict[str, Any]]:
    b.get(url)
    WebDriverWait(b, 60).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#seq-graph g.scatterlayer g.trace"))
    )
    b.find_element(By.ID, "procedures").location_once_scrolled_into_view  # noqa: B018
    return b.execute_script(CHART_JS)  # type: ignore[no-any-return]


def _shot(b: Any, element_id: str, name: str) -> None:
    """A screenshot of one element, the window made tall enough to hold all of it."""
    IMG.mkdir(parents=True, exist_ok=True)
    el = b.find_element(By.ID, element_id)
    size = b.get_window_size()
    b.set_window_size(size["width"], max(size["height"], el.size["height"] + 200))
    el = b.find_element(By.ID, element_id)
    el.location_once_scrolled_into_view  # noqa: B018
    el.screenshot(str(IMG / name))
    b.set_window_size(size["width"], size["height"])


def test_avdtp_chart_reject_red_and_start_ghost(site: tuple[str, dict[str, str]]) -> None:
    url, ids = site
    b = _browser()
    try:
        rej = ids["a2dp_rejected_hfp_fallback"]
        traces = _chart(b, f"{url}/capture/{rej}?seq=avdtp:acl-0x001-1")
        by = {t["name"]: t for t in traces}
        red = "rgb(198, 40, 40)"
        assert by["error messages"]["stroke"] == red
        rejects = [(txt, fill) for txt, fill in by["error labels"]["texts"] if "reject" in txt]
        assert len(rejects) == 3 and {f for _, f in rejects} == {red}
        assert "UNSUPPORTED_CONFIGURATION" in rejects[0][0]
        steps = b.find_element(By.ID, "seq-steps")
        assert len(steps.find_elements(By.CSS_SELECTOR, "li.msg.error")) == 3
        _shot(b, "seq-graph", "dashboard-sequence-rejected.png")

        nostart = ids["a2dp_open_without_start"]
        traces = _chart(b, f"{url}/capture/{nostart}?seq=avdtp:acl-0x001-1")
        by = {t["name"]: t for t in traces}
        assert "error messages" not in by
        ghost = by["ghost messages"]
        assert ghost["dash"] and ghost["stroke"] == "rgb(158, 158, 158)"  # dashed grey
        assert [txt.split()[0] for txt, _ in by["ghost labels"]["texts"]] == ["START"]
        ghosts = b.find_elements(By.CSS_SELECTOR, "#seq-steps li.msg.ghost")
        assert [g.find_element(By.TAG_NAME, "b").text for g in ghosts] == ["START"]
        _shot(b, "seq-graph", "dashboard-sequence-ghost.png")
        # clicking a message's frame link selects that frame (the page's evidence link)
        link = b.find_elements(By.CSS_SELECTOR, "#seq-steps a.evidence")[-1]
        frame = link.text.lstrip("#")
        link.click()
        WebDriverWait(b, 30).until(
            ec.text_to_be_present_in_element((By.ID, "selected-frame"), frame)
        )
        assert "seq=avdtp" in b.current_url
    finally:
        b.quit()


def test_matrix_flags_the_configuration_outside_the_offer(
    site: tuple[str, dict[str, str]],
) -> None:
    url, ids = site
    b = _browser()
    try:
        b.get(f"{url}/capture/{ids['a2dp_config_outside_caps']}")
        table = WebDriverWait(b, 60).until(
            ec.presence_of_element_located((By.ID, "negotiation-matrix"))
        )
        flagged = table.find_elements(By.CSS_SELECTOR, "tr.flagged")
        assert len(flagged) == 2  # the endpoint's offered and configured rows
        outside = [td.text for td in table.find_elements(By.CSS_SELECTOR, "td.outside")]
        assert outside == ["32 kHz", "2–64"]
        flags = table.find_element(By.CSS_SELECTOR, "td.flags").text
        assert "32 kHz not offered" in flags and "above the offered 53" in flags
        assert table.find_element(By.CSS_SELECTOR, "span.answer").text.strip() == "SBC accepted"
        b.find_element(By.ID, "negotiation-box").location_once_scrolled_into_view  # noqa: B018
        _shot(b, "negotiation-box", "dashboard-negotiation-outside.png")
        # the rejected scenario: every configuration rejected with its error code, nothing flagged
        b.get(f"{url}/capture/{ids['a2dp_rejected_hfp_fallback']}")
        table = WebDriverWait(b, 60).until(
            ec.presence_of_element_located((By.ID, "negotiation-matrix"))
        )
        answers = [s.text for s in table.find_elements(By.CSS_SELECTOR, "span.answer.rejected")]
        assert sorted(answers) == sorted(f"{c} rejected UNSUPPORTED_CONFIGURATION"
                                         for c in ("SBC", "AAC", "LDAC"))  # fmt: skip
        assert not table.find_elements(By.CSS_SELECTOR, "tr.flagged")
        if TSHARK is None:
            return
        # negotiated SBC, streamed AAC: tshark (with the configured codec) finds no SBC
        b.get(f"{url}/capture/{ids['a2dp_media_not_configured_codec']}")
        button = WebDriverWait(b, 60).until(ec.element_to_be_clickable((By.ID, "media-check")))
        b.execute_script("arguments[0].scrollIntoView()", button)
        button.click()
        bad = WebDriverWait(b, 60).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#media-check-out li.media-mismatch"))
        )
        assert "does not decode as SBC" in bad.text and "Unexpected syncword" in bad.text
        _shot(b, "negotiation-box", "dashboard-negotiation-media.png")
    finally:
        b.quit()


CURSOR_JS = """
const gd = document.querySelector('#swimlane .js-plotly-plot');
return (gd.layout.shapes || []).map(s => [s.type, s.x0, s.x1]);
"""


def test_packet_table_row_moves_the_cursor_and_wireshark_dissects_sdp(
    site: tuple[str, dict[str, str]],
) -> None:
    from analyzer.analysis import analyze

    url, ids = site
    a = analyze(SC / "sdp_stale_record_handle.btsnoop")
    (err,) = [t for t in a.sdp if t.error_name]  # the SDP ErrorResponse frame
    assert err.response_frame is not None and err.response_time_us is not None
    frame = err.response_frame
    at = round((err.response_time_us - (a.capture.first_time_us or 0)) / 1e6, 6)
    b = _browser()
    try:
        wait = WebDriverWait(b, 60)
        b.get(f"{url}/capture/{ids['sdp_stale_record_handle']}#packets")
        rows = "#packet-grid .ag-center-cols-container .ag-row"
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, rows)))
        # a server-side filter: only the SDP frames are left
        box = b.find_element(
            By.CSS_SELECTOR, '#packet-grid .ag-floating-filter[aria-colindex="7"] input'
        )
        box.send_keys("SDP")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == 4)
        cells = b.find_elements(By.CSS_SELECTOR, f'{rows} .ag-cell[col-id="protocol"]')
        assert {e.text for e in cells} == {"SDP"}
        first_cells = {
            r.find_element(By.CSS_SELECTOR, '[col-id="frame"]').text: r
            for r in b.find_elements(By.CSS_SELECTOR, rows)
        }
        row = first_cells[str(frame)]
        cell = row.find_element(By.CSS_SELECTOR, '.ag-cell[col-id="summary"]')
        assert "ErrorResponse" in cell.text
        assert b.execute_script(CURSOR_JS) == []  # no cursor before a selection
        cell.click()
        wait.until(lambda d: d.execute_script(CURSOR_JS) == [["line", at, at]])
        assert f"Selected frame {frame}" in b.find_element(By.ID, "selected-frame").text
        title = wait.until(ec.presence_of_element_located((By.ID, "packet-detail-title")))
        assert title.text.startswith(f"Frame {frame}:")
        assert "Invalid Service Record Handle" in b.find_element(By.ID, "packet-decode").text
        assert b.find_element(By.ID, "packet-hex").text.startswith("0000  01 20")
        _shot(b, "packets-box", "dashboard-packets.png")
        if TSHARK is None:  # the Wireshark view needs tshark; the rest was checked
            return
        b.find_element(By.ID, "ws-button").click()
        view = wait.until(ec.presence_of_element_located((By.ID, "ws-view")))
        sdp = view.find_element(By.CSS_SELECTOR, "details.ws-btsdp")
        assert "btsdp.pdu" in sdp.text and "btsdp.error_code" in sdp.text
        assert view.find_element(By.CSS_SELECTOR, "details.ws-btl2cap")  # from L2CAP up
        _shot(b, "ws-view", "dashboard-wireshark-view.png")
    finally:
        b.quit()


GRAPH_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullData) return null;
return {names: gd._fullData.map(t => t.name),
        shapes: (gd._fullLayout.shapes || []).map(s => s.fillcolor || ''),
        annotations: (gd._fullLayout.annotations || []).map(a => a.text || '')};
"""


def _graph(b: Any, element_id: str, want: str) -> dict[str, Any]:
    got: dict[str, Any] = {}

    def ready(d: Any) -> bool:
        got.update(d.execute_script(GRAPH_JS, element_id) or {})
        return any(want in n for n in got.get("names", []))

    WebDriverWait(b, 60).until(ready)
    return got


def test_audio_and_advertising_views(site: tuple[str, dict[str, str]]) -> None:
    url, ids = site
    b = _browser()
    try:
        b.get(f"{url}/capture/{ids['a2dp_media_stall']}#audio")
        g = _graph(b, "audio-graph", "media:")
        assert "rgba(198,40,40,0.25)" in g["shapes"]  # the stall, red
        _shot(b, "audio-box", "dashboard-audio.png")
        b.get(f"{url}/capture/{ids['le_adv_silence_50']}#advertising")
        g = _graph(b, "adv-overview", "silence")
        assert "heard" in g["names"]
        assert any("scanning" in t for t in g["annotations"])
        assert "not a sniffer" in b.find_element(By.ID, "adv-source-note").text
        d = _graph(b, "adv-detail", "gaps")
        assert any("advDelay" in t for t in d["annotations"])
        _shot(b, "advertising-box", "dashboard-advertising.png")
    finally:
        b.quit()


def test_frame_in_the_url_scrolls_the_packet_table_there(
    site: tuple[str, dict[str, str]],
) -> None:
    url, ids = site
    b = _browser()
    try:
        frame = 900  # far past the first block's rendered rows
        b.get(f"{url}/capture/{ids['a2dp_media_stall']}?frame={frame}#packets")
        cells = '#packet-grid .ag-center-cols-container .ag-cell[col-id="frame"]'
        texts = f"return Array.from(document.querySelectorAll('{cells}')).map(e => e.textContent)"
        WebDriverWait(b, 60).until(lambda d: str(frame) in d.execute_script(texts))
    finally:
        b.quit()


SWIM_JS = """
const gd = document.querySelector('#swimlane .js-plotly-plot');
if (!gd || !gd._fullLayout || !gd._fullData) return null;
const hl = gd._fullData.find(t => t.name === 'highlight');
return {range: gd._fullLayout.xaxis.range, lanes: gd._fullLayout.yaxis.ticktext,
        names: gd._fullData.map(t => t.name),
        bars: gd.querySelectorAll('g.barlayer g.point').length,
        highlighted: hl && hl.x ? hl.x.length : 0,
        lines: (gd.layout.shapes || []).filter(s => s.type === 'line').map(s => s.x0)};
"""


def _swim(b: Any, ready: Any) -> dict[str, Any]:
    got: dict[str, Any] = {}

    def check(d: Any) -> bool:
        got.clear()
        got.update(d.execute_script(SWIM_JS) or {})
        return bool(got) and bool(ready(got))

    WebDriverWait(b, 60).until(check)
    return got


def test_swimlane_incident_zooms_and_the_url_keeps_the_window(
    site: tuple[str, dict[str, str]],
) -> None:
    """The timeline's lanes are drawn; an incident's button zooms the timeline to its frames
    (highlighted) and puts the window in the URL; that URL opens on the same window."""
    from urllib.parse import parse_qs, urlparse

    url, ids = site
    b = _browser()
    try:
        b.get(f"{url}/capture/{ids['a2dp_rejected_hfp_fallback']}")
        full = _swim(b, lambda g: g.get("bars", 0) > 0)
        assert any("BR/EDR ACL" in t for t in full["lanes"])
        assert any("A2DP stream" in t or "SCO/eSCO" in t for t in full["lanes"])
        assert {"connection", "findings"} <= set(full["names"])
        button = b.find_element(By.CSS_SELECTOR, "#incidents button.swim-focus")
        b.execute_script("arguments[0].scrollIntoView()", button)
        button.click()
        WebDriverWait(b, 30).until(lambda d: "t1=" in d.current_url)
        q = parse_qs(urlparse(b.current_url).query)
        t0, t1 = float(q["t0"][0]), float(q["t1"][0])
        assert t1 - t0 < full["range"][1] - full["range"][0]  # zoomed in
        zoomed = _swim(b, lambda g: abs(g["range"][0] - t0) < 1e-3 and g["highlighted"] > 0)
        assert abs(zoomed["range"][1] - t1) < 1e-3
        _shot(b, "timeline-box", "dashboard-timeline.png")
        shared = b.current_url
    finally:
        b.quit()
    colleague = _browser()  # a new browser session opens the URL on the same window
    try:
        colleague.get(shared)
        again = _swim(colleague, lambda g: g.get("bars", 0) > 0)
        assert abs(again["range"][0] - t0) < 1e-3 and abs(again["range"][1] - t1) < 1e-3
        assert again["highlighted"] == 0  # the window is shared, not the button's rings
    finally:
        colleague.quit()


def test_swimlane_frame_link_centres_the_timeline_on_its_frame(
    site: tuple[str, dict[str, str]],
) -> None:
    """An evidence link (a dcc.Link to ``?frame=N``) clicked in the page centres the timeline on
    the frame (its dotted line, its marks ringed) — also when it is the frame the page already
    shows and the timeline has written another window into the URL since."""
    from analyzer.dashboards.swimlane import FRAME_WINDOW_S

    url, ids = site
    b = _browser()
    try:
        b.get(f"{url}/capture/{ids['a2dp_rejected_hfp_fallback']}")
        full = _swim(b, lambda g: g.get("bars", 0) > 0)

        def centred(g: dict[str, Any]) -> bool:
            lo, hi = g["range"]
            mid = (lo + hi) / 2
            one_line = len(g["lines"]) == 1 and abs(mid - g["lines"][0]) < 1e-3
            return abs(hi - lo - FRAME_WINDOW_S) < 1e-3 and one_line and g["highlighted"] > 0

        for _ in range(2):
            link = b.find_elements(By.CSS_SELECTOR, "#findings a.evidence")[1]
            frame = link.text
            b.execute_script("arguments[0].scrollIntoView()", link)
            link.click()
            WebDriverWait(b, 30).until(ec.url_contains(f"frame={frame}"))
            at = _swim(b, centred)
            assert at["range"][1] - at["range"][0] < full["range"][1] - full["range"][0]
            assert f"Highlighted: frame {frame}" in b.find_element(By.ID, "swim-note").text
            # a zoom (an incident's button) writes its window into the URL, the frame stays
            button = b.find_element(By.CSS_SELECTOR, "#incidents button.swim-focus")
            b.execute_script("arguments[0].scrollIntoView()", button)
            button.click()
            WebDriverWait(b, 30).until(lambda d: "t1=" in d.current_url)
            _swim(b, lambda g: abs(g["range"][1] - g["range"][0] - FRAME_WINDOW_S) > 1e-2)
    finally:
        b.quit()
