"""Build small pcap / pcapng captures for reader tests (struct only; formats per
draft-ietf-opsawg-pcap and draft-ietf-opsawg-pcapng, link types per tcpdump.org/linktypes.html).

Every builder also reports where each record starts, so tests can corrupt or cut a file at a
known place.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

ADV_AA = 0x8E89BED6

# -- payloads -------------------------------------------------------------------------------------


def hci_reset_cmd() -> bytes:
    """H4 HCI_Reset command (type 1, opcode 0x0C03, no parameters)."""
    return b"\x01\x03\x0c\x00"


def hci_cmd_complete(status: int = 0) -> bytes:
    """H4 Command Complete event for HCI_Reset."""
    return bytes([4, 0x0E, 4, 1, 0x03, 0x0C, status])


def hci_acl(handle: int = 0x40, payload: bytes = b"\x02\x00\x04\x00\x0a\x01\x02\x03") -> bytes:
    """H4 ACL packet (PB flag 10 = first automatically flushable)."""
    return b"\x02" + struct.pack("<HH", handle | 0x2000, len(payload)) + payload


def h4_phdr(sent: bool) -> bytes:
    """DLT 201 pseudo-header: 4-byte big-endian direction (0 sent, 1 received)."""
    return struct.pack(">I", 0 if sent else 1)


def monitor(adapter: int, opcode: int, body: bytes) -> bytes:
    """DLT 254 Linux monitor header: adapter u16 BE, opcode u16 BE."""
    return struct.pack(">HH", adapter, opcode) + body


def ll_adv_ind(adv_addr: bytes = bytes(range(6)), data: bytes = b"\x02\x01\x06") -> bytes:
    """LE LL ADV_IND PDU from the access address on, with a dummy CRC (Core Vol 6 Part B §2.3)."""
    pdu = adv_addr + data
    return struct.pack("<IBB", ADV_AA, 0x00, len(pdu)) + pdu + b"\x00\x00\x00"


def ll_data_empty(aa: int = 0x50654B4C) -> bytes:
    """LE LL empty data PDU (LLID 1, length 0) with a dummy CRC."""
    return struct.pack("<IBB", aa, 0x01, 0) + b"\x00\x00\x00"


def btle_rf_phdr(rf_channel: int, signal: int, flags: int = 0x0002 | 0x0400 | 0x0800) -> bytes:
    """DLT 256 10-byte RF header: rf channel, signal dBm, noise, AA offenses, ref AA, flags."""
    return struct.pack("<BbbBIH", rf_channel, signal, -90, 0, 0, flags)


def nordic_ble(
    version: int, ll: bytes, *, flags: int, channel: int, rssi: int, packet_id: int = 6
) -> bytes:
    """DLT 272 nRF Sniffer record (Wireshark packet-nordic_ble.c header layouts): header version
    0 (legacy ``BE EF`` marker), 1 (header length byte) or >= 2 (u16 payload length), then the
    10-byte event packet (length — absent in version 0 —, flags, channel, -RSSI, event counter,
    time) and the LL packet: the LL packet starts at byte 17 in every version."""
    event = struct.pack("<BBBHI", flags, channel, -rssi, 0, 1000) + ll
    if version == 0:  # legacy: no event-packet length byte
        return b"\xbe\xef" + struct.pack("<BHHB", packet_id, 1, 0, len(event)) + event
    event = b"\x0a" + event
    if version == 1:
        return struct.pack("<BBBBHB", 0, 6, len(event), 1, 1, packet_id) + event
    return struct.pack("<BHBHB", 0, len(event), version, 1, packet_id) + event


# -- pcap -----------------------------------------------------------------------------------------


def pcap_file(
    packets: list[tuple[int, bytes]],
    link_type: int,
    *,
    big: bool = False,
    ns: bool = False,
    snaplen: int = 262144,
) -> tuple[bytes, list[int]]:
    """A pcap file; ``packets`` = (Unix time in µs — or ns when ``ns`` — , data).

    Returns the file bytes and the offset of each record header.
    """
    e = ">" if big else "<"
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = bytearray(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link_type))
    offsets = []
    unit = 1_000_000_000 if ns else 1_000_000
    for t, data in packets:
        offsets.append(len(out))
        out += struct.pack(e + "IIII", t // unit, t % unit, len(data), len(data)) + data
    return bytes(out), offsets


# -- pcapng ---------------------------------------------------------------------------------------


def _opt(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


@dataclass
class PcapngBuilder:
    """Assemble a pcapng file block by block (one section per :meth:`shb`)."""

    big: bool = False
    out: bytearray = field(default_factory=bytearray)
    packet_offsets: list[int] = field(default_factory=list)

    @property
    def e(self) -> str:
        return ">" if self.big else "<"

    def _block(self, btype: int, body: bytes) -> int:
        body += b"\x00" * (-len(body) % 4)
        total = len(body) + 12
        start = len(self.out)
        self.out += (
            struct.pack(self.e + "II", btype, total) + body + struct.pack(self.e + "I", total)
        )
        return start

    def _options(self, opts: list[tuple[int, bytes]]) -> bytes:
        if not opts:
            return b""
        return b"".join(_opt(self.e, c, v) for c, v in opts) + _opt(self.e, 0, b"")

    def shb(self, *, big: bool | None = None) -> PcapngBuilder:
        if big is not None:
            self.big = big
        self._block(0x0A0D0D0A, struct.pack(self.e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
        return self

    def idb(
        self,
        link_type: int,
        *,
        tsresol: int | None = None,
        tsoffset: int | None = None,
        name: str | None = None,
        snaplen: int = 262144,  # Wireshark mis-frames SPBs of a snaplen-0 interface
    ) -> PcapngBuilder:
        opts: list[tuple[int, bytes]] = []
        if name is not None:
            opts.append((2, name.encode()))
        if tsresol is not None:
            opts.append((9, bytes([tsresol])))
        if tsoffset is not None:
            opts.append((14, struct.pack(self.e + "q", tsoffset)))
        self._block(1, struct.pack(self.e + "HHI", link_type, 0, snaplen) + self._options(opts))
        return self

    def epb(
        self,
        iface: int,
        ts_units: int,
        data: bytes,
        *,
        comment: str | None = None,
        flags: int | None = None,
        dropcount: int | None = None,
    ) -> PcapngBuilder:
        """Enhanced Packet Block; ``ts_units`` in the interface's if_tsresol units."""
        opts: list[tuple[int, bytes]] = []
        if comment is not None:
            opts.append((1, comment.encode()))
        if flags is not None:
            opts.append((2, struct.pack(self.e + "I", flags)))
        if dropcount is not None:
            opts.append((4, struct.pack(self.e + "Q", dropcount)))
        body = struct.pack(
            self.e + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), len(data)
        )
        body += data + b"\x00" * (-len(data) % 4) + self._options(opts)
        self.packet_offsets.append(self._block(6, body))
        return self

    def pb(self, iface: int, ts_units: int, data: bytes, *, drops: int = 0) -> PcapngBuilder:
        """Obsolete Packet Block (pcapng appendix A)."""
        body = struct.pack(
            self.e + "HHIIII",
            iface,
            drops,
            ts_units >> 32,
            ts_units & 0xFFFFFFFF,
            len(data),
            len(data),
        )
        self.packet_offsets.append(self._block(2, body + data))
        return self

    def spb(self, data: bytes) -> PcapngBuilder:
        """Simple Packet Block (interface 0, no timestamp)."""
        self.packet_offsets.append(self._block(3, struct.pack(self.e + "I", len(data)) + data))
        return self

    def isb(self, iface: int, ts_units: int, *, ifdrop: int) -> PcapngBuilder:
        body = struct.pack(self.e + "III", iface, ts_units >> 32, ts_units & 0xFFFFFFFF)
        self._block(5, body + self._options([(5, struct.pack(self.e + "Q", ifdrop))]))
        return self

    def bytes(self) -> bytes:
        return bytes(self.out)


def damaged_copies(buf: bytes, seed: str, count: int) -> list[bytes]:
    """``count`` damaged copies of a capture, reproducible from ``seed``: cut at a random
    offset, 64 random bytes written over, or random zero padding appended."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        b = bytearray(buf)
        kind = rng.choice(("cut", "garbage", "zeros"))
        at = rng.randrange(16, len(b))
        if kind == "cut":
            b = b[:at]
        elif kind == "garbage":
            n = min(64, len(b) - at)
            b[at : at + n] = bytes(rng.randrange(256) for _ in range(n))
        else:
            b += bytes(rng.randrange(24, 4096))
        out.append(bytes(b))
    return out
