"""Rule tests: att_error — security errors and CCCD write errors, with what followed."""

from __future__ import annotations

from analyzer.analysis import analyze
from tests.conftest import BUNDLED, shared_capture
from tests.oracle import tshark_fields
from tests.rules.helpers import _mine, _real


def test_cccd_write_refused_then_accepted_on_the_next_connection() -> None:
    """durnerj: the app enables notifications, the CCCD write (handle 0x0019) is refused with
    0x08 Insufficient Authorization at frame 287 (on a link encrypted since 139: the device's
    own authorization, not pairing), the app disconnects at 290, reconnects, and the same write
    is accepted at 536."""
    name = "durnerj_PoGo-Plus-BLE_btsnoop_hci.log"
    a = _real(name)
    rows = tshark_fields(shared_capture(name), ["frame.number", "btatt.error_code"], "-Y",
                         "btatt.opcode == 0x01 && btatt.error_code == 0x08")  # fmt: skip
    assert [r[0] for r in rows] == ["287"]
    (f,) = _mine(a, "att_error")
    assert f.severity == "info" and f.frames == [285, 287, 290]
    assert f.details["cccd"] is True and "Client Characteristic Configuration" in f.message
    assert f.details["retried_frame"] == 536
    assert "already encrypted (frame 139)" in f.explanation


def test_security_error_followed_by_pairing_is_a_recovery() -> None:
    """AleBonora (sniffer): Insufficient Authentication at 3238, the central pairs at once and
    the link is encrypted; the retried write is encrypted on the air."""
    a = _real("AleBonora3_Tesi_BLE_Lv4_passkey.pcapng")
    (f,) = _mine(a, "att_error")
    assert f.severity == "info" and "the link was then secured" in f.message


def test_scenario_write_refused_and_the_phone_disconnects() -> None:
    a = analyze(BUNDLED / "scenarios" / "le_att_insufficient_authentication.btsnoop")
    (f,) = _mine(a, "att_error")
    assert f.severity == "error" and f.details["error"] == 0x05


def test_attribute_not_found_during_discovery_is_not_reported() -> None:
    a = analyze(BUNDLED / "scenarios" / "le_att_unanswered.btsnoop")
    assert any(t.error == 0x0A for t in a.att.transactions)
    assert not _mine(a, "att_error")
