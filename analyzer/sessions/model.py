"""What the sessions layer rebuilds: plain dataclasses that rules, reports and the dashboard read.

Every object that stands for packets carries the frame numbers (1-based, as Wireshark numbers
them) of its evidence. Times are integer Unix microseconds (``*_time_us``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Dataclasses (recursively) to JSON-ready dicts; private fields (``_x``) are left out."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not f.name.startswith("_")
        }
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


@dataclass
class Anomaly:
    """A decode-level oddity (Wireshark's expert info): short PDU, unknown opcode, bad length."""

    frame: int
    layer: str
    message: str


@dataclass
class Device:
    address: str
    role: str = "remote"  # "local" (the capturing controller) or "remote"
    name: str | None = None
    class_of_device: int | None = None
    lmp_version: int | None = None
    lmp_subversion: int | None = None
    manufacturer: int | None = None
    manufacturer_name: str | None = None
    versions_seen: list[dict[str, Any]] = field(default_factory=list)  # per connection
    device_id: dict[str, Any] | None = None  # SDP PnP Information (0x1200) attributes
    device_ids_seen: list[dict[str, Any]] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    address_type: str | None = None
    frames: list[int] = field(default_factory=list)  # where facts about it came from


@dataclass
class Connection:
    id: str  # stable: "acl-<handle>-<n>", "le-<handle>-<n>", "sco-<handle>-<n>"
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
    encryption_failures: list[dict[str, Any]] = field(default_factory=list)
    inferred: bool = False  # seen only through its data (capture started mid-connection)
    acl: str | None = None  # for sco/esco: the id of the ACL it rides on
    sco: dict[str, Any] | None = None  # link type, intervals, packet lengths, air mode
    request_frame: int | None = None  # Create Connection / Accept / Setup Sync command
    acl_packets: int = 0
    acl_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == 0


@dataclass
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


@dataclass
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
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SdpTransaction:
    connection: str | None
    address: str | None
    tid: int
    pdu: str  # request PDU name
    request_frame: int
    request_time_us: int
    direction: str  # "sent" (we asked) / "received" (peer asked)
    response_frame: int | None = None
    response_time_us: int | None = None
    response_pdu: str | None = None
    latency_ms: float | None = None
    continuations: int = 0
    last_request_frame: int | None = None  # the last (continued) request, answered by response
    last_request_time_us: int | None = None
    frames: list[int] = field(default_factory=list)
    uuids: list[str] = field(default_factory=list)
    attribute_ranges: list[list[int]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    error_code: int | None = None
    error_name: str | None = None


@dataclass
class AvdtpSignal:
    connection: str | None
    signal: str  # "SET_CONFIGURATION"
    signal_id: int
    label: int
    direction: str  # direction of the command: sent / received
    command_frame: int | None
    command_time_us: int | None
    response: str | None = None  # accept / reject / general_reject / None
    response_frame: int | None = None
    response_time_us: int | None = None
    latency_ms: float | None = None
    error_code: int | None = None
    error_name: str | None = None
    service_category: int | None = None
    seid: int | None = None  # ACP SEID the command addressed
    int_seid: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class AvdtpStream:
    connection: str | None
    address: str | None
    acp_seid: int | None
    int_seid: int | None
    codec: str | None
    codec_params: dict[str, Any] = field(default_factory=dict)
    configured_by: str | None = None  # "local"/"remote"
    configure_frame: int | None = None
    states: list[dict[str, Any]] = field(default_factory=list)  # {state, frame, time_us}
    state: str = "idle"
    media_channel: dict[str, Any] | None = None  # {local_cid, remote_cid}
    media_packets: int = 0
    media_bytes: int = 0
    media_first_time_us: int | None = None
    media_last_time_us: int | None = None
    media_rate_pps: float | None = None
    media_bitrate_kbps: float | None = None
    media_gaps: list[dict[str, Any]] = field(default_factory=list)  # {from_frame,to_frame,gap_ms}
    delay_reports: list[dict[str, Any]] = field(default_factory=list)  # {frame, delay_ms}
    inferred: bool = False


@dataclass
class StreamEndpoint:
    connection: str | None
    side: str  # "local"/"remote"
    seid: int
    media_type: str
    tsep: str  # "source"/"sink"
    in_use: bool
    codecs: list[dict[str, Any]] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    frame: int | None = None


@dataclass
class TimelineEvent:
    time_us: int
    frame: int
    lane: str  # device address or connection id
    kind: str  # connect / disconnect / pair / sdp / avdtp / stream_state / slc / call / sco / adv
    text: str
    severity: str = "info"


@dataclass
class AtCommand:
    """One AT command (HF/HS → AG) or unsolicited result, with its final result code."""

    frame: int
    time_us: int
    direction: str  # sent / received (as the capturing host saw it)
    text: str  # e.g. "AT+BRSF=959", "+CIEV: 2,1", "RING"
    kind: str  # "command" / "unsolicited"
    result: str | None = None  # "OK" / "ERROR" / "+CME ERROR: n" / None (unanswered)
    result_frame: int | None = None
    result_time_us: int | None = None
    responses: list[str] = field(default_factory=list)  # information results (+BRSF: ...)


@dataclass
class HfpCall:
    direction: str  # incoming / outgoing / unknown
    start_frame: int
    start_time_us: int
    answered_frame: int | None = None
    end_frame: int | None = None
    end_time_us: int | None = None
    number: str | None = None


@dataclass
class HfpSession:
    """One HFP or HSP service level connection over RFCOMM (HFP 1.9 §4.2, HSP 1.2 §4.2)."""

    connection: str | None
    address: str | None
    profile: str  # "hfp" / "hsp"
    local_role: str  # "ag" / "hf" / "hs"
    rfcomm_channel: int | None
    dlci: int | None
    start_frame: int
    start_time_us: int
    end_frame: int | None = None
    slc_complete: bool = False
    slc_frame: int | None = None  # the frame that completed the SLC
    hf_features: int | None = None
    ag_features: int | None = None
    hf_codecs: list[int] = field(default_factory=list)  # AT+BAC
    codec: int | None = None  # +BCS selected: 1 CVSD, 2 mSBC, 3 LC3-SWB
    codec_name: str | None = None
    codec_frame: int | None = None
    indicators: dict[str, int] = field(default_factory=dict)  # current +CIEV / CIND values
    calls: list[HfpCall] = field(default_factory=list)
    volume: dict[str, int] = field(default_factory=dict)  # speaker / microphone
    sco: list[str] = field(default_factory=list)  # ids of SCO/eSCO connections of this session
    at: list[AtCommand] = field(default_factory=list)
    inferred: bool = False
