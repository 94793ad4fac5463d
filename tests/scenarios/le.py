"""LE scenarios: advertisers at known intervals scanned with 10 %, 25 % and 100 % duty cycle.

Advertising events: T_advEvent = advInterval + advDelay, advDelay pseudo-random in 0-10 ms
(Core Vol 6 Part B 4.4.2.2.1); the scanner listens scanWindow out of every scanInterval
(Vol 6 Part B 4.4.3).
"""

from __future__ import annotations

from bumble import data_types
from bumble.core import AdvertisingData

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
