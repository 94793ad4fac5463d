"""``l2cap_connection_refused``: an L2CAP channel the other side refused (Core v5.4 Vol 3 Part A
§4.3 Connection Response results 0x0002 PSM not supported, 0x0003 security block, 0x0004 no
resources, 0x0006/0x0007 bad source CID; §4.23/§4.26 LE credit based results incl. insufficient
authentication / authorization / encryption), naming the profile the channel was for.

Graded: a security refusal, or a refusal of a profile's main channel (AVDTP, RFCOMM, HID) is an
error; other refusals are warnings; either is one step milder when a later attempt for the same
profile on the same connection succeeded (e.g. both sides opening AVRCP at once).
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Connection, L2capChannel
from analyzer.rules.base import Finding, RuleContext, rule
from analyzer.rules.queries import opened_after

#: results meaning the requester's security level was not enough (BR/EDR 0x0003; LE 0x0005-0x0008)
SECURITY = {0x0003, 0x0005, 0x0006, 0x0007, 0x0008}
#: PSMs whose refusal stops a profile outright: RFCOMM, HID control/interrupt, AVDTP
MAIN_PSMS = {0x0003, 0x0011, 0x0013, 0x0019}
MEANING = {
    0x0002: "the device has no service on this PSM (the profile is not supported or disabled)",
    0x0003: "the device requires more security (authentication/encryption) before this "
    "channel, and the link did not have it",
    0x0004: "the device had no resources for another channel (often both sides opened the "
    "same channel at once)",
    0x0006: "the source channel id was invalid",
    0x0007: "the source channel id was already in use",
}
MILDER = {"error": "warning", "warning": "info", "info": "info"}


def _fix(conn: Connection | None, ch: L2capChannel, result: int, refuser: str, host: str) -> str:
    """Advice that fits the evidence: a security refusal on a link already encrypted is not
    cured by re-pairing for encryption."""
    enc = [f for f in (conn.encryption_ok_frames if conn else []) if f < (ch.response_frame or 0)]
    if result in SECURITY and enc:
        return (
            f"The link was already encrypted (frame {enc[-1]}) when {refuser} refused: it "
            "wants a stronger key (MITM-protected or Secure Connections) for this profile, or "
            "refuses it for another reason. Forget and re-pair with a method that confirms a "
            "code; update the refusing side's firmware."
        )
    if result in SECURITY:
        return (
            "The link was not yet encrypted: if the profile matters (audio, controls), forget "
            "and re-pair so the link is authenticated and encrypted before profiles connect; "
            "update the device's firmware."
        )
    return (
        f"Check that the profile is enabled for this device on {host}; update the device's "
        "firmware."
    )


@rule(
    id="l2cap_connection_refused",
    severity="warning",
    title="L2CAP channel refused",
    summary="an L2CAP connection was refused (PSM not supported, security block, no resources, "
    "...), naming the profile",
    example="Headset (AA:BB:CC:DD:EE:FF) refused the AVCTP (AVRCP) channel: 0x0003 Connection "
    "refused - security block (frame 573)",
)
def l2cap_connection_refused(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    groups: dict[tuple[str | None, int | None, int, str], list[L2capChannel]] = {}
    for ch in a.l2cap_channels:
        if ch.result in (None, 0, 1):
            continue
        conn = a.connection(ch.connection)
        addr = conn.address if conn else None
        if ch.benign is not None:
            ctx.suppress(
                what=f"L2CAP {ch.psm_name} channel refused: {ch.result:#06x} {ch.result_name}",
                why=ch.benign,
                frames=[f for f in (ch.request_frame, ch.response_frame) if f],
                address=addr,
                connection=ch.connection,
                time_us=ch.open_time_us,
            )
            continue
        groups.setdefault((addr, ch.psm, ch.result, ch.requester), []).append(ch)
    for (addr, psm, result, requester), chans in groups.items():
        ch = chans[0]
        recovered = []
        for x in chans:
            later = opened_after(a, x.connection, psm, x.request_frame or 0)
            if later is not None:
                recovered.append(later)
        sev = "error" if result in SECURITY or psm in MAIN_PSMS else "warning"
        all_recovered = len(recovered) == len(chans)
        if all_recovered:
            sev = MILDER[sev]
        label = a.device_label(addr)
        refuser, asker = (label, a.host) if requester == "local" else (a.host, label)
        times = f" ({len(chans)} times)" if len(chans) > 1 else ""
        rec = (
            f"; a later attempt succeeded (frame {recovered[0].response_frame})"
            if all_recovered
            else ""
        )
        prof = ch.psm_name + (" (AVRCP)" if ch.psm_name == "AVCTP" else "")
        yield ctx.finding(
            severity=sev,
            message=f"{refuser[0].upper() + refuser[1:]} refused the {prof} channel "
            f"{asker} asked for: {result:#06x} {ch.result_name} (frame "
            f"{ch.response_frame}){times}{rec}",
            explanation=f"Every profile runs over an L2CAP channel to its PSM "
            f"({f'0x{psm:04X}' if psm is not None else 'unknown PSM'} = {ch.psm_name}); the "
            f"answer to the Connection Request was a refusal: "
            f"{MEANING.get(result, 'the responder gave this result code')}.",
            fix=_fix(a.connection(ch.connection), ch, result, refuser, a.host),
            address=addr,
            connection=ch.connection,
            time_us=ch.open_time_us,
            frames=sorted({f for x in chans for f in (x.request_frame, x.response_frame) if f}),
            count=len(chans),
            details={
                "psm": psm,
                "psm_name": ch.psm_name,
                "result": result,
                "result_name": ch.result_name,
                "requester": requester,
                "recovered": all_recovered,
            },
        )
