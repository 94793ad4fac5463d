"""HFP/HSP sessions over RFCOMM and their SCO/eSCO links.

* Differential: the AT commands, final results and unsolicited results we rebuild equal tshark's
  ``bthfp.at_cmd`` per frame on every corpus capture with HFP (and every scenario capture).
* Scenario captures (captures/scenarios/manifest.json): codec, link type, air mode, SCO
  parameters, the SCO link's ACL and HFP session, key frames.
* Synthetic btsnoop captures built here from the specs: HSP with AT+CKPD and no SDP (inference),
  HFP outgoing call with a custom indicator order, codec selection and +CME ERROR.
"""

from __future__ import annotations

import collections
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.analysis import Analysis, analyze, open_capture
from analyzer.decode.at import parse_line
from analyzer.decode.rfcomm import build_frame
from analyzer.model import HfpSession
from analyzer.sessions.hfp import HfpTracker, call_in_progress
from tests.conftest import BUNDLED, SHARED_CAPTURES
from tests.oracle import tshark_fields

HFP_CAPTURES = [
    "2m_a2dp-captures_motog2013-lghbs730_btsnoop_hci.log",
    "2m_a2dp-captures_mt4gs-lghbs750_btsnoop_hci_lg750.cap",
    "Swastik36_OPPO-Earbuds_btsnoop_205240.log",
    "Swastik36_OPPO-Earbuds_btsnoop_hci.log",
    "aleksamarkoni_bluetooth_sample_btsnoop_hci.log",
    "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered",
]
SCENARIOS = BUNDLED / "scenarios"


def _manifest() -> list[dict[str, Any]]:
    m = SCENARIOS / "manifest.json"
    if not m.exists():
        return []
    return list(json.loads(m.read_text())["captures"])


def _scenario_hfp_files() -> list[str]:
    return [
        e["file"]
        for e in _manifest()
        if "hfp" in e["ground_truth"] or "at_clcc" in e["ground_truth"].get("key_frames", {})
    ]


# -- differential against tshark ---------------------------------------------------------------


def _tshark_lines(path: Path) -> list[tuple[int, str]]:
    rows = tshark_fields(
        path, ["frame.number", "bthfp.at_cmd"], "-Y", "bthfp", "-E", "occurrence=a"
    )
    return [(int(fr), c) for fr, cmds in rows for c in cmds.split(",") if c]


def _our_lines(a: Analysis) -> tuple[list[tuple[int, str]], list[str]]:
    framed: list[tuple[int, str]] = []
    responses: list[str] = []
    for s in a.hfp:
        for c in s.at:
            framed.append((c.frame, parse_line(c.text).name))
            if c.result is not None:
                assert c.result_frame is not None and c.result_time_us is not None
                assert c.result_frame > c.frame
                framed.append((c.result_frame, parse_line(c.result).name))
            responses += [parse_line(r).name for r in c.responses]
    return framed, responses


def _check_against_tshark(path: Path) -> Analysis:
    theirs = _tshark_lines(path)
    a = analyze(path)
    framed, responses = _our_lines(a)
    ours_c = collections.Counter(framed)
    theirs_c = collections.Counter(theirs)
    assert not ours_c - theirs_c, "lines we report that tshark does not"
    # what is left of tshark's lines are information responses, which we file (without their
    # frame) under their command: same names in the same order
    rest = [n for _f, n in sorted((theirs_c - ours_c).elements())]
    assert rest == responses
    assert len(theirs) > 10
    return a


