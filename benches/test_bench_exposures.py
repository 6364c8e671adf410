"""pytest-benchmark comparisons for rolling exposures: ``rolling_ols`` and ``rolling_exposures``.

Data: seeded factor-model returns (``bench_exposures.make_returns``), gap-free, K factors plus
an intercept; quick N=500 T=1260 K=5 W=252, full (``FACTORCORE_BENCH=full``) N=3000 T=2520.
Every peer's answer is checked against factorcore's on the same inputs (rtol = atol = 1e-8)
before the peer is timed.

Groups (factorcore entry first, then its peers):

1. ``exposures betas ...``: ``fc.rolling_ols(y, x, window=W, stats=False)`` vs
   - NumPy shared X'X (``bench_exposures.numpy_shared_xtx``: windowed sums by cumulative sums,
     one batched inverse, one batched matmul; fully vectorised),
   - polars-ols (``rolling_ols`` expression per asset column, all in one ``select``, in-process).
2. ``exposures betas vs statsmodels ...``: factorcore on all N assets vs statsmodels
   ``RollingOLS(...).fit(params_only=True)`` on 10 of them (scale N/10, one round), checked on
   those 10.
3. ``exposures single-factor beta ...``: ``fc.rolling_ols(y, x[:, :1], window=W, stats=False)``
   slope vs pandas ``df.rolling(W).cov(f) / f.rolling(W).var()`` (the intercept model's beta).
4. ``exposures Polars long frame ...``: ``fc.rolling_exposures(wide_returns, factors, window=W)``
   (Polars in, long Polars out) vs polars-ols on the same frames: join on date, one
   ``rolling_ols`` expression per asset, the wide struct output unpivoted to the same long
   frame (``date asset alpha <factors>``, sorted by date then asset, complete windows only).
   factorcore's frame also carries ``r2 resid_vol n_obs``, which the peer does not compute.
5. ``exposures betas halflife=63 ...``: ``fc.rolling_ols(y, x, window=W, halflife=63,
   stats=False)`` vs statsmodels ``RollingWLS`` on 5 assets (scale N/5). RollingWLS takes one
   weight per row, not per window, but weighted least squares is unchanged when all weights of
   a window are multiplied by one constant: the global weights ``2 ** (t / 63)`` give every
   window exactly the relative weights ``0.5 ** (age / 63)``, so RollingWLS expresses the
   workload directly (no NumPy fallback needed).

The betas-only groups call factorcore with ``stats=False`` because every peer computes
coefficients only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bench_exposures as bx
import factorcore as fc
import numpy as np
import pandas as pd
import polars as pl
import pytest
from conftest import measure, size

N: int = size(500, 3000)
T: int = size(1260, 2520)
K = 5
W = 252
HALFLIFE = 63
SM_ASSETS = 10  # statsmodels RollingOLS sample (group 2)
WLS_ASSETS = 5  # statsmodels RollingWLS sample (group 5)
SLOW_ROUNDS: int = size(2, 1)  # polars-ols takes more than a second per call
RTOL = ATOL = 1e-8

SHAPE = f"N={N} T={T} K={K} W={W}"
BETAS = f"exposures betas {SHAPE}"
STATSMODELS = f"exposures betas vs statsmodels ({SM_ASSETS} assets) {SHAPE}"
SINGLE = f"exposures single-factor beta N={N} T={T} W={W}"
FRAME = f"exposures Polars long frame {SHAPE}"
HALFLIFE_GROUP = f"exposures betas halflife={HALFLIFE} {SHAPE}"


@dataclass(frozen=True)
class Inputs:
    y: np.ndarray  # (T, N) asset returns
    x: np.ndarray  # (T, K) factor returns
    betas: np.ndarray  # factorcore's coefficients (T, N, K + 1), intercept first

    @property
    def x1(self) -> np.ndarray:
        """The first factor alone, (T, 1)."""
        return np.ascontiguousarray(self.x[:, :1])


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    y, x = bx.make_returns(T, N, K)
    betas = np.array(fc.rolling_ols(y, x, window=W, stats=False)["coef"])
    return Inputs(y, x, betas)


@pytest.fixture(scope="module")
def frames(inputs: Inputs) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Wide Polars frames: returns (``date`` + one column per asset) and factors."""
    d = bx.dates(T)
    assets, factors = bx.asset_names(N), bx.factor_names(K)
    returns = pl.DataFrame([d, *(pl.Series(a, inputs.y[:, j]) for j, a in enumerate(assets))])
    factor_frame = pl.DataFrame([d, *(pl.Series(f, inputs.x[:, k]) for k, f in enumerate(factors))])
    return returns, factor_frame


