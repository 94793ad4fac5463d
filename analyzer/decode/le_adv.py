"""LE advertising data: AD structures (Core v5.4 Vol 3 Part C §11; CSS Part A §1).

Advertising data, scan response data and EIR are a sequence of ``length, AD type, data`` with
the length covering the type byte; a zero length ends the significant part (§11). The AD types
decoded here are Flags (0x01), incomplete/complete lists of 16/32/128-bit service UUIDs
(0x02-0x07), shortened/complete local name (0x08/0x09), TX Power Level (0x0A), service
solicitation (0x14, 0x15, 0x1F), Service Data 16/32/128 (0x16, 0x20, 0x21), Appearance (0x19)
and Manufacturer Specific Data (0xFF, company identifier first, Assigned Numbers §7).
"""

from __future__ import annotations

import uuid as _uuid
from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.base import Buffer, as_bytes, never_raise
from analyzer.decode.hci_names import COMPANY_NAMES, UUID16_NAMES

AD_TYPE_NAMES: dict[int, str] = {
    0x01: "Flags",
    0x02: "Incomplete List of 16-bit Service UUIDs",
    0x03: "Complete List of 16-bit Service UUIDs",
    0x04: "Incomplete List of 32-bit Service UUIDs",
    0x05: "Complete List of 32-bit Service UUIDs",
    0x06: "Incomplete List of 128-bit Service UUIDs",
    0x07: "Complete List of 128-bit Service UUIDs",
    0x08: "Shortened Local Name",
    0x09: "Complete Local Name",
    0x0A: "TX Power Level",
    0x0D: "Class of Device",
    0x10: "Device ID",
    0x12: "Peripheral Connection Interval Range",
    0x14: "List of 16-bit Service Solicitation UUIDs",
    0x15: "List of 128-bit Service Solicitation UUIDs",
    0x16: "Service Data - 16-bit UUID",
    0x17: "Public Target Address",
    0x18: "Random Target Address",
    0x19: "Appearance",
    0x1A: "Advertising Interval",
    0x1B: "LE Bluetooth Device Address",
    0x1C: "LE Role",
    0x1F: "List of 32-bit Service Solicitation UUIDs",
    0x20: "Service Data - 32-bit UUID",
    0x21: "Service Data - 128-bit UUID",
    0x24: "URI",
    0x27: "LE Supported Features",
    0x29: "PB-ADV",
    0x2A: "Mesh Message",
    0x2B: "Mesh Beacon",
    0x2C: "BIGInfo",
    0x2D: "Broadcast_Code",
    0x2E: "Resolvable Set Identifier",
    0x2F: "Advertising Interval - long",
    0x30: "Broadcast Name",
    0x3D: "3D Information Data",
    0xFF: "Manufacturer Specific Data",
}

FLAG_NAMES = (
    "LE Limited Discoverable",
    "LE General Discoverable",
    "BR/EDR Not Supported",
    "LE and BR/EDR Controller",
    "LE and BR/EDR Host",
)

_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"


def company_names() -> dict[int, str]:
    """Company identifiers (Assigned Numbers §7), from bumble's table."""
    return COMPANY_NAMES


def company_name(cid: int | None) -> str | None:
    if cid is None:
        return None
    return COMPANY_NAMES.get(cid)


def uuid16_names() -> dict[int, str]:
    """16-bit UUID names (services, characteristics, descriptors), from bumble's registry."""
    return UUID16_NAMES


def uuid16_str(v: int) -> str:
    return f"0x{v:04X}"


def uuid_str(b: bytes) -> str:
    """A little-endian UUID field (2, 4 or 16 bytes) as text: ``0x180F`` or the 128-bit form."""
    if len(b) == 2:
        return f"0x{int.from_bytes(b, 'little'):04X}"
    if len(b) == 4:
        return f"0x{int.from_bytes(b, 'little'):08X}"
    if len(b) == 16:
        s = str(_uuid.UUID(bytes=bytes(reversed(b))))
        if s.endswith(_BASE_UUID_TAIL) and s.startswith("0000"):
            return f"0x{int(s[4:8], 16):04X}"
        return s
    return b.hex()


