"""Benign protocol behaviour (analyzer/sessions/benign.py) is recognised and kept in
``suppressed`` with the reason instead of becoming a finding: each pattern on the real capture it
was seen in, and the named predicates on their own for races the corpus lacks."""

from __future__ import annotations

from analyzer.model import Connection
from tests.rules.helpers import _mine, _real


def test_avctp_collision_and_teardown_refusals_are_not_failures() -> None:
    """bluffs: both sides open AVCTP at once (889/892, 1271/1274) and the channel opens a few
    frames later; the host refuses the buds' AVCTP while it is closing the link (561 → 573)."""
    a = _real("francozappa_bluffs_sc-pixelbuds-aseries.pcapng")
    assert not _mine(a, "l2cap_connection_refused")
    why = {tuple(s.frames): s.why for s in a.suppressed if s.rule == "l2cap_connection_refused"}
    assert why[(889, 895)].startswith("collision") and "908" in why[(889, 895)]
    assert why[(892, 898)].startswith("collision")
    assert "teardown began at frame 561" in why[(570, 573)]


def test_duplicate_accept_connection_request() -> None:
    """ap4y: the host sends Accept Connection Request twice; the second gets 0x0C and the
    connection completes from the first."""
    a = _real("ap4y_iSAP_hci_dump.pklg")
    assert not _mine(a, "hci_command_failed")
    sup = [s for s in a.suppressed if 31 in s.frames or 104 in s.frames]
    assert len(sup) == 2 and all("still in progress" in s.why for s in sup)


def test_disabling_periodic_advertising_that_never_ran() -> None:
    a = _real("cheoljun99_bluetooth-pcap-test_bluetooth.pcap")
    assert not [f for f in a.findings if f.severity != "info"]
    sup = [s for s in a.suppressed if "Periodic Advertising Enable" in s.what]
    assert len(sup) == 11 and all("nothing enabled" in s.why for s in sup)


def test_scan_disable_and_resent_le_create_connection() -> None:
    a = _real("fotonick_hciparse_test00.pklg")
    assert all(f.severity == "info" for f in _mine(a, "hci_command_failed"))  # a cancel race
    whys = [s.why for s in a.suppressed]
    assert sum("nothing enabled" in w for w in whys) >= 60
    assert any("LE Create Connection (frame 129) was still in progress" in w for w in whys)


def test_start_up_probes_are_not_reported() -> None:
    a = _real("AshMartian_HappyLeaf_Bluetooth_btsnoop_hci_happyleaf_fail.log")
    assert not _mine(a, "hci_command_failed")
    assert any(
        s.why.startswith("start-up probe") and "LE Set Event Mask" in s.what for s in a.suppressed
    )


# -- the named predicates on their own (patterns the shared corpus does not hold) -----------------


def _tx(frame: int, op: int, status: int, **kw: object) -> object:
    from analyzer.model import HciTransaction

    tx = HciTransaction(frame, frame * 1000, op, f"op {op:#06x}", False, **kw)  # type: ignore[arg-type]
    tx.status = status
    return tx


def test_predicates_for_races_the_corpus_lacks() -> None:
    from analyzer.sessions import benign

    assert benign.address_while_active(_tx(5, 0x2005, 0x0C))  # type: ignore[arg-type]
    assert benign.address_while_active(_tx(5, 0x2005, 0x12)) is None  # type: ignore[arg-type]
    assert benign.name_cancel_race(_tx(9, 0x041A, 0x02))  # type: ignore[arg-type]
    page = Connection("fail-0x000-1", 0, "AA:00:00:00:00:09", "br_edr", 0x0B,
                      "Connection Already Exists", 10, 1_000_000, initiator="local")  # fmt: skip
    theirs = Connection("acl-0x001-1", 1, "AA:00:00:00:00:09", "br_edr", 0, "Success", 12,
                        1_200_000, initiator="remote")  # fmt: skip
    later = Connection("acl-0x002-1", 2, "AA:00:00:00:00:09", "br_edr", 0, "Success", 90,
                       9_000_000, initiator="remote")  # fmt: skip
    assert "frame 12" in (benign.page_races_incoming(page, [page, theirs]) or "")
    assert benign.page_races_incoming(page, [page, later]) is None
    on = _tx(20, 0x200C, 0, enable=1)
    again = _tx(22, 0x200C, 0x0C, enable=1)
    assert benign.enable_in_same_state(again, {0x200C: 1})  # type: ignore[arg-type]
    assert benign.enable_in_same_state(again, {0x200C: 0}) is None  # type: ignore[arg-type]
    assert on is not again