def sample_columns(n: int) -> list[int]:
    """`n` asset columns spread over all N."""
    return [int(j) for j in np.linspace(0, N - 1, n).astype(int)]


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    """Same shape, NaN in the same places, values within 1e-8."""
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def fc_betas(inputs: Inputs) -> dict[str, np.ndarray]:
    return fc.rolling_ols(inputs.y, inputs.x, window=W, stats=False)


# --------------------------------------------------------------------------------------------
# 1. betas: factorcore vs NumPy shared X'X vs polars-ols
# --------------------------------------------------------------------------------------------


def test_betas_factorcore(benchmark: Any, inputs: Inputs) -> None:
    measure(
        benchmark,
        BETAS,
        "factorcore rolling_ols(stats=False)",
        lambda: fc_betas(inputs),
        factorcore=True,
    )


def test_betas_numpy(benchmark: Any, inputs: Inputs) -> None:
    assert_close(bx.numpy_shared_xtx(inputs.y, inputs.x, W), inputs.betas)
    measure(
        benchmark,
        BETAS,
        "NumPy shared X'X (cumsum, batched inv + matmul)",
        lambda: bx.numpy_shared_xtx(inputs.y, inputs.x, W),
    )


def test_betas_polars_ols(benchmark: Any, inputs: Inputs) -> None:
    import polars_ols  # noqa: F401  a missing peer fails, never skips

    df, assets, factors = bx.polars_ols_frame(inputs.y, inputs.x)
    exprs = bx.polars_ols_exprs(assets, factors, W)
    assert_close(bx.polars_ols_to_array(df.select(exprs), assets), inputs.betas)
    measure(
        benchmark,
        BETAS,
        "polars-ols rolling_ols (one expression per asset)",
        lambda: df.select(exprs),
        rounds=SLOW_ROUNDS,
    )


# --------------------------------------------------------------------------------------------
# 2. betas: factorcore on all assets vs statsmodels RollingOLS on a sample
# --------------------------------------------------------------------------------------------


def test_statsmodels_factorcore(benchmark: Any, inputs: Inputs) -> None:
    measure(
        benchmark,
        STATSMODELS,
        "factorcore rolling_ols(stats=False)",
        lambda: fc_betas(inputs),
        factorcore=True,
    )


def test_statsmodels_rolling_ols(benchmark: Any, inputs: Inputs) -> None:
    import statsmodels  # noqa: F401  a missing peer fails, never skips

    cols = sample_columns(SM_ASSETS)
    assert_close(bx.statsmodels_sample(inputs.y, inputs.x, W, cols), inputs.betas[:, cols])
    measure(
        benchmark,
        STATSMODELS,
        f"statsmodels RollingOLS params_only ({SM_ASSETS} assets)",
        lambda: bx.statsmodels_sample(inputs.y, inputs.x, W, cols),
        scale=N / SM_ASSETS,
        rounds=1,
    )


# --------------------------------------------------------------------------------------------
# 3. single factor: factorcore vs pandas rolling cov / var
# --------------------------------------------------------------------------------------------


def pandas_single_beta(returns: pd.DataFrame, factor: pd.Series) -> pd.DataFrame:
    """Slope of the intercept model per window: cov(y, f) / var(f) (both with ddof=1)."""
    return returns.rolling(W).cov(factor).div(factor.rolling(W).var(), axis=0)


def test_single_factorcore(benchmark: Any, inputs: Inputs) -> None:
    x1 = inputs.x1
    measure(
        benchmark,
        SINGLE,
        "factorcore rolling_ols(stats=False), one factor",
        lambda: fc.rolling_ols(inputs.y, x1, window=W, stats=False),
        factorcore=True,
    )


def test_single_pandas(benchmark: Any, inputs: Inputs) -> None:
    returns, factor = pd.DataFrame(inputs.y), pd.Series(inputs.x[:, 0])
    want = fc.rolling_ols(inputs.y, inputs.x1, window=W, stats=False)["coef"][:, :, 1]
    assert_close(pandas_single_beta(returns, factor).to_numpy(), want)
    measure(
        benchmark,
        SINGLE,
        "pandas rolling cov / var",
        lambda: pandas_single_beta(returns, factor),
    )


