"""SMP procedures (Core v5.4 Vol 3 Part H §2.3, §3) and LE pairing attempts.

Every SMP PDU is kept with its frame and time (``analysis.extra["smp"]["pdus"]``). A Pairing
Request or Security Request starts a *transaction* (§3.4: the 30 s SMP timer starts when either
is sent or received and restarts with every SMP PDU) whose first answer from the peer and last
PDU are recorded, so a timeout rule can check ``last_time_us`` against the next event.

A Pairing Request → Response exchange gives the pairing method (§2.3.5.1); Pairing Confirm /
Random (legacy, §2.3.5.5) or Public Key / DHKey Check (Secure Connections, §2.3.5.6) finish
phase 2; Pairing Failed gives the reason. :func:`finish_smp` (the ``smp`` build stage, after
the air pass so that sniffed links are included) merges each pairing into the HCI tracker's
LE :class:`PairingAttempt` of the same connection (LE Enable Encryption / LTK Request) or adds
one with transport ``le`` (``br_edr`` for cross-transport SMP on CID 0x0007).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.smp import REQUESTS, decode_smp, pairing_method
from analyzer.model import (
    Analysis,
    PairingAttempt,
    SmpPairingParams,
    SmpPairingSummary,
    SmpPdu,
    SmpPduRef,
    SmpSummary,
    SmpTransaction,
    TimelineEvent,
)
from analyzer.model.base import field_types
from analyzer.sessions.build import BuildContext, stage
from analyzer.sessions.l2cap import Pdu, on_cid

_PARAM_FIELDS = frozenset(n for n, _ in field_types(SmpPairingParams))


def _params(fields: dict[str, Any]) -> SmpPairingParams:
    """Pairing Request/Response parameters as the model keeps them."""
    return SmpPairingParams(**{k: v for k, v in fields.items() if k in _PARAM_FIELDS})


@dataclass
class SmpState:
    """SMP PDUs and procedures of every connection, gathered during pass 2."""

    pdus: list[SmpPdu] = field(default_factory=list)
    transactions: list[SmpTransaction] = field(default_factory=list)


@dataclass
class SmpSession:
    """SMP on one connection's fixed channel (0x0006 LE, 0x0007 BR/EDR)."""

    ctx: BuildContext
    _pairing: SmpTransaction | None = None  # the pairing in progress
    _security: SmpTransaction | None = None  # an unanswered Security Request
    _request_fields: dict[int, dict[str, Any]] = field(default_factory=dict)  # id(tx) → fields
    _phase2: dict[int, set[tuple[str, int]]] = field(default_factory=dict)  # (direction, opcode)

    def on_pdu(self, pdu: Pdu) -> None:
        rec = decode_smp(pdu.payload)
        st = self.ctx.shared(SmpState)
        if rec.anomaly:
            self.ctx.anomaly(pdu.frame, "smp", f"{rec.name}: {rec.anomaly}")
        conn = pdu.connection
        st.pdus.append(
            SmpPdu(pdu.frame, pdu.time_us, conn.id, pdu.cid, pdu.direction, rec.opcode, rec.name,
                   rec.reason, rec.reason_name)
        )  # fmt: skip
        op = rec.opcode
        if op is None:
            return
        short = SmpPduRef(pdu.frame, pdu.time_us, pdu.direction, rec.name)
        if op in REQUESTS:
            tx = SmpTransaction(
                connection=conn.id,
                address=conn.address,
                cid=pdu.cid,
                request=rec.name,
                frame=pdu.frame,
                time_us=pdu.time_us,
                direction=pdu.direction,
                last_frame=pdu.frame,
                last_time_us=pdu.time_us,
                request_params=_params(rec.fields),
                pdus=[short],
            )
            self._request_fields[id(tx)] = dict(rec.fields)
            st.transactions.append(tx)
            if op == 0x01:
                if self._security is not None and self._security.direction != pdu.direction:
                    self._answer(self._security, rec.name, pdu)
                    self._security.outcome = "completed"
                self._security = None
                if self._pairing is not None and self._pairing.outcome == "incomplete":
                    self.ctx.anomaly(pdu.frame, "smp", "Pairing Request during another pairing")
                self._pairing = tx
            else:
                self._security = tx
            return
        tx_opt = self._pairing
        if tx_opt is None:
            if self._security is not None and op == 0x05:
                tx_opt = self._security
            else:
                return
        tx = tx_opt
        tx.pdus.append(short)
        tx.last_frame, tx.last_time_us = pdu.frame, pdu.time_us
        if tx.response_frame is None and pdu.direction != tx.direction:
            self._answer(tx, rec.name, pdu)
        if op == 0x02:
            tx.response_params = _params(rec.fields)
            tx.method = pairing_method(self._request_fields.get(id(tx), {}), rec.fields)
        elif op == 0x05:
            tx.outcome = "failed"
            tx.reason, tx.reason_name = rec.reason, rec.reason_name
        elif op in (0x04, 0x0D):
            phase2 = self._phase2.setdefault(id(tx), set())
            phase2.add((pdu.direction, op))
            sc = bool(tx.method and tx.method.startswith("le_sc_"))
            done_op = 0x0D if sc else 0x04
            if len({d for d, o in phase2 if o == done_op}) == 2 and tx.outcome != "failed":
                tx.outcome = "completed"
        elif op in (0x06, 0x07, 0x08, 0x09, 0x0A):
            side = "initiator" if pdu.direction == tx.direction else "responder"
            tx.keys_distributed.append(f"{side}:{rec.name}")
            if tx.outcome == "incomplete":
                tx.outcome = "completed"  # keys travel only over an encrypted link

    @staticmethod
    def _answer(tx: SmpTransaction, name: str, pdu: Pdu) -> None:
        tx.response = name
        tx.response_frame, tx.response_time_us = pdu.frame, pdu.time_us
        tx.latency_ms = (pdu.time_us - tx.time_us) / 1000


