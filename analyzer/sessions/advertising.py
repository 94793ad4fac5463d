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

Advertising interval (Vol 6 Part B §4.4.2.2.1): consecutive advertising events are
``advInterval + advDelay`` apart, advDelay pseudo-random in 0-10 ms. A scanner hears only some
events (scan window / interval, channel), so a gap between heard events is
``k·advInterval + (sum of k delays)``. :func:`estimate_interval` fits that comb: candidate
intervals come from the smallest gaps divided by small k; each is scored by a likelihood in which
gap *i* is Normal(k_i·(T+μ), k_i·σd² + σt²) with a geometric prior on k_i and an outlier floor;
the best is refined by weighted least squares ``T = Σ(g_i − μ·k_i) / Σk_i`` over inlier gaps.
The delay model (μ = 5 ms, σd² = 100/12 ms², or no advDelay at all) is chosen by likelihood too.
Confidence (0-1) falls with outliers, few or sparse gaps (large k), imprecision and a close
rival candidate (harmonics). No estimate (``None``) when a scanner filtered duplicates (LE Set
(Extended) Scan Enable Filter_Duplicates ≠ 0: the controller reports an advertiser once) or
there are too few events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from analyzer.decode.le_adv import AdvData, decode_ad
from analyzer.decode.le_ll import ADV_PDU_TYPES, addr_str, adv_columns, decode_adv_pdu
from analyzer.model import (
    Advertiser,
    AdvertisingSummary,
    GapHistogram,
    Manufacturer,
    RssiStats,
    ScanParameters,
    ScanSession,
    TimelineEvent,
)
from analyzer.sessions.build import BuildContext, post_pass

LEGACY_EVENT_TYPES = {
    0: "ADV_IND",
    1: "ADV_DIRECT_IND",
    2: "ADV_SCAN_IND",
    3: "ADV_NONCONN_IND",
    4: "SCAN_RSP",
}
ADDRESS_TYPES = {
    0: "public",
    1: "random",
    2: "public_identity",
    3: "random_identity",
    0xFF: "anonymous",
}
#: HCI reports closer than this belong to one advertising event (heard on two channels)
MERGE_MS = 3.0
MIN_GAPS = 5


# -- interval estimation -------------------------------------------------------------------------


@dataclass
class IntervalEstimate:
    interval_ms: float | None
    confidence: float
    note: str | None = None
    adv_delay: bool = True
    inliers: int = 0
    gaps: int = 0
    stderr_ms: float | None = None


_SIGMA_T2 = 0.25  # ms², timestamp noise per gap
_EPS = 0.05  # outlier share
_PRIOR_W = 0.3  # weight of the geometric prior on k (how many events one gap spans)


def _loglik(g: np.ndarray, T: np.ndarray, mu: float, sd2: float) -> np.ndarray:
    """Total log-likelihood of gaps ``g`` (n,) for each candidate interval ``T`` (C,)."""
    P = (T + mu)[:, None]
    k = np.maximum(1.0, np.rint(g[None, :] / P))
    r = g[None, :] - k * P
    var = k * sd2 + _SIGMA_T2
    ll = -0.5 * np.log(2 * np.pi * var) - r * r / (2 * var)
    p = np.clip(1.0 / k.mean(axis=1, keepdims=True), 1e-6, 0.999)
    ll = ll + _PRIOR_W * (np.log(p) + (k - 1) * np.log1p(-p))
    floor = np.log(_EPS) - np.log(max(float(g.max()), 1.0) + 1.0)
    tot: np.ndarray = np.logaddexp(np.log1p(-_EPS) + ll, floor).sum(axis=1)
    return tot


