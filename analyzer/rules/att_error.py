"""``att_error``: an ATT Error Response that stops an app (Core v5.4 Vol 3 Part F §3.4.1.1,
§4 error codes) — Insufficient Authentication (0x05), Authorization (0x08), Encryption (0x0F) or
Encryption Key Size (0x0C) on any request, and any error on a write to a Client Characteristic
Configuration descriptor (enabling notifications/indications, Vol 3 Part G §3.3.3.3) — with what
followed: the same request retried and answered, or the link secured after a security error as
the error asks (pairing, encryption), is a recovery (info); a link closed soon after, with no
successful retry, is an error (the app gave up); else a warning. Attribute Not Found ends every
GATT discovery and is not a failure.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterator

from analyzer.model import Analysis, AttTransaction
from analyzer.model.analysis import memo
from analyzer.rules.base import Finding, RuleContext, Threshold, rule

#: the errors that mean "secure the link first" (Vol 3 Part F Table 3.4)
SECURITY_ERRORS = {0x05: "authentication", 0x08: "authorization", 0x0C: "a longer key",
                   0x0F: "encryption"}  # fmt: skip
GAVE_UP = Threshold(
    "gave_up_s", 10.0, "s", "a link closed this soon after the error, unretried, is an error"
)
WRITES = frozenset({0x12, 0x16, 0x52})  # Write Request, Prepare Write, Write Command


def cccd_handles(a: Analysis, connection: str | None) -> set[int]:
    """Handles of the Client Characteristic Configuration descriptors discovered on a link."""
    server = a.att.services.get(connection or "")
    if server is None:
        return set()
    return {
        d.handle
        for s in server.services
        for c in s.characteristics
        for d in c.descriptors
        if d.uuid.startswith("0x2902")
    }


def _answered(a: Analysis) -> dict[Hashable, tuple[list[int], list[AttTransaction]]]:
    """Answered requests by (link or device, opcode, handle), by request frame."""
    rows: dict[Hashable, list[tuple[int, int, AttTransaction]]] = {}
    for n, o in enumerate(a.att.transactions):
        if o.response_frame is not None and o.error is None:
            for kind, who in (("conn", o.connection), ("addr", o.address)):
                rows.setdefault((kind, who, o.request_opcode, o.handle), []).append(
                    (o.request_frame, n, o)
                )
    out: dict[Hashable, tuple[list[int], list[AttTransaction]]] = {}
    for k, v in rows.items():
        v.sort(key=lambda r: (r[0], r[1]))
        out[k] = ([r[0] for r in v], [r[2] for r in v])
    return out


def _retried_ok(a: Analysis, tx: AttTransaction) -> AttTransaction | None:
    """The same request answered later, on this link or a later link to the same device."""
    answered = memo(a, "att_error:answered", lambda: _answered(a))
    keys = [("conn", tx.connection)] + ([("addr", tx.address)] if tx.address else [])
    found = []
    for kind, who in keys:
        frames, txs = answered.get((kind, who, tx.request_opcode, tx.handle), ([], []))
        k = bisect.bisect_right(frames, tx.request_frame)
        if k < len(frames):
            found.append(txs[k])
    return min(found, key=lambda o: o.request_frame) if found else None


@rule(
    id="att_error",
    severity="warning",
    title="ATT request refused",
    summary="an ATT request refused for security (authentication, authorization, encryption, "
    "key size), or a CCCD write refused, with whether a retry succeeded or the link closed",
    thresholds=[GAVE_UP],
    example="Tracker (AA:BB:CC:DD:EE:FF) refused the host's Write Request to handle 0x0019 "
    "(Client Characteristic Configuration): 0x08 Insufficient Authorization (frame 287); the "
    "link was closed 0.6 s later without a retry",
)
def att_error(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    gave_up_us = ctx.threshold("gave_up_s") * 1e6
    cccds: dict[str | None, set[int]] = {}
    for tx in a.att.transactions:
        if tx.error is None or tx.response_frame is None:
            continue
        if tx.connection not in cccds:
            cccds[tx.connection] = cccd_handles(a, tx.connection)
        cccd = tx.request_opcode in WRITES and tx.handle in cccds[tx.connection]
        if tx.error not in SECURITY_ERRORS and not cccd:
            continue
        conn = a.connection(tx.connection)
        refuser = a.device_label(tx.address) if tx.direction == "sent" else a.host
        asker = a.host if tx.direction == "sent" else a.device_label(tx.address)
        target = f"handle {tx.handle:#06x}" if tx.handle is not None else "an attribute"
        if cccd:
            target += " (Client Characteristic Configuration: enabling notifications)"
        retry = _retried_ok(a, tx)
        need = SECURITY_ERRORS.get(tx.error)
        encrypted = conn.encryption_ok_frames if conn else []
        enc_before = [f for f in encrypted if f < tx.request_frame]
        closed = (
            conn is not None
            and conn.end_time_us is not None
            and tx.response_time_us is not None
            and conn.end_time_us - tx.response_time_us <= gave_up_us
        )
        secured = [f for f in encrypted if f > (tx.response_frame or 0)]
        if retry is not None:
            sev, then = "info", f"; retried and answered at frame {retry.response_frame}"
        elif secured and need:
            sev, then = (
                "info",
                (
                    f"; the link was then secured (frame {secured[0]}), as the error asks (a retry "
                    "over the encrypted link is not visible in this capture)"
                ),
            )
        elif closed and conn is not None:
            gap = ((conn.end_time_us or 0) - (tx.response_time_us or 0)) / 1e6
            sev, then = "error", f"; the link was closed {gap:.1f} s later without a retry"
        else:
            sev, then = "warning", "; never retried"
        yield ctx.finding(
            key=f"{tx.error:#04x}/{tx.request}" + ("/cccd" if cccd else ""),
            severity=sev,
            message=f"{refuser[0].upper() + refuser[1:]} refused {asker}'s {tx.request} to "
            f"{target}: {tx.error:#04x} {tx.error_name} (frame {tx.response_frame}){then}",
            explanation=(
                f"The link was already encrypted (frame {enc_before[-1]}), so this is not a "
                f"pairing problem: the device requires its own {need} (an application-level "
                "check or a stronger key) before it accepts the request."
                if need and enc_before
                else f"The attribute requires {need} before it can be used; the client must "
                "pair or encrypt the link (with a long enough key) and retry."
                if need
                else "The server refused the write that turns on notifications/indications; "
                "until it succeeds the app receives no updates from this characteristic."
            )
            + (" The retry succeeded." if retry else ""),
            fix=(
                "Nothing to do: the link was secured as the error asks."
                if sev == "info"
                else "Check the device's own authorization step (its app or a button press) and "
                "whether it needs an MITM-protected (passkey / numeric comparison) bond."
                if need and enc_before
                else f"Pair the device (bond) before using this characteristic, or let {a.host} "
                "react to the error by pairing and retrying (Android starts pairing on 0x05/0x0F "
                "only for bonded-capable apps); check the device's security settings."
            ),
            address=tx.address,
            connection=tx.connection,
            time_us=tx.response_time_us,
            frames=[tx.request_frame, tx.response_frame]
            + ([conn.end_frame] if closed and conn and conn.end_frame else []),
            details={
                "request": tx.request,
                "handle": tx.handle,
                "error": tx.error,
                "error_name": tx.error_name,
                "cccd": cccd,
                "retried_frame": retry.response_frame if retry else None,
            },
        )
