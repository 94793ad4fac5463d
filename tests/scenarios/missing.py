"""Scenarios for the failures issue 14 added rules for: an HFP service level connection refused,
an RFCOMM channel refused, a serial-port peer that never answers, an SMP Security Request the
phone refuses, an LE connect the phone gives up on, and an LE-only device paged over BR/EDR.

References: HFP 1.9 §4.2.1 (SLC), §4.34.1 (AT+BRSF); RFCOMM 1.2 §5.1 / TS 07.10 §5.4.6.3.1
(DM answering PN/SABM); SPP 1.2 §3 (serial port record); Core v5.4 Vol 3 Part H §3.6.7
(Security Request), §3.5.5 (Pairing Failed); Vol 4 Part E §7.8.12-13 (LE Create Connection /
Cancel), §7.1.5 (Create Connection, page timeout).
"""

from __future__ import annotations

import asyncio
import contextlib

from bumble import core, data_types, hci, hfp, rfcomm, sdp, smp
from bumble.core import BT_LE_TRANSPORT, AdvertisingData, PhysicalTransport

from tests.scenarios.clean import pair_and_encrypt
from tests.scenarios.faults import bond_silently
from tests.scenarios.harness import sleep, with_timeout
from tests.scenarios.scenarios import (
    HEADSET_ADDR,
    PHONE_ADDR,
    Ctx,
    HeadsetBehaviour,
    _rfcomm_protocol_list,
    scenario,
)

OBD_ADDR = "00:1D:A5:68:98:8B"
TAG_ADDR = "C4:7C:8D:6A:40:01"
SPP_CHANNEL = 1
HF_CHANNEL = 3


def _rfcomm_frames(ctx: Ctx, frame_type: int, dlci: int | None = None) -> list[int]:
    """Frames of the snooped RFCOMM frames of one type (TS 07.10 §5.2.1.3, P/F bit masked)."""

    def match(cid: int, p: bytes) -> bool:
        if cid < 0x40 or len(p) < 3:
            return False
        return (p[1] & 0xEF) == frame_type and (dlci is None or p[0] >> 2 == dlci)

    return ctx.snoop.l2cap_frames(match)


def spp_sdp_record(handle: int, channel: int) -> list[sdp.ServiceAttribute]:
    """SPP 1.2 §6.1 record: service class Serial Port 0x1101 on an RFCOMM channel."""
    de = sdp.DataElement
    serial_port = core.UUID.from_16_bits(0x1101, "Serial Port")
    return [
        sdp.ServiceAttribute(0x0000, de.unsigned_integer_32(handle)),
        sdp.ServiceAttribute(0x0001, de.sequence([de.uuid(serial_port)])),
        sdp.ServiceAttribute(0x0004, _rfcomm_protocol_list(channel)),
        sdp.ServiceAttribute(0x0005, de.sequence([de.uuid(sdp.SDP_PUBLIC_BROWSE_ROOT)])),
        sdp.ServiceAttribute(
            0x0009,
            de.sequence([de.sequence([de.uuid(serial_port), de.unsigned_integer_16(0x0102)])]),
        ),
        sdp.ServiceAttribute(0x0100, de.text_string(b"SPP")),
    ]


class BrsfRefusingAg(hfp.AgProtocol):
    """An audio gateway that answers AT+BRSF with ERROR (a parser that rejects the value)."""

    def _on_brsf(self, hf_features: bytes) -> None:
        self.send_error()


