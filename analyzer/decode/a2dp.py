"""A2DP media codec information elements (A2DP 1.4 §4, Assigned Numbers "Audio Codec ID").

:func:`decode_codec` reads the Media Codec service capability body (after category and LOSC):
media type (upper nibble), codec type and the codec-specific fields. Bit fields decode to lists of
the values whose bit is set, so one decoder serves capabilities (several bits) and configurations
(one bit each). Codec type numbering follows Wireshark/AOSP (0x03 MPEG-D USAC, 0x04 ATRAC); note
bumble 0.0.236 calls 0x03 ATRAC, so its table is not used here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.decode.base import Buffer, as_bytes, never_raise, u16, u32
from analyzer.model.audio import CODEC_QUALITY_RANK

MEDIA_TYPES: dict[int, str] = {0x0: "Audio", 0x1: "Video", 0x2: "Multimedia"}
CODEC_TYPES: dict[int, str] = {
    0x00: "SBC",
    0x01: "MPEG-1,2",
    0x02: "AAC",
    0x03: "USAC",
    0x04: "ATRAC",
    0xFF: "vendor",
}

#: (vendor id, vendor codec id) -> name. aptX/aptX HD/LDAC as in Wireshark's btavdtp; aptX
#: Adaptive, LHDC, Samsung from the AOSP/vendor A2DP headers; FastStream/aptX LL from BlueZ.
VENDOR_CODECS: dict[tuple[int, int], str] = {
    (0x0000004F, 0x0001): "aptX",
    (0x000000D7, 0x0024): "aptX HD",
    (0x000000D7, 0x00AD): "aptX Adaptive",
    (0x0000000A, 0x0001): "FastStream",
    (0x0000000A, 0x0002): "aptX Low Latency",
    (0x0000012D, 0x00AA): "LDAC",
    (0x0000053A, 0x484C): "LHDC V1",
    (0x0000053A, 0x4C32): "LHDC V2",
    (0x0000053A, 0x4C33): "LHDC V3",
    (0x0000053A, 0x4C35): "LHDC V5",
    (0x0000053A, 0x4C4C): "LHDC LL",
    (0x00000075, 0x0102): "Samsung HD",
    (0x00000075, 0x0103): "Samsung Scalable",
}

#: Rough listening-quality rank (the model's table: rules compare codecs with it too)
QUALITY_RANK = CODEC_QUALITY_RANK


def _bits(v: int, table: tuple[tuple[int, Any], ...]) -> list[Any]:
    return [val for mask, val in table if v & mask]


_SBC_FREQ = ((0x80, 16000), (0x40, 32000), (0x20, 44100), (0x10, 48000))
_SBC_MODE = ((0x08, "Mono"), (0x04, "Dual Channel"), (0x02, "Stereo"), (0x01, "Joint Stereo"))
_SBC_BLOCKS = ((0x80, 4), (0x40, 8), (0x20, 12), (0x10, 16))
_SBC_SUBBANDS = ((0x08, 4), (0x04, 8))
_SBC_ALLOC = ((0x02, "SNR"), (0x01, "Loudness"))
_MPEG_LAYER = ((0x80, "Layer I"), (0x40, "Layer II"), (0x20, "Layer III"))
_MPEG_FREQ = ((0x20, 16000), (0x10, 22050), (0x08, 24000), (0x04, 32000), (0x02, 44100),
              (0x01, 48000))  # fmt: skip
_AAC_OBJ = ((0x80, "MPEG-2 AAC LC"), (0x40, "MPEG-4 AAC LC"), (0x20, "MPEG-4 AAC LTP"),
            (0x10, "MPEG-4 AAC scalable"), (0x08, "MPEG-4 HE-AAC"), (0x04, "MPEG-4 HE-AACv2"),
            (0x02, "MPEG-4 AAC-ELDv2"))  # fmt: skip
_AAC_FREQ = ((0x800, 8000), (0x400, 11025), (0x200, 12000), (0x100, 16000), (0x080, 22050),
             (0x040, 24000), (0x020, 32000), (0x010, 44100), (0x008, 48000), (0x004, 64000),
             (0x002, 88200), (0x001, 96000))  # fmt: skip
_AAC_CHANNELS = ((0x8, 1), (0x4, 2), (0x2, 6), (0x1, 8))
_APTX_FREQ = ((0x80, 16000), (0x40, 32000), (0x20, 44100), (0x10, 48000))
_APTX_MODE = ((0x01, "Mono"), (0x02, "Stereo"))
_LDAC_FREQ = ((0x20, 44100), (0x10, 48000), (0x08, 88200), (0x04, 96000), (0x02, 176400),
              (0x01, 192000))  # fmt: skip
_LDAC_MODE = ((0x04, "Mono"), (0x02, "Dual Channel"), (0x01, "Stereo"))


@dataclass(slots=True)
class CodecInfo:
    """A Media Codec capability / configuration (AVDTP service category 0x07, A2DP §4)."""

    media_type: int | None
    codec_type: int | None
    vendor_id: int | None = None
    vendor_codec_id: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    raw: bytes = b""
    anomaly: str | None = None

    @property
    def media_type_name(self) -> str | None:
        if self.media_type is None:
            return None
        return MEDIA_TYPES.get(self.media_type, f"unknown 0x{self.media_type:X}")

    @property
    def codec_name(self) -> str:
        """ "SBC", "AAC", "aptX", "LDAC", ... or "vendor 0xVVVVVVVV/0xCCCC" for unknown vendors."""
        ct = self.codec_type
        if ct is None:
            return "unknown"
        if ct == 0xFF:
            if self.vendor_id is None or self.vendor_codec_id is None:
                return "vendor"
            known = VENDOR_CODECS.get((self.vendor_id, self.vendor_codec_id))
            return known or f"vendor 0x{self.vendor_id:08X}/0x{self.vendor_codec_id:04X}"
        return CODEC_TYPES.get(ct, f"unknown 0x{ct:02X}")

    @property
    def quality_rank(self) -> int:
        """Rough quality rank (see :data:`QUALITY_RANK`); 0 for unknown codecs."""
        return QUALITY_RANK.get(self.codec_name, 0)


def _sbc(p: bytes, f: dict[str, Any]) -> None:
    f.update(
        sampling_frequencies=_bits(p[0], _SBC_FREQ),
        channel_modes=_bits(p[0], _SBC_MODE),
        block_lengths=_bits(p[1], _SBC_BLOCKS),
        subbands=_bits(p[1], _SBC_SUBBANDS),
        allocation_methods=_bits(p[1], _SBC_ALLOC),
        min_bitpool=p[2],
        max_bitpool=p[3],
    )


def _mpeg12(p: bytes, f: dict[str, Any]) -> None:
    br = (p[2] << 8) | p[3]
    f.update(
        layers=_bits(p[0], _MPEG_LAYER),
        crc=bool(p[0] & 0x10),
        channel_modes=_bits(p[0], _SBC_MODE),
        mpf2=bool(p[1] & 0x40),
        sampling_frequencies=_bits(p[1], _MPEG_FREQ),
        vbr=bool(br & 0x8000),
        bitrate_index_mask=br & 0x7FFF,
    )


def _aac(p: bytes, f: dict[str, Any]) -> None:
    freq = (p[1] << 4) | (p[2] >> 4)
    f.update(
        object_types=_bits(p[0], _AAC_OBJ),
        drc=bool(p[0] & 0x01),
        sampling_frequencies=_bits(freq, _AAC_FREQ),
        channels=_bits(p[2] & 0x0F, _AAC_CHANNELS),
        vbr=bool(p[3] & 0x80),
        bitrate=((p[3] & 0x7F) << 16) | (p[4] << 8) | p[5],
    )


def _vendor(p: bytes, f: dict[str, Any], name: str) -> None:
    v = p[6:]
    f["vendor_data"] = v
    if name in ("aptX", "aptX HD") and v:
        f.update(
            sampling_frequencies=_bits(v[0], _APTX_FREQ), channel_modes=_bits(v[0], _APTX_MODE)
        )
    elif name == "LDAC" and len(v) >= 2:
        f.update(
            sampling_frequencies=_bits(v[0], _LDAC_FREQ), channel_modes=_bits(v[1], _LDAC_MODE)
        )


#: codec type -> (minimum codec-specific length, decoder)
_CODECS = {0x00: (4, _sbc), 0x01: (4, _mpeg12), 0x02: (6, _aac)}


def _raw_codec(data: Buffer, anomaly: str | None = None) -> CodecInfo:
    return CodecInfo(None, None, anomaly=anomaly)


@never_raise(_raw_codec)
def decode_codec(data: Buffer) -> CodecInfo:
    """Decode a Media Codec capability body: media type byte, codec type, codec-specific info."""
    b = as_bytes(data)
    if len(b) < 2:
        return CodecInfo(None, None, raw=b, anomaly=f"short media codec capability: {len(b)} < 2")
    info = CodecInfo(b[0] >> 4, b[1], raw=b)
    spec = b[2:]
    if info.codec_type == 0xFF:
        if len(spec) < 6:
            info.anomaly = f"short vendor codec header: {len(spec)} < 6 bytes"
            return info
        info.vendor_id, info.vendor_codec_id = u32(spec, 0), u16(spec, 4)
        _vendor(spec, info.fields, info.codec_name)
        return info
    row = _CODECS.get(b[1])
    if row is not None:
        min_len, dec = row
        if len(spec) < min_len:
            info.anomaly = f"{info.codec_name} codec information too short: {len(spec)} < {min_len}"
        else:
            dec(spec, info.fields)
    else:
        info.fields["codec_data"] = spec
    return info
