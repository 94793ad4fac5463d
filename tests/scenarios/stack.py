"""Fault scenarios of the link manager, SDP server, the phone's own stack and LE advertisers:
failed encryption, an SDP Error Response, a stack restart (HCI Reset in mid-capture), a
controller Hardware Error, and an advertiser that falls silent for long stretches.

References: Core v5.4 Vol 4 Part E (HCI) 7.3.2 Reset, 7.7.8 Encryption Change, 7.7.16
Hardware Error; Vol 2 Part C 5.2 (LMP response timeout); Vol 3 Part B 4.4.1 / 4.6 (SDP
Error Response, ServiceAttributeRequest); Vol 6 Part B 4.4.2.2.1 (advertising events).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

from bumble import a2dp, core, data_types, hci, sdp
from bumble.core import AdvertisingData

from tests.scenarios.clean import EVT_AUTH_COMPLETE, EVT_CONNECTION_COMPLETE
from tests.scenarios.controller import LMP_RESPONSE_TIMEOUT
from tests.scenarios.faults import bond_silently
from tests.scenarios.harness import sleep
from tests.scenarios.scenarios import AUDIO_SINK_UUID, Ctx, HeadsetBehaviour, scenario

EVT_ENCRYPTION_CHANGE = 0x08
EVT_HARDWARE_ERROR = 0x10
OP_RESET = 0x0C03
OP_SET_CONNECTION_ENCRYPTION = 0x0413
SDP_ERROR_RESPONSE = 0x01
SDP_SERVICE_ATTRIBUTE_REQUEST = 0x04
SDP_INVALID_SERVICE_RECORD_HANDLE = 0x0002
#: Android's default link supervision timeout, 0x1F40 slots (5 s), as the headset's
HEADSET_SUPERVISION_TIMEOUT = 0x1F40


# -----------------------------------------------------------------------------------------
# helpers
# -----------------------------------------------------------------------------------------
def _sdp_pdus(ctx: Ctx, pdu_id: int, direction: int | None = None) -> list[int]:
    """Frames of SDP PDUs ``pdu_id`` on dynamic L2CAP channels (Vol 3 Part B 4.2)."""
    return ctx.snoop.l2cap_frames(
        lambda cid, p: cid >= 0x40 and len(p) >= 5 and p[0] == pdu_id, direction
    )


def _payload(ctx: Ctx, frame: int) -> bytes:
    return ctx.snoop.records[frame - 1].packet


def _stream_in_background(ctx: Ctx, conn: Any, seconds: float) -> asyncio.Task[Any]:
    """A2DP SBC session in the background (cancelled when the stack goes down)."""
    return asyncio.get_running_loop().create_task(ctx.a2dp_session(conn, "sbc", seconds=seconds))


async def _stack_restart(ctx: Ctx, task: asyncio.Task[Any] | None) -> None:
    """The phone's Bluetooth stack restarts: its state is lost (profiles, links) without a
    word on the HCI, then it resets the controller and initialises it again. The controller
    drops its links on Reset without Disconnection Complete (7.3.2); the host's bookkeeping
    of them ends here, off the wire."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    for t in asyncio.all_tasks():  # the media pump the A2DP session started
        if t.get_coro().__qualname__.endswith("pump_packets"):  # type: ignore[union-attr]
            t.cancel()
    host = ctx.phone.device.host
    for handle in list(host.connections):
        # the stack forgets the link: the same teardown as a Disconnection Complete, but
        # handed to the host directly (no such event exists on the wire)
        host.on_hci_event_packet(
            hci.HCI_Disconnection_Complete_Event(
                status=0,
                connection_handle=handle,
                reason=hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR,
            )
        )
    await sleep(0.35)  # the stack process restarts
    await ctx.phone.device.power_on()


async def _reconnect(ctx: Ctx) -> None:
    """After the restart the phone pages the headset again (stored key), SDP, A2DP."""
    conn = await ctx.connect()
    await ctx.secure(conn)
    await ctx.sdp_query(conn)
    await ctx.a2dp_session(conn, "sbc", seconds=4.0)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)


def _connections_after(ctx: Ctx, frame: int) -> list[int]:
    return [f for f in ctx.snoop.events(EVT_CONNECTION_COMPLETE, 0) if f > frame]


