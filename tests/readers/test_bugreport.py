"""Android bugreport zips (issue 3 §1).

The zip is built like ``adb bugreport`` builds it (AOSP ``frameworks/native/cmds/dumpstate``:
``dumpstate.cpp`` adds the main text as ``bugreport-<device>-<build>-<date>.txt`` at the top,
``main_entry.txt`` naming it and ``version.txt``, and copies directories under ``FS/`` via
``AddDir``: ``/data/misc/bluetooth/logs`` → ``FS/data/misc/bluetooth/logs/``). The snoop logs follow
``snoop_logger.cc``: ``OpenNextSnoopLogFile`` renames the full ``btsnoop_hci.log`` to ``.last``
and starts a new file with a fresh btsnoop header; ``DumpSnoozLogToFile`` writes
``btsnooz_hci.log`` as btsnoop 1002 with ACL cut (``get_btsnooz_packet_length_to_write``). The
summary section is the one built in test_reader_btsnooz (``btif_debug_btsnoop_dump``).

Oracle: tshark reading the split ``.last`` and current files one after the other.
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.capture import CaptureError
from analyzer.cli import cli
from analyzer.readers import Source, load, read_source
from tests.cli.test_convert import need
from tests.conftest import SHARED_CAPTURES
from tests.oracle import tshark_frames
from tests.readers.test_btsnooz import make_snooz, summary_text

FULL = SHARED_CAPTURES / "pfalcon_Chsmartbulb-led-bulb-speaker_btsnoop_hci.log"
SNOOZ_SRC = SHARED_CAPTURES / "durnerj_PoGo-Plus-BLE_btsnoop_hci.log"
LOGS = "FS/data/misc/bluetooth/logs/"
TXT = "bugreport-sargo-QQ3A.200805.001-2020-08-20-10-00-00.txt"
SPLIT = 300


def split_btsnoop(data: bytes, at: int) -> tuple[bytes, bytes]:
    """The first ``at`` records and the rest, each behind its own btsnoop header."""
    off, n = 16, 0
    while n < at:
        incl = struct.unpack_from(">I", data, off + 4)[0]
        off += 24 + incl
        n += 1
    return data[:off], data[:16] + data[off:]


def snooz_btsnoop(data: bytes) -> bytes:
    """btsnooz_hci.log as current AOSP writes it: btsnoop 1002, ACL cut to 14 bytes (+ type byte)
    unless L2CAP CID 1, SCO/ISO dropped, original length kept."""
    out = bytearray(data[:16])
    off = 16
    while off + 24 <= len(data):
        orig, incl, flags, drops, ts = struct.unpack_from(">IIIIq", data, off)
        rec = data[off + 24 : off + 24 + incl]
        off += 24 + incl
        h4, pkt = rec[0], rec[1:]
        if h4 in (3, 5):
            continue
        keep = len(pkt)
        if h4 == 2:
            keep = min(8, len(pkt))
            if len(pkt) > 8:
                keep = len(pkt) if pkt[6] | (pkt[7] << 8) == 1 else min(14, len(pkt))
        out += struct.pack(">IIIIq", orig, keep + 1, flags, drops, ts) + bytes([h4]) + pkt[:keep]
    return bytes(out)


@pytest.fixture
def parts(tmp_path: Path) -> dict[str, Path]:
    need(FULL)
    need(SNOOZ_SRC)
    last, cur = split_btsnoop(FULL.read_bytes(), SPLIT)
    snooz = snooz_btsnoop(SNOOZ_SRC.read_bytes())
    blob, _ = make_snooz(FULL, 2)
    files = {
        "last": tmp_path / "btsnoop_hci.log.last",
        "cur": tmp_path / "btsnoop_hci.log",
        "snooz": tmp_path / "btsnooz_hci.log",
    }
    files["last"].write_bytes(last)
    files["cur"].write_bytes(cur)
    files["snooz"].write_bytes(snooz)
    zpath = tmp_path / "bugreport-sargo-QQ3A.200805.001-2020-08-20-10-00-00.zip"
    text = (
        b"========================================================\n"
        b"== dumpstate: 2020-08-20 10:00:00\n"
        b"========================================================\n\n"
        + b"------ DUMPSYS (dumpsys) ------\n" * 50
        + summary_text(blob)
        + b"------ 0.1s was the duration of 'DUMPSYS' ------\n"
    )
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("version.txt", "2.0")
        z.writestr(TXT, text)
        z.writestr("main_entry.txt", TXT)
        z.writestr("FS/data/misc/bluetooth/logs/", b"")
        z.write(files["last"], LOGS + "btsnoop_hci.log.last")
        z.write(files["cur"], LOGS + "btsnoop_hci.log")
        z.write(files["snooz"], LOGS + "btsnooz_hci.log")
        z.writestr("FS/data/misc/bluetooth/bt_config.conf", "[Info]\n")
    files["zip"] = zpath
    return files


@pytest.mark.tshark
def test_last_and_current_are_one_capture(parts: dict[str, Path]) -> None:
    cap = load(parts["zip"])
    theirs = tshark_frames(parts["last"]) + tshark_frames(parts["cur"])
    assert len(cap) == len(theirs) == len(tshark_frames(FULL))
    assert cap.frames["time_us"].to_list() == [t for t, _ in theirs]
    assert cap.frames["index"].to_list() == list(range(1, len(theirs) + 1))
    for i in (1, SPLIT, SPLIT + 1, len(theirs)):
        assert cap.payload(i) == theirs[i - 1][1][1:]
    extra = cap.meta.extra
    assert extra["container"] == "bugreport"
    assert extra["selected"] == LOGS + "btsnoop_hci.log"
    listing = {item["name"]: item for item in extra["logs"]}
    assert set(listing) == {
        LOGS + "btsnoop_hci.log",
        LOGS + "btsnooz_hci.log",
        "BTSNOOP_LOG_SUMMARY",
    }
    assert listing[LOGS + "btsnoop_hci.log"]["parts"] == [
        LOGS + "btsnoop_hci.log.last",
        LOGS + "btsnoop_hci.log",
    ]
    assert listing[LOGS + "btsnooz_hci.log"]["frames"] == len(tshark_frames(parts["snooz"]))


@pytest.mark.tshark
def test_pick_each_log(parts: dict[str, Path]) -> None:
    snooz = load(parts["zip"], log="btsnooz_hci.log")
    theirs = tshark_frames(parts["snooz"])
    assert len(snooz) == len(theirs)
    assert snooz.frames["time_us"].to_list() == [t for t, _ in theirs]
    assert snooz.truncated_count > 0
    assert not snooz.meta.filtered  # btsnooz is not filtered snoop mode
    summ = load(parts["zip"], log="BTSNOOP_LOG_SUMMARY")
    assert summ.meta.format == "btsnooz"
    assert summ.frames["time_us"].to_list() == [t for t, _ in tshark_frames(FULL)]
    with pytest.raises(CaptureError, match="no log named"):
        load(parts["zip"], log="nope.log")


def test_cli_info_lists_logs(parts: dict[str, Path]) -> None:
    res = CliRunner().invoke(cli, ["info", "--json", str(parts["zip"])])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert len(info["extra"]["logs"]) == 3
    res = CliRunner().invoke(cli, ["info", str(parts["zip"]), "--log", "missing"])
    assert res.exit_code == 2


@pytest.mark.tshark
def test_non_continuing_last_is_listed_apart(tmp_path: Path, parts: dict[str, Path]) -> None:
    """A .last whose times come after the current file is not merged."""
    z = tmp_path / "swapped.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(parts["cur"], LOGS + "btsnoop_hci.log.last")
        zf.write(parts["last"], LOGS + "btsnoop_hci.log")
    cap = load(z)
    names = [item["name"] for item in cap.meta.extra["logs"]]
    assert sorted(names) == [LOGS + "btsnoop_hci.log", LOGS + "btsnoop_hci.log.last"]
    assert len(cap) == max(len(tshark_frames(parts["cur"])), len(tshark_frames(parts["last"])))


@pytest.mark.tshark
def test_plain_zip_of_captures(tmp_path: Path) -> None:
    need(FULL)
    pklg = SHARED_CAPTURES / "ap4y_iSAP_hci_dump.pklg"
    z = tmp_path / "captures.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(FULL, "a/phone.log")
        zf.write(pklg, "b/mac.pklg")
        zf.writestr("README.txt", "two captures")
    cap = load(z)
    assert cap.meta.extra["container"] == "zip"
    assert len(cap) == len(tshark_frames(FULL))
    mac = load(z, log="mac.pklg")
    assert mac.meta.format == "packetlogger"
    assert len(mac) == len(tshark_frames(pklg))


def test_zip_without_capture_and_broken_zip(tmp_path: Path) -> None:
    z = tmp_path / "empty.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("notes.txt", "nothing")
    with pytest.raises(CaptureError):
        load(z)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    with pytest.raises(CaptureError):
        load(broken)


def _seed_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(LOGS + "btsnoop_hci.log", b"btsnoop\x00\x00\x00\x00\x01\x00\x00\x03\xea")
        zf.writestr(TXT, summary_text(b"\x02" + b"\x00" * 8 + b"x\x9c\x03\x00\x00\x00\x00\x01"))
    return buf.getvalue()


SEED = _seed_zip()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEED) - 1), st.integers(0, 255), st.integers(0, len(SEED)))
def test_never_raises_but_capture_error(pos: int, byte: int, cut: int) -> None:
    blob = (SEED[:pos] + bytes([byte]) + SEED[pos + 1 :])[: max(cut, 4)]
    with contextlib.suppress(CaptureError):
        read_source(Source(buffer=blob, path="fuzz.zip", size=len(blob)))


def _shift(data: bytes, delta_us: int) -> bytes:
    """A btsnoop file with every record's timestamp moved by ``delta_us``."""
    out = bytearray(data)
    off = 16
    while off + 24 <= len(out):
        incl = struct.unpack_from(">I", out, off + 4)[0]
        ts = struct.unpack_from(">q", out, off + 16)[0]
        struct.pack_into(">q", out, off + 16, ts + delta_us)
        off += 24 + incl
    return bytes(out)


