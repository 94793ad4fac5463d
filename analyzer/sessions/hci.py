"""HCI state across frames: connections (handle reuse → a new connection), devices, pairing
attempts, and every command with its Command Status / Complete and its completion event.

Follows Core v5.4 Vol 4 Part E §7: Create Connection → Connection Complete (§7.7.3), Disconnect →
Disconnection Complete (§7.7.5), Authentication Requested → Link Key Request (§7.7.23) → reply →
Authentication Complete (§7.7.6), Secure Simple Pairing (§7.7.40-§7.7.45), Synchronous Connection
Complete (§7.7.35), LE (Enhanced) Connection Complete (§7.7.65.1/.10).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.hci import HciCommand, HciEvent
from analyzer.decode.hci_names import error_name
from analyzer.model import (
    Connection,
    ControllerReset,
    Device,
    DiscoveredDevice,
    EncryptionFailure,
    HardwareError,
    HciTransaction,
    LocalVersion,
    PairingAttempt,
    ScoChange,
    ScoLink,
    TimelineEvent,
    VersionSeen,
)

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
    _awaiting_status: list[HciTransaction] = field(default_factory=list)
    _awaiting_completion: list[HciTransaction] = field(default_factory=list)
    _pairing_open: dict[str, PairingAttempt] = field(default_factory=dict)
    _counter: dict[str, int] = field(default_factory=dict)
    _bonded: set[str] = field(default_factory=set)

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
        conn = self.conn_by_handle(cmd.handle)
        if conn is not None:
            tx.connection = conn.id
            tx.address = tx.address or conn.address
        self.commands.append(tx)
        self._awaiting_status.append(tx)
        if comp is not None:
            self._awaiting_completion.append(tx)
        addr = cmd.bd_addr
        if op == 0x0405 and addr:  # Create Connection
            self._pending_create[addr] = tx
            self.device(addr, frame)
            self._event(time_us, frame, addr, "connect", f"paging {addr}")
        elif op == 0x0C18 and "page_timeout_s" in cmd.fields:  # Write Page Timeout
            self.page_timeout_s = cmd.fields["page_timeout_s"]
        elif op == 0x0C13 and cmd.fields.get("local_name"):  # Write Local Name
            self.local_name = cmd.fields["local_name"]
        elif op == 0x0C03:  # Reset
            ended = self.end_links(frame, time_us)
            self.resets.append(ControllerReset(frame, time_us, [c.id for c in ended]))
            self._awaiting_completion.clear()
            self._pending_create.clear()
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
        handler = _EVENT_HANDLERS.get(code if code != 0x3E else 0x3E00 | (ev.subevent or 0))
        if handler is not None:
            handler(self, ev, frame, time_us)

    def _on_command_answer(self, ev: HciEvent, frame: int, time_us: int) -> None:
        op = ev.fields.get("opcode")
        if not op:
            return
        for i, tx in enumerate(self._awaiting_status):
            if tx.opcode == op:
                tx.status_frame, tx.status_time_us = frame, time_us
                tx.status, tx.status_name = ev.status, ev.status_name
                del self._awaiting_status[i]
                if ev.status not in (None, 0) and tx in self._awaiting_completion:
                    self._awaiting_completion.remove(tx)  # a refused command completes nothing
                    if op == 0x0405 and tx.address:
                        self._failed_connection(tx.address, ev.status or 0, frame, time_us, tx)
                break
        if ev.code == 0x0E and ev.status == 0:
            if op == 0x1009 and ev.bd_addr:
                self.local_address = ev.bd_addr
                self.device(ev.bd_addr).role = "local"
            elif op == 0x1001 and "local_version" in ev.fields:
                self.local_version = LocalVersion(**ev.fields["local_version"])
            elif op == 0x0C14 and ev.fields.get("local_name"):
                self.local_name = ev.fields["local_name"]

    def _match_completion(self, ev: HciEvent, frame: int, time_us: int) -> None:
        for tx in self._awaiting_completion:
            comp = COMPLETIONS[tx.opcode]
            if comp[0] != ev.code or (comp[1] is not None and comp[1] != ev.subevent):
                continue
            key = comp[2]
            if key == "addr" and tx.address != ev.bd_addr:
                continue
            if key == "handle" and tx.handle is not None and ev.handle != tx.handle:
                continue
            tx.complete_frame, tx.complete_time_us, tx.complete_status = frame, time_us, ev.status
            self._awaiting_completion.remove(tx)
            return

    def _failed_connection(
        self,
        addr: str,
        status: int,
        frame: int,
        time_us: int,
        tx: HciTransaction | None,
        transport: str = "br_edr",
    ) -> None:
        c = Connection(
            id=self._new_id("fail", len(self.connections)),
            handle=-1,
            address=addr,
            transport=transport,
            status=status,
            status_name=error_name(status) or hex(status),
            start_frame=frame,
            start_time_us=time_us,
            end_frame=frame,
            end_time_us=time_us,
            initiator="local" if tx is not None else "remote",
            request_frame=tx.frame if tx else None,
        )
        self.connections.append(c)
        self._event(
            time_us,
            frame,
            addr,
            "connect",
            f"connection to {addr} failed: {c.status_name}",
            "error",
        )


def _conn_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    addr = ev.bd_addr or "?"
    tx = st._pending_create.pop(addr, None)
    remote_req = st._pending_remote.pop(addr, None)
    st.device(addr, frame)
    link = ev.fields.get("link_type")
    if ev.status != 0:
        st._failed_connection(addr, ev.status or 0, frame, time_us, tx)
        p = st._pairing_open.get(addr)
        if p is not None and p.outcome == "unknown" and p.connection is None:
            st._end_pair(p, ev.status or 0, frame, time_us)  # set-up failed in authentication
        return
    handle = ev.handle or 0
    if link in (0, 2):  # SCO over Connection Complete (old controllers)
        _sync_complete(st, ev, frame, time_us)
        return
    st.end_links(frame, time_us, handle)  # the handle was reused without a disconnect
    c = Connection(
        id=st._new_id("acl", handle),
        handle=handle,
        address=addr,
        transport="br_edr",
        status=0,
        status_name="Success",
        start_frame=frame,
        start_time_us=time_us,
        initiator="local" if tx is not None else "remote" if remote_req else None,
        request_frame=tx.frame if tx else remote_req,
        encrypted=bool(ev.fields.get("encryption_enabled")),
    )
    st.connections.append(c)
    st._open[("acl", handle)] = c
    p = st._pairing_open.get(addr)
    if p is not None and p.outcome == "unknown" and p.connection is None:
        # authentication during connection set-up (Link Key Request before Connection
        # Complete, Core Vol 2 Part F §4.1): the link came up, so the key was accepted
        p.connection, p.transport = c.id, c.transport
        if p.link_key_request == "reply" and p.method in (None, "stored_key"):
            st._end_pair(p, 0, frame, time_us)
    st._event(time_us, frame, c.id, "connect", f"ACL connected to {addr} (handle {handle:#x})")


def _le_conn_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    addr = ev.bd_addr or "?"
    dev = st.device(addr, frame)
    dev.address_type = ev.fields.get("peer_address_type_name")
    if ev.status != 0:
        if ev.status == 0x02:  # Unknown Connection Identifier: the host cancelled its own attempt
            return
        st._failed_connection(addr, ev.status or 0, frame, time_us, None, transport="le")
        return
    handle = ev.handle or 0
    st.end_links(frame, time_us, handle)
    role = ev.fields.get("role")
    c = Connection(
        id=st._new_id("le", handle),
        handle=handle,
        address=addr,
        transport="le",
        status=0,
        status_name="Success",
        start_frame=frame,
        start_time_us=time_us,
        initiator="local" if role == 0 else "remote",
        role="central" if role == 0 else "peripheral",
    )
    st.connections.append(c)
    st._open[("le", handle)] = c
    st._event(time_us, frame, c.id, "connect", f"LE connected to {addr} (handle {handle:#x})")


def _sync_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    addr = ev.bd_addr or "?"
    acl = st.open_acl_for(addr)
    link = ev.fields.get("link_type")
    transport = "esco" if link == 2 else "sco"
    if ev.status != 0:
        st._failed_connection(addr, ev.status or 0, frame, time_us, None, transport=transport)
        return
    handle = ev.handle or 0
    st.end_links(frame, time_us, handle)
    c = Connection(
        id=st._new_id("sco", handle),
        handle=handle,
        address=addr,
        transport=transport,
        status=0,
        status_name="Success",
        start_frame=frame,
        start_time_us=time_us,
        acl=acl.id if acl else None,
        sco=ScoLink(
            link_type_name=ev.fields.get("link_type_name"),
            transmission_interval=ev.fields.get("transmission_interval"),
            retransmission_window=ev.fields.get("retransmission_window"),
            rx_packet_length=ev.fields.get("rx_packet_length"),
            tx_packet_length=ev.fields.get("tx_packet_length"),
            air_mode=ev.fields.get("air_mode"),
            air_mode_name=ev.fields.get("air_mode_name"),
        ),
    )
    st.connections.append(c)
    st._open[("sco", handle)] = c
    st._event(
        time_us,
        frame,
        c.id,
        "sco",
        f"{transport.upper()} up with {addr} ({ev.fields.get('air_mode_name')})",
    )


def _sync_changed(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    c = st._open.get(("sco", ev.handle or 0))
    if c is not None and c.sco is not None and ev.status == 0:
        c.sco.changes.append(
            ScoChange(
                frame=frame,
                transmission_interval=ev.fields.get("transmission_interval"),
                retransmission_window=ev.fields.get("retransmission_window"),
                rx_packet_length=ev.fields.get("rx_packet_length"),
                tx_packet_length=ev.fields.get("tx_packet_length"),
            )
        )


def _disconn_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.status != 0:
        return
    handle = ev.handle or 0
    for kind in ("acl", "le", "sco"):
        c = st._open.pop((kind, handle), None)
        if c is not None:
            break
    else:
        # a link set up before the capture, known only by its end (and by any data on the
        # handle, which the build step assigns to it and dates it from)
        c = st.inferred_connection(handle, frame, time_us, le=False)
        st._open.pop(("acl", handle), None)
        ends = [x.end_frame for x in st.connections if x.handle == handle and x.end_frame]
        c.start_frame = max(ends) + 1 if ends else None
        c.start_time_us = None
    c.end_frame, c.end_time_us = frame, time_us
    c.disconnect_reason = ev.reason
    c.disconnect_reason_name = ev.reason_name
    sev = "warning" if ev.reason in (0x08, 0x22, 0x3D) else "info"
    st._event(
        time_us,
        frame,
        c.id,
        "disconnect",
        f"{c.transport} link to {c.address} closed: {ev.reason_name}",
        sev,
    )
    if c.address and c.transport in ("br_edr", "le"):
        p = st._pairing_open.get(c.address)
        if p is not None and p.outcome == "unknown":
            p.details.ended_by_disconnect = frame


def _conn_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pending_remote[ev.bd_addr] = frame
        d = st.device(ev.bd_addr, frame)
        d.class_of_device = ev.fields.get("class_of_device") or d.class_of_device


def _auth_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    c = st.conn_by_handle(ev.handle)
    addr = c.address if c else None
    if addr is None:
        return
    p = st._pair(addr, frame, time_us, c)
    p.frames.pop()
    st._end_pair(p, ev.status or 0, frame, time_us)


def _encryption_change(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    c = st.conn_by_handle(ev.handle)
    if c is None:
        return
    c.encryption_frames.append(frame)
    if ev.status not in (None, 0):
        c.encryption_failures.append(
            EncryptionFailure(frame, time_us, ev.status, ev.status_name, ev.name)
        )
    if ev.status == 0 and "encryption_enabled" in ev.fields:
        c.encrypted = bool(ev.fields.get("encryption_enabled"))
    st._event(
        time_us,
        frame,
        c.id,
        "encryption",
        "encryption on"
        if ev.status == 0 and c.encrypted
        else f"encryption change: {ev.status_name}",
        "info" if ev.status == 0 else "error",
    )
    if c.address and ev.status not in (None, 0):
        p = st._pairing_open.get(c.address)
        if p is not None and p.outcome == "unknown":
            p.details.encryption_status = ev.status
            st._end_pair(p, ev.status or 0, frame, time_us)
    elif c.address and c.transport == "br_edr" and c.encrypted:
        # BR/EDR encryption starts only once authentication succeeded with the link key
        # (Core Vol 2 Part F §4.1): a stored-key attempt with no Authentication Complete of its
        # own (authentication during connection set-up) succeeded here
        p = st._pairing_open.get(c.address)
        if (
            p is not None
            and p.outcome == "unknown"
            and p.link_key_request == "reply"
            and p.connection == c.id
        ):
            st._end_pair(p, 0, frame, time_us)


def _remote_version(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    c = st.conn_by_handle(ev.handle)
    if c is None or c.address is None or ev.status != 0:
        return
    d = st.device(c.address, frame)
    d.lmp_version = ev.fields.get("version")
    d.lmp_subversion = ev.fields.get("subversion")
    d.manufacturer = ev.fields.get("manufacturer")
    d.manufacturer_name = ev.fields.get("manufacturer_name")
    d.versions_seen.append(
        VersionSeen(c.id, frame, time_us, d.lmp_version, d.lmp_subversion, d.manufacturer)
    )


def _remote_name(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr and ev.status == 0:
        name = ev.fields.get("remote_name")
        if name:
            st.device(ev.bd_addr, frame).name = name


def _inquiry_result(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    for r in ev.fields.get("responses", []):
        d = st.device(r.bd_addr, frame)
        if r.class_of_device is not None:
            d.class_of_device = r.class_of_device
        if r.name:
            d.name = r.name
        st.discovered.append(DiscoveredDevice(r.bd_addr, frame, time_us, r.rssi, r.name))


def _link_key_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))


def _link_key_notification(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        p = st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))
        p.key_type = ev.fields.get("key_type")
        p.key_type_name = ev.fields.get("key_type_name")
        st._bonded.add(ev.bd_addr)


def _pin_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr)).method = "legacy_pin"


def _io_cap_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))


def _io_cap_response(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        p = st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))
        p.io_capability_remote = ev.fields.get("io_capability_name")
        if ev.fields.get("oob_data_present"):
            p.details.remote_oob = True


def _user_confirmation(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if not ev.bd_addr:
        return
    p = st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))
    # Core Vol 3 Part C §5.2.2.6 (Table 5.7): a NoInputNoOutput or DisplayOnly side confirms
    # automatically (Just Works); two DisplayYesNo sides compare numbers.
    caps = {p.io_capability_local, p.io_capability_remote}
    if caps & {"NoInputNoOutput", "DisplayOnly"}:
        p.method = "just_works"
    elif caps == {"DisplayYesNo"}:
        p.method = "numeric_comparison"
    else:
        p.method = p.method or "ssp_user_confirmation"


def _passkey(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr)).method = "passkey"


def _oob_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr)).method = "oob"


def _ssp_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if not ev.bd_addr:
        return
    p = st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))
    p.details.simple_pairing_status = ev.status
    if ev.status not in (None, 0):
        p.frames.pop()
        st._end_pair(p, ev.status or 0, frame, time_us)


def _hardware_error(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    st.hardware_errors.append(HardwareError(frame, time_us, ev.fields.get("hardware_code")))
    st._event(
        time_us,
        frame,
        "controller",
        "hardware_error",
        f"Hardware Error {ev.fields.get('hardware_code')}",
        "error",
    )


def _role_change(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.status == 0 and ev.bd_addr:
        c = st.open_acl_for(ev.bd_addr)
        if c is not None:
            c.role = "central" if ev.fields.get("new_role") == 0 else "peripheral"


def _le_ltk_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    c = st.conn_by_handle(ev.handle)
    if c is not None and c.address:
        p = st._pair(c.address, frame, time_us, c)
        p.transport = "le"
        p.details.ltk_request = True


_EVENT_HANDLERS: dict[int, Any] = {
    0x02: _inquiry_result,
    0x22: _inquiry_result,
    0x2F: _inquiry_result,
    0x03: _conn_complete,
    0x04: _conn_request,
    0x05: _disconn_complete,
    0x06: _auth_complete,
    0x07: _remote_name,
    0x08: _encryption_change,
    0x59: _encryption_change,
    0x0C: _remote_version,
    0x30: _encryption_change,  # Encryption Key Refresh Complete (status + handle)
    0x10: _hardware_error,
    0x12: _role_change,
    0x16: _pin_request,
    0x17: _link_key_request,
    0x18: _link_key_notification,
    0x2C: _sync_complete,
    0x2D: _sync_changed,
    0x31: _io_cap_request,
    0x32: _io_cap_response,
    0x33: _user_confirmation,
    0x34: _passkey,
    0x3B: _passkey,
    0x35: _oob_request,
    0x36: _ssp_complete,
    0x3E01: _le_conn_complete,
    0x3E0A: _le_conn_complete,
    0x3E29: _le_conn_complete,
    0x3E05: _le_ltk_request,
}