# -----------------------------------------------------------------------------------------
# encryption_failed
# -----------------------------------------------------------------------------------------
@scenario(
    "encryption_lmp_timeout",
    "Bonded phone reconnects; authentication with the stored link key succeeds, but the "
    "headset's link manager never answers the encryption request: Set Connection "
    "Encryption ends 30 s later with Encryption Change status 0x22 (LMP Response Timeout); "
    "the phone disconnects (0x05).",
    214,
    ["encryption_failed"],
    "faults",
)
async def encryption_lmp_timeout(ctx: Ctx) -> None:
    ctx.phone.controller.implements_sc_host_support = True
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await bond_silently(ctx)
    hs.controller.fail_encryption = LMP_RESPONSE_TIMEOUT
    conn = await ctx.connect()
    await ctx.read_remote_version(conn)
    await conn.authenticate()
    err = 0
    try:
        await conn.encrypt()
    except hci.HCI_Error as e:
        err = int(e.error_code or 0)
    assert err == LMP_RESPONSE_TIMEOUT, err
    await sleep(0.1)
    await conn.disconnect(reason=hci.HCI_ErrorCode.AUTHENTICATION_FAILURE_ERROR)
    await sleep(0.5)
    s = ctx.snoop
    ctx.frame("authentication_complete", s.events(EVT_AUTH_COMPLETE, 0))
    ctx.frame("set_connection_encryption", s.commands(OP_SET_CONNECTION_ENCRYPTION))
    enc = ctx.frame(
        "encryption_change_failure", s.events(EVT_ENCRYPTION_CHANGE, LMP_RESPONSE_TIMEOUT)
    )
    assert not s.events(EVT_ENCRYPTION_CHANGE, 0)
    cmd = ctx.key_frames["set_connection_encryption"]
    assert isinstance(cmd, int)
    times = {r.number: r.time for r in s.records}
    ctx.frame("disconnection_complete", [f for f in s.events(0x05, 0) if f > enc])
    ctx.truth["encryption"] = {
        "status": LMP_RESPONSE_TIMEOUT,
        "status_name": "LMP Response Timeout / LL Response Timeout",
        "seconds_after_command": round(times[enc] - times[cmd], 6),
        "authentication": "stored link key, success",
    }
    ctx.faults.append("headset's LM never answers encryption: Encryption Change 0x22 after 30 s")


# -----------------------------------------------------------------------------------------
# sdp_error
# -----------------------------------------------------------------------------------------
OLD_SINK_HANDLE = 0x00010001
NEW_SINK_HANDLE = 0x00010005


@scenario(
    "sdp_stale_record_handle",
    "Bonded phone reconnects and asks for the Audio Sink record by the ServiceRecordHandle "
    "it cached (0x00010001) with a ServiceAttributeRequest; a firmware update renumbered "
    "the headset's records, so the headset answers SDP_ErrorResponse 0x0002 (Invalid "
    "Service Record Handle). The phone falls back to a ServiceSearchAttributeRequest, "
    "finds the sink at 0x00010005, then disconnects.",
    215,
    ["sdp_error"],
    "faults",
)
async def sdp_stale_record_handle(ctx: Ctx) -> None:
    ctx.phone.controller.implements_sc_host_support = True
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    await bond_silently(ctx)
    records = dict(hs.device.sdp_service_records)
    records.pop(OLD_SINK_HANDLE)
    records[NEW_SINK_HANDLE] = a2dp.make_audio_sink_service_sdp_records(NEW_SINK_HANDLE)
    hs.device.sdp_service_records = records
    conn = await ctx.connect()
    await ctx.secure(conn)
    await ctx.read_remote_version(conn)
    client = sdp.Client(conn)
    await client.connect()
    error: int | None = None
    try:
        await client.get_attributes(
            OLD_SINK_HANDLE,
            [
                sdp.SDP_SERVICE_CLASS_ID_LIST_ATTRIBUTE_ID,
                sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID,
                sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID,
            ],
        )
    except core.ProtocolError as e:
        # bumble's client reads the big-endian ErrorCode little-endian (see scenarios.py)
        raw = int(e.error_code or 0).to_bytes(2, "little")
        error = int.from_bytes(raw, "big")
    assert error == SDP_INVALID_SERVICE_RECORD_HANDLE, error
    found = await client.search_attributes(
        [AUDIO_SINK_UUID],
        [(0x0000, 0x0000), sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID],
    )
    await client.disconnect()
    handles = [int(a.value.value) for rec in found for a in rec if a.id == 0x0000]
    assert handles == [NEW_SINK_HANDLE], handles
    await sleep(1.5)
    await conn.disconnect()
    await sleep(0.5)
    req = ctx.frame(
        "sdp_service_attribute_request", _sdp_pdus(ctx, SDP_SERVICE_ATTRIBUTE_REQUEST, 0)
    )
    err_frame = ctx.frame("sdp_error_response", _sdp_pdus(ctx, SDP_ERROR_RESPONSE, 1))
    assert req < err_frame
    p = _payload(ctx, err_frame)[9:]  # SDP PDU after H4 + ACL + L2CAP headers
    code = int.from_bytes(p[5:7], "big")
    assert code == SDP_INVALID_SERVICE_RECORD_HANDLE
    ctx.frame("sdp_request", _sdp_pdus(ctx, 0x06, 0))
    ctx.truth["sdp"] = {
        "requested_handle": OLD_SINK_HANDLE,
        "error_code": code,
        "error_name": "Invalid Service Record Handle",
        "current_sink_handle": NEW_SINK_HANDLE,
    }
    ctx.faults.append("ServiceAttributeRequest for a stale record handle: Error Response 0x0002")