def _refine(
    g: np.ndarray, T: float, mu: float, sd2: float, strict_k: bool = True
) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Weighted least squares ``T = Σ(g_i − μ·k_i) / Σk_i`` over inlier gaps with a clear k."""
    inl = np.zeros(g.size, dtype=bool)
    k = np.ones(g.size)
    for _ in range(8):
        P = T + mu
        if P <= 0:
            return None
        k = np.maximum(1.0, np.rint(g / P))
        var = k * sd2 + _SIGMA_T2
        r = g - k * P
        inl = np.abs(r) <= 3.5 * np.sqrt(var)
        if strict_k:
            inl &= np.sqrt(k * sd2) < P / 4
        if inl.sum() < 3:
            return None
        T_new = float(np.sum(g[inl] - mu * k[inl]) / np.sum(k[inl]))
        done = abs(T_new - T) < 1e-4
        T = T_new
        if done:
            break
    return (T, inl, k) if T >= 10.0 else None


_S = np.linspace(0.0, 10.0, 201)


def _k1_score(g: np.ndarray, T: float, mu: float, si: float, sw: float) -> float | None:
    """Log-likelihood of the one-event gaps under interval ``T`` for a scanner whose window
    ``sw`` is shorter than the period: a gap g = T + d (d = advDelay, uniform 0-10 ms) is heard
    only if both events fall in scan windows, which happens with probability
    ``max(0, sw − |g − m·si|) / sw`` (m = nearest whole number of scan intervals); so
    p(g | T) ∝ max(0, sw − |g − m·si|) on T ≤ g < T + 10, normalised over d."""
    if not mu:
        return None
    k1 = g[np.rint(g / (T + mu)) == 1]
    if k1.size < 3:
        return None
    m = np.rint(k1 / si)
    u = np.abs(k1 - m * si)
    d = k1 - T
    w = np.maximum(sw - u, 0.0) / sw
    inside = (d >= -0.5) & (d < 10.5)
    dens = np.where(inside, w, 0.0) + 1e-3
    delta = T - m * si  # per gap
    z = np.maximum(sw - np.abs(delta[:, None] + _S[None, :]), 0.0).mean(axis=1) * 10.0 / sw
    return float(np.sum(np.log(dens) - np.log(z + 1e-3)))


def _alias_fit(
    g: np.ndarray,
    gs: np.ndarray,
    P: float,
    p_rate: float,
    mu: float,
    sd2: float,
    n: int,
    si: float,
    sw: float,
) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Aliased gaps: among periods near the hearing-rate estimate that explain (almost) every
    gap as a whole number of events, take the one closest to the rate estimate."""
    lo, hi = 0.6 * p_rate, 1.67 * p_rate
    base = np.unique(np.concatenate([gs[:20], np.quantile(gs, np.linspace(0, 1, 20))]))
    ks = np.arange(1, 200, dtype=np.float64)
    per = (base[:, None] / ks[None, :]).ravel()
    per = np.concatenate([per, P / np.arange(1, 33)])
    per = np.unique(np.round(per[(per >= lo) & (per <= hi) & (per - mu >= 15.0)], 2))
    if per.size > 300:
        per = per[np.linspace(0, per.size - 1, 300).astype(np.int64)]
    fits = [f for f in (_refine(g, x - mu, mu, sd2, strict_k=False) for x in per.tolist()) if f]
    if not fits:
        f0 = _refine(g, P - mu, mu, sd2, strict_k=False)
        if f0 is None:
            return P - mu, np.zeros(n, dtype=bool), np.ones(n), 0.0
        return f0[0], f0[1], f0[2], 0.1
    frac = np.asarray([f[1].mean() for f in fits])
    ok = [f for f, fr in zip(fits, frac, strict=True) if fr >= 0.9 * frac.max()]
    dist = np.asarray([abs(np.log((f[0] + mu) / p_rate)) for f in ok])
    near = [f for f, d in zip(ok, dist, strict=True) if d <= dist.min() + 2.0 / np.sqrt(n)]
    scores = [_k1_score(g, f[0], mu, si, sw) for f in near]
    scored = [(sc, f) for sc, f in zip(scores, near, strict=True) if sc is not None]
    if scored:
        scored.sort(key=lambda x: -x[0])
        best_sc, (T, inl, k) = scored[0]
        rivals = [sc for sc, f in scored[1:] if abs(f[0] - T) > max(1.0, 0.01 * T)]
        delta = best_sc - max(rivals) if rivals else 10.0
        c = 0.8 * (1.0 - float(np.exp(-max(delta, 0.0) / 2.0)))
    else:
        lls = _loglik(g, np.asarray([f[0] for f in near]), mu, sd2)
        i = int(np.argmax(lls))
        T, inl, k = near[i]
        tol = max(1.0, 0.01 * T)
        rival_ix = [jj for jj, f in enumerate(near) if abs(f[0] - T) > tol]
        if rival_ix:
            delta = float(lls[i] - max(lls[jj] for jj in rival_ix))
            c = 0.8 * (1.0 - float(np.exp(-max(delta, 0.0) / 3.0)))
        else:
            others = [f[0] for f in ok if abs(f[0] - T) > tol]
            sep = min((abs(np.log((o + mu) / (T + mu))) for o in others), default=1.0)
            c = 0.8 * min(1.0, float(sep * np.sqrt(n) / 3.0))
    return T, inl, k, c


