"""SCO/eSCO links: packet counts and gaps (columnar), the HFP/HSP session each one carries, and
its codec.

Core v5.4 Vol 4 Part E §7.7.35: Synchronous Connection Complete gives the link's handle, the
BD_ADDR (hence the ACL, set by the HCI tracker) and the air mode (0x00 µ-law, 0x01 A-law, 0x02
CVSD, 0x03 transparent data). With transparent air mode the codec is the one HFP negotiated last
(+BCS / AT+BCS, HFP 1.9 §4.11.3: 2 mSBC, 3 LC3-SWB); CVSD air mode means CVSD (codec id 1).
SCO data is often routed over PCM/I2S instead of HCI: then ``sco_packets`` is 0.
"""

from __future__ import annotations

import polars as pl

from analyzer.decode.at import CODECS
from analyzer.model import Connection, ScoGap, ScoLink
from analyzer.sessions.build import BuildContext, stage
from analyzer.sessions.hfp import HfpTracker
from analyzer.sessions.index import HANDLE_DTYPE
from analyzer.sessions.rfcomm import trackers

#: gaps between consecutive SCO packets (one direction) at least this long are listed
MIN_GAP_MS = 100.0
AIR_MODE_CODECS: dict[int, str] = {0: "u-law", 1: "A-law", 2: "CVSD"}


@stage("sco", after=("rfcomm",))
def sco_links(ctx: BuildContext) -> None:
    """Count SCO packets per link, tie each link to its HFP/HSP session (the ``rfcomm`` stage
    settles those) and name its codec."""
    links = [c for c in ctx.hci.connections if c.transport in ("sco", "esco") and c.status == 0]
    if not links:
        return
    stats = _packet_stats(ctx, links)
    trs = _by_link(trackers(ctx))
    for i, c in enumerate(links):
        sco = c.sco if c.sco is not None else ScoLink()
        c.sco = sco
        st = stats.get(i)
        if st is not None:
            sco.sco_packets, sco.sco_bytes = st.sco_packets, st.sco_bytes
            sco.sco_first_time_us, sco.sco_last_time_us = st.sco_first_time_us, st.sco_last_time_us
            sco.sco_gaps = st.sco_gaps
        tr = _session_for(c, trs)
        air = sco.air_mode
        if tr is not None:
            s = tr.session
            if c.id not in s.sco:
                s.sco.append(c.id)
            sco.hfp_connection = s.connection
            sco.hfp_dlci = s.dlci
            sco.profile = s.profile
        if air == 3:
            codec = tr.codec_at(c.start_frame or 0) if tr is not None else None
            sco.codec_id = codec
            sco.codec = CODECS.get(codec) if codec is not None else None
            sco.codec_source = "+BCS" if codec is not None else None
        elif air is not None and air in AIR_MODE_CODECS:
            sco.codec_id = 1 if air == 2 else None
            sco.codec = AIR_MODE_CODECS[air]
            sco.codec_source = "air_mode"
            if air == 2 and tr is not None and tr.session.codec is None:
                # no codec negotiation captured: CVSD is the mandatory default (HFP 1.9 §5.7.1)
                s = tr.session
                s.codec, s.codec_name, s.codec_frame = 1, "CVSD", c.start_frame


def _by_link(trs: list[HfpTracker]) -> dict[tuple[str, str | None], list[HfpTracker]]:
    """The trackers of each ACL and of each address (in session order)."""
    out: dict[tuple[str, str | None], list[HfpTracker]] = {}
    for tr in trs:
        out.setdefault(("acl", tr.session.connection), []).append(tr)
        if tr.session.address is not None:
            out.setdefault(("addr", tr.session.address), []).append(tr)
    return out


def _session_for(
    c: Connection, trs: dict[tuple[str, str | None], list[HfpTracker]]
) -> HfpTracker | None:
    """The HFP/HSP session on the same ACL (else the same address) alive when the link came up
    (``trs``: the trackers by link, :func:`_by_link`)."""
    start = c.start_frame or 0
    best: HfpTracker | None = None
    key = ("acl", c.acl) if c.acl is not None else ("addr", c.address)
    for tr in trs.get(key, []) if key[1] is not None else []:
        s = tr.session
        if s.start_frame > start:
            continue
        if s.end_frame is not None and s.end_frame < start:
            continue
        best = tr
    return best


def _packet_stats(ctx: BuildContext, links: list[Connection]) -> dict[int, ScoLink]:
    idx = ctx.idx
    sco = idx.filter(pl.col("kind") == "sco").select(
        "index", "time_us", "direction", "handle", "length"
    )
    if sco.height == 0:
        return {}
    last = ctx.last_index + 1
    ranges = pl.DataFrame(
        [(c.handle, c.start_frame or 0, c.end_frame or last, i) for i, c in enumerate(links)],
        schema={"handle": HANDLE_DTYPE, "s": pl.Int64, "e": pl.Int64, "link": pl.Int64},
        orient="row",
    ).sort("s")
    sco = (
        sco.sort("index")
        .join_asof(
            ranges,
            left_on="index",
            right_on="s",
            by="handle",
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col("link").is_not_null() & (pl.col("index") <= pl.col("e")))
        .with_columns(pl.col("direction").cast(pl.String).alias("dir"))
    )
    out: dict[int, ScoLink] = {}
    agg = sco.group_by("link", "dir").agg(
        pl.len().alias("n"),
        (pl.col("length") - 3).clip(lower_bound=0).sum().alias("b"),
        pl.col("time_us").min().alias("t0"),
        pl.col("time_us").max().alias("t1"),
    )
    for link, d, n, b, t0, t1 in agg.iter_rows():
        st = out.setdefault(int(link), ScoLink())
        if d in ("sent", "received"):
            setattr(st.sco_packets, d, int(n))
            setattr(st.sco_bytes, d, int(b))
        f0, f1 = st.sco_first_time_us, st.sco_last_time_us
        st.sco_first_time_us = int(t0) if f0 is None else min(f0, int(t0))
        st.sco_last_time_us = int(t1) if f1 is None else max(f1, int(t1))
    gaps = (
        sco.sort("link", "dir", "index")
        .with_columns(
            pl.col("index").shift(1).over("link", "dir").alias("prev"),
            (pl.col("time_us") - pl.col("time_us").shift(1).over("link", "dir")).alias("dt"),
        )
        .filter(pl.col("dt") >= int(MIN_GAP_MS * 1000))
        .sort("index")
    )
    for link, d, prev, frame, dt in gaps.select("link", "dir", "prev", "index", "dt").iter_rows():
        out.setdefault(int(link), ScoLink()).sco_gaps.append(
            ScoGap(d, int(prev), int(frame), dt / 1000)
        )
    return out


__all__ = ["MIN_GAP_MS", "sco_links"]