@pytest.mark.tshark
@pytest.mark.parametrize("name", HFP_CAPTURES)
def test_at_commands_match_tshark(name: str) -> None:
    path = SHARED_CAPTURES / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    a = _check_against_tshark(path)
    assert len(a.hfp) == 1
    s = a.hfp[0]
    # the SDP record of the server channel names the profile (not inferred)
    assert s.profile == "hfp" and not s.inferred
    # HF features from AT+BRSF / AG features from +BRSF, as tshark decodes them
    rows = tshark_fields(
        path,
        ["bthfp.brsf.hs.features", "bthfp.brsf.ag.features"],
        "-Y",
        "bthfp.brsf.hs.features || bthfp.brsf.ag.features",
    )
    hf = [int(r[0], 0) for r in rows if r[0]]
    ag = [int(r[1], 0) for r in rows if len(r) > 1 and r[1]]
    assert s.hf_features == hf[0] and s.ag_features == ag[0]
    # the HF sends the AT commands: here the remote headset, so the capturing phone is the AG
    assert s.local_role == "ag"
    assert all(c.direction == "received" for c in s.at if c.kind == "command")
    rows = tshark_fields(path, ["btrfcomm.dlci", "btrfcomm.channel"], "-Y", "bthfp")
    assert {(s.dlci, s.rfcomm_channel)} == {(int(r[0], 0), int(r[1])) for r in rows}


@pytest.mark.tshark
def test_slc_complete_per_features() -> None:
    """HFP 1.9 §4.2.1: with three-way calling on both sides the SLC ends at AT+CHLD=?'s OK."""
    path = SHARED_CAPTURES / "aleksamarkoni_bluetooth_sample_btsnoop_hci.log"
    if not path.exists():
        pytest.skip("capture not present")
    s = analyze(path).hfp[0]
    assert s.hf_features is not None and s.hf_features & 0b10  # HF three-way calling
    assert s.ag_features is not None and s.ag_features & 0b1  # AG three-way calling
    chld = next(c for c in s.at if c.text == "AT+CHLD=?")
    assert s.slc_complete and s.slc_frame == chld.result_frame
    # +CIND: 0,0,1,5,0,5,0 against the +CIND test order
    assert s.indicators["service"] == 1 and s.indicators["signal"] == 5


@pytest.mark.tshark
@pytest.mark.parametrize("name", _scenario_hfp_files())
def test_scenario_at_commands_match_tshark(name: str) -> None:
    _check_against_tshark(SCENARIOS / name)


# -- scenario manifests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry", [e for e in _manifest() if "hfp" in e["ground_truth"]], ids=lambda e: e["file"]
)
def test_scenario_hfp_matches_manifest(entry: dict[str, Any]) -> None:
    truth = entry["ground_truth"]
    h = truth["hfp"]
    keys = truth.get("key_frames", {})
    a = analyze(SCENARIOS / entry["file"])
    assert len(a.hfp) == 1
    s = a.hfp[0]
    assert s.slc_complete
    assert s.codec_name == h["codec"]
    scos = [c for c in a.connections if c.transport in ("sco", "esco")]
    assert len(scos) == 1
    c = scos[0]
    assert c.transport == h["link"].lower()
    assert c.sco is not None
    assert c.sco.air_mode == h["air_mode"]
    assert c.sco.codec == h["codec"]
    if "transmission_interval_slots" in h:
        assert c.sco.transmission_interval == h["transmission_interval_slots"]
        assert c.sco.tx_packet_length == h["packet_length"]
    assert c.start_frame == keys["sco_connection_complete"]
    if "sco_disconnection_complete" in keys:
        assert c.end_frame == keys["sco_disconnection_complete"]
    # the SCO link rides on the ACL that carries the HFP session, and is tied to it
    acl = a.connection(c.acl)
    assert acl is not None and acl.transport == "br_edr" and acl.address == c.address
    assert s.connection == acl.id and s.sco == [c.id]
    by_frame = {x.frame: x for x in s.at}
    if "at_ring" in keys:
        assert by_frame[keys["at_ring"]].text == "RING"
        assert by_frame[keys["at_ring"]].kind == "unsolicited"
    if "at_ata" in keys:
        ata = by_frame[keys["at_ata"]]
        assert ata.text == "ATA" and ata.result == "OK"
        # incoming call, answered after ATA, in progress while the SCO link is up
        call = s.calls[0]
        assert call.direction == "incoming"
        assert call.start_frame <= keys.get("at_ring", call.start_frame)
        assert call.answered_frame is not None and call.answered_frame > ata.frame
        assert c.start_time_us is not None
        assert call_in_progress(s, c.start_time_us) is call
    if "at_bcs_2" in keys:
        assert by_frame[keys["at_bcs_2"]].text == "+BCS: 2"


