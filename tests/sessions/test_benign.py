"""Benign protocol behaviour (analyzer/sessions/benign.py) is recognised and kept in
``suppressed`` with the reason instead of becoming a finding: each pattern on the real capture it
was seen in, and the named predicates on their own for races the corpus lacks."""

from __future__ import annotations

import json

from analyzer.model import Connection
from tests.conftest import REPO
from tests.rules.helpers import _mine, _real, _scen


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


def test_predicates_judge_the_state() -> None:
    from analyzer.sessions import benign

    refused = _tx(5, 0x2005, 0x0C)
    # advertising on, or its state unknown: benign; all known off: a real refusal
    assert "advertising" in (benign.address_while_active(refused, {0x200A: 1}, []) or "")  # type: ignore[arg-type]
    assert benign.address_while_active(refused, {}, [])  # type: ignore[arg-type]
    assert benign.address_while_active(refused, {0x200A: 0, 0x200C: 0}, []) is None  # type: ignore[arg-type]
    assert benign.address_while_active(_tx(5, 0x2005, 0x12), {0x200A: 1}, []) is None  # type: ignore[arg-type]
    name = _tx(3, 0x0419, 0)
    name.complete_frame = 6
    cancel = _tx(9, 0x041A, 0x02)
    assert "frame 6" in (benign.name_cancel_race(cancel, [name]) or "")  # type: ignore[arg-type]
    name.complete_frame = None  # the request still pending: a cancel refused is not a race
    assert benign.name_cancel_race(cancel, [name]) is None  # type: ignore[arg-type]
    assert benign.name_cancel_race(cancel, []) is None  # type: ignore[arg-type]
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


# -- the races on scenario captures (bumble hosts; the controller answers as the spec says) --


def _kf(name: str) -> dict:
    entry = next(e for e in _manifest() if e["file"] == f"{name}.btsnoop")
    return entry["ground_truth"]["key_frames"]


def _manifest() -> list[dict]:
    return json.loads((REPO / "captures" / "scenarios" / "manifest.json").read_text())["captures"]


def test_page_racing_the_devices_own_connection() -> None:
    a = _scen("page_races_incoming.btsnoop")
    kf = _kf("page_races_incoming")
    assert [f for f in a.findings if f.severity != "info"] == []
    failed = next(c for c in a.connections if c.status == 0x0B)
    ok = next(c for c in a.connections if c.status == 0)
    # each completion took its own request: the link that came up is the headset's
    assert (
        failed.initiator == "local"
        and failed.start_frame == kf["connection_complete_already_exists"]
    )
    assert ok.initiator == "remote" and ok.start_frame == kf["connection_complete_incoming"]
    [sup] = [s for s in a.suppressed if s.rule == "connection_failed"]
    assert f"frame {ok.start_frame}" in sup.why and failed.start_frame in sup.frames


def test_random_address_refused_while_advertising() -> None:
    a = _scen("random_address_while_advertising.btsnoop")
    assert [f for f in a.findings if f.severity != "info"] == []
    [sup] = [s for s in a.suppressed if "Random Address" in s.what]
    assert "while advertising" in sup.why
    assert _kf("random_address_while_advertising")["set_random_address_refused"] in sup.frames


def test_name_cancel_after_the_name_came() -> None:
    a = _scen("name_cancel_after_result.btsnoop")
    assert [f for f in a.findings if f.severity != "info"] == []
    [sup] = [s for s in a.suppressed if "Remote Name Request Cancel" in s.what]
    assert "after the name request had completed" in sup.why
    assert _kf("name_cancel_after_result")["remote_name_request_cancel"] in sup.frames


def test_links_lost_together_are_one_incident() -> None:
    a = _scen("links_lost_together.btsnoop")
    lost = [f for f in a.findings if f.id == "link_loss"]
    assert len(lost) == 3 and len({f.address for f in lost}) == 3  # every finding kept
    [inc] = [i for i in a.incidents if len(i.devices) == 3]
    assert len(inc.devices) == 3 and "one cause on the capturing side" in inc.verdict
    assert {f.incident for f in lost} == {inc.id}


def test_links_lost_together_frames() -> None:
    a = _scen("links_lost_together.btsnoop")
    ends = sorted(c.end_frame for c in a.connections if c.disconnect_reason == 0x08)
    assert ends == _kf("links_lost_together")["links_timed_out"]
