"""Independent NumPy references for the diversification tests (nothing here imports factorcore).

Every measure is computed per window straight from its published definition, so that the
tests compare factorcore's output frame with a frame that never went through factorcore:

* covariance: sample (ddof=1) or sklearn's ``LedoitWolf``; zero-volatility (constant) assets
  carry no risk;
* :func:`diversification_ratio` (Choueifaty & Coignard 2008), :func:`effective_n`
  (inverse Herfindahl of the normalised |w|);
* :func:`enb_pca` -- Meucci (2009), principal-component bets, with the one canonical tie
  (Ledoit-Wolf with no more rows than assets: the null space of the sample covariance is one
  bet);
* :func:`minimum_torsion` / :func:`mt_shares` / :func:`enb_mt` -- Meucci, Santangelo & Deguest
  (2013), "Measuring portfolio diversification based on optimized uncorrelated factors", the
  exact minimum-torsion algorithm as published (and as in the R package uncorbets), iterated
  until the scaling vector d stops changing;
* :func:`absorption_ratio` (Kritzman et al. 2011) and :func:`avg_correlation` on the sample
  correlation of the non-zero-vol assets;
* :func:`reference_diversification` / :func:`reference_risk_contributions`: the whole
  documented output frames.

Run ``python tests/diversification_reference.py`` for the reference's own self-checks.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
from sklearn.covariance import LedoitWolf

COLUMNS = (
    "date",
    "n_assets",
    "excluded_weight",
    "diversification_ratio",
    "effective_n",
    "enb_pca",
    "enb_mt",
    "absorption_ratio",
    "avg_correlation",
)
FLOAT_COLUMNS = COLUMNS[2:]
WEIGHT_COLUMNS = ("diversification_ratio", "effective_n", "enb_pca", "enb_mt")
RISK_COLUMNS = ("asset", "weight", "volatility", "marginal", "component", "percent")

PD_TOL = 1e-10  # C is "not positive definite" when lambda_min <= PD_TOL * lambda_max
MT_TOL = 1e-15  # stop when max |change in d| <= MT_TOL ...
MT_FLOOR = 1e-13  # ... or, below this, when the change stops shrinking (rounding floor)
MT_MAX_ITER = 500


# --------------------------------------------------------------------------------------------
# small linear-algebra helpers
# --------------------------------------------------------------------------------------------
def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """The symmetric positive semi-definite square root (what sqrtm returns for SPD input)."""
    lam, vec = np.linalg.eigh((a + a.T) / 2)
    return (vec * np.sqrt(np.clip(lam, 0.0, None))) @ vec.T


def entropy_enb(p) -> float:
    """exp(-sum p ln p) with 0 ln 0 = 0 (p >= 0, summing to 1)."""
    p = np.asarray(p, float)
    assert p.min() >= -1e-12, f"negative share {p.min()}"
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def is_constant(x: np.ndarray) -> np.ndarray:
    """Per column: every value equal (exact comparison, as the definition says)."""
    return np.all(x == x[:1], axis=0)


# --------------------------------------------------------------------------------------------
# covariance
# --------------------------------------------------------------------------------------------
def ledoit_wolf_parts(x: np.ndarray):
    """(S, delta, mu, S0): sklearn's LedoitWolf covariance, shrinkage, target scale, ddof=0 cov."""
    lw = LedoitWolf().fit(x)
    s0 = np.atleast_2d(np.cov(x, rowvar=False, ddof=0))
    mu = np.trace(s0) / s0.shape[0]
    return lw.covariance_, float(lw.shrinkage_), float(mu), s0


def covariance(x: np.ndarray, shrinkage: str | None = None) -> np.ndarray:
    """Sample (ddof=1) or Ledoit-Wolf covariance of the columns of x (W rows, n columns).

    Without shrinkage, constant columns get exactly zero rows/columns (no risk).
    """
    if shrinkage is None:
        s = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
        zero = is_constant(x)
        s[zero, :] = 0.0
        s[:, zero] = 0.0
        return s
    if shrinkage == "ledoit-wolf":
        if is_constant(x).any():
            # The spec does not pin down a constant column under shrinkage (see the tests'
            # summary); the tests never ask for it.
            raise NotImplementedError("zero-vol asset with shrinkage")
        return ledoit_wolf_parts(x)[0]
    raise ValueError(shrinkage)


