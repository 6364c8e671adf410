"""Bad input: every documented error case raises the documented exception with a useful message.

Exception hierarchy (contract): InvalidInputError(ValueError), NonFiniteError(InvalidInputError),
DtypeError(TypeError).  Messages are matched loosely (column names, dates, row numbers).
"""

from __future__ import annotations

import datetime as dt
import re

import factorcore as fc
import numpy as np
import polars as pl
import pytest
from factorcore import DtypeError, InvalidInputError, NonFiniteError
from helpers import (
    assert_frames_close,
    assert_results_match,
    expected_exposures,
    make_dates,
    wide_frame,
    wide_to_long,
)
from reference import direct_rolling_ols, make_factor_data

BAD_PARAM = (InvalidInputError, DtypeError)  # a non-int window may be reported as either


def has_all(*parts: str) -> str:
    """Regex matching a message that contains every one of ``parts`` (any order)."""
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


@pytest.fixture(scope="module")
def arrays():
    return make_factor_data(100, 3, 2, seed=301)


@pytest.fixture
def pframes():
    y, x = make_factor_data(100, 3, 2, seed=302)
    dates = make_dates(100)
    return wide_frame(dates, y, ["MSFT", "AAPL", "XOM"]), wide_frame(dates, x, ["MKT", "SMB"])


# --------------------------------------------------------------------------------------------
# exception classes
# --------------------------------------------------------------------------------------------
def test_exception_hierarchy():
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(NonFiniteError, InvalidInputError)
    assert issubclass(DtypeError, TypeError)
    assert fc.InvalidInputError is InvalidInputError


# --------------------------------------------------------------------------------------------
# NumPy API
# --------------------------------------------------------------------------------------------
def test_numpy_misaligned_lengths(arrays):
    y, x = arrays
    with pytest.raises(InvalidInputError, match=r"(?i)length|rows|shape|align|match"):
        fc.rolling_ols(y[:-1], x, window=20)
    with pytest.raises(InvalidInputError):
        fc.rolling_ols(y[:, 0], x[:-3], window=20)


@pytest.mark.parametrize(
    ("y_shape", "x_shape"),
    [((0, 3), (0, 2)), ((0,), (0, 2)), ((50, 0), (50, 2)), ((50, 3), (50, 0))],
    ids=["no-rows", "no-rows-1d", "no-assets", "no-factors"],
)
def test_numpy_empty_input(y_shape, x_shape):
    with pytest.raises(InvalidInputError):
        fc.rolling_ols(np.zeros(y_shape), np.zeros(x_shape), window=None)


def test_numpy_wrong_ndim(arrays):
    y, x = arrays
    with pytest.raises(InvalidInputError):
        fc.rolling_ols(y[:, :, None], x, window=20)
    with pytest.raises(InvalidInputError):
        fc.rolling_ols(y, x[:, :, None], window=20)


def test_numpy_non_numeric_dtype(arrays):
    y, x = arrays
    with pytest.raises(DtypeError):
        fc.rolling_ols(y.astype(str), x, window=20)
    with pytest.raises(DtypeError):
        fc.rolling_ols(y, x.astype(str), window=20)


@pytest.mark.parametrize("window", [101, 1000])
def test_numpy_window_longer_than_data(arrays, window):
    y, x = arrays
    with pytest.raises(InvalidInputError, match=r"(?i)window"):
        fc.rolling_ols(y, x, window=window)


@pytest.mark.parametrize("window", [0, -1, -252])
def test_numpy_window_not_positive(arrays, window):
    y, x = arrays
    with pytest.raises(InvalidInputError, match=r"(?i)window"):
        fc.rolling_ols(y, x, window=window)


@pytest.mark.parametrize("window", [2, 1])
def test_numpy_window_smaller_than_number_of_parameters(arrays, window):
    y, x = arrays  # P = 3
    with pytest.raises(InvalidInputError, match=r"(?i)window"):
        fc.rolling_ols(y, x, window=window)


