"""``pairing_failed``: a pairing that failed, with the reason named — BR/EDR Secure Simple
Pairing (Simple Pairing Complete / Authentication Complete status, Core v5.4 Vol 4 Part E
§7.7.45/§7.7.6), legacy PIN pairing (PIN Code Request Negative Reply, §7.1.11) and LE SMP
(Pairing Failed reason, Vol 3 Part H §3.5.5). A stored key the remote rejected is not a pairing
failure but a stale bond (``auth_key_missing``); an encryption step that failed after the
pairing is ``encryption_failed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from analyzer.model import Analysis, PairingAttempt
from analyzer.model.analysis import memo
from analyzer.rules.base import Finding, RuleContext, rule

#: Vol 3 Part H §3.5.5 Table 3.7: SMP Pairing Failed reasons, explained
SMP_MEANING: dict[int, str] = {
    0x01: "the passkey entry failed or was cancelled on one side",
    0x02: "out-of-band data was required but is not available",
    0x03: "the two sides' security requirements (MITM / Secure Connections / bonding) "
    "cannot be met with their IO capabilities",
    0x04: "the confirm value did not match: a wrong passkey, or a different key on each side",
    0x05: "the device does not allow pairing (not in pairing mode, or pairing disabled)",
    0x06: "the resulting key would be shorter than the device accepts",
    0x07: "the device does not support an SMP command it received",
    0x08: "the device failed the pairing for an unspecified reason",
    0x09: "too little time passed since a previous failed attempt; the device backs off",
    0x0A: "a pairing PDU carried invalid parameters",
    0x0B: "the Secure Connections DHKey check failed",
    0x0C: "the user rejected the 6-digit comparison, or the values differed",
    0x0D: "a BR/EDR pairing with the same device is in progress",
    0x0E: "the device does not allow its BR/EDR key to be derived from LE pairing (or the reverse)",
    0x0F: "the device rejected the distributed key",
}
#: Vol 1 Part F error codes in Authentication / Simple Pairing Complete
HCI_MEANING: dict[int, str] = {
    0x05: "the keys computed on the two sides did not match (wrong PIN, or the user rejected "
    "the comparison)",
    0x06: "no PIN or key was given (the user cancelled, or the host had none)",
    0x08: "the link timed out during pairing",
    0x18: "pairing is not allowed (the device is not in pairing mode)",
    0x22: "the device stopped answering during pairing (LMP response timeout)",
    0x23: "both sides started a procedure at the same time",
    0x29: "the device demands unit keys, which are not supported",
    0x2F: "the security level cannot be reached (insufficient security)",
    0x37: "the device does not support Secure Simple Pairing",
    0x38: "the host is busy pairing with another device",
    0x3A: "the controller was busy",
}
KEY_REJECTIONS = frozenset({0x05, 0x06})
#: SMP reasons that judge the *other* side's PDU (§3.5.5): the sender rejected what it got
PEER_PDU_FAULTS = frozenset({0x07, 0x0A})


def _is_stale_key(p: PairingAttempt) -> bool:
    return p.link_key_request == "reply" and p.status in KEY_REJECTIONS


def _sender(a: Analysis, p: PairingAttempt) -> str | None:
    if p.details.smp_failed_by is not None:
        return a.host if p.details.smp_failed_by == "local" else "the device"
    failed = memo(a, "pairing_failed:failed_pdus", lambda: _pairing_failed_pdus(a))
    hits = [failed[f] for f in set(p.frames) if f in failed]
    if not hits:
        return None
    return a.host if min(hits)[1] == "sent" else "the device"


def _pairing_failed_pdus(a: Analysis) -> dict[int, tuple[int, str]]:
    """The first Pairing Failed PDU of each frame: (its place among the PDUs, direction)."""
    out: dict[int, tuple[int, str]] = {}
    for n, pdu in enumerate(a.smp.pdus):
        if pdu.opcode == 0x05:
            out.setdefault(pdu.frame, (n, pdu.direction))
    return out


def _fix(a: Analysis, p: PairingAttempt) -> str:
    if p.details.security_request_frame is not None and p.details.smp_failed_by == "local":
        return (
            f"The device asked to pair and {a.host} refused without trying: on Android an app "
            "must bond (createBond, or accept the pairing prompt) before it uses the device's "
            f"protected characteristics; check that {a.host} allows pairing (not blocked by a "
            "policy, not paired to too many devices) and that the IO capabilities can meet "
            "what the device asks (MITM needs a display or keyboard)."
        )
    if p.details.security_request_frame is not None:
        return (
            f"{a.host} asked the device to pair and the device refused: put it in pairing "
            "mode (or clear its bond list) and try again; update its firmware if it persists."
        )
    return (
        f"Put the device in pairing mode, forget it on {a.host}, and pair again, confirming "
        "the code on both sides promptly; if it keeps failing, restart both and update the "
        "device's firmware."
    )


@rule(
    id="pairing_failed",
    severity="error",
    title="Pairing failed",
    summary="an SSP, legacy PIN or LE SMP pairing failed (reason named); stored-key rejections "
    "are auth_key_missing",
    example="Pairing with Headset (AA:BB:CC:DD:EE:FF) failed: SMP Pairing Failed 0x05 Pairing "
    "Not Supported, sent by the device (frame 210)",
)
def pairing_failed(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    groups: dict[tuple[str | None, str, Any], list[PairingAttempt]] = {}
    for p in a.pairing:
        if p.outcome != "failure" or _is_stale_key(p):
            continue
        if p.details.encryption_status is not None and p.details.smp_reason is None:
            continue  # the encryption step failed: encryption_failed
        smp = p.details.smp_reason
        key = ("smp", smp) if smp is not None else ("hci", p.status)
        groups.setdefault((p.address, p.transport, key), []).append(p)
    for (addr, transport, (kind, code)), ps in groups.items():
        p = ps[-1]
        if kind == "smp":
            rname = p.details.smp_reason_name or "unknown reason"
            reason = f"SMP Pairing Failed {code:#04x} {rname}"
            meaning = SMP_MEANING.get(code, "the Pairing Failed PDU gave this reason")
            who = _sender(a, p)
            reason += f", sent by {who}" if who else ""
            if who and code in PEER_PDU_FAULTS:
                other = "the device" if who == a.host else a.host
                meaning += (
                    f" — {who} rejected what {other} sent: the fault is in {other}'s pairing "
                    "PDU, not in the side that refused it"
                )
            if p.details.security_request_frame is not None:
                asker = "the device" if p.details.security_requested_by == "remote" else a.host
                reason += (
                    f" in answer to {asker}'s Security Request (frame "
                    f"{p.details.security_request_frame}): pairing never started"
                )
        else:
            reason = f"{code:#04x} {p.status_name}" if code is not None else "no status"
            meaning = HCI_MEANING.get(code or -1, "the controller reported this error code")
            if p.details.pin_negative_reply:
                meaning = (
                    f"{a.host} declined the PIN request (PIN Code Request Negative "
                    "Reply): the user cancelled or no PIN was entered"
                )
        method = p.method or (
            "refused Security Request"
            if p.details.security_request_frame is not None
            else "method unknown"
        )
        times = f" ({len(ps)} times)" if len(ps) > 1 else ""
        last = p.frames[-1] if p.frames else p.start_frame
        yield ctx.finding(
            message=f"Pairing with {a.device_label(addr)} failed: {reason} "
            f"({method}, frame {last}){times}",
            explanation=f"Pairing ({method.replace('_', ' ')}) should end with a shared key; "
            f"it failed: {meaning}.",
            fix=_fix(a, p),
            address=addr,
            connection=p.connection,
            time_us=p.end_time_us or p.start_time_us,
            frames=sorted({f for x in ps for f in x.frames[-3:]}),
            count=len(ps),
            details={
                "transport": transport,
                "method": p.method,
                "layer": kind,
                "code": code,
                "reason": p.details.smp_reason_name if kind == "smp" else p.status_name,
                "link_key_request": p.link_key_request,
            },
        )
