"""Holdings-level Brinson input from daily returns and weight snapshots:
`factorcore.holdings_periods`.

Checked against an independent reference written in plain Python/NumPy straight from the
specification (loops over periods and assets):

* periods = return rows grouped by calendar month ("1mo"), quarter ("1q") or ISO week
  starting Monday ("1w"), each dated by its last return date;
* per side, the latest snapshot dated strictly before the period's first return date;
  periods before both sides have a snapshot are dropped;
* ret = prod(1 + r) - 1 over the period's rows, a null or NaN return counting as 0;
* one row per (period, asset) where wp != 0 or wb != 0, the absent side's weight 0.0,
  sorted by date then asset.

On seeded random data with gaps (nulls, NaN, a late lister, a month without rows), wide
and long returns, Date and Datetime dates, custom column names, snapshots dated mid-period
and exactly on a period's first date, a side that starts later than the other, assets held
on one side only. Also: `fc.brinson` accepts the output directly and its totals are
Rp - Rb per period; documented errors.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import factorcore as fc
import numpy as np
import polars as pl
import pytest
from factorcore import InvalidInputError, NonFiniteError
from factorcore.datasets import sample_market

TOL = 1e-14
OUTPUT_COLUMNS = ["date", "asset", "sector", "wp", "wb", "ret"]
EVERY = ["1mo", "1q", "1w"]
# Asset names whose string order differs from the column order.
ASSETS = ["ZETA", "ALFA", "MIKE", "BRAVO", "YANK", "CHAR", "XRAY", "DELT", "KILO", "ECHO"]
ONLY_P = "PONLY"  # held by the portfolio only
ONLY_B = "BONLY"  # held by the benchmark only
LATE = "LATE"  # lists after the start of the sample
SECTOR_NAMES = ["Tech", "Energy", "Banks", "Health"]


# --------------------------------------------------------------------------------------------
# independent reference
# --------------------------------------------------------------------------------------------
def as_day(d) -> dt.date:
    return d.date() if isinstance(d, dt.datetime) else d


def period_key(d, every: str):
    """The calendar period of a date: month, quarter, or the Monday starting its week."""
    day = as_day(d)
    if every == "1mo":
        return (day.year, day.month)
    if every == "1q":
        return (day.year, (day.month - 1) // 3)
    if every == "1w":
        return day - dt.timedelta(days=day.weekday())
    raise ValueError(every)


def reference_holdings_periods(
    dates: list,
    assets: list[str],
    values: np.ndarray,
    portfolio: list[tuple],
    benchmark: list[tuple],
    sector_of: dict[str, str],
    every: str,
) -> list[tuple]:
    """Rows (date, asset, sector, wp, wb, ret) as the specification defines them.

    `values` is (T, N) with NaN for every missing return; `portfolio` and `benchmark` are
    lists of (date, asset, weight) snapshot rows.
    """
    periods: dict = {}
    for t, d in enumerate(dates):
        periods.setdefault(period_key(d, every), []).append(t)
    column = {a: j for j, a in enumerate(assets)}
    sides = []
    for snaps in (portfolio, benchmark):
        by_date: dict = {}
        for d, a, w in snaps:
            by_date.setdefault(d, {})[a] = w
        sides.append(by_date)
    rows = []
    for key in sorted(periods):
        idx = sorted(periods[key], key=lambda t: dates[t])
        first, last = dates[idx[0]], dates[idx[-1]]
        chosen = []
        for by_date in sides:
            before = [d for d in by_date if d < first]
            chosen.append(by_date[max(before)] if before else None)
        if chosen[0] is None or chosen[1] is None:
            continue
        wp_of, wb_of = chosen
        for asset in set(wp_of) | set(wb_of):
            wp = float(wp_of.get(asset, 0.0))
            wb = float(wb_of.get(asset, 0.0))
            if wp == 0.0 and wb == 0.0:
                continue
            j = column[asset]
            growth = 1.0
            for t in idx:
                r = values[t, j]
                if not math.isnan(r):
                    growth *= 1.0 + r
            rows.append((last, asset, sector_of[asset], wp, wb, growth - 1.0))
    rows.sort(key=lambda row: (row[0], row[1]))
    return rows


def assert_matches(got: pl.DataFrame, ref: list[tuple], *, date_dtype=pl.Date) -> None:
    assert got.columns == OUTPUT_COLUMNS
    assert got.schema == pl.Schema(
        {
            "date": date_dtype,
            "asset": pl.String,
            "sector": pl.String,
            "wp": pl.Float64,
            "wb": pl.Float64,
            "ret": pl.Float64,
        }
    )
    assert got.null_count().sum_horizontal().item() == 0
    got_rows = got.rows()
    assert len(got_rows) == len(ref), f"{len(got_rows)} rows, expected {len(ref)}"
    keys = [(r[0], r[1]) for r in got_rows]
    assert keys == sorted(keys), "output not sorted by date then asset"
    for g, e in zip(got_rows, ref, strict=True):
        assert g[:3] == e[:3], f"row {g[:3]} != expected {e[:3]}"
        for name, gv, ev in zip(("wp", "wb", "ret"), g[3:], e[3:], strict=True):
            assert abs(gv - ev) <= TOL, f"{e[:2]} {name}: {gv!r} != {ev!r}"


# --------------------------------------------------------------------------------------------
# seeded random cases
# --------------------------------------------------------------------------------------------
def business_days(start: dt.date, end: dt.date) -> list[dt.date]:
    out = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def normalised(rng, assets: list[str]) -> dict[str, float]:
    w = rng.uniform(0.2, 1.0, len(assets))
    w = w / w.sum()
    return dict(zip(assets, w.tolist(), strict=True))


class Case:
    """Returns (wide/long frames and a NaN array), snapshots and sectors for one seed."""

    def __init__(
        self,
        seed: int,
        *,
        portfolio_start: dt.date | None = None,
        benchmark_start: dt.date | None = None,
    ):
        rng = np.random.default_rng(seed)
        days = business_days(dt.date(2023, 11, 1), dt.date(2024, 9, 30))
        # Holidays, and no rows at all in May 2024 (a period without return rows).
        days = [d for d in days if rng.random() > 0.05 and not (d.year == 2024 and d.month == 5)]
        self.dates = days
        self.assets = [*ASSETS, ONLY_P, ONLY_B, LATE, "NEVER"]
        t_len, n = len(days), len(self.assets)
        values = rng.normal(0.0, 0.02, (t_len, n))
        missing = rng.random((t_len, n)) < 0.12
        missing[: t_len // 3, self.assets.index(LATE)] = True
        values[missing] = np.nan
        self.values = values
        # Half of the missing cells are nulls, the other half NaN.
        self.as_null = missing & (rng.random((t_len, n)) < 0.5)

        eligible = [a for a in self.assets if a not in (ONLY_P, ONLY_B, "NEVER")]
        bench_dates = [month_end(2023, 10)] + [
            month_end(2023 + (10 + k) // 12, (10 + k) % 12 + 1) for k in range(11)
        ]
        # Portfolio: mid-month dates (used from the next period on), one snapshot dated
        # exactly on the first return date of a month (so not used for that month), one
        # on a Saturday.
        first_of_july = min(d for d in days if d.month == 7)
        port_dates = [
            dt.date(2023, 10, 16),
            dt.date(2023, 12, 15),
            dt.date(2024, 2, 14),
            dt.date(2024, 3, 9),  # Saturday
            dt.date(2024, 4, 17),
            first_of_july,
            dt.date(2024, 8, 20),
        ]
        if portfolio_start is not None:
            port_dates = [d for d in port_dates if d >= portfolio_start]
        if benchmark_start is not None:
            bench_dates = [d for d in bench_dates if d >= benchmark_start]
        # Explicit zero weights: "NEVER" on both sides (no row), ONLY_B in the portfolio.
        self.portfolio: list[tuple] = []
        self.benchmark: list[tuple] = []
        for d in port_dates:
            held = [a for a in eligible if rng.random() < 0.6] or eligible[:2]
            if d >= dt.date(2024, 1, 1):
                held = [*held, ONLY_P]
            for a, w in normalised(rng, held).items():
                self.portfolio.append((d, a, w))
            self.portfolio += [(d, "NEVER", 0.0), (d, ONLY_B, 0.0)]
        for d in bench_dates:
            held = [a for a in eligible if rng.random() < 0.85] or eligible[:3]
            held = [*held, ONLY_B]
            for a, w in normalised(rng, held).items():
                self.benchmark.append((d, a, w))
            self.benchmark.append((d, "NEVER", 0.0))
        self.sector_of = {a: SECTOR_NAMES[i % len(SECTOR_NAMES)] for i, a in enumerate(self.assets)}

    # frames ----------------------------------------------------------------------------------
    def column_values(self, j: int) -> list:
        out = []
        for t in range(len(self.dates)):
            v = self.values[t, j]
            if math.isnan(v):
                out.append(None if self.as_null[t, j] else float("nan"))
            else:
                out.append(float(v))
        return out

    def wide(self, *, date: str = "date", dtype=pl.Date) -> pl.DataFrame:
        cols = {date: pl.Series(date, self.dates, dtype=pl.Date).cast(dtype)}
        for j, a in enumerate(self.assets):
            cols[a] = pl.Series(a, self.column_values(j), dtype=pl.Float64)
        return pl.DataFrame(cols)

    def long(self, *, date: str = "date", asset: str = "asset", drop_missing: bool = True):
        """Long returns; with `drop_missing` the null cells are left out as rows (NaN kept)."""
        d_col, a_col, r_col = [], [], []
        for t, d in enumerate(self.dates):
            for j, a in enumerate(self.assets):
                v = self.values[t, j]
                if math.isnan(v):
                    if self.as_null[t, j] and drop_missing:
                        continue
                    v = None if self.as_null[t, j] else float("nan")
                d_col.append(d)
                a_col.append(a)
                r_col.append(v)
        return pl.DataFrame(
            {
                date: pl.Series(d_col, dtype=pl.Date),
                asset: pl.Series(a_col, dtype=pl.String),
                "return": pl.Series(r_col, dtype=pl.Float64),
            }
        )

    @staticmethod
    def snapshot_frame(rows, *, date="date", asset="asset", weight="weight", dtype=pl.Date):
        return pl.DataFrame(
            {
                date: pl.Series([r[0] for r in rows], dtype=pl.Date).cast(dtype),
                asset: pl.Series([r[1] for r in rows], dtype=pl.String),
                weight: pl.Series([r[2] for r in rows], dtype=pl.Float64),
            }
        )

    def sectors(self, *, asset="asset", sector="sector") -> pl.DataFrame:
        names = [*self.assets, "UNUSED"]
        return pl.DataFrame(
            {
                asset: names,
                sector: [self.sector_of.get(a, "Other") for a in names],
                "style": ["growth"] * len(names),  # extra column, ignored
            }
        )

    def reference(self, every: str = "1mo", *, dtype=pl.Date) -> list[tuple]:
        dates = self.dates
        portfolio, benchmark = self.portfolio, self.benchmark
        if dtype != pl.Date:
            conv = lambda d: dt.datetime(d.year, d.month, d.day)  # noqa: E731
            dates = [conv(d) for d in dates]
            portfolio = [(conv(d), a, w) for d, a, w in portfolio]
            benchmark = [(conv(d), a, w) for d, a, w in benchmark]
        return reference_holdings_periods(
            dates, self.assets, self.values, portfolio, benchmark, self.sector_of, every
        )

    def run(self, returns=None, every: str = "1mo", **kwargs) -> pl.DataFrame:
        return fc.holdings_periods(
            self.wide() if returns is None else returns,
            self.snapshot_frame(self.portfolio),
            self.snapshot_frame(self.benchmark),
            self.sectors(),
            every=every,
            **kwargs,
        )


SEEDS = [0, 1, 2, 3]


@pytest.mark.parametrize("every", EVERY)
@pytest.mark.parametrize("seed", SEEDS)
def test_wide_returns_match_reference(seed, every):
    case = Case(seed)
    ref = case.reference(every)
    assert ref, "the case should produce rows"
    assert_matches(case.run(every=every), ref)


@pytest.mark.parametrize("every", EVERY)
@pytest.mark.parametrize("drop_missing", [True, False])
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_long_returns_match_reference(seed, every, drop_missing):
    case = Case(seed)
    long = case.long(drop_missing=drop_missing)
    assert_matches(case.run(long, every=every), case.reference(every))


def test_wide_and_long_agree():
    case = Case(5)
    wide = case.run()
    long = case.run(case.long())
    assert wide.columns == long.columns
    assert wide.select("date", "asset", "sector").equals(long.select("date", "asset", "sector"))
    for name in ("wp", "wb", "ret"):
        diff = (wide.get_column(name) - long.get_column(name)).abs().max()
        assert diff <= TOL, name


@pytest.mark.parametrize("every", EVERY)
@pytest.mark.parametrize("unit", ["us", "ms"])
def test_datetime_dates(unit, every):
    case = Case(11)
    dtype = pl.Datetime(unit)
    got = fc.holdings_periods(
        case.wide(dtype=dtype),
        case.snapshot_frame(case.portfolio, dtype=dtype),
        case.snapshot_frame(case.benchmark, dtype=dtype),
        case.sectors(),
        every=every,
    )
    assert_matches(got, case.reference(every, dtype=dtype), date_dtype=dtype)


@pytest.mark.parametrize("long", [False, True])
def test_custom_column_names(long):
    case = Case(21)
    names = {"date": "day", "asset": "ticker", "weight": "w", "sector": "industry"}
    returns = case.long(date="day", asset="ticker") if long else case.wide(date="day")
    got = fc.holdings_periods(
        returns,
        case.snapshot_frame(case.portfolio, date="day", asset="ticker", weight="w"),
        case.snapshot_frame(case.benchmark, date="day", asset="ticker", weight="w"),
        case.sectors(asset="ticker", sector="industry"),
        **names,
    )
    # The output columns are the documented `date asset sector wp wb ret`.
    assert_matches(got, case.reference())


def test_order_of_input_rows_does_not_matter():
    case = Case(31)
    long = case.long().sample(fraction=1.0, shuffle=True, seed=4)
    port = case.snapshot_frame(case.portfolio).sample(fraction=1.0, shuffle=True, seed=5)
    bench = case.snapshot_frame(case.benchmark).sample(fraction=1.0, shuffle=True, seed=6)
    sectors = case.sectors().reverse()
    got = fc.holdings_periods(long, port, bench, sectors)
    assert_matches(got, case.reference())


@pytest.mark.parametrize(
    ("late_side", "first_month"),
    [
        (None, (2023, 11)),  # both sides have an October snapshot
        ("portfolio", (2024, 1)),  # first portfolio snapshot 2023-12-15
        ("benchmark", (2024, 3)),  # first benchmark snapshot 2024-02-29
    ],
)
@pytest.mark.parametrize("every", ["1mo", "1w"])
def test_side_starting_later_drops_earlier_periods(late_side, first_month, every):
    if late_side == "portfolio":
        case = Case(41, portfolio_start=dt.date(2023, 11, 1))
    elif late_side == "benchmark":
        case = Case(41, benchmark_start=dt.date(2024, 2, 1))
    else:
        case = Case(41)
    ref = case.reference(every)
    got = case.run(every=every)
    assert_matches(got, ref)
    if every == "1mo":
        first = got.get_column("date").min()
        expected = max(d for d in case.dates if (d.year, d.month) == first_month)
        assert first == expected, f"first period dated {first}, expected {expected}"
    else:
        # Exactly the weeks whose first return date is after both sides' first snapshots.
        both_from = max(min(r[0] for r in case.portfolio), min(r[0] for r in case.benchmark))
        first_date: dict = {}
        for d in case.dates:  # sorted
            first_date.setdefault(period_key(d, "1w"), d)
        kept = {period_key(d, "1w") for d in got.get_column("date").to_list()}
        assert kept == {w for w, first in first_date.items() if first > both_from}


def test_snapshot_selection_and_assets_on_one_side():
    case = Case(51)
    got = case.run()
    assert_matches(got, case.reference())
    port_assets = set(got.filter(pl.col("wb") == 0).get_column("asset").to_list())
    bench_assets = set(got.filter(pl.col("wp") == 0).get_column("asset").to_list())
    assert ONLY_P in port_assets
    assert ONLY_B in bench_assets
    assert "NEVER" not in set(got.get_column("asset").to_list())
    assert (got.filter(pl.col("asset") == ONLY_P).get_column("wb") == 0.0).all()
    assert (got.filter(pl.col("asset") == ONLY_B).get_column("wp") == 0.0).all()
    # No period in May 2024 (no return rows); June uses the latest snapshots before June.
    months = {(d.year, d.month) for d in got.get_column("date").to_list()}
    assert (2024, 5) not in months
    # The portfolio snapshot dated on July's first return date is not used for July.
    july = got.filter(pl.col("date").dt.month() == 7)
    first_of_july = min(d for d in case.dates if d.month == 7)
    july_snapshot = {a: w for d, a, w in case.portfolio if d == first_of_july and w != 0}
    earlier = max(d for d, _, _ in case.portfolio if d < first_of_july)
    july_expected = {a: w for d, a, w in case.portfolio if d == earlier and w != 0}
    held = dict(july.filter(pl.col("wp") != 0).select("asset", "wp").iter_rows())
    assert held == july_expected
    assert held != july_snapshot
    august = got.filter(pl.col("date").dt.month() == 8)
    held_aug = dict(august.filter(pl.col("wp") != 0).select("asset", "wp").iter_rows())
    assert held_aug == july_snapshot


def test_hand_computed_example():
    dates = [
        dt.date(2024, 1, 2),
        dt.date(2024, 1, 31),
        dt.date(2024, 2, 1),
        dt.date(2024, 2, 15),
        dt.date(2024, 2, 29),
    ]
    returns = pl.DataFrame(
        {
            "date": dates,
            "A": [0.10, 0.20, None, -0.50, 0.10],
            "B": [0.05, float("nan"), 0.02, 0.03, None],
            "C": [0.01, 0.01, 0.01, 0.01, 0.01],
        }
    )
    portfolio = pl.DataFrame(
        {
            "date": [dt.date(2023, 12, 29)] * 2 + [dt.date(2024, 1, 15)] * 2,
            "asset": ["A", "B", "A", "C"],
            "weight": [0.6, 0.4, 0.3, 0.7],
        }
    )
    benchmark = pl.DataFrame(
        {
            "date": [dt.date(2023, 12, 31)] * 3 + [dt.date(2024, 2, 1)],
            "asset": ["A", "B", "C", "B"],
            "weight": [0.5, 0.5, 0.0, 1.0],
        }
    )
    sectors = pl.DataFrame({"asset": ["C", "B", "A"], "sector": ["S2", "S1", "S1"]})
    got = fc.holdings_periods(returns, portfolio, benchmark, sectors)
    jan, feb = dt.date(2024, 1, 31), dt.date(2024, 2, 29)
    expected = [
        (jan, "A", "S1", 0.6, 0.5, 1.1 * 1.2 - 1),
        (jan, "B", "S1", 0.4, 0.5, 0.05),
        # February: portfolio of Jan 15, benchmark of Dec 31 (Feb 1 is not before Feb 1).
        (feb, "A", "S1", 0.3, 0.5, 0.5 * 1.1 - 1),
        (feb, "B", "S1", 0.0, 0.5, 1.02 * 1.03 - 1),
        (feb, "C", "S2", 0.7, 0.0, 1.01**3 - 1),
    ]
    assert_matches(got, expected)


@pytest.mark.parametrize("every", EVERY)
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_brinson_accepts_the_output(seed, every):
    case = Case(seed)
    hp = case.run(every=every)
    effects = fc.brinson(hp)
    assert effects.get_column("date").unique().sort().to_list() == (
        hp.get_column("date").unique().sort().to_list()
    )
    active = {}
    for d, wp, wb, ret in hp.select("date", "wp", "wb", "ret").iter_rows():
        active[d] = active.get(d, 0.0) + wp * ret - wb * ret
    totals = {}
    for d, total in effects.select("date", "total").iter_rows():
        totals[d] = totals.get(d, 0.0) + total
    assert set(totals) == set(active)
    for d in active:
        assert abs(totals[d] - active[d]) <= 1e-12, f"{d}: {totals[d]} != {active[d]}"


@pytest.fixture(scope="module")
def market():
    return sample_market()


@pytest.mark.parametrize("name", ["rotation", "barbell"])
def test_sample_market_portfolios(market, name):
    returns = market.returns
    assets = [c for c in returns.columns if c != "date"]
    values = returns.select(assets).to_numpy().astype(np.float64)
    portfolio = market.portfolios[name]
    sector_of = dict(market.sectors.select("asset", "sector").iter_rows())
    ref = reference_holdings_periods(
        returns.get_column("date").to_list(),
        assets,
        values,
        portfolio.rows(),
        market.benchmark.rows(),
        sector_of,
        "1mo",
    )
    got = fc.holdings_periods(returns, portfolio, market.benchmark, market.sectors)
    assert_matches(got, ref)
    # Monthly snapshots on the last business day: the first month is dropped, every later
    # month is a period dated on its last business day.
    assert got.get_column("date").n_unique() == market.benchmark.get_column("date").n_unique() - 1
    effects = fc.brinson(got)
    per_date = got.group_by("date").agg(
        active=(pl.col("wp") * pl.col("ret")).sum() - (pl.col("wb") * pl.col("ret")).sum()
    )
    totals = effects.group_by("date").agg(pl.col("total").sum()).join(per_date, on="date")
    assert totals.height == per_date.height
    assert (totals.get_column("total") - totals.get_column("active")).abs().max() <= 1e-12


def test_reference_periods_by_hand():
    """The reference's own grouping and dating on a tiny example."""
    dates = [dt.date(2024, 3, 28), dt.date(2024, 4, 1), dt.date(2024, 4, 5), dt.date(2024, 4, 8)]
    values = np.array([[0.1], [0.2], [np.nan], [0.3]])
    snaps = [(dt.date(2024, 3, 1), "A", 1.0)]
    monthly = reference_holdings_periods(dates, ["A"], values, snaps, snaps, {"A": "S"}, "1mo")
    assert [r[0] for r in monthly] == [dt.date(2024, 3, 28), dt.date(2024, 4, 8)]
    assert abs(monthly[1][5] - (1.2 * 1.3 - 1)) < 1e-15
    weekly = reference_holdings_periods(dates, ["A"], values, snaps, snaps, {"A": "S"}, "1w")
    assert [r[0] for r in weekly] == [
        dt.date(2024, 3, 28),
        dt.date(2024, 4, 5),
        dt.date(2024, 4, 8),
    ]
    assert abs(weekly[1][5] - 0.2) < 1e-15
    quarterly = reference_holdings_periods(dates, ["A"], values, snaps, snaps, {"A": "S"}, "1q")
    assert [r[0] for r in quarterly] == [dt.date(2024, 3, 28), dt.date(2024, 4, 8)]


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_held_asset_missing_from_sectors_is_named():
    case = Case(61)
    sectors = case.sectors().filter(pl.col("asset") != ONLY_P)
    with pytest.raises(InvalidInputError, match=ONLY_P):
        fc.holdings_periods(
            case.wide(),
            case.snapshot_frame(case.portfolio),
            case.snapshot_frame(case.benchmark),
            sectors,
        )


