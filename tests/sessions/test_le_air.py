"""LE connections rebuilt from air captures: one connection per CONNECT_IND / AUX_CONNECT_REQ
(Core v5.4 Vol 6 Part B §2.3.3.1, §4.5), even when a later one reuses the access address; an
LL_TERMINATE_IND (§2.4.2.3, §5.1.1) ends it with a named reason (Vol 1 Part F); encryption,
sequence numbers and L2CAP reassembly start afresh in each connection.

tshark is the oracle for the real captures; the synthetic capture is built from the spec layouts.
"""

from __future__ import annotations

import re
import struct
from bisect import bisect_left
from functools import cache
from pathlib import Path

import pytest

from analyzer.analysis import Analysis, analyze
from analyzer.model import Connection
from tests import builders as b
from tests.conftest import shared_capture
from tests.oracle import tshark_pdml, tshark_where

STM = "Matheus-Garbelini_sweyntooth_noncompliance_stm_wb55_non_zero_ediv_rand_SC.pcapng"
AIR_CAPTURES = [
    "mikeryan_crackle_le_secure_connections.pcapng",  # DLT 256
    "mikeryan_crackle_numeric_pin.pcap",  # DLT 192
    "mikeryan_crackle_pairing_and_ltk_exchange.pcap",  # DLT 192
    "Matheus-Garbelini_sweyntooth_capture_cypress_psoc6_crash_llid.pcapng",  # DLT 272
    "Matheus-Garbelini_sweyntooth_noncompliance_nxp_invalid_hop_interval_sniffer.pcapng",
    STM,
    "AleBonora3_Tesi_BLE_Lv4_passkey.pcapng",  # DLT 272
    "AleBonora3_Tesi_BLE_capture.pcapng",
]


_path = shared_capture


@cache
def _analysis(name: str) -> Analysis:
    return analyze(_path(name))


def _tshark(name: str, display: str, *fields: str) -> list[list[str]]:
    return tshark_where(_path(name), display, *fields)


def _air(a: Analysis) -> list[Connection]:
    return [c for c in a.connections if c.id.startswith("ll-")]


def _aa(c: Connection) -> int:
    """The access address in an air connection's id (``ll-<aa>-<n>``)."""
    return int(c.id.split("-")[1], 16)


@cache
def _oracle(name: str) -> dict[str, object]:
    """tshark's view: CONNECT_INDs, LL data frames, LL_TERMINATE_INDs and SMP frames per AA."""
    connects: dict[int, list[int]] = {}
    for fr, aa in _tshark(
        name,
        "btle.advertising_header.pdu_type == 0x05",
        "frame.number",
        "btle.link_layer_data.access_address",
    ):
        if aa:
            connects.setdefault(int(aa, 16), []).append(int(fr))
    data: dict[int, list[int]] = {}
    for fr, aa in _tshark(name, "btle.data_header", "frame.number", "btle.access_address"):
        data.setdefault(int(aa, 16), []).append(int(fr))
    terms = {
        int(fr): (int(aa, 16), int(code, 16))
        for fr, aa, code in _tshark(
            name,
            "btle.control_opcode == 0x02",
            "frame.number",
            "btle.access_address",
            "btle.control.error_code",
        )
        if code
    }
    smp = [
        (int(fr), int(aa, 16))
        for fr, aa in _tshark(name, "btsmp", "frame.number", "btle.access_address")
        if aa
    ]
    return {"connects": connects, "data": data, "terms": terms, "smp": smp}


def _expected(name: str) -> list[tuple[int, int, int, int | None]]:
    """(aa, start, end, reason) of each connection announced by a CONNECT_IND that carried data:
    it starts at its CONNECT_IND and ends at its (last) LL_TERMINATE_IND, else its last PDU."""
    o = _oracle(name)
    connects: dict[int, list[int]] = o["connects"]  # type: ignore[assignment]
    data: dict[int, list[int]] = o["data"]  # type: ignore[assignment]
    terms: dict[int, tuple[int, int]] = o["terms"]  # type: ignore[assignment]
    out = []
    for aa, starts in connects.items():
        frames = sorted(data.get(aa, []))
        for i, s in enumerate(starts):
            nxt = starts[i + 1] if i + 1 < len(starts) else 1 << 60
            inside = [f for f in frames if s < f < nxt]
            if not inside:
                continue  # a CONNECT_IND nobody answered
            ended = [f for f in inside if f in terms]
            end = ended[-1] if ended else inside[-1]
            out.append((aa, s, end, terms[ended[-1]][1] if ended else None))
    return sorted(out, key=lambda x: x[1])


