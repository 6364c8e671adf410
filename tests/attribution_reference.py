"""Independent NumPy references for the attribution tests (nothing here imports factorcore).

Every function computes its result straight from the published definition, on dense
(date x sector) arrays, so that the tests can compare factorcore's output with numbers that
never went through factorcore:

* :func:`brinson_ref` -- single-period Brinson-Hood-Beebower, Brinson-Fachler (optionally
  top-down: interaction folded into selection) and Bacon's geometric attribution.
* :func:`aggregate_holdings` -- holdings (date x asset) to sectors: summed weights and
  weight-averaged returns, per side.
* :func:`carino`, :func:`menchero`, :func:`grap`, :func:`frongello` -- arithmetic linking
  of per-period effects; :func:`compound` for the geometric identities.
* :func:`factor_attribution_ref` -- factor contributions with exposures lagged one
  exposure date (no look-ahead).
* Generators of random sector-level and holdings-level data.

Formulas: Bacon, *Practical Portfolio Performance Measurement and Attribution* (2008),
ch. 5 (single period) and ch. 8 (linking); Carino (1999); Menchero (2000); GRAP (1997);
Frongello (2002).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

EFFECTS = ("allocation", "selection", "interaction")


# --------------------------------------------------------------------------------------------
# single-period Brinson
# --------------------------------------------------------------------------------------------
def fill_one_sided(wp, wb, rp, rb):
    """The documented rule: a side with zero weight takes the other side's sector return.

    Returns filled (rp, rb); where both weights are zero both stay NaN.
    """
    wp, wb = np.asarray(wp, float), np.asarray(wb, float)
    rp, rb = np.array(rp, float), np.array(rb, float)
    only_b = (wp == 0) & (wb != 0)
    only_p = (wb == 0) & (wp != 0)
    rp[only_b] = rb[only_b]
    rb[only_p] = rp[only_p]
    none = (wp == 0) & (wb == 0)
    rp[none] = np.nan
    rb[none] = np.nan
    return rp, rb


def brinson_ref(wp, wb, rp, rb, *, method: str = "bf", top_down: bool = False) -> dict:
    """Single-period effects on (T, S) arrays (rows = dates, columns = sectors).

    Returns a dict with the filled ``rp``, ``rb``, the per-date totals ``Rp``, ``Rb`` (and the
    semi-notional ``Rs = sum wp * rb``), and (T, S) ``allocation``, ``selection``,
    ``interaction``, ``total``. Sectors with zero weight on both sides have zero effects.
    """
    wp, wb = np.atleast_2d(np.asarray(wp, float)), np.atleast_2d(np.asarray(wb, float))
    rp, rb = fill_one_sided(wp, wb, np.atleast_2d(rp), np.atleast_2d(rb))
    rp0 = np.nan_to_num(rp)  # both weights zero: contributes nothing
    rb0 = np.nan_to_num(rb)
    big_rp = np.sum(wp * rp0, axis=1)
    big_rb = np.sum(wb * rb0, axis=1)
    big_rs = np.sum(wp * rb0, axis=1)  # Bacon's semi-notional return
    dw = wp - wb
    if method in ("bf", "bhb"):
        if method == "bhb":
            alloc = dw * rb0
        else:
            alloc = dw * (rb0 - big_rb[:, None])
        if top_down:
            sel = wp * (rp0 - rb0)
            inter = np.zeros_like(sel)
        else:
            sel = wb * (rp0 - rb0)
            inter = dw * (rp0 - rb0)
    elif method == "geometric":
        alloc = dw * ((1 + rb0) / (1 + big_rb[:, None]) - 1)
        sel = wp * ((1 + rp0) / (1 + rb0) - 1) * (1 + rb0) / (1 + big_rs[:, None])
        inter = np.zeros_like(sel)
    else:
        raise ValueError(method)
    return {
        "rp": rp,
        "rb": rb,
        "Rp": big_rp,
        "Rb": big_rb,
        "Rs": big_rs,
        "allocation": alloc,
        "selection": sel,
        "interaction": inter,
        "total": alloc + sel + inter,
    }


def aggregate_holdings(sector_idx, n_sectors, wp, wb, ret):
    """Holdings of one date -> sector weights and weight-averaged sector returns, per side.

    ``sector_idx`` gives each holding's sector (0..n_sectors-1). A holding with both weights
    zero may have a NaN return (it contributes nothing). Sector returns are NaN where the
    side's sector weight is zero.
    """
    wp, wb, ret = (np.asarray(a, float) for a in (wp, wb, ret))
    ret0 = np.where((wp == 0) & (wb == 0), 0.0, ret)
    swp = np.bincount(sector_idx, weights=wp, minlength=n_sectors)
    swb = np.bincount(sector_idx, weights=wb, minlength=n_sectors)
    cp = np.bincount(sector_idx, weights=wp * ret0, minlength=n_sectors)
    cb = np.bincount(sector_idx, weights=wb * ret0, minlength=n_sectors)
    with np.errstate(invalid="ignore", divide="ignore"):
        srp = np.where(swp != 0, cp / np.where(swp != 0, swp, 1.0), np.nan)
        srb = np.where(swb != 0, cb / np.where(swb != 0, swb, 1.0), np.nan)
    return swp, swb, srp, srb


# --------------------------------------------------------------------------------------------
# linking (per-period effects e: (T, ...) arrays; Rp, Rb: (T,) period totals)
# --------------------------------------------------------------------------------------------
def compound(r) -> float:
    return float(np.prod(1.0 + np.asarray(r, float)) - 1.0)


def _log_ratio_coef(a: float, b: float) -> float:
    """(ln(1+a) - ln(1+b)) / (a - b), and its limit 1 / (1+a) when a == b."""
    if a == b:
        return 1.0 / (1.0 + a)
    return (np.log1p(a) - np.log1p(b)) / (a - b)


def _expand(coef, e):
    e = np.asarray(e, float)
    return np.asarray(coef, float).reshape((-1,) + (1,) * (e.ndim - 1)) * e


def carino(e, rp, rb):
    """Carino (1999): each period's effects scaled by k_t / k; summed over periods."""
    rp, rb = np.asarray(rp, float), np.asarray(rb, float)
    k_t = np.array([_log_ratio_coef(a, b) for a, b in zip(rp, rb, strict=True)])
    k = _log_ratio_coef(compound(rp), compound(rb))
    return _expand(k_t / k, e).sum(axis=0)


