"""No input crashes the analysis: mutated real and scenario captures go through the whole
pipeline (readers → sessions → rules) and come out as an analysis or a CaptureError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.analysis import analyze_capture
from analyzer.capture import CaptureError
from analyzer.readers import Source, read_source
from tests.conftest import BUNDLED

SEEDS = [
    (BUNDLED / "real" / "Swastik36_OPPO-Earbuds_btsnoop_hci.log").read_bytes()[:60_000],
    (BUNDLED / "scenarios" / "a2dp_rejected_hfp_fallback.btsnoop").read_bytes()[:40_000],
    (BUNDLED / "scenarios" / "hfp_call_msbc.btsnoop").read_bytes()[:30_000],
    (BUNDLED / "real" / "mikeryan_crackle_le_secure_connections.pcapng").read_bytes(),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_captures_never_crash_the_analysis(data: st.DataObject) -> None:
    buf = bytearray(data.draw(st.sampled_from(SEEDS)))
    # flip bytes past the file header, where records, lengths and protocol fields live
    for _ in range(data.draw(st.integers(1, 40))):
        pos = data.draw(st.integers(24, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    raw = bytes(buf)
    try:
        cap = read_source(Source(buffer=raw, path="mutated", size=len(raw)))
    except CaptureError:
        return
    analysis = analyze_capture(cap)
    crashed = [a.message for a in analysis.anomalies if a.layer == "rules"]
    assert not crashed, crashed
    doc = analysis.to_json()
    assert doc["capture"]["frames"] == len(cap)
