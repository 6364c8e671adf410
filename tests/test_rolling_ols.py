"""factorcore.rolling_ols against statsmodels RollingOLS/RollingWLS and a direct per-window solve.

Every numeric comparison uses rtol=1e-10, atol=1e-10 and requires an identical NaN pattern;
n_obs is compared exactly.
"""

from __future__ import annotations

import factorcore as fc
import numpy as np
import pytest
from helpers import (
    STAT_KEYS,
    assert_close,
    assert_matches_statsmodels,
    assert_results_match,
)
from reference import (
    direct_rolling_ols,
    make_factor_data,
    n_params,
    statsmodels_rolling_ols,
)


def check_against_references(y, x, *, statsmodels: bool = True, **kw):
    """Run factorcore (with t-stats) and compare with the direct solve and statsmodels."""
    got = fc.rolling_ols(y, x, tstats=True, **kw)
    ref = direct_rolling_ols(y, x, **kw)
    assert_results_match(got, ref, label="direct ")
    if statsmodels:
        sm = statsmodels_rolling_ols(y, x, **kw)
        assert_matches_statsmodels(got, sm)
    return got, ref


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gappy():
    """T=600, N=20, K=4 with every kind of gap the contract describes."""
    y, x = make_factor_data(600, 20, 4, seed=7)
    rng = np.random.default_rng(70)
    y[rng.random(y.shape) < 0.05] = np.nan  # 5% missing at random
    y[200:260, 3] = np.nan  # a 60-row trading halt
    y[400:470, [5, 6]] = np.nan  # a 70-row stretch for two assets
    y[:300, 9] = np.nan  # asset listed late: NaN for the first 300 rows
    x[[50, 51, 330, 331, 332, 590], 1] = np.nan  # one factor missing on some dates
    x[450, :] = np.nan  # all factors missing on one date
    return y, x


@pytest.fixture(scope="module")
def stretches():
    """Gaps in whole stretches only (no random scatter), so full windows exist."""
    y, x = make_factor_data(600, 8, 3, seed=8)
    y[150:210, 2] = np.nan  # 60-row halt
    y[:300, 5] = np.nan  # late start
    x[[420, 421], 0] = np.nan  # factor missing on two dates
    return y, x


# --------------------------------------------------------------------------------------------
# synthetic, clean
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [3, 4, 5])
def test_synthetic_rolling_252_matches_statsmodels_and_direct(k):
    y, x = make_factor_data(600, 20, k, seed=100 + k)
    got, _ = check_against_references(y, x, window=252)
    p = n_params(k, True)
    assert got["coef"].shape == (600, 20, p)
    assert got["tstat"].shape == (600, 20, p)
    assert got["r2"].shape == got["resid_vol"].shape == got["n_obs"].shape == (600, 20)
    assert np.isnan(got["coef"][:251]).all()
    assert np.isfinite(got["coef"][251:]).all()
    np.testing.assert_array_equal(got["n_obs"][251:], 252)
    np.testing.assert_array_equal(got["n_obs"][:251], np.tile(np.arange(1, 252)[:, None], (1, 20)))


def test_result_dtypes_are_float64_and_uint32():
    y, x = make_factor_data(80, 3, 2, seed=1)
    got = fc.rolling_ols(y, x, window=30, tstats=True)
    assert set(got) == {"coef", "r2", "resid_vol", "n_obs", "tstat"}
    for key in STAT_KEYS:
        assert got[key].dtype == np.float64, key
    assert got["n_obs"].dtype == np.uint32


def test_known_exact_coefficients_recovered():
    """y = 0.002 + 1.5 f1 - 0.5 f2 + noise with tiny noise: coefficients recovered."""
    rng = np.random.default_rng(3)
    x = 0.01 * rng.standard_normal((300, 2))
    y = 0.002 + 1.5 * x[:, 0] - 0.5 * x[:, 1] + 1e-9 * rng.standard_normal(300)
    got = fc.rolling_ols(y, x, window=100)
    np.testing.assert_allclose(got["coef"][99:], np.tile([0.002, 1.5, -0.5], (201, 1)), atol=1e-6)
    assert (got["r2"][99:] > 1 - 1e-10).all()


