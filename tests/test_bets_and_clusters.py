"""Factor bets, correlation clusters, sector coherence: `factorcore.factor_bets`,
`factorcore.correlation_clusters` and `factorcore.sector_coherence`.

* factor_bets on exposures from `fc.rolling_exposures` (synthetic factor model with drifting
  betas, a late-listing asset, factor history longer than the asset history) against an
  independent computation (``clusters_reference``): b = sum_i w_i beta_i (and a separate
  vectorised NumPy sum), np.cov of the factor window per date and the ENB formulas of
  ``diversification_reference``; equal / mapping / long-short / snapshot weights; missing
  betas, missing factor returns, longer windows, subsets of dates; unit exposures reduce it
  to `fc.diversification` on the factor returns.
* correlation_clusters against scipy's linkage + fcluster(maxclust) for all four linkages, on
  random data with and without block structure and on skfolio's S&P 500 prices.
* sector_coherence against NumPy intra/inter-sector correlations and sklearn's
  adjusted_rand_score, full sample and rolling, with a late-listing and a constant asset;
  planted sector structure (ARI 1, intra >> inter) and relabelled sector maps.
* Invariance to scaling returns; long input; every documented error.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import warnings

import factorcore as fc
import numpy as np
import polars as pl
import pytest
from clusters_reference import (
    BETS_SCORES,
    COHERENCE_COLUMNS,
    COHERENCE_FLOATS,
    LINKAGES,
    business_days,
    canonical,
    factor_model,
    reference_correlation_clusters,
    reference_factor_bets,
    reference_sector_coherence,
    scipy_clusters,
    sector_returns,
    usable_columns,
)
from diversification_reference import factor_returns
from factorcore import DtypeError, InvalidInputError, NonFiniteError
from helpers import assert_close, wide_to_long
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

RTOL = 1e-10
ATOL = 1e-13
BAD_PARAM = (InvalidInputError, DtypeError)  # a non-int count may be reported as either
FACTORS = ["mkt", "size", "value"]


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_blas():
    """Many tiny eigen-decompositions and correlation matrices: BLAS threads only add overhead."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def has_all(*parts: str) -> str:
    """Regex matching a message that contains every one of ``parts`` (any order)."""
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


def asset_names(n: int, prefix: str = "A") -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(n)]


def frame_of(values, names=None, dates=None, *, dtype=pl.Date) -> pl.DataFrame:
    """Wide frame: ``date`` (weekdays) plus one Float64 column per name (NaN kept as NaN)."""
    v = np.asarray(values, float)
    v = v[:, None] if v.ndim == 1 else v
    names = asset_names(v.shape[1]) if names is None else list(names)
    dates = business_days(v.shape[0]) if dates is None else dates
    cols = [pl.Series("date", dates, dtype=pl.Date).cast(dtype)]
    cols += [pl.Series(a, v[:, j], dtype=pl.Float64) for j, a in enumerate(names)]
    return pl.DataFrame(cols)


def snapshot_frame(rows) -> pl.DataFrame:
    """Long weight snapshots from (date, asset, weight) tuples."""
    return pl.DataFrame(
        {
            "date": pl.Series([x[0] for x in rows], dtype=pl.Date),
            "asset": pl.Series([x[1] for x in rows], dtype=pl.String),
            "weight": pl.Series([x[2] for x in rows], dtype=pl.Float64),
        }
    )


