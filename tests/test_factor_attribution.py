"""Factor attribution: `factorcore.factor_attribution`, and linking its rows with `link`.

Compared with a direct NumPy computation of the definition on random data (200 assets,
300 dates, 3 factors): for the return of date t each asset's exposures are those of its
latest exposure date strictly before t, the contribution of factor k is
f_k,t * sum_i a_i,t beta_i,k, the specific part is the rest.
"""

from __future__ import annotations

import re

import factorcore as fc
import numpy as np
import polars as pl
import pytest
from attribution_reference import (
    ARITHMETIC_LINKS,
    compound,
    factor_attribution_ref,
    lagged_exposures,
)
from factorcore import DtypeError, InvalidInputError, NonFiniteError
from helpers import assert_close, make_dates, wide_frame, wide_to_long

RTOL = 1e-12
ATOL = 1e-15
FACTORS = ["MKT", "SMB", "HML"]
N_DATES = 300
N_ASSETS = 200


def has_all(*parts: str) -> str:
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


def output_columns(factors=FACTORS) -> list[str]:
    return ["date", "rp", "rb", *factors, "specific", "total", "unexposed_weight"]


# --------------------------------------------------------------------------------------------
# random problem
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def problem():
    """Dense arrays and the frames built from them.

    Exposures: every asset's rows start at a random date (ten assets never get any) and
    have random gaps, so "latest exposure date strictly before t" often reaches back more
    than one date. Weights: every other date, a random subset of assets held on each side,
    plus explicit zero-weight rows whose return is missing.
    """
    rng = np.random.default_rng(4242)
    k = len(FACTORS)
    dates = make_dates(N_DATES)
    assets = [f"T{i:03d}" for i in range(N_ASSETS)]
    fret = 0.01 * rng.standard_normal((N_DATES, k))
    rets = 0.02 * rng.standard_normal((N_DATES, N_ASSETS))
    betas = 0.4 * rng.standard_normal((N_DATES, N_ASSETS, k)) + np.array([1.0, 0.0, 0.0])
    start = rng.integers(0, N_DATES // 2, N_ASSETS)
    start[:10] = N_DATES  # never exposed
    valid = (np.arange(N_DATES)[:, None] >= start[None, :]) & (
        rng.random((N_DATES, N_ASSETS)) > 0.1
    )

    w_idx = np.arange(5, N_DATES, 2)
    n_w = w_idx.size
    held_p = rng.random((n_w, N_ASSETS)) < 0.3
    held_b = rng.random((n_w, N_ASSETS)) < 0.4
    wp = np.where(held_p, rng.gamma(1.0, size=held_p.shape), 0.0)
    wb = np.where(held_b, rng.gamma(1.0, size=held_b.shape), 0.0)
    wp /= wp.sum(axis=1, keepdims=True)
    wb /= wb.sum(axis=1, keepdims=True)
    listed = held_p | held_b | (rng.random((n_w, N_ASSETS)) < 0.05)
    # returns of assets held on neither side are missing (not needed)
    w_rets = rets[w_idx].copy()
    w_rets[~(held_p | held_b)] = np.nan
    rets = rets.copy()
    rets[w_idx] = w_rets

    exp_rows = np.argwhere(valid)  # (date, asset) pairs, date-major
    asset_enum = pl.Enum(assets)
    exposures = pl.DataFrame(
        [
            dates.gather(exp_rows[:, 0]),
            pl.Series("asset", [assets[j] for j in exp_rows[:, 1]], dtype=asset_enum),
            pl.Series("alpha", 1e-4 * rng.standard_normal(len(exp_rows))),
            *(
                pl.Series(f, betas[exp_rows[:, 0], exp_rows[:, 1], i])
                for i, f in enumerate(FACTORS)
            ),
            pl.Series("r2", rng.random(len(exp_rows))),
            pl.Series("resid_vol", 0.01 + 0.01 * rng.random(len(exp_rows))),
            pl.Series("n_obs", np.full(len(exp_rows), 60, dtype=np.uint32)),
        ]
    )
    w_rows = np.argwhere(listed)
    weights = pl.DataFrame(
        [
            dates.gather(w_idx[w_rows[:, 0]]),
            pl.Series("asset", [assets[j] for j in w_rows[:, 1]]),
            pl.Series("wp", wp[w_rows[:, 0], w_rows[:, 1]]),
            pl.Series("wb", wb[w_rows[:, 0], w_rows[:, 1]]),
        ]
    )
    factor_returns = wide_frame(dates, fret, FACTORS)
    returns = wide_frame(dates, rets, assets)

    exp_dates = dates.to_numpy()
    target = exp_dates[w_idx]
    lagged, has = lagged_exposures(exp_dates, betas, valid, target)
    return {
        "dates": dates,
        "w_idx": w_idx,
        "wp": wp,
        "wb": wb,
        "rets": rets[w_idx],
        "fret": fret[w_idx],
        "lagged": lagged,
        "has": has,
        "weights": weights,
        "exposures": exposures,
        "factor_returns": factor_returns,
        "returns": returns,
    }


def assert_matches_reference(out: pl.DataFrame, p: dict, ref: dict, *, unexposed=True) -> None:
    assert out.columns == output_columns()
    assert out["date"].to_list() == p["dates"].gather(p["w_idx"]).to_list()
    for name in ("rp", "rb", "specific", "total"):
        assert_close(out[name].to_numpy(), ref[name], name, rtol=RTOL, atol=ATOL)
    for i, f in enumerate(FACTORS):
        assert_close(out[f].to_numpy(), ref["contrib"][:, i], f, rtol=RTOL, atol=ATOL)
    if unexposed:
        assert_close(
            out["unexposed_weight"].to_numpy(), ref["unexposed_weight"], "unexposed", rtol=RTOL
        )


def test_exposure_lags_are_exercised(problem):
    """The data really has assets without exposures and lags of more than one date."""
    assert (~problem["has"] & (problem["wp"] != 0)).any()
    assert problem["has"].any()


def test_active_weights_match_reference(problem):
    p = problem
    out = fc.factor_attribution(p["weights"], p["exposures"], p["factor_returns"], p["returns"])
    ref = factor_attribution_ref(p["wp"], p["wb"], p["rets"], p["fret"], p["lagged"], p["has"])
    # unexposed_weight with a benchmark: the doc says "summed weight"; checked without one
    assert_matches_reference(out, p, ref, unexposed=False)


def test_portfolio_weights_only_match_reference(problem):
    p = problem
    weights = p["weights"].drop("wb")
    out = fc.factor_attribution(weights, p["exposures"], p["factor_returns"], p["returns"])
    ref = factor_attribution_ref(p["wp"], None, p["rets"], p["fret"], p["lagged"], p["has"])
    assert (out["rb"] == 0.0).all()
    assert_matches_reference(out, p, ref)
    assert (out["unexposed_weight"] > 0).any()


def test_long_returns_and_lazyframes(problem):
    p = problem
    long = wide_to_long(p["returns"], drop_missing=True).rename({"return": "ret"})
    out = fc.factor_attribution(
        p["weights"].lazy(),
        p["exposures"].lazy(),
        p["factor_returns"].lazy(),
        long.lazy(),
        value="ret",
    )
    ref = factor_attribution_ref(p["wp"], p["wb"], p["rets"], p["fret"], p["lagged"], p["has"])
    assert_matches_reference(out, p, ref, unexposed=False)


def test_custom_column_names(problem):
    p = problem
    ren = {"date": "day", "asset": "ticker"}
    out = fc.factor_attribution(
        p["weights"].rename({**ren, "wp": "w", "wb": "w_bench"}),
        p["exposures"].rename(ren),
        p["factor_returns"].rename({"date": "day"}),
        p["returns"].rename({"date": "day"}),
        date="day",
        asset="ticker",
        wp="w",
        wb="w_bench",
    )
    base = fc.factor_attribution(p["weights"], p["exposures"], p["factor_returns"], p["returns"])
    for name in ("rp", "rb", *FACTORS, "specific", "total"):
        assert out[name].to_list() == base[name].to_list(), name


def test_rows_in_any_order(problem):
    p = problem
    out = fc.factor_attribution(
        p["weights"].sample(fraction=1.0, shuffle=True, seed=1),
        p["exposures"].sample(fraction=1.0, shuffle=True, seed=2),
        p["factor_returns"],
        p["returns"],
    )
    ref = factor_attribution_ref(p["wp"], p["wb"], p["rets"], p["fret"], p["lagged"], p["has"])
    assert_matches_reference(out, p, ref, unexposed=False)


def test_contributions_plus_specific_equal_total(problem):
    p = problem
    out = fc.factor_attribution(p["weights"], p["exposures"], p["factor_returns"], p["returns"])
    parts = out.select(pl.sum_horizontal(*FACTORS, "specific")).to_series().to_numpy()
    assert_close(parts, out["total"].to_numpy(), "sum", rtol=0, atol=1e-16)
    assert_close(
        out["total"].to_numpy(), (out["rp"] - out["rb"]).to_numpy(), "rp - rb", rtol=0, atol=0
    )


def test_no_look_ahead(problem):
    """Exposures dated on the return date itself (or later) never enter that date's result."""
    p = problem
    day = p["dates"][int(p["w_idx"][40])]
    later = pl.col("date") >= day
    spoiled = p["exposures"].with_columns(
        *(pl.when(later).then(pl.col(f) + 10.0).otherwise(pl.col(f)).alias(f) for f in FACTORS)
    )
    base = fc.factor_attribution(p["weights"], p["exposures"], p["factor_returns"], p["returns"])
    got = fc.factor_attribution(p["weights"], spoiled, p["factor_returns"], p["returns"])
    upto = pl.col("date") <= day
    assert got.filter(upto).equals(base.filter(upto))
    # and the next weights date does see the change
    after = got.filter(pl.col("date") > day)["MKT"] - base.filter(pl.col("date") > day)["MKT"]
    assert (after.abs() > 0).any()


def test_with_rolling_exposures_output():
    """End to end on exposures estimated by factorcore itself (Enum assets, extra columns)."""
    rng = np.random.default_rng(99)
    n_dates, n_assets = 260, 25
    dates = make_dates(n_dates)
    fret = 0.01 * rng.standard_normal((n_dates, 2))
    beta_true = rng.normal(1.0, 0.3, (n_assets, 2))
    rets = fret @ beta_true.T + 0.01 * rng.standard_normal((n_dates, n_assets))
    assets = [f"X{i:02d}" for i in range(n_assets)]
    returns = wide_frame(dates, rets, assets)
    factor_returns = wide_frame(dates, fret, ["MKT", "SMB"])
    exposures = fc.rolling_exposures(returns, factor_returns, window=60)
    w_idx = np.arange(100, n_dates, 5)
    wp = rng.dirichlet(np.ones(n_assets), size=w_idx.size)
    weights = pl.DataFrame(
        {
            "date": dates.gather(np.repeat(w_idx, n_assets)),
            "asset": assets * w_idx.size,
            "wp": wp.ravel(),
        }
    )
    out = fc.factor_attribution(weights, exposures, factor_returns, returns)
    # reference: betas of the row before each weights date, read from the exposures frame
    exp_dates = exposures["date"].unique().sort()
    exp_betas = np.full((exp_dates.len(), n_assets, 2), np.nan)
    valid = np.zeros((exp_dates.len(), n_assets), dtype=bool)
    pos = {d: i for i, d in enumerate(exp_dates.to_list())}
    for row in exposures.iter_rows(named=True):
        i, j = pos[row["date"]], assets.index(row["asset"])
        exp_betas[i, j] = (row["MKT"], row["SMB"])
        valid[i, j] = True
    lagged, has = lagged_exposures(exp_dates.to_numpy(), exp_betas, valid, dates.to_numpy()[w_idx])
    ref = factor_attribution_ref(wp, None, rets[w_idx], fret[w_idx], lagged, has)
    assert out.columns == [
        "date",
        "rp",
        "rb",
        "MKT",
        "SMB",
        "specific",
        "total",
        "unexposed_weight",
    ]
    for i, f in enumerate(["MKT", "SMB"]):
        assert_close(out[f].to_numpy(), ref["contrib"][:, i], f, rtol=RTOL, atol=ATOL)
    assert_close(out["specific"].to_numpy(), ref["specific"], "specific", rtol=RTOL, atol=ATOL)
    assert (out["unexposed_weight"] == 0.0).all()


# --------------------------------------------------------------------------------------------
# linking the rows
# --------------------------------------------------------------------------------------------
# (not named `benchmark`: that is pytest-benchmark's fixture, installed alongside)
@pytest.mark.parametrize("active", [True, False], ids=["active", "absolute"])
@pytest.mark.parametrize("method", list(ARITHMETIC_LINKS))
def test_link_factor_rows(problem, method, active):
    p = problem
    weights = p["weights"] if active else p["weights"].drop("wb")
    out = fc.factor_attribution(weights, p["exposures"], p["factor_returns"], p["returns"])
    linked = fc.link(out, method=method)
    assert linked.columns == ["factor", "contribution"]
    assert linked["factor"].to_list() == [*FACTORS, "specific"]
    wb = p["wb"] if active else None
    ref = factor_attribution_ref(p["wp"], wb, p["rets"], p["fret"], p["lagged"], p["has"])
    effects = np.column_stack([ref["contrib"], ref["specific"]])
    exp = ARITHMETIC_LINKS[method](effects, ref["rp"], ref["rb"])
    assert_close(linked["contribution"].to_numpy(), exp, method, rtol=1e-11, atol=ATOL)
    target = compound(ref["rp"]) - compound(ref["rb"])
    assert linked["contribution"].sum() == pytest.approx(target, rel=1e-11)


def test_link_factor_rows_geometrically_is_refused(problem):
    p = problem
    out = fc.factor_attribution(p["weights"], p["exposures"], p["factor_returns"], p["returns"])
    with pytest.raises(InvalidInputError, match=r"(?i)geometric|arithmetic"):
        fc.link(out, method="geometric")


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
def call(p, **changes):
    args = {k: p[k] for k in ("weights", "exposures", "factor_returns", "returns")}
    args.update(changes)
    return fc.factor_attribution(
        args["weights"], args["exposures"], args["factor_returns"], args["returns"]
    )


def weight_row(p, i: int = 500):
    row = p["weights"].row(i, named=True)
    return row["date"], row["asset"]


def set_weight_cell(p, column, value, i: int = 500):
    day, name = weight_row(p, i)
    cond = (pl.col("date") == day) & (pl.col("asset") == name)
    return p["weights"].with_columns(
        pl.when(cond).then(pl.lit(value, dtype=pl.Float64)).otherwise(column).alias(column)
    )


@pytest.mark.parametrize("column", ["date", "asset", "wp"])
def test_weights_missing_column(problem, column):
    with pytest.raises(InvalidInputError, match=column):
        call(problem, weights=problem["weights"].drop(column))


def test_factor_missing_from_exposures(problem):
    with pytest.raises(InvalidInputError, match="SMB"):
        call(problem, exposures=problem["exposures"].drop("SMB"))


@pytest.mark.parametrize("column", ["date", "asset"])
def test_exposures_missing_key_column(problem, column):
    with pytest.raises(InvalidInputError, match=column):
        call(problem, exposures=problem["exposures"].drop(column))


def test_held_asset_without_return_wide(problem):
    p = problem
    held = p["weights"].filter(pl.col("wp") > 0).row(300, named=True)
    day, name = held["date"], held["asset"]
    returns = p["returns"].with_columns(
        pl.when(pl.col("date") == day).then(None).otherwise(pl.col(name)).alias(name)
    )
    with pytest.raises(InvalidInputError, match=has_all(name, day.isoformat())):
        call(p, returns=returns)


def test_held_asset_without_return_long(problem):
    p = problem
    held = p["weights"].filter(pl.col("wb") > 0).row(123, named=True)
    day, name = held["date"], held["asset"]
    long = wide_to_long(p["returns"], drop_missing=True)
    long = long.filter(~((pl.col("date") == day) & (pl.col("asset") == name)))
    with pytest.raises(InvalidInputError, match=has_all(name, day.isoformat())):
        call(p, returns=long)


def test_missing_return_of_zero_weight_row_is_fine(problem):
    """Listed with zero weight on both sides and no return: not held, no error."""
    p = problem
    zero = p["weights"].filter((pl.col("wp") == 0) & (pl.col("wb") == 0))
    assert zero.height > 0
    call(p)  # the fixture has such rows with NaN returns


@pytest.mark.parametrize("value", [None, float("nan")], ids=["null", "nan"])
@pytest.mark.parametrize("column", ["wp", "wb"])
def test_missing_weight(problem, column, value):
    day, _ = weight_row(problem)
    weights = set_weight_cell(problem, column, value)
    with pytest.raises(InvalidInputError, match=has_all(column, day.isoformat())):
        call(problem, weights=weights)


def test_duplicate_date_asset_in_weights(problem):
    p = problem
    day, name = weight_row(p, 77)
    dup = p["weights"].filter((pl.col("date") == day) & (pl.col("asset") == name))
    with pytest.raises(InvalidInputError, match=has_all(day.isoformat(), name)):
        call(p, weights=pl.concat([p["weights"], dup]))


def test_empty_weights(problem):
    with pytest.raises(InvalidInputError):
        call(problem, weights=problem["weights"].clear())


def test_string_weights(problem):
    weights = problem["weights"].with_columns(pl.col("wp").cast(pl.String))
    with pytest.raises(DtypeError, match="wp"):
        call(problem, weights=weights)


def test_not_a_dataframe(problem):
    with pytest.raises(DtypeError):
        call(problem, weights=problem["weights"].to_dict(as_series=False))


def test_duplicate_date_asset_in_exposures(problem):
    """Two exposure rows for one (date, asset): the backward join would pick one of them."""
    p = problem
    row = p["exposures"].row(1234, named=True)
    day, name = row["date"], row["asset"]
    dup = p["exposures"].filter((pl.col("date") == day) & (pl.col("asset") == name))
    dup = dup.with_columns(pl.col("MKT") + 1.0)
    with pytest.raises(InvalidInputError, match=has_all("exposures", day.isoformat(), name)):
        call(p, exposures=pl.concat([p["exposures"], dup]))


def test_infinite_factor_return_is_called_infinite(problem):
    """It was reported as "a factor return is missing"."""
    p = problem
    day = p["dates"][int(p["w_idx"][7])]
    factor_returns = p["factor_returns"].with_columns(
        pl.when(pl.col("date") == day).then(np.inf).otherwise(pl.col("HML")).alias("HML")
    )
    with pytest.raises(NonFiniteError, match=has_all("infinite", "HML", day.isoformat())):
        call(p, factor_returns=factor_returns)


def test_infinite_exposure_names_the_factor_date_and_asset(problem):
    p = problem
    row = p["exposures"].row(999, named=True)
    day, name = row["date"], row["asset"]
    cond = (pl.col("date") == day) & (pl.col("asset") == name)
    exposures = p["exposures"].with_columns(
        pl.when(cond).then(-np.inf).otherwise(pl.col("SMB")).alias("SMB")
    )
    with pytest.raises(NonFiniteError, match=has_all("SMB", day.isoformat(), name)):
        call(p, exposures=exposures)


def test_factor_return_out_of_range_names_the_factor_and_date(problem):
    """Found by the kernel fuzz target: 1e300 values gave infinite contributions."""
    p = problem
    day = p["dates"][int(p["w_idx"][7])]
    factor_returns = p["factor_returns"].with_columns(
        pl.when(pl.col("date") == day).then(1e200).otherwise(pl.col("HML")).alias("HML")
    )
    with pytest.raises(InvalidInputError, match=has_all("too large", "HML", day.isoformat())):
        call(p, factor_returns=factor_returns)


def test_exposures_and_weights_out_of_range_name_the_column(problem):
    p = problem
    exposures = p["exposures"].with_columns(pl.lit(-1e200).alias("SMB"))
    with pytest.raises(InvalidInputError, match=has_all("'SMB'", "too large", "asset")):
        call(p, exposures=exposures)
    weights = p["weights"].with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(1e-200).otherwise(pl.col("wp")).alias("wp")
    )
    day = weights["date"][5]
    with pytest.raises(InvalidInputError, match=has_all("'wp'", "too small", day.isoformat())):
        call(p, weights=weights)


@pytest.mark.parametrize("frame", ["weights", "exposures", "long returns"])
def test_null_asset_label(problem, frame):
    """A null asset joined nothing: its exposure rows were dropped without a word."""
    p = problem
    frames = {
        "weights": p["weights"],
        "exposures": p["exposures"],
        "long returns": wide_to_long(p["returns"]),
    }
    target = frames[frame]
    day = target["date"][17]
    asset = pl.when(pl.int_range(pl.len()) == 17).then(None).otherwise(pl.col("asset"))
    frames[frame] = target.with_columns(asset.alias("asset"))
    returns = frames["long returns"] if frame == "long returns" else p["returns"]
    with pytest.raises(InvalidInputError, match=has_all("asset", "null", day.isoformat())):
        call(p, weights=frames["weights"], exposures=frames["exposures"], returns=returns)
