"""AT command / result code parsing (V.250, HFP 1.9 §4.34-§4.35, HSP 1.2): spec examples,
tshark differential on the corpus (command names per frame), property tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.decode.at import (
    HF_FEATURES,
    LineSplitter,
    features,
    looks_like_at,
    parse_line,
    split_lines,
)
from analyzer.decode.rfcomm import decode_rfcomm
from analyzer.readers import load
from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_fields

HFP_CAPTURES = [
    "2m_a2dp-captures_motog2013-lghbs730_btsnoop_hci.log",
    "2m_a2dp-captures_mt4gs-lghbs750_btsnoop_hci_lg750.cap",
    "Swastik36_OPPO-Earbuds_btsnoop_205240.log",
    "Swastik36_OPPO-Earbuds_btsnoop_hci.log",
    "aleksamarkoni_bluetooth_sample_btsnoop_hci.log",
    "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered",
]


def test_split_lines_commands_and_results() -> None:
    assert split_lines(b"AT+BRSF=63\r") == ["AT+BRSF=63"]
    assert split_lines(b"\r\n+BRSF: 3943\r\n\r\nOK\r\n") == ["+BRSF: 3943", "OK"]
    assert split_lines(b"\r\nRING\r\n") == ["RING"]


def test_splitter_joins_fragments() -> None:
    sp = LineSplitter()
    assert sp.feed(b"AT+CK") == []
    assert sp.pending == "AT+CK"
    assert sp.feed(b"PD=200\r") == ["AT+CKPD=200"]
    assert sp.feed(b"\r\n+CIEV: 2") == []
    assert sp.feed(b",1\r") == ["+CIEV: 2,1"]
    assert sp.feed(b"\n") == []


def test_brsf_both_ways() -> None:
    c = parse_line("AT+BRSF=959")
    assert (c.kind, c.name, c.op, c.values["value"]) == ("command", "+BRSF", "set", 959)
    # 959 = 0b1110111111: bit 6 (enhanced call control) clear, bit 7 codec negotiation set
    assert "codec_negotiation" in c.values["features"]
    assert "enhanced_call_control" not in c.values["features"]
    r = parse_line("+BRSF: 3943")
    assert (r.kind, r.name, r.values["value"]) == ("result", "+BRSF", 3943)


def test_features_bits() -> None:
    assert features(0b10000010, HF_FEATURES) == ["three_way_calling", "codec_negotiation"]


def test_bac_bcs_codecs() -> None:
    b = parse_line("AT+BAC=1,2")
    assert b.values["values"] == [1, 2]
    assert b.values["codecs"] == ["CVSD", "mSBC"]
    assert parse_line("+BCS: 3").values["codec"] == "LC3-SWB"
    s = parse_line("AT+BCS=2")
    assert (s.name, s.op, s.values["value"]) == ("+BCS", "set", 2)
    assert (parse_line("AT+BCC").name, parse_line("AT+BCC").op) == ("+BCC", "action")


def test_cind_test_read_and_ciev() -> None:
    t = parse_line('+CIND: ("service",(0,1)),("call",(0,1)),("callsetup",(0-3))')
    assert t.values["indicators"] == ["service", "call", "callsetup"]
    r = parse_line("+CIND: 1,0,0")
    assert r.values["values"] == [1, 0, 0]
    assert (parse_line("AT+CIND=?").op, parse_line("AT+CIND?").op) == ("test", "read")
    e = parse_line("+CIEV: 3,1")
    assert (e.values["index"], e.values["value"]) == (3, 1)


def test_cmer_chld() -> None:
    assert parse_line("AT+CMER=3,0,0,1").values["values"] == [3, 0, 0, 1]
    assert parse_line("AT+CMER=3,,,1").values["values"] == [3, None, None, 1]
    assert parse_line("+CHLD: (0,1,2,3)").values["modes"] == ["0", "1", "2", "3"]


def test_call_control_lines() -> None:
    assert (parse_line("ATA").name, parse_line("ATA").kind) == ("A", "command")
    d = parse_line("ATD5551234;")
    assert (d.name, d.values["number"]) == ("D", "5551234")
    assert parse_line("ATD>1;").values["memory"] == "1"
    assert parse_line("AT+BLDN").name == "+BLDN"
    assert parse_line("AT+CHUP").name == "+CHUP"
    assert parse_line("AT+CKPD=200").values["value"] == 200
    assert parse_line('+CLIP: "5551234",129').values["number"] == "5551234"
    assert parse_line('+CCWA: "5550000",129,1').values["number"] == "5550000"


def test_results() -> None:
    assert (parse_line("OK").kind, parse_line("ERROR").kind) == ("final", "final")
    c = parse_line("+CME ERROR: 30")
    assert (c.kind, c.name, c.values["value"]) == ("final", "+CME ERROR", 30)
    assert (parse_line("RING").kind, parse_line("RING").name) == ("result", "RING")
    v = parse_line("+VGS: 7")
    assert (v.name, v.values["value"]) == ("+VGS", 7)
    assert parse_line("+VGS=7").values["value"] == 7  # HSP 1.2 form
    assert parse_line("AT+VGM=9").values["value"] == 9
    assert parse_line("+XAPL=iPhone,2").name == "+XAPL"


def test_looks_like_at() -> None:
    assert looks_like_at(b"AT+BRSF=1\r")
    assert looks_like_at(b"\r\n+CIEV: 1,1\r\n")
    assert not looks_like_at(b"\x80\x01\x02")


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_parse_never_raises(text: str) -> None:
    line = parse_line(text)
    assert line.kind in ("command", "final", "result")


@given(st.lists(st.binary(max_size=40), max_size=8))
@settings(max_examples=200, deadline=None)
def test_splitter_never_raises_and_keeps_text(chunks: list[bytes]) -> None:
    sp = LineSplitter()
    out: list[str] = []
    for c in chunks:
        out += sp.feed(c)
    joined = b"".join(chunks).decode("latin-1")
    for line in out:
        assert line in joined


# -- tshark differential: command names of every AT line of every HFP frame -------------------


@pytest.mark.tshark
@pytest.mark.parametrize("name", HFP_CAPTURES)
def test_command_names_match_tshark(name: str) -> None:
    path = SHARED_CAPTURES / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    rows = tshark_fields(
        Path(path), ["frame.number", "bthfp.at_cmd"], "-Y", "bthfp", "-E", "occurrence=a"
    )
    cap = load(path)
    checked = 0
    for frame_s, cmds in rows:
        p = cap.payload(int(frame_s))
        f = decode_rfcomm(p[8:])
        names = [parse_line(x).name for x in split_lines(f.payload)]
        assert names == [c for c in cmds.split(",") if c], frame_s
        checked += 1
    assert checked >= 20
