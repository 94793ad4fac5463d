"""``hci_command_failed``: an HCI command the controller refused (a non-zero status in its
Command Status / Command Complete, Core v5.4 Vol 4 Part E §7.7.14-§7.7.15; codes Vol 1 Part F),
grouped by (command, status) with a count and graded by what the command was for:

* connection, security and audio (SCO/eSCO) commands: error;
* optional feature probes — 0x01 Unknown HCI Command, 0x11 Unsupported Feature or Parameter Value,
  0x1A Unsupported Remote Feature, or 0x12 / 0x30 (invalid / out-of-range parameters) on a Read
  command: info, and not reported at all during stack start-up (from a Reset, or the capture's
  start, to the first connection after it),
  where hosts probe what the controller can do;
* a Disconnect / Create Connection Cancel that lost a race with the link (0x02, 0x0B, 0x0C), and
  link policy commands (OGF 0x02, Write Link Supervision Timeout) refused because the link was
  gone (0x02) or not in a mode / role where they apply (0x0C Command Disallowed): info;
* anything else: warning.

Vendor-specific commands (OGF 0x3F) answer in vendor ways and are not judged. Create Connection
(0x0405) failures are ``connection_failed``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from analyzer.model import HciTransaction
from analyzer.rules.base import Finding, RuleContext, rule

#: connection / security / audio commands: their failure breaks what the user asked for
CONNECTION = {0x0409, 0x040A, 0x0406, 0x200D, 0x2043, 0x2013, 0x2020, 0x2021}
SECURITY = {0x040B, 0x040C, 0x040D, 0x040E, 0x0411, 0x0413, 0x0415, 0x042B, 0x042C, 0x042D,
            0x042E, 0x042F, 0x0434, 0x2019, 0x201A, 0x201B}  # fmt: skip
AUDIO = {0x0428, 0x0429, 0x042A, 0x043D, 0x043E}
#: other rules tell these commands' failures
OTHER_RULES = {0x0405}
PROBE_STATUSES = {0x01, 0x11, 0x1A}
READ_PARAM_STATUSES = {0x12, 0x30}
RACE = {0x0406: {0x02, 0x0C}, 0x0408: {0x02, 0x0B, 0x0C}, 0x200E: {0x0C}}
PURPOSE = {**dict.fromkeys(CONNECTION, "connection"), **dict.fromkeys(SECURITY, "security"),
           **dict.fromkeys(AUDIO, "audio")}  # fmt: skip


def grade(tx: HciTransaction) -> str | None:
    """error / warning / info for one failed command, None for not judged."""
    op, st = tx.opcode, tx.status
    if tx.vendor or (op >> 10) == 0x3F or op in OTHER_RULES:
        return None
    if st in RACE.get(op, ()):
        return "info"
    if op in PURPOSE:
        return "error"
    if ((op >> 10) == 0x02 or op == 0x0C37) and st in (0x02, 0x0C):
        return "info"  # link policy: the link was gone, or in a mode/role where it does not apply
    if st in PROBE_STATUSES or (st in READ_PARAM_STATUSES and "Read" in tx.name):
        return "info"
    if st == 0x02 and "Read" in tx.name:
        return "info"  # reading about a link or list entry that is gone or was never there
    return "warning"


@rule(
    id="hci_command_failed",
    severity="warning",
    title="HCI command failed",
    summary="the controller refused an HCI command (graded: connection/security/audio errors, "
    "optional feature probes info, vendor commands not judged)",
    example="HCI Accept Connection Request failed 2 times: 0x0c Command Disallowed (frames 31, "
    "104)",
)
def hci_command_failed(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    cmds = a.hci_commands
    starts = [c.start_time_us for c in a.connections if c.start_time_us is not None]
    starts += [tx.time_us for tx in cmds if tx.opcode in (0x0405, 0x200D, 0x2043)]
    # start-up = from each HCI Reset (stack start or restart) to the first connection after it
    resets = sorted(r.time_us for r in a.controller.resets)
    starts.sort()
    los: list[int] = []
    his: list[int] = []
    for i, r0 in enumerate([None, *resets]):
        lo = r0 if r0 is not None else -(1 << 62)
        nxt = resets[i] if i < len(resets) else 1 << 62
        k = bisect.bisect_left(starts, lo)  # the first connection at or after the reset
        los.append(lo)
        his.append(starts[k] if k < len(starts) and starts[k] < nxt else nxt)

    def in_startup(t: int) -> bool:
        # the windows are disjoint and in order: only the last one opened by t can hold it
        k = bisect.bisect_right(los, t) - 1
        return k >= 0 and t < his[k]

    ids = {c.id for c in a.connections}
    devs = {d.address for d in a.devices}
    scoped = a.scope.narrowed
    groups: dict[tuple[int, int], list[HciTransaction]] = {}
    grades: dict[tuple[int, int], str] = {}
    for tx in cmds:
        if tx.status in (None, 0):
            continue
        g = grade(tx)
        if g is None:
            continue
        if scoped and not (tx.connection in ids or (tx.address and tx.address in devs)):
            continue  # about another device, or about none, in a one-device analysis
        why = tx.benign
        if (
            why is None
            and in_startup(tx.time_us)
            and tx.opcode not in RACE
            and (g == "info" or tx.opcode not in PURPOSE)
        ):
            why = (
                "start-up probe: the host tries an optional feature or setting before the "
                "first connection and carries on without it"
            )
        if why is not None:
            ctx.suppress(
                what=f"HCI {tx.name} ({tx.opcode:#06x}) → {tx.status:#04x} {tx.status_name}",
                why=why,
                frames=[f for f in (tx.frame, tx.status_frame) if f],
                address=tx.address,
                connection=tx.connection,
                time_us=tx.time_us,
            )
            continue
        key = (tx.opcode, tx.status)
        groups.setdefault(key, []).append(tx)
        grades[key] = g
    for (op, st), txs in groups.items():
        tx = txs[0]
        sev = grades[(op, st)]
        purpose = PURPOSE.get(op)
        addrs = sorted({t.address for t in txs if t.address})
        who = f" for {', '.join(a.device_label(x) for x in addrs[:3])}" if addrs else ""
        frames = [t.frame for t in txs]
        times = f" {len(txs)} times" if len(txs) > 1 else ""
        if sev == "info":
            why = (
                "an optional feature the controller or the remote device lacks; the host "
                "asked and carries on without it"
                if st in PROBE_STATUSES | READ_PARAM_STATUSES
                else "the link was already gone or in another state — a harmless race"
            )
        elif purpose:
            why = f"a {purpose} step the user's action depended on did not happen"
        else:
            why = "the controller did not do what the host asked (a state or parameter mismatch)"
        yield ctx.finding(
            key=f"{op:#06x}/{st:#04x}",
            severity=sev,
            message=f"HCI {tx.name} ({op:#06x}){who} failed{times}: {st:#04x} {tx.status_name} "
            f"(frame{'s' if len(frames) > 1 else ''} {', '.join(map(str, frames[:6]))})",
            explanation="Every HCI command is answered by Command Status or Command Complete "
            f"with status 0 when the controller accepts it; {tx.name} got {st:#04x} "
            f"{tx.status_name}: {why}.",
            fix=(
                "Nothing to do unless a feature is missing."
                if sev == "info"
                else f"Restart Bluetooth on {a.host}; if it repeats, report it with this log to "
                "the host or controller vendor."
            ),
            address=addrs[0] if len(addrs) == 1 else None,
            connection=tx.connection,
            time_us=tx.time_us,
            frames=sorted({f for t in txs for f in (t.frame, t.status_frame) if f}),
            count=len(txs),
            details={
                "opcode": op,
                "command": tx.name,
                "status": st,
                "status_name": tx.status_name,
                "purpose": purpose or "other",
            },
        )
