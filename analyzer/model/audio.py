"""Classic profiles: SDP (Core Vol 3 Part B), AVDTP/A2DP (AVDTP 1.3, A2DP 1.4), RFCOMM
(TS 07.10 as RFCOMM 1.2 uses it) and HFP/HSP (HFP 1.9, HSP 1.2)."""

from __future__ import annotations

from dataclasses import field

from analyzer.model.base import record
from analyzer.model.links import DeviceId

#: Rough listening-quality rank (higher is better) for comparing what two sides could have used.
#: Not a measurement: an ordering most users and vendors agree on. Unknown codecs rank 0.
CODEC_QUALITY_RANK: dict[str, int] = {
    "SBC": 10,
    "MPEG-1,2": 10,
    "FastStream": 10,
    "ATRAC": 15,
    "AAC": 20,
    "aptX Low Latency": 25,
    "USAC": 25,
    "aptX": 30,
    "Samsung Scalable": 30,
    "Samsung HD": 35,
    "LHDC LL": 35,
    "aptX HD": 40,
    "aptX Adaptive": 40,
    "LHDC V1": 40,
    "LHDC V2": 45,
    "LDAC": 50,
    "LHDC V3": 50,
    "LHDC V5": 50,
}


@record
class SdpRecord:
    """One service record returned by the peer, summarised."""

    handle: int | None = None
    service_classes: list[str] = field(default_factory=list)  # "0x110B"
    service_names: list[str] = field(default_factory=list)
    classes_from: str | None = None  # "search pattern" when the record lacked its own list
    rfcomm_channel: int | None = None
    name: str | None = None
    device_id: DeviceId | None = None


@record
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
    records: list[SdpRecord] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    error_code: int | None = None
    error_name: str | None = None


@record
class CodecParams:
    """A Media Codec capability or configuration (A2DP §4.3-§4.7, vendor codecs per their
    vendors' published layouts); fields of other codecs stay empty."""

    codec: str
    codec_type: int | None = None
    vendor_id: int | None = None
    vendor_codec_id: int | None = None
    sampling_frequencies: list[int] = field(default_factory=list)
    channel_modes: list[str] = field(default_factory=list)
    block_lengths: list[int] = field(default_factory=list)  # SBC
    subbands: list[int] = field(default_factory=list)
    allocation_methods: list[str] = field(default_factory=list)
    min_bitpool: int | None = None
    max_bitpool: int | None = None
    layers: list[str] = field(default_factory=list)  # MPEG-1,2 Audio
    crc: bool | None = None
    mpf2: bool | None = None
    bitrate_index_mask: int | None = None
    object_types: list[str] = field(default_factory=list)  # AAC
    drc: bool | None = None
    channels: list[int] = field(default_factory=list)
    vbr: bool | None = None
    bitrate: int | None = None


@record
class AvdtpSignalDetails:
    codec: str | None = None  # SET_CONFIGURATION / RECONFIGURE: the codec asked for
    delay_ms: float | None = None  # DELAYREPORT
    failing_seid: int | None = None  # a rejected START / SUSPEND: the SEID it named


@record
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
    details: AvdtpSignalDetails = field(default_factory=AvdtpSignalDetails)


@record
class StreamState:
    state: str
    frame: int
    time_us: int


@record
class MediaChannel:
    local_cid: int | None
    remote_cid: int | None
    inferred: bool = False


@record
class MediaGap:
    from_frame: int
    to_frame: int
    gap_ms: float
    time_us: int


@record
class DelayReport:
    frame: int
    time_us: int
    delay_ms: float


@record
class AvdtpStream:
    connection: str | None
    address: str | None
    acp_seid: int | None
    int_seid: int | None
    codec: str | None
    codec_params: CodecParams | None = None
    configured_by: str | None = None  # "local"/"remote"
    configure_frame: int | None = None
    states: list[StreamState] = field(default_factory=list)
    state: str = "idle"
    media_channel: MediaChannel | None = None
    media_packets: int = 0
    media_bytes: int = 0
    media_first_time_us: int | None = None
    media_last_time_us: int | None = None
    media_rate_pps: float | None = None
    media_bitrate_kbps: float | None = None
    media_gaps: list[MediaGap] = field(default_factory=list)
    delay_reports: list[DelayReport] = field(default_factory=list)
    inferred: bool = False


@record
class StreamEndpoint:
    connection: str | None
    side: str  # "local"/"remote"
    seid: int
    media_type: str
    tsep: str  # "source"/"sink"
    in_use: bool
    codecs: list[CodecParams] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    frame: int | None = None


@record
class ModemStatus:
    """An RFCOMM MSC's V.24 signals (TS 07.10 §5.4.6.3.7)."""

    fc: int
    rtc: int
    rtr: int
    ic: int
    dv: int


@record
class SideCounts:
    local: int = 0
    remote: int = 0


@record
class SideModemStatus:
    local: ModemStatus | None = None
    remote: ModemStatus | None = None


@record
class RfcommDlc:
    """One RFCOMM data link connection (RFCOMM 1.2, TS 07.10)."""

    connection: str | None
    address: str | None
    l2cap_local_cid: int | None
    l2cap_remote_cid: int | None
    initiator: str | None
    dlci: int
    channel: int | None = None
    server: str | None = None
    profile: str | None = None
    profile_source: str | None = None
    first_frame: int | None = None
    sabm_frame: int | None = None
    open_frame: int | None = None
    open_time_us: int | None = None
    rejected_frame: int | None = None
    close_frame: int | None = None
    close_time_us: int | None = None
    closed_by: str | None = None  # the side that sent DISC: local / remote (None: link ended)
    frames: dict[str, int] = field(default_factory=dict)  # by direction
    data_bytes: dict[str, int] = field(default_factory=dict)
    first_data_frame: dict[str, int] = field(default_factory=dict)  # by direction
    last_data_frame: dict[str, int] = field(default_factory=dict)
    first_data_time_us: dict[str, int] = field(default_factory=dict)
    commands: dict[str, int] = field(default_factory=dict)  # multiplexer commands by name
    max_frame_size: int | None = None
    credit_flow: bool | None = None
    initial_credits: SideCounts = field(default_factory=SideCounts)
    credits_granted: SideCounts = field(default_factory=SideCounts)
    msc: SideModemStatus = field(default_factory=SideModemStatus)
    at: bool = False


@record
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


@record
class HfpCall:
    direction: str  # incoming / outgoing / unknown
    start_frame: int
    start_time_us: int
    answered_frame: int | None = None
    end_frame: int | None = None
    end_time_us: int | None = None
    number: str | None = None


@record
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
