"""Find what a capture gives away, and where: one pass over the frames.

What is collected (Core v5.4 section of each structure in the comments below):

* device addresses (wire order) with their type where a field says it: HCI command/event
  parameters (Vol 4 Part E §7), LE advertising reports and LL headers (Vol 6 Part B §2.3), AD/EIR
  LE Bluetooth Device Address and target addresses (CSS Part A §1), SMP Identity Address
  Information (Vol 3 Part H §3.6.5), Linux-monitor New Index;
* secrets to zero in place: link keys (Link Key Notification §7.7.24, Link Key Request Reply
  §7.1.10, Write Stored Link Key §7.3.9, Return Link Keys §7.7.21), LTKs (LE Long Term Key
  Request Reply §7.8.25, LE Start Encryption §7.8.24, SMP Encryption Information §3.6.2), IRKs
  (SMP Identity Information §3.6.4, LE Add Device To Resolving List §7.8.38), CSRKs (SMP Signing
  Information §3.6.6), PIN codes (§7.1.12), passkeys (§7.1.33, §7.7.48), DHKeys (§7.7.65.9), LE
  Encrypt key and result (§7.8.22), OOB C/R values (§7.3.60, §7.1.34) and the SMP Pairing
  Confirm/Random values (§3.5.3-4), from which a legacy passkey or TK is recovered (crackle);
* names: Remote Name Request Complete (§7.7.7), Read/Write Local Name (§7.3.11-12), EIR and AD
  Local Name / Broadcast Name structures, GAP Device Name (0x2A00) values read or written over
  ATT (Vol 3 Part F §3.4);
* phone numbers / caller ids in HFP AT lines (+CLIP, +CNUM, +CCWA, +BINP, +CLCC, ATD; HFP 1.8
  §4.34) carried in ACL frames;
* OBEX header values (Name, Description, Body, End of Body, Application Parameters; IrOBEX
  §2.2) on L2CAP channels that open with an OBEX Connect, with the ERTM FCS positions
  (Vol 3 Part A §3.3.5) to recompute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from analyzer.capture import (
    K_ACL,
    K_COMMAND,
    K_EVENT,
    K_LL_ADV,
    K_LL_DATA,
    K_MONITOR,
    KINDS,
    Capture,
)
from analyzer.decode.hci_commands import decode_command
from analyzer.decode.hci_events import decode_event
from analyzer.decode.rfcomm import decode_rfcomm

Span = tuple[int, int]  # (absolute offset in the buffer, length)

_AT_NUMBER = re.compile(
    rb'\+(?:CLIP|CCWA|BINP): ?"([^"\r\n]*)"'
    rb'|\+CNUM: ?[^,\r\n]*,"([^"\r\n]*)"'
    rb'|\+CLCC: ?(?:[^,\r\n]*,){5}"([^"\r\n]*)"'
    rb"|ATD>?([0-9+*#A-Da-dpPwW]+)"
)
_AT_CLIP_NAME = re.compile(rb'\+(?:CLIP|CCWA): ?"[^"\r\n]*",\d+,[^,\r\n]*,[^,\r\n]*,"([^"\r\n]*)"')
_ADDR_STR = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
#: OBEX header ids whose values are blanked (IrOBEX §2.2): Name, Description, Body, End of Body,
#: Application Parameters, Who? no (Who is a service UUID the analysis may need)
_OBEX_BLANK = frozenset({0x01, 0x05, 0x48, 0x49, 0x4C})


@dataclass
class Found:
    """What one pass found (positions are absolute buffer offsets)."""

    addresses: set[bytes] = field(default_factory=set)
    random: set[bytes] = field(default_factory=set)
    keys: dict[str, set[bytes]] = field(default_factory=dict)  # kind -> 16/32-byte values
    zero: list[Span] = field(default_factory=list)  # ranges to zero in place
    zero_kinds: dict[str, int] = field(default_factory=dict)  # kind -> ranges zeroed
    names: dict[bytes, list[Span]] = field(default_factory=dict)
    numbers: dict[bytes, list[Span]] = field(default_factory=dict)
    obex: list[Span] = field(default_factory=list)
    fcs: list[list[Span]] = field(default_factory=list)  # ERTM I-frames: pieces of the PDU
    ll_frames: list[Span] = field(default_factory=list)  # LL packets whose CRC follows them
    #: addresses of packets that failed their CRC: (position, wire bytes, random) - replaced
    #: there only, as their bytes may be any bytes
    local: list[tuple[int, bytes, bool]] = field(default_factory=list)

    def address(self, wire: bytes, random: bool = False) -> None:
        if len(wire) == 6:
            self.addresses.add(wire)
            if random:
                self.random.add(wire)

    def secret(self, kind: str, span: Span, value: bytes) -> None:
        self.zero.append(span)
        self.zero_kinds[kind] = self.zero_kinds.get(kind, 0) + 1
        if len(value) >= 16 and any(value):
            self.keys.setdefault(kind, set()).add(value)

    def name(self, value: bytes, at: int) -> None:
        value = value.split(b"\x00", 1)[0]
        if value.strip():
            self.names.setdefault(value, []).append((at, len(value)))

    def number(self, value: bytes, at: int) -> None:
        if any(0x30 <= c <= 0x39 for c in value):
            self.numbers.setdefault(value, []).append((at, len(value)))


class Pdu:
    """An L2CAP PDU rebuilt from ACL/LL fragments, with where each byte sits in the buffer."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.data = bytearray()
        self.pieces: list[Span] = []

    def add(self, at: int, chunk: bytes) -> None:
        self.pieces.append((at, len(chunk)))
        self.data += chunk

    def spans(self, start: int, length: int) -> list[Span]:
        """Buffer ranges holding PDU bytes ``start:start+length``."""
        out: list[Span] = []
        pos = 0
        end = start + length
        for at, n in self.pieces:
            lo, hi = max(start, pos), min(end, pos + n)
            if lo < hi:
                out.append((at + lo - pos, hi - lo))
            pos += n
        return out

    def at(self, i: int) -> int:
        s = self.spans(i, 1)
        return s[0][0] if s else -1