@pytest.mark.parametrize("window", [20.5, "20", [20]])
def test_numpy_window_not_an_int(arrays, window):
    y, x = arrays
    with pytest.raises(BAD_PARAM):
        fc.rolling_ols(y, x, window=window)


@pytest.mark.parametrize(
    ("window", "min_periods"),
    [(20, 2), (20, 21), (20, 0), (20, -1), (None, 2), (None, 0), (3, 2)],
)
def test_numpy_min_periods_out_of_range(arrays, window, min_periods):
    y, x = arrays  # P = 3: min_periods must be in [3, window]
    with pytest.raises(InvalidInputError, match=r"(?i)min_periods"):
        fc.rolling_ols(y, x, window=window, min_periods=min_periods)


def test_numpy_min_periods_boundaries_are_accepted(arrays):
    y, x = arrays
    fc.rolling_ols(y, x, window=20, min_periods=3)
    fc.rolling_ols(y, x, window=20, min_periods=20)
    fc.rolling_ols(y, x, window=None, min_periods=3)
    fc.rolling_ols(y, x, window=3)
    fc.rolling_ols(y, x, window=100)
    fc.rolling_ols(y, x, window=2, intercept=False)


def test_numpy_integer_window_types_are_accepted(arrays):
    y, x = arrays
    a = fc.rolling_ols(y, x, window=np.int64(20), min_periods=np.int32(15))
    b = fc.rolling_ols(y, x, window=20, min_periods=15)
    np.testing.assert_array_equal(a["coef"], b["coef"])


@pytest.mark.parametrize("halflife", [0.0, -1.0, -np.inf, np.nan])
def test_numpy_halflife_not_positive(arrays, halflife):
    y, x = arrays
    with pytest.raises(InvalidInputError, match=r"(?i)halflife"):
        fc.rolling_ols(y, x, window=20, halflife=halflife)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_numpy_inf_in_y_names_row(arrays, value):
    y, x = arrays
    y = y.copy()
    y[73, 1] = value
    with pytest.raises(NonFiniteError, match="73"):
        fc.rolling_ols(y, x, window=20)
    with pytest.raises(NonFiniteError, match="73"):
        fc.rolling_ols(y[:, 1], x, window=20)


def test_numpy_inf_in_y_on_a_date_without_factors_names_row(arrays):
    # The date is dropped for missing factors, but an infinite return is still refused.
    y, x = arrays
    y, x = y.copy(), x.copy()
    x[41, 1] = np.nan
    y[41, 2] = np.inf
    with pytest.raises(NonFiniteError, match=r"row 41, column 2"):
        fc.rolling_ols(y, x, window=20)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_numpy_inf_in_x_names_row(arrays, value):
    y, x = arrays
    x = x.copy()
    x[58, 0] = value
    with pytest.raises(NonFiniteError, match="58"):
        fc.rolling_ols(y, x, window=20)


def test_numpy_collinear_factors_give_nan_not_exception(arrays):
    y, x = arrays
    res = fc.rolling_ols(y, np.column_stack([x, x[:, 0]]), window=20, tstats=True)
    assert np.isnan(res["coef"]).all()
    assert np.isnan(res["tstat"]).all()
    np.testing.assert_array_equal(res["n_obs"][19:], 20)


def test_numpy_all_nan_input_gives_nan_not_exception(arrays):
    y, x = arrays
    res = fc.rolling_ols(np.full_like(y, np.nan), x, window=20)
    assert np.isnan(res["coef"]).all()
    assert (res["n_obs"] == 0).all()
    res = fc.rolling_ols(y, np.full_like(x, np.nan), window=None)
    assert np.isnan(res["coef"]).all()
    assert (res["n_obs"] == 0).all()


