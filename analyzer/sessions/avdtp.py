"""AVDTP/A2DP sessions: signals with their responses, stream endpoints, stream state machines,
and the media channel's packet count, rate, bitrate and gaps (columnar).

AVDTP 1.3: a response carries its command's transaction label (§8.4.1); fragmented signals
(start/continue/end, §8.4.3) are joined first; the ACP SEID of a command is the receiver's
endpoint; stream states idle → configured → open → streaming (§5.4, §9). The first L2CAP channel
on PSM 0x19 is signalling, the next one carries the stream's media (§5.4.6). Delay reports are
big-endian u16 in 0.1 ms (§8.19).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from analyzer.decode.a2dp import CodecInfo
from analyzer.decode.avdtp import AvdtpPdu, decode_avdtp, join_fragments
from analyzer.model import (
    AvdtpSignal,
    AvdtpStream,
    CodecParams,
    DelayReport,
    MediaChannel,
    MediaGap,
    StreamEndpoint,
    StreamState,
    TimelineEvent,
)
from analyzer.model.base import field_types
from analyzer.sessions.build import BuildContext, media_frames, stage
from analyzer.sessions.l2cap import Pdu, on_psm

RESPONSES = {1: "general_reject", 2: "accept", 3: "reject"}
#: the state an accepted signal leads to
NEXT_STATE = {3: "configured", 6: "open", 7: "streaming", 9: "open", 8: "idle", 0x0A: "idle"}
#: gaps in media shorter than this are not recorded
MIN_GAP_MS = 100.0


@dataclass
class AvdtpIndex:
    """The latest endpoint and stream by what signals address them by (shared by the AVDTP
    channels of a capture): a dict look-up per signal, not a scan of every endpoint or stream
    (issue 18 §2)."""

    endpoints: dict[tuple[str, str, int | None], StreamEndpoint] = field(default_factory=dict)
    streams: dict[tuple[str, str | None, int | None], AvdtpStream] = field(default_factory=dict)

    def add_endpoint(self, ctx: BuildContext, ep: StreamEndpoint) -> None:
        ctx.analysis.avdtp_endpoints.append(ep)
        self.endpoints[(ep.connection or "", ep.side, ep.seid)] = ep

    def add_stream(self, ctx: BuildContext, st: AvdtpStream) -> None:
        ctx.analysis.avdtp_streams.append(st)
        conn = st.connection or ""
        remote = st.acp_seid if st.configured_by == "local" else st.int_seid
        local = st.int_seid if st.configured_by == "local" else st.acp_seid
        self.streams[(conn, None, None)] = st
        self.streams[(conn, "remote", remote)] = st
        self.streams[(conn, "local", local)] = st


@dataclass
class AvdtpSession:
    ctx: BuildContext
    _frags: dict[str, list[bytes]] = field(default_factory=dict)
    _pending: dict[tuple[str, int], AvdtpSignal] = field(default_factory=dict)
    _cmd_pdus: dict[int, AvdtpPdu] = field(default_factory=dict)  # id(signal) → command PDU

    def on_pdu(self, pdu: Pdu) -> None:
        raw = pdu.payload
        if not raw:
            return
        ptype = (raw[0] >> 2) & 3
        if ptype == 1:
            self._frags[pdu.direction] = [raw]
            return
        if ptype in (2, 3):
            frags = self._frags.get(pdu.direction)
            if frags is None:
                self.ctx.anomaly(pdu.frame, "avdtp", "AVDTP fragment without a start packet")
                return
            frags.append(raw)
            if ptype == 2:
                return
            raw, anomaly = join_fragments(self._frags.pop(pdu.direction))
            if anomaly:
                self.ctx.anomaly(pdu.frame, "avdtp", f"fragmented signal: {anomaly}")
        rec = decode_avdtp(raw)
        if rec.anomaly:
            self.ctx.anomaly(pdu.frame, "avdtp", rec.anomaly)
        if rec.message_type is None or rec.label is None:
            return
        if rec.message_type == 0:
            self._command(rec, pdu)
        else:
            self._response(rec, pdu)

    # -- commands and responses ---------------------------------------------------------------
    def _command(self, rec: AvdtpPdu, pdu: Pdu) -> None:
        sid = rec.signal_id or 0
        sig = AvdtpSignal(
            connection=pdu.connection.id,
            signal=rec.signal_name or f"0x{sid:02X}",
            signal_id=sid,
            label=rec.label or 0,
            direction=pdu.direction,
            command_frame=pdu.frame,
            command_time_us=pdu.time_us,
            seid=rec.acp_seid
            if rec.acp_seid is not None
            else (rec.seids[0] if rec.seids else None),
            int_seid=rec.int_seid,
        )
        codec = rec.codec
        if codec is not None:
            sig.details.codec = codec.codec_name
        if rec.delay is not None:
            sig.details.delay_ms = rec.delay / 10
        self.ctx.analysis.avdtp_signals.append(sig)
        self._pending[(pdu.direction, rec.label or 0)] = sig
        who = "local" if pdu.direction == "sent" else "remote"
        self._timeline(pdu, sig, f"AVDTP {sig.signal} ({who})", "info")
        self._cmd_pdus[id(sig)] = rec
        if sid == 0x0D and rec.delay is not None:  # DELAYREPORT
            st = self._stream_for(pdu, rec.acp_seid, pdu.direction)
            if st is not None:
                st.delay_reports.append(DelayReport(pdu.frame, pdu.time_us, rec.delay / 10))

    def _response(self, rec: AvdtpPdu, pdu: Pdu) -> None:
        cmd_dir = "received" if pdu.direction == "sent" else "sent"
        sig = self._pending.pop((cmd_dir, rec.label or 0), None)
        if sig is None or (rec.signal_id is not None and rec.signal_id != sig.signal_id):
            if sig is not None:
                self._pending[(cmd_dir, rec.label or 0)] = sig
            self.ctx.anomaly(
                pdu.frame, "avdtp", f"{rec.signal_name} {rec.message_type_name} with no command"
            )
            return
        sig.response = RESPONSES.get(rec.message_type or 0)
        sig.response_frame = pdu.frame
        sig.response_time_us = pdu.time_us
        sig.latency_ms = (pdu.time_us - (sig.command_time_us or pdu.time_us)) / 1000
        cmd = self._cmd_pdus.pop(id(sig), None)
        if rec.message_type == 3:
            sig.error_code, sig.error_name = rec.error_code, rec.error_name
            sig.service_category = rec.service_category
            if rec.acp_seid is not None:
                sig.details.failing_seid = rec.acp_seid
            self._timeline(pdu, sig, f"AVDTP {sig.signal} rejected: {sig.error_name}", "error")
            return
        if rec.message_type == 1:
            self._timeline(pdu, sig, f"AVDTP {sig.signal}: general reject", "warning")
            return
        self._accepted(sig, cmd, rec, pdu)

    def _accepted(self, sig: AvdtpSignal, cmd: AvdtpPdu | None, rsp: AvdtpPdu, pdu: Pdu) -> None:
        sid = sig.signal_id
        conn = pdu.connection
        responder_side = "remote" if pdu.direction == "received" else "local"
        if sid == 0x01:  # DISCOVER
            for sep in rsp.seps:
                self.ctx.shared(AvdtpIndex).add_endpoint(
                    self.ctx,
                    StreamEndpoint(
                        connection=conn.id,
                        side=responder_side,
                        seid=sep.seid,
                        media_type={0: "audio", 1: "video", 2: "multimedia"}.get(
                            sep.media_type, str(sep.media_type)
                        ),
                        tsep="sink" if sep.tsep else "source",
                        in_use=sep.in_use,
                        frame=pdu.frame,
                    ),
                )
        elif sid in (0x02, 0x0C):  # GET_(ALL_)CAPABILITIES
            ep = self._endpoint(conn.id, responder_side, sig.seid)
            if ep is not None:
                ep.capabilities = [c.name for c in rsp.capabilities]
                ep.codecs = [
                    _codec_params(c.codec) for c in rsp.capabilities if c.codec is not None
                ]
        elif sid in (0x03, 0x05) and cmd is not None:  # SET_CONFIGURATION / RECONFIGURE
            codec = cmd.codec
            if sid == 0x03:
                st = AvdtpStream(
                    connection=conn.id,
                    address=conn.address,
                    acp_seid=cmd.acp_seid,
                    int_seid=cmd.int_seid,
                    codec=codec.codec_name if codec else None,
                    codec_params=_codec_params(codec) if codec else None,
                    configured_by="local" if sig.direction == "sent" else "remote",
                    configure_frame=sig.command_frame,
                )
                self.ctx.shared(AvdtpIndex).add_stream(self.ctx, st)
                self._state(st, "configured", pdu)
            else:
                st_opt = self._stream_for(pdu, sig.seid, sig.direction)
                if st_opt is not None and codec is not None:
                    st_opt.codec = codec.codec_name
                    st_opt.codec_params = _codec_params(codec)
        elif sid in NEXT_STATE:
            seids = cmd.seids if cmd is not None and cmd.seids else [sig.seid]
            for seid in seids:
                st2 = self._stream_for(pdu, seid, sig.direction)
                if st2 is not None:
                    self._state(st2, NEXT_STATE[sid], pdu)

    # -- helpers -------------------------------------------------------------------------------
    def _endpoint(self, conn_id: str, side: str, seid: int | None) -> StreamEndpoint | None:
        index = self.ctx.shared(AvdtpIndex)
        found = index.endpoints.get((conn_id, side, seid))
        if found is not None:
            return found
        if seid is None:
            return None
        ep = StreamEndpoint(
            connection=conn_id,
            side=side,
            seid=seid,
            media_type="audio",
            tsep="unknown",
            in_use=False,
        )
        index.add_endpoint(self.ctx, ep)
        return ep

    def _stream_for(self, pdu: Pdu, acp_seid: int | None, cmd_direction: str) -> AvdtpStream | None:
        """The stream a command addresses: its ACP SEID is the receiver's endpoint."""
        receiver = "remote" if cmd_direction == "sent" else "local"
        key = (pdu.connection.id, None, None) if acp_seid is None else None
        return self.ctx.shared(AvdtpIndex).streams.get(
            key or (pdu.connection.id, receiver, acp_seid)
        )

    def _state(self, st: AvdtpStream, state: str, pdu: Pdu) -> None:
        st.state = state
        st.states.append(StreamState(state, pdu.frame, pdu.time_us))
        self.ctx.analysis.timeline.append(
            TimelineEvent(
                pdu.time_us,
                pdu.frame,
                pdu.connection.id,
                "stream_state",
                f"A2DP stream {st.codec or ''} {state}",
            )
        )

    def _timeline(self, pdu: Pdu, sig: AvdtpSignal, text: str, sev: str) -> None:
        self.ctx.analysis.timeline.append(
            TimelineEvent(pdu.time_us, pdu.frame, pdu.connection.id, "avdtp", text, sev)
        )