def _obex_connect(pk: bytes) -> bool:
    """Is ``pk`` an OBEX Connect request or its success response (IrOBEX §3.4.1)?"""
    return (
        len(pk) >= 7 and pk[0] in (0x80, 0xA0) and (pk[1] << 8 | pk[2]) == len(pk) and pk[3] == 0x10
    )


class ObexStream:
    """OBEX packets (IrOBEX §3.1-3.4) read as a byte stream across frames, so that a header
    value split over L2CAP segments or RFCOMM frames is blanked in every piece. The first
    packet of a channel is its Connect (request or response: 4 more header bytes)."""

    def __init__(self) -> None:
        self.state = "op"
        self.acc = bytearray()  # bytes of a field being read
        self.need = 0  # bytes still to read in the current field / value / skip
        self.pkt_left = 0
        self.first = True
        self.blank = False

    def feed(self, pdu: Pdu, start: int, end: int, out: list[Span]) -> None:
        b = pdu.data
        i = start
        if self.state == "lost":  # resynchronise on a frame boundary
            self.state, self.acc = "op", bytearray()
        while i < end:
            if self.state in ("op", "len"):
                want = 3 if self.state == "op" else 2
                take = min(want - len(self.acc), end - i)
                self.acc += b[i : i + take]
                i += take
                if self.state == "len":
                    self.pkt_left -= take
                if len(self.acc) < want:
                    break
                if self.state == "op":
                    op, plen = self.acc[0], (self.acc[1] << 8) | self.acc[2]
                    if plen < 3:
                        self.state = "lost"
                        return
                    self.pkt_left = plen - 3
                    extra = 4 if op == 0x80 or self.first else 2 if op & 0x7F == 0x05 else 0
                    self.first = False
                    self.state, self.need, self.blank = "skip", min(extra, self.pkt_left), False
                else:
                    ln = (self.acc[0] << 8) | self.acc[1]
                    if ln < 3:
                        self.state = "lost"
                        return
                    self.state, self.need = "val", min(ln - 3, self.pkt_left)
                self.acc = bytearray()
            elif self.state in ("skip", "val"):
                take = min(self.need, end - i)
                if self.state == "val" and self.blank and take:
                    out.extend(pdu.spans(i, take))
                i += take
                self.need -= take
                self.pkt_left -= take
                if self.need:
                    break
                self.state = "hi"
            elif self.state == "hi":
                hi = b[i]
                i += 1
                self.pkt_left -= 1
                enc = hi >> 6
                if enc in (0, 1):
                    self.state, self.blank = "len", hi in _OBEX_BLANK
                else:
                    self.state, self.need, self.blank = "skip", 1 if enc == 2 else 4, False
            if self.state == "hi" and self.pkt_left <= 0:  # the packet is done
                self.state = "op"
        if self.state == "hi" and self.pkt_left <= 0:
            self.state = "op"


