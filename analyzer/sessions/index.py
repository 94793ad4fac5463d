"""The hot path: header fields of every HCI frame gathered at once (numpy over the buffer).

No Python object is made per frame here. The result says, for every frame, its HCI event code /
LE subevent, command opcode, ACL handle, packet-boundary flag and the L2CAP CID it belongs to
(continuation fragments inherit the CID of the fragment that started their PDU, per handle and
direction).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analyzer.capture import KINDS, Capture, release_pages, windows
from analyzer.decode.hci import acl_columns, command_columns, event_columns, sco_columns
from analyzer.decode.hci_columns import HeaderFields, compiled_header_fields

#: the frame index's handle column (ranges joined on it must use the same dtype)
HANDLE_NP = np.int16
HANDLE_DTYPE = pl.Int16

#: Events too frequent and too dull to decode one by one (counted, not decoded).
BULK_EVENTS = frozenset({0x13})  # Number Of Completed Packets
#: LE Meta subevents handled by the (columnar) advertising pass, not the per-event pass.
ADV_SUBEVENTS = frozenset({0x02, 0x0D, 0x0B})
#: Qualcomm controllers send their debug log as ACL data on this raw handle field (Linux
#: drivers/bluetooth/hci_qca.c QCA_DEBUG_HANDLE → hci_recv_diag); Android's snoop log keeps it
QCA_DEBUG_HANDLE = 0x2EDC
KIND_EVENT, KIND_COMMAND, KIND_ACL, KIND_SCO, KIND_ISO = (
    KINDS.index(k) for k in ("event", "command", "acl", "sco", "iso")
)


def _gather(
    data: np.ndarray,
    off: np.ndarray,
    ln: np.ndarray,
    kind: np.ndarray,
    code: np.ndarray,
    sub: np.ndarray,
    opcode: np.ndarray,
    handle: np.ndarray,
    pb: np.ndarray,
    l2len: np.ndarray,
    cid: np.ndarray,
    diag: np.ndarray,
    heads: np.ndarray | None,
) -> None:
    """The header columns of one window of frames, written into the given array views
    (``heads``: the frames' first payload bytes when the reader kept them)."""

    def rows(mask: np.ndarray) -> np.ndarray | None:
        return heads[mask] if heads is not None else None

    ev = kind == KINDS.index("event")
    if ev.any():
        cols = event_columns(data, off[ev], ln[ev], rows(ev))
        code[ev] = cols["code"]
        sub[ev] = cols["subevent"]
    cm = kind == KINDS.index("command")
    if cm.any():
        opcode[cm] = command_columns(data, off[cm], ln[cm], rows(cm))["opcode"]
    acl = kind == KINDS.index("acl")
    if acl.any():
        cols = acl_columns(data, off[acl], ln[acl], rows(acl))
        raw = cols["handle"] | (cols["pb"] << 12) | (cols["bc"] << 14)
        diag_acl = raw == QCA_DEBUG_HANDLE
        if diag_acl.any():  # controller debug log, not a link: no handle, no CID
            for k in ("handle", "pb", "l2cap_len", "cid"):
                cols[k] = np.where(diag_acl, -1, cols[k])
            diag[np.nonzero(acl)[0][diag_acl]] = True
        handle[acl] = cols["handle"]
        pb[acl] = cols["pb"]
        l2len[acl] = cols["l2cap_len"]
        cid[acl] = cols["cid"]
    sco = (kind == KINDS.index("sco")) | (kind == KINDS.index("iso"))
    if sco.any():
        handle[sco] = sco_columns(data, off[sco], ln[sco], rows(sco))["handle"]


def frame_index(cap: Capture) -> pl.DataFrame:
    """One row per HCI frame (command/event/acl/sco/iso) with gathered header columns.

    Columns: index, time_us, direction, kind, offset, length, orig_length, code, subevent, opcode,
    handle, pb, l2cap_len, cid (the PDU's CID, forward-filled over continuation fragments), diag
    (a controller debug-log frame, not link data: its handle and CID are -1).
    """
    hci = pl.col("kind").is_in(["command", "event", "acl", "sco", "iso"])
    f = cap.frames
    if not f.select(hci.all()).item():  # an HCI log is all HCI: no copy of the frame table
        f = f.filter(hci)
    n = f.height
    off = f["offset"].to_numpy()
    ln = f["length"].to_numpy()
    kind = f["kind"].to_physical().to_numpy()  # codes into KINDS (no string per frame)
    # the reader's copy of each frame's first bytes, when it kept them for these rows (an
    # all-HCI log): the file's pages are not read again; dropped once used
    heads = cap.heads if cap.heads is not None and cap.heads.shape[0] == n else None
    cap.heads = None
    codes = (KIND_EVENT, KIND_COMMAND, KIND_ACL, KIND_SCO, KIND_ISO)
    fields = compiled_header_fields(cap.data, off, ln, kind, direction_codes(f), codes, heads,
                                    cap.buffer)  # fmt: skip
    if fields is None:
        fields = _numpy_fields(cap, f, off, ln, kind, heads)
    del heads
    return f.select(
        "index", "time_us", "direction", "kind", "offset", "length", "orig_length"
    ).with_columns(
        pl.Series("code", fields.code),
        pl.Series("subevent", fields.subevent),
        pl.Series("opcode", fields.opcode),
        pl.Series("handle", fields.handle),
        pl.Series("pb", fields.pb),
        pl.Series("l2cap_len", fields.l2cap_len),
        pl.Series("cid", fields.cid),
        pl.Series("diag", fields.diag),
    )


def _numpy_fields(
    cap: Capture,
    f: pl.DataFrame,
    off: np.ndarray,
    ln: np.ndarray,
    kind: np.ndarray,
    heads: np.ndarray | None,
) -> HeaderFields:
    """The header columns by numpy, window by window (the path without the compiled module)."""
    n = f.height
    data = cap.data
    # narrow columns, -1 where a field does not apply: a code or a 12-bit handle fits in i16,
    # the PB flag in i8; opcode, L2CAP length and CID take all 16 bits so need i32
    code = np.full(n, -1, np.int16)
    sub = np.full(n, -1, np.int16)
    opcode = np.full(n, -1, np.int32)
    handle = np.full(n, -1, HANDLE_NP)
    pb = np.full(n, -1, np.int8)
    l2len = np.full(n, -1, np.int32)
    cid = np.full(n, -1, np.int32)
    diag = np.zeros(n, dtype=bool)
    for a, b in windows(off):
        _gather(data, off[a:b], ln[a:b], kind[a:b], code[a:b], sub[a:b], opcode[a:b],
                handle[a:b], pb[a:b], l2len[a:b], cid[a:b], diag[a:b],
                heads[a:b] if heads is not None else None)  # fmt: skip
        if heads is None:
            release_pages(cap.buffer, int(off[a]), int(off[b - 1]))  # done with these pages
    acl_rows = np.flatnonzero(kind == KINDS.index("acl"))
    if acl_rows.size:
        key = (handle[acl_rows].astype(np.int32) + 1) * 4 + direction_codes(f)[acl_rows]
        cid[acl_rows] = fill_continuations(key, pb[acl_rows] != 1, cid[acl_rows])
    return HeaderFields(code, sub, opcode, handle, pb, l2len, cid, diag)


def direction_codes(frames: pl.DataFrame) -> np.ndarray:
    """The direction column as its integer codes (no string per frame)."""
    return frames["direction"].to_physical().to_numpy()


#: rows handled per step by :func:`fill_continuations` (bounds its sort's temporaries)
FILL_CHUNK = 1 << 20


def fill_continuations(key: np.ndarray, is_start: np.ndarray, cid: np.ndarray) -> np.ndarray:
    """Each ACL continuation fragment (PB flag 1) takes the CID of the start fragment before it
    in the same (handle, direction) stream, ``key`` (Core Vol 4 Part E §5.4.2: a PDU's
    fragments follow its start on the same handle and direction); one with no start before
    it gets -1. Done chunk by chunk with a stable sort by stream, carrying each stream's last
    CID across chunks, so the temporaries stay a chunk's size."""
    out = np.empty_like(cid)
    carry: dict[int, int] = {}
    for a in range(0, key.size, FILL_CHUNK):
        b = min(a + FILL_CHUNK, key.size)
        order = np.argsort(key[a:b], kind="stable")
        ks, st, cs = key[a:b][order], is_start[a:b][order], cid[a:b][order]
        pos = np.arange(ks.size)
        first = np.concatenate(([True], ks[1:] != ks[:-1]))
        group_at = np.maximum.accumulate(np.where(first, pos, 0))
        last_start = np.maximum.accumulate(np.where(st, pos, -1))
        inside = last_start >= group_at  # a start fragment earlier in this chunk's stream
        group = np.cumsum(first) - 1
        carried = np.asarray([carry.get(int(k), -1) for k in ks[first].tolist()], dtype=cid.dtype)
        filled = np.where(inside, cs[np.maximum(last_start, 0)], carried[group])
        out[a:b][order] = filled
        ends = np.concatenate((np.flatnonzero(first)[1:] - 1, [ks.size - 1]))
        carry.update(zip(ks[ends].tolist(), filled[ends].tolist(), strict=True))
    return out