def estimate_interval(
    times_us: np.ndarray | list[int],
    merge_ms: float = MERGE_MS,
    scan: tuple[float, float] | None = None,
) -> IntervalEstimate:
    """advInterval (ms) from the times of heard advertising events (see the module docstring).

    ``scan`` = (scan interval, scan window) in ms when the capture says how the scanner ran.
    A window shorter than the advertising period with a fitted period within one window of a
    multiple of the scan interval means every heard gap is ≈ a multiple of the scan interval
    whatever the advertiser does (aliasing): the gaps cannot tell T from T/2, T/3 …; then the
    harmonic is chosen by the hearing rate — a scanner with duty cycle w/s hears about
    ``span · duty / P`` events of period P — and confidence drops.
    """
    t = np.sort(np.asarray(times_us, dtype=np.float64)) / 1000.0
    if t.size:
        keep = np.concatenate([[True], np.diff(t) >= merge_ms])
        t = t[keep]
    g = np.diff(t)
    n = int(g.size)
    if n < MIN_GAPS:
        return IntervalEstimate(None, 0.0, f"too few advertising events ({t.size})", gaps=n)
    gs = np.sort(g)
    base = np.unique(np.concatenate([gs[:10], np.quantile(gs, np.linspace(0.0, 0.5, 40))]))
    ks = np.arange(1, 9, dtype=np.float64)
    sample = g if n <= 1000 else g[np.linspace(0, n - 1, 1000).astype(np.int64)]
    # candidate refinement on at most 2000 gaps (spread over the whole train); the chosen
    # interval is refined once more on every gap below
    g_fit = g if n <= 2000 else g[np.linspace(0, n - 1, 2000).astype(np.int64)]
    best: tuple[float, float, float, list[tuple[float, np.ndarray, np.ndarray]], np.ndarray]
    best = (-np.inf, 5.0, 0.0, [], np.zeros(0))
    for mu, sd2 in ((5.0, 100.0 / 12.0), (0.0, 0.05)):
        # a coarse 0.5 ms grid is enough: the least-squares refinement sets the precision
        cand = np.unique(np.round((base[:, None] / ks[None, :] - mu).ravel() * 2.0) / 2.0)
        cand = cand[cand >= 15.0]
        if cand.size == 0:
            continue
        if cand.size > 200:
            cand = cand[np.linspace(0, cand.size - 1, 200).astype(np.int64)]
        ll = _loglik(sample, cand, mu, sd2)
        # refine the best candidates and the harmonics of the best; compare refined fits
        top = cand[np.argsort(ll)[::-1][:8]].tolist()
        t0 = top[0]
        seeds = top + [h for h in ((t0 + mu) * 2 - mu, (t0 + mu) / 2 - mu, (t0 + mu) / 3 - mu)
                       if h >= 15.0]  # fmt: skip
        fits = [f for f in (_refine(g_fit, x, mu, sd2) for x in seeds) if f is not None]
        if not fits:
            continue
        lls = _loglik(sample, np.asarray([f[0] for f in fits]), mu, sd2)
        if float(lls.max()) > best[0]:
            best = (float(lls.max()), mu, sd2, fits, lls)
    _, mu, sd2, fits, lls = best
    if not fits:
        return IntervalEstimate(None, 0.0, "gaps fit no regular interval", gaps=n)
    b = int(np.argmax(lls))
    T, inl, k = fits[b]
    if g_fit is not g:
        full = _refine(g, T, mu, sd2)
        if full is not None:
            T, inl, k = full
    c_alias = 1.0
    note: str | None = None
    if scan is not None and scan[1] < scan[0] and scan[0] > 0:
        si, sw = scan
        P = T + mu
        off = abs(P - round(P / si) * si)
        if sw < P and off <= sw and round(P / si) >= 1:
            span = float(t[-1] - t[0])
            p_rate = span * (sw / si) / max(n, 1)
            gs_fit = gs if g_fit is g else np.sort(g_fit)
            T, inl, k, c_alias = _alias_fit(g_fit, gs_fit, P, p_rate, mu, sd2, g_fit.size, si, sw)
            note = (
                f"scan window {sw:g} ms shorter than the period: gaps alias to the "
                f"{si:g} ms scan interval; harmonic chosen from the hearing rate"
            )
    n_in = int(inl.sum())
    sk = float(np.sum(k[inl]))
    se = float(np.sqrt((sd2 * sk + _SIGMA_T2 * n_in) / (sk * sk)))
    tol = max(1.0, 0.01 * T)
    far = np.asarray([abs(f[0] - T) > max(2.0, 0.02 * T) for f in fits])
    tol = max(1.0, 0.01 * T)
    delta = float(lls[b] - lls[far].max()) if far.any() else 50.0
    c_amb = 1.0 - float(np.exp(-max(delta, 0.0) / 3.0)) if note is None else 1.0
    n_eff = float(np.sum(1.0 / k[inl]))
    c_n = 1.0 - float(np.exp(-n_eff / 5.0))
    c_prec = float(np.exp(-se / tol))
    f_in = n_in / inl.size
    conf = f_in * c_amb * c_n * c_prec * c_alias
    if not mu:
        note = "no advDelay seen (gaps are exact multiples)"
    if conf < 0.02:
        return IntervalEstimate(None, conf, "gaps too irregular for an interval", gaps=n)
    return IntervalEstimate(
        round(T, 3),
        round(min(max(conf, 0.0), 1.0), 3),
        note,
        adv_delay=bool(mu),
        inliers=n_in,
        gaps=n,
        stderr_ms=round(se, 3),
    )


