"""The frame index's continuation fill (``index.fill_continuations``) against a plain loop:
every continuation fragment takes the CID of the last start fragment of its own (handle,
direction) stream, across chunk boundaries too; and the compiled header-field pass gives the
numpy path's table, on drawn frames and on the whole corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import readers
from analyzer.capture import DIRECTIONS, KINDS, Capture, CaptureError, CaptureMeta
from analyzer.readers import btsnoop, load
from analyzer.sessions import index
from tests.conftest import corpus


def _loop(key: list[int], start: list[bool], cid: list[int]) -> list[int]:
    last: dict[int, int] = {}
    out = []
    for k, s, c in zip(key, start, cid, strict=True):
        if s:
            last[k] = c
        out.append(last.get(k, -1))
    return out


rows = st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.integers(-1, 0xFFFF)), max_size=200)


@pytest.mark.parametrize("chunk", [1, 3, 17, 1 << 20])
@settings(max_examples=60, deadline=None)
@given(data=rows)
def test_fill_continuations_matches_a_loop(chunk: int, data: list[tuple[int, bool, int]]) -> None:
    key = np.asarray([r[0] for r in data], dtype=np.int32)
    start = np.asarray([r[1] for r in data], dtype=bool)
    cid = np.asarray([r[2] for r in data], dtype=np.int32)
    old = index.FILL_CHUNK
    index.FILL_CHUNK = chunk
    try:
        got = index.fill_continuations(key, start, cid)
    finally:
        index.FILL_CHUNK = old
    assert got.tolist() == _loop(key.tolist(), start.tolist(), cid.tolist())
    assert got.dtype == cid.dtype


# -- the compiled header fields = the numpy columns -----------------------------------------------

needs_compiled = pytest.mark.skipif(readers._ext is None, reason="compiled module not built")

frames = st.lists(
    st.tuples(
        st.sampled_from((*KINDS[:5], "ll_adv")),
        st.sampled_from(["sent", "received", "unknown"]),
        st.binary(min_size=0, max_size=10),
    ),
    max_size=120,
)


def _capture(rows: list[tuple[str, str, bytes]]) -> Capture:
    """A capture of the given (kind, direction, payload) frames; handles drawn from a few values
    (and the controller debug-log handle) so that continuation fragments meet their starts."""
    data = b"".join(p for _, _, p in rows)
    offs = np.cumsum([0] + [len(p) for _, _, p in rows])[:-1]
    n = len(rows)
    table = pl.DataFrame(
        {
            "index": np.arange(1, n + 1, dtype=np.int64),
            "time_us": np.arange(n, dtype=np.int64),
            "direction": pl.Series([d for _, d, _ in rows], dtype=pl.Enum(list(DIRECTIONS))),
            "kind": pl.Series([k for k, _, _ in rows], dtype=pl.Enum(list(KINDS))),
            "adapter": np.zeros(n, dtype=np.int32),
            "offset": offs.astype(np.int64),
            "length": np.asarray([len(p) for _, _, p in rows], dtype=np.int32),
            "orig_length": np.asarray([len(p) for _, _, p in rows], dtype=np.int32),
        }
    )
    meta = CaptureMeta(format="test", link_type=None, link_type_name="", path="t", size=len(data))
    return Capture(meta=meta, frames=table, buffer=data)


def _acl_like(payload: bytes) -> bytes:
    """Most drawn payloads get a handle of 1..3 (or the debug-log raw handle) with a random PB
    flag, so streams repeat and fragments continue."""
    if len(payload) < 2 or payload[0] % 5 == 0:
        return payload
    raw = 0x2EDC if payload[0] % 7 == 0 else (payload[1] % 3 + 1) | ((payload[1] >> 2) & 3) << 12
    return raw.to_bytes(2, "little") + payload[2:]


@needs_compiled
@settings(max_examples=150, deadline=None)
@given(rows=frames, keep_heads=st.booleans())
def test_compiled_header_fields_equal_the_numpy_columns(
    rows: list[tuple[str, str, bytes]], keep_heads: bool
) -> None:
    rows = [(k, d, _acl_like(p) if k in ("acl", "sco", "iso") else p) for k, d, p in rows]

    def run(use_compiled: bool) -> pl.DataFrame:
        cap = _capture(rows)
        if keep_heads:
            kept = b"".join((p + bytes(8))[:8] for _, _, p in rows)
            cap.heads = np.frombuffer(kept, dtype=np.uint8).reshape(-1, 8).copy()
        old = readers.USE_COMPILED
        readers.USE_COMPILED = use_compiled
        try:
            return index.frame_index(cap)
        finally:
            readers.USE_COMPILED = old

    fast, plain = run(True), run(False)
    assert fast.schema == plain.schema
    assert fast.equals(plain)


@needs_compiled
@pytest.mark.parametrize("path", [p for p in corpus() if p.exists()], ids=lambda p: p.name)
def test_compiled_frame_index_equals_numpy_on_the_corpus(path: Path) -> None:
    """Every real and scenario capture: the frame index is the same table with the compiled
    pass (over the reader's heads, or over heads gathered from the file) and with numpy."""

    def run(use_compiled: bool, keep_heads: bool) -> pl.DataFrame:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(readers, "USE_COMPILED", use_compiled)
            mp.setattr(btsnoop, "KEEP_HEADS", keep_heads)
            return index.frame_index(load(path))

    try:
        plain = run(False, False)
    except CaptureError:
        pytest.skip("not a capture we read")
    assert run(True, True).equals(plain)
    assert run(True, False).equals(plain)
