"""Links: ACL, LE and SCO/eSCO set-up and teardown (Core v5.4 Vol 4 Part E §7.7.3-§7.7.5,
§7.7.35-§7.7.36, §7.7.65.1/.10, role change §7.7.18).
"""

from __future__ import annotations

from typing import Any

from analyzer.decode.hci import HciEvent
from analyzer.model import (
    Connection,
    ScoChange,
    ScoLink,
)
from analyzer.sessions.hci_state import HciState, handles


def _open_link(
    st: HciState, kind: str, handle: int, addr: str, frame: int, time_us: int, **fields: Any
) -> Connection:
    """A link that came up on ``handle`` (a link still open on it ends here: the handle was
    reused without a disconnect), recorded as open."""
    st.end_links(frame, time_us, handle)
    c = Connection(
        id=st._new_id(kind, handle), handle=handle, address=addr, status=0,
        status_name="Success", start_frame=frame, start_time_us=time_us, **fields,
    )  # fmt: skip
    st.connections.append(c)
    st._open[(kind, handle)] = c
    return c


@handles(0x03)
def _conn_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    addr = ev.bd_addr or "?"
    tx = st._pending_create.get(addr)
    remote_req = st._pending_remote.get(addr)
    if tx is not None and remote_req is not None:
        # our page and the device's own connection crossed: the Connection Request reached
        # the host, so a link that comes up is the device's; our page ends with the failure
        # (Connection Already Exists, §7.1.5) — each completion takes its own request
        if ev.status == 0:
            tx = None
            del st._pending_remote[addr]
        else:
            remote_req = None
            del st._pending_create[addr]
    else:
        st._pending_create.pop(addr, None)
        st._pending_remote.pop(addr, None)
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
    c = _open_link(
        st, "acl", handle, addr, frame, time_us,
        transport="br_edr",
        initiator="local" if tx is not None else "remote" if remote_req else None,
        request_frame=tx.frame if tx else remote_req,
        encrypted=bool(ev.fields.get("encryption_enabled")),
    )  # fmt: skip
    p = st._pairing_open.get(addr)
    if p is not None and p.outcome == "unknown" and p.connection is None:
        # authentication during connection set-up (Link Key Request before Connection
        # Complete, Core Vol 2 Part F §4.1): the link came up, so the key was accepted
        p.connection, p.transport = c.id, c.transport
        if p.link_key_request == "reply" and p.method in (None, "stored_key"):
            st._end_pair(p, 0, frame, time_us)
    st._event(time_us, frame, c.id, "connect", f"ACL connected to {addr} (handle {handle:#x})")


@handles(0x3E01)
@handles(0x3E0A)
@handles(0x3E29)
def _le_conn_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    tx, mode = st._pending_le, st._pending_le_mode
    st._pending_le = st._pending_le_mode = None
    if ev.fields.get("role") == 1:
        tx, mode = None, None  # we were advertising: the peer connected to us
    addr = ev.bd_addr or "?"
    if ev.status != 0:
        if addr in ("?", "00:00:00:00:00:00") and tx is not None and mode == "direct":
            addr = tx.address or addr  # a cancelled attempt's event carries no peer address
        if addr != "00:00:00:00:00:00":
            st.device(addr, frame)
        st._failed_connection(
            addr, ev.status or 0, frame, time_us, tx, transport="le", connect_mode=mode
        )
        return
    dev = st.device(addr, frame)
    dev.address_type = ev.fields.get("peer_address_type_name")
    handle = ev.handle or 0
    role = ev.fields.get("role")
    c = _open_link(
        st, "le", handle, addr, frame, time_us,
        transport="le",
        initiator="local" if role == 0 else "remote",
        role="central" if role == 0 else "peripheral",
        request_frame=tx.frame if tx is not None else None,
        connect_mode=mode,
        attempt_ms=(time_us - tx.time_us) / 1000 if tx is not None else None,
        supervision_timeout_ms=ev.fields.get("supervision_timeout_ms"),
        supervision_timeout_frame=frame,
    )  # fmt: skip
    st._event(time_us, frame, c.id, "connect", f"LE connected to {addr} (handle {handle:#x})")


@handles(0x3E03)
def _le_conn_update_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    """LE Connection Update Complete (§7.7.65.3): the parameters now in force."""
    c = st.conn_by_handle(ev.handle)
    if ev.status != 0 or c is None or c.transport != "le":
        return
    c.supervision_timeout_ms = ev.fields.get("supervision_timeout_ms")
    c.supervision_timeout_frame = frame


@handles(0x3E06)
def _le_remote_param_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    """LE Remote Connection Parameter Request (§7.7.65.6): the peer asked for new parameters."""
    c = st.conn_by_handle(ev.handle)
    if c is not None:
        c.params_requested_frame = frame


@handles(0x2C)
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


@handles(0x2D)
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


@handles(0x05)
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
        last = st.last_end(handle)
        c.start_frame = last + 1 if last is not None else None
        c.start_time_us = None
    c.end_frame, c.end_time_us = frame, time_us
    st.ended_on(handle, frame)
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


@handles(0x04)
def _conn_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pending_remote[ev.bd_addr] = frame
        d = st.device(ev.bd_addr, frame)
        d.class_of_device = ev.fields.get("class_of_device") or d.class_of_device


@handles(0x12)
def _role_change(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.status == 0 and ev.bd_addr:
        c = st.open_acl_for(ev.bd_addr)
        if c is not None:
            c.role = "central" if ev.fields.get("new_role") == 0 else "peripheral"
