"""AVDTP decoder: spec-built signalling packets (AVDTP 1.3 §8) and fragment joining."""

from __future__ import annotations

import bumble.avdtp as bavdtp

from analyzer.decode import avdtp

SBC_CAP = bytes([0x07, 0x06, 0x00, 0x00, 0x21, 0x15, 0x02, 0x35])  # 44.1k joint, 8 blk..


def test_header_fields() -> None:
    a = avdtp.decode_avdtp(bytes([0x52, 0x06]))  # label 5, single, accept, OPEN
    assert (a.label, a.packet_type, a.message_type, a.signal_id) == (5, 0, 2, 6)
    assert a.signal_name == "OPEN" and a.message_type_name == "accept"
    assert avdtp.decode_avdtp(bytes([0x01, 0x02])).message_type_name == "general reject"


def test_discover_response() -> None:
    a = avdtp.decode_avdtp(bytes([0x12, 0x01, 0x04, 0x08, 0x0A, 0x00]))
    assert [(s.seid, s.in_use, s.media_type, s.tsep_name) for s in a.seps] == [
        (1, False, 0, "SNK"),
        (2, True, 0, "SRC"),
    ]


def test_get_all_capabilities_response() -> None:
    body = bytes([0x01, 0x00]) + SBC_CAP + bytes([0x08, 0x00])
    a = avdtp.decode_avdtp(bytes([0x22, 0x0C]) + body)
    assert [c.name for c in a.capabilities] == ["Media Transport", "Media Codec", "Delay Reporting"]
    assert a.codec is not None and a.codec.codec_name == "SBC"
    assert a.codec.fields["max_bitpool"] == 0x35


def test_set_configuration_command_and_reject() -> None:
    cmd = avdtp.decode_avdtp(bytes([0x30, 0x03, 0x04, 0x08, 0x01, 0x00]) + SBC_CAP)
    assert (cmd.acp_seid, cmd.int_seid) == (1, 2) and cmd.codec is not None
    rej = avdtp.decode_avdtp(bytes([0x33, 0x03, 0x07, 0xC2]))
    assert rej.service_category == 0x07 and rej.error_code == 0xC2
    assert rej.error_name == "NOT_SUPPORTED_CODEC_TYPE"
    rec = avdtp.decode_avdtp(bytes([0x33, 0x05, 0x07, 0x29]))
    assert rec.error_name == "UNSUPPORTED_CONFIGURATION"


def test_start_suspend_rejects_carry_seid_first() -> None:
    s = avdtp.decode_avdtp(bytes([0x43, 0x07, 0x04, 0x31]))
    assert s.acp_seid == 1 and s.error_name == "BAD_STATE"
    s2 = avdtp.decode_avdtp(bytes([0x43, 0x09, 0x08, 0x12]))
    assert s2.acp_seid == 2 and s2.error_name == "BAD_ACP_SEID"
    o = avdtp.decode_avdtp(bytes([0x43, 0x06, 0x13]))
    assert o.error_name == "SEP_IN_USE"
    start = avdtp.decode_avdtp(bytes([0x40, 0x07, 0x04, 0x08]))
    assert start.seids == [1, 2]


def test_delay_report() -> None:
    a = avdtp.decode_avdtp(bytes([0x60, 0x0D, 0x04, 0x07, 0xD0]))
    assert a.acp_seid == 1 and a.delay == 2000 and a.delay_ms == 200.0


def test_error_names_agree_with_bumble_constants() -> None:
    for attr in dir(bavdtp):
        if attr.startswith("AVDTP_") and attr.endswith("_ERROR"):
            code = getattr(bavdtp, attr)
            assert avdtp.ERROR_NAMES[code] == attr[len("AVDTP_") : -len("_ERROR")]
    assert avdtp.error_name(0xE3) == "NOT_SUPPORTED_CODEC_PARAMETER"


def test_fragments_join() -> None:
    body = bytes([0x01, 0x00]) + SBC_CAP + bytes([0x08, 0x00])
    start = bytes([0x26, 0x03, 0x0C]) + body[:4]  # label 2, start, accept, NOSP 3
    cont = bytes([0x2A]) + body[4:8]
    end = bytes([0x2E]) + body[8:]
    s = avdtp.decode_avdtp(start)
    assert s.packet_type_name == "start" and s.nosp == 3 and s.signal_id == 0x0C
    c = avdtp.decode_avdtp(cont)
    assert c.packet_type_name == "continue" and c.signal_id is None
    joined, anomaly = avdtp.join_fragments([start, cont, end])
    assert anomaly is None
    a = avdtp.decode_avdtp(joined)
    assert a.signal_id == 0x0C and a.label == 2 and a.codec is not None
    assert avdtp.join_fragments([start, end])[1] is not None  # NOSP mismatch
    assert avdtp.join_fragments([])[1] is not None


def test_short_and_unknown() -> None:
    assert avdtp.decode_avdtp(b"").anomaly is not None
    assert avdtp.decode_avdtp(b"\x00").anomaly is not None
    assert avdtp.decode_avdtp(bytes([0x00, 0x3F])).anomaly is not None
    assert avdtp.decode_avdtp(bytes([0x00, 0x03, 0x04])).anomaly is not None
    trunc = avdtp.decode_avdtp(bytes([0x22, 0x02, 0x07, 0x06, 0x00]))
    assert trunc.anomaly is not None
