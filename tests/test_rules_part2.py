"""Rules of the failure catalogue, part 2: each fires where the scenario manifest's ground truth or
tshark says the fault is, with the key frames, and stays silent on the clean captures.

Rules with no capture holding their fault (hardware errors, encryption failures, SDP errors,
irregular advertisers, mid-capture resets) are checked on sessions built from a scenario capture
with the fault injected into the session objects: rules read sessions, never bytes.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from analyzer.analysis import Analysis, analyze
from analyzer.model import (
    ControllerReset,
    EncryptionFailure,
    GapHistogram,
    HardwareError,
    SdpTransaction,
)
from analyzer.rules.base import Finding, RuleConfig, run_rules
from tests.conftest import BUNDLED, PPI_USER_DLT, SHARED_CAPTURES, tshark_fields

SCEN = BUNDLED / "scenarios"
MANIFEST = json.loads((SCEN / "manifest.json").read_text())
ENTRIES = {e["file"]: e for e in MANIFEST["captures"]}
MINE = {
    "connection_failed", "link_loss", "short_connection", "periodic_disconnect",
    "pairing_failed", "encryption_failed", "l2cap_connection_refused", "sdp_error",
    "a2dp_media_stall", "codec_choice", "high_audio_latency", "hci_command_failed",
    "controller_reset", "hardware_error", "adv_interval_irregular", "capture_incomplete",
}  # fmt: skip


@cache
def _analysis(path: Path) -> Analysis:
    return analyze(path)


def _scen(name: str) -> Analysis:
    return _analysis(SCEN / name)


def _real(name: str) -> Analysis:
    p = SHARED_CAPTURES / name
    if not p.is_file():
        pytest.skip(f"{name} not in ../shared/captures")
    return _analysis(p)


def _mine(a: Analysis, rule_id: str) -> list[Finding]:
    return [f for f in a.findings if f.id == rule_id]


def _rerun(a: Analysis, cfg: RuleConfig | None = None) -> list[Finding]:
    return run_rules(a, cfg)


def _fresh(name: str) -> Analysis:
    """A private copy of a scenario's sessions to inject faults into."""
    a = analyze(SCEN / name)
    a.findings = []
    return a


def _no_rule_errors(a: Analysis) -> None:
    assert not [x for x in a.anomalies if x.layer == "rules"]


# -- the manifest: every expected finding of mine fires; clean captures stay silent ---------------


@pytest.mark.parametrize("entry", MANIFEST["captures"], ids=lambda e: e["file"])
def test_manifest_expectations(entry: dict[str, Any]) -> None:
    a = _scen(entry["file"])
    _no_rule_errors(a)
    got = {f.id for f in a.findings if f.id in MINE}
    want = set(entry["expected_findings"]) & MINE
    assert want <= got, [f.message for f in a.findings]
    if entry["group"] != "faults":
        # nothing goes wrong in these: no error or warning; the one info allowed is
        # codec_choice where the description says the phone picked a lesser codec than the
        # headset's LDAC (ground truth: the headset offers SBC, AAC and LDAC)
        loud = [f for f in a.findings if f.id in MINE and f.severity != "info"]
        assert loud == [], [f.message for f in loud]
        info = {f.id for f in a.findings if f.id in MINE and f.severity == "info"}
        assert info <= {"codec_choice"}
    else:
        unexpected = {f.id for f in a.findings if f.id in MINE and f.severity != "info"} - want
        assert unexpected == set(), [f.message for f in a.findings]


# -- connection_failed ----------------------------------------------------------------------------


def test_page_timeout_grouped_with_key_frames() -> None:
    kf = ENTRIES["page_timeout.btsnoop"]["ground_truth"]["key_frames"]
    [f] = _mine(_scen("page_timeout.btsnoop"), "connection_failed")
    assert f.count == len(kf["connection_complete_page_timeout_all"]) == 2
    assert set(kf["connection_complete_page_timeout_all"]) <= set(f.frames)
    assert f.details["status"] == 0x04 and f.severity == "error"
    assert "Page Timeout" in f.message and "00:1B:66:4C:A2:31" in f.message


@pytest.mark.tshark
def test_connection_failed_matches_tshark_real() -> None:
    name = "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered"
    a = _real(name)
    rows = tshark_fields(
        SHARED_CAPTURES / name,
        ["frame.number"],
        "-Y",
        "bthci_evt.code == 0x03 && bthci_evt.status == 0x04",
    )
    want = {int(r[0]) for r in rows}
    [f] = _mine(a, "connection_failed")
    assert f.count == len(want) == 3 and want <= set(f.frames)


