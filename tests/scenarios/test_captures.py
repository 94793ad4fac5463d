"""Scenario captures: deterministic regeneration, clean tshark decode, manifest key frames.

tshark is the oracle for the key frames: every frame number the manifest names is read back
and must match an independent display filter written from the HCI / AVDTP / L2CAP specs.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.oracle import run_tshark

COMMITTED = REPO / "captures" / "scenarios"

# Key frame name -> display filter the frame must satisfy (HCI Vol 4 Part E 7.7, AVDTP 8.x:
# message_type 0 command / 2 accept / 3 reject, L2CAP Vol 3 Part A 4).
KEY_FRAME_FILTERS: dict[str, str] = {
    "smp_pairing_request": "btsmp.opcode == 0x01",
    "connection_complete_already_exists": "bthci_evt.code == 0x03 && bthci_evt.status == 0x0b",
    "connection_complete_incoming": "bthci_evt.code == 0x03 && bthci_evt.status == 0x00",
    "set_random_address_refused": "bthci_cmd.opcode == 0x2005",
    "remote_name_request_cancel": "bthci_cmd.opcode == 0x041a",
    "links_timed_out": "bthci_evt.code == 0x05 && bthci_evt.reason == 0x08",
    "smp_pairing_failed": "btsmp.opcode == 0x05 && btsmp.reason == 0x05",
    "le_create_connection_cancel": "bthci_cmd.opcode == 0x200e",
    "at_brsf_error": 'bthfp.at_cmd == "ERROR" && hci_h4.direction == 0',
    "rfcomm_dm": "btrfcomm.frame_type == 0x0f",
    "rfcomm_disc": "btrfcomm.frame_type == 0x43",
    "att_error_response": "btatt.opcode == 0x01 && btatt.error_code == 0x05",
    "att_read_request": "btatt.opcode == 0x0a",
    "extended_inquiry_result": "bthci_evt.code == 0x2f",
    "connection_complete": "bthci_evt.code == 0x03 && bthci_evt.status == 0",
    "connection_complete_page_timeout": "bthci_evt.code == 0x03 && bthci_evt.status == 0x04",
    "simple_pairing_complete": "bthci_evt.code == 0x36 && bthci_evt.status == 0",
    "link_key_notification": "bthci_evt.code == 0x18",
    "link_key_request": "bthci_evt.code == 0x17",
    "link_key_request_reply": "bthci_cmd.opcode == 0x040b",
    "link_key_request_negative_reply": "bthci_cmd.opcode == 0x040c",
    "user_confirmation_request": "bthci_evt.code == 0x33",
    "authentication_complete": "bthci_evt.code == 0x06 && bthci_evt.status == 0",
    "authentication_complete_failure": "bthci_evt.code == 0x06 && "
    "(bthci_evt.status == 0x05 || bthci_evt.status == 0x06)",
    "encryption_change": "bthci_evt.code == 0x08 && bthci_evt.status == 0",
    "disconnection_complete": "bthci_evt.code == 0x05",
    "disconnection_complete_timeout": "bthci_evt.code == 0x05 && bthci_evt.reason == 0x08",
    "sco_disconnection_complete": "bthci_evt.code == 0x05",
    "remote_version_before": "bthci_evt.code == 0x0c && bthci_evt.status == 0",
    "remote_version_after": "bthci_evt.code == 0x0c && bthci_evt.status == 0",
    "sco_connection_complete": "bthci_evt.code == 0x2c && bthci_evt.status == 0",
    "avdtp_discover": "btavdtp.signal_id == 0x01 && btavdtp.message_type == 0",
    "avdtp_get_all_capabilities": "btavdtp.signal_id == 0x0c && btavdtp.message_type == 0",
    "avdtp_set_configuration": "btavdtp.signal_id == 0x03 && btavdtp.message_type == 0",
    "avdtp_set_configuration_accept": "btavdtp.signal_id == 0x03 && btavdtp.message_type == 2",
    "avdtp_set_configuration_reject_first": "btavdtp.signal_id == 0x03 && "
    "btavdtp.message_type == 3 && btavdtp.error_code == 0x29",
    "avdtp_set_configuration_rejects": "btavdtp.signal_id == 0x03 && "
    "btavdtp.message_type == 3 && btavdtp.error_code == 0x29",
    "avdtp_open": "btavdtp.signal_id == 0x06 && btavdtp.message_type == 0",
    "avdtp_start": "btavdtp.signal_id == 0x07 && btavdtp.message_type == 0",
    "avdtp_suspend": "btavdtp.signal_id == 0x09 && btavdtp.message_type == 0",
    "avdtp_close": "btavdtp.signal_id == 0x08 && btavdtp.message_type == 0",
    "avdtp_delay_report": "btavdtp.signal_id == 0x0d && btavdtp.message_type == 0",
    "l2cap_connection_request_avrcp": "btl2cap.cmd_code == 0x02 && btl2cap.psm == 0x0017",
    "sdp_request": "btsdp.pdu == 0x06",
    "sdp_first_request": "btsdp.pdu == 0x06",
    "sdp_first_response": "btsdp.pdu == 0x07 && btsdp.continuation_state.length > 0",
    "sdp_last_response": "btsdp.pdu == 0x07 && !(btsdp.continuation_state.length > 0)",
    # AT frames as Wireshark's HFP / HSP dissectors parse them (HFP 1.8 4.34, HSP 1.2 4.8)
    "at_ring": '(bthfp.at_cmd == "RING" || bthsp.at_cmd == "RING") && hci_h4.direction == 0',
    "at_ata": 'bthfp.at_cmd == "A" && hci_h4.direction == 1',
    "at_bcs_2": 'bthfp.at_cmd == "+BCS" && bthfp.bcs.codec == 2 && hci_h4.direction == 0',
    "at_bcs_2_confirm": 'bthfp.at_cmd == "+BCS" && bthfp.bcs.codec == 2 && hci_h4.direction == 1',
    "at_ciev_call_1": 'bthfp.at_cmd == "+CIEV" && bthfp.ciev.indicator_index == 1 '
    '&& bthfp.data contains "+CIEV: 1,1"',
    "at_ckpd_answer": 'bthsp.at_cmd == "+CKPD" && bthsp.ckpd == 200 && hci_h4.direction == 1',
    "at_ckpd_hangup": 'bthsp.at_cmd == "+CKPD" && bthsp.ckpd == 200 && hci_h4.direction == 1',
    "sco_setup_legacy": "bthci_cmd.opcode == 0x0428",
    "esco_setup": "bthci_cmd.opcode == 0x043d",
    "avdtp_start_resume": "btavdtp.signal_id == 0x07 && btavdtp.message_type == 0",
    "avdtp_suspend_last": "btavdtp.signal_id == 0x09 && btavdtp.message_type == 0",
    "at_clcc": 'frame contains "AT+CLCC"',
    "media_after_stall": "bta2dp",
    "first_advertising_report": "bthci_evt.code == 0x3e && bthci_evt.le_meta_subevent == 0x02",
    # stack / controller faults (HCI 7.1.16, 7.3.2, 7.7.8, 7.7.16; SDP Vol 3 Part B 4.4.1, 4.6)
    "set_connection_encryption": "bthci_cmd.opcode == 0x0413",
    "encryption_change_failure": "bthci_evt.code == 0x08 && bthci_evt.status == 0x22",
    "sdp_service_attribute_request": "btsdp.pdu == 0x04 && hci_h4.direction == 0",
    "sdp_error_response": "btsdp.pdu == 0x01 && btsdp.error_code == 0x0002",
    "hci_reset_mid_capture": "bthci_cmd.opcode == 0x0c03",
    "connection_complete_after_reset": "bthci_evt.code == 0x03 && bthci_evt.status == 0",
    "hardware_error": "bthci_evt.code == 0x10 && bthci_evt.hardware_code == 0x01",
    "tracker_report_before_silence": "bthci_evt.le_meta_subevent == 0x02 && "
    "bthci_evt.bd_addr == c4:7c:8d:6a:20:05",
    "tracker_report_after_silence": "bthci_evt.le_meta_subevent == 0x02 && "
    "bthci_evt.bd_addr == c4:7c:8d:6a:20:05",
}


def _manifest() -> dict:
    path = COMMITTED / "manifest.json"
    if not path.exists():
        pytest.skip("captures/scenarios not generated")
    return json.loads(path.read_text())


def _captures() -> list[dict]:
    path = COMMITTED / "manifest.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())["captures"]


def _tshark(path: Path, display_filter: str, *fields: str) -> list[str]:
    args = ["-Y", display_filter]
    if fields:
        args += ["-T", "fields", *[a for f in fields for a in ("-e", f)]]
    return [line for line in run_tshark(path, *args, timeout=120).splitlines() if line.strip()]


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    from tests.scenarios.generate import generate

    manifest = _manifest()
    t0 = time.perf_counter()
    generate(tmp_path)
    elapsed = time.perf_counter() - t0
    assert elapsed < 60.0, f"generation took {elapsed:.1f} s"
    assert (tmp_path / "manifest.json").read_bytes() == (COMMITTED / "manifest.json").read_bytes()
    for entry in manifest["captures"]:
        name = entry["file"]
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name


def test_manifest_shape() -> None:
    manifest = _manifest()
    from analyzer.rules.base import load_all

    allowed = set(load_all())  # every registered rule id
    files = {e["file"] for e in manifest["captures"]}
    assert files == {p.name for p in COMMITTED.glob("*.btsnoop")}
    for entry in manifest["captures"]:
        assert set(entry["expected_findings"]) <= allowed, entry["file"]
        assert entry["description"]
        assert (COMMITTED / entry["file"]).stat().st_size < 2_000_000
        if entry["group"] == "faults":
            assert entry["expected_findings"], entry["file"]
        else:  # clean, voice, le: nothing goes wrong (informational findings only: a lesser
            # codec chosen, an advertiser switching interval)
            assert set(entry["expected_findings"]) <= {"codec_choice", "adv_interval_irregular"}


@pytest.mark.tshark
@pytest.mark.parametrize("entry", _captures(), ids=lambda e: e["file"])
def test_tshark_decodes_cleanly(entry: dict) -> None:
    path = COMMITTED / entry["file"]
    assert _tshark(path, "_ws.malformed || _ws.expert.severity == error") == []
    # the whole file is read: frame count agrees with the manifest
    assert len(_tshark(path, "frame", "frame.number")) == entry["frames"]


@pytest.mark.tshark
@pytest.mark.parametrize("entry", _captures(), ids=lambda e: e["file"])
def test_key_frames_are_what_they_claim(entry: dict) -> None:
    path = COMMITTED / entry["file"]
    checks: list[tuple[str, int, str]] = []
    for name, frames in entry["ground_truth"]["key_frames"].items():
        display = KEY_FRAME_FILTERS.get(name) or KEY_FRAME_FILTERS.get(name.removesuffix("_all"))
        assert display is not None, f"no oracle filter for key frame {name!r}"
        for number in frames if isinstance(frames, list) else [frames]:
            checks.append((name, number, display))
    if not checks:
        return
    combined = " || ".join(f"(frame.number == {n} && ({d}))" for _, n, d in checks)
    matched = {int(x) for x in _tshark(path, combined, "frame.number")}
    missing = [(name, n) for name, n, _ in checks if n not in matched]
    assert not missing, f"key frames not matching their tshark filter: {missing}"


@pytest.mark.tshark
def test_stale_bond_statuses_and_reject_codes() -> None:
    """Spot-check values straight from tshark against the spec error codes."""
    by_file = {e["file"]: e for e in _manifest()["captures"]}
    for name, status in (("stale_bond_key_missing", "0x06"), ("stale_bond_key_mismatch", "0x05")):
        entry = by_file[f"{name}.btsnoop"]
        n = entry["ground_truth"]["key_frames"]["authentication_complete_failure"]
        got = _tshark(COMMITTED / entry["file"], f"frame.number == {n}", "bthci_evt.status")
        assert got and int(got[0], 0) == int(status, 0)
    entry = by_file["a2dp_high_delay_report.btsnoop"]
    delays = _tshark(COMMITTED / entry["file"], "btavdtp.signal_id == 0x0d", "btavdtp.delay")
    assert delays and all(int(d) == 2500 for d in delays)


# -----------------------------------------------------------------------------------------
# Voice captures: what the SCO/eSCO link is, and whether a call exists (tshark as the oracle)
# -----------------------------------------------------------------------------------------
def _entry(name: str) -> tuple[Path, dict]:
    by_file = {e["file"]: e for e in _manifest()["captures"]}
    entry = by_file[f"{name}.btsnoop"]
    return COMMITTED / entry["file"], entry["ground_truth"]["key_frames"]


def _frames(path: Path, display_filter: str) -> list[int]:
    return [int(x) for x in _tshark(path, display_filter, "frame.number")]


def _sync_complete(path: Path) -> list[dict[str, int]]:
    """Synchronous Connection Complete events (HCI 7.7.35) with their parameters."""
    names = ["frame.number", "bthci_evt.status", "bthci_evt.sync_link_type", "bthci_evt.air_mode",
             "bthci_evt.sync_tx_interval", "bthci_evt.sync_rtx_window",
             "bthci_evt.sync_rx_pkt_len", "bthci_evt.sync_tx_pkt_len"]  # fmt: skip
    rows = _tshark(path, "bthci_evt.code == 0x2c", *names)
    return [
        {n.rsplit(".", 1)[1]: int(v, 0) for n, v in zip(names, row.split("\t"), strict=True)}
        for row in rows
    ]


def _sco_data(path: Path) -> dict[int, list[float]]:
    """Times of HCI SCO data packets (H4 type 3) by direction (0 sent, 1 received)."""
    out: dict[int, list[float]] = {0: [], 1: []}
    for row in _tshark(path, "hci_h4.type == 0x03", "hci_h4.direction", "frame.time_relative"):
        direction, t = row.split("\t")
        out[int(direction, 0)].append(float(t))
    return out


def _hfp_lines(path: Path) -> list[tuple[int, int, str, str, str]]:
    """(frame, direction, AT command, +CIEV indicator index, raw text) of every HFP frame."""
    rows = _tshark(path, "bthfp", "frame.number", "hci_h4.direction", "bthfp.at_cmd",
                   "bthfp.ciev.indicator_index", "bthfp.data")  # fmt: skip
    out = []
    for row in rows:
        f, d, cmd, idx, data = (row.split("\t") + [""] * 5)[:5]
        out.append((int(f), int(d, 0), cmd, idx, data))
    return out


def _call_indicator_indices(lines: list[tuple[int, int, str, str, str]]) -> set[int]:
    """1-based +CIEV indices of "call" / "callsetup" from the AG's +CIND test response."""
    test = next(data for _, _, cmd, _, data in lines if cmd == "+CIND" and '("' in data)
    names = [n.lower() for n in re.findall(r'\("([^"]+)"', test)]
    return {i + 1 for i, n in enumerate(names) if n in ("call", "callsetup", "call_setup")}


