"""Scenario captures: deterministic regeneration, clean tshark decode, manifest key frames.

tshark is the oracle for the key frames: every frame number the manifest names is read back
and must match an independent display filter written from the HCI / AVDTP / L2CAP specs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "captures" / "scenarios"
TSHARK = shutil.which("tshark")

# Key frame name -> display filter the frame must satisfy (HCI Vol 4 Part E 7.7, AVDTP 8.x:
# message_type 0 command / 2 accept / 3 reject, L2CAP Vol 3 Part A 4).
KEY_FRAME_FILTERS: dict[str, str] = {
    "extended_inquiry_result": "bthci_evt.code == 0x2f",
    "connection_complete": "bthci_evt.code == 0x03 && bthci_evt.status == 0",
    "connection_complete_page_timeout": "bthci_evt.code == 0x03 && bthci_evt.status == 0x04",
    "simple_pairing_complete": "bthci_evt.code == 0x36 && bthci_evt.status == 0",
    "link_key_notification": "bthci_evt.code == 0x18",
    "link_key_request": "bthci_evt.code == 0x17",
    "link_key_request_reply": "bthci_cmd.opcode == 0x040b",
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
    "at_ring": 'frame contains "RING"',
    "at_ata": 'frame contains "ATA"',
    "at_bcs_2": 'frame contains "+BCS: 2"',
    "at_clcc": 'frame contains "AT+CLCC"',
    "media_after_stall": "bta2dp",
    "first_advertising_report": "bthci_evt.code == 0x3e && bthci_evt.le_meta_subevent == 0x02",
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
    if TSHARK is None:
        pytest.skip("tshark not installed")
    cmd = [TSHARK, "-n", "-r", str(path), "-Y", display_filter]
    if fields:
        cmd += ["-T", "fields", *[a for f in fields for a in ("-e", f)]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)
    return [line for line in out.stdout.splitlines() if line.strip()]


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
    allowed = {
        "response_timeout", "late_response", "auth_key_missing", "firmware_changed",
        "a2dp_fallback_hfp", "avdtp_rejected", "a2dp_stream_not_started", "connection_failed",
        "link_loss", "short_connection", "periodic_disconnect", "pairing_failed",
        "encryption_failed", "l2cap_connection_refused", "sdp_error", "a2dp_media_stall",
        "codec_choice", "high_audio_latency", "hci_command_failed", "controller_reset",
        "hardware_error", "adv_interval_irregular", "capture_incomplete",
    }  # fmt: skip
    files = {e["file"] for e in manifest["captures"]}
    assert files == {p.name for p in COMMITTED.glob("*.btsnoop")}
    for entry in manifest["captures"]:
        assert set(entry["expected_findings"]) <= allowed, entry["file"]
        assert entry["description"]
        assert (COMMITTED / entry["file"]).stat().st_size < 2_000_000
        if entry["group"] == "faults":
            assert entry["expected_findings"], entry["file"]
        else:  # clean, voice, le: nothing wrong happens
            assert entry["expected_findings"] == [], entry["file"]


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
