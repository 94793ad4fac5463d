"""Rule tests: controller_reset and hardware_error.

Rules read sessions, never bytes: faults with no capture holding them are injected into the
session objects of a scenario capture.
"""

from __future__ import annotations

from analyzer.model import (
    ControllerReset,
    HardwareError,
)
from tests.rules.helpers import _fresh, _mine, _real, _rerun


def test_resets_at_start_and_at_power_off_are_silent() -> None:
    # motog2013: a Reset right after the last disconnect with nothing after it (power off);
    # aleksamarkoni: two Resets within 0.6 s of start-up while firmware loads (tshark: frames
    # 553, 559 follow the vendor patch download)
    assert not _mine(
        _real("2m_a2dp-captures_motog2013-lghbs730_btsnoop_hci.log"), "controller_reset"
    )
    assert not _mine(_real("aleksamarkoni_bluetooth_sample_btsnoop_hci.log"), "controller_reset")


def test_mid_capture_reset_and_hardware_error_injected() -> None:
    a = _fresh("a2dp_sbc_clean.btsnoop")
    conn = a.connections[0]
    t = (conn.start_time_us or 0) + 2_000_000
    later = [tx for tx in a.hci_commands if tx.time_us > t]
    assert later  # commands follow: the stack comes back up
    frame = later[0].frame - 1
    a.controller.resets.append(ControllerReset(frame, t))
    a.controller.hardware_errors.append(HardwareError(frame - 1, t, 2))
    fs = _rerun(a)
    [r] = [f for f in fs if f.id == "controller_reset"]
    assert r.frames == [frame] and conn.id in r.details["connections_dropped"]
    [h] = [f for f in fs if f.id == "hardware_error"]
    assert "0x02" in h.message and h.details["reset_frame"] == frame