def _assert_rejects(path: Path) -> None:
    codes = _tshark(path, "btavdtp.signal_id == 0x03 && btavdtp.message_type == 3",
                    "btavdtp.error_code")  # fmt: skip
    assert len(codes) == 3 and all(int(c, 0) == 0x29 for c in codes), codes


@pytest.mark.tshark
def test_fallback_is_esco_audio_without_a_call() -> None:
    """a2dp_fallback_hfp ground truth: A2DP rejected, then eSCO audio with no call at all."""
    path, kf = _entry("a2dp_rejected_hfp_fallback")
    _assert_rejects(path)
    lines = _hfp_lines(path)
    assert lines, "HFP not dissected"
    call_idx = _call_indicator_indices(lines)
    assert call_idx == {1, 2}
    commands = {cmd for _, _, cmd, _, _ in lines}
    assert not commands & {"RING", "A", "D", "+BLDN", "+CHUP"}, commands
    cievs = [int(idx) for _, _, cmd, idx, _ in lines if cmd == "+CIEV"]
    assert cievs and not set(cievs) & call_idx, cievs  # a +CIEV, but never call/callsetup
    bcs = [(d, f) for f, d, cmd, _, _ in lines if cmd == "+BCS"]
    assert [d for d, _ in bcs] == [0, 1]  # +BCS: 2 from the AG, AT+BCS=2 from the HF
    (sco,) = _sync_complete(path)
    assert sco["number"] == kf["sco_connection_complete"] > kf["at_bcs_2_confirm"]
    assert (sco["status"], sco["sync_link_type"], sco["air_mode"]) == (0, 0x02, 0x03)  # eSCO mSBC
    assert kf["avdtp_set_configuration_rejects"][-1] < kf["esco_setup"] < sco["number"]
    data = _sco_data(path)
    for times in data.values():
        assert len(times) > 500 and times[-1] - times[0] >= 5.0


