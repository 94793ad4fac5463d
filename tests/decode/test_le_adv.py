"""AD structures (Core v5.4 Vol 3 Part C §11, CSS Part A) and LL advertising PDUs
(Vol 6 Part B §2.3); packets built with scapy where it can (an independent encoder)."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from analyzer.decode.le_adv import decode_ad
from analyzer.decode.le_ll import adv_columns, decode_adv_pdu, decode_data_pdu

AA = struct.pack("<I", 0x8E89BED6)


def test_ad_structures() -> None:
    data = (
        bytes([2, 0x01, 0x06])  # flags: LE General Discoverable, BR/EDR not supported
        + bytes([5, 0x03, 0x0F, 0x18, 0x0A, 0x18])  # 16-bit UUIDs 0x180F, 0x180A
        + bytes([6, 0x09]) + b"Tag-1"
        + bytes([2, 0x0A, 0xF4])  # TX power -12 dBm
        + bytes([3, 0x19, 0x40, 0x03])  # appearance 0x0340
        + bytes([7, 0xFF, 0x4C, 0x00, 1, 2, 3, 4])  # Apple (0x004C) manufacturer data
        + bytes([4, 0x16, 0xAA, 0xFE, 0x10])  # service data 0xFEAA
    )  # fmt: skip
    ad = decode_ad(data)
    assert ad.anomaly is None
    assert ad.flags == 0x06 and "LE General Discoverable" in ad.flag_names
    assert [u.split()[0] for u in ad.service_uuids] == ["0x180F", "0x180A"]
    assert ad.name == "Tag-1" and ad.name_complete
    assert ad.tx_power == -12 and ad.appearance == 0x0340
    assert ad.manufacturer_id == 0x004C and ad.manufacturer_name == "Apple, Inc."
    assert ad.manufacturer_data == bytes([1, 2, 3, 4])
    assert list(ad.service_data.values()) == [b"\x10"]


def test_ad_128bit_and_damage() -> None:
    u = bytes(range(16))
    ad = decode_ad(bytes([17, 0x07]) + u)
    assert ad.service_uuids == ["0f0e0d0c-0b0a-0908-0706-050403020100"]
    bad = decode_ad(bytes([9, 0x09]) + b"abc")  # length runs past the data
    assert bad.anomaly is not None
    assert decode_ad(bytes([2, 1, 6, 0, 0, 0])).flags == 6  # zero length ends the data


def test_scapy_adv_ind() -> None:
    from scapy.layers.bluetooth import EIR_CompleteLocalName, EIR_Flags, EIR_Hdr
    from scapy.layers.bluetooth4LE import BTLE, BTLE_ADV, BTLE_ADV_IND

    pkt = BTLE() / BTLE_ADV(TxAdd=1) / BTLE_ADV_IND(
        AdvA="c4:7c:8d:6a:10:01",
        data=[EIR_Hdr() / EIR_Flags(flags=["general_disc_mode"]),
              EIR_Hdr() / EIR_CompleteLocalName(local_name=b"Beacon")],
    )  # fmt: skip
    raw = bytes(pkt)
    rec = decode_adv_pdu(raw)
    assert rec.name == "ADV_IND" and rec.tx_add == 1
    assert rec.adv_a == "C4:7C:8D:6A:10:01"
    assert decode_ad(rec.data).name == "Beacon"
    cols = adv_columns(np.frombuffer(raw, np.uint8), np.array([0]), np.array([len(raw)]))
    assert int(cols["pdu_type"][0]) == 0
    assert f"{int(cols['adva'][0]):012X}" == "C47C8D6A1001"


def test_connect_ind_and_data_pdu() -> None:
    lldata = struct.pack("<I", 0x50654B4C) + b"\x01\x02\x03" + bytes([2]) + struct.pack(
        "<HHHH", 0, 24, 0, 72) + b"\xff\xff\xff\xff\x1f" + bytes([0x25])  # fmt: skip
    payload = bytes(6) + bytes([1, 2, 3, 4, 5, 6]) + lldata
    rec = decode_adv_pdu(AA + bytes([0x05, len(payload)]) + payload + b"\x00\x00\x00")
    assert rec.name == "CONNECT_IND" and rec.connect is not None
    assert rec.connect["access_address"] == 0x50654B4C
    assert rec.connect["interval_ms"] == 30.0 and rec.connect["timeout_ms"] == 720
    assert rec.connect["hop"] == 5
    # LL control PDU LL_VERSION_IND (LLID 3)
    d = decode_data_pdu(struct.pack("<I", 0x50654B4C) + bytes([0x03, 6, 0x0C, 9, 0x0F, 0, 1, 0]))
    assert d.llid == 3 and d.control_name == "LL_VERSION_IND"


@given(st.binary(min_size=0, max_size=60))
def test_decoders_never_raise(data: bytes) -> None:
    decode_ad(data)
    decode_data_pdu(data)
    rec = decode_adv_pdu(AA + data)
    cols = adv_columns(np.frombuffer(AA + data, np.uint8), np.array([0]), np.array([len(data) + 4]))
    # the columnar AdvA agrees with the per-packet decoder for fixed-place AdvA types
    if rec.pdu_type in (0, 1, 2, 4, 6) and rec.adv_a and int(cols["adva"][0]) >= 0:
        assert rec.adv_a.replace(":", "") == f"{int(cols['adva'][0]):012X}"
