"""Rule tests: response_timeout — silence is reported whatever the deadline, a completion event
older tools do not know still completes, requests a host ignores on purpose are warnings."""

from __future__ import annotations

from analyzer.analysis import analyze
from analyzer.rules.base import RuleConfig
from tests.rules.helpers import SCEN, _mine, _real


def test_encryption_change_v2_completes_le_enable_encryption() -> None:
    """RokoAB (iPhone): LE Start Encryption at 686 completes with Encryption Change v2 (event
    0x59, Core 5.3), which older tools do not know: no 'unanswered' error, the link is encrypted."""
    a = _real("RokoAB_Bluetooth-Low-Energy-communication_Iphone_sound_airtag_airpods.log")
    assert not _mine(a, "response_timeout")
    (tx,) = [t for t in a.hci_commands if t.frame == 686]
    assert tx.complete_frame == 691 and tx.complete_status == 0


def test_silence_is_reported_whatever_the_deadline() -> None:
    base = analyze(SCEN / "requests_unanswered.btsnoop")
    cfg = RuleConfig()
    cfg.set("response_timeout", "deadline_s", 600)
    longer = analyze(SCEN / "requests_unanswered.btsnoop", cfg)
    assert sorted(f.frames[0] for f in _mine(base, "response_timeout")) == [83, 100, 105, 167]
    assert sorted(f.frames[0] for f in _mine(longer, "response_timeout")) == [83, 100, 105, 167]


def test_vendor_at_commands_the_host_ignores_are_warnings() -> None:
    a = _real("mishaal79_blproject_a3_ueboom_nopairing_onlysesskey.pcapng")
    fs = _mine(a, "response_timeout")
    assert fs and all(f.severity == "warning" for f in fs)
    assert any("AT+XAPL" in f.message for f in fs)