# --------------------------------------------------------------------------------------------
# comparison helpers
# --------------------------------------------------------------------------------------------
def run_bets(exposures, factor_frame, weights=None, **kwargs) -> pl.DataFrame:
    """fc.factor_bets, with any ConvergenceWarning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", fc.ConvergenceWarning)
        return fc.factor_bets(exposures, factor_frame, weights, **kwargs)


def bets_value_columns(factors) -> list[str]:
    return [*(f"b_{f}" for f in factors), "excluded_weight", *BETS_SCORES]


def assert_bets_layout(got: pl.DataFrame, factors, date_dtype=pl.Date, label="") -> None:
    """date first, then b_<factor> in factor order; factor_vol, the three scores and
    excluded_weight present (the contract lists them without fixing their order); Float64."""
    b_cols = [f"b_{f}" for f in factors]
    missing = [c for c in bets_value_columns(factors) if c not in got.columns]
    assert not missing, f"{label}missing columns {missing} in {got.columns}"
    head = got.columns[: 1 + len(b_cols)]
    assert head == ["date", *b_cols], f"{label}columns should start {['date', *b_cols]}: {head}"
    assert got.schema["date"] == date_dtype, f"{label}date dtype {got.schema['date']}"
    dates = got["date"].to_list()
    assert dates == sorted(set(dates)), f"{label}dates not sorted / unique"
    for name in bets_value_columns(factors):
        assert got.schema[name] == pl.Float64, f"{label}{name} dtype {got.schema[name]}"


def assert_bets_frames(got, exp, factors, label="", skip=()) -> None:
    assert_bets_layout(got, factors, exp.schema["date"], label)
    assert got.height == exp.height, f"{label}height {got.height} != {exp.height}"
    assert got["date"].to_list() == exp["date"].to_list(), f"{label}dates differ"
    for name in bets_value_columns(factors):
        if name in skip:
            continue
        assert got[name].null_count() == 0, f"{label}{name}: null instead of NaN"
        assert_close(
            got[name].to_numpy(), exp[name].to_numpy(), f"{label}{name}", rtol=RTOL, atol=ATOL
        )


def assert_clusters(got: pl.DataFrame, exp: pl.DataFrame, label="") -> None:
    """Same assets in order, same partition, and clusters numbered by first appearance."""
    assert got.columns == ["asset", "cluster"], f"{label}columns {got.columns}"
    assert got.schema["asset"] == pl.String, f"{label}asset dtype {got.schema['asset']}"
    assert got.schema["cluster"] == pl.UInt32, f"{label}cluster dtype {got.schema['cluster']}"
    assert got["asset"].to_list() == exp["asset"].to_list(), f"{label}assets differ"
    g, e = got["cluster"].to_list(), exp["cluster"].to_list()
    assert adjusted_rand_score(e, g) == 1.0, f"{label}partition differs: {g} != {e}"
    assert g == e, f"{label}cluster numbering (first appearance) {g} != {e}"


def assert_coherence(got: pl.DataFrame, exp: pl.DataFrame, label="") -> None:
    assert got.columns == list(COHERENCE_COLUMNS), f"{label}columns {got.columns}"
    assert got.schema["date"] == exp.schema["date"], f"{label}date dtype {got.schema['date']}"
    assert got.schema["sector"] == pl.String, f"{label}sector dtype {got.schema['sector']}"
    assert got.schema["n_assets"] == pl.UInt32, f"{label}n_assets dtype {got.schema['n_assets']}"
    assert got.height == exp.height, f"{label}height {got.height} != {exp.height}"
    assert got["date"].to_list() == exp["date"].to_list(), f"{label}dates differ"
    assert got["sector"].to_list() == exp["sector"].to_list(), f"{label}sectors differ"
    assert got["n_assets"].to_list() == exp["n_assets"].to_list(), f"{label}n_assets differ"
    for name in COHERENCE_FLOATS:
        assert got.schema[name] == pl.Float64, f"{label}{name} dtype {got.schema[name]}"
        assert got[name].null_count() == 0, f"{label}{name}: null instead of NaN"
        assert_close(
            got[name].to_numpy(), exp[name].to_numpy(), f"{label}{name}", rtol=RTOL, atol=1e-12
        )


def sectors_frame(sector_of: dict, *, dtype=pl.String) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "asset": pl.Series(list(sector_of), dtype=pl.String),
            "sector": pl.Series(list(sector_of.values()), dtype=pl.String).cast(dtype),
        }
    )


# --------------------------------------------------------------------------------------------
# API surface
# --------------------------------------------------------------------------------------------
def test_public_names():
    assert callable(fc.factor_bets)
    assert callable(fc.correlation_clusters)
    assert callable(fc.sector_coherence)


# ============================================================================================
# factor_bets
# ============================================================================================
N_BET_ASSETS = 10
LATE = "A07"  # lists 60 rows into the return history


def make_bets_data(
    seed=501,
    *,
    n_factor_rows=220,
    offset=40,
    n_assets=N_BET_ASSETS,
    factors=FACTORS,
    window=60,
    dtype=pl.Date,
):
    """(exposures, factor frame, returns frame): factors have `offset` rows of history before
    the asset returns start; A07 lists late; exposures from fc.rolling_exposures."""
    rng = np.random.default_rng(seed)
    f, r = factor_model(rng, n_factor_rows, n_assets, len(factors))
    r = r[offset:]
    if n_assets > 7:
        r[:60, 7] = np.nan
    days = business_days(n_factor_rows)
    factor_frame = frame_of(f, factors, days, dtype=dtype)
    returns = frame_of(r, asset_names(n_assets), days[offset:], dtype=dtype)
    exposures = fc.rolling_exposures(returns, factor_frame, window=window)
    return exposures, factor_frame, returns


@pytest.fixture(scope="module")
def bets():
    return make_bets_data()


WEIGHT_KINDS = ["equal", "long-only", "long-short", "snapshots"]
# long/short on assets listed from the start: no weight is ever excluded
LISTED = {"A01": 0.7, "A03": -0.4, "A09": 1.2, "A05": -0.9}


def bet_weights(kind: str, exposures: pl.DataFrame):
    """Weights of each kind; the snapshots start on or before the first exposure date."""
    rng = np.random.default_rng(WEIGHT_KINDS.index(kind) + 510)
    assets = asset_names(N_BET_ASSETS)
    if kind == "equal":
        return None
    if kind == "long-only":  # not normalised; includes the late asset
        return {a: float(rng.uniform(0.1, 2.0)) for a in assets}
    if kind == "long-short":
        return {**LISTED, LATE: 0.5}
    days = exposures["date"].unique().sort().to_list()
    snap_days = [
        days[0] - dt.timedelta(days=3),  # before the first exposure date
        days[40],  # exactly an exposure date
        days[90] + dt.timedelta(days=1),  # between two dates (or a weekend)
    ]
    snaps = [
        {a: float(rng.uniform(0.5, 1.5)) for a in assets},
        {"A02": 0.6, LATE: 0.4, "A04": -0.3},
        {"A00": 1.0},
    ]
    return snapshot_frame(
        [(d, a, w) for d, snap in zip(snap_days, snaps, strict=True) for a, w in snap.items()]
    )


@pytest.mark.parametrize("kind", WEIGHT_KINDS)
def test_factor_bets_against_reference(bets, kind):
    exposures, factor_frame, _ = bets
    weights = bet_weights(kind, exposures)
    got = run_bets(exposures, factor_frame, weights, window=60)
    exp = reference_factor_bets(exposures, factor_frame, weights, window=60)
    assert_bets_frames(got, exp, FACTORS)
    assert got.height == exposures["date"].n_unique()  # every date has a full factor window
    for name in BETS_SCORES:
        assert got[name].is_finite().all(), name
    assert (got["enb_pca"] <= 3 + 1e-12).all() and (got["enb_mt"] <= 3 + 1e-12).all()
    # the late asset has no exposures in the first 60 windows: its weight is excluded
    late_days = exposures.filter(pl.col("asset") == LATE)["date"]
    early = (got["date"] < late_days.min()).to_numpy()
    assert early.any() and not early.all()
    excluded = got["excluded_weight"].to_numpy()
    if kind == "equal":
        assert (excluded == 0.0).all()
    elif kind in ("long-only", "long-short"):
        assert (excluded[early] > 0).all() and (excluded[~early] == 0.0).all()
        if kind == "long-short":
            assert_close(excluded[early], np.full(early.sum(), 0.5 / 3.7), "excluded", rtol=1e-14)


def direct_b(exposures: pl.DataFrame, factors, weights=None) -> tuple[list, np.ndarray]:
    """Vectorised NumPy b = W x B over a (date, asset, factor) cube (missing = NaN)."""
    dates = exposures["date"].unique().sort().to_list()
    assets = sorted(set(exposures["asset"].cast(pl.String).to_list()))
    di = {d: i for i, d in enumerate(dates)}
    ai = {a: i for i, a in enumerate(assets)}
    cube = np.full((len(dates), len(assets), len(factors)), np.nan)
    t_idx = np.array([di[d] for d in exposures["date"].to_list()])
    a_idx = np.array([ai[a] for a in exposures["asset"].cast(pl.String).to_list()])
    cube[t_idx, a_idx] = exposures.select(factors).to_numpy()
    valid = np.isfinite(cube).all(axis=2)
    if weights is None:
        w = valid / valid.sum(axis=1, keepdims=True)
    else:
        w = np.array([weights.get(a, 0.0) for a in assets])[None, :] * valid
    return dates, np.einsum("tn,tnk->tk", w, np.where(valid[..., None], cube, 0.0))


@pytest.mark.parametrize("kind", ["long-only", "long-short"])
def test_factor_bets_b_is_the_weighted_sum_of_betas(bets, kind):
    exposures, factor_frame, _ = bets
    weights = bet_weights(kind, exposures)
    got = run_bets(exposures, factor_frame, weights, window=60)
    dates, b = direct_b(exposures, FACTORS, weights)
    assert got["date"].to_list() == dates
    for k, name in enumerate(FACTORS):
        assert_close(got[f"b_{name}"].to_numpy(), b[:, k], f"b_{name}", rtol=1e-12, atol=1e-14)
    # factor_vol = sqrt(b' S b) with S = np.cov of the 60 factor rows ending on each date
    f = factor_frame.select(FACTORS).to_numpy()
    pos = {d: i for i, d in enumerate(factor_frame["date"].to_list())}
    vol = []
    for i, day in enumerate(dates):
        s = np.cov(f[pos[day] - 59 : pos[day] + 1], rowvar=False)
        vol.append(math.sqrt(b[i] @ s @ b[i]))
    assert_close(got["factor_vol"].to_numpy(), np.array(vol), "factor_vol", rtol=RTOL, atol=0)


def test_factor_bets_equal_weights_are_one_over_n(bets):
    """weights=None: weight 1/n on each of the n assets with complete betas on the date (as
    risk_contributions' equal weights, summing to 1), so b is the cross-sectional mean beta
    and factor_vol the equal-weight portfolio's factor vol. Nothing is excluded."""
    exposures, factor_frame, _ = bets
    got = run_bets(exposures, factor_frame, window=60)
    mean = exposures.group_by("date").agg(pl.col(FACTORS).mean()).sort("date")
    assert got["date"].to_list() == mean["date"].to_list()
    for name in FACTORS:
        assert_close(
            got[f"b_{name}"].to_numpy(), mean[name].to_numpy(), f"b_{name}", rtol=1e-12, atol=1e-14
        )
    assert (got["excluded_weight"] == 0.0).all()
    # the number of assets changes when the late asset gets exposures: still the mean
    n = exposures.group_by("date").len().sort("date")["len"]
    assert n.n_unique() == 2


def test_factor_bets_weight_on_an_asset_without_an_exposure_row_is_excluded(bets):
    """rolling_exposures emits no row for an asset before its first full window: on those
    dates the asset has no betas, so its weight is left out of b and counted in
    excluded_weight (sum |w| left out / sum |w|), exactly as a row with NaN betas would be."""
    exposures, factor_frame, _ = bets
    weights = {"A00": 1.0, LATE: -3.0}
    got = run_bets(exposures, factor_frame, weights, window=60)
    first_late = exposures.filter(pl.col("asset") == LATE)["date"].min()
    early = (got["date"] < first_late).to_numpy()
    assert early.sum() == 60
    excluded = got["excluded_weight"].to_numpy()
    assert_close(excluded[early], np.full(60, 0.75), "excluded before listing", rtol=1e-14)
    assert (excluded[~early] == 0.0).all()
    a00 = exposures.filter(pl.col("asset") == "A00").sort("date")
    assert_close(
        got["b_mkt"].to_numpy()[early],
        a00["mkt"].to_numpy()[early],
        "b_mkt early",
        rtol=1e-14,
        atol=0,
    )
    # the same dates with an explicit NaN row for the late asset give the same frame
    nan_rows = exposures.filter(pl.col("asset") == "A00", pl.col("date") < first_late).with_columns(
        pl.lit(LATE).cast(exposures.schema["asset"]).alias("asset"), pl.lit(math.nan).alias("mkt")
    )
    padded = pl.concat([exposures, nan_rows]).sort("date", "asset")
    assert_bets_frames(
        run_bets(padded, factor_frame, weights, window=60), got, FACTORS, "explicit NaN rows: "
    )


@pytest.mark.parametrize("dtype", [pl.Date, pl.Datetime("us")], ids=["date", "datetime"])
def test_factor_bets_layout_and_dates(dtype):
    exposures, factor_frame, _ = make_bets_data(502, n_factor_rows=120, window=30, dtype=dtype)
    got = run_bets(exposures, factor_frame, LISTED, window=30)
    assert_bets_layout(got, FACTORS, dtype)
    assert got["date"].to_list() == exposures["date"].unique().sort().to_list()
    exp = reference_factor_bets(exposures, factor_frame, LISTED, window=30)
    assert_bets_frames(got, exp, FACTORS)


def test_factor_bets_ignores_other_exposure_columns_and_row_order(bets):
    exposures, factor_frame, returns = bets
    base = run_bets(exposures, factor_frame, window=60)
    with_t = fc.rolling_exposures(returns, factor_frame, window=60, tstats=True)
    assert "t_mkt" in with_t.columns
    variants = {
        "tstats": with_t,
        "betas only": exposures.select("date", "asset", *FACTORS),
        "reordered + extra": exposures.with_columns(pl.lit(1.5).alias("junk")).select(
            "junk", "value", "asset", "n_obs", "mkt", "date", "size", "r2"
        ),
        "shuffled rows": exposures.sample(fraction=1.0, shuffle=True, seed=3),
        "asset as String": exposures.with_columns(pl.col("asset").cast(pl.String)),
    }
    for label, frame in variants.items():
        assert_bets_frames(run_bets(frame, factor_frame, window=60), base, FACTORS, f"{label}: ")


def test_factor_bets_window_uses_factor_rows_and_drops_early_dates(bets):
    """The window counts rows of factor_returns (which start 40 rows before the asset returns);
    dates earlier than row window-1 of factor_returns are dropped."""
    exposures, factor_frame, _ = bets
    fdays = factor_frame["date"].to_list()
    for window in (2, 45, 120):
        got = run_bets(exposures, factor_frame, LISTED, window=window)
        exp = reference_factor_bets(exposures, factor_frame, LISTED, window=window)
        assert_bets_frames(got, exp, FACTORS, f"window {window}: ")
        kept = [d for d in exposures["date"].unique().sort() if fdays.index(d) >= window - 1]
        assert got["date"].to_list() == kept
    # exposure dates start at factor row 99: a 120-row window drops the first 20 of them
    assert fdays.index(exposures["date"].min()) == 99
    assert run_bets(exposures, factor_frame, window=120).height == exposures["date"].n_unique() - 20


def test_factor_bets_on_a_subset_of_dates(bets):
    """Monthly rebalancing dates: one row per exposure date, values as on the full grid."""
    exposures, factor_frame, _ = bets
    weights = bet_weights("long-only", exposures)
    full = run_bets(exposures, factor_frame, weights, window=60)
    chosen = exposures["date"].unique().sort().gather_every(21)
    monthly = run_bets(
        exposures.filter(pl.col("date").is_in(chosen.implode())), factor_frame, weights, window=60
    )
    assert monthly["date"].to_list() == chosen.to_list()
    assert_bets_frames(monthly, full.filter(pl.col("date").is_in(chosen.implode())), FACTORS)


@pytest.mark.parametrize("missing", ["nan", "null"])
def test_factor_bets_leave_out_assets_with_missing_betas(bets, missing):
    exposures, factor_frame, _ = bets
    days = exposures["date"].unique().sort()
    hit = days.gather([5, 6, 7, 60, 100]).implode()
    fill = math.nan if missing == "nan" else None
    target = (pl.col("asset") == "A02") & pl.col("date").is_in(hit)
    bad = exposures.with_columns(
        pl.when(target).then(pl.lit(fill, dtype=pl.Float64)).otherwise(pl.col("size")).alias("size")
    )
    weights = {"A02": -0.8, "A03": 0.5, "A06": 1.1}
    got = run_bets(bad, factor_frame, weights, window=60)
    exp = reference_factor_bets(
        bad.with_columns(pl.col("size").fill_null(math.nan)), factor_frame, weights, window=60
    )
    assert_bets_frames(got, exp, FACTORS)
    on_hit = got["date"].is_in(hit).to_numpy()
    assert_close(got["excluded_weight"].to_numpy()[on_hit], np.full(5, 0.8 / 2.4), "excl")
    assert (got["excluded_weight"].to_numpy()[~on_hit] == 0.0).all()
    # equal weights: the remaining assets share the weight; the scores do not depend on
    # whether "equal" counts the left-out asset before dropping it
    got = run_bets(bad, factor_frame, window=60)
    exp = reference_factor_bets(
        bad.with_columns(pl.col("size").fill_null(math.nan)), factor_frame, window=60
    )
    skip = ("excluded_weight", "factor_vol", *(f"b_{f}" for f in FACTORS))
    assert_bets_frames(got, exp, FACTORS, "equal: ", skip=skip)


@pytest.mark.parametrize("missing", ["nan", "null"])
def test_factor_bets_leave_out_factors_with_missing_returns(bets, missing):
    """A factor with a missing return in the window is left out of that date's scores."""
    exposures, factor_frame, _ = bets
    hole = 150  # factor row; windows ending at rows 150..209 miss `size`
    fill = math.nan if missing == "nan" else None
    size = factor_frame["size"].to_list()
    size[hole] = fill
    bad = factor_frame.with_columns(pl.Series("size", size, dtype=pl.Float64))
    weights = LISTED
    got = run_bets(exposures, bad, weights, window=60)
    exp = reference_factor_bets(
        exposures, bad.with_columns(pl.col("size").fill_null(math.nan)), weights, window=60
    )
    assert_bets_frames(got, exp, FACTORS, skip=("b_size",))
    fdays = factor_frame["date"].to_list()
    pos = np.array([fdays.index(d) for d in got["date"]])
    affected = (pos >= hole) & (pos < hole + 60)
    assert affected.any() and not affected.all()
    assert (got["enb_pca"].to_numpy()[affected] <= 2 + 1e-12).all()
    # b_size is the exposure itself where the factor is complete; where it is left out it is
    # either still the weighted sum of betas or NaN (the contract does not say)
    b_exp = exp["b_size"].to_numpy()
    b_got = got["b_size"].to_numpy()
    assert_close(b_got[~affected], b_exp[~affected], "b_size", rtol=RTOL, atol=ATOL)
    assert np.isnan(b_got[affected]).all() or np.allclose(
        b_got[affected], b_exp[affected], rtol=RTOL, atol=ATOL
    )


@pytest.mark.parametrize("kind", ["equal", "long-short"])
def test_unit_exposures_reduce_to_diversification_of_the_factors(kind):
    """Asset F_k with beta 1 on factor k and 0 elsewhere: b = w, and the scores are
    fc.diversification's on the factor returns with those weights."""
    factors = ["f0", "f1", "f2", "f3"]
    rng = np.random.default_rng(503)
    f, _ = factor_model(rng, 150, 1, n_factors=4)
    factor_frame = frame_of(f, factors)
    window = 40
    days = factor_frame["date"].to_list()[window - 6 :]  # the first five dates are dropped
    assets = [f"F_{k}" for k in factors]
    eye = np.eye(4)
    exposures = pl.DataFrame(
        {
            "date": pl.Series([d for d in days for _ in assets], dtype=pl.Date),
            "asset": pl.Series(assets * len(days), dtype=pl.Enum(assets)),
            "alpha": np.zeros(4 * len(days)),
            **{k: np.tile(eye[j], len(days)) for j, k in enumerate(factors)},
        }
    )
    w = None if kind == "equal" else dict(zip(factors, [0.9, -0.4, 0.6, 0.3], strict=True))
    weights = None if w is None else {f"F_{k}": v for k, v in w.items()}
    got = run_bets(exposures, factor_frame, weights, window=window)
    assert got.height == len(days) - 5
    exp = reference_factor_bets(exposures, factor_frame, weights, window=window)
    if w is None:  # b equal on every factor (its level is test_factor_bets_equal_weights's)
        b_cols = [f"b_{k}" for k in factors]
        assert_bets_frames(got, exp, factors, skip=(*b_cols, "factor_vol"))
        b = got.select(b_cols).to_numpy()
        assert_close(b, np.repeat(b[:, :1], 4, axis=1), "b equal", rtol=1e-14, atol=0)
    else:
        assert_bets_frames(got, exp, factors)
        for name in factors:
            assert_close(
                got[f"b_{name}"].to_numpy(), np.full(got.height, w[name]), name, rtol=1e-14
            )
    div = fc.diversification(factor_frame, w, window=window)
    assert div["date"].to_list() == got["date"].to_list()
    for name in ("diversification_ratio", "enb_pca", "enb_mt"):
        assert_close(got[name].to_numpy(), div[name].to_numpy(), name, rtol=RTOL, atol=0)


def test_one_factor():
    exposures, factor_frame, _ = make_bets_data(504, n_factor_rows=150, factors=["mkt"])
    weights = {"A00": 1.0, "A03": -2.5, "A08": 0.7}
    got = run_bets(exposures, factor_frame, weights, window=60)
    assert_bets_frames(
        got, reference_factor_bets(exposures, factor_frame, weights, window=60), ["mkt"]
    )
    ones = np.ones(got.height)
    for name in ("enb_pca", "enb_mt", "diversification_ratio"):
        assert_close(got[name].to_numpy(), ones, name, rtol=1e-12, atol=0)
    f = factor_frame["mkt"].to_numpy()
    pos = [factor_frame["date"].to_list().index(d) for d in got["date"]]
    sigma = np.array([np.std(f[p - 59 : p + 1], ddof=1) for p in pos])
    assert_close(got["factor_vol"].to_numpy(), np.abs(got["b_mkt"].to_numpy()) * sigma, "vol")


def test_factor_bets_scaling():
    """Returns x c: b and factor_vol x c. Factors x c: b / c, factor_vol unchanged. Weights x c:
    b and factor_vol x c. The scores and excluded_weight never change."""
    exposures, factor_frame, returns = make_bets_data(505, n_factor_rows=160)
    weights = bet_weights("long-short", exposures)
    base = run_bets(exposures, factor_frame, weights, window=60)
    assets = [c for c in returns.columns if c != "date"]
    b_cols = [f"b_{f}" for f in FACTORS]

    def scaled(frame, cols, c):
        return frame.with_columns(pl.col(cols) * c)

    cases = {
        "returns x3": (scaled(returns, assets, 3.0), factor_frame, weights, 3.0, 3.0),
        "factors x0.5": (returns, scaled(factor_frame, FACTORS, 0.5), weights, 2.0, 1.0),
        "weights x-2": (returns, factor_frame, {a: -2 * w for a, w in weights.items()}, -2.0, 2.0),
    }
    for label, (rets, facs, wts, b_scale, vol_scale) in cases.items():
        expo = fc.rolling_exposures(rets, facs, window=60)
        got = run_bets(expo, facs, wts, window=60)
        assert got["date"].to_list() == base["date"].to_list(), label
        for name in b_cols:
            assert_close(
                got[name].to_numpy(),
                b_scale * base[name].to_numpy(),
                f"{label} {name}",
                rtol=1e-9,
                atol=1e-13,
            )
        assert_close(
            got["factor_vol"].to_numpy(),
            vol_scale * base["factor_vol"].to_numpy(),
            f"{label} factor_vol",
            rtol=1e-9,
            atol=0,
        )
        for name in ("excluded_weight", "enb_pca", "enb_mt", "diversification_ratio"):
            assert_close(
                got[name].to_numpy(),
                base[name].to_numpy(),
                f"{label} {name}",
                rtol=1e-9,
                atol=1e-13,
            )


@pytest.mark.parametrize("factor", [1e-160, 1e160])
def test_factor_bets_extreme_weight_scales(factor):
    """Weights x 1e-160 or 1e160 gave NaN scores (their squares under- or overflowed): b and
    factor_vol scale with the weights, the scores equal the reference's."""
    exposures, factor_frame, _ = make_bets_data(506, n_factor_rows=160)
    weights = bet_weights("long-short", exposures)
    exp = reference_factor_bets(exposures, factor_frame, weights, window=60)
    got = run_bets(exposures, factor_frame, {a: factor * w for a, w in weights.items()}, window=60)
    assert got["date"].to_list() == exp["date"].to_list()
    for name in [f"b_{f}" for f in FACTORS] + ["factor_vol"]:
        assert_close(got[name].to_numpy() / factor, exp[name].to_numpy(), name, rtol=1e-9, atol=0)
    for name in ("excluded_weight", "enb_pca", "enb_mt", "diversification_ratio"):
        assert_close(got[name].to_numpy(), exp[name].to_numpy(), name, rtol=1e-9, atol=1e-13)


def test_factor_bets_max_iter_1_warns_and_gives_nan_enb_mt(bets):
    exposures, factor_frame, _ = bets
    base = run_bets(exposures, factor_frame, window=60)
    with pytest.warns(fc.ConvergenceWarning, match=base["date"][0].isoformat()):
        out = fc.factor_bets(exposures, factor_frame, window=60, max_iter=1)
    assert out["enb_mt"].is_nan().all()
    for name in ("factor_vol", "enb_pca", "diversification_ratio"):
        assert_close(out[name].to_numpy(), base[name].to_numpy(), name, rtol=RTOL, atol=0)


def test_factor_bets_column_name_parameters(bets):
    exposures, factor_frame, _ = bets
    weights = bet_weights("long-short", exposures)
    base = run_bets(exposures, factor_frame, weights, window=60)
    out = run_bets(
        exposures.rename({"date": "day", "asset": "ticker"}),
        factor_frame.rename({"date": "day"}),
        weights,
        window=60,
        date="day",
        asset="ticker",
    )
    assert out[:, 0].to_list() == base["date"].to_list()
    for name in bets_value_columns(FACTORS):
        assert_close(out[name].to_numpy(), base[name].to_numpy(), name, rtol=RTOL, atol=ATOL)


# ============================================================================================
# correlation_clusters
# ============================================================================================
def block_data(seed=601):
    """Four interleaved sectors (5, 4, 6, 3 assets); noisy enough that the linkages differ."""
    rng = np.random.default_rng(seed)
    r, _ = sector_returns(rng, 300, [5, 4, 6, 3], sector_vol=0.006, idio_vol=0.008)
    return r


CLUSTER_DATA = {
    "blocks": block_data,
    "random": lambda: factor_returns(np.random.default_rng(602), 120, 15, n_factors=3),
}


@pytest.mark.parametrize("method", LINKAGES)
@pytest.mark.parametrize("data", list(CLUSTER_DATA))
def test_clusters_against_scipy(data, method):
    r = CLUSTER_DATA[data]()
    n = r.shape[1]
    assets = asset_names(n)[::-1]  # output order is the input column order, not sorted
    frame = frame_of(r, assets)
    for k in sorted({1, 2, 3, 4, 7, n - 1, n}):
        got = fc.correlation_clusters(frame, k, linkage=method)
        exp = reference_correlation_clusters(r, assets, k, method)
        assert_clusters(got, exp, f"k={k}: ")
        assert got["cluster"].max() == k
        assert got["cluster"].to_list()[0] == 1


def test_clusters_default_linkage_is_average():
    r = block_data()
    frame = frame_of(r)
    for k in (3, 4, 6):
        assert_clusters(
            fc.correlation_clusters(frame, k),
            reference_correlation_clusters(r, frame.columns[1:], k, "average"),
        )


def test_clusters_recover_planted_sectors():
    rng = np.random.default_rng(603)
    r, labels = sector_returns(rng, 250, [4, 6, 3, 5])
    frame = frame_of(r)
    for method in LINKAGES:
        got = fc.correlation_clusters(frame, 4, linkage=method)
        assert got["cluster"].to_list() == canonical(labels).tolist(), method


@pytest.fixture(scope="module")
def sp500():
    datasets = pytest.importorskip(
        "skfolio.datasets", reason="skfolio is not installed (pip install skfolio)"
    )
    prices = datasets.load_sp500_dataset()
    rets = prices.pct_change().iloc[1:]
    assert rets.shape[1] == 20 and np.isfinite(rets.to_numpy()).all()
    frame = frame_of(rets.to_numpy(), list(rets.columns), [d.date() for d in rets.index])
    return rets.to_numpy(), list(rets.columns), frame


GICS = {
    "AAPL": "Information Technology", "AMD": "Information Technology",
    "MSFT": "Information Technology", "BAC": "Financials", "JPM": "Financials",
    "BBY": "Consumer Discretionary", "HD": "Consumer Discretionary", "CVX": "Energy",
    "XOM": "Energy", "RRC": "Energy", "GE": "Industrials", "JNJ": "Health Care",
    "LLY": "Health Care", "MRK": "Health Care", "PFE": "Health Care", "UNH": "Health Care",
    "KO": "Consumer Staples", "PEP": "Consumer Staples", "PG": "Consumer Staples",
    "WMT": "Consumer Staples",
}  # fmt: skip


@pytest.mark.parametrize("method", LINKAGES)
def test_clusters_sp500(sp500, method):
    r, assets, frame = sp500
    for k in (2, 3, 5, 7, 10, 19):
        got = fc.correlation_clusters(frame, k, linkage=method)
        assert_clusters(got, reference_correlation_clusters(r, assets, k, method), f"k={k}: ")
    # the last 500 days alone
    tail = frame.tail(500)
    got = fc.correlation_clusters(tail, 6, linkage=method)
    assert_clusters(got, reference_correlation_clusters(r[-500:], assets, 6, method), "tail: ")


def test_clusters_leave_out_incomplete_and_constant_assets():
    rng = np.random.default_rng(604)
    r, _ = sector_returns(rng, 200, [3, 3, 3])
    r[:30, 1] = np.nan  # late listing
    r[120, 4] = np.nan  # one missing day
    r[:, 6] = 0.002  # constant
    assets = asset_names(9)
    frame = frame_of(r, assets)
    for method in LINKAGES:
        for k in (1, 2, 3, 6):
            got = fc.correlation_clusters(frame, k, linkage=method)
            exp = reference_correlation_clusters(r, assets, k, method)
            assert exp["asset"].to_list() == ["A00", "A02", "A03", "A05", "A07", "A08"]
            assert_clusters(got, exp, f"{method} k={k}: ")
    # null means missing too; dropping the left-out columns changes nothing
    nulls = frame.with_columns(pl.col("A01", "A04").fill_nan(None))
    dropped = frame.drop("A01", "A04", "A06")
    for other in (nulls, dropped):
        assert_clusters(fc.correlation_clusters(other, 3), fc.correlation_clusters(frame, 3))


def test_clusters_extremes_and_numbering():
    rng = np.random.default_rng(605)
    r = factor_returns(rng, 80, 7)
    assets = ["Z", "Y", "X", "W", "V", "U", "T"]
    frame = frame_of(r, assets)
    singletons = fc.correlation_clusters(frame, 7)
    assert singletons["asset"].to_list() == assets
    assert singletons["cluster"].to_list() == list(range(1, 8))
    one = fc.correlation_clusters(frame, 1)
    assert one["cluster"].to_list() == [1] * 7
    # a single clustered asset (the others missing or constant)
    lonely = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("Y"), pl.lit(0.1).alias("X"))
    lonely = lonely.select("date", "Y", "Z", "X")
    out = fc.correlation_clusters(lonely, 1)
    assert out["asset"].to_list() == ["Z"] and out["cluster"].to_list() == [1]
    assert out.schema["cluster"] == pl.UInt32


