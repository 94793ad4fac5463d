"""``sdp_error``: an SDP Error Response (Core v5.4 Vol 3 Part B §4.4.1: 0x0001 unsupported
version, 0x0002 invalid record handle, 0x0003 invalid syntax, 0x0004 invalid PDU size, 0x0005
invalid continuation state, 0x0006 insufficient resources), and a profile the phone connected
although the device's SDP answer listed no record for it (e.g. an AVDTP channel opened after the
search for Audio Sink came back empty): the profile is then used without the device announcing it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from analyzer.model import Analysis, L2capChannel, SdpTransaction
from analyzer.rules.base import Finding, RuleContext, rule

#: service UUID searched → (PSM of the profile's channel, profile name)
PROFILE_OF_UUID = {
    "0x110B": (0x0019, "A2DP (Audio Sink)"),
    "0x110A": (0x0019, "A2DP (Audio Source)"),
    "0x110D": (0x0019, "A2DP"),
    "0x111E": (0x0003, "HFP (Handsfree)"),
    "0x111F": (0x0003, "HFP (Audio Gateway)"),
    "0x1108": (0x0003, "HSP"),
    "0x1112": (0x0003, "HSP (Audio Gateway)"),
    "0x1101": (0x0003, "Serial Port"),
    "0x1124": (0x0011, "HID"),
}


def _empty(t: SdpTransaction) -> bool:
    """The search answered with no record at all."""
    if t.response_frame is None or t.error_code is not None:
        return False
    return not t.records and not t.services


@rule(
    id="sdp_error",
    severity="warning",
    title="SDP error or missing service record",
    summary="an SDP Error Response, or a profile connected although the device's SDP search "
    "for it found no record",
    example="Headset (AA:BB:CC:DD:EE:FF) answered SDP ServiceSearchAttributeRequest with "
    "Error Response 0x0003 Invalid Request Syntax (frame 80)",
)
def sdp_error(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    groups: dict[tuple[str | None, str, int], list[SdpTransaction]] = {}
    for t in a.sdp:
        if t.error_code is not None:
            groups.setdefault((t.address, t.direction, t.error_code), []).append(t)
    for (addr, direction, code), ts in groups.items():
        t = ts[0]
        who = a.device_label(addr) if direction == "sent" else a.host
        times = f" ({len(ts)} times)" if len(ts) > 1 else ""
        yield ctx.finding(
            message=f"{who[0].upper() + who[1:]} answered SDP {t.pdu} with Error Response "
            f"{code:#06x} {t.error_name} (frame {t.response_frame}){times}",
            explanation="An SDP request is answered with the matching response PDU; an Error "
            f"Response ({t.error_name}) means the request was refused, so the "
            "services it asked about stay unknown and the profile may not connect.",
            fix="Retry the connection; if the error repeats, forget and re-pair, and update "
            "the device's firmware.",
            address=addr,
            connection=t.connection,
            time_us=t.response_time_us,
            frames=sorted({f for x in ts for f in (x.request_frame, x.response_frame) if f}),
            count=len(ts),
            details={"error_code": code, "error_name": t.error_name, "pdu": t.pdu},
        )
    yield from _missing_records(ctx)


class _SdpIndex:
    """For :func:`_missing_records`, built once (not a scan per empty answer, issue 18 §2): the
    channels this host opened to each device and PSM by request frame, and the last search of
    each device that found each profile UUID."""

    def __init__(self, a: Analysis) -> None:
        addr_of = {c.id: c.address for c in a.connections}
        rows: dict[tuple[str | None, int | None], list[tuple[int, int, L2capChannel]]] = {}
        for n, ch in enumerate(a.l2cap_channels):
            if ch.result == 0 and ch.requester == "local" and ch.connection in addr_of:
                rows.setdefault((addr_of[ch.connection], ch.psm), []).append(
                    (ch.request_frame or 0, n, ch)
                )
        self.opened: dict[tuple[str | None, int | None], tuple[list[int], list[L2capChannel]]]
        self.opened = {}
        for k, v in rows.items():
            v.sort(key=lambda r: (r[0], r[1]))
            self.opened[k] = ([r[0] for r in v], [r[2] for r in v])
        self.last_found: dict[tuple[str | None, str], int] = {}
        for o in a.sdp:
            if _empty(o) or o.response_frame is None:
                continue
            text = " ".join(o.uuids).upper().replace("0X", "0x")
            for key in PROFILE_OF_UUID:
                if key in text:
                    k2 = (o.address, key)
                    self.last_found[k2] = max(self.last_found.get(k2, -1), o.request_frame)

    def opened_after(self, addr: str | None, psm: int, frame: int) -> L2capChannel | None:
        frames, chans = self.opened.get((addr, psm), ([], []))
        k = bisect.bisect_right(frames, frame)
        return chans[k] if k < len(chans) else None


def _missing_records(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    seen: set[tuple[str | None, str]] = set()
    idx = _SdpIndex(a)
    for t in a.sdp:
        if t.direction != "sent" or not _empty(t):
            continue
        for u in t.uuids:
            key = u.split()[0].upper().replace("0X", "0x") if u else ""
            prof = PROFILE_OF_UUID.get(key)
            if prof is None or (t.address, key) in seen:
                continue
            psm, pname = prof
            ch = idx.opened_after(t.address, psm, t.request_frame)
            if ch is None:
                continue
            # a later search that did find it clears the doubt
            if idx.last_found.get((t.address, key), -1) > t.request_frame:
                continue
            seen.add((t.address, key))
            yield ctx.finding(
                message=f"{a.Host} opened {ch.psm_name} to {a.device_label(t.address)} "
                f"(frame {ch.request_frame}) although its SDP search for {u} found no record "
                f"(frame {t.response_frame})",
                explanation=f"A device announces each profile with an SDP record; {a.host} "
                f"searched for {pname} and got an empty answer, then connected the profile "
                "anyway. A device that does not announce a profile may not support it, or "
                "its SDP database is broken; the profile can fail or behave oddly.",
                fix=f"Forget and re-pair the device so {a.host} reads its services again; "
                "update the device's firmware.",
                address=t.address,
                connection=ch.connection,
                time_us=t.response_time_us,
                frames=[t.request_frame, t.response_frame or 0, ch.request_frame or 0],
                details={"uuid": u, "profile": pname, "psm": psm, "kind": "missing_record"},
            )
