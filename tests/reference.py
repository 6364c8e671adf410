"""Independent reference implementations used by the factorcore test suite.

Nothing here imports factorcore.  Two references are provided:

* :func:`direct_rolling_ols` -- a deliberately naive per-window solver: for every output row
  it gathers the rows of the window, drops rows with a NaN in y or in any factor, applies the
  exponential weights and solves the weighted least-squares problem with an SVD of the
  (sqrt-weighted) design matrix -- with an intercept, in deviations from the weighted means
  (the Frisch-Waugh-Lovell form of the same problem, which keeps the reference accurate when
  the data have a large common mean).  Every statistic is computed from its definition.
* :func:`statsmodels_rolling_ols` -- a thin wrapper around
  ``statsmodels.regression.rolling.RollingOLS`` / ``RollingWLS`` (``missing="drop"``) that returns
  the same arrays, mapped to factorcore's documented conventions (NaN where there are no
  degrees of freedom, NaN r2 where the total sum of squares is zero, resid_vol on the
  "newest row has weight 1" scale).

Also: synthetic factor-model data generators shared by the tests.
"""

from __future__ import annotations

import numpy as np

# A regressor whose residual sum of squares after the other regressors is below this fraction
# of its own sum of squares makes the window collinear (factorcore contract).
COLLINEAR_TOL = 1e-10


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def n_params(k: int, intercept: bool) -> int:
    return k + (1 if intercept else 0)


def default_min_periods(window: int | None, p: int) -> int:
    """The documented default: ``window`` for a rolling window, ``P + 1`` for an expanding one."""
    return window if window is not None else p + 1


def window_rows(t: int, window: int | None) -> np.ndarray:
    """Positional rows of the window that ends at row ``t`` (inclusive)."""
    lo = 0 if window is None else max(0, t - window + 1)
    return np.arange(lo, t + 1)


def halflife_weights(t: int, rows: np.ndarray, halflife: float | None) -> np.ndarray:
    """Newest row (row t) weight 1, a row l rows older weight 0.5 ** (l / halflife)."""
    if halflife is None:
        return np.ones(rows.shape[0])
    return 0.5 ** ((t - rows) / halflife)


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


