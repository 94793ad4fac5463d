"""The frame index's continuation fill (``index.fill_continuations``) against a plain loop:
every continuation fragment takes the CID of the last start fragment of its own (handle,
direction) stream, across chunk boundaries too."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.sessions import index


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
