"""btsnooz reader: Android's in-memory snoop summary (DOMAIN.md "Capture formats", issue 3 §2).

Forms accepted (all decode to the same records):

* the ``BTSNOOP_LOG_SUMMARY`` section of a bugreport / ``dumpsys bluetooth_manager`` text: lines of
  base64 between ``--- BEGIN:BTSNOOP_LOG_SUMMARY (N bytes in) ---`` and
  ``--- END:BTSNOOP_LOG_SUMMARY ---`` (AOSP ``btif/src/btif_debug_btsnoop.cc``,
  ``btif_debug_btsnoop_dump``; parsed as AOSP ``tools/scripts/btsnooz.py`` ``main`` does);
* the decoded binary: a 9-byte preamble (``btsnooz_preamble_t``: version u8 = 1 or 2, last
  timestamp u64 LE) then a zlib stream of records (``btsnooz.py`` ``decode_snooz``: "the file header
  (9 bytes) is not compressed, but the rest is");
* btsnooz records written straight behind a btsnoop header (the real file
  ``sardark1_data-1_btsnooz_hci.log``): reached through a hook in the btsnoop reader.

Records (``btsnooz_header_t``, little-endian): v1 ``<HIb`` = length, delta time, type; v2
``<HHIb`` = length, packet length, delta time, type; then ``length - 1`` packet bytes (length counts
the type byte: ``header.length = included_length + 1``). The field is named ``delta_time_ms`` but
holds microseconds: ``btsnoop_cb`` stores ``timestamp_us - last_timestamp_ms`` where both are µs,
and ``btsnooz.py`` adds the µs btsnoop epoch to ``last_timestamp_ms`` directly. Checked on
sardark1: Command → Command Complete deltas are 0.2-2 ms when read as µs. Timestamps are
rebuilt backwards from the preamble's last timestamp (``decode_snooz_v2``: first = last -
sum(deltas), then forward).
Without a preamble (records behind a btsnoop header) there is no wall clock: times start at 0
(1970-01-01) and a warning says so.

Type byte = ``BT_EVT_*`` >> 8: 0x10/0x11/0x12/0x17 incoming event/ACL/SCO/ISO, 0x20/0x21/0x22/0x2D
outgoing command/ACL/SCO/ISO.

``orig_length``: v2's packet length is documented as ``length + 1`` (type byte), but real v2 data
(sardark1) stores one more than that for complete packets; so the original length is taken from the
HCI header inside the packet when it is present (Core Vol 4 Part E §5.4: command len at byte 2,
event len at byte 1, ACL/ISO len at bytes 2-3, SCO at byte 2), else from packet length - 1.

btsnooz keeps ACL to 14 bytes except L2CAP signalling, and never logs SCO: such captures are not
"filtered snoop" captures (``meta.filtered`` stays False); ``meta.extra["payloads_cut"]`` says so.
"""

from __future__ import annotations

import base64
import binascii
import mmap
import re
import struct

import numpy as np

from analyzer.capture import (
    D_RECEIVED,
    D_SENT,
    K_ACL,
    K_COMMAND,
    K_EVENT,
    K_ISO,
    K_SCO,
    K_UNKNOWN,
    Capture,
    CaptureError,
    CaptureMeta,
    build_frames,
)
from analyzer.readers import Source
from analyzer.readers.limits import inflate

EPOCH_DELTA_US = 0x00DCDDB30F2F8000
PREAMBLE = struct.Struct("<BQ")
REC_V1 = struct.Struct("<HIB")
REC_V2 = struct.Struct("<HHIB")

#: btsnooz type byte -> (kind code, direction code)
TYPES: dict[int, tuple[int, int]] = {
    0x10: (K_EVENT, D_RECEIVED),
    0x11: (K_ACL, D_RECEIVED),
    0x12: (K_SCO, D_RECEIVED),
    0x17: (K_ISO, D_RECEIVED),
    0x20: (K_COMMAND, D_SENT),
    0x21: (K_ACL, D_SENT),
    0x22: (K_SCO, D_SENT),
    0x2D: (K_ISO, D_SENT),
}

BEGIN = b"--- BEGIN:BTSNOOP_LOG_SUMMARY"
END = b"--- END:BTSNOOP_LOG_SUMMARY"
PAYLOADS_CUT = "btsnooz: ACL kept to 14 bytes except L2CAP signalling; SCO/ISO not logged"
_B64_LINE = re.compile(rb"^[A-Za-z0-9+/=]+$")