# --------------------------------------------------------------------------------------------
# single weighted least-squares fit
# --------------------------------------------------------------------------------------------
def solve_window(
    design: np.ndarray, y: np.ndarray, w: np.ndarray, intercept: bool
) -> dict[str, object]:
    """Weighted least squares of ``y`` on ``design`` (column 0 is the intercept if ``intercept``).

    ``y`` is (n,) or (n, g): g right-hand sides sharing the same rows.

    Solved with an SVD of the sqrt-weighted design.  With an intercept the slopes are solved in
    deviations from the weighted means (Frisch-Waugh-Lovell: identical maths, but accurate when
    the data have a large common mean) and alpha = ybar - xbar . slopes; the alpha variance
    factor is [(X'WX)^-1]_00 = 1/sum(w) + xbar' (Xc'WXc)^-1 xbar.

    Returns coef (P,) or (P, g), r2, resid_vol, tstat and diagnostics: ``cond`` (2-norm
    condition number of the full sqrt-weighted design, intercept column included),
    ``cond_centred`` (of the sqrt-weighted demeaned factors; = cond without intercept),
    ``min_ratio`` (smallest "residual SS of a regressor after the others / its own
    uncentred SS") and ``collinear`` (rank deficient or min_ratio < COLLINEAR_TOL).
    """
    y = np.asarray(y, dtype=np.float64)
    y2 = y[:, None] if y.ndim == 1 else y
    n, p = design.shape
    g = y2.shape[1]
    sw = np.sqrt(w)
    out: dict[str, object] = {
        "coef": np.full((p, g), np.nan),
        "r2": np.full(g, np.nan),
        "resid_vol": np.full(g, np.nan),
        "tstat": np.full((p, g), np.nan),
        "cond": np.inf,
        "cond_centred": np.inf,
        "collinear": True,
        "min_ratio": 0.0,
    }
    eps = np.finfo(float).eps
    s_full = np.linalg.svd(design * sw[:, None], compute_uv=False)
    if s_full.size == p and s_full[-1] > 0.0:
        out["cond"] = float(s_full[0] / s_full[-1])

    if intercept:
        wsum = np.sum(w)
        xbar = (w @ design[:, 1:]) / wsum
        ybar = (w @ y2) / wsum
        a = (design[:, 1:] - xbar) * sw[:, None]
        b = (y2 - ybar) * sw[:, None]
    else:
        a = design * sw[:, None]
        b = y2 * sw[:, None]
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    q = a.shape[1]
    if s.size < q or s[0] == 0.0 or s[-1] <= s[0] * max(n, p) * eps:
        return _ravel_single(out, y.ndim)  # numerically rank deficient
    v = vt.T
    # (A'A)^-1 = V diag(1/s^2) V'; its diagonal, without forming A'A.
    inv_diag = np.sum((v / s) ** 2, axis=1)
    own = np.sum(design * design * w[:, None], axis=0)  # uncentred weighted SS per column
    if intercept:
        inv_00 = 1.0 / wsum + float(np.sum(((vt @ xbar) / s) ** 2))
        inv_diag = np.r_[inv_00, inv_diag]
    # residual SS of column j after the other columns = 1 / [(X'WX)^-1]_jj
    min_ratio = float(np.min(1.0 / (inv_diag * own)))
    out["cond_centred"] = float(s[0] / s[-1])
    out["min_ratio"] = min_ratio
    if min_ratio < COLLINEAR_TOL:
        return _ravel_single(out, y.ndim)
    out["collinear"] = False

    slopes = v @ ((u.T @ b) / s[:, None])
    wresid = b - a @ slopes  # sqrt(w) * residuals of the full model
    ssr = np.sum(wresid * wresid, axis=0)
    tss = np.sum(b * b, axis=0)  # centred with an intercept, uncentred without
    coef = np.vstack([ybar - xbar @ slopes, slopes]) if intercept else slopes
    degenerate = np.all(y2 == y2[0], axis=0) if intercept else np.all(y2 == 0.0, axis=0)
    degenerate |= tss == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(degenerate, np.nan, 1.0 - ssr / tss)
    out.update(coef=coef, r2=r2)
    dof = n - p
    if dof > 0:
        s2 = ssr / dof
        out["resid_vol"] = np.sqrt(s2)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 for constant y
            out["tstat"] = coef / np.sqrt(s2[None, :] * inv_diag[:, None])
    return _ravel_single(out, y.ndim)


def _ravel_single(out: dict[str, object], y_ndim: int) -> dict[str, object]:
    if y_ndim == 1:
        for key in ("coef", "tstat"):
            out[key] = out[key][:, 0]
        for key in ("r2", "resid_vol"):
            out[key] = float(out[key][0])
    return out


