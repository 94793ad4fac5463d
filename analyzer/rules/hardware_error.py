"""``hardware_error``: a Hardware Error event (Core v5.4 Vol 4 Part E §7.7.16) — the controller
reports a fault of its own (the code is vendor specific); hosts usually reset the controller
after it, dropping every link.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from analyzer.rules.base import Finding, RuleContext, rule
from analyzer.rules.hci_command_failed import narrowed


@rule(
    id="hardware_error",
    severity="error",
    title="Controller hardware error",
    summary="the Bluetooth controller reported a Hardware Error event",
    example="The Bluetooth controller reported Hardware Error 0x02 (frame 5120); the stack "
    "reset it",
)
def hardware_error(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    if narrowed(a):
        return  # a one-device analysis: the controller's story is out of scope
    errs = (a.extra.get("controller") or {}).get("hardware_errors") or []
    groups: dict[Any, list[dict[str, Any]]] = {}
    for e in errs:
        groups.setdefault(e.get("code"), []).append(e)
    resets = (a.extra.get("controller") or {}).get("resets") or []
    for code, es in groups.items():
        e = es[0]
        reset = next((r for r in resets if r.get("frame", 0) > e.get("frame", 0)), None)
        code_s = f"{code:#04x}" if isinstance(code, int) else "(no code)"
        yield ctx.finding(
            message=f"The Bluetooth controller reported Hardware Error {code_s} (frame "
            f"{e.get('frame')})"
            + (f" {len(es)} times" if len(es) > 1 else "")
            + (f"; the stack reset it (frame {reset['frame']})" if reset else ""),
            explanation="The Hardware Error event is how a controller reports a fault inside "
            "itself (firmware assert, transport or RF failure); the code is vendor specific. "
            "The host normally resets the controller, which drops every connection.",
            fix="Restart the phone; if it repeats, update its software and report the error "
            "with this log to the phone vendor (it points at the Bluetooth chip's firmware).",
            time_us=e.get("time_us"),
            frames=[x.get("frame", 0) for x in es] + ([reset["frame"]] if reset else []),
            count=len(es),
            details={"code": code, "reset_frame": reset["frame"] if reset else None},
        )