def _zlib_head(b: bytes) -> bool:
    return len(b) >= 2 and (b[0] & 0x0F) == 8 and ((b[0] << 8) | b[1]) % 31 == 0


def sniff(head: bytes) -> bool:
    """A summary section in the text, a bugreport/dumpsys text, or a binary btsnooz preamble."""
    if BEGIN in head:
        return True
    if head.startswith(b"=====") and b"== dumpstate" in head[:200]:
        return True
    return len(head) >= 11 and head[0] in (1, 2) and _zlib_head(head[9:11])


def find_summary(text: bytes | memoryview | mmap.mmap) -> bytes | None:
    """The decoded bytes (preamble + zlib) of the first BTSNOOP_LOG_SUMMARY section, or None."""
    data = bytes(text)
    start = data.find(BEGIN)
    if start < 0:
        return None
    line_end = data.find(b"\n", start)
    if line_end < 0:
        return None
    end = data.find(END, line_end)
    body = data[line_end + 1 : end if end >= 0 else len(data)]
    chunks = [ln.strip() for ln in body.splitlines()]
    b64 = b"".join(c for c in chunks if c and _B64_LINE.match(c))
    b64 = b64[: len(b64) - len(b64) % 4]
    try:
        return base64.b64decode(b64, validate=False)
    except (binascii.Error, ValueError):
        return None


def _inflate(comp: bytes, src: Source) -> tuple[bytes, str | None]:
    """The records' zlib stream, inflated within the input's budget (limits.py)."""
    return inflate(comp, wbits=15, what="btsnooz zlib stream", budget=src.budget)


def _walk(
    data: bytes, start: int, version: int
) -> tuple[list[tuple[int, int, int, int, int]], int]:
    """Records as (payload offset, incl length, packet length, delta, type); and where parsing
    stopped (== len(data) when every byte was used)."""
    rec = REC_V2 if version == 2 else REC_V1
    hl = rec.size
    size = len(data)
    out: list[tuple[int, int, int, int, int]] = []
    off = start
    while off + hl <= size:
        if version == 2:
            length, plen, delta, typ = rec.unpack_from(data, off)
        else:
            length, delta, typ = rec.unpack_from(data, off)
            plen = length
        if length < 1 or typ not in TYPES or off + hl + length - 1 > size:
            break
        out.append((off + hl, length - 1, plen, delta, typ))
        off += hl + length - 1
    return out, off


def looks_like_records(buf: bytes | memoryview | mmap.mmap, start: int, version: int = 2) -> bool:
    """Do btsnooz records (not btsnoop records) begin at ``start``? Checks up to 16 records."""
    probe = bytes(buf[start : start + 16 * (REC_V2.size + 300)])
    if len(probe) < REC_V2.size:
        return False
    recs, stop = _walk(probe, 0, version)
    if not recs:
        return False
    whole = start + len(probe) >= len(buf)
    return len(recs) >= 16 or (whole and stop == len(probe))


def _orig_lengths(
    data: np.ndarray, offs: np.ndarray, incl: np.ndarray, kinds: np.ndarray, plen: np.ndarray
) -> np.ndarray:
    """Original HCI length (no type byte) from the packet's own header where present."""
    orig = np.maximum(plen.astype(np.int64) - 1, incl)
    n = len(offs)
    if not n:
        return orig

    def at(rel: int, ok: np.ndarray) -> np.ndarray:
        v = np.zeros(n, dtype=np.int64)
        v[ok] = data[offs[ok] + rel]
        return v

    cmd = (kinds == K_COMMAND) & (incl >= 3)
    evt = (kinds == K_EVENT) & (incl >= 2)
    acl = ((kinds == K_ACL) | (kinds == K_ISO)) & (incl >= 4)
    sco = (kinds == K_SCO) & (incl >= 3)
    orig = np.where(cmd, at(2, cmd) + 3, orig)
    orig = np.where(evt, at(1, evt) + 2, orig)
    acl_len = at(2, acl) | (at(3, acl) << 8)
    acl_len = np.where(kinds == K_ISO, acl_len & 0x3FFF, acl_len)  # ISO data length: 14 bits
    orig = np.where(acl, acl_len + 4, orig)
    orig = np.where(sco, at(2, sco) + 3, orig)
    return np.maximum(orig, incl)