# -----------------------------------------------------------------------------------------
# controller_reset / hardware_error
# -----------------------------------------------------------------------------------------
@scenario(
    "stack_restart_mid_stream",
    "Pairing, SDP and A2DP SBC streaming; 5 s into the stream the phone's Bluetooth stack "
    "restarts: HCI Reset (the controller drops the link; no Disconnection Complete), a new "
    "start-up; the headset's supervision timeout (5 s) ends its side, the phone pages it "
    "again, reconnects with the stored key, SDP, 4 s of A2DP, disconnect.",
    216,
    ["controller_reset"],
    "faults",
)
async def stack_restart_mid_stream(ctx: Ctx) -> None:
    ctx.phone.controller.implements_sc_host_support = True
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    hs.controller.supervision_timeout = HEADSET_SUPERVISION_TIMEOUT
    await ctx.power_on()
    conn = await ctx.connect()
    await ctx.secure(conn)
    await ctx.read_remote_version(conn)
    await ctx.sdp_query(conn)
    task = _stream_in_background(ctx, conn, 30.0)
    await sleep(6.0)
    await _stack_restart(ctx, task)
    await sleep(HEADSET_SUPERVISION_TIMEOUT * 0.000625 + 1.0)
    await _reconnect(ctx)
    _mark_restart(ctx)
    ctx.faults.append("phone's Bluetooth stack restarted mid-stream (HCI Reset)")


def _mark_restart(ctx: Ctx, after: int = 0) -> int:
    s = ctx.snoop
    resets = s.commands(OP_RESET)
    mid = [f for f in resets if f > max(after, 1)]
    reset = ctx.frame("hci_reset_mid_capture", mid)
    first_conn = s.events(EVT_CONNECTION_COMPLETE, 0)[0]
    assert first_conn < reset
    ctx.frame("connection_complete", [first_conn])
    ctx.frame("connection_complete_after_reset", _connections_after(ctx, reset))
    times = {r.number: r.time for r in s.records}
    # no Disconnection Complete for the dropped link (Vol 4 Part E 7.3.2)
    disc = s.events(0x05)
    assert not [f for f in disc if first_conn < f < reset], disc
    ctx.truth["reset"] = {
        "frame": reset,
        "time_s": round(times[reset], 6),
        "connections_before": 1,
        "links_dropped_without_disconnection_complete": 1,
    }
    return reset


@scenario(
    "hardware_error_mid_stream",
    "Pairing, SDP and A2DP SBC streaming; 5 s into the stream the controller reports "
    "Hardware Error 0x01; the phone's stack resets the controller (HCI Reset drops the link "
    "without Disconnection Complete) and initialises it again, then reconnects to the "
    "headset after its 5 s supervision timeout.",
    217,
    ["hardware_error", "controller_reset"],
    "faults",
)
async def hardware_error_mid_stream(ctx: Ctx) -> None:
    ctx.phone.controller.implements_sc_host_support = True
    hs = ctx.add_headset(HeadsetBehaviour(codecs=("sbc",)))
    hs.controller.supervision_timeout = HEADSET_SUPERVISION_TIMEOUT
    await ctx.power_on()
    conn = await ctx.connect()
    await ctx.secure(conn)
    await ctx.read_remote_version(conn)
    await ctx.sdp_query(conn)
    loop = asyncio.get_running_loop()
    error: asyncio.Future[int] = loop.create_future()

    def on_hardware_error(event: hci.HCI_Event) -> None:  # what the host does with 0x10
        if not error.done():
            error.set_result(event.parameters[0])

    ctx.phone.device.host.on_hci_hardware_error_event = on_hardware_error  # type: ignore[attr-defined]
    task = _stream_in_background(ctx, conn, 30.0)
    await sleep(6.0)
    ctx.phone.controller.hardware_error(0x01)
    code = await error
    await _stack_restart(ctx, task)
    await sleep(HEADSET_SUPERVISION_TIMEOUT * 0.000625 + 1.0)
    await _reconnect(ctx)
    hw = ctx.frame("hardware_error", ctx.snoop.events(EVT_HARDWARE_ERROR))
    reset = _mark_restart(ctx, after=hw)
    ctx.truth["hardware_error"] = {"code": code, "frame": hw, "reset_frame": reset}
    ctx.faults.append("controller Hardware Error 0x01 mid-stream; the host resets it")


