"""Rule tests: auth_key_missing — a stale key followed by a fresh pairing is a recovery."""

from __future__ import annotations

from analyzer.analysis import analyze
from analyzer.model import PairingAttempt
from analyzer.rules.base import run_rules
from tests.conftest import BUNDLED
from tests.rules.helpers import _bare, _conn


def test_rekeyed_after_a_stale_key_is_a_recovery_not_a_lost_key() -> None:
    a = _bare()
    addr = "AA:BB:CC:00:00:02"
    a.connections = [_conn(1, addr, 0.0, 5.0, 0x05), _conn(2, addr, 10.0, 50.0, 0x13)]
    a.pairing = [
        PairingAttempt(addr, "acl-0x001-1", "br_edr", 12, 1_000_000, method="stored_key",
                       link_key_request="reply", outcome="failure", status=0x06,
                       status_name="PIN or Key Missing", frames=[12, 14]),
        PairingAttempt(addr, "acl-0x002-1", "br_edr", 22, 11_000_000, method="just_works",
                       link_key_request="negative_reply", outcome="success", status=0,
                       frames=[22, 30]),
    ]  # fmt: skip
    a.pairing[1].details.bonded_earlier_in_capture = True
    fs = run_rules(a)
    (stale,) = [f for f in fs if f.id == "auth_key_missing"]
    assert stale.recovered_at_frame == 30 and stale.severity == "warning"
    assert any("a recovery, not a lost key" in s.why for s in a.suppressed)


def test_stale_key_then_re_pair_on_the_same_link_is_a_recovery() -> None:
    """bumble scenario: Authentication Complete 0x06 with the stored key, the phone drops the
    key and pairs again (Link Key Request Negative Reply, SSP) on the same link."""
    a = analyze(BUNDLED / "scenarios" / "stale_bond_repaired.btsnoop")
    (f,) = [x for x in a.findings if x.id == "auth_key_missing"]
    assert f.severity == "warning" and f.recovered_at_frame is not None
    assert f"recovered at frame {f.recovered_at_frame}" in f.message
    assert [p.outcome for p in a.pairing] == ["failure", "success"]