# --------------------------------------------------------------------------------------------
# 4. the end-to-end Polars path: rolling_exposures vs polars-ols unpivoted to a long frame
# --------------------------------------------------------------------------------------------


def polars_ols_long(
    returns: pl.DataFrame, factors: pl.DataFrame, exprs: list[pl.Expr], assets: list[str]
) -> pl.DataFrame:
    """``date asset alpha <factors>`` for complete windows, sorted by date then asset."""
    names = [c for c in factors.columns if c != "date"]
    wide = returns.join(factors, on="date", how="inner").select("date", *exprs)
    return (
        wide.unpivot(index="date", variable_name="asset", value_name="coef")
        .unnest("coef")
        .filter(pl.col("const").is_not_null() & pl.col("const").is_not_nan())
        .select(
            "date",
            pl.col("asset").cast(pl.Enum(assets)),
            pl.col("const").alias("alpha"),
            *names,
        )
        .sort("date", "asset")
    )


def assert_same_long_frame(got: pl.DataFrame, want: pl.DataFrame, values: list[str]) -> None:
    assert got.height == want.height
    assert got.get_column("date").equals(want.get_column("date"))
    assert got.get_column("asset").cast(pl.String).equals(want.get_column("asset").cast(pl.String))
    assert_close(got.select(values).to_numpy(), want.select(values).to_numpy())


def test_frame_factorcore(benchmark: Any, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    returns, factors = frames
    measure(
        benchmark,
        FRAME,
        "factorcore rolling_exposures (wide in, long out)",
        lambda: fc.rolling_exposures(returns, factors, window=W),
        factorcore=True,
    )


def test_frame_polars_ols(benchmark: Any, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    import polars_ols  # noqa: F401  a missing peer fails, never skips

    returns, factors = frames
    assets = [c for c in returns.columns if c != "date"]
    exprs = bx.polars_ols_exprs(assets, bx.factor_names(K), W)
    want = fc.rolling_exposures(returns, factors, window=W)
    got = polars_ols_long(returns, factors, exprs, assets)
    assert_same_long_frame(got, want, ["alpha", *bx.factor_names(K)])
    measure(
        benchmark,
        FRAME,
        "polars-ols rolling_ols, unpivoted to long",
        lambda: polars_ols_long(returns, factors, exprs, assets),
        rounds=SLOW_ROUNDS,
    )


# --------------------------------------------------------------------------------------------
# 5. exponentially weighted windows: factorcore vs statsmodels RollingWLS on a sample
# --------------------------------------------------------------------------------------------


def statsmodels_wls(y: np.ndarray, x: np.ndarray, cols: list[int]) -> np.ndarray:
    """RollingWLS params (T, len(cols), K + 1) with per-window weights 0.5 ** (age / HALFLIFE).

    The row weights 2 ** (t / HALFLIFE) are those weights times 2 ** (t_end / HALFLIFE), one
    constant per window, which leaves each window's WLS solution unchanged.
    """
    import statsmodels.api as sm
    from statsmodels.regression.rolling import RollingWLS

    X = sm.add_constant(x, has_constant="add")
    weights = 2.0 ** (np.arange(x.shape[0]) / HALFLIFE)
    fits = [
        RollingWLS(y[:, j], X, window=W, weights=weights).fit(params_only=True).params for j in cols
    ]
    return np.stack([np.asarray(p) for p in fits], axis=1)


def test_halflife_factorcore(benchmark: Any, inputs: Inputs) -> None:
    measure(
        benchmark,
        HALFLIFE_GROUP,
        f"factorcore rolling_ols(halflife={HALFLIFE}, stats=False)",
        lambda: fc.rolling_ols(inputs.y, inputs.x, window=W, halflife=HALFLIFE, stats=False),
        factorcore=True,
    )


def test_halflife_statsmodels(benchmark: Any, inputs: Inputs) -> None:
    import statsmodels  # noqa: F401  a missing peer fails, never skips

    cols = sample_columns(WLS_ASSETS)
    y = np.ascontiguousarray(inputs.y[:, cols])
    want = fc.rolling_ols(y, inputs.x, window=W, halflife=HALFLIFE, stats=False)["coef"]
    assert_close(statsmodels_wls(inputs.y, inputs.x, cols), want)
    measure(
        benchmark,
        HALFLIFE_GROUP,
        f"statsmodels RollingWLS params_only ({WLS_ASSETS} assets)",
        lambda: statsmodels_wls(inputs.y, inputs.x, cols),
        scale=N / WLS_ASSETS,
    )
