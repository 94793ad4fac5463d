"""Scrub a capture for a public bug report (issue 23): same format, same diagnosis, no secrets.

:func:`scrub` takes a :class:`~analyzer.capture.Capture`, finds what it gives away
(:mod:`analyzer.scrub.collect`), and returns new file bytes:

1. in place, at the positions the collector found: keys, PINs, passkeys, DHKeys, OOB values and
   SMP Confirm/Random values zeroed; names and phone numbers replaced by same-length
   placeholders; OBEX header values zeroed;
2. everywhere in the buffer: every collected address, in wire (little-endian) and display
   (big-endian) byte order and as ``AA:BB:..`` / ``aa-bb-..`` text, replaced by its fake
   (:mod:`analyzer.scrub.mapping`); every collected key (both orders) zeroed; every name and
   number of 4 bytes or more replaced (so a name quoted in SDP, OBEX or a vendor event goes too);
3. checksums that covered changed bytes recomputed so that they stay as right (or as wrong) as
   they were: the LE link-layer CRC (Vol 6 Part B §3.1.1; the CRC is linear, so the new CRC is the
   old one XOR the CRC, from a zero state, of the byte difference) and the L2CAP ERTM FCS
   (Vol 3 Part A §3.3.5, CRC-16 0x8005 reflected, recomputed only when it was right);
4. pcapng: comments and custom options dropped from every block, Name Resolution, Decryption
   Secrets and custom blocks dropped.

Frames keep their length, so every container header stays valid; a capture whose buffer is not
the file itself (gzip, btsnooz, a log inside a bugreport) is written out as btsnoop (or pcapng
when it holds LE link-layer frames) by :mod:`analyzer.writers`.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass, field

import numpy as np

from analyzer.capture import Capture
from analyzer.scrub.collect import Found, collect, ll_crc_state
from analyzer.scrub.mapping import Mapper, new_secret
from analyzer.writers import choose_format, write

#: names / numbers shorter than this are replaced only where a decoder found them
GLOBAL_MIN = 4
#: containers whose buffer is the file itself (patched in place and written whole)
IN_PLACE_FORMATS = frozenset({"btsnoop", "pcap", "pcapng", "packetlogger"})
_TEXT_ADDR = re.compile(
    rb"(?<![0-9A-Fa-f:\-])[0-9A-Fa-f]{2}([:\-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![0-9A-Fa-f])"
)


@dataclass
class ScrubResult:
    """The scrubbed file and what was done."""

    data: bytes
    format: str
    rewritten: bool  # written by analyzer.writers (the input's container could not be kept)
    mapper: Mapper
    found: Found
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# -- checksums ------------------------------------------------------------------------------------
def l2cap_fcs(data: bytes) -> int:
    """L2CAP FCS (Vol 3 Part A §3.3.5): CRC-16 generator 0x8005, reflected, initial 0."""
    crc = 0
    for c in data:
        crc ^= c
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


# -- replacement ------------------------------------------------------------
def _windows6(data: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Every 6-byte window beginning in ``start:stop`` as a little-endian uint64."""
    end = min(stop + 5, data.size)
    seg = data[start:end].astype(np.uint64)
    n = seg.size - 5
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    w = seg[:n].copy()
    for k in range(1, 6):
        w |= seg[k : k + n] << np.uint64(8 * k)
    return w


def replace_addresses(out: bytearray, table: dict[bytes, bytes]) -> int:
    """Replace each 6-byte key of ``table`` (and its byte reversal) by its value (reversed
    alike) wherever it occurs in ``out``; returns the number of replacements."""
    if not table:
        return 0
    pat: dict[int, bytes] = {}
    for orig, fake in table.items():
        pat[int.from_bytes(orig, "little")] = fake
        pat[int.from_bytes(orig[::-1], "little")] = fake[::-1]
    keys = np.array(sorted(pat), dtype=np.uint64)
    data = np.frombuffer(out, dtype=np.uint8)
    hits: list[int] = []
    chunk = 1 << 22
    for start in range(0, data.size, chunk):
        w = _windows6(data, start, min(start + chunk, data.size))
        pos = np.flatnonzero(np.isin(w, keys))
        hits.extend((pos + start).tolist())
    del data
    done = 0
    last = -6
    for p in hits:
        if p < last + 6:
            continue
        val = int.from_bytes(out[p : p + 6], "little")
        if val in pat:
            out[p : p + 6] = pat[val]
            last = p
            done += 1
    return done


