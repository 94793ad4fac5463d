"""Measure the packet table's page-serve time over HTTP (not a test: numbers for the docs).

``python -m tests.dashboards.measure_packets CAPTURE [--store DIR]`` analyses CAPTURE into a
store (once), starts the dashboard on a loopback port, and times ``POST /_dash-update-component``
for the grid's ``getRowsRequest`` (what the browser sends for each block of 100 rows): the first
request (reads the capture file and builds the table), then pages at the start, middle and end,
with filters (summary text, protocol + time window, device + sort). Prints one line per case:
median and max of 5 requests, and the filtered row count.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any


def _post(url: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    req = urllib.request.Request(
        url + "/_dash-update-component",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        doc = json.loads(r.read())
    return time.perf_counter() - t0, doc


def _body(cid: str, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "output": "..packet-grid.getRowsResponse...packet-note.children..",
        "outputs": [
            {"id": "packet-grid", "property": "getRowsResponse"},
            {"id": "packet-note", "property": "children"},
        ],
        "inputs": [{"id": "packet-grid", "property": "getRowsRequest", "value": request}],
        "state": [{"id": "url", "property": "pathname", "value": f"/capture/{cid}"}],
        "changedPropIds": ["packet-grid.getRowsRequest"],
    }


def main(argv: list[str] | None = None) -> int:
    from werkzeug.serving import make_server

    from analyzer.dashboards import create_app
    from analyzer.store import Store
    from analyzer.store.batch import run_batch

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("capture", type=Path)
    ap.add_argument("--store", type=Path, default=None)
    args = ap.parse_args(argv)
    root = args.store or Path(tempfile.mkdtemp(prefix="btanalyze-measure-"))
    st = Store(root)
    if st.captures().is_empty():
        t0 = time.perf_counter()
        run_batch([str(args.capture)], st, workers=1)
        print(f"analysed and stored in {time.perf_counter() - t0:.1f} s")
    cid = str(st.captures()["capture_id"][0])
    app = create_app(root, retention_days=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        took, doc = _post(url, _body(cid, {"startRow": 0, "endRow": 100}))
        n = doc["response"]["packet-grid"]["getRowsResponse"]["rowCount"]
        print(f"first request (reads the file, builds the table of {n} frames): {took:.2f} s")
        cases = {
            "page 1": {"startRow": 0, "endRow": 100},
            "page in the middle": {"startRow": n // 2, "endRow": n // 2 + 100},
            "last page": {"startRow": n - 100, "endRow": n},
            "summary contains 'delay'": {"startRow": 0, "endRow": 100, "filterModel": {
                "summary": {"filterType": "text", "type": "contains", "filter": "delay"}}},
            "protocol = AVDTP media, time 1000-3000 s": {"startRow": 100, "endRow": 200,
                "filterModel": {
                    "protocol": {"filterType": "text", "type": "equals", "filter": "avdtp media"},
                    "time_s": {"filterType": "number", "type": "inRange", "filter": 1000,
                               "filterTo": 3000}}},
            "device contains 00:1b, sorted by time desc": {"startRow": 5000, "endRow": 5100,
                "filterModel": {"device": {"filterType": "text", "type": "contains",
                                           "filter": "00:1b"}},
                "sortModel": [{"colId": "time_s", "sort": "desc"}]},
        }  # fmt: skip
        for name, req in cases.items():
            times, count = [], 0
            for _ in range(5):
                took, doc = _post(url, _body(cid, req))
                times.append(took)
                count = doc["response"]["packet-grid"]["getRowsResponse"]["rowCount"]
            print(f"{name}: median {statistics.median(times) * 1000:.1f} ms, "
                  f"max {max(times) * 1000:.1f} ms, {count} rows")  # fmt: skip
    finally:
        srv.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
