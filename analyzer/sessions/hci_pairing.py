"""Pairing and encryption: authentication, link keys, Secure Simple Pairing, encryption changes and
LE LTK requests (Core v5.4 Vol 4 Part E §7.7.6, §7.7.8, §7.7.22-§7.7.24, §7.7.40-§7.7.45,
§7.7.65.5).
"""

from __future__ import annotations

from analyzer.decode.hci import HciEvent
from analyzer.model import (
    EncryptionFailure,
)
from analyzer.sessions.hci_state import HciState, handles


@handles(0x06)
def _auth_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    c = st.conn_by_handle(ev.handle)
    addr = c.address if c else None
    if addr is None:
        return
    p = st._pair(addr, frame, time_us, c)
    p.frames.pop()
    st._end_pair(p, ev.status or 0, frame, time_us)


@handles(0x08)
@handles(0x59)
@handles(0x30)  # Encryption Key Refresh Complete (status + handle)
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


@handles(0x17)
def _link_key_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))


@handles(0x18)
def _link_key_notification(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        p = st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))
        p.key_type = ev.fields.get("key_type")
        p.key_type_name = ev.fields.get("key_type_name")
        st._bonded.add(ev.bd_addr)


@handles(0x16)
def _pin_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr)).method = "legacy_pin"


@handles(0x31)
def _io_cap_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))


@handles(0x32)
def _io_cap_response(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        p = st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))
        p.io_capability_remote = ev.fields.get("io_capability_name")
        if ev.fields.get("oob_data_present"):
            p.details.remote_oob = True


@handles(0x33)
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


@handles(0x34)
@handles(0x3B)
def _passkey(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr)).method = "passkey"


@handles(0x35)
def _oob_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr:
        st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr)).method = "oob"


@handles(0x36)
def _ssp_complete(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if not ev.bd_addr:
        return
    p = st._pair(ev.bd_addr, frame, time_us, st.open_acl_for(ev.bd_addr))
    p.details.simple_pairing_status = ev.status
    if ev.status not in (None, 0):
        p.frames.pop()
        st._end_pair(p, ev.status or 0, frame, time_us)


@handles(0x3E05)
def _le_ltk_request(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    c = st.conn_by_handle(ev.handle)
    if c is not None and c.address:
        p = st._pair(c.address, frame, time_us, c)
        p.transport = "le"
        p.details.ltk_request = True
