"""Linear time (issue 18 §2): every session pass and rule is O(frames · log frames) at worst.

Each crafted capture repeats one pattern (resets, connections, L2CAP channels, SDP
continuations, AT lines, AVDTP signals, ATT and SMP exchanges, HCI commands, ...) ``n`` and
``SCALE × n`` times; a test fails when the larger capture costs more than :data:`MAX_RATIO`
times as much per repetition as the smaller (process CPU time, the fixed cost of an empty
analysis taken off, the best of a few runs). A quadratic pass makes the ratio ~``SCALE``.

Advertising (scan toggles, advertisers) has its own scaling test with the advertising passes.

The sizes are chosen so that each quadratic pass this test was written against (issue 18 §2:
resets × commands, connections × channels, channels × channels, pairing attempts, pending HCI
commands, SCO links × HFP sessions, ...) made the ratio 3-5 before it was fixed, while the whole
file stays well under a minute.

``python -m tests.test_scaling [NAME|all] [MULT] [prof]`` prints the costs at MULT × the sizes
below (``prof``: a profile of the larger capture, to find a slow pass).
"""

from __future__ import annotations

import struct
import sys
import time
from collections.abc import Callable

import pytest

from analyzer.analysis import analyze_capture
from analyzer.capture import Capture
from analyzer.decode.rfcomm import build_frame
from analyzer.model import Analysis
from analyzer.readers import Source, read_source

SCALE = 8
MAX_RATIO = 3.0
EPOCH = 0x00DCDDB30F2F8000  # btsnoop microseconds at 1970-01-01
T0 = 1_767_261_600_000_000


def addr(i: int) -> bytes:
    return struct.pack("<I", i) + b"\x1b\x00"


