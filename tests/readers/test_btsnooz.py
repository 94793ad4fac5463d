"""btsnooz reader (issue 3 §2).

The summary sections are built here the way AOSP builds them (``btif/src/btif_debug_btsnoop.cc``:
``btsnoop_cb`` header ``btsnooz_header_t`` {length = included + 1, packet_length = length + 1,
delta_time_ms = timestamp_us - last, type = BT_EVT_* >> 8}; ``btsnoop_calculate_packet_length``: ACL
kept to 14 bytes unless L2CAP CID 1, SCO dropped; ``btif_debug_btsnoop_dump``: preamble {version,
last_timestamp_ms}, deflate, base64 in lines of MAX_LINE_LENGTH = 128 between ``--- BEGIN:`` /
``--- END:BTSNOOP_LOG_SUMMARY ---``) from real btsnoop captures; tshark's reading of those
captures is the oracle for times and bytes.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.capture import CaptureError
from analyzer.readers import Source, load, read_source
from analyzer.readers.btsnooz import read as btsnooz_read
from tests.cli.test_convert import need
from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_frames

SARDARK = SHARED_CAPTURES / "sardark1_data-1_btsnooz_hci.log"
SOURCE = SHARED_CAPTURES / "pfalcon_Chsmartbulb-led-bulb-speaker_btsnoop_hci.log"
EPOCH = 0x00DCDDB30F2F8000


def btsnoop_records(path: Path) -> list[tuple[int, int, bytes]]:
    """(flags, unix µs, H4 packet) of each record of a btsnoop 1002 file (RFC 1761 layout)."""
    b = path.read_bytes()
    off, out = 16, []
    while off + 24 <= len(b):
        _o, incl, flags, _d, ts = struct.unpack_from(">IIIIq", b, off)
        out.append((flags, ts - EPOCH, b[off + 24 : off + 24 + incl]))
        off += 24 + incl
    return out


def snooz_type(flags: int, h4: int) -> int | None:
    if h4 == 1:
        return 0x20
    if h4 == 4:
        return 0x10
    if h4 == 2:
        return 0x11 if flags & 1 else 0x21
    return None  # SCO/ISO: "not logging SCO packets"


def included(h4: int, pkt: bytes) -> int:
    if h4 == 2 and len(pkt) > 8:
        return len(pkt) if pkt[6] | (pkt[7] << 8) == 1 else min(14, len(pkt))
    return len(pkt) if h4 != 2 else min(len(pkt), 8)


def make_snooz(path: Path, version: int = 2) -> tuple[bytes, list[tuple[int, bytes, int]]]:
    """btsnooz blob (preamble + deflate) of a btsnoop 1002 file, and the expected frames
    (unix µs, included packet, original length)."""
    body = bytearray()
    expect = []
    last = 0
    for flags, ts, rec in btsnoop_records(path):
        typ = snooz_type(flags, rec[0])
        if typ is None:
            continue
        pkt = rec[1:]
        inc = included(rec[0], pkt)
        delta = ts - last if last else 0
        last = ts
        if version == 2:
            body += struct.pack("<HHIB", inc + 1, len(pkt) + 1, delta, typ)
        else:
            body += struct.pack("<HIB", inc + 1, delta, typ)
        body += pkt[:inc]
        expect.append((ts, pkt[:inc], len(pkt)))
    return struct.pack("<BQ", version, last) + zlib.compress(bytes(body)), expect


def summary_text(blob: bytes) -> bytes:
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + 128] for i in range(0, len(b64), 128)]
    return (
        "DUMP OF SERVICE bluetooth_manager:\nBluetooth Status\n  enabled: true\n"
        f"--- BEGIN:BTSNOOP_LOG_SUMMARY ({len(blob)} bytes in) ---\n"
        + "\n".join(lines)
        + "\n--- END:BTSNOOP_LOG_SUMMARY ---\n\nDUMP OF SERVICE bluetooth_a2dp:\n"
    ).encode()


@pytest.mark.tshark
def test_sardark1_records_and_rebuilt_times() -> None:
    need(SARDARK)
    cap = load(SARDARK)
    assert cap.meta.format == "btsnooz"
    # independent walk of the v2 record layout (btsnooz_header_t, little-endian)
    b = SARDARK.read_bytes()
    off, deltas, types = 16, [], Counter()
    while off < len(b):
        length, _plen, delta, typ = struct.unpack_from("<HHIB", b, off)
        deltas.append(delta)
        types[typ] += 1
        off += 9 + length - 1
    assert off == len(b)
    assert len(cap) == len(deltas) == 6990
    by_kind = cap.summary()["frames_by_kind"]
    assert by_kind == {"command": types[0x20], "event": types[0x10]}
    t = cap.frames["time_us"].to_list()
    assert [t[i + 1] - t[i] for i in range(len(t) - 1)] == deltas[1:]
    assert t[0] == 0  # no preamble, no wall clock: relative times from the first record
    assert any("relative" in w for w in cap.warnings)
    assert cap.truncated_count == 0  # complete commands/events
    assert not cap.meta.filtered


@pytest.mark.tshark
@pytest.mark.parametrize("version", [1, 2])
def test_summary_text_matches_tshark_on_the_source(tmp_path: Path, version: int) -> None:
    need(SOURCE)
    blob, expect = make_snooz(SOURCE, version)
    dump = tmp_path / "dumpsys.txt"
    dump.write_bytes(summary_text(blob))
    cap = load(dump)
    assert cap.meta.format == "btsnooz"
    assert len(cap) == len(expect)
    # oracle: tshark's times and bytes for the same packets in the original btsnoop file
    ts_frames = [f for f in tshark_frames(SOURCE) if f[1][0] in (1, 2, 4)]
    assert cap.frames["time_us"].to_list() == [t for t, _ in ts_frames]
    for i, (_t, raw) in enumerate(ts_frames[:400], start=1):
        assert cap.payload(i) == raw[1:][: len(cap.payload(i))]
    orig = cap.frames["orig_length"].to_list()
    assert orig == [len(raw) - 1 for _, raw in ts_frames]
    n_cut = sum(1 for _, p, o in expect if len(p) < o)
    assert cap.truncated_count == n_cut > 0
    assert not cap.meta.filtered
    assert "payloads_cut" in cap.meta.extra


@pytest.mark.tshark
def test_binary_btsnooz_blob(tmp_path: Path) -> None:
    need(SOURCE)
    blob, expect = make_snooz(SOURCE, 2)
    p = tmp_path / "snooz.bin"
    p.write_bytes(blob)
    cap = load(p)
    assert len(cap) == len(expect)
    assert cap.last_time_us == expect[-1][0]


def test_text_without_section_is_capture_error(tmp_path: Path) -> None:
    p = tmp_path / "bugreport.txt"
    p.write_bytes(b"========================================================\n== dumpstate: x\n")
    with pytest.raises(CaptureError):
        load(p)


def test_bad_version_is_capture_error() -> None:
    blob = struct.pack("<BQ", 7, 0) + zlib.compress(b"")
    with pytest.raises(CaptureError):
        btsnooz_read(Source(buffer=summary_text(blob), path="x", size=1))


_SNOOZ_SEED = struct.pack("<BQ", 2, 1_600_000_000_000_000) + zlib.compress(
    struct.pack("<HHIB", 4, 5, 0, 0x20) + b"\x03\x0c\x00" + struct.pack("<HHIB", 7, 8, 9, 0x10)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda b: b"btsnoop\x00\x00\x00\x00\x01\x00\x00\x03\xea" + b),
        st.binary(max_size=200).map(summary_text),
        st.tuples(st.integers(0, len(_SNOOZ_SEED) - 1), st.integers(0, 255)).map(
            lambda t: _SNOOZ_SEED[: t[0]] + bytes([t[1]]) + _SNOOZ_SEED[t[0] + 1 :]
        ),
        st.integers(0, len(_SNOOZ_SEED)).map(lambda n: summary_text(_SNOOZ_SEED[:n])),
    )
)
def test_never_raises_but_capture_error(data: bytes) -> None:
    try:
        cap = read_source(Source(buffer=data, path="fuzz", size=len(data)))
    except CaptureError:
        return
    n = len(cap)
    if n:
        offs = cap.frames["offset"].to_numpy()
        lens = cap.frames["length"].to_numpy()
        assert int((offs + lens).max()) <= len(cap.buffer)
