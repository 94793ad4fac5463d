"""A2DP codec information (A2DP 1.4 §4; vendor ids per Wireshark/AOSP/BlueZ)."""

from __future__ import annotations

from analyzer.decode import a2dp


def _vendor(vid: int, cid: int, extra: bytes = b"") -> bytes:
    return bytes([0x00, 0xFF]) + vid.to_bytes(4, "little") + cid.to_bytes(2, "little") + extra


def test_sbc() -> None:
    c = a2dp.decode_codec(bytes([0x00, 0x00, 0xFF, 0xFF, 0x02, 0x35]))
    assert c.media_type_name == "Audio" and c.codec_name == "SBC"
    assert c.fields["sampling_frequencies"] == [16000, 32000, 44100, 48000]
    assert c.fields["channel_modes"] == ["Mono", "Dual Channel", "Stereo", "Joint Stereo"]
    assert c.fields["block_lengths"] == [4, 8, 12, 16] and c.fields["subbands"] == [4, 8]
    assert c.fields["allocation_methods"] == ["SNR", "Loudness"]
    assert (c.fields["min_bitpool"], c.fields["max_bitpool"]) == (2, 0x35)


def test_aac() -> None:
    # MPEG-2 AAC LC + MPEG-4 AAC LC, 44.1k + 48k, 2 channels, VBR, 320 kbit/s
    br = 320000
    c = a2dp.decode_codec(bytes([0x00, 0x02, 0xC0, 0x01, 0x84, 0x80 | (br >> 16), (br >> 8) & 0xFF,
                                 br & 0xFF]))  # fmt: skip
    assert c.codec_name == "AAC"
    assert c.fields["object_types"] == ["MPEG-2 AAC LC", "MPEG-4 AAC LC"]
    assert c.fields["sampling_frequencies"] == [44100, 48000]
    assert c.fields["channels"] == [2] and c.fields["vbr"] and c.fields["bitrate"] == br


def test_codec_types_follow_wireshark_not_bumble() -> None:
    assert a2dp.decode_codec(bytes([0x00, 0x03])).codec_name == "USAC"
    assert a2dp.decode_codec(bytes([0x00, 0x04])).codec_name == "ATRAC"
    assert a2dp.decode_codec(bytes([0x00, 0x01, 0xE0, 0x3F, 0x80, 0x01])).codec_name == "MPEG-1,2"


def test_vendor_codecs() -> None:
    names = {
        (0x4F, 0x0001): "aptX",
        (0xD7, 0x0024): "aptX HD",
        (0xD7, 0x00AD): "aptX Adaptive",
        (0x012D, 0x00AA): "LDAC",
        (0x053A, 0x4C32): "LHDC V2",
        (0x053A, 0x4C33): "LHDC V3",
        (0x053A, 0x4C35): "LHDC V5",
        (0x053A, 0x4C4C): "LHDC LL",
    }
    for (vid, cid), name in names.items():
        assert a2dp.decode_codec(_vendor(vid, cid)).codec_name == name
    assert a2dp.decode_codec(_vendor(0x1234, 0x0042)).codec_name == "vendor 0x00001234/0x0042"
    aptx = a2dp.decode_codec(_vendor(0x4F, 0x0001, b"\x22"))
    assert aptx.fields["sampling_frequencies"] == [44100] and aptx.fields["channel_modes"] == [
        "Stereo"
    ]
    ldac = a2dp.decode_codec(_vendor(0x012D, 0x00AA, b"\x3c\x07"))
    assert ldac.fields["sampling_frequencies"] == [44100, 48000, 88200, 96000]
    assert a2dp.decode_codec(bytes([0x00, 0xFF, 0x4F])).anomaly is not None


def test_quality_rank_orders_codecs() -> None:
    def rank(b: bytes) -> int:
        return a2dp.decode_codec(b).quality_rank

    sbc = rank(bytes([0x00, 0x00, 0xFF, 0xFF, 2, 53]))
    aac = rank(bytes([0x00, 0x02, 0x80, 0x01, 0x84, 0x83, 0xE8, 0x00]))
    assert (
        sbc < aac < rank(_vendor(0x4F, 1)) < rank(_vendor(0xD7, 0x24)) < rank(_vendor(0x12D, 0xAA))
    )
    assert rank(_vendor(0x1234, 0x42)) == 0


def test_short() -> None:
    assert a2dp.decode_codec(b"").anomaly is not None
    assert a2dp.decode_codec(bytes([0x00, 0x00, 0xFF])).anomaly is not None