# --------------------------------------------------------------------------------------------
# Polars API: dtypes
# --------------------------------------------------------------------------------------------
def test_string_return_column(pframes):
    rets, facs = pframes
    rets = rets.with_columns(pl.col("AAPL").cast(pl.String))
    with pytest.raises(DtypeError, match="AAPL"):
        fc.rolling_exposures(rets, facs, window=20)


def test_boolean_return_column(pframes):
    rets, facs = pframes
    rets = rets.with_columns((pl.col("XOM") > 0).alias("XOM"))
    with pytest.raises(DtypeError, match="XOM"):
        fc.rolling_exposures(rets, facs, window=20)


@pytest.mark.parametrize("dtype", [pl.String, pl.Boolean])
def test_non_numeric_factor_column(pframes, dtype):
    rets, facs = pframes
    expr = (pl.col("SMB") > 0) if dtype == pl.Boolean else pl.col("SMB").cast(pl.String)
    facs = facs.with_columns(expr.alias("SMB"))
    with pytest.raises(DtypeError, match="SMB"):
        fc.rolling_exposures(rets, facs, window=20)


@pytest.mark.parametrize("which", ["returns", "factors", "both"])
@pytest.mark.parametrize("dtype", [pl.String, pl.Int64])
def test_date_column_not_temporal(pframes, which, dtype):
    rets, facs = pframes
    if dtype == pl.String:
        expr = pl.col("date").dt.strftime("%Y-%m-%d")
    else:
        expr = pl.col("date").dt.epoch("d").cast(pl.Int64)
    if which in ("returns", "both"):
        rets = rets.with_columns(expr.alias("date"))
    if which in ("factors", "both"):
        facs = facs.with_columns(expr.alias("date"))
    with pytest.raises(DtypeError, match="date"):
        fc.rolling_exposures(rets, facs, window=20)


def test_date_dtype_mismatch_between_frames(pframes):
    rets, facs = pframes
    facs = facs.with_columns(pl.col("date").cast(pl.Datetime("us")))
    with pytest.raises(DtypeError, match="date"):
        fc.rolling_exposures(rets, facs, window=20)


@pytest.mark.parametrize("bad", ["numpy", "dict", "list"])
def test_non_dataframe_inputs(pframes, bad):
    rets, facs = pframes
    conv = {
        "numpy": lambda df: df.drop("date").to_numpy(),
        "dict": lambda df: df.to_dict(as_series=False),
        "list": lambda df: df.rows(),
    }[bad]
    with pytest.raises(DtypeError):
        fc.rolling_exposures(conv(rets), facs, window=20)
    with pytest.raises(DtypeError):
        fc.rolling_exposures(rets, conv(facs), window=20)


def test_long_input_string_value_column(pframes):
    rets, facs = pframes
    long = wide_to_long(rets).with_columns(pl.col("return").cast(pl.String))
    with pytest.raises(DtypeError, match="return"):
        fc.rolling_exposures(long, facs, window=20)


# --------------------------------------------------------------------------------------------
# Polars API: dates
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["returns", "factors"])
def test_unsorted_dates(pframes, which):
    rets, facs = pframes
    perm = list(range(100))
    perm[40], perm[41] = perm[41], perm[40]
    if which == "returns":
        rets = rets[perm]
    else:
        facs = facs[perm]
    with pytest.raises(InvalidInputError, match=r"(?i)sort|order|increas|monoton"):
        fc.rolling_exposures(rets, facs, window=20)


@pytest.mark.parametrize("which", ["returns", "factors"])
def test_descending_dates(pframes, which):
    rets, facs = pframes
    if which == "returns":
        rets = rets.reverse()
    else:
        facs = facs.reverse()
    with pytest.raises(InvalidInputError):
        fc.rolling_exposures(rets, facs, window=20)


@pytest.mark.parametrize("which", ["returns", "factors"])
def test_duplicate_dates(pframes, which):
    rets, facs = pframes
    if which == "returns":
        rets = pl.concat([rets[:50], rets[49:]])
    else:
        facs = pl.concat([facs[:50], facs[49:]])
    with pytest.raises(InvalidInputError, match=r"(?i)duplicate|unique|increas|sort"):
        fc.rolling_exposures(rets, facs, window=20)