@pytest.mark.parametrize(
    "entry",
    [e for e in _manifest() if "at_clcc" in e["ground_truth"].get("key_frames", {})],
    ids=lambda e: e["file"],
)
def test_scenario_at_clcc_answer(entry: dict[str, Any]) -> None:
    frame = entry["ground_truth"]["key_frames"]["at_clcc"]
    a = analyze(SCENARIOS / entry["file"])
    cmd = next(c for s in a.hfp for c in s.at if c.frame == frame)
    assert cmd.text == "AT+CLCC"
    faults = " ".join(entry["ground_truth"]["injected_faults"])
    if "AT+CLCC never answered" in faults:
        assert cmd.result is None and cmd.result_frame is None
    else:
        assert "AT+CLCC answered after 8.5 s" in faults
        assert cmd.result == "OK" and cmd.result_time_us is not None
        assert 8.0 <= (cmd.result_time_us - cmd.time_us) / 1e6 <= 9.0


# -- synthetic captures -------------------------------------------------------------------------

EPOCH = 0x00DCDDB30F2F8000  # btsnoop microseconds at 1970-01-01
T0 = 1_767_261_600_000_000
PEER = bytes([0x31, 0xA2, 0x4C, 0x66, 0x1B, 0x00])  # 00:1B:66:4C:A2:31
ACL, SCO = 0x000B, 0x000C