def menchero_coefficients(rp, rb):
    """Menchero (2000): M + a_t, with a_t chosen to minimise the distortion."""
    rp, rb = np.asarray(rp, float), np.asarray(rb, float)
    n = rp.shape[0]
    big_r, big_b = compound(rp), compound(rb)
    d = rp - rb
    if big_r == big_b:
        m = (1.0 + big_r) ** ((n - 1) / n)
        return np.full(n, m)
    m = ((big_r - big_b) / n) / ((1 + big_r) ** (1 / n) - (1 + big_b) ** (1 / n))
    a = (big_r - big_b - m * d.sum()) / np.sum(d * d) * d
    return m + a


def menchero(e, rp, rb):
    return _expand(menchero_coefficients(rp, rb), e).sum(axis=0)


def grap(e, rp, rb):
    """GRAP (1997): effect of period t times prod_{s<t}(1+Rp_s) * prod_{s>t}(1+Rb_s)."""
    rp, rb = np.asarray(rp, float), np.asarray(rb, float)
    n = rp.shape[0]
    coef = np.array([np.prod(1 + rp[:t]) * np.prod(1 + rb[t + 1 :]) for t in range(n)], dtype=float)
    return _expand(coef, e).sum(axis=0)


def frongello_periods(e, rp, rb):
    """Frongello (2002) recursion, per period: G_t = e_t prod_{s<t}(1+Rp_s) + Rb_t sum_{s<t} G_s."""
    e = np.asarray(e, float)
    rp, rb = np.asarray(rp, float), np.asarray(rb, float)
    g = np.zeros_like(e)
    growth = 1.0
    running = np.zeros_like(e[0])
    for t in range(e.shape[0]):
        g[t] = e[t] * growth + rb[t] * running
        running = running + g[t]
        growth *= 1.0 + rp[t]
    return g


def frongello(e, rp, rb):
    return frongello_periods(e, rp, rb).sum(axis=0)


ARITHMETIC_LINKS = {"carino": carino, "menchero": menchero, "grap": grap, "frongello": frongello}


