"""Issue 5 acceptance on the scenario captures: the manifest's ground truth comes out of the rebuilt
sessions (``analyze(path).to_json()``, one analysis per capture).

Facts checked: the configured A2DP codec (A2DP 1.3 §4.3, vendor ids for LDAC), SET_CONFIGURATION
rejects (AVDTP 1.3 §8.5.5: signal, error code, frames), remote LMP version / subversion (Read Remote
Version Information, Core v5.4 Vol 4 Part E §7.7.12) and Device ID version (DI 1.3 §5) before and
after a firmware update, key frames (Authentication Complete with its status, Page Timeout
Connection Completes, Disconnection Completes with their reasons, AVDTP commands), the SSP
association model (Core Vol 3 Part C §5.2.2.6), the SDP continuation count (Vol 3 Part B §4.3),
delay reports (AVDTP 1.3 §8.19) and the media packet count (tshark's count of ``bta2dp`` frames).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

from analyzer.analysis import analyze
from tests.conftest import REPO
from tests.oracle import tshark_fields

SCENARIOS = REPO / "captures" / "scenarios"
MANIFEST = SCENARIOS / "manifest.json"


def _entries() -> list[dict[str, Any]]:
    if not MANIFEST.exists():
        return []
    return list(json.loads(MANIFEST.read_text())["captures"])


ENTRIES = _entries()


def _with(*keys: str) -> list[Any]:
    """Manifest entries whose ground truth has every dotted key, as pytest params."""
    out = []
    for e in ENTRIES:
        gt: Any = e["ground_truth"]
        ok = True
        for k in keys:
            for part in k.split("."):
                if not isinstance(gt, dict) or part not in gt:
                    ok = False
                    break
                gt = gt[part]
            gt = e["ground_truth"]
        if ok:
            out.append(pytest.param(e, id=e["file"].removesuffix(".btsnoop")))
    return out


@cache
def _json(file: str) -> dict[str, Any]:
    return analyze(SCENARIOS / file).to_json()


def _frames(v: int | list[int]) -> list[int]:
    return v if isinstance(v, list) else [v]


def _injected_status(entry: dict[str, Any]) -> int:
    """The HCI error code the scenario injected, as its manifest text names it ("0x06")."""
    for text in entry["ground_truth"]["injected_faults"]:
        m = re.search(r"0x([0-9a-fA-F]{2})", text)
        if m:
            return int(m.group(1), 16)
    raise AssertionError(f"no status in {entry['ground_truth']['injected_faults']}")


def _signal(j: dict[str, Any], frame: int) -> dict[str, Any]:
    hits = [s for s in j["avdtp"]["signals"] if frame in (s["command_frame"], s["response_frame"])]
    assert len(hits) == 1, f"no single AVDTP signal at frame {frame}"
    return hits[0]


# -- A2DP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", _with("a2dp.codec"))
def test_configured_codec(entry: dict[str, Any]) -> None:
    a2dp = entry["ground_truth"]["a2dp"]
    j = _json(entry["file"])
    (stream,) = j["avdtp"]["streams"]
    assert stream["codec"].lower() == a2dp["codec"]
    assert stream["codec_params"].get("vendor_id") == a2dp.get("vendor_id")
    assert stream["codec_params"].get("vendor_codec_id") == a2dp.get("vendor_codec_id")
    kf = entry["ground_truth"]["key_frames"]
    if "avdtp_set_configuration" in kf:
        assert stream["configure_frame"] == kf["avdtp_set_configuration"]


@pytest.mark.parametrize("entry", _with("a2dp.rejected"))
def test_set_configuration_rejects(entry: dict[str, Any]) -> None:
    expected = entry["ground_truth"]["a2dp"]["rejected"]
    frames = _frames(entry["ground_truth"]["key_frames"]["avdtp_set_configuration_rejects"])
    j = _json(entry["file"])
    rejects = [s for s in j["avdtp"]["signals"] if s["response"] == "reject"]
    assert [s["signal"] for s in rejects] == ["SET_CONFIGURATION"] * len(expected)
    assert [s["response_frame"] for s in rejects] == frames
    assert [s["error_code"] for s in rejects] == [r["error_code"] for r in expected]
    assert [s["details"]["codec"].lower() for s in rejects] == [r["codec"] for r in expected]
    assert not j["avdtp"]["streams"]  # nothing was configured


@pytest.mark.parametrize("entry", _with("a2dp.delay_report_0_1ms"))
def test_delay_reports(entry: dict[str, Any]) -> None:
    gt = entry["ground_truth"]
    j = _json(entry["file"])
    (stream,) = j["avdtp"]["streams"]
    reports = stream["delay_reports"]
    assert reports, "no delay report"
    assert reports[0]["frame"] == gt["key_frames"]["avdtp_delay_report"]
    assert {r["delay_ms"] for r in reports} == {gt["a2dp"]["delay_report_0_1ms"] / 10}


AVDTP_KEYS = {  # key frame name → (signal id, command or accept frame)
    "avdtp_discover": (0x01, "command_frame"),
    "avdtp_get_all_capabilities": (0x0C, "command_frame"),
    "avdtp_set_configuration": (0x03, "command_frame"),
    "avdtp_set_configuration_accept": (0x03, "response_frame"),
    "avdtp_open": (0x06, "command_frame"),
    "avdtp_start": (0x07, "command_frame"),
    "avdtp_start_resume": (0x07, "command_frame"),
    "avdtp_suspend_last": (0x09, "command_frame"),
    "avdtp_close": (0x08, "command_frame"),
    "avdtp_suspend": (0x09, "command_frame"),
    "avdtp_delay_report": (0x0D, "command_frame"),
}


@pytest.mark.parametrize("entry", _with("key_frames"))
def test_avdtp_key_frames(entry: dict[str, Any]) -> None:
    keys = {k: v for k, v in entry["ground_truth"]["key_frames"].items() if k in AVDTP_KEYS}
    if not keys:
        pytest.skip("no AVDTP key frames")
    j = _json(entry["file"])
    for key, frame in keys.items():
        sid, where = AVDTP_KEYS[key]
        s = _signal(j, frame)
        assert (s["signal_id"], s[where]) == (sid, frame), key


@pytest.mark.parametrize("entry", _with("a2dp.stall_s"))
def test_media_stall(entry: dict[str, Any]) -> None:
    gt = entry["ground_truth"]
    (stream,) = _json(entry["file"])["avdtp"]["streams"]
    gaps = [g for g in stream["media_gaps"] if g["gap_ms"] >= 500]
    assert len(gaps) == 1
    assert gaps[0]["to_frame"] == gt["key_frames"]["media_after_stall"]
    assert gaps[0]["gap_ms"] == pytest.approx(gt["a2dp"]["stall_s"] * 1000, abs=0.5)


A2DP_FILES = [
    e for e in ENTRIES if e["file"].startswith("a2dp_") or e["file"] == "link_loss.btsnoop"
]


@pytest.mark.tshark
@pytest.mark.parametrize("entry", [pytest.param(e, id=e["file"]) for e in A2DP_FILES])
def test_media_packet_count(entry: dict[str, Any]) -> None:
    rows = tshark_fields(SCENARIOS / entry["file"], ["frame.number"], "-Y", "bta2dp || rtp")
    ours = sum(s["media_packets"] for s in _json(entry["file"])["avdtp"]["streams"])
    assert ours == len(rows)


# -- devices, firmware -------------------------------------------------------------------------


@pytest.mark.parametrize("entry", _with("devices"))
def test_device_versions(entry: dict[str, Any]) -> None:
    j = _json(entry["file"])
    devs = {d["address"]: d for d in j["devices"]}
    firmware = entry["ground_truth"].get("firmware")
    checked = 0
    for addr, truth in entry["ground_truth"]["devices"].items():
        d = devs.get(addr)
        if d is None:
            continue  # e.g. LE scan captures: no classic link, no version exchange
        if d["role"] == "local" or d["versions_seen"]:
            sub = firmware["lmp_subversion_after"] if firmware and d["role"] != "local" else None
            assert d["lmp_version"] == truth["lmp_version"], addr
            assert d["lmp_subversion"] == (sub or truth["lmp_subversion"]), addr
            assert d["manufacturer"] == truth["company_id"], addr
            checked += 1
    if not checked:
        pytest.skip("no version information exchanged")


@pytest.mark.parametrize("entry", _with("firmware"))
def test_firmware_update_versions(entry: dict[str, Any]) -> None:
    gt = entry["ground_truth"]
    fw, kf = gt["firmware"], gt["key_frames"]
    j = _json(entry["file"])
    (remote,) = [d for d in j["devices"] if d["role"] != "local"]
    seen = remote["versions_seen"]
    assert [(v["frame"], v["lmp_subversion"]) for v in seen] == [
        (kf["remote_version_before"], fw["lmp_subversion_before"]),
        (kf["remote_version_after"], fw["lmp_subversion_after"]),
    ]
    assert seen[0]["connection"] != seen[1]["connection"]
    ids = remote["device_ids_seen"]
    assert [d["version"] for d in ids] == [
        fw["device_id_version_before"],
        fw["device_id_version_after"],
    ]
    assert [d["connection"] for d in ids] == [v["connection"] for v in seen]


# -- pairing and authentication ----------------------------------------------------------------


@pytest.mark.parametrize("entry", _with("pairing.method"))
def test_pairing_method(entry: dict[str, Any]) -> None:
    gt = entry["ground_truth"]
    j = _json(entry["file"])
    done = [p for p in j["pairing"] if p["outcome"] == "success"]
    assert [p["method"] for p in done] == [gt["pairing"]["method"]]
    assert done[0]["frames"][-1] == gt["key_frames"]["authentication_complete"]


@pytest.mark.parametrize("entry", _with("key_frames.authentication_complete_failure"))
def test_authentication_failure(entry: dict[str, Any]) -> None:
    frame = entry["ground_truth"]["key_frames"]["authentication_complete_failure"]
    status = _injected_status(entry)
    failed = [p for p in _json(entry["file"])["pairing"] if p["outcome"] == "failure"]
    assert [(p["frames"][-1], p["status"]) for p in failed] == [(frame, status)]
    assert failed[0]["link_key_request"] == "reply"  # a stored key the peer no longer accepts


@pytest.mark.parametrize("entry", _with("key_frames.authentication_complete"))
def test_authentication_complete(entry: dict[str, Any]) -> None:
    frame = entry["ground_truth"]["key_frames"]["authentication_complete"]
    ok = [p for p in _json(entry["file"])["pairing"] if p["frames"][-1] == frame]
    assert len(ok) == 1 and ok[0]["outcome"] == "success" and ok[0]["status"] == 0


# -- connections ---------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", _with("key_frames.connection_complete_page_timeout"))
def test_page_timeouts(entry: dict[str, Any]) -> None:
    kf = entry["ground_truth"]["key_frames"]
    frames = _frames(
        kf.get("connection_complete_page_timeout_all", kf["connection_complete_page_timeout"])
    )
    conns = _json(entry["file"])["connections"]
    fails = [(c["start_frame"], c["status"]) for c in conns if c["status"] != 0]
    assert fails == [(f, 0x04) for f in frames]  # 0x04 Page Timeout (Vol 1 Part F §2)
    assert all(c["request_frame"] is not None for c in conns if c["status"] != 0)


DISCONNECT_KEYS = {  # key frame name → transports the closed link may have
    "disconnection_complete": ("br_edr",),
    "disconnection_complete_timeout": ("br_edr",),
    "sco_disconnection_complete": ("sco", "esco"),
}


@pytest.mark.parametrize("entry", _with("key_frames"))
def test_disconnection_frames(entry: dict[str, Any]) -> None:
    """Every Disconnection Complete the manifest names closes one of our connections, of the
    right transport (tshark checks the full list, below)."""
    kf = entry["ground_truth"]["key_frames"]
    keys = [k for k in DISCONNECT_KEYS if k in kf]
    if not keys:
        pytest.skip("no disconnection key frame")
    conns = _json(entry["file"])["connections"]
    ended = {c["end_frame"]: c for c in conns if c["disconnect_reason"] is not None}
    for k in keys:
        for f in _frames(kf[k]):
            assert f in ended, f"{k} {f}: no connection closed there"
            assert ended[f]["transport"] in DISCONNECT_KEYS[k], k
    if "disconnection_complete_timeout" in kf:  # link supervision timeout
        c = ended[kf["disconnection_complete_timeout"]]
        assert c["disconnect_reason"] == _injected_status(entry) == 0x08
    if entry["file"].startswith("periodic_disconnect"):  # remote user terminated, every time
        assert {c["disconnect_reason"] for c in conns} == {_injected_status(entry)}


@pytest.mark.tshark
@pytest.mark.parametrize("entry", _with("key_frames"))
def test_disconnect_reasons_against_tshark(entry: dict[str, Any]) -> None:
    rows = tshark_fields(
        SCENARIOS / entry["file"],
        ["frame.number", "bthci_evt.connection_handle", "bthci_evt.reason"],
        "-Y",
        "bthci_evt.code == 0x05 && bthci_evt.status == 0",
    )
    expected = [(int(f), int(h, 16), int(r, 16)) for f, h, r in rows]
    conns = _json(entry["file"])["connections"]
    ours = sorted(
        (c["end_frame"], c["handle"], c["disconnect_reason"])
        for c in conns
        if c["disconnect_reason"] is not None
    )
    assert ours == expected


# -- SDP and unanswered / late requests ---------------------------------------------------------


@pytest.mark.parametrize("entry", _with("sdp.requests"))
def test_sdp_continuation(entry: dict[str, Any]) -> None:
    gt = entry["ground_truth"]
    sdp, kf = gt["sdp"], gt["key_frames"]
    txs = [t for t in _json(entry["file"])["sdp"] if t["continuations"]]
    assert len(txs) == 1
    tx = txs[0]
    assert tx["continuations"] == sdp["requests"] - 1
    assert len(tx["frames"][0::2]) == sdp["requests"]
    assert len(tx["frames"][1::2]) == sdp["responses"]
    assert len(tx["records"]) == sdp["records"]
    assert tx["request_frame"] == kf["sdp_first_request"]
    assert tx["frames"][1] == kf["sdp_first_response"]
    assert tx["response_frame"] == kf["sdp_last_response"]


@pytest.mark.parametrize(
    "entry", [pytest.param(e, id=e["file"]) for e in ENTRIES if e["file"].startswith("requests_")]
)
def test_unanswered_and_late_requests(entry: dict[str, Any]) -> None:
    kf = entry["ground_truth"]["key_frames"]
    late = "late" in entry["file"]
    j = _json(entry["file"])
    (sdp,) = [t for t in j["sdp"] if t["request_frame"] == kf["sdp_request"]]
    (sig,) = [
        s for s in j["avdtp"]["signals"] if s["command_frame"] == kf["avdtp_get_all_capabilities"]
    ]
    assert sig["signal_id"] == 0x0C
    for latency, response in (
        (sdp["latency_ms"], sdp["response_frame"]),
        (sig["latency_ms"], sig["response_frame"]),
    ):
        if late:  # the manifest: answered after 8.5 s
            assert response is not None and latency == pytest.approx(8500, abs=10)
        else:
            assert response is None and latency is None
