"""``btanalyze convert``: what we write must re-read in tshark with the same frames (issue 3 §5).

tshark is the oracle: frame counts, times, direction and bytes of the converted file are compared
with tshark's reading of the original; the sardark1 acceptance test counts bthci_cmd / bthci_evt
frames in tshark's reading of our output against our own command/event counts.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from analyzer.capture import Capture, CaptureMeta, build_frames
from analyzer.cli import cli
from analyzer.readers import load
from analyzer.writers import WriteError, write_btsnoop, write_pcapng
from tests.conftest import SHARED_CAPTURES
from tests.oracle import need_tshark, tshark_fields, tshark_frames

SARDARK = SHARED_CAPTURES / "sardark1_data-1_btsnooz_hci.log"
PKLG = SHARED_CAPTURES / "ap4y_iSAP_hci_dump.pklg"
MONITOR = SHARED_CAPTURES / "TheoLestandi_Projet_RP_ble_capture.snoop"
H4_1002 = SHARED_CAPTURES / "pfalcon_Chsmartbulb-led-bulb-speaker_btsnoop_hci.log"
NORDIC = (
    SHARED_CAPTURES
    / "Matheus-Garbelini_sweyntooth_noncompliance_nxp_invalid_hop_interval_sniffer.pcapng"
)


def need(path: Path) -> Path:
    """A capture of ../shared/captures that tshark reads (the test skips without either)."""
    if not path.is_file():
        pytest.skip(f"{path.name} not in ../shared/captures")
    need_tshark()
    return path


def convert(src: Path, dst: Path, *args: str) -> None:
    res = CliRunner().invoke(cli, ["convert", str(src), "-o", str(dst), *args])
    assert res.exit_code == 0, res.output


@pytest.mark.tshark
def test_sardark1_converted_decodes_as_hci_commands_and_events(tmp_path: Path) -> None:
    """Acceptance: sardark1 -> btsnoop; tshark sees our command/event counts, nothing malformed."""
    need(SARDARK)
    cap = load(SARDARK)
    assert len(cap) == 6990
    ours = cap.summary()["frames_by_kind"]
    out = tmp_path / "sardark1.btsnoop"
    convert(SARDARK, out, "--format", "btsnoop")
    rows = tshark_fields(out, ["frame.protocols", "_ws.malformed"])
    assert len(rows) == 6990
    n_cmd = sum("bthci_cmd" in r[0] for r in rows)
    n_evt = sum("bthci_evt" in r[0] for r in rows)
    assert (n_cmd, n_evt) == (ours["command"], ours["event"])
    assert not any(len(r) > 1 and r[1] for r in rows)
    assert not [r for r in rows if "malformed" in r[0]]
    # times survive: tshark's times are ours
    times = [t for t, _ in tshark_frames(out)]
    assert times == cap.frames["time_us"].to_list()


@pytest.mark.tshark
@pytest.mark.parametrize("fmt", ["btsnoop", "pcapng"])
def test_packetlogger_convert_keeps_frames(tmp_path: Path, fmt: str) -> None:
    """PacketLogger -> btsnoop/pcapng: tshark sees the same count, times and HCI bytes."""
    need(PKLG)
    orig = tshark_frames(PKLG)
    out = tmp_path / f"pklg.{fmt}"
    convert(PKLG, out, "--format", fmt)
    conv = tshark_frames(out)
    assert len(conv) == len(orig) == 161
    assert [t for t, _ in conv] == [t for t, _ in orig]
    # PacketLogger frame = type byte + HCI packet; btsnoop = H4 byte + HCI packet; DLT 201's
    # direction word goes to wiretap's pseudo-header, so its frame bytes start at the H4 byte too.
    skip = 1
    assert [b[skip:] for _, b in conv] == [b[1:] for _, b in orig]
    pl_to_h4 = {0: 1, 1: 4, 2: 2, 3: 2}
    assert [b[skip - 1] for _, b in conv] == [pl_to_h4[b[0]] for _, b in orig]
    dirs = tshark_fields(out, ["frame.p2p_dir"])
    sent = [r[0] == "0" for r in dirs]
    assert sent == [b[0] in (0, 2) for _, b in orig]


@pytest.mark.tshark
@pytest.mark.parametrize("path", [H4_1002, MONITOR], ids=["h4-1002", "monitor-2001"])
def test_btsnoop_round_trip_is_frame_identical(tmp_path: Path, path: Path) -> None:
    need(path)
    out = tmp_path / "rt.btsnoop"
    convert(path, out, "--format", "btsnoop")
    assert tshark_frames(out) == tshark_frames(path)
    a = tshark_fields(path, ["frame.p2p_dir", "hci_mon.opcode", "hci_mon.adapter_id"])
    b = tshark_fields(out, ["frame.p2p_dir", "hci_mon.opcode", "hci_mon.adapter_id"])
    assert a == b


@pytest.mark.tshark
def test_h4_to_pcapng_201_keeps_bytes_and_direction(tmp_path: Path) -> None:
    need(H4_1002)
    out = tmp_path / "rt.pcapng"
    convert(H4_1002, out)
    orig, conv = tshark_frames(H4_1002), tshark_frames(out)
    assert [t for t, _ in conv] == [t for t, _ in orig]
    assert conv == orig  # DLT 201's direction word is wiretap pseudo-header, not frame bytes
    assert tshark_fields(out, ["frame.p2p_dir"]) == tshark_fields(H4_1002, ["frame.p2p_dir"])
    data = out.read_bytes()
    assert data[:4] == b"\x0a\x0d\x0d\x0a"  # pcapng SHB
    shb_len = struct.unpack_from("<I", data, 4)[0]
    assert struct.unpack_from("<IIH", data, shb_len)[::2] == (1, 201)  # IDB, LINKTYPE 201


@pytest.mark.tshark
def test_ll_capture_to_pcapng_256(tmp_path: Path) -> None:
    """An nRF Sniffer capture: same count and times; LL bytes from the access address kept,
    channel kept, and tshark's btle dissection of each PDU agrees."""
    need(NORDIC)
    out = tmp_path / "ll.pcapng"
    convert(NORDIC, out)
    fields = ["frame.time_epoch", "btle.access_address", "btle.advertising_header.pdu_type"]
    a, b = tshark_fields(NORDIC, fields), tshark_fields(out, fields)
    assert len(a) == len(b) == 754
    assert [r[1:] for r in a] == [r[1:] for r in b]
    ch_a = tshark_fields(NORDIC, ["nordic_ble.channel"])
    rf = [int(r[0]) for r in tshark_fields(out, ["btle_rf.channel"])]
    # RF channel -> LL channel index (Core Vol 6 Part B §1.4.1)
    ll = [{0: 37, 12: 38, 39: 39}.get(c, c - 1 if c < 12 else c - 2) for c in rf]
    assert [int(r[0]) for r in ch_a] == ll
    res = CliRunner().invoke(
        cli, ["convert", str(NORDIC), "-o", str(tmp_path / "x"), "--format", "btsnoop"]
    )
    assert res.exit_code == 2
    assert "pcapng" in res.output


