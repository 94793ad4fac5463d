"""Differential tests: our stateless decoders against tshark on real corpus captures.

tshark is the oracle: for every packet of a protocol in a capture, tshark's ``-T json -x`` output
gives the protocol's raw bytes (``<proto>_raw``) and its dissected fields; we decode the same
bytes and compare field by field.
"""

from __future__ import annotations

from typing import Any

import pytest

from analyzer.decode import avdtp, hci, l2cap, sdp
from tests.conftest import shared_capture
from tests.oracle import Flat, tshark_packets

pytestmark = [pytest.mark.tshark]


BREDR = [
    "2m_a2dp-captures_motog2013-lghbs730_btsnoop_hci.log",
    "francozappa_bluffs_sc-pixelbuds-aseries.pcapng",
    "Swastik36_OPPO-Earbuds_btsnoop_205240.log",
    "robotdrink_OpenSCQ30-P31i_btsnoop_hci.log.filtered",
    "aleksamarkoni_bluetooth_sample_btsnoop_hci.log",
    "pfalcon_Chsmartbulb-led-bulb-speaker_btsnoop_hci.log",
]
LE = [
    "durnerj_PoGo-Plus-BLE_btsnoop_hci.log",
    "choonkiatlee_wban-python_btsnoop_hci.log",
    "Swastik36_OPPO-Earbuds_BT_HCI_2026_0719_110149.cfa",
    "BeanCounterTop_ble-pcap-analyzer_hci.pcap",
]


def _packets(name: str, dfilter: str) -> tuple[Flat, ...]:
    return tshark_packets(shared_capture(name), dfilter)


def _raw(p: Flat, key: str, k: int = 0) -> bytes:
    return bytes.fromhex(p[key][k][0])


def _int(v: str) -> int:
    return int(v, 0)


def _first(p: Flat, key: str) -> Any:
    vals = p.get(key)
    return vals[0] if vals else None


def _addr(v: str) -> str:
    return v.upper()


# ------------------------------------------------------------------------------------------------
# HCI


@pytest.mark.parametrize("name", BREDR + LE)
def test_hci_commands_match_tshark(name: str) -> None:
    pkts = _packets(name, "bthci_cmd")
    assert pkts, "capture has no HCI commands"
    checked_addr = 0
    for p in pkts:
        c = hci.decode_command(_raw(p, "bthci_cmd_raw"))
        assert c.opcode == _int(p["bthci_cmd.opcode"][0])
        assert c.ogf == _int(p["bthci_cmd.opcode.ogf"][0])
        assert c.ocf == _int(p["bthci_cmd.opcode.ocf"][0])
        assert c.vendor == (c.ogf == 0x3F)
        assert c.param_len == int(p["bthci_cmd.param_length"][0])
        if c.opcode in hci.COMMANDS and c.anomaly is None:
            if "bthci_cmd.bd_addr" in p and c.bd_addr is not None:
                assert c.bd_addr == _addr(p["bthci_cmd.bd_addr"][0])
                checked_addr += 1
            if "bthci_cmd.connection_handle" in p and c.handle is not None:
                assert c.handle == _int(p["bthci_cmd.connection_handle"][0])
            if "bthci_cmd.reason" in p:
                assert c.reason == _int(p["bthci_cmd.reason"][0])
            if c.opcode == 0x200B:
                assert c.fields["scan_interval"] == int(p["bthci_cmd.le_scan_interval"][0])
                assert c.fields["scan_window"] == int(p["bthci_cmd.le_scan_window"][0])
            if c.opcode == 0x042B:
                assert c.fields["io_capability"] == _int(p["bthci_cmd.io_capability"][0])


# event codes whose bd_addr/handle we must produce whenever tshark shows one
_ADDR_EVENTS = {0x03, 0x04, 0x07, 0x12, 0x16, 0x17, 0x18, 0x2C, 0x2F, 0x31, 0x32, 0x33, 0x36}
_HANDLE_EVENTS = {0x03, 0x05, 0x06, 0x08, 0x0C, 0x2C, 0x30, 0x59}