def gap_histogram(times_us: np.ndarray, interval_ms: float | None) -> GapHistogram:
    t = np.sort(np.asarray(times_us, dtype=np.float64)) / 1000.0
    g = np.diff(t)
    g = g[g >= MERGE_MS]
    if g.size == 0:
        return GapHistogram()
    hi = float(np.quantile(g, 0.98)) if g.size > 10 else float(g.max())
    if interval_ms:
        hi = min(max(hi, interval_ms * 2.5), interval_ms * 12)
    counts, edges = np.histogram(g[g <= hi], bins=40, range=(0.0, max(hi, 1.0)))
    return GapHistogram([round(float(x), 2) for x in edges], [int(c) for c in counts])


# -- HCI reports ---------------------------------------------------------------------------------


def _scan_filtering(ctx: BuildContext) -> tuple[list[tuple[int, int, int]], list[ScanParameters]]:
    """Scan sessions from LE Set (Extended) Scan Enable: (start frame, end frame, filter_dup)."""
    idx = ctx.idx
    cmds = idx.filter(
        (pl.col("kind") == "command") & pl.col("opcode").is_in([0x200C, 0x2042, 0x200B, 0x2041])
    )
    sessions: list[tuple[int, int, int]] = []
    params: list[ScanParameters] = []
    buf = ctx.cap.buffer
    cur: tuple[int, int] | None = None  # (start frame, filter)
    for frame, off, ln, op in cmds.select("index", "offset", "length", "opcode").iter_rows():
        p = bytes(buf[off + 3 : off + ln])
        if op in (0x200C, 0x2042) and len(p) >= 2:
            if cur is not None:
                sessions.append((cur[0], frame, cur[1]))
                cur = None
            if p[0]:
                cur = (frame, p[1])
        elif op in (0x200B, 0x2041) and len(p) >= (5 if op == 0x200B else 8):
            q = p if op == 0x200B else p[3:]  # LE 1M (first PHY) parameters of the extended form
            iv, win = q[1] | (q[2] << 8), q[3] | (q[4] << 8)
            params.append(
                ScanParameters(
                    frame=frame,
                    scan_type="active" if q[0] else "passive",
                    interval_ms=iv * 0.625,
                    window_ms=win * 0.625,
                    duty_cycle=round(win / iv, 3) if iv else None,
                )
            )
    if cur is not None:
        sessions.append((cur[0], 1 << 62, cur[1]))
    return sessions, params


