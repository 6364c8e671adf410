"""The built-in synthetic market: `factorcore.datasets.sample_market`.

Checked from the specification alone, with independent NumPy/Python computations:

* schema and dtypes of every field of ``SampleMarket``; business days only; 500 assets and
  all 11 GICS sectors by default; styles growth / value / core; factors without nulls;
* listing and delisting: leading nulls for late listers, trailing nulls for delisted
  assets, never both, about the stated shares, no gap inside an asset's history;
* benchmark and portfolio snapshots on the last business day of every month, weights > 0
  summing to 1, only assets with a return that day; the rotation's growth-sector overweight
  through 2025 and its Financials / Industrials / Utilities overweight from the 2025-12-31
  snapshot on; the barbell's half-and-half Communication Services / Health Care split;
* the story numbers (2025 growth and value index returns, the best sectors of 2026) from
  a plain NumPy loop over the benchmark snapshot periods;
* sector structure in the correlations, with ``fc.sector_coherence`` and with NumPy;
* determinism and smaller arguments.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import factorcore as fc
import numpy as np
import polars as pl
import pytest
from factorcore.datasets import SECTORS, sample_market
from polars.testing import assert_frame_equal

GICS_SECTORS = {
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
}
STYLES = {"growth", "value", "core"}
FACTOR_NAMES = ["market", "size", "value", "momentum", "dollar"]
GROWTH_SECTORS = {"Information Technology", "Communication Services", "Consumer Discretionary"}
ROTATION_SECTORS = {"Financials", "Industrials", "Utilities"}
ROTATION_DATE = dt.date(2025, 12, 31)  # first snapshot of the 2026 regime
DEFAULT_START = dt.date(2016, 1, 1)
DEFAULT_END = dt.date(2026, 10, 30)
SMALL_START = dt.date(2024, 1, 1)
SMALL_END = dt.date(2026, 3, 31)
WEIGHT_TOL = 1e-12
STORY_TOL = 1e-9


# --------------------------------------------------------------------------------------------
# fixtures and plain-Python helpers
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def market():
    return sample_market()


@pytest.fixture(scope="module", params=[0, 7])
def small_market(request):
    return request.param, sample_market(
        seed=request.param, n_assets=40, start=SMALL_START, end=SMALL_END
    )


def business_days(start: dt.date, end: dt.date) -> list[dt.date]:
    days = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def month_ends(days: list[dt.date]) -> list[dt.date]:
    """The last of `days` in each calendar month."""
    last: dict[tuple[int, int], dt.date] = {}
    for day in days:
        key = (day.year, day.month)
        last[key] = max(last.get(key, day), day)
    return sorted(last.values())


def asset_columns(m) -> list[str]:
    return [c for c in m.returns.columns if c != "date"]


def returns_matrix(m) -> tuple[list[dt.date], list[str], np.ndarray]:
    """Dates, asset names and a (T, N) float array with NaN where the return is null."""
    names = asset_columns(m)
    values = m.returns.select(names).to_numpy().astype(np.float64)
    return m.returns.get_column("date").to_list(), names, values


def snapshots(frame: pl.DataFrame) -> dict[dt.date, dict[str, float]]:
    """{date: {asset: weight}} from a long ``date asset weight`` frame."""
    out: dict[dt.date, dict[str, float]] = {}
    for day, asset, weight in frame.select("date", "asset", "weight").iter_rows():
        out.setdefault(day, {})[asset] = weight
    return out


def sector_weights(snapshot: dict[str, float], sector_of: dict[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for asset, weight in snapshot.items():
        out[sector_of[asset]] = out.get(sector_of[asset], 0.0) + weight
    return out


def group_weight(snapshot: dict[str, float], sector_of: dict[str, str], group: set) -> float:
    return sum(w for a, w in snapshot.items() if sector_of[a] in group)


def style_index_year_return(m, members: set[str], year: int) -> float:
    """A style index of a set of assets over a calendar year, one benchmark snapshot
    period (a calendar month) at a time: the index holds the snapshot's weights of the
    members, renormalised, from the snapshot's close to the next snapshot, each asset
    compounding over the period (a missing return counts as 0: not traded). This is
    Brinson's benchmark sector return with the styles as sectors."""
    dates, names, values = returns_matrix(m)
    column = {name: j for j, name in enumerate(names)}
    bench = snapshots(m.benchmark)
    snap_dates = sorted(bench)
    date_arr = np.array(dates, dtype="datetime64[D]")
    growth = 1.0
    n_periods = 0
    for k, snap_date in enumerate(snap_dates):
        start = np.datetime64(snap_date, "D")
        if k + 1 < len(snap_dates):
            stop = np.datetime64(snap_dates[k + 1], "D")
            rows = np.nonzero((date_arr > start) & (date_arr <= stop))[0]
        else:
            rows = np.nonzero(date_arr > start)[0]
        rows = [t for t in rows if dates[t].year == year]
        if not rows:
            continue
        weights = np.zeros(len(names))
        for asset, weight in bench[snap_date].items():
            if asset in members:
                weights[column[asset]] = weight
        weights = weights / weights.sum()
        held = np.nonzero(weights)[0]
        period = 0.0
        for j in held:
            compounded = 1.0
            for t in rows:
                if not np.isnan(values[t, j]):
                    compounded *= 1.0 + values[t, j]
            period += weights[j] * (compounded - 1.0)
        growth *= 1.0 + period
        n_periods += 1
    assert n_periods > 0, f"no period of {year} held"
    return growth - 1.0