def test_weighted_asset_not_a_returns_column():
    case = Case(62)
    wide = case.wide().drop(ONLY_B)
    with pytest.raises(InvalidInputError):
        fc.holdings_periods(
            wide,
            case.snapshot_frame(case.portfolio),
            case.snapshot_frame(case.benchmark),
            case.sectors(),
        )


@pytest.mark.parametrize(
    ("frame", "column"),
    [
        ("returns", "date"),
        ("portfolio", "date"),
        ("portfolio", "asset"),
        ("portfolio", "weight"),
        ("benchmark", "date"),
        ("benchmark", "asset"),
        ("benchmark", "weight"),
        ("sectors", "asset"),
        ("sectors", "sector"),
    ],
)
def test_missing_columns(frame, column):
    case = Case(64)
    frames = {
        "returns": case.wide(),
        "portfolio": case.snapshot_frame(case.portfolio),
        "benchmark": case.snapshot_frame(case.benchmark),
        "sectors": case.sectors(),
    }
    frames[frame] = frames[frame].rename({column: f"not_{column}"})
    with pytest.raises(InvalidInputError):
        fc.holdings_periods(
            frames["returns"], frames["portfolio"], frames["benchmark"], frames["sectors"]
        )


def test_missing_custom_column():
    case = Case(65)
    with pytest.raises(InvalidInputError):
        fc.holdings_periods(
            case.wide(),
            case.snapshot_frame(case.portfolio),
            case.snapshot_frame(case.benchmark),
            case.sectors(),
            weight="w",
        )


