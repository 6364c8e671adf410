"""The main job: every analytic of factorcore on the built-in sample market.

``factorcore demo`` (or ``python -m factorcore.demo``) prints a report on how the
portfolios' growth/value exposures drifted into the 2026 rotation, which sectors drove
their active return, and how many independent bets they really hold; it writes the
tables as Parquet and, with matplotlib, the charts as PNG.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import polars as pl

import factorcore as fc
from factorcore.cli import write_file
from factorcore.datasets import SampleMarket, sample_market

WINDOW = 252  # one year of business days
HALFLIFE = 63  # three months, as in Barra-style exposures
STEP = 21  # diversification scores once a month
LINK_FROM = dt.date(2025, 1, 1)  # attribution is linked from here to the end


def run(out: Path, *, seed: int = 0, charts: bool = True) -> dict[str, pl.DataFrame]:
    """Run the demo, print the report and write the tables (and charts) to `out`."""
    start = time.perf_counter()
    market = sample_market(seed)
    portfolios = {**market.portfolios, "benchmark": market.benchmark}
    _heading("Sample market")
    _market_story(market)

    _heading("Exposures: growth vs value")
    clock = time.perf_counter()
    exposures = fc.rolling_exposures(
        market.returns, market.factors, window=WINDOW, halflife=HALFLIFE
    )
    seconds = time.perf_counter() - clock
    factors = [c for c in market.factors.columns if c != "date"]
    print(
        f"Rolling {WINDOW}-day exposures ({HALFLIFE}-day half-life) of "
        f"{market.returns.width - 1} assets on {len(factors)} factors: "
        f"{exposures.height:,} regressions in {seconds:.2f} s."
    )
    exposures = exposures.with_columns(pl.col("asset").cast(pl.String))
    held = _portfolio_exposures(exposures, portfolios, factors)
    _exposure_story(held, exposures, market)

    _heading("Attribution: where the active return came from")
    effects, linked = _attribution(market)
    _attribution_story(effects, linked)

    _heading("Diversification: how many bets")
    scores, benchmark = _diversification(market)
    bets = _factor_bets(exposures, portfolios, market)
    _diversification_story(scores, benchmark, bets, portfolios, market)

    tables = {
        "exposures": exposures.join(
            market.benchmark.select("date").unique(), on="date", how="semi"
        ),
        "portfolio_exposures": held,
        "attribution": effects,
        "attribution_linked": linked,
        "diversification": pl.concat([scores, benchmark]),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        # Each file is replaced only once complete: an interrupted run leaves the old one.
        write_file(out / f"{name}.parquet", table.write_parquet)
    written = [f"{name}.parquet" for name in tables]
    if charts:
        # The charts show the portfolios over time; the benchmark has its last window only.
        written += _charts(out, {**tables, "diversification": scores})
    print(f"\nWrote {', '.join(written)} to {out}/ in {time.perf_counter() - start:.1f} s.")
    return tables


def _heading(title: str) -> None:
    print(f"\n== {title} ==")


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def _index_returns(market: SampleMarket, label: str) -> pl.DataFrame:
    """Calendar-year returns of the benchmark's indices per `label` (sector or style).

    The benchmark against itself, with the label as the sector: Brinson's `rb` per
    label and month is that index's monthly return.
    """
    labels = market.sectors.select("asset", pl.col(label).alias("sector"))
    periods = fc.holdings_periods(market.returns, market.benchmark, market.benchmark, labels)
    return (
        fc.brinson(periods)
        .group_by(pl.col("date").dt.year().alias("year"), "sector")
        .agg((pl.col("rb") + 1).product() - 1)
        .sort("year", "rb", descending=[False, True])
    )


def _market_story(market: SampleMarket) -> None:
    returns = market.returns
    first_valid = returns.select(pl.exclude("date").is_not_null().arg_max())
    last_valid = returns.select(pl.exclude("date").is_not_null().reverse().arg_max())
    late = sum(v > 0 for v in first_valid.row(0))
    gone = sum(v > 0 for v in last_valid.row(0))
    dates = returns.get_column("date")
    print(
        f"{returns.width - 1} assets in {market.sectors['sector'].n_unique()} sectors, "
        f"{dates.len():,} business days from {dates.min()} to {dates.max()} "
        f"({late} list late, {gone} delist)."
    )
    styles = _index_returns(market, "style").filter(pl.col("year") == 2025)
    style = dict(styles.select("sector", "rb").iter_rows())
    print(
        f"2025: growth stocks {_pct(style['growth'])}, value {_pct(style['value'])} "
        "(benchmark style indices): growth led."
    )
    sectors = _index_returns(market, "sector").filter(pl.col("year") == dates.max().year)
    ranked = list(sectors.select("sector", "rb").iter_rows())
    best = ", ".join(f"{s} {_pct(r)}" for s, r in ranked[:3])
    worst = ", ".join(f"{s} {_pct(r)}" for s, r in ranked[-2:])
    print(f"{dates.max().year} to date, best sectors: {best}; worst: {worst}.")


def _portfolio_exposures(
    exposures: pl.DataFrame, portfolios: dict[str, pl.DataFrame], factors: list[str]
) -> pl.DataFrame:
    """Weighted average betas of each portfolio at each snapshot date.

    Holdings without exposures yet (too little history) are left out and the others'
    weights renormalised.
    """
    frames = []
    for name, weights in portfolios.items():
        joined = weights.join(exposures, on=["date", "asset"], how="inner")
        frames.append(
            joined.group_by("date")
            .agg(*((pl.col(f) * pl.col("weight")).sum() / pl.col("weight").sum() for f in factors))
            .select(pl.lit(name).alias("portfolio"), "date", *factors)
        )
    return pl.concat(frames).sort("portfolio", "date")


def _exposure_story(held: pl.DataFrame, exposures: pl.DataFrame, market: SampleMarket) -> None:
    last = held.get_column("date").max()
    checkpoints = [d for d in (dt.date(2024, 12, 31), dt.date(2025, 12, 31)) if d < last]
    checkpoints.append(last)
    table = (
        held.filter(pl.col("date").is_in(checkpoints))
        .pivot(on="date", index="portfolio", values="value")
        .select("portfolio", *(pl.col(str(d)).round(2) for d in checkpoints))
    )
    print("Value beta (exposure to value minus growth) of each portfolio, weighted by holdings:")
    _show(table)
    growth_names = market.sectors.filter(pl.col("style") == "growth").get_column("asset")
    drift = (
        exposures.filter(pl.col("asset").is_in(growth_names.implode()))
        .filter(pl.col("date").is_in(checkpoints))
        .group_by("date")
        .agg(pl.col("value").median())
        .sort("date")
    )
    path = " -> ".join(f"{v:+.2f} ({d})" for d, v in drift.iter_rows())
    print(f"Median value beta of the growth stocks: {path}: growth names drifted toward value.")


def _attribution(market: SampleMarket) -> tuple[pl.DataFrame, pl.DataFrame]:
    effects, linked = [], []
    for name, weights in market.portfolios.items():
        periods = fc.holdings_periods(market.returns, weights, market.benchmark, market.sectors)
        monthly = fc.brinson(periods, method="bf")
        effects.append(monthly.select(pl.lit(name).alias("portfolio"), pl.all()))
        recent = monthly.filter(pl.col("date") >= LINK_FROM)
        linked.append(
            fc.link(recent, method="carino").select(pl.lit(name).alias("portfolio"), pl.all())
        )
    return pl.concat(effects), pl.concat(linked)


def _attribution_story(effects: pl.DataFrame, linked: pl.DataFrame) -> None:
    recent = effects.filter(pl.col("date") >= LINK_FROM)
    first, last = recent.get_column("date").min(), recent.get_column("date").max()
    print(
        f"Monthly Brinson-Fachler against the benchmark, linked (Carino) over "
        f"{first:%b %Y} - {last:%b %Y}:"
    )
    for name in linked.get_column("portfolio").unique(maintain_order=True):
        mine = recent.filter(pl.col("portfolio") == name)
        totals = mine.group_by("date").agg(
            (pl.col("wp") * pl.col("rp")).sum().alias("rp"),
            (pl.col("wb") * pl.col("rb")).sum().alias("rb"),
        )
        rp = (totals.get_column("rp") + 1).product() - 1
        rb = (totals.get_column("rb") + 1).product() - 1
        sectors = linked.filter(pl.col("portfolio") == name)
        effect = {
            e: sectors.get_column(e).sum() for e in ("allocation", "selection", "interaction")
        }
        print(
            f"\n{name}: portfolio {_pct(rp)}, benchmark {_pct(rb)}, active {_pct(rp - rb)} = "
            f"allocation {_pct(effect['allocation'])} + selection {_pct(effect['selection'])} "
            f"+ interaction {_pct(effect['interaction'])}"
        )
        top = (
            sectors.sort(pl.col("total").abs(), descending=True)
            .head(5)
            .select(
                "sector",
                *(
                    (pl.col(e) * 100).round(2).alias(f"{e} %")
                    for e in ("allocation", "selection", "total")
                ),
            )
        )
        _show(top)


def _diversification(market: SampleMarket) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Monthly scores of each portfolio, over the assets it ever holds, and the
    benchmark's scores over the last window (scoring all assets every month would be
    the slowest part of the demo)."""
    returns = market.returns
    offset = (returns.height - WINDOW) % STEP  # so that the last window ends on the last date
    scores = pl.concat(
        fc.diversification(
            returns.slice(offset).select("date", *weights.get_column("asset").unique().sort()),
            weights,
            window=WINDOW,
            step=STEP,
        ).select(pl.lit(name).alias("portfolio"), pl.all())
        for name, weights in market.portfolios.items()
    )
    benchmark = fc.diversification(returns.tail(WINDOW), market.benchmark).select(
        pl.lit("benchmark").alias("portfolio"), pl.all()
    )
    return scores, benchmark