# --------------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------------
def test_sectors_constant_lists_the_eleven_gics_sectors():
    assert len(SECTORS) == 11
    assert set(SECTORS) == GICS_SECTORS
    assert all(isinstance(s, str) for s in SECTORS)


def test_sample_market_is_a_frozen_dataclass(market):
    assert dataclasses.is_dataclass(market)
    fields = {f.name for f in dataclasses.fields(market)}
    assert {"returns", "factors", "sectors", "benchmark", "portfolios"} <= fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        market.returns = market.factors  # type: ignore[misc]


def test_returns_schema(market):
    returns = market.returns
    assert isinstance(returns, pl.DataFrame)
    assert returns.columns[0] == "date"
    assert returns.schema["date"] == pl.Date
    names = asset_columns(market)
    assert len(names) == 500
    assert len(set(names)) == 500
    for name in names:
        assert returns.schema[name] == pl.Float64, name
        assert re.fullmatch(r"[A-Z]+[0-9]+", name), f"asset name {name!r}"


def test_returns_dates_are_business_days_of_the_sample(market):
    dates = market.returns.get_column("date").to_list()
    assert dates == business_days(DEFAULT_START, DEFAULT_END)
    assert dates[0] == DEFAULT_START
    assert dates[-1] == DEFAULT_END
    assert all(d.weekday() < 5 for d in dates)


def test_returns_values_are_finite_or_null(market):
    _, names, values = returns_matrix(market)
    # Missing values are nulls, not NaN: NaN in the array come only from nulls.
    for name in names:
        col = market.returns.get_column(name)
        assert col.is_nan().sum() == 0, f"{name} has NaN (missing values must be null)"
    present = values[~np.isnan(values)]
    assert np.isfinite(present).all()
    # Daily returns of a plausible equity market.
    assert np.abs(present).max() < 1.0
    assert 0.001 < present.std() < 0.1


def test_factors_schema_and_no_nulls(market):
    factors = market.factors
    assert isinstance(factors, pl.DataFrame)
    assert factors.columns == ["date", *FACTOR_NAMES]
    assert factors.schema["date"] == pl.Date
    assert factors.get_column("date").equals(market.returns.get_column("date"))
    for name in FACTOR_NAMES:
        assert factors.schema[name] == pl.Float64, name
        col = factors.get_column(name)
        assert col.null_count() == 0, name
        assert col.is_nan().sum() == 0, name
        assert np.isfinite(col.to_numpy()).all(), name
        assert col.std() > 0, f"factor {name} is constant"