REPORT_SCHEMA = {
    "frame": pl.Int64, "time_us": pl.Int64, "address": pl.String, "addr_type": pl.Int64,
    "pdu": pl.String, "rssi": pl.Int64, "data": pl.Binary,
}  # fmt: skip


def _hci_reports(ctx: BuildContext, datas: dict[str, set[bytes]]) -> pl.DataFrame:
    """One row per advertising report (frame, time_us, address, addr_type, pdu, rssi, data);
    extended report fragments joined. The common case — a legacy report event holding one
    report — is gathered columnar, its distinct advertising data going to ``datas``
    (address → data); other events are parsed one by one."""
    idx = ctx.idx
    ev = idx.filter((pl.col("kind") == "event") & pl.col("subevent").is_in([0x02, 0x0D, 0x0B]))
    if ev.height == 0:
        return pl.DataFrame(schema=REPORT_SCHEMA)
    data = ctx.cap.data
    off = ev["offset"].to_numpy()
    ln = ev["length"].to_numpy().astype(np.int64)
    sub = ev["subevent"].to_numpy()
    last = max(data.size - 1, 0)

    def at(k: int | np.ndarray) -> np.ndarray:
        return data[np.minimum(off + k, last)].astype(np.int64)

    dl = at(12)
    fast = (sub == 0x02) & (ln >= 14) & (at(3) == 1) & (ln == 14 + dl)
    fi = np.nonzero(fast)[0]
    parts = []
    if fi.size:
        o = off[fi]
        key = np.zeros(fi.size, dtype=np.int64)
        for k in range(6):  # little-endian BD_ADDR → integer, formatted once per address
            key |= data[o + 6 + k].astype(np.int64) << (8 * k)
        uniq, inv = np.unique(key, return_inverse=True)
        names = np.asarray([addr_str(int(u)) for u in uniq.tolist()], dtype=object)
        et = data[o + 4].astype(np.int64)
        rssi = data[o + 13 + dl[fi]].astype(np.int64)
        rssi = np.where(rssi > 127, rssi - 256, rssi)
        # distinct advertising data per address without a bytes object per report: the
        # (address, length, up to 31 data bytes) rows are deduplicated as 40-byte records
        d = dl[fi]
        width = int(min(d.max(initial=0), 255))
        mat = np.zeros((fi.size, 8 + 1 + width), dtype=np.uint8)
        mat[:, :8] = key.view(np.uint8).reshape(-1, 8)
        mat[:, 8] = d
        for k in range(width):
            present = d > k
            mat[present, 9 + k] = data[o[present] + 13 + k]
        rows = np.unique(np.ascontiguousarray(mat).view(np.dtype((np.void, mat.shape[1]))))
        for row in rows.tolist():
            raw = bytes(row)
            n = raw[8]
            if n:
                adr = addr_str(int.from_bytes(raw[:6], "little"))
                datas.setdefault(adr, set()).add(raw[9 : 9 + n])
        parts.append(
            pl.DataFrame({
                "frame": ev["index"].to_numpy()[fi],
                "time_us": ev["time_us"].to_numpy()[fi],
                "address": names[inv].tolist(),
                "addr_type": data[o + 5].astype(np.int64),
                "pdu": pl.Series(et).replace_strict(
                    (ets := np.unique(et).tolist()),
                    [LEGACY_EVENT_TYPES.get(x, f"0x{x:02X}") for x in ets],
                    return_dtype=pl.String,
                ),
                "rssi": pl.Series(rssi).set(pl.Series(rssi == 127), None),
                "data": pl.Series([None] * fi.size, dtype=pl.Binary),
            }, schema=REPORT_SCHEMA)
        )  # fmt: skip
    slow = ev.filter(pl.Series(~fast))
    if slow.height:
        parts.append(pl.DataFrame(_parse_reports(ctx, slow), schema=REPORT_SCHEMA, orient="row"))
    return (
        pl.concat(parts).sort("frame", maintain_order=True)
        if parts
        else pl.DataFrame(schema=REPORT_SCHEMA)
    )


