"""Hostile containers (issue 18 §3): decompression bombs at every nesting level, lying zip
sizes, zips of many entries, symlink / traversal / control-character entry names, FIFOs and
devices as input, a planted symlink at convert's temporary name. Each gives a one-line error
(exit 2) or a partial result with a warning, in bounded time and memory; every hostile file is
built here, small, never committed."""

from __future__ import annotations

import base64
import os
import struct
import threading
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.capture import CaptureError
from analyzer.cli import cli
from analyzer.readers import bugreport, limits, load
from analyzer.readers.limits import LimitError, printable

MiB = 1 << 20
FLOOR = 4 * MiB  # RATIO_FLOOR used by these tests (small, so bombs stay cheap to build)
LOGS = "FS/data/misc/bluetooth/logs/"


def btsnoop(n: int = 3, ts0: int = 0x00E0_0000_0000_0000) -> bytes:
    """A btsnoop 1002 log of ``n`` HCI Reset commands, 1 ms apart."""
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, 1002))
    for i in range(n):
        out += struct.pack(">IIIIq", 4, 4, 2, 0, ts0 + i * 1000) + b"\x01\x03\x0c\x00"
    return bytes(out)


def zeros_deflate(n: int, wbits: int, head: bytes = b"") -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    parts = [c.compress(head)]
    block = bytes(MiB)
    parts += [c.compress(block) for _ in range(n // MiB)]
    return b"".join([*parts, c.flush()])


@pytest.fixture(autouse=True)
def small_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "RATIO_FLOOR", FLOOR)


def bounded(fn: Callable[[], object], *, seconds: float = 5.0, peak: int = 4 * FLOOR) -> object:
    """Run ``fn``; it must end within ``seconds`` having allocated at most ``peak`` bytes."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result: object = fn()
    except CaptureError as exc:
        result = exc
    finally:
        elapsed = time.perf_counter() - t0
        _cur, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, elapsed
    assert top < peak, top
    return result


def cli_fails(path: Path, *args: str) -> str:
    """The CLI exits 2 with exactly one line on stderr; returns it."""
    res = CliRunner().invoke(cli, ["info", str(path), *args])
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert "\x1b" not in res.stderr
    return lines[0]


def test_gzip_bomb_refused_before_inflating(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(zeros_deflate(64 * MiB, 31, btsnoop(0)))
    err = bounded(lambda: load(bomb))
    assert isinstance(err, LimitError)
    assert "inflates past 4 MiB" in str(err)
    assert "refused" in cli_fails(bomb)


def test_gzip_inside_zip_counts(tmp_path: Path) -> None:
    z = tmp_path / "nested.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(LOGS + "btsnoop_hci.log.gz", zeros_deflate(64 * MiB, 31, btsnoop(0)))
    err = bounded(lambda: load(z))
    assert isinstance(err, LimitError)
    assert "gzip stream in zip entry" in str(err)


def test_zip_entry_bomb_and_lying_declared_size(tmp_path: Path) -> None:
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(LOGS + "btsnoop_hci.log", btsnoop(0) + bytes(64 * MiB))
    err = bounded(lambda: load(z))
    assert isinstance(err, LimitError)
    # the central directory says the entry is 100 bytes: not trusted, still bounded
    raw = bytearray(z.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<I", raw, cd + 24, 100)
    z.write_bytes(bytes(raw))
    err = bounded(lambda: load(z))
    assert isinstance(err, CaptureError)


def test_btsnooz_binary_and_summary_bombs(tmp_path: Path) -> None:
    blob = b"\x02" + struct.pack("<Q", 0) + zeros_deflate(64 * MiB, 15)
    binary = tmp_path / "snooz.bin"
    binary.write_bytes(blob)
    assert isinstance(bounded(lambda: load(binary)), LimitError)
    text = (
        b"--- BEGIN:BTSNOOP_LOG_SUMMARY (1 bytes in) ---\n"
        + b"\n".join(base64.b64encode(blob[i : i + 57]) for i in range(0, len(blob), 57))
        + b"\n--- END:BTSNOOP_LOG_SUMMARY ---\n"
    )
    z = tmp_path / "bugreport.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bugreport-x-y-2020-01-01-00-00-00.txt", text)
    assert isinstance(bounded(lambda: load(z)), LimitError)


def test_total_budget_over_many_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each entry under its own cap, together over the input's total."""
    monkeypatch.setattr(limits, "MAX_INFLATED_TOTAL", 10 * MiB)
    z = tmp_path / "many.zip"
    log = btsnoop(110_000)  # 3 MiB
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(6):
            zf.writestr(f"cap{i}.log", log)
    assert isinstance(bounded(lambda: load(z), seconds=20, peak=80 * MiB), LimitError)


def test_too_many_entries_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bugreport, "MAX_ZIP_ENTRIES", 50)
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(51):
            zf.writestr(f"e{i}.txt", b"x")
    assert "51 entries" in cli_fails(z)


