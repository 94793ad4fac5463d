"""``codec_choice``: the headset offers a higher-quality A2DP codec than the one configured
(A2DP 1.4 §4.2-§4.7 codecs, ranked by :data:`analyzer.model.audio.CODEC_QUALITY_RANK`). The
capturing host's own codec list is usually not on the wire (the headset rarely discovers its
endpoints), so the host may not support that codec or may have it disabled: this is information,
not a fault — unless the host's endpoints were seen offering it too.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator

from analyzer.model import Connection, StreamEndpoint
from analyzer.model.analysis import memo
from analyzer.model.audio import CODEC_QUALITY_RANK as QUALITY_RANK
from analyzer.rules.base import Finding, RuleContext, rule
from analyzer.rules.queries import by_connection, group_by


def _codecs(eps: list[StreamEndpoint]) -> dict[str, int]:
    """codec name → endpoint frame for the endpoints given."""
    out: dict[str, int] = {}
    for ep in eps:
        for c in ep.codecs:
            name = c.codec
            if name and name not in out:
                out[name] = ep.frame or 0
    return out


@rule(
    id="codec_choice",
    severity="info",
    title="Better codec available",
    summary="the headset offers a higher-quality codec than the one configured (the phone's "
    "own list is usually not on the wire)",
    example="Headset (AA:BB:CC:DD:EE:FF) offers LDAC, AAC but the stream was configured with "
    "SBC (frame 104)",
)
def codec_choice(ctx: RuleContext) -> Iterator[Finding]:
    a = ctx.analysis
    seen: set[tuple[str | None, str]] = set()
    conns_of: dict[Hashable, list[Connection]] = memo(
        a, "connections_by_address", lambda: group_by(a.connections, lambda c: c.address)
    )
    eps_of: dict[Hashable, list[StreamEndpoint]] = by_connection(a, "avdtp_endpoints")
    offers: dict[tuple[str | None, str | None], tuple[dict[str, int], dict[str, int]]] = {}
    for st in a.avdtp_streams:
        if st.inferred or not st.codec or st.codec not in QUALITY_RANK:
            continue
        conn = a.connection(st.connection)
        addr = st.address or (conn.address if conn else None)
        if (addr, st.codec) in seen:
            continue
        # the codecs of the device's endpoints on any of its links (computed once per device)
        conns = {c.id for c in conns_of.get(addr, [])}
        key = (addr, None if st.connection in conns else st.connection)
        if key not in offers:
            eps = [
                e for cid in sorted(conns | {st.connection}, key=str) for e in eps_of.get(cid, [])
            ]
            eps.sort(key=lambda e: e.frame or 0)
            offers[key] = (
                _codecs([e for e in eps if e.side == "remote" and e.media_type == "audio"]),
                _codecs([e for e in eps if e.side == "local" and e.media_type == "audio"]),
            )
        remote, local = offers[key]
        have = QUALITY_RANK[st.codec]
        better = sorted(
            (n for n in remote if QUALITY_RANK.get(n, 0) > have),
            key=lambda n: -QUALITY_RANK.get(n, 0),
        )
        if local:  # the phone's endpoints are known: only codecs both sides have count
            better = [n for n in better if n in local]
        if not better or (addr, st.codec) in seen:
            continue
        seen.add((addr, st.codec))
        known = (
            f"The endpoints of {a.host} were seen offering it too, so both sides support it."
            if local
            else f"The own codec list of {a.host} is not on the wire (the headset did not ask for "
            "it), so it may not support that codec, or may have it disabled."
        )
        chooser = {"local": a.host, "remote": "the headset"}.get(
            st.configured_by or "", "the configuring side"
        )
        yield ctx.finding(
            message=f"{a.device_label(addr)} offers {', '.join(better)} but the stream was "
            f"configured with {st.codec} (frame {st.configure_frame}) by {chooser}",
            explanation="The side that sets up an A2DP stream picks one codec both support "
            f"(A2DP §4). The headset listed {', '.join(better)}, which carry more audio detail "
            f"than {st.codec}, yet {st.codec} was configured. {known}",
            fix="On Android, open Developer options → Bluetooth audio codec (or the device's "
            "'HD audio' switch) and pick the better codec; on other phones check for a codec "
            "or 'high quality audio' setting. Higher-bitrate codecs need a good radio link.",
            address=addr,
            connection=st.connection,
            time_us=next((s.time_us for s in st.states), None),
            frames=sorted({st.configure_frame or 0, *(remote[n] for n in better)} - {0}),
            details={
                "configured": st.codec,
                "offered_better": better,
                "remote_codecs": sorted(remote),
                "local_codecs": sorted(local) or None,
                "configured_by": st.configured_by,
            },
        )
