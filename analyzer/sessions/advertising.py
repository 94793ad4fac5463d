"""LE advertisers: HCI advertising reports and sniffed advertising PDUs, with the advertising
interval of each advertiser.

Sources
* HCI LE Advertising Report (Core v5.4 Vol 4 Part E §7.7.65.2), LE Direct Advertising Report
  (§7.7.65.11) and LE Extended Advertising Report (§7.7.65.13; a report whose Data Status is 1,
  "incomplete, more data to come", is continued by the next reports of the same advertiser and
  SID — the fragments are joined and count as one report).
* Air captures: advertising channel PDUs (Vol 6 Part B §2.3). The PDUs an advertiser sends on
  channels 37, 38, 39 within one advertising event (at most 10 ms apart, §4.4.2.6) are grouped
  into one event.
The interval of each advertiser comes from :mod:`analyzer.sessions.adv_interval`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import polars as pl

from analyzer.capture import release_heap
from analyzer.decode.adv_reports import (
    Pending,
    ad_flags_columnar,
    advertising_reports,
    pending_reports,
)
from analyzer.decode.hci import decode_command
from analyzer.decode.le_adv import AdvData, decode_ad
from analyzer.decode.le_ll import ADV_PDU_TYPES, addr_str, adv_columns, decode_adv_pdu
from analyzer.model import (
    Advertiser,
    AdvertisingSummary,
    Manufacturer,
    RssiStats,
    ScanParameters,
    ScanSession,
    TimelineEvent,
)
from analyzer.sessions.adv_interval import (
    MERGE_MS,
    IntervalEstimate,
    estimate_interval,
    gap_histogram,
)
from analyzer.sessions.adv_segments import ScanTimeline, Train, segment_train, whole_train
from analyzer.sessions.build import BuildContext, stage

#: LE Meta events read per step (a long scan has millions: their bytes are copied a slice at
#: a time)
ADV_SLICE = 1 << 18

ADDRESS_TYPES = {
    0: "public",
    1: "random",
    2: "public_identity",
    3: "random_identity",
    0xFF: "anonymous",
}
#: HCI reports closer than this belong to one advertising event (heard on two channels)
# -- HCI reports ---------------------------------------------------------------------------------


def _scan_filtering(ctx: BuildContext) -> tuple[list[tuple[int, int, int]], list[ScanParameters]]:
    """Scan sessions from LE Set (Extended) Scan Enable: (start frame, end frame, filter_dup),
    and every LE Set (Extended) Scan Parameters (the first PHY's, for the extended form)."""
    cmds = ctx.idx.filter(
        (pl.col("kind") == "command") & pl.col("opcode").is_in([0x200C, 0x2042, 0x200B, 0x2041])
    )
    sessions: list[tuple[int, int, int]] = []
    params: list[ScanParameters] = []
    buf = ctx.cap.buffer
    cur: tuple[int, int] | None = None  # (start frame, filter)
    for frame, off, ln in cmds.select("index", "offset", "length").iter_rows():
        cmd = decode_command(bytes(buf[off : off + ln]))
        f = cmd.fields
        if "scan_enable" in f:
            if cur is not None:
                sessions.append((cur[0], frame, cur[1]))
                cur = None
            if f["scan_enable"]:
                cur = (frame, f["filter_duplicates"])
            continue
        first = f["phys"][0] if f.get("phys") else f
        iv, win = first.get("scan_interval"), first.get("scan_window")
        if iv is None or win is None:
            continue
        params.append(
            ScanParameters(
                frame=frame,
                scan_type="active" if first["scan_type"] else "passive",
                interval_ms=iv * 0.625,
                window_ms=win * 0.625,
                duty_cycle=round(win / iv, 3) if iv else None,
            )
        )
    if cur is not None:
        sessions.append((cur[0], 1 << 62, cur[1]))
    return sessions, params


def _scan_for(params: list[ScanParameters], frame: int) -> tuple[float, float] | None:
    """(interval, window) ms of the last scan parameters set before ``frame``."""
    best = None
    for p in params:
        if p.frame <= frame and p.interval_ms:
            best = (p.interval_ms, p.window_ms)
    return best


# -- building advertisers ------------------------------------------------------------------------


class _Acc:
    __slots__ = ("addr_type", "channels", "datas", "frames", "rssi", "scan_rsp", "times", "types")

    def __init__(self, addr_type: int | None) -> None:
        self.addr_type = addr_type
        self.frames: list[int] = []
        self.times: list[int] = []
        self.rssi: list[int] = []
        self.types: dict[str, int] = {}
        self.datas: set[bytes] = set()
        self.scan_rsp: list[bool] = []
        self.channels: dict[str, int] = {}


def _finish_advertiser(
    addr: str, acc: _Acc, cache: dict[bytes, AdvData], source: str, event_times: np.ndarray
) -> Advertiser:
    a = Advertiser(addr, ADDRESS_TYPES.get(acc.addr_type) if acc.addr_type is not None else None)
    a.source = source
    a.reports = len(acc.frames)
    a.pdu_types = dict(sorted(acc.types.items()))
    a.channels = acc.channels
    if acc.frames:
        a.first_frame, a.last_frame = min(acc.frames), max(acc.frames)
        a.first_time_us, a.last_time_us = min(acc.times), max(acc.times)
    rs = [r for r in acc.rssi if r is not None]
    if rs:
        arr = np.asarray(rs, dtype=np.float64)
        a.rssi = RssiStats(float(arr.min()), float(arr.max()), round(float(arr.mean()), 1))
    for d in sorted(acc.datas):
        ad = cache.get(d)
        if ad is None:
            ad = cache[d] = decode_ad(d)
        if ad.name and (a.name is None or ad.name_complete):
            a.name = ad.name
        for u in ad.service_uuids:
            if u not in a.service_uuids:
                a.service_uuids.append(u)
        if ad.manufacturer_id is not None and a.manufacturer is None:
            a.manufacturer = Manufacturer(ad.manufacturer_id, ad.manufacturer_name)
        a.tx_power = ad.tx_power if ad.tx_power is not None else a.tx_power
        a.appearance = ad.appearance if ad.appearance is not None else a.appearance
        a.flags = ad.flags if ad.flags is not None else a.flags
    a.events = int(event_times.size)
    return a


@stage("advertising")
def advertising(ctx: BuildContext) -> None:
    """Advertisers from HCI reports and from sniffed advertising PDUs."""
    analysis = ctx.analysis
    cache: dict[bytes, AdvData] = {}
    advertisers: list[Advertiser] = []
    fast_datas: dict[str, set[bytes]] = {}
    sessions, scan_params = _scan_filtering(ctx)
    scan_on, scan_at = _scan_on_times(ctx, sessions, scan_params)
    # (the report table is handed over, not kept here: it is freed once its columns are out)
    advertisers += _hci_advertisers(
        _reports(ctx, fast_datas), fast_datas, cache, sessions, scan_params, scan_on, scan_at
    )
    advertisers += _air(ctx, cache)
    advertisers.sort(key=lambda a: (-a.reports, a.address))
    analysis.advertisers = advertisers
    if advertisers or scan_params:
        analysis.advertising = AdvertisingSummary(
            scan_parameters=scan_params,
            scan_sessions=[ScanSession(s, e if e < (1 << 62) else None, f) for s, e, f in sessions],
            reports=sum(a.reports for a in advertisers),
            advertisers=len(advertisers),
        )
    for a in advertisers[:50]:
        if a.first_time_us is not None and a.first_frame is not None:
            label = f"{a.name} " if a.name else ""
            iv = f", every {a.interval_ms:.1f} ms" if a.interval_ms else ""
            analysis.timeline.append(
                TimelineEvent(a.first_time_us, a.first_frame, a.address, "adv",
                              f"advertising {label}({a.reports} reports{iv})")
            )  # fmt: skip


def _reports(ctx: BuildContext, fast_datas: dict[str, set[bytes]]) -> pl.DataFrame:
    """Every HCI advertising report of the capture, in frame order (distinct advertising data
    of the columnar ones go to ``fast_datas``). The reports' bytes are copied out a slice of
    events at a time into one array each (no bytes object per report): the columnar gathers
    never map the whole capture file, and a long scan's millions of reports never have their
    bytes and temporaries all at once."""
    ev = ctx.idx.filter(
        (pl.col("kind") == "event") & pl.col("subevent").is_in([0x02, 0x0D, 0x0B])
    ).select("index", "time_us", "offset", "length", "subevent")
    parts: list[pl.DataFrame] = []
    pending: Pending = {}
    for first in range(0, ev.height, ADV_SLICE):
        part = ev.slice(first, ADV_SLICE)
        packed, starts = ctx.cap.packed(part["offset"].to_numpy(), part["length"].to_numpy())
        part = part.with_columns(pl.Series("offset", starts))
        parts.append(advertising_reports(packed, packed.data, part, fast_datas, pending))
    parts.append(pending_reports(pending))
    reports = pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]
    return reports if reports["frame"].is_sorted() else reports.sort("frame", maintain_order=True)


