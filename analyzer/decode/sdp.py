"""SDP PDUs and data elements (Core v5.4 Vol 3 Part B §3, §4).

:func:`decode_sdp` reads one PDU (header, per-PDU parameters, continuation state). Attribute
list bytes of a response may be split over several PDUs by continuation: the sessions layer
joins them and calls :func:`parse_attribute_lists` (ServiceSearchAttribute) or
:func:`parse_attribute_list` (ServiceAttribute). :func:`pnp_info`, :func:`rfcomm_channel`,
:func:`service_classes` and :func:`profile_versions` read common attributes of a record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.base import Buffer, as_bytes, never_raise

PDU_NAMES: dict[int, str] = {
    0x01: "ErrorResponse",
    0x02: "ServiceSearchRequest",
    0x03: "ServiceSearchResponse",
    0x04: "ServiceAttributeRequest",
    0x05: "ServiceAttributeResponse",
    0x06: "ServiceSearchAttributeRequest",
    0x07: "ServiceSearchAttributeResponse",
}
#: ErrorResponse ErrorCode (Core Vol 3 Part B §4.4.1).
ERROR_NAMES: dict[int, str] = {
    0x0001: "Invalid/unsupported SDP version",
    0x0002: "Invalid Service Record Handle",
    0x0003: "Invalid request syntax",
    0x0004: "Invalid PDU Size",
    0x0005: "Invalid Continuation State",
    0x0006: "Insufficient Resources to satisfy Request",
}
#: 16-bit UUIDs of protocols and service classes (Assigned Numbers §3.1, §3.3).
UUID_NAMES: dict[int, str] = {
    0x0001: "SDP",
    0x0003: "RFCOMM",
    0x0005: "TCS-BIN",
    0x0008: "OBEX",
    0x000F: "BNEP",
    0x0011: "HIDP",
    0x0017: "AVCTP",
    0x0019: "AVDTP",
    0x001B: "AVCTP Browsing",
    0x001F: "ATT",
    0x0100: "L2CAP",
    0x1000: "Service Discovery Server",
    0x1001: "Browse Group Descriptor",
    0x1002: "Public Browse Root",
    0x1101: "Serial Port",
    0x1102: "LAN Access Using PPP",
    0x1103: "Dialup Networking",
    0x1104: "IrMC Sync",
    0x1105: "OBEX Object Push",
    0x1106: "OBEX File Transfer",
    0x1108: "Headset",
    0x110A: "Audio Source",
    0x110B: "Audio Sink",
    0x110C: "A/V Remote Control Target",
    0x110D: "Advanced Audio Distribution",
    0x110E: "A/V Remote Control",
    0x110F: "A/V Remote Control Controller",
    0x1112: "Headset Audio Gateway",
    0x1115: "PANU",
    0x1116: "NAP",
    0x1117: "GN",
    0x111E: "Handsfree",
    0x111F: "Handsfree Audio Gateway",
    0x1124: "Human Interface Device",
    0x112D: "SIM Access",
    0x112E: "Phonebook Access Client",
    0x112F: "Phonebook Access Server",
    0x1130: "Phonebook Access",
    0x1131: "Headset HS",
    0x1132: "Message Access Server",
    0x1133: "Message Notification Server",
    0x1134: "Message Access Profile",
    0x1200: "PnP Information",
    0x1201: "Generic Networking",
    0x1203: "Generic Audio",
    0x1800: "Generic Access",
    0x1801: "Generic Attribute",
}
#: universal attribute ids (Core Vol 3 Part B §5.1) and Device ID attributes (DI 1.3 §5).
ATTRIBUTE_NAMES: dict[int, str] = {
    0x0000: "ServiceRecordHandle",
    0x0001: "ServiceClassIDList",
    0x0002: "ServiceRecordState",
    0x0003: "ServiceID",
    0x0004: "ProtocolDescriptorList",
    0x0005: "BrowseGroupList",
    0x0006: "LanguageBaseAttributeIDList",
    0x0007: "ServiceInfoTimeToLive",
    0x0008: "ServiceAvailability",
    0x0009: "BluetoothProfileDescriptorList",
    0x000A: "DocumentationURL",
    0x000B: "ClientExecutableURL",
    0x000C: "IconURL",
    0x000D: "AdditionalProtocolDescriptorLists",
    0x0100: "ServiceName",
    0x0101: "ServiceDescription",
    0x0102: "ProviderName",
    0x0200: "SpecificationID",
    0x0201: "VendorID",
    0x0202: "ProductID",
    0x0203: "Version",
    0x0204: "PrimaryRecord",
    0x0205: "VendorIDSource",
    0x0311: "SupportedFeatures",
}

_BASE_UUID_LOW = 0x0000_1000_8000_00805F9B34FB  # low 96 bits of the Bluetooth Base UUID
_MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Uuid:
    """A UUID data element: ``value`` as read, ``size`` 2, 4 or 16 bytes."""

    value: int
    size: int

    @property
    def short(self) -> int | None:
        """The 16/32-bit alias (also of a 128-bit UUID built on the Bluetooth Base UUID)."""
        if self.size in (2, 4):
            return self.value
        if self.value & ((1 << 96) - 1) == _BASE_UUID_LOW:
            return self.value >> 96
        return None

    @property
    def name(self) -> str | None:
        s = self.short
        return None if s is None else UUID_NAMES.get(s)

    def __str__(self) -> str:
        s = self.short
        if s is not None:
            return f"0x{s:04X}" if s <= 0xFFFF else f"0x{s:08X}"
        h = f"{self.value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Alternative(list[Any]):
    """A data element alternative (type 7): one of the listed values."""


@dataclass(slots=True)
class SdpPdu:
    """One SDP PDU (Core Vol 3 Part B §4.2-4.7)."""

    pdu_id: int
    name: str
    tid: int | None = None
    param_len: int | None = None
    error_code: int | None = None
    error_name: str | None = None
    uuids: list[Uuid] = field(default_factory=list)  # ServiceSearchPattern
    attr_ids: list[int | tuple[int, int]] = field(default_factory=list)  # ids and (lo, hi)
    max_count: int | None = None  # MaximumServiceRecordCount / MaximumAttributeByteCount
    record_handle: int | None = None
    total_count: int | None = None
    current_count: int | None = None
    handles: list[int] = field(default_factory=list)
    attribute_bytes: bytes = b""  # AttributeList(s) fragment, join across continuations
    continuation: bytes = b""  # continuation state information (empty = none)
    anomaly: str | None = None

    @property
    def is_request(self) -> bool:
        return self.pdu_id in (0x02, 0x04, 0x06)


#: largest data element (attribute list, accumulated over continuations) decoded; real ones are
#: a few KB (a phone's whole SDP database is under 64 KB)
MAX_ELEMENT_BYTES = 1 << 20


class _Short(Exception):
    pass


def _read_element(b: bytes, i: int, depth: int = 0, limit: int | None = None) -> tuple[Any, int]:
    """One data element at ``i`` ending by ``limit`` (default: the end of ``b``): (Python value,
    index after it). Raises _Short internally. Nested elements are read in place, bounded by
    their sequence's end (no copy of the buffer per element: linear in the bytes)."""
    size = len(b) if limit is None else limit
    if i >= size:
        raise _Short("data element header missing")
    if depth > _MAX_DEPTH:
        raise _Short("data elements nested too deep")
    h = b[i]
    typ, si = h >> 3, h & 7
    i += 1
    if typ == 0:
        return None, i
    if si < 5:
        n = (1, 2, 4, 8, 16)[si]
    else:
        w = (1, 2, 4)[si - 5]
        if i + w > size:
            raise _Short("data element length field truncated")
        n = int.from_bytes(b[i : i + w], "big")
        i += w
    if i + n > size:
        raise _Short(f"data element truncated: {size - i} of {n} bytes")
    end = i + n
    if typ in (6, 7):
        items: list[Any] = []
        j = i
        while j < end:
            val, j = _read_element(b, j, depth + 1, end)
            items.append(val)
        return (Alternative(items) if typ == 7 else items), end
    v = b[i:end]
    if typ == 1:
        return int.from_bytes(v, "big"), end
    if typ == 2:
        return int.from_bytes(v, "big", signed=True), end
    if typ == 3:
        return Uuid(int.from_bytes(v, "big"), n), end
    if typ in (4, 8):
        return v.decode("utf-8", "replace"), end
    if typ == 5:
        return bool(v[0]) if v else False, end
    return v, end  # reserved types: raw bytes


