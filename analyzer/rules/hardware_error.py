"""``hardware_error``: a Hardware Error event (Core v5.4 Vol 4 Part E §7.7.16) — the controller
reports a fault of its own (the code is vendor specific); hosts usually reset the controller
after it, dropping every link.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import HardwareError
from analyzer.rules.base import Finding, RuleContext, rule


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
    if a.scope.narrowed:
        return  # a one-device analysis: the controller's story is out of scope
    errs = a.controller.hardware_errors
    groups: dict[int | None, list[HardwareError]] = {}
    for e in errs:
        groups.setdefault(e.code, []).append(e)
    resets = a.controller.resets
    for code, es in groups.items():
        e = es[0]
        reset = next((r for r in resets if r.frame > e.frame), None)
        code_s = f"{code:#04x}" if isinstance(code, int) else "(no code)"
        yield ctx.finding(
            key=code_s,
            message=f"The Bluetooth controller reported Hardware Error {code_s} (frame "
            f"{e.frame})"
            + (f" {len(es)} times" if len(es) > 1 else "")
            + (f"; the stack reset it (frame {reset.frame})" if reset else ""),
            explanation="The Hardware Error event is how a controller reports a fault inside "
            "itself (firmware assert, transport or RF failure); the code is vendor specific. "
            "The host normally resets the controller, which drops every connection.",
            fix=f"Restart {a.host}; if it repeats, update its software and report the error "
            "with this log to its vendor (it points at the Bluetooth chip's firmware).",
            time_us=e.time_us,
            frames=[x.frame for x in es] + ([reset.frame] if reset else []),
            count=len(es),
            details={"code": code, "reset_frame": reset.frame if reset else None},
        )
