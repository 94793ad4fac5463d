"""Shared pieces of the stateless decoders: bounds-checked readers, address formatting, safety.

Every decoder in :mod:`analyzer.decode` follows one contract: bytes in, a typed record out, never an
exception. Short or unknown input yields a record whose ``anomaly`` says what was wrong (like
Wireshark's expert info). :func:`never_raise` is the last line of defence around each public
decoder: a bug in a field decoder becomes an anomaly, not a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

# Bytes-like inputs accepted by every decoder.
Buffer = bytes | bytearray | memoryview


def as_bytes(data: Buffer) -> bytes:
    """Return ``data`` as immutable ``bytes`` (no copy when it already is)."""
    return data if isinstance(data, bytes) else bytes(data)


def u8(b: bytes, i: int) -> int | None:
    """Byte ``i`` of ``b`` or None when out of range."""
    return b[i] if 0 <= i < len(b) else None


def u16(b: bytes, i: int) -> int | None:
    """Little-endian u16 at ``i`` or None when short."""
    return b[i] | (b[i + 1] << 8) if i >= 0 and i + 2 <= len(b) else None


def u16be(b: bytes, i: int) -> int | None:
    """Big-endian u16 at ``i`` or None when short."""
    return (b[i] << 8) | b[i + 1] if i >= 0 and i + 2 <= len(b) else None


def u24(b: bytes, i: int) -> int | None:
    """Little-endian u24 at ``i`` or None when short."""
    return int.from_bytes(b[i : i + 3], "little") if i >= 0 and i + 3 <= len(b) else None


def u32(b: bytes, i: int) -> int | None:
    """Little-endian u32 at ``i`` or None when short."""
    return int.from_bytes(b[i : i + 4], "little") if i >= 0 and i + 4 <= len(b) else None


def s8(b: bytes, i: int) -> int | None:
    """Signed byte at ``i`` (RSSI, TX power) or None when short."""
    v = u8(b, i)
    return None if v is None else (v - 256 if v > 127 else v)


def bd_addr(b: bytes, i: int = 0) -> str | None:
    """BD_ADDR at ``i`` (little-endian on the wire) as ``"AA:BB:CC:DD:EE:FF"``; None when short."""
    if i < 0 or i + 6 > len(b):
        return None
    return ":".join(f"{x:02X}" for x in reversed(b[i : i + 6]))


def hexstr(b: bytes) -> str:
    return b.hex()


def never_raise(make_raw: Callable[..., R]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: on any exception call ``make_raw(*args, anomaly=...)`` and return its record."""

    def deco(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # a decoder bug must not stop the analysis
                return make_raw(*args, anomaly=f"decoder error: {type(exc).__name__}: {exc}")

        return wrapper

    return deco


def name_of(table: dict[int, Any], value: int | None, fmt: str = "0x{:02X}") -> str | None:
    """Table lookup that names unknown values ``"unknown 0x.."`` instead of failing."""
    if value is None:
        return None
    name = table.get(value)
    if name is None:
        return "unknown " + fmt.format(value)
    return name if isinstance(name, str) else str(name[0])