def uuid_label(b: bytes) -> str:
    """UUID text with its name when known: ``0x180F Battery``."""
    s = uuid_str(b)
    if s.startswith("0x") and len(s) == 6:
        name = uuid16_names().get(int(s, 16))
        if name:
            return f"{s} {name}"
    return s


@dataclass(slots=True)
class AdStructure:
    ad_type: int
    name: str
    data: bytes


@dataclass(slots=True)
class AdvData:
    """What the AD structures of one advertising payload say."""

    structures: list[AdStructure] = field(default_factory=list)
    flags: int | None = None
    flag_names: list[str] = field(default_factory=list)
    name: str | None = None
    name_complete: bool = False
    service_uuids: list[str] = field(default_factory=list)
    solicited_uuids: list[str] = field(default_factory=list)
    tx_power: int | None = None
    appearance: int | None = None
    manufacturer_id: int | None = None
    manufacturer_name: str | None = None
    manufacturer_data: bytes = b""
    service_data: dict[str, bytes] = field(default_factory=dict)
    anomaly: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "flags": self.flags,
            "name": self.name,
            "service_uuids": self.service_uuids,
            "tx_power": self.tx_power,
            "appearance": self.appearance,
            "manufacturer_id": self.manufacturer_id,
            "manufacturer_name": self.manufacturer_name,
            "service_data": {k: v.hex() for k, v in self.service_data.items()},
        }


def _raw(data: Buffer, anomaly: str | None = None) -> AdvData:
    return AdvData(anomaly=anomaly)


def _uuids(d: bytes, width: int) -> list[str]:
    return [uuid_label(d[i : i + width]) for i in range(0, len(d) - width + 1, width)]


@never_raise(_raw)
def decode_ad(data: Buffer) -> AdvData:
    """Decode the AD structures of advertising / scan response / EIR data (Vol 3 Part C §11)."""
    b = as_bytes(data)
    r = AdvData()
    i = 0
    while i < len(b):
        ln = b[i]
        if ln == 0:  # the rest is non-significant padding
            break
        if i + 1 + ln > len(b):
            r.anomaly = f"AD structure at byte {i} runs past the data ({ln} > {len(b) - i - 1})"
            break
        t = b[i + 1]
        d = b[i + 2 : i + 1 + ln]
        r.structures.append(AdStructure(t, AD_TYPE_NAMES.get(t, f"unknown 0x{t:02X}"), d))
        _field(r, t, d)
        i += 1 + ln
    return r


def _field(r: AdvData, t: int, d: bytes) -> None:
    if t == 0x01 and d:
        r.flags = d[0]
        r.flag_names = [n for bit, n in enumerate(FLAG_NAMES) if d[0] & (1 << bit)]
    elif t in (0x02, 0x03):
        r.service_uuids += _uuids(d, 2)
    elif t in (0x04, 0x05):
        r.service_uuids += _uuids(d, 4)
    elif t in (0x06, 0x07):
        r.service_uuids += _uuids(d, 16)
    elif t in (0x08, 0x09):
        if r.name is None or t == 0x09:
            r.name = d.decode("utf-8", "replace").rstrip("\x00")
            r.name_complete = t == 0x09
    elif t == 0x0A and d:
        r.tx_power = d[0] - 256 if d[0] > 127 else d[0]
    elif t == 0x14:
        r.solicited_uuids += _uuids(d, 2)
    elif t == 0x1F:
        r.solicited_uuids += _uuids(d, 4)
    elif t == 0x15:
        r.solicited_uuids += _uuids(d, 16)
    elif t == 0x19 and len(d) >= 2:
        r.appearance = d[0] | (d[1] << 8)
    elif t in (0x16, 0x20, 0x21):
        w = {0x16: 2, 0x20: 4, 0x21: 16}[t]
        if len(d) >= w:
            r.service_data[uuid_label(d[:w])] = d[w:]
    elif t == 0xFF and len(d) >= 2 and r.manufacturer_id is None:
        r.manufacturer_id = d[0] | (d[1] << 8)
        r.manufacturer_name = company_name(r.manufacturer_id)
        r.manufacturer_data = d[2:]


__all__ = [
    "AD_TYPE_NAMES",
    "AdStructure",
    "AdvData",
    "company_name",
    "decode_ad",
    "uuid16_names",
    "uuid_label",
    "uuid_str",
]
