"""btsnoop reader: real captures against tshark, damage handling, property tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import CaptureError, load
from analyzer.readers import Source, read_source
from analyzer.readers.btsnoop import EPOCH_DELTA_US
from tests.conftest import shared_captures
from tests.oracle import tshark_fields

BTSNOOP_FILES = shared_captures("btsnoop")


def _tshark_readable(path: Path) -> list[list[str]]:
    rows = tshark_fields(
        path, ["frame.time_epoch", "frame.p2p_dir", "hci_mon.opcode", "hci_mon.adapter_id"]
    )
    return rows


@pytest.mark.tshark
@pytest.mark.parametrize("path", BTSNOOP_FILES, ids=lambda p: p.name[:40])
def test_btsnoop_matches_tshark(path: Path) -> None:
    rows = _tshark_readable(path)
    if not rows and path.stat().st_size > 16 and "btsnooz" in path.name:
        pytest.skip("tshark cannot read this file (btsnooz records behind a btsnoop header)")
    cap = load(path)
    assert len(cap) == len(rows)
    if not rows:
        return
    ours = cap.frames["time_us"].to_numpy()
    if ours.min() < 0:
        # raw timestamps below the btsnoop epoch constant (a phone clock before 1970): tshark
        # reads them unsigned (year 2106, with false backwards steps; CATALOG N29/N30), we
        # read them signed, so they stay in order and before 1970
        assert np.all(np.diff(ours) >= 0)
        assert ours.min() > -366 * 86_400 * 1_000_000  # days before 1970, not 2106
        return
    theirs = np.array([round(float(r[0]) * 1e6) for r in rows], dtype=np.int64)
    # tshark prints 9 decimals; float rounding may move the last µs digit on 1e15 values
    assert np.abs(ours - theirs).max() <= 1
    datalink = cap.meta.link_type
    dirs = cap.frames["direction"].cast(str).to_list()
    if datalink in (1001, 1002):
        expected = ["sent" if r[1] == "0" else "received" for r in rows]
        assert dirs == expected
    else:
        ops = [int(r[2]) for r in rows]
        sent = {2, 4, 6, 18}
        received = {3, 5, 7, 19}
        expected = [
            "sent" if o in sent else "received" if o in received else "unknown" for o in ops
        ]
        assert dirs == expected
        assert cap.frames["adapter"].to_list() == [int(r[3] or 0) for r in rows]


def test_header_only_is_valid_with_zero_frames(shared_dir: Path) -> None:
    cap = load(shared_dir / "Swastik36_OPPO-Earbuds_BT_HCI_2026_0719_110549.cfa")
    assert len(cap) == 0
    assert cap.summary()["first_time"] is None


def _records(n: int) -> tuple[bytes, list[int]]:
    """A small btsnoop 1002 file with n HCI events; returns bytes and record offsets."""
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, 1002))
    offsets = []
    ts0 = EPOCH_DELTA_US + 1_700_000_000_000_000
    for i in range(n):
        pkt = bytes([4, 0x0E, 4, 1, 0x03, 0x0C, 0]) + bytes(i % 7)  # H4 event + padding
        offsets.append(len(out))
        out += struct.pack(">IIIIq", len(pkt), len(pkt), 1 | 2, 0, ts0 + i * 1000) + pkt
    return bytes(out), offsets


def _write(tmp_path: Path, data: bytes, name: str = "x.log") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_cut_mid_record_keeps_every_prior_frame(tmp_path: Path) -> None:
    data, offsets = _records(50)
    cut = offsets[40] + 30  # inside record 41's payload
    cap = load(_write(tmp_path, data[:cut]))
    assert len(cap) == 40
    assert cap.damaged and cap.damaged[0].start == offsets[40]
    assert any(str(offsets[40]) in w for w in cap.warnings)


def test_cut_in_header_keeps_every_prior_frame(tmp_path: Path) -> None:
    data, offsets = _records(20)
    cap = load(_write(tmp_path, data[: offsets[10] + 5]))
    assert len(cap) == 10
    assert cap.warnings


@pytest.mark.parametrize("bad_len", [0xFFFFFF00, 3, 60])
def test_corrupt_length_in_middle_keeps_both_sides(tmp_path: Path, bad_len: int) -> None:
    data, offsets = _records(60)
    buf = bytearray(data)
    # corrupt both length fields of record 30 (index 29)
    struct.pack_into(">II", buf, offsets[29], bad_len, bad_len)
    cap = load(_write(tmp_path, bytes(buf)))
    times = cap.frames["time_us"].to_list()
    t0 = 1_700_000_000_000_000
    kept = {(t - t0) // 1000 for t in times}
    # every record but the damaged one survives; the damaged one survives only when its header
    # still reads as a record (a shortened length: its payload tail is then the skipped range)
    assert set(range(60)) - {29} <= kept <= set(range(60))
    assert len(cap.damaged) == 1
    d = cap.damaged[0]
    assert offsets[29] <= d.start < d.end == offsets[30]
    assert (29 in kept) == (bad_len == 3)


def test_gzip_compressed(tmp_path: Path) -> None:
    import gzip

    data, _ = _records(12)
    cap = load(_write(tmp_path, gzip.compress(data), "x.log.gz"))
    assert len(cap) == 12
    assert cap.meta.compressed


def test_random_bytes_is_not_a_capture(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p = _write(tmp_path, rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "r.bin")
    with pytest.raises(CaptureError, match="not a capture file"):
        load(p)


def test_empty_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="empty"):
        load(_write(tmp_path, b"", "e.log"))
    with pytest.raises(CaptureError, match="directory"):
        load(tmp_path)
    with pytest.raises(CaptureError, match="no such file"):
        load(tmp_path / "missing.log")


def test_datalink_1001_kinds(tmp_path: Path) -> None:
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, 1001))
    ts = EPOCH_DELTA_US + 1_000_000
    for flags, pkt in [
        (2, b"\x03\x0c\x00"),
        (3, b"\x0e\x04\x01\x03\x0c\x00"),
        (0, b"\x01\x00\x00\x00"),
        (1, b"\x01\x20\x00\x00"),
    ]:
        out += struct.pack(">IIIIq", len(pkt), len(pkt), flags, 0, ts) + pkt
    cap = load(_write(tmp_path, bytes(out)))
    assert cap.frames["kind"].cast(str).to_list() == ["command", "event", "acl", "acl"]
    assert cap.frames["direction"].cast(str).to_list() == ["sent", "received", "sent", "received"]
    assert cap.payload(1) == b"\x03\x0c\x00"


def test_nonstandard_h4_type_is_unknown_not_damage(tmp_path: Path) -> None:
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, 1002))
    ts = EPOCH_DELTA_US + 1_000_000
    for pkt in [b"\x04\x0e\x04\x01\x03\x0c\x00", b"\x07\x01\x02\x03", b"\x09\xaa"]:
        out += struct.pack(">IIIIq", len(pkt), len(pkt), 1, 0, ts) + pkt
    cap = load(_write(tmp_path, bytes(out)))
    assert cap.frames["kind"].cast(str).to_list() == ["event", "unknown", "unknown"]
    assert not cap.damaged


BASE, _ = _records(30)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_mutated_btsnoop_never_raises(data: st.DataObject) -> None:
    buf = bytearray(BASE)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    raw = bytes(buf[:cut])
    try:
        cap = read_source(Source(buffer=raw, path="m", size=len(raw)))
    except CaptureError:
        return
    assert len(cap) <= 30 + 5
    assert cap.summary()["frames"] == len(cap)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_after_header_never_raise(tail: bytes) -> None:
    raw = b"btsnoop\x00" + struct.pack(">II", 1, 1002) + tail
    cap = read_source(Source(buffer=raw, path="a", size=len(raw)))
    assert cap.summary()["frames"] == len(cap)
