"""``late_response``: a request answered, but only after the deadline (default 7 s)."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.rules.queries import Exchange, exchanges

DEADLINE = Threshold("deadline_s", 7.0, "s", "responses later than this are late")
#: a page / LE connect completes when the device answers, within the Page Timeout the host set:
#: one that succeeded was not late (Core Vol 4 Part E §7.1.5, §7.8.12)
CONNECTION_CREATION = frozenset({0x0405, 0x200D, 0x2043})


@rule(
    id="late_response",
    severity="warning",
    title="Response came after the deadline",
    summary="a request was answered, but later than the deadline",
    thresholds=[DEADLINE],
    example="AVDTP SET_CONFIGURATION (frame 335) answered after 8.2 s (frame 341), over the "
    "7 s deadline: the remote device was slow",
)
def late_response(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    rt = ctx.config.overrides.get("response_timeout", {}).get("deadline_s")
    default = ctx.config.overrides.get("late_response", {}).get("deadline_s", rt or 7.0)
    groups: dict[tuple[str, str | None], list[tuple[Exchange, float]]] = {}
    for ex in exchanges(a):
        if ex.response_time_us is None or ex.completion_status:
            continue  # a failed completion (e.g. Page Timeout) is connection_failed's story
        if ex.layer == "hci_completion" and ex.opcode in CONNECTION_CREATION:
            continue  # a page or LE connect that succeeded did so within its own timeout
        dl = ex.deadline(default)
        took = (ex.response_time_us - ex.request_time_us) / 1e6
        if took > dl:
            groups.setdefault((ex.what, ex.connection), []).append((ex, took))
    for (what, conn), items in groups.items():
        ex, took = items[0]
        dl = ex.deadline(default)
        yield ctx.finding(
            key=f"{ex.layer}/{what}",
            message=f"{what} (frame {ex.request_frame}) answered after {took:.1f} s (frame "
            f"{ex.response_frame}), over the {dl:g} s deadline: the {ex.silent} was slow"
            + (f" ({len(items)} times)" if len(items) > 1 else ""),
            explanation="The answer came, but after the time a device in pairing mode or a "
            "user typically waits; steps that take this long often make the attempt fail.",
            fix="Check the slow side (interference, busy radio with many links, a stack stuck "
            "on another task); retry closer to the device.",
            address=ex.address,
            connection=conn,
            time_us=ex.request_time_us,
            frames=[f for e, _ in items for f in (e.request_frame, e.response_frame or 0)],
            count=len(items),
            details={
                "layer": ex.layer,
                "request": what,
                "seconds": round(took, 3),
                "slow_side": ex.silent,
                "deadline_s": dl,
            },
        )