def test_sectors_frame(market):
    sectors = market.sectors
    assert isinstance(sectors, pl.DataFrame)
    assert sectors.columns == ["asset", "sector", "style"]
    assert sectors.schema == pl.Schema(
        {"asset": pl.String, "sector": pl.String, "style": pl.String}
    )
    assert sectors.null_count().sum_horizontal().item() == 0
    assets = sectors.get_column("asset").to_list()
    assert len(assets) == len(set(assets)) == 500
    assert set(assets) == set(asset_columns(market))
    sector_values = set(sectors.get_column("sector").to_list())
    assert sector_values == GICS_SECTORS  # all 11 present
    assert set(sectors.get_column("style").to_list()) == STYLES  # all three present


def test_snapshot_frames_schema(market):
    assert isinstance(market.portfolios, dict)
    assert set(market.portfolios) == {"rotation", "barbell"}
    frames = {"benchmark": market.benchmark, **market.portfolios}
    for name, frame in frames.items():
        assert isinstance(frame, pl.DataFrame), name
        assert frame.columns == ["date", "asset", "weight"], name
        assert frame.schema == pl.Schema(
            {"date": pl.Date, "asset": pl.String, "weight": pl.Float64}
        ), name
        assert frame.null_count().sum_horizontal().item() == 0, name
        assert not frame.select("date", "asset").is_duplicated().any(), (
            f"{name}: a (date, asset) pair appears twice"
        )


# --------------------------------------------------------------------------------------------
# listing and delisting
# --------------------------------------------------------------------------------------------
def listing_profile(m):
    """Per asset: (listed late, delisted early), with a check that nothing is missing
    between the first and last non-null return."""
    _, names, values = returns_matrix(m)
    late, delisted = [], []
    for j, name in enumerate(names):
        present = np.nonzero(~np.isnan(values[:, j]))[0]
        assert present.size > 0, f"{name} has no return at all"
        first, last = present[0], present[-1]
        assert present.size == last - first + 1, (
            f"{name}: null return between its first ({first}) and last ({last}) return"
        )
        late.append(first > 0)
        delisted.append(last < values.shape[0] - 1)
    return names, np.array(late), np.array(delisted)


def test_late_listing_and_delisting(market):
    names, late, delisted = listing_profile(market)
    both = [n for n, a, b in zip(names, late, delisted, strict=True) if a and b]
    assert not both, f"assets both listing late and delisting: {both[:5]}"
    n = len(names)
    # About 5% list late and about 3% delist early.
    assert 0.02 * n <= late.sum() <= 0.09 * n, f"{late.sum()} late listers of {n}"
    assert 0.01 * n <= delisted.sum() <= 0.06 * n, f"{delisted.sum()} delisted of {n}"


def test_no_gap_inside_an_asset_history_small(small_market):
    _, m = small_market
    _, late, delisted = listing_profile(m)
    assert not (late & delisted).any()


# --------------------------------------------------------------------------------------------
# snapshots
# --------------------------------------------------------------------------------------------
def check_snapshot_frame(m, frame: pl.DataFrame, name: str) -> dict:
    dates, names, values = returns_matrix(m)
    row_of = {d: t for t, d in enumerate(dates)}
    column = {a: j for j, a in enumerate(names)}
    snaps = snapshots(frame)
    assert sorted(snaps) == month_ends(dates), f"{name}: snapshot dates"
    for day, weights in snaps.items():
        w = np.array(list(weights.values()))
        assert (w > 0).all(), f"{name} {day}: weight <= 0"
        assert abs(w.sum() - 1.0) <= WEIGHT_TOL, f"{name} {day}: weights sum to {w.sum()!r}"
        t = row_of[day]
        for asset in weights:
            assert asset in column, f"{name} {day}: {asset!r} is not a returns column"
            assert not np.isnan(values[t, column[asset]]), (
                f"{name} {day}: {asset} has no return on the snapshot date"
            )
    return snaps