def test_duplicate_date_asset_rows_in_long_input(pframes):
    rets, facs = pframes
    long = wide_to_long(rets)
    dup = long[123:124]
    long = pl.concat([long, dup]).sort("date", maintain_order=True)
    day, name = dup["date"][0], dup["asset"][0]
    with pytest.raises(InvalidInputError, match=has_all(day.isoformat(), name)):
        fc.rolling_exposures(long, facs, window=20)


def test_no_common_dates(pframes):
    rets, facs = pframes
    facs = facs.with_columns(pl.col("date") + pl.duration(days=1000))
    with pytest.raises(InvalidInputError, match=r"(?i)common|overlap|date|align"):
        fc.rolling_exposures(rets, facs, window=20)


@pytest.mark.parametrize("frame", ["returns", "factors"])
def test_missing_date_column(pframes, frame):
    rets, facs = pframes
    if frame == "returns":
        rets = rets.rename({"date": "Date"})
    else:
        facs = facs.rename({"date": "day"})
    with pytest.raises(BAD_PARAM, match="date"):
        fc.rolling_exposures(rets, facs, window=20)


def test_custom_date_name_missing_from_frames(pframes):
    rets, facs = pframes
    with pytest.raises(BAD_PARAM, match="when"):
        fc.rolling_exposures(rets, facs, window=20, date="when")


# --------------------------------------------------------------------------------------------
# Polars API: empty input
# --------------------------------------------------------------------------------------------
def test_zero_rows(pframes):
    rets, facs = pframes
    with pytest.raises(InvalidInputError):
        fc.rolling_exposures(rets.clear(), facs, window=20)
    with pytest.raises(InvalidInputError):
        fc.rolling_exposures(rets, facs.clear(), window=20)
    with pytest.raises(InvalidInputError):
        fc.rolling_exposures(rets.clear(), facs.clear(), window=None)


def test_zero_asset_columns(pframes):
    rets, facs = pframes
    with pytest.raises(InvalidInputError):
        fc.rolling_exposures(rets.select("date"), facs, window=20)


def test_zero_factor_columns(pframes):
    rets, facs = pframes
    with pytest.raises(InvalidInputError):
        fc.rolling_exposures(rets, facs.select("date"), window=20)


# --------------------------------------------------------------------------------------------
# Polars API: non-finite values
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_returns_names_column_and_date(pframes, value):
    rets, facs = pframes
    day = rets["date"][37]
    rets = rets.with_columns(
        pl.when(pl.col("date") == day).then(value).otherwise(pl.col("AAPL")).alias("AAPL")
    )
    with pytest.raises(NonFiniteError, match=has_all("AAPL", day.isoformat())):
        fc.rolling_exposures(rets, facs, window=20)


def test_inf_in_long_returns_names_asset_and_date(pframes):
    rets, facs = pframes
    long = wide_to_long(rets)
    day = rets["date"][61]
    long = long.with_columns(
        pl.when((pl.col("date") == day) & (pl.col("asset") == "XOM"))
        .then(np.inf)
        .otherwise(pl.col("return"))
        .alias("return")
    )
    with pytest.raises(NonFiniteError, match=has_all("XOM", day.isoformat())):
        fc.rolling_exposures(long, facs, window=20)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_factors_names_column_and_date(pframes, value):
    rets, facs = pframes
    day = facs["date"][88]
    facs = facs.with_columns(
        pl.when(pl.col("date") == day).then(value).otherwise(pl.col("SMB")).alias("SMB")
    )
    with pytest.raises(NonFiniteError, match=has_all("SMB", day.isoformat())):
        fc.rolling_exposures(rets, facs, window=20)


