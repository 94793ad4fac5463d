"""The scrub mapping: original address / name / number -> fake, keyed by a per-run secret.

Every fake is ``HMAC-SHA256(secret, kind || original)`` cut to size, so the same original gets
the same fake everywhere in one run and a run's fakes cannot be turned back into originals
without the secret (random per run unless ``--seed`` is given).

Addresses keep their type semantics (Core v5.4 Vol 6 Part B §1.3): the two top bits of a random
address (11 static, 01 resolvable private, 00 non-resolvable private) are kept; a public address
gets a locally administered, unicast OUI (bit 1 set, bit 0 clear in the first octet) unless the
OUI is kept on purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field

#: addresses that identify nobody: never remapped
SPECIAL_ADDRESSES = frozenset({b"\x00" * 6, b"\xff" * 6})
_NAME_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def identifying(wire: bytes) -> bool:
    """Could these 6 bytes identify a device? Not when they are mostly 0x00/0xFF filler (four
    or more such octets) or start with OUI 00:00:00: unset parameter fields, not addresses.
    (Android's redacted snoop logs zero the three low octets and keep the OUI: those stay.)"""
    return len(wire) == 6 and sum(b in (0x00, 0xFF) for b in wire) < 4 and any(wire[3:])


def new_secret(seed: str | None) -> bytes:
    """The run's secret: from ``seed`` when given (reproducible runs), else 32 random bytes."""
    if seed is None:
        return os.urandom(32)
    return hashlib.sha256(b"btanalyze-scrub:" + seed.encode()).digest()


@dataclass
class Mapper:
    """Original -> fake for one run. Addresses are 6 bytes in wire (little-endian) order."""

    secret: bytes
    keep_oui: bool = False
    random_addresses: set[bytes] = field(default_factory=set)
    addresses: dict[bytes, bytes] = field(default_factory=dict)
    names: dict[bytes, bytes] = field(default_factory=dict)
    numbers: dict[bytes, bytes] = field(default_factory=dict)

    def _mac(self, kind: bytes, value: bytes, counter: int = 0) -> bytes:
        msg = kind + b"\x00" + value + counter.to_bytes(4, "little")
        return hmac.new(self.secret, msg, hashlib.sha256).digest()

    def address(self, wire: bytes) -> bytes:
        """The fake for a 6-byte wire-order address (itself when special)."""
        if not identifying(wire):
            return wire
        fake = self.addresses.get(wire)
        if fake is not None:
            return fake
        taken = set(self.addresses.values())
        orig = wire[::-1]  # display order, most significant octet first
        counter = 0
        while True:
            d = bytearray(self._mac(b"addr", wire, counter)[:6])
            if wire in self.random_addresses:
                d[0] = (d[0] & 0x3F) | (orig[0] & 0xC0)
            elif self.keep_oui:
                d[0:3] = orig[0:3]
            else:
                d[0] = (d[0] & 0xFC) | 0x02  # locally administered, unicast
            cand = bytes(d[::-1])
            if (
                cand != wire
                and cand not in taken
                and identifying(cand)
                and cand not in self.addresses
            ):
                break
            counter += 1
        self.addresses[wire] = cand
        return cand

    def display_fake(self, text: str) -> str | None:
        """The fake of an ``AA:BB:CC:DD:EE:FF`` address mapped in this run (None if unknown)."""
        try:
            wire = bytes.fromhex(text.replace(":", "").replace("-", ""))[::-1]
        except ValueError:
            return None
        fake = self.addresses.get(wire)
        return None if fake is None else ":".join(f"{b:02X}" for b in fake[::-1])

    def name(self, original: bytes) -> bytes:
        """A same-length ASCII placeholder; a name that is a prefix of a longer known name (a
        Shortened Local Name) gets the prefix of that name's placeholder."""
        fake = self.names.get(original)
        if fake is not None:
            return fake
        for longer, lfake in self.names.items():
            if len(longer) > len(original) and longer.startswith(original):
                self.names[original] = lfake[: len(original)]
                return self.names[original]
        mac = self._mac(b"name", original)
        tail = "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in mac)
        text = ("dev-" + tail * 8)[: len(original)]
        self.names[original] = text.encode()
        return self.names[original]

    def number(self, original: bytes) -> bytes:
        """A same-length placeholder for a phone number: each digit replaced by a keyed digit,
        every other character (+, *, #, p, w) kept."""
        fake = self.numbers.get(original)
        if fake is not None:
            return fake
        mac = self._mac(b"num", original)
        out = bytearray(original)
        for i, c in enumerate(original):
            if 0x30 <= c <= 0x39:
                out[i] = 0x30 + mac[i % len(mac)] % 10
        if bytes(out) == original:  # vanishingly rare: force a change
            out = bytearray(
                (0x36 if c == 0x35 else 0x35) if 0x30 <= c <= 0x39 else c for c in original
            )
        self.numbers[original] = bytes(out)
        return self.numbers[original]