@scenario(
    "hfp_slc_brsf_error",
    "The phone pairs, finds the headset's Hands-Free record and opens its RFCOMM channel as "
    "audio gateway; it answers the headset's AT+BRSF with ERROR, so the service level "
    "connection never comes up. 12 s later the phone closes the link.",
    921,
    ["hfp_slc_failed"],
    "faults",
)
async def hfp_slc_brsf_error(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",), with_a2dp=False))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    record = await hfp.find_hf_sdp_record(conn)
    assert record is not None
    mux = await rfcomm.Client(conn).start()
    dlc = await mux.open_dlc(record[0])
    ag_conf = hfp.AgConfiguration(
        supported_ag_features=[hfp.AgFeature.ENHANCED_CALL_STATUS],
        supported_ag_indicators=[hfp.AgIndicatorState.call(), hfp.AgIndicatorState.callsetup()],
        supported_hf_indicators=[],
        supported_ag_call_hold_operations=[],
        supported_audio_codecs=[hfp.AudioCodec.CVSD],
    )
    BrsfRefusingAg(dlc, ag_conf)
    ctx.faults.append("the audio gateway answers AT+BRSF with ERROR")
    await sleep(12.0)
    await conn.disconnect()
    await sleep(0.5)
    ctx.frame("at_brsf_error", ctx.snoop.l2cap_frames(lambda cid, p: b"ERROR" in p))


@scenario(
    "rfcomm_refused_hfp",
    "The headset's SDP record names Hands-Free on RFCOMM channel 3, but its RFCOMM server no "
    "longer serves that channel (a stale record): the phone's DLC negotiation is answered with "
    "DM. The phone disconnects a few seconds later.",
    922,
    ["rfcomm_refused"],
    "faults",
)
async def rfcomm_refused_hfp(ctx: Ctx) -> None:
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",), with_a2dp=False, with_hfp=False))
    await ctx.power_on()
    dev = hs.device
    rfcomm.Server(dev)  # the multiplexer answers, but no channel is registered
    conf = hfp.HfConfiguration(
        supported_hf_features=[], supported_hf_indicators=[], supported_audio_codecs=[]
    )
    records = dict(dev.sdp_service_records)
    records[0x00010002] = hfp.make_hf_sdp_records(0x00010002, HF_CHANNEL, conf)
    dev.sdp_service_records = records
    conn = await pair_and_encrypt(ctx)
    record = await hfp.find_hf_sdp_record(conn)
    assert record is not None
    mux = await rfcomm.Client(conn).start()
    with contextlib.suppress(Exception):
        await with_timeout(mux.open_dlc(record[0]), 3.0)
    ctx.faults.append("no RFCOMM acceptor on the channel the SDP record names")
    await sleep(3.0)
    await conn.disconnect()
    await sleep(0.5)
    ctx.frame("rfcomm_dm", _rfcomm_frames(ctx, 0x0F, HF_CHANNEL * 2))


@scenario(
    "rfcomm_serial_silent",
    "The phone connects to an OBD-II serial adapter (Serial Port record, RFCOMM channel 1), "
    "opens the channel and writes ELM327 commands; the adapter's RFCOMM layer grants credits "
    "but its application never answers. After 6 s the phone closes the channel and the link.",
    923,
    ["rfcomm_no_reply"],
    "faults",
)
async def rfcomm_serial_silent(ctx: Ctx) -> None:
    hs = ctx.add_headset(
        HeadsetBehaviour(codecs=("sbc",), with_a2dp=False, with_hfp=False),
        name="OBDII",
        address=OBD_ADDR,
    )
    await ctx.power_on()
    dev = hs.device
    server = rfcomm.Server(dev)
    server.listen(lambda _dlc: None, SPP_CHANNEL)  # accepts, never writes
    records = dict(dev.sdp_service_records)
    records[0x00010005] = spp_sdp_record(0x00010005, SPP_CHANNEL)
    dev.sdp_service_records = records
    conn = await pair_and_encrypt(ctx)
    client = sdp.Client(conn)
    await client.connect()
    await client.search_attributes(  # an app's SPP connect: search by the Serial Port UUID
        [core.UUID.from_16_bits(0x1101)],
        [sdp.SDP_SERVICE_RECORD_HANDLE_ATTRIBUTE_ID, sdp.SDP_SERVICE_CLASS_ID_LIST_ATTRIBUTE_ID,
         sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID, 0x0100],
    )  # fmt: skip
    await client.disconnect()
    mux = await rfcomm.Client(conn).start()
    dlc = await mux.open_dlc(SPP_CHANNEL)
    for command in (b"ATZ\r", b"ATE0\r", b"ATL0\r", b"ATSP6\r", b"0100\r"):
        dlc.write(command)
        await sleep(0.3)
    ctx.faults.append("the serial adapter's application never answers")
    await sleep(6.0)
    await dlc.disconnect()
    await sleep(0.3)
    await mux.disconnect()
    await sleep(0.3)
    await conn.disconnect()
    await sleep(0.5)
    ctx.frame("rfcomm_disc", _rfcomm_frames(ctx, 0x43, SPP_CHANNEL * 2))


async def _tag(ctx: Ctx, *, le_only_flags: bool = True) -> object:
    node = ctx.world.add_node("Tag", TAG_ADDR, classic=False, le=True)
    await node.device.power_on()
    flags = AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE
    if le_only_flags:
        flags |= AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
    data = bytes(AdvertisingData([data_types.Flags(flags), data_types.CompleteLocalName("Tag")]))
    await node.device.start_advertising(advertising_data=data, auto_restart=False)
    return node


@scenario(
    "le_security_request_refused",
    "The phone connects to an LE tag; the tag sends an SMP Security Request and the phone "
    "answers Pairing Failed 0x05 Pairing Not Supported without pairing. The tag disconnects.",
    924,
    ["pairing_failed"],
    "faults",
)
async def le_security_request_refused(ctx: Ctx) -> None:
    ctx.configure_phone()
    phone = ctx.phone.device
    await phone.power_on()
    node = await _tag(ctx)
    await sleep(0.2)

    def refuse(connection: object, _request: object) -> None:
        phone.smp_manager.send_command(
            connection,  # type: ignore[arg-type]
            smp.SMP_Pairing_Failed_Command(reason=smp.ErrorCode.PAIRING_NOT_SUPPORTED),
        )

    phone.smp_manager.on_smp_security_request_command = refuse  # type: ignore[method-assign]
    conn = await phone.connect(node.device.random_address, transport=BT_LE_TRANSPORT)  # type: ignore[attr-defined]
    await sleep(0.5)
    tag_conn = next(iter(node.device.connections.values()))  # type: ignore[attr-defined]
    node.device.smp_manager.request_pairing(tag_conn)  # type: ignore[attr-defined]
    ctx.faults.append("the phone refuses the tag's Security Request (Pairing Not Supported)")
    await sleep(1.0)
    with contextlib.suppress(Exception):
        await tag_conn.disconnect(reason=0x05)
    await sleep(0.5)
    del conn
    ctx.frame(
        "smp_pairing_failed", ctx.snoop.l2cap_frames(lambda cid, p: cid == 6 and p[:1] == b"\x05")
    )


@scenario(
    "le_connect_cancelled",
    "The phone connects directly (LE Create Connection to one address) to a tag that is not "
    "advertising; after 30 s it gives up with LE Create Connection Cancel (Android's "
    "connectGatt timeout, GATT error 147).",
    925,
    ["connection_failed"],
    "faults",
)
async def le_connect_cancelled(ctx: Ctx) -> None:
    ctx.configure_phone()
    phone = ctx.phone.device
    await phone.power_on()
    node = ctx.world.add_node("Tag", TAG_ADDR, classic=False, le=True)
    await node.device.power_on()  # powered, but not advertising
    ctx.faults.append("the peripheral never advertises: the direct connect is cancelled")
    with contextlib.suppress(core.TimeoutError, asyncio.TimeoutError, core.ConnectionError):
        await phone.connect(TAG_ADDR, transport=BT_LE_TRANSPORT, timeout=30.0)
    await sleep(1.0)
    ctx.frame("le_create_connection_cancel", ctx.snoop.commands(0x200E))


@scenario(
    "wrong_transport_page",
    "An LE-only tag advertises (flags: BR/EDR Not Supported); the phone scans and hears it, "
    "12 s later pages its address over BR/EDR twice (an app connecting without TRANSPORT_LE): both "
    "pages end in Page Timeout.",
    926,
    ["connection_failed", "wrong_transport"],
    "faults",
)
async def wrong_transport_page(ctx: Ctx) -> None:
    ctx.configure_phone()
    phone = ctx.phone.device
    await phone.power_on()
    await _tag(ctx)
    await phone.start_scanning(active=False, filter_duplicates=False)
    await sleep(2.0)
    await phone.stop_scanning()
    await sleep(12.0)  # the user picks the device in the app
    ctx.faults.append("an LE-only device paged over BR/EDR")
    for _ in range(2):
        with contextlib.suppress(Exception):
            await phone.connect(TAG_ADDR, transport=PhysicalTransport.BR_EDR)
        await sleep(1.0)
    frames = ctx.snoop.events(0x03, 0x04)
    ctx.frame("connection_complete_page_timeout", frames, 0)
    ctx.key_frames["connection_complete_page_timeout_all"] = frames


@scenario(
    "one_sided_bond",
    "The phone and the headset were bonded; the phone lost its key (the user removed the "
    "headset there). The headset reconnects and authenticates with its stored key; the phone "
    "answers Link Key Request Negative Reply, the headset's authentication fails with PIN or "
    "Key Missing and it drops the link (Authentication Failure) instead of pairing again.",
    927,
    ["auth_key_missing"],
    "faults",
)
async def one_sided_bond(ctx: Ctx) -> None:
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await bond_silently(ctx)
    phone = ctx.phone.device
    assert phone.keystore is not None
    await phone.keystore.delete(HEADSET_ADDR + "/P")
    await phone.set_connectable(True)
    ctx.faults.append("the phone lost the link key the headset still holds")
    conn = await hs.device.connect(PHONE_ADDR, transport=PhysicalTransport.BR_EDR)
    with contextlib.suppress(Exception):
        await conn.authenticate()
    await sleep(0.3)
    with contextlib.suppress(Exception):
        await conn.disconnect(reason=hci.HCI_ErrorCode.AUTHENTICATION_FAILURE_ERROR)
    await sleep(0.5)
    s = ctx.snoop
    ctx.frame("link_key_request_negative_reply", s.commands(0x040C))
    ctx.frame("disconnection_complete", s.events(0x05, 0))


@scenario(
    "a2dp_never_connected",
    "The phone pairs with a headset that offers Audio Sink and Hands-Free, finds the Audio Sink "
    "record, connects Hands-Free (service level connection) but never opens AVDTP; after 25 s "
    "the phone disconnects. Media audio could not have played.",
    928,
    ["a2dp_not_connected"],
    "faults",
)
async def a2dp_never_connected(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    await ctx.sdp_query(conn)
    await ctx.hfp_ag(conn)
    ctx.faults.append("the phone never opens the AVDTP signalling channel")
    await sleep(25.0)
    await conn.disconnect()
    await sleep(0.5)
    ctx.frame("sdp_request", ctx.snoop.l2cap_frames(lambda cid, p: p[:1] == b"\x06"), 0)
