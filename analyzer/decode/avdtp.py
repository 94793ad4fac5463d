"""AVDTP signalling (AVDTP 1.3 §8): header, per-signal bodies, rejects and fragment joining.

:func:`decode_avdtp` reads one signalling packet (the L2CAP payload of the AVDTP signalling
channel). Continue/end fragments carry no signal id: collect a start packet and its fragments and
pass them to :func:`join_fragments`, which rebuilds the single-packet form for
:func:`decode_avdtp`. Media codec capabilities are decoded by :mod:`analyzer.decode.a2dp`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from analyzer.decode.a2dp import CodecInfo, decode_codec
from analyzer.decode.base import Buffer, as_bytes, never_raise

PACKET_TYPES: dict[int, str] = {0: "single", 1: "start", 2: "continue", 3: "end"}
MESSAGE_TYPES: dict[int, str] = {0: "command", 1: "general reject", 2: "accept", 3: "reject"}
SIGNALS: dict[int, str] = {
    0x01: "DISCOVER",
    0x02: "GET_CAPABILITIES",
    0x03: "SET_CONFIGURATION",
    0x04: "GET_CONFIGURATION",
    0x05: "RECONFIGURE",
    0x06: "OPEN",
    0x07: "START",
    0x08: "CLOSE",
    0x09: "SUSPEND",
    0x0A: "ABORT",
    0x0B: "SECURITY_CONTROL",
    0x0C: "GET_ALL_CAPABILITIES",
    0x0D: "DELAYREPORT",
}
#: Service categories (AVDTP 1.3 §8.21.1).
CATEGORIES: dict[int, str] = {
    0x01: "Media Transport",
    0x02: "Reporting",
    0x03: "Recovery",
    0x04: "Content Protection",
    0x05: "Header Compression",
    0x06: "Multiplexing",
    0x07: "Media Codec",
    0x08: "Delay Reporting",
}
#: AVDTP 1.3 §8.20.6.2 error codes, then A2DP 1.4 Table 5.5 codec-specific codes.
ERROR_NAMES: dict[int, str] = {
    0x01: "BAD_HEADER_FORMAT",
    0x11: "BAD_LENGTH",
    0x12: "BAD_ACP_SEID",
    0x13: "SEP_IN_USE",
    0x14: "SEP_NOT_IN_USE",
    0x17: "BAD_SERV_CATEGORY",
    0x18: "BAD_PAYLOAD_FORMAT",
    0x19: "NOT_SUPPORTED_COMMAND",
    0x1A: "INVALID_CAPABILITIES",
    0x22: "BAD_RECOVERY_TYPE",
    0x23: "BAD_MEDIA_TRANSPORT_FORMAT",
    0x25: "BAD_RECOVERY_FORMAT",
    0x26: "BAD_ROHC_FORMAT",
    0x27: "BAD_CP_FORMAT",
    0x28: "BAD_MULTIPLEXING_FORMAT",
    0x29: "UNSUPPORTED_CONFIGURATION",
    0x31: "BAD_STATE",
    0xC1: "INVALID_CODEC_TYPE",
    0xC2: "NOT_SUPPORTED_CODEC_TYPE",
    0xC3: "INVALID_SAMPLING_FREQUENCY",
    0xC4: "NOT_SUPPORTED_SAMPLING_FREQUENCY",
    0xC5: "INVALID_CHANNEL_MODE",
    0xC6: "NOT_SUPPORTED_CHANNEL_MODE",
    0xC7: "INVALID_SUBBANDS",
    0xC8: "NOT_SUPPORTED_SUBBANDS",
    0xC9: "INVALID_ALLOCATION_METHOD",
    0xCA: "NOT_SUPPORTED_ALLOCATION_METHOD",
    0xCB: "INVALID_MINIMUM_BITPOOL_VALUE",
    0xCC: "NOT_SUPPORTED_MINIMUM_BITPOOL_VALUE",
    0xCD: "INVALID_MAXIMUM_BITPOOL_VALUE",
    0xCE: "NOT_SUPPORTED_MAXIMUM_BITPOOL_VALUE",
    0xCF: "INVALID_LAYER",
    0xD0: "NOT_SUPPORTED_LAYER",
    0xD1: "NOT_SUPPORTED_CRC",
    0xD2: "NOT_SUPPORTED_MPF",
    0xD3: "NOT_SUPPORTED_VBR",
    0xD4: "INVALID_BIT_RATE",
    0xD5: "NOT_SUPPORTED_BIT_RATE",
    0xD6: "INVALID_OBJECT_TYPE",
    0xD7: "NOT_SUPPORTED_OBJECT_TYPE",
    0xD8: "INVALID_CHANNELS",
    0xD9: "NOT_SUPPORTED_CHANNELS",
    0xDA: "INVALID_VERSION",
    0xDB: "NOT_SUPPORTED_VERSION",
    0xDC: "NOT_SUPPORTED_MAXIMUM_SUL",
    0xDD: "INVALID_BLOCK_LENGTH",
    0xE0: "INVALID_CP_TYPE",
    0xE1: "INVALID_CP_FORMAT",
    0xE2: "INVALID_CODEC_PARAMETER",
    0xE3: "NOT_SUPPORTED_CODEC_PARAMETER",
    0xE4: "INVALID_DRC",
    0xE5: "NOT_SUPPORTED_DRC",
}


def error_name(code: int | None) -> str | None:
    if code is None:
        return None
    return ERROR_NAMES.get(code, f"unknown 0x{code:02X}")


@dataclass(slots=True)
class SepInfo:
    """One stream end-point of a DISCOVER response (AVDTP 1.3 §8.6.2)."""

    seid: int
    in_use: bool
    media_type: int
    tsep: int  # 0 = SRC, 1 = SNK

    @property
    def tsep_name(self) -> str:
        return "SNK" if self.tsep else "SRC"


@dataclass(slots=True)
class ServiceCapability:
    """One service capability element: category, LOSC bytes, and the codec when category 7."""

    category: int
    data: bytes
    codec: CodecInfo | None = None

    @property
    def name(self) -> str:
        return CATEGORIES.get(self.category, f"unknown 0x{self.category:02X}")


@dataclass(slots=True)
class AvdtpPdu:
    """One AVDTP signalling packet (AVDTP 1.3 §8.4)."""

    label: int | None
    packet_type: int | None
    message_type: int | None
    signal_id: int | None = None  # None for continue/end fragments
    nosp: int | None = None  # start packets: number of signal packets
    acp_seid: int | None = None
    int_seid: int | None = None
    seids: list[int] = field(default_factory=list)  # START / SUSPEND commands
    seps: list[SepInfo] = field(default_factory=list)
    capabilities: list[ServiceCapability] = field(default_factory=list)
    delay: int | None = None  # DELAYREPORT, units of 0.1 ms
    error_code: int | None = None
    error_name: str | None = None
    service_category: int | None = None  # SET_CONFIGURATION / RECONFIGURE reject
    body: bytes = b""
    anomaly: str | None = None

    @property
    def packet_type_name(self) -> str | None:
        return None if self.packet_type is None else PACKET_TYPES[self.packet_type]

    @property
    def message_type_name(self) -> str | None:
        return None if self.message_type is None else MESSAGE_TYPES[self.message_type]

    @property
    def signal_name(self) -> str | None:
        s = self.signal_id
        return None if s is None else SIGNALS.get(s, f"unknown 0x{s:02X}")

    @property
    def delay_ms(self) -> float | None:
        return None if self.delay is None else self.delay / 10

    @property
    def codec(self) -> CodecInfo | None:
        """The Media Codec capability, if this packet carries one."""
        for c in self.capabilities:
            if c.codec is not None:
                return c.codec
        return None


def decode_capabilities(data: Buffer) -> tuple[list[ServiceCapability], str | None]:
    """Service capability elements (category, LOSC, data)*: AVDTP 1.3 §8.21."""
    b = as_bytes(data)
    caps: list[ServiceCapability] = []
    i = 0
    while i < len(b):
        if i + 2 > len(b):
            return caps, "service capability header truncated"
        cat, losc = b[i], b[i + 1]
        d = b[i + 2 : i + 2 + losc]
        if len(d) < losc:
            return caps, f"service capability 0x{cat:02X} truncated: {len(d)} of {losc} bytes"
        cap = ServiceCapability(cat, d)
        if cat == 0x07:
            cap.codec = decode_codec(d)
        caps.append(cap)
        i += 2 + losc
    return caps, None


# ------------------------------------------------------------------------------------------------
# per-signal body decoders, keyed by (signal id, message type)

BodyDecoder = Callable[[bytes, AvdtpPdu], None]


def _acp(b: bytes, r: AvdtpPdu) -> None:
    r.acp_seid = b[0] >> 2


def _caps(b: bytes, r: AvdtpPdu) -> None:
    r.capabilities, anomaly = decode_capabilities(b)
    r.anomaly = r.anomaly or anomaly


def _discover_rsp(b: bytes, r: AvdtpPdu) -> None:
    if len(b) % 2:
        r.anomaly = "odd DISCOVER response length"
    r.seps = [
        SepInfo(b[k] >> 2, bool(b[k] & 0x02), b[k + 1] >> 4, (b[k + 1] >> 3) & 1)
        for k in range(0, len(b) - 1, 2)
    ]


def _set_config_cmd(b: bytes, r: AvdtpPdu) -> None:
    r.acp_seid, r.int_seid = b[0] >> 2, b[1] >> 2
    _caps(b[2:], r)


def _reconfigure_cmd(b: bytes, r: AvdtpPdu) -> None:
    r.acp_seid = b[0] >> 2
    _caps(b[1:], r)


def _seids(b: bytes, r: AvdtpPdu) -> None:
    r.seids = [x >> 2 for x in b]
    r.acp_seid = r.seids[0] if r.seids else None


def _delay(b: bytes, r: AvdtpPdu) -> None:
    r.acp_seid = b[0] >> 2
    r.delay = (b[1] << 8) | b[2]


def _security_cmd(b: bytes, r: AvdtpPdu) -> None:
    r.acp_seid = b[0] >> 2


def _err(b: bytes, r: AvdtpPdu) -> None:
    r.error_code = b[0]
    r.error_name = error_name(b[0])


def _category_err(b: bytes, r: AvdtpPdu) -> None:
    r.service_category = b[0]
    r.error_code = b[1]
    r.error_name = error_name(b[1])


def _seid_err(b: bytes, r: AvdtpPdu) -> None:
    r.acp_seid = b[0] >> 2
    r.error_code = b[1]
    r.error_name = error_name(b[1])


CMD, ACCEPT, REJECT = 0, 2, 3

#: (signal id, message type) -> (minimum body length, decoder). AVDTP 1.3 §8.6-8.19.
BODIES: dict[tuple[int, int], tuple[int, BodyDecoder]] = {
    (0x01, ACCEPT): (2, _discover_rsp),
    (0x02, CMD): (1, _acp),
    (0x02, ACCEPT): (0, _caps),
    (0x0C, CMD): (1, _acp),
    (0x0C, ACCEPT): (0, _caps),
    (0x03, CMD): (2, _set_config_cmd),
    (0x03, REJECT): (2, _category_err),
    (0x04, CMD): (1, _acp),
    (0x04, ACCEPT): (0, _caps),
    (0x05, CMD): (1, _reconfigure_cmd),
    (0x05, REJECT): (2, _category_err),
    (0x06, CMD): (1, _acp),
    (0x07, CMD): (1, _seids),
    (0x07, REJECT): (2, _seid_err),
    (0x08, CMD): (1, _acp),
    (0x09, CMD): (1, _seids),
    (0x09, REJECT): (2, _seid_err),
    (0x0A, CMD): (1, _acp),
    (0x0B, CMD): (1, _security_cmd),
    (0x0D, CMD): (3, _delay),
}
for _sig in SIGNALS:  # every other reject carries just the error code
    BODIES.setdefault((_sig, REJECT), (1, _err))


def _raw_avdtp(data: Buffer, anomaly: str | None = None) -> AvdtpPdu:
    return AvdtpPdu(None, None, None, anomaly=anomaly)


@never_raise(_raw_avdtp)
def decode_avdtp(data: Buffer) -> AvdtpPdu:
    """Decode one AVDTP signalling packet."""
    b = as_bytes(data)
    if not b:
        return AvdtpPdu(None, None, None, anomaly="empty AVDTP packet")
    h = b[0]
    r = AvdtpPdu(h >> 4, (h >> 2) & 3, h & 3)
    if r.packet_type in (2, 3):  # continue / end: no signal id
        r.body = b[1:]
        return r
    if r.packet_type == 1:
        if len(b) < 3:
            r.anomaly = f"short start packet: {len(b)} < 3 bytes"
            return r
        r.nosp = b[1]
        sig_byte, body = b[2], b[3:]
    else:
        if len(b) < 2:
            r.anomaly = "signal id missing"
            return r
        sig_byte, body = b[1], b[2:]
    r.signal_id = sig_byte & 0x3F
    r.body = body
    if r.signal_id not in SIGNALS:
        r.anomaly = f"unknown signal id 0x{r.signal_id:02X}"
        return r
    if r.packet_type == 1:
        return r  # body incomplete: join fragments first
    if r.message_type == 1:
        return r  # general reject: header only
    row = BODIES.get((r.signal_id, h & 3))
    if row is None:
        if body:
            r.anomaly = f"unexpected {len(body)} body bytes"
        return r
    min_len, dec = row
    if len(body) < min_len:
        r.anomaly = f"{r.signal_name} {r.message_type_name} too short: {len(body)} < {min_len}"
        return r
    dec(body, r)
    return r


def join_fragments(fragments: list[bytes]) -> tuple[bytes, str | None]:
    """Join a start packet and its continue/end packets into the single-packet form.

    Returns (packet, anomaly); feed the packet to :func:`decode_avdtp`. Never raises.
    """
    try:
        if not fragments or len(fragments[0]) < 3:
            return b"", "no start packet"
        first = fragments[0]
        h = first[0]
        anomaly = None
        if (h >> 2) & 3 != 1:
            anomaly = "first fragment is not a start packet"
        label = h >> 4
        parts = [bytes([(h & 0xF3), first[2]]), first[3:]]
        for k, frag in enumerate(fragments[1:], start=1):
            if not frag:
                anomaly = anomaly or f"fragment {k} is empty"
                continue
            pt = (frag[0] >> 2) & 3
            if frag[0] >> 4 != label:
                anomaly = anomaly or f"fragment {k} has another transaction label"
            want = 3 if k == len(fragments) - 1 else 2
            if pt != want:
                anomaly = anomaly or f"fragment {k} is {PACKET_TYPES[pt]}, not {PACKET_TYPES[want]}"
            parts.append(frag[1:])
        if first[1] != len(fragments):
            anomaly = anomaly or f"NOSP {first[1]} but {len(fragments)} fragments"
        return b"".join(parts), anomaly
    except Exception as exc:
        return b"", f"decoder error: {type(exc).__name__}: {exc}"
