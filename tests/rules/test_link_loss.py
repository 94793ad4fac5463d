"""Rule tests: link_loss and a2dp_media_stall.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import pytest

from analyzer.rules.base import RuleConfig
from tests.rules.helpers import ENTRIES, _fresh, _mine, _real, _rerun, _scen


def test_link_loss_while_streaming() -> None:
    a = _scen("link_loss.btsnoop")
    kf = ENTRIES["link_loss.btsnoop"]["ground_truth"]["key_frames"]
    [f] = _mine(a, "link_loss")
    assert kf["disconnection_complete_timeout"] in f.frames
    assert f.details["reason"] == 0x08
    assert any("A2DP" in w and "streaming" in w for w in f.details["running"])
    [s] = _mine(a, "a2dp_media_stall")
    assert s.details["stall_kinds"] == ["before_link_loss"]
    # the headset went silent; media stopped before the 5 s supervision timeout ran out
    assert 4000 <= s.details["longest_gap_ms"] <= 6000


def test_media_stall_key_frames() -> None:
    e = ENTRIES["a2dp_media_stall.btsnoop"]
    [f] = _mine(_scen("a2dp_media_stall.btsnoop"), "a2dp_media_stall")
    assert e["ground_truth"]["key_frames"]["media_after_stall"] in f.frames
    assert f.details["longest_gap_ms"] == pytest.approx(800, abs=50)  # "stalls for 0.8 s"


def test_media_stall_threshold_and_filtered() -> None:
    a = _fresh("a2dp_media_stall.btsnoop")
    cfg = RuleConfig()
    cfg.set("a2dp_media_stall", "gap_ms", 900)
    assert not [f for f in _rerun(a, cfg) if f.id == "a2dp_media_stall"]
    a.capture.filtered = True
    try:
        assert not [f for f in _rerun(a) if f.id == "a2dp_media_stall"]
    finally:
        a.capture.filtered = False


def test_media_gap_outside_streaming_is_no_stall() -> None:
    """mt4gs: a 2 s gap spans a SUSPEND (open) period; the catalog shows two STARTs."""
    a = _real("2m_a2dp-captures_mt4gs-lghbs750_btsnoop_hci_lg750.cap")
    assert any(g.gap_ms > 500 for s in a.avdtp_streams for g in s.media_gaps)
    assert not _mine(a, "a2dp_media_stall")
