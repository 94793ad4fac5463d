"""L2CAP decoder: spec-built frames (Core v5.4 Vol 3 Part A §3, §4)."""

from __future__ import annotations

from analyzer.decode import l2cap


def _cmd(code: int, ident: int, data: bytes) -> bytes:
    return bytes([code, ident]) + len(data).to_bytes(2, "little") + data


def test_basic_header_and_incomplete() -> None:
    f = l2cap.decode_l2cap(bytes([4, 0, 0x04, 0, 1, 2, 3, 4]))
    assert (f.length, f.cid, f.payload, f.cid_name) == (4, 4, b"\x01\x02\x03\x04", "ATT")
    part = l2cap.decode_l2cap(bytes([10, 0, 0x41, 0, 1]))
    assert part.anomaly is not None and part.cid_name == "dynamic"
    assert l2cap.decode_l2cap(b"\x01").anomaly is not None


def test_names() -> None:
    assert l2cap.psm_name(0x19) == "AVDTP" and l2cap.psm_name(0x1F) == "ATT"
    assert l2cap.psm_name(0x0F) == "BNEP" and l2cap.psm_name(0x1B) == "AVCTP Browsing"
    assert l2cap.FIXED_CIDS[6] == "SMP" and l2cap.FIXED_CIDS[7] == "BR/EDR SMP"


def test_several_commands_in_one_c_frame() -> None:
    data = _cmd(0x02, 1, bytes([0x19, 0x00, 0x40, 0x00]))
    data += _cmd(0x03, 2, bytes([0x41, 0, 0x40, 0, 0x03, 0, 0, 0]))
    data += _cmd(0x04, 3, bytes([0x41, 0, 0, 0, 0x01, 2, 0x9B, 0x02]))
    sigs = l2cap.decode_signalling(data)
    assert [s.code for s in sigs] == [2, 3, 4]
    assert sigs[0].psm == 0x19 and sigs[0].psm_name == "AVDTP" and sigs[0].scid == 0x40
    assert sigs[1].dcid == 0x41 and sigs[1].result == 3
    assert sigs[1].result_name == "Connection refused - security block"
    assert sigs[2].dcid == 0x41 and sigs[2].fields["mtu"] == 0x029B
    assert all(s.anomaly is None for s in sigs)


def test_reject_disconnect_info_and_config_response() -> None:
    sigs = l2cap.decode_signalling(
        _cmd(0x01, 5, bytes([0x02, 0, 0x40, 0, 0x41, 0]))
        + _cmd(0x06, 6, bytes([0x41, 0, 0x40, 0]))
        + _cmd(0x0A, 7, bytes([0x02, 0]))
        + _cmd(0x05, 8, bytes([0x40, 0, 0, 0, 0x01, 0]))
    )
    assert sigs[0].result_name == "Invalid CID in request" and sigs[0].scid == 0x40
    assert (sigs[1].dcid, sigs[1].scid) == (0x41, 0x40)
    assert sigs[2].fields["info_type_name"] == "Extended features supported"
    assert sigs[3].result_name == "Failure - unacceptable parameters"


def test_le_signalling() -> None:
    data = _cmd(0x14, 1, bytes([0x25, 0, 0x40, 0, 0x00, 2, 0xF7, 0, 10, 0]))
    data += _cmd(0x15, 1, bytes([0x41, 0, 0x00, 2, 0xF7, 0, 10, 0, 0x05, 0]))
    data += _cmd(0x12, 2, bytes([6, 0, 12, 0, 0, 0, 0xF4, 1]))
    sigs = l2cap.decode_signalling(data, le=True)
    assert sigs[0].psm == 0x25 and sigs[0].fields["mtu"] == 512 and sigs[0].fields["credits"] == 10
    assert sigs[1].result_name == "Connection refused - insufficient authentication"
    assert sigs[2].fields["timeout"] == 500
    bad = l2cap.decode_signalling(_cmd(0x02, 1, bytes([1, 0, 0x40, 0])), le=True)
    assert bad[0].anomaly is not None


def test_truncated_and_unknown_commands() -> None:
    sigs = l2cap.decode_signalling(bytes([0x02, 1, 4, 0, 0x19]))
    assert sigs[0].anomaly is not None and sigs[0].psm is None
    assert l2cap.decode_signalling(bytes([0x7F, 1, 0, 0]))[0].anomaly is not None
    assert l2cap.decode_signalling(bytes([0x02, 1]))[0].anomaly is not None


def test_upper_layers_register_their_channels_in_one_registry() -> None:
    """Each session module claims its PSM / fixed CID itself (sessions.l2cap.on_psm/on_cid);
    decode/ keeps no second registry."""
    from analyzer.sessions import l2cap as sessions_l2cap
    from analyzer.sessions.build import load_session_modules

    load_session_modules()
    owners = {p: f.__module__ for p, f in sessions_l2cap.PSM_CONSUMERS.items()}
    assert owners == {
        0x0001: "analyzer.sessions.sdp",
        0x0003: "analyzer.sessions.rfcomm",
        0x0019: "analyzer.sessions.avdtp",
        0x001F: "analyzer.sessions.att",
    }
    cids = {c: f.__module__ for c, f in sessions_l2cap.CID_CONSUMERS.items()}
    assert cids == {0x0004: "analyzer.sessions.att", 0x0006: "analyzer.sessions.smp",
                    0x0007: "analyzer.sessions.smp"}  # fmt: skip
    assert not hasattr(l2cap, "PSM_DECODERS")


def test_basic_header_and_protocol_guess() -> None:
    assert l2cap.basic_header(bytes([3, 0, 0x41, 0, 1, 2, 3])) == (3, 0x41)
    assert l2cap.basic_header(b"\x03\x00\x41") is None
    rtp = [bytes([0x80, 0x60]) + bytes(200)] * 3
    assert l2cap.guess_protocol(rtp) == (0x19, "avdtp_media")
    sdp = bytes([0x06, 0x00, 0x01, 0x00, 0x03, 0x35, 0x01, 0x00])
    assert l2cap.guess_protocol([sdp]) == (0x01, None)
    assert l2cap.guess_protocol([bytes([0x0B, 0xEF, 0x01])]) == (0x03, None)
    assert l2cap.guess_protocol([bytes([0x00, 0x00])]) is None
    assert l2cap.guess_protocol([]) is None