# -----------------------------------------------------------------------------------------
# adv_interval_irregular
# -----------------------------------------------------------------------------------------
REGULAR = [
    # (address, name, interval ms, rssi)
    ("C4:7C:8D:6A:20:01", "Beacon-100ms", 100.0, -58),
    ("C4:7C:8D:6A:20:02", "Sensor-152.5ms", 152.5, -66),
    ("C4:7C:8D:6A:20:03", "Watch-211.25ms", 211.25, -71),
    ("C4:7C:8D:6A:20:04", "Lock-1s", 1000.0, -77),
]
SILENT = ("C4:7C:8D:6A:20:05", "Tracker-100ms", 100.0, -63)
#: the tracker advertises for BURST_S, then is silent for SILENCE_S (connected elsewhere)
BURST_S, SILENCE_S = 0.6, 4.0
SCAN_MS = 100.0
ADV_SCAN_SECONDS = 30.0


def _adv_data(name: str) -> bytes:
    return bytes(
        AdvertisingData(
            [
                data_types.Flags(
                    AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE
                    | AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
                ),
                data_types.CompleteLocalName(name),
            ]
        )
    )


@scenario(
    "le_adv_silent_advertiser",
    "Passive LE scan at 100 % duty (interval = window = 100 ms) for 30 s; four legacy "
    "advertisers keep to 100, 152.5, 211.25 and 1000 ms (+ 0-10 ms advDelay) while a "
    "tracker advertising every 100 ms stops for 4 s after every 0.6 s burst (it is "
    "connected elsewhere): it is heard far less often than its interval predicts.",
    218,
    ["adv_interval_irregular"],
    "faults",
)
async def le_adv_silent_advertiser(ctx: Ctx) -> None:
    ctx.phone.controller.implements_sc_host_support = True
    phone = ctx.phone
    nodes = []
    for addr, name, _interval, rssi in [*REGULAR, SILENT]:
        node = ctx.world.add_node(name, addr, classic=False, le=True)
        node.controller.rssi = rssi
        nodes.append(node)
    ctx.configure_phone()
    await phone.device.power_on()
    for node, (_addr, name, interval, _rssi) in zip(nodes, [*REGULAR, SILENT], strict=True):
        await node.device.power_on()
        await node.device.start_advertising(
            advertising_data=_adv_data(name),
            advertising_interval_min=interval,
            advertising_interval_max=interval,
        )
        await sleep(0.013)
    tracker = nodes[-1].device
    await phone.device.start_scanning(
        legacy=True,
        active=False,
        scan_interval=SCAN_MS,
        scan_window=SCAN_MS,
        filter_duplicates=False,
    )

    async def duty() -> None:
        while True:
            await sleep(BURST_S)
            await tracker.stop_advertising()
            await sleep(SILENCE_S)
            await tracker.start_advertising(
                advertising_data=_adv_data(SILENT[1]),
                advertising_interval_min=SILENT[2],
                advertising_interval_max=SILENT[2],
            )

    task = asyncio.get_running_loop().create_task(duty())
    await sleep(ADV_SCAN_SECONDS)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await phone.device.stop_scanning()
    await sleep(0.1)
    tracker_addr = str(tracker.random_address)[:17]
    s = ctx.snoop
    reports = s.le_meta(0x02)
    ctx.frame("first_advertising_report", reports, 0)

    def report_addr(frame: int) -> str:
        p = _payload(ctx, frame)
        return str(hci.Address(p[7:13]))[:17]

    mine = [f for f in reports if report_addr(f) == tracker_addr]
    times = {r.number: r.time for r in s.records}
    stretches = [(a, b) for a, b in itertools.pairwise(mine) if times[b] - times[a] > 2.0]
    assert len(stretches) >= 5, stretches
    ctx.key_frames["tracker_report_before_silence"] = [a for a, _ in stretches]
    ctx.key_frames["tracker_report_after_silence"] = [b for _, b in stretches]
    ctx.truth["scan"] = {
        "interval_ms": SCAN_MS,
        "window_ms": SCAN_MS,
        "duty_cycle_percent": 100,
        "passive": True,
        "seconds": ADV_SCAN_SECONDS,
    }
    ctx.truth["advertisers"] = [
        {
            "address": str(n.device.random_address)[:17],
            "name": name,
            "adv_interval_ms": interval,
            "adv_delay_ms": [0, 10],
        }
        for n, (_a, name, interval, _r) in zip(nodes, [*REGULAR, SILENT], strict=True)
    ]
    ctx.truth["silent_advertiser"] = {
        "address": tracker_addr,
        "name": SILENT[1],
        "burst_s": BURST_S,
        "silence_s": SILENCE_S,
        "reports": len(mine),
        "silent_stretches_s": [
            [round(times[a], 6), round(times[b], 6), round(times[b] - times[a], 6)]
            for a, b in stretches
        ],
    }
    ctx.faults.append("one advertiser silent 4 s after every 0.6 s burst")
