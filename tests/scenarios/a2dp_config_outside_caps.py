"""Scenario (bumble, virtual link): the phone configures SBC outside what the headset offered.

The headset's SBC sink offers 44.1/48 kHz and bitpool 2–53 (GET_ALL_CAPABILITIES); the phone's
SET_CONFIGURATION asks for 32 kHz and a maximum bitpool of 64 — both outside the capability
(A2DP 1.4 §4.3.2.1, §4.3.2.6) — and the headset's stack (bumble, which does not validate a
configuration) accepts it; the stream is opened and started and 2 s of media flow.

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


async def run(ctx: Ctx) -> None:
    ctx.add_headset(HeadsetBehaviour(codecs=("sbc",), with_hfp=False))
    await ctx.power_on()
    conn = await pair_and_encrypt(ctx)
    await ctx.sdp_query(conn)
    protocol = await avdtp.Protocol.connect(conn)
    await protocol.discover_remote_endpoints()
    sink = protocol.find_remote_sink_by_codec(AUDIO, SBC)
    assert sink is not None
    pump = avdtp.MediaPacketPump(CODECS["sbc"]["packets"](2.0, 1017), VirtualMediaClock())
    source = protocol.add_source(sbc_config_outside(), pump, delay_reporting=True)
    stream = await protocol.create_stream(source, sink)
    await stream.start()
    await pump.wait_for_completion()
    await sleep(0.3)
    await stream.stop()
    await stream.close()
    await sleep(0.2)
    await conn.disconnect()
    await sleep(0.5)
    ctx.truth["a2dp"] = {"codec": "sbc", "configured_hz": 32000, "configured_max_bitpool": 64}
    ctx.faults.append("SET_CONFIGURATION outside the sink's SBC capabilities (32 kHz, bitpool 64)")


SCENARIO = Scenario(
    NAME,
    "Pairing, SDP, A2DP: the phone configures SBC 32 kHz with bitpool 2-64 on a sink that "
    "offered 44.1/48 kHz and bitpool 2-53; the headset accepts and 2 s of media flow.",
    231,
    run,
    [],
    "faults",
)


def generate(out: Path) -> Path:
    """Run the scenario and write ``<out>/a2dp_config_outside_caps.btsnoop``."""
    from tests.scenarios.generate import run_scenario

    data, _entry = run_scenario(SCENARIO)
    path = out / f"{NAME}.btsnoop"
    path.write_bytes(data)
    return path
