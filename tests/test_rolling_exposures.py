"""factorcore.rolling_exposures: the Polars API (wide/long input, alignment, output layout)."""

from __future__ import annotations

import datetime as dt

import factorcore as fc
import numpy as np
import polars as pl
import pytest
from helpers import (
    assert_close,
    assert_frames_close,
    expected_exposures,
    make_dates,
    wide_frame,
    wide_to_long,
)
from reference import direct_rolling_ols, make_factor_data

# deliberately not alphabetical: output order must follow the input column order
ASSETS = ["MSFT", "AAPL", "XOM", "JPM", "KO", "BAC"]
FACTORS = ["MKT", "SMB", "HML"]


@pytest.fixture(scope="module")
def panel():
    """300 dates x 6 assets x 3 factors with gaps (as NaN in numpy)."""
    y, x = make_factor_data(300, len(ASSETS), len(FACTORS), seed=201)
    rng = np.random.default_rng(202)
    y[rng.random(y.shape) < 0.04] = np.nan
    y[:120, 2] = np.nan  # XOM starts late
    y[200:230, 4] = np.nan  # KO halted
    x[[77, 150, 151], 1] = np.nan  # SMB missing on three dates
    dates = make_dates(300)
    return y, x, dates


def frames(y, x, dates, assets=ASSETS, factors=FACTORS, date_name="date"):
    return (
        wide_frame(dates, y, assets, date_name=date_name),
        wide_frame(dates, x, factors, date_name=date_name),
    )


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("window", "min_periods", "halflife", "intercept"),
    [
        (60, None, None, True),
        (60, 40, None, True),
        (None, None, None, True),
        (None, 25, 30.0, True),
        (80, 50, 20.0, False),
    ],
)
def test_wide_output_equals_rolling_ols_reshaped(panel, window, min_periods, halflife, intercept):
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    kw = {"window": window, "min_periods": min_periods, "halflife": halflife}
    got = fc.rolling_exposures(rets, facs, intercept=intercept, tstats=True, **kw)
    res = fc.rolling_ols(y, x, intercept=intercept, tstats=True, **kw)
    p = len(FACTORS) + int(intercept)
    mp = min_periods if min_periods is not None else (window if window is not None else p + 1)
    exp = expected_exposures(
        res, dates, ASSETS, FACTORS, min_periods=mp, intercept=intercept, tstats=True
    )
    assert_frames_close(got, exp)


def test_wide_output_matches_direct_solve_at_sample_pairs(panel):
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    got = fc.rolling_exposures(rets, facs, window=60, min_periods=40, tstats=True)
    rows = [59, 77, 121, 150, 180, 229, 299]
    ref = direct_rolling_ols(y, x, window=60, min_periods=40, rows=rows)
    names = ["alpha", *FACTORS]
    checked = 0
    for i, t in enumerate(rows):
        for j, asset in enumerate(ASSETS):
            sel = got.filter((pl.col("date") == dates[t]) & (pl.col("asset") == asset))
            if ref["n_obs"][i, j] < 40:
                assert sel.height == 0, f"row for {asset} on {dates[t]} should be filtered out"
                continue
            assert sel.height == 1, f"expected one row for {asset} on {dates[t]}"
            row = sel.row(0, named=True)
            assert row["n_obs"] == ref["n_obs"][i, j]
            assert_close(np.array([row[n] for n in names]), ref["coef"][i, j], f"coef {t} {asset}")
            assert_close(
                np.array([row[f"t_{n}"] for n in names]), ref["tstat"][i, j], f"t {t} {asset}"
            )
            assert_close(row["r2"], ref["r2"][i, j], f"r2 {t} {asset}")
            assert_close(row["resid_vol"], ref["resid_vol"][i, j], f"resid_vol {t} {asset}")
            checked += 1
    assert checked >= 30


# --------------------------------------------------------------------------------------------
# wide vs long
# --------------------------------------------------------------------------------------------
def test_long_input_equals_wide_input(panel):
    y, x, dates = panel
    assets = sorted(ASSETS)  # alphabetical == first-appearance order: any ordering rule agrees
    rets, facs = frames(y, x, dates, assets=assets)
    wide = fc.rolling_exposures(rets, facs, window=60, min_periods=40, tstats=True)
    long = fc.rolling_exposures(wide_to_long(rets), facs, window=60, min_periods=40, tstats=True)
    assert_frames_close(long, wide)
    assert wide["asset"].dtype == pl.Enum(assets)


