"""Synthetic but well-formed A2DP media and SCO voice payloads.

SBC frames follow A2DP 1.3 Appendix B (12.x frame syntax, CRC-8 poly 0x1D init 0x0F over
the header from sampling_frequency to the end of the scale factors); AAC uses the MPEG-4
LATM payload-length framing A2DP 4.5.4 prescribes; the vendor codec payload is opaque with
a one-byte frame count like LDAC. mSBC frames carry the H2 synchronisation header (HFP 1.8
5.7.1).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from bumble.rtp import MediaPacket


def _crc8(bits: list[int]) -> int:
    crc = 0x0F
    for bit in bits:
        top = (crc >> 7) & 1
        crc = (crc << 1) & 0xFF
        if top ^ bit:
            crc ^= 0x1D
    return crc


def _bits(data: bytes, nbits: int) -> list[int]:
    out = []
    for i in range(nbits):
        out.append((data[i // 8] >> (7 - i % 8)) & 1)
    return out


def sbc_frame(
    *,
    freq_index: int = 2,
    blocks: int = 16,
    channel_mode: int = 3,
    subbands: int = 8,
    bitpool: int = 53,
    loudness: bool = True,
    seq: int = 0,
) -> bytes:
    """One SBC frame of near-silence (A2DP Appendix B 12.4 frame_header, 12.5 scale factors)."""
    channels = 1 if channel_mode == 0 else 2
    b1 = (
        (freq_index << 6)
        | (((blocks // 4) - 1) << 4)
        | (channel_mode << 2)
        | ((0 if loudness else 1) << 1)
        | (1 if subbands == 8 else 0)
    )
    if channel_mode in (0, 1):
        data_bits = blocks * channels * bitpool
    else:
        data_bits = (subbands if channel_mode == 3 else 0) + blocks * bitpool
    length = 4 + (4 * subbands * channels) // 8 + (data_bits + 7) // 8
    join_bits = subbands if channel_mode == 3 else 0
    sf_bits = 4 * subbands * channels
    # small deterministic variation in the scale factors so frames are not all identical
    body = bytearray(length - 4)
    sf_bytes = (join_bits + sf_bits) // 8
    for i in range(sf_bytes):
        body[i] = 0x11 * ((seq + i) % 3)
    if join_bits:
        body[0] = 0
    crc_input = bytes([b1, bitpool]) + bytes(body)
    crc = _crc8(_bits(crc_input, 16 + join_bits + sf_bits))
    return bytes([0x9C, b1, bitpool, crc]) + bytes(body)


SBC_SAMPLES_PER_FRAME = 16 * 8


async def sbc_packets(
    duration: float,
    mtu: int,
    *,
    stall_at: float | None = None,
    stall: float = 0.0,
    sample_rate: int = 44100,
) -> AsyncGenerator[MediaPacket, None]:
    """RTP media packets of SBC frames (A2DP 4.3.4) for ``duration`` seconds."""
    frame0 = sbc_frame()
    per_packet = min(15, (mtu - 13) // len(frame0))
    samples = 0
    seq = 0
    stalled = False
    while samples / sample_rate < duration:
        t = samples / sample_rate
        if stall_at is not None and not stalled and t >= stall_at:
            stalled = True
            await asyncio.sleep(stall)
        payload = bytes([per_packet]) + b"".join(sbc_frame(seq=seq + i) for i in range(per_packet))
        packet = MediaPacket(2, 0, 0, 0, seq, samples, 0x1A2B3C4D, [], 96, payload)
        packet.timestamp_seconds = t
        yield packet
        seq += 1
        samples += per_packet * SBC_SAMPLES_PER_FRAME


class SbcStream:
    """One SBC RTP stream that can be suspended and resumed (AVDTP SUSPEND / START): each
    ``segment(seconds)`` continues the RTP sequence number and timestamp (RFC 3550 5.1)."""

    def __init__(self, mtu: int, sample_rate: int = 44100) -> None:
        self.frame_len = len(sbc_frame())
        self.per_packet = min(15, (mtu - 13) // self.frame_len)
        self.sample_rate = sample_rate
        self.seq = 0
        self.samples = 0

    async def segment(self, duration: float) -> AsyncGenerator[MediaPacket, None]:
        end = self.samples + duration * self.sample_rate
        while self.samples < end:
            n = self.per_packet
            payload = bytes([n]) + b"".join(sbc_frame(seq=self.seq + i) for i in range(n))
            packet = MediaPacket(
                2, 0, 0, 0, self.seq & 0xFFFF, self.samples, 0x1A2B3C4D, [], 96, payload
            )
            packet.timestamp_seconds = self.samples / self.sample_rate
            yield packet
            self.seq += 1
            self.samples += n * SBC_SAMPLES_PER_FRAME


def _latm(frame: bytes) -> bytes:
    n = len(frame)
    return b"\xff" * (n // 255) + bytes([n % 255]) + frame


async def aac_packets(
    duration: float, mtu: int, *, sample_rate: int = 44100, bitrate: int = 256000
) -> AsyncGenerator[MediaPacket, None]:
    """RTP packets carrying one LATM-framed AAC access unit each (1024 samples)."""
    size = bitrate // 8 * 1024 // sample_rate
    samples = 0
    seq = 0
    while samples / sample_rate < duration:
        frame = bytes([0x21, 0x1B]) + bytes((seq * 7 + i) & 0x3F for i in range(size - 2))
        packet = MediaPacket(2, 0, 0, 1, seq, samples, 0x0A0C0000, [], 96, _latm(frame))
        packet.timestamp_seconds = samples / sample_rate
        yield packet
        seq += 1
        samples += 1024


async def vendor_packets(
    duration: float, mtu: int, *, sample_rate: int = 96000, frame_size: int = 330
) -> AsyncGenerator[MediaPacket, None]:
    """RTP packets with an LDAC-like payload: frame count byte + 0xAA-synced frames."""
    per_packet = max(1, min(4, (mtu - 13) // frame_size))
    samples = 0
    seq = 0
    while samples / sample_rate < duration:
        frames = b"".join(
            bytes([0xAA, 0x3C, seq & 0xFF]) + bytes(frame_size - 3) for _ in range(per_packet)
        )
        packet = MediaPacket(
            2, 0, 0, 0, seq, samples, 0x1DAC0001, [], 96, bytes([per_packet]) + frames
        )
        packet.timestamp_seconds = samples / sample_rate
        yield packet
        seq += 1
        samples += per_packet * 256


MSBC_H2 = (0x08, 0x38, 0xC8, 0xF8)


def msbc_packet(seq: int) -> bytes:
    """60-byte eSCO payload: H2 header + 57-byte mSBC frame (0xAD sync) + 1 pad byte."""
    frame = bytes([0xAD, 0x00, 0x00]) + bytes(54)
    return bytes([0x01, MSBC_H2[seq % 4]]) + frame + b"\x00"


def cvsd_packet(seq: int, size: int = 60) -> bytes:
    """CVSD air-mode payload (alternating idle pattern)."""
    return bytes((0x55 if (seq + i) % 2 else 0xAA) for i in range(size))
