"""Clean scenarios: nothing goes wrong, the rules must stay silent (expected_findings = [])."""

from __future__ import annotations

from bumble import avdtp, hci
from bumble.device import Connection
from bumble.pairing import PairingDelegate

from tests.scenarios.harness import sleep
from tests.scenarios.scenarios import Ctx, HeadsetBehaviour, scenario

EVT_AUTH_COMPLETE = 0x06
EVT_ENCRYPTION_CHANGE = 0x08
EVT_CONNECTION_COMPLETE = 0x03
EVT_DISCONNECTION_COMPLETE = 0x05
EVT_SIMPLE_PAIRING_COMPLETE = 0x36
EVT_LINK_KEY_NOTIFICATION = 0x18
EVT_LINK_KEY_REQUEST = 0x17
EVT_USER_CONFIRMATION_REQUEST = 0x33
EVT_EXT_INQUIRY_RESULT = 0x2F
OP_LINK_KEY_REQUEST_REPLY = 0x040B

AVDTP_CMD, AVDTP_ACCEPT, AVDTP_REJECT = 0, 2, 3


def mark_pairing(ctx: Ctx, start: int = 0) -> None:
    s = ctx.snoop
    inq = s.events(EVT_EXT_INQUIRY_RESULT)
    if inq:
        ctx.frame("extended_inquiry_result", inq)
    ctx.frame("connection_complete", [f for f in s.events(EVT_CONNECTION_COMPLETE, 0) if f > start])
    ctx.frame("simple_pairing_complete", s.events(EVT_SIMPLE_PAIRING_COMPLETE, 0))
    ctx.frame("link_key_notification", s.events(EVT_LINK_KEY_NOTIFICATION))
    ctx.frame("authentication_complete", s.events(EVT_AUTH_COMPLETE, 0))
    ctx.frame("encryption_change", s.events(EVT_ENCRYPTION_CHANGE, 0))


def mark_a2dp(ctx: Ctx, prefix: str = "") -> None:
    f = ctx.avdtp_frames
    ctx.frame(prefix + "avdtp_discover", f(avdtp.AVDTP_DISCOVER, AVDTP_CMD))
    ctx.frame(prefix + "avdtp_set_configuration", f(avdtp.AVDTP_SET_CONFIGURATION, AVDTP_CMD))
    ctx.frame(
        prefix + "avdtp_set_configuration_accept",
        f(avdtp.AVDTP_SET_CONFIGURATION, AVDTP_ACCEPT),
    )
    ctx.frame(prefix + "avdtp_open", f(avdtp.AVDTP_OPEN, AVDTP_CMD))
    ctx.frame(prefix + "avdtp_start", f(avdtp.AVDTP_START, AVDTP_CMD))
    ctx.frame(prefix + "avdtp_suspend", f(avdtp.AVDTP_SUSPEND, AVDTP_CMD))
    ctx.frame(prefix + "avdtp_close", f(avdtp.AVDTP_CLOSE, AVDTP_CMD))
    ctx.frame(prefix + "avdtp_delay_report", f(avdtp.AVDTP_DELAYREPORT, AVDTP_CMD))


async def pair_and_encrypt(ctx: Ctx, *, discover: bool = True) -> Connection:
    if discover:
        await ctx.discover(3.0)
    conn = await ctx.connect()
    await ctx.secure(conn)
    await ctx.read_remote_version(conn)
    return conn


@scenario(
    "pairing_ssp_just_works",
    "Inquiry (EIR), connection, SSP Just Works pairing (headset NoInputNoOutput), "
    "encryption, SDP for the A2DP sink, disconnect.",
    seed=101,
)
async def pairing_ssp_just_works(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    await ctx.sdp_query(conn)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)
    mark_pairing(ctx)
    ctx.frame("disconnection_complete", ctx.snoop.events(EVT_DISCONNECTION_COMPLETE, 0))
    ctx.truth["pairing"] = {"method": "just_works", "headset_io": "NoInputNoOutput"}


@scenario(
    "pairing_ssp_numeric_comparison",
    "SSP numeric comparison: both sides DisplayYesNo, the user confirms the 6-digit value.",
    seed=102,
)
async def pairing_ssp_numeric_comparison(ctx: Ctx) -> None:
    ctx.add_headset(
        HeadsetBehaviour(codecs=("sbc",)),
        name="DriveLink Car Kit",
        io_capability=PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT,
    )
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    await ctx.sdp_query(conn)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)
    mark_pairing(ctx)
    ctx.frame("user_confirmation_request", ctx.snoop.events(EVT_USER_CONFIRMATION_REQUEST))
    ctx.frame("disconnection_complete", ctx.snoop.events(EVT_DISCONNECTION_COMPLETE, 0))
    ctx.truth["pairing"] = {
        "method": "numeric_comparison",
        "numeric_value": ctx.numeric_values[0] if ctx.numeric_values else None,
    }