class Snoop:
    """A btsnoop (datalink 1002, H4) capture built in memory; frame numbers start at 1."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.t = T0

    def add(self, h4: bytes, received: bool, dt_ms: float = 10) -> int:
        self.t += int(dt_ms * 1000)
        flags = (1 if received else 0) | (2 if h4[0] in (1, 4) else 0)
        self.records.append(struct.pack(">IIIIq", len(h4), len(h4), flags, 0, self.t + EPOCH) + h4)
        return len(self.records)

    def cmd(self, opcode: int, params: bytes = b"", dt_ms: float = 10) -> int:
        return self.add(b"\x01" + struct.pack("<HB", opcode, len(params)) + params, False, dt_ms)

    def event(self, code: int, params: bytes, dt_ms: float = 10) -> int:
        return self.add(bytes([4, code, len(params)]) + params, True, dt_ms)

    def complete(self, opcode: int, ret: bytes = b"\x00", dt_ms: float = 1) -> int:
        """Command Complete (Core v5.4 Vol 4 Part E §7.7.14)."""
        return self.event(0x0E, b"\x01" + struct.pack("<H", opcode) + ret, dt_ms)

    def status(self, opcode: int, status: int = 0, dt_ms: float = 1) -> int:
        """Command Status (§7.7.15)."""
        return self.event(0x0F, bytes([status, 1]) + struct.pack("<H", opcode), dt_ms)

    def conn_complete(self, handle: int, peer: bytes, status: int = 0) -> int:
        """Connection Complete (§7.7.3), ACL."""
        return self.event(0x03, bytes([status]) + struct.pack("<H", handle) + peer + b"\x01\x00")

    def le_conn_complete(self, handle: int, peer: bytes) -> int:
        """LE Connection Complete (§7.7.65.1), central."""
        p = bytes([1, 0]) + struct.pack("<HBB", handle, 0, 0) + peer
        return self.event(0x3E, p + struct.pack("<HHHB", 24, 0, 72, 0))

    def disconn_complete(self, handle: int, reason: int, dt_ms: float = 10) -> int:
        """Disconnection Complete (§7.7.5)."""
        return self.event(0x05, b"\x00" + struct.pack("<HB", handle, reason), dt_ms)

    def acl(self, handle: int, cid: int, payload: bytes, received: bool, dt_ms: float = 10) -> int:
        l2 = struct.pack("<HH", len(payload), cid) + payload
        return self.add(
            b"\x02" + struct.pack("<HH", handle | 0x2000, len(l2)) + l2, received, dt_ms
        )

    def sig(self, handle: int, code: int, ident: int, data: bytes, received: bool) -> int:
        """An L2CAP signalling command (Core Vol 3 Part A §4)."""
        body = bytes([code, ident & 0xFF or 1]) + struct.pack("<H", len(data)) + data
        return self.acl(handle, 1, body, received)

    def channel(
        self, handle: int, psm: int, local: int, remote: int, ident: int, result: int = 0
    ) -> None:
        """We open a channel to ``psm``: Connection Request/Response, both Configurations."""
        self.sig(handle, 0x02, ident, struct.pack("<HH", psm, local), False)
        rsp = struct.pack("<HHHH", remote if result == 0 else 0, local, result, 0)
        self.sig(handle, 0x03, ident, rsp, True)
        if result == 0:
            self.sig(handle, 0x04, ident + 1, struct.pack("<HH", remote, 0), False)
            self.sig(handle, 0x05, ident + 1, struct.pack("<HHH", local, 0, 0), True)
            self.sig(handle, 0x04, ident + 2, struct.pack("<HH", local, 0), True)
            self.sig(handle, 0x05, ident + 2, struct.pack("<HHH", remote, 0, 0), False)

    def close(self, handle: int, local: int, remote: int, ident: int) -> None:
        self.sig(handle, 0x06, ident, struct.pack("<HH", remote, local), False)
        self.sig(handle, 0x07, ident, struct.pack("<HH", remote, local), True)

    def bytes(self) -> bytes:
        return b"btsnoop\x00" + struct.pack(">II", 1, 1002) + b"".join(self.records)


H = 0x000B  # the ACL handle of one-link patterns
LOCAL, REMOTE = 0x0040, 0x0041


def _one_link(s: Snoop, le: bool = False) -> None:
    if le:
        s.le_conn_complete(H, addr(1))
    else:
        s.conn_complete(H, addr(1))


# -- patterns: (capture of n repetitions) ----------------------------------------------------


def resets(n: int) -> bytes:
    """A link, then a Reset mid-capture and a new start-up, n times (controller_reset)."""
    s = Snoop()
    for i in range(n):
        s.conn_complete(H, addr(i))
        s.cmd(0x0C03, dt_ms=1000)
        s.complete(0x0C03)
        s.cmd(0x1001)  # Read Local Version Information
        s.complete(0x1001, b"\x00\x0b\x00\x00\x0b\x0f\x00\x00\x00")
    return s.bytes()


def connections(n: int) -> bytes:
    """Short connections on one handle: a profile channel, then the remote (or we) end it."""
    s = Snoop()
    for i in range(n):
        s.conn_complete(H, addr(i % 50))
        s.channel(H, 0x0019, LOCAL, REMOTE, 2 * i)
        if i % 2:
            s.cmd(0x0406, struct.pack("<HB", H, 0x13))  # our own Disconnect
            s.status(0x0406)
        s.disconn_complete(H, 0x13 if i % 3 else 0x08, dt_ms=2000)
    return s.bytes()


def handles(n: int) -> bytes:
    """Connections on many handles, up to 64 at a time, with ACL data and some data on handles
    whose Connection Complete is not in the capture."""
    s = Snoop()
    for i in range(n):
        h = 1 + i % 3000
        s.conn_complete(h, addr(i))
        s.acl(h, 0x0040, b"\x00" * 8, True)
        s.acl(0xE00 + i % 200, 0x0041, b"\x01" * 8, True)  # orphans
        if i >= 64:
            s.disconn_complete(1 + (i - 64) % 3000, 0x13)
    return s.bytes()


def channels(n: int) -> bytes:
    """L2CAP channels opened, used and closed on one link; every fifth refused."""
    s = Snoop()
    _one_link(s)
    for i in range(n):
        local, remote = 0x40 + i % 0xFF00, 0x40 + (i * 7) % 0xFF00
        refused = i % 5 == 4
        s.channel(H, 0x1001 + 2 * (i % 64), local, remote, 3 * i, result=2 if refused else 0)
        if not refused:
            s.acl(H, remote, b"\x00" * 20, False)
            s.acl(H, local, b"\x00" * 20, True)
            s.close(H, local, remote, 3 * i + 2)
    return s.bytes()


def sdp(n: int) -> bytes:
    """SDP ServiceSearchAttribute exchanges, each answered in three continuation parts."""
    s = Snoop()
    _one_link(s)
    s.channel(H, 0x0001, LOCAL, REMOTE, 1)
    rec = b"\x35\x0c\x09\x00\x01\x35\x03\x19\x11\x0b\x09\x00\x04\x08\x01"
    full = b"\x35" + bytes([len(rec) + 2]) + b"\x35" + bytes([len(rec)]) + rec
    parts = [full[:8], full[8:16], full[16:]]
    for i in range(n):
        cont = b"\x00"
        for k, part in enumerate(parts):
            req = b"\x35\x03\x19\x11\x0b\xff\xff\x35\x05\x0a\x00\x00\xff\xff" + cont
            tid = (3 * i + k) & 0xFFFF
            s.acl(H, REMOTE, b"\x06" + struct.pack(">HH", tid, len(req)) + req, False)
            cont = b"\x02" + struct.pack(">H", k + 1) if k < 2 else b"\x00"
            body = struct.pack(">H", len(part)) + part + cont
            s.acl(H, LOCAL, b"\x07" + struct.pack(">HH", tid, len(body)) + body, True)
    return s.bytes()


def at_lines(n: int) -> bytes:
    """HFP AT commands over RFCOMM: answered, unanswered and one line split over frames."""
    s = Snoop()
    _one_link(s)
    s.channel(H, 0x0003, LOCAL, REMOTE, 1)
    dlci = 2
    for d in (0, dlci):
        s.acl(H, REMOTE, build_frame(d, 0x2F, cr=1, pf=1), False)
        s.acl(H, LOCAL, build_frame(d, 0x63, cr=1, pf=1), True)

    def uih(text: str, received: bool) -> None:
        f = build_frame(dlci, 0xEF, cr=0 if received else 1, payload=text.encode())
        s.acl(H, LOCAL if received else REMOTE, f, received)

    uih("AT+BRSF=1023\r", True)
    uih("\r\n+BRSF: 871\r\n\r\nOK\r\n", False)
    for i in range(n):
        uih(f"AT+VGS={i % 15}\r", True)
        uih("\r\nOK\r\n", False)
        uih("AT+CL", True)
        uih("CC\r", True)
        uih("\r\nERROR\r\n" if i % 4 else "\r\n+CIEV: 1,1\r\n", False)
    return s.bytes()


def at_no_cr(n: int) -> bytes:
    """One AT line that never ends: n RFCOMM frames of text without a CR (the unfinished line
    must not be re-split on every frame)."""
    s = Snoop()
    _one_link(s)
    s.channel(H, 0x0003, LOCAL, REMOTE, 1)
    dlci = 2
    for d in (0, dlci):
        s.acl(H, REMOTE, build_frame(d, 0x2F, cr=1, pf=1), False)
        s.acl(H, LOCAL, build_frame(d, 0x63, cr=1, pf=1), True)
    s.acl(H, LOCAL, build_frame(dlci, 0xEF, cr=0, payload=b"AT+BRSF=1023\r"), True)
    for _ in range(n):
        s.acl(H, LOCAL, build_frame(dlci, 0xEF, cr=0, payload=b"A" * 100), True, dt_ms=1)
    return s.bytes()


def sdp_long(n: int) -> bytes:
    """One SDP response continued n times (the parts must not be re-joined or re-parsed on
    every part)."""
    s = Snoop()
    _one_link(s)
    s.channel(H, 0x0001, LOCAL, REMOTE, 1)
    cont = b"\x00"
    for k in range(n):
        req = b"\x35\x03\x19\x11\x0b\xff\xff\x35\x05\x0a\x00\x00\xff\xff" + cont
        s.acl(H, REMOTE, b"\x06" + struct.pack(">HH", k & 0xFFFF, len(req)) + req, False)
        part = b"\x35\xff" if k == 0 else b"\x09\x00\x01" * 5
        cont = b"\x02" + struct.pack(">H", k & 0xFFFF) if k < n - 1 else b"\x00"
        body = struct.pack(">H", len(part)) + part + cont
        s.acl(H, LOCAL, b"\x07" + struct.pack(">HH", k & 0xFFFF, len(body)) + body, True)
    return s.bytes()


def stale_channels(n: int) -> bytes:
    """Links replaced on their handle by a new Connection Complete (no Disconnection Complete:
    their channels stay open), every tenth ended by a Disconnection Complete."""
    s = Snoop()
    for i in range(n):
        h = 1 + i % 10
        s.conn_complete(h, addr(i))
        s.channel(h, 0x1001, LOCAL, REMOTE, 1)
        if i % 10 == 9:
            s.disconn_complete(h, 0x13)
    return s.bytes()


def disconnections(n: int) -> bytes:
    """Links known only by their data and their Disconnection Complete (set up before the
    capture), on a hundred handles."""
    s = Snoop()
    for i in range(n):
        h = 1 + i % 100
        s.acl(h, 0x0040, b"\x00" * 8, True)
        s.disconn_complete(h, 0x13)
    return s.bytes()


def _hf_record(channel: int) -> bytes:
    """An SDP record (Core Vol 3 Part B §5): Hands-Free on an RFCOMM server channel."""
    classes = b"\x09\x00\x01\x35\x03\x19\x11\x1e"
    proto = b"\x09\x00\x04\x35\x0c\x35\x03\x19\x01\x00\x35\x05\x19\x00\x03\x08" + bytes([channel])
    body = classes + proto
    return b"\x35" + bytes([len(body)]) + body


def hfp_sco(n: int) -> bytes:
    """HFP links: an SDP search, an RFCOMM channel, an SCO link while it is up, then the link
    ends (many sessions: each SCO link and DLC must find its own without a scan of all)."""
    s = Snoop()
    for i in range(n):
        h = 1 + i % 50
        s.conn_complete(h, addr(i))
        s.channel(h, 0x0001, LOCAL, REMOTE, 1)
        s.channel(h, 0x0003, LOCAL + 1, REMOTE + 1, 4)
        ch = 1 + i % 30
        rec = _hf_record(ch)
        lists = b"\x35" + bytes([len(rec)]) + rec
        req = b"\x35\x03\x19\x11\x1e\xff\xff\x35\x05\x0a\x00\x00\xff\xff\x00"
        s.acl(h, REMOTE, b"\x06" + struct.pack(">HH", i & 0xFFFF, len(req)) + req, False)
        body = struct.pack(">H", len(lists)) + lists + b"\x00"
        s.acl(h, LOCAL, b"\x07" + struct.pack(">HH", i & 0xFFFF, len(body)) + body, True)
        for d in (0, ch * 2):
            s.acl(h, REMOTE + 1, build_frame(d, 0x2F, cr=1, pf=1), False)
            s.acl(h, LOCAL + 1, build_frame(d, 0x63, cr=1, pf=1), True)
        s.acl(h, LOCAL + 1, build_frame(ch * 2, 0xEF, cr=0, payload=b"AT+BRSF=1023\r"), True)
        s.cmd(0x0428, struct.pack("<HIIHHBH", h, 8000, 8000, 0xFFFF, 0x60, 0xFF, 0x3F))
        s.status(0x0428)
        p = b"\x00" + struct.pack("<H", 0x100 + h) + addr(i) + bytes([2, 12, 2])
        s.event(0x2C, p + struct.pack("<HH", 60, 60) + b"\x02")
        s.disconn_complete(0x100 + h, 0x13)
        s.disconn_complete(h, 0x13)
    return s.bytes()


def avdtp(n: int) -> bytes:
    """AVDTP signalling: discover, configure, open, start, suspend, close cycles; some rejects."""
    s = Snoop()
    _one_link(s)
    s.channel(H, 0x0019, LOCAL, REMOTE, 1)
    sbc = b"\x01\x00\x07\x06\x00\x00\xff\xff\x02\x35"
    label = 0

    def cmd(sig: int, body: bytes, rsp: bytes, msg: int = 2) -> None:
        nonlocal label
        label = (label + 1) & 15
        s.acl(H, REMOTE, bytes([label << 4, sig]) + body, False)
        s.acl(H, LOCAL, bytes([label << 4 | msg, sig]) + rsp, True, dt_ms=5)

    for i in range(n):
        cmd(0x01, b"", b"\x04\x08")  # DISCOVER → SEID 1 audio sink
        cmd(0x02, b"\x04", sbc)  # GET_CAPABILITIES
        if i % 3 == 2:
            cmd(0x03, b"\x04\x04" + sbc, b"\x00\x29", msg=3)  # rejected: BAD_STATE
            continue
        cmd(0x03, b"\x04\x04" + sbc, b"")  # SET_CONFIGURATION
        cmd(0x06, b"\x04", b"")  # OPEN
        cmd(0x07, b"\x04", b"")  # START
        cmd(0x09, b"\x04", b"")  # SUSPEND
        cmd(0x08, b"\x04", b"")  # CLOSE
    return s.bytes()


def att(n: int) -> bytes:
    """ATT reads on an LE link: answered, refused with an error, and left unanswered."""
    s = Snoop()
    _one_link(s, le=True)
    for i in range(n):
        h = 1 + i % 100
        s.acl(H, 4, b"\x0a" + struct.pack("<H", h), False)
        if i % 5 == 0:
            s.acl(H, 4, b"\x01\x0a" + struct.pack("<H", h) + b"\x05", True)  # Insufficient Authn
        elif i % 7 == 0:
            s.t += 40_000_000  # no answer in 30 s
        else:
            s.acl(H, 4, b"\x0b" + b"\x00" * 10, True)
    return s.bytes()


def gatt(n: int) -> bytes:
    """GATT discovery of n characteristics, each with a descriptor, in services of ten (ATT
    Read By Group Type, Read By Type, Find Information; Core Vol 3 Part G §4), up to 20,000
    characteristics per LE link (the 16-bit handle space)."""
    s = Snoop()
    per = 20000
    for link in range(0, n, per):
        h0 = 0x40 + link // per
        s.le_conn_complete(h0, addr(link))
        m = min(per, n - link)
        for k in range(0, m, 10):
            start, end = 1 + 3 * k, 3 * (k + 10)
            s.acl(h0, 4, b"\x10" + struct.pack("<HHH", start, 0xFFFF, 0x2800), False)
            s.acl(h0, 4, b"\x11\x06" + struct.pack("<HHH", start, end, 0x1800 + k % 100), True)
        for i in range(m):
            h = 2 + 3 * i
            s.acl(h0, 4, b"\x08" + struct.pack("<HHH", h, 0xFFFF, 0x2803), False)
            decl = struct.pack("<HBHH", h, 0x12, h + 1, 0x2A00 + i % 100)
            s.acl(h0, 4, b"\x09\x07" + decl, True)
            s.acl(h0, 4, b"\x04" + struct.pack("<HH", h + 2, h + 2), False)
            s.acl(h0, 4, b"\x05\x01" + struct.pack("<HH", h + 2, 0x2902), True)
    return s.bytes()


def smp(n: int) -> bytes:
    """SMP pairings on LE links that fail (Pairing Failed) or stall."""
    s = Snoop()
    for i in range(n):
        s.le_conn_complete(H, addr(i % 20))
        s.acl(H, 6, b"\x01\x03\x00\x0d\x10\x07\x07", False)
        s.acl(H, 6, b"\x02\x03\x00\x0d\x10\x07\x07", True)
        if i % 2:
            s.acl(H, 6, b"\x05\x05", True)  # Pairing Failed: Pairing Not Supported... (0x05)
        s.disconn_complete(H, 0x13, dt_ms=100)
    return s.bytes()


def commands(n: int) -> bytes:
    """HCI commands: completed, failed, unanswered; pages that time out; names asked."""
    s = Snoop()
    for i in range(n):
        s.cmd(0x0C14)  # Read Local Name
        s.complete(0x0C14, b"\x00" + b"phone".ljust(248, b"\x00"))
        s.cmd(0x0C13, b"x".ljust(248, b"\x00"))  # Write Local Name, refused
        s.complete(0x0C13, b"\x0c")
        s.cmd(0x0405, addr(i % 300) + b"\x18\xcc\x01\x00\x00\x00\x01")  # Create Connection
        s.status(0x0405)
        s.conn_complete(H, addr(i % 300), status=0x04)  # Page Timeout
        s.cmd(0x0419, addr(i % 300) + b"\x01\x00\x00\x00")  # Remote Name Request
        s.status(0x0419)
        if i % 3:
            nm = b"\x00" + addr(i % 300) + f"dev{i % 300}".encode().ljust(248, b"\x00")
            s.event(0x07, nm)
        if i % 10 == 0:
            s.cmd(0x0C1A, b"\x03")  # Write Scan Enable, never answered
            s.t += 5_000_000
    return s.bytes()


def links(n: int) -> bytes:
    """Links that drop (supervision timeout) at a regular period, after authentication and
    encryption, some failing (link_loss, periodic_disconnect, auth_key_missing...)."""
    s = Snoop()
    for i in range(n):
        peer = addr(i % 10)
        s.conn_complete(H, peer)
        s.cmd(0x0411, struct.pack("<H", H))  # Authentication Requested
        s.status(0x0411)
        s.event(0x17, peer)  # Link Key Request
        s.cmd(0x040B, peer + bytes(16))  # Link Key Request Reply
        s.complete(0x040B, b"\x00" + peer)
        s.event(0x06, bytes([0x06 if i % 4 == 0 else 0]) + struct.pack("<H", H))  # Key Missing
        s.event(0x08, bytes([0 if i % 3 else 0x3D]) + struct.pack("<HB", H, 1))  # Encryption
        s.acl(H, 0x0040, b"\x00" * 8, True)
        s.disconn_complete(H, 0x08 if i % 2 else 0x22, dt_ms=30_000)
    return s.bytes()


def sco(n: int) -> bytes:
    """SCO links set up and dropped on one ACL, with a little audio each."""
    s = Snoop()
    _one_link(s)
    for _i in range(n):
        s.cmd(0x0428, struct.pack("<HIIHHBH", H, 8000, 8000, 0xFFFF, 0x60, 0xFF, 0x3F))
        s.status(0x0428)
        p = b"\x00" + struct.pack("<H", 0x0C) + addr(1) + bytes([2, 12, 2])
        s.event(0x2C, p + struct.pack("<HH", 60, 60) + b"\x02")
        for _ in range(3):
            s.add(b"\x03" + struct.pack("<HB", 0x0C, 60) + bytes(60), True, 7.5)
        s.disconn_complete(0x0C, 0x13)
    return s.bytes()


def fragments(n: int) -> bytes:
    """L2CAP PDUs reassembled from many continuation fragments (4 KB PDUs of 16-byte pieces)."""
    s = Snoop()
    _one_link(s)
    s.channel(H, 0x0001, LOCAL, REMOTE, 1)
    per = 256
    for i in range(n // per + 1):
        total = 16 * per
        first = struct.pack("<HH", total, LOCAL) + b"\x07" + bytes(11)
        s.add(b"\x02" + struct.pack("<HH", H | 0x2000, len(first)) + first, True)
        for _ in range(min(per - 1, n - i * per)):
            s.add(b"\x02" + struct.pack("<HH", H | 0x1000, 16) + bytes(16), True, 0.1)
    return s.bytes()


PATTERNS: dict[str, tuple[Callable[[int], bytes], int, Callable[[Analysis], int]]] = {
    # name: (builder, n for the small capture, what the analysis must have seen of n)
    "resets": (resets, 600, lambda a: len(a.controller.resets)),
    "connections": (connections, 800, lambda a: len(a.connections)),
    "handles": (handles, 500, lambda a: len(a.connections)),
    "channels": (channels, 1500, lambda a: len(a.l2cap_channels)),
    "sdp": (sdp, 300, lambda a: len(a.sdp)),
    "at_lines": (at_lines, 500, lambda a: sum(len(h.at) for h in a.hfp) // 2),
    "at_no_cr": (at_no_cr, 2000, lambda a: sum(d.frames.get("received", 0) for d in a.rfcomm)),
    "sdp_long": (sdp_long, 1000, lambda a: sum(t.continuations for t in a.sdp)),
    "stale_channels": (stale_channels, 2000, lambda a: len(a.l2cap_channels)),
    "disconnections": (disconnections, 4000, lambda a: len(a.connections)),
    "hfp_sco": (hfp_sco, 300, lambda a: sum(1 for c in a.connections if c.sco and c.sco.hfp_dlci)),
    "avdtp": (avdtp, 600, lambda a: len(a.avdtp.signals) // 5),
    "att": (att, 2000, lambda a: len(a.att.transactions)),
    "gatt": (
        gatt,
        2000,
        lambda a: sum(
            len(c.descriptors)
            for g in a.att.services.values()
            for sv in g.services
            for c in sv.characteristics
        ),
    ),
    "smp": (smp, 1600, lambda a: len(a.connections)),
    "commands": (commands, 600, lambda a: len(a.hci_commands) // 4),
    "links": (links, 600, lambda a: len(a.connections)),
    "sco": (sco, 1000, lambda a: len(a.connections) - 1),
    "fragments": (fragments, 3000, lambda a: sum(c.frames for c in a.l2cap_channels)),
}


def cost(data: bytes, runs: int = 2) -> tuple[float, Analysis]:
    """Best-of-``runs`` process CPU time of reading and analysing ``data``."""
    best, a = float("inf"), None
    for _ in range(runs):
        t0 = time.process_time()
        cap: Capture = read_source(Source(buffer=data, path="scaling", size=len(data)))
        a = analyze_capture(cap)
        best = min(best, time.process_time() - t0)
    assert a is not None
    return best, a


_BASE: list[float] = []


def base_cost() -> float:
    """The fixed cost of an analysis (a capture of one link)."""
    if not _BASE:
        s = Snoop()
        _one_link(s)
        _BASE.append(cost(s.bytes(), 3)[0])
    return _BASE[0]


def per_repetition_ratio(name: str) -> tuple[float, float, float]:
    build, n, seen = PATTERNS[name]
    base = base_cost()
    small, a = cost(build(n))
    assert seen(a) >= n * 0.9, f"{name}: the analysis saw {seen(a)} of {n}"
    big_data = build(SCALE * n)
    big, _ = cost(big_data, 1)
    ratio = max(big - base, 1e-3) / SCALE / max(small - base, 1e-3)
    if ratio > MAX_RATIO:  # one more run before failing (a loaded machine)
        big = min(big, cost(big_data, 1)[0])
        ratio = max(big - base, 1e-3) / SCALE / max(small - base, 1e-3)
    return small, big, ratio


@pytest.mark.parametrize("name", list(PATTERNS))
def test_cost_grows_linearly(name: str) -> None:
    small, big, ratio = per_repetition_ratio(name)
    n = PATTERNS[name][1]
    assert ratio <= MAX_RATIO, (
        f"{name}: {n} repetitions cost {small:.2f} s, {SCALE * n} cost {big:.2f} s: "
        f"{ratio:.1f}x per repetition"
    )


if __name__ == "__main__":
    names = [sys.argv[1]] if len(sys.argv) > 1 and sys.argv[1] != "all" else list(PATTERNS)
    mult = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    for nm in names:
        b, n0, seen_fn = PATTERNS[nm]
        n = int(n0 * mult)
        if len(sys.argv) > 3:  # profile the larger capture
            import cProfile
            import pstats

            cap = read_source(Source(buffer=b(SCALE * n), path="p", size=0))
            cProfile.run("analyze_capture(cap)", "/tmp/scaling.prof")
            pstats.Stats("/tmp/scaling.prof").sort_stats("tottime").print_stats(12)
            continue
        for k in (n, SCALE * n):
            c, an = cost(b(k), 1)
            print(
                f"{nm:12} n={k:7} {c:7.2f} s  seen={seen_fn(an)} findings="
                f"{sorted({f.id for f in an.findings})}",
                flush=True,
            )
