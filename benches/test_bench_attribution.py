"""pytest-benchmark comparisons for attribution: ``brinson`` + ``link``, ``holdings_periods``
and ``factor_attribution``.

Sizes: quick T=252 dates N=1000 assets, full (``FACTORCORE_BENCH=full``) T=2520 N=3000.
Every peer's answer is checked against factorcore's on the same inputs before it is timed
(rtol 1e-8; atol 1e-10, as the effects and returns are small numbers).

Groups (factorcore entry first, then its peers):

6. ``attribution brinson(bf)+link(carino) ...``: holdings-level frame from
   ``bench_attribution.make_holdings`` (11 sectors, sector as an Enum):
   ``fc.link(fc.brinson(df, method="bf"), method="carino")`` vs
   - Polars C of bench_attribution (``polars_c``: one lazy query grouping on a packed integer
     key date * 11 + sector code, Carino k_t / k on a per-date frame joined back), the fastest
     of its Polars formulations on Enum sectors,
   - the pandas per-date loop (``bench_attribution.pandas_loop``) on the first k dates (quick
     63, full 126; scale T / k, one round), checked against factorcore on those k dates.
7. ``attribution holdings_periods ...``: ``fc.holdings_periods(returns, rotation, benchmark,
   sectors)`` (monthly periods) on ``factorcore.datasets.sample_market(n_assets=N)`` data,
   the last T dates of its daily wide returns and all its month-end snapshots, vs a
   straightforward pure-Polars implementation: ``group_by_dynamic("1mo")`` on the wide returns
   for the periods and compounded returns, ``join_asof`` for each side's latest snapshot before
   a period's first date, a full join of the two sides, sectors and returns joined on.
8. ``attribution factor_attribution ...``: ``fc.factor_attribution(weights, exposures,
   factor_returns, returns)`` on the same sample market (T + 252 dates of history): daily
   weights over its last 252 dates, forward-filled from the monthly ``rotation`` snapshots
   (each date holds the latest snapshot dated before it), exposures from
   ``fc.rolling_exposures(returns, factors, window=252)`` over the whole history, and the
   market's returns with null (delisted) returns set to 0 (factor_attribution refuses a held
   asset without a return; ``holdings_periods`` counts a missing return as 0 as well); vs a
   Polars implementation of the documented definition: returns unpivoted and joined to the
   weights, each asset's exposures of the latest exposure date strictly before the date
   (``join_asof``), then per date rp = sum w r, factor contribution f_k * sum w beta_k,
   specific = rp - sum of contributions, unexposed weight = sum of w without exposures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import bench_attribution as ba
import factorcore as fc
import numpy as np
import polars as pl
import pytest
from conftest import measure, size
from factorcore.datasets import FACTORS, SampleMarket, sample_market

T: int = size(252, 2520)
N: int = size(1000, 3000)
S = len(ba.SECTORS)
PANDAS_DATES: int = size(63, 126)
EXPOSURE_WINDOW = 252
ATTRIBUTION_DATES = 252
MARKET_END = dt.date(2026, 10, 30)  # sample_market's default end
RTOL, ATOL = 1e-8, 1e-10

BRINSON = f"attribution brinson(bf)+link(carino) T={T} N={N} S={S}"
PERIODS = f"attribution holdings_periods monthly T={T} N={N}"
FACTORS_GROUP = (
    f"attribution factor_attribution dates={ATTRIBUTION_DATES} N={N} K={len(FACTORS)} "
    f"W={EXPOSURE_WINDOW}"
)


def assert_close(got: Any, want: Any) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL, atol=ATOL)


def assert_same_columns(
    got: pl.DataFrame, want: pl.DataFrame, keys: list[str], values: list[str]
) -> None:
    """Equal key columns (labels compared as strings) and values within tolerance."""
    assert got.height == want.height
    for key in keys:
        assert got.get_column(key).cast(pl.String).equals(want.get_column(key).cast(pl.String))
    for value in values:
        assert_close(got.get_column(value).to_numpy(), want.get_column(value).to_numpy())


# --------------------------------------------------------------------------------------------
# 6. brinson + link: factorcore vs Polars vs pandas
# --------------------------------------------------------------------------------------------


def fc_brinson_link(df: pl.DataFrame) -> pl.DataFrame:
    return fc.link(fc.brinson(df, method="bf"), method="carino")


def assert_same_linked(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Linked effects per sector, matched by sector name."""
    a = got.with_columns(pl.col("sector").cast(pl.String)).sort("sector")
    b = want.with_columns(pl.col("sector").cast(pl.String)).sort("sector")
    assert_same_columns(a, b, ["sector"], ba.EFFECTS)