def _reason_names(name: str) -> dict[int, str]:
    """Error code → Wireshark's name for it, from the PDML of the LL_TERMINATE_INDs."""
    out = tshark_pdml(_path(name), "btle.control_opcode == 0x02")
    pat = r'name="btle.control.error_code" showname="Error Code: (.*?) \((0x[0-9a-fA-F]+)\)"'
    return {int(code, 16): nm for nm, code in re.findall(pat, out)}


# -- the capture from the review -------------------------------------------------------------------


@pytest.mark.tshark
def test_stm_two_connections_same_access_address() -> None:
    exp = _expected(STM)
    assert len(exp) == 2 and exp[0][0] == exp[1][0]  # the oracle sees the AA reused
    conns = [c for c in _air(_analysis(STM)) if not c.inferred]
    assert [(c.start_frame, c.end_frame, c.disconnect_reason) for c in conns] == [
        (s, e, r) for _, s, e, r in exp
    ]
    first, second = conns
    assert first.disconnect_reason is not None
    assert first.disconnect_reason_name == _reason_names(STM)[first.disconnect_reason]
    assert second.disconnect_reason is None and second.disconnect_reason_name is None
    assert first.end_time_us is not None and second.start_time_us is not None
    assert first.end_time_us < second.start_time_us


@pytest.mark.tshark
def test_stm_smp_and_encryption_in_their_connection() -> None:
    a = _analysis(STM)
    by_id = {c.id: c for c in _air(a)}
    smp = [(p["frame"], p["connection"]) for p in a.to_json()["smp"]["pdus"]]
    assert [f for f, _ in smp] == [f for f, _ in _oracle(STM)["smp"]]  # type: ignore[attr-defined]
    for frame, cid in smp:
        c = by_id[cid]
        assert c.start_frame is not None and c.end_frame is not None
        assert c.start_frame <= frame <= c.end_frame
    (p,) = [p for p in a.pairing if p.transport == "le"]
    c = by_id[str(p.connection)]
    assert c.start_frame is not None and c.end_frame is not None
    assert c.start_frame <= p.start_frame <= c.end_frame
    enc_rsp = [int(r[0]) for r in _tshark(STM, "btle.control_opcode == 0x04", "frame.number")]
    first, second = (c for c in _air(a) if not c.inferred)
    assert first.encrypted and first.encryption_frames == enc_rsp
    assert not second.encrypted and second.encryption_frames == []  # not carried over


# -- every air capture ----------------------------------------------------------------------------


@pytest.mark.tshark
@pytest.mark.parametrize("name", AIR_CAPTURES)
def test_air_connections_match_tshark(name: str) -> None:
    exp = _expected(name)
    conns = [c for c in _air(_analysis(name)) if not c.inferred]
    got = [(_aa(c), c.start_frame, c.end_frame, c.disconnect_reason) for c in conns]
    assert sorted(got, key=lambda x: x[1] or 0) == exp
    names = _reason_names(name)
    for c in conns:
        if c.disconnect_reason is not None:
            assert c.disconnect_reason_name == names[c.disconnect_reason]


@pytest.mark.tshark
@pytest.mark.parametrize("name", AIR_CAPTURES)
def test_air_smp_frames_inside_their_connection(name: str) -> None:
    """Each SMP PDU tshark sees lies in the connection whose CONNECT_IND precedes it."""
    a = _analysis(name)
    o = _oracle(name)
    connects: dict[int, list[int]] = o["connects"]  # type: ignore[assignment]
    ours = {p["frame"]: p["connection"] for p in a.to_json().get("smp", {}).get("pdus", [])}
    by_id = {c.id: c for c in _air(a)}
    for frame, aa in o["smp"]:  # type: ignore[attr-defined]
        cid = ours.get(frame)
        if cid is None:
            continue  # SMP matching with tshark is test_sessions_le's job (fuzzed capture)
        c = by_id[cid]
        assert c.start_frame is not None and c.end_frame is not None
        assert c.start_frame <= frame <= c.end_frame, (frame, cid)
        starts = connects.get(aa, [])
        i = bisect_left(starts, frame) - 1
        if i >= 0 and not c.inferred:
            assert c.start_frame == starts[i]


