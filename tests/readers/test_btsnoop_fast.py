"""The lockstep record walk (``btsnoop._fast_offsets``) finds exactly the records the
record-by-record walk finds, on every btsnoop capture of the corpus and on damaged copies of them,
or declines (None) so that the careful walk reads the file. Run with tiny segments so that even
small captures are cut into many chains, false guesses inside payloads included."""

from __future__ import annotations

import os
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analyzer import readers
from analyzer.readers import btsnoop
from tests.builders import damaged_copies
from tests.conftest import container_format, corpus

CAPTURES = [p for p in corpus() if p.exists() and container_format(p) == "btsnoop"]


def _slow_offsets(buf: bytes) -> list[int] | None:
    """Offsets by the plain chain walk, or None where the chain breaks (damage)."""
    out, off = [], btsnoop.HEADER.size
    monitor = struct.unpack_from(">I", buf, 12)[0] == 2001
    while off < len(buf):
        if off + btsnoop.REC_LEN > len(buf):
            return None
        orig, incl, flags = struct.unpack_from(">III", buf, off)
        if incl > orig or incl > btsnoop.MAX_RECORD or off + 24 + incl > len(buf):
            return None
        bad_flags = (flags & 0xFFFF) > btsnoop.MONITOR_MAX_OPCODE if monitor else flags > 3
        if not (orig or flags) or bad_flags:
            return None
        out.append(off)
        off += btsnoop.REC_LEN + incl
    return out


@pytest.fixture
def tiny_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numpy lockstep walk on small captures, cut into many segments and windows (the
    compiled walk is checked by :func:`test_one_pass_columns_equal_the_record_walks`)."""
    monkeypatch.setattr(btsnoop, "FAST_MIN_SIZE", 0)
    monkeypatch.setattr(btsnoop, "FAST_SEGMENT", 2048)
    monkeypatch.setattr(btsnoop, "FAST_WINDOW", 512)
    monkeypatch.setattr(btsnoop, "WALK_WINDOW", 16384)  # many windows: the chain crosses them


def _fast(buf: bytes) -> np.ndarray | None:
    datalink = struct.unpack_from(">I", buf, 12)[0]
    data = np.frombuffer(buf, dtype=np.uint8)
    return btsnoop._walk(data, btsnoop.HEADER.size, len(buf), datalink, None)


@pytest.mark.usefixtures("tiny_segments")
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_fast_walk_equals_record_walk(path: Path) -> None:
    buf = path.read_bytes()
    fast = _fast(buf)
    slow = _slow_offsets(buf)
    if slow is None:
        assert fast is None, "a damaged chain must go to the careful walk"
        return
    if fast is not None:
        assert fast.tolist() == slow


@pytest.mark.usefixtures("tiny_segments")
@pytest.mark.parametrize("path", CAPTURES[:12], ids=lambda p: p.name)
def test_fast_walk_on_damaged_copies(path: Path) -> None:
    """Cut, overwritten and zero-padded copies: the fast walk is exact or declines."""
    buf = path.read_bytes()
    if len(buf) < 256:
        pytest.skip("too small to damage")
    for b in damaged_copies(buf, path.name, 6):
        fast = _fast(b)
        if fast is not None:
            assert fast.tolist() == _slow_offsets(b)


@pytest.mark.usefixtures("tiny_segments")
def test_fast_walk_is_taken() -> None:
    """Most undamaged captures are read by the lockstep walk (not silently always declined)."""
    clean = [p for p in CAPTURES if _slow_offsets(p.read_bytes()) is not None]
    taken = [p for p in clean if _fast(p.read_bytes()) is not None]
    assert len(taken) >= 0.8 * len(clean), (len(taken), len(clean))


@pytest.mark.usefixtures("tiny_segments")
def test_reader_gives_the_same_frames_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole read (frame table, warnings) does not depend on which walk found the records."""
    from analyzer.readers import load

    for path in CAPTURES[:20]:
        fast = load(path)
        with monkeypatch.context() as m:
            m.setattr(btsnoop, "FAST_MIN_SIZE", 1 << 62)
            m.setattr(readers, "USE_COMPILED", False)
            slow = load(path)
        assert fast.frames.equals(slow.frames), path.name
        assert fast.warnings == slow.warnings, path.name


