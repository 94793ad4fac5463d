"""Diagnoses a support engineer can trust: benign protocol behaviour recognised (and kept in
``suppressed`` with the reason), recoveries graded and named, one event one finding, silence
reported whatever the deadline, and findings grouped into incidents. Each pattern is checked on
the real capture it was seen in, or on a scenario."""

from __future__ import annotations

import pytest

from analyzer.analysis import analyze
from analyzer.model import (
    Analysis,
    CaptureSummary,
    Connection,
    Finding,
    PairingAttempt,
)
from analyzer.rules.base import RuleConfig, run_rules
from analyzer.rules.incidents import build_incidents
from tests.conftest import REPO, analysis_of, shared_capture

SCEN = REPO / "captures" / "scenarios"


def _real(name: str) -> Analysis:
    a = analysis_of(shared_capture(name))
    assert isinstance(a, Analysis)
    return a


def _ids(a: Analysis, rule: str) -> list[Finding]:
    return [f for f in a.findings if f.id == rule]


# -- benign patterns (sessions/benign.py) ---------------------------------------------------------


def test_avctp_collision_and_teardown_refusals_are_not_failures() -> None:
    """bluffs: both sides open AVCTP at once (889/892, 1271/1274) and the channel opens a few
    frames later; the host refuses the buds' AVCTP while it is closing the link (561 → 573)."""
    a = _real("francozappa_bluffs_sc-pixelbuds-aseries.pcapng")
    assert not _ids(a, "l2cap_connection_refused")
    why = {tuple(s.frames): s.why for s in a.suppressed if s.rule == "l2cap_connection_refused"}
    assert why[(889, 895)].startswith("collision") and "908" in why[(889, 895)]
    assert why[(892, 898)].startswith("collision")
    assert "teardown began at frame 561" in why[(570, 573)]


def test_duplicate_accept_connection_request() -> None:
    """ap4y: the host sends Accept Connection Request twice; the second gets 0x0C and the
    connection completes from the first."""
    a = _real("ap4y_iSAP_hci_dump.pklg")
    assert not _ids(a, "hci_command_failed")
    sup = [s for s in a.suppressed if 31 in s.frames or 104 in s.frames]
    assert len(sup) == 2 and all("still in progress" in s.why for s in sup)


def test_disabling_periodic_advertising_that_never_ran() -> None:
    a = _real("cheoljun99_bluetooth-pcap-test_bluetooth.pcap")
    assert not [f for f in a.findings if f.severity != "info"]
    sup = [s for s in a.suppressed if "Periodic Advertising Enable" in s.what]
    assert len(sup) == 11 and all("nothing enabled" in s.why for s in sup)


def test_scan_disable_and_resent_le_create_connection() -> None:
    a = _real("fotonick_hciparse_test00.pklg")
    assert all(f.severity == "info" for f in _ids(a, "hci_command_failed"))  # a cancel race
    whys = [s.why for s in a.suppressed]
    assert sum("nothing enabled" in w for w in whys) >= 60
    assert any("LE Create Connection (frame 129) was still in progress" in w for w in whys)


def test_start_up_probes_are_not_reported() -> None:
    a = _real("AshMartian_HappyLeaf_Bluetooth_btsnoop_hci_happyleaf_fail.log")
    assert not _ids(a, "hci_command_failed")
    assert any(
        s.why.startswith("start-up probe") and "LE Set Event Mask" in s.what for s in a.suppressed
    )


# -- recoveries, one event one finding -----------------------------------------------------------


def test_page_timeout_then_retry_connects() -> None:
    """Leafspy: a page times out (271), the retry connects (274): a warning that says so, and
    the slow-but-successful page is not a second finding."""
    a = _real("AshMartian_HappyLeaf_Leafspy_Read_DCT_btsnoop_hci.log")
    (f,) = _ids(a, "connection_failed")
    assert f.severity == "warning" and f.recovered_at_frame == 274
    assert "recovered at frame 274" in f.message
    assert not _ids(a, "late_response")
    (inc,) = [i for i in a.incidents if i.root_cause == f.ref]
    assert inc.recovered_at_frame == 274 and f.incident == inc.id


def test_encryption_change_v2_completes_le_enable_encryption() -> None:
    """RokoAB (iPhone): LE Start Encryption at 686 completes with Encryption Change v2 (event
    0x59, Core 5.3), which older tools do not know: no 'unanswered' error, the link is encrypted."""
    a = _real("RokoAB_Bluetooth-Low-Energy-communication_Iphone_sound_airtag_airpods.log")
    assert not _ids(a, "response_timeout")
    (tx,) = [t for t in a.hci_commands if t.frame == 686]
    assert tx.complete_frame == 691 and tx.complete_status == 0