def ll_crc_state(data: bytes, state: int) -> int:
    """The BLE CRC LFSR (Vol 6 Part B §3.1.1, x^24+x^10+x^9+x^6+x^4+x^3+x+1), bits fed LSB first;
    with ``state`` = the bit-reversed CRCInit, the result is the CRC as its three little-endian
    bytes on the wire (as Wireshark's ``btle`` dissector reads them)."""
    for byte in data:
        c = byte
        for _ in range(8):
            nb = (state ^ c) & 1
            c >>= 1
            state >>= 1
            if nb:
                state |= 0x800000
                state ^= 0x5A6000
    return state


def _reverse24(v: int) -> int:
    return int(f"{v & 0xFFFFFF:024b}"[::-1], 2)


#: LFSR start state on the advertising channels (CRCInit 0x555555)
ADV_CRC_STATE = _reverse24(0x555555)


def ad_ok(data: bytes) -> bool:
    """Do ``data`` parse as AD structures to their end (zero padding allowed)? (CSS Part A §1)"""
    i = 0
    while i < len(data):
        if data[i] == 0:
            return not any(data[i:])
        i += 1 + data[i]
    return i == len(data)


def _wire(text: str) -> bytes:
    """``AA:BB:CC:DD:EE:FF`` -> its 6 bytes in wire (little-endian) order."""
    return bytes.fromhex(text.replace(":", ""))[::-1]


def _u16(b: bytes | bytearray, i: int) -> int:
    return b[i] | (b[i + 1] << 8) if i + 2 <= len(b) else -1


