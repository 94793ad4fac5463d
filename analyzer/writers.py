"""Write a :class:`Capture` as a file Wireshark opens (issue 3 §5): btsnoop or pcapng.

Every frame keeps its time (µs), direction and bytes.

* **btsnoop** (datalink 1002, H4): 16-byte header, 24-byte big-endian records (original length,
  included length, flags: bit 0 received, bit 1 command/event; cumulative drops 0; time + the
  btsnoop epoch 0x00DCDDB30F2F8000), data = H4 type byte re-added from ``kind`` + payload.
  Captures holding Linux-monitor frames are written as datalink 2001 (flags = adapter << 16 |
  monitor opcode; BlueZ ``monitor/bt.h``). LE link-layer frames cannot be btsnoop
  (:class:`WriteError`).
* **pcapng** (draft-ietf-opsawg-pcapng): SHB, one IDB per link type used (``if_tsresol`` default
  10^-6), EPBs with ``opt_comment`` from ``Capture.comments``. HCI frames: link type 201 (4-byte
  big-endian direction word, 0 sent / 1 received, then H4 type byte + payload). Monitor frames:
  254 (adapter u16 BE, opcode u16 BE). LE link-layer frames: 256 with a 10-byte RF header rebuilt
  from the ``channel``/``rssi`` columns (Wireshark ``packet-btle_rf.c``: rf_channel, signal dBm,
  noise dBm, AA offenses, reference AA, flags u16 LE; flags 0x0001 dewhitened, 0x0002 signal
  valid). Frames of kind ``unknown`` on an H4 link (payload starts at its non-standard type byte,
  capture.py) go out as 201; others as link type 147 (USER0) kept whole.

The original bytes of container headers that the Capture does not keep (monitor opcodes) are read
back from the buffer just before the payload, where the btsnoop (2001) and pcap (254) readers left
them; when that is impossible the frame gets opcode 13 (user logging) and a warning.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO

from analyzer.capture import Capture

EPOCH_DELTA_US = 0x00DCDDB30F2F8000
BTSNOOP_HEADER = b"btsnoop\x00" + struct.pack(">II", 1, 1002)
BTSNOOP_REC = struct.Struct(">IIIIq")

KIND_H4 = {"command": 1, "acl": 2, "sco": 3, "event": 4, "iso": 5}
HCI_KINDS = frozenset(KIND_H4)
LL_KINDS = frozenset({"ll_adv", "ll_data"})
H4_LINKS = frozenset({187, 201, 1002})

#: (kind, direction) -> Linux monitor opcode (BlueZ monitor/bt.h)
MONITOR_OPCODE = {
    ("command", "sent"): 2,
    ("event", "received"): 3,
    ("acl", "sent"): 4,
    ("acl", "received"): 5,
    ("sco", "sent"): 6,
    ("sco", "received"): 7,
    ("iso", "sent"): 18,
    ("iso", "received"): 19,
}

LINKTYPE_H4_WITH_PHDR = 201
LINKTYPE_MONITOR = 254
LINKTYPE_LE_LL_RF = 256
LINKTYPE_USER0 = 147


class WriteError(Exception):
    """The capture cannot be written in the asked format (one-line reason)."""


def _rows(
    cap: Capture,
) -> Iterator[tuple[int, int, str, str, int, int, int, int, int | None, int | None, bytes]]:
    f = cap.frames
    buf = cap.buffer
    cols = [
        f[c].to_list()
        for c in (
            "index",
            "time_us",
            "kind",
            "direction",
            "adapter",
            "offset",
            "length",
            "orig_length",
            "channel",
            "rssi",
            "link_type",
        )
    ]
    for idx, t, k, d, a, o, n, orig, ch, rssi, lt in zip(*cols, strict=True):
        yield idx, t, str(k), str(d), a, lt, o, orig, ch, rssi, bytes(buf[o : o + n])


def _monitor_header(cap: Capture, link_type: int, offset: int) -> tuple[int, int] | None:
    """(adapter, opcode) of a monitor frame, read back from its container header."""
    buf = cap.buffer
    if link_type == 2001 and offset >= 16:
        (flags,) = struct.unpack(">I", bytes(buf[offset - 16 : offset - 12]))
        return flags >> 16, flags & 0xFFFF
    if link_type == LINKTYPE_MONITOR and offset >= 4:
        a, op = struct.unpack(">HH", bytes(buf[offset - 4 : offset]))
        return a, op
    return None


def _hci_record(kind: str, payload: bytes) -> bytes:
    if kind in KIND_H4:
        return bytes((KIND_H4[kind],)) + payload
    return payload  # unknown on an H4 link: payload starts at its own type byte


def check_btsnoop(cap: Capture) -> None:
    kinds = set(cap.frames["kind"].unique().cast(str).to_list()) if cap.frames.height else set()
    if kinds & LL_KINDS:
        raise WriteError("LE link-layer frames cannot be written as btsnoop; use --format pcapng")


def write_btsnoop(cap: Capture, out: IO[bytes]) -> list[str]:
    """Write btsnoop 1002 (or 2001 when monitor frames are present). Returns warnings."""
    check_btsnoop(cap)
    warnings: list[str] = []
    kinds = set(cap.frames["kind"].unique().cast(str).to_list()) if cap.frames.height else set()
    monitor = "monitor" in kinds or cap.meta.link_type == 2001
    out.write(b"btsnoop\x00" + struct.pack(">II", 1, 2001 if monitor else 1002))
    pack = BTSNOOP_REC.pack
    lost = 0
    for _i, t, k, d, a, lt, o, orig, _ch, _rssi, payload in _rows(cap):
        if monitor:
            adapter, op = a, MONITOR_OPCODE.get((k, d), 13)
            if (k, d) not in MONITOR_OPCODE:
                hdr = _monitor_header(cap, lt, o)
                if hdr is None:
                    lost += 1
                else:
                    adapter, op = hdr
            flags = ((adapter & 0xFFFF) << 16) | op
            data = payload
            orig_len = max(orig, len(data))
        else:
            data = _hci_record(k, payload)
            extra = len(data) - len(payload)
            orig_len = max(orig + extra, len(data))
            flags = (1 if d == "received" else 0) | (2 if k in ("command", "event") else 0)
        out.write(pack(orig_len, len(data), flags, 0, t + EPOCH_DELTA_US))
        out.write(data)
    if lost:
        warnings.append(f"{lost} monitor frames had no recoverable opcode: written as opcode 13")
    return warnings


# -- pcapng -------------------------------------------------------------------------------------
def _block(btype: int, body: bytes) -> bytes:
    pad = (-len(body)) % 4
    total = 12 + len(body) + pad
    return struct.pack("<II", btype, total) + body + b"\x00" * pad + struct.pack("<I", total)


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * ((-len(value)) % 4)


def _rf_channel(ll_channel: int | None) -> int:
    """LL channel index -> RF channel (Core Vol 6 Part B §1.4.1)."""
    if ll_channel is None:
        return 0
    if ll_channel == 37:
        return 0
    if ll_channel == 38:
        return 12
    if ll_channel == 39:
        return 39
    if 0 <= ll_channel <= 10:
        return ll_channel + 1
    if 11 <= ll_channel <= 36:
        return ll_channel + 2
    return 0


def _rf_header(channel: int | None, rssi: int | None) -> bytes:
    flags = 0x0001  # dewhitened
    signal = 0
    if rssi is not None and -128 <= rssi <= 127:
        flags |= 0x0002
        signal = rssi
    return struct.pack("<BbbBIH", _rf_channel(channel), signal, 0, 0, 0, flags)


def write_pcapng(cap: Capture, out: IO[bytes]) -> list[str]:
    """Write pcapng with one IDB per link type needed. Returns warnings."""
    warnings: list[str] = []
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _opt(4, b"btanalyze") + _opt(0, b"")
    out.write(_block(0x0A0D0D0A, shb))
    ifaces: dict[int, int] = {}
    lost = 0

    def iface(link: int) -> int:
        if link not in ifaces:
            ifaces[link] = len(ifaces)
            out.write(_block(1, struct.pack("<HHI", link, 0, 0) + _opt(0, b"")))
        return ifaces[link]

    comments = cap.comments
    for i, t, k, d, a, lt, o, orig, ch, rssi, payload in _rows(cap):
        if k in HCI_KINDS or (k == "unknown" and lt in H4_LINKS):
            link = LINKTYPE_H4_WITH_PHDR
            data = struct.pack(">I", 1 if d == "received" else 0) + _hci_record(k, payload)
        elif k in LL_KINDS:
            link = LINKTYPE_LE_LL_RF
            data = _rf_header(ch, rssi) + payload
        elif k == "monitor":
            link = LINKTYPE_MONITOR
            hdr = _monitor_header(cap, lt, o)
            if hdr is None:
                lost += 1
                hdr = (a, 13)
            data = struct.pack(">HH", hdr[0] & 0xFFFF, hdr[1] & 0xFFFF) + payload
        else:
            link = LINKTYPE_USER0
            data = payload
        extra = len(data) - len(payload)
        orig_len = max(orig + extra, len(data))
        iid = iface(link)
        body = struct.pack(
            "<IIIII", iid, (t >> 32) & 0xFFFFFFFF, t & 0xFFFFFFFF, len(data), orig_len
        )
        body += data + b"\x00" * ((-len(data)) % 4)
        if i in comments:
            body += _opt(1, comments[i].encode("utf-8")) + _opt(0, b"")
        out.write(_block(6, body))
    if lost:
        warnings.append(f"{lost} monitor frames had no recoverable opcode: written as opcode 13")
    return warnings


def choose_format(cap: Capture, path: str | None = None) -> str:
    """btsnoop for HCI-only captures (or a .log/.btsnoop/.cfa name), else pcapng."""
    if path:
        low = path.lower()
        if low.endswith((".pcapng", ".pcap", ".ntar")):
            return "pcapng"
        if low.endswith((".btsnoop", ".log", ".cfa", ".snoop")):
            return "btsnoop"
    if cap.frames.height:
        kinds = set(cap.frames["kind"].unique().cast(str).to_list())
        if kinds - HCI_KINDS - {"monitor"}:
            return "pcapng"
    return "btsnoop"


def write(cap: Capture, out: IO[bytes], fmt: str) -> list[str]:
    if fmt == "btsnoop":
        return write_btsnoop(cap, out)
    if fmt == "pcapng":
        return write_pcapng(cap, out)
    raise WriteError(f"unknown output format {fmt!r} (btsnoop or pcapng)")
