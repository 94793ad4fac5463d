"""``encryption_failed``: turning encryption on failed — an Encryption Change (Core v5.4 Vol 4
Part E §7.7.8, v2 §7.7.8.3) or a Set Connection Encryption / LE Enable Encryption command
(§7.1.16, §7.8.24) completed with a non-zero status. When the cause is a stored key the device
no longer has (0x05/0x06 after the host offered its stored key/LTK) that is a stale bond, reported
by ``auth_key_missing`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from analyzer.rules.base import Finding, RuleContext, rule

ENCRYPTION_COMMANDS = frozenset({0x0413, 0x2019})
MEANING: dict[int, str] = {
    0x06: "the device has no key for this link (PIN or Key Missing)",
    0x05: "the two sides' keys differ",
    0x08: "the link timed out while encryption was being started",
    0x0C: "encryption could not be started in the link's current state",
    0x1A: "the device does not support encryption as requested",
    0x22: "the device stopped answering the encryption procedure",
    0x25: "the encryption mode is not acceptable to the device",
    0x3D: "an encrypted packet failed its integrity check (MIC failure)",
}


@rule(
    id="encryption_failed",
    severity="error",
    title="Encryption failed",
    summary="an Encryption Change / Set Connection Encryption / LE Enable Encryption ended with "
    "a non-zero status (not a stale-bond key rejection)",
    example="Encryption of the link to Headset (AA:BB:CC:DD:EE:FF) failed: 0x22 LMP Response "
    "Timeout (frame 120)",
)
def encryption_failed(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    stale: set[tuple[str | None, int]] = set()
    for p in a.pairing:
        if p.link_key_request == "reply" and p.outcome == "failure" and p.status in (5, 6):
            stale.add((p.connection, p.status or 0))
    events: dict[int, dict[str, Any]] = {}  # frame → {conn, status, name}
    for tx in a.hci_commands:
        if tx.opcode not in ENCRYPTION_COMMANDS:
            continue
        if tx.status not in (None, 0):
            f, st, name = tx.status_frame or tx.frame, tx.status, tx.status_name
        elif tx.complete_status not in (None, 0) and tx.complete_frame:
            f, st, name = tx.complete_frame, tx.complete_status, tx.complete_status_name
        else:
            continue
        events[f] = {
            "conn": tx.connection,
            "status": st,
            "name": name,
            "cmd": tx.frame,
            "time_us": tx.status_time_us if f == tx.status_frame else tx.complete_time_us,
        }
    for c in a.connections:  # Encryption Change / Key Refresh Complete with a status
        for ef in c.encryption_failures:
            events.setdefault(ef.frame, {"conn": c.id, "cmd": None})
            events[ef.frame].update(status=ef.status, name=ef.status_name, time_us=ef.time_us)
    groups: dict[tuple[str | None, Any], list[tuple[int, dict[str, Any]]]] = {}
    for frame, ev in sorted(events.items()):
        if (ev["conn"], ev["status"]) in stale:
            continue
        groups.setdefault(
            (ev["conn"], ev["status"] if ev["status"] is not None else ev["name"]), []
        ).append((frame, ev))
    for (conn_id, _), evs in groups.items():
        frame, ev = evs[0]
        conn = a.connection(conn_id)
        addr = conn.address if conn else None
        code = ev["status"]
        code_s = f"{code:#04x} {ev['name']}" if code is not None else str(ev["name"])
        times = f" ({len(evs)} times)" if len(evs) > 1 else ""
        yield ctx.finding(
            message=f"Encryption of the link to {a.device_label(addr)} failed: {code_s} "
            f"(frame {frame}){times}",
            explanation="After authentication the link is encrypted with the shared key; the "
            "Encryption Change event reports status 0 when that worked. Here it failed: "
            f"{MEANING.get(code or -1, 'the controller reported this error')}. Profiles that "
            "need security (audio, HID, file transfer) will not start on this link.",
            fix=f"Forget the device on {a.host} and pair it again; if it repeats, update the "
            "device's firmware (or the host's software).",
            address=addr,
            connection=conn_id,
            time_us=ev.get("time_us"),
            frames=sorted({f for fr, e in evs for f in (fr, e.get("cmd")) if f}),
            count=len(evs),
            details={"status": code, "status_name": ev["name"]},
        )
