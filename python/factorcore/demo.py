"""The main job on built-in data: `python -m factorcore.demo`.

Rolling 252-day factor exposures of every asset of the sample market, then the
average exposure per sector a year ago and now: the drift of growth sectors toward
value shows up in the `value` column.
"""

from __future__ import annotations

import time

import polars as pl

from factorcore.datasets import sample_market
from factorcore.exposures import rolling_exposures


def main() -> None:
    market = sample_market()
    start = time.perf_counter()
    exposures = rolling_exposures(market.returns, market.factors, window=252, tstats=True)
    elapsed = time.perf_counter() - start
    n_assets = market.returns.width - 1
    print(
        f"Rolling 252-day exposures of {n_assets} assets on {market.factors.width - 1} factors "
        f"over {market.returns.height} days: {exposures.height:,} regressions "
        f"in {elapsed * 1000:.0f} ms\n"
    )
    last = exposures["date"].max()
    year_ago = exposures.filter(pl.col("date") <= last - pl.duration(days=365))["date"].max()
    factors = [c for c in market.factors.columns if c != "date"]
    by_sector = (
        exposures.filter(pl.col("date").is_in([year_ago, last]))
        .with_columns(pl.col("asset").cast(pl.String))
        .join(market.sectors, on="asset")
        .group_by("sector", "date")
        .agg(
            pl.col(factors).mean().round(2), pl.col("r2").mean().round(2), pl.len().alias("assets")
        )
        .sort("sector", "date")
    )
    with pl.Config(tbl_rows=30, tbl_cols=12, tbl_hide_dataframe_shape=True, tbl_width_chars=120):
        print(f"Average exposure per sector on {year_ago} and {last}:")
        print(by_sector)


if __name__ == "__main__":
    main()
