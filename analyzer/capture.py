"""The columnar Capture: every frame of a capture file as one row of a polars DataFrame.

A reader turns a file into a :class:`Capture`. Frame bytes are never copied: each row holds the
``offset`` and ``length`` of the frame's payload inside one buffer (usually a memory-mapped file).

Payload convention (what ``offset``/``length`` point at):

* HCI frames (kinds command/event/acl/sco/iso): the HCI packet *without* the H4 packet-type byte
  and without any container pseudo-header (btsnoop record header, DLT 201 direction word, DLT 254
  monitor header). ``kind`` carries what the H4 type byte said.
* LE link-layer frames (ll_adv/ll_data): the LL packet starting at the 4-byte access address,
  after any RF/sniffer pseudo-header, whose channel and RSSI go to the ``channel``/``rssi`` columns.
  ``channel`` is the LL channel index 0-39 (37/38/39 = advertising channels).
* monitor / unknown frames: the whole record payload.

``orig_length`` is the frame's original length with the same header bytes removed, so a frame was
truncated by the capture tool exactly when ``orig_length > length``.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

# the codes and helpers that need no polars live in analyzer.codes; re-exported here
from analyzer.codes import (  # noqa: F401
    D_RECEIVED,
    D_SENT,
    D_UNKNOWN,
    DIRECTIONS,
    H4_KIND,
    H4_KIND_CODE,
    INT32_MAX,
    K_ACL,
    K_COMMAND,
    K_EVENT,
    K_ISO,
    K_LL_ADV,
    K_LL_DATA,
    K_MONITOR,
    K_SCO,
    K_UNKNOWN,
    KINDS,
    PAGE,
    PASS_WINDOW,
    PAYLOAD_HEAD,
    CaptureError,
    KeptPayloads,
    code_counts,
    iso_utc,
    iter_payloads,
    release_heap,
    release_pages,
    windows,
)
from analyzer.model.base import from_jsonable, to_jsonable
from analyzer.model.capture import CaptureExtra, CaptureSummary, DamagedRangeInfo

KIND_DTYPE = pl.Enum(list(KINDS))
DIRECTION_DTYPE = pl.Enum(list(DIRECTIONS))

FRAME_SCHEMA: dict[str, Any] = {
    "index": pl.Int64,
    "time_us": pl.Int64,
    "direction": DIRECTION_DTYPE,
    "kind": KIND_DTYPE,
    "adapter": pl.Int32,
    "offset": pl.Int64,
    "length": pl.Int32,
    "orig_length": pl.Int32,
    "link_type": pl.Int32,
    "channel": pl.Int16,
    "rssi": pl.Int16,
}

#: frames gathered per step by :meth:`Capture.packed` (bounds its index array)
PACK_CHUNK = 1 << 16


@dataclass
class CaptureMeta:
    """What a capture is, beside its frames."""

    format: str  # "btsnoop", "pcap", "pcapng", "btsnooz", "packetlogger", ...
    link_type: int | None  # btsnoop datalink or pcap link type of the (first) interface
    link_type_name: str
    path: str
    size: int  # bytes on disk
    compressed: bool = False  # gzip-compressed on disk
    drops: int = 0  # cumulative drops reported by the container
    filtered: bool = False  # Android filtered snoop mode (payloads cut, media dropped)
    extra: dict[str, Any] = field(default_factory=dict)


#: a skipped byte range (the model's record: readers and results share it)
DamagedRange = DamagedRangeInfo


@dataclass
class Capture:
    """A capture file as a columnar frame table over one byte buffer."""

    meta: CaptureMeta
    frames: pl.DataFrame
    buffer: bytes | mmap.mmap | memoryview
    warnings: list[str] = field(default_factory=list)
    damaged: list[DamagedRange] = field(default_factory=list)
    comments: dict[int, str] = field(default_factory=dict)  # frame index -> packet comment
    #: each frame's first PAYLOAD_HEAD payload bytes (zero past its end) when the reader kept
    #: them, its rows those of ``frames``: the frame index reads its HCI headers here instead
    #: of faulting the file's pages in again, then drops them
    heads: np.ndarray | None = None
    #: payloads the reader copied out as it read them (the LE Meta events), read by
    #: :meth:`packed` instead of the file's released pages
    kept: KeptPayloads | None = None

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.frames.height

    @property
    def data(self) -> np.ndarray:
        """The buffer as a uint8 numpy array (no copy)."""
        return np.frombuffer(self.buffer, dtype=np.uint8)

    def payload(self, index: int) -> bytes:
        """The payload bytes of frame ``index`` (1-based, as Wireshark numbers frames)."""
        row = index - 1
        off = int(self.frames["offset"][row])
        ln = int(self.frames["length"][row])
        return bytes(self.buffer[off : off + ln])

    def payloads(self, offsets: np.ndarray, lengths: np.ndarray) -> list[bytes]:
        """Payload bytes for many frames given their offset/length columns (read window by
        window, each window's pages released after it when sorted: :func:`iter_payloads`)."""
        return list(iter_payloads(self.buffer, offsets, lengths))

    def packed(self, offsets: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The payloads of many frames copied into one array, and where each starts in it —
        no bytes object per frame. Gathered window by window (sorted offsets: each window's
        pages released after it, :func:`release_pages`), by the compiled gather when built,
        else a bounded numpy index array at a time."""
        from analyzer.readers import compiled

        lens = np.maximum(np.asarray(lengths, dtype=np.int64), 0)
        offs = np.ascontiguousarray(offsets, dtype=np.int64)
        starts = np.zeros(lens.size, dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        out = np.empty(int(lens.sum()), dtype=np.uint8)
        data = self.data
        ext = compiled()
        at = self.kept.find(offs, lens) if self.kept is not None else None
        if at is not None:  # every one copied out by the reader: no page of the file read
            data, offs = self.kept.blob, at  # type: ignore[union-attr]
        ordered = bool(offs.size < 2 or (np.diff(offs) >= 0).all())
        for a, b in windows(offs) if ordered else [(0, offs.size)]:
            if b == a:
                continue
            if ext is not None:
                end = int(starts[b - 1] + lens[b - 1])
                ext.gather_runs(data, offs[a:b], lens[a:b], out[int(starts[a]) : end])
            else:
                for c in range(a, b, PACK_CHUNK):
                    d = min(c + PACK_CHUNK, b)
                    ln = lens[c:d]
                    total = int(ln.sum())
                    if not total:
                        continue
                    base = int(starts[c])
                    # byte k of the chunk's output comes from its frame's offset + k - its start
                    src = np.repeat(offs[c:d] - (starts[c:d] - base), ln) + np.arange(total)
                    out[base : base + total] = data[src]
            if ordered and at is None:
                release_pages(self.buffer, int(offs[a]), int(offs[b - 1] + lens[b - 1]))
        return out, starts

    # -- summary ------------------------------------------------------------------------------
    @property
    def first_time_us(self) -> int | None:
        return None if self.frames.height == 0 else int(self.frames["time_us"].min())  # type: ignore[arg-type]

    @property
    def last_time_us(self) -> int | None:
        return None if self.frames.height == 0 else int(self.frames["time_us"].max())  # type: ignore[arg-type]

    @property
    def truncated_count(self) -> int:
        if self.frames.height == 0:
            return 0
        return int((self.frames["orig_length"] > self.frames["length"]).sum())

    def summary(self) -> dict[str, Any]:
        """The `info` view of this capture, JSON-ready."""
        doc = to_jsonable(self.summary_record())
        assert isinstance(doc, dict)
        for key in ("truncated_frames", "time_backwards", "time_backwards_frames", "damaged"):
            doc.pop(key, None)  # analysis-only facts; `info` prints counts
        if not self.meta.extra:
            doc.pop("extra", None)
        return doc

    def summary_record(self) -> CaptureSummary:
        """What the analysis result keeps of this capture (no bytes)."""
        f = self.frames
        by_kind: dict[str, int] = {}
        by_dir: dict[str, int] = {}
        truncated_frames: list[int] = []
        back_frames: list[int] = []
        backwards = 0
        if f.height:
            # counted on the columns' integer codes (no group-by over the frame table)
            by_kind = code_counts(f["kind"].to_physical().to_numpy(), KINDS)
            by_dir = code_counts(f["direction"].to_physical().to_numpy(), DIRECTIONS)
            cut = np.flatnonzero(f["orig_length"].to_numpy() > f["length"].to_numpy())[:3]
            truncated_frames = [int(i) for i in f["index"].gather(cut).to_list()]
            t = f["time_us"].to_numpy()
            back = np.nonzero(np.diff(t) < 0)[0]
            backwards = int(back.size)
            idx = f["index"]
            back_frames = [int(idx[int(i) + 1]) for i in back[:3]]
        first, last = self.first_time_us, self.last_time_us
        return CaptureSummary(
            path=self.meta.path,
            format=self.meta.format,
            link_type=self.meta.link_type,
            link_type_name=self.meta.link_type_name,
            size=self.meta.size,
            compressed=self.meta.compressed,
            filtered=self.meta.filtered,
            frames=f.height,
            frames_by_kind=by_kind,
            frames_by_direction=by_dir,
            first_time=iso_utc(first),
            last_time=iso_utc(last),
            first_time_us=first,
            last_time_us=last,
            duration_s=None if first is None or last is None else (last - first) / 1e6,
            truncated=self.truncated_count,
            drops=self.meta.drops,
            damaged_bytes=sum(d.end - d.start for d in self.damaged),
            warnings=list(self.warnings),
            extra=from_jsonable(CaptureExtra, self.meta.extra, "capture.extra"),
            truncated_frames=truncated_frames,
            time_backwards=backwards,
            time_backwards_frames=back_frames,
            damaged=list(self.damaged),
        )


def _int32(v: np.ndarray) -> np.ndarray:
    """A length column as int32: an int32 array is taken as it is (the reader clipped it), a
    wider one is clipped, not wrapped."""
    if isinstance(v, np.ndarray) and v.dtype == np.int32:
        return v
    return np.clip(np.asarray(v, dtype=np.int64), 0, INT32_MAX).astype(np.int32)


#: each kind / direction once, in code order: the frame table's columns gather from them
#: (made at import: polars' one-time set-up for enums is paid while a command still imports)
_KIND_VALUES = pl.Series("kind", KINDS, dtype=KIND_DTYPE)
_DIRECTION_VALUES = pl.Series("direction", DIRECTIONS, dtype=DIRECTION_DTYPE)


def build_frames(
    *,
    time_us: np.ndarray,
    direction: np.ndarray,
    kind: np.ndarray,
    offset: np.ndarray,
    length: np.ndarray,
    orig_length: np.ndarray,
    adapter: np.ndarray | int = 0,
    link_type: np.ndarray | int = 0,
    channel: np.ndarray | None = None,
    rssi: np.ndarray | None = None,
) -> pl.DataFrame:
    """Assemble the frame table from numpy columns (direction/kind as integer codes)."""
    n = len(time_us)

    # the codes pick from the enum's own values: a gather of small integers, no string per frame
    kinds = _KIND_VALUES.gather(pl.Series(np.asarray(kind, dtype=np.uint8)))
    dirs = _DIRECTION_VALUES.gather(pl.Series(np.asarray(direction, dtype=np.uint8)))
    columns: dict[str, Any] = {
        # flagged sorted: a later sort or as-of join by frame number is then free
        "index": pl.Series("index", np.arange(1, n + 1, dtype=np.int64)).set_sorted(),
        "time_us": np.asarray(time_us, dtype=np.int64),
        "direction": dirs,
        "kind": kinds,
        "offset": np.asarray(offset, dtype=np.int64),
        # lengths are Int32: an original length claimed past 2**31 - 1 is clipped, not wrapped
        "length": _int32(length),
        "orig_length": _int32(orig_length),
    }
    # a column with one value for every frame (a single-adapter log, no RF channel or RSSI
    # in the container) is a constant: polars keeps one value, not a value per frame
    constants: list[pl.Expr] = []
    for name, given, dtype in (
        ("adapter", adapter, np.int32),
        ("link_type", link_type, np.int32),
        ("channel", channel, np.int16),
        ("rssi", rssi, np.int16),
    ):
        value = given
        if isinstance(value, np.ndarray) and value.size and (value == value.flat[0]).all():
            value = int(value.flat[0])
        if value is None or isinstance(value, int):
            constants.append(pl.lit(value, FRAME_SCHEMA[name]).alias(name))
        else:
            columns[name] = pl.Series(name, np.asarray(value, dtype=dtype), FRAME_SCHEMA[name])
    frames = pl.DataFrame(columns, schema={k: FRAME_SCHEMA[k] for k in columns})
    return frames.with_columns(constants).select(list(FRAME_SCHEMA))


def empty_frames() -> pl.DataFrame:
    return pl.DataFrame(schema=FRAME_SCHEMA)