def test_inf_with_datetime_dates_names_the_date(pframes):
    rets, facs = pframes
    rets = rets.with_columns(pl.col("date").cast(pl.Datetime("us")))
    facs = facs.with_columns(pl.col("date").cast(pl.Datetime("us")))
    day = rets["date"][12]
    rets = rets.with_columns(
        pl.when(pl.col("date") == day).then(np.inf).otherwise(pl.col("MSFT")).alias("MSFT")
    )
    with pytest.raises(NonFiniteError, match=has_all("MSFT", day.date().isoformat())):
        fc.rolling_exposures(rets, facs, window=20)


# --------------------------------------------------------------------------------------------
# Polars API: parameters
# --------------------------------------------------------------------------------------------
def test_window_longer_than_aligned_data(pframes):
    rets, facs = pframes
    with pytest.raises(InvalidInputError, match=r"(?i)window"):
        fc.rolling_exposures(rets, facs, window=101)
    # 100 rows of returns but only 40 dates in common with the factors
    with pytest.raises(InvalidInputError, match=r"(?i)window"):
        fc.rolling_exposures(rets, facs[60:], window=50)
    fc.rolling_exposures(rets, facs[60:], window=40)


@pytest.mark.parametrize("window", [0, -5, 2, 20.5, "20"])
def test_bad_window(pframes, window):
    rets, facs = pframes
    with pytest.raises(BAD_PARAM):
        fc.rolling_exposures(rets, facs, window=window)


@pytest.mark.parametrize(("window", "min_periods"), [(20, 2), (20, 21), (20, 0), (None, 1)])
def test_bad_min_periods(pframes, window, min_periods):
    rets, facs = pframes
    with pytest.raises(InvalidInputError, match=r"(?i)min_periods"):
        fc.rolling_exposures(rets, facs, window=window, min_periods=min_periods)


@pytest.mark.parametrize("halflife", [0.0, -3.0, float("nan")])
def test_bad_halflife(pframes, halflife):
    rets, facs = pframes
    with pytest.raises(InvalidInputError, match=r"(?i)halflife"):
        fc.rolling_exposures(rets, facs, window=20, halflife=halflife)


@pytest.mark.parametrize("name", ["alpha", "r2", "resid_vol", "n_obs", "asset"])
def test_factor_name_clashes_with_output_column(pframes, name):
    rets, facs = pframes
    facs = facs.rename({"SMB": name})
    with pytest.raises(InvalidInputError, match=re.escape(name)):
        fc.rolling_exposures(rets, facs, window=20)


def test_collinear_factors_in_frames_give_nan_rows_not_exception(pframes):
    rets, facs = pframes
    facs = facs.with_columns(pl.col("MKT").alias("MKT2"))
    out = fc.rolling_exposures(rets, facs, window=20, tstats=True)
    assert out.height == 3 * 81
    for name in ["alpha", "MKT", "SMB", "MKT2", "r2", "resid_vol", "t_MKT"]:
        assert out[name].fill_null(np.nan).is_nan().all(), name


def test_all_null_asset_column_gives_no_rows_for_it(pframes):
    rets, facs = pframes
    rets = rets.with_columns(pl.lit(None, dtype=pl.Float64).alias("XOM"))
    out = fc.rolling_exposures(rets, facs, window=20)
    assert out.filter(pl.col("asset") == "XOM").height == 0
    assert out.height == 2 * 81


def test_calendar_gap_in_dates_is_fine(pframes):
    """Strictly increasing dates need not be consecutive (weekends, holidays)."""
    rets, facs = pframes
    shift = pl.when(pl.col("date") > dt.date(2015, 2, 1)).then(pl.duration(days=30))
    rets = rets.with_columns(pl.col("date") + shift.otherwise(pl.duration(days=0)))
    facs = facs.with_columns(pl.col("date") + shift.otherwise(pl.duration(days=0)))
    out = fc.rolling_exposures(rets, facs, window=20)
    assert out.height == 3 * 81


