"""A built-in, seeded synthetic market to try factorcore on without any data files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

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

# Typical loadings per sector on (size, value, momentum, dollar): growth sectors load
# negatively on value, defensives on the market, exporters on the dollar.
_SECTOR_TILTS = {
    "Communication Services": (-0.1, -0.5, 0.2, -0.1),
    "Consumer Discretionary": (0.1, -0.3, 0.1, -0.1),
    "Consumer Staples": (-0.2, 0.2, -0.1, -0.2),
    "Energy": (0.1, 0.8, 0.0, -0.3),
    "Financials": (0.0, 0.7, 0.0, 0.1),
    "Health Care": (-0.1, 0.0, 0.0, -0.1),
    "Industrials": (0.2, 0.3, 0.0, -0.2),
    "Information Technology": (-0.2, -0.8, 0.3, -0.2),
    "Materials": (0.2, 0.5, 0.0, -0.4),
    "Real Estate": (0.3, 0.4, -0.1, 0.0),
    "Utilities": (0.0, 0.4, -0.2, 0.1),
}
_SECTOR_MARKET_BETA = {"Consumer Staples": 0.7, "Utilities": 0.6, "Health Care": 0.8}


@dataclass(frozen=True)
class SampleMarket:
    """Daily returns of a synthetic market.

    Attributes
    ----------
    returns
        Wide frame: ``date`` plus one Float64 column per asset (null before listing).
    factors
        Wide frame: ``date`` plus the factor returns ``market size value momentum dollar``.
    sectors
        One row per asset: ``asset``, ``sector``.
    """

    returns: pl.DataFrame
    factors: pl.DataFrame
    sectors: pl.DataFrame


def sample_market(
    seed: int = 0,
    n_assets: int = 300,
    start: dt.date = dt.date(2016, 1, 1),
    end: dt.date = dt.date(2026, 6, 30),
) -> SampleMarket:
    """A seeded, deterministic factor-driven market on business days from `start` to `end`.

    Value lags growth through 2025 and leads in 2026 (a rotation), and exposures of
    growth names drift towards value over the last two years. About one asset in
    twenty lists late.

    >>> market = sample_market(n_assets=50)
    >>> market.returns.width, market.factors.columns
    (51, ['date', 'market', 'size', 'value', 'momentum', 'dollar'])
    """
    rng = np.random.default_rng(seed)
    dates = pl.date_range(start, end, interval="1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)
    t_len = dates.len()
    years = dates.dt.year().to_numpy()

    # Factor returns: daily vol ~1% market, 0.3-0.6% style factors; value drifts down
    # until 2025 and up in 2026.
    vol = np.array([0.011, 0.005, 0.006, 0.006, 0.004])
    drift = np.array([0.0004, 0.0, 0.0, 0.0002, 0.0])
    factor_returns = rng.standard_normal((t_len, 5)) * vol + drift
    factor_returns[:, 2] += np.where(years <= 2025, -0.00025, 0.0006)

    sector_of = [SECTORS[i % len(SECTORS)] for i in rng.permutation(n_assets)]
    names = [f"{sector.split()[0][:4].upper()}{i:03d}" for i, sector in enumerate(sector_of)]
    betas = np.empty((n_assets, 5))
    for i, sector in enumerate(sector_of):
        betas[i, 0] = _SECTOR_MARKET_BETA.get(sector, 1.0) + 0.2 * rng.standard_normal()
        betas[i, 1:] = np.array(_SECTOR_TILTS[sector]) + 0.2 * rng.standard_normal(4)

    # Growth names (negative value loading) drift towards value over 2025-2026.
    ramp = np.clip((years - 2024.5) / 1.5, 0.0, 1.0)[:, None]
    value_drift = np.where(betas[:, 2] < 0, 0.4, 0.0)[None, :]
    exposure_value = betas[None, :, 2] + ramp * value_drift
    systematic = factor_returns[:, [0, 1, 3, 4]] @ betas[:, [0, 1, 3, 4]].T
    systematic += factor_returns[:, [2]] * exposure_value
    sector_index = np.array([SECTORS.index(s) for s in sector_of])
    sector_noise = 0.004 * rng.standard_normal((t_len, len(SECTORS)))[:, sector_index]
    idiosyncratic = rng.standard_normal((t_len, n_assets)) * rng.uniform(0.008, 0.02, n_assets)
    returns = systematic + sector_noise + idiosyncratic

    late = rng.random(n_assets) < 0.05
    listing = rng.integers(t_len // 4, 3 * t_len // 4, n_assets)
    columns = {
        name: pl.Series(name, returns[:, j]).scatter(list(range(listing[j])), None)
        if late[j]
        else pl.Series(name, returns[:, j])
        for j, name in enumerate(names)
    }
    return SampleMarket(
        returns=pl.DataFrame({"date": dates, **columns}),
        factors=pl.DataFrame({"date": dates, **dict(zip(FACTORS, factor_returns.T, strict=True))}),
        sectors=pl.DataFrame({"asset": names, "sector": sector_of}),
    )
