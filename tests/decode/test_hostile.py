"""Quadratic decode paths (issue 18): SDP data elements read in place, AT lines without CR."""

from __future__ import annotations

import time

from analyzer.decode import at, sdp


def test_sdp_long_sequence_is_linear() -> None:
    """A sequence of 500,000 one-byte elements (each used to copy the buffer: ~125 GB)."""
    n = 500_000
    des = bytes([0x37]) + n.to_bytes(4, "big") + b"\x00" * n
    t0 = time.perf_counter()
    val, anomaly = sdp.decode_element(des)
    assert time.perf_counter() - t0 < 3
    assert anomaly is None
    assert isinstance(val, list) and len(val) == n


def test_sdp_oversized_and_deep_elements() -> None:
    big = bytes([0x37]) + (3 << 20).to_bytes(4, "big") + b"\x08\x01" * (3 << 19)
    val, anomaly = sdp.decode_element(big)
    assert val is None and anomaly is not None  # only the first MiB decoded: truncated
    deep = b"\x00"
    for _ in range(5000):
        deep = b"\x36" + len(deep).to_bytes(2, "big") + deep
    val, anomaly = sdp.decode_element(deep)
    assert anomaly == "data elements nested too deep"
    recs = sdp.parse_attribute_lists(deep)
    assert recs.records == [] and recs.anomaly


def test_at_line_without_cr_is_linear_and_bounded() -> None:
    sp = at.LineSplitter()
    chunk = b"A" * 1000
    t0 = time.perf_counter()
    for _ in range(4000):  # 4 MB without a line end
        assert sp.feed(chunk) == []
    assert time.perf_counter() - t0 < 2
    assert len(sp.pending) == at.MAX_LINE
    lines = sp.feed(b"BB\r\nAT+BRSF=1\r")
    assert lines == ["A" * at.MAX_LINE, "AT+BRSF=1"]
    assert sp.pending == ""


def test_at_lines_split_across_frames() -> None:
    sp = at.LineSplitter()
    out: list[str] = []
    for piece in (b"AT+CI", b"ND=?", b"\r", b"\nOK\r\n+CIEV: 1,", b"1\r\n"):
        out += sp.feed(piece)
    assert out == ["AT+CIND=?", "OK", "+CIEV: 1,1"]
    assert at.split_lines(b"RING\r\nAT") == ["RING", "AT"]
