"""The columnar AD Flags walk (``ad_flags_columnar``, all reports at once) gives what the
one-report walk (``ad_flags``) gives, on drawn advertising data: well-formed structures, Flags
anywhere or absent, empty and overrunning structures, reports cut short."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.decode.adv_reports import ad_flags, ad_flags_columnar

structure = st.one_of(
    st.tuples(st.sampled_from([0x01, 0x09, 0xFF, 0x16]), st.binary(max_size=6)).map(
        lambda t: bytes([len(t[1]) + 1, t[0]]) + t[1]
    ),
    st.binary(min_size=1, max_size=4),  # junk: zero lengths, overruns
)
report = st.lists(structure, max_size=8).map(b"".join).map(lambda b: b[:31])


@settings(max_examples=300, deadline=None)
@given(reports=st.lists(report, min_size=1, max_size=30), pad=st.integers(0, 3))
def test_columnar_flags_equal_the_one_by_one_walk(reports: list[bytes], pad: int) -> None:
    buf = bytes(pad) + b"".join(reports)
    lengths = np.asarray([len(r) for r in reports], dtype=np.int64)
    starts = pad + np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    got = ad_flags_columnar(np.frombuffer(buf, dtype=np.uint8), starts, lengths).tolist()
    want = [-1 if ad_flags(r) is None else ad_flags(r) for r in reports]
    assert got == want
