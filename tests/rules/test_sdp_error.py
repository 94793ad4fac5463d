"""Rule tests: sdp_error.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import copy

from analyzer.model import (
    SdpTransaction,
)
from tests.rules.helpers import _fresh, _rerun


def test_sdp_error_response_injected() -> None:
    a = _fresh("sdp_continuation.btsnoop")
    t = copy.deepcopy(a.sdp[0])
    t.error_code, t.error_name = 0x0003, "Invalid Request Syntax"
    t.records, t.services = [], []
    a.sdp.append(t)
    [f] = [f for f in _rerun(a) if f.id == "sdp_error"]
    assert "0x0003" in f.message and t.request_frame in f.frames


def test_missing_sink_record_then_avdtp() -> None:
    a = _fresh("a2dp_sbc_clean.btsnoop")
    assert not [f for f in _rerun(a) if f.id == "sdp_error"]  # the record is there
    for t in a.sdp:
        if isinstance(t, SdpTransaction) and t.direction == "sent":
            t.records, t.services = [], []
    [f] = [f for f in _rerun(a) if f.id == "sdp_error"]
    assert f.details["kind"] == "missing_record" and f.details["psm"] == 0x0019
