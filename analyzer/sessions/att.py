"""ATT transactions and GATT discovery per connection (Core v5.4 Vol 3 Part F §3.3, Part G §4).

ATT is sequential (§3.3.2): a client has at most one request outstanding, answered by its
response or an Error Response naming the request opcode; an indication waits for its
confirmation (§3.3.3). Requests are paired per connection and per requesting side; a new request
while one is outstanding leaves the old one unanswered. Notifications are counted per handle.

GATT discovery responses are read against the request that asked (§4.4 primary services via
Read By Group Type 0x2800 or Find By Type Value, §4.6 characteristics via Read By Type 0x2803,
§4.7 descriptors via Find Information) into a per-connection service table.
:func:`finish_att` publishes ``analysis.att``.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field

from analyzer.decode.att import RESPONSE_OF, AttPdu, characteristic_decl, decode_att
from analyzer.decode.le_adv import uuid_label
from analyzer.model import (
    AttNotification,
    AttSummary,
    AttTransaction,
    GattCharacteristic,
    GattDescriptor,
    GattServer,
    GattService,
)
from analyzer.sessions.build import BuildContext, stage
from analyzer.sessions.l2cap import Pdu, on_cid, on_psm

_ANSWER_OF = {v: k for k, v in RESPONSE_OF.items()}


@dataclass
class _GattDb:
    """What discovery has found on one connection's server so far, by handle."""

    address: str | None
    server: str
    services: dict[int, GattService] = field(default_factory=dict)
    characteristics: dict[int, GattCharacteristic] = field(default_factory=dict)
    descriptors: dict[int, GattDescriptor] = field(default_factory=dict)


@dataclass
class AttState:
    """ATT traffic of every connection, gathered during pass 2."""

    transactions: list[AttTransaction] = field(default_factory=list)
    services: dict[str, _GattDb] = field(default_factory=dict)  # connection id → discovery
    notifications: dict[tuple[str, str, int | None], AttNotification] = field(default_factory=dict)
    opcodes: dict[str, int] = field(default_factory=dict)  # PDU name → count
    opcode_counts: dict[str, int] = field(default_factory=dict)  # "0x0A" → count
    mtu: dict[str, int] = field(default_factory=dict)  # connection id → negotiated MTU


@dataclass
class AttSession:
    ctx: BuildContext
    _pending: dict[str, AttTransaction] = field(default_factory=dict)  # requester dir → tx
    _indication: dict[str, AttTransaction] = field(default_factory=dict)
    _request_pdus: dict[int, AttPdu] = field(default_factory=dict)  # id(tx) → decoded request

    def on_pdu(self, pdu: Pdu) -> None:
        rec = decode_att(pdu.payload)
        st = self.ctx.shared(AttState)
        if rec.anomaly:
            self.ctx.anomaly(pdu.frame, "att", f"{rec.name}: {rec.anomaly}")
        if rec.opcode is None:
            return
        st.opcodes[rec.name] = st.opcodes.get(rec.name, 0) + 1
        key = f"0x{rec.opcode:02X}"
        st.opcode_counts[key] = st.opcode_counts.get(key, 0) + 1
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
            )
            self._request_pdus[id(tx)] = rec
            table[pdu.direction] = tx
            st.transactions.append(tx)
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
                n = st.notifications.get(nkey)
                if n is None:
                    st.notifications[nkey] = AttNotification(
                        conn.id, pdu.direction, h, 1, pdu.frame, pdu.frame
                    )
                else:
                    n.count += 1
                    n.last_frame = pdu.frame

    def _discovery(
        self,
        st: AttState,
        tx: AttTransaction,
        rec: AttPdu,
        conn_id: str,
        address: str | None,
        server_dir: str,
    ) -> None:
        req = self._request_pdus.pop(id(tx), None)
        if req is None:
            return
        if rec.opcode == 0x03 and rec.mtu is not None and req.mtu is not None:
            st.mtu[conn_id] = min(rec.mtu, req.mtu)
            return
        db = st.services.setdefault(
            conn_id, _GattDb(address, "remote" if server_dir == "received" else "local")
        )
        t = (req.attr_type or "").split(" ")[0]
        if rec.opcode == 0x11 and t in ("0x2800", "0x2801"):
            for it in rec.items:
                db.services[it["handle"]] = GattService(
                    it["handle"], it.get("end_handle"), uuid_label(it["value"]), t == "0x2800"
                )
        elif rec.opcode == 0x07 and t == "0x2800":
            for it in rec.items:
                db.services[it["handle"]] = GattService(
                    it["handle"], it.get("end_handle"), uuid_label(req.value), True
                )
        elif rec.opcode == 0x09 and t == "0x2803":
            for it in rec.items:
                decl = characteristic_decl(it["value"])
                if decl is not None:
                    db.characteristics[it["handle"]] = GattCharacteristic(
                        it["handle"], decl["properties"], decl["value_handle"], decl["uuid"]
                    )
        elif rec.opcode == 0x05:
            for it in rec.items:
                db.descriptors[it["handle"]] = GattDescriptor(it["handle"], it["uuid"])


@on_cid(0x0004)
def _factory(ctx: BuildContext) -> AttSession:
    return AttSession(ctx)


@on_psm(0x001F)
def _factory_bredr(ctx: BuildContext) -> AttSession:
    return AttSession(ctx)


@stage("att", after=("le_air",))
def finish_att(ctx: BuildContext) -> None:
    """Publish ``analysis.att``: transactions, notifications, discovered services (after the air
    pass, which adds the ATT of sniffed links)."""
    st = ctx.shared(AttState)
    services: dict[str, GattServer] = {}
    for conn_id, db in st.services.items():
        svcs = sorted(db.services.values(), key=lambda s: s.start_handle or 0)
        for s in svcs:
            s.characteristics = []
        chars = sorted(db.characteristics.values(), key=lambda c: c.handle or 0)
        # each characteristic in the first service (by start) whose range holds it: among the
        # services starting at or before it, the first whose end reaches it (bisects over the
        # starts and the running maximum of the ends, not a scan per characteristic)
        starts = [s.start_handle or 0 for s in svcs]
        reach = list(itertools.accumulate((s.end_handle or 0xFFFF for s in svcs), max))
        for c in chars:
            c.descriptors = []
            h = c.handle or 0
            i = bisect.bisect_left(reach, h)
            if i < bisect.bisect_right(starts, h):
                svcs[i].characteristics.append(c)
        # each descriptor to the last characteristic (in handle order) whose value comes before
        # it: one sweep over both in handle order
        by_value = sorted(range(len(chars)), key=lambda i: chars[i].value_handle or 0)
        k, owner_i = 0, -1
        for h, d in sorted(db.descriptors.items()):
            while k < len(by_value) and (chars[by_value[k]].value_handle or 0) < h:
                owner_i = max(owner_i, by_value[k])
                k += 1
            if owner_i >= 0 and not d.uuid.startswith("0x28"):
                chars[owner_i].descriptors.append(d)
        in_service = {id(c) for s in svcs for c in s.characteristics}
        services[conn_id] = GattServer(
            address=db.address,
            server=db.server,
            mtu=st.mtu.get(conn_id),
            services=svcs,
            orphan_characteristics=[c for c in chars if id(c) not in in_service],
        )
    ctx.analysis.att = AttSummary(
        transactions=st.transactions,
        notifications=list(st.notifications.values()),
        pdus_by_opcode=st.opcodes,
        opcode_counts=dict(sorted(st.opcode_counts.items())),
        services=services,
    )


__all__ = ["AttSession", "AttTransaction", "finish_att"]
