"""The HCI layer's story: devices, links (ACL, LE, SCO/eSCO), commands, the controller,
pairing, and L2CAP channels and signalling (Core v5.4 Vol 4 Part E, Vol 3 Part A)."""

from __future__ import annotations

from dataclasses import field

from analyzer.model.base import record


@record
class VersionSeen:
    """Read Remote Version Information Complete on one connection (Vol 4 Part E §7.7.12)."""

    connection: str | None
    frame: int
    time_us: int
    lmp_version: int | None = None
    lmp_subversion: int | None = None
    manufacturer: int | None = None


@record
class DeviceId:
    """SDP PnP Information (Device ID profile, service class 0x1200)."""

    vendor_id: int | None = None
    product_id: int | None = None
    version: int | None = None
    vendor_id_source: int | None = None


@record
class DeviceIdSeen:
    connection: str | None
    frame: int
    time_us: int
    vendor_id: int | None = None
    product_id: int | None = None
    version: int | None = None
    vendor_id_source: int | None = None


@record
class Device:
    address: str
    role: str = "remote"  # "local" (the capturing controller) or "remote"
    name: str | None = None
    class_of_device: int | None = None
    lmp_version: int | None = None
    lmp_subversion: int | None = None
    manufacturer: int | None = None
    manufacturer_name: str | None = None  # the controller chip's vendor (LMP company id)
    #: the product's maker as users name it: the address's OUI owner (IEEE MA-L); null if random
    oui_vendor: str | None = None
    versions_seen: list[VersionSeen] = field(default_factory=list)  # per connection
    device_id: DeviceId | None = None
    device_ids_seen: list[DeviceIdSeen] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    address_type: str | None = None
    frames: list[int] = field(default_factory=list)  # where facts about it came from

    @property
    def random_kind(self) -> str | None:
        """For an LE random address, its sub-type from the two top bits (Core v5.4 Vol 6 Part
        B §1.3.2): "static", "resolvable private" or "non-resolvable private"; else None."""
        if not self.address_type or "random" not in self.address_type.lower():
            return None
        try:
            top = int(self.address[:2], 16) >> 6
        except ValueError:
            return None
        return {3: "static", 1: "resolvable private", 0: "non-resolvable private"}.get(top)


@record
class EncryptionFailure:
    frame: int
    time_us: int
    status: int
    status_name: str | None
    event: str


@record
class DirectionCounts:
    sent: int = 0
    received: int = 0


@record
class ScoGap:
    direction: str
    from_frame: int
    to_frame: int
    gap_ms: float


@record
class ScoChange:
    """Synchronous Connection Changed (§7.7.36): the link's new parameters."""

    frame: int
    transmission_interval: int | None = None
    retransmission_window: int | None = None
    rx_packet_length: int | None = None
    tx_packet_length: int | None = None


@record
class ScoLink:
    """Synchronous Connection Complete parameters (§7.7.35) and what flowed on the link."""

    link_type_name: str | None = None
    transmission_interval: int | None = None
    retransmission_window: int | None = None
    rx_packet_length: int | None = None
    tx_packet_length: int | None = None
    air_mode: int | None = None
    air_mode_name: str | None = None
    sco_packets: DirectionCounts = field(default_factory=DirectionCounts)
    sco_bytes: DirectionCounts = field(default_factory=DirectionCounts)
    sco_first_time_us: int | None = None
    sco_last_time_us: int | None = None
    sco_gaps: list[ScoGap] = field(default_factory=list)
    hfp_connection: str | None = None
    hfp_dlci: int | None = None
    profile: str | None = None
    codec_id: int | None = None
    codec: str | None = None
    codec_source: str | None = None
    changes: list[ScoChange] = field(default_factory=list)


