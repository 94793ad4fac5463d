"""Generate a large, realistic A2DP-streaming btsnoop capture (datalink 1002, HCI H4).

A phone streams SBC to headphones: HCI setup (Reset, Read Buffer Size, LE scan, Create Connection,
Connection Complete), L2CAP signalling opening an AVDTP signalling channel and a media channel
(both PSM 0x0019), AVDTP DISCOVER / GET_CAPABILITIES / SET_CONFIGURATION (SBC 44.1 kHz joint stereo,
16 blocks, 8 subbands, loudness, bitpool 53) / OPEN / DELAY_REPORT / START, then media packets
(RTP header + SBC frames, A2DP v1.3 §4.3 and Appendix B (SBC), AVDTP v1.3 §7.2) on the media
channel, fragmented into ACL packets per the controller's ACL buffer (1021 bytes), Number Of
Completed Packets events for every ACL packet the host sent, occasional signalling (delay reports,
SUSPEND/START) and LE advertising reports from a few advertisers.

The few signalling frames are built with bumble's packet classes so they are spec-correct; the
media, completion and advertising frames (the bulk) come from pre-built templates patched and
scattered with numpy, so a million frames take a few seconds.

Usage: ``python -m benchmarks.gen_a2dp_btsnoop OUT [--packets N] [--seed S]``. Deterministic for a
given (packets, seed, acl-buffer).
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from bumble import a2dp, avdtp, hci, l2cap

# -- constants -------------------------------------------------------------------------------------

#: btsnoop timestamps count µs from 0000-01-01; this is 1970-01-01 in that scale.
BTSNOOP_EPOCH_DELTA_US = 0x00DCDDB30F2F8000
START_UNIX_US = 1_715_680_800_000_000  # 2024-05-14T10:00:00Z
BTSNOOP_FILE_HEADER = b"btsnoop\x00" + struct.pack(">II", 1, 1002)

# btsnoop 1002 flags (bit 0: received, bit 1: command/event)
F_ACL_SENT, F_ACL_RECV, F_CMD, F_EVT = 0, 1, 2, 3

PHONE = hci.Address("F4:60:E2:11:22:33", hci.Address.PUBLIC_DEVICE_ADDRESS)
HEADPHONES = hci.Address("00:1B:66:AB:CD:EF", hci.Address.PUBLIC_DEVICE_ADDRESS)
HANDLE = 0x0003
ACL_BUFFER = 1021  # controller ACL data packet length (Read Buffer Size)
ACL_BUFFERS = 8

# L2CAP channel ids (phone side / headphone side), Core v5.4 Vol 3 Part A §2.1
PHONE_SIG_CID, HP_SIG_CID = 0x0040, 0x0060
PHONE_MEDIA_CID, HP_MEDIA_CID = 0x0041, 0x0061
PHONE_MTU, HP_SIG_MTU, HP_MEDIA_MTU = 1005, 672, 895
AVDTP_PSM = 0x0019

# SBC configuration: 44.1 kHz, 16 blocks, joint stereo, loudness, 8 subbands, bitpool 53.
SAMPLE_RATE = 44_100
SBC_BLOCKS, SBC_SUBBANDS, SBC_CHANNELS, SBC_BITPOOL = 16, 8, 2, 53
SBC_HEADER_BYTE1 = 0b10_11_11_0_1  # A2DP Appendix B §12.6.1 (sf=44.1k, blocks=16, JS, loud, 8sb)
#: A2DP Appendix B §12.9: 4 + 4*sb*ch/8 + ceil((join*sb + blocks*bitpool)/8) = 119 bytes
SBC_FRAME_LEN = (
    4 + (4 * SBC_SUBBANDS * SBC_CHANNELS) // 8 + -(-(SBC_SUBBANDS + SBC_BLOCKS * SBC_BITPOOL) // 8)
)
SAMPLES_PER_FRAME = SBC_BLOCKS * SBC_SUBBANDS  # 128
FRAMES_CHOICES = (5, 6)  # SBC frames per media packet: 608 / 727-byte L2CAP payloads
RTP_HEADER_LEN, MEDIA_HEADER_LEN = 12, 1
RTP_PT, RTP_SSRC = 96, 1

CHUNK_ROWS = 32_768  # rows per numpy scatter step (bounds the index array's memory)


# -- helpers ---------------------------------------------------------------------------------------


def sbc_crc8(data: bytes, nbits: int) -> int:
    """SBC header CRC-8: polynomial x^8+x^4+x^3+x^2+1, initial value 0x0F (A2DP App. B §12.6.4)."""
    crc = 0x0F
    for i in range(nbits):
        bit = (data[i // 8] >> (7 - i % 8)) & 1
        top = (crc >> 7) & 1
        crc = (crc << 1) & 0xFF
        if top ^ bit:
            crc ^= 0x1D
    return crc


def sbc_frame_table(rng: np.random.Generator, count: int = 256) -> np.ndarray:
    """``count`` distinct valid SBC frames (random join bits, scale factors and samples)."""
    frames = rng.integers(0, 256, size=(count, SBC_FRAME_LEN), dtype=np.uint8)
    frames[:, 0] = 0x9C
    frames[:, 1] = SBC_HEADER_BYTE1
    frames[:, 2] = SBC_BITPOOL
    # scale factors: keep them in a plausible 4..12 range
    sf = rng.integers(4, 13, size=(count, 16), dtype=np.uint8)
    frames[:, 5:13] = (sf[:, 0::2] << 4) | sf[:, 1::2]
    # CRC covers byte 1, bitpool, then join bits + scale factors (8 + 64 bits here)
    protected_bits = 16 + SBC_SUBBANDS + 4 * SBC_SUBBANDS * SBC_CHANNELS
    for i in range(count):
        row = bytes(frames[i, 1:3]) + bytes(frames[i, 4:13])
        frames[i, 3] = sbc_crc8(row, protected_bits)
    return frames


def acl_fragments(pdu_len: int, acl_buffer: int) -> list[tuple[int, int]]:
    """[start, end) byte ranges of an L2CAP PDU cut into ACL packets of at most ``acl_buffer``."""
    return [(a, min(a + acl_buffer, pdu_len)) for a in range(0, pdu_len, acl_buffer)]


def acl_packets(cid: int, payload: bytes, acl_buffer: int) -> list[bytes]:
    """H4 ACL packets carrying one basic L2CAP PDU (Core Vol 4 Part E §5.4.2; PB 0b10 then 0b01)."""
    pdu = bytes(l2cap.L2CAP_PDU(cid, payload))
    out = []
    for j, (a, b) in enumerate(acl_fragments(len(pdu), acl_buffer)):
        chunk = pdu[a:b]
        pkt = hci.HCI_AclDataPacket(
            connection_handle=HANDLE,
            pb_flag=2 if j == 0 else 1,
            bc_flag=0,
            data_total_length=len(chunk),
            data=chunk,
        )
        out.append(bytes(pkt))
    return out


def nocp_event(count: int = 1) -> bytes:
    """HCI Number Of Completed Packets event (Core Vol 4 Part E §7.7.19) for our handle."""
    return bytes(
        hci.HCI_Number_Of_Completed_Packets_Event(
            connection_handles=[HANDLE], num_completed_packets=[count]
        )
    )


def ad(ad_type: int, value: bytes) -> bytes:
    """One advertising data structure (Core Vol 3 Part C §11)."""
    return bytes([len(value) + 1, ad_type]) + value


@dataclass
class Advertiser:
    address: hci.Address
    event_type: int  # 0 ADV_IND, 2 ADV_SCAN_IND, 3 ADV_NONCONN_IND, 4 SCAN_RSP
    data: bytes
    rate_hz: float
    rssi: int

    def report(self, rssi: int) -> bytes:
        r = hci.HCI_LE_Advertising_Report_Event.Report(
            event_type=self.event_type,
            address_type=self.address.address_type,
            address=self.address,
            data=self.data,
            rssi=rssi,
        )
        return bytes(hci.HCI_LE_Advertising_Report_Event([r]))


def advertisers() -> list[Advertiser]:
    """A few typical neighbours: an iPhone, earbuds, an Eddystone beacon, a tracker, a speaker."""
    rnd = hci.Address.RANDOM_DEVICE_ADDRESS
    pub = hci.Address.PUBLIC_DEVICE_ADDRESS
    flags = ad(0x01, b"\x1a")
    return [
        Advertiser(
            hci.Address("5E:21:3A:0C:7F:41", rnd),
            0,
            flags + ad(0x0A, b"\x0c") + ad(0xFF, bytes.fromhex("4c0010050b1c8e2f61")),
            8.0,
            -71,
        ),
        Advertiser(
            hci.Address("D8:3A:DD:10:20:30", rnd),
            3,
            ad(0xFF, bytes.fromhex("75004204018066d83add102030")),
            5.0,
            -80,
        ),
        Advertiser(
            hci.Address("C3:44:9A:2B:6E:01", rnd),
            3,
            ad(0x01, b"\x06")
            + ad(0x03, b"\xaa\xfe")
            + ad(0x16, bytes.fromhex("aafe00e2") + bytes(range(1, 17)) + b"\x00\x00"),
            4.0,
            -88,
        ),
        Advertiser(
            hci.Address("E5:0F:31:77:98:AB", rnd),
            0,
            ad(0x01, b"\x06") + ad(0x03, b"\xed\xfe") + ad(0x16, bytes.fromhex("edfe02000a0b0c")),
            3.0,
            -84,
        ),
        Advertiser(
            hci.Address("00:42:79:5A:1B:C2", pub),
            0,
            ad(0x01, b"\x06") + ad(0x09, b"JBL Flip 5") + ad(0x03, b"\x0b\x11\x0e\x11"),
            4.0,
            -67,
        ),
    ]


# -- the record stream -------------------------------------------------------------------------


@dataclass
class Misc:
    """Frames built one by one (setup and signalling): (time µs since start, flags, bytes)."""

    times: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)

    def add(self, t: int, flags: int, data: bytes) -> None:
        self.times.append(t)
        self.flags.append(flags)
        self.data.append(data)


@dataclass
class TemplateClass:
    """Frames sharing one length and flags: times (µs) plus a builder of their bytes."""

    flags: int
    length: int
    times: np.ndarray
    build: Callable[[int, int], np.ndarray]  # (first row, rows) -> (rows, length) uint8


class Signalling:
    """Builds the signalling frames: HCI commands/events, L2CAP signalling, AVDTP messages."""

    def __init__(self, misc: Misc, acl_buffer: int) -> None:
        self.misc = misc
        self.acl_buffer = acl_buffer
        self.l2cap_id = 0
        self.phone_label = 0
        self.hp_label = 0

    def cmd(self, t: int, command: hci.HCI_Command, reply: bytes, dt: int = 400) -> int:
        self.misc.add(t, F_CMD, bytes(command))
        self.misc.add(t + dt, F_EVT, reply)
        return t + dt

    def complete(self, opcode: int, params: bytes) -> bytes:
        return bytes(
            hci.HCI_Command_Complete_Event(  # type: ignore[type-var]
                num_hci_command_packets=1, command_opcode=opcode, return_parameters=params
            )
        )

    def acl_out(self, t: int, cid: int, payload: bytes) -> int:
        """Phone -> headphones: ACL packets, each followed by a completion event."""
        for pkt in acl_packets(cid, payload, self.acl_buffer):
            self.misc.add(t, F_ACL_SENT, pkt)
            self.misc.add(t + 2_500, F_EVT, nocp_event())
            t += 150
        return t

    def acl_in(self, t: int, cid: int, payload: bytes) -> int:
        for pkt in acl_packets(cid, payload, self.acl_buffer):
            self.misc.add(t, F_ACL_RECV, pkt)
            t += 150
        return t

    def l2cap_frame(self, frame_cls: type, **kw: object) -> bytes:
        return bytes(frame_cls(**kw))

    def open_channel(self, t: int, local_cid: int, remote_cid: int, remote_mtu: int) -> int:
        """L2CAP connection + configuration both ways (Core Vol 3 Part A §4.2-4.5)."""
        self.l2cap_id += 1
        req_id = self.l2cap_id
        f = l2cap.L2CAP_Connection_Request(identifier=req_id, psm=AVDTP_PSM, source_cid=local_cid)
        self.acl_out(t, 0x0001, bytes(f))
        r = l2cap.L2CAP_Connection_Response(
            identifier=req_id, destination_cid=remote_cid, source_cid=local_cid, result=0, status=0
        )
        t = self.acl_in(t + 9_000, 0x0001, bytes(r))
        mtu = l2cap.L2CAP_Control_Frame.encode_configuration_options
        self.l2cap_id += 1
        cfg = l2cap.L2CAP_Configure_Request(
            identifier=self.l2cap_id,
            destination_cid=remote_cid,
            flags=0,
            options=mtu([(1, struct.pack("<H", PHONE_MTU))]),
        )
        t = self.acl_out(t + 300, 0x0001, bytes(cfg))
        hp_cfg = l2cap.L2CAP_Configure_Request(
            identifier=0x20 + req_id,
            destination_cid=local_cid,
            flags=0,
            options=mtu([(1, struct.pack("<H", remote_mtu))]),
        )
        t = self.acl_in(t + 6_000, 0x0001, bytes(hp_cfg))
        rsp = l2cap.L2CAP_Configure_Response(
            identifier=self.l2cap_id, source_cid=local_cid, flags=0, result=0, options=b""
        )
        t = self.acl_in(t + 200, 0x0001, bytes(rsp))
        my_rsp = l2cap.L2CAP_Configure_Response(
            identifier=0x20 + req_id,
            source_cid=remote_cid,
            flags=0,
            result=0,
            options=mtu([(1, struct.pack("<H", remote_mtu))]),
        )
        return self.acl_out(t + 500, 0x0001, bytes(my_rsp))

    @staticmethod
    def avdtp_pdu(label: int, message: avdtp.Message) -> bytes:
        """A single-packet AVDTP signalling message (AVDTP v1.3 §8.4.2)."""
        header = (label & 0xF) << 4 | 0 << 2 | int(message.message_type)
        return bytes([header, int(message.signal_identifier)]) + message.payload

    def phone_request(
        self, t: int, command: avdtp.Message, response: avdtp.Message, rtt: int = 12_000
    ) -> int:
        """Phone (INT) sends a command on the signalling channel, the headphones accept."""
        label = self.phone_label
        self.phone_label = (self.phone_label + 1) % 16
        self.acl_out(t, HP_SIG_CID, self.avdtp_pdu(label, command))
        return self.acl_in(t + rtt, PHONE_SIG_CID, self.avdtp_pdu(label, response))

    def hp_request(
        self, t: int, command: avdtp.Message, response: avdtp.Message, rtt: int = 3_000
    ) -> int:
        """Headphones send a command (e.g. DELAY_REPORT), the phone accepts."""
        label = self.hp_label
        self.hp_label = (self.hp_label + 1) % 16
        self.acl_in(t, PHONE_SIG_CID, self.avdtp_pdu(label, command))
        return self.acl_out(t + rtt, HP_SIG_CID, self.avdtp_pdu(label, response))


def sbc_config() -> a2dp.SbcMediaCodecInformation:
    S = a2dp.SbcMediaCodecInformation
    return S(
        sampling_frequency=S.SamplingFrequency.SF_44100,
        channel_mode=S.ChannelMode.JOINT_STEREO,
        block_length=S.BlockLength.BL_16,
        subbands=S.Subbands.S_8,
        allocation_method=S.AllocationMethod.LOUDNESS,
        minimum_bitpool_value=2,
        maximum_bitpool_value=SBC_BITPOOL,
    )


def setup(sig: Signalling) -> int:
    """HCI init, connection, L2CAP + AVDTP stream set-up; returns the START accept time (µs)."""
    t = 0
    t = sig.cmd(t, hci.HCI_Reset_Command(), sig.complete(hci.HCI_RESET_COMMAND, b"\x00"), 30_000)
    rbs = struct.pack("<BHBHH", 0, ACL_BUFFER, 64, ACL_BUFFERS, 0)
    t = sig.cmd(
        t + 1_000, hci.HCI_Read_Buffer_Size_Command(), sig.complete(0x1005, rbs)
    )  # Read Buffer Size (Core Vol 4 Part E §7.4.5)
    t = sig.cmd(
        t + 1_000,
        hci.HCI_Read_BD_ADDR_Command(),
        sig.complete(hci.HCI_READ_BD_ADDR_COMMAND, b"\x00" + bytes(PHONE)),
    )
    t = sig.cmd(
        t + 1_000,
        hci.HCI_LE_Set_Scan_Parameters_Command(
            le_scan_type=0,
            le_scan_interval=0x0060,
            le_scan_window=0x0030,
            own_address_type=0,
            scanning_filter_policy=0,
        ),
        sig.complete(hci.HCI_LE_SET_SCAN_PARAMETERS_COMMAND, b"\x00"),
    )
    t = sig.cmd(
        t + 1_000,
        hci.HCI_LE_Set_Scan_Enable_Command(le_scan_enable=1, filter_duplicates=0),
        sig.complete(hci.HCI_LE_SET_SCAN_ENABLE_COMMAND, b"\x00"),
    )
    t += 200_000
    t = sig.cmd(
        t,
        hci.HCI_Create_Connection_Command(
            bd_addr=HEADPHONES,
            packet_type=0xCC18,
            page_scan_repetition_mode=1,
            reserved=0,
            clock_offset=0,
            allow_role_switch=1,
        ),
        bytes(
            hci.HCI_Command_Status_Event(
                status=0,
                num_hci_command_packets=1,
                command_opcode=hci.HCI_CREATE_CONNECTION_COMMAND,
            )
        ),
        600,
    )
    t += 180_000
    sig.misc.add(
        t,
        F_EVT,
        bytes(
            hci.HCI_Connection_Complete_Event(
                status=0,
                connection_handle=HANDLE,
                bd_addr=HEADPHONES,
                link_type=hci.HCI_Connection_Complete_Event.LinkType.ACL,
                encryption_enabled=0,
            )
        ),
    )
    # AVDTP signalling channel
    t = sig.open_channel(t + 40_000, PHONE_SIG_CID, HP_SIG_CID, HP_SIG_MTU)
    t = sig.phone_request(
        t + 5_000,
        avdtp.Discover_Command(),
        avdtp.Discover_Response(
            endpoints=[
                avdtp.EndPointInfo(1, 0, avdtp.AVDTP_AUDIO_MEDIA_TYPE, avdtp.AVDTP_TSEP_SNK),
                avdtp.EndPointInfo(2, 0, avdtp.AVDTP_AUDIO_MEDIA_TYPE, avdtp.AVDTP_TSEP_SNK),
            ]
        ),
    )
    sbc_all = bytes([0xFF, 0xFF, 2, SBC_BITPOOL])  # every SBC option, bitpool 2..53
    t = sig.phone_request(
        t + 2_000,
        avdtp.Get_Capabilities_Command(acp_seid=1),
        avdtp.Get_Capabilities_Response(
            capabilities=[
                avdtp.ServiceCapabilities(avdtp.AVDTP_MEDIA_TRANSPORT_SERVICE_CATEGORY),
                avdtp.MediaCodecCapabilities(
                    media_type=avdtp.AVDTP_AUDIO_MEDIA_TYPE,
                    media_codec_type=a2dp.A2DP_SBC_CODEC_TYPE,
                    media_codec_information=sbc_all,
                ),
                avdtp.ServiceCapabilities(avdtp.AVDTP_DELAY_REPORTING_SERVICE_CATEGORY),
            ]
        ),
    )
    t = sig.phone_request(
        t + 2_000,
        avdtp.Set_Configuration_Command(
            acp_seid=1,
            int_seid=1,
            capabilities=[
                avdtp.ServiceCapabilities(avdtp.AVDTP_MEDIA_TRANSPORT_SERVICE_CATEGORY),
                avdtp.MediaCodecCapabilities(
                    media_type=avdtp.AVDTP_AUDIO_MEDIA_TYPE,
                    media_codec_type=a2dp.A2DP_SBC_CODEC_TYPE,
                    media_codec_information=sbc_config(),
                ),
                avdtp.ServiceCapabilities(avdtp.AVDTP_DELAY_REPORTING_SERVICE_CATEGORY),
            ],
        ),
        avdtp.Set_Configuration_Response(),
    )
    t = sig.phone_request(t + 2_000, avdtp.Open_Command(acp_seid=1), avdtp.Open_Response())
    # AVDTP transport (media) channel: the second L2CAP channel on PSM 0x19 after OPEN
    t = sig.open_channel(t + 3_000, PHONE_MEDIA_CID, HP_MEDIA_CID, HP_MEDIA_MTU)
    t = sig.hp_request(
        t + 20_000, avdtp.DelayReport_Command(acp_seid=1, delay=1500), avdtp.DelayReport_Response()
    )
    return sig.phone_request(
        t + 150_000, avdtp.Start_Command(acp_seids=[1]), avdtp.Start_Response()
    )


@dataclass
class Plan:
    misc: Misc
    classes: list[TemplateClass]


def plan(n_packets: int, duration_s: float, seed: int, acl_buffer: int) -> Plan:
    """Every frame of a capture ``duration_s`` long after set-up (more than ``n_packets``)."""
    rng = np.random.default_rng(seed)
    misc = Misc()
    sig = Signalling(misc, acl_buffer)
    t_stream = setup(sig) + 8_000
    t_end = t_stream + int(duration_s * 1e6)

    # -- streaming periods, separated by SUSPEND ... START ------------------------------------
    periods: list[tuple[int, int]] = []
    t = t_stream
    first = True
    while t < t_end:
        run = int((8 if first else rng.uniform(300, 900)) * 1e6)
        first = False
        stop = min(t + run, t_end)
        periods.append((t, stop))
        if stop >= t_end:
            break
        t_sus = sig.phone_request(
            stop + 5_000, avdtp.Suspend_Command(acp_seids=[1]), avdtp.Suspend_Response()
        )
        pause = int(rng.uniform(1.5, 20) * 1e6)
        t = (
            sig.phone_request(
                t_sus + pause, avdtp.Start_Command(acp_seids=[1]), avdtp.Start_Response()
            )
            + 8_000
        )
    # delay reports from the headphones now and then (while streaming)
    t = t_stream + 3_000_000
    while t < t_end:
        in_period = any(a + 50_000 <= t < b - 100_000 for a, b in periods)
        if in_period:
            delay = int(rng.integers(1400, 2200))
            sig.hp_request(
                t, avdtp.DelayReport_Command(acp_seid=1, delay=delay), avdtp.DelayReport_Response()
            )
        t += int(rng.uniform(30, 90) * 1e6)

    # -- media packets ------------------------------------------------------------------------
    times_l, frames_l, rtp_ts_l = [], [], []
    samples = 0
    for a, b in periods:
        n_est = int((b - a) / 1e6 * SAMPLE_RATE / (SAMPLES_PER_FRAME * min(FRAMES_CHOICES))) + 2
        nf = rng.choice(np.array(FRAMES_CHOICES), size=n_est)
        s = np.concatenate(([0], np.cumsum(nf * SAMPLES_PER_FRAME)[:-1]))
        tt = a + (s * 1_000_000) // SAMPLE_RATE + rng.integers(-400, 400, size=n_est)
        keep = tt < b
        times_l.append(np.maximum(tt[keep], a))
        frames_l.append(nf[keep])
        rtp_ts_l.append(samples + s[keep])
        samples += int(s[keep][-1] + nf[keep][-1] * SAMPLES_PER_FRAME) if keep.any() else 0
        samples += int((b - a) / 1e6 * SAMPLE_RATE) // 4  # the source clock ran on while paused
    m_time = np.concatenate(times_l).astype(np.int64)
    m_frames = np.concatenate(frames_l).astype(np.int64)
    m_rtp_ts = (np.concatenate(rtp_ts_l) & 0xFFFFFFFF).astype(np.uint32)
    m_seq = (np.arange(len(m_time)) & 0xFFFF).astype(np.uint16)
    sbc = sbc_frame_table(rng)
    frame_pick = rng.integers(0, len(sbc), size=(len(m_time), max(FRAMES_CHOICES)), dtype=np.int64)

    classes: list[TemplateClass] = []
    nocp_times: list[np.ndarray] = []
    for nf_val in FRAMES_CHOICES:
        sel = np.nonzero(m_frames == nf_val)[0]
        payload_len = RTP_HEADER_LEN + MEDIA_HEADER_LEN + nf_val * SBC_FRAME_LEN
        pdu_len = 4 + payload_len
        for j, (fa, fb) in enumerate(acl_fragments(pdu_len, acl_buffer)):
            times = m_time[sel] + 150 * j
            classes.append(
                TemplateClass(
                    F_ACL_SENT,
                    5 + (fb - fa),
                    times,
                    media_builder(sel, nf_val, j, fa, fb, m_seq, m_rtp_ts, frame_pick, sbc),
                )
            )
            nocp_times.append(times + rng.integers(1_500, 9_000, size=len(times)))
    nocp = nocp_event()
    nocp_t = np.sort(np.concatenate(nocp_times))
    classes.append(TemplateClass(F_EVT, len(nocp), nocp_t, fixed_builder(nocp)))

    # -- LE advertising reports ---------------------------------------------------------------
    span = t_end - 0
    # Core Vol 6 Part B §4.4.2.2: events every advInterval (0.625 ms units) + advDelay 0-10 ms;
    # the scanner (interval 60 ms, window 30 ms, as set above) hears the events that fall in
    # its windows, so each advertiser's interval is chosen to give about rate_hz reports.
    scan_iv, scan_win = 0x0060 * 625, 0x0030 * 625
    for adv in advertisers():
        duty = scan_win / scan_iv
        interval = 625 * max(32, round(1e6 * duty / adv.rate_hz / 625))
        n = int(span / interval) + 4
        gaps = interval + rng.uniform(0, 10_000, size=n)
        times = (rng.uniform(0, interval) + np.cumsum(gaps)).astype(np.int64) + 100_000
        times = times[(times < t_end) & ((times % scan_iv) < scan_win)]
        rssi = np.clip(adv.rssi + rng.normal(0, 4, size=len(times)).round(), -127, 20)
        tmpl = adv.report(adv.rssi)
        classes.append(
            TemplateClass(F_EVT, len(tmpl), times, rssi_builder(tmpl, rssi.astype(np.int64)))
        )
    return Plan(misc, classes)


def fixed_builder(template: bytes) -> Callable[[int, int], np.ndarray]:
    row = np.frombuffer(template, dtype=np.uint8)

    def build(first: int, rows: int) -> np.ndarray:
        return np.broadcast_to(row, (rows, len(row)))

    return build


def rssi_builder(template: bytes, rssi: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """Advertising reports differing only in the last byte (RSSI, int8)."""
    row = np.frombuffer(template, dtype=np.uint8)

    def build(first: int, rows: int) -> np.ndarray:
        out = np.empty((rows, len(row)), dtype=np.uint8)
        out[:] = row
        out[:, -1] = (rssi[first : first + rows] & 0xFF).astype(np.uint8)
        return out

    return build


def media_builder(
    sel: np.ndarray,
    n_frames: int,
    fragment: int,
    fa: int,
    fb: int,
    seq: np.ndarray,
    rtp_ts: np.ndarray,
    frame_pick: np.ndarray,
    sbc: np.ndarray,
) -> Callable[[int, int], np.ndarray]:
    """ACL fragment ``fragment`` (L2CAP PDU bytes [fa, fb)) of media packets with n_frames."""
    payload_len = RTP_HEADER_LEN + MEDIA_HEADER_LEN + n_frames * SBC_FRAME_LEN
    head = (
        struct.pack("<HH", payload_len, HP_MEDIA_CID)
        + struct.pack(">BBHII", 0x80, RTP_PT, 0, 0, RTP_SSRC)
        + bytes([n_frames])
    )  # RTP v2 (RFC 3550 §5.1); A2DP media payload header (frames count)
    pb = 2 if fragment == 0 else 1
    acl_head = bytes([0x02]) + struct.pack("<HH", HANDLE | pb << 12, fb - fa)
    pdu_len = 4 + payload_len

    def build(first: int, rows: int) -> np.ndarray:
        idx = sel[first : first + rows]
        pdu = np.empty((rows, pdu_len), dtype=np.uint8)
        pdu[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
        pdu[:, 6:8] = seq[idx].astype(">u2").view(np.uint8).reshape(-1, 2)
        pdu[:, 8:12] = rtp_ts[idx].astype(">u4").view(np.uint8).reshape(-1, 4)
        base = len(head)
        for k in range(n_frames):
            pdu[:, base + k * SBC_FRAME_LEN : base + (k + 1) * SBC_FRAME_LEN] = sbc[
                frame_pick[idx, k]
            ]
        out = np.empty((rows, 5 + fb - fa), dtype=np.uint8)
        out[:, :5] = np.frombuffer(acl_head, dtype=np.uint8)
        out[:, 5:] = pdu[:, fa:fb]
        return out

    return build


# -- writing ---------------------------------------------------------------------------------------


def write(plan_: Plan, n_packets: int, out_path: Path) -> int | None:
    """Write the first ``n_packets`` frames of the plan; None if the plan holds fewer."""
    misc = plan_.misc
    misc_order = np.argsort(np.asarray(misc.times, dtype=np.int64), kind="stable")
    misc_t = np.asarray(misc.times, dtype=np.int64)[misc_order]
    all_t = [misc_t] + [c.times for c in plan_.classes]
    cls_id = np.concatenate([np.full(len(x), i, dtype=np.int32) for i, x in enumerate(all_t)])
    times = np.concatenate(all_t)
    if len(times) < n_packets:
        return None
    order = np.argsort(times, kind="stable")[:n_packets]
    rec_cls = cls_id[order]
    rec_t = times[order]

    lengths = np.empty(n_packets, dtype=np.int64)
    flags = np.empty(n_packets, dtype=np.int64)
    positions: list[np.ndarray] = []
    for i in range(len(all_t)):
        pos = np.nonzero(rec_cls == i)[0]
        positions.append(pos)
        if i == 0:
            ids = misc_order[: len(pos)]
            lengths[pos] = [len(misc.data[k]) for k in ids]
            flags[pos] = [misc.flags[k] for k in ids]
        else:
            c = plan_.classes[i - 1]
            lengths[pos] = c.length
            flags[pos] = c.flags
    rec_off = np.empty(n_packets, dtype=np.int64)
    rec_off[0] = 0
    np.cumsum(24 + lengths[:-1], out=rec_off[1:])
    total = int(rec_off[-1] + 24 + lengths[-1])
    out = np.empty(total, dtype=np.uint8)

    hdr = np.empty(
        n_packets,
        dtype=[("orig", ">u4"), ("incl", ">u4"), ("flags", ">u4"), ("drops", ">u4"), ("ts", ">i8")],
    )
    hdr["orig"] = lengths
    hdr["incl"] = lengths
    hdr["flags"] = flags
    hdr["drops"] = 0
    hdr["ts"] = rec_t + START_UNIX_US + BTSNOOP_EPOCH_DELTA_US
    _scatter(out, rec_off, hdr.view(np.uint8).reshape(-1, 24))

    for i, pos in enumerate(positions):
        if i == 0:
            for k, row in zip(misc_order[: len(pos)].tolist(), pos.tolist(), strict=True):
                o = int(rec_off[row]) + 24
                data = misc.data[k]
                out[o : o + len(data)] = np.frombuffer(data, dtype=np.uint8)
            continue
        c = plan_.classes[i - 1]
        for first in range(0, len(pos), CHUNK_ROWS):
            chunk = pos[first : first + CHUNK_ROWS]
            _scatter(out, rec_off[chunk] + 24, c.build(first, len(chunk)))

    with open(out_path, "wb") as fh:
        fh.write(BTSNOOP_FILE_HEADER)
        out.tofile(fh)
    return len(BTSNOOP_FILE_HEADER) + total


def _scatter(out: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> None:
    """out[starts[i] : starts[i] + width] = rows[i] for every i, in bounded chunks."""
    width = rows.shape[1]
    cols = np.arange(width, dtype=np.int64)
    for a in range(0, len(starts), CHUNK_ROWS):
        idx = starts[a : a + CHUNK_ROWS, None] + cols
        out[idx] = rows[a : a + CHUNK_ROWS]


#: frames per second of capture while streaming: 2 per media packet (ACL + completion) + adverts
_EST_RATE = 2 * SAMPLE_RATE / (SAMPLES_PER_FRAME * sum(FRAMES_CHOICES) / len(FRAMES_CHOICES)) + 24


def generate(
    out_path: str | Path, n_packets: int = 1_000_000, *, seed: int = 1, acl_buffer: int = ACL_BUFFER
) -> int:
    """Write an ``n_packets``-frame A2DP btsnoop to ``out_path``; returns its size in bytes."""
    if n_packets < 1:
        raise ValueError("n_packets must be >= 1")
    duration = n_packets / _EST_RATE * 1.02 + 12
    while True:
        size = write(plan(n_packets, duration, seed, acl_buffer), n_packets, Path(out_path))
        if size is not None:
            return size
        duration *= 1.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.gen_a2dp_btsnoop",
        description="Write a synthetic A2DP (SBC) streaming btsnoop capture (datalink 1002).",
    )
    ap.add_argument("out", type=Path, help="output file")
    ap.add_argument("--packets", type=int, default=1_000_000, help="frames to write")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument(
        "--acl-buffer", type=int, default=ACL_BUFFER, help="controller ACL data packet length"
    )
    args = ap.parse_args(argv)
    if args.packets < 1 or not 27 <= args.acl_buffer <= 0xFFFF:
        ap.error("--packets must be >= 1 and --acl-buffer in 27..65535")
    t0 = time.perf_counter()
    size = generate(args.out, args.packets, seed=args.seed, acl_buffer=args.acl_buffer)
    dt = time.perf_counter() - t0
    print(f"wrote {args.out}: {args.packets} frames, {size / 1e6:.1f} MB in {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