@pytest.fixture(scope="module")
def holdings() -> pl.DataFrame:
    return ba.with_sector_dtype(ba.make_holdings(T, N), "Enum")


def test_brinson_factorcore(benchmark: Any, holdings: pl.DataFrame) -> None:
    measure(
        benchmark,
        BRINSON,
        "factorcore brinson + link",
        lambda: fc_brinson_link(holdings),
        factorcore=True,
    )


def test_brinson_polars(benchmark: Any, holdings: pl.DataFrame) -> None:
    assert_same_linked(ba.polars_c(holdings), fc_brinson_link(holdings))
    measure(
        benchmark,
        BRINSON,
        "Polars lazy query (packed date-sector key, per-date k joined)",
        lambda: ba.polars_c(holdings),
    )


def test_brinson_pandas(benchmark: Any, holdings: pl.DataFrame) -> None:
    sample = ba.first_dates(holdings, PANDAS_DATES)
    frame = ba.to_pandas_frame(sample)
    assert_same_linked(ba.pandas_to_polars(ba.pandas_loop(frame)), fc_brinson_link(sample))
    measure(
        benchmark,
        BRINSON,
        f"pandas per-date groupby loop ({PANDAS_DATES} dates)",
        lambda: ba.pandas_loop(frame),
        scale=T / PANDAS_DATES,
        rounds=1,
    )


# --------------------------------------------------------------------------------------------
# Sample market for groups 7 and 8
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    data: SampleMarket  # T + EXPOSURE_WINDOW business days up to MARKET_END
    returns: pl.DataFrame  # its last T dates (group 7)


@pytest.fixture(scope="module")
def market() -> Market:
    days = T + EXPOSURE_WINDOW
    start = np.busday_offset(np.datetime64(MARKET_END), -(days - 1), roll="backward")
    data = sample_market(n_assets=N, start=start.astype(dt.date), end=MARKET_END)
    assert data.returns.height == days
    return Market(data, data.returns.tail(T))


# --------------------------------------------------------------------------------------------
# 7. holdings_periods: factorcore vs pure Polars
# --------------------------------------------------------------------------------------------


def snapshot_of_period(periods: pl.DataFrame, snapshots: pl.DataFrame, name: str) -> pl.DataFrame:
    """Adds column `name`: the latest snapshot date before each period's first date."""
    dates = snapshots.select(pl.col("date").alias(name)).unique().sort(name)
    return periods.join_asof(
        dates, left_on="_first", right_on=name, strategy="backward", allow_exact_matches=False
    )


def polars_holdings_periods(
    returns: pl.DataFrame,
    portfolio: pl.DataFrame,
    benchmark: pl.DataFrame,
    sectors: pl.DataFrame,
    every: str = "1mo",
) -> pl.DataFrame:
    """``date asset sector wp wb ret`` per period and held asset (see fc.holdings_periods)."""
    growth = (pl.exclude("date").fill_nan(None).fill_null(0.0) + 1.0).product() - 1.0
    by_period = returns.group_by_dynamic("date", every=every).agg(
        pl.col("date").min().alias("_first"), pl.col("date").max().alias("_last"), growth
    )
    periods = by_period.select("date", "_first", "_last")
    periods = snapshot_of_period(periods, portfolio, "_p")
    periods = snapshot_of_period(periods, benchmark, "_b").drop_nulls(["_p", "_b"])
    compounded = by_period.drop("_first", "_last").unpivot(
        index="date", variable_name="asset", value_name="ret"
    )
    sides = [
        periods.join(
            frame.select(pl.col("date").alias(snap), "asset", pl.col("weight").alias(name)),
            on=snap,
        ).select("date", "_last", "asset", name)
        for frame, snap, name in ((portfolio, "_p", "wp"), (benchmark, "_b", "wb"))
    ]
    held = (
        sides[0]
        .join(sides[1], on=["date", "_last", "asset"], how="full", coalesce=True)
        .with_columns(pl.col("wp", "wb").fill_null(0.0))
        .filter((pl.col("wp") != 0) | (pl.col("wb") != 0))
    )
    return (
        held.join(sectors.select("asset", "sector"), on="asset", how="left")
        .join(compounded, on=["date", "asset"], how="left")
        .select(pl.col("_last").alias("date"), "asset", "sector", "wp", "wb", "ret")
        .sort("date", "asset")
    )


def periods_args(market: Market) -> tuple[pl.DataFrame, ...]:
    m = market.data
    return market.returns, m.portfolios["rotation"], m.benchmark, m.sectors


def test_periods_factorcore(benchmark: Any, market: Market) -> None:
    args = periods_args(market)
    measure(
        benchmark,
        PERIODS,
        "factorcore holdings_periods",
        lambda: fc.holdings_periods(*args),
        factorcore=True,
    )


