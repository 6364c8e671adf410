"""Assertion and frame-building helpers shared by the factorcore tests (no factorcore import)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

RTOL = 1e-10
ATOL = 1e-10

STAT_KEYS = ("coef", "r2", "resid_vol", "tstat")


def assert_close(got, ref, name: str, *, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Same shape, identical NaN pattern, no infinities, values within rtol/atol."""
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != expected {ref.shape}"
    got_f = got.astype(np.float64)
    ref_f = ref.astype(np.float64)
    n_inf = int(np.isinf(got_f).sum())
    assert n_inf == 0, (
        f"{name}: {n_inf} infinite values, first at {np.argwhere(np.isinf(got_f))[0]}"
    )
    got_nan = np.isnan(got_f)
    ref_nan = np.isnan(ref_f)
    if not np.array_equal(got_nan, ref_nan):
        extra = np.argwhere(got_nan & ~ref_nan)
        missing = np.argwhere(~got_nan & ref_nan)
        raise AssertionError(
            f"{name}: NaN pattern differs: {len(extra)} unexpected NaN "
            f"(first {extra[:5].tolist()}), {len(missing)} values where NaN expected "
            f"(first {missing[:5].tolist()})"
        )
    np.testing.assert_allclose(got_f, ref_f, rtol=rtol, atol=atol, err_msg=name)


def assert_results_match(
    got: dict,
    ref: dict,
    *,
    keys=STAT_KEYS,
    rows=None,
    n_obs: bool = True,
    label: str = "",
) -> None:
    """Compare a factorcore result dict with a reference dict key by key.

    ``rows``: the reference was evaluated at these rows only; the factorcore arrays are indexed
    accordingly.  ``n_obs`` is compared exactly (and its dtype must be uint32).
    """
    for key in keys:
        assert key in got, f"{label}: key {key!r} missing from result (keys: {sorted(got)})"
        g = np.asarray(got[key])
        if rows is not None:
            g = g[rows]
        assert_close(g, ref[key], f"{label}{key}")
    if n_obs:
        assert got["n_obs"].dtype == np.uint32, f"n_obs dtype {got['n_obs'].dtype}"
        g = got["n_obs"] if rows is None else got["n_obs"][rows]
        np.testing.assert_array_equal(g, ref["n_obs"], err_msg=f"{label}n_obs")


def assert_matches_statsmodels(got: dict, sm: dict, *, keys=STAT_KEYS, label: str = "sm ") -> None:
    """Like assert_results_match, but n_obs only where statsmodels made a fit (it stores 0 else)."""
    assert_results_match(got, sm, keys=keys, n_obs=False, label=label)
    fitted = ~np.isnan(np.asarray(sm["coef"])).any(axis=-1)
    np.testing.assert_array_equal(got["n_obs"][fitted], sm["n_obs"][fitted], err_msg="sm n_obs")


# --------------------------------------------------------------------------------------------
# Polars frames
# --------------------------------------------------------------------------------------------
def make_dates(n: int, dtype=pl.Date, start: dt.date = dt.date(2015, 1, 1)) -> pl.Series:
    """``n`` consecutive calendar days as a Series named "date" of ``dtype``."""
    s = pl.Series("date", [start + dt.timedelta(days=i) for i in range(n)], dtype=pl.Date)
    return s if dtype == pl.Date else s.cast(dtype)


def wide_frame(dates: pl.Series, values: np.ndarray, names, date_name: str = "date"):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    cols = {date_name: dates.alias(date_name)}
    for j, name in enumerate(names):
        cols[name] = pl.Series(name, values[:, j], dtype=pl.Float64)
    return pl.DataFrame(cols)


def wide_to_long(
    wide: pl.DataFrame,
    *,
    date: str = "date",
    asset: str = "asset",
    value: str = "return",
    drop_missing: bool = False,
) -> pl.DataFrame:
    """Long frame sorted by date, then asset in the wide frame's column order."""
    names = [c for c in wide.columns if c != date]
    order = {name: i for i, name in enumerate(names)}
    long = wide.unpivot(index=date, on=names, variable_name=asset, value_name=value)
    long = long.with_columns(pl.col(asset).replace_strict(order).alias("__order"))
    long = long.sort([date, "__order"]).drop("__order")
    if drop_missing:
        long = long.filter(pl.col(value).is_not_null() & pl.col(value).is_not_nan())
    return long


def expected_exposures(
    res: dict,
    dates: pl.Series,
    assets,
    factors,
    *,
    min_periods: int,
    intercept: bool = True,
    tstats: bool = False,
) -> pl.DataFrame:
    """factorcore.rolling_ols output (2-D y) reshaped to the documented long output frame."""
    n_obs = np.asarray(res["n_obs"])
    t_idx, a_idx = np.nonzero(n_obs >= min_periods)  # row-major: date, then asset order
    coef = np.asarray(res["coef"])[t_idx, a_idx]
    cols = {
        "date": dates.gather(t_idx).alias("date"),
        "asset": pl.Series("asset", [assets[a] for a in a_idx], dtype=pl.Enum(list(assets))),
    }
    names = (["alpha"] if intercept else []) + list(factors)
    for i, name in enumerate(names):
        cols[name] = pl.Series(name, coef[:, i], dtype=pl.Float64)
    cols["r2"] = pl.Series("r2", np.asarray(res["r2"])[t_idx, a_idx], dtype=pl.Float64)
    cols["resid_vol"] = pl.Series(
        "resid_vol", np.asarray(res["resid_vol"])[t_idx, a_idx], dtype=pl.Float64
    )
    cols["n_obs"] = pl.Series("n_obs", n_obs[t_idx, a_idx], dtype=pl.UInt32)
    if tstats:
        tst = np.asarray(res["tstat"])[t_idx, a_idx]
        for i, name in enumerate(names):
            cols[f"t_{name}"] = pl.Series(f"t_{name}", tst[:, i], dtype=pl.Float64)
    return pl.DataFrame(cols)


def assert_frames_close(got: pl.DataFrame, exp: pl.DataFrame) -> None:
    """Same columns (order too), same dtypes, key columns equal, float columns within 1e-10."""
    assert got.columns == exp.columns, f"columns {got.columns} != {exp.columns}"
    assert got.schema == exp.schema, f"schema {got.schema} != {exp.schema}"
    assert got.height == exp.height, f"height {got.height} != {exp.height}"
    for name in exp.columns:
        if exp.schema[name] == pl.Float64:
            assert_close(
                got[name].to_numpy().astype(np.float64),
                exp[name].to_numpy().astype(np.float64),
                name,
            )
        else:
            assert got[name].to_list() == exp[name].to_list(), f"column {name} differs"