def test_long_input_without_missing_rows_equals_wide_input(panel):
    """Absent (date, asset) rows in long input mean missing, like null/NaN in wide input."""
    y, x, dates = panel
    y = y.copy()
    y[0] = 0.001 * np.arange(1, len(ASSETS) + 1)  # first date complete: first-appearance order
    assets = sorted(ASSETS)  # ... equals alphabetical order equals the wide column order
    rets, facs = frames(y, x, dates, assets=assets)
    long = wide_to_long(rets, drop_missing=True)
    assert long.height < rets.height * len(assets)
    assert long["date"].n_unique() == rets.height  # every date still present
    wide_out = fc.rolling_exposures(rets, facs, window=60, min_periods=40)
    long_out = fc.rolling_exposures(long, facs, window=60, min_periods=40)
    assert_frames_close(long_out, wide_out)


def test_long_input_with_custom_column_names(panel):
    y, x, dates = panel
    assets = sorted(ASSETS)
    rets, facs = frames(y, x, dates, assets=assets)
    long = wide_to_long(rets, date="date", asset="ticker", value="ret").rename({"date": "Date"})
    facs_d = facs.rename({"date": "Date"})
    got = fc.rolling_exposures(
        long, facs_d, window=60, min_periods=40, date="Date", asset="ticker", value="ret"
    )
    exp = fc.rolling_exposures(rets, facs, window=60, min_periods=40)
    # Input column names are free; the output columns are always named as documented.
    assert got.columns == exp.columns
    assert got.columns[:2] == ["date", "asset"]
    assert_frames_close(got, exp)


def test_wide_input_with_custom_date_column_name(panel):
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    exp = fc.rolling_exposures(rets, facs, window=60)
    got = fc.rolling_exposures(
        rets.rename({"date": "when"}), facs.rename({"date": "when"}), window=60, date="when"
    )
    assert got.columns[0] == "date"
    assert_frames_close(got, exp)


# --------------------------------------------------------------------------------------------
# rows, ordering, dtypes, names
# --------------------------------------------------------------------------------------------
def test_rows_filtered_by_min_periods(panel):
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    got = fc.rolling_exposures(rets, facs, window=60, min_periods=40)
    res = fc.rolling_ols(y, x, window=60, min_periods=40)
    assert got.height == int((res["n_obs"] >= 40).sum())
    assert got["n_obs"].min() >= 40
    assert got["n_obs"].max() <= 60
    # XOM has no data before row 120: its first row is the date of its 40th valid observation
    xom_valid = np.cumsum(~np.isnan(y[:, 2]) & ~np.isnan(x).any(axis=1))
    first = int(np.argmax(xom_valid >= 40))
    xom = got.filter(pl.col("asset") == "XOM")
    assert xom["date"][0] == dates[first]


def test_default_min_periods_equals_window(panel):
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    got = fc.rolling_exposures(rets, facs, window=30)
    assert (got["n_obs"] == 30).all()
    explicit = fc.rolling_exposures(rets, facs, window=30, min_periods=30)
    assert_frames_close(got, explicit)


def test_expanding_default_min_periods_is_p_plus_one():
    y, x = make_factor_data(40, 2, 2, seed=203)
    dates = make_dates(40)
    got = fc.rolling_exposures(*frames(y, x, dates, ["A", "B"], ["F1", "F2"]), window=None)
    # P = 3: first output row is the 4th date, every row after it is present
    assert got["date"][0] == dates[3]
    assert got.height == 2 * 37
    assert got["n_obs"].to_list()[:4] == [4, 4, 5, 5]


def test_sorted_by_date_then_asset_in_input_column_order(panel):
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    got = fc.rolling_exposures(rets, facs, window=60, min_periods=40)
    order = {a: i for i, a in enumerate(ASSETS)}
    keys = list(zip(got["date"].to_list(), [order[a] for a in got["asset"].to_list()], strict=True))
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    # sorting by the Enum column follows the category (= input column) order
    assert got.equals(got.sort(["date", "asset"]))


