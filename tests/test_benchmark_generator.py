"""The benchmark's synthetic A2DP btsnoop: our reader and tshark (the oracle) must agree it is a
well-formed capture of the asked size with AVDTP signalling and A2DP/SBC media."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from analyzer import load
from benchmarks.gen_a2dp_btsnoop import generate, main, sbc_crc8
from tests.oracle import run_tshark

N = 3000


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "a2dp.btsnoop"
    generate(path, N)
    return path


def _tshark(path: Path, *args: str) -> str:
    return run_tshark(path, *args, timeout=120)


def test_reader_sees_every_frame(capture: Path) -> None:
    cap = load(capture)
    assert len(cap) == N
    assert cap.meta.format == "btsnoop"
    assert cap.meta.link_type == 1002
    assert cap.truncated_count == 0
    assert not cap.damaged
    kinds = Counter(str(k) for k in cap.frames["kind"].to_list())
    assert set(kinds) == {"command", "event", "acl"}
    times = cap.frames["time_us"].to_numpy()
    assert (times[1:] >= times[:-1]).all()  # records are in time order


def test_deterministic(tmp_path: Path, capture: Path) -> None:
    again = tmp_path / "again.btsnoop"
    generate(again, N)
    assert again.read_bytes() == capture.read_bytes()
    other = tmp_path / "other.btsnoop"
    generate(other, N, seed=2)
    assert other.read_bytes() != capture.read_bytes()


@pytest.mark.tshark
def test_tshark_frame_count_and_no_malformed(capture: Path) -> None:
    numbers = _tshark(capture, "-T", "fields", "-e", "frame.number").split()
    assert len(numbers) == N
    bad = _tshark(
        capture,
        "-Y",
        "_ws.malformed || _ws.expert.severity >= warning",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ).split()
    assert bad == []


@pytest.mark.tshark
def test_tshark_sees_avdtp_signalling_and_sbc_media(capture: Path) -> None:
    rows = _tshark(
        capture,
        "-Y",
        "btavdtp.signal_id",
        "-T",
        "fields",
        "-e",
        "btavdtp.signal_id",
        "-e",
        "btavdtp.message_type",
    ).split("\n")
    signals = {tuple(r.split("\t")) for r in rows if r}
    # AVDTP v1.3 §8.5: DISCOVER 0x01, GET_CAPABILITIES 0x02, SET_CONFIGURATION 0x03, OPEN 0x06,
    # START 0x07, SUSPEND 0x09, DELAYREPORT 0x0d; message type 0 command, 2 response accept
    ids = {int(s, 0) for s, _ in signals}
    assert {0x01, 0x02, 0x03, 0x06, 0x07, 0x0D} <= ids
    assert {int(m, 0) for _, m in signals} == {0, 2}
    sbc = _tshark(
        capture,
        "-Y",
        "sbc",
        "-T",
        "fields",
        "-e",
        "sbc.sampling_frequency",
        "-e",
        "sbc.channel_mode",
        "-e",
        "sbc.bitpool",
    ).split("\n")
    sbc = [r for r in sbc if r]
    assert len(sbc) > N // 4  # media dominates the ACL traffic
    first = sbc[0].split("\t")
    # one media packet carries several frames; all 44.1 kHz (2), joint stereo (3), bitpool 53
    assert {int(v, 0) for v in first[0].split(",")} == {2}
    assert {int(v, 0) for v in first[1].split(",")} == {3}
    assert {int(v, 0) for v in first[2].split(",")} == {53}
    cons = _tshark(
        capture, "-Y", "bthci_evt.code == 0x03", "-T", "fields", "-e", "bthci_evt.status"
    ).split()
    assert cons == ["0x00"]  # one successful Connection Complete


@pytest.mark.tshark
def test_fragmented_media_reassembles(tmp_path: Path) -> None:
    """With a 300-byte controller buffer the media PDUs span 3 ACL packets; tshark reassembles."""
    path = tmp_path / "frag.btsnoop"
    assert main([str(path), "--packets", "2000", "--acl-buffer", "300"]) == 0
    assert len(load(path)) == 2000
    pb = _tshark(path, "-Y", "bthci_acl", "-T", "fields", "-e", "bthci_acl.pb_flag").split()
    assert "1" in pb  # continuation fragments present
    assert _tshark(path, "-Y", "sbc", "-T", "fields", "-e", "frame.number").split()
    assert not _tshark(path, "-Y", "_ws.malformed", "-T", "fields", "-e", "frame.number").split()


REAL_A2DP = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "captures"
    / "2m_a2dp-captures_motog2013-lghbs730_btsnoop_hci.log"
)


def _sbc_frames(payload: bytes) -> list[bytes]:
    """SBC frames of one A2DP media packet (L2CAP payload): RTP header, media header, frames.
    Frame length per A2DP Appendix B §12.9."""
    n, p, frames = payload[12] & 0x0F, payload[13:], []
    for _ in range(n):
        if len(p) < 4 or p[0] != 0x9C:
            break
        b1, bitpool = p[1], p[2]
        blocks, mode = 4 * ((b1 >> 4 & 3) + 1), b1 >> 2 & 3
        sb, ch = (8 if b1 & 1 else 4), (1 if mode == 0 else 2)
        if mode in (0, 1):  # mono, dual channel
            length = 4 + 4 * sb * ch // 8 + -(-(blocks * ch * bitpool) // 8)
        else:  # stereo, joint stereo (join bits only in joint stereo)
            length = 4 + 4 * sb * ch // 8 + -(-((sb if mode == 3 else 0) + blocks * bitpool) // 8)
        frames.append(p[:length])
        p = p[length:]
    return frames


def _crc_ok(frame: bytes) -> bool:
    b1 = frame[1]
    sb, mode = (8 if b1 & 1 else 4), b1 >> 2 & 3
    nbits = 16 + (sb if mode == 3 else 0) + 4 * sb * (1 if mode == 0 else 2)
    return sbc_crc8(frame[1:3] + frame[4 : 4 + (nbits - 16 + 7) // 8], nbits) == frame[3]


@pytest.mark.tshark
def test_sbc_crc_matches_a_real_encoder() -> None:
    """Our CRC-8 reproduces the CRC byte of every SBC frame a phone's encoder wrote."""
    if not REAL_A2DP.is_file():
        pytest.skip("shared capture not present")
    numbers = [
        int(x)
        for x in _tshark(REAL_A2DP, "-Y", "sbc", "-T", "fields", "-e", "frame.number").split()
    ]
    cap = load(REAL_A2DP)
    frames = [f for n in numbers[:300] for f in _sbc_frames(cap.payload(n)[8:])]
    assert len(frames) > 500
    assert len({f[3] for f in frames}) > 50  # many distinct CRCs, not one silence frame
    assert all(_crc_ok(f) for f in frames)


@pytest.mark.tshark
def test_generated_sbc_crcs_are_valid(capture: Path) -> None:
    numbers = [
        int(x) for x in _tshark(capture, "-Y", "sbc", "-T", "fields", "-e", "frame.number").split()
    ]
    cap = load(capture)
    frames = [f for n in numbers[:100] for f in _sbc_frames(cap.payload(n)[8:])]
    assert len(frames) >= 500
    assert all(len(f) == 119 and _crc_ok(f) for f in frames)
