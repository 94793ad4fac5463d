"""``wrong_transport``: BR/EDR paging (Create Connection, Core v5.4 Vol 4 Part E §7.1.5) of an
address the capture knows only as an LE device — heard advertising or connected over LE, never
found by inquiry, never on a BR/EDR link, no BR/EDR key — failing with Page Timeout (0x04). An
LE-only device does not page scan, so the page can never succeed: the app or stack connected it
over the wrong transport (on Android: connectGatt / createBond without TRANSPORT_LE on a device
whose type is unknown or dual). Advertising data with the Flags bit "BR/EDR Not Supported"
(Core Supplement Part A §1.3) or a random address (LE only, Vol 6 Part B §1.3) prove it.
``connection_failed`` still reports the page timeouts; this rule says why they happened.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Connection
from analyzer.rules.base import Finding, RuleContext, rule
from analyzer.rules.queries import le_only_evidence


@rule(
    id="wrong_transport",
    severity="warning",
    title="LE device paged over BR/EDR",
    summary="BR/EDR pages (Create Connection) timing out on an address known only as an LE "
    "device: the app or stack connected over the wrong transport",
    example="The phone paged Tracker (AA:BB:CC:DD:EE:FF) over BR/EDR 13 times, each ending in "
    "Page Timeout, but it is an LE-only device (its advertising flags say BR/EDR Not Supported)",
)
def wrong_transport(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    pages: dict[str, list[Connection]] = {}
    for c in a.connections:
        if (
            c.transport == "br_edr"
            and c.status == 0x04
            and c.initiator == "local"
            and c.address
            and c.benign is None
        ):
            pages.setdefault(c.address, []).append(c)
    for addr, cs in pages.items():
        why, le_frames = le_only_evidence(a, addr)
        if not why:
            continue
        times = f" {len(cs)} times" if len(cs) > 1 else ""
        yield ctx.finding(
            message=f"{a.Host} paged {a.device_label(addr)} over BR/EDR{times}, each ending in "
            f"Page Timeout, but it is known here only as an LE device ({'; '.join(why)})",
            explanation=(
                "An LE-only device never listens for BR/EDR pages, so these connection attempts "
                "could not succeed: the app or the Bluetooth stack chose the BR/EDR transport "
                "for a device it should have reached over LE. On Android this happens when "
                "connectGatt or createBond is called without TRANSPORT_LE for a device whose "
                "type the stack does not know (not scanned recently) or thinks is dual-mode."
            ),
            fix=(
                "Connect with the LE transport explicitly (Android: "
                "connectGatt(..., TRANSPORT_LE) / createBond(TRANSPORT_LE)), and scan for the "
                "device before connecting so the stack knows it is LE; nothing is wrong with "
                "the device."
            ),
            address=addr,
            connection=cs[0].id,
            time_us=cs[0].start_time_us,
            frames=sorted(
                {f for c in cs for f in (c.request_frame, c.start_frame) if f} | set(le_frames)
            ),
            count=len(cs),
            details={"pages": len(cs), "evidence": why, "connections": [c.id for c in cs]},
        )
