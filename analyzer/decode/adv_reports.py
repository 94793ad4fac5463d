"""LE advertising reports as columns (Core v5.4 Vol 4 Part E §7.7.65.2 LE Advertising Report,
§7.7.65.11 LE Directed Advertising Report, §7.7.65.13 LE Extended Advertising Report).

The common case — a legacy report event holding one report — is gathered with numpy over the
capture bytes; other events (several reports, directed, extended with fragments) are parsed one
by one. Report names are the decoder's (:func:`analyzer.decode.hci.ext_event_type_name`).
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import polars as pl

from analyzer.decode.base import Buffer
from analyzer.decode.hci import ADV_REPORT_TYPES, ext_event_type_name
from analyzer.decode.le_ll import addr_str

RawBuffer = Buffer | mmap.mmap

#: narrow where the value allows: a long scan has millions of reports
REPORT_SCHEMA = {
    "frame": pl.Int64, "time_us": pl.Int64, "address": pl.String, "addr_type": pl.Int16,
    "pdu": pl.String, "rssi": pl.Int16, "data": pl.Binary, "ad_flags": pl.Int16,
}  # fmt: skip

#: the 64-bit FNV prime (hashing each report's advertising data for the distinct-data count)
_FNV_PRIME = 0x100000001B3

#: AD structures walked per report for the Flags field (31 bytes hold at most 15 non-empty ones)
_MAX_AD = 16


def ad_flags_columnar(data: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The AD Flags value (CSS Part A §1.3; AD type 0x01) of each report's advertising data
    at ``start`` (``length`` bytes), or -1 when it has none: the AD structures (Core Vol 3
    Part C §11: length, type, data) are walked for every report at once."""
    flags = np.full(start.size, -1, dtype=np.int64)
    last = max(data.size - 1, 0)
    # the reports still being walked (no Flags found yet, more structures to read): usually
    # Flags is the first structure, so after one step few are left
    rows = np.flatnonzero(length >= 3)
    at = start[rows].astype(np.int64)
    end = at + length[rows]
    for _ in range(_MAX_AD):
        if rows.size == 0:
            break
        ln = data[np.minimum(at, last)].astype(np.int64)
        typ = data[np.minimum(at + 1, last)]
        ok = (ln > 0) & (at + 1 + ln <= end)
        hit = ok & (typ == 0x01) & (ln >= 2)
        flags[rows[hit]] = data[np.minimum(at[hit] + 2, last)]
        at = at + ln + 1
        go = ok & ~hit & (at + 2 < end)
        rows, at, end = rows[go], at[go], end[go]
    return flags


def ad_flags(data: bytes) -> int | None:
    """The AD Flags value of one advertising data field, or None."""
    i = 0
    while i + 1 < len(data):
        ln = data[i]
        if ln == 0 or i + 1 + ln > len(data):
            return None
        if data[i + 1] == 0x01 and ln >= 2:
            return data[i + 2]
        i += ln + 1
    return None


#: an extended report still waiting for its fragments: (address, SID) → its row so far
Pending = dict[tuple[str, int], list[Any]]


