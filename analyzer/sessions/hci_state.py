"""HCI state across frames (the event handlers live in :mod:`~analyzer.sessions.hci_links`,
:mod:`~analyzer.sessions.hci_pairing` and :mod:`~analyzer.sessions.hci_devices`, registered by event
code with :func:`handles`): connections (handle reuse → a new connection), devices, pairing
attempts, and every command with its Command Status / Complete and its completion event.

Follows Core v5.4 Vol 4 Part E §7: Create Connection → Connection Complete (§7.7.3), Disconnect →
Disconnection Complete (§7.7.5), Authentication Requested → Link Key Request (§7.7.23) → reply →
Authentication Complete (§7.7.6), Secure Simple Pairing (§7.7.40-§7.7.45), Synchronous Connection
Complete (§7.7.35), LE (Enhanced) Connection Complete (§7.7.65.1/.10).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from analyzer.decode.hci import HciCommand, HciEvent
from analyzer.decode.hci_names import error_name
from analyzer.model import (
    Connection,
    ControllerReset,
    Device,
    DiscoveredDevice,
    HardwareError,
    HciTransaction,
    LocalVersion,
    PairingAttempt,
    TimelineEvent,
)

Handler = Callable[["HciState", HciEvent, int, int], None]
#: event code (LE Meta: 0x3E00 | subevent) → its handler
EVENT_HANDLERS: dict[int, Handler] = {}


def handles(code: int) -> Callable[[Handler], Handler]:
    """Register a handler for an event code (LE Meta subevents as 0x3E00 | subevent)."""

    def deco(fn: Handler) -> Handler:
        EVENT_HANDLERS[code] = fn
        return fn

    return deco


#: command opcode → (completion event code, LE subevent or None, key "addr"/"handle")
COMPLETIONS: dict[int, tuple[int, int | None, str]] = {
    0x0401: (0x01, None, "none"),  # Inquiry → Inquiry Complete
    0x0405: (0x03, None, "addr"),  # Create Connection → Connection Complete
    0x0409: (0x03, None, "addr"),  # Accept Connection Request
    0x0411: (0x06, None, "handle"),  # Authentication Requested → Authentication Complete
    0x0413: (0x08, None, "handle"),  # Set Connection Encryption → Encryption Change
    0x0419: (0x07, None, "addr"),  # Remote Name Request → Remote Name Request Complete
    0x041B: (0x0B, None, "handle"),  # Read Remote Supported Features
    0x041D: (0x0C, None, "handle"),  # Read Remote Version Information
    0x0406: (0x05, None, "handle"),  # Disconnect → Disconnection Complete
    0x0428: (0x2C, None, "addr"),  # Setup Synchronous Connection (new handle: match the peer)
    0x0429: (0x2C, None, "addr"),  # Accept Synchronous Connection Request
    0x043D: (0x2C, None, "addr"),  # Enhanced Setup Synchronous Connection
    0x043E: (0x2C, None, "addr"),  # Enhanced Accept Synchronous Connection Request
    0x200D: (0x3E, 0x01, "none"),  # LE Create Connection → LE Connection Complete
    0x2043: (0x3E, 0x0A, "none"),  # LE Extended Create Connection
    0x2019: (0x08, None, "handle"),  # LE Enable Encryption → Encryption Change
}


class Awaiting:
    """Commands still owed an event, found by a key (opcode, or what the event must match) in
    O(1) — never a scan of everything outstanding: a capture whose commands go unanswered by
    the thousand stays linear. Among several keys, the oldest command wins (the order a scan of
    one list would give)."""

    def __init__(self) -> None:
        self._by: dict[Hashable, dict[int, tuple[int, HciTransaction]]] = {}
        self._seq = 0

    def add(self, key: Hashable, tx: HciTransaction) -> None:
        self._seq += 1
        self._by.setdefault(key, {})[id(tx)] = (self._seq, tx)

    def oldest(self, keys: Iterable[Hashable]) -> tuple[Hashable, HciTransaction] | None:
        best: tuple[int, Hashable, HciTransaction] | None = None
        for k in keys:
            bucket = self._by.get(k)
            if bucket:
                seq, tx = next(iter(bucket.values()))
                if best is None or seq < best[0]:
                    best = (seq, k, tx)
        return None if best is None else (best[1], best[2])

    def holds(self, key: Hashable, tx: HciTransaction) -> bool:
        return id(tx) in self._by.get(key, {})

    def remove(self, key: Hashable, tx: HciTransaction) -> None:
        bucket = self._by.get(key)
        if bucket is not None and bucket.pop(id(tx), None) is not None and not bucket:
            del self._by[key]

    def clear(self) -> None:
        self._by.clear()


def completion_key(tx: HciTransaction) -> Hashable:
    """Which completion events may complete ``tx`` (see :data:`COMPLETIONS`)."""
    code, sub, kind = COMPLETIONS[tx.opcode]
    val = tx.address if kind == "addr" else tx.handle if kind == "handle" else None
    return (code, sub, kind, val)


def completion_candidates(ev: HciEvent) -> list[Hashable]:
    """The completion keys an event answers (:func:`completion_key`); a command that named no
    handle is completed by the event of any handle."""
    # Encryption Change v2 (0x59, Core 5.3 §7.7.8.2) completes what v1 (0x08) would
    code = 0x08 if ev.code == 0x59 else ev.code
    subs = (None,) if ev.subevent is None else (None, ev.subevent)
    return [
        (code, sub, kind, val)
        for sub in subs
        for kind, val in (("addr", ev.bd_addr), ("handle", ev.handle), ("handle", None),
                          ("none", None))
    ]  # fmt: skip


#: commands that wait on a person (PIN entry, confirmation) — never a response timeout
WAITS_ON_USER = frozenset({0x040D, 0x040E, 0x042C, 0x042D, 0x042E, 0x042F})

IO_CAP_NAMES = {0: "DisplayOnly", 1: "DisplayYesNo", 2: "KeyboardOnly", 3: "NoInputNoOutput"}


@dataclass
class HciState:
    """Accumulates everything the HCI layer tells, frame by frame."""

    connections: list[Connection] = field(default_factory=list)
    devices: dict[str, Device] = field(default_factory=dict)
    pairing: list[PairingAttempt] = field(default_factory=list)
    commands: list[HciTransaction] = field(default_factory=list)
    timeline: list[TimelineEvent] = field(default_factory=list)
    resets: list[ControllerReset] = field(default_factory=list)
    hardware_errors: list[HardwareError] = field(default_factory=list)
    discovered: list[DiscoveredDevice] = field(default_factory=list)  # inquiry / EIR results
    local_address: str | None = None
    page_timeout_s: float | None = None  # from Write Page Timeout, when the capture has it
    local_version: LocalVersion | None = None
    local_name: str | None = None  # Write Local Name / Read Local Name
    # live state
    _open: dict[tuple[str, int], Connection] = field(default_factory=dict)  # (kind, handle)
    _pending_create: dict[str, HciTransaction] = field(default_factory=dict)
    _pending_remote: dict[str, int] = field(default_factory=dict)  # addr → Connection Request frame
    #: the outstanding LE (Extended) Create Connection (one at a time, Vol 4 Part E §7.8.12)
    _pending_le: HciTransaction | None = None
    _pending_le_mode: str | None = None  # "direct" / "filter_accept_list"
    _cancels: dict[str, int] = field(default_factory=dict)  # "le" / BR/EDR address → cancel frame
    _awaiting_status: Awaiting = field(default_factory=Awaiting)  # by opcode
    _awaiting_completion: Awaiting = field(default_factory=Awaiting)  # by completion_key
    _pairing_open: dict[str, PairingAttempt] = field(default_factory=dict)
    _counter: dict[str, int] = field(default_factory=dict)
    _bonded: set[str] = field(default_factory=set)
    _last_end: dict[int, int] = field(default_factory=dict)  # handle → last link's end frame

    # -- helpers -----------------------------------------------------------------------------
    def device(self, addr: str, frame: int | None = None) -> Device:
        d = self.devices.get(addr)
        if d is None:
            d = self.devices[addr] = Device(address=addr)
        if frame is not None and len(d.frames) < 50:
            d.frames.append(frame)
        return d

    def _new_id(self, prefix: str, handle: int) -> str:
        key = f"{prefix}-{handle:#05x}"
        n = self._counter.get(key, 0) + 1
        self._counter[key] = n
        return f"{prefix}-{handle:#05x}-{n}"

    def conn_by_handle(self, handle: int | None) -> Connection | None:
        if handle is None:
            return None
        for kind in ("acl", "le", "sco"):
            c = self._open.get((kind, handle))
            if c is not None:
                return c
        return None

    def open_acl_for(self, addr: str | None) -> Connection | None:
        for (kind, _h), c in self._open.items():
            if kind in ("acl", "le") and c.address == addr:
                return c
        return None

    def ended_on(self, handle: int, frame: int) -> None:
        """Note that a link on ``handle`` ended at ``frame``."""
        self._last_end[handle] = max(frame, self._last_end.get(handle, frame))

    def last_end(self, handle: int) -> int | None:
        """The end frame of the last link that ended on ``handle`` (a dict, not a scan of every
        connection: a capture of thousands of disconnections stays linear)."""
        return self._last_end.get(handle)

    def inferred_connection(self, handle: int, frame: int, time_us: int, le: bool) -> Connection:
        """A connection seen only through its data (capture started mid-connection)."""
        kind = "le" if le else "acl"
        c = Connection(
            id=self._new_id(kind, handle),
            handle=handle,
            address=None,
            transport="le" if le else "br_edr",
            status=0,
            status_name="Success",
            start_frame=frame,
            start_time_us=time_us,
            inferred=True,
        )
        self.connections.append(c)
        self._open[(kind, handle)] = c
        return c

    def _event(
        self, time_us: int, frame: int, lane: str, kind: str, text: str, severity: str = "info"
    ) -> None:
        self.timeline.append(TimelineEvent(time_us, frame, lane, kind, text, severity))

    def _pair(self, addr: str, frame: int, time_us: int, conn: Connection | None) -> PairingAttempt:
        p = self._pairing_open.get(addr)
        stale = p is not None and (
            p.outcome != "unknown"
            or p.details.ended_by_disconnect is not None
            or (conn is not None and p.connection is not None and p.connection != conn.id)
        )
        if p is None or stale:
            p = PairingAttempt(
                address=addr,
                connection=conn.id if conn else None,
                transport=conn.transport if conn else "br_edr",
                start_frame=frame,
                start_time_us=time_us,
            )
            self.pairing.append(p)
            self._pairing_open[addr] = p
            if addr in self._bonded:
                p.details.bonded_earlier_in_capture = True
        p.frames.append(frame)
        return p

    def end_links(self, frame: int, time_us: int, handle: int | None = None) -> list[Connection]:
        """End the open links on ``handle`` (or all of them): a handle is unique per controller
        across transports, so a new link on it ends any old one; HCI Reset ends every link
        without a Disconnection Complete (Core Vol 4 Part E §7.3.2)."""
        ended = []
        for key in [k for k in self._open if handle is None or k[1] == handle]:
            c = self._open.pop(key)
            if c.end_frame is None:
                c.end_frame, c.end_time_us = frame, time_us
                self.ended_on(c.handle, frame)
            ended.append(c)
            if c.address:
                p = self._pairing_open.get(c.address)
                if (
                    p is not None
                    and p.outcome == "unknown"
                    and p.connection in (c.id, None)
                    and p.details.ended_by_disconnect is None
                ):
                    p.details.ended_by_disconnect = frame
        return ended

    def _end_pair(self, p: PairingAttempt, status: int, frame: int, time_us: int) -> None:
        p.frames.append(frame)
        p.status = status
        p.status_name = error_name(status)
        p.outcome = "success" if status == 0 else "failure"
        p.end_time_us = time_us
        if status == 0 and p.address:
            self._bonded.add(p.address)
        what = "succeeded" if status == 0 else f"failed: {p.status_name}"
        self._event(
            time_us,
            frame,
            p.address or "?",
            "pair",
            f"authentication {what} ({p.method or 'method unknown'})",
            "info" if status == 0 else "error",
        )

    # -- commands ----------------------------------------------------------------------------
    def on_command(self, cmd: HciCommand, frame: int, time_us: int) -> None:
        op = cmd.opcode
        tx = HciTransaction(frame, time_us, op, cmd.name, cmd.vendor, cmd.handle, cmd.bd_addr)
        comp = COMPLETIONS.get(op)
        tx.expects_completion = comp is not None
        tx.waits_on_user = op in WAITS_ON_USER
        tx.enable = cmd.fields.get("enable", cmd.fields.get("scan_enable"))
        conn = self.conn_by_handle(cmd.handle)
        if conn is not None:
            tx.connection = conn.id
            tx.address = tx.address or conn.address
        self.commands.append(tx)
        self._awaiting_status.add(op, tx)
        if comp is not None:
            self._awaiting_completion.add(completion_key(tx), tx)
        addr = cmd.bd_addr
        if op == 0x0405 and addr:  # Create Connection
            self._pending_create[addr] = tx
            self.device(addr, frame)
            self._event(time_us, frame, addr, "connect", f"paging {addr}")
        elif op in (0x200D, 0x2043):  # LE (Extended) Create Connection
            self._pending_le = tx
            policy = cmd.fields.get("initiator_filter_policy")
            self._pending_le_mode = (
                "filter_accept_list" if policy == 1 else "direct" if policy == 0 else None
            )
            self._cancels.pop("le", None)
        elif op == 0x200E:  # LE Create Connection Cancel
            self._cancels["le"] = frame
        elif op == 0x0408 and addr:  # Create Connection Cancel
            self._cancels[addr] = frame
        elif op == 0x0C18 and "page_timeout_s" in cmd.fields:  # Write Page Timeout
            self.page_timeout_s = cmd.fields["page_timeout_s"]
        elif op == 0x0C13 and cmd.fields.get("local_name"):  # Write Local Name
            self.local_name = cmd.fields["local_name"]
        elif op == 0x0C03:  # Reset
            ended = self.end_links(frame, time_us)
            self.resets.append(ControllerReset(frame, time_us, [c.id for c in ended]))
            self._awaiting_completion.clear()
            self._pending_create.clear()
            self._pending_le = None
            self._cancels.clear()
            self._event(time_us, frame, "controller", "reset", "HCI Reset", "warning")
        elif op in (0x040B, 0x040C) and addr:  # Link Key Request (Negative) Reply
            p = self._pair(addr, frame, time_us, self.open_acl_for(addr))
            p.link_key_request = "reply" if op == 0x040B else "negative_reply"
            if op == 0x040B and p.method is None:
                p.method = "stored_key"
        elif op == 0x042B and addr:  # IO Capability Request Reply
            p = self._pair(addr, frame, time_us, self.open_acl_for(addr))
            p.io_capability_local = cmd.fields.get("io_capability_name")
        elif op in (0x040D, 0x040E) and addr:  # PIN Code Request (Negative) Reply
            p = self._pair(addr, frame, time_us, self.open_acl_for(addr))
            p.method = "legacy_pin"
            if op == 0x040E:
                p.details.pin_negative_reply = True
        elif op == 0x0411 and conn is not None and conn.address:  # Authentication Requested
            self._pair(conn.address, frame, time_us, conn)
        elif op == 0x2019 and conn is not None and conn.address:  # LE Enable Encryption
            p = self._pair(conn.address, frame, time_us, conn)
            p.transport = "le"
            p.link_key_request = p.link_key_request or "reply"  # the host offers a key
            ediv_rand = cmd.params[2:12] if len(cmd.params) >= 12 else b""
            if any(ediv_rand):
                # non-zero EDIV/Rand: a stored legacy LTK (Core Vol 3 Part H §2.4.4.1)
                p.method = p.method or "stored_key"

    # -- events ------------------------------------------------------------------------------
    def on_event(self, ev: HciEvent, frame: int, time_us: int) -> None:
        code = ev.code
        if code in (0x0E, 0x0F):
            self._on_command_answer(ev, frame, time_us)
            return
        self._match_completion(ev, frame, time_us)
        handler = EVENT_HANDLERS.get(code if code != 0x3E else 0x3E00 | (ev.subevent or 0))
        if handler is not None:
            handler(self, ev, frame, time_us)

    def _on_command_answer(self, ev: HciEvent, frame: int, time_us: int) -> None:
        op = ev.fields.get("opcode")
        if not op:
            return
        found = self._awaiting_status.oldest((op,))
        if found is not None:
            tx = found[1]
            tx.status_frame, tx.status_time_us = frame, time_us
            tx.status, tx.status_name = ev.status, ev.status_name
            self._awaiting_status.remove(op, tx)
            key = completion_key(tx) if tx.expects_completion else None
            if ev.status not in (None, 0) and key and self._awaiting_completion.holds(key, tx):
                self._awaiting_completion.remove(key, tx)  # a refused command completes nothing
                if op == 0x0405 and tx.address:
                    self._failed_connection(tx.address, ev.status or 0, frame, time_us, tx)
        if ev.code == 0x0E and ev.status == 0:
            if op == 0x1009 and ev.bd_addr:
                self.local_address = ev.bd_addr
                self.device(ev.bd_addr).role = "local"
            elif op == 0x1001 and "local_version" in ev.fields:
                self.local_version = LocalVersion(**ev.fields["local_version"])
            elif op == 0x0C14 and ev.fields.get("local_name"):
                self.local_name = ev.fields["local_name"]

    def _match_completion(self, ev: HciEvent, frame: int, time_us: int) -> None:
        found = self._awaiting_completion.oldest(completion_candidates(ev))
        if found is not None:
            key, tx = found
            tx.complete_frame, tx.complete_time_us, tx.complete_status = frame, time_us, ev.status
            tx.complete_status_name = ev.status_name
            self._awaiting_completion.remove(key, tx)

    def _failed_connection(
        self,
        addr: str,
        status: int,
        frame: int,
        time_us: int,
        tx: HciTransaction | None,
        transport: str = "br_edr",
        connect_mode: str | None = None,
    ) -> Connection:
        cancel = self._cancels.pop("le" if transport == "le" else addr, None)
        c = Connection(
            id=self._new_id("fail", len(self.connections)),
            handle=-1,
            # a cancelled background connect names no peer (all-zero address in the event)
            address=None if addr in ("?", "00:00:00:00:00:00") else addr,
            transport=transport,
            status=status,
            status_name=error_name(status) or hex(status),
            start_frame=frame,
            start_time_us=time_us,
            end_frame=frame,
            end_time_us=time_us,
            initiator="local" if tx is not None else "remote",
            request_frame=tx.frame if tx else None,
            cancelled=status == 0x02 and cancel is not None,
            cancel_frame=cancel if status == 0x02 else None,
            connect_mode=connect_mode,
            attempt_ms=(time_us - tx.time_us) / 1000 if tx is not None else None,
        )
        self.connections.append(c)
        whom = c.address or (
            "the filter accept list" if connect_mode == "filter_accept_list" else "a device"
        )
        self._event(
            time_us,
            frame,
            c.address or "controller",
            "connect",
            f"connection attempt to {whom} cancelled by the host"
            if c.cancelled
            else f"connection to {whom} failed: {c.status_name}",
            "info" if c.cancelled else "error",
        )
        return c
