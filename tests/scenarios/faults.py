"""Fault scenarios: each injects one failure the rules must report."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

from bumble import avdtp, hci, hfp, l2cap
from bumble.device import Connection

from tests.scenarios.clean import (
    AVDTP_CMD,
    AVDTP_REJECT,
    EVT_AUTH_COMPLETE,
    EVT_CONNECTION_COMPLETE,
    EVT_DISCONNECTION_COMPLETE,
    OP_LINK_KEY_REQUEST_REPLY,
    mark_a2dp,
    pair_and_encrypt,
)
from tests.scenarios.harness import sleep, with_timeout
from tests.scenarios.scenarios import (
    AUDIO,
    CODECS,
    HEADSET_ADDR,
    LDAC_CODEC,
    LDAC_VENDOR,
    PHONE_ADDR,
    Ctx,
    HeadsetBehaviour,
    device_id_record,
    scenario,
)

EVT_READ_REMOTE_VERSION_COMPLETE = 0x0C
EVT_SYNC_CONNECTION_COMPLETE = 0x2C
OP_ENHANCED_SETUP_SYNC = 0x043D
AVDTP_UNSUPPORTED_CONFIGURATION = 0x29


async def bond_silently(ctx: Ctx) -> None:
    """Pair and disconnect with the snooper off: the capture starts already bonded."""
    await ctx.power_on()
    ctx.snoop.enabled = False
    conn = await pair_and_encrypt(ctx, discover=False)
    await conn.disconnect()
    await sleep(0.5)
    ctx.snoop.enabled = True
    await sleep(2.0)


async def try_secure(ctx: Ctx, conn: Connection) -> int:
    """Authenticate + encrypt; return the HCI error code (0 = success)."""
    try:
        await ctx.secure(conn)
    except hci.HCI_Error as e:
        return int(e.error_code)
    return 0


async def wipe_headset_keys(ctx: Ctx) -> None:
    assert ctx.headset is not None and ctx.headset.device.keystore is not None
    await ctx.headset.device.keystore.delete(PHONE_ADDR + "/P")


async def corrupt_headset_key(ctx: Ctx) -> None:
    assert ctx.headset is not None and ctx.headset.device.keystore is not None
    ks = ctx.headset.device.keystore
    for name, keys in await ks.get_all():
        if keys.link_key is not None:
            keys.link_key.value = bytes(reversed(keys.link_key.value))
            await ks.update(name, keys)


def stale_bond(name: str, seed: int, missing: bool) -> None:
    status = 0x06 if missing else 0x05
    what = "wiped its keys" if missing else "holds a different link key"

    async def run(ctx: Ctx) -> None:
        ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
        await bond_silently(ctx)
        if missing:
            await wipe_headset_keys(ctx)
        else:
            await corrupt_headset_key(ctx)
        conn = await ctx.connect()
        await ctx.read_remote_version(conn)
        err = await try_secure(ctx, conn)
        assert err == status, err
        await sleep(0.2)
        with contextlib.suppress(Exception):
            await conn.disconnect(reason=hci.HCI_ErrorCode.AUTHENTICATION_FAILURE_ERROR)
        await sleep(0.5)
        s = ctx.snoop
        ctx.frame("link_key_request_reply", s.commands(OP_LINK_KEY_REQUEST_REPLY))
        ctx.frame("authentication_complete_failure", s.events(EVT_AUTH_COMPLETE, status))
        ctx.frame("disconnection_complete", s.events(EVT_DISCONNECTION_COMPLETE, 0))
        ctx.faults.append(f"headset {what}; Authentication Complete status 0x{status:02X}")

    scenario(
        name,
        f"Bonded phone reconnects but the headset {what}: Link Key Request Reply, "
        f"Authentication Complete 0x{status:02X}, the phone disconnects.",
        seed,
        ["auth_key_missing"],
        "faults",
    )(run)


stale_bond("stale_bond_key_missing", 201, True)
stale_bond("stale_bond_key_mismatch", 202, False)


@scenario(
    "stale_bond_repaired",
    "Bonded phone reconnects, the headset wiped its keys: Authentication Complete 0x06. The "
    "phone drops the dead key and authenticates again on the same link: Link Key Request "
    "Negative Reply, SSP pairing, success. A recovery: the stale key is reported as recovered, "
    "the negative reply is not a second failure.",
    204,
    ["auth_key_missing"],
    "faults",
)
async def stale_bond_repaired(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await bond_silently(ctx)
    await wipe_headset_keys(ctx)
    conn = await ctx.connect()
    await ctx.read_remote_version(conn)
    err = await try_secure(ctx, conn)
    assert err == 0x06, err
    phone_keys = ctx.phone.device.keystore
    assert phone_keys is not None
    await phone_keys.delete(HEADSET_ADDR + "/P")  # the host drops the key the device refused
    await sleep(0.5)
    err = await try_secure(ctx, conn)
    assert err == 0, err
    await sleep(0.5)
    await conn.disconnect()
    await sleep(0.5)
    s = ctx.snoop
    ctx.frame("authentication_complete_failure", s.events(EVT_AUTH_COMPLETE, 0x06))
    ctx.frame("link_key_request_negative_reply", s.commands(0x040C))
    ctx.frame("authentication_complete", s.events(EVT_AUTH_COMPLETE, 0), -1)
    ctx.faults.append(
        "headset wiped its keys; Authentication Complete status 0x06; the phone re-pairs "
        "on the same link"
    )


@scenario(
    "firmware_update_stale_bond",
    "Two connections 60 s apart. The headset's firmware is updated in between: LMP "
    "subversion 0x0310 -> 0x0420, Device ID version 0x0100 -> 0x0200, and the update wiped "
    "the bond, so the second connection's authentication fails with 0x06.",
    203,
    ["firmware_changed", "auth_key_missing"],
    "faults",
)
async def firmware_update_stale_bond(ctx: Ctx) -> None:
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",), device_id_version=0x0100))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    v1 = await ctx.device_id_query(conn)
    await sleep(3.0)
    await conn.disconnect()
    await sleep(60.0)
    # firmware update
    hs.controller.lmp_subversion = 0x0420
    hs.controller.hci_revision = 0x0420
    records = dict(hs.device.sdp_service_records)
    records[0x00010003] = device_id_record(0x00010003, 0x0200)
    hs.device.sdp_service_records = records
    await wipe_headset_keys(ctx)
    conn = await ctx.connect()
    await ctx.read_remote_version(conn)
    v2 = await ctx.device_id_query(conn)
    err = await try_secure(ctx, conn)
    assert err == 0x06, err
    with contextlib.suppress(Exception):
        await conn.disconnect(reason=hci.HCI_ErrorCode.AUTHENTICATION_FAILURE_ERROR)
    await sleep(0.5)
    s = ctx.snoop
    versions = s.events(EVT_READ_REMOTE_VERSION_COMPLETE, 0)
    ctx.frame("remote_version_before", versions, 0)
    ctx.frame("remote_version_after", versions, 1)
    ctx.frame("authentication_complete_failure", s.events(EVT_AUTH_COMPLETE, 0x06))
    ctx.truth["firmware"] = {
        "lmp_subversion_before": 0x0310,
        "lmp_subversion_after": 0x0420,
        "device_id_version_before": v1,
        "device_id_version_after": v2,
    }
    ctx.faults.append("firmware update between connections; bond lost (0x06)")


async def reject_every_codec(ctx: Ctx, conn: Connection) -> list[tuple[str, int]]:
    """SDP for the Audio Sink, AVDTP discover / get all capabilities, then SET_CONFIGURATION
    for LDAC, AAC and SBC, each rejected by the headset (AVDTP 1.3 8.9.3, error 0x29
    UNSUPPORTED_CONFIGURATION); the phone gives up on A2DP and closes the signalling channel."""
    await ctx.sdp_query(conn)
    protocol = await avdtp.Protocol.connect(conn)
    await protocol.discover_remote_endpoints()
    rejected: list[tuple[str, int]] = []
    for codec in ("ldac", "aac", "sbc"):
        info = CODECS[codec]
        vendor = (LDAC_VENDOR, LDAC_CODEC) if codec == "ldac" else (0, 0)
        sink = protocol.find_remote_sink_by_codec(AUDIO, info["type"], *vendor)
        assert sink is not None
        source = protocol.add_source(info["config"](), None, delay_reporting=True)  # type: ignore[arg-type]
        try:
            await protocol.create_stream(source, sink)
        except avdtp.ProtocolError as e:
            rejected.append((codec, int(e.error_code or 0)))
        protocol.streams.pop(source.seid, None)
    assert [c for c, _ in rejected] == ["ldac", "aac", "sbc"], rejected
    await sleep(0.3)
    await protocol.l2cap_channel.disconnect()
    return rejected


def mark_rejects(ctx: Ctx, rejected: list[tuple[str, int]]) -> None:
    rejects = ctx.avdtp_frames(avdtp.AVDTP_SET_CONFIGURATION, AVDTP_REJECT)
    assert len(rejects) == len(rejected), rejects
    ctx.frame("avdtp_set_configuration_reject_first", rejects, 0)
    ctx.key_frames["avdtp_set_configuration_rejects"] = rejects
    ctx.truth["a2dp"] = {"rejected": [{"codec": c, "error_code": e} for c, e in rejected]}
    ctx.faults.append("SET_CONFIGURATION rejected 0x29 for every codec")


def mark_sco(ctx: Ctx) -> None:
    s = ctx.snoop
    ctx.frame("sco_connection_complete", s.events(EVT_SYNC_CONNECTION_COMPLETE, 0))
    sco = ctx.key_frames["sco_connection_complete"]
    assert isinstance(sco, int)
    ctx.frame(
        "sco_disconnection_complete",
        [f for f in s.events(EVT_DISCONNECTION_COMPLETE, 0) if f > sco],
    )


@scenario(
    "a2dp_rejected_hfp_fallback",
    "Inquiry, pairing, SDP; the headset rejects SET_CONFIGURATION with 0x29 (unsupported "
    "configuration) for LDAC, AAC and SBC, so the phone routes media over HFP instead: SLC, "
    "a +CIEV signal-strength update, codec connection (+BCS: 2 / AT+BCS=2) and an eSCO link "
    "(mSBC, transparent air mode) carrying 8 s of audio both ways with no call at all (no "
    "RING, ATA, dial or call/callsetup indicator), then the link is released.",
    204,
    ["avdtp_rejected", "a2dp_fallback_hfp"],
    "faults",
)
async def a2dp_rejected_hfp_fallback(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc", "aac", "ldac"), reject_set_config=0x29))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    rejected = await reject_every_codec(ctx, conn)
    ag = await ctx.hfp_ag(conn)
    await sleep(1.0)
    ag.update_ag_indicator(hfp.AgIndicator.SIGNAL, 4)  # not a call indicator
    await sleep(0.8)
    await ctx.hfp_audio(conn, ag, msbc=True, seconds=8.0)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)
    mark_rejects(ctx, rejected)
    ctx.frame("at_bcs_2", _at_frames(ctx, b"+BCS: 2"))
    ctx.frame("at_bcs_2_confirm", _at_frames(ctx, b"AT+BCS=2"))
    ctx.frame("esco_setup", ctx.snoop.commands(OP_ENHANCED_SETUP_SYNC))
    mark_sco(ctx)
    for needle in (b"RING", b"ATA", b"ATD", b"AT+BLDN", b"+CIEV: 1,", b"+CIEV: 2,"):
        assert not _at_frames(ctx, needle), needle  # no call: the point of this capture
    ctx.truth["hfp"] = {
        "codec": "mSBC",
        "link": "eSCO",
        "air_mode": 0x03,
        "transmission_interval_slots": 12,
        "packet_length": 60,
        "call": False,
        "audio_seconds": 8.0,
    }
    ctx.faults.append("media routed over eSCO (HFP audio connection) with no call")


@scenario(
    "a2dp_rejected_then_call",
    "As a2dp_rejected_hfp_fallback up to the HFP SLC (SET_CONFIGURATION rejected 0x29 for "
    "LDAC, AAC and SBC), then an ordinary incoming call: +CIEV callsetup, RING, ATA, +CIEV "
    "call, codec connection (CVSD), eSCO voice for 5 s, hang-up. The eSCO link carries a call, "
    "so it is not an A2DP fallback.",
    213,
    ["avdtp_rejected"],
    "faults",
)
async def a2dp_rejected_then_call(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc", "aac", "ldac"), reject_set_config=0x29))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    rejected = await reject_every_codec(ctx, conn)
    ag = await ctx.hfp_ag(conn)
    await sleep(1.0)
    await ctx.incoming_call(conn, ag, msbc=False, talk=5.0)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)
    mark_rejects(ctx, rejected)
    ctx.frame("at_ring", _at_frames(ctx, b"RING"))
    ctx.frame("at_ata", _at_frames(ctx, b"ATA"))
    ctx.frame("at_ciev_call_1", _at_frames(ctx, b"+CIEV: 1,1"))
    mark_sco(ctx)
    ctx.truth["hfp"] = {"codec": "CVSD", "link": "eSCO", "air_mode": 0x02, "call": True}


@scenario(
    "a2dp_open_without_start",
    "A2DP configured and opened (media channel up) but the phone never sends START; after "
    "8 s idle the phone closes the stream and disconnects.",
    205,
    ["a2dp_stream_not_started"],
    "faults",
)
async def a2dp_open_without_start(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    await ctx.sdp_query(conn)
    await ctx.a2dp_session(conn, "sbc", start=False)
    await sleep(8.0)
    await conn.disconnect()
    await sleep(0.5)
    ctx.frame("avdtp_open", ctx.avdtp_frames(avdtp.AVDTP_OPEN, AVDTP_CMD))
    ctx.frame("disconnection_complete", ctx.snoop.events(EVT_DISCONNECTION_COMPLETE, 0))
    ctx.faults.append("OPEN without START")


def _at_frames(ctx: Ctx, needle: bytes) -> list[int]:
    return ctx.snoop.l2cap_frames(lambda cid, payload: needle in payload)


def _l2cap_conn_req(ctx: Ctx, psm: int) -> list[int]:
    return ctx.snoop.l2cap_frames(
        lambda cid, p: (
            cid == 1 and len(p) >= 6 and p[0] == 0x02 and int.from_bytes(p[4:6], "little") == psm
        ),
        direction=0,
    )


def _sdp_requests(ctx: Ctx) -> list[int]:
    return ctx.snoop.l2cap_frames(
        lambda cid, p: cid >= 0x40 and len(p) >= 5 and p[0] == 0x06 and p[3:5] != b"\0\0",
        direction=0,
    )


async def _requests_scenario(ctx: Ctx, *, late: bool) -> None:
    delay = 8.5
    b = HeadsetBehaviour(codecs=("sbc",))
    if late:
        b.late_sdp = delay
        b.late_avdtp = {avdtp.AVDTP_GET_ALL_CAPABILITIES: delay}
        b.late_l2cap_psm = {0x0017: delay}
    else:
        b.drop_sdp = 1
        b.drop_avdtp = {avdtp.AVDTP_GET_ALL_CAPABILITIES}
        b.drop_l2cap_psm = {0x0017}
    ctx.add_headset(b)
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    give_up = 20.0 if late else 10.0
    # SDP
    await with_timeout(ctx.sdp_query(conn), give_up + 1.0)
    await sleep(1.0)
    # AVDTP
    protocol = await avdtp.Protocol.connect(conn)
    await with_timeout(protocol.discover_remote_endpoints(), give_up)
    await sleep(0.5)
    with contextlib.suppress(Exception):
        await protocol.l2cap_channel.disconnect()
    # L2CAP (AVRCP control channel)
    channel = await with_timeout(
        conn.create_l2cap_channel(spec=l2cap.ClassicChannelSpec(psm=0x0017)), give_up
    )
    if channel is not None:
        await sleep(0.5)
        with contextlib.suppress(Exception):
            await channel.disconnect()
    # AT (HF asks the AG for the current calls; the AG stays silent / answers late)
    ag = await ctx.hfp_ag(conn)
    original = ag.dlc.sink

    def sink(data: bytes) -> None:
        if b"AT+CLCC" in data:
            if late:
                asyncio.get_running_loop().call_later(delay, original, data)
            return
        original(data)

    ag.dlc.sink = sink
    hf = ctx.hf_protocols[-1]
    with contextlib.suppress(Exception):
        await hf.execute_command("AT+CLCC", timeout=give_up)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)
    ctx.key_frames["sdp_request"] = _sdp_requests(ctx)[0]
    ctx.key_frames["avdtp_get_all_capabilities"] = ctx.avdtp_frames(
        avdtp.AVDTP_GET_ALL_CAPABILITIES, AVDTP_CMD
    )[0]
    ctx.key_frames["l2cap_connection_request_avrcp"] = _l2cap_conn_req(ctx, 0x0017)[0]
    ctx.key_frames["at_clcc"] = _at_frames(ctx, b"AT+CLCC")[0]
    kind = f"answered after {delay} s" if late else "never answered"
    ctx.faults += [
        f"SDP ServiceSearchAttribute request {kind}",
        f"AVDTP GET_ALL_CAPABILITIES {kind}",
        f"L2CAP Connection Request (PSM 0x0017) {kind}",
        f"AT+CLCC {kind}",
    ]


@scenario(
    "requests_unanswered",
    "The headset never answers one SDP request, one AVDTP GET_ALL_CAPABILITIES, one L2CAP "
    "Connection Request (AVRCP PSM) and the phone never answers AT+CLCC; each requester "
    "gives up after 10 s.",
    206,
    ["response_timeout"],
    "faults",
)
async def requests_unanswered(ctx: Ctx) -> None:
    await _requests_scenario(ctx, late=False)


@scenario(
    "requests_late",
    "As requests_unanswered but every one of those requests is answered 8.5 s late.",
    207,
    ["late_response"],
    "faults",
)
async def requests_late(ctx: Ctx) -> None:
    await _requests_scenario(ctx, late=True)


@scenario(
    "page_timeout",
    "Bonded headset left pairing mode and is no longer page scanning; the phone pages it "
    "twice, each Create Connection ends with Connection Complete 0x04 (page timeout).",
    208,
    ["connection_failed"],
    "faults",
)
async def page_timeout(ctx: Ctx) -> None:
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await bond_silently(ctx)
    await hs.device.set_discoverable(False)
    await hs.device.set_connectable(False)
    for _ in range(2):
        with contextlib.suppress(Exception):
            await ctx.connect()
        await sleep(3.0)
    frames = ctx.snoop.events(EVT_CONNECTION_COMPLETE, 0x04)
    ctx.frame("connection_complete_page_timeout", frames, 0)
    ctx.key_frames["connection_complete_page_timeout_all"] = frames
    ctx.faults.append("peer not page scanning: page timeout 0x04 twice")


@scenario(
    "link_loss",
    "A2DP SBC streaming; 6 s in, the headset goes out of range: buffers stop draining, "
    "after the 5 s supervision timeout both sides report Disconnection Complete 0x08.",
    209,
    ["link_loss", "a2dp_media_stall"],
    "faults",
)
async def link_loss(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    await ctx.sdp_query(conn)

    async def breaker() -> None:
        await sleep(9.0)
        ctx.phone.controller.break_link(ctx.headset.address, timeout=5.0)  # type: ignore[union-attr]

    task = asyncio.get_running_loop().create_task(breaker())
    with contextlib.suppress(Exception):
        await with_timeout(ctx.a2dp_session(conn, "sbc", seconds=30.0), 20.0)
    await task
    await sleep(1.0)
    ctx.frame("disconnection_complete_timeout", ctx.snoop.events(EVT_DISCONNECTION_COMPLETE, 0))
    ctx.truth["link_loss"] = {"supervision_timeout_s": 5.0}
    ctx.faults.append("link lost while streaming; supervision timeout (0x08)")


@scenario(
    "periodic_disconnect",
    "The headset drops the connection (remote user terminated, 0x13) about 30 s after each "
    "setup; the phone reconnects with the stored key three times.",
    210,
    ["periodic_disconnect", "short_connection"],
    "faults",
)
async def periodic_disconnect(ctx: Ctx) -> None:
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await bond_silently(ctx)
    for i in range(3):
        conn = await ctx.connect()
        await ctx.secure(conn)
        await ctx.sdp_query(conn)
        await sleep(29.0 + i * 0.7)
        hs_conn = next(iter(hs.device.connections.values()))
        await hs_conn.disconnect(reason=hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR)
        await sleep(2.0)
    frames = ctx.snoop.events(EVT_DISCONNECTION_COMPLETE, 0)
    ctx.key_frames["disconnection_complete"] = frames
    ctx.faults.append("remote disconnects ~30 s after every connection (0x13), 3 times")


@scenario(
    "a2dp_high_delay_report",
    "A2DP SBC stream; the headset reports 250 ms of latency (delay 2500 x 0.1 ms).",
    211,
    ["high_audio_latency"],
    "faults",
)
async def a2dp_high_delay_report(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",), delay_report=2500))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx, discover=False)
    await ctx.a2dp_session(conn, "sbc", seconds=6.0)
    await conn.disconnect()
    await sleep(0.5)
    mark_a2dp(ctx)
    ctx.truth["a2dp"] = {"codec": "sbc", "delay_report_0_1ms": 2500}
    ctx.faults.append("delay report 250 ms")


@scenario(
    "a2dp_media_stall",
    "A2DP SBC stream where the phone's encoder stalls for 0.8 s at t=4 s, then catches up.",
    212,
    ["a2dp_media_stall"],
    "faults",
)
async def a2dp_media_stall(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx, discover=False)
    await ctx.a2dp_session(conn, "sbc", seconds=10.0, stall_at=4.0, stall=0.8)
    await conn.disconnect()
    await sleep(0.5)
    mark_a2dp(ctx)
    media = ctx.snoop.l2cap_frames(
        lambda cid, p: len(p) > 12 and p[0] == 0x80 and p[1] & 0x7F == 96, 0
    )
    times = {r.number: r.time for r in ctx.snoop.records}
    gaps = [(b, times[b] - times[a]) for a, b in itertools.pairwise(media)]
    first_after = max(gaps, key=lambda g: g[1])
    ctx.key_frames["media_after_stall"] = first_after[0]
    ctx.truth["a2dp"] = {"codec": "sbc", "stall_s": round(first_after[1], 6)}
    ctx.faults.append("media gap of 0.8 s while streaming")


_: Any = (HEADSET_ADDR, EVT_AUTH_COMPLETE)