def test_last_days_apart_is_its_own_capture(parts: dict[str, Path], tmp_path: Path) -> None:
    """A .last from 4.5 days earlier (Bluetooth off in between) is not joined to the current log
    (issue 16 §6): the current log is the capture, the .last is listed to pick with --log."""
    old = _shift(parts["last"].read_bytes(), -int(4.5 * 86400e6))
    zpath = tmp_path / "apart.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr(LOGS + "btsnoop_hci.log.last", old)
        z.write(parts["cur"], LOGS + "btsnoop_hci.log")
    cap = load(zpath)
    cur = load(parts["cur"])
    assert len(cap) == len(cur)
    assert cap.frames["time_us"].to_list() == cur.frames["time_us"].to_list()
    listing = {item["name"]: item for item in cap.meta.extra["logs"]}
    assert LOGS + "btsnoop_hci.log.last" in listing
    assert "parts" not in listing[LOGS + "btsnoop_hci.log"]  # not joined
    assert any("--log" in w for w in cap.warnings)
    assert len(load(zpath, log="btsnoop_hci.log.last")) == len(load(parts["last"]))


def test_frames_cited_per_file(parts: dict[str, Path]) -> None:
    """A capture joining .last and the current log names where each frame is in Wireshark
    (issue 16 §6): frame SPLIT+1 of the joined capture is the current log's #1."""
    from analyzer.analysis import analyze_capture

    cap = load(parts["zip"])
    a = analyze_capture(cap)
    src = a.capture.extra.sources
    assert [(s.name, s.first_frame, s.frames) for s in src] == [
        ("btsnoop_hci.log.last", 1, SPLIT),
        ("btsnoop_hci.log", SPLIT + 1, len(cap) - SPLIT),
    ]
    assert a.frame_ref(SPLIT) == f"btsnoop_hci.log.last #{SPLIT}"
    assert a.frame_ref(SPLIT + 1) == "btsnoop_hci.log #1"
    assert cap.payload(SPLIT + 1) == load(parts["cur"]).payload(1)
    for f in a.findings:
        assert f.frame_refs == [a.frame_ref(x) for x in f.frames]
    single = analyze_capture(load(parts["cur"]))
    assert single.frame_ref(5) == "#5" and all(not f.frame_refs for f in single.findings)
