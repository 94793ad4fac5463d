"""The capturing host's local name (Write Local Name, Read Local Name; Core Vol 4 Part E
§7.3.11-12) is read as Wireshark reads it, and names the host in finding texts."""

from __future__ import annotations

import pytest

from analyzer.analysis import analyze
from tests.conftest import SHARED_CAPTURES, shared_capture, shared_captures
from tests.oracle import tshark_fields

NAMED = [
    p
    for p in shared_captures()
    if p.name
    in (
        "NoahB10_MABIP_btsnoop_hci.log",
        "fotonick_hciparse_test00.pklg",
        "2m_a2dp-captures_motog2013-lghbs730_btsnoop_hci.log",
        "johnfidel_smartEnergyMeter_btsnoop_hci.log",
    )
]


@pytest.mark.tshark
@pytest.mark.parametrize("path", NAMED, ids=lambda p: p.name)
def test_local_name_matches_tshark(path: object) -> None:
    rows = tshark_fields(
        SHARED_CAPTURES / path.name,  # type: ignore[attr-defined]
        ["bthci_cmd.device_name", "bthci_evt.device_name"],
        "-Y",
        "bthci_cmd.opcode == 0x0c13 || (bthci_evt.opcode == 0x0c14 && bthci_evt.device_name)",
    )
    names = [n for r in rows for n in r if n]
    assert names, "the capture names its host"
    a = analyze(path)  # type: ignore[arg-type]
    assert a.controller.name == names[-1]
    assert a.host.endswith(f"({names[-1]})")


def test_host_label_follows_the_capture() -> None:
    a = analyze(shared_capture("ap4y_iSAP_hci_dump.pklg"))
    assert a.host.startswith("the Apple host")
    assert a.Host.startswith("The Apple host")
