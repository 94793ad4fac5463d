"""Devices and the controller: remote versions and names, inquiry results, hardware errors
(Core v5.4 Vol 4 Part E §7.7.1-§7.7.2, §7.7.7, §7.7.12, §7.7.16, §7.7.33, §7.7.38).
"""

from __future__ import annotations

from analyzer.decode.hci import HciEvent
from analyzer.model import (
    DiscoveredDevice,
    HardwareError,
    VersionSeen,
)
from analyzer.sessions.hci_state import HciState, handles


@handles(0x0C)
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


@handles(0x07)
def _remote_name(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    if ev.bd_addr and ev.status == 0:
        name = ev.fields.get("remote_name")
        if name:
            st.device(ev.bd_addr, frame).name = name


@handles(0x02)
@handles(0x22)
@handles(0x2F)
def _inquiry_result(st: HciState, ev: HciEvent, frame: int, time_us: int) -> None:
    for r in ev.fields.get("responses", []):
        d = st.device(r.bd_addr, frame)
        if r.class_of_device is not None:
            d.class_of_device = r.class_of_device
        if r.name:
            d.name = r.name
        st.discovered.append(DiscoveredDevice(r.bd_addr, frame, time_us, r.rssi, r.name))


@handles(0x10)
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