def test_benchmark_snapshots(market):
    snaps = check_snapshot_frame(market, market.benchmark, "benchmark")
    assert len(snaps) == (2026 - 2016) * 12 + 10  # Jan 2016 .. Oct 2026
    assert min(snaps) == dt.date(2016, 1, 29)
    assert max(snaps) == DEFAULT_END
    # Cap-weighted over the assets that have a return on that date: all of them.
    dates, names, values = returns_matrix(market)
    row_of = {d: t for t, d in enumerate(dates)}
    for day, weights in snaps.items():
        trading = {names[j] for j in np.nonzero(~np.isnan(values[row_of[day]]))[0]}
        assert set(weights) == trading, f"benchmark {day}: universe differs from listed assets"


@pytest.mark.parametrize("name", ["rotation", "barbell"])
def test_portfolio_snapshots(market, name):
    snaps = check_snapshot_frame(market, market.portfolios[name], name)
    assert sorted(snaps) == sorted(set(market.benchmark.get_column("date").to_list()))


def test_rotation_holds_about_sixty_names(market):
    snaps = snapshots(market.portfolios["rotation"])
    counts = {day: len(w) for day, w in snaps.items()}
    bad = {d: c for d, c in counts.items() if not 40 <= c <= 80}
    assert not bad, f"rotation name counts outside 40..80: {dict(list(bad.items())[:5])}"


def test_rotation_overweights_growth_sectors_through_2025(market):
    sector_of = dict(market.sectors.select("asset", "sector").iter_rows())
    rotation = snapshots(market.portfolios["rotation"])
    bench = snapshots(market.benchmark)
    checked = 0
    for day in sorted(rotation):
        if not dt.date(2024, 1, 1) <= day < ROTATION_DATE:
            continue
        port = group_weight(rotation[day], sector_of, GROWTH_SECTORS)
        ref = group_weight(bench[day], sector_of, GROWTH_SECTORS)
        assert port > ref, f"{day}: rotation growth-sector weight {port} <= benchmark {ref}"
        checked += 1
    assert checked == 23  # Jan 2024 .. Nov 2025


def test_rotation_overweights_financials_industrials_utilities_from_2026(market):
    sector_of = dict(market.sectors.select("asset", "sector").iter_rows())
    rotation = snapshots(market.portfolios["rotation"])
    bench = snapshots(market.benchmark)
    later = [day for day in sorted(rotation) if day >= ROTATION_DATE]
    assert later[0] == ROTATION_DATE
    assert len(later) == 11  # 2025-12-31 .. 2026-10-30
    for day in later:
        port = group_weight(rotation[day], sector_of, ROTATION_SECTORS)
        ref = group_weight(bench[day], sector_of, ROTATION_SECTORS)
        assert port > ref, f"{day}: rotation Fin/Ind/Util weight {port} <= benchmark {ref}"
        port_g = group_weight(rotation[day], sector_of, GROWTH_SECTORS)
        ref_g = group_weight(bench[day], sector_of, GROWTH_SECTORS)
        assert port_g <= ref_g, f"{day}: growth-sector overweight still there ({port_g} > {ref_g})"


def check_barbell(m) -> None:
    sector_of = dict(m.sectors.select("asset", "sector").iter_rows())
    style_of = dict(m.sectors.select("asset", "style").iter_rows())
    barbell = snapshots(m.portfolios["barbell"])
    assert barbell
    for day, weights in barbell.items():
        by_sector = sector_weights(weights, sector_of)
        assert set(by_sector) == {"Communication Services", "Health Care"}, (
            f"barbell {day}: sectors {sorted(by_sector)}"
        )
        for sector, total in by_sector.items():
            assert abs(total - 0.5) <= WEIGHT_TOL, f"barbell {day}: {sector} weight {total!r}"
        for asset in weights:
            if sector_of[asset] == "Communication Services":
                assert style_of[asset] == "growth", f"barbell {day}: {asset} is not growth"


def test_barbell_structure(market):
    check_barbell(market)


