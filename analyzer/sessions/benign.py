"""Benign protocol behaviour, recognised where the state is: each predicate below names a
pattern real stacks produce that looks like a failure but is not one, and marks the records it
explains (``benign``: why). Rules do not report those; they list them in the result's
``suppressed`` table with that reason, so the JSON still shows them.

The patterns (each tested on a real capture or a scenario):

* **L2CAP collision** — both sides ask for a channel to the same PSM on one link within
  :data:`COLLISION_S` (e.g. both open AVCTP after A2DP comes up); one request is refused
  (no resources, security block while the other's set-up is in progress) and one attempt on that
  PSM succeeds.
* **Refusal during teardown** — a channel refused after the teardown of its link began (a
  Disconnection Request or HCI Disconnect on the link within :data:`TEARDOWN_S` before), the
  link ending soon after (bluffs: the host closes AVCTP and AVDTP, the buds ask for AVCTP again,
  the host refuses, the link goes).
* **A command sent again while the first is in progress** — Accept Connection Request, (LE)
  Create Connection refused with Command Disallowed / Connection Already Exists while the same
  command is still waiting for its completion (e.g. ap4y: the second Accept gets 0x0C, the
  connection completes two frames later).
* **Create Connection racing the peer's own connection** — our page refused (0x0B / 0x0C) or
  failed while a connection from that device comes up within :data:`RACE_S`.
* **Enable/disable refused because it is already in that state** — LE Set (Extended/Periodic)
  Advertising Enable or LE Set (Extended) Scan Enable with Enable = 0 (or a scan enable repeating
  the current state) answered Command Disallowed (Vol 4 Part E §7.8.9/§7.8.11/§7.8.56/§7.8.63).
* **Random address changes refused while advertising, scanning or initiating** — LE Set
  Random Address / LE Set Advertising Set Random Address → Command Disallowed (§7.8.4, §7.8.52):
  the controller keeps the old address and the host sets it again later.
* **Remote Name Request Cancel racing the name result** — the cancel arrives after the name
  request completed (0x02 / 0x12).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from analyzer.model import Connection, HciTransaction, L2capChannel
from analyzer.sessions.build import BuildContext, stage

#: the other side's request for the same PSM within this many seconds is a collision
COLLISION_S = 2.0
#: a refusal this close before the link ended is part of the teardown
TEARDOWN_S = 2.0
#: a failed page this close to the peer's own connection raced it
RACE_S = 2.0
#: commands whose second copy is refused while the first is still in progress
IN_PROGRESS_STATUSES = frozenset({0x0B, 0x0C})
RESENT_OPCODES = frozenset({0x0405, 0x0409, 0x200D, 0x2043})
ENABLE_OPCODES = frozenset({0x200A, 0x200C, 0x2039, 0x2040, 0x2042})
SCAN_ENABLE_OPCODES = frozenset({0x200C, 0x2042})
ADDRESS_OPCODES = frozenset({0x2005, 0x2035})
NAME_CANCEL = 0x041A


def _failed(tx: HciTransaction) -> bool:
    return tx.status not in (None, 0)


TimeOf = Callable[[int | None], int | None]
T = TypeVar("T")


class Window(Generic[T]):
    """Items sorted by a time, for the ones within a time window (bisect, not a scan: a link with
    thousands of channels or connections stays linear, issue 18 §2)."""

    def __init__(self, items: list[tuple[int, T]]) -> None:
        items.sort(key=lambda x: x[0])
        self.times = [t for t, _ in items]
        self.items = [x for _, x in items]

    def first_within(self, lo: float, hi: float) -> T | None:
        """The earliest item at ``lo``..``hi`` (inclusive)."""
        k = bisect.bisect_left(self.times, lo)
        return self.items[k] if k < len(self.items) and self.times[k] <= hi else None

    def first_from(self, lo: float) -> T | None:
        k = bisect.bisect_left(self.times, lo)
        return self.items[k] if k < len(self.items) else None


def windows_by(items: list[tuple[Hashable, int, T]]) -> dict[Hashable, Window[T]]:
    """(key, time, item) → a :class:`Window` per key."""
    groups: dict[Hashable, list[tuple[int, T]]] = {}
    for key, t, x in items:
        groups.setdefault(key, []).append((t, x))
    return {k: Window(v) for k, v in groups.items()}


class ChannelIndex:
    """The channels of a capture by (connection, PSM): requests by time per requester, and the
    opened ones by request frame."""

    def __init__(self, chans: list[L2capChannel], t_us: TimeOf) -> None:
        self.requests = windows_by(
            [
                ((ch.connection, ch.psm, ch.requester), t, ch)
                for ch in chans
                if (t := t_us(ch.request_frame)) is not None
            ]
        )
        self.requesters: dict[Hashable, set[str]] = {}
        for ch in chans:
            self.requesters.setdefault((ch.connection, ch.psm), set()).add(ch.requester)
        self.opened = windows_by(
            [((ch.connection, ch.psm), ch.request_frame or 0, ch) for ch in chans if ch.result == 0]
        )


def l2cap_collision(ch: L2capChannel, index: ChannelIndex, t_us: TimeOf) -> str | None:
    """Both sides asked for this PSM at once and an attempt on it succeeded."""
    if ch.result in (None, 0, 1) or ch.request_frame is None or ch.psm is None:
        return None
    t0 = t_us(ch.request_frame)
    if t0 is None:
        return None
    other: list[L2capChannel] = []  # the other side's first request near it
    for requester in sorted(index.requesters.get((ch.connection, ch.psm), set())):
        w = index.requests.get((ch.connection, ch.psm, requester))
        o = w.first_within(t0 - COLLISION_S * 1e6, t0 + COLLISION_S * 1e6) if w else None
        if o is not None and requester != ch.requester:
            other.append(o)
    if not other:
        return None
    other.sort(key=lambda o: o.request_frame or 0)
    first = min(ch.request_frame, other[0].request_frame or 0)
    ok = index.opened.get((ch.connection, ch.psm))
    opened = ok.first_from(first) if ok is not None else None
    if opened is None:
        return None
    return (
        f"collision: both sides asked for {ch.psm_name} at once (frames {ch.request_frame} and "
        f"{other[0].request_frame}); the channel opened at frame {opened.response_frame}"
    )


def l2cap_teardown(
    ch: L2capChannel,
    conn: Connection | None,
    closing: Window[int] | None,
    t_us: TimeOf,
) -> str | None:
    """Refused after the teardown of the link began — a Disconnection Request or an HCI
    Disconnect on it within :data:`TEARDOWN_S` before (``closing``: their frames by time) —
    and the link ended soon after."""
    if ch.result in (None, 0, 1) or conn is None or conn.end_time_us is None:
        return None
    t = t_us(ch.response_frame)
    if t is None or not 0 <= conn.end_time_us - t <= 2 * TEARDOWN_S * 1e6:
        return None
    began = closing.first_within(t - TEARDOWN_S * 1e6, t) if closing is not None else None
    if began is None:
        return None
    return (
        f"refused while the link was being torn down (teardown began at frame {began}, the "
        f"link ended at frame {conn.end_frame})"
    )


def resent_in_progress(tx: HciTransaction, earlier: list[HciTransaction]) -> str | None:
    """Refused because the same command, sent before, was still waiting for its completion."""
    if tx.opcode not in RESENT_OPCODES or tx.status not in IN_PROGRESS_STATUSES:
        return None
    for e in reversed(earlier):
        if e.opcode != tx.opcode or e is tx or _failed(e):
            continue
        if tx.address and e.address and e.address != tx.address:
            continue
        if e.complete_frame is None or e.complete_frame > tx.frame:
            done = f", completed at frame {e.complete_frame}" if e.complete_frame else ""
            return (
                f"sent again while the first {e.name} (frame {e.frame}) was still in progress{done}"
            )
    return None


def page_races_incoming(c: Connection, conns: list[Connection]) -> str | None:
    """Our failed page met the device's own connection to us (``conns``: the connections to
    look at — all of them, or those of :func:`incoming_near`)."""
    if c.ok or c.address is None or c.start_time_us is None or c.transport != "br_edr":
        return None
    if c.status not in (0x0B, 0x0C, 0x04, 0x08, 0x16, 0x22) or c.initiator == "remote":
        return None
    for o in conns:
        if (
            o is not c
            and o.ok
            and o.address == c.address
            and o.initiator == "remote"
            and o.start_time_us is not None
            and abs(o.start_time_us - c.start_time_us) <= RACE_S * 1e6
        ):
            return f"raced the device's own connection to us (connected at frame {o.start_frame})"
    return None


def enable_in_same_state(tx: HciTransaction, state: dict[int, int | None]) -> str | None:
    """Disable (or a repeated scan enable) refused because it was already in that state."""
    if tx.opcode not in ENABLE_OPCODES or tx.status != 0x0C or tx.enable is None:
        return None
    if tx.enable == 0:
        return f"{tx.name} with Enable = 0 refused: there was nothing enabled to stop"
    key = 0x200C if tx.opcode in SCAN_ENABLE_OPCODES else tx.opcode
    if tx.opcode in SCAN_ENABLE_OPCODES and state.get(key) == tx.enable:
        return f"{tx.name} refused: scanning was already in that state"
    return None


ADV_ENABLE_OPCODES = frozenset({0x200A, 0x2039})
CREATE_LE_OPCODES = frozenset({0x200D, 0x2043})
NAME_REQUEST = 0x0419


def address_while_active(
    tx: HciTransaction, state: dict[int, int | None], earlier: list[HciTransaction]
) -> str | None:
    """A new random address refused (§7.8.4, §7.8.52) while advertising, scanning or initiating
    was enabled — or while their state is unknown (enabled before the capture began). Refused
    while all three are known to be off, it is a real refusal."""
    if tx.opcode not in ADDRESS_OPCODES or tx.status != 0x0C:
        return None
    adv, scan = state.get(0x200A), state.get(0x200C)
    initiating = any(
        c.opcode in CREATE_LE_OPCODES
        and c.status == 0
        and (c.complete_frame is None or c.complete_frame > tx.frame)
        for c in earlier
    )
    if adv == 0 and scan == 0 and not initiating:
        return None
    doing = (
        "advertising" if adv else "scanning" if scan else "initiating" if initiating
        else "advertising or scanning enabled before the capture began"
    )  # fmt: skip
    return (
        f"a new random address is refused while {doing} (Vol 4 Part E §7.8.4); the "
        "controller keeps the current one"
    )


def name_cancel_race(tx: HciTransaction, earlier: list[HciTransaction]) -> str | None:
    """Remote Name Request Cancel answered 0x02/0x12 after the name request to that device had
    already completed (§7.1.20: nothing left to cancel)."""
    if tx.opcode != NAME_CANCEL or tx.status not in (0x02, 0x12):
        return None
    answered = tx.status_frame or tx.frame
    for c in reversed(earlier):
        if c.opcode == NAME_REQUEST and (tx.address is None or c.address == tx.address):
            done = c.complete_frame
            if done is not None and done < answered:
                return f"the cancel came after the name request had completed (frame {done})"
            return None
    return None


@stage("benign", after=("le_air",))
def mark_benign(ctx: BuildContext) -> None:
    """Mark the commands, links and channels whose failure is benign (see the module doc)."""
    hci = ctx.hci
    times = ctx.cap.frames["time_us"].to_numpy()

    def t_us(frame: int | None) -> int | None:
        return int(times[frame - 1]) if frame is not None and 0 < frame <= times.size else None

    scan_state: dict[int, int | None] = {}
    for i, tx in enumerate(hci.commands):
        if _failed(tx):
            recent = hci.commands[max(0, i - 50) : i]
            tx.benign = (
                resent_in_progress(tx, recent)
                or enable_in_same_state(tx, scan_state)
                or address_while_active(tx, scan_state, recent)
                or name_cancel_race(tx, recent)
            )
        elif tx.opcode in SCAN_ENABLE_OPCODES and tx.status == 0:
            scan_state[0x200C] = tx.enable
        elif tx.opcode in ADV_ENABLE_OPCODES and tx.status == 0:
            scan_state[0x200A] = tx.enable
    incoming = windows_by(
        [
            (o.address, o.start_time_us, o)
            for o in hci.connections
            if o.ok and o.initiator == "remote" and o.start_time_us is not None
        ]
    )
    for c in hci.connections:
        near = incoming.get(c.address)
        t = c.start_time_us
        if near is None or t is None:
            c.benign = None
            continue
        o = near.first_within(t - RACE_S * 1e6, t + RACE_S * 1e6)
        c.benign = page_races_incoming(c, [o] if o is not None else [])
    by_id = {c.id: c for c in hci.connections}
    closing = windows_by(
        [(s.connection, s.time_us, s.frame) for s in ctx.table.signals
         if s.name == "Disconnection Request"]
        + [(tx.connection, tx.time_us, tx.frame) for tx in hci.commands if tx.opcode == 0x0406]
    )  # fmt: skip
    chans = ctx.table.channels
    index = ChannelIndex(chans, t_us)
    for ch in chans:
        ch.benign = l2cap_collision(ch, index, t_us) or l2cap_teardown(
            ch, by_id.get(ch.connection), closing.get(ch.connection), t_us
        )


__all__ = ["mark_benign"]
