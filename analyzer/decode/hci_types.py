"""HCI value tables and the decoded records (Core v5.4 Vol 4 Part E §5.4, §7): what the command,
event and ACL decoders of :mod:`analyzer.decode.hci` return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ------------------------------------------------------------------------------------------------
# value tables

LINK_TYPES: dict[int, str] = {0x00: "SCO", 0x01: "ACL", 0x02: "eSCO"}
AIR_MODES: dict[int, str] = {
    0x00: "u-law log",
    0x01: "A-law log",
    0x02: "CVSD",
    0x03: "Transparent Data",
}
#: Link Key Notification key types (Core Vol 4 Part E §7.7.24).
KEY_TYPES: dict[int, str] = {
    0x00: "Combination Key",
    0x01: "Local Unit Key",
    0x02: "Remote Unit Key",
    0x03: "Debug Combination Key",
    0x04: "Unauthenticated Combination Key generated from P-192",
    0x05: "Authenticated Combination Key generated from P-192",
    0x06: "Changed Combination Key",
    0x07: "Unauthenticated Combination Key generated from P-256",
    0x08: "Authenticated Combination Key generated from P-256",
}
IO_CAPABILITIES: dict[int, str] = {
    0x00: "DisplayOnly",
    0x01: "DisplayYesNo",
    0x02: "KeyboardOnly",
    0x03: "NoInputNoOutput",
}
ROLES: dict[int, str] = {0x00: "Central", 0x01: "Peripheral"}
LE_ADDRESS_TYPES: dict[int, str] = {
    0x00: "Public",
    0x01: "Random",
    0x02: "Public Identity",
    0x03: "Random Identity",
    0xFF: "Anonymous",
}
#: Legacy advertising report event types (Core Vol 4 Part E §7.7.65.2).
ADV_REPORT_TYPES: dict[int, str] = {
    0x00: "ADV_IND",
    0x01: "ADV_DIRECT_IND",
    0x02: "ADV_SCAN_IND",
    0x03: "ADV_NONCONN_IND",
    0x04: "SCAN_RSP",
}
#: Extended advertising report Data_Status (bits 5-6 of Event_Type).
DATA_STATUS: dict[int, str] = {
    0: "complete",
    1: "incomplete, more data to come",
    2: "incomplete, truncated",
    3: "reserved",
}
SCAN_ENABLE: dict[int, str] = {
    0: "No Scans",
    1: "Inquiry Scan",
    2: "Page Scan",
    3: "Inquiry Scan + Page Scan",
}
#: HCI coding format ids (Assigned Numbers §2.11).
CODING_FORMATS: dict[int, str] = {
    0x00: "u-law",
    0x01: "A-law",
    0x02: "CVSD",
    0x03: "Transparent",
    0x04: "Linear PCM",
    0x05: "mSBC",
    0x06: "LC3",
    0x07: "G.729A",
    0xFF: "Vendor Specific",
}


def _name(table: dict[int, str], v: int | None) -> str | None:
    if v is None:
        return None
    return table.get(v, f"unknown 0x{v:02X}")


# ------------------------------------------------------------------------------------------------
# records


@dataclass(slots=True)
class HciCommand:
    """One HCI command packet (Core Vol 4 Part E §5.4.1)."""

    opcode: int
    name: str
    ogf: int
    ocf: int
    vendor: bool = False
    param_len: int | None = None
    handle: int | None = None
    bd_addr: str | None = None
    reason: int | None = None
    reason_name: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    params: bytes = b""
    anomaly: str | None = None


@dataclass(slots=True)
class InquiryResponse:
    """One device of an Inquiry Result / with RSSI / Extended Inquiry Result event."""

    bd_addr: str
    class_of_device: int | None = None
    clock_offset: int | None = None
    page_scan_repetition_mode: int | None = None
    rssi: int | None = None
    name: str | None = None  # from the EIR Shortened/Complete Local Name
    eir: bytes = b""


@dataclass(slots=True)
class AdvReport:
    """One report of LE Advertising Report (legacy) or LE Extended Advertising Report."""

    event_type: int
    event_type_name: str
    address_type: int
    address: str
    data: bytes
    rssi: int | None
    extended: bool = False
    data_status: int = 0  # 0 complete, 1 more to come, 2 truncated (extended reports)
    primary_phy: int | None = None
    secondary_phy: int | None = None
    sid: int | None = None
    tx_power: int | None = None
    periodic_interval: int | None = None
    direct_address_type: int | None = None
    direct_address: str | None = None


@dataclass(slots=True)
class HciEvent:
    """One HCI event packet (Core Vol 4 Part E §5.4.4); LE Meta events carry ``subevent``."""

    code: int
    name: str
    param_len: int | None = None
    subevent: int | None = None
    status: int | None = None
    status_name: str | None = None
    handle: int | None = None
    bd_addr: str | None = None
    reason: int | None = None
    reason_name: str | None = None
    vendor: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    params: bytes = b""
    anomaly: str | None = None


@dataclass(slots=True)
class AclHeader:
    """HCI ACL data packet header (Core Vol 4 Part E §5.4.2)."""

    handle: int | None
    pb: int | None  # packet boundary flag: 0b00/0b10 start an L2CAP PDU, 0b01 continues one
    bc: int | None
    length: int | None
    data: bytes = b""
    anomaly: str | None = None

    @property
    def starts_pdu(self) -> bool:
        return self.pb in (0, 2)