# --------------------------------------------------------------------------------------------
# issue 17: input that was silently accepted
# --------------------------------------------------------------------------------------------
def test_null_asset_label_in_long_returns_is_refused(pframes):
    """A null asset became a phantom asset "null"."""
    rets, facs = pframes
    long = wide_to_long(rets)
    day = long["date"][7]
    long = long.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("asset")).alias("asset")
    )
    with pytest.raises(InvalidInputError, match=has_all("asset", "null", "row 7", day.isoformat())):
        fc.rolling_exposures(long, facs, window=20)


def test_wide_frame_with_assets_named_asset_and_return_stays_wide(pframes):
    """Float columns named `asset` and `return` were read as a long frame: empty output."""
    rets, facs = pframes
    wide = rets.select("date", pl.col("MSFT").alias("asset"), pl.col("AAPL").alias("return"))
    got = fc.rolling_exposures(wide, facs, window=20)
    y = rets.select("MSFT", "AAPL").to_numpy()
    x = facs.select("MKT", "SMB").to_numpy()
    ref = direct_rolling_ols(y, x, window=20)
    exp = expected_exposures(ref, rets["date"], ["asset", "return"], ["MKT", "SMB"], min_periods=20)
    assert got.height == 2 * 81
    assert_frames_close(got, exp)


def test_long_frame_with_integer_asset_ids_is_long(pframes):
    rets, facs = pframes
    long = wide_to_long(rets).with_columns(
        pl.col("asset").replace_strict({"MSFT": 11, "AAPL": 22, "XOM": 33}, return_dtype=pl.Int64)
    )
    got = fc.rolling_exposures(long, facs, window=20)
    ref = direct_rolling_ols(rets.select("MSFT", "AAPL", "XOM").to_numpy(),
                             facs.select("MKT", "SMB").to_numpy(), window=20)  # fmt: skip
    exp = expected_exposures(ref, rets["date"], ["11", "22", "33"], ["MKT", "SMB"], min_periods=20)
    assert_frames_close(got, exp)


@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, [True]])
@pytest.mark.parametrize("flag", ["intercept", "tstats", "stats"])
def test_flags_must_be_bools(arrays, pframes, flag, value):
    """`intercept="no"` turned the intercept on."""
    y, x = arrays
    with pytest.raises(DtypeError, match=flag):
        fc.rolling_ols(y, x, window=20, **{flag: value})
    if flag != "stats":
        rets, facs = pframes
        with pytest.raises(DtypeError, match=flag):
            fc.rolling_exposures(rets, facs, window=20, **{flag: value})


def test_numpy_bool_flags_are_bools(arrays):
    y, x = arrays
    out = fc.rolling_ols(y, x, window=20, intercept=np.False_, tstats=np.True_)
    assert out["coef"].shape == (100, 3, 2) and "tstat" in out


@pytest.mark.parametrize("one_d", [False, True])
def test_masked_entries_of_masked_arrays_are_missing(arrays, one_d):
    """np.asarray dropped the mask: the hidden values (here 1e6) went into the fits."""
    y, x = arrays
    y, x = y.copy(), x.copy()
    y_mask = np.zeros(y.shape, dtype=bool)
    y_mask[[10, 33, 34, 60], [0, 1, 2, 1]] = True
    x_mask = np.zeros(x.shape, dtype=bool)
    x_mask[47, 1] = True
    y[y_mask], x[x_mask] = 1e6, 1e6
    if one_d:
        y, y_mask = y[:, 1], y_mask[:, 1]
    got = fc.rolling_ols(
        np.ma.masked_array(y, y_mask), np.ma.masked_array(x, x_mask), window=20, min_periods=15
    )
    ref = direct_rolling_ols(
        np.where(y_mask, np.nan, y), np.where(x_mask, np.nan, x), window=20, min_periods=15
    )
    assert_results_match(got, ref, keys=("coef", "r2", "resid_vol"))
    assert np.nanmax(np.abs(got["coef"])) < 100  # no trace of the hidden 1e6
