"""LE connections seen on the air (sniffer captures): LL data PDUs → L2CAP → SMP / ATT.

Data channel PDUs (Core v5.4 Vol 6 Part B §2.4) are grouped into connections: each
CONNECT_IND / AUX_CONNECT_REQ (§2.3.3.1, §2.3.3.2) starts a new one — an access address may be
reused by a later connection — and a data PDU belongs to the connection whose CONNECT_IND most
recently precedes it (a connection whose CONNECT_IND the capture lacks is ``inferred``). An
LL_TERMINATE_IND (§2.4.2.3, §5.1.1) ends the connection at that frame, with its reason and the
reason's name (Vol 1 Part F); its acknowledgement is counted but does not extend it. L2CAP PDUs
are rebuilt per connection and direction from LLID 2 (start) and LLID 1 (continuation) fragments
(Vol 3 Part A §7.2.1) and handed to the SMP / ATT sessions used for HCI captures. Encryption,
sequence numbers, reassembly and the SMP / ATT sessions start afresh in each connection.

* Direction: the sniffer's flag when it gives one (central → peripheral = ``sent``). Otherwise it
  is inferred from timing: in a connection event the central transmits first and the peripheral
  answers T_IFS = 150 µs after the end of that packet (§4.1.1, 1 µs per bit on LE 1M), so a
  packet within T_IFS + the longer airtime of the two (+ slack) of the previous one is the other
  side's (sniffers time-stamp either the start or the end of a packet); USB sniffers add ~1 ms of
  latency jitter, so any gap under half the connection interval (from CONNECT_IND; 1.5 ms when
  unknown) counts as inside the event.
* Retransmissions: a non-empty PDU with the same SN, LLID and payload as the previous one in the
  same direction is a resend (§4.5.9) and is not fed to L2CAP again.
* Encryption: once LL_ENC_RSP is seen (§5.1.3.1) every non-empty PDU except LL_START_ENC_REQ is
  encrypted and cannot be read; such PDUs are only counted.

This module also registers the SMP / ATT finishing post passes after its own, so that their
output includes what came from the air.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analyzer.decode.hci_names import error_name
from analyzer.decode.l2cap import basic_header
from analyzer.decode.le_ll import (
    ADV_ACCESS_ADDRESS,
    adv_columns,
    data_pdu_fields,
    decode_adv_pdu,
    looks_plaintext,
    terminate_reason,
)
from analyzer.model import Connection, LlConnection, LlConnectionParams
from analyzer.sessions import l2cap as l2
from analyzer.sessions.att import AttSession
from analyzer.sessions.build import BuildContext, stage
from analyzer.sessions.smp import SmpSession

T_IFS_US = 150
SLACK_US = 60


@dataclass
class _Link:
    """One connection on the air and the per-connection state rebuilt from its PDUs."""

    conn: Connection
    handle: int  # key for the L2CAP reassembler (one per connection, not per access address)
    intra: int  # largest gap (µs) still inside one connection event
    timeout_us: int  # supervision timeout (§4.5.2): the longest an ended link's AA lingers
    stats: LlConnection
    control: dict[int, int] = field(default_factory=dict)  # LL control opcode → PDUs
    last: tuple[int, str, int] | None = None  # (time_us, direction, airtime_us)
    prev_pdu: dict[str, tuple[int, int, bytes]] = field(default_factory=dict)
    last_sn: dict[str, int] = field(default_factory=dict)
    encrypted: bool = False
    terminated: bool = False  # LL_TERMINATE_IND seen (§5.1.1): the connection has ended
    sessions: dict[int, Any] = field(default_factory=dict)  # cid → SMP / ATT session
    heard: dict[str, tuple[int, int]] = field(default_factory=dict)  # direction → (frame, t)
    answered: int = 0  # PDUs heard from the peripheral
    unanswered: int = 0  # central PDUs since the peripheral was last heard
    unanswered_from: tuple[int, int] | None = None  # the first of them (frame, t)


@stage("le_air")
def le_air(ctx: BuildContext) -> None:
    """Rebuild LE connections, SMP and ATT from LL data PDUs of air captures."""
    f = ctx.cap.frames
    if f.height == 0:
        return
    sel = f.filter(pl.col("kind").is_in(["ll_data", "ll_adv"]))
    data = sel.filter(pl.col("kind") == "ll_data")
    if data.height == 0:
        return
    buf = ctx.cap.buffer
    # CONNECT_IND / AUX_CONNECT_REQ PDUs, per access address in frame order: an AA may be
    # reused by a later connection (each CONNECT_IND starts a new one, Vol 6 Part B §4.5)
    conns_info: dict[int, list[dict[str, Any]]] = {}
    adv = sel.filter(pl.col("kind") == "ll_adv")
    if adv.height:
        dat = ctx.cap.data
        offs = adv["offset"].to_numpy()
        lens = adv["length"].to_numpy()
        typ = adv_columns(dat, offs, lens)["pdu_type"]
        cand = adv.filter(pl.Series(typ == 5))  # CONNECT_IND
        for frame, t, off, ln in cand.select("index", "time_us", "offset", "length").iter_rows():
            p = decode_adv_pdu(bytes(buf[off : off + ln]))
            if p.connect and p.connect.get("access_address") is not None:
                aa = int(p.connect["access_address"])
                conns_info.setdefault(aa, []).append(
                    {
                        "central": p.init_a,
                        "peripheral": p.adv_a,
                        "frame": frame,
                        "time_us": t,
                        "params": p.connect,
                    }
                )
    for infos in conns_info.values():
        infos.sort(key=lambda i: int(i["frame"]))
    _process_data(ctx, data, conns_info)


def _process_data(
    ctx: BuildContext, data: pl.DataFrame, conns_info: dict[int, list[dict[str, Any]]]
) -> None:
    buf = ctx.cap.buffer
    reasm = l2.Reassembler(ctx.analysis.anomalies)
    hci = ctx.hci
    links: list[_Link] = []
    # (aa, index of the CONNECT_IND that precedes the frame, -1 when none) → its live link
    current: dict[tuple[int, int], _Link] = {}
    connect_frames = {aa: [int(i["frame"]) for i in v] for aa, v in conns_info.items()}
    cols = data.select("index", "time_us", "offset", "length", "direction")
    for frame, t, off, ln, d in cols.iter_rows():
        head = data_pdu_fields(bytes(buf[off : off + ln]))
        if head is None or head.access_address == ADV_ACCESS_ADDRESS:
            continue
        aa, llid, sn, plen, payload = (
            head.access_address, head.llid, head.sn, head.length, head.payload
        )  # fmt: skip
        airtime = (10 + plen) * 8  # preamble, AA, header, payload, CRC at 1 µs per bit
        # the connection is the one whose CONNECT_IND most recently precedes this frame
        ci = bisect_left(connect_frames.get(aa, []), frame) - 1
        link = current.get((aa, ci))
        # an ended link's AA only lingers for the acknowledgement (at most a supervision
        # timeout); traffic after that is a connection whose CONNECT_IND was missed
        if (
            link is not None
            and link.terminated
            and t - (link.conn.end_time_us or t) > link.timeout_us
        ):
            link = None
        if link is None:
            info = conns_info[aa][ci] if ci >= 0 and (aa, ci) not in current else {}
            link = current[(aa, ci)] = _new_link(aa, info, frame, t, len(links))
            links.append(link)
            hci.connections.append(link.conn)
            if info.get("peripheral"):
                hci.device(str(info["peripheral"]), info.get("frame"))
        conn, s = link.conn, link.stats
        s.pdus += 1
        if not link.terminated:
            conn.end_frame, conn.end_time_us = frame, t
        direction = str(d)
        if direction == "unknown":
            s.direction_inferred = True
            pv = link.last
            # sniffers stamp the start or the end of a packet (allow the longer airtime), some
            # with USB latency (~1 ms, Ubertooth): a gap under half the connection interval
            # (1.5 ms when unknown) still belongs to the same connection event
            near = max(max(pv[2], airtime) + T_IFS_US + SLACK_US, link.intra) if pv else 0
            if pv is not None and 0 <= t - pv[0] <= near:
                direction = "received" if pv[1] == "sent" else "sent"
            else:
                direction = "sent"  # the central opens each connection event
        link.last = (t, direction, airtime)
        link.heard[direction] = (frame, t)
        if direction == "received":
            link.answered += 1
            link.unanswered, link.unanswered_from = 0, None
        else:
            if link.unanswered == 0:
                link.unanswered_from = (frame, t)
            link.unanswered += 1
        prev_sn = link.last_sn.get(direction)
        link.last_sn[direction] = sn
        if plen == 0:
            s.empty += 1
            continue
        if not payload:  # header says data, the capture cut it
            continue
        pp = link.prev_pdu.get(direction)
        link.prev_pdu[direction] = (sn, llid, payload)
        # same SN and payload as the previous PDU this side sent: a resend
        if prev_sn == sn and pp == (sn, llid, payload):
            s.retransmissions += 1  # counted; still decoded, as Wireshark does
        if link.encrypted and not looks_plaintext(
            llid, payload, (link.handle, direction) in reasm._partial
        ):
            s.encrypted_pdus += 1
            continue
        if llid == 3:
            op = payload[0]
            link.control[op] = link.control.get(op, 0) + 1
            if op == 0x04:  # LL_ENC_RSP: encryption starts
                link.encrypted = True
                conn.encrypted = True
                conn.encryption_frames.append(frame)
            elif op == 0x02:  # LL_TERMINATE_IND (§2.4.2.3): the connection ends here
                link.terminated = True
                conn.end_frame, conn.end_time_us = frame, t
                conn.disconnect_reason = terminate_reason(payload)
                conn.disconnect_reason_name = error_name(conn.disconnect_reason)
                s.terminate_frame = frame
                s.terminated_by = "central" if direction == "sent" else "peripheral"
            continue
        if llid not in (1, 2):
            continue
        if llid == 1 and str(d) == "unknown":
            # a continuation belongs to the side with a PDU in progress (the sniffer may have
            # missed packets, which breaks the timing inference)
            open_dirs = [x for x in ("sent", "received") if (link.handle, x) in reasm._partial]
            if len(open_dirs) == 1:
                direction = open_dirs[0]
        done = reasm.feed(link.handle, direction, 2 if llid == 2 else 1, frame, payload, False)
        if done is None:
            continue
        first, pdu, trunc = done
        hdr = basic_header(pdu)
        if hdr is None:
            continue
        l2len, cid = hdr
        if cid not in (0x0004, 0x0006):
            continue
        sess = link.sessions.get(cid)
        if sess is None:
            sess = link.sessions[cid] = AttSession(ctx) if cid == 0x0004 else SmpSession(ctx)
        sess.on_pdu(l2.Pdu(conn, None, cid, direction, frame, first, t, pdu[4 : 4 + l2len], trunc))
    if links:
        from analyzer.decode.le_ll import LL_CONTROL_OPCODES

        for link in links:
            _peer_went_silent(link)
            link.stats.control = {
                LL_CONTROL_OPCODES.get(k, f"0x{k:02X}"): v for k, v in sorted(link.control.items())
            }
        ctx.analysis.ll_connections = [link.stats for link in links]


#: the peripheral answered at least this many PDUs before falling silent (so the sniffer could
#: hear it), and the central then sent at least this many unanswered PDUs
MIN_ANSWERED = 10
MIN_UNANSWERED = 6


def _peer_went_silent(link: _Link) -> None:
    """A link with no LL_TERMINATE_IND whose central kept transmitting, unanswered, for at least
    the supervision timeout after the peripheral was last heard (Vol 6 Part B §4.5.2): the
    peripheral stopped answering (crashed, reset or out of range) and the link timed out."""
    s = link.stats
    if link.terminated or s.params is None or link.unanswered_from is None:
        return
    if link.answered < MIN_ANSWERED or link.unanswered < MIN_UNANSWERED:
        return
    last_peer = link.heard.get("received")
    last_central = link.heard.get("sent")
    if last_peer is None or last_central is None:
        return
    silent_us = last_central[1] - last_peer[1]
    if silent_us < link.timeout_us:
        return
    s.peer_silent_from_frame = link.unanswered_from[0]
    s.peer_silent_s = round(silent_us / 1e6, 3)
    s.unanswered_pdus = link.unanswered
    conn = link.conn
    conn.disconnect_reason = 0x08  # the supervision timer ran out (inferred from the air)
    conn.disconnect_reason_name = error_name(0x08)


def _new_link(aa: int, info: dict[str, Any], frame: int, t: int, n: int) -> _Link:
    """A connection starting at its CONNECT_IND (``info``), or at ``frame`` when the capture
    does not have one (``inferred``)."""
    conn = Connection(
        id=f"ll-{aa:08x}-{n + 1}",
        handle=-1,
        address=info.get("peripheral"),
        transport="le",
        status=0,
        status_name="Success",
        start_frame=info.get("frame", frame),
        start_time_us=info.get("time_us", t),
        inferred=not info,
    )
    params = info.get("params") or {}
    iv = params.get("interval_ms")
    to = params.get("timeout_ms")
    stats = LlConnection(
        connection=conn.id,
        access_address=f"0x{aa:08X}",
        central=info.get("central"),
        peripheral=info.get("peripheral"),
        connect_frame=info.get("frame"),
        params=LlConnectionParams(**info["params"]) if info.get("params") else None,
    )
    return _Link(
        conn=conn,
        handle=0x1000 + n,
        intra=int(min(iv * 500, 20_000)) if iv else 1500,
        timeout_us=int(to * 1000) if to else 32_000_000,  # 32 s: the largest allowed
        stats=stats,
    )


__all__ = ["le_air"]