@on_cid(0x0006)
def _factory_le(ctx: BuildContext) -> SmpSession:
    return SmpSession(ctx)


@on_cid(0x0007)
def _factory_bredr(ctx: BuildContext) -> SmpSession:
    return SmpSession(ctx)


@stage("smp", after=("le_air",))
def finish_smp(ctx: BuildContext) -> None:
    """Publish SMP transactions and merge SMP pairings into the pairing attempts (after the air
    pass, which adds the SMP of sniffed links)."""
    analysis = ctx.analysis
    st = ctx.shared(SmpState)
    txs = st.transactions
    pairing: list[PairingAttempt] = ctx.hci.pairing
    pairings = [t for t in txs if t.request == "Pairing Request"]
    for t in txs:
        if t.request == "Security Request" and t.outcome == "failed":
            # refused outright: a Pairing Failed in answer to the Security Request, no Pairing
            # Request in between (Vol 3 Part H §3.6.7: the central may reject the request)
            p = _new_attempt(t)
            p.details.security_request_frame = t.frame
            p.details.security_requested_by = "local" if t.direction == "sent" else "remote"
            _merge(p, t)
            pairing.append(p)
            _timeline(analysis, t)
    by_conn: dict[str | None, list[SmpTransaction]] = {}
    for t in pairings:
        by_conn.setdefault(t.connection, []).append(t)
    # the LE pairing attempts HCI saw on each link, by start frame: the SMP pairing of a link
    # takes the first (in list order) that started before the link's next SMP pairing; one
    # forward walk per link, not a scan of every attempt per pairing (issue 18 §2)
    attempts: dict[str | None, list[tuple[int, int]]] = {}
    for j, p in enumerate(pairing):
        if p.transport == "le" and p.connection in by_conn:
            attempts.setdefault(p.connection, []).append((p.start_frame, j))
    for conn_id, lst in by_conn.items():
        lst.sort(key=lambda t: t.frame)
        cands = sorted(attempts.get(conn_id, []))
        k = 0
        for i, t in enumerate(lst):
            nxt = lst[i + 1].frame if i + 1 < len(lst) else None
            while k < len(cands) and cands[k][0] < t.frame:
                k += 1  # started before this pairing: never matched later either
            window = []
            while k < len(cands) and (nxt is None or cands[k][0] < nxt):
                window.append(cands[k][1])
                k += 1
            if window:
                p = pairing[min(window)]
            else:
                p = _new_attempt(t)
                pairing.append(p)
            _merge(p, t)
            _timeline(analysis, t)
    analysis.smp = SmpSummary(transactions=txs, pdus=st.pdus)


def _new_attempt(t: SmpTransaction) -> PairingAttempt:
    return PairingAttempt(
        address=t.address,
        connection=t.connection,
        transport="le" if t.cid == 0x0006 else "br_edr",
        start_frame=t.frame,
        start_time_us=t.time_us,
    )


def _merge(p: PairingAttempt, t: SmpTransaction) -> None:
    p.start_frame = min(p.start_frame, t.frame)
    p.start_time_us = min(p.start_time_us, t.time_us)
    if t.method:
        p.method = t.method
        if p.link_key_request == "reply" and not p.details.ltk_request:
            p.link_key_request = None  # the STK / new LTK of this pairing, not a stored key
    p.io_capability_local = p.io_capability_local or _io(t, local=True)
    p.io_capability_remote = p.io_capability_remote or _io(t, local=False)
    p.frames = sorted(set(p.frames) | {x.frame for x in t.pdus})
    p.details.smp = SmpPairingSummary(
        request_frame=t.frame,
        initiator="local" if t.direction == "sent" else "remote",
        request=t.request_params,
        response=t.response_params,
        keys_distributed=list(t.keys_distributed),
        outcome=t.outcome,
    )
    if t.outcome == "failed":
        failed_by = [x.direction for x in t.pdus if x.name == "Pairing Failed"]
        if failed_by:
            p.details.smp_failed_by = "local" if failed_by[-1] == "sent" else "remote"
        p.outcome = "failure"
        p.status = None
        p.status_name = f"SMP Pairing Failed: {t.reason_name}"
        p.details.smp_reason = t.reason
        p.details.smp_reason_name = t.reason_name
        p.end_time_us = t.last_time_us
    elif t.outcome == "completed" and p.outcome == "unknown":
        p.outcome = "success"
        p.end_time_us = p.end_time_us or t.last_time_us
    elif t.outcome == "incomplete" and p.outcome == "unknown":
        p.details.smp_incomplete = True


def _io(t: SmpTransaction, local: bool) -> str | None:
    # the request comes from the initiator; "sent" = the capturing host (air: the central)
    init_local = t.direction == "sent"
    params = t.request_params if init_local == local else t.response_params
    return params.io_capability_name if params is not None else None


def _timeline(analysis: Analysis, t: SmpTransaction) -> None:
    text = f"SMP pairing ({t.method or 'method unknown'}): {t.outcome}"
    if t.reason_name:
        text += f" ({t.reason_name})"
    analysis.timeline.append(
        TimelineEvent(
            t.time_us,
            t.frame,
            t.connection or "?",
            "pair",
            text,
            "error" if t.outcome == "failed" else "info",
        )
    )


__all__ = ["SmpSession", "SmpTransaction", "finish_smp"]
