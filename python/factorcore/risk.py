"""Correlation-aware diversification scores and risk contributions."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import polars as pl

from factorcore import _core
from factorcore._frames import (
    OUT_OF_RANGE,
    as_frame,
    check_dates,
    check_labels,
    check_numeric,
    count_arg,
    dates_of,
    first_duplicate,
    float_column,
    is_long,
    no_infinite,
    require_columns,
    sector_labels,
)
from factorcore.errors import ConvergenceWarning, DtypeError, InvalidInputError, NonFiniteError
from factorcore.exposures import _long_to_wide

__all__ = [
    "correlation_clusters",
    "diversification",
    "factor_bets",
    "risk_contributions",
    "sector_coherence",
]

Shrinkage = Literal["ledoit-wolf"]
Linkage = Literal["single", "complete", "average", "ward"]
_SHRINKAGE = ("ledoit-wolf",)
_SCORES = (
    "diversification_ratio",
    "effective_n",
    "enb_pca",
    "enb_mt",
    "absorption_ratio",
    "avg_correlation",
)


def diversification(
    returns: pl.DataFrame | pl.LazyFrame,
    weights: Mapping[str, float] | pl.DataFrame | pl.LazyFrame | None = None,
    *,
    window: int | None = None,
    step: int = 1,
    shrinkage: Shrinkage | None = None,
    date: str = "date",
    max_iter: int = 1000,
) -> pl.DataFrame:
    """How diversified a portfolio is, looking through its holdings to their correlations.

    Parameters
    ----------
    returns
        Wide: a `date` column plus one numeric column per asset. Long: columns `date`,
        `asset` and `return` (taken as long when `asset` holds labels: String,
        Categorical, Enum or integer; a null label is an error). null and NaN mean
        missing; inf is an error.
    weights
        ``None`` for equal weight over the assets of each window; a mapping
        ``{asset: weight}`` (assets left out weigh 0);
        or a long frame with columns `date`, `asset`, `weight` holding snapshots of the
        portfolio: each window uses the latest snapshot dated on or before its last
        date, as a whole. Negative weights (long/short) are allowed; every score is
        unchanged when all weights are scaled together.
    window, step
        ``window=None``: one row for the whole sample. Otherwise one row per window of
        `window` rows (at least 2), the first ending on row ``window - 1`` and then
        every `step` rows.
    shrinkage
        ``None`` for the sample covariance (ddof=1), or ``"ledoit-wolf"`` for the
        Ledoit-Wolf (2004) estimate as scikit-learn's ``LedoitWolf`` (on the held
        assets). Shrinkage changes
        the covariance of the portfolio scores (`diversification_ratio`, `enb_pca`,
        `enb_mt`); `absorption_ratio` and `avg_correlation` always describe the sample
        correlations.
    date
        Name of the date column (Date or Datetime, strictly increasing).
    max_iter
        Bound on the minimum-torsion iterations per window.

    Returns
    -------
    polars.DataFrame
        One row per window, dated by its last row. The portfolio scores
        (`diversification_ratio`, `enb_pca`, `enb_mt`) describe the holdings: the
        window's assets with non-zero weight. `n_assets`, `absorption_ratio` and
        `avg_correlation` describe all the window's assets. Columns:

        - ``n_assets`` (UInt32): assets with a return on every row of the window. Only
          these take part; an asset listing late or with a gap is left out of the
          windows its data does not cover.
        - ``excluded_weight``: share of the portfolio's gross weight ``sum |w|`` on
          assets left out of the window (dropped; the scores describe the rest). NaN
          when the window has no weights (before the first snapshot).
        - ``diversification_ratio``: ``sum |w_i| sigma_i / sigma_p`` (Choueifaty &
          Coignard 2008); 1 for a single asset, sqrt(N) for N uncorrelated equal-risk
          assets at equal weight.
        - ``effective_n``: ``(sum |w_i|)^2 / sum w_i^2``, the inverse Herfindahl index
          of the weights.
        - ``enb_pca``: Meucci's (2009) effective number of bets on the principal
          components of the covariance: ``exp(-sum p_k ln p_k)`` with ``p_k`` the
          portfolio variance share of component k. Components with equal eigenvalues
          are not unique; the null space of a shrunk covariance (fewer rows than assets)
          counts as one bet.
        - ``enb_mt``: effective number of minimum-torsion bets (Meucci, Santangelo &
          Deguest 2013): the same entropy over the uncorrelated factors closest to the
          assets, found by the exact iterative algorithm run to convergence. NaN when
          the correlation matrix is singular (smallest eigenvalue at most 1e-10 of the
          largest), which is always the case without shrinkage when the window has no
          more rows than assets; NaN with a :class:`~factorcore.ConvergenceWarning`
          when `max_iter` iterations do not converge.
        - ``absorption_ratio``: share of the variance of the sample correlation matrix
          in its top ``ceil(m/5)`` eigenvalues (Kritzman et al. 2010).
        - ``avg_correlation``: mean off-diagonal sample correlation.

        An asset with constant returns over a window (zero volatility) counts in
        `n_assets` and `effective_n` but carries no risk; it is left out of the
        correlation measures (`absorption_ratio`, `avg_correlation`, and `enb_mt` unless
        shrinkage gives it a variance). Scores that need the portfolio's variance are
        NaN when it is zero.

    Notes
    -----
    When a window is shorter than the universe the principal components come from the
    W x W Gram matrix of the window, so the cost per window is O(W^2 N + W^3) rather
    than O(N^3). The minimum-torsion bets always need the N x N correlation matrix and
    an eigendecomposition per iteration; each window starts from the previous one's
    solution.

    Examples
    --------
    >>> import datetime as dt, numpy as np, polars as pl, factorcore as fc
    >>> rng = np.random.default_rng(0)
    >>> days = pl.date_range(dt.date(2024, 1, 1), dt.date(2025, 12, 31), eager=True)
    >>> market = rng.normal(0, 0.01, days.len())
    >>> returns = pl.DataFrame(
    ...     {"date": days}
    ...     | {f"A{i}": market + rng.normal(0, 0.01, days.len()) for i in range(4)}
    ... )
    >>> out = fc.diversification(returns)
    >>> out.select("n_assets", "effective_n", (pl.col("enb_mt") < 4).alias("fewer_bets"))
    shape: (1, 3)
    ┌──────────┬─────────────┬────────────┐
    │ n_assets ┆ effective_n ┆ fewer_bets │
    │ ---      ┆ ---         ┆ ---        │
    │ u32      ┆ f64         ┆ bool       │
    ╞══════════╪═════════════╪════════════╡
    │ 4        ┆ 4.0         ┆ true       │
    └──────────┴─────────────┴────────────┘
    """
    returns, dates, assets = _wide_returns(returns, date)
    n_rows = dates.len()
    width, ends = _window_grid(window, step, n_rows)
    max_iter = count_arg(max_iter, "max_iter")
    shrinkage = _shrinkage(shrinkage)

    per_window = False
    values: np.ndarray | None
    if weights is None:
        values = None
    elif isinstance(weights, Mapping):
        values = _weight_vector(weights, assets)
    elif isinstance(weights, (pl.DataFrame, pl.LazyFrame)):
        values = _snapshot_weights(as_frame(weights, "weights"), assets, dates, ends, date)
        per_window = True
    else:
        raise DtypeError(
            "weights must be None, a mapping {asset: weight} or a polars DataFrame with "
            f"columns date, asset, weight; got {type(weights).__name__}"
        )

    out = _call(
        _core.diversification,
        [float_column(returns.get_column(a)) for a in assets],
        n_rows,
        ends,
        values,
        assets=assets,
        dates=dates,
        per_window=per_window,
        width=width,
        shrinkage=shrinkage,
        max_iter=max_iter,
    )
    end_dates = dates.gather(out["end_row"].astype(np.int64))
    _warn_not_converged(out, end_dates, max_iter)
    return pl.DataFrame(
        {
            date: end_dates,
            "n_assets": pl.Series(out["n_assets"], dtype=pl.UInt32),
            "excluded_weight": out["excluded_weight"],
            **{name: out[name] for name in _SCORES},
        }
    )


def risk_contributions(
    returns: pl.DataFrame | pl.LazyFrame,
    weights: Mapping[str, float] | None = None,
    *,
    shrinkage: Shrinkage | None = None,
    date: str = "date",
) -> pl.DataFrame:
    """Euler decomposition of the portfolio's volatility into per-asset contributions.

    Parameters
    ----------
    returns
        Wide (a `date` column plus one column per asset) or long (`date`, `asset`,
        `return`) returns, as for :func:`diversification`.
    weights
        ``None`` for equal weights ``1/N`` over all assets, or a mapping
        ``{asset: weight}``, used as given (not normalised; shorts allowed).
    shrinkage
        ``None`` (sample covariance, ddof=1) or ``"ledoit-wolf"`` (estimated on the held
        assets).
    date
        Name of the date column.

    Returns
    -------
    polars.DataFrame
        One row per held asset (non-zero weight), in column order: ``asset``,
        ``weight``, ``volatility`` (sigma_i), ``marginal`` (``(S w)_i / sigma_p``),
        ``component`` (``w_i * marginal``; these sum to sigma_p) and ``percent``
        (``component / sigma_p``; these sum to 1). Volatilities are per period of the
        returns (not annualised).

    Notes
    -----
    The covariance is estimated on the dates where every held asset has a return;
    other dates are dropped. At least 2 such dates are needed, and the portfolio must
    have non-zero volatility.

    Examples
    --------
    >>> import datetime as dt, numpy as np, polars as pl, factorcore as fc
    >>> rng = np.random.default_rng(0)
    >>> days = pl.date_range(dt.date(2025, 1, 1), dt.date(2025, 12, 31), eager=True)
    >>> returns = pl.DataFrame({
    ...     "date": days,
    ...     "calm": rng.normal(0, 0.005, days.len()),
    ...     "wild": rng.normal(0, 0.03, days.len()),
    ... })
    >>> out = fc.risk_contributions(returns, {"calm": 0.5, "wild": 0.5})
    >>> round(out["percent"].sum(), 12), out["asset"][out["percent"].arg_max()]
    (1.0, 'wild')
    """
    returns, dates, assets = _wide_returns(returns, date)
    shrinkage = _shrinkage(shrinkage)
    if weights is None:
        vector = np.full(len(assets), 1.0 / len(assets))
    elif isinstance(weights, Mapping):
        vector = _weight_vector(weights, assets)
    else:
        raise DtypeError(
            f"weights must be None or a mapping {{asset: weight}}, got {type(weights).__name__}"
        )
    held = [a for a, w in zip(assets, vector, strict=True) if w != 0.0]
    held_weights = np.ascontiguousarray(vector[vector != 0.0])
    columns = [float_column(returns.get_column(a)) for a in held]
    complete = np.ones(dates.len(), dtype=bool)
    for column in columns:
        complete &= ~np.isnan(column)
    if not complete.all():
        columns = [column[complete] for column in columns]
        dates = dates.filter(complete)
    out = _call(
        _core.risk_contributions,
        columns,
        dates.len(),
        held_weights,
        assets=held,
        dates=dates,
        shrinkage=shrinkage,
    )
    return pl.DataFrame(
        {
            "asset": held,
            "weight": held_weights,
            **{name: out[name] for name in ("volatility", "marginal", "component", "percent")},
        }
    )


def factor_bets(
    exposures: pl.DataFrame | pl.LazyFrame,
    factor_returns: pl.DataFrame | pl.LazyFrame,
    weights: Mapping[str, float] | pl.DataFrame | pl.LazyFrame | None = None,
    *,
    window: int,
    date: str = "date",
    asset: str = "asset",
    max_iter: int = 1000,
) -> pl.DataFrame:
    """How many independent factor bets a portfolio holds, date by date.

    A portfolio is only as diversified as its factor bets: fifty stocks that all load
    on the same growth factor are one bet. This scores the portfolio's factor
    exposures ``b = B'w`` with the factor covariance, as :func:`diversification` scores
    holdings with the asset covariance.

    Parameters
    ----------
    exposures
        Long frame as returned by :func:`rolling_exposures`: `date`, `asset` and one
        column per factor (named as in `factor_returns`); other columns are ignored.
    factor_returns
        Wide frame: `date` plus one column per factor (the frame the exposures were
        estimated on).
    weights
        ``None`` (equal weight 1/n over the assets with exposures on the date), a mapping
        ``{asset: weight}``, or snapshots (`date`, `asset`, `weight`; the latest on or
        before each date). Used as given, not normalised.
    window
        Rows of factor returns, ending on the date, for the factor covariance (sample,
        ddof=1); use the exposures' window. Dates without a full window are dropped.
    date, asset
        Column names.
    max_iter
        Bound on the minimum-torsion iterations per date.

    Returns
    -------
    polars.DataFrame
        One row per date of `exposures` with a full window: `date`; ``b_<factor>``, the
        portfolio's exposure to each factor (``sum_i w_i beta_ik`` over assets with
        all their exposures on that date); `factor_vol` (``sqrt(b' S_f b)``);
        `diversification_ratio`, `enb_pca` and `enb_mt` as in :func:`diversification`
        with the factors as assets and ``b`` as weights; `excluded_weight`, the share of
        the portfolio's gross weight on assets without exposures that date (no row, or
        a missing beta). Factors with a missing
        return in a window are left out of that date's scores.

    Raises
    ------
    InvalidInputError
        Missing columns, a null asset label, (date, asset) given twice, an exposure
        date that `factor_returns` does not have. An infinite exposure or factor
        return raises :class:`~factorcore.NonFiniteError` naming the column and date.
    """
    exposures = as_frame(exposures, "exposures")
    factor_returns = as_frame(factor_returns, "factor_returns")
    factor_dates = dates_of(factor_returns, date, "factor_returns")
    factors = [c for c in factor_returns.columns if c != date]
    if not factors:
        raise InvalidInputError("factor_returns has no factor columns")
    check_numeric(factor_returns, factors, "factor_returns")
    require_columns(exposures, [date, asset, *factors], "exposures")
    check_dates(exposures.get_column(date), "exposures")
    check_labels(exposures, asset, "exposures", date)
    check_numeric(exposures, factors, "exposures")
    no_infinite(exposures, factors, "exposures", date, asset)
    if exposures.get_column(date).dtype != factor_dates.dtype:
        raise DtypeError(
            f"exposures dates are {exposures.get_column(date).dtype} but factor_returns "
            f"dates are {factor_dates.dtype}"
        )
    width = count_arg(window, "window")
    max_iter = count_arg(max_iter, "max_iter")
    if exposures.height == 0:
        raise InvalidInputError("exposures has no rows")

    frame = exposures.select(
        date,
        pl.col(asset).cast(pl.String).alias("asset"),
        *[pl.col(f).cast(pl.Float64) for f in factors],
    )
    row = first_duplicate(frame, [date, "asset"])
    if row is not None:
        raise InvalidInputError(f"exposures has duplicate rows for date {row[0]}, asset {row[1]!r}")
    complete = pl.all_horizontal(
        [pl.col(f).is_not_null() & pl.col(f).is_not_nan() for f in factors]
    )
    weight, gross = _weight_column(frame, weights, date, complete)
    frame = frame.with_columns(weight).with_columns(gross.alias("_gross"))
    per_date = (
        frame.group_by(date, maintain_order=True)
        .agg(
            *[(pl.col("weight") * pl.col(f)).filter(complete).sum().alias(f) for f in factors],
            pl.col("_gross").first(),
            pl.col("weight").abs().filter(complete).sum().alias("_kept"),
            pl.col("weight").is_nan().any().alias("_no_weights"),
        )
        .sort(date)
    )
    rows = per_date.join(factor_dates.to_frame().with_row_index("_row"), on=date, how="left")
    if rows.get_column("_row").null_count():
        missing = rows.filter(pl.col("_row").is_null()).get_column(date)[0]
        raise InvalidInputError(f"exposures date {missing} is not a date of factor_returns")
    rows = rows.filter(pl.col("_row") >= width - 1)
    if rows.height == 0:
        raise InvalidInputError(
            f"no exposures date has a full window of {width} factor-return rows"
        )
    b = rows.select(factors).to_numpy().astype(np.float64)
    b[rows.get_column("_no_weights").to_numpy()] = np.nan
    out = _call(
        _core.diversification,
        [float_column(factor_returns.get_column(f)) for f in factors],
        factor_dates.len(),
        rows.get_column("_row").cast(pl.UInt64).to_numpy(),
        np.ascontiguousarray(b),
        assets=factors,
        dates=factor_dates,
        what="factor_returns",
        per_window=True,
        width=width,
        shrinkage=None,
        max_iter=max_iter,
    )
    _warn_not_converged(out, rows.get_column(date), max_iter)
    gross = rows.get_column("_gross").to_numpy()
    kept = rows.get_column("_kept").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        excluded = np.where(gross > 0, (gross - kept) / gross, np.nan)
    # When nothing is excluded, gross and kept sum the same weights in different orders
    # (Polars may split a group's sum across threads): a difference at their rounding
    # level is no excluded weight.
    excluded[np.abs(excluded) <= 64 * np.finfo(np.float64).eps] = 0.0
    if weights is None:
        excluded = np.zeros(rows.height)
    return pl.DataFrame(
        {
            date: rows.get_column(date),
            **{f"b_{f}": b[:, k] for k, f in enumerate(factors)},
            "factor_vol": out["volatility"],
            "diversification_ratio": out["diversification_ratio"],
            "enb_pca": out["enb_pca"],
            "enb_mt": out["enb_mt"],
            "excluded_weight": np.clip(excluded, 0.0, None),
        }
    )


def correlation_clusters(
    returns: pl.DataFrame | pl.LazyFrame,
    n_clusters: int,
    *,
    linkage: Linkage = "average",
    date: str = "date",
) -> pl.DataFrame:
    """Hierarchical clusters of assets by how they move together.

    Assets are clustered on the correlation distance ``sqrt((1 - rho) / 2)`` of their
    whole-sample returns with SciPy's linkage rules and cut into `n_clusters` flat
    clusters (as ``fcluster(..., criterion="maxclust")``). Assets with a missing return
    or constant returns are left out.

    Returns
    -------
    polars.DataFrame
        Columns `asset` (in column order) and `cluster` (UInt32, numbered 1, 2, ... by
        first appearance).
    """
    returns, dates, assets = _wide_returns(returns, date)
    k = count_arg(n_clusters, "n_clusters")
    out = _call(
        _core.correlation_clusters,
        [float_column(returns.get_column(a)) for a in assets],
        dates.len(),
        k,
        assets=assets,
        dates=dates,
        linkage=_linkage(linkage),
    )
    return pl.DataFrame(
        {
            "asset": [assets[i] for i in out["assets"]],
            "cluster": pl.Series(out["clusters"] + 1, dtype=pl.UInt32),
        }
    )


def sector_coherence(
    returns: pl.DataFrame | pl.LazyFrame,
    sectors: pl.DataFrame | pl.LazyFrame,
    *,
    n_clusters: int | None = None,
    linkage: Linkage = "average",
    window: int | None = None,
    step: int = 1,
    date: str = "date",
    asset: str = "asset",
    sector: str = "sector",
) -> pl.DataFrame:
    """Does the sector map still describe how the assets move?

    Per window and sector: how correlated the sector's assets are with each other and
    with the rest of the universe, and how well correlation clusters of the assets
    agree with the sector labels.

    Parameters
    ----------
    returns
        Wide or long returns, as for :func:`diversification`.
    sectors
        One row per asset: columns `asset` and `sector` (String, Categorical or Enum).
        Every asset of `returns` needs a sector; extra rows are ignored.
    n_clusters
        Clusters to cut the correlation tree into; ``None`` for as many as the window
        has sectors.
    linkage
        ``"single"``, ``"complete"``, ``"average"`` or ``"ward"`` (SciPy's rules) on the
        distance ``sqrt((1 - rho) / 2)``.
    window, step
        As in :func:`diversification`.

    Returns
    -------
    polars.DataFrame
        Rows per window (dated by its last row) and sector with included assets (a
        return on every row of the window, not constant), sorted by date then sector:
        `n_assets`, `intra_correlation` (mean correlation over pairs within the sector),
        `inter_correlation` (mean correlation between the sector's assets and the
        others), and `adjusted_rand_index` between sector labels and correlation
        clusters (the window's value, on each of its rows; 1 = the clusters are the
        sectors, about 0 = unrelated).
    """
    returns, dates, assets = _wide_returns(returns, date)
    n_rows = dates.len()
    width, ends = _window_grid(window, step, n_rows)
    if n_clusters is not None:
        n_clusters = count_arg(n_clusters, "n_clusters")
    sector_of = dict(sector_labels(sectors, asset, sector).iter_rows())
    unlabelled = [a for a in assets if a not in sector_of]
    if unlabelled:
        raise InvalidInputError(
            f"sectors has no row for asset(s) {', '.join(map(repr, unlabelled[:10]))}"
        )
    names = sorted({sector_of[a] for a in assets})
    code = {name: i for i, name in enumerate(names)}
    out = _call(
        _core.sector_coherence,
        [float_column(returns.get_column(a)) for a in assets],
        n_rows,
        ends,
        np.array([code[sector_of[a]] for a in assets], dtype=np.uint32),
        assets=assets,
        dates=dates,
        width=width,
        n_clusters=n_clusters,
        linkage=_linkage(linkage),
    )
    return pl.DataFrame(
        {
            date: dates.gather(ends[out["window"].astype(np.int64)].astype(np.int64)),
            "sector": [names[c] for c in out["sector"]],
            "n_assets": pl.Series(out["n_assets"], dtype=pl.UInt32),
            "intra_correlation": out["intra_correlation"],
            "inter_correlation": out["inter_correlation"],
            "adjusted_rand_index": out["adjusted_rand_index"],
        }
    )


def _linkage(linkage: Any) -> str:
    if linkage not in ("single", "complete", "average", "ward"):
        raise InvalidInputError(
            f"unknown linkage {linkage!r}; expected 'single', 'complete', 'average' or 'ward'"
        )
    return linkage


def _warn_not_converged(out: dict[str, Any], end_dates: pl.Series, max_iter: int) -> None:
    if out["not_converged"].any():
        first = end_dates[int(np.argmax(out["not_converged"]))]
        warnings.warn(
            f"minimum-torsion iteration did not converge in {max_iter} iterations in "
            f"{int(out['not_converged'].sum())} window(s), first ending {first}; "
            "enb_mt is NaN there (raise max_iter or use shrinkage)",
            ConvergenceWarning,
            stacklevel=3,
        )


def _weight_column(
    frame: pl.DataFrame, weights: Any, date: str, complete: pl.Expr
) -> tuple[pl.Expr, pl.Expr]:
    """The weight of each (date, asset) row of `frame` (NaN on dates before any
    snapshot), and the portfolio's gross weight on the row's date, counting held assets
    that have no row that date (null for equal weights, where nothing is excluded)."""
    if weights is None:
        # Nothing is excluded: the kept weight is the gross weight.
        weight = (1.0 / complete.cast(pl.Float64).sum().over(date)).alias("weight")
        return weight, pl.lit(None, dtype=pl.Float64)
    if isinstance(weights, Mapping):
        names = frame.get_column("asset").unique().to_list()
        vector = _weight_vector(weights, names)
        lookup = dict(zip(names, vector, strict=True))
        weight = (
            pl.col("asset")
            .replace_strict(lookup, default=0.0, return_dtype=pl.Float64)
            .alias("weight")
        )
        return weight, pl.lit(float(np.abs(vector).sum()))
    if isinstance(weights, (pl.DataFrame, pl.LazyFrame)):
        names = frame.get_column("asset").unique().sort().to_list()
        dates = frame.get_column(date).unique().sort()
        ends = np.arange(dates.len())
        matrix = _snapshot_weights(as_frame(weights, "weights"), names, dates, ends, date)
        column = {name: i for i, name in enumerate(names)}
        rows = dates.search_sorted(frame.get_column(date)).to_numpy()
        cols = frame.get_column("asset").replace_strict(column, return_dtype=pl.Int64).to_numpy()
        gross = np.abs(matrix).sum(axis=1)
        return (
            pl.lit(pl.Series("weight", matrix[rows, cols])),
            pl.lit(pl.Series("_gross", gross[rows])),
        )
    raise DtypeError(
        "weights must be None, a mapping {asset: weight} or a polars DataFrame with "
        f"columns date, asset, weight; got {type(weights).__name__}"
    )


def _wide_returns(returns: Any, date: str) -> tuple[pl.DataFrame, pl.Series, list[str]]:
    """A wide frame, its dates (checked) and asset column names."""
    frame = as_frame(returns, "returns")
    if is_long(frame, date, "asset", "return"):
        frame = _long_to_wide(frame, date, "asset", "return")
    dates = dates_of(frame, date, "returns")
    assets = [c for c in frame.columns if c != date]
    if not assets:
        raise InvalidInputError("returns has no asset columns")
    if frame.height == 0:
        raise InvalidInputError("returns has no rows")
    check_numeric(frame, assets, "returns")
    return frame, dates, assets


def _window_grid(window: Any, step: Any, n_rows: int) -> tuple[int, np.ndarray]:
    """Rows per window and the last row of each window: one window over all rows when
    `window` is None, else one every `step` rows once `window` rows are available."""
    width = n_rows if window is None else count_arg(window, "window")
    step = count_arg(step, "step")
    if width < 2:
        raise InvalidInputError(f"window must be at least 2 rows, got {width}")
    if width > n_rows:
        raise InvalidInputError(
            f"window of {width} rows is longer than the {n_rows} rows of returns"
        )
    return width, np.arange(width - 1, n_rows, step, dtype=np.uint64)


def _shrinkage(shrinkage: Any) -> str | None:
    if shrinkage is None:
        return None
    if shrinkage not in _SHRINKAGE:
        raise InvalidInputError(
            f"unknown shrinkage {shrinkage!r}; expected None or one of {list(_SHRINKAGE)}"
        )
    return shrinkage


def _weight_vector(weights: Mapping[str, Any], assets: list[str]) -> np.ndarray:
    """One float weight per asset column from a mapping; unknown assets are an error."""
    position = {a: i for i, a in enumerate(assets)}
    unknown = [k for k in weights if k not in position]
    if unknown:
        raise InvalidInputError(
            f"weights name asset(s) not in returns: {', '.join(map(repr, unknown[:10]))}"
        )
    vector = np.zeros(len(assets))
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise DtypeError(f"weight of {name!r} must be a number, got {value!r}")
        if not np.isfinite(value):
            raise InvalidInputError(f"weight of {name!r} is {value}; weights must be finite")
        vector[position[name]] = float(value)
    if not vector.any():
        raise InvalidInputError("weights are all zero")
    return vector


def _snapshot_weights(
    frame: pl.DataFrame, assets: list[str], dates: pl.Series, ends: np.ndarray, date: str
) -> np.ndarray:
    """(windows x assets) weights: each window's latest snapshot on or before its end."""
    require_columns(frame, [date, "asset", "weight"], "weights")
    check_dates(frame.get_column(date), "weights")
    check_numeric(frame, ["weight"], "weights")
    if frame.get_column(date).dtype != dates.dtype:
        raise DtypeError(
            f"weights dates are {frame.get_column(date).dtype} but returns dates are {dates.dtype}"
        )
    if frame.height == 0:
        raise InvalidInputError("weights has no rows")
    check_labels(frame, "asset", "weights", date)
    frame = frame.with_columns(pl.col("asset").cast(pl.String))
    unknown = frame.filter(~pl.col("asset").is_in(assets)).get_column("asset").unique()
    if unknown.len():
        raise InvalidInputError(
            f"weights name asset(s) not in returns: {', '.join(map(repr, unknown.sort()[:10]))}"
        )
    weight = frame.get_column("weight").cast(pl.Float64)
    bad = weight.is_null() | weight.is_nan() | weight.is_infinite()
    if bad.any():
        row = frame.filter(bad).row(0, named=True)
        raise InvalidInputError(
            f"weights has a missing or infinite weight on {row[date]} for asset "
            f"{row['asset']!r}; weights must be finite"
        )
    row = first_duplicate(frame, [date, "asset"])
    if row is not None:
        raise InvalidInputError(f"weights has duplicate rows for date {row[0]}, asset {row[1]!r}")
    wide = frame.pivot(on="asset", index=date, values="weight").sort(date)
    snapshot_dates = wide.get_column(date).to_physical().to_numpy()
    matrix = np.zeros((wide.height + 1, len(assets)))
    matrix[0] = np.nan  # before the first snapshot
    position = {a: i for i, a in enumerate(assets)}
    for name in wide.columns[1:]:
        matrix[1:, position[name]] = wide.get_column(name).fill_null(0.0).to_numpy()
    end_dates = dates.to_physical().to_numpy()[ends]
    pick = np.searchsorted(snapshot_dates, end_dates, side="right")
    return np.ascontiguousarray(matrix[pick])


def _call(
    function: Any,
    *args: Any,
    assets: list[str],
    dates: pl.Series,
    what: str = "returns",
    **kwargs: Any,
) -> Any:
    """Calls the core, naming the column (of `what`) and date of an infinite value or of
    one out of range."""
    try:
        return function(*args, **kwargs)
    except InvalidInputError as exc:
        if getattr(exc, "input", None) is None:
            raise
        where = f"{what} column {assets[exc.column]!r}"
        when = f"on {dates[exc.row]} (row {exc.row})"
        err: InvalidInputError
        if isinstance(exc, NonFiniteError):
            err = NonFiniteError(
                f"{where} has an infinite value {when}; use null or NaN for missing values"
            )
        else:
            err = InvalidInputError(f"{where} {OUT_OF_RANGE} {when}; rescale the data")
        err.input, err.row, err.column = exc.input, exc.row, exc.column
        raise err from None