# --------------------------------------------------------------------------------------------
# gaps
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gappy_direct_120_60(gappy):
    y, x = gappy
    return direct_rolling_ols(y, x, window=120, min_periods=60)


def test_random_gaps_rolling_min_periods_below_window(gappy, gappy_direct_120_60):
    y, x = gappy
    got = fc.rolling_ols(y, x, window=120, min_periods=60, tstats=True)
    assert_results_match(got, gappy_direct_120_60, label="direct ")
    sm = statsmodels_rolling_ols(y, x, window=120, min_periods=60)
    assert_matches_statsmodels(got, sm)
    # the late-listed asset has no valid row before 300 and no output before its 60th valid row
    assert (got["n_obs"][:300, 9] == 0).all()
    assert np.isnan(got["coef"][:359, 9]).all()
    # a row with all factors missing still gets an output (from the other rows of the window)
    assert np.isfinite(got["coef"][450, 0]).all()


def test_random_gaps_rolling_full_window_required(gappy):
    y, x = gappy
    check_against_references(y, x, window=120)


def test_random_gaps_expanding(gappy):
    y, x = gappy
    check_against_references(y, x, window=None)


def test_random_gaps_expanding_custom_min_periods(gappy):
    y, x = gappy
    check_against_references(y, x, window=None, min_periods=40)


def test_stretch_gaps_rolling_full_window(stretches):
    y, x = stretches
    got, _ = check_against_references(y, x, window=100)
    # asset 2: windows containing any of rows 150..209 are incomplete -> NaN; others finite
    t = np.arange(600)
    touches_halt = (t >= 150) & (t - 99 <= 209)
    touches_factor_gap = (t >= 420) & (t - 99 <= 421)
    assert np.isnan(got["coef"][touches_halt, 2]).all()
    ok = (t >= 99) & ~touches_halt & ~touches_factor_gap
    assert np.isfinite(got["coef"][ok, 2]).all()
    # windows holding a missing-factor date count one or two rows fewer for every asset
    n_gap = ((t >= 420) & (t - 99 <= 420)).astype(int) + ((t >= 421) & (t - 99 <= 421))
    np.testing.assert_array_equal(got["n_obs"][99:, 0], 100 - n_gap[99:])


def test_stretch_gaps_rolling_partial_windows(stretches):
    y, x = stretches
    check_against_references(y, x, window=100, min_periods=30)


def test_factor_missing_on_output_row_still_produces_output():
    y, x = make_factor_data(120, 3, 2, seed=9)
    x[100, 0] = np.nan
    got = fc.rolling_ols(y, x, window=50, min_periods=40)
    assert (got["n_obs"][100] == 49).all()
    assert np.isfinite(got["coef"][100]).all()
    ref = direct_rolling_ols(y, x, window=50, min_periods=40)
    assert_results_match(got, ref, keys=("coef", "r2", "resid_vol"))


# --------------------------------------------------------------------------------------------
# long series: sliding updates must not drift
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_series():
    t_len = 20_000
    y, x = make_factor_data(t_len, 4, 3, seed=11)
    y[5_000:6_000] *= 10.0  # a high-volatility regime
    x[5_000:6_000] *= 10.0
    y[12_000:12_500] += 0.02  # a level shift
    y[7_000, 1] = 5.0  # a bad tick (+500%)
    rng = np.random.default_rng(12)
    y[rng.random(y.shape) < 0.01] = np.nan
    x[rng.random(t_len) < 0.005, 2] = np.nan
    rows = np.r_[np.arange(251, t_len, 97), np.arange(t_len - 5, t_len)]
    return y, x, rows


def test_long_series_20000_rows_matches_direct_solve_at_sampled_dates(long_series):
    y, x, rows = long_series
    got = fc.rolling_ols(y, x, window=252, min_periods=200, tstats=True)
    ref = direct_rolling_ols(y, x, window=252, min_periods=200, rows=rows)
    assert_results_match(got, ref, rows=rows, label="long ")
    # all windows have >= 200 valid rows here: results everywhere after the warm-up
    assert np.isfinite(got["coef"][251:]).all()


def test_long_series_with_halflife_matches_direct_solve(long_series):
    y, x, rows = long_series
    got = fc.rolling_ols(y, x, window=252, min_periods=200, halflife=63.0, tstats=True)
    ref = direct_rolling_ols(y, x, window=252, min_periods=200, halflife=63.0, rows=rows)
    assert_results_match(got, ref, rows=rows, label="long halflife ")