_CODEC_FIELDS = frozenset(n for n, _ in field_types(CodecParams))


def _codec_params(codec: CodecInfo) -> CodecParams:
    """The model's view of a decoded Media Codec element (raw byte fields left out)."""
    known = {k: v for k, v in codec.fields.items() if k in _CODEC_FIELDS}
    return CodecParams(
        codec=codec.codec_name,
        codec_type=codec.codec_type,
        vendor_id=codec.vendor_id,
        vendor_codec_id=codec.vendor_codec_id,
        **known,
    )


@on_psm(0x19)
def _factory(ctx: BuildContext) -> AvdtpSession:
    return AvdtpSession(ctx)


@stage("a2dp_media", reads_acl=True)
def media_stats(ctx: BuildContext) -> None:
    """Tie media channels to streams and count their packets, rate, bitrate and gaps."""
    analysis = ctx.analysis
    chans = ctx.table.channels
    media = [i for i, ch in enumerate(chans) if ch.role == "avdtp_media"]
    if not media:
        return
    mf = media_frames(ctx, media)
    # one channel's frames are the whole table (no partition copy of millions of rows)
    one = mf.height > 0 and mf["chan_no"].n_unique() == 1
    frames_of = (
        {(int(mf["chan_no"][0]),): mf}
        if one
        else mf.partition_by("chan_no", as_dict=True)
        if mf.height
        else {}
    )
    by_conn: dict[str, list[int]] = {}
    for i in media:
        by_conn.setdefault(chans[i].connection, []).append(i)
    opened: dict[str | None, list[AvdtpStream]] = {}
    for s in analysis.avdtp_streams:
        if any(x.state == "open" for x in s.states):
            opened.setdefault(s.connection, []).append(s)
    for conn_id, chan_nos in by_conn.items():
        streams = opened.get(conn_id, [])
        streams.sort(key=lambda s: next(x.frame for x in s.states if x.state == "open"))
        for k, chn in enumerate(chan_nos):
            ch = chans[chn]
            if k < len(streams):
                st = streams[k]
            else:
                conn = analysis.connection(conn_id)
                st = AvdtpStream(
                    connection=conn_id,
                    address=conn.address if conn else None,
                    acp_seid=None,
                    int_seid=None,
                    codec=None,
                    inferred=True,
                )
                analysis.avdtp_streams.append(st)
            st.media_channel = MediaChannel(ch.local_cid, ch.remote_cid, ch.inferred)
            _fill_media(st, frames_of.get((chn,), mf.clear()))