# --------------------------------------------------------------------------------------------
# the measures (w: weights of the included assets, S: their covariance)
# --------------------------------------------------------------------------------------------
def portfolio_vol(w, s) -> float:
    return math.sqrt(max(float(w @ s @ w), 0.0))


def diversification_ratio(w, s) -> float:
    sigma_p = portfolio_vol(w, s)
    if sigma_p == 0:
        return math.nan
    return float(np.abs(w) @ np.sqrt(np.diag(s))) / sigma_p


def effective_n(w) -> float:
    w = np.asarray(w, float)
    if not np.any(w):
        return math.nan
    return float(np.sum(np.abs(w)) ** 2 / np.sum(w * w))


def pca_risk_shares(w, s, null_space=None) -> np.ndarray:
    """Meucci's PCA bets: p_k = lambda_k (e_k'w)^2 / sum_j lambda_j (e_j'w)^2.

    ``null_space=(x, delta, mu)``: the shrunk covariance of x (W <= n rows) -- the sample
    covariance's range gives one bet per eigenvector, eigenvalue (1-delta) l_k + delta mu, and
    its whole null space one bet of eigenvalue delta mu.
    """
    if null_space is None:
        lam, vec = np.linalg.eigh(s)
        contrib = np.clip(lam, 0.0, None) * (vec.T @ w) ** 2
    else:
        x, delta, mu = null_space
        rank = x.shape[0] - 1  # centred W rows span W-1 dimensions (generic data, W <= n)
        lam0, vec0 = np.linalg.eigh(np.atleast_2d(np.cov(x, rowvar=False, ddof=0)))
        lam0, vec0 = lam0[::-1][:rank], vec0[:, ::-1][:, :rank]
        assert lam0[-1] > 1e-8 * lam0[0], "sample covariance rank is not W-1"
        proj = vec0.T @ w
        null_w = w - vec0 @ proj
        contrib = np.append(
            ((1 - delta) * lam0 + delta * mu) * proj**2, delta * mu * null_w @ null_w
        )
    return contrib / contrib.sum()


def enb_pca(w, s, null_space=None) -> float:
    if portfolio_vol(w, s) == 0:
        return math.nan
    return entropy_enb(pca_risk_shares(w, s, null_space))


def minimum_torsion(corr: np.ndarray, *, tol=MT_TOL, max_iter=MT_MAX_ITER):
    """The exact minimum-torsion iteration on a correlation matrix C.

    Published algorithm (Meucci, Santangelo & Deguest 2013, appendix; R uncorbets::torsion
    'minimum-torsion', 'exact'): c = sqrtm(C), d = 1; repeat U = diag(d) c c diag(d),
    u = sqrtm(U), q = solve(u, diag(d) c), d = diag(q c), pi = diag(d) q.
    Returns (d, pi, c, n_iter).
    """
    n = corr.shape[0]
    c = sqrtm_psd(corr)
    d = np.ones(n)
    prev_change = math.inf
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        big_u = d[:, None] * (c @ c) * d[None, :]
        u = sqrtm_psd(big_u)
        q = np.linalg.solve(u, d[:, None] * c)
        d_new = np.diag(q @ c).copy()
        pi = d_new[:, None] * q
        change = float(np.max(np.abs(d_new - d)))
        d = d_new
        if change <= tol or (change <= MT_FLOOR and change >= prev_change):
            break
        prev_change = change
    return d, pi, c, n_iter


def mt_torsion(s: np.ndarray):
    """(t, d): the exact minimum torsion of covariance S, t = diag(sigma) pi c^-1 diag(1/sigma)."""
    sigma = np.sqrt(np.diag(s))
    corr = s / np.outer(sigma, sigma)
    d, pi, c, _ = minimum_torsion(corr)
    t = sigma[:, None] * np.linalg.solve(c.T, pi.T).T / sigma[None, :]
    return t, d


