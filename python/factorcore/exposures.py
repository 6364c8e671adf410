"""Rolling factor exposures: time-series regressions of asset returns on factor returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from factorcore import _core
from factorcore._frames import (
    as_frame,
    bool_arg,
    check_labels,
    check_numeric,
    count_arg,
    dates_of,
    first_duplicate,
    float_array,
    float_column,
    halflife_arg,
    is_long,
    window_arg,
)
from factorcore.errors import DtypeError, InvalidInputError, NonFiniteError

__all__ = ["rolling_exposures", "rolling_ols"]


def rolling_ols(
    y: Any,
    x: Any,
    *,
    window: int | None,
    min_periods: int | None = None,
    halflife: float | None = None,
    intercept: bool = True,
    tstats: bool = False,
    stats: bool = True,
) -> dict[str, np.ndarray]:
    """Rolling (or expanding) least squares of every column of `y` on the columns of `x`.

    Parameters
    ----------
    y
        Returns, shape (T,) or (T, N). NaN marks a missing return: that row is dropped
        from that asset's windows only. The masked entries of a NumPy masked array
        count as missing too.
    x
        Regressors (factor returns), shape (T, K) or (T,). A NaN (or masked entry) in
        any factor drops the row for every asset; the row still counts towards the
        window length.
    window
        Rows per window (the window ending at row t covers rows t-window+1..t), or
        ``None`` for an expanding window (rows 0..t).
    min_periods
        Fewest valid rows a window needs; fewer gives NaN. Defaults to `window`
        (rolling) or to P + 1 (expanding), where P = K + intercept is the number of
        regressors. Must lie between P and the window length. With
        ``min_periods < window`` the first rows use the shorter windows available.
    halflife
        Exponentially decaying weights inside each window: the newest row has weight 1,
        a row l rows older 0.5 ** (l / halflife). Weighted least squares.
    intercept
        Prepend a constant regressor (the alpha).
    tstats
        Also return classical OLS t-statistics.
    stats
        Also return ``r2`` and ``resid_vol``; ``False`` computes coefficients only.
        `intercept`, `tstats` and `stats` must be bools (a
        :class:`~factorcore.DtypeError` otherwise: ``intercept="no"`` is not false).

    Returns
    -------
    dict
        ``coef`` (T, N, P), intercept first; ``r2`` (T, N): centred R² with an
        intercept, uncentred without (NaN when y is constant in the window);
        ``resid_vol`` (T, N): sqrt(SSR / (n - P)); ``n_obs`` (T, N) uint32: valid rows
        in the window; ``tstat`` (T, N, P) when asked. With a 1-D `y` the N axis is
        dropped. Coefficients and statistics are NaN where a window has fewer than
        `min_periods` valid rows or its regressors are collinear (a regressor whose
        residual variance given the others is below 1e-10 of its own). ``coef`` and
        ``tstat`` are views of (P, T, N) arrays, so ``coef[..., k]`` is contiguous.

    Notes
    -----
    Outliers (bad ticks) do not spread: a window that does not contain a huge value is
    as exact (about 1e-12 relative) as if the value had never been in the series, and a
    window that contains it is solved to rounding of the equilibrated problem. The data
    are centred on medians before summing, and a window's sums are summed again from its
    rows when a large value has just left it. A residual sum of squares at the rounding
    level of the fit counts as a perfect fit (``resid_vol`` 0, t-statistics NaN); R² is
    kept in [0, 1]. Nonzero values outside 1e-150 to 1e150 in size (whose squares would
    overflow, or underflow, the window sums) raise :class:`~factorcore.InvalidInputError`.

    Besides its outputs a call needs memory for a few P x P matrices per thread and
    for the inverses of up to 128 MiB worth of windows at a time, however many dates
    there are: 2000 factors over 2100 dates run in under 1 GiB. Past 32 regressors
    each window is factorised by blocked routines (2001 regressors: about 0.3 s per
    window); Ctrl-C stops such a call within a few tenths of a second.

    Examples
    --------
    >>> import numpy as np, factorcore as fc
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0, 0.01, (500, 2))
    >>> y = x @ np.array([[1.2, 0.5], [0.3, -0.4]]) + rng.normal(0, 0.005, (500, 2))
    >>> out = fc.rolling_ols(y, x, window=250)
    >>> out["coef"].shape
    (500, 2, 3)
    >>> bool(np.isnan(out["coef"][248]).all()), bool(np.isfinite(out["coef"][249]).all())
    (True, True)
    """
    intercept = bool_arg(intercept, "intercept")
    tstats = bool_arg(tstats, "tstats")
    stats = bool_arg(stats, "stats")
    y_array = float_array(y, "y")
    x_array = float_array(x, "x")
    if y_array.ndim not in (1, 2):
        raise InvalidInputError(f"y must be 1-D (T,) or 2-D (T, N), got shape {y_array.shape}")
    if x_array.ndim not in (1, 2):
        raise InvalidInputError(f"x must be 1-D (T,) or 2-D (T, K), got shape {x_array.shape}")
    single = y_array.ndim == 1
    y2 = y_array[:, None] if single else y_array
    x2 = x_array[:, None] if x_array.ndim == 1 else x_array
    if y2.shape[0] != x2.shape[0]:
        raise InvalidInputError(f"y has {y2.shape[0]} rows but x has {x2.shape[0]}")
    if y2.shape[0] == 0 or y2.shape[1] == 0:
        raise InvalidInputError(f"y is empty (shape {y_array.shape})")
    if x2.shape[1] == 0:
        raise InvalidInputError(f"x has no factor columns (shape {x_array.shape})")
    out = _core.rolling_ols(
        y2,
        x2,
        window=window_arg(window),
        min_periods=None if min_periods is None else count_arg(min_periods, "min_periods"),
        halflife=halflife_arg(halflife),
        intercept=intercept,
        stats=stats,
        tstats=tstats,
    )
    result: dict[str, np.ndarray] = {}
    for key, value in out.items():
        if key in ("coef", "tstat"):
            value = np.moveaxis(value, 0, -1)  # (P, T, N) -> (T, N, P), a view
        result[key] = value[:, 0] if single else value
    return result


def rolling_exposures(
    returns: pl.DataFrame | pl.LazyFrame,
    factors: pl.DataFrame | pl.LazyFrame,
    *,
    window: int | None,
    min_periods: int | None = None,
    halflife: float | None = None,
    intercept: bool = True,
    tstats: bool = False,
    date: str = "date",
    asset: str = "asset",
    value: str = "return",
) -> pl.DataFrame:
    """Rolling factor exposures of every asset, as a long Polars frame.

    Parameters
    ----------
    returns
        Wide: a `date` column plus one numeric column per asset. Long: columns `date`,
        `asset` and `value`, one row per (date, asset), in any row order. null and NaN
        both mean missing; a null asset label is an error. The frame is taken as long
        when it has the three long columns and its `asset` column holds labels
        (String, Categorical, Enum or integer), so a wide frame may have float asset
        columns named `asset` and `return`.
    factors
        Wide: a `date` column plus one numeric column per factor.
    window, min_periods, halflife, intercept, tstats
        As in :func:`rolling_ols`; windows count rows of the aligned data.
    date, asset, value
        Column names of the inputs.

    Dates must be Date or Datetime of the same dtype in both frames, unique and (for
    wide frames) strictly increasing. The frames are aligned on the dates they share.

    Returns
    -------
    polars.DataFrame
        One row per (date, asset) whose window has at least `min_periods` valid rows,
        sorted by date then asset (in input order). Columns: `date`; `asset` (an Enum of
        the asset names in input order); `alpha` (with an intercept); one beta column per
        factor, named as the factor; `r2`; `resid_vol`; `n_obs` (UInt32); with
        ``tstats=True`` also `t_alpha` and `t_<factor>`. Values are NaN where the
        factors are collinear in the window.

    Examples
    --------
    >>> import datetime as dt, numpy as np, polars as pl, factorcore as fc
    >>> rng = np.random.default_rng(1)
    >>> days = pl.date_range(dt.date(2025, 1, 1), dt.date(2025, 12, 31), eager=True)
    >>> mkt = rng.normal(0, 0.01, days.len())
    >>> factors = pl.DataFrame({"date": days, "mkt": mkt})
    >>> returns = pl.DataFrame({"date": days, "AAA": 1.3 * mkt, "BBB": 0.7 * mkt})
    >>> out = fc.rolling_exposures(returns, factors, window=63)
    >>> out.columns
    ['date', 'asset', 'alpha', 'mkt', 'r2', 'resid_vol', 'n_obs']
    >>> out.filter(pl.col("asset") == "AAA")["mkt"].round(6).unique().to_list()
    [1.3]
    """
    returns = as_frame(returns, "returns")
    factors = as_frame(factors, "factors")
    intercept = bool_arg(intercept, "intercept")
    tstats = bool_arg(tstats, "tstats")
    if is_long(returns, date, asset, value):
        returns = _long_to_wide(returns, date, asset, value)
    return_dates = dates_of(returns, date, "returns")
    factor_dates = dates_of(factors, date, "factors")
    if return_dates.dtype != factor_dates.dtype:
        raise DtypeError(
            f"returns dates are {return_dates.dtype} but factors dates are {factor_dates.dtype}"
        )
    assets = [c for c in returns.columns if c != date]
    factor_names = [c for c in factors.columns if c != date]
    if not assets:
        raise InvalidInputError("returns has no asset columns")
    if not factor_names:
        raise InvalidInputError("factors has no factor columns")
    check_numeric(returns, assets, "returns")
    check_numeric(factors, factor_names, "factors")
    columns = _output_columns(factor_names, intercept, tstats)

    if not return_dates.equals(factor_dates):
        returns, factors = _align(returns, factors, date)
    dates = returns.get_column(date)
    if dates.len() == 0:
        raise InvalidInputError("returns and factors have no rows")
    x = np.column_stack([float_column(factors.get_column(f)) for f in factor_names])
    window = window_arg(window)
    if min_periods is None:
        n_regressors = len(factor_names) + bool(intercept)
        min_periods = window if window is not None else n_regressors + 1
    try:
        out = _core.rolling_ols_columns(
            [float_column(returns.get_column(a)) for a in assets],
            x,
            window=window,
            min_periods=count_arg(min_periods, "min_periods"),
            halflife=halflife_arg(halflife),
            intercept=intercept,
            stats=True,
            tstats=tstats,
        )
    except InvalidInputError as exc:
        # NonFiniteError or a value too large: the core names positions, this names them.
        if not hasattr(exc, "column"):
            raise
        names = assets if exc.input == "returns" else factor_names
        where = f"{exc.input} column {names[exc.column]!r}"
        on = f"{dates[exc.row]} (row {exc.row})"
        if isinstance(exc, NonFiniteError):
            err: InvalidInputError = NonFiniteError(
                f"{where} has an infinite value on {on}; use null or NaN for missing values"
            )
        else:
            err = InvalidInputError(
                f"{where} has a value too large or too small to compute with on {on}: "
                "nonzero values must lie between 1e-150 and 1e150 in size; rescale the data"
            )
        err.input, err.row, err.column = exc.input, exc.row, exc.column
        raise err from None
    return _long_frame(out, dates, assets, columns, n_min=min_periods)


def _output_columns(factors: list[str], intercept: bool, tstats: bool) -> list[str]:
    coefficients = (["alpha"] if intercept else []) + factors
    names = ["date", "asset", *coefficients, "r2", "resid_vol", "n_obs"]
    if tstats:
        names += [f"t_{c}" for c in coefficients]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidInputError(
                f"factor name {name!r} clashes with an output column; rename the factor"
            )
        seen.add(name)
    return names


def _long_to_wide(frame: pl.DataFrame, date: str, asset: str, value: str) -> pl.DataFrame:
    check_labels(frame, asset, "returns", date)
    row = first_duplicate(frame, [date, asset])
    if row is not None:
        raise InvalidInputError(f"returns has duplicate rows for date {row[0]}, asset {row[1]!r}")
    dates_of(frame, date, "returns", sorted_required=False)
    check_numeric(frame, [value], "returns")
    if frame.schema[asset] not in (pl.String, pl.Categorical) and not isinstance(
        frame.schema[asset], pl.Enum
    ):
        frame = frame.with_columns(pl.col(asset).cast(pl.String))
    wide = frame.pivot(on=asset, index=date, values=value, maintain_order=True)
    return wide.sort(date)


def _align(
    returns: pl.DataFrame, factors: pl.DataFrame, date: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows of both frames on the dates they share (an inner join on dates only)."""
    pairs = (
        returns.select(date)
        .with_row_index("_r")
        .join(factors.select(date).with_row_index("_f"), on=date, how="inner")
    )
    if pairs.height == 0:
        raise InvalidInputError(
            "returns and factors have no dates in common "
            f"(returns: {returns[date].min()} to {returns[date].max()}, "
            f"factors: {factors[date].min()} to {factors[date].max()})"
        )
    return returns[pairs["_r"]], factors[pairs["_f"]]