# --------------------------------------------------------------------------------------------
# factor attribution
# --------------------------------------------------------------------------------------------
def lagged_exposures(exp_dates, exp_betas, exp_valid, target_dates):
    """For each target date and asset: the betas of the latest exposure date strictly before it.

    exp_dates (E,) sorted; exp_betas (E, N, K); exp_valid (E, N) bool (the asset has a row on
    that exposure date). Returns (T, N, K) betas and (T, N) bool "has exposures".
    """
    exp_dates = np.asarray(exp_dates)
    n_t = len(target_dates)
    _, n, k = exp_betas.shape
    out = np.full((n_t, n, k), np.nan)
    has = np.zeros((n_t, n), dtype=bool)
    for i, day in enumerate(target_dates):
        before = np.flatnonzero(exp_dates < day)
        for j in range(n):
            rows = before[exp_valid[before, j]]
            if rows.size:
                out[i, j] = exp_betas[rows[-1], j]
                has[i, j] = True
    return out, has


def factor_attribution_ref(wp, wb, rets, fret, betas, has):
    """Per period: rp, rb, factor contributions (T, K), specific, total, unexposed weight.

    wp, wb, rets: (T, N); wb may be None. fret: (T, K). betas: (T, N, K) lagged exposures,
    has: (T, N) whether the asset had exposures.
    """
    wp = np.asarray(wp, float)
    active = wp if wb is None else wp - np.asarray(wb, float)
    held = wp != 0 if wb is None else (wp != 0) | (np.asarray(wb, float) != 0)
    r0 = np.where(held, rets, 0.0)
    rp = np.sum(wp * r0, axis=1)
    rb = np.zeros_like(rp) if wb is None else np.sum(np.asarray(wb, float) * r0, axis=1)
    b0 = np.where(has[..., None], betas, 0.0)
    port_beta = np.einsum("tn,tnk->tk", active, b0)
    contrib = fret * port_beta
    total = rp - rb
    unexposed = np.sum(np.where(has, 0.0, active), axis=1)
    return {
        "rp": rp,
        "rb": rb,
        "contrib": contrib,
        "specific": total - contrib.sum(axis=1),
        "total": total,
        "unexposed_weight": unexposed,
    }


# --------------------------------------------------------------------------------------------
# random data
# --------------------------------------------------------------------------------------------
def month_ends(n: int, start: dt.date = dt.date(2000, 1, 31)) -> list[dt.date]:
    """``n`` distinct, increasing dates (roughly monthly)."""
    return [start + dt.timedelta(days=30 * i) for i in range(n)]


def random_weights(rng, shape, *, zero_frac: float = 0.0, short_frac: float = 0.0):
    """Rows summing to 1: positive Dirichlet-like weights, some zeroed, some negated."""
    w = rng.gamma(1.0, size=shape)
    if zero_frac:
        w[rng.random(shape) < zero_frac] = 0.0
        empty = w.sum(axis=-1) == 0
        w[empty, 0] = 1.0
    if short_frac:
        w[rng.random(shape) < short_frac] *= -0.3
    return w / w.sum(axis=-1, keepdims=True)


def random_sector_arrays(rng, n_dates: int, n_sectors: int, *, zero_frac: float = 0.1):
    """wp, wb, rp, rb (T, S): returns ~N(0.5%, 5%); NaN returns where the weight is zero."""
    wp = random_weights(rng, (n_dates, n_sectors), zero_frac=zero_frac)
    wb = random_weights(rng, (n_dates, n_sectors), zero_frac=zero_frac)
    rp = 0.005 + 0.05 * rng.standard_normal((n_dates, n_sectors))
    rb = 0.005 + 0.05 * rng.standard_normal((n_dates, n_sectors))
    rp[wp == 0] = np.nan
    rb[wb == 0] = np.nan
    return wp, wb, rp, rb


def sector_frame(dates, sectors, wp, wb, rp, rb, *, sector_dtype=pl.String) -> pl.DataFrame:
    """Long sector-level frame, rows date-major in the given sector order."""
    t, s = np.asarray(wp).shape
    return pl.DataFrame(
        {
            "date": pl.Series("date", np.repeat(np.array(dates, dtype="datetime64[D]"), s)),
            "sector": pl.Series("sector", list(sectors) * t).cast(sector_dtype),
            "wp": np.asarray(wp, float).ravel(),
            "wb": np.asarray(wb, float).ravel(),
            "rp": np.asarray(rp, float).ravel(),
            "rb": np.asarray(rb, float).ravel(),
        }
    ).with_columns(pl.col("date").cast(pl.Date))