def mt_shares(w, s, t) -> np.ndarray:
    """Published risk shares: p = solve(t', w) * (t S w) / (w' S w)."""
    return np.linalg.solve(t.T, w) * (t @ s @ w) / (w @ s @ w)


def mt_shares_via_d(w, s, d) -> np.ndarray:
    """The same shares written with the converged d: y = sqrtm(D C D) D^-1 (sigma w), p = y^2/|y|^2.

    (t' = diag(1/sigma) D u^-1 D diag(sigma) and t S w = diag(sigma) D u D^-1 (sigma w).)
    """
    sigma = np.sqrt(np.diag(s))
    corr = s / np.outer(sigma, sigma)
    y = sqrtm_psd(d[:, None] * corr * d[None, :]) @ (sigma * w / d)
    return y**2 / (y @ y)


def corr_condition(s) -> float:
    """lambda_max / lambda_min of the correlation of S (inf when not positive)."""
    sigma = np.sqrt(np.diag(s))
    lam = np.linalg.eigvalsh(s / np.outer(sigma, sigma))
    return math.inf if lam[0] <= 0 else float(lam[-1] / lam[0])


def enb_mt(w, s) -> float:
    """Minimum-torsion ENB on the assets with sigma_i > 0; NaN if C is not PD or sigma_p == 0."""
    keep = np.diag(s) > 0
    w, s = w[keep], s[np.ix_(keep, keep)]
    if w.size == 0 or portfolio_vol(w, s) == 0:
        return math.nan
    if corr_condition(s) >= 1 / PD_TOL:
        return math.nan
    t, _ = mt_torsion(s)
    return entropy_enb(mt_shares(w, s, t))


def sample_correlation(x: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=0)
    cov = xc.T @ xc
    sd = np.sqrt(np.diag(cov))
    return cov / np.outer(sd, sd)


def absorption_ratio(x: np.ndarray) -> float:
    """Top ceil(m/5) eigenvalues of the sample correlation, over m (x: non-zero-vol columns)."""
    m = x.shape[1]
    if m == 0:
        return math.nan
    lam = np.sort(np.linalg.eigvalsh(sample_correlation(x)))[::-1]
    return float(lam[: math.ceil(m / 5)].sum() / m)


def avg_correlation(x: np.ndarray) -> float:
    m = x.shape[1]
    if m < 2:
        return math.nan
    r = sample_correlation(x)
    return float((r.sum() - np.trace(r)) / (m * (m - 1)))


# --------------------------------------------------------------------------------------------
# windows, membership, weights
# --------------------------------------------------------------------------------------------
def window_ends(n_rows: int, window: int | None, step: int = 1) -> list[int]:
    """Last row of each window: window-1, window-1+step, ... <= n_rows-1 (full sample: the last)."""
    if window is None:
        return [n_rows - 1]
    return list(range(window - 1, n_rows, step))


def parse_snapshots(frame: pl.DataFrame, assets) -> list[tuple[object, np.ndarray]]:
    """Long (date, asset, weight) frame -> [(date, weight vector over ``assets``)], by date."""
    index = {a: i for i, a in enumerate(assets)}
    out: dict[object, np.ndarray] = {}
    for day, asset, weight in frame.select("date", "asset", "weight").iter_rows():
        out.setdefault(day, np.zeros(len(assets)))[index[asset]] = weight
    return sorted(out.items(), key=lambda kv: kv[0])


def snapshot_for(day, snapshots):
    """The snapshot with the latest date <= day (None before the first one)."""
    chosen = None
    for snap_day, vec in snapshots:
        if snap_day <= day:
            chosen = vec
    return chosen


