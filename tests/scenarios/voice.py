"""Voice scenarios: HFP calls over eSCO (mSBC, CVSD), an HSP 1.2 call over SCO (HV3, CVSD),
and A2DP streaming interrupted by a call (the negative control for ``a2dp_fallback_hfp``)."""

from __future__ import annotations

import asyncio
from typing import Any

from bumble import avdtp, core, hfp, rfcomm, sdp

from tests.scenarios import media
from tests.scenarios.clean import EVT_DISCONNECTION_COMPLETE, pair_and_encrypt
from tests.scenarios.harness import VirtualMediaClock, sleep, with_timeout
from tests.scenarios.scenarios import (
    AUDIO,
    CODECS,
    HSP_AG_CHANNEL,
    HSP_HS_CHANNEL,
    SCO_HV3_VOICE_SETTING,
    Ctx,
    HeadsetBehaviour,
    hsp_ag_sdp_record,
    rfcomm_channel_of,
    sbc_config,
    scenario,
)

EVT_SYNC_CONNECTION_COMPLETE = 0x2C


def hfp_call(name: str, seed: int, msbc: bool) -> None:
    codec = "mSBC" if msbc else "CVSD"

    async def run(ctx: Ctx) -> None:
        codecs = (hfp.AudioCodec.CVSD, hfp.AudioCodec.MSBC) if msbc else (hfp.AudioCodec.CVSD,)
        ctx.add_headset(HeadsetBehaviour(codecs=("sbc",), hfp_codecs=codecs))
        await ctx.power_on()
        conn = await pair_and_encrypt(ctx)
        ag = await ctx.hfp_ag(conn)
        await sleep(1.0)
        await ctx.incoming_call(conn, ag, msbc=msbc, talk=8.0)
        await sleep(1.0)
        await conn.disconnect()
        await sleep(0.5)
        s = ctx.snoop
        ctx.frame("at_ring", s.l2cap_frames(lambda cid, p: b"RING" in p))
        ctx.frame("at_ata", s.l2cap_frames(lambda cid, p: b"ATA" in p))
        if msbc:
            ctx.frame("at_bcs_2", s.l2cap_frames(lambda cid, p: b"+BCS: 2" in p or b"+BCS:2" in p))
        ctx.frame("sco_connection_complete", s.events(EVT_SYNC_CONNECTION_COMPLETE, 0))
        ctx.frame("sco_disconnection_complete", s.events(EVT_DISCONNECTION_COMPLETE, 0), 0)
        ctx.truth["hfp"] = {
            "codec": codec,
            "link": "eSCO",
            "air_mode": 0x03 if msbc else 0x02,
            "transmission_interval_slots": 12,
            "packet_length": 60,
        }

    scenario(
        name,
        "Pairing, HFP service level connection (phone = AG), incoming call (+CIEV "
        "callsetup, RING, ATA, +CIEV call), "
        + ("codec negotiation +BCS: 2, " if msbc else "no codec negotiation, ")
        + f"eSCO with {codec} ({'transparent' if msbc else 'CVSD'} air mode), 8 s of voice, "
        "hang-up.",
        seed,
        [],
        "voice",
    )(run)


hfp_call("hfp_call_msbc", 301, True)
hfp_call("hfp_call_cvsd", 302, False)


OP_SETUP_SYNC = 0x0428
AVDTP_CMD = 0


@scenario(
    "hsp_call_sco",
    "HSP 1.2 mono headset (no HFP, no A2DP): pairing; the headset reads the phone's Headset "
    "Audio Gateway record (0x1112), the phone reads the headset's Headset record (0x1108) and "
    "opens RFCOMM; the headset reports its volumes (AT+VGS, AT+VGM); incoming call: RING, the "
    "button press AT+CKPD=200, OK, legacy Setup Synchronous Connection (SCO, HV3, CVSD air "
    "mode), 6 s of voice both ways, a second AT+CKPD=200 hangs up, SCO and RFCOMM released, "
    "disconnect.",
    303,
    [],
    "voice",
)
async def hsp_call_sco(ctx: Ctx) -> None:
    ctx.add_headset(
        HeadsetBehaviour(with_a2dp=False, with_hfp=False, with_hsp=True),
        name="Voyager Mono 510",
    )
    phone = ctx.phone.device
    rfcomm.Server(phone).listen(lambda dlc: None, HSP_AG_CHANNEL)
    phone.sdp_service_records = {0x00010001: hsp_ag_sdp_record(0x00010001, HSP_AG_CHANNEL)}
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    # the headset looks up the AG record it would reconnect to (HSP 1.2 5.4)
    assert ctx.headset is not None
    hs_conn = next(iter(ctx.headset.device.connections.values()))
    client = sdp.Client(hs_conn)
    await client.connect()
    ag_records = await client.search_attributes(
        [core.BT_HEADSET_AUDIO_GATEWAY_SERVICE],
        [
            sdp.SDP_SERVICE_CLASS_ID_LIST_ATTRIBUTE_ID,
            sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID,
            sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID,
        ],
    )
    await client.disconnect()
    assert rfcomm_channel_of(ag_records) == HSP_AG_CHANNEL
    await sleep(0.5)
    # incoming call: the AG connects RFCOMM, rings, the user presses the button
    ag, rf = await ctx.hsp_ag(conn)
    hs = ctx.hs_protocols[-1]
    assert await hs.command("AT+VGS=9") == "OK"
    assert await hs.command("AT+VGM=8") == "OK"
    await sleep(0.8)

    async def answer() -> None:
        await hs.ring.wait()
        await sleep(2.2)
        assert await hs.press_button() == "OK"

    answering = asyncio.get_running_loop().create_task(answer())
    for _ in range(5):
        ag.send_ring()
        if await with_timeout(asyncio.shield(ag.button.wait()), 1.0) is not None:
            break
    await answering
    sco = await ctx.open_sco_legacy(conn)
    await ctx.voice(sco, 6.0, msbc=False, size=30)
    ag.button.clear()
    assert await hs.press_button() == "OK"  # HSP 1.2 4.4: the headset ends the call
    await ctx.close_sco(sco)
    await sleep(0.2)
    await ag.dlc.disconnect()
    await rf.shutdown()
    await sleep(0.5)
    await conn.disconnect()
    await sleep(0.5)
    s = ctx.snoop
    ctx.frame("at_ring", s.l2cap_frames(lambda cid, p: b"RING" in p))
    ckpd = s.l2cap_frames(lambda cid, p: b"AT+CKPD=200" in p)
    ctx.frame("at_ckpd_answer", ckpd, 0)
    ctx.frame("at_ckpd_hangup", ckpd, -1)
    ctx.frame("sco_setup_legacy", s.commands(OP_SETUP_SYNC))
    ctx.frame("sco_connection_complete", s.events(EVT_SYNC_CONNECTION_COMPLETE, 0))
    sco_done = s.events(EVT_DISCONNECTION_COMPLETE, 0)
    ctx.frame("sco_disconnection_complete", sco_done, 0)
    ctx.frame("disconnection_complete", sco_done, -1)
    ctx.truth["hsp"] = {
        "profile_version": "1.2",
        "rfcomm_channel_headset": HSP_HS_CHANNEL,
        "rfcomm_channel_ag": HSP_AG_CHANNEL,
        "link": "SCO",
        "packet_type": "HV3",
        "air_mode": 0x02,
        "voice_setting": SCO_HV3_VOICE_SETTING,
        "transmission_interval_slots": 6,
        "packet_length": 30,
        "voice_seconds": 6.0,
    }


