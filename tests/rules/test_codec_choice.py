"""Rule tests: codec_choice and high_audio_latency.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_fields
from tests.rules.helpers import ENTRIES, _mine, _real, _scen


def test_codec_choice_on_scenarios() -> None:
    # ground truth: the headset offers SBC, AAC and LDAC; the phone picks SBC / AAC / LDAC
    [f] = _mine(_scen("a2dp_sbc_clean.btsnoop"), "codec_choice")
    assert f.details["offered_better"] == ["LDAC", "AAC"]
    assert "not on the wire" in f.explanation
    [g] = _mine(_scen("a2dp_aac_clean.btsnoop"), "codec_choice")
    assert g.details["offered_better"] == ["LDAC"]
    assert not _mine(_scen("a2dp_ldac_clean.btsnoop"), "codec_choice")


def test_codec_choice_real_aptx() -> None:
    """The repo's README (CATALOG.md): the LG HBS-750 offers SBC/MP3/aptX, the source picks SBC."""
    a = _real("2m_a2dp-captures_mt4gs-lghbs750_btsnoop_hci_lg750.cap")
    [f] = _mine(a, "codec_choice")
    assert f.details["configured"] == "SBC" and f.details["offered_better"] == ["aptX"]


def test_high_delay_report_key_frames() -> None:
    kf = ENTRIES["a2dp_high_delay_report.btsnoop"]["ground_truth"]["key_frames"]
    [f] = _mine(_scen("a2dp_high_delay_report.btsnoop"), "high_audio_latency")
    assert kf["avdtp_delay_report"] in f.frames
    assert f.details["max_delay_ms"] == 250.0  # "delay 2500 x 0.1 ms"
    assert not _mine(_scen("a2dp_sbc_clean.btsnoop"), "high_audio_latency")  # 150 ms


@pytest.mark.tshark
def test_high_delay_matches_tshark_real() -> None:
    name = "francozappa_bluffs_sc-pixelbuds-aseries.pcapng"
    a = _real(name)
    rows = tshark_fields(
        SHARED_CAPTURES / name, ["frame.number", "btavdtp.delay"], "-Y", "btavdtp.delay"
    )
    want = {int(r[0]): int(r[1]) / 10 for r in rows if len(r) > 1 and r[1]}
    [f] = _mine(a, "high_audio_latency")  # one device: one finding for all its streams
    assert set(f.frames) == {k for k, v in want.items() if v > 180}
    assert f.details["max_delay_ms"] == max(want.values())