def test_long_series_expanding_matches_direct_solve(long_series):
    y, x, rows = long_series
    rows = rows[::4]
    got = fc.rolling_ols(y, x, window=None, tstats=True)
    ref = direct_rolling_ols(y, x, window=None, rows=rows)
    assert_results_match(got, ref, rows=rows, label="long expanding ")


# --------------------------------------------------------------------------------------------
# large common mean (the core shifts data internally; results must be as if not shifted)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shift_y", "shift_x"), [(1.0, 0.0), (100.0, 0.0), (1.0, 1.0), (100.0, 100.0)]
)
def test_large_common_mean_is_handled_accurately(shift_y, shift_x):
    y, x = make_factor_data(600, 6, 3, seed=21)
    y[np.random.default_rng(22).random(y.shape) < 0.03] = np.nan
    kw = {"window": 252, "min_periods": 200}
    base = direct_rolling_ols(y, x, **kw)
    ys = y + shift_y
    xs = x.copy()
    xs[:, 0] += shift_x

    got = fc.rolling_ols(ys, xs, tstats=True, **kw)
    direct = direct_rolling_ols(ys, xs, **kw)
    assert_results_match(got, direct, label="direct(shifted) ")

    # Analytic expectation from the unshifted problem: y + a = alpha' + b0 (f0 + c) + ...
    # leaves the betas, their t-stats, r2 and resid_vol unchanged and moves alpha by
    # a - c * b0.  Alpha is of order `shift`, so it is compared relative to that scale.
    assert_close(got["coef"][..., 1:], base["coef"][..., 1:], "betas vs unshifted")
    assert_close(got["tstat"][..., 1:], base["tstat"][..., 1:], "beta t-stats vs unshifted")
    assert_close(got["r2"], base["r2"], "r2 vs unshifted")
    assert_close(got["resid_vol"], base["resid_vol"], "resid_vol vs unshifted")
    alpha_expected = base["coef"][..., 0] + shift_y - shift_x * base["coef"][..., 1]
    assert_close(got["coef"][..., 0], alpha_expected, "alpha", atol=1e-10 * max(shift_y, 1.0))


def test_large_mean_statsmodels_agreement_on_betas():
    """statsmodels (with recomputed cross-products) agrees on the shifted problem as well."""
    y, x = make_factor_data(400, 5, 3, seed=23)
    got = fc.rolling_ols(y + 1.0, x, window=200, tstats=True)
    sm = statsmodels_rolling_ols(y + 1.0, x, window=200, reset=1)
    assert_matches_statsmodels(got, sm)


# --------------------------------------------------------------------------------------------
# exponential decay weights
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("window", "min_periods"), [(252, None), (252, 126), (None, None), (None, 30)]
)
def test_halflife_matches_weighted_direct_solve_and_statsmodels_wls(gappy, window, min_periods):
    y, x = gappy
    y, x = y[:, :10], x  # fewer assets to keep statsmodels quick
    kw = {"window": window, "min_periods": min_periods, "halflife": 63.0}
    check_against_references(y, x, **kw)


def test_halflife_clean_data_rolling_252():
    y, x = make_factor_data(600, 10, 4, seed=31)
    check_against_references(y, x, window=252, halflife=63.0)


def test_halflife_short_halflife():
    y, x = make_factor_data(300, 5, 2, seed=32)
    check_against_references(y, x, window=60, halflife=5.0)


