"""Scenarios (bumble, virtual link): the phone configures SBC outside what the headset offered;
the phone configures SBC and streams AAC.

The headset's SBC sink offers 44.1/48 kHz and bitpool 2–53 (GET_ALL_CAPABILITIES); the phone's
SET_CONFIGURATION asks for 32 kHz and a maximum bitpool of 64 — both outside the capability
(A2DP 1.4 §4.3.2.1, §4.3.2.6) — and the headset's stack (bumble, which does not validate a
configuration) accepts it; the stream is opened and started and 2 s of media flow.

The second (``a2dp_media_not_configured_codec``): a clean SBC configuration (inside the offer),
accepted, but the media packets carry LATM-framed AAC (A2DP 1.4 §4.5.4) instead of SBC frames
(§4.3.4) — "negotiated one codec, streamed another".

Not registered in the committed scenario set (``captures/scenarios``): the dashboard tests
generate it on the fly with :func:`generate`, so the manifest and the golden files stay as
they are. Registering it is one import in ``tests/scenarios/generate.py``.
"""

from __future__ import annotations

from pathlib import Path

from bumble import a2dp, avdtp

from tests.scenarios.clean import pair_and_encrypt
from tests.scenarios.harness import VirtualMediaClock, sleep
from tests.scenarios.scenarios import AUDIO, CODECS, SBC, Ctx, HeadsetBehaviour, Scenario

NAME = "a2dp_config_outside_caps"


def sbc_config_outside() -> avdtp.MediaCodecCapabilities:
    """SBC 32 kHz, joint stereo, bitpool 2–64: the headset offered 44.1/48 kHz and 2–53."""
    i = a2dp.SbcMediaCodecInformation
    return avdtp.MediaCodecCapabilities(
        media_type=AUDIO,
        media_codec_type=SBC,
        media_codec_information=i(
            sampling_frequency=i.SamplingFrequency.SF_32000,
            channel_mode=i.ChannelMode.JOINT_STEREO,
            block_length=i.BlockLength.BL_16,
            subbands=i.Subbands.S_8,
            allocation_method=i.AllocationMethod.LOUDNESS,
            minimum_bitpool_value=2,
            maximum_bitpool_value=64,
        ),
    )


async def _session(ctx: Ctx, config: avdtp.MediaCodecCapabilities, media: str) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",), with_hfp=False))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    await ctx.sdp_query(conn)
    protocol = await avdtp.Protocol.connect(conn)
    await protocol.discover_remote_endpoints()
    sink = protocol.find_remote_sink_by_codec(AUDIO, SBC)
    assert sink is not None
    pump = avdtp.MediaPacketPump(CODECS[media]["packets"](2.0, 1017), VirtualMediaClock())
    source = protocol.add_source(config, pump, delay_reporting=True)
    stream = await protocol.create_stream(source, sink)
    await stream.start()
    await pump.wait_for_completion()
    await sleep(0.3)
    await stream.stop()
    await stream.close()
    await sleep(0.2)
    await conn.disconnect()
    await sleep(0.5)


async def run(ctx: Ctx) -> None:
    await _session(ctx, sbc_config_outside(), "sbc")
    ctx.truth["a2dp"] = {"codec": "sbc", "configured_hz": 32000, "configured_max_bitpool": 64}
    ctx.faults.append("SET_CONFIGURATION outside the sink's SBC capabilities (32 kHz, bitpool 64)")


async def run_aac_media(ctx: Ctx) -> None:
    await _session(ctx, CODECS["sbc"]["config"](), "aac")
    ctx.truth["a2dp"] = {"codec": "sbc", "media": "aac"}
    ctx.faults.append("SBC configured, AAC (LATM) media sent")


SCENARIO = Scenario(
    NAME,
    "Pairing, SDP, A2DP: the phone configures SBC 32 kHz with bitpool 2-64 on a sink that "
    "offered 44.1/48 kHz and bitpool 2-53; the headset accepts and 2 s of media flow.",
    231,
    run,
    [],
    "faults",
)


MEDIA_SCENARIO = Scenario(
    "a2dp_media_not_configured_codec",
    "Pairing, SDP, A2DP: SBC 44.1 kHz configured inside the sink's offer and accepted, but the "
    "phone streams 2 s of LATM-framed AAC media instead of SBC frames.",
    232,
    run_aac_media,
    [],
    "faults",
)


def generate(out: Path, scenario: Scenario = SCENARIO) -> Path:
    """Run a scenario of this module and write ``<out>/<name>.btsnoop``."""
    from tests.scenarios.generate import run_scenario

    data, _entry = run_scenario(scenario)
    path = out / f"{scenario.name}.btsnoop"
    path.write_bytes(data)
    return path