def test_clusters_invariant_to_scaling_and_shifting_returns():
    r = block_data(606)
    frame = frame_of(r)
    rng = np.random.default_rng(607)
    scales = rng.uniform(0.1, 20.0, r.shape[1])
    for method in LINKAGES:
        base = fc.correlation_clusters(frame, 4, linkage=method)
        for other in (7.3 * r, r * scales + 0.01):
            assert_clusters(fc.correlation_clusters(frame_of(other), 4, linkage=method), base)


def test_clusters_long_input_and_date_parameter():
    r = block_data(608)
    r[:20, 3] = np.nan
    frame = frame_of(r)
    base = fc.correlation_clusters(frame, 4, linkage="ward")
    long = wide_to_long(frame, drop_missing=True).sample(fraction=1.0, shuffle=True, seed=1)
    got = fc.correlation_clusters(long, 4, linkage="ward")
    # a long frame has no column order: compare the partition, in the wide frame's order
    assert got.schema == base.schema and sorted(got["asset"]) == sorted(base["asset"])
    cluster_of = dict(got.iter_rows())
    relabelled = canonical([cluster_of[a] for a in base["asset"]]).tolist()
    assert relabelled == base["cluster"].to_list(), "long: partition differs"
    renamed = frame.rename({"date": "day"})
    assert_clusters(fc.correlation_clusters(renamed, 4, linkage="ward", date="day"), base)
    dt_frame = frame.with_columns(pl.col("date").cast(pl.Datetime("ms")))
    assert_clusters(fc.correlation_clusters(dt_frame, 4, linkage="ward"), base, "datetime: ")