def _parse_reports(
    ctx: BuildContext, ev: pl.DataFrame
) -> list[tuple[int, int, str, int, str, int | None, bytes]]:
    """Advertising report events parsed one by one (several reports per event, extended
    reports and their fragments, directed reports)."""
    out: list[tuple[int, int, str, int, str, int | None, bytes]] = []
    buf = ctx.cap.buffer
    partial: dict[tuple[str, int], list[Any]] = {}
    ext_names: dict[int, str] = {}
    for frame, t, off, ln, sub in ev.select(
        "index", "time_us", "offset", "length", "subevent"
    ).iter_rows():
        b = bytes(buf[off : off + ln])
        if len(b) < 4:
            continue
        nrep, i = b[3], 4
        for _ in range(nrep):
            if sub == 0x02:
                if i + 10 > len(b):
                    break
                dl = b[i + 8]
                if i + 10 + dl > len(b):
                    break
                addr = _addr(b, i + 2)
                rssi = b[i + 9 + dl]
                out.append(
                    (frame, t, addr, b[i + 1], LEGACY_EVENT_TYPES.get(b[i], f"0x{b[i]:02X}"),
                     None if rssi == 127 else rssi - 256 if rssi > 127 else rssi,
                     b[i + 9 : i + 9 + dl])
                )  # fmt: skip
                i += 10 + dl
            elif sub == 0x0B:
                if i + 16 > len(b):
                    break
                rssi = b[i + 15]
                out.append(
                    (frame, t, _addr(b, i + 2), b[i + 1], "ADV_DIRECT_IND",
                     None if rssi == 127 else rssi - 256 if rssi > 127 else rssi, b"")
                )  # fmt: skip
                i += 16
            else:
                if i + 24 > len(b):
                    break
                et = b[i] | (b[i + 1] << 8)
                dl = b[i + 23]
                if i + 24 + dl > len(b):
                    break
                addr = _addr(b, i + 3)
                sid = b[i + 11]
                rssi = b[i + 13]
                data = b[i + 24 : i + 24 + dl]
                status = (et >> 5) & 0x3
                key = (addr, sid)
                name = ext_names.get(et & 0x1F)
                if name is None:
                    name = ext_names[et & 0x1F] = _ext_name(et)
                pend = partial.pop(key, None)
                if pend is not None:  # continuation of an incomplete report
                    pend[6] += data
                    if status == 1:
                        partial[key] = pend
                    else:
                        out.append(tuple(pend))  # type: ignore[arg-type]
                else:
                    rv = None if rssi == 127 else rssi - 256 if rssi > 127 else rssi
                    rec = [frame, t, addr, b[i + 2], name, rv, data]
                    if status == 1:
                        partial[key] = rec
                    else:
                        out.append(tuple(rec))  # type: ignore[arg-type]
                i += 24 + dl
    for pend in partial.values():
        out.append(tuple(pend))  # type: ignore[arg-type]
    return out