def test_output_dtypes(panel):
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    got = fc.rolling_exposures(rets, facs, window=60, min_periods=40, tstats=True)
    assert got.schema["date"] == pl.Date
    assert got.schema["asset"] == pl.Enum(ASSETS)
    assert got.schema["asset"].categories.to_list() == ASSETS
    assert got.schema["n_obs"] == pl.UInt32
    for name in ["alpha", *FACTORS, "r2", "resid_vol", "t_alpha", *[f"t_{f}" for f in FACTORS]]:
        assert got.schema[name] == pl.Float64, name


@pytest.mark.parametrize(
    "dtype",
    [pl.Date, pl.Datetime("us"), pl.Datetime("ns"), pl.Datetime("ms"), pl.Datetime("us", "UTC")],
    ids=str,
)
def test_date_dtype_is_preserved(dtype):
    y, x = make_factor_data(50, 2, 1, seed=204)
    dates = make_dates(50, dtype=dtype)
    rets, facs = frames(y, x, dates, ["A", "B"], ["F"])
    got = fc.rolling_exposures(rets, facs, window=20)
    assert got.schema["date"] == dtype
    assert got["date"].to_list() == [d for d in dates.to_list()[19:] for _ in range(2)]


def test_intraday_datetimes_are_supported():
    """Datetime rows need not be whole days (e.g. hourly bars)."""
    y, x = make_factor_data(48, 2, 1, seed=205)
    start = dt.datetime(2021, 3, 1, 9, 30)
    dates = pl.Series("date", [start + dt.timedelta(hours=h) for h in range(48)])
    rets, facs = frames(y, x, dates, ["A", "B"], ["F"])
    got = fc.rolling_exposures(rets, facs, window=24)
    res = fc.rolling_ols(y, x, window=24)
    assert_frames_close(got, expected_exposures(res, dates, ["A", "B"], ["F"], min_periods=24))


def test_column_names_with_and_without_tstats_and_intercept(panel):
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    base = ["date", "asset", "alpha", *FACTORS, "r2", "resid_vol", "n_obs"]
    assert fc.rolling_exposures(rets, facs, window=60).columns == base
    with_t = fc.rolling_exposures(rets, facs, window=60, tstats=True).columns
    assert with_t == [*base, "t_alpha", "t_MKT", "t_SMB", "t_HML"]
    no_int = fc.rolling_exposures(rets, facs, window=60, intercept=False, tstats=True).columns
    assert no_int == [
        "date",
        "asset",
        *FACTORS,
        "r2",
        "resid_vol",
        "n_obs",
        "t_MKT",
        "t_SMB",
        "t_HML",
    ]


# --------------------------------------------------------------------------------------------
# missing values and alignment
# --------------------------------------------------------------------------------------------
def test_nulls_and_nan_are_equivalent(panel):
    y, x, dates = panel
    rets_nan, facs_nan = frames(y, x, dates)
    rets_null = rets_nan.with_columns(pl.col(ASSETS).fill_nan(None))
    facs_null = facs_nan.with_columns(pl.col(FACTORS).fill_nan(None))
    assert rets_null.null_count().sum_horizontal().item() > 0
    assert facs_null.null_count().sum_horizontal().item() > 0
    kw = {"window": 60, "min_periods": 40, "tstats": True}
    exp = fc.rolling_exposures(rets_nan, facs_nan, **kw)
    assert_frames_close(fc.rolling_exposures(rets_null, facs_null, **kw), exp)
    assert_frames_close(fc.rolling_exposures(rets_null, facs_nan, **kw), exp)
    # mixed: half of the missing returns as null, the others as NaN
    mixed = rets_nan.with_columns(pl.col(ASSETS[:3]).fill_nan(None))
    assert_frames_close(fc.rolling_exposures(mixed, facs_null, **kw), exp)


def test_missing_factor_drops_that_date_for_every_asset():
    y, x = make_factor_data(60, 3, 2, seed=206)
    x[45, 1] = np.nan
    dates = make_dates(60)
    rets, facs = frames(y, x, dates, ["A", "B", "C"], ["F1", "F2"])
    got = fc.rolling_exposures(rets, facs, window=20, min_periods=15)
    on_45 = got.filter(pl.col("date") == dates[45])
    assert on_45.height == 3  # output still produced on the date itself
    assert (on_45["n_obs"] == 19).all()
    after = got.filter(pl.col("date") == dates[44])  # window 25..44: no missing factor
    assert (after["n_obs"] == 20).all()
    ref = direct_rolling_ols(y, x, window=20, min_periods=15, rows=[45])
    for j, a in enumerate(["A", "B", "C"]):
        row = on_45.filter(pl.col("asset") == a).row(0, named=True)
        assert_close(np.array([row["alpha"], row["F1"], row["F2"]]), ref["coef"][0, j], a)