@record
class Connection:
    id: str  # stable: "acl-<handle>-<n>", "le-<handle>-<n>", "sco-<handle>-<n>", "ll-<aa>-<n>"
    handle: int
    address: str | None
    transport: str  # br_edr / le / sco / esco
    status: int  # 0 success; else the HCI error code of the failed attempt
    status_name: str
    start_frame: int | None
    start_time_us: int | None
    end_frame: int | None = None
    end_time_us: int | None = None
    disconnect_reason: int | None = None
    disconnect_reason_name: str | None = None
    initiator: str | None = None  # "local" / "remote" / None (unknown)
    role: str | None = None  # local role: "central"/"peripheral"
    encrypted: bool = False
    encryption_frames: list[int] = field(default_factory=list)
    encryption_failures: list[EncryptionFailure] = field(default_factory=list)
    inferred: bool = False  # seen only through its data (capture started mid-connection)
    acl: str | None = None  # for sco/esco: the id of the ACL it rides on
    sco: ScoLink | None = None
    request_frame: int | None = None  # Create Connection / Accept / Setup Sync command
    acl_packets: int = 0
    acl_bytes: int = 0
    #: why a failed set-up is benign (e.g. it raced the peer's own connection); None otherwise
    benign: str | None = None
    #: a failed attempt the host cancelled itself (Create Connection Cancel / LE Create
    #: Connection Cancel → status 0x02, Vol 4 Part E §7.1.7, §7.8.13)
    cancelled: bool = False
    cancel_frame: int | None = None
    #: LE connects: "direct" (to one peer address) or "filter_accept_list" (background connect)
    connect_mode: str | None = None
    attempt_ms: float | None = None  # from the create command to the completion event
    #: LE: the link supervision timeout in force (LE Connection Complete / LE Connection Update
    #: Complete, Vol 4 Part E §7.7.65.1/.3), the frame that set it, and the frame of the
    #: peer's request for new parameters that led to it (L2CAP Connection Parameter Update
    #: Request, Vol 3 Part A §4.20; LE Remote Connection Parameter Request, §7.7.65.6)
    supervision_timeout_ms: float | None = None
    supervision_timeout_frame: int | None = None
    params_requested_frame: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def encryption_ok_frames(self) -> list[int]:
        """Frames of the encryption changes on this link that succeeded (not failures)."""
        failed = {e.frame for e in self.encryption_failures}
        return [f for f in self.encryption_frames if f not in failed]


@record
class HciTransaction:
    """One HCI command and what answered it (Command Status/Complete, completion event)."""

    frame: int
    time_us: int
    opcode: int
    name: str
    vendor: bool
    handle: int | None = None
    address: str | None = None
    connection: str | None = None
    status_frame: int | None = None  # Command Status or Command Complete
    status_time_us: int | None = None
    status: int | None = None
    status_name: str | None = None
    complete_frame: int | None = None  # the completion event (Connection Complete, ...)
    complete_time_us: int | None = None
    complete_status: int | None = None
    complete_status_name: str | None = None
    expects_completion: bool = False
    waits_on_user: bool = False
    #: the Enable parameter of the LE advertising/scanning enable commands (0 = disable)
    enable: int | None = None
    #: why a failure of this command is benign protocol behaviour (None: not recognised as such)
    benign: str | None = None


@record
class LocalVersion:
    """Read Local Version Information (§7.4.1)."""

    hci_version: int
    hci_revision: int
    lmp_version: int
    manufacturer: int
    lmp_subversion: int


@record
class ControllerReset:
    frame: int
    time_us: int
    links_ended: list[str] = field(default_factory=list)


@record
class HardwareError:
    frame: int
    time_us: int
    code: int | None = None


@record
class ControllerInfo:
    """The capturing side's controller (and the name its host gave it)."""

    address: str | None = None
    name: str | None = None  # Write/Read Local Name (Vol 4 Part E §7.3.11-12)
    page_timeout_s: float | None = None  # from Write Page Timeout, when the capture has it
    version: LocalVersion | None = None
    resets: list[ControllerReset] = field(default_factory=list)
    hardware_errors: list[HardwareError] = field(default_factory=list)


@record
class DiscoveredDevice:
    """An Inquiry Result (with RSSI / Extended) entry."""

    address: str
    frame: int
    time_us: int
    rssi: int | None = None
    name: str | None = None


@record
class SmpPairingParams:
    """Pairing Request / Response parameters (Vol 3 Part H §3.5.1-2)."""

    io_capability: int | None = None
    io_capability_name: str | None = None
    oob: int | None = None
    auth_req: int | None = None
    bonding: bool | None = None
    mitm: bool | None = None
    sc: bool | None = None
    keypress: bool | None = None
    ct2: bool | None = None
    max_key_size: int | None = None
    initiator_key_dist: list[str] = field(default_factory=list)
    responder_key_dist: list[str] = field(default_factory=list)


