"""LE: advertisers and scanning (Core Vol 6 Part B §4.4, Vol 3 Part C §11), SMP (Vol 3 Part H)
and ATT/GATT (Vol 3 Parts F and G)."""

from __future__ import annotations

from dataclasses import field

from analyzer.model.base import record
from analyzer.model.links import SmpPairingParams


@record
class RssiStats:
    min: float
    max: float
    mean: float


@record
class Manufacturer:
    id: int
    name: str | None = None


@record
class GapHistogram:
    edges_ms: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


@record
class AdvSegment:
    """A stretch of one advertiser's events with one advertising interval (Core Vol 6 Part B
    §4.4.2.2.1): ``interval_ms`` is advInterval without the 0-10 ms advDelay, or None with
    ``note`` saying why. Silences inside a segment do not split it; a change of interval does."""

    from_time_us: int
    to_time_us: int
    from_frame: int
    to_frame: int
    interval_ms: float | None
    confidence: float
    events: int
    pdu_types: dict[str, int] = field(default_factory=dict)
    connectable: bool | None = None
    #: LE General or Limited Discoverable Mode flag (AD Flags, CSS Part A §1.3); None: no flags
    discoverable: bool | None = None
    note: str | None = None


@record
class AdvSilence:
    """A gap of many intervals in one advertiser's events while the scanner was scanning and
    heard other advertisers throughout."""

    from_time_us: int
    to_time_us: int
    from_frame: int
    to_frame: int
    duration_ms: float
    #: LE Set Scan Parameters window / interval in force then; None when the capture set none
    scan_duty_cycle: float | None = None


@record
class Advertiser:
    address: str
    address_type: str | None
    name: str | None = None
    reports: int = 0
    interval_ms: float | None = None
    interval_confidence: float = 0.0
    interval_note: str | None = None  # why there is no estimate / what the fit saw
    rssi: RssiStats | None = None
    pdu_types: dict[str, int] = field(default_factory=dict)
    manufacturer: Manufacturer | None = None
    service_uuids: list[str] = field(default_factory=list)
    tx_power: int | None = None
    appearance: int | None = None
    flags: int | None = None
    first_frame: int | None = None
    last_frame: int | None = None
    first_time_us: int | None = None
    last_time_us: int | None = None
    events: int = 0  # advertising events heard (reports of one event merged)
    source: str = "hci"  # hci / air
    channels: dict[str, int] = field(default_factory=dict)  # air: PDUs per channel
    gap_histogram: GapHistogram | None = None
    #: stretches with one interval (one for a steady advertiser); interval_ms is the longest's
    segments: list[AdvSegment] = field(default_factory=list)
    #: gaps no scanner miss explains while others were heard (HCI scans only)
    silences: list[AdvSilence] = field(default_factory=list)


@record
class ScanParameters:
    """LE Set (Extended) Scan Parameters (Vol 4 Part E §7.8.10, §7.8.64)."""

    frame: int
    scan_type: str
    interval_ms: float
    window_ms: float
    duty_cycle: float | None


@record
class ScanSession:
    """From one LE Set Scan Enable (on) to the next (off)."""

    start_frame: int
    end_frame: int | None
    filter_duplicates: int


@record
class AdvertisingSummary:
    scan_parameters: list[ScanParameters] = field(default_factory=list)
    scan_sessions: list[ScanSession] = field(default_factory=list)
    reports: int = 0
    advertisers: int = 0


@record
class SmpPduRef:
    frame: int
    time_us: int
    direction: str
    name: str


@record
class SmpPdu:
    frame: int
    time_us: int
    connection: str | None
    cid: int
    direction: str
    opcode: int | None
    name: str
    reason: int | None = None
    reason_name: str | None = None


@record
class SmpTransaction:
    """One SMP procedure started by a Pairing Request or a Security Request."""

    connection: str | None
    address: str | None
    cid: int
    request: str  # "Pairing Request" / "Security Request"
    frame: int
    time_us: int
    direction: str  # of the request: sent / received (air: sent = central → peripheral)
    response: str | None = None  # the peer's first SMP answer
    response_frame: int | None = None
    response_time_us: int | None = None
    latency_ms: float | None = None
    last_frame: int = 0
    last_time_us: int = 0
    outcome: str = "incomplete"  # completed / failed / incomplete
    method: str | None = None
    request_params: SmpPairingParams | None = None
    response_params: SmpPairingParams | None = None
    reason: int | None = None
    reason_name: str | None = None
    keys_distributed: list[str] = field(default_factory=list)
    pdus: list[SmpPduRef] = field(default_factory=list)


@record
class SmpSummary:
    transactions: list[SmpTransaction] = field(default_factory=list)
    pdus: list[SmpPdu] = field(default_factory=list)


@record
class AttTransaction:
    connection: str | None
    address: str | None
    direction: str  # of the request / indication
    request_opcode: int
    request: str
    request_frame: int
    request_time_us: int
    handle: int | None = None
    attr_type: str | None = None
    response_opcode: int | None = None
    response: str | None = None
    response_frame: int | None = None
    response_time_us: int | None = None
    latency_ms: float | None = None
    error: int | None = None
    error_name: str | None = None
    error_handle: int | None = None


@record
class AttNotification:
    connection: str | None
    direction: str
    handle: int | None
    count: int
    first_frame: int
    last_frame: int


@record
class GattDescriptor:
    handle: int
    uuid: str


@record
class GattCharacteristic:
    handle: int | None
    properties: list[str]
    value_handle: int | None
    uuid: str
    descriptors: list[GattDescriptor] = field(default_factory=list)


@record
class GattService:
    start_handle: int | None
    end_handle: int | None
    uuid: str
    primary: bool
    characteristics: list[GattCharacteristic] = field(default_factory=list)


@record
class GattServer:
    """What GATT discovery found on one connection's server."""

    address: str | None
    server: str
    mtu: int | None = None
    services: list[GattService] = field(default_factory=list)
    orphan_characteristics: list[GattCharacteristic] = field(default_factory=list)


@record
class AttSummary:
    transactions: list[AttTransaction] = field(default_factory=list)
    notifications: list[AttNotification] = field(default_factory=list)
    pdus_by_opcode: dict[str, int] = field(default_factory=dict)
    opcode_counts: dict[str, int] = field(default_factory=dict)
    services: dict[str, GattServer] = field(default_factory=dict)  # by connection id
