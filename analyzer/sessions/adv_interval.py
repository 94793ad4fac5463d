"""Advertising interval (Vol 6 Part B §4.4.2.2.1): consecutive advertising events are
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

import numpy as np

from analyzer.model import GapHistogram

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
    return _refine_many(g, [T], mu, sd2, strict_k)[0]


#: candidates refined together by :func:`_refine_many` (bounds its (candidates × gaps) arrays)
REFINE_BLOCK = 64


def _refine_many(
    g: np.ndarray, seeds: list[float], mu: float, sd2: float, strict_k: bool = True
) -> list[tuple[float, np.ndarray, np.ndarray] | None]:
    """:func:`_refine` from each seed interval, the seeds iterated together as rows of one
    (seeds × gaps) array: up to 8 rounds of k_i = round(g_i / (T + μ)), inliers
    |g_i − k_i(T + μ)| ≤ 3.5σ_i, T ← Σ(g_i − μk_i) / Σk_i; a row stops when T moves < 1e-4 ms
    and fails when its period is not positive or fewer than 3 gaps are inliers."""
    out: list[tuple[float, np.ndarray, np.ndarray] | None] = []
    for a in range(0, len(seeds), REFINE_BLOCK):
        out.extend(_refine_block(g, np.asarray(seeds[a : a + REFINE_BLOCK], float), mu, sd2,
                                 strict_k))  # fmt: skip
    return out


def _refine_block(
    g: np.ndarray, T: np.ndarray, mu: float, sd2: float, strict_k: bool
) -> list[tuple[float, np.ndarray, np.ndarray] | None]:
    c, n = T.size, g.size
    T = T.copy()
    inl = np.zeros((c, n), dtype=bool)
    k = np.ones((c, n))
    active = np.ones(c, dtype=bool)
    failed = np.zeros(c, dtype=bool)
    for _ in range(8):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        P = T[rows] + mu
        bad = P <= 0
        if bad.any():
            failed[rows[bad]] = True
            active[rows[bad]] = False
            rows, P = rows[~bad], P[~bad]
            if rows.size == 0:
                break
        kk = np.maximum(1.0, np.rint(g[None, :] / P[:, None]))
        var = kk * sd2 + _SIGMA_T2
        r = g[None, :] - kk * P[:, None]
        ii = np.abs(r) <= 3.5 * np.sqrt(var)
        if strict_k:
            ii &= np.sqrt(kk * sd2) < P[:, None] / 4
        few = ii.sum(axis=1) < 3
        if few.any():
            failed[rows[few]] = True
            active[rows[few]] = False
            rows, P, kk, ii = rows[~few], P[~few], kk[~few], ii[~few]
        T_new = np.where(ii, g[None, :] - mu * kk, 0.0).sum(axis=1) / np.where(ii, kk, 0.0).sum(
            axis=1
        )
        k[rows], inl[rows] = kk, ii
        done = np.abs(T_new - T[rows]) < 1e-4
        T[rows] = T_new
        active[rows[done]] = False
    return [None if failed[i] or T[i] < 10.0 else (float(T[i]), inl[i], k[i]) for i in range(c)]


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
    # the normaliser depends on the gap only through m: computed once per distinct m
    m_u, m_at = np.unique(m, return_inverse=True)
    delta = T - m_u * si
    z = (np.maximum(sw - np.abs(delta[:, None] + _S[None, :]), 0.0).mean(axis=1) * 10.0 / sw)[m_at]
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
    fits = [f for f in _refine_many(g, (per - mu).tolist(), mu, sd2, strict_k=False) if f]
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


def _no_unsupported_submultiple(
    g: np.ndarray,
    T: float,
    inl: np.ndarray,
    k: np.ndarray,
    mu: float,
    sd2: float,
    aliased: bool = False,
) -> tuple[float, np.ndarray, np.ndarray]:
    """A sub-multiple that no gap supports is replaced by the multiple the gaps show: when no
    inlier gap spans one event and every inlier spans a multiple of m ≥ 2 events, the gaps are
    explained at least as well by m·(T + μ) − μ (jitter wider than advDelay otherwise favours
    the finer comb, whose per-gap variance grows with k)."""
    kin = np.rint(k[inl]).astype(np.int64)
    if kin.size < MIN_GAPS or bool((kin == 1).any()):
        return T, inl, k
    m = int(np.gcd.reduce(kin))
    # under aliasing every heard gap is a multiple of the scan interval whatever the period, so
    # a common factor proves nothing — only gaps that all span the same m events do
    if m < 2 or (aliased and np.unique(kin).size > 1):
        return T, inl, k
    fit = _refine(g, m * (T + mu) - mu, mu, sd2, strict_k=False)
    if fit is None or fit[1].sum() < 0.5 * inl.sum():
        return T, inl, k
    return fit


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
        fits = [f for f in _refine_many(g_fit, seeds, mu, sd2) if f is not None]
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
    # also after an aliasing fit: gaps that are all a multiple m of the chosen period say the
    # period is m times longer (a constant gap is one event, not m with all between missed)
    T_sub = T
    T, inl, k = _no_unsupported_submultiple(g, T, inl, k, mu, sd2, aliased=note is not None)
    replaced = T_sub != T
    n_in = int(inl.sum())
    sk = float(np.sum(k[inl]))
    se = float(np.sqrt((sd2 * sk + _SIGMA_T2 * n_in) / (sk * sk)))
    tol = max(1.0, 0.01 * T)
    # separation of the chosen fit (the finer comb when it was replaced) from its rivals
    T_lik = fits[b][0]
    far = np.asarray([abs(f[0] - T_lik) > max(2.0, 0.02 * T_lik) for f in fits])
    tol = max(1.0, 0.01 * T)
    delta = float(lls[b] - lls[far].max()) if far.any() else 50.0
    c_amb = 1.0 - float(np.exp(-max(delta, 0.0) / 3.0)) if note is None else 1.0
    if replaced:  # chosen against the likelihood of the finer comb: less sure
        c_amb *= 0.5
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


__all__ = ["MERGE_MS", "MIN_GAPS", "IntervalEstimate", "estimate_interval", "gap_histogram"]
