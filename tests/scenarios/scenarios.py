"""Scenario scripts: a phone (snooped) and headsets / LE advertisers running bumble's stack.

Each scenario is an ``async`` function taking a :class:`Ctx` and filling ``ctx.truth``
(ground truth for the manifest) and ``ctx.key_frames`` (frame numbers located in what the
snooper wrote). Profiles followed: GAP / SSP (Core Vol 3 Part C 5.2), SDP (Core Vol 3 Part
B), AVDTP 1.3, A2DP 1.3, RFCOMM, HFP 1.8, HSP 1.2, LE advertising (Core Vol 6 Part B 4.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bumble import a2dp, avdtp, core, hci, hfp, l2cap, rfcomm, sdp
from bumble.core import PhysicalTransport
from bumble.device import Connection, Device
from bumble.pairing import PairingConfig, PairingDelegate

from tests.scenarios import media
from tests.scenarios.controller import HCI_SETUP_SYNCHRONOUS_CONNECTION
from tests.scenarios.harness import (
    Node,
    VirtualBtSnooper,
    VirtualMediaClock,
    World,
    sleep,
    with_timeout,
)

PHONE_ADDR = "F8:8F:CA:21:7B:10"
HEADSET_ADDR = "00:1B:66:4C:A2:31"
PHONE_COD = 0x5A020C  # phone, smartphone; telephony/audio/object transfer/networking
HEADSET_COD = 0x240404  # audio/video, wearable headset; audio + rendering

AUDIO = avdtp.MediaType.AUDIO
SBC, AAC, VENDOR = a2dp.CodecType.SBC, a2dp.CodecType.MPEG_2_4_AAC, a2dp.CodecType.NON_A2DP
LDAC_VENDOR, LDAC_CODEC = 0x012D, 0x00AA

DEVICE_ID_UUID = core.UUID.from_16_bits(0x1200)
AUDIO_SINK_UUID = core.BT_AUDIO_SINK_SERVICE

#: RFCOMM server channels: HSP headset (HS) and the phone's HSP audio gateway (AG)
HSP_HS_CHANNEL = 2
HSP_AG_CHANNEL = 2
#: HCI Setup Synchronous Connection (7.1.26) for SCO HV3 with CVSD (HFP 1.8 Table 5.8 D1,
#: HSP 1.2 4.5): tx/rx bandwidth 8000 B/s, max latency "don't care", voice setting 0x0060
#: (linear 16-bit 2's complement input, CVSD air coding), retransmission "don't care",
#: packet type HV3 with the four EDR "shall not be used" bits set.
SCO_HV3_BANDWIDTH = 8000
SCO_HV3_VOICE_SETTING = 0x0060
SCO_HV3_PACKET_TYPE = 0x0004 | 0x03C0


# -----------------------------------------------------------------------------------------
# Codec capabilities / configurations (A2DP 1.3 4.3.2, 4.5.2, 4.7.2)
# -----------------------------------------------------------------------------------------
def sbc_caps() -> avdtp.MediaCodecCapabilities:
    i = a2dp.SbcMediaCodecInformation
    return avdtp.MediaCodecCapabilities(
        media_type=AUDIO,
        media_codec_type=SBC,
        media_codec_information=i(
            sampling_frequency=i.SamplingFrequency.SF_44100 | i.SamplingFrequency.SF_48000,
            channel_mode=i.ChannelMode.JOINT_STEREO | i.ChannelMode.STEREO | i.ChannelMode.MONO,
            block_length=i.BlockLength.BL_16 | i.BlockLength.BL_12 | i.BlockLength.BL_8,
            subbands=i.Subbands.S_8 | i.Subbands.S_4,
            allocation_method=i.AllocationMethod.LOUDNESS | i.AllocationMethod.SNR,
            minimum_bitpool_value=2,
            maximum_bitpool_value=53,
        ),
    )


def sbc_config() -> avdtp.MediaCodecCapabilities:
    i = a2dp.SbcMediaCodecInformation
    return avdtp.MediaCodecCapabilities(
        media_type=AUDIO,
        media_codec_type=SBC,
        media_codec_information=i(
            sampling_frequency=i.SamplingFrequency.SF_44100,
            channel_mode=i.ChannelMode.JOINT_STEREO,
            block_length=i.BlockLength.BL_16,
            subbands=i.Subbands.S_8,
            allocation_method=i.AllocationMethod.LOUDNESS,
            minimum_bitpool_value=2,
            maximum_bitpool_value=53,
        ),
    )


def aac_caps(config: bool = False) -> avdtp.MediaCodecCapabilities:
    i = a2dp.AacMediaCodecInformation
    freq = i.SamplingFrequency.SF_44100
    if not config:
        freq |= i.SamplingFrequency.SF_48000
    return avdtp.MediaCodecCapabilities(
        media_type=AUDIO,
        media_codec_type=AAC,
        media_codec_information=i(
            object_type=i.ObjectType.MPEG_2_AAC_LC,
            sampling_frequency=freq,
            channels=i.Channels.STEREO if config else i.Channels.STEREO | i.Channels.MONO,
            vbr=1,
            bitrate=256000 if config else 320000,
        ),
    )


def ldac_caps(config: bool = False) -> avdtp.MediaCodecCapabilities:
    # LDAC codec specific: sampling frequency bitmap, channel mode bitmap
    value = bytes([0x04, 0x01]) if config else bytes([0x3C, 0x07])
    return avdtp.MediaCodecCapabilities(
        media_type=AUDIO,
        media_codec_type=VENDOR,
        media_codec_information=a2dp.VendorSpecificMediaCodecInformation(
            vendor_id=LDAC_VENDOR, codec_id=LDAC_CODEC, value=value
        ),
    )


CODECS: dict[str, dict[str, Any]] = {
    "sbc": {"caps": sbc_caps, "config": sbc_config, "type": SBC, "packets": media.sbc_packets},
    "aac": {
        "caps": aac_caps,
        "config": lambda: aac_caps(True),
        "type": AAC,
        "packets": media.aac_packets,
    },
    "ldac": {
        "caps": ldac_caps,
        "config": lambda: ldac_caps(True),
        "type": VENDOR,
        "packets": media.vendor_packets,
    },
}


# -----------------------------------------------------------------------------------------
# Context
# -----------------------------------------------------------------------------------------
class AutoDelegate(PairingDelegate):
    """Pairing delegate that accepts and records the numeric comparison value."""

    def __init__(self, io_capability: int, log: list[int]) -> None:
        super().__init__(io_capability=io_capability)
        self.log = log

    async def compare_numbers(self, number: int, digits: int = 6) -> bool:
        self.log.append(number)
        return True

    async def confirm(self, auto: bool = False) -> bool:
        return True


@dataclass
class HeadsetBehaviour:
    """What the headset does (and which faults it injects)."""

    codecs: tuple[str, ...] = ("sbc",)
    with_a2dp: bool = True
    with_hfp: bool = True
    with_hsp: bool = False  # HSP 1.2 headset record + AT+CKPD handling
    hfp_codecs: tuple[int, ...] = (hfp.AudioCodec.CVSD, hfp.AudioCodec.MSBC)
    reject_set_config: int = 0  # AVDTP error code, 0 = accept
    delay_report: int = 1500  # 0.1 ms units (150 ms)
    device_id_version: int = 0x0100
    drop_avdtp: set[int] = field(default_factory=set)  # signal ids never answered
    late_avdtp: dict[int, float] = field(default_factory=dict)  # signal id -> delay
    drop_sdp: int = 0  # number of SDP requests silently dropped
    late_sdp: float = 0.0
    drop_l2cap_psm: set[int] = field(default_factory=set)
    late_l2cap_psm: dict[int, float] = field(default_factory=dict)


class Ctx:
    """One scenario run: world, phone (snooped), headset(s), ground truth."""

    def __init__(self, seed: int) -> None:
        self.buffer = io.BytesIO()
        self.snoop = VirtualBtSnooper(self.buffer)
        self.world = World(seed)
        self.truth: dict[str, Any] = {}
        self.key_frames: dict[str, int | list[int]] = {}
        self.faults: list[str] = []
        self.numeric_values: list[int] = []
        self.phone = self.world.add_node(
            "Pixel 9",
            PHONE_ADDR,
            snooper=self.snoop,
            class_of_device=PHONE_COD,
            lmp_version=0x0D,
            lmp_subversion=0x1A2B,
            company=0x001D,
        )
        self.headset: Node | None = None
        self.behaviour = HeadsetBehaviour()
        self.hf_protocols: list[hfp.HfProtocol] = []
        self.hs_protocols: list[HspHeadset] = []
        self.sink_events: list[str] = []

    # -- setup --------------------------------------------------------------------------
    def add_headset(
        self,
        behaviour: HeadsetBehaviour | None = None,
        *,
        name: str = "Sonic Buds Pro",
        address: str = HEADSET_ADDR,
        lmp_subversion: int = 0x0310,
        io_capability: int = PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT,
    ) -> Node:
        self.behaviour = behaviour or HeadsetBehaviour()
        node = self.world.add_node(
            name,
            address,
            class_of_device=HEADSET_COD,
            lmp_version=0x0B,
            lmp_subversion=lmp_subversion,
            company=0x000A,
        )
        node.controller.rssi = -52
        self.headset = node
        dev = node.device
        dev.pairing_config_factory = lambda _c: PairingConfig(
            sc=True, mitm=False, bonding=True, delegate=AutoDelegate(io_capability, [])
        )
        self.truth.setdefault("devices", {})[str(node.address)[:17]] = {
            "name": name,
            "role": "headset",
            "lmp_version": 0x0B,
            "lmp_subversion": lmp_subversion,
            "company_id": 0x000A,
        }
        return node

    def configure_phone(
        self, io_capability: int = PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT
    ) -> None:
        self.phone.device.pairing_config_factory = lambda _c: PairingConfig(
            sc=True,
            mitm=io_capability != PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT,
            bonding=True,
            delegate=AutoDelegate(io_capability, self.numeric_values),
        )
        self.truth.setdefault("devices", {})[PHONE_ADDR] = {
            "name": "Pixel 9",
            "role": "phone (capture point)",
            "lmp_version": 0x0D,
            "lmp_subversion": 0x1A2B,
            "company_id": 0x001D,
        }

    async def power_on(self) -> None:
        self.configure_phone(self._phone_io)
        await self.phone.device.power_on()
        if self.headset is not None:
            self._install_headset_services(self.headset)
            await self.headset.device.power_on()
            await self.headset.device.set_discoverable(True)
            await self.headset.device.set_connectable(True)

    _phone_io: int = PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT

    def _install_headset_services(self, node: Node) -> None:
        b = self.behaviour
        dev = node.device
        records: dict[int, list[sdp.ServiceAttribute]] = {}
        if b.with_a2dp:
            records[0x00010001] = a2dp.make_audio_sink_service_sdp_records(0x00010001)
            self._install_a2dp_sink(node)
        rfcomm_server = rfcomm.Server(dev) if b.with_hfp or b.with_hsp else None
        if b.with_hsp:
            assert rfcomm_server is not None
            hs_channel = rfcomm_server.listen(self._on_hs_dlc, HSP_HS_CHANNEL)
            records[0x00010004] = hsp_hs_sdp_record(0x00010004, hs_channel)
        if b.with_hfp:
            assert rfcomm_server is not None
            hf_conf = hfp.HfConfiguration(
                supported_hf_features=[
                    hfp.HfFeature.CODEC_NEGOTIATION,
                    hfp.HfFeature.CLI_PRESENTATION_CAPABILITY,
                    hfp.HfFeature.ENHANCED_CALL_STATUS,
                    hfp.HfFeature.REMOTE_VOLUME_CONTROL,
                ]
                if len(b.hfp_codecs) > 1
                else [
                    hfp.HfFeature.CLI_PRESENTATION_CAPABILITY,
                    hfp.HfFeature.ENHANCED_CALL_STATUS,
                    hfp.HfFeature.REMOTE_VOLUME_CONTROL,
                ],
                supported_hf_indicators=[hfp.HfIndicator.BATTERY_LEVEL],
                supported_audio_codecs=list(b.hfp_codecs),
            )
            channel = rfcomm_server.listen(lambda dlc: self._on_hf_dlc(dlc, hf_conf), 3)
            records[0x00010002] = hfp.make_hf_sdp_records(0x00010002, channel, hf_conf)
        records[0x00010003] = device_id_record(0x00010003, b.device_id_version)
        dev.create_l2cap_server(spec=l2cap.ClassicChannelSpec(psm=0x0017))  # AVRCP control
        dev.sdp_service_records = records
        self._install_sdp_faults(dev)
        self._install_l2cap_faults(dev)

    def _install_sdp_faults(self, dev: Device) -> None:
        b = self.behaviour
        server = dev.sdp_server
        original = server.on_pdu

        def on_pdu(pdu: bytes) -> None:
            if b.drop_sdp > 0:
                b.drop_sdp -= 1
                return
            if b.late_sdp:
                delay, b.late_sdp = b.late_sdp, 0.0
                asyncio.get_running_loop().call_later(delay, original, pdu)
                return
            original(pdu)

        server.on_pdu = on_pdu  # type: ignore[method-assign]
        send = server.send_response

        def send_response(response: Any) -> None:
            # bumble 0.0.236 writes SDP_ErrorResponse's ErrorCode little-endian; SDP fields
            # are big-endian (Core Vol 3 Part B 3.1, 4.4.1)
            if isinstance(response, sdp.SDP_ErrorResponse):
                code = int(response.error_code).to_bytes(2, "big")
                response = bytes(response)[:5] + code
            send(response)

        server.send_response = send_response  # type: ignore[method-assign]

    def _install_l2cap_faults(self, dev: Device) -> None:
        b = self.behaviour
        mgr = dev.l2cap_channel_manager
        original = mgr.on_l2cap_connection_request

        def on_request(connection: Any, cid: int, request: Any) -> None:
            if request.psm in b.drop_l2cap_psm:
                b.drop_l2cap_psm.discard(request.psm)
                return
            if request.psm in b.late_l2cap_psm:
                delay = b.late_l2cap_psm.pop(request.psm)
                asyncio.get_running_loop().call_later(delay, original, connection, cid, request)
                return
            original(connection, cid, request)

        mgr.on_l2cap_connection_request = on_request  # type: ignore[method-assign]

    def _install_a2dp_sink(self, node: Node) -> None:
        b = self.behaviour
        listener = avdtp.Listener.for_device(node.device)

        def on_avdtp_connection(protocol: avdtp.Protocol) -> None:
            for name in b.codecs:
                sink = protocol.add_sink(CODECS[name]["caps"]())
                sink.capabilities = [
                    *sink.capabilities,
                    avdtp.ServiceCapabilities(avdtp.AVDTP_DELAY_REPORTING_SERVICE_CATEGORY),
                ]
                self._wire_sink(protocol, sink)
            original = protocol.message_assembler.callback

            def on_message(label: int, message: avdtp.Message) -> None:
                sig = message.signal_identifier
                if message.message_type == avdtp.Message.MessageType.COMMAND:
                    if sig in b.drop_avdtp:
                        b.drop_avdtp.discard(sig)
                        return
                    if sig in b.late_avdtp:
                        delay = b.late_avdtp.pop(sig)
                        asyncio.get_running_loop().call_later(delay, original, label, message)
                        return
                original(label, message)

            protocol.message_assembler.callback = on_message

        listener.on(listener.EVENT_CONNECTION, on_avdtp_connection)

    def _wire_sink(self, protocol: avdtp.Protocol, sink: avdtp.LocalSink) -> None:
        b = self.behaviour

        async def reject(_configuration: Any) -> avdtp.Message | None:
            if b.reject_set_config:
                return avdtp.Set_Configuration_Reject(
                    service_category=avdtp.ServiceCategory(
                        avdtp.AVDTP_MEDIA_CODEC_SERVICE_CATEGORY
                    ),
                    error_code=avdtp.ErrorCode(b.reject_set_config),
                )
            return await avdtp.LocalStreamEndPoint.on_set_configuration_command(
                sink, _configuration
            )

        sink.on_set_configuration_command = reject  # type: ignore[method-assign]

        async def report(delay: float) -> None:
            await sleep(delay)
            stream = sink.stream
            if stream is None or not b.delay_report:
                return
            with contextlib.suppress(Exception):
                await protocol.send_command(
                    avdtp.DelayReport_Command(
                        acp_seid=stream.remote_endpoint.seid, delay=b.delay_report
                    )
                )

        def spawn(delay: float) -> None:
            asyncio.get_running_loop().create_task(report(delay))

        sink.on(sink.EVENT_CONFIGURATION, lambda: spawn(0.002))
        sink.on(sink.EVENT_START, lambda: spawn(0.120))

    def _on_hf_dlc(self, dlc: rfcomm.DLC, conf: hfp.HfConfiguration) -> None:
        hf = hfp.HfProtocol(dlc, conf)
        self.hf_protocols.append(hf)
        asyncio.get_running_loop().create_task(hf.run())

        def on_ring() -> None:
            asyncio.get_running_loop().create_task(self._answer_later(hf))

        hf.on(hf.EVENT_RING, on_ring)

    async def _answer_later(self, hf: hfp.HfProtocol) -> None:
        if getattr(hf, "_answering", False):
            return
        hf._answering = True  # type: ignore[attr-defined]
        await sleep(2.3)
        with contextlib.suppress(Exception):
            await hf.answer_incoming_call()

    def _on_hs_dlc(self, dlc: rfcomm.DLC) -> None:
        self.hs_protocols.append(HspHeadset(dlc))

    # -- procedures -----------------------------------------------------------------------
    async def discover(self, seconds: float = 4.0) -> None:
        """General inquiry (GAP 6.1) with Extended Inquiry Results."""
        await self.phone.device.start_discovery(auto_restart=False)
        await sleep(seconds)
        await self.phone.device.stop_discovery()

    async def connect(self) -> Connection:
        assert self.headset is not None
        return await self.phone.device.connect(
            self.headset.address, transport=PhysicalTransport.BR_EDR
        )

    async def secure(self, conn: Connection) -> None:
        """Authenticate (pairing or stored key) then encrypt (GAP 5.2.2)."""
        await conn.authenticate()
        await conn.encrypt()

    async def read_remote_version(self, conn: Connection) -> None:
        await self.phone.device.send_async_command(
            hci.HCI_Read_Remote_Version_Information_Command(connection_handle=conn.handle)
        )
        await sleep(0.01)

    async def sdp_query(self, conn: Connection, *, mtu: int = 0, all_records: bool = False) -> Any:
        client = sdp.Client(conn, mtu=mtu)
        await client.connect()
        try:
            if all_records:
                result = await client.search_attributes(
                    [core.UUID.from_16_bits(0x1002)], [(0x0000, 0xFFFF)]
                )
            else:
                result = await client.search_attributes(
                    [AUDIO_SINK_UUID],
                    [
                        sdp.SDP_SERVICE_RECORD_HANDLE_ATTRIBUTE_ID,
                        sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID,
                        sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID,
                    ],
                )
        finally:
            await client.disconnect()
        return result

    async def device_id_query(self, conn: Connection) -> int | None:
        client = sdp.Client(conn)
        await client.connect()
        try:
            result = await client.search_attributes([DEVICE_ID_UUID], [(0x0200, 0x0205)])
        finally:
            await client.disconnect()
        for record in result:
            for attr in record:
                if attr.id == 0x0203:
                    return int(attr.value.value)
        return None

    async def a2dp_session(
        self,
        conn: Connection,
        codec: str,
        *,
        seconds: float = 10.0,
        start: bool = True,
        stall_at: float | None = None,
        stall: float = 0.0,
    ) -> dict[str, Any]:
        """AVDTP discover, get capabilities, set configuration, open, start, stream,
        suspend, close (AVDTP 1.3 8.6-8.14)."""
        protocol = await avdtp.Protocol.connect(conn)
        await protocol.discover_remote_endpoints()
        info = CODECS[codec]
        vendor = (LDAC_VENDOR, LDAC_CODEC) if codec == "ldac" else (0, 0)
        sink = protocol.find_remote_sink_by_codec(AUDIO, info["type"], *vendor)
        assert sink is not None, f"no {codec} sink"
        # one RTP packet per 1021-byte ACL buffer (4-byte L2CAP header), as phones do
        mtu_holder: list[int] = [1017]

        def packets() -> Any:
            kwargs: dict[str, Any] = {}
            if codec == "sbc" and stall_at is not None:
                kwargs = {"stall_at": stall_at, "stall": stall}
            return info["packets"](seconds, mtu_holder[0], **kwargs)

        class LazyGen:
            def __aiter__(self) -> Any:
                return packets().__aiter__()

        pump = avdtp.MediaPacketPump(LazyGen(), VirtualMediaClock())  # type: ignore[arg-type]
        source = protocol.add_source(info["config"](), pump, delay_reporting=True)
        stream = await protocol.create_stream(source, sink)
        result: dict[str, Any] = {"codec": codec}
        if not start:
            await stream.open()
            return result
        await stream.start()
        await pump.wait_for_completion()
        await sleep(0.35)
        await stream.stop()
        await sleep(0.2)
        await stream.close()
        await sleep(0.1)
        await protocol.l2cap_channel.disconnect()
        return result

    async def hfp_ag(self, conn: Connection) -> hfp.AgProtocol:
        """Phone side (AG): RFCOMM to the HF channel found in SDP, wait for SLC (HFP 4.2)."""
        record = await hfp.find_hf_sdp_record(conn)
        assert record is not None
        channel = record[0]
        client = rfcomm.Client(conn)
        mux = await client.start()
        dlc = await mux.open_dlc(channel)
        ag_conf = hfp.AgConfiguration(
            supported_ag_features=[
                hfp.AgFeature.CODEC_NEGOTIATION,
                hfp.AgFeature.ENHANCED_CALL_STATUS,
                hfp.AgFeature.REJECT_CALL,
                hfp.AgFeature.IN_BAND_RING_TONE_CAPABILITY,
                hfp.AgFeature.THREE_WAY_CALLING,
            ],
            supported_ag_indicators=[
                hfp.AgIndicatorState.call(),
                hfp.AgIndicatorState.callsetup(),
                hfp.AgIndicatorState.callheld(),
                hfp.AgIndicatorState.service(),
                hfp.AgIndicatorState.signal(),
                hfp.AgIndicatorState.roam(),
                hfp.AgIndicatorState.battchg(),
            ],
            supported_hf_indicators=[hfp.HfIndicator.BATTERY_LEVEL],
            supported_ag_call_hold_operations=[],
            supported_audio_codecs=[hfp.AudioCodec.CVSD, hfp.AudioCodec.MSBC],
        )
        ag = hfp.AgProtocol(dlc, ag_conf)
        done = asyncio.get_running_loop().create_future()
        ag.once(ag.EVENT_SLC_COMPLETE, lambda: done.set_result(None))
        await with_timeout(done, 10.0)
        for _ in range(100):  # the HF finishes its side of the SLC (HFP 4.2.1.6)
            if self.hf_protocols and getattr(self.hf_protocols[-1], "_slc_initialized", False):
                break
            await sleep(0.05)
        return ag

    async def hsp_ag(self, conn: Connection) -> tuple[HspAudioGateway, rfcomm.Client]:
        """Phone side of HSP 1.2: SDP for the Headset service (0x1108), RFCOMM to its
        channel (HSP 1.2 4.2, AG-initiated connection for an incoming call)."""
        client = sdp.Client(conn)
        await client.connect()
        try:
            records = await client.search_attributes(
                [core.BT_HEADSET_SERVICE],
                [
                    sdp.SDP_SERVICE_CLASS_ID_LIST_ATTRIBUTE_ID,
                    sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID,
                    sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID,
                    0x0302,
                ],
            )
        finally:
            await client.disconnect()
        channel = rfcomm_channel_of(records)
        assert channel is not None, "no HSP record"
        rf = rfcomm.Client(conn)
        mux = await rf.start()
        dlc = await mux.open_dlc(channel)
        ag = HspAudioGateway(dlc)
        for _ in range(100):
            if self.hs_protocols:
                break
            await sleep(0.01)
        return ag, rf

    async def incoming_call(
        self, conn: Connection, ag: hfp.AgProtocol, *, msbc: bool, talk: float = 6.0
    ) -> None:
        """Incoming call: +CIEV callsetup=1, RING, ATA, +CIEV call=1, codec connection and
        eSCO (HFP 4.13.1, 4.11.3), voice, hang-up."""
        answered = asyncio.get_running_loop().create_future()
        ag.once(ag.EVENT_ANSWER, lambda: answered.done() or answered.set_result(None))
        ag.update_ag_indicator(hfp.AgIndicator.CALL_SETUP, 1)
        for _ in range(3):
            ag.send_ring()
            if await with_timeout(asyncio.shield(answered), 1.0) is not None or answered.done():
                break
        await answered
        ag.update_ag_indicator(hfp.AgIndicator.CALL, 1)
        ag.update_ag_indicator(hfp.AgIndicator.CALL_SETUP, 0)
        await self.hfp_audio(conn, ag, msbc=msbc, seconds=talk)
        ag.update_ag_indicator(hfp.AgIndicator.CALL, 0)
        await sleep(0.5)

    async def hfp_audio(
        self, conn: Connection, ag: hfp.AgProtocol, *, msbc: bool, seconds: float
    ) -> int:
        """AG-initiated audio connection: codec connection (+BCS / AT+BCS, HFP 1.8 4.11.3),
        eSCO via Enhanced Setup Synchronous Connection (T2 for mSBC, S4 for CVSD, HFP 1.8
        5.7), voice both ways, SCO release (4.12). Nothing here says whether a call exists."""
        codec = hfp.AudioCodec.MSBC if msbc else hfp.AudioCodec.CVSD
        if ag.supports_hf_feature(hfp.HfFeature.CODEC_NEGOTIATION):
            await ag.negotiate_codec(codec)
        params = hfp.ESCO_PARAMETERS[
            hfp.DefaultCodecParameters.ESCO_MSBC_T2
            if msbc
            else hfp.DefaultCodecParameters.ESCO_CVSD_S4
        ]
        sco = await self.open_sco(
            conn,
            hci.HCI_Enhanced_Setup_Synchronous_Connection_Command(
                connection_handle=conn.handle, **params.asdict()
            ),
        )
        await self.voice(sco, seconds, msbc=msbc)
        await self.close_sco(sco)
        return sco

    async def open_sco(self, conn: Connection, command: hci.HCI_Command) -> int:
        """Send a (Enhanced) Setup Synchronous Connection command; the headset accepts with
        the matching (legacy or enhanced) Accept command. Returns the phone's SCO handle once
        both sides have their Synchronous Connection Complete (7.7.35)."""
        assert self.headset is not None
        hs_dev = self.headset.device
        loop = asyncio.get_running_loop()

        def on_sco_request(connection: Connection, link_type: int) -> None:
            async def accept() -> None:
                await hs_dev.send_async_command(
                    hci.HCI_Enhanced_Accept_Synchronous_Connection_Request_Command(
                        bd_addr=connection.peer_address,
                        **hfp.ESCO_PARAMETERS[hfp.DefaultCodecParameters.ESCO_CVSD_S4].asdict(),
                    )
                    if link_type == hci.HCI_Connection_Complete_Event.LinkType.ESCO
                    else hci.HCI_Accept_Synchronous_Connection_Request_Command(
                        bd_addr=connection.peer_address,
                        transmit_bandwidth=SCO_HV3_BANDWIDTH,
                        receive_bandwidth=SCO_HV3_BANDWIDTH,
                        max_latency=0xFFFF,
                        voice_setting=SCO_HV3_VOICE_SETTING,
                        retransmission_effort=0xFF,
                        packet_type=SCO_HV3_PACKET_TYPE,
                    )
                )

            tasks.append(loop.create_task(accept()))

        tasks: list[asyncio.Task[None]] = []
        hs_dev.once(hs_dev.EVENT_SCO_REQUEST, on_sco_request)
        fut: asyncio.Future[int] = loop.create_future()
        hs_fut: asyncio.Future[int] = loop.create_future()

        def on_sco(addr: Any, handle: int, *args: Any) -> None:
            if not fut.done():
                fut.set_result(handle)

        def on_hs_sco(addr: Any, handle: int, *args: Any) -> None:
            if not hs_fut.done():
                hs_fut.set_result(handle)

        self.phone.device.host.once("sco_connection", on_sco)
        hs_dev.host.once("sco_connection", on_hs_sco)
        self.phone.device.host.send_hci_packet(command)
        handle = await fut
        await hs_fut  # the headset's host knows its SCO handle before voice flows back
        return handle

    async def open_sco_legacy(self, conn: Connection) -> int:
        """SCO HV3 / CVSD via the legacy Setup Synchronous Connection command (7.1.26)."""
        params = struct.pack(
            "<HIIHHBH",
            conn.handle,
            SCO_HV3_BANDWIDTH,
            SCO_HV3_BANDWIDTH,
            0xFFFF,
            SCO_HV3_VOICE_SETTING,
            0xFF,
            SCO_HV3_PACKET_TYPE,
        )
        return await self.open_sco(
            conn, hci.HCI_Command(op_code=HCI_SETUP_SYNCHRONOUS_CONNECTION, parameters=params)
        )

    async def voice(self, handle: int, seconds: float, *, msbc: bool, size: int = 60) -> None:
        """Bidirectional SCO data every 7.5 ms (eSCO Tesco=12) or 3.75 ms (HV3)."""
        assert self.headset is not None
        hs_host = self.headset.device.host
        hs_handle = next(iter(hs_host.sco_links), None)
        period = 0.0075 if size == 60 else 0.00375
        n = int(seconds / period)
        for i in range(n):
            data = media.msbc_packet(i) if msbc else media.cvsd_packet(i, size)
            self.phone.device.host.send_sco_sdu(handle, data)
            if hs_handle is not None:
                hs_host.send_sco_sdu(hs_handle, data)
            await sleep(period)

    async def close_sco(self, handle: int) -> None:
        await self.phone.device.send_async_command(
            hci.HCI_Disconnect_Command(connection_handle=handle, reason=0x13)
        )
        await sleep(0.05)

    # -- ground truth helpers --------------------------------------------------------------
    def frame(self, name: str, frames: list[int], index: int = 0) -> int:
        assert frames, f"key frame {name!r} not found"
        self.key_frames[name] = frames[index]
        return frames[index]

    def avdtp_frames(self, signal: int, msg_type: int | None = None) -> list[int]:
        """ACL frames on an AVDTP channel carrying signalling message ``signal`` (AVDTP 8.4)."""
        chans = self._avdtp_channels()

        def pred(r: Any) -> bool:
            p = r.packet
            if p[0] != 0x02 or len(p) < 11 or (p[2] >> 4) & 0x3 not in (0, 2):
                return False
            if (r.direction, int.from_bytes(p[7:9], "little")) not in chans:
                return False
            payload = p[9:]
            if (payload[0] >> 2) & 3 != 0:
                return False
            if msg_type is not None and payload[0] & 3 != msg_type:
                return False
            return payload[1] & 0x3F == signal

        return self.snoop.find(pred)

    def _avdtp_channels(self) -> set[tuple[int, int]]:
        """(direction, destination CID) of every L2CAP channel on the AVDTP PSM (0x0019)."""
        chans: set[tuple[int, int]] = set()
        pending: dict[tuple[int, int], int] = {}
        for r in self.snoop.records:
            p = r.packet
            if p[0] != 0x02 or len(p) < 13 or int.from_bytes(p[7:9], "little") != 0x0001:
                continue
            code, data = p[9], p[13:]
            if code == 0x02 and len(data) >= 4:  # Connection Request: PSM, source CID
                psm, scid = struct.unpack_from("<HH", data)
                pending[(r.direction, scid)] = psm
            elif code == 0x03 and len(data) >= 6:  # Connection Response: DCID, SCID, result
                dcid, scid, result = struct.unpack_from("<HHH", data)
                if result == 0 and pending.get((1 - r.direction, scid)) == avdtp.AVDTP_PSM:
                    chans |= {(r.direction, scid), (1 - r.direction, dcid)}
        return chans


def device_id_record(handle: int, version: int) -> list[sdp.ServiceAttribute]:
    """Device ID profile 1.3 record (service class 0x1200)."""
    de = sdp.DataElement
    return [
        sdp.ServiceAttribute(0x0000, de.unsigned_integer_32(handle)),
        sdp.ServiceAttribute(0x0001, de.sequence([de.uuid(DEVICE_ID_UUID)])),
        sdp.ServiceAttribute(0x0005, de.sequence([de.uuid(sdp.SDP_PUBLIC_BROWSE_ROOT)])),
        sdp.ServiceAttribute(0x0200, de.unsigned_integer_16(0x0103)),
        sdp.ServiceAttribute(0x0201, de.unsigned_integer_16(0x000A)),
        sdp.ServiceAttribute(0x0202, de.unsigned_integer_16(0x4D21)),
        sdp.ServiceAttribute(0x0203, de.unsigned_integer_16(version)),
        sdp.ServiceAttribute(0x0204, de.boolean(True)),
        sdp.ServiceAttribute(0x0205, de.unsigned_integer_16(0x0001)),
    ]


def _rfcomm_protocol_list(channel: int) -> sdp.DataElement:
    de = sdp.DataElement
    return de.sequence(
        [
            de.sequence([de.uuid(core.BT_L2CAP_PROTOCOL_ID)]),
            de.sequence([de.uuid(core.BT_RFCOMM_PROTOCOL_ID), de.unsigned_integer_8(channel)]),
        ]
    )


def hsp_hs_sdp_record(handle: int, channel: int) -> list[sdp.ServiceAttribute]:
    """HSP 1.2 headset record (HSP 1.2 5.3, Table 5.1): service classes Headset-HS
    0x1131, Headset 0x1108, Generic Audio 0x1203; profile Headset 0x1108 v1.2; remote audio
    volume control."""
    de = sdp.DataElement
    return [
        sdp.ServiceAttribute(0x0000, de.unsigned_integer_32(handle)),
        sdp.ServiceAttribute(
            0x0001,
            de.sequence(
                [
                    de.uuid(core.BT_HEADSET_HS_SERVICE),
                    de.uuid(core.BT_HEADSET_SERVICE),
                    de.uuid(core.BT_GENERIC_AUDIO_SERVICE),
                ]
            ),
        ),
        sdp.ServiceAttribute(0x0004, _rfcomm_protocol_list(channel)),
        sdp.ServiceAttribute(0x0005, de.sequence([de.uuid(sdp.SDP_PUBLIC_BROWSE_ROOT)])),
        sdp.ServiceAttribute(
            0x0009,
            de.sequence(
                [de.sequence([de.uuid(core.BT_HEADSET_SERVICE), de.unsigned_integer_16(0x0102)])]
            ),
        ),
        sdp.ServiceAttribute(0x0100, de.text_string(b"Headset")),
        sdp.ServiceAttribute(0x0302, de.boolean(True)),
    ]


def hsp_ag_sdp_record(handle: int, channel: int) -> list[sdp.ServiceAttribute]:
    """HSP 1.2 audio gateway record (HSP 1.2 5.4, Table 5.2): service classes Headset
    Audio Gateway 0x1112, Generic Audio 0x1203; profile Headset 0x1108 v1.2."""
    de = sdp.DataElement
    return [
        sdp.ServiceAttribute(0x0000, de.unsigned_integer_32(handle)),
        sdp.ServiceAttribute(
            0x0001,
            de.sequence(
                [
                    de.uuid(core.BT_HEADSET_AUDIO_GATEWAY_SERVICE),
                    de.uuid(core.BT_GENERIC_AUDIO_SERVICE),
                ]
            ),
        ),
        sdp.ServiceAttribute(0x0004, _rfcomm_protocol_list(channel)),
        sdp.ServiceAttribute(0x0005, de.sequence([de.uuid(sdp.SDP_PUBLIC_BROWSE_ROOT)])),
        sdp.ServiceAttribute(
            0x0009,
            de.sequence(
                [de.sequence([de.uuid(core.BT_HEADSET_SERVICE), de.unsigned_integer_16(0x0102)])]
            ),
        ),
        sdp.ServiceAttribute(0x0100, de.text_string(b"Voice Gateway")),
    ]


def rfcomm_channel_of(records: Any) -> int | None:
    """RFCOMM server channel from SDP ProtocolDescriptorList attributes (Vol 3 Part B 5.1.5)."""
    for record in records:
        for attr in record:
            if attr.id == sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID:
                for proto in attr.value.value:
                    items = proto.value
                    if len(items) > 1 and items[0].value == core.BT_RFCOMM_PROTOCOL_ID:
                        return int(items[1].value)
    return None


class _AtLink:
    """Line-oriented AT transport over an RFCOMM DLC (commands end in CR, responses are
    wrapped in CR LF, V.250 5.2 / HSP 1.2 4.8)."""

    def __init__(self, dlc: rfcomm.DLC) -> None:
        self.dlc = dlc
        self.buffer = ""
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        dlc.sink = self._feed

    def _feed(self, data: bytes) -> None:
        self.buffer += data.decode("ascii", errors="replace")
        while (cut := self.buffer.find("\r")) >= 0:
            line, self.buffer = self.buffer[:cut].strip(), self.buffer[cut + 1 :]
            if line:
                self.on_line(line)

    def on_line(self, line: str) -> None:
        self.lines.put_nowait(line)


class HspHeadset(_AtLink):
    """HSP 1.2 headset (HS) side: volume reports, the button press AT+CKPD=200 (HSP 4.2-4.4)."""

    def __init__(self, dlc: rfcomm.DLC) -> None:
        super().__init__(dlc)
        self.rings = 0
        self.ring = asyncio.Event()

    def on_line(self, line: str) -> None:
        if line == "RING":
            self.rings += 1
            self.ring.set()
            return
        super().on_line(line)

    async def command(self, text: str) -> str:
        self.dlc.write(text + "\r")
        return await self.lines.get()

    async def press_button(self) -> str:
        return await self.command("AT+CKPD=200")


class HspAudioGateway(_AtLink):
    """HSP 1.2 audio gateway (AG) side: answers every command with OK, counts button presses."""

    def __init__(self, dlc: rfcomm.DLC) -> None:
        super().__init__(dlc)
        self.button = asyncio.Event()

    def on_line(self, line: str) -> None:
        if line.upper().startswith("AT+CKPD"):
            self.button.set()
        self.dlc.write("\r\nOK\r\n")
        super().on_line(line)

    def send_ring(self) -> None:
        self.dlc.write("\r\nRING\r\n")


# -----------------------------------------------------------------------------------------
# Registry
# -----------------------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    description: str
    seed: int
    run: Callable[[Ctx], Awaitable[None]]
    expected_findings: list[str] = field(default_factory=list)
    group: str = "clean"


SCENARIOS: list[Scenario] = []


def scenario(
    name: str, description: str, seed: int, expected: list[str] | None = None, group: str = "clean"
) -> Callable[[Callable[[Ctx], Awaitable[None]]], Callable[[Ctx], Awaitable[None]]]:
    def wrap(fn: Callable[[Ctx], Awaitable[None]]) -> Callable[[Ctx], Awaitable[None]]:
        SCENARIOS.append(Scenario(name, description, seed, fn, expected or [], group))
        return fn

    return wrap


_ = l2cap  # re-exported for scenario modules
