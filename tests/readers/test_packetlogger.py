"""Apple PacketLogger reader (issue 3 §4): frame counts and times match tshark (Wireshark's
``wiretap/packetlogger.c`` is the reference for the layout and the byte-order rule)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.capture import CaptureError
from analyzer.readers import Source, load, read_source
from analyzer.readers.packetlogger import sniff
from tests.cli.test_convert import need
from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_fields, tshark_frames

PKLG = SHARED_CAPTURES / "ap4y_iSAP_hci_dump.pklg"
KIND = {0: "command", 1: "event", 2: "acl", 3: "acl"}


def _swap_to_le(data: bytes) -> bytes:
    """The same records with little-endian headers (Wireshark reads both)."""
    out = bytearray()
    off = 0
    while off < len(data):
        ln, secs, us = struct.unpack_from(">III", data, off)
        out += struct.pack("<III", ln, secs, us) + data[off + 12 : off + 4 + ln]
        off += 4 + ln
    return bytes(out)


@pytest.mark.tshark
@pytest.mark.parametrize("order", ["be", "le"])
def test_matches_tshark(tmp_path: Path, order: str) -> None:
    need(PKLG)
    path = PKLG
    if order == "le":
        path = tmp_path / "le.pklg"
        path.write_bytes(_swap_to_le(PKLG.read_bytes()))
    theirs = tshark_frames(path)
    assert len(theirs) == 161
    cap = load(path)
    assert cap.meta.format == "packetlogger"
    assert len(cap) == len(theirs)
    assert cap.frames["time_us"].to_list() == [t for t, _ in theirs]
    assert cap.frames["kind"].cast(str).to_list() == [KIND[b[0]] for _, b in theirs]
    for i, (_, raw) in enumerate(theirs, start=1):
        assert cap.payload(i) == raw[1:]
    types = [int(r[0], 16) for r in tshark_fields(path, ["packetlogger.type"])]
    ours = cap.frames["direction"].cast(str).to_list()
    assert ours == ["sent" if t in (0, 2) else "received" for t in types]


def test_not_sniffed_on_other_formats() -> None:
    for p in SHARED_CAPTURES.glob("*"):
        if p.suffix in (".md", ".pklg"):
            continue
        assert not sniff(p.read_bytes()[:4096]), p.name
    assert not sniff(b"hello world, this is text and not a capture file at all")


def test_cut_file_keeps_whole_records(tmp_path: Path) -> None:
    if not PKLG.is_file():
        pytest.skip("corpus not present")
    data = PKLG.read_bytes()
    cut = tmp_path / "cut.pklg"
    cut.write_bytes(data[: len(data) - 5])
    cap = load(cut)
    assert len(cap) == 160
    assert cap.damaged and cap.warnings


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_never_raises_but_capture_error(data: st.DataObject) -> None:
    seed = PKLG.read_bytes()[:600] if PKLG.is_file() else b""
    if seed and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(seed) - 1))
        blob = seed[:i] + bytes([data.draw(st.integers(0, 255))]) + seed[i + 1 :]
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    else:
        blob = data.draw(st.binary(max_size=200))
    try:
        cap = read_source(Source(buffer=blob, path="fuzz", size=len(blob)))
    except CaptureError:
        return
    if len(cap):
        end = (cap.frames["offset"] + cap.frames["length"]).max()
        assert int(end) <= len(cap.buffer)  # type: ignore[arg-type]