def window_measures(x: np.ndarray, w_all, shrinkage: str | None = None) -> dict:
    """Every output value of one window.

    x: (W, N) returns of all assets (NaN = missing). w_all: None (equal over the included
    assets), a weight vector over all N assets, or the string "none" (no snapshot yet).
    """
    included = ~np.isnan(x).any(axis=0)
    xi = x[:, included]
    n = int(included.sum())
    zero_vol = is_constant(xi)
    out = {"n_assets": n}
    rx = xi[:, ~zero_vol]
    out["absorption_ratio"] = absorption_ratio(rx)
    out["avg_correlation"] = avg_correlation(rx)

    if isinstance(w_all, str):  # no snapshot yet
        out["excluded_weight"] = math.nan
        out.update(dict.fromkeys(WEIGHT_COLUMNS, math.nan))
        return out
    if w_all is None:
        w = np.ones(n)
        out["excluded_weight"] = 0.0
    else:
        w_all = np.asarray(w_all, float)
        total = np.abs(w_all).sum()
        out["excluded_weight"] = float(np.abs(w_all[~included]).sum() / total)
        w = w_all[included]
    if n == 0 or not np.any(w):
        out.update(dict.fromkeys(WEIGHT_COLUMNS, math.nan))
        return out

    out["effective_n"] = effective_n(w)
    # Portfolio scores describe the holdings: the included assets with non-zero weight.
    held = w != 0
    xi, w, n = xi[:, held], w[held], int(held.sum())
    s = covariance(xi, shrinkage)
    null_space = None
    if shrinkage == "ledoit-wolf" and xi.shape[0] <= n and n > 1:
        _, delta, mu, _ = ledoit_wolf_parts(xi)
        null_space = (xi, delta, mu)
    out["diversification_ratio"] = diversification_ratio(w, s)
    out["enb_pca"] = enb_pca(w, s, null_space)
    out["enb_mt"] = enb_mt(w, s)
    return out


def reference_diversification(
    returns,
    dates: pl.Series,
    assets,
    weights=None,
    *,
    window: int | None = None,
    step: int = 1,
    shrinkage: str | None = None,
) -> pl.DataFrame:
    """The documented output of ``diversification`` for a dense (T, N) returns array.

    weights: None, a mapping {asset: weight}, or a long snapshot frame (date, asset, weight)
    whose dates compare with ``dates``' values.
    """
    r = np.asarray(returns, float)
    r = r[:, None] if r.ndim == 1 else r
    assets = list(assets)
    if isinstance(weights, pl.DataFrame):
        snapshots = parse_snapshots(weights, assets)
    elif weights is not None:
        vec = np.array([float(weights.get(a, 0.0)) for a in assets])
    day_values = dates.to_list()
    rows = []
    ends = window_ends(r.shape[0], window, step)
    for end in ends:
        start = 0 if window is None else end - window + 1
        if isinstance(weights, pl.DataFrame):
            w = snapshot_for(day_values[end], snapshots)
            w = "none" if w is None else w
        else:
            w = None if weights is None else vec
        rows.append(window_measures(r[start : end + 1], w, shrinkage))
    cols = [dates.gather(ends).alias("date")]
    cols.append(pl.Series("n_assets", [row["n_assets"] for row in rows], dtype=pl.UInt32))
    for name in FLOAT_COLUMNS:
        cols.append(pl.Series(name, [row[name] for row in rows], dtype=pl.Float64))
    return pl.DataFrame(cols)


def mt_conditions(returns, *, window=None, step=1, shrinkage=None) -> np.ndarray:
    """Per output row: the condition number of the correlation the torsion is computed on.

    (NaN when the window has no non-zero-vol asset.) Lets tests scale the enb_mt tolerance.
    """
    r = np.asarray(returns, float)
    r = r[:, None] if r.ndim == 1 else r
    out = []
    for end in window_ends(r.shape[0], window, step):
        start = 0 if window is None else end - window + 1
        x = r[start : end + 1]
        x = x[:, ~np.isnan(x).any(axis=0)]
        x = x[:, ~is_constant(x)]
        out.append(corr_condition(covariance(x, shrinkage)) if x.shape[1] else math.nan)
    return np.array(out)


