"""LE sessions against tshark (the oracle): SMP opcode sequences, ATT opcode counts and
request/response pairing, advertiser addresses; pairing attempts from SMP."""

from __future__ import annotations

from collections import Counter
from functools import cache

import pytest

from analyzer.analysis import Analysis, analyze
from tests.conftest import shared_capture
from tests.oracle import tshark_where

pytestmark = pytest.mark.tshark

SMP_CAPTURES = [
    "mikeryan_crackle_le_secure_connections.pcapng",
    "mikeryan_crackle_numeric_pin.pcap",
    "mikeryan_crackle_pairing_and_ltk_exchange.pcap",
    "AleBonora3_Tesi_BLE_Lv4_passkey.pcapng",
    "Matheus-Garbelini_sweyntooth_noncompliance_nxp_invalid_hop_interval_sniffer.pcapng",
    "Matheus-Garbelini_sweyntooth_noncompliance_stm_wb55_non_zero_ediv_rand_SC.pcapng",
    "durnerj_PoGo-Plus-BLE_btsnoop_hci.log",
    "mtoslalibu_ec521_btsnoop_hci.log",
    "Swastik36_OPPO-Earbuds_BT_HCI_2026_0719_110149.cfa",
]
#: SweynTooth fuzzing: resends with a reused sequence number, which Wireshark sometimes drops
FUZZED = "Matheus-Garbelini_sweyntooth_capture_cypress_psoc6_crash_llid.pcapng"
ATT_CAPTURES = [
    *SMP_CAPTURES,
    FUZZED,
    "BeanCounterTop_ble-pcap-analyzer_hci.pcap",
    "TheoLestandi_Projet_RP_ble_capture.snoop",
    "choonkiatlee_wban-python_btsnoop_hci.log",
]
ADV_CAPTURES = [
    "AleBonora3_Tesi_BLE_capture.pcapng",
    "AleBonora3_Tesi_BLE_Lv4_passkey.pcapng",
    "AshMartian_HappyLeaf_Bluetooth_btsnoop_hci_happyleaf_fail.log",
    "BeanCounterTop_ble-pcap-analyzer_hci.pcap",
    FUZZED,
    "Swastik36_OPPO-Earbuds_BT_HCI_2026_0719_110149.cfa",
    "TheoLestandi_Projet_RP_capture.snoop",
    "cheoljun99_bluetooth-pcap-test_bluetooth.pcap",
    "choonkiatlee_wban-python_btsnoop_hci.log",
    "mikeryan_crackle_numeric_pin.pcap",
    "mtoslalibu_ec521_btsnoop_hci.log",
    "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered",
]


_path = shared_capture


@cache
def _analysis(name: str) -> Analysis:
    return analyze(_path(name))


def _tshark(name: str, display: str, *fields: str) -> list[list[str]]:
    return tshark_where(_path(name), display, *fields, occurrence="a")


def _our_smp(name: str) -> list[tuple[int, int]]:
    pdus = _analysis(name).to_json().get("smp", {}).get("pdus", [])
    # tshark dissects SMP on CID 0x0006 only (CID 0x0007 is BR/EDR SMP)
    return [(p["frame"], p["opcode"]) for p in pdus if p["cid"] == 0x0006]


#: Qualcomm's controller debug log travels as ACL data on handle 0x0EDC (raw 0x2EDC, Linux
#: hci_qca.c QCA_DEBUG_HANDLE); tshark dissects its bytes as L2CAP, we do not: not link traffic
NOT_DEBUG_LOG = "!(bthci_acl.chandle == 0x0edc)"


@pytest.mark.parametrize("name", SMP_CAPTURES)
def test_smp_sequence_matches_tshark(name: str) -> None:
    rows = _tshark(name, f"btsmp && {NOT_DEBUG_LOG}", "frame.number", "btsmp.opcode")
    ts = [(int(r[0]), int(r[1], 16)) for r in rows]
    assert _our_smp(name) == ts


def test_smp_fuzzed_capture_close_to_tshark() -> None:
    ts = {
        (int(r[0]), int(r[1], 16)) for r in _tshark(FUZZED, "btsmp", "frame.number", "btsmp.opcode")
    }
    ours = set(_our_smp(FUZZED))
    assert len(ts & ours) >= 0.99 * len(ts)
    assert len(ours - ts) <= 0.02 * len(ts)


