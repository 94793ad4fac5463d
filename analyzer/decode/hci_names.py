"""Name tables for HCI: error codes, command, event and LE subevent names, company identifiers.

Error / status names follow the Core spec error-code table (Core v5.4 Vol 1 Part F §1.3) word for
word. Command, event and LE subevent names are derived from bumble's tables (``bumble.hci``),
turned from ``HCI_CREATE_CONNECTION_COMMAND`` into ``"Create Connection"``; a small built-in table
keeps the names we rely on if bumble is missing or changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Core v5.4 Vol 1 Part F §1.3, "List of error codes".
ERROR_NAMES: dict[int, str] = {
    0x00: "Success",
    0x01: "Unknown HCI Command",
    0x02: "Unknown Connection Identifier",
    0x03: "Hardware Failure",
    0x04: "Page Timeout",
    0x05: "Authentication Failure",
    0x06: "PIN or Key Missing",
    0x07: "Memory Capacity Exceeded",
    0x08: "Connection Timeout",
    0x09: "Connection Limit Exceeded",
    0x0A: "Synchronous Connection Limit To A Device Exceeded",
    0x0B: "Connection Already Exists",
    0x0C: "Command Disallowed",
    0x0D: "Connection Rejected due to Limited Resources",
    0x0E: "Connection Rejected Due To Security Reasons",
    0x0F: "Connection Rejected due to Unacceptable BD_ADDR",
    0x10: "Connection Accept Timeout Exceeded",
    0x11: "Unsupported Feature or Parameter Value",
    0x12: "Invalid HCI Command Parameters",
    0x13: "Remote User Terminated Connection",
    0x14: "Remote Device Terminated Connection due to Low Resources",
    0x15: "Remote Device Terminated Connection due to Power Off",
    0x16: "Connection Terminated By Local Host",
    0x17: "Repeated Attempts",
    0x18: "Pairing Not Allowed",
    0x19: "Unknown LMP PDU",
    0x1A: "Unsupported Remote Feature",
    0x1B: "SCO Offset Rejected",
    0x1C: "SCO Interval Rejected",
    0x1D: "SCO Air Mode Rejected",
    0x1E: "Invalid LMP Parameters / Invalid LL Parameters",
    0x1F: "Unspecified Error",
    0x20: "Unsupported LMP Parameter Value / Unsupported LL Parameter Value",
    0x21: "Role Change Not Allowed",
    0x22: "LMP Response Timeout / LL Response Timeout",
    0x23: "LMP Error Transaction Collision / LL Procedure Collision",
    0x24: "LMP PDU Not Allowed",
    0x25: "Encryption Mode Not Acceptable",
    0x26: "Link Key cannot be Changed",
    0x27: "Requested QoS Not Supported",
    0x28: "Instant Passed",
    0x29: "Pairing With Unit Key Not Supported",
    0x2A: "Different Transaction Collision",
    0x2C: "QoS Unacceptable Parameter",
    0x2D: "QoS Rejected",
    0x2E: "Channel Classification Not Supported",
    0x2F: "Insufficient Security",
    0x30: "Parameter Out Of Mandatory Range",
    0x32: "Role Switch Pending",
    0x34: "Reserved Slot Violation",
    0x35: "Role Switch Failed",
    0x36: "Extended Inquiry Response Too Large",
    0x37: "Secure Simple Pairing Not Supported By Host",
    0x38: "Host Busy - Pairing",
    0x39: "Connection Rejected due to No Suitable Channel Found",
    0x3A: "Controller Busy",
    0x3B: "Unacceptable Connection Parameters",
    0x3C: "Advertising Timeout",
    0x3D: "Connection Terminated due to MIC Failure",
    0x3E: "Connection Failed to be Established / Synchronization Timeout",
    0x3F: "Previously Used",
    0x40: "Coarse Clock Adjustment Rejected but Will Try to Adjust Using Clock Dragging",
    0x41: "Type0 Submap Not Defined",
    0x42: "Unknown Advertising Identifier",
    0x43: "Limit Reached",
    0x44: "Operation Cancelled by Host",
    0x45: "Packet Too Long",
    0x46: "Too Late",
    0x47: "Too Early",
    0x48: "Insufficient Channels",
}


def error_name(code: int | None) -> str | None:
    """Spec name of an HCI error/status/reason code; ``"Reserved (0x..)"`` for unassigned ones."""
    if code is None:
        return None
    return ERROR_NAMES.get(code, f"Reserved (0x{code:02X})")


# Words kept upper case (or given a fixed spelling) when turning bumble constants into names.
_WORDS: dict[str, str] = {
    w: w
    for w in [
        "LE",
        "ACL",
        "SCO",
        "ESCO",
        "BD",
        "ADDR",
        "PIN",
        "IO",
        "RSSI",
        "LMP",
        "AFH",
        "OOB",
        "IAC",
        "LAP",
        "MWS",
        "PHY",
        "CIS",
        "CIG",
        "BIG",
        "ISO",
        "CTE",
        "IQ",
        "FAE",
        "CS",
        "RF",
        "SAM",
        "SCA",
        "UTP",
        "TX",
        "RX",
        "HCI",
        "LT",
        "LTK",
        "EIR",
        "BR",
        "EDR",
        "AES",
        "SSP",
        "DH",
        "V2",
        "V3",
        "V4",
        "P",
        "2",
        "256",
    ]
} | {"QOS": "QoS", "DHKEY": "DHKey", "OF": "of", "TO": "to", "WITH": "with", "FROM": "from"}


def _pretty(const: str, suffix: str) -> str:
    core = const.removeprefix("HCI_").removesuffix(suffix)
    words = [_WORDS.get(w, w.capitalize()) for w in core.split("_") if w]
    if words and words[0] in ("of", "to", "with", "from"):
        words[0] = words[0].capitalize()
    return " ".join(words)


# Fallback names (Core v5.4 Vol 4 Part E §7) for what the analyzer depends on.
_COMMAND_FALLBACK: dict[int, str] = {
    0x0401: "Inquiry",
    0x0405: "Create Connection",
    0x0406: "Disconnect",
    0x0409: "Accept Connection Request",
    0x040A: "Reject Connection Request",
    0x040B: "Link Key Request Reply",
    0x040C: "Link Key Request Negative Reply",
    0x040D: "PIN Code Request Reply",
    0x040E: "PIN Code Request Negative Reply",
    0x0411: "Authentication Requested",
    0x0413: "Set Connection Encryption",
    0x0419: "Remote Name Request",
    0x041D: "Read Remote Version Information",
    0x0428: "Setup Synchronous Connection",
    0x0429: "Accept Synchronous Connection Request",
    0x042B: "IO Capability Request Reply",
    0x042C: "User Confirmation Request Reply",
    0x042D: "User Confirmation Request Negative Reply",
    0x042E: "User Passkey Request Reply",
    0x0434: "IO Capability Request Negative Reply",
    0x043D: "Enhanced Setup Synchronous Connection",
    0x043E: "Enhanced Accept Synchronous Connection Request",
    0x0C03: "Reset",
    0x0C1A: "Write Scan Enable",
    0x200B: "LE Set Scan Parameters",
    0x2006: "LE Set Advertising Parameters",
    0x200D: "LE Create Connection",
    0x2019: "LE Enable Encryption",
    0x201A: "LE Long Term Key Request Reply",
    0x201B: "LE Long Term Key Request Negative Reply",
    0x2041: "LE Set Extended Scan Parameters",
    0x2043: "LE Extended Create Connection",
}

_EVENT_FALLBACK: dict[int, str] = {
    0x01: "Inquiry Complete",
    0x02: "Inquiry Result",
    0x03: "Connection Complete",
    0x04: "Connection Request",
    0x05: "Disconnection Complete",
    0x06: "Authentication Complete",
    0x07: "Remote Name Request Complete",
    0x08: "Encryption Change",
    0x0C: "Read Remote Version Information Complete",
    0x0E: "Command Complete",
    0x0F: "Command Status",
    0x10: "Hardware Error",
    0x12: "Role Change",
    0x13: "Number Of Completed Packets",
    0x16: "PIN Code Request",
    0x17: "Link Key Request",
    0x18: "Link Key Notification",
    0x22: "Inquiry Result With RSSI",
    0x2C: "Synchronous Connection Complete",
    0x2D: "Synchronous Connection Changed",
    0x2F: "Extended Inquiry Result",
    0x30: "Encryption Key Refresh Complete",
    0x31: "IO Capability Request",
    0x32: "IO Capability Response",
    0x33: "User Confirmation Request",
    0x34: "User Passkey Request",
    0x36: "Simple Pairing Complete",
    0x3B: "User Passkey Notification",
    0x3E: "LE Meta",
    0x59: "Encryption Change V2",
    0xFF: "Vendor",
}

_LE_SUBEVENT_FALLBACK: dict[int, str] = {
    0x01: "LE Connection Complete",
    0x02: "LE Advertising Report",
    0x03: "LE Connection Update Complete",
    0x04: "LE Read Remote Features Complete",
    0x05: "LE Long Term Key Request",
    0x0A: "LE Enhanced Connection Complete",
    0x0D: "LE Extended Advertising Report",
    0x29: "LE Enhanced Connection Complete V2",
}


def _build() -> dict[str, dict[int, str]]:
    """Name tables derived from bumble (with built-in fallbacks for the ones we rely on)."""
    commands = dict(_COMMAND_FALLBACK)
    events = dict(_EVENT_FALLBACK)
    subevents = dict(_LE_SUBEVENT_FALLBACK)
    companies: dict[int, str] = {}
    uuid16: dict[int, str] = {}
    try:
        import bumble.hci as bh

        for op, const in bh.HCI_Command.command_names.items():
            if isinstance(op, int) and isinstance(const, str):
                commands.setdefault(op, _pretty(const, "_COMMAND"))
        for code, const in bh.HCI_Event.event_names.items():
            if isinstance(code, int) and isinstance(const, str):
                events.setdefault(code, _pretty(const, "_EVENT"))
        for attr in dir(bh):
            is_sub = attr.startswith("HCI_LE_") and attr.endswith("_EVENT")
            if is_sub and attr != "HCI_LE_META_EVENT":
                val: Any = getattr(bh, attr)
                if isinstance(val, int) and 0 < val < 0x100:
                    subevents.setdefault(int(val), _pretty(attr, "_EVENT"))
    except Exception:  # bumble missing or changed: keep the built-in names
        pass
    try:
        from bumble.company_ids import COMPANY_IDENTIFIERS

        companies = {int(k): str(v) for k, v in COMPANY_IDENTIFIERS.items()}
    except Exception:
        companies = {}
    try:
        import bumble.gatt  # noqa: F401  (registers the GATT UUID names)
        from bumble.core import UUID

        for u in UUID.UUIDS:
            b = u.to_bytes()
            if len(b) == 2 and u.name:
                uuid16[int.from_bytes(b, "little")] = str(u.name)
    except Exception:
        uuid16 = {}
    return {"commands": commands, "events": events, "subevents": subevents,
            "companies": companies, "uuid16": uuid16}  # fmt: skip


#: bumble's tables, derived once and stored beside this module: importing bumble costs
#: ~150 ms on every run. ``python -m analyzer.decode.hci_names`` rewrites the file; a test
#: checks that it still equals what the installed bumble gives.
TABLES_FILE = Path(__file__).with_name("hci_tables.json")


def _load() -> dict[str, dict[int, str]]:
    try:
        raw = json.loads(TABLES_FILE.read_text(encoding="utf-8"))
        return {
            name: {int(k): str(v) for k, v in raw[name].items()}
            for name in ("commands", "events", "subevents", "companies", "uuid16")
        }
    except (OSError, ValueError, KeyError, AttributeError):
        return _build()


def write_tables() -> None:
    TABLES_FILE.write_text(json.dumps(_build(), indent=0, sort_keys=True) + "\n", "utf-8")


TABLES = _load()
COMMAND_NAMES = TABLES["commands"]
EVENT_NAMES = TABLES["events"]
LE_SUBEVENT_NAMES = TABLES["subevents"]
COMPANY_NAMES = TABLES["companies"]
UUID16_NAMES = TABLES["uuid16"]


def command_name(opcode: int) -> str:
    """Name of an HCI command opcode (OGF 0x3F: ``"Vendor 0x...."``)."""
    name = COMMAND_NAMES.get(opcode)
    if name is not None:
        return name
    if opcode >> 10 == 0x3F:
        return f"Vendor 0x{opcode & 0x3FF:03X}"
    return f"Unknown OGF=0x{opcode >> 10:02X} OCF=0x{opcode & 0x3FF:03X}"


def event_name(code: int) -> str:
    return EVENT_NAMES.get(code, f"Unknown event 0x{code:02X}")


def le_subevent_name(code: int) -> str:
    return LE_SUBEVENT_NAMES.get(code, f"Unknown LE subevent 0x{code:02X}")


def company_name(company_id: int | None) -> str | None:
    """Bluetooth SIG company identifier name (bumble's table), None when unknown."""
    if company_id is None:
        return None
    return COMPANY_NAMES.get(company_id)


if __name__ == "__main__":
    write_tables()
    print(f"wrote {TABLES_FILE}")
