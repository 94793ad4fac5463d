"""pcap / pcapng reader: real captures and built ones against tshark, damage, property tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import CaptureError, load
from analyzer.capture import Capture
from analyzer.readers import Source, read_source
from analyzer.readers.pcap import read as pcap_read
from tests import builders as b
from tests.conftest import SHARED_CAPTURES, shared_captures
from tests.oracle import PPI_USER_DLT, tshark_fields, tshark_us

PCAP_MAGICS = {b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


PCAP_FILES = shared_captures("pcap", "pcapng")

# Independent channel mapping (Core Vol 6 Part A §2: RF channel k at 2402 + 2k MHz; advertising
# channels 37/38/39 at RF 0/12/39, data channels 0..36 on the rest in order).
_RF = [37, *range(0, 11), 38, *range(11, 37), 39]


def _extra(path: Path) -> tuple[str, ...]:
    data = path.read_bytes()[:24]
    if data[:4] in PCAP_MAGICS:
        e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        if struct.unpack_from(e + "I", data, 20)[0] & 0xFFFF == 192:
            return ("-o", PPI_USER_DLT)
    return ()


def _check_against_tshark(path: Path, cap: Capture) -> list[list[str]]:
    """Frame count, timestamps, comments and link-type specific columns against tshark."""
    fields = [
        "frame.time_epoch",
        "frame.p2p_dir",
        "frame.interface_id",
        "frame.comment",
        "hci_h4.type",
        "btle.access_address",
        "nordic_ble.direction",
        "nordic_ble.channel",
        "nordic_ble.rssi",
        "btle_rf.channel",
        "btle_rf.signal_dbm",
        "hci_mon.opcode",
        "hci_mon.adapter_id",
    ]
    rows = tshark_fields(path, fields, *_extra(path))
    assert len(cap) == len(rows)
    if not rows:
        return rows
    col = {name: [r[i] if i < len(r) else "" for r in rows] for i, name in enumerate(fields)}
    f = cap.frames
    times = f["time_us"].to_list()
    for i, t in enumerate(col["frame.time_epoch"]):
        if t:  # Simple Packet Blocks have no time stamp in tshark
            assert times[i] == tshark_us(t), f"frame {i + 1}"
    # comments
    theirs = {i + 1: c for i, c in enumerate(col["frame.comment"]) if c}
    assert {k: v.replace("\n", "\\n") for k, v in cap.comments.items()} == theirs
    links = f["link_type"].to_list()
    kinds = f["kind"].cast(str).to_list()
    dirs = f["direction"].cast(str).to_list()
    chans = f["channel"].to_list()
    rssis = f["rssi"].to_list()
    h4_kind = {"0x01": "command", "0x02": "acl", "0x03": "sco", "0x04": "event", "0x05": "iso"}
    for i in range(len(rows)):
        lt = links[i]
        if lt in (187, 201):
            assert kinds[i] == h4_kind.get(col["hci_h4.type"][i], "unknown"), f"frame {i + 1}"
        if lt == 201 or (col["frame.p2p_dir"][i] and lt in (187, 251)):
            expected = {"0": "sent", "1": "received"}.get(col["frame.p2p_dir"][i], "unknown")
            assert dirs[i] == expected, f"frame {i + 1}"
        aa = col["btle.access_address"][i]
        if lt in (251, 256, 272, 192) and aa:
            assert kinds[i] == ("ll_adv" if int(aa, 16) == b.ADV_AA else "ll_data"), i + 1
        if lt == 272:
            d = col["nordic_ble.direction"][i]
            assert dirs[i] == {"1": "sent", "0": "received", "": "unknown"}[d], f"frame {i + 1}"
            assert chans[i] == int(col["nordic_ble.channel"][i]), f"frame {i + 1}"
            assert rssis[i] == int(col["nordic_ble.rssi"][i]), f"frame {i + 1}"
        if lt == 256:
            assert chans[i] == _RF[int(col["btle_rf.channel"][i])], f"frame {i + 1}"
            sig = col["btle_rf.signal_dbm"][i]
            assert rssis[i] == (int(sig) if sig else None), f"frame {i + 1}"
        if lt == 254:
            assert f["adapter"][i] == int(col["hci_mon.adapter_id"][i] or 0)
    return rows


@pytest.mark.tshark
@pytest.mark.parametrize("path", PCAP_FILES, ids=lambda p: p.name[:48])
def test_corpus_matches_tshark(path: Path) -> None:
    cap = load(path)
    assert not cap.damaged
    _check_against_tshark(path, cap)


def test_corpus_has_pcap_files() -> None:
    if not SHARED_CAPTURES.is_dir():
        pytest.skip("../shared/captures not present")
    assert len(PCAP_FILES) >= 10


@pytest.mark.parametrize("path", PCAP_FILES, ids=lambda p: p.name[:48])
def test_advertising_pdus_sit_on_advertising_channels(path: Path) -> None:
    """An LL PDU with the advertising access address travels on channel 37, 38 or 39 for legacy
    advertising, or a secondary channel (0-36) for AUX PDUs — never outside 0-39."""
    cap = load(path)
    f = cap.frames
    adv = f.filter(f["kind"] == "ll_adv")
    if adv.height == 0 or adv["channel"].null_count() == adv.height:
        pytest.skip("no LL advertising with a channel here")
    assert adv["channel"].drop_nulls().is_between(0, 39).all()
    if cap.meta.link_type in (192, 256):  # Ubertooth follows legacy advertising only
        assert adv["channel"].drop_nulls().is_in([37, 38, 39]).all()


def test_h4_nonstandard_types_are_unknown_not_damage(shared_dir: Path) -> None:
    cap = load(shared_dir / "Matheus-Garbelini_esp32_bluetooth_classic_sniffer_ESP32.pcapng")
    assert cap.meta.format == "pcap"  # libpcap despite its extension
    assert len(cap) == 114
    assert set(cap.frames["kind"].cast(str).to_list()) == {"unknown"}
    assert not cap.damaged
    assert cap.payload(1)[0] == 0x09  # unknown frames start at the H4 type byte


def test_ethernet_link_type_warns_once(shared_dir: Path) -> None:
    cap = load(shared_dir / "francozappa_knob_sample-nexmaster-galaxys9slave.pcapng")
    assert len(cap) == 131
    assert set(cap.frames["kind"].cast(str).to_list()) == {"unknown"}
    warns = [w for w in cap.warnings if "link type 1" in w]
    assert len(warns) == 1
    # kept whole: Ethernet frames begin with two 6-byte MAC addresses and an ethertype
    assert cap.frames["length"][0] == cap.frames["orig_length"][0] >= 14


# -- built captures, checked with tshark --------------------------------------------------------

T0 = 1_700_000_000_000_000  # µs


def _write(tmp_path: Path, data: bytes, name: str) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.tshark
def test_built_h4_187(tmp_path: Path) -> None:
    pk = [b.hci_reset_cmd(), b.hci_cmd_complete(), b.hci_acl(), bytes([0x07, 1, 2])]
    data, _ = b.pcap_file([(T0 + i * 1250, p) for i, p in enumerate(pk)], 187)
    path = _write(tmp_path, data, "h4.pcap")
    cap = load(path)
    _check_against_tshark(path, cap)
    assert cap.frames["kind"].cast(str).to_list() == ["command", "event", "acl", "unknown"]
    assert cap.frames["direction"].cast(str).to_list()[:2] == ["sent", "received"]
    assert cap.payload(1) == b"\x03\x0c\x00"  # without the H4 type byte
    assert cap.frames["orig_length"][0] == 3


@pytest.mark.tshark
def test_built_big_endian_pcap_201(tmp_path: Path) -> None:
    pk = [b.h4_phdr(True) + b.hci_reset_cmd(), b.h4_phdr(False) + b.hci_cmd_complete()]
    data, _ = b.pcap_file([(T0 + 7, pk[0]), (T0 + 999_999, pk[1])], 201, big=True)
    assert data[:4] == b"\xa1\xb2\xc3\xd4"
    path = _write(tmp_path, data, "be.pcap")
    cap = load(path)
    assert cap.meta.extra["byte_order"] == "big"
    _check_against_tshark(path, cap)
    assert cap.frames["time_us"].to_list() == [T0 + 7, T0 + 999_999]


@pytest.mark.tshark
def test_built_ns_pcap(tmp_path: Path) -> None:
    t0 = T0 * 1000
    pk = [(t0 + 123_456_789, b.hci_reset_cmd()), (t0 + 123_457_999, b.hci_cmd_complete())]
    for big in (False, True):
        data, _ = b.pcap_file(pk, 187, ns=True, big=big)
        path = _write(tmp_path, data, f"ns{big}.pcap")
        cap = load(path)
        assert cap.meta.extra["time_resolution"] == "ns"
        _check_against_tshark(path, cap)
        assert cap.frames["time_us"].to_list() == [T0 + 123_456, T0 + 123_457]


@pytest.mark.tshark
def test_built_monitor_254(tmp_path: Path) -> None:
    pk = [
        b.monitor(0, 2, b.hci_reset_cmd()[1:]),
        b.monitor(0, 3, b.hci_cmd_complete()[1:]),
        b.monitor(1, 4, b.hci_acl()[1:]),
        b.monitor(1, 5, b.hci_acl()[1:]),
        b.monitor(0xFFFF, 12, b"bluetoothd\x00note\x00"),
    ]
    data, _ = b.pcap_file([(T0 + i, p) for i, p in enumerate(pk)], 254)
    path = _write(tmp_path, data, "mon.pcap")
    cap = load(path)
    _check_against_tshark(path, cap)
    f = cap.frames
    assert f["kind"].cast(str).to_list() == ["command", "event", "acl", "acl", "monitor"]
    assert f["direction"].cast(str).to_list() == ["sent", "received", "sent", "received", "unknown"]
    assert f["adapter"].to_list() == [0, 0, 1, 1, 0xFFFF]
    rows = tshark_fields(path, ["hci_mon.opcode"])
    assert [int(r[0]) for r in rows] == [2, 3, 4, 5, 12]
    assert cap.payload(1) == b"\x03\x0c\x00"


@pytest.mark.tshark
def test_built_le_ll_251(tmp_path: Path) -> None:
    pk = [b.ll_adv_ind(), b.ll_data_empty(), b"\x01\x02"]  # last one too short for an AA
    data, _ = b.pcap_file([(T0 + i, p) for i, p in enumerate(pk)], 251)
    path = _write(tmp_path, data, "ll.pcap")
    cap = load(path)
    _check_against_tshark(path, cap)
    assert cap.frames["kind"].cast(str).to_list() == ["ll_adv", "ll_data", "unknown"]
    assert cap.payload(1)[:4] == struct.pack("<I", b.ADV_AA)


@pytest.mark.tshark
def test_built_le_ll_rf_256(tmp_path: Path) -> None:
    pk = [
        b.btle_rf_phdr(0, -40) + b.ll_adv_ind(),
        b.btle_rf_phdr(12, -41) + b.ll_adv_ind(),
        b.btle_rf_phdr(39, -42, flags=0) + b.ll_adv_ind(),
        b.btle_rf_phdr(1, -43, flags=0x0002 | (2 << 7)) + b.ll_data_empty(),
        b.btle_rf_phdr(38, -44, flags=0x0002 | (3 << 7)) + b.ll_data_empty(),
    ]
    data, _ = b.pcap_file([(T0 + i, p) for i, p in enumerate(pk)], 256)
    path = _write(tmp_path, data, "rf.pcap")
    cap = load(path)
    _check_against_tshark(path, cap)
    f = cap.frames
    assert f["channel"].to_list() == [37, 38, 39, 0, 36]
    assert f["rssi"].to_list() == [-40, -41, None, -43, -44]
    assert f["direction"].cast(str).to_list()[3:] == ["sent", "received"]


@pytest.mark.tshark
def test_built_nordic_272_header_versions(tmp_path: Path) -> None:
    """Every nRF Sniffer header version puts channel/RSSI/flags and the LL packet where tshark
    finds them; direction only on data PDUs (flags bit 1: central -> peripheral = sent)."""
    pk = []
    for v in (0, 1, 2, 3):
        pk.append(
            b.nordic_ble(
                v,
                b.ll_adv_ind(),
                flags=1,
                channel=37 + v % 3,
                rssi=-50 - v,
                packet_id=2 if v == 3 else 6,
            )
        )
        pk.append(b.nordic_ble(v, b.ll_data_empty(), flags=1 | 2, channel=v, rssi=-60 - v))
        pk.append(b.nordic_ble(v, b.ll_data_empty(), flags=1, channel=10 + v, rssi=-70 - v))
    data, _ = b.pcap_file([(T0 + i * 10, p) for i, p in enumerate(pk)], 272)
    path = _write(tmp_path, data, "nordic.pcap")
    cap = load(path)
    _check_against_tshark(path, cap)
    f = cap.frames
    assert f["kind"].cast(str).to_list() == ["ll_adv", "ll_data", "ll_data"] * 4
    assert f["direction"].cast(str).to_list() == ["unknown", "sent", "received"] * 4
    assert f["rssi"].to_list()[:3] == [-50, -60, -70]
    assert cap.payload(2) == b.ll_data_empty()


@pytest.mark.tshark
def test_built_multi_interface_pcapng(tmp_path: Path) -> None:
    """Three interfaces (µs, ns with an offset, 2^-10 s), a comment, epb_flags, PB, SPB, ISB."""
    t_s = 1_700_000_000
    # (an SPB belongs to interface 0; tshark 4.0 mis-frames SPBs on link types with a
    # pseudo-header such as 201, so interface 0 is plain H4)
    nb = b.PcapngBuilder().shb()
    nb.idb(187, tsresol=9, tsoffset=3600).idb(201, name="hci0").idb(251, tsresol=0x80 | 10)
    nb.epb(1, t_s * 10**6 + 1, b.h4_phdr(True) + b.hci_reset_cmd(), comment="first\nline two")
    nb.epb(0, (t_s - 3600) * 10**9 + 5_123_456_789, b.hci_cmd_complete(), flags=1)
    nb.epb(2, (t_s << 10) + 512, b.ll_adv_ind(), comment="adv")
    nb.epb(0, (t_s - 3600) * 10**9 + 6_000_000_999, b.hci_acl(), flags=2, dropcount=3)
    nb.pb(1, t_s * 10**6 + 7, b.h4_phdr(False) + b.hci_cmd_complete(), drops=2)
    nb.spb(b.hci_acl())
    nb.isb(0, 0, ifdrop=4).isb(0, 0, ifdrop=5)
    path = _write(tmp_path, nb.bytes(), "multi.pcapng")
    cap = load(path)
    rows = _check_against_tshark(path, cap)
    f = cap.frames
    assert f["link_type"].to_list() == [201, 187, 251, 187, 201, 187]
    assert cap.meta.link_type == 187
    assert f["adapter"].to_list() == [int(r[2]) if r[2] else 0 for r in rows]
    assert f["time_us"].to_list() == [
        t_s * 10**6 + 1,
        t_s * 10**6 + 5_123_456,
        t_s * 10**6 + 500_000,
        t_s * 10**6 + 6_000_000,
        t_s * 10**6 + 7,
        t_s * 10**6 + 7,  # SPB: no time stamp of its own
    ]
    assert cap.comments == {1: "first\nline two", 3: "adv"}
    assert f["direction"].cast(str).to_list() == [
        "sent",
        "received",
        "unknown",
        "sent",
        "received",
        "unknown",
    ]
    assert cap.meta.drops == 3 + 2 + 5
    assert f["kind"].cast(str).to_list() == ["command", "event", "ll_adv", "acl", "event", "acl"]


@pytest.mark.tshark
def test_built_big_endian_pcapng_two_sections(tmp_path: Path) -> None:
    nb = b.PcapngBuilder(big=True).shb().idb(187)
    nb.epb(0, T0, b.hci_reset_cmd())
    nb.shb(big=False).idb(201)
    nb.epb(0, T0 + 10, b.h4_phdr(False) + b.hci_cmd_complete())
    path = _write(tmp_path, nb.bytes(), "be.pcapng")
    cap = load(path)
    _check_against_tshark(path, cap)
    assert cap.frames["link_type"].to_list() == [187, 201]
    assert cap.frames["time_us"].to_list() == [T0, T0 + 10]


@pytest.mark.tshark
def test_records_longer_than_snaplen_are_read_with_a_warning(tmp_path: Path) -> None:
    pk = [b.h4_phdr(False) + b.hci_cmd_complete(), b.h4_phdr(False) + b.hci_acl()] * 3
    data, _ = b.pcap_file([(T0 + i, p) for i, p in enumerate(pk)], 201, snaplen=16)
    path = _write(tmp_path, data, "snap.pcap")
    cap = load(path)
    _check_against_tshark(path, cap)
    assert len(cap) == 6 and not cap.damaged
    assert sum("snaplen" in w for w in cap.warnings) == 1


def test_header_only_files_have_zero_frames(tmp_path: Path) -> None:
    data, _ = b.pcap_file([], 201)
    cap = load(_write(tmp_path, data, "empty.pcap"))
    assert len(cap) == 0
    assert cap.warnings == []
    cap = load(_write(tmp_path, b.PcapngBuilder().shb().idb(201).bytes(), "empty.pcapng"))
    assert len(cap) == 0
    assert cap.meta.link_type == 201


def test_unusable_global_header_raises_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError):
        load(_write(tmp_path, b"\xd4\xc3\xb2\xa1\x02\x00", "short.pcap"))
    shb = bytearray(b.PcapngBuilder().shb().idb(201).bytes())
    shb[8:12] = b"\x00\x00\x00\x00"  # byte-order magic gone
    with pytest.raises(CaptureError):
        load(_write(tmp_path, bytes(shb), "bom.pcapng"))


# -- damage -------------------------------------------------------------------------------------


def _events(n: int) -> list[tuple[int, bytes]]:
    return [(T0 + i * 1000, b.h4_phdr(False) + b.hci_cmd_complete(i & 0xFF)) for i in range(n)]


def test_pcap_cut_mid_record_keeps_prior_frames(tmp_path: Path) -> None:
    data, offs = b.pcap_file(_events(50), 201)
    for cut in (offs[30] + 5, offs[30] + 16 + 3, len(data) - 1):
        cap = load(_write(tmp_path, data[:cut], "cut.pcap"))
        expected = 30 if cut < offs[31] else 49
        assert len(cap) == expected
        assert cap.warnings and "cut" in " ".join(cap.warnings)
        assert [(d.start, d.end) for d in cap.damaged] == [(offs[expected], cut)]
        assert cap.frames["time_us"].to_list() == [T0 + i * 1000 for i in range(expected)]


def test_pcap_corrupt_length_in_the_middle_keeps_both_sides(tmp_path: Path) -> None:
    data, offs = b.pcap_file(_events(100), 201)
    for bad_incl in (0x7FFFFFFF, 300000, 40):  # implausible, over the limit, sane but wrong
        buf = bytearray(data)
        struct.pack_into("<I", buf, offs[40] + 8, bad_incl)
        cap = load(_write(tmp_path, bytes(buf), "mid.pcap"))
        times = cap.frames["time_us"].to_list()
        assert len(cap) == 99, bad_incl  # only the record with the broken header is lost
        assert times[:40] == [T0 + i * 1000 for i in range(40)]
        assert times[40:] == [T0 + i * 1000 for i in range(41, 100)]
        assert len(cap.damaged) == 1
        d = cap.damaged[0]
        assert d.start == offs[40] and d.end == offs[41]
        assert any(str(d.start) in w for w in cap.warnings)


def test_pcap_garbage_between_records(tmp_path: Path) -> None:
    data, offs = b.pcap_file(_events(20), 201)
    buf = data[: offs[10]] + b"\xff" * 37 + data[offs[10] :]
    cap = load(_write(tmp_path, buf, "garbage.pcap"))
    assert len(cap) == 20
    assert cap.damaged[0].start == offs[10] and cap.damaged[0].end == offs[10] + 37


def test_pcapng_cut_and_corrupt(tmp_path: Path) -> None:
    nb = b.PcapngBuilder().shb().idb(201)
    for t, p in _events(60):
        nb.epb(0, t, p)
    data = nb.bytes()
    offs = nb.packet_offsets
    cap = load(_write(tmp_path, data[: offs[45] + 20], "cut.pcapng"))
    assert len(cap) == 45
    assert any("cut" in w and str(offs[45]) in w for w in cap.warnings)
    for pos, value in ((offs[20] + 4, 0x7FFFFFF0), (offs[20] + 4, 50), (offs[21] - 4, 0)):
        buf = bytearray(data)
        struct.pack_into("<I", buf, pos, value)
        cap = load(_write(tmp_path, bytes(buf), "mid.pcapng"))
        times = cap.frames["time_us"].to_list()
        assert len(cap) == 59
        assert times[:20] == [T0 + i * 1000 for i in range(20)]
        assert times[20:] == [T0 + i * 1000 for i in range(21, 60)]
        assert len(cap.damaged) == 1 and cap.damaged[0].start == offs[20]
        assert cap.damaged[0].end == offs[21]


def test_real_file_corrupted_in_the_middle(shared_dir: Path, tmp_path: Path) -> None:
    src = shared_dir / "BeanCounterTop_ble-pcap-analyzer_hci.pcap"
    whole = load(src)
    offs = (whole.frames["offset"].to_numpy() - 16 - 5).tolist()  # record header offsets
    buf = bytearray(src.read_bytes())
    struct.pack_into("<I", buf, offs[400] + 8, 0xDEADBEEF)
    cap = load(_write(tmp_path, bytes(buf), "bean.pcap"))
    assert len(cap) == len(whole) - 1
    t_all = whole.frames["time_us"].to_list()
    assert cap.frames["time_us"].to_list() == t_all[:400] + t_all[401:]


# -- property tests -----------------------------------------------------------------------------


def _read_bytes(data: bytes) -> Capture | None:
    try:
        return read_source(Source(buffer=data, path="<mem>", size=len(data)))
    except CaptureError:
        return None


_SEEDS = [p for p in PCAP_FILES if p.exists() and p.stat().st_size < 60_000]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SEEDS or [Path(__file__)]),
    st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)), min_size=1, max_size=12),
    st.integers(0, 1 << 30),
)
def test_mutated_real_files_never_crash(path: Path, flips: list[tuple[int, int]], cut: int) -> None:
    if not _SEEDS:
        pytest.skip("no small pcap in the corpus")
    buf = bytearray(path.read_bytes())
    for pos, val in flips:
        buf[pos % len(buf)] = val
    buf = buf[: max(4, len(buf) - cut % 200)]
    cap = _read_bytes(bytes(buf))
    if cap is not None:
        f = cap.frames
        assert (f["offset"] + f["length"] <= len(buf)).all()
        assert (f["length"] >= 0).all()


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([*sorted(PCAP_MAGICS), PCAPNG_MAGIC]),
    st.binary(max_size=400),
)
def test_arbitrary_bytes_after_magic_never_crash(magic: bytes, rest: bytes) -> None:
    data = magic + rest
    try:
        cap = pcap_read(Source(buffer=data, path="<mem>", size=len(data)))
    except CaptureError:
        return
    f = cap.frames
    assert (f["offset"] + f["length"] <= len(data)).all()
    assert np.all(f["index"].to_numpy() == np.arange(1, len(cap) + 1))