# ============================================================================================
# sector_coherence
# ============================================================================================
def coherence_data(seed=701, n_rows=240, sizes=(5, 4, 6, 3), **kwargs):
    """(returns, assets, sector_of, true labels): interleaved sectors named by letter."""
    rng = np.random.default_rng(seed)
    r, labels = sector_returns(rng, n_rows, list(sizes), **kwargs)
    assets = asset_names(r.shape[1])
    names = ["Banks", "Energy", "Tech", "Retail", "Utilities"]
    sector_of = {a: names[g] for a, g in zip(assets, labels, strict=True)}
    return r, assets, sector_of, labels


NOISY = {"sector_vol": 0.006, "idio_vol": 0.008}  # imperfect clusters: ARI strictly inside (0, 1)


def check_coherence(r, assets, sector_of, *, label="", dates=None, **kwargs):
    frame = frame_of(r, assets, dates)
    got = fc.sector_coherence(frame, sectors_frame(sector_of), **kwargs)
    exp = reference_sector_coherence(r, frame["date"], assets, sector_of, **kwargs)
    assert_coherence(got, exp, label)
    return got, exp


@pytest.mark.parametrize("method", LINKAGES)
def test_coherence_full_sample_against_reference(method):
    r, assets, sector_of, _ = coherence_data(**NOISY)
    for n_clusters in (None, 2, 4, 7):
        got, _ = check_coherence(
            r, assets, sector_of, linkage=method, n_clusters=n_clusters, label=f"k={n_clusters}: "
        )
        assert got["date"].to_list() == [business_days(240)[-1]] * 4
        assert got["sector"].to_list() == ["Banks", "Energy", "Retail", "Tech"]
        assert got["n_assets"].to_list() == [5, 4, 3, 6]
        assert got["adjusted_rand_index"].n_unique() == 1


