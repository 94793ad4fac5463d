"""``rfcomm_refused``: a DLC the other side refused — DM in answer to SABM (RFCOMM 1.2 §5.1,
TS 07.10 §5.4.1: a station that will not accept a DLC answers SABM with DM). The profile is named
from the SDP record of the server channel. A later DLC to the same channel of the same device
that opened is a recovery (info); else a warning: the profile on that channel (hands-free, a
serial port) does not work.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterator

from analyzer.model import Analysis, RfcommDlc
from analyzer.model.analysis import memo
from analyzer.rules.base import Finding, RuleContext, rule
from analyzer.rules.queries import profile_label


def _reopened(a: Analysis, d: RfcommDlc) -> RfcommDlc | None:
    """A DLC to the same server channel on the link (or device) opened after the rejection
    (bisect in the opened DLCs, built once while the rules run)."""
    opened = memo(a, "rfcomm_refused:opened", lambda: _opened(a))
    keys = [("conn", d.connection, d.channel)]
    if d.address:
        keys.append(("addr", d.address, d.channel))
    found = []
    for key in keys:
        frames, dlcs = opened.get(key, ([], []))
        k = bisect.bisect_right(frames, d.rejected_frame or 0)
        while k < len(dlcs) and dlcs[k] is d:
            k += 1
        if k < len(dlcs):
            found.append((frames[k], dlcs[k]))
    return min(found, key=lambda x: x[0])[1] if found else None


def _opened(a: Analysis) -> dict[Hashable, tuple[list[int], list[RfcommDlc]]]:
    rows: dict[Hashable, list[tuple[int, int, RfcommDlc]]] = {}
    for n, o in enumerate(a.rfcomm):
        if o.open_frame is not None:
            for key in (("conn", o.connection, o.channel), ("addr", o.address, o.channel)):
                rows.setdefault(key, []).append((o.open_frame, n, o))
    out: dict[Hashable, tuple[list[int], list[RfcommDlc]]] = {}
    for k, v in rows.items():
        v.sort(key=lambda r: (r[0], r[1]))
        out[k] = ([r[0] for r in v], [r[2] for r in v])
    return out


@rule(
    id="rfcomm_refused",
    severity="warning",
    title="RFCOMM channel refused",
    summary="a DLC refused with DM in answer to SABM, naming the profile of the server channel "
    "(from SDP), and whether a later attempt opened it",
    example="Headset (AA:BB:CC:DD:EE:FF) refused the phone's RFCOMM channel 3 (Hands-Free) "
    "with DM (frame 212); no later attempt opened it",
)
def rfcomm_refused(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    for d in a.rfcomm:
        if d.rejected_frame is None:
            continue
        opener_local = d.initiator == "local" if d.dlci == 0 else d.server == "remote"
        refuser = a.device_label(d.address) if opener_local else a.host
        opener = a.host if opener_local else a.device_label(d.address)
        what = profile_label(d)
        ch = f"RFCOMM channel {d.channel}" if d.channel else "the RFCOMM multiplexer (DLCI 0)"
        again = _reopened(a, d)
        sev = "info" if again is not None else "warning"
        then = (
            f"; a later attempt opened it (frame {again.open_frame})"
            if again is not None
            else "; no later attempt opened it"
        )
        yield ctx.finding(
            key=f"{d.channel or 0}",
            severity=sev,
            message=f"{refuser[0].upper() + refuser[1:]} refused {opener}'s {ch} ({what}) with "
            f"DM (frame {d.rejected_frame}){then}",
            explanation=(
                f"{opener[0].upper() + opener[1:]} asked to open {ch}, which the SDP record "
                f"names as {what}; the other side answered Disconnected Mode, so nothing runs "
                "over that channel (RFCOMM 1.2 §5.1). Usual causes: the service is disabled or "
                "not registered on that channel any more (a stale SDP record), the device allows "
                "one connection to the profile and another phone holds it, or it wants a "
                "secure link first."
            )
            + (" The retry succeeded." if again is not None else ""),
            fix=(
                "Nothing to do: a later attempt opened the channel."
                if again is not None
                else f"Check that {what} is enabled on the refusing device and not held by "
                "another phone; repeat the SDP query so the channel number is current; forget "
                "and re-pair if it persists."
            ),
            address=d.address,
            connection=d.connection,
            frames=[f for f in (d.first_frame, d.sabm_frame, d.rejected_frame) if f is not None],
            details={"channel": d.channel, "dlci": d.dlci, "profile": d.profile,
                     "reopened_frame": again.open_frame if again else None},
        )  # fmt: skip