def _factor_bets(
    exposures: pl.DataFrame, portfolios: dict[str, pl.DataFrame], market: SampleMarket
) -> dict[str, float]:
    """Minimum-torsion bets of each portfolio's latest holdings on the five factors."""
    latest = exposures.filter(pl.col("date") == pl.col("date").max())
    bets = {}
    for name, weights in portfolios.items():
        holdings = weights.filter(pl.col("date") == pl.col("date").max())
        scores = fc.factor_bets(latest, market.factors, holdings, window=WINDOW)
        bets[name] = scores.get_column("enb_mt")[-1]
    return bets


def _diversification_story(
    scores: pl.DataFrame,
    benchmark: pl.DataFrame,
    factor_bets: dict[str, float],
    portfolios: dict[str, pl.DataFrame],
    market: SampleMarket,
) -> None:
    last = scores.get_column("date").max()
    latest = pl.concat([scores.filter(pl.col("date") == last), benchmark])
    snapshot = {
        name: w.filter(pl.col("date") == w.get_column("date").filter(w["date"] <= last).max())
        for name, w in portfolios.items()
    }
    sectors_held = {
        name: w.join(market.sectors, on="asset").get_column("sector").n_unique()
        for name, w in snapshot.items()
    }
    columns = ("effective_n", "enb_pca", "enb_mt", "diversification_ratio")
    table = latest.select(
        "portfolio",
        pl.col("portfolio")
        .replace_strict({n: w.height for n, w in snapshot.items()}, return_dtype=pl.UInt32)
        .alias("holdings"),
        pl.col("portfolio").replace_strict(sectors_held, return_dtype=pl.UInt32).alias("sectors"),
        *(pl.col(c).round(2) for c in columns),
        pl.col("portfolio").replace_strict(factor_bets).round(2).alias("factor_bets"),
    )
    print(f"{WINDOW}-day window ending {last}, scores of the holdings:")
    _show(table)
    print(
        "effective_n counts holdings by weight; enb_pca counts principal-component bets "
        "(one market factor carries\nmost of a long-only portfolio's risk); enb_mt counts "
        "minimum-torsion bets: how evenly the risk spreads\nover the holdings once they are "
        "decorrelated as little as possible. enb_mt is NaN when the window has\nno more rows "
        "than holdings (singular covariance): shrinkage='ledoit-wolf' scores those.\n"
        "factor_bets: minimum-torsion bets of the portfolio's exposures on the five factors; "
        "about one: the\nmarket is the one bet that holdings and sectors hide."
    )
    for name in market.portfolios:
        mine = scores.filter(pl.col("portfolio") == name)
        before = mine.filter(pl.col("date").dt.year() == 2025).get_column("enb_mt").mean()
        after = mine.filter(pl.col("date").dt.year() == last.year).get_column("enb_mt").mean()
        print(
            f"{name}: minimum-torsion bets averaged {before:.1f} in 2025, "
            f"{after:.1f} in {last.year}."
        )


def _charts(out: Path, tables: dict[str, pl.DataFrame]) -> list[str]:
    try:
        from factorcore import plot
    except ImportError as exc:
        print(f"\nNo charts: {exc}")
        return []
    rotation = (dt.date(2026, 1, 1), "2026 rotation")
    factors = ("value", "momentum", "size", "market", "dollar")
    written = [
        write_file(
            out / "exposures.png",
            lambda path: plot.exposures_chart(
                tables["portfolio_exposures"], path, factors=factors, marker=rotation
            ),
        ),
        write_file(
            out / "attribution.png",
            lambda path: plot.attribution_chart(tables["attribution_linked"], path),
        ),
        write_file(
            out / "diversification.png",
            lambda path: plot.diversification_chart(
                tables["diversification"], path, marker=rotation
            ),
        ),
    ]
    return [path.name for path in written]


def _show(frame: pl.DataFrame) -> None:
    with pl.Config(
        tbl_rows=20,
        tbl_cols=12,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=120,
        tbl_formatting="ASCII_MARKDOWN",
    ):
        print(frame)


def main() -> None:
    run(Path("demo-output"))


if __name__ == "__main__":
    main()