def replace_text_addresses(out: bytearray, table: dict[bytes, bytes]) -> int:
    """``AA:BB:CC:DD:EE:FF`` / ``aa-bb-..`` text of a mapped address -> the fake, same case."""
    done = 0
    for m in list(_TEXT_ADDR.finditer(out)):
        text = m.group(0)
        sep = text[2:3]
        display = bytes.fromhex(text.replace(sep, b"").decode())
        fake = table.get(display[::-1])
        if fake is None:
            continue
        new = sep.join(b"%02X" % b for b in fake[::-1])
        if text.upper() != text:
            new = new.lower()
        out[m.start() : m.end()] = new
        done += 1
    return done


def replace_all(out: bytearray, old: bytes, new: bytes) -> int:
    """Same-length replace of every occurrence of ``old`` in ``out``."""
    done = 0
    i = out.find(old)
    while i >= 0:
        out[i : i + len(old)] = new
        done += 1
        i = out.find(old, i + len(old))
    return done


# -- pcapng --------------------------------------------------------------------------------------
_DROP_BLOCKS = frozenset({0x00000004, 0x0000000A, 0x00000BAD, 0x40000BAD})  # NRB, DSB, custom
_DROP_OPTIONS = frozenset({1, 2988, 2989, 19372, 19373})  # comment, custom options
#: bytes before the options of each block type (pcapng §4); EPB/PB add the padded packet data
_FIXED = {0x0A0D0D0A: 16, 0x00000001: 8, 0x00000005: 12}


