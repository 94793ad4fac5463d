"""RFCOMM sessions: one multiplexer per L2CAP channel on PSM 0x0003, its DLCs, and the HFP/HSP
sessions riding on them.

RFCOMM 1.2 §5.2.1: the device that sends SABM on DLCI 0 is the initiator. §5.1.3 / TS 07.10
§5.2.1.2: a command (SABM, DISC, and every UIH in RFCOMM) carries C/R = 1 when sent by the
initiator, a response (UA, DM) C/R = 1 when sent by the responder. §5.4: DLCI = server channel × 2
+ D, where D = 0 for a server on the non-initiating device and 1 for one on the initiator — so the
side that owns the server channel (and registered it in SDP) follows from D and the initiator.
PN (§5.5.3) negotiates the frame size and credit based flow control (CL 0xF / 0xE, initial credits
in K, §6.5.1). The profile of a DLC comes from the SDP record of its server channel (protocol
descriptor list, RFCOMM channel); without SDP, an AT exchange with AT+BRSF / +CIEV / AT+CKPD
(HFP 1.9 §4.2, HSP 1.2 §4.2) says HFP or HSP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.decode.at import LineSplitter, looks_like_at
from analyzer.decode.rfcomm import RfcommFrame, decode_rfcomm
from analyzer.model import (
    Connection,
    HfpSession,
    L2capChannel,
    ModemStatus,
    RfcommDlc,
    SideCounts,
    SideModemStatus,
)
from analyzer.sessions.build import BuildContext, stage
from analyzer.sessions.hfp import HfpTracker
from analyzer.sessions.l2cap import Pdu, on_psm
from analyzer.sessions.sdp import SdpIndex

#: SDP service name → (profile, role of the device that registered the record)
SERVICE_PROFILES: dict[str, tuple[str, str]] = {
    "Handsfree": ("hfp", "hf"),
    "Handsfree Audio Gateway": ("hfp", "ag"),
    "Headset": ("hsp", "hs"),
    "Headset HS": ("hsp", "hs"),
    "Headset Audio Gateway": ("hsp", "ag"),
}


@dataclass
class Dlc:
    """One data link connection (TS 07.10 §5.4.1) within a multiplexer."""

    dlci: int
    first_frame: int
    server: str | None = None  # side owning the server channel: local / remote
    sabm_frame: int | None = None
    sabm_by: str | None = None  # local / remote
    open_frame: int | None = None
    open_time_us: int | None = None
    rejected_frame: int | None = None  # DM answering SABM
    close_frame: int | None = None
    close_time_us: int | None = None
    disc_by: str | None = None  # the side that sent DISC (local / remote)
    pn_frame: int | None = None  # the first PN command for this DLC
    max_frame_size: int | None = None
    credit_flow: bool | None = None
    initial_credits: dict[str, int] = field(default_factory=dict)  # granted by local / remote
    credits_granted: dict[str, int] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)  # per direction
    data_bytes: dict[str, int] = field(default_factory=dict)
    first_data: dict[str, int] = field(default_factory=dict)  # first data frame per direction
    last_data: dict[str, int] = field(default_factory=dict)
    first_data_time: dict[str, int] = field(default_factory=dict)
    msc: dict[str, dict[str, int]] = field(default_factory=dict)  # last MSC signals per side
    profile: str | None = None  # hfp / hsp / SDP service name
    profile_source: str | None = None  # sdp / inferred
    server_role: str | None = None  # hf / ag / hs from the SDP record
    at: bool | None = None  # carries AT commands
    tracker: HfpTracker | None = None
    splitters: dict[str, LineSplitter] = field(default_factory=dict)

    @property
    def channel(self) -> int:
        return self.dlci >> 1


@dataclass
class RfcommMux:
    """The RFCOMM multiplexer of one L2CAP channel (a PDU consumer)."""

    ctx: BuildContext
    connection: Connection | None = None
    channel: L2capChannel | None = None
    initiator: str | None = None  # local / remote
    dlcs: dict[int, Dlc] = field(default_factory=dict)
    mcc_counts: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    anomalies: int = 0
    other_half: L2capChannel | None = None  # inferred channel of the other direction

    def __post_init__(self) -> None:
        self.ctx.shared(RfcommState).muxes.append(self)

    # -- input -------------------------------------------------------------------------------
    def on_pdu(self, pdu: Pdu) -> None:
        if pdu.channel is not None and pdu.channel.inferred:
            # a channel whose setup was not captured is known per direction only (one CID
            # each): both halves on one ACL are the one RFCOMM session (RFCOMM 1.2 §5.2)
            halves = self.ctx.shared(RfcommState).inferred_owner
            owner = halves.setdefault(pdu.connection.id, self)
            if owner is not self:
                owner.other_half = pdu.channel
                owner.on_pdu(Pdu(**{**vars(pdu), "channel": owner.channel}))
                return
        self.connection = pdu.connection
        self.channel = pdu.channel
        self.frames += 1
        raw = pdu.payload
        dlci_guess = raw[0] >> 2 if raw else None
        dlc0 = self.dlcs.get(dlci_guess) if dlci_guess is not None else None
        cfc = True if dlc0 is None or dlc0.credit_flow is None else dlc0.credit_flow
        f = decode_rfcomm(raw, cfc)
        if f.anomaly and not pdu.truncated:
            self.anomalies += 1
            self.ctx.anomaly(pdu.frame, "rfcomm", f"{f.frame_name or 'RFCOMM'}: {f.anomaly}")
        if f.dlci is None or f.frame_type is None or f.cr is None:
            return
        sender = "local" if pdu.direction == "sent" else "remote"
        other = "remote" if sender == "local" else "local"
        if self.initiator is None:
            if f.frame_type in (0x2F, 0x43, 0xEF):  # commands: C/R = 1 from the initiator
                self.initiator = sender if f.cr else other
            elif f.frame_type in (0x63, 0x0F):  # responses: C/R = 1 from the responder
                self.initiator = other if f.cr else sender
        dlc = self._dlc(f.dlci, pdu.frame)
        dlc.frames[pdu.direction] = dlc.frames.get(pdu.direction, 0) + 1
        ft = f.frame_type
        if ft == 0x2F:  # SABM
            dlc.sabm_frame, dlc.sabm_by = pdu.frame, sender
        elif ft == 0x63:  # UA: to SABM or DISC
            if dlc.sabm_frame is not None and dlc.open_frame is None and dlc.sabm_by == other:
                dlc.open_frame, dlc.open_time_us = pdu.frame, pdu.time_us
            elif dlc.open_frame is not None or dlc.sabm_frame is None:
                self._closed(dlc, pdu)
        elif ft == 0x0F:  # DM
            # a refusal answers SABM, or the PN that precedes it (TS 07.10 §5.4.6.3.1)
            if dlc.open_frame is None and (dlc.sabm_frame is not None or dlc.pn_frame is not None):
                dlc.rejected_frame = pdu.frame
            else:
                self._closed(dlc, pdu)
        elif ft == 0x43:  # DISC
            for d in list(self.dlcs.values()) if f.dlci == 0 else [dlc]:
                if d.close_frame is None and d.disc_by is None:
                    d.disc_by = sender
        elif ft == 0xEF:
            if f.dlci == 0:
                self._mcc(f, pdu, sender)
            else:
                self._data(dlc, f, pdu, sender)

    def _dlc(self, dlci: int, frame: int) -> Dlc:
        dlc = self.dlcs.get(dlci)
        if dlc is None:
            dlc = self.dlcs[dlci] = Dlc(dlci, frame)
        if dlc.server is None and dlci and self.initiator is not None:
            resp = "remote" if self.initiator == "local" else "local"
            dlc.server = self.initiator if dlci & 1 else resp
        return dlc

    def _closed(self, dlc: Dlc, pdu: Pdu) -> None:
        targets = list(self.dlcs.values()) if dlc.dlci == 0 else [dlc]
        for d in targets:
            if d.close_frame is None:
                d.close_frame, d.close_time_us = pdu.frame, pdu.time_us
                if d.tracker is not None:
                    d.tracker.close(pdu.frame, pdu.time_us)

    # -- multiplexer commands ----------------------------------------------------------------
    def _mcc(self, f: RfcommFrame, pdu: Pdu, sender: str) -> None:
        for m in f.mcc:
            key = m.name + (" cmd" if m.cr else " rsp")
            self.mcc_counts[key] = self.mcc_counts.get(key, 0) + 1
            dlci = m.fields.get("dlci")
            if not isinstance(dlci, int) or dlci == 0:
                continue
            d = self._dlc(dlci, pdu.frame)
            if m.name == "PN":
                if m.cr and d.pn_frame is None:
                    d.pn_frame = pdu.frame
                d.max_frame_size = m.fields["max_frame_size"]
                cl = m.fields["convergence_layer"]
                if m.cr:
                    d.credit_flow = cl == 0x0F
                else:
                    d.credit_flow = cl == 0x0E
                if cl in (0x0E, 0x0F):
                    d.initial_credits[sender] = m.fields["credits"]
            elif m.name == "MSC" and m.cr:
                d.msc[sender] = {k: m.fields[k] for k in ("fc", "rtc", "rtr", "ic", "dv")}

    # -- data --------------------------------------------------------------------------------
    def _data(self, dlc: Dlc, f: RfcommFrame, pdu: Pdu, sender: str) -> None:
        if f.credits is not None:
            dlc.credits_granted[sender] = dlc.credits_granted.get(sender, 0) + f.credits
        if not f.payload:
            return
        dlc.data_bytes[pdu.direction] = dlc.data_bytes.get(pdu.direction, 0) + len(f.payload)
        dlc.first_data.setdefault(pdu.direction, pdu.frame)
        dlc.first_data_time.setdefault(pdu.direction, pdu.time_us)
        dlc.last_data[pdu.direction] = pdu.frame
        if dlc.at is None:
            self._classify(dlc, f.payload, pdu)
        if not dlc.at or dlc.tracker is None:
            return
        sp = dlc.splitters.setdefault(pdu.direction, LineSplitter())
        for line in sp.feed(f.payload):
            dlc.tracker.on_line(line, pdu.direction, pdu.frame, pdu.time_us)

    def _classify(self, dlc: Dlc, payload: bytes, pdu: Pdu) -> None:
        self._sdp_profile(dlc)
        if dlc.profile_source == "sdp":
            dlc.at = dlc.profile in ("hfp", "hsp")
        else:
            dlc.at = looks_like_at(payload)
        if not dlc.at:
            return
        conn = pdu.connection
        server_local = dlc.server == "local"
        local_role = "?"
        if dlc.server_role is not None and dlc.server is not None:
            if server_local:
                local_role = dlc.server_role
            else:
                local_role = "ag" if dlc.server_role in ("hf", "hs") else "hf"
                if dlc.profile == "hsp" and local_role == "hf":
                    local_role = "hs"
        session = HfpSession(
            connection=conn.id,
            address=conn.address,
            profile=dlc.profile if dlc.profile in ("hfp", "hsp") else "hfp",
            local_role=local_role,
            rfcomm_channel=dlc.channel,
            dlci=dlc.dlci,
            start_frame=dlc.open_frame or pdu.frame,
            start_time_us=dlc.open_time_us or pdu.time_us,
            inferred=dlc.profile_source != "sdp",
        )
        dlc.tracker = HfpTracker(session, self.ctx.analysis.timeline, conn.id)

    def _sdp_profile(self, dlc: Dlc) -> None:
        """Profile of a DLC from the SDP record of its server channel (owner = dlc.server)."""
        if dlc.profile_source == "sdp" or self.connection is None:
            return
        addr = self.connection.address
        if dlc.channel is not None:  # the index of the SDP pass, not a scan of every transaction
            rec = self.ctx.shared(SdpIndex).record_for(addr, dlc.channel, dlc.server)
            if rec is not None:
                self._set_profile(dlc, list(rec.service_names))
            return
        loose: list[str] | None = None
        for tx in reversed(self.ctx.analysis.sdp):
            if tx.address != addr:
                continue
            # we asked ("sent") → the records are the remote's
            owner = "remote" if tx.direction == "sent" else "local"
            for r in tx.records:
                if r.rfcomm_channel != dlc.channel:
                    continue
                names = list(r.service_names)
                if dlc.server is None or owner == dlc.server:
                    self._set_profile(dlc, names)
                    return
                if loose is None:
                    loose = names
        if loose is not None and dlc.server is None:
            self._set_profile(dlc, loose)

    @staticmethod
    def _set_profile(dlc: Dlc, names: list[str]) -> None:
        dlc.profile_source = "sdp"
        for n in names:
            if n in SERVICE_PROFILES:
                dlc.profile, dlc.server_role = SERVICE_PROFILES[n]
                return
        dlc.profile = names[0] if names else None

    # -- summary -----------------------------------------------------------------------------
    def summaries(self) -> list[RfcommDlc]:
        conn, ch = self.connection, self.channel
        if conn is None:
            return []  # a half that delegated to its other direction
        out = []
        for dlci in sorted(self.dlcs):
            d = self.dlcs[dlci]
            row = RfcommDlc(
                connection=conn.id,
                address=conn.address,
                l2cap_local_cid=_cid(ch, self.other_half, "local_cid"),
                l2cap_remote_cid=_cid(ch, self.other_half, "remote_cid"),
                initiator=self.initiator,
                dlci=dlci,
                channel=d.channel if dlci else None,
                server=d.server,
                profile="multiplexer" if dlci == 0 else d.profile,
                profile_source=d.profile_source,
                first_frame=d.first_frame,
                sabm_frame=d.sabm_frame,
                open_frame=d.open_frame,
                open_time_us=d.open_time_us,
                rejected_frame=d.rejected_frame,
                close_frame=d.close_frame,
                close_time_us=d.close_time_us,
                closed_by=d.disc_by,
                frames=dict(d.frames),
                data_bytes=dict(d.data_bytes),
            )
            if dlci == 0:
                row.commands = dict(self.mcc_counts)
            else:
                row.max_frame_size = d.max_frame_size
                row.credit_flow = d.credit_flow
                row.initial_credits = SideCounts(**d.initial_credits)
                row.credits_granted = SideCounts(**d.credits_granted)
                row.msc = SideModemStatus(**{side: ModemStatus(**v) for side, v in d.msc.items()})
                row.at = bool(d.at)
                row.first_data_frame = dict(d.first_data)
                row.last_data_frame = dict(d.last_data)
                row.first_data_time_us = dict(d.first_data_time)
            out.append(row)
        return out


def _cid(a: L2capChannel | None, b: L2capChannel | None, attr: str) -> int | None:
    for ch in (a, b):
        v = getattr(ch, attr, None) if ch is not None else None
        if v is not None:
            return int(v)
    return None


@dataclass
class RfcommState:
    """Every RFCOMM multiplexer of the capture, and what the ``rfcomm`` stage kept."""

    muxes: list[RfcommMux] = field(default_factory=list)
    #: connection id → the multiplexer that owns both inferred halves of its channel
    inferred_owner: dict[str, RfcommMux] = field(default_factory=dict)
    hfp_trackers: list[HfpTracker] = field(default_factory=list)  # in session order


def muxes(ctx: BuildContext) -> list[RfcommMux]:
    return list(ctx.shared(RfcommState).muxes)


def trackers(ctx: BuildContext) -> list[HfpTracker]:
    """The HFP/HSP trackers kept by the ``rfcomm`` stage (in session order)."""
    return list(ctx.shared(RfcommState).hfp_trackers)


@stage("rfcomm")
def finish(ctx: BuildContext) -> None:
    """Settle profiles (SDP seen after the DLC opened, or inference), end times, the DLC rows."""
    analysis = ctx.analysis
    kept: list[HfpTracker] = []
    rows: list[RfcommDlc] = []
    for mux in muxes(ctx):
        for d in mux.dlcs.values():
            if d.dlci and d.profile_source is None:
                mux._sdp_profile(d)
            tr = d.tracker
            if tr is None:
                continue
            s = tr.session
            if d.profile_source == "sdp" and d.profile in ("hfp", "hsp"):
                s.profile, s.inferred = d.profile, False
            else:
                ev = tr.profile_evidence
                if ev is None:
                    d.at = False  # AT-looking data, but no HFP/HSP exchange: not a voice profile
                    continue
                s.profile, s.inferred = ev, True
                d.profile, d.profile_source = ev, "inferred"
            if s.profile == "hsp" and s.local_role == "hf":
                s.local_role = "hs"
            if s.profile == "hfp" and s.local_role == "hs":
                s.local_role = "hf"
            if tr.hf_direction is None and s.local_role == "?":
                s.local_role = "ag" if d.server_role in ("hf", "hs") else "?"
            if s.end_frame is None:
                _end_from_links(tr, mux, ctx)
            for frame, msg in tr.anomalies:
                ctx.anomaly(frame, "hfp", msg)
            kept.append(tr)
        rows += mux.summaries()
    kept.sort(key=lambda t: t.session.start_frame)
    ctx.shared(RfcommState).hfp_trackers = kept
    analysis.hfp.extend(t.session for t in kept)
    analysis.rfcomm = rows


def _end_from_links(tr: HfpTracker, mux: RfcommMux, ctx: BuildContext) -> None:
    """A session whose DLC never closed ends with its L2CAP channel or its ACL link."""
    ch, conn = mux.channel, mux.connection
    frame: int | None = None
    t: int | None = None
    if conn is not None and conn.end_frame is not None:
        frame, t = conn.end_frame, conn.end_time_us
    if ch is not None and ch.close_frame is not None and (frame is None or ch.close_frame < frame):
        frame = ch.close_frame
        t = _time_of(ctx, frame)
    if frame is not None:
        tr.close(frame, t)


def _time_of(ctx: BuildContext, frame: int) -> int | None:
    f = ctx.cap.frames
    if 1 <= frame <= f.height:
        return int(f["time_us"][frame - 1])
    return None


@on_psm(0x0003)
def _factory(ctx: BuildContext) -> RfcommMux:
    return RfcommMux(ctx)


__all__ = ["SERVICE_PROFILES", "Dlc", "RfcommMux", "RfcommState", "finish", "muxes", "trackers"]
