"""Measure what the capture page costs in a real browser (not a test: numbers for the docs).

``python -m tests.dashboards.measure_timeline CAPTURE`` starts the dashboard on an empty store
and a loopback port, uploads CAPTURE from the page in headless Chromium (as a user does) and
prints: the seconds from choosing the file to the swimlane timeline drawn (upload, analysis,
page), then, once the page's figures are drawn, each figure's size as the browser holds it
(``JSON.stringify`` of its data and layout: what its callback sent) and the largest
``_dash-update-component`` response body (the resource timing API).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

#: each drawn figure on the page: its graph id → bytes of its JSON (data and layout)
FIGURES_JS = """
const out = {};
document.querySelectorAll('.dash-graph').forEach(g => {
  const gd = g.querySelector('.js-plotly-plot');
  if (gd && gd.data) { out[g.id] = JSON.stringify({data: gd.data, layout: gd.layout}).length; }
});
return out;
"""
#: the largest callback response body (bytes, decoded) and how many there were
RESPONSES_JS = """
const r = performance.getEntriesByType('resource')
  .filter(e => e.name.includes('_dash-update-component'));
return [Math.max(0, ...r.map(e => e.decodedBodySize)), r.length];
"""
DRAWN_JS = """
const gd = document.querySelector('#swimlane .js-plotly-plot');
return !!(gd && gd._fullData && gd.querySelectorAll('g.barlayer g.point').length);
"""


def main(argv: list[str] | None = None) -> int:
    from selenium.webdriver.support.ui import WebDriverWait

    from analyzer.dashboards import create_app
    from tests.dashboards.test_browser import _browser, _serve, _upload

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("capture", type=Path)
    p.add_argument("--settle", type=float, default=20.0, help="seconds to let figures draw")
    args = p.parse_args(argv)
    store = Path(tempfile.mkdtemp(prefix="measure-store-"))
    url, srv = _serve(create_app(store, max_upload=4 << 30, retention_days=0))
    b = _browser()
    try:
        b.get(url + "/")
        t0 = time.perf_counter()
        _upload(b, url, args.capture.resolve())
        wait = WebDriverWait(b, 600, poll_frequency=0.05)
        wait.until(lambda d: "/job/" in d.current_url)
        t_job = time.perf_counter() - t0
        wait.until(lambda d: "/capture/" in d.current_url)
        t_page = time.perf_counter() - t0
        wait.until(lambda d: d.execute_script(DRAWN_JS))
        t_drawn = time.perf_counter() - t0
        print(f"uploaded (job page) {t_job:.2f} s, analysed (capture page) {t_page:.2f} s, "
              f"timeline drawn {t_drawn:.2f} s after choosing the file")  # fmt: skip
        end = time.monotonic() + args.settle
        sizes: dict[str, int] = {}
        while time.monotonic() < end:  # the audio / advertising figures come after the page
            sizes = b.execute_script(FIGURES_JS) or {}
            if {"audio-graph", "adv-overview", "adv-detail"} <= set(sizes):
                break
            time.sleep(0.5)
        time.sleep(1.0)
        sizes = b.execute_script(FIGURES_JS) or {}
        for gid, n in sorted(sizes.items(), key=lambda kv: -kv[1]):
            print(f"figure {gid}: {n:,} bytes")
        biggest, count = b.execute_script(RESPONSES_JS)
        print(f"largest callback response: {biggest:,} bytes (of {count})")
    finally:
        b.quit()
        srv.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
