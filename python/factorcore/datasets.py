"""A built-in, seeded synthetic market to try factorcore on without any data files.

The market tells the story factorcore was built for: growth led value through 2025
(a growth index up 19.9% against 12.3% for value that year, as the S&P 500 style
indices were), then capital rotated toward financials, industrials and utilities in
2026. It comes with a cap-weighted benchmark and two portfolios that managers run in
such a market: a sector rotation and a barbell of growth communication services and
defensive health care.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from factorcore.errors import InvalidInputError

SECTORS = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)
FACTORS = ("market", "size", "value", "momentum", "dollar")

# Short ticker prefixes per sector, in SECTORS order.
_CODES = ("COMM", "DISC", "STAP", "ENER", "FINL", "HLTH", "INDU", "TECH", "MATR", "REIT", "UTIL")

# Typical loadings per sector on (size, value, momentum, dollar): growth sectors load
# negatively on value, exporters negatively on the dollar.
_SECTOR_TILTS = np.array(
    [
        (-0.1, -0.6, 0.2, -0.1),
        (0.1, -0.4, 0.1, -0.1),
        (-0.2, 0.3, -0.1, -0.2),
        (0.1, 0.8, 0.0, -0.3),
        (0.0, 0.7, 0.0, 0.1),
        (-0.1, 0.0, 0.0, -0.1),
        (0.2, 0.4, 0.0, -0.2),
        (-0.2, -0.8, 0.3, -0.2),
        (0.2, 0.5, 0.0, -0.4),
        (0.3, 0.4, -0.1, 0.0),
        (0.0, 0.5, -0.2, 0.1),
    ]
)
_MARKET_BETA = np.array([1.1, 1.1, 0.7, 1.0, 1.0, 0.8, 1.0, 1.2, 1.0, 0.9, 0.6])

# Daily drift of each sector's own factor in 2026: the rotation out of growth.
_ROTATION_2026 = np.array(
    [-0.0004, -0.0002, 0.0, -0.0003, 0.0011, 0.0, 0.0012, -0.0006, -0.0005, 0.0, 0.0016]
)
_GROWTH_SECTORS = ("Information Technology", "Communication Services", "Consumer Discretionary")
_ROTATION_SECTORS = ("Financials", "Industrials", "Utilities")

# 2025 calendar-year returns of the growth and value style indices (S&P 500 growth
# and value in 2025), which the generator hits exactly.
STYLE_RETURNS_2025 = {"growth": 0.199, "value": 0.123}


@dataclass(frozen=True)
class SampleMarket:
    """Daily returns of a synthetic market, its benchmark and two portfolios.

    Attributes
    ----------
    returns
        Wide frame: ``date`` plus one Float64 column per asset, null before an asset
        lists and after it delists.
    factors
        Wide frame: ``date`` plus the factor returns ``market size value momentum
        dollar`` (``value`` is value minus growth).
    sectors
        One row per asset: ``asset``, ``sector`` (GICS sector name) and ``style``
        (``"growth"``, ``"value"`` or ``"core"``, from the asset's value loading).
    benchmark
        Long frame ``date asset weight``: cap-weighted snapshots on the last business
        day of every month, over the assets trading that day; weights sum to 1.
    portfolios
        ``{"rotation": ..., "barbell": ...}``, long frames like `benchmark` on the same
        dates. ``rotation`` holds the six largest names of every sector, overweighting
        technology, communication services and consumer discretionary through 2025 and
        financials, industrials and utilities from the last snapshot of 2025 on.
        ``barbell`` holds half its weight in the largest growth communication-services
        names and half in the largest low-beta health-care names, equally weighted.
    """

    returns: pl.DataFrame
    factors: pl.DataFrame
    sectors: pl.DataFrame
    benchmark: pl.DataFrame
    portfolios: dict[str, pl.DataFrame] = field(default_factory=dict)


def sample_market(
    seed: int = 0,
    n_assets: int = 500,
    start: dt.date = dt.date(2016, 1, 1),
    end: dt.date = dt.date(2026, 10, 30),
) -> SampleMarket:
    """A seeded, deterministic factor-driven market on business days from `start` to `end`.

    Asset returns are ``market + size + value + momentum + dollar`` exposures times the
    factor returns, plus a sector factor shared by the sector's assets and idiosyncratic
    noise. About 5% of the assets list late and 3% delist early. Growth names' value
    loadings drift up through 2025-2026.

    With the default arguments the 2025 returns of the growth and value style indices
    are exactly
    :data:`STYLE_RETURNS_2025`: the generator solves for the 2025 drift of the market
    and value factors that gives them. A style index holds the benchmark's growth (or
    value) assets at their month-end weights, renormalised, over the next month: it is
    what :func:`~factorcore.brinson` reports as the benchmark return `rb` of a "sector"
    when the styles are the sectors. In 2026 financials, industrials and utilities lead.

    >>> market = sample_market(n_assets=50, start=dt.date(2024, 1, 1))
    >>> market.returns.width, market.factors.columns
    (51, ['date', 'market', 'size', 'value', 'momentum', 'dollar'])
    >>> sorted(market.portfolios)
    ['barbell', 'rotation']
    """
    if n_assets < 2 * len(SECTORS):
        raise InvalidInputError(
            f"n_assets must be at least {2 * len(SECTORS)} (two per sector), got {n_assets}"
        )
    rng = np.random.default_rng(seed)
    dates = pl.date_range(start, end, interval="1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)
    n_rows = dates.len()
    if n_rows < 260:
        raise InvalidInputError(
            f"the sample from {start} to {end} has {n_rows} business days; it needs a year (260)"
        )
    years = dates.dt.year().to_numpy()

    # Factor returns: daily vol about 1% for the market, 0.4-0.6% for the styles.
    vol = np.array([0.010, 0.004, 0.005, 0.005, 0.004])
    drift = np.array([0.0004, 0.0, -0.0002, 0.0002, 0.0])
    factor_returns = rng.standard_normal((n_rows, 5)) * vol + drift
    factor_returns[years >= 2026, 2] += 0.0005

    sector = rng.permutation(n_assets) % len(SECTORS)
    betas = np.empty((n_assets, 5))
    betas[:, 0] = _MARKET_BETA[sector] + 0.15 * rng.standard_normal(n_assets)
    betas[:, 1:] = _SECTOR_TILTS[sector] + 0.2 * rng.standard_normal((n_assets, 4))
    style = np.where(betas[:, 2] < -0.2, "growth", np.where(betas[:, 2] > 0.2, "value", "core"))

    # Growth names drift toward value over 2025-2026.
    elapsed = (dates - dt.date(2025, 1, 1)).dt.total_days().to_numpy() / 365.25
    ramp = np.clip(elapsed / 1.75, 0.0, 1.0)[:, None]
    value_loading = betas[None, :, 2] + ramp * np.where(style == "growth", 0.4, 0.0)[None, :]

    sector_returns = 0.007 * rng.standard_normal((n_rows, len(SECTORS)))
    sector_returns[years >= 2026] += _ROTATION_2026
    base = (
        factor_returns[:, [0, 1, 3, 4]] @ betas[:, [0, 1, 3, 4]].T
        + factor_returns[:, [2]] * value_loading
        + sector_returns[:, sector]
        + rng.standard_normal((n_rows, n_assets)) * rng.uniform(0.005, 0.012, n_assets)
    )

    # Listing and delisting: null returns before the first or after the last day.
    order = rng.permutation(n_assets)
    late, gone = (
        order[: round(0.05 * n_assets)],
        order[round(0.05 * n_assets) :][: round(0.03 * n_assets)],
    )
    trading = np.ones((n_rows, n_assets), dtype=bool)
    for j in late:
        trading[: rng.integers(n_rows // 8, 3 * n_rows // 4), j] = False
    for j in gone:
        trading[rng.integers(n_rows // 2, n_rows - 30) :, j] = False

    cap0 = np.exp(rng.normal(0.0, 1.0, n_assets)) * np.where(style == "growth", 2.0, 1.0)
    snapshots = (
        dates.to_frame("date")
        .group_by_dynamic("date", every="1mo")
        .agg(pl.col("date").last().alias("last"))
    )
    snapshot_rows = np.searchsorted(dates.to_numpy(), snapshots.get_column("last").to_numpy())

    # The 2025 drifts of the market and value factors that give the style returns.
    rows = np.flatnonzero(years == 2025)
    directions = (np.broadcast_to(betas[:, 0], (rows.size, n_assets)), value_loading[rows])
    cap_weights = _CapWeights(base, trading, cap0, snapshot_rows, rows, directions)
    month_starts = np.flatnonzero(np.diff(dates.dt.month().to_numpy()[rows], prepend=0))
    shift = _calibrate(cap_weights, month_starts, style)
    returns = base  # no longer needed as it was: shift in place
    returns[rows] += directions[0] * shift[0] + directions[1] * shift[1]
    returns[~trading] = np.nan
    factor_returns[rows, 0] += shift[0]
    factor_returns[rows, 2] += shift[1]
    benchmark = cap_weights(shift)

    names = [f"{_CODES[s]}{i:03d}" for i, s in enumerate(sector)]
    snapshot_dates = dates.gather(snapshot_rows)
    rotation = _rotation(benchmark, sector, snapshot_dates)
    barbell = _barbell(benchmark, sector, style, betas[:, 0])
    return SampleMarket(
        returns=pl.concat(
            [dates.alias("date").to_frame(), pl.from_numpy(returns, schema=names).fill_nan(None)],
            how="horizontal",
        ),
        factors=pl.DataFrame({"date": dates, **dict(zip(FACTORS, factor_returns.T, strict=True))}),
        sectors=pl.DataFrame(
            {"asset": names, "sector": [SECTORS[s] for s in sector], "style": style.tolist()}
        ),
        benchmark=_long_weights(benchmark, snapshot_dates, names),
        portfolios={
            "rotation": _long_weights(rotation, snapshot_dates, names),
            "barbell": _long_weights(barbell, snapshot_dates, names),
        },
    )


class _CapWeights:
    """Cap weights (snapshots x assets) over the assets trading on each snapshot day,
    for returns shifted along `directions` on `rows`: ``shift -> weights``.

    Caps grow with the returns; the base path's log growth is summed once, and a shift
    only re-sums the shifted rows.
    """

    def __init__(
        self,
        base: np.ndarray,
        trading: np.ndarray,
        cap0: np.ndarray,
        snapshot_rows: np.ndarray,
        rows: np.ndarray,
        directions: tuple[np.ndarray, np.ndarray],
    ) -> None:
        log_base = np.log1p(np.where(trading, base, 0.0))
        self.growth = np.log(cap0) + np.cumsum(log_base, axis=0)[snapshot_rows]
        self.live = trading[snapshot_rows]
        self.base, self.log_base = base[rows], log_base[rows]
        self.trading, self.directions = trading[rows], directions
        self.before = np.searchsorted(rows, snapshot_rows, side="right")  # shifted rows up to

    def __call__(self, shift: np.ndarray) -> np.ndarray:
        shifted = self.base + self.directions[0] * shift[0] + self.directions[1] * shift[1]
        extra = np.log1p(np.where(self.trading, shifted, 0.0)) - self.log_base
        extra = np.vstack([np.zeros(extra.shape[1]), np.cumsum(extra, axis=0)])
        growth = self.growth + extra[self.before]
        caps = np.where(self.live, np.exp(growth - growth.max(axis=1, keepdims=True)), 0.0)
        return caps / caps.sum(axis=1, keepdims=True)


def _calibrate(cap_weights: _CapWeights, month_starts: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Daily 2025 shifts of the (market, value) factors that give the style returns.

    A style index holds over each month the snapshot before it (its style's weights,
    renormalised) and compounds each asset over the month, so the index's year is
    ``prod_m (1 + sum_i w_mi (prod_t (1 + r_ti) - 1)) - 1``. With the weights fixed,
    Newton's method solves for the shifts; the cap weights then move with the shifted
    returns, so this repeats until the shifts stop changing.
    """
    shift = np.zeros(2)
    held = np.searchsorted(cap_weights.before, month_starts, side="right") - 1
    if month_starts.size == 0 or held[0] < 0 or not {"growth", "value"} <= set(style):
        return shift
    targets = np.log1p([STYLE_RETURNS_2025["growth"], STYLE_RETURNS_2025["value"]])
    base, directions, live = cap_weights.base, cap_weights.directions, cap_weights.trading
    for _ in range(50):
        weights = cap_weights(shift)[held]
        indices = [np.where(style == name, weights, 0.0) for name in ("growth", "value")]
        indices = [w / w.sum(axis=1, keepdims=True) for w in indices]
        previous = shift.copy()
        for _ in range(50):
            daily = 1.0 + base + directions[0] * shift[0] + directions[1] * shift[1]
            log_daily = np.where(live, np.log(daily), 0.0)
            growth = np.exp(np.add.reduceat(log_daily, month_starts))
            slopes = [
                np.add.reduceat(np.where(live, d / daily, 0.0), month_starts) for d in directions
            ]
            residual, jacobian = np.empty(2), np.empty((2, 2))
            for k, w in enumerate(indices):
                month = 1.0 + (w * (growth - 1.0)).sum(axis=1)
                residual[k] = np.log(month).sum() - targets[k]
                jacobian[k] = [((w * growth * slope).sum(axis=1) / month).sum() for slope in slopes]
            step = np.linalg.solve(jacobian, residual)
            shift -= step
            if np.abs(step).max() <= 1e-17:
                break
        if np.abs(shift - previous).max() <= 1e-17:
            break
    return shift