@pytest.mark.tshark
def test_le_failed_to_be_established_real() -> None:
    name = "durnerj_PoGo-Plus-BLE_btsnoop_hci.log"
    a = _real(name)
    rows = tshark_fields(SHARED_CAPTURES / name, ["frame.number"], "-Y", "bthci_evt.reason == 0x3e")
    [f] = _mine(a, "connection_failed")
    assert f.details["status"] == 0x3E and f.details["transport"] == "le"
    assert {int(r[0]) for r in rows} <= set(f.frames)


def test_cancelled_attempt_is_not_a_failure() -> None:
    a = _fresh("page_timeout.btsnoop")
    for c in a.connections:
        c.status, c.status_name = 0x02, "Unknown Connection Identifier"
    assert not [f for f in _rerun(a) if f.id == "connection_failed"]


# -- link_loss / a2dp_media_stall ------------------------------------------------------------------


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


# -- short_connection / periodic_disconnect -----------------------------------------------------


def test_periodic_disconnect_key_frames() -> None:
    a = _scen("periodic_disconnect.btsnoop")
    kf = ENTRIES["periodic_disconnect.btsnoop"]["ground_truth"]["key_frames"]
    [p] = _mine(a, "periodic_disconnect")
    assert p.frames == kf["disconnection_complete"]
    assert p.count == 3 and 28 <= p.details["mean_s"] <= 32  # "about 30 s after each setup"
    [s] = _mine(a, "short_connection")
    assert s.count == 3 and set(kf["disconnection_complete"]) <= set(s.frames)
    assert s.details["reason"] == 0x13


def test_short_connection_threshold() -> None:
    a = _fresh("periodic_disconnect.btsnoop")
    cfg = RuleConfig()
    cfg.set("short_connection", "max_duration_s", 20)
    assert not [f for f in _rerun(a, cfg) if f.id == "short_connection"]


@pytest.mark.tshark
def test_short_connection_real_not_after_our_disconnect() -> None:
    """bluffs: the buds end 4 links with 0x13 (tshark); three come after the phone itself
    closed every profile channel, the fourth while AVDTP was still up."""
    name = "francozappa_bluffs_sc-pixelbuds-aseries.pcapng"
    a = _real(name)
    rows = tshark_fields(
        SHARED_CAPTURES / name, ["frame.number", "bthci_evt.reason"], "-Y", "bthci_evt.code == 0x05"
    )
    assert {int(r[1], 16) for r in rows} == {0x13}
    [f] = _mine(a, "short_connection")
    assert f.frames[-1] in {int(r[0]) for r in rows}
    assert "AVDTP" in f.details["profiles"]


# -- pairing_failed / encryption_failed -----------------------------------------------------------


@pytest.mark.tshark
def test_smp_pairing_failed_reasons_match_tshark() -> None:
    name = "Matheus-Garbelini_sweyntooth_capture_cypress_psoc6_crash_llid.pcapng"
    a = _real(name)
    rows = tshark_fields(SHARED_CAPTURES / name, ["btsmp.reason"], "-Y", "btsmp.opcode == 0x05")
    want = Counter(int(r[0], 16) for r in rows if r and r[0])
    got = Counter({f.details["code"]: f.count for f in _mine(a, "pairing_failed")})
    assert got == want and sum(want.values()) == 14


def test_stale_bond_is_not_pairing_failed() -> None:
    for name in ("stale_bond_key_missing.btsnoop", "stale_bond_key_mismatch.btsnoop"):
        a = _scen(name)
        assert _mine(a, "auth_key_missing") and not _mine(a, "pairing_failed")
        assert not _mine(a, "encryption_failed")


def test_legacy_pin_refused_is_pairing_failed() -> None:
    a = _fresh("stale_bond_key_missing.btsnoop")
    p = a.pairing[0]
    p.link_key_request, p.method = "negative_reply", "legacy_pin"
    p.details.pin_negative_reply = True
    [f] = [f for f in _rerun(a) if f.id == "pairing_failed"]
    assert "PIN Code Request Negative Reply" in f.explanation and f.details["code"] == 0x06


