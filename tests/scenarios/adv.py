"""Advertisers that change (issue 15): an interval switch (fast, then slow advertising) and a
silence (advertising stopped for a while), under passive scans at several duty cycles, beside
steady advertisers that show the scanner was listening. Truth in the manifest: each
advertiser's segments (interval, from/to time) and silences.

Advertising events: advInterval + advDelay (0-10 ms), Core Vol 6 Part B §4.4.2.2.1; the harness
controller hears an event only inside a scan window (Vol 6 Part B §4.4.3).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.scenarios.harness import CLOCK_START, sleep
from tests.scenarios.scenarios import Ctx, scenario
from tests.scenarios.stack import _adv_data

SCAN_INTERVAL_MS = 100.0


def _now() -> float:
    """Virtual seconds since the capture started (the btsnoop clock, from CAPTURE_EPOCH)."""
    return asyncio.get_running_loop().time() - CLOCK_START


STEADY = [
    # (address, name, interval ms, rssi): heard throughout — the scanner was on
    ("C4:7C:8D:6A:40:01", "Beacon-100ms", 100.0, -58),
    ("C4:7C:8D:6A:40:02", "Watch-417.5ms", 417.5, -69),
]


async def _start(ctx: Ctx, advertisers: list[tuple[str, str, float, int]]) -> list:  # type: ignore[type-arg]
    nodes = []
    for addr, name, _interval, rssi in advertisers:
        node = ctx.world.add_node(name, addr, classic=False, le=True)
        node.controller.rssi = rssi
        nodes.append(node)
    ctx.configure_phone()
    await ctx.phone.device.power_on()
    for node, (_addr, name, interval, _rssi) in zip(nodes, advertisers, strict=True):
        await node.device.power_on()
        await _advertise(node.device, name, interval)
        await sleep(0.013)
    return nodes


async def _advertise(dev: Any, name: str, interval_ms: float) -> None:
    """Advertise ``name`` (General Discoverable) every ``interval_ms`` (+ advDelay)."""
    await dev.start_advertising(
        advertising_data=_adv_data(name),
        advertising_interval_min=interval_ms,
        advertising_interval_max=interval_ms,
    )


async def _scan(ctx: Ctx, duty: int, legacy: bool = True) -> float:
    """Start a passive scan (legacy, or extended: LE Set Extended Scan Enable); return the
    virtual time it started."""
    await ctx.phone.device.start_scanning(
        legacy=legacy,
        active=False,
        scan_interval=SCAN_INTERVAL_MS,
        scan_window=SCAN_INTERVAL_MS * duty / 100,
        filter_duplicates=False,
    )
    return _now()


def _truth_scan(ctx: Ctx, duty: int, seconds: float) -> None:
    ctx.truth["scan"] = {
        "interval_ms": SCAN_INTERVAL_MS,
        "window_ms": SCAN_INTERVAL_MS * duty / 100,
        "duty_cycle_percent": duty,
        "passive": True,
        "seconds": seconds,
    }


SWITCHER = ("C4:7C:8D:6A:40:10", "Earbud-switch", 0.0, -62)
FAST_MS, SLOW_MS, FAST_S, SLOW_S = 100.0, 1000.0, 12.0, 60.0


def interval_change(name: str, seed: int, duty: int) -> None:
    async def run(ctx: Ctx) -> None:
        nodes = await _start(ctx, STEADY)
        sw = ctx.world.add_node(SWITCHER[1], SWITCHER[0], classic=False, le=True)
        sw.controller.rssi = SWITCHER[3]
        await sw.device.power_on()
        t_scan = await _scan(ctx, duty)
        await sleep(0.5)
        t0 = _now()
        await _advertise(sw.device, SWITCHER[1], FAST_MS)
        await sleep(FAST_S)
        await sw.device.stop_advertising()
        t1 = _now()
        await _advertise(sw.device, SWITCHER[1], SLOW_MS)
        await sleep(SLOW_S)
        t2 = _now()
        await ctx.phone.device.stop_scanning()
        await sleep(0.1)
        _truth_scan(ctx, duty, t2 - t_scan)
        ctx.truth["advertisers"] = [
            {"address": str(n.device.random_address)[:17], "name": nm, "adv_interval_ms": iv,
             "segments": [{"interval_ms": iv}], "silences": []}
            for n, (_a, nm, iv, _r) in zip(nodes, STEADY, strict=True)
        ] + [
            {"address": str(sw.device.random_address)[:17], "name": SWITCHER[1],
             "adv_interval_ms": SLOW_MS,
             "segments": [
                 {"interval_ms": FAST_MS, "from_s": t0, "to_s": t1},
                 {"interval_ms": SLOW_MS, "from_s": t1, "to_s": t2},
             ],
             "silences": []},
        ]  # fmt: skip

    scenario(
        name,
        f"Passive LE scan at {duty} % duty (window {SCAN_INTERVAL_MS * duty / 100:g} of "
        f"{SCAN_INTERVAL_MS:g} ms); an earbud advertises every {FAST_MS:g} ms for {FAST_S:g} s, "
        f"then every {SLOW_MS:g} ms for {SLOW_S:g} s (fast, then slow advertising); two steady "
        "advertisers at 100 and 417.5 ms.",
        seed,
        ["adv_interval_irregular"],
        "le",
    )(run)


SILENT = ("C4:7C:8D:6A:40:20", "Tag-152.5ms", 152.5, -64)
BEFORE_S, SILENCE_S, AFTER_S = 12.0, 9.0, 12.0


def silence(name: str, seed: int, duty: int) -> None:
    async def run(ctx: Ctx) -> None:
        nodes = await _start(ctx, [*STEADY, SILENT])
        tag = nodes[-1].device
        t_scan = await _scan(ctx, duty)
        await sleep(BEFORE_S)
        await tag.stop_advertising()
        t1 = _now()
        await sleep(SILENCE_S)
        t2 = _now()
        await _advertise(tag, SILENT[1], SILENT[2])
        await sleep(AFTER_S)
        t3 = _now()
        await ctx.phone.device.stop_scanning()
        await sleep(0.1)
        _truth_scan(ctx, duty, t3 - t_scan)
        ctx.truth["advertisers"] = [
            {"address": str(n.device.random_address)[:17], "name": nm, "adv_interval_ms": iv,
             "segments": [{"interval_ms": iv}],
             "silences": [{"from_s": t1, "to_s": t2}] if nm == SILENT[1] else []}
            for n, (_a, nm, iv, _r) in zip(nodes, [*STEADY, SILENT], strict=True)
        ]  # fmt: skip

    scenario(
        name,
        f"Passive LE scan at {duty} % duty (window {SCAN_INTERVAL_MS * duty / 100:g} of "
        f"{SCAN_INTERVAL_MS:g} ms); a tag advertising every 152.5 ms stops for {SILENCE_S:g} s "
        "after 12 s and resumes; two steady advertisers at 100 and 417.5 ms heard throughout.",
        seed,
        ["adv_interval_irregular"],
        "faults",
    )(run)


interval_change("le_adv_interval_change_25", 1501, 25)
interval_change("le_adv_interval_change_100", 1502, 100)
silence("le_adv_silence_50", 1503, 50)
silence("le_adv_silence_100", 1504, 100)


MIXED_STEADY = [
    ("C4:7C:8D:6A:40:31", "Tag-20ms", 20.0, -52),
    ("C4:7C:8D:6A:40:32", "Watch-211.25ms", 211.25, -66),
    ("C4:7C:8D:6A:40:33", "Scale-2.5s", 2500.0, -74),
]
MIXED_SWITCHER = ("C4:7C:8D:6A:40:34", "Earbud-switch", 0.0, -60)
MIXED_SILENT = ("C4:7C:8D:6A:40:35", "Tag-152.5ms", 152.5, -63)


def mixed(name: str, seed: int, duty: int, extended: bool) -> None:
    """Steady advertisers from 20 ms to 2.5 s, one switching 100 -> 1000 ms, one silent for
    9 s, scanned with legacy or extended (LE Set Extended Scan Enable, 7.8.65) commands."""

    async def run(ctx: Ctx) -> None:
        if extended:  # the host then scans with the 5.0 commands; reports are extended ones
            from bumble import hci

            ctx.phone.controller.le_features |= hci.LeFeatureMask.LE_EXTENDED_ADVERTISING
        nodes = await _start(ctx, [*MIXED_STEADY, MIXED_SILENT])
        sw = ctx.world.add_node(MIXED_SWITCHER[1], MIXED_SWITCHER[0], classic=False, le=True)
        sw.controller.rssi = MIXED_SWITCHER[3]
        await sw.device.power_on()
        t_scan = await _scan(ctx, duty, legacy=not extended)
        t0 = _now()
        await _advertise(sw.device, MIXED_SWITCHER[1], FAST_MS)
        await sleep(FAST_S)
        await sw.device.stop_advertising()
        t1 = _now()
        await _advertise(sw.device, MIXED_SWITCHER[1], SLOW_MS)
        tag = nodes[-1].device
        await sleep(BEFORE_S)
        await tag.stop_advertising()
        s1 = _now()
        await sleep(SILENCE_S)
        s2 = _now()
        await _advertise(tag, MIXED_SILENT[1], MIXED_SILENT[2])
        await sleep(SLOW_S - BEFORE_S - SILENCE_S)
        t2 = _now()
        await ctx.phone.device.stop_scanning()
        await sleep(0.1)
        _truth_scan(ctx, duty, t2 - t_scan)
        ctx.truth["scan"]["extended"] = extended
        ctx.truth["advertisers"] = [
            {"address": str(n.device.random_address)[:17], "name": nm, "adv_interval_ms": iv,
             "segments": [{"interval_ms": iv}],
             "silences": [{"from_s": s1, "to_s": s2}] if nm == MIXED_SILENT[1] else []}
            for n, (_a, nm, iv, _r) in zip(nodes, [*MIXED_STEADY, MIXED_SILENT], strict=True)
        ] + [
            {"address": str(sw.device.random_address)[:17], "name": MIXED_SWITCHER[1],
             "adv_interval_ms": SLOW_MS,
             "segments": [
                 {"interval_ms": FAST_MS, "from_s": t0, "to_s": t1},
                 {"interval_ms": SLOW_MS, "from_s": t1, "to_s": t2},
             ],
             "silences": []},
        ]  # fmt: skip

    kind = "extended (LE Set Extended Scan Enable)" if extended else "legacy"
    scenario(
        name,
        f"Passive {kind} LE scan at {duty} % duty (window {SCAN_INTERVAL_MS * duty / 100:g} of "
        f"{SCAN_INTERVAL_MS:g} ms) for {FAST_S + SLOW_S:g} s; steady advertisers at 20, 211.25 "
        f"and 2500 ms, an earbud advertising every {FAST_MS:g} ms then every {SLOW_MS:g} ms, "
        f"and a tag at 152.5 ms silent for {SILENCE_S:g} s.",
        seed,
        ["adv_interval_irregular"],
        "faults",
    )(run)


mixed("le_adv_ext_scan_25", 1505, 25, True)
mixed("le_adv_ext_scan_100", 1506, 100, True)
mixed("le_adv_legacy_scan_50", 1507, 50, False)