def _check_event(p: Flat) -> None:
    if "_ws.malformed" in p:  # tshark could not dissect it either
        return
    e = hci.decode_event(_raw(p, "bthci_evt_raw"))
    code = _int(p["bthci_evt.code"][0])
    assert e.code == code
    assert e.param_len == int(p["bthci_evt.param_length"][0])
    if "bthci_evt.le_meta_subevent" in p:
        assert e.subevent == _int(p["bthci_evt.le_meta_subevent"][0])
    if e.anomaly is not None:
        return
    if "bthci_evt.status" in p and code not in (0x3E,):
        assert e.status == _int(p["bthci_evt.status"][0]), e
    if code in (0x0E, 0x0F):
        assert e.fields["opcode"] == _int(p["bthci_evt.opcode"][0])
        assert e.fields["num_packets"] == int(p["bthci_evt.num_command_packets"][0])
    if code in _ADDR_EVENTS and "bthci_evt.bd_addr" in p:
        assert e.bd_addr == _addr(p["bthci_evt.bd_addr"][0])
    if code in _HANDLE_EVENTS and "bthci_evt.connection_handle" in p:
        assert e.handle == _int(p["bthci_evt.connection_handle"][0])
    if "bthci_evt.reason" in p:
        assert e.reason == _int(p["bthci_evt.reason"][0])
    if code in (0x03, 0x2C):
        assert e.fields["link_type"] == _int(p["bthci_evt.link_type"][0])
    if code == 0x03:
        assert e.fields["encryption_enabled"] == _int(p["bthci_evt.encryption_mode"][0])
    if code == 0x18:
        assert e.fields["key_type"] == _int(p["bthci_evt.key_type"][0])
    if code == 0x32:
        assert e.fields["io_capability"] == _int(p["bthci_evt.io_capability"][0])
    if code == 0x0C:
        assert e.fields["version"] == _int(p["bthci_evt.lmp_vers_nr"][0])
        assert e.fields["manufacturer"] == _int(p["bthci_evt.comp_id"][0])
        assert e.fields["subversion"] == _int(p["bthci_evt.lmp_sub_vers_nr"][0])
    if code == 0x13:
        handles = [_int(h) for h in p["bthci_evt.connection_handle"]]
        counts = [int(c) for c in p["bthci_evt.num_compl_packets"]]
        assert e.fields["completed"] == list(zip(handles, counts, strict=True))
    if code in (0x02, 0x22, 0x2F):
        resp = e.fields["responses"]
        assert [r.bd_addr for r in resp] == [_addr(a) for a in p["bthci_evt.bd_addr"]]
        cods = [_int(c) for c in p["btcommon.cod.class_of_device"]]
        assert [r.class_of_device for r in resp] == cods
        if code != 0x02:
            assert [r.rssi for r in resp] == [int(x) for x in p["bthci_evt.rssi"]]
    if code == 0x2C:
        assert e.fields["air_mode"] == _int(p["bthci_evt.air_mode"][0])
    if code == 0x3E and e.subevent in (0x02, 0x0D):
        reps = e.fields["reports"]
        assert len(reps) == int(p["bthci_evt.le_num_reports"][0])
        assert [r.address for r in reps] == [_addr(a) for a in p["bthci_evt.bd_addr"]]
        assert [r.rssi for r in reps] == [int(x) for x in p["bthci_evt.rssi"]]
        if e.subevent == 0x0D:
            st = p["bthci_evt.le_ext_advts_event_type.data_status"]
            assert [r.data_status for r in reps] == [_int(x) for x in st]
        else:
            et = p["bthci_evt.le_advts_event_type"]
            assert [r.event_type for r in reps] == [_int(x) for x in et]
    if code == 0x3E and e.subevent in (0x01, 0x0A):
        assert e.handle == _int(p["bthci_evt.connection_handle"][0])
        assert e.bd_addr == _addr(p["bthci_evt.bd_addr"][0])