def test_coherence_default_linkage_is_average():
    r, assets, sector_of, _ = coherence_data(**NOISY)
    frame = frame_of(r, assets)
    got = fc.sector_coherence(frame, sectors_frame(sector_of))
    exp = reference_sector_coherence(r, frame["date"], assets, sector_of, linkage="average")
    assert_coherence(got, exp)
    ari = got["adjusted_rand_index"][0]
    assert 0.0 < ari < 1.0, "test data: the noisy sectors should not be recovered exactly"


@pytest.mark.parametrize("method", ["average", "ward"])
def test_coherence_rolling_with_late_listing_constant_and_single_asset_sectors(method):
    rng = np.random.default_rng(702)
    r, assets, sector_of, _ = coherence_data(702, n_rows=200, **NOISY)
    late = "A05"
    r[:70, 5] = np.nan  # lists at row 70
    flat = np.full((200, 2), 0.001)
    extra = factor_returns(rng, 200, 1)
    r = np.column_stack([r, flat, extra])
    assets = [*assets, "FLAT1", "FLAT2", "SOLO"]
    sector_of = {**sector_of, "FLAT1": "Cash", "FLAT2": "Banks", "SOLO": "Gold"}
    got, _ = check_coherence(r, assets, sector_of, window=50, step=9, linkage=method)
    assert "Cash" not in got["sector"].to_list()  # its only asset is never included
    solo = got.filter(pl.col("sector") == "Gold")
    assert (solo["n_assets"] == 1).all() and solo["intra_correlation"].is_nan().all()
    assert solo["inter_correlation"].is_finite().all()
    ends = list(range(49, 200, 9))
    assert got["date"].unique().sort().to_list() == [business_days(200)[e] for e in ends]
    late_sector = got.filter(pl.col("sector") == sector_of[late])
    listed = np.array([e - 49 >= 70 for e in ends])
    n = late_sector["n_assets"].to_numpy()
    assert (n[listed] == n[~listed][0] + 1).all() and len(set(n[~listed])) == 1
    # full sample: the late asset and the constant ones are left out
    full, _ = check_coherence(r, assets, sector_of, linkage=method)
    banks = full.filter(pl.col("sector") == "Banks")["n_assets"].item()
    assert banks == sum(1 for a, s in sector_of.items() if s == "Banks") - 1  # not FLAT2