# --------------------------------------------------------------------------------------------
# direct per-window rolling solve
# --------------------------------------------------------------------------------------------
def direct_rolling_ols(
    y,
    x,
    *,
    window: int | None,
    min_periods: int | None = None,
    halflife: float | None = None,
    intercept: bool = True,
    rows: np.ndarray | list[int] | None = None,
) -> dict[str, np.ndarray]:
    """Direct per-window weighted least squares, following factorcore's documented semantics.

    For every output row t: take the window rows (``window`` positional rows ending at t, or
    rows 0..t when expanding), drop rows with a NaN in any factor and, per asset, rows with a
    NaN in y, weight row s by 0.5 ** ((t - s) / halflife) and solve.  Assets whose valid rows
    coincide share one SVD (pure speed-up, the maths is per asset).

    ``rows``: evaluate only these output rows (the returned arrays then have ``len(rows)`` in
    place of T).  Keys: coef, r2, resid_vol, tstat, n_obs (uint32), plus the diagnostics of
    :func:`solve_window` (cond, cond_centred, min_ratio: NaN where no fit was attempted;
    collinear: bool).  With 1-D ``y`` the asset axis is dropped, like factorcore.
    """
    y_in = np.asarray(y, dtype=np.float64)
    y2 = _as_2d(y_in)
    x2 = _as_2d(x)
    t_len, n_assets = y2.shape
    k = x2.shape[1]
    p = n_params(k, intercept)
    mp = default_min_periods(window, p) if min_periods is None else min_periods
    out_rows = np.arange(t_len) if rows is None else np.asarray(rows, dtype=np.int64)
    m = out_rows.shape[0]

    coef = np.full((m, n_assets, p), np.nan)
    tstat = np.full((m, n_assets, p), np.nan)
    r2 = np.full((m, n_assets), np.nan)
    resid_vol = np.full((m, n_assets), np.nan)
    n_obs = np.zeros((m, n_assets), dtype=np.uint32)
    cond = np.full((m, n_assets), np.nan)
    cond_centred = np.full((m, n_assets), np.nan)
    min_ratio = np.full((m, n_assets), np.nan)
    collinear = np.zeros((m, n_assets), dtype=bool)

    for i, t in enumerate(out_rows):
        wrows = window_rows(int(t), window)
        xw = x2[wrows]
        design = np.column_stack([np.ones(wrows.shape[0]), xw]) if intercept else xw
        weights = halflife_weights(int(t), wrows, halflife)
        yw = y2[wrows]
        ok = ~np.isnan(xw).any(axis=1)[:, None] & ~np.isnan(yw)  # (rows, assets)
        n_obs[i] = ok.sum(axis=0)
        groups: dict[bytes, list[int]] = {}
        for j in range(n_assets):
            if n_obs[i, j] >= mp:
                groups.setdefault(ok[:, j].tobytes(), []).append(j)
        for cols in groups.values():
            sel = ok[:, cols[0]]
            res = solve_window(design[sel], yw[sel][:, cols], weights[sel], intercept)
            coef[i, cols] = res["coef"].T
            tstat[i, cols] = res["tstat"].T
            r2[i, cols] = res["r2"]
            resid_vol[i, cols] = res["resid_vol"]
            cond[i, cols] = res["cond"]
            cond_centred[i, cols] = res["cond_centred"]
            min_ratio[i, cols] = res["min_ratio"]
            collinear[i, cols] = res["collinear"]

    out = {
        "coef": coef,
        "r2": r2,
        "resid_vol": resid_vol,
        "tstat": tstat,
        "n_obs": n_obs,
        "cond": cond,
        "cond_centred": cond_centred,
        "min_ratio": min_ratio,
        "collinear": collinear,
    }
    if y_in.ndim == 1:
        out = {key: val[:, 0] for key, val in out.items()}
    return out