def _nan_to_null(name: str, values) -> pl.Series:
    return pl.Series(name, np.asarray(values, float).ravel(), dtype=pl.Float64, nan_to_null=True)


def expected_brinson_frame(
    dates, sectors, wp, wb, ref: dict, *, sector_dtype=pl.String, keys: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The documented output of ``brinson`` built from dense (T, S) reference arrays.

    One row per (date, sector) of ``keys`` (default: every pair), sorted by date then sector
    with Polars' own sort of the sector dtype; returns null where both weights are zero.
    """
    t, s = np.asarray(wp).shape
    frame = pl.DataFrame(
        [
            pl.Series("date", [d for d in dates for _ in range(s)], dtype=pl.Date),
            pl.Series("sector", list(sectors) * t).cast(sector_dtype),
            _nan_to_null("wp", wp),
            _nan_to_null("wb", wb),
            _nan_to_null("rp", ref["rp"]),
            _nan_to_null("rb", ref["rb"]),
            *(_nan_to_null(name, ref[name]) for name in (*EFFECTS, "total")),
        ]
    )
    if keys is not None:
        frame = frame.join(keys.select("date", "sector"), on=["date", "sector"], how="semi")
    return frame.sort(["date", "sector"], maintain_order=True)


def random_holdings(rng, n_dates: int, n_sectors: int, per_sector: int, *, zero_frac=0.3):
    """Holdings-level data: every asset belongs to one sector for the whole sample.

    Returns (frame, info) where info holds the dense arrays: dates, sector names, the asset ->
    sector index map and the (T, N) asset wp, wb, ret. Weights are zero at random (so whole
    sectors are sometimes held on one side only or on neither side); returns are NaN where
    both weights are zero.
    """
    n_assets = n_sectors * per_sector
    sector_of = np.repeat(np.arange(n_sectors), per_sector)
    wp = random_weights(rng, (n_dates, n_assets), zero_frac=zero_frac)
    wb = random_weights(rng, (n_dates, n_assets), zero_frac=zero_frac)
    # whole sectors held on one side only, or on neither side, on some dates
    for w in (wp, wb):
        drop = rng.random((n_dates, n_sectors)) < 0.1
        w[drop[:, sector_of]] = 0.0
        w[w.sum(axis=1) == 0, 0] = 1.0
        w /= w.sum(axis=1, keepdims=True)
    ret = 0.003 + 0.04 * rng.standard_normal((n_dates, n_assets))
    ret[(wp == 0) & (wb == 0)] = np.nan
    dates = month_ends(n_dates)
    sectors = [f"S{j:03d}" for j in rng.permutation(n_sectors)]
    assets = [f"A{i:04d}" for i in range(n_assets)]
    frame = pl.DataFrame(
        [
            pl.Series("date", [d for d in dates for _ in range(n_assets)], dtype=pl.Date),
            pl.Series("asset", assets * n_dates),
            pl.Series("sector", [sectors[j] for j in sector_of] * n_dates),
            pl.Series("wp", wp.ravel()),
            pl.Series("wb", wb.ravel()),
            pl.Series("ret", ret.ravel()),
        ]
    )
    info = {
        "dates": dates,
        "sectors": sectors,
        "sector_of": sector_of,
        "wp": wp,
        "wb": wb,
        "ret": ret,
    }
    return frame, info


def holdings_to_sector_arrays(info: dict):
    """Dense (T, S) sector wp, wb, rp, rb from the asset arrays of :func:`random_holdings`."""
    n_sectors = len(info["sectors"])
    out = [
        aggregate_holdings(
            info["sector_of"], n_sectors, info["wp"][t], info["wb"][t], info["ret"][t]
        )
        for t in range(len(info["dates"]))
    ]
    return tuple(np.vstack([o[i] for o in out]) for i in range(4))


# --------------------------------------------------------------------------------------------
# Bacon's three-sector example (published data)
# --------------------------------------------------------------------------------------------
# Bacon, Practical Portfolio Performance Measurement and Attribution (2nd ed., 2008): the
# single-period example of ch. 5 (first quarter) and the four-quarter example of ch. 8,
# Table 8.1. The inputs as reproduced in the test suite of the R package PortfolioAttribution
# (github.com/anandkkumar/PortfolioAttribution, tests/testthat/test_linking.R).
BACON_SECTORS = ["UK equities", "Japanese equities", "US equities"]
BACON_DATES = [
    dt.date(2016, 3, 31),
    dt.date(2016, 6, 30),
    dt.date(2016, 9, 30),
    dt.date(2016, 12, 31),
]
BACON_WP = np.array([[0.4, 0.3, 0.3], [0.7, 0.2, 0.1], [0.3, 0.5, 0.2], [0.3, 0.5, 0.2]])
BACON_WB = np.array([[0.4, 0.2, 0.4], [0.4, 0.3, 0.3], [0.5, 0.4, 0.1], [0.4, 0.4, 0.2]])
BACON_RP = np.array(
    [[0.20, -0.05, 0.06], [-0.05, 0.03, -0.05], [-0.20, 0.08, -0.15], [0.10, -0.07, 0.25]]
)
BACON_RB = np.array(
    [[0.10, -0.04, 0.08], [-0.07, 0.04, -0.10], [-0.25, 0.05, -0.20], [0.05, -0.05, 0.10]]
)


def bacon_frame(n_periods: int = 4) -> pl.DataFrame:
    """Sector-level frame of Bacon's example: the first ``n_periods`` quarters."""
    return sector_frame(
        BACON_DATES[:n_periods],
        BACON_SECTORS,
        BACON_WP[:n_periods],
        BACON_WB[:n_periods],
        BACON_RP[:n_periods],
        BACON_RB[:n_periods],
    )


# --------------------------------------------------------------------------------------------
# real data: skfolio's S&P 500 prices
# --------------------------------------------------------------------------------------------
SP500_SECTORS = {
    "Tech": ["AAPL", "AMD", "MSFT"],
    "Financials": ["BAC", "JPM"],
    "Energy": ["CVX", "RRC", "XOM"],
    "Health": ["JNJ", "LLY", "MRK", "PFE", "UNH"],
    "Consumer": ["BBY", "HD", "KO", "PEP", "PG", "WMT"],
    "Industrials": ["GE"],
}


def sp500_holdings_data(prices, start: str = "2018-01-01"):
    """Daily holdings from skfolio's S&P 500 prices (a pandas frame), ``start`` onwards.

    Benchmark: equal weights on the first day, then drifting with prices (buy and hold).
    Portfolio: a tilted mix without energy stocks, rebalanced on the first day of each month
    and drifting in between. Weights are those held over each day's return. Returns
    (holdings frame, info) with info as in :func:`random_holdings`.
    """
    prices = prices[prices.index >= start]
    assets = list(prices.columns)
    px = prices.to_numpy(dtype=np.float64)
    rets = px[1:] / px[:-1] - 1.0
    days = [d.date() for d in prices.index[1:]]
    sectors = list(SP500_SECTORS)
    sector_name = {a: s for s, names in SP500_SECTORS.items() for a in names}
    wb = px[:-1] / px[0]
    wb = wb / wb.sum(axis=1, keepdims=True)
    tilt = np.array(
        [0.0 if sector_name[a] == "Energy" else 1.0 + (i % 3) for i, a in enumerate(assets)]
    )
    tilt /= tilt.sum()
    wp = np.empty_like(wb)
    current = tilt.copy()
    for t, day in enumerate(days):
        if t == 0 or day.month != days[t - 1].month:
            current = tilt.copy()
        wp[t] = current
        current = current * (1 + rets[t])
        current /= current.sum()
    frame = pl.DataFrame(
        [
            pl.Series("date", [d for d in days for _ in assets], dtype=pl.Date),
            pl.Series("asset", assets * len(days)),
            pl.Series("sector", [sector_name[a] for a in assets] * len(days)),
            pl.Series("wp", wp.ravel()),
            pl.Series("wb", wb.ravel()),
            pl.Series("ret", rets.ravel()),
        ]
    )
    info = {
        "dates": days,
        "sectors": sectors,
        "sector_of": np.array([sectors.index(sector_name[a]) for a in assets]),
        "wp": wp,
        "wb": wb,
        "ret": rets,
    }
    return frame, info
