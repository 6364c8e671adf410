"""Tests of the charts in factorcore.plot on small hand-made tables."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from factorcore.errors import InvalidInputError
from factorcore.plot import attribution_chart, diversification_chart, exposures_chart
from matplotlib.image import imread

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PORTFOLIOS = ["rotation", "barbell", "benchmark"]
FACTORS = ["market", "size", "value", "momentum", "dollar"]
SECTORS = ["Energy", "Financials", "Health Care", "Information Technology", "Utilities"]


def month_ends(n: int = 30) -> pl.Series:
    """Monthly dates from 2024-01 over 2026-01-01."""
    return pl.date_range(date(2024, 1, 31), date(2030, 1, 1), "1mo", eager=True).head(n)


def exposures_table() -> pl.DataFrame:
    rng = np.random.default_rng(1)
    dates = month_ends()
    frames = [
        pl.DataFrame({"date": dates, "portfolio": name}).with_columns(
            pl.Series(f, rng.normal(0.0, 0.5, dates.len()).cumsum() * 0.1) for f in FACTORS
        )
        for name in PORTFOLIOS
    ]
    return pl.concat(frames)


def linked_table() -> pl.DataFrame:
    rng = np.random.default_rng(2)
    n = len(PORTFOLIOS) * len(SECTORS)
    effects = {k: rng.normal(0.0, 0.01, n) for k in ("allocation", "selection", "interaction")}
    table = pl.DataFrame(
        {
            "portfolio": [p for p in PORTFOLIOS for _ in SECTORS],
            "sector": SECTORS * len(PORTFOLIOS),
            **effects,
        }
    )
    return table.with_columns(total=pl.sum_horizontal("allocation", "selection", "interaction"))


def scores_table(with_nan: bool = True) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    dates = month_ends()
    n = dates.len()
    frames = []
    for name in PORTFOLIOS:
        enb_mt = rng.uniform(2.0, 8.0, n)
        if with_nan:
            enb_mt[[3, 4, 10]] = np.nan
        frames.append(
            pl.DataFrame(
                {
                    "portfolio": name,
                    "date": dates,
                    "n_assets": pl.Series(np.full(n, 40), dtype=pl.Int64),
                    "excluded_weight": np.zeros(n),
                    "diversification_ratio": rng.uniform(1.2, 2.0, n),
                    "effective_n": rng.uniform(10.0, 30.0, n),
                    "enb_pca": rng.uniform(1.5, 6.0, n),
                    "enb_mt": enb_mt,
                    "absorption_ratio": rng.uniform(0.3, 0.8, n),
                    "avg_correlation": rng.uniform(0.1, 0.5, n),
                }
            )
        )
    return pl.concat(frames)


CHARTS = [
    (exposures_chart, exposures_table, "date"),
    (attribution_chart, linked_table, "sector"),
    (diversification_chart, scores_table, "enb_pca"),
]


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width = imread(path).shape[:2]
    assert (width, height) == (1100, 700)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("chart", "table", "column"), CHARTS)
def test_writes_png_of_expected_size(chart, table, column, tmp_path: Path) -> None:
    target = tmp_path / f"{chart.__name__}.png"
    result = chart(table(), target)
    assert isinstance(result, Path)
    assert result == target
    assert_png(result)


@pytest.mark.parametrize(("chart", "table", "column"), CHARTS)
def test_accepts_str_path(chart, table, column, tmp_path: Path) -> None:
    result = chart(table(), str(tmp_path / "chart.png"))
    assert isinstance(result, Path)
    assert_png(result)


@pytest.mark.parametrize(("chart", "table", "column"), CHARTS)
def test_missing_column_is_named(chart, table, column, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=column):
        chart(table().drop(column), tmp_path / "chart.png")
    assert not (tmp_path / "chart.png").exists()


@pytest.mark.parametrize(("chart", "table", "column"), CHARTS)
def test_empty_table_is_an_error(chart, table, column, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        chart(table().clear(), tmp_path / "chart.png")


def test_exposures_without_any_factor_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no factor columns"):
        exposures_chart(exposures_table().drop(FACTORS), tmp_path / "chart.png")


def test_exposures_of_named_factors_with_a_marker(tmp_path: Path) -> None:
    marker = (date(2026, 1, 1), "2026 rotation")
    chart = exposures_chart(
        exposures_table(), tmp_path / "chart.png", factors=["momentum", "value"], marker=marker
    )
    assert_png(chart)
    with pytest.raises(InvalidInputError, match="carry"):
        exposures_chart(exposures_table(), tmp_path / "other.png", factors=["carry"])


def test_exposures_plots_a_subset_of_factors(tmp_path: Path) -> None:
    table = exposures_table().select("date", "portfolio", "value", "momentum")
    assert_png(exposures_chart(table, tmp_path / "chart.png"))


def test_diversification_with_nan_and_null_values(tmp_path: Path) -> None:
    table = scores_table(with_nan=True).with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0)
        .then(None)
        .otherwise(pl.col("enb_pca"))
        .alias("enb_pca")
    )
    assert table.get_column("enb_mt").is_nan().sum() > 0
    assert table.get_column("enb_pca").null_count() > 0
    assert_png(diversification_chart(table, tmp_path / "chart.png"))


def test_diversification_all_nan_portfolio(tmp_path: Path) -> None:
    table = scores_table().with_columns(
        pl.when(pl.col("portfolio") == "barbell")
        .then(np.nan)
        .otherwise(pl.col("enb_mt"))
        .alias("enb_mt")
    )
    assert table.filter(pl.col("portfolio") == "barbell").get_column("enb_mt").is_nan().all()
    assert_png(diversification_chart(table, tmp_path / "chart.png"))


def test_dates_not_spanning_2026(tmp_path: Path) -> None:
    table = exposures_table().filter(pl.col("date") < date(2025, 6, 1))
    assert_png(exposures_chart(table, tmp_path / "chart.png"))


def test_single_date(tmp_path: Path) -> None:
    table = scores_table().filter(pl.col("date") == date(2024, 1, 31))
    assert table.height == len(PORTFOLIOS)
    assert_png(diversification_chart(table, tmp_path / "chart.png"))


def test_datetime_dates(tmp_path: Path) -> None:
    table = exposures_table().with_columns(pl.col("date").cast(pl.Datetime("us")))
    assert_png(exposures_chart(table, tmp_path / "chart.png"))


def test_attribution_with_sector_missing_for_a_portfolio(tmp_path: Path) -> None:
    table = linked_table().filter(
        ~((pl.col("portfolio") == "barbell") & (pl.col("sector") == "Energy"))
    )
    assert_png(attribution_chart(table, tmp_path / "chart.png"))


def test_leaves_pyplot_alone(tmp_path: Path) -> None:
    exposures_chart(exposures_table(), tmp_path / "chart.png")
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_library_does_not_import_matplotlib() -> None:
    done = run_python("import sys, factorcore; print('matplotlib' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_import_without_matplotlib_says_how_to_install() -> None:
    done = run_python(
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        "try:\n"
        "    import factorcore.plot\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "charts need matplotlib: pip install 'factorcore[plot]'"
