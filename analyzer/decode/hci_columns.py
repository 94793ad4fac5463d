"""The vectorised hot path: header fields of many HCI frames gathered at once from the capture's
uint8 buffer (Core v5.4 Vol 4 Part E §5.4: command, ACL, synchronous and event headers). No
Python object per frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------------------------------------
# vectorised hot path

#: payload bytes per frame that :func:`compiled_header_fields` reads (the ACL + L2CAP headers)
HEAD_WIDTH = 8


@dataclass(slots=True)
class HeaderFields:
    """The frame index's header columns, -1 where a field does not apply (see
    :func:`compiled_header_fields`)."""

    code: np.ndarray  # int16: event code
    subevent: np.ndarray  # int16: LE Meta subevent
    opcode: np.ndarray  # int32: command opcode
    handle: np.ndarray  # int16: ACL / SCO / ISO connection handle
    pb: np.ndarray  # int8: ACL packet-boundary flag
    l2cap_len: np.ndarray  # int32: L2CAP length of a start fragment
    cid: np.ndarray  # int32: L2CAP CID, continuation fragments given their start's
    diag: np.ndarray  # bool: a controller debug-log frame on ACL (no link)


def compiled_header_fields(
    data: np.ndarray,
    offset: np.ndarray,
    length: np.ndarray,
    kind: np.ndarray,
    direction: np.ndarray,
    kind_codes: tuple[int, int, int, int, int],
    heads: np.ndarray | None = None,
    buf: object = None,
) -> HeaderFields | None:
    """Every frame's header fields in one compiled pass over ``heads`` (each frame's first
    :data:`HEAD_WIDTH` payload bytes as the reader kept them; when not kept, gathered from
    ``data`` at ``offset``, the pages of ``buf`` released behind the gather; bytes past a
    frame's end are not read): event code and LE
    subevent, opcode, handle, PB flag, L2CAP length and CID, with each ACL continuation fragment
    given the CID of the start fragment before it on the same handle and direction (Vol 4 Part
    E §5.4.2). ``kind_codes``: the (event, command, acl, sco, iso) codes of ``kind``. The same
    values as :func:`acl_columns`, :func:`event_columns`, :func:`command_columns`,
    :func:`sco_columns` and the index's continuation fill; None when the compiled module is not
    built (or switched off): the caller takes the numpy path."""
    from analyzer.readers import compiled, record_heads  # (built with the record walks)

    ext = compiled()
    if ext is None:
        return None
    if heads is None or heads.shape[1] < HEAD_WIDTH:
        heads = record_heads(data, offset, HEAD_WIDTH, buf)
    n = int(kind.shape[0])
    out = HeaderFields(
        np.full(n, -1, np.int16),
        np.full(n, -1, np.int16),
        np.full(n, -1, np.int32),
        np.full(n, -1, np.int16),
        np.full(n, -1, np.int8),
        np.full(n, -1, np.int32),
        np.full(n, -1, np.int32),
        np.zeros(n, dtype=bool),
    )
    ext.hci_fields(
        np.ascontiguousarray(heads[:, :HEAD_WIDTH], dtype=np.uint8),
        np.ascontiguousarray(kind, dtype=np.uint8),
        np.ascontiguousarray(length, dtype=np.int32),
        np.ascontiguousarray(direction, dtype=np.uint8),
        kind_codes,
        out.code, out.subevent, out.opcode, out.handle, out.pb, out.l2cap_len, out.cid,
        out.diag.view(np.uint8),
    )  # fmt: skip
    return out


def _block(
    data: np.ndarray, offset: np.ndarray, length: np.ndarray, width: int, chunk: int = 65536
) -> np.ndarray:
    """The first ``width`` bytes of each frame as an (n, width) uint8 array, zero past a
    frame's end: one cache-friendly gather per frame, in chunks to bound the index array."""
    off = np.asarray(offset, dtype=np.int64)
    ln = np.asarray(length, dtype=np.int64)
    out = np.zeros((off.shape[0], width), dtype=np.uint8)
    if data.shape[0] == 0 or off.shape[0] == 0:
        return out
    cols = np.arange(width, dtype=np.int64)
    last = data.shape[0] - 1
    for i in range(0, off.shape[0], chunk):
        o, n = off[i : i + chunk, None], ln[i : i + chunk, None]
        inside = cols[None, :] < n
        idx = np.minimum(o + cols, last)
        out[i : i + o.shape[0]] = np.where(inside, data[idx], 0)
    return out