@pytest.mark.parametrize("window", [1 << 25, 4096])
def test_one_pass_columns_equal_the_record_walks(
    monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """The compiled walk that writes each record's fields and first payload bytes into the
    columns as it steps over it gives the columns that the plain record walk's offsets give
    when converted by the numpy path — every column, the payload heads and the drop counters —
    on every btsnoop capture, read in one window or in many; on damaged copies it declines
    exactly where the record chain breaks."""
    if readers._ext is None:
        pytest.skip("the compiled walk is not built in this install")
    monkeypatch.setattr(btsnoop, "WALK_WINDOW", window)
    monkeypatch.setattr(btsnoop, "COMPILED_CALL", window)
    checked = 0
    for path in CAPTURES:
        whole = path.read_bytes()
        copies = damaged_copies(whole, path.name, 2) if len(whole) > 256 else []
        for buf in [whole, *copies]:
            if len(buf) < btsnoop.HEADER.size:
                continue
            datalink = struct.unpack_from(">I", buf, 12)[0]
            data = np.frombuffer(buf, dtype=np.uint8)
            size, start = len(buf), btsnoop.HEADER.size
            one = btsnoop._compiled_columns(readers._ext, data, start, size, datalink, None)
            offs = _slow_offsets(buf)
            assert (one is None) == (offs is None), path.name
            if one is None or offs is None:
                continue
            two = btsnoop._columns(data, np.asarray(offs, np.int64), None, datalink)
            for name in btsnoop._ARRAYS:
                a, b = getattr(one, name), getattr(two, name)
                assert (a is None and b is None) or np.array_equal(a, b), (path.name, name)
            assert one.drops == two.drops, path.name
            checked += 1
    assert checked >= len(CAPTURES) - 2


@pytest.mark.skipif(readers._ext is None, reason="compiled module not built")
@pytest.mark.parametrize("limit", [btsnoop.KEEP_BYTES, 300])
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_kept_le_meta_payloads_are_the_files_bytes(
    path: Path, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LE Meta event payloads the compiled walk copies out are the file's bytes, a prefix of
    those events in frame order within the limit (a small limit stops it part way), and
    ``Capture.packed`` gives the same bytes from them as from the file — mixed requests, with
    frames that were not kept, included."""
    monkeypatch.setattr(btsnoop, "COMPILED_CALL", 16384)  # many calls: keeping resumes
    monkeypatch.setattr(btsnoop, "KEEP_BYTES", limit)
    cap = readers.load(path)
    f = cap.frames
    raw = bytes(cap.buffer)  # (a btsnooz log: the inflated records)
    offs, lens = f["offset"].to_numpy(), f["length"].to_numpy()
    kinds = f["kind"].cast(str).to_list()
    meta = [
        i for i in range(f.height) if kinds[i] == "event" and lens[i] > 0 and raw[offs[i]] == 0x3E
    ]
    kept = cap.kept
    if kept is None:  # none, none fits, or not read by the compiled walk (btsnooz)
        assert not meta or limit < int(lens[meta[0]]) or cap.meta.format != "btsnoop"
        return
    k = kept.offset.size
    assert kept.offset.tolist() == [int(offs[i]) for i in meta[:k]]
    assert kept.blob.size <= limit
    assert k == len(meta) or kept.blob.size + int(lens[meta[k]]) > limit
    for j, i in enumerate(meta[:k]):
        piece = kept.blob[kept.start[j] : kept.start[j + 1]].tobytes()
        assert piece == raw[offs[i] : offs[i] + lens[i]]
    everything = np.arange(f.height)
    for rows in (np.asarray(meta[:k], dtype=np.int64), everything):
        got, _starts = cap.packed(offs[rows], lens[rows])
        want = b"".join(raw[offs[i] : offs[i] + lens[i]] for i in rows.tolist())
        assert got.tobytes() == want


def _same_capture(a: object, b: object) -> None:
    from analyzer.capture import Capture

    assert isinstance(a, Capture) and isinstance(b, Capture)
    assert a.frames.equals(b.frames)
    assert a.warnings == b.warnings and a.damaged == b.damaged
    assert replace(a.meta, path="") == replace(b.meta, path="")
    assert (a.heads is None) == (b.heads is None)
    if a.heads is not None and b.heads is not None:
        assert np.array_equal(a.heads, b.heads)
    assert (a.kept is None) == (b.kept is None)
    if a.kept is not None and b.kept is not None:
        assert np.array_equal(a.kept.offset, b.kept.offset)
        assert np.array_equal(a.kept.blob, b.kept.blob)


@pytest.mark.skipif(readers._ext is None, reason="compiled module not built")
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_prefetched_read_equals_plain_read(path: Path, tmp_path: Path) -> None:
    """``btsnoop.prefetch`` (the walk on a thread while a command imports) gives the capture a
    plain read gives — damaged copies included, where the prefetch's walk declines — and is
    taken once."""
    copies = [path.read_bytes()]
    if len(copies[0]) >= 1024:
        copies += list(damaged_copies(copies[0], path.name, 2))
    for k, raw in enumerate(copies):
        f = tmp_path / f"copy{k}.log"
        f.write_bytes(raw)
        try:
            plain = readers.load(f)
        except readers.CaptureError:
            btsnoop.prefetch(str(f))
            with pytest.raises(readers.CaptureError):
                readers.load(f)
            btsnoop._PREFETCH.clear()
            continue
        btsnoop.prefetch(str(f))
        _same_capture(readers.load(f), plain)
        assert not btsnoop._PREFETCH  # taken


@pytest.mark.skipif(readers._ext is None, reason="compiled module not built")
def test_prefetch_of_a_changed_or_other_file_is_not_used(tmp_path: Path) -> None:
    """A file rewritten after its prefetch is read afresh (its own records, not the walked
    ones); anything that is not a btsnoop file, or no file, is not prefetched."""
    one, two = CAPTURES[0].read_bytes(), CAPTURES[1].read_bytes()
    f = tmp_path / "log"
    f.write_bytes(one)
    btsnoop.prefetch(str(f))
    for thread, _result, _datalink in btsnoop._PREFETCH.values():
        thread.join()  # (a file cut while it is walked ends the process: SIGBUS)
    f.write_bytes(two)
    _same_capture(readers.load(f), readers.load(CAPTURES[1]))
    btsnoop._PREFETCH.clear()
    (tmp_path / "text").write_bytes(b"not a capture at all, nothing to walk")
    os.mkfifo(tmp_path / "fifo")  # no writer: opening it to read must not wait
    for other in (tmp_path / "text", tmp_path / "missing", tmp_path, tmp_path / "fifo"):
        btsnoop.prefetch(str(other))
        assert not btsnoop._PREFETCH


@pytest.mark.skipif(readers._ext is None, reason="compiled module not built")
@pytest.mark.parametrize("call", [btsnoop.COMPILED_CALL, 700])
def test_compiled_walk_counts_time_going_backwards(
    call: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled walk counts the records stamped earlier than the one before them (across
    its calls too) as the numpy count over the time column does: the same warning."""
    raw = bytearray(CAPTURES[0].read_bytes())
    offs = _slow_offsets(bytes(raw))
    assert offs is not None and len(offs) > 20
    for k, off in enumerate(offs):
        if k % 7 == 3 or k % 11 == 5:  # stamped 1 s before the record before it
            prev = struct.unpack_from(">q", raw, offs[k - 1] + 16)[0]
            struct.pack_into(">q", raw, off + 16, prev - 1_000_000)
    f = tmp_path / "back.log"
    f.write_bytes(bytes(raw))
    monkeypatch.setattr(btsnoop, "COMPILED_CALL", call)
    fast = readers.load(f)
    monkeypatch.setattr(readers, "USE_COMPILED", False)
    plain = readers.load(f)
    want = [w for w in plain.warnings if "backwards" in w]
    assert want and [w for w in fast.warnings if "backwards" in w] == want