def decode_element(data: Buffer) -> tuple[Any, str | None]:
    """Decode one data element into Python values; returns (value, anomaly). At most
    :data:`MAX_ELEMENT_BYTES` are decoded (an attribute list from many continuations)."""
    b = as_bytes(data)
    cut = None
    if len(b) > MAX_ELEMENT_BYTES:
        b = b[:MAX_ELEMENT_BYTES]
        cut = f"data element over {MAX_ELEMENT_BYTES} bytes: only its start decoded"
    try:
        val, _ = _read_element(b, 0)
        return val, cut
    except _Short as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"decoder error: {type(exc).__name__}: {exc}"


def _continuation(b: bytes, i: int, r: SdpPdu) -> None:
    if i >= len(b):
        r.anomaly = r.anomaly or "continuation state missing"
        return
    n = b[i]
    r.continuation = b[i + 1 : i + 1 + n]
    if n > 16:
        r.anomaly = r.anomaly or f"continuation state too long: {n} > 16 bytes"
    elif len(r.continuation) < n:
        r.anomaly = r.anomaly or "continuation state truncated"


def _uuid_list(val: Any, r: SdpPdu) -> None:
    if not isinstance(val, list):
        r.anomaly = "ServiceSearchPattern is not a sequence"
        return
    r.uuids = [u for u in val if isinstance(u, Uuid)]
    if len(r.uuids) != len(val):
        r.anomaly = "ServiceSearchPattern holds non-UUID elements"