def test_halflife_weights_count_missing_rows_and_are_relative_to_output_row():
    """Hand-built WLS: weights by positional distance from the output row, including rows that
    are missing (and the output row itself being missing)."""
    y, x = make_factor_data(60, 1, 2, seed=33)
    y = y[:, 0]
    y[[40, 41, 44]] = np.nan  # the output row t=44 itself is missing
    got = fc.rolling_ols(y, x, window=20, min_periods=10, halflife=4.0, tstats=True)
    t = 44
    rows = np.arange(t - 19, t + 1)
    keep = ~np.isnan(y[rows])
    r = rows[keep]
    w = 0.5 ** ((t - r) / 4.0)
    design = np.column_stack([np.ones(r.size), x[r]])
    sw = np.sqrt(w)
    coef = np.linalg.lstsq(design * sw[:, None], y[r] * sw, rcond=None)[0]
    e = y[r] - design @ coef
    dof = r.size - 3
    s2 = np.sum(w * e * e) / dof
    ybar = np.sum(w * y[r]) / np.sum(w)
    r2 = 1 - np.sum(w * e * e) / np.sum(w * (y[r] - ybar) ** 2)
    cov = s2 * np.linalg.inv(design.T @ (design * w[:, None]))
    assert got["n_obs"][t] == 17
    assert_close(got["coef"][t], coef, "coef")
    assert_close(got["resid_vol"][t], np.sqrt(s2), "resid_vol")
    assert_close(got["r2"][t], r2, "r2")
    assert_close(got["tstat"][t], coef / np.sqrt(np.diag(cov)), "tstat")


# --------------------------------------------------------------------------------------------
# window / min_periods variants
# --------------------------------------------------------------------------------------------
def test_expanding_window_default_min_periods_is_p_plus_one():
    y, x = make_factor_data(300, 6, 3, seed=41)
    got, _ = check_against_references(y, x, window=None)
    p = 4
    assert np.isnan(got["coef"][:p]).all()  # rows 0..P-1 hold at most P rows
    assert np.isfinite(got["coef"][p:]).all()  # row P holds P + 1 rows
    np.testing.assert_array_equal(got["n_obs"][:, 0], np.arange(1, 301))


def test_expanding_window_custom_min_periods():
    y, x = make_factor_data(300, 6, 3, seed=42)
    got, _ = check_against_references(y, x, window=None, min_periods=50)
    assert np.isnan(got["coef"][:49]).all()
    assert np.isfinite(got["coef"][49:]).all()


def test_rolling_min_periods_below_window_uses_partial_windows():
    y, x = make_factor_data(400, 6, 3, seed=43)
    got, _ = check_against_references(y, x, window=100, min_periods=20)
    assert np.isnan(got["coef"][:19]).all()
    assert np.isfinite(got["coef"][19:]).all()
    np.testing.assert_array_equal(got["n_obs"][:, 0], np.minimum(np.arange(1, 401), 100))


def test_min_periods_equal_to_p_gives_no_dof_nan_stats():
    y, x = make_factor_data(200, 4, 2, seed=44)
    got = fc.rolling_ols(y, x, window=50, min_periods=3, tstats=True)
    ref = direct_rolling_ols(y, x, window=50, min_periods=3)
    # row 2 has exactly P=3 rows: coefficients exist, resid_vol / t-stats do not
    assert np.isfinite(got["coef"][2]).all()
    assert np.isnan(got["resid_vol"][2]).all()
    assert np.isnan(got["tstat"][2]).all()
    np.testing.assert_array_equal(got["n_obs"][2], 3)
    # compare where the tiny windows are well conditioned
    good = ref["cond"] < 1e3
    assert good[10:].all()
    for key in STAT_KEYS:
        assert_close(got[key][good], ref[key][good], key)


def test_window_equal_to_number_of_rows():
    y, x = make_factor_data(150, 5, 3, seed=45)
    got, _ = check_against_references(y, x, window=150)
    assert np.isfinite(got["coef"][-1]).all()
    assert np.isnan(got["coef"][:-1]).all()


def test_no_intercept_uses_uncentred_r2():
    y, x = make_factor_data(500, 8, 3, seed=46)
    got, _ = check_against_references(y, x, window=120, intercept=False)
    assert got["coef"].shape == (500, 8, 3)
    # uncentred r2 by hand at one window
    t, j = 300, 2
    rows = np.arange(t - 119, t + 1)
    b = np.linalg.lstsq(x[rows], y[rows, j], rcond=None)[0]
    e = y[rows, j] - x[rows] @ b
    assert_close(got["r2"][t, j], 1 - e @ e / (y[rows, j] @ y[rows, j]), "uncentred r2")


def test_no_intercept_with_gaps_and_halflife(gappy):
    y, x = gappy
    check_against_references(
        y[:, :6], x, window=150, min_periods=80, intercept=False, halflife=40.0
    )


