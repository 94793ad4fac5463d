"""Hostile framing (issue 18 "Wrong reads"): inputs that used to be misread, crash or run for
minutes. Each is built here and must give a right read, a partial result with a warning or a
one-line error (exit 2), in bounded time."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.capture import Capture, CaptureError
from analyzer.cli import cli
from analyzer.readers import Source, read_source
from tests.builders import PcapngBuilder, hci_reset_cmd, pcap_file

TS0 = 0x00E0_0000_0000_0000  # a btsnoop timestamp in 2021
CENTURY_US = 100 * 365 * 86400 * 1_000_000


def btsnoop(n: int, ts0: int = TS0, *, orig: int = 4, header: bool = True) -> bytes:
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, 1002) if header else b"")
    for i in range(n):
        out += struct.pack(">IIIIq", orig, 4, 2, 0, ts0 + i * 1000) + b"\x01\x03\x0c\x00"
    return bytes(out)


def read(data: bytes) -> Capture:
    return read_source(Source(buffer=data, path="<mem>", size=len(data)))


def timed(data: bytes, seconds: float = 5.0) -> Capture:
    t0 = time.perf_counter()
    cap = read(data)
    assert time.perf_counter() - t0 < seconds
    return cap


def test_zero_padding_is_padding_not_records() -> None:
    cap = read(btsnoop(5) + bytes(24 * 208))
    assert len(cap) == 5
    assert cap.first_time_us is not None and cap.first_time_us > 0  # no year-0 frame
    assert any("zero padding" in w for w in cap.warnings)
    assert not cap.damaged
    cap = read(btsnoop(5) + bytes(24 * 3 + 7) + btsnoop(4, TS0 + 10_000, header=False))
    assert len(cap) == 9
    assert int(cap.frames["time_us"].min()) > 0  # type: ignore[arg-type]
    pcap, _ = pcap_file([(1_600_000_000_000_000 + i, hci_reset_cmd()) for i in range(3)], 187)
    cap = read(pcap + bytes(16 * 50))
    assert len(cap) == 3
    assert any("zero padding" in w for w in cap.warnings)


def test_concatenated_btsnoop_logs_keep_every_frame() -> None:
    """A rotated log joined by hand, the second a century later (far past any resync window)."""
    for cut in (0, 3):  # the first log's last record whole, or cut short
        first = btsnoop(50)
        joined = first[: len(first) - cut] + btsnoop(40, TS0 + CENTURY_US)
        cap = read(joined)
        assert len(cap) == (90 if cut == 0 else 89)
        assert any("second btsnoop header" in w for w in cap.warnings)
        assert int(cap.frames["time_us"][-1]) - int(cap.frames["time_us"][0]) > CENTURY_US // 2
    other = btsnoop(5) + b"btsnoop\x00" + struct.pack(">II", 1, 2001) + b"x" * 30
    cap = read(other)
    assert len(cap) == 5 and cap.damaged


def test_concatenated_pcaps_invent_no_frame() -> None:
    a, _ = pcap_file([(1_600_000_000_000_000 + i, hci_reset_cmd()) for i in range(4)], 187)
    b, _ = pcap_file([(1_700_000_000_000_000 + i, hci_reset_cmd()) for i in range(3)], 187)
    cap = read(a + b)
    assert len(cap) == 7
    assert set(cap.frames["length"].to_list()) == {3}
    assert any("second pcap header" in w for w in cap.warnings)
    c, _ = pcap_file([(1_700_000_000_000_000, hci_reset_cmd())], 201)
    cap = read(a + c)
    assert len(cap) == 4 and cap.damaged


def test_orig_length_over_2_31_does_not_wrap() -> None:
    cap = read(btsnoop(2, orig=0xFFFF_FFF0))
    assert cap.frames["orig_length"].to_list() == [2**31 - 1] * 2
    assert cap.truncated_count == 2


def test_huge_if_tsoffset_is_no_overflow() -> None:
    b = PcapngBuilder().shb().idb(187, tsoffset=2**62).epb(0, 1_000_000, hci_reset_cmd()).bytes()
    cap = read(b)
    assert len(cap) == 1
    assert any("if_tsoffset" in w for w in cap.warnings)


def test_btsnoop_resync_is_vectorised() -> None:
    """20 MB of garbage between good records: read in well under the old ~5 s."""
    garbage = bytes([0xFF]) * (20 << 20)
    cap = timed(btsnoop(3) + garbage + btsnoop(3, TS0 + 5000, header=False), seconds=3)
    assert len(cap) == 6
    assert cap.damaged[0].end - cap.damaged[0].start == len(garbage)


def test_pcapng_many_interfaces_cost_is_linear() -> None:
    b = PcapngBuilder().shb()
    for i in range(20_000):
        b.idb(187 if i % 2 else 65000 + i % 100, tsresol=6 + i % 3)
    for i in range(20_000):
        b.epb(i, 1_000_000 + i, hci_reset_cmd())
    cap = timed(b.bytes(), seconds=5)
    assert len(cap) == 20_000
    assert sum("not a Bluetooth link type" in w for w in cap.warnings) == 1


def test_many_tiny_records() -> None:
    """A million 1-byte records (25 MB) read in bounded time, as records."""
    rec = struct.pack(">IIII", 1, 1, 0, 0)
    body = b"".join(rec + struct.pack(">q", TS0 + i) + b"\x04" for i in range(1_000_000))
    cap = timed(b"btsnoop\x00" + struct.pack(">II", 1, 1002) + body, seconds=10)
    assert len(cap) == 1_000_000


IDB = PcapngBuilder().shb().idb(187).bytes()
CLASSIC = {
    "4 GB record length": btsnoop(3) + struct.pack(">IIIIq", 2**32 - 1, 2**32 - 16, 0, 0, TS0),
    "pcapng block length 0": IDB + struct.pack("<II", 6, 0),
    "pcapng block length 12": IDB + struct.pack("<III", 6, 12, 12),
    "pcapng block length 0xFFFFFFF0": IDB + struct.pack("<II", 6, 0xFFFF_FFF0) + bytes(64),
}


@pytest.mark.parametrize("name", list(CLASSIC))
def test_classic_hostile_lengths(tmp_path: Path, name: str) -> None:
    blob = CLASSIC[name]
    path = tmp_path / "f.cap"
    path.write_bytes(blob)
    t0 = time.perf_counter()
    res = CliRunner().invoke(cli, ["info", "--json", str(path)])
    assert time.perf_counter() - t0 < 5, name
    assert res.exit_code in (0, 2), res.output
    if res.exit_code == 2:
        assert len(res.stderr.splitlines()) == 1
    else:
        assert "skipped" in res.stdout or "cut" in res.stdout, name


def test_truncated_and_headerless_inputs_raise_capture_error() -> None:
    for blob in (b"btsnoop\x00\x00\x00", b"\x0a\x0d\x0d\x0a" + bytes(8), b"\xd4\xc3\xb2\xa1"):
        with pytest.raises(CaptureError):
            read(blob)


def test_zero_run_inside_pcap_is_no_endless_loop() -> None:
    """Found by the fuzzer: a resync landing back on the zero header looped for ever."""
    a, _ = pcap_file([(1_600_000_000_000_000 + i, hci_reset_cmd()) for i in range(3)], 187)
    b, _ = pcap_file([(1_600_000_001_000_000 + i, hci_reset_cmd()) for i in range(3)], 187)
    cap = timed(a + bytes(16 * 3 + 5) + b[24:], seconds=3)
    assert len(cap) == 6
    cap = timed(btsnoop(3) + bytes(24 * 2 + 11) + btsnoop(3, TS0 + 9000, header=False), seconds=3)
    assert len(cap) == 6