def test_coherence_planted_structure_and_relabelled_maps():
    r, assets, sector_of, _ = coherence_data(703, n_rows=260, sizes=(5, 4, 6, 5))
    for method in LINKAGES:
        got, _ = check_coherence(r, assets, sector_of, linkage=method)
        assert_close(got["adjusted_rand_index"].to_numpy(), np.ones(4), "ARI", rtol=0, atol=1e-12)
        gap = got["intra_correlation"] - got["inter_correlation"]
        assert (gap > 0.3).all(), got
    rolling, _ = check_coherence(r, assets, sector_of, window=60, step=20)
    assert_close(
        rolling["adjusted_rand_index"].to_numpy(),
        np.ones(rolling.height),
        "rolling",
        rtol=0,
        atol=1e-12,
    )
    assert (rolling["intra_correlation"] > rolling["inter_correlation"] + 0.2).all()
    base = got.filter(pl.col("sector") == "Banks")

    # move two assets into the wrong sector: ARI < 1, the affected sectors less coherent
    moved = dict(sector_of)
    first_banks = [a for a, s in sector_of.items() if s == "Banks"][:1]
    first_energy = [a for a, s in sector_of.items() if s == "Energy"][:1]
    moved[first_banks[0]], moved[first_energy[0]] = "Energy", "Banks"
    got_m, exp_m = check_coherence(r, assets, moved, label="moved: ")
    ari = got_m["adjusted_rand_index"][0]
    assert ari < 0.95
    assert_close([ari], [exp_m["adjusted_rand_index"][0]], "moved ARI", rtol=0, atol=1e-12)
    banks = got_m.filter(pl.col("sector") == "Banks")
    assert banks["intra_correlation"].item() < base["intra_correlation"].item() - 0.1
    assert banks["inter_correlation"].item() > base["inter_correlation"].item()

    # a random sector map: ARI about 0
    rng = np.random.default_rng(704)
    shuffled = dict(zip(assets, rng.permutation(list(sector_of.values())), strict=True))
    got_s, _ = check_coherence(r, assets, shuffled, label="shuffled: ")
    assert abs(got_s["adjusted_rand_index"][0]) < 0.3
    # renaming the sectors (same partition) changes only the names
    renamed = {a: f"S_{s}" for a, s in sector_of.items()}
    got_r, _ = check_coherence(r, assets, renamed, label="renamed: ")
    for name in COHERENCE_FLOATS:
        assert_close(got_r[name].to_numpy(), got[name].to_numpy(), name, rtol=RTOL, atol=1e-12)


def test_coherence_n_clusters_larger_than_the_included_assets():
    r, assets, sector_of, _ = coherence_data(705, n_rows=120, sizes=(3, 2, 3), **NOISY)
    r[:60, :4] = np.nan  # the first windows have 4 included assets
    got, _ = check_coherence(r, assets, sector_of, n_clusters=6, window=30, step=10)
    early = got.filter(pl.col("date") < business_days(120)[60 + 29])
    included = early.group_by("date").agg(pl.col("n_assets").sum())["n_assets"]
    assert included.len() == 6 and (included == 4).all()
    for k in (1, 2, 8, 50):
        check_coherence(r, assets, sector_of, n_clusters=k, window=30, step=10, label=f"k={k}: ")