def test_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "junk.bin"
    bad.write_bytes(b"this is not a capture at all" * 10)
    res = CliRunner().invoke(cli, ["convert", str(bad), "-o", str(tmp_path / "o.pcapng")])
    assert res.exit_code == 2
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.pcapng").exists()
    res = CliRunner().invoke(cli, ["convert", str(tmp_path / "missing"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2


def _synthetic(kinds: list[str], dirs: list[str], payloads: list[bytes]) -> Capture:
    buf = b"".join(payloads)
    lens = np.array([len(p) for p in payloads])
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]) if payloads else np.zeros(0)
    from analyzer.capture import DIRECTIONS, KINDS

    frames = build_frames(
        time_us=np.arange(len(payloads), dtype=np.int64) * 1000 + 1_600_000_000_000_000,
        direction=np.array([DIRECTIONS.index(d) for d in dirs]),
        kind=np.array([KINDS.index(k) for k in kinds]),
        offset=offs,
        length=lens,
        orig_length=lens,
    )
    meta = CaptureMeta(format="test", link_type=None, link_type_name="", path="t", size=len(buf))
    return Capture(meta=meta, frames=frames, buffer=buf)


def test_btsnoop_writer_layout_follows_the_format() -> None:
    """Hand-checked bytes: header, record header fields, H4 byte from kind, flags."""
    cap = _synthetic(
        ["command", "event", "acl"],
        ["sent", "received", "received"],
        [b"\x03\x0c\x00", b"\x0e\x04\x01\x03\x0c\x00", b"\x01\x20\x00\x00"],
    )
    out = io.BytesIO()
    write_btsnoop(cap, out)
    data = out.getvalue()
    assert data[:16] == b"btsnoop\x00\x00\x00\x00\x01\x00\x00\x03\xea"
    orig, incl, flags, drops, ts = struct.unpack_from(">IIIIq", data, 16)
    assert (orig, incl, flags, drops) == (4, 4, 2, 0)
    assert ts == 1_600_000_000_000_000 + 0x00DCDDB30F2F8000
    assert data[40:44] == b"\x01\x03\x0c\x00"
    off = 44
    _, incl, flags, _, _ = struct.unpack_from(">IIIIq", data, off)
    assert flags == 3 and data[off + 24] == 4
    off += 24 + incl
    _, incl, flags, _, _ = struct.unpack_from(">IIIIq", data, off)
    assert flags == 1 and data[off + 24] == 2


def test_btsnoop_refuses_ll_frames() -> None:
    cap = _synthetic(["ll_adv"], ["unknown"], [b"\xd6\xbe\x89\x8e\x00\x00"])
    with pytest.raises(WriteError):
        write_btsnoop(cap, io.BytesIO())
    out = io.BytesIO()
    write_pcapng(cap, out)
    assert out.getvalue()[:4] == b"\x0a\x0d\x0d\x0a"


def test_empty_capture_writes_valid_files() -> None:
    cap = _synthetic([], [], [])
    assert cap.frames.height == 0
    out = io.BytesIO()
    write_btsnoop(cap, out)
    assert len(out.getvalue()) == 16
    out = io.BytesIO()
    write_pcapng(cap, out)
    assert out.getvalue()[:4] == b"\x0a\x0d\x0d\x0a"
    assert isinstance(cap.frames, pl.DataFrame)
