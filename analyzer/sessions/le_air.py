"""LE connections seen on the air (sniffer captures): LL data PDUs → L2CAP → SMP / ATT.

Data channel PDUs (Core v5.4 Vol 6 Part B §2.4) are grouped per access address (one connection,
named by the CONNECT_IND that announced it when the capture has it, §2.3.3.1). L2CAP PDUs are
rebuilt per connection and direction from LLID 2 (start) and LLID 1 (continuation) fragments
(Vol 3 Part A §7.2.1) and handed to the SMP / ATT sessions used for HCI captures.

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

from typing import Any

import polars as pl

from analyzer.decode.le_ll import ADV_ACCESS_ADDRESS, decode_adv_pdu
from analyzer.sessions import l2cap as l2
from analyzer.sessions.att import AttSession, finish_att
from analyzer.sessions.build import BuildContext, post_pass
from analyzer.sessions.model import Connection
from analyzer.sessions.smp import SmpSession, finish_smp

T_IFS_US = 150
SLACK_US = 60
#: LL control PDU sizes (opcode + CtrData, Vol 6 Part B §2.4.2) used to tell plaintext from
#: ciphertext after encryption starts
_CTRL_SIZES = {0x00: 12, 0x01: 8, 0x02: 2, 0x03: 23, 0x04: 13, 0x05: 1, 0x06: 1, 0x07: 2,
               0x08: 9, 0x09: 9, 0x0A: 1, 0x0B: 1, 0x0C: 6, 0x0D: 2, 0x0E: 9, 0x0F: 24,
               0x10: 24, 0x11: 3, 0x12: 1, 0x13: 1, 0x14: 9, 0x15: 9, 0x16: 3, 0x17: 3,
               0x18: 5, 0x19: 3}  # fmt: skip


@post_pass
def le_air(analysis: Any, ctx: BuildContext) -> None:
    """Rebuild LE connections, SMP and ATT from LL data PDUs of air captures."""
    f = ctx.cap.frames
    if f.height == 0:
        return
    sel = f.filter(pl.col("kind").is_in(["ll_data", "ll_adv"]))
    data = sel.filter(pl.col("kind") == "ll_data")
    if data.height == 0:
        return
    buf = ctx.cap.buffer
    # CONNECT_IND PDUs: access address → (central, peripheral, frame)
    conns_info: dict[int, dict[str, Any]] = {}
    adv = sel.filter(pl.col("kind") == "ll_adv")
    if adv.height:
        dat = ctx.cap.data
        offs = adv["offset"].to_numpy()
        lens = adv["length"].to_numpy()
        ok = lens >= 6
        typ = dat[(offs + 4).clip(0, max(len(dat) - 1, 0))] & 0x0F
        cand = adv.filter(pl.Series(ok & (typ == 5)))
        for frame, t, off, ln in cand.select("index", "time_us", "offset", "length").iter_rows():
            p = decode_adv_pdu(bytes(buf[off : off + ln]))
            if p.connect and p.connect.get("access_address") is not None:
                aa = int(p.connect["access_address"])
                conns_info[aa] = {
                    "central": p.init_a,
                    "peripheral": p.adv_a,
                    "frame": frame,
                    "time_us": t,
                    "params": p.connect,
                }
    _process_data(ctx, data, conns_info)


def _process_data(
    ctx: BuildContext, data: pl.DataFrame, conns_info: dict[int, dict[str, Any]]
) -> None:
    buf = ctx.cap.buffer
    reasm = l2.Reassembler(ctx.analysis.anomalies)
    hci = ctx.hci
    conns: dict[int, Connection] = {}
    handles: dict[int, int] = {}
    stats: dict[int, dict[str, Any]] = {}
    last: dict[int, tuple[int, str, int]] = {}  # aa → (time_us, direction, airtime_us)
    prev_pdu: dict[tuple[int, str], tuple[int, int, bytes]] = {}
    last_sn: dict[tuple[int, str], int] = {}
    intra: dict[int, int] = {}  # aa → largest gap (µs) still inside one connection event
    encrypted: set[int] = set()
    sessions: dict[tuple[int, int], Any] = {}
    cols = data.select("index", "time_us", "offset", "length", "direction")
    for frame, t, off, ln, d in cols.iter_rows():
        if ln < 6:
            continue
        raw = bytes(buf[off : off + ln])
        aa = int.from_bytes(raw[0:4], "little")
        if aa == ADV_ACCESS_ADDRESS:
            continue
        h0, plen = raw[4], raw[5]
        llid = h0 & 0x3
        sn = (h0 >> 3) & 1
        payload = raw[6 : 6 + plen]
        airtime = (10 + plen) * 8  # preamble, AA, header, payload, CRC at 1 µs per bit
        conn = conns.get(aa)
        if conn is None:
            info = conns_info.get(aa, {})
            handles[aa] = 0x1000 + len(handles)
            conn = Connection(
                id=f"ll-{aa:08x}-{len(conns) + 1}",
                handle=-1,
                address=info.get("peripheral"),
                transport="le",
                status=0,
                status_name="Success",
                start_frame=info.get("frame", frame),
                start_time_us=info.get("time_us", t),
                inferred=not info,
            )
            hci.connections.append(conn)
            if info.get("peripheral"):
                hci.device(str(info["peripheral"]), info.get("frame"))
            conns[aa] = conn
            iv = (info.get("params") or {}).get("interval_ms")
            intra[aa] = int(min(iv * 500, 20_000)) if iv else 1500
            stats[aa] = {
                "connection": conn.id,
                "access_address": f"0x{aa:08X}",
                "central": info.get("central"),
                "peripheral": info.get("peripheral"),
                "connect_frame": info.get("frame"),
                "params": info.get("params"),
                "pdus": 0,
                "empty": 0,
                "control": {},
                "retransmissions": 0,
                "encrypted_pdus": 0,
                "direction_inferred": False,
            }
        s = stats[aa]
        s["pdus"] += 1
        conn.end_frame, conn.end_time_us = frame, t
        direction = str(d)
        if direction == "unknown":
            s["direction_inferred"] = True
            pv = last.get(aa)
            # sniffers stamp the start or the end of a packet (allow the longer airtime), some
            # with USB latency (~1 ms, Ubertooth): a gap under half the connection interval
            # (1.5 ms when unknown) still belongs to the same connection event
            near = max(max(pv[2], airtime) + T_IFS_US + SLACK_US, intra[aa]) if pv else 0
            if pv is not None and 0 <= t - pv[0] <= near:
                direction = "received" if pv[1] == "sent" else "sent"
            else:
                direction = "sent"  # the central opens each connection event
        last[aa] = (t, direction, airtime)
        key = (aa, direction)
        prev_sn = last_sn.get(key)
        last_sn[key] = sn
        if plen == 0:
            s["empty"] += 1
            continue
        if not payload:  # header says data, the capture cut it
            continue
        pp = prev_pdu.get(key)
        prev_pdu[key] = (sn, llid, payload)
        # same SN and payload as the previous PDU this side sent: a resend
        if prev_sn == sn and pp == (sn, llid, payload):
            s["retransmissions"] += 1  # counted; still decoded, as Wireshark does
        if aa in encrypted and not _plaintext(llid, payload, reasm, handles[aa], direction):
            s["encrypted_pdus"] += 1
            continue
        if llid == 3:
            op = payload[0]
            s["control"][op] = s["control"].get(op, 0) + 1
            if op == 0x04:  # LL_ENC_RSP: encryption starts
                encrypted.add(aa)
                conn.encrypted = True
                conn.encryption_frames.append(frame)
            elif op == 0x02:  # LL_TERMINATE_IND
                conn.disconnect_reason = payload[1] if len(payload) > 1 else None
            continue
        if llid not in (1, 2):
            continue
        if llid == 1 and str(d) == "unknown":
            # a continuation belongs to the side with a PDU in progress (the sniffer may have
            # missed packets, which breaks the timing inference)
            open_dirs = [x for x in ("sent", "received") if (handles[aa], x) in reasm._partial]
            if len(open_dirs) == 1:
                direction = open_dirs[0]
        done = reasm.feed(handles[aa], direction, 2 if llid == 2 else 1, frame, payload, False)
        if done is None:
            continue
        first, pdu, trunc = done
        if len(pdu) < 4:
            continue
        l2len = pdu[0] | (pdu[1] << 8)
        cid = pdu[2] | (pdu[3] << 8)
        if cid not in (0x0004, 0x0006):
            continue
        skey = (aa, cid)
        sess = sessions.get(skey)
        if sess is None:
            sess = sessions[skey] = AttSession(ctx) if cid == 0x0004 else SmpSession(ctx)
        sess.on_pdu(l2.Pdu(conn, None, cid, direction, frame, first, t, pdu[4 : 4 + l2len], trunc))
    if stats:
        from analyzer.decode.le_ll import LL_CONTROL_OPCODES

        for s in stats.values():
            s["control"] = {
                LL_CONTROL_OPCODES.get(k, f"0x{k:02X}"): v for k, v in sorted(s["control"].items())
            }
        ctx.analysis.extra["ll_connections"] = list(stats.values())


def _plaintext(llid: int, p: bytes, reasm: l2.Reassembler, handle: int, d: str) -> bool:
    """After LL_ENC_RSP: does this PDU still read as plaintext? (A sniffer that is a party to
    the link, or one that decrypts, logs plaintext; ciphertext carries a 4-byte MIC and random
    bytes, so a consistent L2CAP or LL control header is a reliable sign of plaintext.)"""
    if llid == 3:
        return _CTRL_SIZES.get(p[0]) == len(p)
    if llid == 2:
        if len(p) < 4:
            return False
        ln, cid = p[0] | (p[1] << 8), p[2] | (p[3] << 8)
        return ln + 4 == len(p) or (ln + 4 > len(p) and cid in (0x0004, 0x0005, 0x0006))
    return (handle, d) in reasm._partial


post_pass(finish_smp)
post_pass(finish_att)

__all__ = ["le_air"]