def _heads(
    data: np.ndarray,
    offset: np.ndarray,
    length: np.ndarray,
    width: int,
    heads: np.ndarray | None,
) -> np.ndarray:
    """The first ``width`` bytes of each frame: from ``heads`` (each frame's first payload bytes,
    zero past its end, as a reader kept them) when given, else gathered from ``data``."""
    if heads is not None and heads.shape[1] >= width:
        return heads[:, :width]
    return _block(data, offset, length, width)


def _gather(
    data: np.ndarray,
    offset: np.ndarray,
    length: np.ndarray,
    at: int,
    width: int,
    heads: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Little-endian unsigned ``width``-byte field at ``at`` of each frame, and a validity mask."""
    blk = _heads(data, offset, length, at + width, heads)
    return _field(blk, np.asarray(length, dtype=np.int64), at, width)


def _field(blk: np.ndarray, ln: np.ndarray, at: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Little-endian field of a gathered block, and where the frame was long enough for it."""
    out = np.zeros(blk.shape[0], dtype=np.int64)
    for k in range(width):
        out |= blk[:, at + k].astype(np.int64) << (8 * k)
    ok = ln >= at + width
    return np.where(ok, out, 0), ok


def acl_columns(
    data: np.ndarray, offset: np.ndarray, length: np.ndarray, heads: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Header fields of many ACL frames at once (payloads without the H4 byte; ``heads``: their
    first payload bytes when a reader kept them, see :func:`_heads`).

    Returns int32 arrays ``handle``, ``pb``, ``bc``, ``data_len`` (-1 where the frame is shorter
    than the 4-byte ACL header) and ``l2cap_len``, ``cid`` (-1 unless the frame starts an L2CAP
    PDU, pb 0b00/0b10, and holds >= 8 bytes).
    """
    ln = np.asarray(length, dtype=np.int64)
    blk = _heads(data, offset, ln, 8, heads)
    hf, ok = _field(blk, ln, 0, 2)
    dl, _ = _field(blk, ln, 2, 2)
    pb = (hf >> 12) & 0x3
    l2len, _ = _field(blk, ln, 4, 2)
    cid, ok8 = _field(blk, ln, 6, 2)
    start = ok8 & ((pb == 0) | (pb == 2))
    m1 = np.int32(-1)
    return {
        "handle": np.where(ok, hf & 0x0FFF, m1).astype(np.int32),
        "pb": np.where(ok, pb, m1).astype(np.int32),
        "bc": np.where(ok, (hf >> 14) & 0x3, m1).astype(np.int32),
        "data_len": np.where(ok, dl, m1).astype(np.int32),
        "l2cap_len": np.where(start, l2len, m1).astype(np.int32),
        "cid": np.where(start, cid, m1).astype(np.int32),
    }


def event_columns(
    data: np.ndarray, offset: np.ndarray, length: np.ndarray, heads: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Event code and LE subevent (-1 when absent / not LE Meta) of many event frames."""
    ln = np.asarray(length, dtype=np.int64)
    blk = _heads(data, offset, ln, 3, heads)
    code, ok = _field(blk, ln, 0, 1)
    sub, ok3 = _field(blk, ln, 2, 1)
    m1 = np.int32(-1)
    return {
        "code": np.where(ok, code, m1).astype(np.int32),
        "subevent": np.where(ok3 & (code == 0x3E), sub, m1).astype(np.int32),
    }


def command_columns(
    data: np.ndarray, offset: np.ndarray, length: np.ndarray, heads: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Opcode (-1 when shorter than 2 bytes) of many command frames."""
    op, ok = _gather(data, offset, length, 0, 2, heads)
    return {"opcode": np.where(ok, op, np.int32(-1)).astype(np.int32)}


def sco_columns(
    data: np.ndarray, offset: np.ndarray, length: np.ndarray, heads: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The connection handle of many SCO / ISO frames at once (both headers start with the
    12-bit handle, Vol 4 Part E §5.4.3 and §5.4.5); -1 where the frame is shorter than 2 bytes."""
    ln = np.asarray(length, dtype=np.int64)
    blk = _heads(data, offset, ln, 2, heads)
    hf, ok = _field(blk, ln, 0, 2)
    return {"handle": np.where(ok, hf & 0x0FFF, np.int32(-1)).astype(np.int32)}