def advertising_reports(
    data: np.ndarray,
    buf: RawBuffer,
    ev: pl.DataFrame,
    datas: dict[str, set[bytes]],
    pending: Pending | None = None,
) -> pl.DataFrame:
    """One row per advertising report (frame, time_us, address, addr_type, pdu, rssi, data);
    extended report fragments joined. The common case — a legacy report event holding one
    report — is gathered columnar, its distinct advertising data going to ``datas``
    (address → data); other events are parsed one by one. ``ev``: the LE Meta events with
    columns index, time_us, offset, length, subevent; ``data``/``buf``: the capture bytes.
    ``pending``: given, the events may come in consecutive slices (one call each) and the
    extended reports still incomplete after this slice stay in it for the next call (then
    :func:`pending_reports` gives the ones never completed); else they are returned here."""
    if ev.height == 0:
        return pl.DataFrame(schema=REPORT_SCHEMA)
    own_pending = pending is None
    pending = {} if pending is None else pending
    off = ev["offset"].to_numpy()
    ln = ev["length"].to_numpy().astype(np.int64)
    sub = ev["subevent"].to_numpy()
    last = max(data.size - 1, 0)

    def at(k: int | np.ndarray) -> np.ndarray:
        return data[np.minimum(off + k, last)].astype(np.int64)

    dl = at(12)
    fast = (sub == 0x02) & (ln >= 14) & (at(3) == 1) & (ln == 14 + dl)
    fi = np.nonzero(fast)[0]
    parts = []
    if fi.size:
        o = off[fi]
        key = np.zeros(fi.size, dtype=np.int64)
        for k in range(6):  # little-endian BD_ADDR → integer, formatted once per address
            key |= data[o + 6 + k].astype(np.int64) << (8 * k)
        # (the few distinct addresses by hashing, then each report's by a binary search:
        # np.unique's inverse would sort every report)
        uniq = np.sort(pl.Series(key).unique().to_numpy())
        inv = np.searchsorted(uniq, key)
        names = pl.Series("address", [addr_str(int(u)) for u in uniq.tolist()], pl.String)
        et = data[o + 4].astype(np.int64)
        rssi = data[o + 13 + dl[fi]].astype(np.int16)
        rssi = np.where(rssi > 127, rssi - 256, rssi).astype(np.int16)
        # distinct advertising data per address without a bytes object per report: each
        # report's (address, length, data) is hashed (64-bit FNV-1a over the data's 8-byte
        # words, zero-padded) and only the first report of each distinct hash is read out
        d = dl[fi]
        h = (key.astype(np.uint64) * np.uint64(_FNV_PRIME)) ^ d.astype(np.uint64)
        width = -(-int(min(d.max(initial=0), 255)) // 8) * 8
        if width:
            from analyzer.readers import record_heads  # (a reader's gather: compiled when built)

            raw = record_heads(data, o + 13, width)
            raw[np.arange(width)[None, :] >= d[:, None]] = 0
            for word in raw.view("<u8").T:
                h = (h ^ word) * np.uint64(_FNV_PRIME)
            del raw
        _, firsts = np.unique(h, return_index=True)
        name_of = names.to_list()
        for r in firsts.tolist():
            n = int(d[r])
            if n:
                start = int(o[r]) + 13
                datas.setdefault(name_of[int(inv[r])], set()).add(data[start : start + n].tobytes())
        flags = ad_flags_columnar(data, o + 13, d)
        ets = np.unique(et)  # the event types present: each named once
        parts.append(
            pl.DataFrame({
                "frame": ev["index"].to_numpy()[fi],
                "time_us": ev["time_us"].to_numpy()[fi],
                "address": names.gather(inv),
                "addr_type": data[o + 5].astype(np.int16),
                "pdu": pl.Series(
                    [ADV_REPORT_TYPES.get(x, f"0x{x:02X}") for x in ets.tolist()], dtype=pl.String
                ).gather(pl.Series(np.searchsorted(ets, et))),
                "rssi": pl.Series(rssi).set(pl.Series(rssi == 127), None),
                "data": pl.Series("data", dtype=pl.Binary).extend_constant(None, fi.size),
                "ad_flags": pl.Series(flags.astype(np.int16)).set(pl.Series(flags < 0), None),
            }, schema=REPORT_SCHEMA)
        )  # fmt: skip
    slow = ev.filter(pl.Series(~fast))
    if slow.height:
        parts.append(_rows(_parse_reports(buf, slow, pending)))
    if own_pending and pending:
        parts.append(pending_reports(pending))
    if not parts:
        return pl.DataFrame(schema=REPORT_SCHEMA)
    out = parts[0] if len(parts) == 1 else pl.concat(parts)
    # the fast rows alone are usually in frame order already: no copy of a large table then
    return out if out["frame"].is_sorted() else out.sort("frame", maintain_order=True)


def pending_reports(pending: Pending) -> pl.DataFrame:
    """The extended reports whose last fragment never came, as they are (emptied from
    ``pending``)."""
    out = _rows([tuple(p) for p in pending.values()])  # type: ignore[misc]
    pending.clear()
    return out


def _rows(parsed: list[tuple[int, int, str, int, str, int | None, bytes]]) -> pl.DataFrame:
    return pl.DataFrame([(*r, ad_flags(r[6])) for r in parsed], schema=REPORT_SCHEMA, orient="row")


def _parse_reports(
    buf: RawBuffer, ev: pl.DataFrame, partial: Pending
) -> list[tuple[int, int, str, int, str, int | None, bytes]]:
    """Advertising report events parsed one by one (several reports per event, extended
    reports and their fragments, directed reports); incomplete extended reports wait in
    ``partial``."""
    out: list[tuple[int, int, str, int, str, int | None, bytes]] = []
    ext_names: dict[int, str] = {}
    for frame, t, off, ln, sub in ev.select(
        "index", "time_us", "offset", "length", "subevent"
    ).iter_rows():
        b = bytes(buf[off : off + ln])
        if len(b) < 4:
            continue
        nrep, i = b[3], 4
        for _ in range(nrep):
            if sub == 0x02:
                if i + 10 > len(b):
                    break
                dl = b[i + 8]
                if i + 10 + dl > len(b):
                    break
                addr = _addr(b, i + 2)
                rssi = b[i + 9 + dl]
                out.append(
                    (frame, t, addr, b[i + 1], ADV_REPORT_TYPES.get(b[i], f"0x{b[i]:02X}"),
                     None if rssi == 127 else rssi - 256 if rssi > 127 else rssi,
                     b[i + 9 : i + 9 + dl])
                )  # fmt: skip
                i += 10 + dl
            elif sub == 0x0B:
                if i + 16 > len(b):
                    break
                rssi = b[i + 15]
                out.append(
                    (frame, t, _addr(b, i + 2), b[i + 1], "ADV_DIRECT_IND",
                     None if rssi == 127 else rssi - 256 if rssi > 127 else rssi, b"")
                )  # fmt: skip
                i += 16
            else:
                if i + 24 > len(b):
                    break
                et = b[i] | (b[i + 1] << 8)
                dl = b[i + 23]
                if i + 24 + dl > len(b):
                    break
                addr = _addr(b, i + 3)
                sid = b[i + 11]
                rssi = b[i + 13]
                data = b[i + 24 : i + 24 + dl]
                status = (et >> 5) & 0x3
                key = (addr, sid)
                name = ext_names.get(et & 0x1F)
                if name is None:
                    name = ext_names[et & 0x1F] = ext_event_type_name(et)
                pend = partial.pop(key, None)
                if pend is not None:  # continuation of an incomplete report
                    pend[6] += data
                    if status == 1:
                        partial[key] = pend
                    else:
                        out.append(tuple(pend))  # type: ignore[arg-type]
                else:
                    rv = None if rssi == 127 else rssi - 256 if rssi > 127 else rssi
                    rec = [frame, t, addr, b[i + 2], name, rv, data]
                    if status == 1:
                        partial[key] = rec
                    else:
                        out.append(tuple(rec))  # type: ignore[arg-type]
                i += 24 + dl
    return out


_ADDR_CACHE: dict[bytes, str] = {}


def _addr(b: bytes, i: int) -> str:
    """BD_ADDR (little-endian on the wire) as text; cached, a scan repeats few addresses."""
    raw = b[i : i + 6]
    s = _ADDR_CACHE.get(raw)
    if s is None:
        if len(_ADDR_CACHE) > 100_000:
            _ADDR_CACHE.clear()
        s = _ADDR_CACHE[raw] = ":".join(f"{x:02X}" for x in reversed(raw))
    return s


__all__ = [
    "REPORT_SCHEMA",
    "Pending",
    "ad_flags",
    "ad_flags_columnar",
    "advertising_reports",
    "pending_reports",
]
