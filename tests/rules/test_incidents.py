"""Findings grouped into incidents (analyzer/rules/incidents.py): a root cause and its
consequences are one incident, links lost together share one local cause."""

from __future__ import annotations

from analyzer.model import Finding
from analyzer.rules.incidents import build_incidents
from tests.rules.helpers import _bare, _mine, _scen


def test_link_loss_and_the_stall_before_it_are_one_incident() -> None:
    a = _scen("link_loss.btsnoop")
    (loss,) = _mine(a, "link_loss")
    (stall,) = _mine(a, "a2dp_media_stall")
    assert loss.incident == stall.incident
    (inc,) = [i for i in a.incidents if i.id == loss.incident]
    assert inc.root_cause == loss.ref and inc.consequences == [stall.ref]
    assert "start of the link loss" in stall.fix  # not Wi-Fi advice


def test_rejects_and_the_fallback_are_one_incident_both_findings_stay() -> None:
    a = _scen("a2dp_rejected_hfp_fallback.btsnoop")
    (rej,) = _mine(a, "avdtp_rejected")
    (fb,) = _mine(a, "a2dp_fallback_hfp")
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