def reference_risk_contributions(returns, assets, weights=None, *, shrinkage=None):
    """The documented output of ``risk_contributions`` (full sample) as a frame."""
    r = np.asarray(returns, float)
    assets = list(assets)
    if weights is None:
        w_all = np.full(len(assets), 1.0 / len(assets))
    else:
        w_all = np.array([float(weights.get(a, 0.0)) for a in assets])
    held = w_all != 0
    rows = ~np.isnan(r[:, held]).any(axis=1)
    x = r[rows][:, held]
    w = w_all[held]
    s = covariance(x, shrinkage)
    sigma_p = portfolio_vol(w, s)
    marginal = s @ w / sigma_p
    component = w * marginal
    return pl.DataFrame(
        {
            "asset": pl.Series("asset", [a for a, h in zip(assets, held, strict=True) if h]),
            "weight": w,
            "volatility": np.sqrt(np.diag(s)),
            "marginal": marginal,
            "component": component,
            "percent": component / sigma_p,
        }
    )


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def business_days(n: int, start: dt.date = dt.date(2020, 1, 6)) -> list[dt.date]:
    """``n`` weekdays from a Monday (so weekends fall between consecutive dates)."""
    return [start + dt.timedelta(days=7 * (i // 5) + i % 5) for i in range(n)]


def factor_returns(rng, n_rows: int, n_assets: int, *, n_factors: int = 2) -> np.ndarray:
    """Daily-like returns with a few common factors and distinct idiosyncratic vols."""
    f = rng.standard_normal((n_rows, n_factors)) * np.linspace(0.012, 0.006, n_factors)
    beta = rng.uniform(0.2, 1.4, (n_factors, n_assets))
    idio = rng.uniform(0.005, 0.025, n_assets)
    return 0.0004 + f @ beta + rng.standard_normal((n_rows, n_assets)) * idio


def orthogonal_returns(rng, n_rows: int, vols) -> np.ndarray:
    """Columns exactly centred and orthogonal (to rounding) with sample vols ``vols``."""
    vols = np.asarray(vols, float)
    z = rng.standard_normal((n_rows, vols.size))
    z -= z.mean(axis=0)
    q, _ = np.linalg.qr(z)
    return 0.001 + q * vols * math.sqrt(n_rows - 1)


# --------------------------------------------------------------------------------------------
# self-checks of the reference
# --------------------------------------------------------------------------------------------
def _random_cov(rng, n, n_rows=None):
    x = factor_returns(rng, n_rows or 4 * n + 10, n)
    return np.atleast_2d(np.cov(x, rowvar=False)), x


def self_check() -> None:
    from sklearn.covariance import ledoit_wolf, ledoit_wolf_shrinkage

    rng = np.random.default_rng(20240601)

    # Ledoit-Wolf: the estimator, the function and the written-out formula agree
    for n_rows, n in [(300, 8), (10, 25), (5, 5), (40, 1)]:
        x = factor_returns(rng, n_rows, n)
        s, delta, mu, s0 = ledoit_wolf_parts(x)
        s_fn, delta_fn = ledoit_wolf(x)
        assert np.allclose(s, s_fn, rtol=1e-14, atol=0) and delta == delta_fn
        assert abs(delta - ledoit_wolf_shrinkage(x)) <= 1e-15
        assert np.allclose(s, (1 - delta) * s0 + delta * mu * np.eye(n), rtol=1e-13, atol=0)

    # minimum torsion: fixed point, uncorrelated factors, shares >= 0 summing to 1, both formulas
    for n in (1, 2, 3, 7, 20, 60):
        s, _ = _random_cov(rng, n)
        sigma = np.sqrt(np.diag(s))
        corr = s / np.outer(sigma, sigma)
        d, _, c, n_iter = minimum_torsion(corr)
        assert n_iter < MT_MAX_ITER, f"no convergence n={n}"
        u = sqrtm_psd(d[:, None] * corr * d[None, :])
        assert np.max(np.abs(d * d - np.diag(u))) < 1e-12, "d is not the fixed point"
        t, _ = mt_torsion(s)
        cov_f = t @ s @ t.T
        off = cov_f - np.diag(np.diag(cov_f))
        assert np.max(np.abs(off)) < 1e-12 * np.max(np.diag(cov_f)), "MT factors correlated"
        for w in (np.full(n, 1.0 / n), rng.standard_normal(n), rng.uniform(0, 1, n)):
            p = mt_shares(w, s, t)
            assert p.min() >= -1e-13 and abs(p.sum() - 1) < 1e-12, (p.min(), p.sum())
            assert np.allclose(p, mt_shares_via_d(w, s, d), rtol=1e-9, atol=1e-13)
        # optimality: O* maximises sum_k (O c)_kk^2 over rotations O (MT = least tracking error)
        if n > 1:
            o_star = np.linalg.solve(u, d[:, None] * c)  # = q
            best = np.sum(np.diag(o_star @ c) ** 2)
            for _ in range(5):
                a = rng.standard_normal((n, n))
                a = 1e-3 * (a - a.T)
                lam, vec = np.linalg.eigh(1j * a)  # expm of a skew matrix: a rotation
                rot = (vec * np.exp(-1j * lam)) @ vec.conj().T
                o = rot.real @ o_star
                assert np.sum(np.diag(o @ c) ** 2) < best, "MT is not a local optimum"

    # diagonal covariance: MT = identity, shares = w^2 sigma^2 / sum; PCA the same bets
    vols = rng.uniform(0.01, 0.05, 6)
    s = np.diag(vols**2)
    w = rng.standard_normal(6)
    risk = w**2 * vols**2 / np.sum(w**2 * vols**2)
    assert abs(enb_mt(w, s) - entropy_enb(risk)) < 1e-13
    assert abs(enb_pca(w, s) - entropy_enb(risk)) < 1e-13

    # invariants on exactly orthogonal data
    for n in (1, 2, 5, 13):
        x = orthogonal_returns(rng, 3 * n + 5, np.full(n, 0.02))
        m = window_measures(x, None)
        assert abs(m["enb_mt"] - n) < 1e-10 * n and abs(m["effective_n"] - n) < 1e-12 * n
        assert abs(m["diversification_ratio"] - math.sqrt(n)) < 1e-12
        vols = np.linspace(0.01, 0.04, n)
        x = orthogonal_returns(rng, 3 * n + 5, vols)
        m = window_measures(x, 1 / vols)
        assert abs(m["enb_pca"] - n) < 1e-10 * n and abs(m["enb_mt"] - n) < 1e-10 * n

    # PCA null space: delta*mu ||P_null w||^2 equals the tie group's total in any eigenbasis
    x = factor_returns(rng, 6, 15)
    s, delta, mu, _ = ledoit_wolf_parts(x)
    w = rng.standard_normal(15)
    p = pca_risk_shares(w, s, (x, delta, mu))
    lam, vec = np.linalg.eigh(s)
    tie = np.abs(lam - delta * mu) < 1e-9 * lam.max()
    assert tie.sum() == 15 - 5
    group = np.sum(lam[tie] * (vec[:, tie].T @ w) ** 2) / (w @ s @ w)
    assert abs(p[-1] - group) < 1e-10 and abs(p.sum() - 1) < 1e-14
    assert np.allclose(
        np.sort(p[:-1]), np.sort(lam[~tie] * (vec[:, ~tie].T @ w) ** 2 / (w @ s @ w))
    )

    # scaling the returns changes nothing; scaling the weights changes nothing
    x = factor_returns(rng, 60, 7)
    w = rng.standard_normal(7)
    for shrink in (None, "ledoit-wolf"):
        base = window_measures(x, w, shrink)
        for other in (window_measures(7.3 * x, w, shrink), window_measures(x, -2.5 * w, shrink)):
            for key, value in base.items():
                assert math.isclose(value, other[key], rel_tol=1e-10, abs_tol=1e-13), key

    # windows
    assert window_ends(10, 3, 4) == [2, 6]
    assert window_ends(10, 10, 1) == [9]
    assert window_ends(10, None) == [9]
    print("diversification_reference: all self-checks passed")


if __name__ == "__main__":
    self_check()