def _attr_list(p: bytes, i: int, r: SdpPdu) -> int:
    """AttributeIDList at ``i``: uint16 elements are ids, uint32 ones ranges (§4.6.1)."""
    val, end = _read_element(p, i)
    if not isinstance(val, list):
        r.anomaly = "AttributeIDList is not a sequence"
        return end
    # walk the element headers again: the value alone does not say uint16 or uint32
    h = p[i] & 7
    j = i + 1 + (0, 0, 0, 0, 0, 1, 2, 4)[h]
    while j < end:
        hdr = p[j]
        if hdr == 0x09 and j + 3 <= end:
            r.attr_ids.append((p[j + 1] << 8) | p[j + 2])
            j += 3
        elif hdr == 0x0A and j + 5 <= end:
            r.attr_ids.append(((p[j + 1] << 8) | p[j + 2], (p[j + 3] << 8) | p[j + 4]))
            j += 5
        else:
            r.anomaly = "AttributeIDList holds an element that is not uint16/uint32"
            break
    return end


def _raw_sdp(data: Buffer, anomaly: str | None = None) -> SdpPdu:
    b = as_bytes(data) if isinstance(data, bytes | bytearray | memoryview) else b""
    pid = b[0] if b else 0
    return SdpPdu(pid, PDU_NAMES.get(pid, f"Unknown 0x{pid:02X}"), anomaly=anomaly)


@never_raise(_raw_sdp)
def decode_sdp(data: Buffer) -> SdpPdu:
    """Decode one SDP PDU (the L2CAP payload of an SDP channel)."""
    b = as_bytes(data)
    if len(b) < 5:
        return _raw_sdp(b, f"short SDP header: {len(b)} < 5 bytes")
    pid = b[0]
    r = SdpPdu(pid, PDU_NAMES.get(pid, f"Unknown 0x{pid:02X}"))
    r.tid = (b[1] << 8) | b[2]
    r.param_len = (b[3] << 8) | b[4]
    p = b[5 : 5 + r.param_len]
    if len(p) < r.param_len:
        r.anomaly = f"parameters truncated: {len(p)} of {r.param_len} bytes"
    if pid not in PDU_NAMES:
        r.anomaly = f"unknown PDU id 0x{pid:02X}"
        return r
    try:
        _PDU_DECODERS[pid](p, r)
    except _Short as exc:
        r.anomaly = f"{r.name}: {exc}"
    except IndexError:
        r.anomaly = f"{r.name}: parameters too short"
    return r


def _need(p: bytes, n: int) -> None:
    if len(p) < n:
        raise _Short(f"parameters too short: {len(p)} < {n} bytes")


def _p_error(p: bytes, r: SdpPdu) -> None:
    _need(p, 2)
    r.error_code = (p[0] << 8) | p[1]
    r.error_name = ERROR_NAMES.get(r.error_code, f"Reserved 0x{r.error_code:04X}")


def _p_search_req(p: bytes, r: SdpPdu) -> None:
    val, i = _read_element(p, 0)
    _uuid_list(val, r)
    _need(p, i + 2)
    r.max_count = (p[i] << 8) | p[i + 1]
    _continuation(p, i + 2, r)


def _p_search_rsp(p: bytes, r: SdpPdu) -> None:
    _need(p, 4)
    r.total_count = (p[0] << 8) | p[1]
    r.current_count = (p[2] << 8) | p[3]
    _need(p, 4 + 4 * r.current_count)
    r.handles = [int.from_bytes(p[4 + 4 * k : 8 + 4 * k], "big") for k in range(r.current_count)]
    _continuation(p, 4 + 4 * r.current_count, r)


def _p_attr_req(p: bytes, r: SdpPdu) -> None:
    _need(p, 6)
    r.record_handle = int.from_bytes(p[0:4], "big")
    r.max_count = (p[4] << 8) | p[5]
    i = _attr_list(p, 6, r)
    _continuation(p, i, r)


def _p_search_attr_req(p: bytes, r: SdpPdu) -> None:
    val, i = _read_element(p, 0)
    _uuid_list(val, r)
    _need(p, i + 2)
    r.max_count = (p[i] << 8) | p[i + 1]
    i = _attr_list(p, i + 2, r)
    _continuation(p, i, r)


