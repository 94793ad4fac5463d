"""``firmware_changed``: a remote's LMP subversion/version or its SDP Device ID version differs
between two connections in the capture — the device's firmware was updated (or replaced)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from analyzer.analysis import Analysis
from analyzer.rules.base import Finding, RuleContext, rule

FIELD_LABELS = {
    "lmp_subversion": "LMP subversion",
    "lmp_version": "LMP version",
    "version": "Device ID version",
    "product_id": "Device ID product",
}


def firmware_changes(a: Analysis) -> list[dict[str, Any]]:
    """Each change: {address, field, before, after, frames: [before, after], time_us}."""
    out: list[dict[str, Any]] = []
    for d in a.devices:
        if d.role == "local":
            continue
        for series, fields in (
            (d.versions_seen, ("lmp_subversion", "lmp_version")),
            (d.device_ids_seen, ("version", "product_id")),
        ):
            for prev, cur in itertools.pairwise(series):
                if prev.get("connection") == cur.get("connection"):
                    continue
                for f in fields:
                    if prev.get(f) is not None and cur.get(f) is not None and prev[f] != cur[f]:
                        out.append(
                            {
                                "address": d.address,
                                "field": f,
                                "label": FIELD_LABELS[f],
                                "before": prev[f],
                                "after": cur[f],
                                "frames": [prev["frame"], cur["frame"]],
                                "time_us": cur["time_us"],
                                "source": "Read Remote Version Information"
                                if series is d.versions_seen
                                else "SDP Device ID (PnP Information)",
                            }
                        )
    return out


@rule(
    id="firmware_changed",
    severity="warning",
    title="Remote firmware changed",
    summary="a remote's LMP subversion or SDP Device ID version differs between two connections",
    example="LMP subversion of Headset (AA:BB:CC:DD:EE:FF) changed 0x1234 → 0x1240 between "
    "frames 120 and 2210: its firmware was updated",
)
def firmware_changed(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    by_addr: dict[str, list[dict[str, Any]]] = {}
    for ch in firmware_changes(a):
        by_addr.setdefault(ch["address"], []).append(ch)
    for addr, chs in by_addr.items():
        desc = "; ".join(f"{c['label']} {c['before']:#x} → {c['after']:#x}" for c in chs)
        frames = sorted({f for c in chs for f in c["frames"]})
        yield ctx.finding(
            message=f"{desc} for {a.device_label(addr)} between frames {frames[0]} and "
            f"{frames[-1]}: its firmware was updated",
            explanation="The version a device reports (LMP subversion in Read Remote Version "
            "Information, or the version attribute 0x0203 of its SDP PnP Information record) "
            "only changes with new firmware. Updates and factory resets often erase the "
            "device's stored link keys, which breaks reconnection with phones that still "
            "hold the old key.",
            fix="If the device no longer connects, forget it on the phone and pair it again.",
            address=addr,
            time_us=chs[0]["time_us"],
            frames=frames,
            count=1,
            details={"changes": chs},
        )