def test_silence_is_reported_whatever_the_deadline() -> None:
    base = analyze(SCEN / "requests_unanswered.btsnoop")
    cfg = RuleConfig()
    cfg.set("response_timeout", "deadline_s", 600)
    longer = analyze(SCEN / "requests_unanswered.btsnoop", cfg)
    assert sorted(f.frames[0] for f in _ids(base, "response_timeout")) == [83, 100, 105, 167]
    assert sorted(f.frames[0] for f in _ids(longer, "response_timeout")) == [83, 100, 105, 167]


def test_vendor_at_commands_the_host_ignores_are_warnings() -> None:
    a = _real("mishaal79_blproject_a3_ueboom_nopairing_onlysesskey.pcapng")
    fs = _ids(a, "response_timeout")
    assert fs and all(f.severity == "warning" for f in fs)
    assert any("AT+XAPL" in f.message for f in fs)


def _bare() -> Analysis:
    cap = CaptureSummary("x", "btsnoop", 1002, "HCI", 0, frames=500, first_time_us=0,
                         last_time_us=3_600_000_000)  # fmt: skip
    return Analysis(capture=cap)


def _conn(n: int, addr: str, start_s: float, dur_s: float, reason: int) -> Connection:
    s, e = round(start_s * 1e6), round((start_s + dur_s) * 1e6)
    return Connection(f"acl-0x00{n}-1", n, addr, "br_edr", 0, "Success", n * 10, s,
                      end_frame=n * 10 + 5, end_time_us=e, disconnect_reason=reason,
                      initiator="local")  # fmt: skip


@pytest.mark.parametrize(
    ("durations", "reasons", "fires"),
    [
        ([30.0, 29.0, 31.0], [0x13, 0x13, 0x13], True),
        ([30.0, 29.0, 31.0], [0x13, 0x08, 0x13], False),  # mixed reasons: no common timer
        ([30.0, 29.0, 39.0], [0x13, 0x13, 0x13], False),  # 39 s is 19 % off the mean
        ([30.0, 30.0, 30.0], [0x3E, 0x3E, 0x3E], False),  # never established: not drops
    ],
)
def test_periodic_disconnect_needs_one_reason_within_15_percent(
    durations: list[float], reasons: list[int], fires: bool
) -> None:
    a = _bare()
    a.connections = [
        _conn(i + 1, "AA:BB:CC:00:00:01", (0.0, 100.0, 500.0)[i], d, r)
        for i, (d, r) in enumerate(zip(durations, reasons, strict=True))
    ]
    got = [f for f in run_rules(a) if f.id == "periodic_disconnect"]
    assert bool(got) == fires


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


# -- incidents -----------------------------------------------------------------------------------


def test_link_loss_and_the_stall_before_it_are_one_incident() -> None:
    a = analyze(SCEN / "link_loss.btsnoop")
    (loss,) = _ids(a, "link_loss")
    (stall,) = _ids(a, "a2dp_media_stall")
    assert loss.incident == stall.incident
    (inc,) = [i for i in a.incidents if i.id == loss.incident]
    assert inc.root_cause == loss.ref and inc.consequences == [stall.ref]
    assert "start of the link loss" in stall.fix  # not Wi-Fi advice


def test_rejects_and_the_fallback_are_one_incident_both_findings_stay() -> None:
    a = analyze(SCEN / "a2dp_rejected_hfp_fallback.btsnoop")
    (rej,) = _ids(a, "avdtp_rejected")
    (fb,) = _ids(a, "a2dp_fallback_hfp")
    assert rej.incident == fb.incident


def test_links_lost_together_share_one_local_cause() -> None:
    a = _bare()
    fs = [
        Finding("link_loss", "error", "Link lost", f"lost {d}", "e", "x", address=d,
                time_us=t, frames=[f], key=f"link_loss:{d}")
        for d, t, f in (("AA:00:00:00:00:01", 5_000_000, 10),
                        ("AA:00:00:00:00:02", 5_400_000, 11),
                        ("AA:00:00:00:00:03", 90_000_000, 40))
    ]  # fmt: skip
    _, incidents = build_incidents(a, fs)
    assert len(incidents) == 2
    together = next(i for i in incidents if i.consequences)
    assert "within 1 s" in together.verdict and len(together.devices) == 2


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


def test_stale_key_then_re_pair_on_the_same_link_is_a_recovery() -> None:
    """bumble scenario: Authentication Complete 0x06 with the stored key, the phone drops the
    key and pairs again (Link Key Request Negative Reply, SSP) on the same link."""
    a = analyze(SCEN / "stale_bond_repaired.btsnoop")
    (f,) = _ids(a, "auth_key_missing")
    assert f.severity == "warning" and f.recovered_at_frame is not None
    assert f"recovered at frame {f.recovered_at_frame}" in f.message
    assert [p.outcome for p in a.pairing] == ["failure", "success"]
