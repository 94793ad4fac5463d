"""SDP transactions (Core v5.4 Vol 3 Part B §4): one per request, with its response(s).

A request and its response share a transaction id (§4.2); a response with a non-empty
continuation state (§4.3) is followed by the same request repeated with that state, until the
last response — the partial AttributeLists bytes are joined before the records are parsed. The
PnP Information record (0x1200) gives the remote's Device ID (vendor, product, version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.sdp import (
    SdpPdu,
    Uuid,
    decode_sdp,
    parse_attribute_list,
    parse_attribute_lists,
    pnp_info,
    rfcomm_channel,
    service_classes,
    uuid_name,
)
from analyzer.model import DeviceId, DeviceIdSeen, SdpRecord, SdpTransaction, TimelineEvent
from analyzer.sessions.build import BuildContext
from analyzer.sessions.l2cap import Pdu, on_psm

RESPONSE_OF = {0x02: 0x03, 0x04: 0x05, 0x06: 0x07}
PNP_INFORMATION = 0x1200
#: 16-bit UUIDs of service classes and profiles (Assigned Numbers §3.3: 0x1000-0x1FFF); a search
#: pattern's protocol UUIDs (L2CAP 0x0100, RFCOMM 0x0003 …) say nothing of the record's class
SERVICE_CLASS_RANGE = range(0x1000, 0x2000)


@dataclass
class SdpIndex:
    """The records of RFCOMM server channels by (address, channel, owner), the latest
    transaction's first (shared by the SDP channels of a capture): the RFCOMM pass names a
    DLC's profile with a look-up, not a scan of every transaction (issue 18 §2)."""

    position: dict[int, int] = field(default_factory=dict)  # id(transaction) → its place
    latest: dict[tuple[str | None, int, str], tuple[int, SdpRecord]] = field(default_factory=dict)

    def add(self, tx: SdpTransaction, record: SdpRecord) -> None:
        if record.rfcomm_channel is None:
            return
        pos = self.position.get(id(tx), -1)
        owner = "remote" if tx.direction == "sent" else "local"  # we asked: the remote's records
        key = (tx.address, record.rfcomm_channel, owner)
        old = self.latest.get(key)
        if old is None or pos > old[0]:
            self.latest[key] = (pos, record)

    def record_for(self, address: str | None, channel: int, owner: str | None) -> SdpRecord | None:
        """The record of ``channel`` on ``address`` (of ``owner``'s records, or either's)."""
        found = [
            x
            for o in (("remote", "local") if owner is None else (owner,))
            if (x := self.latest.get((address, channel, o))) is not None
        ]
        return max(found, key=lambda x: x[0])[1] if found else None


