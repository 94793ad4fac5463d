"""LE scenarios: advertisers at known intervals scanned with 10 %, 25 % and 100 % duty cycle.

Advertising events: T_advEvent = advInterval + advDelay, advDelay pseudo-random in 0-10 ms
(Core Vol 6 Part B 4.4.2.2.1); the scanner listens scanWindow out of every scanInterval
(Vol 6 Part B 4.4.3).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bumble import core, data_types, device, gatt
from bumble.core import BT_LE_TRANSPORT, AdvertisingData

from tests.scenarios.harness import sleep
from tests.scenarios.scenarios import Ctx, scenario

ADVERTISERS = [
    # (address, name, interval ms, rssi)
    ("C4:7C:8D:6A:10:01", "Tag-20ms", 20.0, -48),
    ("C4:7C:8D:6A:10:02", "Beacon-100ms", 100.0, -61),
    ("C4:7C:8D:6A:10:03", "Sensor-152.5ms", 152.5, -70),
    ("C4:7C:8D:6A:10:04", "Lock-1s", 1000.0, -77),
    ("C4:7C:8D:6A:10:05", "Scale-2s", 2000.0, -83),
]
SCAN_INTERVAL_MS = 100.0
SCAN_SECONDS = 20.0


def le_scan(name: str, seed: int, duty: int) -> None:
    window = SCAN_INTERVAL_MS * duty / 100

    async def run(ctx: Ctx) -> None:
        phone = ctx.phone
        nodes = []
        for addr, adv_name, _interval, rssi in ADVERTISERS:
            node = ctx.world.add_node(adv_name, addr, classic=False, le=True)
            node.controller.rssi = rssi
            nodes.append(node)
        ctx.configure_phone()
        await phone.device.power_on()
        for node, (_addr, adv_name, interval, _rssi) in zip(nodes, ADVERTISERS, strict=True):
            await node.device.power_on()
            data = bytes(
                AdvertisingData(
                    [
                        data_types.Flags(
                            AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE
                            | AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
                        ),
                        data_types.CompleteLocalName(adv_name),
                    ]
                )
            )
            await node.device.start_advertising(
                advertising_data=data,
                advertising_interval_min=interval,
                advertising_interval_max=interval,
            )
            await sleep(0.013)
        await phone.device.start_scanning(
            legacy=True,
            active=False,
            scan_interval=SCAN_INTERVAL_MS,
            scan_window=window,
            filter_duplicates=False,
        )
        await sleep(SCAN_SECONDS)
        await phone.device.stop_scanning()
        await sleep(0.1)
        ctx.truth["scan"] = {
            "interval_ms": SCAN_INTERVAL_MS,
            "window_ms": window,
            "duty_cycle_percent": duty,
            "passive": True,
            "seconds": SCAN_SECONDS,
        }
        ctx.truth["advertisers"] = [
            {
                "address": str(n.device.random_address)[:17],
                "address_type": "random static",
                "name": adv_name,
                "adv_interval_ms": interval,
                "adv_interval_units_0_625ms": round(interval / 0.625),
                "adv_delay_ms": [0, 10],
                "rssi_dbm": rssi,
            }
            for n, (_a, adv_name, interval, rssi) in zip(nodes, ADVERTISERS, strict=True)
        ]
        reports = ctx.snoop.le_meta(0x02)
        ctx.frame("first_advertising_report", reports, 0)
        ctx.truth["advertising_reports"] = len(reports)

    scenario(
        name,
        f"Passive LE scan, interval {SCAN_INTERVAL_MS:g} ms window {window:g} ms ({duty} % "
        "duty cycle), for 20 s; five legacy ADV_IND advertisers at 20, 100, 152.5, 1000 and "
        "2000 ms (+ 0-10 ms advDelay).",
        seed,
        [],
        "le",
    )(run)


le_scan("le_adv_scan_duty_10", 401, 10)
le_scan("le_adv_scan_duty_25", 402, 25)
le_scan("le_adv_scan_duty_100", 403, 100)


# -- unanswered SMP and ATT requests (the 30 s transaction timers, Vol 3 Part H §3.4, Part F
# §3.3.3) -------------------------------------------------------------------------------------

TRACKER = "C4:7C:8D:6A:30:01"


async def _le_link(ctx: Ctx) -> Any:
    """The phone connects over LE to a tracker that advertises connectably."""
    node = ctx.world.add_node("Tracker", TRACKER, classic=False, le=True)
    ctx.configure_phone()
    await ctx.phone.device.power_on()
    await node.device.power_on()
    await node.device.start_advertising(auto_restart=False)
    await sleep(0.2)
    conn = await ctx.phone.device.connect(node.device.random_address, transport=BT_LE_TRANSPORT)
    ctx.truth["peer"] = {"name": "Tracker", "address": str(node.device.random_address)[:17]}
    return node, conn


@scenario(
    "le_smp_unanswered",
    "The phone connects over LE and sends an SMP Pairing Request; the tracker's host never "
    "answers. The phone gives up after the SMP timeout (30 s) and disconnects.",
    911,
    ["response_timeout"],
    "faults",
)
async def le_smp_unanswered(ctx: Ctx) -> None:
    node, conn = await _le_link(ctx)
    node.device.smp_manager.on_smp_pdu = lambda _connection, _pdu: None  # a silent SMP layer
    ctx.faults.append("peripheral drops every SMP PDU")
    with contextlib.suppress(asyncio.TimeoutError, core.ProtocolError):
        await asyncio.wait_for(conn.pair(), timeout=35)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)
    ctx.frame(
        "smp_pairing_request", ctx.snoop.l2cap_frames(lambda cid, p: cid == 6 and p[:1] == b"\x01")
    )


@scenario(
    "le_att_unanswered",
    "The phone connects over LE, discovers the tracker's services, then reads its Device Name; "
    "the tracker's ATT server never answers the read. The phone waits out the ATT timeout "
    "(30 s) and disconnects.",
    912,
    ["response_timeout"],
    "faults",
)
async def le_att_unanswered(ctx: Ctx) -> None:
    node, conn = await _le_link(ctx)
    peer = device.Peer(conn)
    await peer.discover_services()
    await peer.discover_characteristics()
    server = node.device.gatt_server
    server.on_gatt_pdu = lambda _connection, _pdu: None  # the server stops answering
    ctx.faults.append("peripheral ATT server drops requests after discovery")
    chars = peer.get_characteristics_by_uuid(core.UUID.from_16_bits(0x2A00))
    with contextlib.suppress(asyncio.TimeoutError, core.ProtocolError, core.TimeoutError):
        await asyncio.wait_for(chars[0].read_value(), timeout=35)
    await sleep(1.0)
    await conn.disconnect()
    await sleep(0.5)
    reads = ctx.snoop.l2cap_frames(lambda cid, p: cid == 4 and p[:1] == b"\x0a")
    ctx.frame("att_read_request", reads, -1)


SECURE_SERVICE = "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"
SECURE_CHAR = "6E400002-B5A3-F393-E0A9-E50E24DCCA9E"


def att_refused(name: str, seed: int, retry: bool) -> None:
    """The phone writes a characteristic that requires an authenticated link; the tracker
    answers Insufficient Authentication. ``retry``: the phone pairs and writes again (LE
    pairing between the harness's virtual devices does not complete yet: not used)."""

    async def run(ctx: Ctx) -> None:
        node = ctx.world.add_node("Tracker", TRACKER, classic=False, le=True)
        chrc = gatt.Characteristic(
            SECURE_CHAR,
            gatt.Characteristic.Properties.WRITE,
            gatt.Characteristic.WRITEABLE | gatt.Characteristic.WRITE_REQUIRES_AUTHENTICATION,
            b"\x00",
        )
        node.device.add_service(gatt.Service(SECURE_SERVICE, [chrc]))
        ctx.configure_phone()
        await ctx.phone.device.power_on()
        await node.device.power_on()
        await node.device.start_advertising(auto_restart=False)
        await sleep(0.2)
        conn = await ctx.phone.device.connect(node.device.random_address, transport=BT_LE_TRANSPORT)
        peer = device.Peer(conn)
        await peer.discover_services()
        await peer.discover_characteristics()
        (target,) = peer.get_characteristics_by_uuid(core.UUID(SECURE_CHAR))
        with contextlib.suppress(core.ProtocolError):
            await target.write_value(b"\x01", with_response=True)
        if retry:
            await conn.pair()
            await sleep(0.2)
            await target.write_value(b"\x01", with_response=True)
        await sleep(0.3)
        await conn.disconnect()
        await sleep(0.5)
        errors = ctx.snoop.l2cap_frames(lambda cid, p: cid == 4 and p[:1] == b"\x01")
        ctx.frame("att_error_response", errors, -1)
        ctx.faults.append(
            "write requires authentication" + ("; the phone pairs and retries" if retry else "")
        )

    scenario(
        name,
        "LE: the phone writes a characteristic that requires an authenticated link and gets "
        "ATT Insufficient Authentication; "
        + ("it pairs and the retried write succeeds." if retry else "it disconnects at once."),
        seed,
        ["att_error"],
        "faults",
    )(run)


att_refused("le_att_insufficient_authentication", 913, False)