# -- synthetic: spec layouts, no tshark -----------------------------------------------------------

AA = 0x11223344
OTHER_AA = 0x55667788


def _connect_ind(aa: int) -> bytes:
    """CONNECT_IND (Vol 6 Part B §2.3.3.1): InitA, AdvA, LLData (AA, CRCInit, WinSize,
    WinOffset, Interval 24 = 30 ms, Latency, Timeout 100 = 1 s, ChM, Hop/SCA)."""
    lldata = struct.pack("<I3sBHHHH5sB", aa, b"\x55\x55\x55", 2, 0, 24, 0, 100, b"\xff" * 5, 5)
    pdu = bytes([1, 2, 3, 4, 5, 6]) + bytes([0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6]) + lldata
    return struct.pack("<IBB", 0x8E89BED6, 0x05, len(pdu)) + pdu + b"\x00\x00\x00"


def _ll(aa: int, llid: int, sn: int, nesn: int, payload: bytes) -> bytes:
    """Data channel PDU (§2.4): header LLID | NESN << 2 | SN << 3, length, payload, CRC."""
    return struct.pack("<IBB", aa, llid | nesn << 2 | sn << 3, len(payload)) + payload + b"\0" * 3


def _synthetic(tmp_path: Path) -> Path:
    sent, rcvd = 1 | 2, 1  # nRF Sniffer flags: CRC ok, bit 1 = central → peripheral
    smp_req = bytes([0x01, 0x03, 0x00, 0x01, 0x10, 0x07, 0x07])
    pkts: list[tuple[int, bytes]] = [
        (0, _ll(OTHER_AA, 1, 0, 0, b"")),  # 1: a connection already running: inferred
        (10, _connect_ind(AA)),  # 2
        (20, _ll(AA, 1, 0, 0, b"")),  # 3
        # 4: an SMP PDU that starts (L2CAP length 11, CID 6) but never finishes
        (30, _ll(AA, 2, 1, 0, struct.pack("<HH", 11, 6) + b"\x01\x03\x00")),
        (40, _ll(AA, 3, 0, 1, bytes([0x04]) + bytes(12))),  # 5: LL_ENC_RSP (peripheral)
        (50, _ll(AA, 3, 0, 1, bytes([0x02, 0x13]))),  # 6: LL_TERMINATE_IND 0x13
        (60, _ll(AA, 1, 1, 1, b"")),  # 7: its acknowledgement
        (100, _connect_ind(AA)),  # 8: the same AA again
        (110, _ll(AA, 1, 0, 0, b"\x00\x00\x00\x00")),  # 9: a continuation: no PDU in progress
        (120, _ll(AA, 2, 0, 0, struct.pack("<HH", 7, 6) + smp_req)),  # 10: Pairing Request
        # 11: ATT Read Request with 2 trailing bytes (not an exact L2CAP length): plaintext
        (130, _ll(AA, 2, 1, 1, struct.pack("<HH", 3, 4) + b"\x0a\x03\x00\xee\xee")),
        (140, _ll(AA, 1, 1, 0, b"")),  # 12
    ]
    flags = [sent, rcvd, sent, sent, rcvd, sent, rcvd, rcvd, sent, sent, sent, rcvd]
    recs = [
        (1_600_000_000_000_000 + t * 1000, b.nordic_ble(2, ll, flags=f, channel=1, rssi=-50))
        for (t, ll), f in zip(pkts, flags, strict=True)
    ]
    data, _ = b.pcap_file(recs, 272)
    p = tmp_path / "air.pcap"
    p.write_bytes(data)
    return p