# --------------------------------------------------------------------------------------------
# shapes: 1-D y, K=1, stats=False, tstats flag
# --------------------------------------------------------------------------------------------
def test_single_asset_1d_y_shapes_and_values(stretches):
    y, x = stretches
    y1 = np.ascontiguousarray(y[:, 2])
    got = fc.rolling_ols(y1, x, window=100, min_periods=50, tstats=True)
    assert got["coef"].shape == (600, 4)
    assert got["tstat"].shape == (600, 4)
    assert got["r2"].shape == got["resid_vol"].shape == got["n_obs"].shape == (600,)
    ref = direct_rolling_ols(y1, x, window=100, min_periods=50)
    assert_results_match(got, ref)
    sm = statsmodels_rolling_ols(y1, x, window=100, min_periods=50)
    assert_matches_statsmodels(got, sm)
    full = fc.rolling_ols(y, x, window=100, min_periods=50, tstats=True)
    for key in (*STAT_KEYS, "n_obs"):
        assert_close(got[key], full[key][:, 2], f"1-D vs column of 2-D: {key}")


@pytest.mark.parametrize("x_1d", [True, False])
def test_single_factor(x_1d):
    y, x = make_factor_data(400, 5, 1, seed=51)
    xin = x[:, 0] if x_1d else x
    got, _ = check_against_references(y, xin, window=90, min_periods=60)
    assert got["coef"].shape == (400, 5, 2)