@pytest.mark.tshark
def test_rejected_then_call_has_a_call() -> None:
    path, kf = _entry("a2dp_rejected_then_call")
    _assert_rejects(path)
    lines = _hfp_lines(path)
    call_idx = _call_indicator_indices(lines)
    sco = _sync_complete(path)[0]
    assert (sco["sync_link_type"], sco["air_mode"]) == (0x02, 0x02)  # eSCO, CVSD
    ring = [f for f, d, cmd, _, _ in lines if cmd == "RING" and d == 0]
    ata = [f for f, d, cmd, _, _ in lines if cmd == "A" and d == 1]
    call_on = [
        f
        for f, _, cmd, _, data in lines
        if cmd == "+CIEV"
        and (m := re.search(r"\+CIEV: (\d+),(\d+)", data))
        and int(m[1]) in call_idx
        and int(m[2]) > 0
    ]
    assert ring and ata and call_on
    assert ring[0] < ata[0] < sco["number"] and call_on[0] < sco["number"]
    assert kf["at_ring"] == ring[0] and kf["at_ata"] == ata[0]


@pytest.mark.tshark
def test_hsp_call_is_legacy_sco_hv3_cvsd() -> None:
    path, kf = _entry("hsp_call_sco")
    # SDP: headset record (0x1108, profile v1.2) and the phone's AG record (0x1112)
    sdp = _tshark(path, "btsdp.pdu == 0x07", "hci_h4.direction",
                  "btsdp.data_element.value.uuid_16", "btsdp.protocol.version")  # fmt: skip
    by_dir = {int(d, 0): (u.split(","), v) for d, u, v in (row.split("\t") for row in sdp)}
    assert by_dir[1][0][:2] == ["0x1131", "0x1108"] and by_dir[1][1] == "0x0102", sdp
    assert by_dir[0][0][0] == "0x1112" and by_dir[0][1] == "0x0102", sdp
    # legacy Setup Synchronous Connection (HCI 7.1.26): HV3 allowed, CVSD air coding
    setup = _tshark(path, "bthci_cmd.opcode == 0x0428", "frame.number",
                    "bthci_cmd.sco_packet_type.hv3", "bthci_cmd.sco_packet_type.ev3",
                    "bthci_cmd.voice.air_coding_format")  # fmt: skip
    assert len(setup) == 1
    number, hv3, ev3, air = setup[0].split("\t")
    assert int(number) == kf["sco_setup_legacy"]
    assert (hv3, ev3, int(air, 0)) == ("1", "0", 0)  # HV3 only, no eSCO; CVSD
    (sco,) = _sync_complete(path)
    assert sco["number"] == kf["sco_connection_complete"]
    # SCO, HV3: Tsco 6 slots, no retransmission window, 30-byte packets, CVSD air mode
    assert (sco["status"], sco["sync_link_type"], sco["air_mode"]) == (0, 0x00, 0x02)
    assert (sco["sync_tx_interval"], sco["sync_rtx_window"]) == (6, 0)
    assert sco["sync_rx_pkt_len"] == sco["sync_tx_pkt_len"] == 30
    # HSP AT: RING from the AG, AT+CKPD=200 from the headset, then SCO; a second press ends it
    hsp = [row.split("\t") for row in _tshark(path, "bthsp", "frame.number",
                                               "hci_h4.direction", "bthsp.at_cmd")]  # fmt: skip
    rings = [int(f) for f, d, c in hsp if c == "RING" and int(d, 0) == 0]
    ckpd = [int(f) for f, d, c in hsp if c == "+CKPD" and int(d, 0) == 1]
    assert rings and len(ckpd) == 2
    assert rings[0] < ckpd[0] < sco["number"] < ckpd[1]
    assert _tshark(path, "bthfp") == []  # HSP only, no HFP
    data = _sco_data(path)
    for times in data.values():
        assert len(times) > 1000 and times[-1] - times[0] >= 5.0
    lengths = {int(x) for x in _tshark(path, "hci_h4.type == 0x03", "bthci_sco.length")}
    assert lengths == {30}