def test_periods_polars(benchmark: Any, market: Market) -> None:
    args = periods_args(market)
    want = fc.holdings_periods(*args)
    assert_same_columns(
        polars_holdings_periods(*args), want, ["date", "asset", "sector"], ["wp", "wb", "ret"]
    )
    measure(
        benchmark,
        PERIODS,
        "Polars group_by_dynamic + join_asof",
        lambda: polars_holdings_periods(*args),
    )


# --------------------------------------------------------------------------------------------
# 8. factor_attribution: factorcore vs Polars on its definition
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorInputs:
    weights: pl.DataFrame  # date asset wp, the last ATTRIBUTION_DATES dates
    exposures: pl.DataFrame  # rolling_exposures output
    factor_returns: pl.DataFrame
    returns: pl.DataFrame  # wide, nulls set to 0

    def args(self) -> tuple[pl.DataFrame, ...]:
        return self.weights, self.exposures, self.factor_returns, self.returns


def daily_weights(snapshots: pl.DataFrame, dates: pl.DataFrame) -> pl.DataFrame:
    """``date asset wp``: on each date the latest snapshot dated before it."""
    snapshot_dates = snapshots.select(pl.col("date").alias("_snap")).unique().sort("_snap")
    held = dates.join_asof(
        snapshot_dates,
        left_on="date",
        right_on="_snap",
        strategy="backward",
        allow_exact_matches=False,
    )
    return (
        held.join(snapshots.rename({"date": "_snap", "weight": "wp"}), on="_snap")
        .select("date", "asset", "wp")
        .sort("date", "asset")
    )


@pytest.fixture(scope="module")
def factor_inputs(market: Market) -> FactorInputs:
    m = market.data
    exposures = fc.rolling_exposures(m.returns, m.factors, window=EXPOSURE_WINDOW)
    dates = m.returns.select("date").tail(ATTRIBUTION_DATES)
    weights = daily_weights(m.portfolios["rotation"], dates)
    return FactorInputs(weights, exposures, m.factors, m.returns.fill_null(0.0))


def polars_factor_attribution(
    weights: pl.DataFrame,
    exposures: pl.DataFrame,
    factor_returns: pl.DataFrame,
    returns: pl.DataFrame,
) -> pl.DataFrame:
    """``date rp rb <factors> specific total unexposed_weight`` (no benchmark weights: rb = 0)."""
    factors = [c for c in factor_returns.columns if c != "date"]
    long = returns.unpivot(index="date", variable_name="asset", value_name="ret")
    prior = exposures.select(
        "date", pl.col("asset").cast(pl.String), *(pl.col(f).alias(f"_b_{f}") for f in factors)
    ).sort("date")
    held = (
        weights.join(long, on=["date", "asset"], how="left")
        .sort("date")
        .join_asof(
            prior,
            on="date",
            by="asset",
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,  # both sides sorted by date, hence within every asset
        )
    )
    w = pl.col("wp")
    per_date = held.group_by("date").agg(
        (w * pl.col("ret")).sum().alias("rp"),
        *((w * pl.col(f"_b_{f}")).sum().alias(f"_e_{f}") for f in factors),
        w.filter(pl.col(f"_b_{factors[0]}").is_null()).sum().alias("unexposed_weight"),
    )
    contributions = [(pl.col(f"_e_{f}") * pl.col(f)).alias(f) for f in factors]
    return (
        per_date.join(factor_returns, on="date", how="left")
        .select("date", "rp", pl.lit(0.0).alias("rb"), *contributions, "unexposed_weight")
        .with_columns(specific=pl.col("rp") - pl.sum_horizontal(factors), total=pl.col("rp"))
        .select("date", "rp", "rb", *factors, "specific", "total", "unexposed_weight")
        .sort("date")
    )


def test_factors_factorcore(benchmark: Any, factor_inputs: FactorInputs) -> None:
    args = factor_inputs.args()
    measure(
        benchmark,
        FACTORS_GROUP,
        "factorcore factor_attribution",
        lambda: fc.factor_attribution(*args),
        factorcore=True,
    )


def test_factors_polars(benchmark: Any, factor_inputs: FactorInputs) -> None:
    args = factor_inputs.args()
    want = fc.factor_attribution(*args)
    got = polars_factor_attribution(*args)
    assert got.columns == want.columns
    assert_same_columns(got, want, ["date"], want.columns[1:])
    measure(
        benchmark,
        FACTORS_GROUP,
        "Polars unpivot + join_asof + group_by(date)",
        lambda: polars_factor_attribution(*args),
    )
