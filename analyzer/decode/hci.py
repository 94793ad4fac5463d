"""HCI commands, events and ACL headers (Core v5.4 Vol 4 Part E §5.4, §7).

Input payloads are HCI packets *without* the H4 type byte (see :mod:`analyzer.capture`).
This module is the entry point; the work is split along its seams: value tables and records in
:mod:`~analyzer.decode.hci_types`, commands in :mod:`~analyzer.decode.hci_commands`, events in
:mod:`~analyzer.decode.hci_events`, the vectorised column gathers in
:mod:`~analyzer.decode.hci_columns`.
"""

from __future__ import annotations

from analyzer.decode.base import Buffer, as_bytes, never_raise
from analyzer.decode.hci_columns import acl_columns, command_columns, event_columns, sco_columns
from analyzer.decode.hci_commands import COMMANDS, decode_command
from analyzer.decode.hci_events import (
    EVENTS,
    LE_SUBEVENTS,
    decode_event,
    eir_name,
    ext_event_type_name,
)
from analyzer.decode.hci_types import (
    ADV_REPORT_TYPES,
    AIR_MODES,
    CODING_FORMATS,
    DATA_STATUS,
    IO_CAPABILITIES,
    KEY_TYPES,
    LE_ADDRESS_TYPES,
    LINK_TYPES,
    ROLES,
    SCAN_ENABLE,
    AclHeader,
    AdvReport,
    HciCommand,
    HciEvent,
    InquiryResponse,
)

# ------------------------------------------------------------------------------------------------
# ACL


def _raw_acl(data: Buffer, anomaly: str | None = None) -> AclHeader:
    return AclHeader(None, None, None, None, anomaly=anomaly)


@never_raise(_raw_acl)
def decode_acl(data: Buffer) -> AclHeader:
    """Decode an HCI ACL data packet header; ``data`` is the ACL payload (an L2CAP fragment)."""
    b = as_bytes(data)
    if len(b) < 4:
        return AclHeader(None, None, None, None, anomaly=f"short ACL header: {len(b)} < 4 bytes")
    hf = b[0] | (b[1] << 8)
    ln = b[2] | (b[3] << 8)
    rec = AclHeader(hf & 0x0FFF, (hf >> 12) & 0x3, (hf >> 14) & 0x3, ln, data=b[4 : 4 + ln])
    if len(b) - 4 < ln:
        rec.anomaly = f"ACL data truncated: {len(b) - 4} of {ln} bytes"
    elif len(b) - 4 > ln:
        rec.anomaly = f"{len(b) - 4 - ln} bytes after the declared ACL data"
    return rec


__all__ = [
    "ADV_REPORT_TYPES",
    "AIR_MODES",
    "CODING_FORMATS",
    "COMMANDS",
    "DATA_STATUS",
    "EVENTS",
    "IO_CAPABILITIES",
    "KEY_TYPES",
    "LE_ADDRESS_TYPES",
    "LE_SUBEVENTS",
    "LINK_TYPES",
    "ROLES",
    "SCAN_ENABLE",
    "AclHeader",
    "AdvReport",
    "HciCommand",
    "HciEvent",
    "InquiryResponse",
    "acl_columns",
    "command_columns",
    "decode_acl",
    "decode_command",
    "decode_event",
    "eir_name",
    "event_columns",
    "ext_event_type_name",
    "sco_columns",
]