class Collector:
    """One pass over a capture's frames (see the module docstring)."""

    def __init__(self, cap: Capture) -> None:
        self.cap = cap
        self.buf = cap.buffer
        self.found = Found()
        self.pending: dict[tuple[object, ...], Pdu] = {}
        self.name_handles: dict[object, set[int]] = {}
        self.name_read: dict[object, str] = {}
        self.obex_cids: dict[tuple[object, ...], int] = {}  # (conn, dir, cid) -> OBEX offset
        self.obex_streams: dict[tuple[object, ...], ObexStream] = {}
        self.crc_init: dict[bytes, int] = {}  # access address -> LFSR start state
        self.check_crc = True

    # -- driving --------------------------------------------------------------------------------
    def run(self) -> Found:
        f = self.cap.frames
        if not f.height:
            return self.found
        kinds = f["kind"].cast(str).to_list()
        dirs = f["direction"].cast(str).to_list()
        offs = f["offset"].to_numpy()
        lens = f["length"].to_numpy()
        lts = f["link_type"].to_numpy()
        code = {k: i for i, k in enumerate(KINDS)}
        self.check_crc = self._crcs_are_real(kinds, offs, lens)
        for k, d, o, n, lt in zip(
            kinds, dirs, offs.tolist(), lens.tolist(), lts.tolist(), strict=True
        ):
            kc = code[k]
            p = bytes(self.buf[o : o + n])
            if kc == K_COMMAND:
                self.command(p, o)
            elif kc == K_EVENT:
                self.event(p, o)
            elif kc == K_ACL:
                self.acl(p, o, d)
            elif kc in (K_LL_ADV, K_LL_DATA):
                self.ll(p, o, d, kc == K_LL_ADV)
            elif kc == K_MONITOR:
                self.monitor(p, o, int(lt))
        return self.found

    def _crcs_are_real(self, kinds: list[str], offs: np.ndarray, lens: np.ndarray) -> bool:
        """Do this capture's advertising packets carry their real CRC? Some sniffers write a
        constant or zeros there; then a failed check says nothing about the packet. Judged on
        up to 400 advertising packets: most must check."""
        ok = tried = 0
        for k, o, n in zip(kinds, offs.tolist(), lens.tolist(), strict=True):
            if k != "ll_adv" or n < 9:
                continue
            p = bytes(self.buf[o : o + n])
            end = 6 + p[5]
            if end + 3 > len(p):
                continue
            tried += 1
            ok += ll_crc_state(p[4:end], ADV_CRC_STATE) == int.from_bytes(
                p[end : end + 3], "little"
            )
            if tried >= 400:
                break
        return tried > 0 and ok * 2 >= tried

    # -- AD / EIR structures (CSS Part A §1) ----------------------------------------------------
    def noisy_adv(self, hdr0: int, pay: bytes, ln: int, at: int) -> None:
        """Address fields and AD names of an advertising PDU that failed its CRC (§2.3). ``pay``
        runs to the end of the frame: a decoder reads an address past a length field that is
        too short (the length is noise too)."""
        t = hdr0 & 0x0F
        tx, rx = bool(hdr0 & 0x40), bool(hdr0 & 0x80)
        fields: list[tuple[int, bool]] = []
        if t in (0, 2, 4, 6):
            fields = [(0, tx)]
            self.ad(pay[6:ln], at + 6)
        elif t in (1, 3, 5):
            fields = [(0, tx), (6, rx)]
        elif t in (7, 8) and len(pay) > 1 and pay[0] & 0x3F:  # extended header (§2.3.4)
            off = 2
            if pay[1] & 0x01:
                fields.append((off, tx))
                off += 6
            if pay[1] & 0x02:
                fields.append((off, rx))
        for off, random in fields:
            if off + 6 <= len(pay):
                self.found.local.append((at + off, pay[off : off + 6], random))

    def ad(self, data: bytes, at: int) -> None:
        i = 0
        while i < len(data):
            ln = data[i]
            if ln == 0:
                break
            t = data[i + 1] if i + 1 < len(data) else -1
            v = data[i + 2 : i + 1 + ln]
            vat = at + i + 2
            if t in (0x08, 0x09, 0x30):  # Shortened / Complete Local Name, Broadcast Name
                self.found.name(v, vat)
            elif t == 0x1B and len(v) >= 7:  # LE Bluetooth Device Address
                self.found.address(v[:6], bool(v[6] & 1))
            elif t in (0x17, 0x18):  # Public / Random Target Address
                for j in range(0, len(v) - 5, 6):
                    self.found.address(v[j : j + 6], t == 0x18)
            i += 1 + ln

    # -- HCI commands (Vol 4 Part E §7) ---------------------------------------------------------
    def command(self, p: bytes, o: int) -> None:
        if len(p) < 3:
            return
        op = p[0] | (p[1] << 8)
        q, qa = p[3:], o + 3
        fd = self.found
        r = decode_command(p)
        if r.bd_addr:  # the decoder's BD_ADDR, wherever it sits in this command
            fd.address(_wire(r.bd_addr))
        if op == 0x040B and len(q) >= 22:  # Link Key Request Reply
            fd.secret("link_key", (qa + 6, 16), q[6:22])
        elif op == 0x040D and len(q) >= 23:  # PIN Code Request Reply
            fd.secret("pin", (qa + 7, 16), q[7:23])
        elif op == 0x042E and len(q) >= 10:  # User Passkey Request Reply
            fd.secret("passkey", (qa + 6, 4), q[6:10])
        elif op in (0x0430, 0x0445) and len(q) >= 38:  # Remote OOB (Extended) Data Request Reply
            fd.secret("oob", (qa + 6, len(q) - 6), q[6:])
        elif op == 0x0C11 and q:  # Write Stored Link Key
            for j in range(q[0]):
                b = 1 + 22 * j
                if b + 22 <= len(q):
                    fd.address(q[b : b + 6])
                    fd.secret("link_key", (qa + b + 6, 16), q[b + 6 : b + 22])
        elif op == 0x0C13:  # Write Local Name
            fd.name(q[:248], qa)
        elif op == 0x0C52 and len(q) > 1:  # Write Extended Inquiry Response
            self.ad(q[1:], qa + 1)
        elif op in (0x2008, 0x2009) and q:  # LE Set Advertising / Scan Response Data
            self.ad(q[1 : 1 + q[0]], qa + 1)
        elif op in (0x2037, 0x2038) and len(q) >= 4:  # LE Set Extended Adv / Scan Resp Data
            self.ad(q[4 : 4 + q[3]], qa + 4)
        elif op == 0x203F and len(q) >= 3:  # LE Set Periodic Advertising Data
            self.ad(q[3 : 3 + q[2]], qa + 3)
        elif op == 0x2005:  # LE Set Random Address
            fd.address(q[:6], True)
        elif op == 0x2035:  # LE Set Advertising Set Random Address
            fd.address(q[1:7], True)
        elif op == 0x2006 and len(q) >= 13:  # LE Set Advertising Parameters
            fd.address(q[7:13], bool(q[6] & 1))
        elif op == 0x2036 and len(q) >= 18:  # LE Set Extended Advertising Parameters
            fd.address(q[12:18], bool(q[11] & 1))
        elif op == 0x200D and len(q) >= 12:  # LE Create Connection
            fd.address(q[6:12], bool(q[5] & 1))
        elif op == 0x2043 and len(q) >= 9:  # LE Extended Create Connection
            fd.address(q[3:9], bool(q[2] & 1))
        elif op in (0x2011, 0x2012, 0x2028, 0x204E) and len(q) >= 7:  # accept/resolving lists
            fd.address(q[1:7], bool(q[0] & 1))
        elif op == 0x2027 and len(q) >= 39:  # LE Add Device To Resolving List
            fd.address(q[1:7], bool(q[0] & 1))
            fd.secret("irk", (qa + 7, 16), q[7:23])
            fd.secret("irk", (qa + 23, 16), q[23:39])
        elif op == 0x2044 and len(q) >= 9:  # LE Periodic Advertising Create Sync
            fd.address(q[3:9], bool(q[2] & 1))
        elif op == 0x201A and len(q) >= 18:  # LE Long Term Key Request Reply
            fd.secret("ltk", (qa + 2, 16), q[2:18])
        elif op == 0x2019 and len(q) >= 28:  # LE Enable (Start) Encryption
            fd.secret("ltk", (qa + 12, 16), q[12:28])
        elif op == 0x2017 and len(q) >= 16:  # LE Encrypt
            fd.secret("le_encrypt", (qa, 16), q[:16])
        elif op == 0x2026 and len(q) >= 64:  # LE Generate DHKey (remote public key: public)
            pass

    # -- HCI events (Vol 4 Part E §7.7) ---------------------------------------------------------
    def event(self, p: bytes, o: int) -> None:
        if len(p) < 2:
            return
        ev = p[0]
        q, qa = p[2:], o + 2
        fd = self.found
        r = decode_event(p)
        if r.bd_addr and ev != 0x3E:  # (LE Meta: parsed below, damaged reports kept apart)
            fd.address(_wire(r.bd_addr))
        if ev == 0x18 and len(q) >= 22:  # Link Key Notification
            fd.secret("link_key", (qa + 6, 16), q[6:22])
        elif ev == 0x15 and q:  # Return Link Keys
            for j in range(q[0]):
                b = 1 + 22 * j
                if b + 22 <= len(q):
                    fd.address(q[b : b + 6])
                    fd.secret("link_key", (qa + b + 6, 16), q[b + 6 : b + 22])
        elif ev == 0x3B and len(q) >= 10:  # User Passkey Notification
            fd.secret("passkey", (qa + 6, 4), q[6:10])
        elif ev == 0x07 and len(q) >= 7:  # Remote Name Request Complete
            fd.address(q[1:7])
            fd.name(q[7:255], qa + 7)
        elif ev in (0x02, 0x22, 0x2F) and q:  # Inquiry Result (with RSSI) / Extended
            size = {0x02: 14, 0x22: 14, 0x2F: 14}[ev]
            for j in range(q[0]):
                fd.address(q[1 + size * j : 7 + size * j])
            if ev == 0x2F and len(q) > 15:
                self.ad(q[15:255], qa + 15)
        elif ev == 0x0E and len(q) >= 4:
            self.command_complete(q[1] | (q[2] << 8), q[3:], qa + 3)
        elif ev == 0x3E and q:
            self.le_meta(q, qa)

    def command_complete(self, op: int, r: bytes, ra: int) -> None:
        fd = self.found
        if op == 0x0C14 and len(r) > 1:  # Read Local Name
            fd.name(r[1:249], ra + 1)
        elif op == 0x0C51 and len(r) > 2:  # Read Extended Inquiry Response
            self.ad(r[2:], ra + 2)
        elif op == 0x1009 and len(r) >= 7:  # Read BD_ADDR
            fd.address(r[1:7])
        elif op in (0x202B, 0x202C) and len(r) >= 7:  # LE Read Peer / Local Resolvable Address
            fd.address(r[1:7], True)
        elif op == 0x2017 and len(r) >= 17:  # LE Encrypt result
            fd.secret("le_encrypt", (ra + 1, 16), r[1:17])
        elif op in (0x0C57, 0x0C7D) and len(r) > 1:  # Read Local OOB (Extended) Data
            fd.secret("oob", (ra + 1, len(r) - 1), r[1:])

    def le_meta(self, q: bytes, qa: int) -> None:
        fd = self.found
        sub = q[0]
        if sub in (0x01, 0x0A) and len(q) >= 12:  # LE (Enhanced) Connection Complete
            fd.address(q[6:12], bool(q[5] & 1))
            if sub == 0x0A and len(q) >= 24:
                fd.address(q[12:18], True)
                fd.address(q[18:24], True)
        elif sub == 0x02 and len(q) >= 2:  # LE Advertising Report: one report after another
            reports = []
            i = 2
            for _ in range(q[1]):
                if i + 9 > len(q):
                    break
                reports.append(i)
                i += 10 + q[i + 8]
            end = i
            for i in reports:
                if end != len(q) or not ad_ok(q[i + 9 : i + 9 + q[i + 8]]):
                    # a damaged report (lengths that do not add up, data that is no AD): its
                    # address field may hold any bytes, so it is remapped there only
                    fd.local.append((qa + i + 2, q[i + 2 : i + 8], bool(q[i + 1] & 1)))
                    continue
                fd.address(q[i + 2 : i + 8], bool(q[i + 1] & 1))
                self.ad(q[i + 9 : i + 9 + q[i + 8]], qa + i + 9)
        elif sub == 0x0B and len(q) >= 2:  # LE Directed Advertising Report
            for j in range(q[1]):
                b = 2 + 16 * j
                if b + 15 <= len(q):
                    fd.address(q[b + 2 : b + 8], bool(q[b + 1] & 1))
                    fd.address(q[b + 9 : b + 15], bool(q[b + 8] & 1))
        elif sub == 0x0D and len(q) >= 2:  # LE Extended Advertising Report
            reports = []
            i = 2
            for _ in range(q[1]):
                if i + 24 > len(q):
                    break
                reports.append(i)
                i += 24 + q[i + 23]
            end = i
            for i in reports:
                if end != len(q) or not ad_ok(q[i + 24 : i + 24 + q[i + 23]]):
                    fd.local.append((qa + i + 3, q[i + 3 : i + 9], bool(q[i + 2] & 1)))
                    continue
                fd.address(q[i + 3 : i + 9], bool(q[i + 2] & 1))
                fd.address(q[i + 17 : i + 23], bool(q[i + 16] & 1))
                self.ad(q[i + 24 : i + 24 + q[i + 23]], qa + i + 24)
        elif sub == 0x0E and len(q) >= 11:  # LE Periodic Advertising Sync Established
            fd.address(q[5:11], bool(q[4] & 1))
        elif sub == 0x0F and len(q) >= 8:  # LE Periodic Advertising Report
            self.ad(q[8 : 8 + q[7]], qa + 8)
        elif sub == 0x13 and len(q) >= 9:  # LE Scan Request Received
            fd.address(q[3:9], bool(q[2] & 1))
        elif sub == 0x09 and len(q) >= 34:  # LE Generate DHKey Complete
            fd.secret("dhkey", (qa + 2, 32), q[2:34])

    # -- Linux monitor (BlueZ monitor/bt.h) -----------------------------------------------------
    def monitor(self, p: bytes, o: int, lt: int) -> None:
        hdr = None
        if lt == 2001 and o >= 16:
            hdr = _u16(bytes(self.buf[o - 14 : o - 12])[::-1], 0)  # flags low 16 bits, BE
        elif lt == 254 and o >= 4:
            hdr = _u16(bytes(self.buf[o - 2 : o])[::-1], 0)
        if hdr == 0 and len(p) >= 8:  # New Index: type, bus, bdaddr, name
            self.found.address(p[2:8])

    # -- ACL -> L2CAP (Vol 3 Part A §3) ---------------------------------------------------------
    def acl(self, p: bytes, o: int, d: str) -> None:
        if len(p) < 4:
            return
        handle = (p[0] | (p[1] << 8)) & 0x0FFF
        pb = (p[1] >> 4) & 3
        data, at = p[4:], o + 4
        self.at_lines(data, at)
        self.l2cap_fragment(("acl", handle), d, pb != 1, data, at)

    def l2cap_fragment(
        self, conn: tuple[object, ...], d: str, start: bool, data: bytes, at: int
    ) -> None:
        key = (conn, d)
        if start:
            if len(data) < 4:
                self.pending.pop(key, None)
                return
            pdu = Pdu(4 + _u16(data, 0))
            pdu.add(at, data)
            self.pending[key] = pdu
        else:
            cur = self.pending.get(key)
            if cur is None:
                return
            cur.add(at, data)
            pdu = cur
        if len(pdu.data) >= pdu.total:
            self.pending.pop(key, None)
            self.l2cap(conn, d, pdu)

    def l2cap(self, conn: tuple[object, ...], d: str, pdu: Pdu) -> None:
        b = pdu.data
        cid = _u16(b, 2)
        body = bytes(b[4 : pdu.total])
        if cid in (0x0006, 0x0007):
            self.smp(pdu, body)
        elif cid == 0x0004:
            self.att(conn, pdu, body)
        elif cid >= 0x0040:
            self.obex(conn, d, cid, pdu, body)

    def smp(self, pdu: Pdu, body: bytes, noise: bool = False) -> None:
        """SMP PDUs (Vol 3 Part H §3.5-3.6)."""
        if not body:
            return
        fd = self.found
        op = body[0]
        kind = {0x03: "confirm", 0x04: "random", 0x06: "ltk", 0x08: "irk", 0x0A: "csrk"}.get(op)
        if kind and len(body) >= 17:
            for span in pdu.spans(5, 16):
                fd.secret(kind, span, b"")
            if kind in ("ltk", "irk", "csrk") and any(body[1:17]):
                fd.keys.setdefault(kind, set()).add(body[1:17])
        elif op == 0x09 and len(body) >= 8:  # Identity Address Information
            if noise:
                fd.local.append((pdu.at(6), body[2:8], bool(body[1] & 1)))
            else:
                fd.address(body[2:8], bool(body[1] & 1))

    def att(self, conn: object, pdu: Pdu, body: bytes) -> None:
        """GAP Device Name (0x2A00) values over ATT (Vol 3 Part F §3.4, Part G §3.3.1)."""
        if not body:
            return
        op = body[0]
        handles = self.name_handles.setdefault(conn, set())
        if op == 0x08 and len(body) >= 7:  # Read By Type Request
            uuid = _u16(body, 5) if len(body) == 7 else -1
            self.name_read[conn] = {0x2A00: "rbt_name", 0x2803: "rbt_char"}.get(uuid, "")
        elif op == 0x09 and len(body) >= 2:  # Read By Type Response
            want = self.name_read.pop(conn, "")
            ln = body[1]
            if ln < 2:
                return
            for i in range(2, len(body) - ln + 1, ln):
                entry = body[i : i + ln]
                if want == "rbt_name":
                    self.found.name(entry[2:], pdu.at(4 + i + 2))
                elif want == "rbt_char" and ln == 7 and _u16(entry, 5) == 0x2A00:
                    handles.add(_u16(entry, 3))
        elif op in (0x0A, 0x0C) and len(body) >= 3:  # Read / Read Blob Request
            self.name_read[conn] = "read_name" if _u16(body, 1) in handles else ""
        elif op in (0x0B, 0x0D):  # Read / Read Blob Response
            if self.name_read.pop(conn, "") == "read_name" and len(body) > 1:
                self._name_in(pdu, body[1:], 5)
        elif op in (0x12, 0x52) and len(body) >= 3 and _u16(body, 1) in handles:  # Write
            self._name_in(pdu, body[3:], 7)

    def _name_in(self, pdu: Pdu, value: bytes, start: int) -> None:
        value = value.split(b"\x00", 1)[0]
        pos = start
        for at, n in pdu.spans(start, len(value)):  # a value split over fragments: each piece
            self.found.name(value[pos - start : pos - start + n], at)
            pos += n

    # -- OBEX over L2CAP (GOEP 2.0; IrOBEX §3) --------------------------------------------------
    def obex(self, conn: object, d: str, cid: int, pdu: Pdu, body: bytes) -> None:
        """OBEX on an L2CAP channel (GOEP 2.0, basic or ERTM mode), else OBEX in the UIH frames
        of an RFCOMM channel (GOEP 1.x) carried there."""
        key = (conn, d, cid)
        start = self.obex_cids.get(key)
        if start is None:
            for off, fcs in ((0, 0), (2, 2)):  # basic mode, or ERTM with control field and FCS
                if _obex_connect(body[off : len(body) - fcs]):
                    self.obex_cids[key] = start = off
                    self.obex_streams[key] = ObexStream()
                    break
            if start is None:
                self.rfcomm(key, pdu, body)
                return
        stream = self.obex_streams[key]
        if start == 2:  # ERTM (Vol 3 Part A §3.3.2): control, [SDU length], payload, FCS
            ctrl = _u16(body, 0)
            if ctrl & 1:  # S-frame: no payload
                return
            self.found.fcs.append(pdu.spans(0, pdu.total))
            sar = (ctrl >> 14) & 3
            at = 4 + 2 + (2 if sar == 1 else 0)
            stream.feed(pdu, at, pdu.total - 2, self.found.obex)
        else:
            stream.feed(pdu, 4, pdu.total, self.found.obex)

    def rfcomm(self, key: tuple[object, ...], pdu: Pdu, body: bytes) -> None:
        """An RFCOMM UIH frame (TS 07.10 §5.2) whose channel opened with an OBEX Connect."""
        fr = decode_rfcomm(body)
        if fr.anomaly or not fr.fcs_ok or fr.frame_type != 0xEF or not fr.dlci or not fr.payload:
            return
        skey = (*key, fr.dlci)
        at = 4 + len(body) - 1 - len(fr.payload)
        stream = self.obex_streams.get(skey)
        if stream is None:
            if not _obex_connect(fr.payload):
                return
            stream = self.obex_streams[skey] = ObexStream()
        stream.feed(pdu, at, at + len(fr.payload), self.found.obex)

    # -- HFP AT lines (numbers, caller names) ---------------------------------------------------
    def at_lines(self, data: bytes, at: int) -> None:
        if b"+C" not in data and b"ATD" not in data and b"+BINP" not in data:
            return
        for m in _AT_NUMBER.finditer(data):
            for g in range(1, 5):
                if m.group(g):
                    self.found.number(m.group(g), at + m.start(g))
        for m in _AT_CLIP_NAME.finditer(data):
            if m.group(1):
                self.found.name(m.group(1), at + m.start(1))

    # -- LE link layer (Vol 6 Part B §2.3-2.4) --------------------------------------------------
    def ll(self, p: bytes, o: int, d: str, adv: bool) -> None:
        if len(p) < 6:
            return
        hdr0, ln = p[4], p[5]
        cte = 1 if (not adv and hdr0 & 0x20) else 0
        pay_at = 6 + cte
        pay = p[pay_at : pay_at + ln]
        if pay_at + ln + 3 <= len(p):
            self.found.ll_frames.append((o + 4, pay_at - 4 + ln))
        fd = self.found
        crc_at = pay_at + ln
        if crc_at + 3 <= len(p):  # a packet that fails its CRC is noise: take nothing from it
            init = ADV_CRC_STATE if adv else self.crc_init.get(p[:4])
            got = int.from_bytes(p[crc_at : crc_at + 3], "little")
            # (a sniffer that does not keep the CRC writes zeros: nothing to check)
            if (
                self.check_crc
                and got
                and init is not None
                and ll_crc_state(p[4:crc_at], init) != got
            ):
                if adv:  # noise: its address fields are remapped there and nowhere else
                    self.noisy_adv(hdr0, p[pay_at:], ln, o + pay_at)
                elif hdr0 & 3 == 2 and len(pay) >= 5 and _u16(pay, 2) in (6, 7):
                    pdu = Pdu(len(pay))  # SMP keys are zeroed wherever a decoder sees them
                    pdu.add(o + pay_at, pay)
                    self.smp(pdu, pay[4:], noise=True)
                return
        if adv:
            t = hdr0 & 0x0F
            if t == 5 and len(pay) >= 22:  # CONNECT_IND: the connection's AA and CRCInit
                self.crc_init[pay[12:16]] = _reverse24(int.from_bytes(pay[16:19], "little"))
            tx, rx = bool(hdr0 & 0x40), bool(hdr0 & 0x80)
            if t in (0, 2, 4, 6):  # ADV_IND, ADV_NONCONN_IND, SCAN_RSP, ADV_SCAN_IND
                fd.address(pay[:6], tx)
                self.ad(pay[6:], o + pay_at + 6)
            elif t == 1 or t in (3, 5):  # ADV_DIRECT_IND
                fd.address(pay[:6], tx)
                fd.address(pay[6:12], rx)
            elif t in (7, 8) and pay:  # extended header (§2.3.4)
                hl = pay[0] & 0x3F
                if hl and len(pay) > 1:
                    flags = pay[1]
                    i = 2
                    if flags & 0x01:  # AdvA
                        fd.address(pay[i : i + 6], tx)
                        i += 6
                    if flags & 0x02:  # TargetA
                        fd.address(pay[i : i + 6], rx)
                        i += 6
                self.ad(pay[1 + hl :], o + pay_at + 1 + hl)
            return
        llid = hdr0 & 3
        aa = p[:4]
        if llid in (1, 2) and ln:
            self.l2cap_fragment(("ll", aa), d, llid == 2, pay, o + pay_at)


def collect(cap: Capture) -> Found:
    """What ``cap`` gives away (see the module docstring)."""
    return Collector(cap).run()
