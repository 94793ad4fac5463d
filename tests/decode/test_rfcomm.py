"""RFCOMM frame decoder: byte-level cases from RFCOMM 1.2 / TS 07.10, tshark differential on the
corpus, and a property test that no input raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.decode.rfcomm import build_frame, decode_mcc, decode_rfcomm, fcs
from analyzer.readers import load
from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_fields

RFCOMM_CAPTURES = [
    "aleksamarkoni_bluetooth_sample_btsnoop_hci.log",
    "2m_a2dp-captures_motog2013-lghbs730_btsnoop_hci.log",
    "2m_a2dp-captures_mt4gs-lghbs750_btsnoop_hci_lg750.cap",
    "Swastik36_OPPO-Earbuds_btsnoop_205240.log",
    "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered",
    "AshMartian_HappyLeaf_Bluetooth_btsnoop_hci_happyleaf_fail.log",
    "pfalcon_Chsmartbulb-led-bulb-speaker_btsnoop_hci.log",
    "ap4y_iSAP_hci_dump.pklg",
]


# -- byte level -------------------------------------------------------------------------------


def test_sabm_on_dlci0() -> None:
    # address: EA=1, C/R=1, DLCI 0; control SABM with P=1; length 0 (EA=1); FCS
    f = decode_rfcomm(bytes([0x03, 0x3F, 0x01, 0x1C]))
    assert (f.dlci, f.cr, f.ea, f.frame_name, f.pf, f.length) == (0, 1, 1, "SABM", 1, 0)
    assert f.fcs_ok is True
    assert f.anomaly is None


def test_fcs_covers_length_except_for_uih() -> None:
    # TS 07.10 §5.2.1.6: SABM/UA/DM/DISC cover address, control and length; UIH only two octets
    ua = bytes([0x03, 0x73, 0x01])
    assert fcs(ua) == decode_rfcomm(build_frame(0, 0x63, pf=1)).fcs
    uih = build_frame(2, 0xEF, payload=b"AT\r")
    assert uih[-1] == fcs(uih[:2])
    assert decode_rfcomm(uih).fcs_ok


def test_dlci_channel_and_direction_bit() -> None:
    f = decode_rfcomm(build_frame(9, 0x2F, pf=1))  # DLCI 9 = server channel 4, D = 1
    assert (f.dlci, f.channel, f.direction_bit) == (9, 4, 1)


def test_two_byte_length() -> None:
    payload = bytes(range(200))
    raw = build_frame(4, 0xEF, payload=payload)
    assert raw[2] & 1 == 0  # EA = 0: a second length octet follows (TS 07.10 §5.2.1.5)
    f = decode_rfcomm(raw)
    assert f.length == 200
    assert f.payload == payload
    assert f.fcs_ok


def test_credits_only_on_uih_with_pf() -> None:
    raw = build_frame(4, 0xEF, pf=1, credits=7, payload=b"\r\nOK\r\n")
    f = decode_rfcomm(raw)
    assert f.credits == 7
    assert f.payload == b"\r\nOK\r\n"
    # without credit based flow control the same byte is data (RFCOMM §6.5.2)
    g = decode_rfcomm(build_frame(4, 0xEF, pf=1, payload=b"x"), credit_based=False)
    assert g.credits is None and g.payload == b"x"
    # DLCI 0 never carries credits
    h = decode_rfcomm(build_frame(0, 0xEF, pf=1, payload=bytes([0x23, 0x01, 0x01])))
    assert h.credits is None


def test_pn_command() -> None:
    # PN (type 0x20, C/R=1, EA=1 → 0x83), length 8: DLCI 8, I=0 CL=0xF, prio 7, T1 0,
    # N1 = 667, NA 0, K = 7 (RFCOMM §5.5.3)
    value = bytes([8, 0xF0, 7, 0, 667 & 0xFF, 667 >> 8, 0, 7])
    ms = decode_mcc(bytes([0x83, 0x11]) + value)
    assert len(ms) == 1
    m = ms[0]
    assert (m.name, m.cr, m.is_command) == ("PN", 1, True)
    assert m.fields["dlci"] == 8
    assert m.fields["convergence_layer"] == 0xF
    assert m.fields["priority"] == 7
    assert m.fields["max_frame_size"] == 667
    assert m.fields["credits"] == 7
    assert m.fields["credit_flow"] is True


def test_msc_and_nsc() -> None:
    # MSC response (C/R=0): DLCI 2 (address octet 0x0B), V.24 signals RTC+RTR+DV = 0x8D
    m = decode_mcc(bytes([0xE1, 0x05, 0x0B, 0x8D]))[0]
    assert (m.name, m.cr) == ("MSC", 0)
    assert m.fields["dlci"] == 2
    assert (m.fields["rtc"], m.fields["rtr"], m.fields["dv"], m.fields["fc"]) == (1, 1, 1, 0)
    n = decode_mcc(bytes([0x11, 0x03, 0x93]))[0]  # NSC of an RPN command (0x24<<2|2|1)
    assert n.name == "NSC"
    assert n.fields["not_supported_name"] == "RPN"


def test_several_mcc_in_one_frame() -> None:
    # FCon command (type 0x28: 0xA0 | C/R | EA), length 0; FCoff command (0x18: 0x60 | 3)
    ms = decode_mcc(bytes([0xA3, 0x01, 0x63, 0x01]))
    assert [m.name for m in ms] == ["FCon", "FCoff"]


def test_bad_fcs_and_short_input_are_anomalies() -> None:
    raw = bytearray(build_frame(2, 0xEF, payload=b"AT\r"))
    raw[-1] ^= 0xFF
    f = decode_rfcomm(bytes(raw))
    assert f.fcs_ok is False and f.anomaly and "FCS" in f.anomaly
    assert decode_rfcomm(b"\x03").anomaly
    g = decode_rfcomm(bytes([0x0B, 0xEF, 0x15, 0x41]))  # length 10, 1 byte present
    assert g.anomaly and "exceeds" in g.anomaly


@given(st.binary(max_size=300), st.booleans())
@settings(max_examples=400, deadline=None)
def test_never_raises(data: bytes, cfc: bool) -> None:
    f = decode_rfcomm(data, cfc)
    assert f.raw == data


@given(st.binary(max_size=64))
@settings(max_examples=200, deadline=None)
def test_mcc_never_raises(data: bytes) -> None:
    decode_mcc(data)


# -- tshark differential -----------------------------------------------------------------------

FIELDS = [
    "frame.number",
    "btrfcomm.dlci",
    "btrfcomm.cr",
    "btrfcomm.frame_type",
    "btrfcomm.pf",
    "btrfcomm.len",
    "btrfcomm.credits",
    "btrfcomm.fcs",
    "btrfcomm.mcc.cmd",
    "btrfcomm.max_frame_size",
    "btrfcomm.pn.cl",
]


def _int(s: str) -> int | None:
    return int(s, 0) if s else None


@pytest.mark.tshark
@pytest.mark.parametrize("name", RFCOMM_CAPTURES)
def test_frames_match_tshark(name: str) -> None:
    path = SHARED_CAPTURES / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    rows = tshark_fields(Path(path), FIELDS, "-Y", "btrfcomm")
    cap = load(path)
    checked = 0
    for row in rows:
        frame = int(row[0])
        p = cap.payload(frame)
        if len(p) < 8 or (p[1] >> 4) & 3 == 1:
            continue
        l2len = p[4] | (p[5] << 8)
        if l2len != len(p) - 8:
            continue  # fragmented PDU: the decoder gets it whole from the sessions layer
        f = decode_rfcomm(p[8:])
        dlci, cr, ftype, pf, ln, credits, fcs_v, mcc, mfs, cl = (_int(x) for x in row[1:11])
        assert (f.dlci, f.cr, f.control and f.control & 0xEF, f.pf) == (dlci, cr, ftype, pf), frame
        assert f.length == ln, frame
        assert f.credits == credits, frame
        assert f.fcs == fcs_v, frame
        assert f.fcs_ok, frame
        if mcc is not None:
            assert f.mcc and f.mcc[0].type == mcc, frame
        if mfs is not None:
            assert f.mcc[0].fields["max_frame_size"] == mfs, frame
            assert f.mcc[0].fields["convergence_layer"] == cl, frame
        checked += 1
    assert checked > 0