def test_coherence_sp500(sp500):
    r, assets, frame = sp500
    sectors = sectors_frame(GICS)
    for method in ("average", "ward"):
        got = fc.sector_coherence(frame, sectors, linkage=method)
        exp = reference_sector_coherence(r, frame["date"], assets, GICS, linkage=method)
        assert_coherence(got, exp, f"{method} full: ")
        assert got.height == 7
    got = fc.sector_coherence(frame, sectors, window=252, step=126)
    exp = reference_sector_coherence(r, frame["date"], assets, GICS, window=252, step=126)
    assert_coherence(got, exp, "rolling: ")
    assert got.height == 7 * ((r.shape[0] - 252) // 126 + 1)
    assert got["adjusted_rand_index"].n_unique() > 5


def test_coherence_sector_frame_variants():
    r, assets, sector_of, _ = coherence_data(706, n_rows=150, **NOISY)
    frame = frame_of(r, assets)
    base = fc.sector_coherence(frame, sectors_frame(sector_of), window=50, step=25)
    order = sorted(set(sector_of.values()), reverse=True)
    variants = {
        "categorical": sectors_frame(sector_of, dtype=pl.Categorical),
        "enum": sectors_frame(sector_of, dtype=pl.Enum(order)),  # enum order is not name order
        "shuffled + extra assets": pl.concat(
            [sectors_frame(sector_of), sectors_frame({"NOT_HELD": "Tech", "OTHER": "Mining"})]
        ).sample(fraction=1.0, shuffle=True, seed=5),
        "extra column": sectors_frame(sector_of).with_columns(pl.lit(1).alias("weight")),
    }
    for label, sectors in variants.items():
        assert_coherence(fc.sector_coherence(frame, sectors, window=50, step=25), base, label)
    renamed = sectors_frame(sector_of).rename({"asset": "ticker", "sector": "gics"})
    out = fc.sector_coherence(frame, renamed, window=50, step=25, asset="ticker", sector="gics")
    assert_coherence(out, base, "renamed: ")


def test_coherence_invariant_to_scaling_returns():
    r, assets, sector_of, _ = coherence_data(707, n_rows=160, **NOISY)
    r[:40, 2] = np.nan
    scales = np.random.default_rng(708).uniform(0.05, 30.0, r.shape[1])
    sectors = sectors_frame(sector_of)
    for kwargs in ({}, {"window": 40, "step": 15, "linkage": "single"}):
        base = fc.sector_coherence(frame_of(r, assets), sectors, **kwargs)
        for other in (7.3 * r, r * scales - 0.002):
            assert_coherence(fc.sector_coherence(frame_of(other, assets), sectors, **kwargs), base)


@pytest.mark.parametrize("dtype", [pl.Date, pl.Datetime("us")], ids=["date", "datetime"])
def test_coherence_long_input_datetime_and_date_parameter(dtype):
    r, assets, sector_of, _ = coherence_data(709, n_rows=100, **NOISY)
    r[:30, 1] = np.nan
    frame = frame_of(r, assets, dtype=dtype)
    sectors = sectors_frame(sector_of)
    base = fc.sector_coherence(frame, sectors, window=40, step=20)
    exp = reference_sector_coherence(r, frame["date"], assets, sector_of, window=40, step=20)
    assert_coherence(base, exp)
    long = wide_to_long(frame, drop_missing=True).sample(fraction=1.0, shuffle=True, seed=2)
    assert_coherence(fc.sector_coherence(long, sectors, window=40, step=20), base, "long: ")
    out = fc.sector_coherence(
        frame.rename({"date": "day"}), sectors, window=40, step=20, date="day"
    )
    assert out.columns[0] == "day" or out.columns[0] == "date"
    assert out[:, 0].to_list() == base["date"].to_list()
    assert_coherence(out.rename({out.columns[0]: "date"}), base, "date=day: ")


def test_coherence_window_equal_to_rows_is_the_full_sample():
    r, assets, sector_of, _ = coherence_data(710, n_rows=90, **NOISY)
    frame = frame_of(r, assets)
    sectors = sectors_frame(sector_of)
    assert_coherence(
        fc.sector_coherence(frame, sectors, window=90), fc.sector_coherence(frame, sectors)
    )


# --------------------------------------------------------------------------------------------
# hypothesis: small random problems against the reference
# --------------------------------------------------------------------------------------------
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)


@st.composite
def coherence_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n_rows = draw(st.integers(6, 40))
    n_assets = draw(st.integers(2, 7))
    window = draw(st.one_of(st.none(), st.integers(4, n_rows)))
    step = draw(st.integers(1, 4))
    method = draw(st.sampled_from(LINKAGES))
    n_clusters = draw(st.one_of(st.none(), st.integers(1, 5)))
    rng = np.random.default_rng(seed)
    r = factor_returns(rng, n_rows, n_assets)
    for j in range(1, n_assets):  # asset 0 is always complete
        if rng.random() < 0.25:
            r[: rng.integers(1, n_rows), j] = np.nan
        if rng.random() < 0.2:
            r[rng.integers(0, n_rows), j] = np.nan
    if n_assets > 2 and rng.random() < 0.25:
        last = r[:, -1]
        last[~np.isnan(last)] = 0.004  # constant
    sector_of = {a: "XYZ"[rng.integers(0, 3)] for a in asset_names(n_assets)}
    return r, sector_of, window, step, method, n_clusters


@PROPERTY_SETTINGS
@given(coherence_problems())
def test_property_small_problems(problem):
    r, sector_of, window, step, method, n_clusters = problem
    assets = list(sector_of)
    check_coherence(
        r, assets, sector_of, window=window, step=step, linkage=method, n_clusters=n_clusters
    )
    m = int(usable_columns(r).sum())  # assets the full-sample clustering uses
    if m:
        k = min(n_clusters or 2, m)
        exp = reference_correlation_clusters(r, assets, k, method)
        assert_clusters(fc.correlation_clusters(frame_of(r, assets), k, linkage=method), exp)


# ============================================================================================
# bad input
# ============================================================================================
@pytest.fixture(scope="module")
def small_bets():
    return make_bets_data(801, n_factor_rows=90, n_assets=4, window=20)


def test_factor_bets_missing_factor_columns(small_bets):
    exposures, factor_frame, _ = small_bets
    with pytest.raises(InvalidInputError, match="size"):
        fc.factor_bets(exposures.drop("size"), factor_frame, window=20)
    with pytest.raises(InvalidInputError, match=has_all("size", "value")):
        fc.factor_bets(exposures.drop("size", "value"), factor_frame, window=20)
    # a factor that exists only in factor_returns is a factor too
    more = factor_frame.with_columns((pl.col("mkt") * 0.5).alias("quality"))
    with pytest.raises(InvalidInputError, match="quality"):
        fc.factor_bets(exposures, more, window=20)


def test_factor_bets_exposure_date_not_in_factor_returns(small_bets):
    exposures, factor_frame, _ = small_bets
    day = exposures["date"].unique().sort()[10]
    with pytest.raises(InvalidInputError, match=r"(?i)date"):
        fc.factor_bets(exposures, factor_frame.filter(pl.col("date") != day), window=20)
    stray = exposures.head(1).with_columns(pl.lit(dt.date(1999, 1, 1)).alias("date"))
    with pytest.raises(InvalidInputError, match=r"(?i)date|1999-01-01"):
        fc.factor_bets(pl.concat([exposures, stray]), factor_frame, window=20)


def test_factor_bets_bad_weights(small_bets):
    exposures, factor_frame, _ = small_bets
    day = exposures["date"].min()
    with pytest.raises(InvalidInputError, match="NOPE"):
        fc.factor_bets(exposures, factor_frame, {"A00": 0.5, "NOPE": 0.5}, window=20)
    snaps = snapshot_frame([(day, "A01", 0.5), (day, "NOPE", 0.5)])
    with pytest.raises(InvalidInputError, match="NOPE"):
        fc.factor_bets(exposures, factor_frame, snaps, window=20)
    with pytest.raises(InvalidInputError, match=r"(?i)A00|nan|weight"):
        fc.factor_bets(exposures, factor_frame, {"A00": math.nan, "A01": 1.0}, window=20)
    dup = snapshot_frame([(day, "A01", 0.5), (day, "A01", 0.2)])
    with pytest.raises(InvalidInputError, match=r"(?i)duplicate|A01"):
        fc.factor_bets(exposures, factor_frame, dup, window=20)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_factor_bets_infinite_beta_names_factor_date_and_asset(small_bets, value):
    """An infinite beta was accepted: b became infinite and the scores NaN."""
    exposures, factor_frame, _ = small_bets
    row = exposures.row(37, named=True)
    day, name = row["date"], str(row["asset"])
    cond = (pl.col("date") == day) & (pl.col("asset") == name)
    bad = exposures.with_columns(pl.when(cond).then(value).otherwise(pl.col("size")).alias("size"))
    with pytest.raises(NonFiniteError, match=has_all("size", day.isoformat(), name)):
        fc.factor_bets(bad, factor_frame, window=20)