def test_encryption_failed_injected() -> None:
    a = _fresh("pairing_ssp_just_works.btsnoop")
    kf = ENTRIES["pairing_ssp_just_works.btsnoop"]["ground_truth"]["key_frames"]
    frame = kf["encryption_change"]
    conn = a.connections[0]
    conn.encryption_failures.append(
        EncryptionFailure(
            frame,
            conn.start_time_us or 0,
            0x22,
            "LMP Response Timeout / LL Response Timeout",
            "Encryption Change",
        )
    )
    [f] = [f for f in _rerun(a) if f.id == "encryption_failed"]
    assert frame in f.frames and f.address == conn.address and f.connection == conn.id
    assert f.details.get("status", 0x22) == 0x22


# -- l2cap_connection_refused ---------------------------------------------------------------------


@pytest.mark.tshark
def test_l2cap_refusals_match_tshark() -> None:
    name = "francozappa_bluffs_sc-pixelbuds-aseries.pcapng"
    a = _real(name)
    rows = tshark_fields(
        SHARED_CAPTURES / name,
        ["frame.number", "btl2cap.result"],
        "-Y",
        "btl2cap.cmd_code == 0x03 && btl2cap.result >= 2",
    )
    want = {int(r[0]) for r in rows}
    fs = _mine(a, "l2cap_connection_refused")
    sup = [s for s in a.suppressed if s.rule == "l2cap_connection_refused"]
    # every refusal tshark sees is accounted for: reported, or recognised as benign with a reason
    got = {fr for f in fs for fr in f.frames} | {fr for s in sup for fr in s.frames}
    assert want <= got
    assert sum(f.count for f in fs) + len(sup) == len(want)
    assert all("AVCTP" in s.what for s in sup)
    assert not [f for f in fs if f.severity == "error"]  # collisions and teardowns, all of them


# -- sdp_error ------------------------------------------------------------------------------------


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


# -- codec_choice / high_audio_latency ------------------------------------------------------------


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


# -- hci_command_failed ---------------------------------------------------------------------------


@pytest.mark.tshark
def test_accept_connection_sent_twice_is_not_a_failure() -> None:
    name = "ap4y_iSAP_hci_dump.pklg"
    a = _real(name)
    rows = tshark_fields(SHARED_CAPTURES / name, ["frame.number"], "-Y", "bthci_evt.status == 0x0c")
    assert len(rows) == 2  # catalog: evt0x0f st0x0c ×2
    assert not [f for f in _mine(a, "hci_command_failed") if f.details["opcode"] == 0x0409]
    sup = [s for s in a.suppressed if "Accept Connection Request" in s.what]
    assert {int(r[0]) for r in rows} <= {fr for s in sup for fr in s.frames}


def test_startup_probes_are_silent_but_later_probes_info() -> None:
    a = _scen("pairing_ssp_just_works.btsnoop")  # Write SC Host Support → 0x01 at start-up
    assert any(tx.status == 0x01 for tx in a.hci_commands)
    assert not _mine(a, "hci_command_failed")
    o = _real("Swastik36_OPPO-Earbuds_btsnoop_205240.log")
    fs = _mine(o, "hci_command_failed")
    assert fs and all(f.severity == "info" for f in fs)  # Sniff Subrating 0x1A, LSTO 0x0C
    assert not [f for f in fs if f.details["opcode"] >> 10 == 0x3F]  # vendor: not judged


def test_create_connection_failure_is_not_hci_command_failed() -> None:
    assert not _mine(_scen("page_timeout.btsnoop"), "hci_command_failed")


# -- controller_reset / hardware_error ------------------------------------------------------------


def test_resets_at_start_and_at_power_off_are_silent() -> None:
    # motog2013: a Reset right after the last disconnect with nothing after it (power off);
    # aleksamarkoni: two Resets within 0.6 s of start-up while firmware loads (tshark: frames
    # 553, 559 follow the vendor patch download)
    assert not _mine(
        _real("2m_a2dp-captures_motog2013-lghbs730_btsnoop_hci.log"), "controller_reset"
    )
    assert not _mine(_real("aleksamarkoni_bluetooth_sample_btsnoop_hci.log"), "controller_reset")


