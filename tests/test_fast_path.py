"""The fast path and the fallback path give the same analysis (issue 17's acceptance): on every
capture of the corpus — real, bundled and scenario, damaged copies of btsnoop, pcap and pcapng
files included — the analysis JSON is identical when

* compiled: the C record walks and header gather of btsnoop, pcap and pcapng (when built at
  install), and
* fast: the Python pcap/pcapng record walks, the numpy lockstep btsnoop record walk forced
  on (tiny segments and windows, so even a small file is walked as many chains and windows)
  and every chunked step (header conversion, continuation fill, as-of joins,
  payload packing) cut into small chunks, and
* fallback: the careful record-by-record walks (btsnoop, pcap, pcapng: Python), each chunked
  step done in one piece, and the frame index reading the file (not the payload bytes the
  btsnoop reader keeps for it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer import capture, readers
from analyzer.analysis import analyze_capture
from analyzer.readers import btsnoop, load
from analyzer.sessions import build, index
from tests.builders import damaged_copies
from tests.conftest import container_format, corpus

CAPTURES = [p for p in corpus() if p.exists()]
BTSNOOP = [p for p in CAPTURES if container_format(p) == "btsnoop"]
PCAPS = [p for p in CAPTURES if container_format(p) in ("pcap", "pcapng")]


def _json(path: Path) -> str:
    return json.dumps(analyze_capture(load(path)).to_json(), sort_keys=True)


def _both(path: Path) -> tuple[str, str]:
    """(fast, fallback) JSON; the compiled walk's JSON, when it is built, must equal the numpy
    lockstep walk's (checked here too)."""
    compiled = None
    if readers._ext is not None:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(build, "JOIN_CHUNK", 1000)
            mp.setattr(btsnoop, "COMPILED_CALL", 16384)  # the walk resumed call after call
            mp.setattr(btsnoop, "WALK_WINDOW", 16384)  # pages released often behind it
            compiled = _json(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "USE_COMPILED", False)  # the numpy lockstep walk, Python pcap walks
        mp.setattr(btsnoop, "FAST_MIN_SIZE", 0)
        mp.setattr(btsnoop, "FAST_SEGMENT", 2048)
        mp.setattr(btsnoop, "FAST_WINDOW", 512)
        mp.setattr(btsnoop, "WALK_WINDOW", 16384)
        mp.setattr(btsnoop, "COLUMN_CHUNK", 1000)
        mp.setattr(index, "FILL_CHUNK", 1000)
        mp.setattr(build, "JOIN_CHUNK", 1000)
        mp.setattr(capture, "PACK_CHUNK", 64)
        fast = _json(path)
    assert compiled is None or compiled == fast, "compiled walk differs from the numpy walk"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(btsnoop, "_walk", lambda *_args: None)
        mp.setattr(readers, "USE_COMPILED", False)
        mp.setattr(btsnoop, "KEEP_HEADS", False)  # the frame index reads the file itself
        mp.setattr(btsnoop, "COLUMN_CHUNK", 1 << 40)
        mp.setattr(index, "FILL_CHUNK", 1 << 40)
        mp.setattr(build, "JOIN_CHUNK", 1 << 40)
        mp.setattr(capture, "PACK_CHUNK", 1 << 40)
        slow = _json(path)
    return fast, slow


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_fast_path_analysis_equals_fallback(path: Path) -> None:
    try:
        fast, slow = _both(path)
    except capture.CaptureError:
        pytest.skip("not a capture we read")
    assert fast == slow


@pytest.mark.parametrize("path", BTSNOOP[:10] + PCAPS[:8], ids=lambda p: p.name)
def test_fast_path_equals_fallback_on_damaged_copies(path: Path, tmp_path: Path) -> None:
    """Cut, overwritten and zero-padded copies: the fast walk declines where the chain breaks
    and the careful walk recovers, so both paths still give one analysis."""
    buf = path.read_bytes()
    if len(buf) < 1024:
        pytest.skip("too small to damage")
    for k, b in enumerate(damaged_copies(buf, path.name, 4)):
        damaged = tmp_path / f"damaged{k}.log"
        damaged.write_bytes(b)
        fast, slow = _both(damaged)
        assert fast == slow, f"damaged copy {k}"