@dataclass
class SdpChannelSession:
    ctx: BuildContext
    # (asker direction, tid) → open transaction and its accumulated attribute bytes
    _open: dict[tuple[str, int], tuple[SdpTransaction, bytearray]] = field(default_factory=dict)
    # a continued request (same pdu, new tid) continues the previous transaction
    _continuing: dict[str, tuple[SdpTransaction, bytearray]] = field(default_factory=dict)
    # id() of a ServiceSearchAttribute transaction → the service-class UUIDs of its pattern
    _pattern_classes: dict[int, list[int]] = field(default_factory=dict)

    def on_pdu(self, pdu: Pdu) -> None:
        rec = decode_sdp(pdu.payload)
        if rec.anomaly:
            self.ctx.anomaly(pdu.frame, "sdp", f"{rec.name}: {rec.anomaly}")
        if rec.tid is None:
            return
        if rec.is_request:
            self._request(rec, pdu)
        else:
            asker = "received" if pdu.direction == "sent" else "sent"
            entry = self._open.pop((asker, rec.tid), None)
            if entry is None:
                self.ctx.anomaly(pdu.frame, "sdp", f"{rec.name} tid {rec.tid} with no request")
                return
            self._response(entry, rec, pdu, asker)

    def _request(self, rec: SdpPdu, pdu: Pdu) -> None:
        cont = self._continuing.pop(pdu.direction, None)
        if rec.continuation and cont is not None and cont[0].pdu == rec.name:
            tx, acc = cont
            tx.continuations += 1
            tx.frames.append(pdu.frame)
            tx.last_request_frame, tx.last_request_time_us = pdu.frame, pdu.time_us
        else:
            tx = SdpTransaction(
                connection=pdu.connection.id,
                address=pdu.connection.address,
                tid=rec.tid or 0,
                pdu=rec.name,
                request_frame=pdu.frame,
                request_time_us=pdu.time_us,
                direction=pdu.direction,
                frames=[pdu.frame],
                uuids=[_uuid_str(u) for u in rec.uuids],
                attribute_ranges=[
                    [x, x] if isinstance(x, int) else [x[0], x[1]] for x in rec.attr_ids
                ],
            )
            acc = bytearray()
            self.ctx.shared(SdpIndex).position[id(tx)] = len(self.ctx.analysis.sdp)
            self.ctx.analysis.sdp.append(tx)
            if rec.pdu_id == 0x06:
                classes = [
                    s for u in rec.uuids if (s := u.short) is not None and s in SERVICE_CLASS_RANGE
                ]
                if classes:
                    self._pattern_classes[id(tx)] = classes
        self._open[(pdu.direction, rec.tid or 0)] = (tx, acc)

    def _response(
        self, entry: tuple[SdpTransaction, bytearray], rec: SdpPdu, pdu: Pdu, asker: str
    ) -> None:
        tx, acc = entry
        tx.frames.append(pdu.frame)
        tx.response_frame = pdu.frame
        tx.response_time_us = pdu.time_us
        tx.response_pdu = rec.name
        tx.latency_ms = (pdu.time_us - tx.request_time_us) / 1000
        if rec.pdu_id == 0x01:
            tx.error_code, tx.error_name = rec.error_code, rec.error_name
            return
        acc += rec.attribute_bytes
        if rec.continuation:
            self._continuing[asker] = (tx, acc)
            return
        if rec.pdu_id == 0x03:
            tx.records = [SdpRecord(handle=h) for h in rec.handles]
            return
        parse = parse_attribute_lists if rec.pdu_id == 0x07 else parse_attribute_list
        records = parse(bytes(acc))
        if records.anomaly:
            self.ctx.anomaly(pdu.frame, "sdp", f"attribute lists: {records.anomaly}")
        self._records(tx, records.records, pdu)

    def _records(self, tx: SdpTransaction, records: list[dict[int, Any]], pdu: Pdu) -> None:
        hci = self.ctx.hci
        remote_answered = pdu.direction == "received"
        dev = hci.device(tx.address) if (tx.address and remote_answered) else None
        pattern = self._pattern_classes.get(id(tx), [])
        for rec in records:
            r = rec
            from_pattern = False
            if pattern and 0x0001 not in r:
                # the ServiceClassIDList was not asked for (e.g. only the DI attributes
                # 0x0200-0x0205, or only the protocol list): every returned record contains
                # every UUID of the search pattern (Core Vol 3 Part B §2.5.2), so the pattern's
                # service classes are its classes
                r = {**rec, 0x0001: [Uuid(c, 2) for c in pattern]}
                from_pattern = True
            classes = service_classes(r)
            names = [uuid_name(c) for c in classes]
            summary = SdpRecord(
                handle=_num(r.get(0x0000)),
                service_classes=[f"0x{c:04X}" for c in classes],
                service_names=names,
                classes_from="search pattern" if from_pattern else None,
                rfcomm_channel=rfcomm_channel(r),
            )
            name = r.get(0x0100)
            if isinstance(name, bytes | str):
                summary.name = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
            pnp = pnp_info(r)
            if pnp is not None:
                summary.device_id = DeviceId(
                    pnp.vendor_id, pnp.product_id, pnp.version, pnp.vendor_id_source
                )
                if dev is not None:
                    dev.device_id = summary.device_id
                    dev.device_ids_seen.append(
                        DeviceIdSeen(
                            tx.connection,
                            pdu.frame,
                            pdu.time_us,
                            pnp.vendor_id,
                            pnp.product_id,
                            pnp.version,
                            pnp.vendor_id_source,
                        )
                    )
            tx.records.append(summary)
            self.ctx.shared(SdpIndex).add(tx, summary)
            for n in names:
                if n not in tx.services:
                    tx.services.append(n)
                if dev is not None and n not in dev.services:
                    dev.services.append(n)
        self.ctx.analysis.timeline.append(
            TimelineEvent(
                pdu.time_us,
                pdu.frame,
                tx.connection or "?",
                "sdp",
                f"SDP {tx.pdu}: {', '.join(tx.services) or 'no records'}",
            )
        )


def _num(v: Any) -> int | None:
    return v if isinstance(v, int) else None


def _uuid_str(u: Any) -> str:
    name = getattr(u, "name", None)
    return f"{u} {name}" if name else str(u)


@on_psm(0x0001)
def _factory(ctx: BuildContext) -> SdpChannelSession:
    return SdpChannelSession(ctx)