@scenario(
    "a2dp_then_call_clean",
    "Pairing, SDP, HFP service level connection, A2DP SBC streaming for 4 s; an incoming "
    "call: the phone suspends the stream (AVDTP SUSPEND), +CIEV callsetup, RING, ATA, +BCS: 2, "
    "eSCO with mSBC for 6 s, hang-up; the phone starts the A2DP stream again (START) for 3 s, "
    "then suspend, close, disconnect.",
    304,
    [],
    "voice",
)
async def a2dp_then_call_clean(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    await ctx.sdp_query(conn)
    ag = await ctx.hfp_ag(conn)
    await sleep(0.5)
    protocol = await avdtp.Protocol.connect(conn)
    await protocol.discover_remote_endpoints()
    sink = protocol.find_remote_sink_by_codec(AUDIO, CODECS["sbc"]["type"])
    assert sink is not None
    sbc = media.SbcStream(1017)  # one RTP packet per 1021-byte ACL buffer
    durations = [4.0, 3.0]

    class Segments:
        def __aiter__(self) -> Any:
            return sbc.segment(durations.pop(0)).__aiter__()

    pump = avdtp.MediaPacketPump(Segments(), VirtualMediaClock())  # type: ignore[arg-type]
    source = protocol.add_source(sbc_config(), pump, delay_reporting=True)
    stream = await protocol.create_stream(source, sink)
    await stream.start()
    await pump.wait_for_completion()
    await sleep(0.3)
    await stream.stop()  # AVDTP SUSPEND for the incoming call
    await sleep(0.3)
    await ctx.incoming_call(conn, ag, msbc=True, talk=6.0)
    pump.completed.clear()
    await stream.start()  # call over: music resumes
    await pump.wait_for_completion()
    await sleep(0.35)
    await stream.stop()
    await sleep(0.2)
    await stream.close()
    await sleep(0.1)
    await protocol.l2cap_channel.disconnect()
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)
    s = ctx.snoop
    starts = ctx.avdtp_frames(avdtp.AVDTP_START, AVDTP_CMD)
    suspends = ctx.avdtp_frames(avdtp.AVDTP_SUSPEND, AVDTP_CMD)
    assert len(starts) == 2 and len(suspends) == 2, (starts, suspends)
    ctx.frame("avdtp_start", starts, 0)
    ctx.frame("avdtp_suspend", suspends, 0)
    ctx.frame("at_ring", s.l2cap_frames(lambda cid, p: b"RING" in p))
    ctx.frame("at_ata", s.l2cap_frames(lambda cid, p: b"ATA" in p))
    ctx.frame("at_bcs_2", s.l2cap_frames(lambda cid, p: b"+BCS: 2" in p))
    ctx.frame("sco_connection_complete", s.events(EVT_SYNC_CONNECTION_COMPLETE, 0))
    ctx.frame("sco_disconnection_complete", s.events(EVT_DISCONNECTION_COMPLETE, 0), 0)
    ctx.frame("avdtp_start_resume", starts, 1)
    ctx.frame("avdtp_suspend_last", suspends, 1)
    ctx.frame("avdtp_close", ctx.avdtp_frames(avdtp.AVDTP_CLOSE, AVDTP_CMD))
    ctx.truth["a2dp"] = {"codec": "sbc", "stream_seconds": [4.0, 3.0]}
    ctx.truth["hfp"] = {
        "codec": "mSBC",
        "link": "eSCO",
        "air_mode": 0x03,
        "transmission_interval_slots": 12,
        "packet_length": 60,
        "call": True,
    }