def _scan_for(params: list[ScanParameters], frame: int) -> tuple[float, float] | None:
    """(interval, window) ms of the last scan parameters set before ``frame``."""
    best = None
    for p in params:
        if p.frame <= frame and p.interval_ms:
            best = (p.interval_ms, p.window_ms)
    return best


_ADDR_CACHE: dict[bytes, str] = {}


def _addr(b: bytes, i: int) -> str:
    """BD_ADDR (little-endian on the wire) as text; cached, a scan repeats few addresses."""
    raw = b[i : i + 6]
    s = _ADDR_CACHE.get(raw)
    if s is None:
        if len(_ADDR_CACHE) > 100_000:
            _ADDR_CACHE.clear()
        s = _ADDR_CACHE[raw] = ":".join(f"{x:02X}" for x in reversed(raw))
    return s


def _ext_name(et: int) -> str:
    if et & 0x10:
        return {0x13: "ADV_IND", 0x15: "ADV_DIRECT_IND", 0x12: "ADV_SCAN_IND",
                0x10: "ADV_NONCONN_IND", 0x1B: "SCAN_RSP", 0x1A: "SCAN_RSP"}.get(
            et & 0x1F, "legacy")  # fmt: skip
    if et & 0x08:
        return "AUX_SCAN_RSP"
    kind = "connectable" if et & 1 else "scannable" if et & 2 else "non-connectable"
    return f"extended {kind}" + (" directed" if et & 4 else "")


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


@post_pass
def advertising(analysis: Any, ctx: BuildContext) -> None:
    """Advertisers from HCI reports and from sniffed advertising PDUs."""
    cache: dict[bytes, AdvData] = {}
    advertisers: list[Advertiser] = []
    fast_datas: dict[str, set[bytes]] = {}
    reports = _hci_reports(ctx, fast_datas)
    sessions, scan_params = _scan_filtering(ctx)
    for (addr,), grp in reports.group_by("address", maintain_order=True):
        acc = _Acc(grp["addr_type"][0])
        acc.frames = grp["frame"].to_list()
        acc.times = grp["time_us"].to_list()
        acc.rssi = grp["rssi"].to_list()
        acc.types = dict(grp["pdu"].value_counts().iter_rows())
        acc.datas = {d for d in grp["data"].drop_nulls().unique().to_list() if d}
        acc.datas |= fast_datas.get(str(addr), set())
        fr = grp["frame"].to_numpy()
        tt = grp["time_us"].to_numpy()
        adv_ev = ~grp["pdu"].str.contains("SCAN_RSP").to_numpy()
        ev_t = np.sort(tt[adv_ev])
        adv = _finish_advertiser(str(addr), acc, cache, "hci", ev_t)
        filt = [s for s in sessions if s[2] and bool(((fr >= s[0]) & (fr <= s[1])).any())]
        if filt:
            adv.interval_note = (
                "not estimable: scanning with duplicate filtering "
                f"(LE Set Scan Enable frame {filt[0][0]})"
            )
        else:
            _interval(adv, ev_t, scan=_scan_for(scan_params, int(fr.min())))
        advertisers.append(adv)
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


def _interval(
    adv: Advertiser,
    ev_t: np.ndarray,
    merge_ms: float = MERGE_MS,
    scan: tuple[float, float] | None = None,
) -> None:
    est = estimate_interval(ev_t, merge_ms, scan)
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
        et = tt[sel][ev_mask]
        ec = ch[sel][ev_mask]
        order = np.argsort(et, kind="stable")
        et, ec = et[order], ec[order]
        if et.size:
            new = np.ones(et.size, dtype=bool)
            new[1:] = (np.diff(et) > 10_000) | (ec[1:] <= ec[:-1])
            ev_t = et[new]
        else:
            ev_t = et
        adv = _finish_advertiser(addr, acc, cache, "air", ev_t)
        adv.address_type = "random" if acc.addr_type == 1 else "public"
        _interval(adv, ev_t, merge_ms=1.0)
        out.append(adv)
    return out


__all__ = ["Advertiser", "IntervalEstimate", "estimate_interval", "gap_histogram"]
