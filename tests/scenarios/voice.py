"""Voice scenarios: HFP service level connection, incoming call, eSCO with mSBC and CVSD."""

from __future__ import annotations

from bumble import hfp

from tests.scenarios.clean import EVT_DISCONNECTION_COMPLETE, pair_and_encrypt
from tests.scenarios.harness import sleep
from tests.scenarios.scenarios import Ctx, HeadsetBehaviour, scenario

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