class Snoop:
    """A btsnoop (datalink 1002) file built record by record; frame numbers start at 1."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.t = T0

    def add(self, h4: bytes, received: bool, cmd_evt: bool = False, dt_ms: float = 10) -> int:
        self.t += int(dt_ms * 1000)
        flags = (1 if received else 0) | (2 if cmd_evt else 0)
        hdr = struct.pack(">IIIIq", len(h4), len(h4), flags, 0, self.t + EPOCH)
        self.records.append(hdr + h4)
        return len(self.records)

    def event(self, code: int, params: bytes, dt_ms: float = 10) -> int:
        return self.add(bytes([4, code, len(params)]) + params, True, True, dt_ms)

    def acl(self, cid: int, payload: bytes, received: bool, dt_ms: float = 10) -> int:
        l2 = struct.pack("<HH", len(payload), cid) + payload
        return self.add(
            b"\x02" + struct.pack("<HH", ACL | 0x2000, len(l2)) + l2, received, False, dt_ms
        )

    def sco(self, received: bool, dt_ms: float) -> int:
        return self.add(b"\x03" + struct.pack("<HB", SCO, 60) + bytes(60), received, False, dt_ms)

    def write(self, path: Path) -> Path:
        path.write_bytes(b"btsnoop\x00" + struct.pack(">II", 1, 1002) + b"".join(self.records))
        return path


class Link:
    """One ACL with an RFCOMM channel; ``remote_initiates`` picks the multiplexer initiator."""

    LOCAL_CID, REMOTE_CID = 0x0040, 0x0041

    def __init__(self, snoop: Snoop, remote_initiates: bool) -> None:
        self.s = snoop
        self.remote_init = remote_initiates
        # Connection Complete (Core Vol 4 Part E §7.7.3)
        snoop.event(0x03, bytes([0]) + struct.pack("<H", ACL) + PEER + bytes([1, 0]))
        if remote_initiates:
            self.sig(bytes([0x02, 1, 4, 0]) + struct.pack("<HH", 3, self.REMOTE_CID), True)
            rsp = struct.pack("<HHHH", self.LOCAL_CID, self.REMOTE_CID, 0, 0)
            self.sig(bytes([0x03, 1, 8, 0]) + rsp, False)
        else:
            self.sig(bytes([0x02, 1, 4, 0]) + struct.pack("<HH", 3, self.LOCAL_CID), False)
            rsp = struct.pack("<HHHH", self.REMOTE_CID, self.LOCAL_CID, 0, 0)
            self.sig(bytes([0x03, 1, 8, 0]) + rsp, True)

    def sig(self, payload: bytes, received: bool) -> int:
        return self.s.acl(0x0001, payload, received)

    def rfcomm(self, frame: bytes, received: bool, dt_ms: float = 10) -> int:
        return self.s.acl(self.LOCAL_CID if received else self.REMOTE_CID, frame, received, dt_ms)

    def cr(self, received: bool, command: bool = True) -> int:
        """C/R bit (RFCOMM §5.1.3): commands/UIH carry 1 from the initiator, responses inverse."""
        from_initiator = received == self.remote_init
        return int(from_initiator if command else not from_initiator)

    def open(self, dlci: int) -> None:
        for d in (0, dlci):
            self.rfcomm(build_frame(d, 0x2F, cr=self.cr(self.remote_init), pf=1), self.remote_init)
            ua = build_frame(d, 0x63, cr=self.cr(not self.remote_init, False), pf=1)
            self.rfcomm(ua, not self.remote_init)

    def data(self, dlci: int, text: str, received: bool, dt_ms: float = 10) -> int:
        f = build_frame(dlci, 0xEF, cr=self.cr(received), payload=text.encode())
        return self.rfcomm(f, received, dt_ms)

    def close(self, dlci: int) -> None:
        self.rfcomm(build_frame(dlci, 0x43, cr=self.cr(self.remote_init), pf=1), self.remote_init)
        ua = build_frame(dlci, 0x63, cr=self.cr(not self.remote_init, False), pf=1)
        self.rfcomm(ua, not self.remote_init)


def _sync_complete(s: Snoop, link_type: int, air_mode: int) -> int:
    # Synchronous Connection Complete (Core Vol 4 Part E §7.7.35)
    p = bytes([0]) + struct.pack("<H", SCO) + PEER + bytes([link_type, 12, 2])
    return s.event(0x2C, p + struct.pack("<HH", 60, 60) + bytes([air_mode]))


def test_hsp_inferred_without_sdp(tmp_path: Path) -> None:
    """HSP 1.2: the headset opens channel 1 of the phone, the button (AT+CKPD=200) answers
    RING and ends the call; CVSD SCO. No SDP in the capture: the profile is inferred."""
    s = Snoop()
    link = Link(s, remote_initiates=True)
    dlci = 2  # server channel 1 on the non-initiating device (the phone): D = 0 (RFCOMM §5.4)
    link.open(dlci)
    ring = link.data(dlci, "\r\nRING\r\n", False)
    link.data(dlci, "AT+CK", True)  # one command line in two UIH frames
    answer = link.data(dlci, "PD=200\r", True)
    ok1 = link.data(dlci, "\r\nOK\r\n", False)
    link.data(dlci, "\r\n+VGS=7\r\n", False)
    sco_up = _sync_complete(s, 0, 0x02)
    first = s.sco(False, 7.5)
    for _ in range(4):
        s.sco(False, 7.5)
    before_gap = len(s.records)
    after_gap = s.sco(False, 300)
    for _ in range(2):
        s.sco(False, 7.5)
    hang = link.data(dlci, "AT+CKPD=200\r", True)
    link.data(dlci, "\r\nOK\r\n", False)
    s.event(0x05, bytes([0]) + struct.pack("<H", SCO) + bytes([0x13]))
    link.close(dlci)
    run = open_capture(s.write(tmp_path / "hsp.btsnoop"))
    a = run.analysis

    assert len(a.hfp) == 1
    h = a.hfp[0]
    assert (h.profile, h.inferred, h.local_role) == ("hsp", True, "ag")
    assert (h.rfcomm_channel, h.dlci) == (1, 2)
    cmds = [c for c in h.at if c.kind == "command"]
    assert [c.text for c in cmds] == ["AT+CKPD=200", "AT+CKPD=200"]
    assert (cmds[0].frame, cmds[0].result, cmds[0].result_frame) == (answer, "OK", ok1)
    assert h.volume == {"speaker": 7}
    assert len(h.calls) == 1
    call = h.calls[0]
    assert (call.direction, call.start_frame, call.answered_frame, call.end_frame) == (
        "incoming",
        ring,
        answer,
        hang,
    )
    assert h.end_frame is not None and h.end_frame > hang
    rows = {r["dlci"]: r for r in a.to_json()["rfcomm"]}
    assert rows[2]["initiator"] == "remote" and rows[2]["server"] == "local"
    assert rows[2]["profile"] == "hsp" and rows[2]["profile_source"] == "inferred"
    sco = next(c for c in a.connections if c.transport == "sco")
    assert sco.start_frame == sco_up
    assert sco.acl == h.connection and h.sco == [sco.id]
    assert sco.sco is not None
    assert sco.sco.codec == "CVSD"
    assert (sco.sco.sco_packets.sent, sco.sco.sco_packets.received) == (8, 0)
    assert sco.sco.sco_first_time_us == run.capture.frames["time_us"][first - 1]
    assert [(g.from_frame, g.to_frame) for g in sco.sco.sco_gaps] == [(before_gap, after_gap)]
    assert sco.sco.sco_gaps[0].gap_ms == pytest.approx(300)


def test_hfp_outgoing_call_codec_and_errors(tmp_path: Path) -> None:
    """HFP 1.9: SLC without three-way calling ends at AT+CMER's OK (§4.2.1); the indicator
    order comes from +CIND test; ATD → callsetup 2/3 → call 1 → AT+CHUP → call 0; +BCS: 2 /
    AT+BCS=2 selects mSBC, used by a transparent eSCO link (§4.11.3)."""
    s = Snoop()
    link = Link(s, remote_initiates=False)  # the local HF connects to the phone's channel 5
    dlci = 10
    link.open(dlci)
    hf = 1 << 7  # codec negotiation only
    ag = 1 << 9
    ex: list[tuple[str, bool]] = [
        (f"AT+BRSF={hf}\r", False),
        (f"\r\n+BRSF: {ag}\r\n", True),
        ("\r\nOK\r\n", True),
        ("AT+BAC=1,2\r", False),
        ("\r\nOK\r\n", True),
        ("AT+CIND=?\r", False),
        ('\r\n+CIND: ("callsetup",(0-3)),("service",(0,1)),("call",(0,1))\r\n', True),
        ("\r\nOK\r\n", True),
        ("AT+CIND?\r", False),
        ("\r\n+CIND: 0,1,0\r\n\r\nOK\r\n", True),  # response and final in one frame
        ("AT+CMER=3,0,0,1\r", False),
    ]
    for text, rx in ex:
        link.data(dlci, text, rx)
    slc = link.data(dlci, "\r\nOK\r\n", True)
    cops = link.data(dlci, "AT+COPS?\r", False)
    cme = link.data(dlci, "\r\n+CME ERROR: 30\r\n", True)
    atd = link.data(dlci, "ATD5551234;\r", False)
    link.data(dlci, "\r\nOK\r\n", True)
    link.data(dlci, "\r\n+CIEV: 1,2\r\n", True)
    link.data(dlci, "\r\n+CIEV: 1,3\r\n", True)
    active = link.data(dlci, "\r\n+CIEV: 3,1\r\n", True)
    link.data(dlci, "\r\n+CIEV: 1,0\r\n", True)
    link.data(dlci, "\r\n+BCS: 2\r\n", True)
    link.data(dlci, "AT+BCS=2\r", False)
    bcs_ok = link.data(dlci, "\r\nOK\r\n", True)
    sco_up = _sync_complete(s, 2, 0x03)
    chup = link.data(dlci, "AT+CHUP\r", False, dt_ms=5000)
    link.data(dlci, "\r\nOK\r\n", True)
    end = link.data(dlci, "\r\n+CIEV: 3,0\r\n", True)
    unanswered = link.data(dlci, "AT+CLCC\r", False)
    run = open_capture(s.write(tmp_path / "hfp.btsnoop"))
    a = run.analysis

    h = a.hfp[0]
    assert (h.profile, h.local_role, h.inferred) == ("hfp", "hf", True)
    assert (h.hf_features, h.ag_features, h.hf_codecs) == (hf, ag, [1, 2])
    assert h.slc_complete and h.slc_frame == slc
    by_frame = {c.frame: c for c in h.at}
    assert by_frame[cops].result == "+CME ERROR: 30" and by_frame[cops].result_frame == cme
    assert by_frame[unanswered].result is None
    assert [c.text for c in h.at if c.kind == "unsolicited"][:2] == ["+CIEV: 1,2", "+CIEV: 1,3"]
    assert h.indicators == {"callsetup": 0, "service": 1, "call": 0}
    assert len(h.calls) == 1
    call = h.calls[0]
    assert (call.direction, call.number, call.start_frame) == ("outgoing", "5551234", atd)
    assert (call.answered_frame, call.end_frame) == (active, end)
    assert chup < end
    assert (h.codec, h.codec_name, h.codec_frame) == (2, "mSBC", bcs_ok)
    esco = next(c for c in a.connections if c.transport == "esco")
    assert esco.start_frame == sco_up and esco.sco is not None
    assert esco.sco.codec == "mSBC" and esco.sco.codec_source == "+BCS"
    assert (esco.sco.sco_packets.sent, esco.sco.sco_packets.received) == (
        0,
        0,
    )  # audio not over HCI
    rows = {r["dlci"]: r for r in a.to_json()["rfcomm"]}
    assert rows[10]["initiator"] == "local" and rows[10]["server"] == "remote"
    kinds = [(e.kind, e.frame) for e in a.timeline if e.kind in ("slc", "call", "codec")]
    assert ("slc", slc) in kinds and ("codec", bcs_ok) in kinds
    assert ("call", atd) in kinds and ("call", end) in kinds
    t_active = run.capture.frames["time_us"][active - 1]
    t_end = run.capture.frames["time_us"][end - 1]
    assert call_in_progress(h, t_active) is call
    assert call_in_progress(h, t_end) is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "AT+BRSF=1023",
                    "+BRSF: 4095",
                    "OK",
                    "ERROR",
                    "RING",
                    "ATA",
                    "AT+CHUP",
                    "+CIEV: 1,1",
                    "+CIEV: 2,0",
                    "+CIEV: 99,3",
                    '+CIND: ("call",(0,1)),("callsetup",(0-3))',
                    "+CIND: 1,0,5",
                    "AT+CKPD=200",
                    "+BCS: 2",
                    "AT+BCS=2",
                    "+CME ERROR: x",
                    "ATD;",
                ]
            )
            | st.text(max_size=20),
            st.booleans(),
        ),
        max_size=30,
    )
)
@settings(max_examples=200, deadline=None)
def test_tracker_never_raises(lines: list[tuple[str, bool]]) -> None:
    session = HfpSession(None, None, "hfp", "?", 1, 2, 1, 0)
    tr = HfpTracker(session, [], "lane")
    for i, (text, rx) in enumerate(lines):
        tr.on_line(text, "received" if rx else "sent", i + 1, i * 1000)
    tr.close(len(lines) + 1, len(lines) * 1000)
    assert all(c.end_frame is not None for c in session.calls)


@pytest.mark.tshark
def test_mid_session_capture_without_channel_setup() -> None:
    """No L2CAP/RFCOMM/SDP setup captured: the RFCOMM channel is inferred per direction, both
    halves form one session, and the AT exchange (Apple HFP commands) is HFP by inference.
    tshark, told the channel (decode-as), sees HFP in exactly the frames we rebuild."""
    path = SHARED_CAPTURES / "Swastik36_OPPO-Earbuds_BT_HCI_2026_0719_110149.cfa"
    if not path.exists():
        pytest.skip("capture not present")
    a = analyze(path)
    assert len(a.hfp) == 1
    s = a.hfp[0]
    assert (s.profile, s.inferred, s.local_role, s.dlci) == ("hfp", True, "ag", 6)
    assert not s.slc_complete and s.hf_features is None  # the SLC predates the capture
    rows = {r["dlci"]: r for r in a.to_json()["rfcomm"] if r["dlci"] == 6}
    cids = (rows[6]["l2cap_local_cid"], rows[6]["l2cap_remote_cid"])
    assert None not in cids
    decode_as = [f"btl2cap.cid=={c},btrfcomm" for c in cids] + ["btrfcomm.dlci==6,bthfp"]
    extra = [x for d in decode_as for x in ("-d", d)]
    theirs = {int(r[0]) for r in tshark_fields(path, ["frame.number"], *extra, "-Y", "bthfp")}
    ours = {c.frame for c in s.at} | {c.result_frame for c in s.at if c.result_frame}
    assert ours == theirs
    assert all(c.result == "OK" for c in s.at)
