"""ACL → L2CAP: reassembly, the channel table (CID → PSM per connection) and dispatch of complete
PDUs to the protocol sessions that registered for a PSM or a fixed CID.

Core v5.4 Vol 3 Part A: basic header (§3.1); ACL packet-boundary flags 0b00/0b10 start a PDU,
0b01 continues one (Vol 4 Part E §5.4.2); Connection Request/Response (§4.2/§4.3) map the
requester's source CID and the responder's destination CID to a PSM; Disconnection (§4.6).

A frame sent by the local host carries the *remote* endpoint's CID, a received frame the local
one. Only frames of channels that some protocol session consumes are reassembled in Python; bulk
media stays columnar (see :mod:`analyzer.sessions.media`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from analyzer.decode.l2cap import basic_header, decode_signalling, psm_name
from analyzer.model import Anomaly, Connection, L2capChannel, L2capSignal

SIGNALLING_CIDS = (0x0001, 0x0005)
#: signalling request codes (Core Vol 3 Part A §4): each is answered by a response or a reject
L2CAP_REQUESTS = frozenset({0x02, 0x04, 0x06, 0x08, 0x0A, 0x0C, 0x0E, 0x10, 0x12, 0x14, 0x17, 0x19})
PSM_AVDTP = 0x19


@dataclass
class Pdu:
    """One complete (reassembled) L2CAP PDU."""

    connection: Connection
    channel: L2capChannel | None
    cid: int
    direction: str  # sent / received
    frame: int  # the frame that completed it
    first_frame: int
    time_us: int
    payload: bytes  # the information payload (after the 4-byte basic header)
    truncated: bool = False  # the capture cut some of its bytes


class PduConsumer(Protocol):
    def on_pdu(self, pdu: Pdu) -> None: ...


#: PSM → factory of a consumer; fixed CID → factory. Filled by the protocol session modules.
PSM_CONSUMERS: dict[int, Callable[[Any], PduConsumer]] = {}
CID_CONSUMERS: dict[int, Callable[[Any], PduConsumer]] = {}


def on_psm(psm: int) -> Callable[[Callable[[Any], PduConsumer]], Callable[[Any], PduConsumer]]:
    def deco(factory: Callable[[Any], PduConsumer]) -> Callable[[Any], PduConsumer]:
        PSM_CONSUMERS[psm] = factory
        return factory

    return deco


def on_cid(cid: int) -> Callable[[Callable[[Any], PduConsumer]], Callable[[Any], PduConsumer]]:
    def deco(factory: Callable[[Any], PduConsumer]) -> Callable[[Any], PduConsumer]:
        CID_CONSUMERS[cid] = factory
        return factory

    return deco


@dataclass
class Reassembler:
    """Joins ACL fragments into L2CAP PDUs, per (handle, direction)."""

    anomalies: list[Anomaly]
    _partial: dict[tuple[int, str], list[Any]] = field(default_factory=dict)

    def feed(
        self, handle: int, direction: str, pb: int, frame: int, data: bytes, truncated: bool
    ) -> tuple[int, bytes, bool] | None:
        """Feed one ACL payload (after the 4-byte ACL header). Returns (first_frame, pdu,
        truncated) when a PDU completes."""
        key = (handle, direction)
        if pb in (0, 2):
            if key in self._partial:
                first = self._partial.pop(key)[0]
                self.anomalies.append(Anomaly(first, "l2cap", "L2CAP PDU never completed"))
            if len(data) < 4:
                self.anomalies.append(Anomaly(frame, "l2cap", "ACL start fragment < 4 bytes"))
                return None
            hdr = basic_header(data)
            need = (hdr[0] if hdr else 0) + 4
            if len(data) >= need or truncated:
                return frame, data, truncated or len(data) < need
            self._partial[key] = [frame, bytearray(data), need, truncated]
            return None
        part = self._partial.get(key)
        if part is None:
            return None  # continuation of a PDU that started before the capture
        part[1] += data
        part[3] = part[3] or truncated
        if len(part[1]) >= part[2]:
            del self._partial[key]
            return part[0], bytes(part[1]), part[3]
        return None


class LiveChannels:
    """The open channels by (connection, side, CID), and by connection: the end of a link closes
    its channels without a scan of every open channel (issue 18 §2)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str, int], L2capChannel] = {}
        self._keys_of: dict[str, set[tuple[str, str, int]]] = {}

    def get(self, key: tuple[str, str, int]) -> L2capChannel | None:
        return self._by_key.get(key)

    def __setitem__(self, key: tuple[str, str, int], ch: L2capChannel) -> None:
        self._by_key[key] = ch
        self._keys_of.setdefault(key[0], set()).add(key)

    def pop(self, key: tuple[str, str, int], default: None = None) -> L2capChannel | None:
        keys = self._keys_of.get(key[0])
        if keys is not None:
            keys.discard(key)
        return self._by_key.pop(key, default)

    def pop_connection(self, conn_id: str) -> list[L2capChannel]:
        """Remove and return the open channels of a connection."""
        keys = self._keys_of.pop(conn_id, set())
        return [self._by_key.pop(k) for k in keys if k in self._by_key]