def has_all(*parts: str) -> str:
    """Regex matching a message that contains every one of ``parts`` (any order)."""
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


def case_with_return(seed: int, name: str, t: int, value: float) -> Case:
    case = Case(seed)
    j = case.assets.index(name)
    case.values[t, j] = value
    case.as_null[t, j] = False
    return case


@pytest.mark.parametrize("long", [False, True], ids=["wide", "long"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_return_is_refused(long, value):
    """An infinite return went through to `ret` (or compounded to inf/NaN)."""
    case = case_with_return(66, "MIKE", 40, value)
    returns = case.long() if long else case.wide()
    with pytest.raises(NonFiniteError, match=has_all("MIKE", case.dates[40].isoformat())):
        case.run(returns)


@pytest.mark.parametrize("long", [False, True], ids=["wide", "long"])
def test_return_below_minus_100_percent_is_refused(long):
    """-150% compounded into a plausible-looking period return."""
    case = case_with_return(67, "ZETA", 55, -1.5)
    returns = case.long() if long else case.wide()
    with pytest.raises(
        InvalidInputError, match=has_all("ZETA", case.dates[55].isoformat(), "-100%")
    ):
        case.run(returns)


def test_return_of_minus_100_percent_is_a_total_loss():
    case = case_with_return(68, "ALFA", 70, -1.0)
    got = case.run()
    assert_matches(got, case.reference())
    period = got.filter(pl.col("asset") == "ALFA").filter(pl.col("ret") == -1.0)
    assert period.height >= 1


@pytest.mark.parametrize("value", [float("nan"), np.inf])
@pytest.mark.parametrize("side", ["portfolio", "benchmark"])
def test_nan_or_infinite_weight_is_refused(side, value):
    """A NaN weight went through to `wp`/`wb`."""
    case = Case(69)
    rows = list(getattr(case, side))
    day, name, _ = rows[5]
    rows[5] = (day, name, value)
    frames = {
        "portfolio": case.snapshot_frame(case.portfolio),
        "benchmark": case.snapshot_frame(case.benchmark),
    }
    frames[side] = case.snapshot_frame(rows)
    error = InvalidInputError if np.isnan(value) else NonFiniteError
    with pytest.raises(error, match=has_all(side, day.isoformat(), name)):
        fc.holdings_periods(case.wide(), frames["portfolio"], frames["benchmark"], case.sectors())


@pytest.mark.parametrize("frame", ["portfolio", "long returns", "sectors"])
def test_null_asset_label_is_refused(frame):
    case = Case(70)
    frames = {
        "returns": case.long(),
        "portfolio": case.snapshot_frame(case.portfolio),
        "benchmark": case.snapshot_frame(case.benchmark),
        "sectors": case.sectors(),
    }
    key = "returns" if frame == "long returns" else frame
    null_at_3 = pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("asset"))
    frames[key] = frames[key].with_columns(null_at_3.alias("asset"))
    with pytest.raises(InvalidInputError, match=has_all("asset", "null", "row 3")):
        fc.holdings_periods(
            frames["returns"], frames["portfolio"], frames["benchmark"], frames["sectors"]
        )