@pytest.mark.tshark
def test_a2dp_then_call_suspends_streaming_around_the_call() -> None:
    path, kf = _entry("a2dp_then_call_clean")
    starts = _frames(path, "btavdtp.signal_id == 0x07 && btavdtp.message_type == 0")
    suspends = _frames(path, "btavdtp.signal_id == 0x09 && btavdtp.message_type == 0")
    assert len(starts) == len(suspends) == 2
    (sco,) = _sync_complete(path)
    assert (sco["sync_link_type"], sco["air_mode"]) == (0x02, 0x03)  # eSCO, mSBC (transparent)
    sco_end = kf["sco_disconnection_complete"]
    assert starts[0] < suspends[0] < kf["at_ring"] < kf["at_ata"] < sco["number"]
    assert sco["number"] < sco_end < starts[1] < suspends[1]
    assert (kf["avdtp_start"], kf["avdtp_start_resume"]) == (starts[0], starts[1])
    media = _frames(path, "bta2dp")
    assert any(starts[0] < m < suspends[0] for m in media)
    assert any(starts[1] < m < suspends[1] for m in media)
    assert not any(suspends[0] < m < starts[1] for m in media)  # nothing streams in the call


# -----------------------------------------------------------------------------------------
# Stack and controller faults: what the frames say, read with tshark
# -----------------------------------------------------------------------------------------
def _rows(path: Path, display_filter: str, *fields: str) -> list[list[str]]:
    return [row.split("\t") for row in _tshark(path, display_filter, *fields)]


