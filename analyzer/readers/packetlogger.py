"""Apple PacketLogger (.pklg) reader (issue 3 §4).

No file header and no magic. Following Wireshark ``wiretap/packetlogger.c``: records are a 12-byte
header — length u32 (counts the 8 timestamp bytes and the payload), seconds u32, microseconds u32 —
then ``length - 8`` bytes whose first byte is the PacketLogger type. The header is read in the
machine's (little-endian) order; when the first length's low 16 bits are zero and its high 16 bits
are not, the whole file is big-endian (``packetlogger_open``). A file is ours when the first records
(up to 5, ``PACKETS_TO_CHECK``) have 8 ≤ length < 65536, microseconds < 1 000 000 and a known type
(``packetlogger_check_record``); we also require at least one record with a payload.

Types: 0x00 HCI command, 0x01 event, 0x02/0x03 ACL sent/received, 0x08/0x09 SCO sent/received,
0x0A/0x0B LMP sent/received (kind ``unknown``), 0xF7 syslog, 0xF8 kernel, 0xF9 kernel debug,
0xFA error, 0xFB power, 0xFC note, 0xFD config, 0xFE new controller (kind ``monitor``, whole
payload after the type byte). HCI payloads follow the type byte without an H4 byte, so ``offset``
points just past the type byte (capture.py convention).
"""

from __future__ import annotations

import mmap
import struct
from array import array

import numpy as np

from analyzer.capture import (
    D_RECEIVED,
    D_SENT,
    D_UNKNOWN,
    K_ACL,
    K_COMMAND,
    K_EVENT,
    K_MONITOR,
    K_SCO,
    K_UNKNOWN,
    Capture,
    CaptureError,
    CaptureMeta,
    DamagedRange,
    build_frames,
)
from analyzer.readers import Source, backwards_warning

HDR_LE = struct.Struct("<III")
HDR_BE = struct.Struct(">III")
PACKETS_TO_CHECK = 5

#: PacketLogger type -> (kind, direction)
TYPES: dict[int, tuple[int, int]] = {
    0x00: (K_COMMAND, D_SENT),
    0x01: (K_EVENT, D_RECEIVED),
    0x02: (K_ACL, D_SENT),
    0x03: (K_ACL, D_RECEIVED),
    0x08: (K_SCO, D_SENT),
    0x09: (K_SCO, D_RECEIVED),
    0x0A: (K_UNKNOWN, D_SENT),
    0x0B: (K_UNKNOWN, D_RECEIVED),
    **dict.fromkeys(range(0xF7, 0xFF), (K_MONITOR, D_UNKNOWN)),
}


def _byte_order(buf: bytes | memoryview | mmap.mmap) -> struct.Struct:
    (ln,) = struct.unpack_from("<I", buf, 0)
    return HDR_BE if (ln & 0xFFFF) == 0 and (ln >> 16) else HDR_LE


def _check(buf: bytes | memoryview | mmap.mmap, hdr: struct.Struct) -> bool:
    size = len(buf)
    off = 0
    payloads = 0
    for _ in range(PACKETS_TO_CHECK):
        if off == size:
            break
        if off + 12 > size:
            return off > 0 and size >= 4096  # a short read in the probe window only
        ln, _secs, usecs = hdr.unpack_from(buf, off)
        if ln < 8 or ln >= 65536 or usecs >= 1_000_000:
            return False
        if ln > 8:
            if off + 12 >= size:
                return size >= 4096
            if buf[off + 12] not in TYPES:
                return False
            payloads += 1
        off += 4 + ln
    return payloads > 0


def sniff(head: bytes) -> bool:
    if len(head) < 13:
        return False
    return _check(head, _byte_order(head))


def read(src: Source) -> Capture:
    buf = src.buffer
    size = len(buf)
    if size < 12 or not _check(bytes(buf[:4096]), _byte_order(buf)):
        raise CaptureError("not a PacketLogger file: first records are not PacketLogger records")
    hdr = _byte_order(buf)
    unpack = hdr.unpack_from
    offs = array("q")
    lens = array("q")
    tss = array("q")
    types = array("B")
    warnings: list[str] = []
    damaged: list[DamagedRange] = []
    off = 0
    while off < size:
        if off + 12 > size:
            damaged.append(DamagedRange(off, size, "record header cut by end of file"))
            break
        ln, secs, usecs = unpack(buf, off)
        if ln < 8 or ln >= 65536 or usecs >= 1_000_000:
            damaged.append(DamagedRange(off, size, f"implausible record length {ln}"))
            break
        end = off + 4 + ln
        if end > size:
            damaged.append(
                DamagedRange(
                    off,
                    size,
                    f"last record cut: {ln - 8} bytes announced, {size - off - 12} present",
                )
            )
            break
        if ln > 8:
            t = buf[off + 12]
            if t not in TYPES:
                damaged.append(DamagedRange(off, size, f"unknown record type 0x{t:02x}"))
                break
            offs.append(off + 13)
            lens.append(ln - 9)
            types.append(t)
        else:  # a record without even a type byte: nothing to say
            offs.append(off + 12)
            lens.append(0)
            types.append(0xFC)
        tss.append(secs * 1_000_000 + usecs)
        off = end
    warnings.extend(str(dr) for dr in damaged)
    typ = np.frombuffer(types, dtype=np.uint8) if len(types) else np.zeros(0, np.uint8)
    kind_lut = np.full(256, K_UNKNOWN, dtype=np.uint8)
    dir_lut = np.full(256, D_UNKNOWN, dtype=np.uint8)
    for t, (k, d) in TYPES.items():
        kind_lut[t] = k
        dir_lut[t] = d
    ts = np.frombuffer(tss, dtype=np.int64)
    warnings += backwards_warning(ts)
    length = np.frombuffer(lens, dtype=np.int64)
    frames = build_frames(
        time_us=ts,
        direction=dir_lut[typ],
        kind=kind_lut[typ],
        offset=np.frombuffer(offs, dtype=np.int64),
        length=length,
        orig_length=length,
    )
    meta = CaptureMeta(
        format="packetlogger",
        link_type=None,
        link_type_name="Apple PacketLogger"
        + (" (big-endian)" if hdr is HDR_BE else " (little-endian)"),
        path=src.path,
        size=src.size,
        compressed=src.compressed,
    )
    return Capture(meta=meta, frames=frames, buffer=buf, warnings=warnings, damaged=damaged)