def test_inner_join_on_dates(panel):
    """Frames with different date sets: result equals running on the intersected frames."""
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    rng = np.random.default_rng(207)
    drop_r = rng.choice(300, 25, replace=False)
    drop_f = rng.choice(300, 25, replace=False)
    rets_sub = rets.filter(~pl.int_range(pl.len()).is_in(drop_r.tolist()))
    facs_sub = facs.filter(~pl.int_range(pl.len()).is_in(drop_f.tolist()))
    # factors also carry extra dates before and after the returns
    extra_before = wide_frame(make_dates(5, start=dt.date(2014, 12, 1)), np.ones((5, 3)), FACTORS)
    extra_after = wide_frame(make_dates(5, start=dt.date(2016, 1, 1)), np.ones((5, 3)), FACTORS)
    facs_sub = pl.concat([extra_before, facs_sub, extra_after])
    common = sorted(set(rets_sub["date"].to_list()) & set(facs_sub["date"].to_list()))
    assert len(common) < 290
    rets_i = rets_sub.filter(pl.col("date").is_in(common))
    facs_i = facs_sub.filter(pl.col("date").is_in(common))
    kw = {"window": 60, "min_periods": 40, "tstats": True}
    got = fc.rolling_exposures(rets_sub, facs_sub, **kw)
    assert_frames_close(got, fc.rolling_exposures(rets_i, facs_i, **kw))
    # and the intersected frames equal the NumPy API on the kept rows
    keep = np.isin(dates.to_numpy(), np.array(common, dtype="datetime64[D]"))
    res = fc.rolling_ols(y[keep], x[keep], tstats=True, window=60, min_periods=40)
    exp = expected_exposures(res, dates.filter(keep), ASSETS, FACTORS, min_periods=40, tstats=True)
    assert_frames_close(got, exp)


def test_factor_column_order_defines_beta_order(panel):
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    a = fc.rolling_exposures(rets, facs, window=60)
    b = fc.rolling_exposures(rets, facs.select(["date", "HML", "MKT", "SMB"]), window=60)
    assert b.columns[:6] == ["date", "asset", "alpha", "HML", "MKT", "SMB"]
    assert_frames_close(b.select(a.columns), a)


def test_single_asset_and_single_factor():
    y, x = make_factor_data(30, 1, 1, seed=208)
    dates = make_dates(30)
    got = fc.rolling_exposures(*frames(y, x, dates, ["ONLY"], ["F"]), window=10)
    assert got.height == 21
    assert got["asset"].dtype == pl.Enum(["ONLY"])
    ref = direct_rolling_ols(y[:, 0], x, window=10)
    assert_close(got["F"].to_numpy(), ref["coef"][9:, 1], "beta")


def test_collinear_window_rows_are_kept_with_nan_values():
    y, x = make_factor_data(80, 2, 2, seed=209)
    x[30:70, 1] = 0.0  # zero factor for 40 rows > window 20
    dates = make_dates(80)
    got = fc.rolling_exposures(*frames(y, x, dates, ["A", "B"], ["F1", "F2"]), window=20)
    assert got.height == 2 * 61
    t = np.arange(19, 80)
    affected = np.repeat((t - 19 >= 30) & (t <= 69), 2)
    for name in ["alpha", "F1", "F2", "r2", "resid_vol"]:
        vals = got[name].to_numpy().astype(np.float64)
        assert np.isnan(vals[affected]).all(), name
        assert np.isfinite(vals[~affected]).all(), name
    assert (got["n_obs"] == 20).all()


def test_lazyframe_input_gives_same_result(panel):
    """Optional convenience: LazyFrames are collected and give the same result."""
    y, x, dates = panel
    rets, facs = frames(y, x, dates)
    exp = fc.rolling_exposures(rets, facs, window=60, min_periods=40)
    got = fc.rolling_exposures(rets.lazy(), facs.lazy(), window=60, min_periods=40)
    assert_frames_close(got, exp)