@dataclass
class ChannelTable:
    """Dynamic channels per connection, learned from the signalling channel."""

    channels: list[L2capChannel] = field(default_factory=list)
    timeline: list[Any] = field(default_factory=list)
    _pending: dict[tuple[str, str, int], L2capChannel] = field(default_factory=dict)
    # (conn id, "local"/"remote" cid side, cid) → live channel
    _live: LiveChannels = field(default_factory=LiveChannels)
    _avdtp_sig: dict[str, L2capChannel] = field(default_factory=dict)
    #: every signalling command, requests paired with their responses
    signals: list[L2capSignal] = field(default_factory=list)
    _open_requests: dict[tuple[str, str, int], L2capSignal] = field(default_factory=dict)

    def lookup(self, conn_id: str, direction: str, cid: int) -> L2capChannel | None:
        side = "remote" if direction == "sent" else "local"
        return self._live.get((conn_id, side, cid))

    def on_signalling(
        self,
        conn: Connection,
        direction: str,
        frame: int,
        time_us: int,
        payload: bytes,
        anomalies: list[Anomaly],
    ) -> None:
        le = conn.transport == "le"
        sigs = decode_signalling(payload, le=le)
        # a C-frame with a malformed command is not trusted for request/response timing
        suspect = any(sig.anomaly for sig in sigs)
        for sig in sigs:
            if sig.anomaly:
                anomalies.append(Anomaly(frame, "l2cap", f"{sig.name}: {sig.anomaly}"))
            self._record(conn, direction, frame, time_us, sig.code, sig.name, sig.ident, sig.result)
            self.signals[-1].suspect = suspect
            requester = "local" if direction == "sent" else "remote"
            if sig.code in (0x02, 0x14) and sig.scid is not None:  # Connection Req / LE CoC Req
                ch = L2capChannel(
                    connection=conn.id,
                    psm=sig.psm,
                    psm_name=psm_name(sig.psm) or "?",
                    requester=requester,
                    local_cid=sig.scid if requester == "local" else None,
                    remote_cid=sig.scid if requester == "remote" else None,
                    request_frame=frame,
                    open_time_us=time_us,
                )
                self._pending[(conn.id, requester, sig.ident)] = ch
                self.channels.append(ch)
            elif sig.code in (0x03, 0x15):  # Connection Response / LE CoC Response
                # the response travels the other way: its requester is the other side
                req_side = "remote" if direction == "sent" else "local"
                ch_opt = self._pending.get((conn.id, req_side, sig.ident))
                if ch_opt is None:
                    continue
                ch = ch_opt
                ch.result = sig.result
                ch.result_name = sig.result_name
                if sig.result == 1:  # pending: wait for the final response
                    continue
                self._pending.pop((conn.id, req_side, sig.ident), None)
                ch.response_frame = frame
                if sig.result != 0:
                    continue
                dcid = sig.dcid
                if ch.requester == "local":
                    ch.remote_cid = dcid
                else:
                    ch.local_cid = dcid
                self._open(conn, ch)
            elif sig.code == 0x06 and sig.dcid is not None and sig.scid is not None:
                # Disconnection Request: dcid is the receiver's CID
                local_cid = sig.dcid if direction == "received" else sig.scid
                ch_live = self._live.pop((conn.id, "local", local_cid), None)
                if ch_live is not None:
                    ch_live.close_frame = frame
                    if ch_live.remote_cid is not None:
                        self._live.pop((conn.id, "remote", ch_live.remote_cid), None)
                    if self._avdtp_sig.get(conn.id) is ch_live:
                        del self._avdtp_sig[conn.id]

    def _record(
        self,
        conn: Connection,
        direction: str,
        frame: int,
        time_us: int,
        code: int,
        name: str,
        ident: int,
        result: int | None,
    ) -> None:
        """Pair requests with responses (same identifier, other direction; §4)."""
        entry = L2capSignal(
            connection=conn.id,
            address=conn.address,
            code=code,
            name=name,
            ident=ident,
            direction=direction,
            frame=frame,
            time_us=time_us,
            is_request=code in L2CAP_REQUESTS,
            result=result,
        )
        self.signals.append(entry)
        if code in L2CAP_REQUESTS:
            self._open_requests[(conn.id, direction, ident)] = entry
            return
        asker = "received" if direction == "sent" else "sent"
        req = self._open_requests.get((conn.id, asker, ident))
        if req is not None and (
            code == 0x01 or code == req.code + 1 or (req.code == 0x17 and code == 0x18)
        ):
            if req.response_frame is None:
                req.response_frame, req.response_time_us = frame, time_us
            req.final_result = result
            if not (code in (0x03, 0x15) and result == 1):  # pending: a final answer follows
                del self._open_requests[(conn.id, asker, ident)]

    def _open(self, conn: Connection, ch: L2capChannel) -> None:
        if ch.local_cid is not None:
            self._live[(conn.id, "local", ch.local_cid)] = ch
        if ch.remote_cid is not None:
            self._live[(conn.id, "remote", ch.remote_cid)] = ch
        if ch.psm == PSM_AVDTP:
            # AVDTP 1.3 §5.4.6: the first channel is signalling, later ones carry media
            if conn.id not in self._avdtp_sig:
                ch.role = "avdtp_signalling"
                self._avdtp_sig[conn.id] = ch
            else:
                ch.role = "avdtp_media"

    def close_connection(self, conn_id: str, frame: int | None) -> None:
        for ch in self._live.pop_connection(conn_id):
            if ch.close_frame is None:
                ch.close_frame = frame
        self._avdtp_sig.pop(conn_id, None)

    def infer(
        self, conn: Connection, direction: str, cid: int, psm: int, role: str | None, frame: int
    ) -> L2capChannel:
        """A channel whose setup is not in the capture, named from its content."""
        ch = L2capChannel(
            connection=conn.id,
            psm=psm,
            psm_name=psm_name(psm) or "?",
            requester="unknown",
            local_cid=cid if direction == "received" else None,
            remote_cid=cid if direction == "sent" else None,
            request_frame=None,
            role=role,
            inferred=True,
        )
        self.channels.append(ch)
        side = "remote" if direction == "sent" else "local"
        self._live[(conn.id, side, cid)] = ch
        if role == "avdtp_signalling":
            self._avdtp_sig.setdefault(conn.id, ch)
        return ch


def channel_frames(idx: pl.DataFrame) -> pl.DataFrame:
    """ACL frames only, with the columns reassembly needs."""
    return idx.filter((pl.col("kind") == "acl") & ~pl.col("diag")).select(
        "index",
        "time_us",
        "direction",
        "offset",
        "length",
        "orig_length",
        "handle",
        "pb",
        "cid",
        "l2cap_len",
    )