def _long_weights(weights: np.ndarray, dates: pl.Series, names: list[str]) -> pl.DataFrame:
    """Snapshots (dates x assets) as a long ``date asset weight`` frame without zeros."""
    snap, asset = np.nonzero(weights)
    return pl.DataFrame(
        {
            "date": dates.gather(snap),
            "asset": [names[j] for j in asset],
            "weight": weights[snap, asset],
        }
    )


def _rotation(benchmark: np.ndarray, sector: np.ndarray, dates: pl.Series) -> np.ndarray:
    """Six largest names per sector, sectors tilted toward the year's theme."""
    rotated = (dates >= dt.date(2025, 12, 31)).to_numpy()
    growth = np.isin(np.array(SECTORS)[sector], _GROWTH_SECTORS)
    cyclical = np.isin(np.array(SECTORS)[sector], _ROTATION_SECTORS)
    weights = np.zeros_like(benchmark)
    for s in range(len(SECTORS)):
        members = np.flatnonzero(sector == s)
        for i, row in enumerate(benchmark):
            top = members[np.argsort(-row[members], kind="stable")[:6]]
            top = top[row[top] > 0]
            if top.size:
                weights[i, top] = row[members].sum() * row[top] / row[top].sum()
    tilt = np.where(
        rotated[:, None],
        np.where(cyclical, 1.6, np.where(growth, 0.7, 1.0)),
        np.where(growth, 1.5, np.where(cyclical, 0.6, 1.0)),
    )
    weights *= tilt
    return weights / weights.sum(axis=1, keepdims=True)


def _barbell(
    benchmark: np.ndarray, sector: np.ndarray, style: np.ndarray, market_beta: np.ndarray
) -> np.ndarray:
    """Half in the ten largest growth communication-services names, half in the ten
    largest low-beta health-care names, equally weighted within each half."""
    legs = [
        (sector == SECTORS.index("Communication Services")) & (style == "growth"),
        (sector == SECTORS.index("Health Care")) & (market_beta < np.median(market_beta)),
    ]
    sectors = [sector == SECTORS.index(name) for name in ("Communication Services", "Health Care")]
    weights = np.zeros_like(benchmark)
    for i, row in enumerate(benchmark):
        for leg, whole_sector in zip(legs, sectors, strict=True):
            # A small market may have no such names trading: then any of the sector's.
            names = (
                np.flatnonzero(leg & (row > 0))
                if (leg & (row > 0)).any()
                else (np.flatnonzero(whole_sector & (row > 0)))
            )
            top = names[np.argsort(-row[names], kind="stable")[:10]]
            if top.size:
                weights[i, top] = 0.5 / top.size
    # With one leg empty the other holds everything.
    return weights / weights.sum(axis=1, keepdims=True)