# --------------------------------------------------------------------------------------------
# story numbers
# --------------------------------------------------------------------------------------------
def test_2025_growth_and_value_index_returns(market):
    style_of = dict(market.sectors.select("asset", "style").iter_rows())
    growth = {a for a, s in style_of.items() if s == "growth"}
    value = {a for a, s in style_of.items() if s == "value"}
    got_growth = style_index_year_return(market, growth, 2025)
    got_value = style_index_year_return(market, value, 2025)
    assert abs(got_growth - 0.199) <= STORY_TOL, f"growth index 2025: {got_growth!r}"
    assert abs(got_value - 0.123) <= STORY_TOL, f"value index 2025: {got_value!r}"


def test_2026_best_sectors_are_financials_industrials_utilities(market):
    sector_of = dict(market.sectors.select("asset", "sector").iter_rows())
    results = {}
    for sector in GICS_SECTORS:
        members = {a for a, s in sector_of.items() if s == sector}
        results[sector] = style_index_year_return(market, members, 2026)
    ranked = sorted(results, key=results.get, reverse=True)
    assert set(ranked[:3]) == ROTATION_SECTORS, f"2026 sector index returns: {results}"


def test_style_index_helper_on_a_hand_made_market():
    """The NumPy style index itself, on two assets and two snapshots."""
    dates = [dt.date(2025, 1, 30), dt.date(2025, 1, 31), dt.date(2025, 2, 3), dt.date(2025, 2, 4)]
    returns = pl.DataFrame({"date": dates, "A": [0.5, 0.1, 0.2, None], "B": [0.5, 0.3, 0.4, 0.1]})
    benchmark = pl.DataFrame(
        {
            "date": [dt.date(2025, 1, 30)] * 2 + [dt.date(2025, 1, 31)] * 2,
            "asset": ["A", "B", "A", "B"],
            "weight": [0.25, 0.75, 0.5, 0.5],
        }
    )
    fake = type("M", (), {"returns": returns, "benchmark": benchmark})()
    # 01-31 held with the 01-30 weights: 0.25*0.1 + 0.75*0.3 = 0.25; then the 01-31
    # weights over 02-03 and 02-04, each asset compounding (A's missing day counts as 0):
    # 0.5*(1.2 - 1) + 0.5*(1.4*1.1 - 1) = 0.37.
    expected = 1.25 * 1.37 - 1
    assert abs(style_index_year_return(fake, {"A", "B"}, 2025) - expected) < 1e-15
    assert abs(style_index_year_return(fake, {"B"}, 2025) - (1.3 * 1.54 - 1)) < 1e-15


# --------------------------------------------------------------------------------------------
# sectors drive correlations
# --------------------------------------------------------------------------------------------
def test_sector_coherence_full_sample(market):
    out = fc.sector_coherence(market.returns, market.sectors)
    assert set(out.get_column("sector").to_list()) == GICS_SECTORS
    assert out.get_column("date").n_unique() == 1
    ari = out.get_column("adjusted_rand_index").to_numpy()
    assert np.allclose(ari, ari[0])
    assert ari[0] > 0.5, f"adjusted Rand index {ari[0]}"
    for sector, intra, inter in out.select(
        "sector", "intra_correlation", "inter_correlation"
    ).iter_rows():
        assert intra > inter, f"{sector}: intra {intra} <= inter {inter}"


def test_intra_sector_correlation_exceeds_inter_numpy(market):
    _, names, values = returns_matrix(market)
    complete = ~np.isnan(values).any(axis=0)
    x = values[:, complete]
    kept = [n for n, c in zip(names, complete, strict=True) if c]
    sector_of = dict(market.sectors.select("asset", "sector").iter_rows())
    labels = np.array([sector_of[a] for a in kept])
    rho = np.corrcoef(x, rowvar=False)
    coherence = fc.sector_coherence(market.returns, market.sectors)
    by_sector = {row["sector"]: row for row in coherence.iter_rows(named=True)}
    for sector in sorted(GICS_SECTORS):
        inside = np.nonzero(labels == sector)[0]
        outside = np.nonzero(labels != sector)[0]
        assert inside.size >= 2, sector
        block = rho[np.ix_(inside, inside)]
        intra = (block.sum() - np.trace(block)) / (inside.size * (inside.size - 1))
        inter = rho[np.ix_(inside, outside)].mean()
        assert intra > inter, f"{sector}: intra {intra} <= inter {inter}"
        row = by_sector[sector]
        assert row["n_assets"] == inside.size, sector
        assert abs(row["intra_correlation"] - intra) < 1e-9, sector
        assert abs(row["inter_correlation"] - inter) < 1e-9, sector


