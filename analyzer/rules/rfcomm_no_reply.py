"""``rfcomm_no_reply``: one side writes data on an RFCOMM DLC (a serial port: SPP, an OBD
dongle, a printer) and the other sends nothing but credits and empty frames (RFCOMM 1.2 §6.5:
credit-only UIH frames carry no data) until the writer closes the DLC — the peer's application is
not answering. Voice profiles (AT command channels) are covered by the HFP rules.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.rules.base import Finding, RuleContext, Threshold, rule
from analyzer.rules.queries import profile_label

MIN_WAIT = Threshold(
    "min_wait_s", 1.0, "s", "the writer waited at least this long for an answer before closing"
)


@rule(
    id="rfcomm_no_reply",
    severity="warning",
    title="RFCOMM peer never answered",
    summary="data written on a serial-port DLC answered by nothing but credits/empty frames "
    "until the writer closed it",
    thresholds=[MIN_WAIT],
    example="OBDII (AA:BB:CC:DD:EE:FF) sent nothing back on RFCOMM channel 1 (Serial Port): "
    "the phone wrote 110 bytes from frame 298, the dongle returned only credits, and the phone "
    "closed the channel after 2.3 s (frame 319)",
)
def rfcomm_no_reply(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    min_wait_us = ctx.threshold("min_wait_s") * 1e6
    for d in a.rfcomm:
        if not d.dlci or d.at or d.profile in ("hfp", "hsp") or d.close_frame is None:
            continue
        if d.closed_by not in ("local", "remote"):
            continue
        wrote = "sent" if d.closed_by == "local" else "received"
        silent = "received" if wrote == "sent" else "sent"
        if d.data_bytes.get(wrote, 0) == 0 or d.data_bytes.get(silent, 0) > 0:
            continue
        first = d.first_data_time_us.get(wrote)
        if first is None or d.close_time_us is None or d.close_time_us - first < min_wait_us:
            continue
        writer = a.host if wrote == "sent" else a.device_label(d.address)
        quiet = a.device_label(d.address) if wrote == "sent" else a.host
        what = profile_label(d)
        wait = (d.close_time_us - first) / 1e6
        n_empty = d.frames.get(silent, 0)
        yield ctx.finding(
            key=f"{d.channel}",
            message=f"{quiet[0].upper() + quiet[1:]} sent nothing back on RFCOMM channel "
            f"{d.channel} ({what}): {writer} wrote {d.data_bytes[wrote]} bytes from frame "
            f"{d.first_data_frame.get(wrote)}, the other side returned only "
            f"{n_empty} credit/control frame{'s' if n_empty != 1 else ''}, and {writer} closed "
            f"the channel after {wait:.1f} s (frame {d.close_frame})",
            explanation=(
                "The RFCOMM channel opened and flow control worked (credits came back), so the "
                "Bluetooth link is fine: the application behind the channel never answered the "
                "commands. Typical of a serial device that is busy, in the wrong mode or baud "
                "setting, or waiting for a different protocol or line ending."
            ),
            fix=(
                f"Check the device behind {what}: power-cycle it, check what protocol it "
                "expects (e.g. an ELM327 adapter wants commands ending in CR), and whether "
                "another app holds it; the phone side needs no change."
            ),
            address=d.address,
            connection=d.connection,
            time_us=d.close_time_us,
            frames=[f for f in (d.first_data_frame.get(wrote), d.close_frame) if f is not None],
            details={"channel": d.channel, "bytes_written": d.data_bytes[wrote],
                     "wait_s": round(wait, 3), "writer": d.closed_by},
        )  # fmt: skip