def _hci_advertisers(
    reports: pl.DataFrame,
    fast_datas: dict[str, set[bytes]],
    cache: dict[bytes, AdvData],
    sessions: list[tuple[int, int, int]],
    scan_params: list[ScanParameters],
    scan_on: np.ndarray | None,
    scan_at: ScanTimeline | None,
) -> list[Advertiser]:
    """One advertiser per address of the HCI reports. Per-address aggregates (PDU types, distinct
    data, RSSI) are computed for all addresses at once; the per-address loop only slices numpy
    arrays of the reports sorted by address and time."""
    if reports.height == 0:
        return []
    # every report heard (any advertiser): was the scanner working during a long gap?
    all_us = reports["time_us"].to_numpy()  # (in frame order: sorted unless time went back)
    if all_us.size > 1 and not bool((all_us[1:] >= all_us[:-1]).all()):
        all_us = np.sort(all_us)
    # integer codes for the addresses and PDU types (no string per report), the reports sorted
    # by (address, time, frame) as an index permutation applied to the numeric columns only
    names = reports["address"].unique().sort()
    pdu_names = reports["pdu"].unique().sort()
    code = names.search_sorted(reports["address"]).to_numpy()
    pcode = pdu_names.search_sorted(reports["pdu"]).to_numpy()
    frame = reports["frame"].to_numpy()
    time_us = reports["time_us"].to_numpy()
    order = np.lexsort((frame, time_us, code))
    code, pc, fr, tt = code[order], pcode[order], frame[order], time_us[order]
    at = reports["addr_type"].to_numpy()[order]
    flags = reports["ad_flags"].fill_null(-1).to_numpy()[order]
    rs = reports["rssi"].cast(pl.Float64).to_numpy()[order]  # a missing RSSI is NaN
    del order
    starts = np.flatnonzero(np.concatenate([[True], code[1:] != code[:-1]]))
    ends = np.concatenate([starts[1:], [code.size]])
    addr_of = names.to_list()
    pdu_of = pdu_names.to_list()
    adv_ev = np.asarray(["SCAN_RSP" not in x for x in pdu_of], dtype=bool)[pc]
    types: dict[str, dict[str, int]] = {}
    pairs, counts = np.unique(code.astype(np.int64) * len(pdu_of) + pc, return_counts=True)
    for pair, n in zip(pairs.tolist(), counts.tolist(), strict=True):
        types.setdefault(addr_of[pair // len(pdu_of)], {})[pdu_of[pair % len(pdu_of)]] = n
    datas: dict[str, set[bytes]] = {
        ad: {d for d in ds if d}
        for ad, ds in reports.filter(pl.col("data").is_not_null())
        .group_by("address")
        .agg(pl.col("data").unique())
        .iter_rows()
    }
    heard = ~np.isnan(rs)
    n_rssi = np.add.reduceat(heard, starts)
    lo = np.fmin.reduceat(rs, starts)
    hi = np.fmax.reduceat(rs, starts)
    mean = np.add.reduceat(np.where(heard, rs, 0.0), starts) / np.maximum(n_rssi, 1)
    rssi = {
        addr_of[int(code[s0])]: RssiStats(float(lo[i]), float(hi[i]), round(float(mean[i]), 1))
        for i, s0 in enumerate(starts.tolist())
        if n_rssi[i]
    }
    # the columns are out: the table (a long scan: millions of rows) is not needed any more
    del reports, frame, time_us, pcode, rs, heard
    release_heap()
    filtering = [(s0, s1) for s0, s1, f in sessions if f]
    out: list[Advertiser] = []
    estimates: list[partial[None]] = []  # each advertiser's interval, done below
    for s0, s1 in zip(starts.tolist(), ends.tolist(), strict=True):
        a = addr_of[int(code[s0])]
        acc = _Acc(int(at[s0]))
        f_all = fr[s0:s1]
        acc.types = types.get(a, {})
        acc.datas = datas.get(a, set()) | fast_datas.get(a, set())
        ev = adv_ev[s0:s1]
        ev_t = tt[s0:s1][ev]
        adv = _finish_advertiser(a, acc, cache, "hci", ev_t)
        adv.reports = s1 - s0
        adv.first_frame, adv.last_frame = int(f_all.min()), int(f_all.max())
        adv.first_time_us, adv.last_time_us = int(tt[s0]), int(tt[s1 - 1])
        adv.rssi = rssi.get(a)
        filt = [b0 for b0, b1 in filtering if bool(((f_all >= b0) & (f_all <= b1)).any())]
        if filt:
            adv.interval_note = (
                "not estimable: scanning with duplicate filtering "
                f"(LE Set Scan Enable frame {filt[0]})"
            )
        train = Train(ev_t, f_all[ev], pc[s0:s1][ev], flags[s0:s1][ev], pdu_of)
        if filt:
            adv.segments = whole_train(train, adv.interval_note)
        else:
            estimates.append(partial(
                _interval, adv, ev_t, scan=_scan_for(scan_params, adv.first_frame), train=train,
                all_us=all_us, scan_on=scan_on, scan_at=scan_at,
            ))  # fmt: skip
        out.append(adv)
    _run_all(estimates, sum(len(e.args[1]) for e in estimates))
    return out


#: heard advertising events from which the advertisers' intervals are estimated on two threads
PARALLEL_EVENTS = 20_000


def _run_all(jobs: list[partial[None]], events: int) -> None:
    """Run the interval estimates (each writes its own advertiser; they share only read-only
    arrays): on two threads when there are several and enough events — the estimator is numpy
    on arrays large enough to release the GIL — else one after the other."""
    if len(jobs) < 2 or events < PARALLEL_EVENTS:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="adv-interval") as pool:
        for done in [pool.submit(job) for job in jobs]:
            done.result()  # (an estimate's exception is raised here)


def _scan_on_times(
    ctx: BuildContext, sessions: list[tuple[int, int, int]], params: list[ScanParameters]
) -> tuple[np.ndarray | None, ScanTimeline | None]:
    """(n, 2) µs [start, end] of the scan sessions (None when the capture shows none), and the
    scan parameters in force over time. Before the first LE Set Scan Enable the scanner's state
    is unknown: counted as on (a silence there still needs other advertisers heard throughout)."""
    frames = ctx.cap.frames
    if frames.height == 0:
        return None, None
    times = frames["time_us"].to_numpy()
    index = frames["index"].to_numpy()
    first, last = int(times.min()), int(times.max())

    def at(frame: int) -> int:
        return int(times[min(int(np.searchsorted(index, frame)), times.size - 1)])

    timeline = None
    if params:
        timeline = ScanTimeline(
            np.asarray([at(p.frame) for p in params], dtype=np.int64),
            np.asarray([p.interval_ms for p in params], dtype=np.float64),
            np.asarray([p.window_ms for p in params], dtype=np.float64),
        )
    if not sessions:
        return None, timeline
    out = [(at(s), at(e) if e < (1 << 62) else last) for s, e, _ in sessions]
    if out[0][0] > first:
        out.insert(0, (first, out[0][0]))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2), timeline