def test_factor_bets_infinite_factor_return_names_factor_returns(small_bets):
    exposures, factor_frame, _ = small_bets
    day = factor_frame["date"][70]
    bad = factor_frame.with_columns(
        pl.when(pl.col("date") == day).then(np.inf).otherwise(pl.col("value")).alias("value")
    )
    with pytest.raises(NonFiniteError, match=has_all("factor_returns", "value", day.isoformat())):
        fc.factor_bets(exposures, bad, window=20)


def test_factor_bets_null_asset_label(small_bets):
    """A null asset label was accepted as an asset of its own."""
    exposures, factor_frame, _ = small_bets
    day = exposures["date"][9]
    asset = pl.when(pl.int_range(pl.len()) == 9).then(None).otherwise(pl.col("asset"))
    bad = exposures.with_columns(asset.alias("asset"))
    with pytest.raises(InvalidInputError, match=has_all("asset", "null", day.isoformat())):
        fc.factor_bets(bad, factor_frame, window=20)


@pytest.mark.parametrize(
    ("window", "error"),
    [(1, InvalidInputError), (0, InvalidInputError), (-3, InvalidInputError),
     (20.0, DtypeError), (True, DtypeError)],
)  # fmt: skip
def test_factor_bets_bad_window(small_bets, window, error):
    exposures, factor_frame, _ = small_bets
    with pytest.raises(error, match=r"(?i)window"):
        fc.factor_bets(exposures, factor_frame, window=window)


def test_factor_bets_window_is_required(small_bets):
    exposures, factor_frame, _ = small_bets
    with pytest.raises((TypeError, InvalidInputError)):
        fc.factor_bets(exposures, factor_frame)


def test_factor_bets_missing_and_unsorted_columns(small_bets):
    exposures, factor_frame, _ = small_bets
    with pytest.raises(InvalidInputError, match="asset"):
        fc.factor_bets(exposures.drop("asset"), factor_frame, window=20)
    with pytest.raises(InvalidInputError, match="date"):
        fc.factor_bets(exposures.drop("date"), factor_frame, window=20)
    with pytest.raises(InvalidInputError, match="date"):
        fc.factor_bets(exposures, factor_frame.drop("date"), window=20)
    order = list(range(factor_frame.height))
    order[50], order[51] = 51, 50
    swapped = factor_frame[order]
    assert swapped["date"].to_list() != factor_frame["date"].to_list()
    with pytest.raises(InvalidInputError, match=r"(?i)date"):
        fc.factor_bets(exposures, swapped, window=20)


@pytest.fixture(scope="module")
def small_returns():
    rng = np.random.default_rng(802)
    r, _ = sector_returns(rng, 60, [2, 2, 2])
    r[:, 5] = 0.003  # constant: 5 assets can be clustered
    assets = ["MSFT", "AAPL", "XOM", "CVX", "JPM", "CASH"]
    sectors = {
        "MSFT": "Tech",
        "AAPL": "Tech",
        "XOM": "Energy",
        "CVX": "Energy",
        "JPM": "Banks",
        "CASH": "Banks",
    }
    return frame_of(r, assets), sectors


@pytest.mark.parametrize("method", ["centroid", "median", "weighted", "averag", ""])
def test_bad_linkage(small_returns, method):
    frame, sectors = small_returns
    with pytest.raises(InvalidInputError, match=r"(?i)linkage"):
        fc.correlation_clusters(frame, 2, linkage=method)
    with pytest.raises(InvalidInputError, match=r"(?i)linkage"):
        fc.sector_coherence(frame, sectors_frame(sectors), linkage=method)


@pytest.mark.parametrize(
    ("n_clusters", "error"),
    [(0, InvalidInputError), (-1, InvalidInputError), (6, InvalidInputError),
     (2.0, BAD_PARAM), (True, BAD_PARAM), ("2", BAD_PARAM)],
)  # fmt: skip
def test_bad_n_clusters(small_returns, n_clusters, error):
    frame, sectors = small_returns
    with pytest.raises(error, match=r"(?i)n_clusters|cluster"):
        fc.correlation_clusters(frame, n_clusters)
    assert fc.correlation_clusters(frame, 5).height == 5  # 5 clustered assets: k = 5 is fine
    if n_clusters != 6:  # sector_coherence clamps k to the included assets
        with pytest.raises(error, match=r"(?i)n_clusters|cluster"):
            fc.sector_coherence(frame, sectors_frame(sectors), n_clusters=n_clusters)


def test_clusters_with_nothing_to_cluster(small_returns):
    frame, _ = small_returns
    flat = frame.select("date", "CASH").with_columns(pl.lit(None, dtype=pl.Float64).alias("X"))
    with pytest.raises(InvalidInputError):
        fc.correlation_clusters(flat, 1)


@pytest.mark.parametrize("problem", ["unsorted", "duplicate", "null"])
def test_bad_dates(small_returns, problem):
    frame, sectors = small_returns
    dates = frame["date"].to_list()
    if problem == "unsorted":
        dates[10], dates[11] = dates[11], dates[10]
    elif problem == "duplicate":
        dates[11] = dates[10]
    else:
        dates[11] = None
    bad = frame.with_columns(pl.Series("date", dates, dtype=pl.Date))
    with pytest.raises(InvalidInputError, match=r"(?i)date"):
        fc.correlation_clusters(bad, 2)
    with pytest.raises(InvalidInputError, match=r"(?i)date"):
        fc.sector_coherence(bad, sectors_frame(sectors), window=10)


def test_sectors_missing_assets(small_returns):
    frame, sectors = small_returns
    partial = {a: s for a, s in sectors.items() if a not in ("XOM", "JPM")}
    with pytest.raises(InvalidInputError, match=has_all("XOM", "JPM")):
        fc.sector_coherence(frame, sectors_frame(partial))
    # a constant asset is still an asset of `returns`: it needs a sector too
    no_cash = {a: s for a, s in sectors.items() if a != "CASH"}
    with pytest.raises(InvalidInputError, match="CASH"):
        fc.sector_coherence(frame, sectors_frame(no_cash))


def test_sectors_duplicate_asset(small_returns):
    frame, sectors = small_returns
    dup = pl.concat([sectors_frame(sectors), sectors_frame({"AAPL": "Tech"})])
    with pytest.raises(InvalidInputError, match=r"(?i)AAPL|duplicate"):
        fc.sector_coherence(frame, dup)
    conflict = pl.concat([sectors_frame(sectors), sectors_frame({"XOM": "Banks"})])
    with pytest.raises(InvalidInputError, match=r"(?i)XOM|duplicate"):
        fc.sector_coherence(frame, conflict)


def test_sectors_missing_columns(small_returns):
    frame, sectors = small_returns
    with pytest.raises(InvalidInputError, match="sector"):
        fc.sector_coherence(frame, sectors_frame(sectors).drop("sector"))
    with pytest.raises(InvalidInputError, match="asset"):
        fc.sector_coherence(frame, sectors_frame(sectors).drop("asset"))
    with pytest.raises(InvalidInputError, match="gics"):
        fc.sector_coherence(frame, sectors_frame(sectors), sector="gics")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"window": 1}, InvalidInputError), ({"window": 61}, InvalidInputError),
     ({"window": 10, "step": 0}, InvalidInputError), ({"window": 10.0}, DtypeError),
     ({"window": 10, "step": True}, DtypeError)],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)  # fmt: skip
def test_coherence_bad_window(small_returns, kwargs, error):
    frame, sectors = small_returns
    with pytest.raises(error, match=r"(?i)window|step"):
        fc.sector_coherence(frame, sectors_frame(sectors), **kwargs)


def test_bad_input_fixture_has_five_clusterable_assets(small_returns):
    """Guards the data of the error tests: five clusterable assets in the first fixture."""
    frame, _ = small_returns
    r = frame.drop("date").to_numpy()
    assert reference_correlation_clusters(r, frame.columns[1:], 5).height == 5
    assert scipy_clusters(r[:, :5], 3).max() == 3
