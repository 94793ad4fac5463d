"""``firmware_changed``: a remote's LMP subversion/version or its SDP Device ID version differs
between two connections in the capture — the device's firmware was updated (or replaced)."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.rules.base import Finding, RuleContext, rule
from analyzer.rules.queries import FirmwareChange, firmware_changes


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
    by_addr: dict[str, list[FirmwareChange]] = {}
    for ch in firmware_changes(a):
        by_addr.setdefault(ch.address, []).append(ch)
    for addr, chs in by_addr.items():
        desc = "; ".join(c.describe() for c in chs)
        frames = sorted({f for c in chs for f in c.frames})
        yield ctx.finding(
            message=f"{desc} for {a.device_label(addr)} between frames {frames[0]} and "
            f"{frames[-1]}: its firmware was updated",
            explanation="The version a device reports (LMP subversion in Read Remote Version "
            "Information, or the version attribute 0x0203 of its SDP PnP Information record) "
            "only changes with new firmware. Updates and factory resets often erase the "
            "device's stored link keys, which breaks reconnection with hosts that still "
            "hold the old key.",
            fix=f"If the device no longer connects, forget it on {a.host} and pair it again.",
            address=addr,
            time_us=chs[0].time_us,
            frames=frames,
            count=1,
            key=f"{addr}/{chs[0].field}",
            details={"changes": [c.describe() for c in chs]},
        )