def decode_records(
    data: bytes,
    start: int,
    version: int,
    last_ts_us: int | None,
    src: Source,
    *,
    form: str,
    warnings: list[str] | None = None,
) -> Capture:
    """Build a Capture over a new buffer holding the packets (no type byte) of the records in
    ``data[start:]``."""
    warnings = list(warnings or [])
    recs, stop = _walk(data, start, version)
    if stop < len(data):
        warnings.append(
            f"btsnooz records stop at byte {stop} of {len(data)}: "
            f"{len(data) - stop} trailing bytes are not a record"
        )
    n = len(recs)
    arr = np.array(recs, dtype=np.int64).reshape(n, 5)
    src_off, incl, plen, delta, typ = (arr[:, i] for i in range(5))
    # new buffer: the packets back to back, so frame offsets point into it
    parts = [data[o : o + ln] for o, ln in zip(src_off.tolist(), incl.tolist(), strict=True)]
    buffer = b"".join(parts)
    offset = np.zeros(n, dtype=np.int64)
    if n:
        offset[1:] = np.cumsum(incl)[:-1]
    kind_lut = np.full(256, K_UNKNOWN, dtype=np.uint8)
    dir_lut = np.full(256, D_SENT, dtype=np.uint8)
    for t, (k, d) in TYPES.items():
        kind_lut[t] = k
        dir_lut[t] = d
    kind = kind_lut[typ]
    direction = dir_lut[typ]
    cum = np.cumsum(delta)
    if last_ts_us is not None and not 0 <= last_ts_us < 1 << 62:
        warnings.append(f"implausible btsnooz last timestamp {last_ts_us}: times made relative")
        last_ts_us = None
    if last_ts_us is not None and n:
        first = last_ts_us - int(cum[-1])  # btsnooz.py decode_snooz_v2: first pass
        time_us = first + cum
    else:
        time_us = cum - (int(cum[0]) if n else 0)
        if n:
            warnings.append(
                "btsnooz records without their preamble: no wall clock, times are relative "
                "to the first record (shown from 1970-01-01)"
            )
    data_np = np.frombuffer(buffer, dtype=np.uint8) if buffer else np.zeros(0, np.uint8)
    orig = _orig_lengths(data_np, offset, incl, kind, plen)
    frames = build_frames(
        time_us=time_us,
        direction=direction,
        kind=kind,
        offset=offset,
        length=incl,
        orig_length=orig,
        link_type=1002,
    )
    meta = CaptureMeta(
        format="btsnooz",
        link_type=1002,
        link_type_name=f"btsnooz v{version} records (HCI, as btsnoop 1002)",
        path=src.path,
        size=src.size,
        compressed=src.compressed,
        extra={
            "btsnooz": {"version": version, "form": form, "records": n},
            "payloads_cut": PAYLOADS_CUT,
        },
    )
    if last_ts_us is None:
        meta.extra["btsnooz"]["relative_times"] = True
    return Capture(meta=meta, frames=frames, buffer=buffer, warnings=warnings)


def decode_snooz(blob: bytes, src: Source, *, form: str) -> Capture:
    """Decode preamble + zlib (btsnooz.py ``decode_snooz``)."""
    if len(blob) < PREAMBLE.size:
        raise CaptureError("not a btsnooz log: preamble cut short")
    version, last_ts = PREAMBLE.unpack_from(blob, 0)
    if version not in (1, 2):
        raise CaptureError(f"unsupported btsnooz version {version} (known: 1, 2)")
    data, warn = _inflate(blob[PREAMBLE.size :], src)
    if warn and not data:
        raise CaptureError(f"not a btsnooz log: {warn}")
    return decode_records(
        data, 0, version, last_ts, src, form=form, warnings=[warn] if warn else []
    )


def read_behind_btsnoop(src: Source, start: int) -> Capture:
    """Hook for the btsnoop reader: btsnooz v2 (or v1) records right after a btsnoop header."""
    buf = bytes(src.buffer)
    version = 2 if looks_like_records(buf, start, 2) else 1
    cap = decode_records(buf, start, version, None, src, form="records behind btsnoop header")
    cap.warnings.insert(
        0, f"btsnoop header followed by btsnooz v{version} records, not btsnoop records"
    )
    return cap


def read(src: Source) -> Capture:
    head = bytes(src.buffer[:16])
    if len(head) >= 11 and head[0] in (1, 2) and _zlib_head(head[9:11]):
        return decode_snooz(bytes(src.buffer), src, form="binary")
    blob = find_summary(src.buffer)
    if blob is None:
        raise CaptureError("no BTSNOOP_LOG_SUMMARY section in this text")
    return decode_snooz(blob, src, form="BTSNOOP_LOG_SUMMARY")