@pytest.mark.parametrize("name", BREDR + LE)
def test_hci_events_match_tshark(name: str) -> None:
    pkts = _packets(name, "bthci_evt")
    assert pkts, "capture has no HCI events"
    for p in pkts:
        _check_event(p)


@pytest.mark.parametrize("name", BREDR[:3])
def test_acl_header_matches_tshark(name: str) -> None:
    pkts = _packets(name, "bthci_acl && btl2cap.cid == 0x0001")
    assert pkts
    for p in pkts:
        a = hci.decode_acl(_raw(p, "bthci_acl_raw"))
        assert a.handle == _int(p["bthci_acl.chandle"][0])
        assert a.pb == _int(p["bthci_acl.pb_flag"][0])
        assert a.length == int(p["bthci_acl.length"][0])


# ------------------------------------------------------------------------------------------------
# L2CAP signalling


@pytest.mark.parametrize("name", BREDR)
def test_l2cap_signalling_matches_tshark(name: str) -> None:
    pkts = _packets(name, "btl2cap.cid == 0x0001 && btl2cap.cmd_code")
    assert pkts
    for p in pkts:
        frame = l2cap.decode_l2cap(_raw(p, "btl2cap_raw"))
        assert frame.cid == 1
        assert frame.length == int(p["btl2cap.length"][0])
        sigs = l2cap.decode_signalling(frame.payload)
        assert [s.code for s in sigs] == [_int(c) for c in p["btl2cap.cmd_code"]]
        assert [s.ident for s in sigs] == [_int(c) for c in p["btl2cap.cmd_ident"]]
        for s in sigs:
            assert s.anomaly is None
        conn_reqs = [s for s in sigs if s.code == 0x02]
        if conn_reqs:
            psms = [_int(v) for v in p["btl2cap.psm"]]
            assert [s.psm for s in conn_reqs] == psms[: len(conn_reqs)]
        rsps = [s for s in sigs if s.code == 0x03]
        if rsps:
            assert [s.result for s in rsps] == [_int(v) for v in p["btl2cap.result"]]
            assert [s.dcid for s in rsps] == [_int(v) for v in p["btl2cap.dcid"]]


# ------------------------------------------------------------------------------------------------
# SDP


@pytest.mark.parametrize("name", BREDR)
def test_sdp_matches_tshark(name: str) -> None:
    pkts = _packets(name, "btsdp")
    assert pkts
    for p in pkts:
        if "btsdp_raw" not in p:  # tshark shows reassembled data only
            continue
        s = sdp.decode_sdp(_raw(p, "btsdp_raw"))
        assert s.pdu_id == _int(p["btsdp.pdu"][0])
        assert s.tid == _int(p["btsdp.tid"][0])
        assert s.param_len == int(p["btsdp.len"][0])
        assert s.anomaly is None
        if s.pdu_id == 0x01:
            assert s.error_code == _int(p["btsdp.error_code"][0])
        if s.pdu_id in (0x02, 0x06):
            want = [_int(u) for u in p.get("btsdp.data_element.value.uuid_16", [])]
            assert [u.short for u in s.uuids if u.size == 2] == want
        if s.pdu_id in (0x04, 0x06):
            ids = [_int(a) for a in p.get("btsdp.service.attribute", [])]
            assert [a for a in s.attr_ids if isinstance(a, int)] == ids
            lo = [_int(a) for a in p.get("btsdp.attribute_range.from", [])]
            hi = [_int(a) for a in p.get("btsdp.attribute_range.to", [])]
            assert [a for a in s.attr_ids if isinstance(a, tuple)] == list(zip(lo, hi, strict=True))
        if s.pdu_id in (0x05, 0x07):
            assert len(s.attribute_bytes) == int(p["btsdp.attribute_list_byte_count"][0])
        if (
            s.pdu_id == 0x07
            and not s.continuation
            and "btsdp.reassembled_attribute_list" not in str(p.keys())
        ):
            recs = sdp.parse_attribute_lists(s.attribute_bytes)
            if recs.anomaly is None:
                ours = [a for r in recs.records for a in r]
                theirs = [_int(a) for a in p.get("btsdp.service.attribute", [])]
                assert ours == theirs


