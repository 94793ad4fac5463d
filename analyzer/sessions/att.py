"""ATT transactions and GATT discovery per connection (Core v5.4 Vol 3 Part F §3.3, Part G §4).

ATT is sequential (§3.3.2): a client has at most one request outstanding, answered by its
response or an Error Response naming the request opcode; an indication waits for its
confirmation (§3.3.3). Requests are paired per connection and per requesting side; a new request
while one is outstanding leaves the old one unanswered. Notifications are counted per handle.

GATT discovery responses are read against the request that asked (§4.4 primary services via
Read By Group Type 0x2800 or Find By Type Value, §4.6 characteristics via Read By Type 0x2803,
§4.7 descriptors via Find Information) into a per-connection service table.
:func:`finish_att` publishes ``analysis.extra["att"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.att import RESPONSE_OF, AttPdu, characteristic_decl, decode_att
from analyzer.decode.le_adv import uuid_label
from analyzer.sessions.build import BuildContext
from analyzer.sessions.l2cap import Pdu, consume_cid, consume_psm

_ANSWER_OF = {v: k for k, v in RESPONSE_OF.items()}


@dataclass
class AttTransaction:
    connection: str | None
    address: str | None
    direction: str  # of the request / indication
    request_opcode: int
    request: str
    request_frame: int
    request_time_us: int
    handle: int | None = None
    attr_type: str | None = None
    response_opcode: int | None = None
    response: str | None = None
    response_frame: int | None = None
    response_time_us: int | None = None
    latency_ms: float | None = None
    error: int | None = None
    error_name: str | None = None
    error_handle: int | None = None
    _pdu: AttPdu | None = None


def _state(ctx: BuildContext) -> dict[str, Any]:
    st = ctx.state.get("att")
    if st is None:
        st = ctx.state["att"] = {
            "transactions": [],
            "services": {},
            "notifications": {},
            "opcodes": {},
            "opcode_counts": {},
            "mtu": {},
        }
    return st


@dataclass
class AttSession:
    ctx: BuildContext
    _pending: dict[str, AttTransaction] = field(default_factory=dict)  # requester dir → tx
    _indication: dict[str, AttTransaction] = field(default_factory=dict)

    def on_pdu(self, pdu: Pdu) -> None:
        rec = decode_att(pdu.payload)
        st = _state(self.ctx)
        if rec.anomaly:
            self.ctx.anomaly(pdu.frame, "att", f"{rec.name}: {rec.anomaly}")
        if rec.opcode is None:
            return
        st["opcodes"][rec.name] = st["opcodes"].get(rec.name, 0) + 1
        key = f"0x{rec.opcode:02X}"
        st["opcode_counts"][key] = st["opcode_counts"].get(key, 0) + 1
        conn = pdu.connection
        other = "received" if pdu.direction == "sent" else "sent"
        kind = rec.kind
        if kind in ("request", "indication"):
            table = self._pending if kind == "request" else self._indication
            old = table.get(pdu.direction)
            if old is not None:
                self.ctx.anomaly(
                    pdu.frame, "att", f"{rec.name} while {old.request} (frame "
                    f"{old.request_frame}) is unanswered"
                )  # fmt: skip
            tx = AttTransaction(
                connection=conn.id,
                address=conn.address,
                direction=pdu.direction,
                request_opcode=rec.opcode,
                request=rec.name,
                request_frame=pdu.frame,
                request_time_us=pdu.time_us,
                handle=rec.handle if rec.handle is not None else rec.start_handle,
                attr_type=rec.attr_type,
                _pdu=rec,
            )
            table[pdu.direction] = tx
            st["transactions"].append(tx)
        elif kind in ("response", "confirmation"):
            table = self._pending if kind == "response" else self._indication
            tx_opt = table.get(other)
            if tx_opt is None:
                self.ctx.anomaly(pdu.frame, "att", f"{rec.name} with no outstanding request")
                return
            tx = tx_opt
            want = rec.request_opcode if rec.opcode == 0x01 else _ANSWER_OF.get(rec.opcode)
            if want != tx.request_opcode:
                self.ctx.anomaly(
                    pdu.frame, "att", f"{rec.name} does not answer {tx.request}"
                )  # fmt: skip
            del table[other]
            tx.response_opcode, tx.response = rec.opcode, rec.name
            tx.response_frame, tx.response_time_us = pdu.frame, pdu.time_us
            tx.latency_ms = (pdu.time_us - tx.request_time_us) / 1000
            if rec.opcode == 0x01:
                tx.error, tx.error_name, tx.error_handle = rec.error, rec.error_name, rec.handle
            else:
                self._discovery(st, tx, rec, conn.id, conn.address, pdu.direction)
        elif kind == "notification":
            for h in [rec.handle] if rec.opcode == 0x1B else [i["handle"] for i in rec.items]:
                nkey = (conn.id, pdu.direction, h)
                n = st["notifications"].get(nkey)
                if n is None:
                    st["notifications"][nkey] = {
                        "connection": conn.id,
                        "direction": pdu.direction,
                        "handle": h,
                        "count": 1,
                        "first_frame": pdu.frame,
                        "last_frame": pdu.frame,
                    }
                else:
                    n["count"] += 1
                    n["last_frame"] = pdu.frame

    def _discovery(
        self,
        st: dict[str, Any],
        tx: AttTransaction,
        rec: AttPdu,
        conn_id: str,
        address: str | None,
        server_dir: str,
    ) -> None:
        req = tx._pdu
        if req is None:
            return
        if rec.opcode == 0x03 and rec.mtu is not None and req.mtu is not None:
            st["mtu"][conn_id] = min(rec.mtu, req.mtu)
            return
        db = st["services"].setdefault(
            conn_id,
            {
                "address": address,
                "server": "remote" if server_dir == "received" else "local",
                "services": {},
                "characteristics": {},
                "descriptors": {},
            },
        )
        t = (req.attr_type or "").split(" ")[0]
        if rec.opcode == 0x11 and t in ("0x2800", "0x2801"):
            for it in rec.items:
                db["services"][it["handle"]] = {
                    "start_handle": it["handle"],
                    "end_handle": it.get("end_handle"),
                    "uuid": uuid_label(it["value"]),
                    "primary": t == "0x2800",
                }
        elif rec.opcode == 0x07 and t == "0x2800":
            for it in rec.items:
                db["services"][it["handle"]] = {
                    "start_handle": it["handle"],
                    "end_handle": it.get("end_handle"),
                    "uuid": uuid_label(req.value),
                    "primary": True,
                }
        elif rec.opcode == 0x09 and t == "0x2803":
            for it in rec.items:
                decl = characteristic_decl(it["value"])
                if decl is not None:
                    db["characteristics"][it["handle"]] = {"handle": it["handle"], **decl}
        elif rec.opcode == 0x05:
            for it in rec.items:
                db["descriptors"][it["handle"]] = {"handle": it["handle"], "uuid": it["uuid"]}


@consume_cid(0x0004)
def _factory(ctx: BuildContext) -> AttSession:
    return AttSession(ctx)


@consume_psm(0x001F)
def _factory_bredr(ctx: BuildContext) -> AttSession:
    return AttSession(ctx)


def finish_att(analysis: Any, ctx: BuildContext) -> None:
    """Publish ``analysis.extra["att"]``: transactions, notifications, discovered services."""
    st = ctx.state.get("att")
    if st is None or ctx.state.get("att_finished"):
        return
    ctx.state["att_finished"] = True
    services: dict[str, Any] = {}
    for conn_id, db in st["services"].items():
        svcs = sorted(db["services"].values(), key=lambda s: s["start_handle"] or 0)
        for s in svcs:
            s["characteristics"] = []
        chars = sorted(db["characteristics"].values(), key=lambda c: c["handle"] or 0)
        for c in chars:
            c["descriptors"] = []
            for s in svcs:
                if (s["start_handle"] or 0) <= (c["handle"] or 0) <= (s["end_handle"] or 0xFFFF):
                    s["characteristics"].append(c)
                    break
        for h, d in sorted(db["descriptors"].items()):
            owner = None
            for c in chars:
                if (c["value_handle"] or 0) < h:
                    owner = c
            if owner is not None and not d["uuid"].startswith("0x28"):
                owner["descriptors"].append(d)
        services[conn_id] = {
            "address": db["address"],
            "server": db["server"],
            "mtu": st["mtu"].get(conn_id),
            "services": svcs,
            "orphan_characteristics": [c for c in chars if not any(
                c in s["characteristics"] for s in svcs)],
        }  # fmt: skip
    analysis.extra["att"] = {
        "transactions": st["transactions"],
        "notifications": list(st["notifications"].values()),
        "pdus_by_opcode": st["opcodes"],
        "opcode_counts": dict(sorted(st["opcode_counts"].items())),
        "services": services,
    }


__all__ = ["AttSession", "AttTransaction", "finish_att"]