def test_many_small_captures_read_at_most_a_few(tmp_path: Path) -> None:
    z = tmp_path / "tiny.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(300):
            zf.writestr(f"d/{i:04}.log", btsnoop(1 + i % 3))
    cap = bounded(lambda: load(z), seconds=10)
    assert not isinstance(cap, CaptureError)
    listed = cap.meta.extra["logs"]  # type: ignore[attr-defined]
    assert len(listed) == limits.MAX_ZIP_CAPTURES
    assert any("not examined" in w for w in cap.warnings)  # type: ignore[attr-defined]
    assert len(cap) == 3  # type: ignore[arg-type]


def _add_symlink(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 << 16) | 0
    zf.writestr(info, target)


def test_symlink_traversal_and_absolute_entries(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        _add_symlink(zf, LOGS + "btsnoop_hci.log", "/etc/passwd")
        zf.writestr("../../escape/btsnoop_hci.log.filtered", btsnoop(2))
        zf.writestr("/abs/olute/btsnoop_hci.log.last", btsnoop(4))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    cap = load(z)
    assert cap.meta.extra["selected"] == "/abs/olute/btsnoop_hci.log.last"
    names = {item["name"] for item in cap.meta.extra["logs"]}
    assert names == {"../../escape/btsnoop_hci.log.filtered", "/abs/olute/btsnoop_hci.log.last"}
    assert any("symbolic-link" in w for w in cap.warnings)
    out = work / "out.btsnoop"
    res = CliRunner().invoke(cli, ["convert", str(z), "-o", str(out)])
    assert res.exit_code == 0, res.output
    after = sorted(p.name for p in tmp_path.rglob("*"))
    assert sorted(set(after) - set(before)) == ["out.btsnoop"]


def test_control_characters_in_entry_names_and_paths(tmp_path: Path) -> None:
    z = tmp_path / "names.zip"
    evil = "x\n\x1b[2J\x1b]0;pwned\x07.log"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(evil, btsnoop(2))
        zf.writestr("b.log", btsnoop(1))
    res = CliRunner().invoke(cli, ["info", "--json", str(z)])
    assert res.exit_code == 0
    assert "\x1b" not in res.stderr
    line = cli_fails(z, "--log", "nope\n\x1b[31m")
    assert "no log named" in line and "\\x1b" in line
    odd = tmp_path / "new\nline\x1b[31m.log"
    odd.write_bytes(b"garbage that is no capture")
    assert "no known magic" in cli_fails(odd)
    assert printable("a\nb") == "a\\nb"


def test_truncated_gzip_gives_partial_result(tmp_path: Path) -> None:
    import gzip

    whole = gzip.compress(btsnoop(200))
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    cap = load(cut)
    assert 0 < len(cap) < 200
    assert "cut short" in cap.warnings[0]
    trailing = tmp_path / "trail.log.gz"
    trailing.write_bytes(whole + b"junk")
    cap = load(trailing)
    assert len(cap) == 200
    assert any("after the end of the gzip" in w for w in cap.warnings)
    two = tmp_path / "two.gz"  # gzip members back to back are one stream
    two.write_bytes(gzip.compress(btsnoop(2)) + gzip.compress(btsnoop(2)[16:]))
    assert len(load(two)) == 4


def test_fifo_without_writer_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analyzer import readers

    monkeypatch.setattr(readers, "FIFO_WAIT_S", 0.3)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(CaptureError, match="no data from the pipe"):
        load(fifo)
    assert time.perf_counter() - t0 < 3


def test_fifo_with_writer_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as fh:
            fh.write(btsnoop(5))

    th = threading.Thread(target=writer)
    th.start()
    time.sleep(0.1)
    cap = load(fifo)
    th.join()
    assert len(cap) == 5


def test_device_is_refused() -> None:
    with pytest.raises(CaptureError, match="not a regular file"):
        load("/dev/zero")


def test_convert_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    src = tmp_path / "in.log"
    src.write_bytes(btsnoop(3))
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out = tmp_path / "out.btsnoop"
    for pid in range(os.getpid() - 5, os.getpid() + 5):
        os.symlink(victim, f"{out}.tmp-{pid}")
    res = CliRunner().invoke(cli, ["convert", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert victim.read_bytes() == b"precious"
    assert len(load(out)) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.btsnoop.tmp-")]