@record
class SmpPairingSummary:
    request_frame: int
    initiator: str
    request: SmpPairingParams | None = None
    response: SmpPairingParams | None = None
    keys_distributed: list[str] = field(default_factory=list)
    outcome: str = "incomplete"


@record
class PairingDetails:
    """What else the pairing's frames told (each set only when seen)."""

    bonded_earlier_in_capture: bool = False  # this address got a link key earlier in the capture
    pin_negative_reply: bool = False
    ended_by_disconnect: int | None = None  # frame of the Disconnection Complete
    encryption_status: int | None = None
    remote_oob: bool = False
    simple_pairing_status: int | None = None
    ltk_request: bool = False
    smp: SmpPairingSummary | None = None
    smp_reason: int | None = None
    smp_reason_name: str | None = None
    smp_incomplete: bool = False
    smp_failed_by: str | None = None  # the side that sent SMP Pairing Failed: local / remote
    #: the Security Request (Vol 3 Part H §3.6.7) this attempt answered, when it started as one
    security_request_frame: int | None = None
    security_requested_by: str | None = None  # local / remote


@record
class PairingAttempt:
    address: str | None
    connection: str | None
    transport: str  # br_edr / le
    start_frame: int
    start_time_us: int
    method: str | None = None  # legacy_pin / just_works / numeric_comparison / passkey / oob /
    # stored_key (Link Key Request answered with a key) / le_legacy_* / le_sc_*
    link_key_request: str | None = None  # "reply" / "negative_reply" / None
    io_capability_local: str | None = None
    io_capability_remote: str | None = None
    key_type: int | None = None
    key_type_name: str | None = None
    outcome: str = "unknown"  # success / failure / unknown
    status: int | None = None
    status_name: str | None = None
    frames: list[int] = field(default_factory=list)
    end_time_us: int | None = None
    details: PairingDetails = field(default_factory=PairingDetails)


@record
class L2capChannel:
    connection: str
    psm: int | None
    psm_name: str
    requester: str  # "local" / "remote"
    local_cid: int | None
    remote_cid: int | None
    request_frame: int | None
    response_frame: int | None = None
    result: int | None = None
    result_name: str | None = None
    open_time_us: int | None = None
    close_frame: int | None = None
    role: str | None = None  # e.g. "avdtp_signalling", "avdtp_media"
    inferred: bool = False
    frames: int = 0
    bytes: int = 0
    #: why a refusal is benign (a collision, a teardown); None otherwise
    benign: str | None = None


@record
class L2capSignal:
    """One L2CAP signalling request/response pair (Vol 3 Part A §4)."""

    connection: str
    address: str | None
    code: int
    name: str
    ident: int
    direction: str
    frame: int
    time_us: int
    is_request: bool
    result: int | None = None
    response_frame: int | None = None
    response_time_us: int | None = None
    suspect: bool = False
    final_result: int | None = None


@record
class LlConnectionParams:
    """CONNECT_IND LLData (Vol 6 Part B §2.3.3.1)."""

    access_address: int
    crc_init: int
    win_size: int
    win_offset: int
    interval: int
    interval_ms: float
    latency: int
    timeout: int
    timeout_ms: int
    channel_map: str
    hop: int
    sca: int


@record
class LlConnection:
    """An LE link seen on the air (sniffer captures)."""

    connection: str
    access_address: str
    central: str | None = None
    peripheral: str | None = None
    connect_frame: int | None = None
    params: LlConnectionParams | None = None
    pdus: int = 0
    empty: int = 0
    control: dict[str, int] = field(default_factory=dict)  # LL control PDUs by name
    retransmissions: int = 0
    encrypted_pdus: int = 0
    direction_inferred: bool = False
    terminate_frame: int | None = None
    terminated_by: str | None = None
    #: no LL_TERMINATE_IND: the peripheral fell silent here while the central kept sending
    #: for at least the supervision timeout (the link timed out, reason 0x08 inferred)
    peer_silent_from_frame: int | None = None
    peer_silent_s: float | None = None
    unanswered_pdus: int = 0