@pytest.mark.tshark
def test_encryption_fails_with_lmp_response_timeout() -> None:
    """Authentication with the stored key succeeds (HCI 7.7.6), then Set Connection
    Encryption (7.1.16) ends with Encryption Change status 0x22 LMP Response Timeout (Vol 1
    Part F) after the 30 s LMP response timeout (Vol 2 Part C 5.2); never status 0."""
    path, kf = _entry("encryption_lmp_timeout")
    (reply,) = _frames(path, "bthci_cmd.opcode == 0x040b")  # the stored key was offered
    (auth,) = _rows(path, "bthci_evt.code == 0x06", "frame.number", "bthci_evt.status")
    (cmd,) = _rows(path, "bthci_cmd.opcode == 0x0413", "frame.number", "frame.time_relative",
                   "bthci_cmd.encryption_enable")  # fmt: skip
    (enc,) = _rows(path, "bthci_evt.code == 0x08", "frame.number", "frame.time_relative",
                   "bthci_evt.status")  # fmt: skip
    assert int(auth[1], 0) == 0 and reply < int(auth[0]) < int(cmd[0]) < int(enc[0])
    assert int(cmd[2], 0) == 1
    assert int(enc[2], 0) == 0x22
    assert 29.9 <= float(enc[1]) - float(cmd[1]) <= 30.1
    assert (kf["set_connection_encryption"], kf["encryption_change_failure"]) == (
        int(cmd[0]),
        int(enc[0]),
    )