def _interval(
    adv: Advertiser,
    ev_t: np.ndarray,
    merge_ms: float = MERGE_MS,
    scan: tuple[float, float] | None = None,
    train: Train | None = None,
    all_us: np.ndarray | None = None,
    scan_on: np.ndarray | None = None,
    scan_at: ScanTimeline | None = None,
) -> None:
    est = estimate_interval(ev_t, merge_ms, scan)
    if train is not None:
        adv.segments, adv.silences = segment_train(train, est, all_us, scan_on, scan, scan_at)
        if len(adv.segments) > 1:
            longest = max(adv.segments, key=lambda g: (g.to_time_us - g.from_time_us, g.events))
            est = IntervalEstimate(longest.interval_ms, longest.confidence, longest.note)
    adv.interval_ms = est.interval_ms
    adv.interval_confidence = est.confidence if est.interval_ms is not None else 0.0
    adv.interval_note = est.note if est.interval_ms is not None else f"not estimable: {est.note}"
    if ev_t.size > 1:
        adv.gap_histogram = gap_histogram(ev_t, est.interval_ms)


# -- air -----------------------------------------------------------------------------------------


def _air(ctx: BuildContext, cache: dict[bytes, AdvData]) -> list[Advertiser]:
    f = ctx.cap.frames.filter(pl.col("kind") == "ll_adv")
    if f.height == 0:
        return []
    data = ctx.cap.data
    cols = adv_columns(data, f["offset"].to_numpy(), f["length"].to_numpy())
    t = cols["pdu_type"]
    adva = cols["adva"].copy()
    addr_rand = cols["tx_add"].copy()
    buf = ctx.cap.buffer
    offs = f["offset"].to_numpy()
    lens = f["length"].to_numpy()
    # extended PDUs: AdvA sits in the extended header, when present
    for i in np.nonzero((t == 7) | (t == 8))[0].tolist():
        p = decode_adv_pdu(bytes(buf[int(offs[i]) : int(offs[i]) + int(lens[i])]))
        if p.adv_a:
            adva[i] = int(p.adv_a.replace(":", ""), 16)
            addr_rand[i] = p.tx_add
    ok = adva >= 0
    frame = f["index"].to_numpy()
    tt = f["time_us"].to_numpy()
    ch = f["channel"].fill_null(-1).to_numpy()
    rssi = f["rssi"].to_numpy()  # nulls become NaN in float
    idx_ok = np.nonzero(ok)[0]
    if idx_ok.size == 0:
        return []
    keys = adva[idx_ok]
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    cuts = np.flatnonzero(np.diff(sk)) + 1
    groups = np.split(idx_ok[order], cuts)
    groups.sort(key=lambda gi: int(gi[0]))  # in order of first appearance
    d_all = cols["data_off"]
    flags = ad_flags_columnar(
        data, offs + d_all, np.where(d_all > 0, 6 + cols["pdu_len"] - d_all, 0)
    )
    out: list[Advertiser] = []
    for ii in groups:
        types = t[ii]
        addr = addr_str(int(adva[ii[0]]))
        rand0 = int(addr_rand[ii[0]])
        own = (types != 3) & (types != 5)  # SCAN_REQ / CONNECT_IND name it as their target
        acc = _Acc(rand0)
        for ty in types[~own].tolist():
            nm = f"{ADV_PDU_TYPES.get(ty, ty)} (to it)"
            acc.types[nm] = acc.types.get(nm, 0) + 1
        sel = ii[own]
        acc.frames = frame[sel].tolist()
        acc.times = tt[sel].tolist()
        r = rssi[sel]
        acc.rssi = [int(x) for x in r[~np.isnan(r.astype(np.float64))]] if r.size else []
        for ty in types[own].tolist():
            nm = ADV_PDU_TYPES.get(ty, f"0x{ty:X}")
            acc.types[nm] = acc.types.get(nm, 0) + 1
        for c in ch[sel].tolist():
            acc.channels[str(c)] = acc.channels.get(str(c), 0) + 1
        d_off = cols["data_off"][sel]
        for j, o in zip(sel.tolist(), d_off.tolist(), strict=True):
            if o > 0:
                pl_len = int(cols["pdu_len"][j])
                acc.datas.add(bytes(buf[int(offs[j]) + o : int(offs[j]) + 6 + pl_len]))
        # one advertising event = PDUs ≤ 10 ms apart on increasing channels; SCAN_RSP excluded
        to = types[own]
        ev_mask = (to <= 2) | (to == 6) | (to == 7)
        ev_i = sel[ev_mask]
        et = tt[ev_i]
        ec = ch[ev_i]
        order = np.argsort(et, kind="stable")
        et, ec, ev_i = et[order], ec[order], ev_i[order]
        if et.size:
            new = np.ones(et.size, dtype=bool)
            new[1:] = (np.diff(et) > 10_000) | (ec[1:] <= ec[:-1])
            ev_t, ev_i = et[new], ev_i[new]
        else:
            ev_t = et
        adv = _finish_advertiser(addr, acc, cache, "air", ev_t)
        adv.address_type = "random" if acc.addr_type == 1 else "public"
        train = Train.named(
            ev_t,
            frame[ev_i],
            [ADV_PDU_TYPES.get(x, f"0x{x:X}") for x in t[ev_i].tolist()],
            flags[ev_i].tolist(),
        )
        # no silences on air: a sniffer following a connection or hopping is not scanning
        _interval(adv, ev_t, merge_ms=1.0, train=train, all_us=None)
        out.append(adv)
    return out


__all__ = ["Advertiser", "IntervalEstimate", "estimate_interval", "gap_histogram"]