def strip_pcapng(buf: bytes) -> tuple[bytes, int]:
    """Drop comments / custom options and NRB, DSB and custom blocks from a pcapng file; returns
    the new bytes and how many comments/blocks went. Unparseable tails are kept as they are."""
    out = bytearray()
    i = 0
    dropped = 0
    e = "<"
    while i + 12 <= len(buf):
        btype = struct.unpack_from(e + "I", buf, i)[0]
        if btype == 0x0A0D0D0A:
            e = "<" if buf[i + 8 : i + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        blen = struct.unpack_from(e + "I", buf, i + 4)[0]
        if blen < 12 or blen % 4 or i + blen > len(buf):
            break
        block = buf[i : i + blen]
        i += blen
        if btype in _DROP_BLOCKS:
            dropped += 1
            continue
        fixed = _FIXED.get(btype)
        if (btype == 6 and blen >= 32) or (btype == 2 and blen >= 32):  # EPB
            cap = struct.unpack_from(e + "I", block, 20)[0]
            fixed = 20 + cap + (-cap) % 4
        if fixed is None or 8 + fixed > blen - 4:
            out += block
            continue
        body = block[8 : blen - 4]
        head, opts = body[:fixed], body[fixed:]
        kept = bytearray()
        j = 0
        changed = False
        while j + 4 <= len(opts):
            code, ln = struct.unpack_from(e + "HH", opts, j)
            size = 4 + ln + (-ln) % 4
            if code == 0:
                break
            if code in _DROP_OPTIONS:
                changed = True
                dropped += 1
            else:
                kept += opts[j : j + size]
            j += size
        if not changed:
            out += block
            continue
        if kept:
            kept += struct.pack(e + "HH", 0, 0)
        new_body = bytearray(head) + kept
        if btype == 0x0A0D0D0A:  # section length is no longer known
            new_body[8:16] = struct.pack(e + "q", -1)
        total = 12 + len(new_body)
        out += struct.pack(e + "II", btype, total) + new_body + struct.pack(e + "I", total)
    out += buf[i:]
    return bytes(out), dropped


# -- the scrub ------------------------------------------------------------
def scrub(cap: Capture, *, seed: str | None = None, keep_oui: bool = False) -> ScrubResult:
    """Scrub ``cap`` (see the module docstring). ``seed`` makes the mapping reproducible."""
    found = collect(cap)
    mapper = Mapper(new_secret(seed), keep_oui=keep_oui, random_addresses=set(found.random))
    for wire in sorted(found.addresses):
        mapper.address(wire)
    table = {w: f for w, f in mapper.addresses.items() if w != f}
    orig = cap.buffer
    out = bytearray(orig)
    counts: dict[str, int] = {}

    def bump(k: str, n: int = 1) -> None:
        if n:
            counts[k] = counts.get(k, 0) + n

    ll_before = [(a, n, bytes(out[a : a + n + 3])) for a, n in found.ll_frames]
    # 1. in place
    for at, n in found.zero:
        out[at : at + n] = bytes(n)
    for kind, n in found.zero_kinds.items():
        bump(f"zeroed_{kind}", n)
    for at, n in found.obex:
        out[at : at + n] = bytes(n)
    bump("obex_ranges_blanked", len(found.obex))
    for name in sorted(found.names, key=len, reverse=True):
        fake = mapper.name(name)
        for at, n in found.names[name]:
            if bytes(out[at : at + n]) == name:
                out[at : at + n] = fake
    for num in sorted(found.numbers, key=len, reverse=True):
        fake = mapper.number(num)
        for at, n in found.numbers[num]:
            if bytes(out[at : at + n]) == num:
                out[at : at + n] = fake
    for at, wire, random in found.local:
        if random and wire not in found.addresses:
            mapper.random_addresses.add(wire)
        if bytes(out[at : at + 6]) == wire:
            out[at : at + 6] = mapper.address(wire)
    bump("noise_addresses_replaced", len(found.local))
    # 2. everywhere
    bump("address_bytes_replaced", replace_addresses(out, table))
    bump("address_texts_replaced", replace_text_addresses(out, table))
    for kind, values in found.keys.items():
        for v in values:
            bump(f"key_copies_zeroed_{kind}", replace_all(out, v, bytes(len(v))))
            bump(f"key_copies_zeroed_{kind}", replace_all(out, v[::-1], bytes(len(v))))
    for name, fake in mapper.names.items():
        if len(name) >= GLOBAL_MIN:
            replace_all(out, name, fake)
    for num, fake in mapper.numbers.items():
        if len(num) >= GLOBAL_MIN:
            replace_all(out, num, fake)
    bump("names", len(mapper.names))
    bump("numbers", len(mapper.numbers))
    bump("addresses", len(table))
    # 3. checksums
    fixed = 0
    for a, n, before in ll_before:
        after = bytes(out[a : a + n + 3])
        if after == before:
            continue
        diff = bytes(x ^ y for x, y in zip(before[:n], after[:n], strict=True))
        delta = ll_crc_state(diff, 0)
        crc = int.from_bytes(before[n:], "little") ^ delta  # from the CRC as it was
        out[a + n : a + n + 3] = crc.to_bytes(3, "little")
        fixed += 1
    bump("ll_crcs_recomputed", fixed)
    fcs_fixed = 0
    for pieces in found.fcs:
        old = b"".join(bytes(orig[a : a + n]) for a, n in pieces)
        new = b"".join(bytes(out[a : a + n]) for a, n in pieces)
        if old == new or len(old) < 3 or l2cap_fcs(old[:-2]) != int.from_bytes(old[-2:], "little"):
            continue
        fcs = l2cap_fcs(new[:-2]).to_bytes(2, "little")
        k = 0
        for a, n in reversed(pieces):  # the last two bytes, wherever they sit
            for j in range(n - 1, -1, -1):
                if k == 2:
                    break
                out[a + j] = fcs[1 - k]
                k += 1
        fcs_fixed += 1
    bump("l2cap_fcs_recomputed", fcs_fixed)
    # 4. the container
    warnings: list[str] = []
    fmt = cap.meta.format
    in_place = fmt in IN_PLACE_FORMATS and not cap.meta.compressed and len(out) == cap.meta.size
    if in_place:
        data = bytes(out)
        if fmt == "pcapng":
            data, dropped = strip_pcapng(data)
            bump("pcapng_comments_dropped", dropped)
        return ScrubResult(data, fmt, False, mapper, found, counts, warnings)
    new_cap = Capture(meta=cap.meta, frames=cap.frames, buffer=bytes(out), comments={})
    outfmt = choose_format(new_cap)

    sink = io.BytesIO()
    warnings += write(new_cap, sink, outfmt)
    return ScrubResult(sink.getvalue(), outfmt, True, mapper, found, counts, warnings)


def scrubbed_capture(cap: Capture, *, seed: str | None = None) -> tuple[Capture, Mapper]:
    """``cap`` scrubbed and read back (``analyze --anonymize``): its analysis names only fake
    addresses and placeholder names. The original path is kept for the report."""
    from analyzer.readers import Source, filtered, read_source

    result = scrub(cap, seed=seed)
    src = Source(buffer=result.data, path=cap.meta.path, size=len(result.data))
    out = read_source(src)
    filtered.apply(out)
    return out, result.mapper