def _long_frame(
    out: dict[str, np.ndarray],
    dates: pl.Series,
    assets: list[str],
    columns: list[str],
    n_min: int,
) -> pl.DataFrame:
    """One row per (date, asset) with at least `n_min` observations, from (.., T, N) planes."""
    n_obs = out["n_obs"]
    t_len, n = n_obs.shape
    enough = n_obs >= n_min
    rows_full = enough.all(axis=1)
    asset_enum = pl.Series("asset", assets, dtype=pl.Enum(assets))
    # Usually every window from some date on is complete: slice the planes and repeat
    # the dates and assets (much cheaper than gathering them by index).
    first = int(np.argmax(rows_full)) if rows_full.any() else t_len
    if first < t_len and rows_full[first:].all() and not enough[:first].any():
        keep: slice | np.ndarray = slice(first * n, t_len * n)
        physical = np.repeat(dates.to_physical().to_numpy()[first:], n)
        date_column = pl.Series("date", physical).cast(dates.dtype)
        asset_column = pl.concat([asset_enum] * (t_len - first), rechunk=True)
    else:
        keep = np.flatnonzero(enough.ravel())
        date_column = dates.gather(keep // n).alias("date")
        asset_column = asset_enum.gather(keep % n)

    def plane(values: np.ndarray) -> np.ndarray:
        return values.reshape(-1)[keep]

    coefficient_names = columns[2 : 2 + out["coef"].shape[0]]
    data: dict[str, pl.Series] = {
        "date": date_column,
        "asset": asset_column,
    }
    for k, name in enumerate(coefficient_names):
        data[name] = pl.Series(name, plane(out["coef"][k]))
    data["r2"] = pl.Series("r2", plane(out["r2"]))
    data["resid_vol"] = pl.Series("resid_vol", plane(out["resid_vol"]))
    data["n_obs"] = pl.Series("n_obs", plane(n_obs), dtype=pl.UInt32)
    if "tstat" in out:
        for k, name in enumerate(coefficient_names):
            data[f"t_{name}"] = pl.Series(f"t_{name}", plane(out["tstat"][k]))
    return pl.DataFrame(data)