# ------------------------------------------------------------------------------------------------
# AVDTP + A2DP codec


@pytest.mark.parametrize("name", BREDR)
def test_avdtp_matches_tshark(name: str) -> None:
    pkts = _packets(name, "btavdtp.message_type")
    assert pkts
    codecs = 0
    for p in pkts:
        a = avdtp.decode_avdtp(_raw(p, "btavdtp_raw"))
        assert a.label == _int(p["btavdtp.transaction"][0])
        assert a.packet_type == _int(p["btavdtp.packet_type"][0])
        assert a.message_type == _int(p["btavdtp.message_type"][0])
        if "btavdtp.signal_id" in p:
            assert a.signal_id == _int(p["btavdtp.signal_id"][0])
        assert a.anomaly is None, a
        if "btavdtp.error_code" in p:
            assert a.error_code == _int(p["btavdtp.error_code"][0])
        if "btavdtp.delay" in p:
            assert a.delay == int(p["btavdtp.delay"][0])
        if "btavdtp.sep_seid" in p:
            assert [s.seid for s in a.seps] == [_int(x) for x in p["btavdtp.sep_seid"]]
            assert [int(s.in_use) for s in a.seps] == [_int(x) for x in p["btavdtp.sep_inuse"]]
            assert [s.tsep for s in a.seps] == [_int(x) for x in p["btavdtp.sep_type"]]
        if "btavdtp.service_category" in p:
            cats = [_int(x) for x in p["btavdtp.service_category"]]
            assert [c.category for c in a.capabilities] == cats
        if "btavdtp.media_codec_audio_type" in p:
            ours = [c.codec.codec_type for c in a.capabilities if c.codec is not None]
            assert ours == [_int(x) for x in p["btavdtp.media_codec_audio_type"]]
            codecs += 1
            if len(ours) == 1:
                _check_codec_bits(p, a.codec)
        if "btavdtp.codec.vendor.vendor_id" in p:
            ours_v = [c.codec.vendor_id for c in a.capabilities if c.codec and c.codec.vendor_id]
            assert ours_v == [_int(x) for x in p["btavdtp.codec.vendor.vendor_id"]]
            ours_c = [
                c.codec.vendor_codec_id for c in a.capabilities if c.codec and c.codec.vendor_id
            ]
            assert ours_c == [_int(x) for x in p["btavdtp.codec.vendor.codec_id"]]
        if "btavdtp.codec.sbc.minimum_bitpool" in p:
            sbc = [c.codec for c in a.capabilities if c.codec and c.codec.codec_type == 0]
            mins = [int(x) for x in p["btavdtp.codec.sbc.minimum_bitpool"]]
            maxs = [int(x) for x in p["btavdtp.codec.sbc.maximum_bitpool"]]
            assert [c.fields["min_bitpool"] for c in sbc] == mins
            assert [c.fields["max_bitpool"] for c in sbc] == maxs
    assert codecs > 0, "no media codec capability compared"


def _check_codec_bits(p: Flat, codec: Any) -> None:
    """Sampling frequencies / channel modes: our lists against tshark's one-bit fields."""
    for name in ("sbc", "aptx", "aptx_hd", "ldac"):
        key = f"btavdtp.codec.{name}.sampling_frequency."
        freqs = sorted(
            int(k[len(key) :]) for k, v in p.items() if k.startswith(key) and v[0] == "1"
        )
        if any(k.startswith(key) for k in p):
            assert sorted(codec.fields["sampling_frequencies"]) == freqs
    key = "btavdtp.codec.sbc.channel_mode."
    modes = {"mono": "Mono", "dual_channel": "Dual Channel", "stereo": "Stereo",
             "joint_stereo": "Joint Stereo"}  # fmt: skip
    if any(k.startswith(key) for k in p):
        want = sorted(
            modes[k[len(key) :]] for k, v in p.items() if k.startswith(key) and v[0] == "1"
        )
        assert sorted(codec.fields["channel_modes"]) == want