@pytest.mark.tshark
def test_sdp_error_for_a_stale_record_handle() -> None:
    """ServiceAttributeRequest for record 0x00010001 answered by SDP_ErrorResponse 0x0002
    with the same transaction id (Vol 3 Part B 4.4.1, 4.6); the fallback
    ServiceSearchAttribute finds the sink at 0x00010005."""
    path, kf = _entry("sdp_stale_record_handle")
    rows = _rows(path, "btsdp", "frame.number", "hci_h4.direction", "btsdp.pdu", "btsdp.tid",
                 "btsdp.error_code", "btsdp.service_record_handle")  # fmt: skip
    req = [r for r in rows if int(r[2], 0) == 0x04]
    err = [r for r in rows if int(r[2], 0) == 0x01]
    assert len(req) == 1 and len(err) == 1
    assert int(req[0][1], 0) == 0 and int(req[0][5], 0) == 0x00010001
    assert int(err[0][1], 0) == 1 and int(err[0][4], 0) == 0x0002 and err[0][3] == req[0][3]
    assert (kf["sdp_service_attribute_request"], kf["sdp_error_response"]) == (
        int(req[0][0]),
        int(err[0][0]),
    )
    later = [r for r in rows if int(r[2], 0) == 0x07 and int(r[0]) > int(err[0][0])]
    assert later and later[0][5] == "0x00010005"