def test_value_factor_is_value_minus_growth(market):
    """Daily value-minus-growth returns of equal-weighted style baskets move with `value`."""
    _, names, values = returns_matrix(market)
    style_of = dict(market.sectors.select("asset", "style").iter_rows())
    styles = np.array([style_of[a] for a in names])
    spread = np.nanmean(values[:, styles == "value"], axis=1) - np.nanmean(
        values[:, styles == "growth"], axis=1
    )
    factor = market.factors.get_column("value").to_numpy()
    assert np.corrcoef(spread, factor)[0, 1] > 0.1


# --------------------------------------------------------------------------------------------
# determinism, speed, other arguments
# --------------------------------------------------------------------------------------------
def assert_markets_equal(a, b) -> None:
    assert_frame_equal(a.returns, b.returns)
    assert_frame_equal(a.factors, b.factors)
    assert_frame_equal(a.sectors, b.sectors)
    assert_frame_equal(a.benchmark, b.benchmark)
    assert set(a.portfolios) == set(b.portfolios)
    for key in a.portfolios:
        assert_frame_equal(a.portfolios[key], b.portfolios[key])


def test_deterministic(market):
    again = sample_market()
    assert_markets_equal(market, again)
    assert_markets_equal(again, sample_market(seed=0))


def test_different_seed_differs(market):
    other = sample_market(seed=1)
    assert other.returns.shape == market.returns.shape
    assert not other.returns.equals(market.returns)
    assert not other.factors.equals(market.factors)


def test_small_arguments_consistent(small_market):
    seed, m = small_market
    days = business_days(SMALL_START, SMALL_END)
    assert m.returns.get_column("date").to_list() == days
    assert m.returns.schema["date"] == pl.Date
    names = asset_columns(m)
    assert len(names) == 40 == len(set(names))
    assert all(m.returns.schema[n] == pl.Float64 for n in names)
    assert m.factors.columns == ["date", *FACTOR_NAMES]
    assert m.factors.get_column("date").to_list() == days
    assert m.factors.null_count().sum_horizontal().item() == 0
    assert m.sectors.columns == ["asset", "sector", "style"]
    assert m.sectors.height == 40
    assert set(m.sectors.get_column("asset").to_list()) == set(names)
    assert set(m.sectors.get_column("sector").to_list()) <= GICS_SECTORS
    assert set(m.sectors.get_column("style").to_list()) <= STYLES
    assert set(m.portfolios) == {"rotation", "barbell"}
    bench = check_snapshot_frame(m, m.benchmark, "benchmark")
    assert len(bench) == 27  # Jan 2024 .. Mar 2026
    assert max(bench) == SMALL_END
    for key, frame in m.portfolios.items():
        assert frame.schema == m.benchmark.schema, key
        snaps = check_snapshot_frame(m, frame, key)
        assert sorted(snaps) == sorted(bench), key
    check_barbell(m)
    again = sample_market(seed=seed, n_assets=40, start=SMALL_START, end=SMALL_END)
    assert_markets_equal(m, again)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_assets": 21}, "two per sector"),
        ({"start": dt.date(2026, 1, 1)}, "needs a year"),
    ],
)
def test_too_small_a_market_is_a_clear_error(kwargs, message):
    with pytest.raises(fc.InvalidInputError, match=message):
        sample_market(**kwargs)


def test_smallest_market_still_has_both_portfolios():
    small = sample_market(n_assets=22, start=dt.date(2025, 1, 1), end=dt.date(2026, 1, 30))
    for weights in (small.benchmark, *small.portfolios.values()):
        sums = weights.group_by("date").agg(pl.col("weight").sum()).get_column("weight")
        np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=0, atol=1e-12)
