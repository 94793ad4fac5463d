"""``auth_key_missing``: a stored link key offered and rejected (stale bond).

Core v5.4 Vol 4 Part E §7.7.23/§7.1.10: the host answers Link Key Request with its stored key;
when the remote lost it (reset, firmware update) authentication ends with 0x06 PIN or Key
Missing, when both hold different keys with 0x05 Authentication Failure. LE: the stored LTK is
rejected (Encryption Change with 0x06). A Negative Reply on a first pairing is normal; for a
device bonded earlier in the same capture it means the phone lost the key.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Analysis, PairingAttempt
from analyzer.model.analysis import memo
from analyzer.rules.base import Finding, RuleContext, rule
from analyzer.rules.queries import REMOTE_REASONS, firmware_changes, group_by, own_disconnect

KEY_FAILURES = {0x05: "Authentication Failure", 0x06: "PIN or Key Missing"}
#: a remote that drops the link this soon after our Negative Reply gave up instead of pairing
DROP_WITHIN_S = 10.0


def _remote_dropped_unpaired(a: Analysis, p: PairingAttempt) -> tuple[int, str] | None:
    """The one-sided bond: the *remote* authenticated (no Authentication Requested from this
    host before the Link Key Request), this host had no key (Negative Reply), no pairing
    followed (no IO capability exchange, no PIN), and the remote ended the link soon after.
    Returns (the Disconnection Complete frame, its reason name)."""
    if p.link_key_request != "negative_reply" or p.outcome == "success":
        return None
    if p.io_capability_local or p.io_capability_remote or p.method not in (None, "stored_key"):
        return None
    c = a.connection(p.connection)
    if c is None or c.end_frame is None or c.end_time_us is None or c.transport != "br_edr":
        return None
    first_auth = memo(a, "auth_key_missing:auth_requested", lambda: _first_auth_requested(a))
    if first_auth.get(c.id, p.start_frame) < p.start_frame:
        return None  # this host asked to authenticate: a normal first pairing attempt
    reason = c.disconnect_reason
    if reason not in REMOTE_REASONS | set(KEY_FAILURES) or own_disconnect(a, c) is not None:
        return None
    if c.end_time_us - p.start_time_us > DROP_WITHIN_S * 1e6:
        return None
    return c.end_frame, c.disconnect_reason_name or f"{reason:#04x}"


def _key_dropped_after_rejection(a: Analysis, p: PairingAttempt) -> int | None:
    """The frame where the device rejected the stored key, when this negative reply follows
    such a rejection (the host deletes a key the peer refused and pairs anew, as Android and
    BlueZ do after Authentication Complete 0x05/0x06)."""
    rejected = memo(a, "auth_key_missing:rejected", lambda: _first_rejections(a))
    q = rejected.get(p.address)
    if q is None or q.start_frame >= p.start_frame:
        return None
    return q.frames[-1] if q.frames else q.start_frame


def _first_auth_requested(a: Analysis) -> dict[str | None, int]:
    """The first Authentication Requested (0x0411) frame on each connection."""
    out: dict[str | None, int] = {}
    for tx in a.hci_commands:
        if tx.opcode == 0x0411:
            out[tx.connection] = min(tx.frame, out.get(tx.connection, tx.frame))
    return out


def _first_rejections(a: Analysis) -> dict[str | None, PairingAttempt]:
    """The earliest stored-key rejection of each device."""
    out: dict[str | None, PairingAttempt] = {}
    for q in a.pairing:
        if q.link_key_request != "reply" or q.outcome != "failure" or q.status not in KEY_FAILURES:
            continue
        if q.address not in out or q.start_frame < out[q.address].start_frame:
            out[q.address] = q
    return out


@rule(
    id="auth_key_missing",
    severity="error",
    title="Stored link key rejected (stale bond)",
    summary="a stored link key was offered and rejected (0x06 PIN or Key Missing / 0x05), or "
    "the phone lost the key of a device bonded earlier",
    example="Headset (AA:BB:CC:DD:EE:FF) rejected the phone's stored link key: Authentication "
    "Complete 0x06 PIN or Key Missing (frame 903) after a firmware update (frames 120, 880)",
    supersedes=("pairing_failed", "encryption_failed"),
)
def auth_key_missing(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    fw_of = group_by(firmware_changes(a), lambda c: c.address)
    for p in a.pairing:
        addr = p.address
        label = a.device_label(addr)
        if p.link_key_request == "reply" and p.outcome == "failure" and p.status in KEY_FAILURES:
            if p.status == 0x06:
                who = "the remote device lost its key (reset, firmware update, or unpaired there)"
            else:
                who = "the two sides hold different keys (the device was paired again elsewhere)"
            before = [c for c in fw_of.get(addr, []) if c.time_us <= p.start_time_us]
            after_fw = ""
            frames = list(p.frames)
            if before:
                changes = "; ".join(c.describe() for c in before)
                fw_frames = sorted({f for c in before for f in c.frames})
                after_fw = (
                    f" after a firmware update ({changes}; frames "
                    f"{', '.join(str(f) for f in fw_frames)})"
                )
                frames = sorted(set(frames) | set(fw_frames))
            key = "LTK" if p.transport == "le" else "link key"
            yield ctx.finding(
                message=f"{label} rejected the stored {key} of {a.host}: "
                f"{p.status:#04x} {p.status_name} (frame {p.frames[-1]}){after_fw}",
                explanation=f"{a.Host} answered the Link Key Request with the key it stored "
                f"when the two were bonded; authentication then failed with {p.status_name}: "
                f"{who}. {a.Host} still believes the device is bonded, so it keeps offering "
                "a dead key instead of pairing anew.",
                fix=f"Forget (unpair) the device in the Bluetooth settings of {a.host}, put the "
                "device in pairing mode, and pair it again.",
                address=addr,
                connection=p.connection,
                time_us=p.end_time_us or p.start_time_us,
                frames=frames,
                details={
                    "status": p.status,
                    "status_name": p.status_name,
                    "lost_by": "remote" if p.status == 0x06 else "mismatch",
                    "transport": p.transport,
                    "after_firmware_update": bool(before),
                    "firmware_changes": [c.describe() for c in before],
                },
            )
        elif (dropped_by_remote := _remote_dropped_unpaired(a, p)) is not None and not (
            p.details.bonded_earlier_in_capture
        ):
            end_frame, reason_name = dropped_by_remote
            yield ctx.finding(
                key="one_sided",
                message=f"{label} still holds a bond with {a.host}, but {a.host} has no key for "
                f"it: the device authenticated, {a.host} answered Link Key Request Negative "
                f"Reply (frame {p.frames[0]}), and the device dropped the link ({reason_name}, "
                f"frame {end_frame}) instead of pairing again",
                explanation=f"The device started authentication with the link key it stored "
                f"when the two were bonded; {a.host} no longer has that key (the device was "
                f"removed from its paired list, or its Bluetooth data was cleared), so it "
                "answered negatively. The device then gave up rather than starting a new "
                "pairing: a one-sided bond. It will keep reconnecting and failing.",
                fix=f"On the device: clear its pairing list (or reset it) and put it in pairing "
                f"mode. On {a.host}: remove any leftover entry for the device, then pair it "
                "again from the Bluetooth settings.",
                address=addr,
                connection=p.connection,
                time_us=p.start_time_us,
                frames=sorted(set(p.frames) | {end_frame}),
                details={"lost_by": "local", "transport": p.transport, "one_sided": True},
            )
        elif p.link_key_request == "negative_reply" and p.details.bonded_earlier_in_capture:
            dropped = _key_dropped_after_rejection(a, p)
            if dropped is not None:
                ctx.suppress(
                    what=f"Link Key Request Negative Reply for {label} (frame {p.frames[0]})",
                    why=f"the host dropped the key {label} rejected at frame {dropped} and "
                    "paired again: a recovery, not a lost key",
                    frames=p.frames,
                    address=addr,
                    connection=p.connection,
                    time_us=p.start_time_us,
                )
                continue
            yield ctx.finding(
                message=f"{a.host} had no link key for {label}, bonded earlier in this "
                f"capture (Link Key Request Negative Reply, frame {p.frames[0]})",
                explanation="The device was bonded earlier in the capture, yet the stack of "
                f"{a.host} answered the Link Key Request negatively: it lost the key "
                "(stack restart, storage failure, or the user removed the bond).",
                fix=f"Pair again; if it repeats, the Bluetooth storage of {a.host} is failing: "
                "clear its Bluetooth data or update its software.",
                address=addr,
                connection=p.connection,
                time_us=p.start_time_us,
                frames=list(p.frames),
                details={"lost_by": "local", "transport": p.transport},
            )