@scenario(
    "reconnect_stored_key",
    "Already bonded (pairing not captured); the phone reconnects, answers Link Key Request "
    "with the stored key, authentication and encryption succeed, SDP, disconnect.",
    seed=103,
)
async def reconnect_stored_key(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await ctx.power_on()
    ctx.snoop.enabled = False
    conn = await pair_and_encrypt(ctx, discover=False)
    await conn.disconnect()
    await sleep(0.5)
    ctx.snoop.enabled = True
    await sleep(5.0)
    conn = await ctx.connect()
    await ctx.secure(conn)
    await ctx.read_remote_version(conn)
    await ctx.sdp_query(conn)
    await sleep(2.0)
    await conn.disconnect()
    await sleep(0.5)
    s = ctx.snoop
    ctx.frame("connection_complete", s.events(EVT_CONNECTION_COMPLETE, 0))
    ctx.frame("link_key_request", s.events(EVT_LINK_KEY_REQUEST))
    ctx.frame("link_key_request_reply", s.commands(OP_LINK_KEY_REQUEST_REPLY))
    ctx.frame("authentication_complete", s.events(EVT_AUTH_COMPLETE, 0))
    ctx.frame("encryption_change", s.events(EVT_ENCRYPTION_CHANGE, 0))
    ctx.frame("disconnection_complete", s.events(EVT_DISCONNECTION_COMPLETE, 0))


@scenario(
    "sdp_continuation",
    "Paired connection; SDP ServiceSearchAttribute over the whole public browse group with "
    "a 48-byte L2CAP MTU, so the headset answers in several continuation fragments.",
    seed=104,
)
async def sdp_continuation(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc", "aac")))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx, discover=False)
    records = await ctx.sdp_query(conn, mtu=48, all_records=True)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)

    def sdp_pdu(pdu_id: int, continued: bool | None = None) -> list[int]:
        def pred(cid: int, payload: bytes) -> bool:
            if cid < 0x40 or len(payload) < 5 or payload[0] != pdu_id:
                return False
            if continued is None:
                return True
            return (payload[-1] != 0) == continued if payload[-1] <= 16 else False

        return ctx.snoop.l2cap_frames(pred)

    requests = sdp_pdu(0x06)
    responses = sdp_pdu(0x07)
    ctx.frame("sdp_first_request", requests)
    ctx.frame("sdp_first_response", responses)
    ctx.frame("sdp_last_response", responses, -1)
    ctx.truth["sdp"] = {
        "records": len(records),
        "requests": len(requests),
        "responses": len(responses),
    }


def a2dp_scenario(codec: str, seed: int, description: str) -> None:
    async def run(ctx: Ctx) -> None:
        ctx.add_headset(HeadsetBehaviour(codecs=("sbc", "aac", "ldac")))
        await ctx.power_on()
        conn = await pair_and_encrypt(ctx)
        await ctx.sdp_query(conn)
        await ctx.a2dp_session(conn, codec, seconds=10.0)
        await sleep(1.0)
        await conn.disconnect()
        await sleep(0.5)
        mark_pairing(ctx)
        mark_a2dp(ctx)
        ctx.frame("disconnection_complete", ctx.snoop.events(EVT_DISCONNECTION_COMPLETE, 0))
        ctx.truth["a2dp"] = {
            "codec": codec,
            "stream_seconds": 10.0,
            "delay_report_0_1ms": ctx.behaviour.delay_report,
        }
        if codec == "ldac":
            ctx.truth["a2dp"].update({"vendor_id": 0x012D, "vendor_codec_id": 0x00AA})

    # the headset offers LDAC, AAC and SBC: a phone that picks less than LDAC earns the
    # informational codec_choice finding (the phone's own codec list is not on the wire)
    expected = [] if codec == "ldac" else ["codec_choice"]
    scenario(f"a2dp_{codec}_clean", description, seed, expected)(run)


a2dp_scenario(
    "sbc",
    105,
    "Pairing, SDP, A2DP with SBC 44.1 kHz joint stereo bitpool 53: discover, get all "
    "capabilities, set configuration, open, start, 10 s of media, suspend, close; the "
    "headset sends delay reports (150 ms).",
)
a2dp_scenario(
    "aac",
    106,
    "As a2dp_sbc_clean but the phone selects MPEG-2/4 AAC (LC, 44.1 kHz, VBR 256 kb/s).",
)
a2dp_scenario(
    "ldac",
    107,
    "As a2dp_sbc_clean but the phone selects the vendor codec LDAC (vendor 0x012D, codec "
    "0x00AA, 96 kHz).",
)

_ = hci