@pytest.mark.parametrize("name", ATT_CAPTURES)
def test_att_opcodes_match_tshark(name: str) -> None:
    rows = _tshark(name, f"btatt && {NOT_DEBUG_LOG}", "btatt.opcode")
    ts = Counter(int(r[0], 16) for r in rows if r[0])
    counts = _analysis(name).to_json().get("att", {}).get("opcode_counts", {})
    ours = Counter({int(k, 16): v for k, v in counts.items()})
    assert ours == ts


@pytest.mark.parametrize(
    "name", ["BeanCounterTop_ble-pcap-analyzer_hci.pcap", "durnerj_PoGo-Plus-BLE_btsnoop_hci.log"]
)
def test_att_request_response_pairs(name: str) -> None:
    rows = _tshark(name, "btatt.request_in_frame", "btatt.request_in_frame", "frame.number")
    ts = {(int(r[0]), int(r[1])) for r in rows}
    txs = _analysis(name).att.transactions
    ours = {(t.request_frame, t.response_frame) for t in txs if t.response_frame is not None}
    assert ts and ts <= ours
    for t in txs:
        if t.response_frame is not None:
            assert t.latency_ms is not None and t.latency_ms >= 0


@pytest.mark.parametrize("name", ADV_CAPTURES)
def test_advertisers_match_tshark(name: str) -> None:
    rows = _tshark(
        name,
        "btle.advertising_address || bthci_evt.le_meta_subevent == 0x02 || "
        "bthci_evt.le_meta_subevent == 0x0d || bthci_evt.le_meta_subevent == 0x0b",
        "btle.advertising_address",
        "bthci_evt.bd_addr",
    )
    ts = {a.upper() for r in rows for f in r for a in f.split(",") if a}
    ours = {a.address for a in _analysis(name).advertisers}
    assert ours == ts


def test_pairing_from_smp_hci() -> None:
    name = "durnerj_PoGo-Plus-BLE_btsnoop_hci.log"
    reqs = _tshark(name, "btsmp.opcode == 0x01", "frame.number", "btsmp.io_capability")
    le = [p for p in _analysis(name).pairing if p.transport == "le" and p.details.smp is not None]
    assert [p.details.smp.request_frame for p in le if p.details.smp] == [int(r[0]) for r in reqs]
    for p in le:
        assert p.method is not None and p.method.startswith("le_legacy_")
        assert p.outcome == "success"


def test_pairing_failures_from_smp() -> None:
    fails = _tshark(FUZZED, "btsmp.opcode == 0x05", "frame.number", "btsmp.reason")
    failed = [p for p in _analysis(FUZZED).pairing if p.outcome == "failure"]
    assert len(failed) == len(fails)
    assert all(p.details.smp_reason_name for p in failed)


def test_smp_transactions_carry_time() -> None:
    txs = _analysis("AleBonora3_Tesi_BLE_Lv4_passkey.pcapng").smp.transactions
    assert txs
    for t in txs:
        assert t.frame > 0 and t.time_us > 0 and t.last_time_us >= t.time_us
    (p,) = _analysis("AleBonora3_Tesi_BLE_Lv4_passkey.pcapng").pairing
    assert p.method == "le_sc_passkey"  # file name says passkey; SC bit set by both


def test_gatt_services_discovered() -> None:
    att = _analysis("durnerj_PoGo-Plus-BLE_btsnoop_hci.log").to_json()["att"]
    rows = _tshark(
        "durnerj_PoGo-Plus-BLE_btsnoop_hci.log",
        "btatt.opcode == 0x11",
        "btatt.uuid16",
        "btatt.uuid128",
    )
    ts_uuids = {u for r in rows for f in r for u in f.split(",") if u}
    ours = {s["uuid"].split()[0] for db in att["services"].values() for s in db["services"]}
    assert len(ours) >= 3
    assert {u for u in ours if u.startswith("0x")} <= {
        f"0x{int(u, 16):04X}" for u in ts_uuids if len(u) <= 6
    }
