"""``avdtp_rejected``: an AVDTP command rejected (AVDTP 1.3 §8.20.6 error codes; A2DP §5.1.3
codec-specific codes 0xC1-0xE3), with the signal, error name, service category / SEID."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import AvdtpSignal
from analyzer.rules.base import Finding, RuleContext, rule

CATEGORY_NAMES = {
    1: "Media Transport",
    2: "Reporting",
    3: "Recovery",
    4: "Content Protection",
    5: "Header Compression",
    6: "Multiplexing",
    7: "Media Codec",
    8: "Delay Reporting",
}


@rule(
    id="avdtp_rejected",
    severity="error",
    title="AVDTP command rejected",
    summary="an AVDTP command was rejected (signal, error code, service category / SEID)",
    example="Headset (AA:BB:CC:DD:EE:FF) rejected AVDTP SET_CONFIGURATION (frame 335): 0x29 "
    "UNSUPPORTED_CONFIGURATION, category Media Codec (codec AAC)",
)
def avdtp_rejected(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    groups: dict[tuple[str | None, str, int | None, int | None], list[AvdtpSignal]] = {}
    for s in a.avdtp_signals:
        if s.response == "reject":
            groups.setdefault(
                (s.connection, s.signal, s.error_code, s.service_category), []
            ).append(s)
    for (conn_id, signal, code, cat), sigs in groups.items():
        s = sigs[0]
        conn = a.connection(conn_id)
        addr = conn.address if conn else None
        rejecter = a.device_label(addr) if s.direction == "sent" else a.host
        extra = []
        if cat is not None:
            extra.append(f"category {CATEGORY_NAMES.get(cat, hex(cat))}")
        if s.details.failing_seid is not None:
            extra.append(f"SEID {s.details.failing_seid}")
        codecs = sorted({x.details.codec for x in sigs if x.details.codec})
        if codecs:
            extra.append(f"codec {', '.join(codecs)}")
        code_s = f"{code:#04x} {s.error_name}" if code is not None else "no error code"
        yield ctx.finding(
            message=f"{rejecter} rejected AVDTP {signal} (frame {s.response_frame}): {code_s}"
            + (f", {', '.join(extra)}" if extra else "")
            + (f" ({len(sigs)} times)" if len(sigs) > 1 else ""),
            explanation="AVDTP sets up an A2DP stream with commands the other side must accept. "
            f"A reject of {signal} stops the negotiation at that step; after a rejected "
            f"SET_CONFIGURATION {a.host} may try another codec or give up on A2DP.",
            fix=(
                "SBC, the codec every A2DP device must accept (A2DP 1.4 §4.3), was the one "
                "rejected: the rejecting side's firmware is at fault — update it, and compare "
                "the configuration with the capabilities it advertised (GET_CAPABILITIES)."
                if codecs == ["SBC"]
                else "Check that both devices support a common codec configuration (disable "
                "optional codecs such as AAC/LDAC in the host's settings — Android: developer "
                "options — to test with SBC); update the headset's firmware."
            ),
            address=addr,
            connection=conn_id,
            time_us=s.response_time_us,
            frames=[f for x in sigs for f in (x.command_frame or 0, x.response_frame or 0)],
            count=len(sigs),
            details={
                "signal": signal,
                "error_code": code,
                "error_name": s.error_name,
                "service_category": cat,
                "codecs": codecs,
                "seid": s.details.failing_seid if s.details.failing_seid is not None else s.seid,
            },
        )