def _p_attr_rsp(p: bytes, r: SdpPdu) -> None:
    _need(p, 2)
    n = (p[0] << 8) | p[1]
    r.attribute_bytes = p[2 : 2 + n]
    if len(r.attribute_bytes) < n:
        raise _Short(f"attribute list truncated: {len(r.attribute_bytes)} of {n} bytes")
    _continuation(p, 2 + n, r)


_PDU_DECODERS = {
    0x01: _p_error,
    0x02: _p_search_req,
    0x03: _p_search_rsp,
    0x04: _p_attr_req,
    0x05: _p_attr_rsp,
    0x06: _p_search_attr_req,
    0x07: _p_attr_rsp,
}


# ------------------------------------------------------------------------------------------------
# attribute lists and records


@dataclass(slots=True)
class SdpRecords:
    """Records parsed from a complete AttributeList(s) byte string."""

    records: list[dict[int, Any]]
    anomaly: str | None = None


def _pairs(seq: Any) -> dict[int, Any]:
    rec: dict[int, Any] = {}
    if isinstance(seq, list):
        for k in range(0, len(seq) - 1, 2):
            if isinstance(seq[k], int):
                rec[seq[k]] = seq[k + 1]
    return rec


def parse_attribute_lists(data: Buffer) -> SdpRecords:
    """AttributeLists of ServiceSearchAttributeResponse (DES of DES of id/value pairs)."""
    val, anomaly = decode_element(data)
    if not isinstance(val, list):
        return SdpRecords([], anomaly or "AttributeLists is not a sequence")
    return SdpRecords([_pairs(s) for s in val if isinstance(s, list)], anomaly)


def parse_attribute_list(data: Buffer) -> SdpRecords:
    """AttributeList of ServiceAttributeResponse (one DES of id/value pairs): one record."""
    val, anomaly = decode_element(data)
    if not isinstance(val, list):
        return SdpRecords([], anomaly or "AttributeList is not a sequence")
    return SdpRecords([_pairs(val)], anomaly)


def service_classes(record: dict[int, Any]) -> list[int]:
    """16/32-bit UUIDs of the record's ServiceClassIDList (0x0001)."""
    val = record.get(0x0001)
    if not isinstance(val, list):
        return []
    return [s for u in val if isinstance(u, Uuid) and (s := u.short) is not None]


@dataclass(frozen=True, slots=True)
class PnpInfo:
    """Device ID record (DI 1.3 §5): attributes 0x0200-0x0205."""

    specification_id: int | None
    vendor_id: int | None
    product_id: int | None
    version: int | None
    primary_record: bool | None
    vendor_id_source: int | None

    @property
    def version_str(self) -> str | None:
        """Version 0xJJMN as ``"J.M.N"`` (DI 1.3 §5.5)."""
        v = self.version
        return None if v is None else f"{v >> 8}.{(v >> 4) & 0xF}.{v & 0xF}"

    @property
    def vendor_id_source_name(self) -> str | None:
        return {1: "Bluetooth SIG", 2: "USB Implementer's Forum"}.get(self.vendor_id_source or 0)


def pnp_info(record: dict[int, Any]) -> PnpInfo | None:
    """The Device ID of a record, only when its ServiceClassIDList holds 0x1200."""
    if 0x1200 not in service_classes(record):
        return None

    def num(a: int) -> int | None:
        v = record.get(a)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    prim = record.get(0x0204)
    return PnpInfo(
        num(0x0200), num(0x0201), num(0x0202), num(0x0203),
        prim if isinstance(prim, bool) else None, num(0x0205),
    )  # fmt: skip


def rfcomm_channel(record: dict[int, Any]) -> int | None:
    """RFCOMM server channel from the ProtocolDescriptorList (0x0004), if any."""
    val = record.get(0x0004)
    stacks = val if isinstance(val, Alternative) else [val]
    for stack in stacks:
        if not isinstance(stack, list):
            continue
        for proto in stack:
            if (
                isinstance(proto, list)
                and len(proto) >= 2
                and isinstance(proto[0], Uuid)
                and proto[0].short == 0x0003
                and isinstance(proto[1], int)
            ):
                return int(proto[1])
    return None


def profile_versions(record: dict[int, Any]) -> dict[int, int]:
    """BluetoothProfileDescriptorList (0x0009): profile UUID16 -> version (0xMMmm)."""
    out: dict[int, int] = {}
    val = record.get(0x0009)
    if isinstance(val, list):
        for d in val:
            if isinstance(d, list) and len(d) >= 2 and isinstance(d[0], Uuid):
                s = d[0].short
                if s is not None and isinstance(d[1], int):
                    out[s] = int(d[1])
    return out


def uuid_name(uuid16: int) -> str:
    return UUID_NAMES.get(uuid16, f"0x{uuid16:04X}")