# --------------------------------------------------------------------------------------------
# statsmodels wrapper
# --------------------------------------------------------------------------------------------
def statsmodels_rolling_ols(
    y,
    x,
    *,
    window: int | None,
    min_periods: int | None = None,
    halflife: float | None = None,
    intercept: bool = True,
    reset: int | None = None,
) -> dict[str, np.ndarray]:
    """The same arrays computed with statsmodels RollingOLS / RollingWLS (missing="drop").

    * ``window=None`` -> statsmodels ``window=None, expanding=True`` (window = whole sample).
    * ``min_periods < window`` -> ``expanding=True, min_nobs=min_periods``.
    * halflife -> RollingWLS with weights ``2 ** (s / halflife)`` over the whole sample: inside any
      window these are the documented weights times a per-window constant, which leaves coef,
      r2 and t-stats unchanged; resid_vol is rescaled to the documented scale (newest row = 1).
    * Conventions mapped to factorcore's: resid_vol / tstat NaN where n_obs == P, r2 NaN where
      the centred (or uncentred without intercept) total sum of squares is 0.
    * ``n_obs`` is statsmodels' nobs: 0 where no fit was made (factorcore always fills it), so
      compare n_obs against the direct solve, or only where a fit exists.
    * ``reset``: statsmodels' interval for recomputing its running cross-products.
    """
    from statsmodels.regression.rolling import RollingOLS, RollingWLS

    y_in = np.asarray(y, dtype=np.float64)
    y2 = _as_2d(y_in)
    x2 = _as_2d(x)
    t_len, n_assets = y2.shape
    k = x2.shape[1]
    p = n_params(k, intercept)
    mp = default_min_periods(window, p) if min_periods is None else min_periods
    design = np.column_stack([np.ones(t_len), x2]) if intercept else x2.copy()
    expanding = window is None or mp < window
    weights = None if halflife is None else 2.0 ** (np.arange(t_len) / halflife)

    coef = np.full((t_len, n_assets, p), np.nan)
    tstat = np.full((t_len, n_assets, p), np.nan)
    r2 = np.full((t_len, n_assets), np.nan)
    resid_vol = np.full((t_len, n_assets), np.nan)
    n_obs = np.zeros((t_len, n_assets), dtype=np.uint32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(n_assets):
            if weights is None:
                mod = RollingOLS(
                    y2[:, j],
                    design,
                    window=window,
                    min_nobs=mp,
                    missing="drop",
                    expanding=expanding,
                )
            else:
                mod = RollingWLS(
                    y2[:, j],
                    design,
                    window=window,
                    weights=weights,
                    min_nobs=mp,
                    missing="drop",
                    expanding=expanding,
                )
            res = mod.fit(reset=reset)
            nobs = np.asarray(res.nobs, dtype=np.int64)
            fitted = ~np.isnan(np.asarray(res.params)).any(axis=1)
            has_dof = fitted & (nobs > p)
            coef[:, j] = res.params
            tss = np.asarray(res.centered_tss if intercept else res.uncentered_tss)
            rsq = np.asarray(res.rsquared, dtype=np.float64)
            r2[:, j] = np.where(fitted & (tss != 0.0), rsq, np.nan)
            s2 = np.asarray(res.mse_resid, dtype=np.float64)
            if halflife is not None:
                s2 = s2 * 2.0 ** (-np.arange(t_len) / halflife)
            resid_vol[:, j] = np.where(has_dof, np.sqrt(np.abs(s2)), np.nan)
            tstat[:, j] = np.where(has_dof[:, None], np.asarray(res.tvalues), np.nan)
            n_obs[:, j] = np.where(fitted, nobs, 0)

    out = {"coef": coef, "r2": r2, "resid_vol": resid_vol, "tstat": tstat, "n_obs": n_obs}
    if y_in.ndim == 1:
        out = {key: val[:, 0] for key, val in out.items()}
    return out


# --------------------------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------------------------
def make_factor_data(
    t_len: int,
    n_assets: int,
    n_factors: int,
    seed: int,
    *,
    factor_vol: float = 0.01,
    idio_vol: float = 0.015,
) -> tuple[np.ndarray, np.ndarray]:
    """Daily-return-like data with a factor structure.

    Factors: correlated, ~1% daily vol, small positive drift.  Assets: alpha ~1bp/day, market
    beta around 1, other betas around 0, idiosyncratic vol 1-2%.  Returns (y (T, N), x (T, K)).
    """
    rng = np.random.default_rng(seed)
    mix = np.eye(n_factors) + 0.3 * rng.standard_normal((n_factors, n_factors))
    x = 0.0003 + factor_vol * (rng.standard_normal((t_len, n_factors)) @ mix) / np.sqrt(
        np.sum(mix**2, axis=0)
    )
    betas = 0.5 * rng.standard_normal((n_factors, n_assets))
    betas[0] += 1.0
    alpha = 1e-4 * rng.standard_normal(n_assets)
    vols = idio_vol * (0.6 + 0.8 * rng.random(n_assets))
    y = alpha + x @ betas + vols * rng.standard_normal((t_len, n_assets))
    return y, x
