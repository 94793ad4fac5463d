"""The A2DP negotiation matrix (issue 21): per remote stream endpoint, what it advertised
(GET_(ALL_)CAPABILITIES: codec, sampling rates, channel modes, block lengths, subbands,
allocation, bitpool range, AAC object types / channels / bit rate / VBR, vendor codec ids)
against the configuration the source chose (SET_CONFIGURATION) and the answer (accepted, or
rejected with its error code), with every configured value outside the advertised capabilities
flagged. From the stored :class:`~analyzer.model.Analysis` only.

The rule for each field follows A2DP 1.4 §4.3.2 (SBC), §4.4.2 (MPEG-1,2), §4.5.2 (AAC) and
§4.7.2 (vendor): a configuration selects one of the values the capability offered; the SBC
bitpool range configured lies within the advertised range (§4.3.2.6); the AAC bit rate
configured is at most the one advertised, and VBR only where VBR was offered (§4.5.2.5-6);
a vendor configuration names the same vendor and codec id (§4.7.2.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.model import Analysis, AvdtpStream, CodecParams, StreamEndpoint

#: the matrix's columns
COLUMNS = (
    "codec",
    "sampling rate",
    "channel mode",
    "block length",
    "subbands",
    "allocation",
    "bitpool",
    "layer",
    "object type",
    "channels",
    "bit rate",
    "vendor",
)
#: list fields where a configuration picks one (or more) of the advertised values
CHOICE_FIELDS = (
    ("sampling_frequencies", "sampling rate"),
    ("channel_modes", "channel mode"),
    ("block_lengths", "block length"),
    ("subbands", "subbands"),
    ("allocation_methods", "allocation"),
    ("layers", "layer"),
    ("object_types", "object type"),
    ("channels", "channels"),
)


@dataclass
class Answer:
    codec: str | None
    frame: int | None
    answer: str  # accepted / rejected / general_reject / no answer
    error: str | None = None
    direction: str | None = None  # of the command: sent (by the capturing host) / received


@dataclass
class Row:
    """One remote stream endpoint and what happened to it."""

    connection: str | None
    address: str | None
    seid: int
    tsep: str
    in_use: bool
    caps: CodecParams | None
    caps_frame: int | None
    config: CodecParams | None = None
    config_frame: int | None = None
    configured_by: str | None = None
    answers: list[Answer] = field(default_factory=list)
    flags: list[tuple[str, str]] = field(default_factory=list)  # (column, what is wrong)
    media_packets: int | None = None

    @property
    def rejected(self) -> bool:
        return any(x.answer != "accepted" for x in self.answers)


def _fmt_hz(v: int) -> str:
    return f"{v / 1000:g} kHz"


def values(p: CodecParams | None) -> dict[str, str]:
    """A codec capability or configuration as text per column."""
    if p is None:
        return {}
    out: dict[str, str] = {"codec": p.codec}
    if p.sampling_frequencies:
        out["sampling rate"] = ", ".join(_fmt_hz(v) for v in p.sampling_frequencies)
    for name, col in CHOICE_FIELDS[1:]:
        vs = getattr(p, name)
        if vs:
            out[col] = ", ".join(str(v) for v in vs)
    if p.min_bitpool is not None or p.max_bitpool is not None:
        out["bitpool"] = f"{p.min_bitpool}–{p.max_bitpool}"
    if p.bitrate is not None:
        out["bit rate"] = f"{p.bitrate / 1000:g} kb/s" + (" VBR" if p.vbr else "")
    elif p.vbr is not None:
        out["bit rate"] = "VBR" if p.vbr else "CBR"
    if p.vendor_id is not None:
        out["vendor"] = f"0x{p.vendor_id:04X}/0x{(p.vendor_codec_id or 0):04X}"
    return out


def check(caps: CodecParams, config: CodecParams) -> list[tuple[str, str]]:
    """What in ``config`` lies outside ``caps`` (A2DP 1.4 §4.3.2-§4.7.2): (column, why)."""
    out: list[tuple[str, str]] = []
    if caps.codec != config.codec:
        return [
            ("codec", f"codec {config.codec} configured on an endpoint that offered {caps.codec}")
        ]
    for name, what in CHOICE_FIELDS:
        offered, chosen = getattr(caps, name), getattr(config, name)
        if not offered or not chosen:
            continue
        extra = [v for v in chosen if v not in offered]
        if extra:
            shown = [_fmt_hz(v) if name == "sampling_frequencies" else str(v) for v in extra]
            out.append((what, f"{what} {', '.join(shown)} not offered"))
    lo, hi = caps.min_bitpool, caps.max_bitpool
    if lo is not None and config.min_bitpool is not None and config.min_bitpool < lo:
        out.append(
            (
                "bitpool",
                f"minimum bitpool {config.min_bitpool} below the offered {caps.min_bitpool}",
            )
        )
    if hi is not None and config.max_bitpool is not None and config.max_bitpool > hi:
        out.append(
            (
                "bitpool",
                f"maximum bitpool {config.max_bitpool} above the offered {caps.max_bitpool}",
            )
        )
    if caps.bitrate and config.bitrate and config.bitrate > caps.bitrate:
        out.append(("bit rate", f"bit rate {config.bitrate} above the offered {caps.bitrate}"))
    if config.vbr and caps.vbr is False:
        out.append(("bit rate", "VBR configured but not offered"))
    if caps.vendor_id is not None and (
        config.vendor_id != caps.vendor_id or config.vendor_codec_id != caps.vendor_codec_id
    ):
        out.append(("vendor", "vendor codec differs from the one offered"))
    return out


def _answers(a: Analysis, conn: str | None, seid: int) -> list[Answer]:
    out = []
    for s in a.avdtp.signals:
        if (
            s.connection != conn
            or s.seid != seid
            or s.signal not in ("SET_CONFIGURATION", "RECONFIGURE")
        ):
            continue
        ans = {"accept": "accepted", "reject": "rejected", "general_reject": "general_reject"}
        out.append(
            Answer(
                s.details.codec,
                s.command_frame,
                ans.get(s.response or "", "no answer"),
                s.error_name or (f"0x{s.error_code:02X}" if s.error_code is not None else None),
                s.direction,
            )
        )
    return out


def _stream(a: Analysis, ep: StreamEndpoint) -> AvdtpStream | None:
    got = [s for s in a.avdtp.streams if s.connection == ep.connection and s.acp_seid == ep.seid]
    return got[-1] if got else None


def matrix(a: Analysis, address: str | None = None) -> list[Row]:
    """One row per remote stream endpoint (of one device when ``address``)."""
    addr_of = {c.id: c.address for c in a.connections}
    rows: list[Row] = []
    for ep in a.avdtp.endpoints:
        if ep.side != "remote":
            continue
        addr = addr_of.get(ep.connection or "")
        if address is not None and addr != address:
            continue
        caps = ep.codecs[0] if ep.codecs else None
        row = Row(ep.connection, addr, ep.seid, ep.tsep, ep.in_use, caps, ep.frame)
        st = _stream(a, ep)
        if st is not None:
            row.config, row.config_frame = st.codec_params, st.configure_frame
            row.configured_by, row.media_packets = st.configured_by, st.media_packets
        row.answers = _answers(a, ep.connection, ep.seid)
        if caps is not None and row.config is not None:
            row.flags = check(caps, row.config)
        rows.append(row)
    return rows


__all__ = ["COLUMNS", "Answer", "Row", "check", "matrix", "values"]