def test_mid_capture_reset_and_hardware_error_injected() -> None:
    a = _fresh("a2dp_sbc_clean.btsnoop")
    conn = a.connections[0]
    t = (conn.start_time_us or 0) + 2_000_000
    later = [tx for tx in a.hci_commands if tx.time_us > t]
    assert later  # commands follow: the stack comes back up
    frame = later[0].frame - 1
    a.controller.resets.append(ControllerReset(frame, t))
    a.controller.hardware_errors.append(HardwareError(frame - 1, t, 2))
    fs = _rerun(a)
    [r] = [f for f in fs if f.id == "controller_reset"]
    assert r.frames == [frame] and conn.id in r.details["connections_dropped"]
    [h] = [f for f in fs if f.id == "hardware_error"]
    assert "0x02" in h.message and h.details["reset_frame"] == frame


# -- adv_interval_irregular -----------------------------------------------------------------------


def test_low_duty_scans_stay_silent() -> None:
    for n in (
        "le_adv_scan_duty_10.btsnoop",
        "le_adv_scan_duty_25.btsnoop",
        "le_adv_scan_duty_100.btsnoop",
    ):
        assert not _mine(_scen(n), "adv_interval_irregular")


def test_silent_advertiser_injected() -> None:
    a = _fresh("le_adv_scan_duty_100.btsnoop")
    fast = max(a.advertisers, key=lambda x: x.events)
    assert fast.interval_ms == pytest.approx(20, abs=1)  # ground truth: 20 ms + advDelay
    fast.events = fast.events // 10  # heard a tenth as often: silent for long stretches
    fast.gap_histogram = GapHistogram([0.0, 25.0, 50.0], [fast.events, 0])
    [f] = [f for f in _rerun(a) if f.id == "adv_interval_irregular"]
    assert f.address == fast.address and f.details["kind"] == "silences"


def test_stray_advertiser_injected() -> None:
    a = _fresh("le_adv_scan_duty_100.btsnoop")
    x = next(x for x in a.advertisers if x.interval_ms and abs(x.interval_ms - 100) < 2)
    # half the gaps at 150 ms: no k x (100 + 0..10 ms) fits
    x.gap_histogram = GapHistogram([0.0, 100.0, 110.0, 145.0, 155.0], [0, 40, 0, 40])
    [f] = [f for f in _rerun(a) if f.id == "adv_interval_irregular"]
    assert f.details["kind"] == "strays" and f.details["stray_gaps"] == 40


# -- capture_incomplete ---------------------------------------------------------------------------


@pytest.mark.tshark
def test_filtered_capture_incomplete_matches_tshark() -> None:
    name = "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered"
    a = _real(name)
    rows = tshark_fields(
        SHARED_CAPTURES / name, ["frame.number"], "-Y", "frame.cap_len < frame.len"
    )
    [f] = _mine(a, "capture_incomplete")
    assert f.details["truncated_frames"] == len(rows) == 86 and f.details["filtered"]
    assert not _mine(a, "a2dp_media_stall")  # filtered logs leave media out


@pytest.mark.tshark
def test_time_backwards_and_mid_connection() -> None:
    name = "mikeryan_crackle_numeric_pin.pcap"
    a = _real(name)
    [f] = _mine(a, "capture_incomplete")
    rows = tshark_fields(SHARED_CAPTURES / name, ["frame.time_epoch"], "-o", PPI_USER_DLT)
    ts = [float(r[0]) for r in rows]
    back = sum(1 for x, y in itertools.pairwise(ts) if y < x)
    assert back > 0 and abs(f.details["time_backwards"] - back) <= 0.05 * back
    # the TheoLestandi capture starts in the middle of an A2DP stream (CATALOG.md)
    [g] = _mine(_real("TheoLestandi_Projet_RP_capture.snoop"), "capture_incomplete")
    assert g.details["inferred_connections"] >= 1 and g.details["inferred_streams"] >= 1


def test_clean_scenarios_are_complete() -> None:
    for name, e in ENTRIES.items():
        if e["group"] == "clean":
            assert not _mine(_scen(name), "capture_incomplete"), name


# -- the real corpus: no rule crashes, and every finding names a frame that exists -------------


@pytest.mark.slow
def test_real_corpus_runs_clean() -> None:
    if not SHARED_CAPTURES.is_dir():
        pytest.skip("../shared/captures not present")
    for p in sorted(SHARED_CAPTURES.iterdir()):
        if not p.is_file() or p.suffix == ".md":
            continue
        try:
            a = _analysis(p)
        except Exception:
            continue
        _no_rule_errors(a)
        n = a.capture.frames
        for f in a.findings:
            if f.id in MINE:
                assert all(0 < fr <= n for fr in f.frames), (p.name, f.id, f.frames)
                assert f.message and f.explanation and f.fix