def test_synthetic_reused_access_address(tmp_path: Path) -> None:
    a = analyze(_synthetic(tmp_path))
    conns = _air(a)
    assert [(c.start_frame, c.end_frame, c.inferred) for c in conns] == [
        (1, 1, True),
        (2, 6, False),  # ends at the LL_TERMINATE_IND, not at its acknowledgement
        (8, 12, False),
    ]
    other, first, second = conns
    assert first.disconnect_reason == 0x13
    assert first.disconnect_reason_name == "Remote User Terminated Connection"  # Vol 1 Part F
    assert first.encrypted and first.encryption_frames == [5]
    assert not second.encrypted and second.encryption_frames == []
    assert second.disconnect_reason is None and other.disconnect_reason is None
    # the half SMP PDU of the first connection is not completed by the second one's fragment
    smp = a.to_json()["smp"]["pdus"]
    assert [(p["frame"], p["opcode"], p["connection"]) for p in smp] == [(10, 0x01, second.id)]
    assert a.to_json()["att"]["opcode_counts"] == {"0x0A": 1}
    stats = {s["connection"]: s for s in a.to_json()["ll_connections"]}
    assert stats[first.id]["connect_frame"] == 2 and stats[second.id]["connect_frame"] == 8
    assert stats[second.id]["encrypted_pdus"] == 0
    assert (stats[first.id]["terminate_frame"], stats[first.id]["terminated_by"]) == (6, "central")
    assert stats[second.id]["terminate_frame"] is None
    assert stats[first.id]["pdus"] == 5 and stats[second.id]["pdus"] == 4


def _silent_peer(tmp_path: Path, silent_events: int, terminate: bool = False) -> Path:
    """30 ms connection events, supervision timeout 1 s (the CONNECT_IND above): 20 events
    answered by the peripheral, then ``silent_events`` events where only the central sends."""
    sent, rcvd = 1 | 2, 1
    pkts: list[tuple[int, bytes, int]] = [(0, _connect_ind(AA), sent)]
    t = 1_000
    for i in range(20):
        pkts.append((t, _ll(AA, 1, i & 1, i & 1, b""), sent))
        pkts.append((t + 400, _ll(AA, 1, i & 1, (i + 1) & 1, b""), rcvd))
        t += 30_000
    for _ in range(silent_events):  # the central retransmits: same SN, no answer
        pkts.append((t, _ll(AA, 1, 0, 0, b""), sent))
        t += 30_000
    if terminate:
        pkts.append((t, _ll(AA, 3, 0, 0, bytes([0x02, 0x13])), sent))
    recs = [
        (1_600_000_000_000_000 + tt, b.nordic_ble(2, ll, flags=f, channel=1, rssi=-50))
        for tt, ll, f in pkts
    ]
    data, _ = b.pcap_file(recs, 272)
    p = tmp_path / f"silent_{silent_events}_{terminate}.pcap"
    p.write_bytes(data)
    return p


def test_peripheral_that_stops_answering_is_a_link_loss(tmp_path: Path) -> None:
    """Vol 6 Part B §4.5.2: the central keeps sending, unanswered, for longer than the 1 s
    supervision timeout and no LL_TERMINATE_IND comes: the peripheral went silent (0x08)."""
    a = analyze(_silent_peer(tmp_path, 50))
    (c,) = _air(a)
    assert c.disconnect_reason == 0x08
    (ll,) = a.ll_connections
    assert ll.peer_silent_from_frame == 42  # CONNECT_IND + 20 answered events, then the first
    assert ll.unanswered_pdus == 50 and ll.peer_silent_s is not None and ll.peer_silent_s > 1.0
    (f,) = [f for f in a.findings if f.id == "link_loss"]
    assert "stopped answering at frame 42" in f.message and 42 in f.frames


@pytest.mark.parametrize(("events", "terminate"), [(20, False), (50, True)])
def test_short_silence_or_terminated_link_is_no_link_loss(
    tmp_path: Path, events: int, terminate: bool
) -> None:
    """0.6 s unanswered (under the 1 s timeout), or a link the central terminated: no loss."""
    a = analyze(_silent_peer(tmp_path, events, terminate))
    (c,) = _air(a)
    assert c.disconnect_reason != 0x08
    assert not [f for f in a.findings if f.id == "link_loss"]