def test_single_factor_1d_x_equals_2d_x():
    y, x = make_factor_data(200, 3, 1, seed=52)
    a = fc.rolling_ols(y, x[:, 0], window=60, tstats=True)
    b = fc.rolling_ols(y, x, window=60, tstats=True)
    for key in (*STAT_KEYS, "n_obs"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_stats_false_gives_same_coef_and_omits_r2_and_resid_vol(gappy, gappy_direct_120_60):
    y, x = gappy
    full = fc.rolling_ols(y, x, window=120, min_periods=60)
    lean = fc.rolling_ols(y, x, window=120, min_periods=60, stats=False)
    assert "r2" not in lean
    assert "resid_vol" not in lean
    assert "tstat" not in lean
    assert_close(lean["coef"], full["coef"], "coef stats=False vs stats=True")
    np.testing.assert_array_equal(lean["n_obs"], full["n_obs"])
    assert_close(lean["coef"], gappy_direct_120_60["coef"], "coef stats=False vs direct")


def test_tstats_flag_controls_tstat_key():
    y, x = make_factor_data(100, 2, 2, seed=53)
    assert "tstat" not in fc.rolling_ols(y, x, window=50)
    assert "tstat" not in fc.rolling_ols(y, x, window=50, tstats=False)
    with_t = fc.rolling_ols(y, x, window=50, tstats=True)
    assert with_t["tstat"].shape == with_t["coef"].shape


def test_fortran_ordered_and_strided_inputs_give_same_result():
    y, x = make_factor_data(200, 6, 3, seed=54)
    base = fc.rolling_ols(y, x, window=60, tstats=True)
    other = fc.rolling_ols(np.asfortranarray(y), np.asfortranarray(x), window=60, tstats=True)
    big_y = np.zeros((200, 12))
    big_y[:, ::2] = y
    strided = fc.rolling_ols(big_y[:, ::2], x, window=60, tstats=True)
    for key in (*STAT_KEYS, "n_obs"):
        np.testing.assert_array_equal(other[key], base[key], err_msg=key)
        np.testing.assert_array_equal(strided[key], base[key], err_msg=key)


def test_inputs_are_not_modified():
    y, x = make_factor_data(200, 4, 2, seed=55)
    y[10, 1] = np.nan
    y0, x0 = y.copy(), x.copy()
    fc.rolling_ols(y + 100.0, x, window=60)  # large mean (internal shifting)
    fc.rolling_ols(y, x, window=60, halflife=10.0, tstats=True)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(x, x0)


# --------------------------------------------------------------------------------------------
# degenerate windows: collinearity, constant y
# --------------------------------------------------------------------------------------------
def _assert_nan_where_collinear(got, collinear_mask, n_expected):
    for key in STAT_KEYS:
        val = got[key]
        mask = collinear_mask if val.ndim == collinear_mask.ndim else collinear_mask[..., None]
        assert np.isnan(np.where(mask, val, np.nan)).all(), f"{key} not NaN in collinear windows"
    np.testing.assert_array_equal(got["n_obs"], n_expected)


def test_duplicated_factor_column_gives_nan():
    y, x = make_factor_data(200, 4, 2, seed=61)
    x_dup = np.column_stack([x, x[:, 1]])
    got = fc.rolling_ols(y, x_dup, window=60, tstats=True)
    ref = direct_rolling_ols(y, x_dup, window=60)
    assert ref["collinear"][59:].all()
    for key in STAT_KEYS:
        assert np.isnan(got[key]).all(), key
    np.testing.assert_array_equal(got["n_obs"], ref["n_obs"])


def test_constant_factor_with_intercept_gives_nan():
    y, x = make_factor_data(200, 4, 2, seed=62)
    x_const = np.column_stack([x, np.full(200, 0.37)])
    got = fc.rolling_ols(y, x_const, window=60, tstats=True)
    for key in STAT_KEYS:
        assert np.isnan(got[key]).all(), key
    np.testing.assert_array_equal(got["n_obs"][59:], 60)


def test_constant_factor_without_intercept_is_fine():
    y, x = make_factor_data(200, 4, 2, seed=63)
    x_const = np.column_stack([np.full(200, 0.37), x])
    got = fc.rolling_ols(y, x_const, window=60, intercept=False, tstats=True)
    ref = direct_rolling_ols(y, x_const, window=60, intercept=False)
    assert_results_match(got, ref)
    assert np.isfinite(got["coef"][59:]).all()


def test_near_duplicate_factor_below_collinearity_threshold_gives_nan():
    """A factor equal to another plus 1e-9 noise: residual variance ratio ~1e-14 < 1e-10."""
    y, x = make_factor_data(200, 4, 2, seed=64)
    rng = np.random.default_rng(65)
    x_near = np.column_stack([x, x[:, 0] + 1e-9 * rng.standard_normal(200)])
    got = fc.rolling_ols(y, x_near, window=60, tstats=True)
    ref = direct_rolling_ols(y, x_near, window=60)
    assert ref["collinear"][59:].all()
    for key in STAT_KEYS:
        assert np.isnan(got[key]).all(), key


def test_correlated_but_not_collinear_factor_is_solved():
    """Correlation 0.99995 (residual variance ratio ~1e-4): well above the threshold."""
    y, x = make_factor_data(300, 4, 2, seed=66)
    rng = np.random.default_rng(67)
    x_corr = np.column_stack([x, x[:, 0] + 1e-4 * rng.standard_normal(300)])
    got, ref = check_against_references(y, x_corr, window=100, statsmodels=False)
    assert not ref["collinear"][99:].any()
    assert np.isfinite(got["coef"][99:]).all()


@pytest.mark.parametrize("intercept", [True, False])
def test_factor_zero_for_a_stretch_gives_nan_only_in_affected_windows(intercept):
    y, x = make_factor_data(500, 5, 3, seed=68)
    x[200:330, 1] = 0.0  # zero for 130 rows > window
    window = 80
    got = fc.rolling_ols(y, x, window=window, intercept=intercept, tstats=True)
    ref = direct_rolling_ols(y, x, window=window, intercept=intercept)
    t = np.arange(500)
    affected = (t - window + 1 >= 200) & (t <= 329)
    np.testing.assert_array_equal(ref["collinear"][:, 0], affected)  # reference sanity
    _assert_nan_where_collinear(got, np.broadcast_to(affected[:, None], (500, 5)), ref["n_obs"])
    assert np.isfinite(got["coef"][(t >= window - 1) & ~affected]).all()
    assert_results_match(got, ref)  # identical NaN pattern and values elsewhere


def test_collinear_only_in_some_windows():
    """Factor 2 is a copy of factor 0 except on rows 100-159 and 250-309."""
    y, x = make_factor_data(400, 3, 3, seed=69)
    x[:, 2] = x[:, 0]
    rng = np.random.default_rng(690)
    x[100:160, 2] = 0.01 * rng.standard_normal(60)
    x[250:310, 2] = 0.01 * rng.standard_normal(60)
    got = fc.rolling_ols(y, x, window=60, tstats=True)
    ref = direct_rolling_ols(y, x, window=60)
    t = np.arange(400)
    sees_diff = ((t >= 100) & (t - 59 <= 159)) | ((t >= 250) & (t - 59 <= 309))
    exp_collinear = (t >= 59) & ~sees_diff
    np.testing.assert_array_equal(ref["collinear"][:, 0], exp_collinear)  # reference sanity
    assert np.isnan(got["coef"][exp_collinear]).all()
    assert np.isnan(got["r2"][exp_collinear]).all()
    assert np.isfinite(got["coef"][sees_diff]).all()
    np.testing.assert_array_equal(got["n_obs"][59:], 60)
    # Windows that hold only one or two of the differing rows are ill-conditioned (cond up
    # to ~1e4): two correct solvers legitimately differ there by more than 1e-10, so values
    # are compared where the weighted design's condition number is below 1e3 (about 75% of
    # the non-collinear windows here).
    good = ref["cond"][:, 0] < 1e3
    assert good[sees_diff].mean() > 0.7
    for key in STAT_KEYS:
        assert_close(got[key][good], ref[key][good], key)


def test_constant_zero_returns_give_nan_r2_and_zero_coefficients():
    """A suspended stock (returns exactly 0 for longer than the window)."""
    y, x = make_factor_data(300, 3, 2, seed=70)
    y[100:200, 1] = 0.0
    got = fc.rolling_ols(y, x, window=50, tstats=True)
    t = np.arange(300)
    flat = (t - 49 >= 100) & (t <= 199)
    assert np.isnan(got["r2"][flat, 1]).all()
    np.testing.assert_allclose(got["coef"][flat, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(got["resid_vol"][flat, 1], 0.0, atol=1e-12)
    assert not np.isinf(got["tstat"]).any()
    ref = direct_rolling_ols(y, x, window=50)
    assert_results_match(got, ref, keys=("coef", "r2", "resid_vol"))
    other = ~flat
    assert_close(got["tstat"][other], ref["tstat"][other], "tstat outside the flat stretch")


# --------------------------------------------------------------------------------------------
# real market data shipped with skfolio
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sp500_and_factor_returns():
    datasets = pytest.importorskip(
        "skfolio.datasets", reason="skfolio is not installed (pip install skfolio)"
    )
    prices = datasets.load_sp500_dataset()
    factor_prices = datasets.load_factors_dataset()
    rets = prices.pct_change().iloc[1:]
    frets = factor_prices.pct_change().iloc[1:]
    joined = rets.join(frets, how="inner")
    assert len(joined) > 2000, "expected ~2260 common dates 2014-2022"
    y = joined[rets.columns].to_numpy(dtype=np.float64)
    x = joined[frets.columns].to_numpy(dtype=np.float64)
    assert np.isfinite(y).all()
    assert np.isfinite(x).all()
    return y, x


def test_sp500_vs_factor_etfs_rolling_252(sp500_and_factor_returns):
    y, x = sp500_and_factor_returns
    got, _ = check_against_references(y, x, window=252)
    assert got["coef"].shape == (y.shape[0], 20, 6)
    assert np.isfinite(got["coef"][251:]).all()


def test_sp500_vs_factor_etfs_halflife_and_partial_windows(sp500_and_factor_returns):
    y, x = sp500_and_factor_returns
    y = y.copy()
    y[300:700, 4] = np.nan  # a long gap in one stock
    check_against_references(y[:, :10], x, window=252, min_periods=126, halflife=126.0)


def test_sp500_vs_factor_etfs_large_price_like_mean(sp500_and_factor_returns):
    """Gross returns and gross factor returns (1 + r): same betas, r2 and resid_vol."""
    y, x = sp500_and_factor_returns
    rows = np.r_[np.arange(251, y.shape[0], 13), y.shape[0] - 1]
    got = fc.rolling_ols(1.0 + y, 1.0 + x, window=252, tstats=True)
    ref = direct_rolling_ols(1.0 + y, 1.0 + x, window=252, rows=rows)
    assert_results_match(got, ref, rows=rows)
    net = direct_rolling_ols(y, x, window=252, rows=rows)
    for key in ("r2", "resid_vol"):
        assert_close(got[key][rows], net[key], f"{key} gross vs net")
    assert_close(got["coef"][rows][..., 1:], net["coef"][..., 1:], "betas gross vs net")