def _fill_media(st: AvdtpStream, f: pl.DataFrame) -> None:
    """Packets, bytes, rate and the gaps of one media channel's PDUs (``f``: its frames in
    order). Columnar without copies of the columns: a night's stream has millions of packets."""
    if f.height == 0:
        return
    t = f["time_us"]
    first, last = int(t[0]), int(t[-1])  # type: ignore[arg-type]
    st.media_packets = f.height
    st.media_bytes = int(f["l2cap_len"].clip(lower_bound=0).sum())
    st.media_first_time_us = first
    st.media_last_time_us = last
    span = (last - first) / 1e6
    if span > 0:
        st.media_rate_pps = round(f.height / span, 2)
        st.media_bitrate_kbps = round(st.media_bytes * 8 / span / 1000, 1)
    if f.height > 1:
        gap_ms = pl.col("time_us").diff() / 1000.0
        big = (
            f.lazy()
            .select(
                pl.col("index").shift(1).alias("from"),
                pl.col("index").alias("to"),
                gap_ms.alias("ms"),
                pl.col("time_us").shift(1).alias("at"),
            )
            .filter(pl.col("ms") >= MIN_GAP_MS)
            .head(500)
            .collect(engine="streaming")
        )
        st.media_gaps = [
            MediaGap(int(a), int(b), round(float(ms), 1), int(at))
            for a, b, ms, at in big.iter_rows()
        ]