def _check_restart(path: Path, kf: dict, after: int = 0) -> int:
    """An HCI Reset (7.3.2) after a connection came up, with no Disconnection Complete for
    it (the controller drops the link on Reset), then a new start-up and a new connection."""
    resets = _frames(path, "bthci_cmd.opcode == 0x0c03")
    assert resets[0] == 1 and len(resets) == 2, resets  # start-up, then mid-capture
    reset = resets[1]
    assert reset == kf["hci_reset_mid_capture"] and reset > after
    conns = _frames(path, "bthci_evt.code == 0x03 && bthci_evt.status == 0")
    assert len(conns) == 2 and conns[0] < reset < conns[1]
    assert kf["connection_complete_after_reset"] == conns[1]
    assert not [f for f in _frames(path, "bthci_evt.code == 0x05") if f < reset]
    acl = _frames(path, "hci_h4.type == 0x02")
    assert sum(conns[0] < f < reset for f in acl) > 100  # the link carried traffic
    # the stack initialises the controller again before paging
    init = _frames(path, "bthci_cmd.opcode == 0x1002 || bthci_cmd.opcode == 0x1009")
    assert any(reset < f < conns[1] for f in init)
    return reset


@pytest.mark.tshark
def test_stack_restart_resets_the_controller_mid_capture() -> None:
    path, kf = _entry("stack_restart_mid_stream")
    _check_restart(path, kf)
    assert _frames(path, "bthci_evt.code == 0x10") == []


@pytest.mark.tshark
def test_hardware_error_then_reset() -> None:
    """Hardware Error event (7.7.16) code 0x01; the next command the host sends is Reset."""
    path, kf = _entry("hardware_error_mid_stream")
    (hw,) = _rows(path, "bthci_evt.code == 0x10", "frame.number", "bthci_evt.hardware_code")
    assert int(hw[1], 0) == 0x01 and int(hw[0]) == kf["hardware_error"]
    reset = _check_restart(path, kf, after=int(hw[0]))
    first_cmd_after = min(f for f in _frames(path, "hci_h4.type == 0x01") if f > int(hw[0]))
    assert first_cmd_after == reset


@pytest.mark.tshark
def test_silent_advertiser_stretches() -> None:
    """Advertising reports (7.7.65.2) per address: the tracker has silent stretches of ~4 s
    while every other advertiser is heard throughout them at its own interval."""
    path, kf = _entry("le_adv_silent_advertiser")
    rows = _rows(path, "bthci_evt.le_meta_subevent == 0x02", "frame.number",
                 "frame.time_relative", "bthci_evt.bd_addr")  # fmt: skip
    by_addr: dict[str, list[tuple[int, float]]] = {}
    for f, t, addr in rows:
        by_addr.setdefault(addr, []).append((int(f), float(t)))
    assert len(by_addr) == 5
    tracker = by_addr.pop("c4:7c:8d:6a:20:05")
    silences = [(a, b) for a, b in itertools.pairwise(tracker) if b[1] - a[1] > 2.0]
    assert len(silences) >= 5
    assert all(3.9 <= b[1] - a[1] <= 4.2 for a, b in silences)
    assert kf["tracker_report_before_silence"] == [a[0] for a, _ in silences]
    assert kf["tracker_report_after_silence"] == [b[0] for _, b in silences]
    for reports in by_addr.values():  # the others: no gap over 1.2 s (largest interval 1 s)
        times = [t for _, t in reports]
        assert max(b - a for a, b in itertools.pairwise(times)) < 1.2
        for a, b in silences:
            assert any(a[1] < t < b[1] for t in times)
