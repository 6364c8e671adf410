"""The command line (`python -m factorcore` and the `factorcore` console script), end to end.

Every test runs the real command in a subprocess on small seeded files written here (CSV
and Parquet) and checks it against the Python API called in this process on the same
frames:

- `exposures`, `attribution` (ready Brinson input at sector and holdings level, and built
  from returns + weight snapshots + sectors with `fc.holdings_periods`), `diversification`:
  the output file (CSV or Parquet) equals the API's frame column by column to 1e-12,
  exit code 0, the last stdout line is ``wrote FILE (N rows)``; options pass through
  (`--window expanding`, `--min-periods`, `--halflife`, `--no-intercept`, `--tstats`,
  `--method`, `--top-down`, `--link`, `--every`, `--weights`, `--step`, `--shrinkage`,
  `--max-iter`, `--date`, `--asset`, `--value`), long and wide returns, upper-case
  extensions, the output's parent directory is created.
- Broken files (missing, unsupported extension, missing date column, unparsable date or
  number) and errors raised by the library: exit code 1, exactly one stderr line
  ``factorcore: error: ...`` naming the file, column and 1-based data row, no traceback.
  A row with too few or too many fields, or a blank line, names its physical line.
- Paths the system refuses (a name beyond NAME_MAX, a directory, `demo --out /proc/demo`)
  and any other OSError: exit code 1, one line, before any work where it can be known.
- `--out` naming an input (same path, relative spelling, symlink, hard link): refused
  before any work, the input unchanged. Outputs are replaced only when complete: a write
  that fails part-way (RLIMIT_FSIZE) or a CLI killed with SIGKILL while writing leaves
  the old output byte for byte, and a normal error leaves no temporary file.
- Bad usage, numbers out of range included (`--window 18446744073709551616`, zero,
  negative): exit code 2, one line. `--help` of every subcommand names each option of
  the specification and shows an example. The console script exists and runs.
- `demo`: the report's section headings, the five Parquet files and their agreement with
  the API (diversification per portfolio, Carino-linked totals adding up to the
  compounded excess return), no PNG with `--no-charts`, the three PNGs without it
  (matplotlib is a test dependency).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import factorcore as fc
import numpy as np
import polars as pl
import pytest

TOL = 1e-12
DEMO_TOL = 1e-10
N_DAYS = 300
ASSETS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
FACTORS = ("mkt", "smb", "hml")
SECTOR_OF = {
    "AAA": "Tech",
    "BBB": "Tech",
    "CCC": "Health Care",
    "DDD": "Health Care",
    "EEE": "Energy",
    "FFF": "Energy",
}
BRINSON_SECTORS = ("Energy", "Health Care", "Tech", "Utilities")

# (input format, output format): each case reads one format and writes the other.
IO_FORMATS = [
    pytest.param("csv", "parquet", id="csv-in-parquet-out"),
    pytest.param("parquet", "csv", id="parquet-in-csv-out"),
]


# --------------------------------------------------------------------------------------------
# running the command
# --------------------------------------------------------------------------------------------
def run(
    *args: Any, cwd: Path | None = None, exe: Path | None = None, max_file_size: int | None = None
) -> subprocess.CompletedProcess:
    """`python -m factorcore ARGS` (or the console script `exe`), output captured.

    `max_file_size` (bytes) sets RLIMIT_FSIZE in the child: a write beyond it fails with
    EFBIG ("File too large"; Python ignores SIGXFSZ), a real failure in the middle of a
    write.
    """
    command = [sys.executable, "-m", "factorcore"] if exe is None else [str(exe)]
    return subprocess.run(
        [*command, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=None if max_file_size is None else lambda: limit_file_size(max_file_size),
    )


def limit_file_size(size: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def describe(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def read_table(path: Path) -> pl.DataFrame:
    if path.suffix.lower() == ".csv":
        return pl.read_csv(path, try_parse_dates=True, infer_schema_length=None)
    return pl.read_parquet(path)


def assert_same_frame(got: pl.DataFrame, expected: pl.DataFrame, *, tol: float = TOL) -> None:
    """Same columns in the same order, same rows; floats to `tol` with the same null and NaN
    pattern, integers exactly, dates as dates, labels as strings (Enum/Categorical of the API
    cast to String)."""
    assert got.columns == expected.columns, f"columns {got.columns} != {expected.columns}"
    assert got.height == expected.height, f"{got.height} rows, expected {expected.height}"
    for name in expected.columns:
        want, have = expected.get_column(name), got.get_column(name)
        dtype = want.dtype
        if isinstance(dtype, (pl.Enum, pl.Categorical)):
            want = want.cast(pl.String)
            dtype = pl.String
        if dtype.is_float():
            assert have.dtype.is_numeric(), f"{name}: dtype {have.dtype}, expected numeric"
            have_f = have.cast(pl.Float64)
            np.testing.assert_array_equal(
                have_f.is_null().to_numpy(), want.is_null().to_numpy(), err_msg=f"{name} nulls"
            )
            a = have_f.to_numpy()
            b = want.cast(pl.Float64).to_numpy()
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{name} NaN")
            ok = ~np.isnan(b)
            np.testing.assert_allclose(a[ok], b[ok], rtol=tol, atol=tol, err_msg=name)
        elif dtype.is_integer():
            assert have.dtype.is_integer(), f"{name}: dtype {have.dtype}, expected an integer"
            assert have.cast(pl.Int64).to_list() == want.cast(pl.Int64).to_list(), name
        else:
            assert have.dtype == dtype, f"{name}: dtype {have.dtype}, expected {dtype}"
            assert have.to_list() == want.to_list(), f"{name} values differ"


def assert_wrote(result: subprocess.CompletedProcess, out: Path, expected: pl.DataFrame) -> None:
    """Exit 0, last stdout line ``wrote OUT (N rows)``, the file holds `expected`."""
    assert result.returncode == 0, describe(result)
    lines = result.stdout.strip().splitlines()
    assert lines, describe(result)
    n = expected.height
    counts = "|".join(re.escape(s) for s in {str(n), f"{n:,}"})
    pattern = rf"wrote {re.escape(str(out))} \((?:{counts}) rows?\)"
    assert re.fullmatch(pattern, lines[-1].strip()), f"last line {lines[-1]!r}\n{describe(result)}"
    assert out.is_file(), f"{out} not written"
    assert_same_frame(read_table(out), expected)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1, exactly one stderr line ``factorcore: error: ...`` containing every needle as
    a whole word ("row 3" is not "row 30", the column "date" is not the word "dates")."""
    assert result.returncode == 1, describe(result)
    assert "Traceback" not in result.stderr + result.stdout, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line\n{describe(result)}"
    line = lines[0]
    assert line.startswith("factorcore: error: "), line
    for needle in needles:
        assert re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", line), f"{needle!r} not in {line!r}"
    return line


# --------------------------------------------------------------------------------------------
# input files
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    """The seeded input frames, each written as ``<name>.csv`` and ``<name>.parquet`` in
    `folder`."""

    folder: Path
    frames: dict[str, pl.DataFrame]

    def path(self, name: str, fmt: str) -> Path:
        return self.folder / f"{name}.{fmt}"

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.frames[name]


def business_days(n: int, start: dt.date = dt.date(2023, 1, 2)) -> pl.Series:
    days = pl.date_range(start, start + dt.timedelta(days=2 * n), eager=True)
    return days.filter(days.dt.weekday() <= 5).head(n).alias("date")


def month_ends(dates: pl.Series) -> list[dt.date]:
    """The last date of every calendar month in `dates`."""
    frame = (
        dates.to_frame("date")
        .group_by(pl.col("date").dt.truncate("1mo"))
        .agg(pl.col("date").max().alias("last"))
    )
    return frame.get_column("last").sort().to_list()


def snapshots(dates: list[dt.date], rng: np.random.Generator, n_held: int) -> pl.DataFrame:
    """Long ``date asset weight`` snapshots over `n_held` random assets, weights summing to 1."""
    rows = []
    for day in dates:
        held = sorted(rng.choice(len(ASSETS), n_held, replace=False))
        weights = rng.dirichlet(np.ones(n_held))
        rows += [(day, ASSETS[i], float(w)) for i, w in zip(held, weights, strict=True)]
    return pl.DataFrame(
        rows, schema={"date": pl.Date, "asset": pl.String, "weight": pl.Float64}, orient="row"
    )


def build_frames(seed: int = 20240501) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = business_days(N_DAYS)
    factor_values = rng.normal(0.0, [0.01, 0.005, 0.006], (N_DAYS, len(FACTORS)))
    betas = rng.normal([1.0, 0.0, 0.0], 0.4, (len(ASSETS), len(FACTORS)))
    values = factor_values @ betas.T + rng.normal(0.0, 0.008, (N_DAYS, len(ASSETS)))
    returns = pl.DataFrame(
        {"date": dates, **{a: values[:, j] for j, a in enumerate(ASSETS)}}
    ).with_columns(
        # a gap in AAA and a late listing of FFF: nulls (empty cells in CSV)
        pl.when(pl.int_range(N_DAYS).is_between(100, 104)).then(None).otherwise("AAA").alias("AAA"),
        pl.when(pl.int_range(N_DAYS) < 30).then(None).otherwise("FFF").alias("FFF"),
    )
    factors = pl.DataFrame(
        {"date": dates, **{f: factor_values[:, k] for k, f in enumerate(FACTORS)}}
    )
    returns_long = (
        returns.unpivot(index="date", variable_name="asset", value_name="return")
        .drop_nulls("return")
        .sort("date", maintain_order=True)
    )
    ends = month_ends(dates)

    # Ready Brinson input: sector level (one sector unheld on one date, its rp missing)
    # and holdings level.
    sector_rows = []
    for i, day in enumerate(ends[:12]):
        wp = rng.dirichlet(np.ones(len(BRINSON_SECTORS)))
        if i == 3:
            wp[-1] = 0.0
            wp /= wp.sum()
        wb = rng.dirichlet(np.ones(len(BRINSON_SECTORS)))
        rp = rng.normal(0.01, 0.04, len(BRINSON_SECTORS))
        rb = rng.normal(0.01, 0.04, len(BRINSON_SECTORS))
        for k, sector in enumerate(BRINSON_SECTORS):
            missing = wp[k] == 0.0
            sector_rows.append((day, sector, wp[k], wb[k], None if missing else rp[k], rb[k]))
    brinson_sector = pl.DataFrame(
        sector_rows,
        schema={
            "date": pl.Date,
            "sector": pl.String,
            "wp": pl.Float64,
            "wb": pl.Float64,
            "rp": pl.Float64,
            "rb": pl.Float64,
        },
        orient="row",
    )
    holding_rows = []
    for day in ends[:12]:
        held = set(rng.choice(len(ASSETS), 4, replace=False).tolist())
        wp = np.zeros(len(ASSETS))
        wp[sorted(held)] = rng.dirichlet(np.ones(4))
        wb = rng.dirichlet(np.ones(len(ASSETS)))
        ret = rng.normal(0.01, 0.05, len(ASSETS))
        for j, a in enumerate(ASSETS):
            holding_rows.append((day, a, SECTOR_OF[a], wp[j], wb[j], ret[j]))
    brinson_holdings = pl.DataFrame(
        holding_rows,
        schema={
            "date": pl.Date,
            "asset": pl.String,
            "sector": pl.String,
            "wp": pl.Float64,
            "wb": pl.Float64,
            "ret": pl.Float64,
        },
        orient="row",
    )
    weights_static = pl.DataFrame(
        {"asset": list(ASSETS), "weight": rng.dirichlet(np.ones(len(ASSETS)))}
    )
    return {
        "returns": returns,
        "returns_long": returns_long,
        "returns_long_custom": returns_long.rename({"asset": "ticker", "return": "ret"}),
        "returns_day": returns.rename({"date": "day"}),
        "factors": factors,
        "factors_day": factors.rename({"date": "day"}),
        "weights_static": weights_static,
        "weights_snap": snapshots(ends, rng, 5),
        "portfolio": snapshots(ends, rng, 4),
        "benchmark": snapshots(ends, rng, len(ASSETS)),
        "sectors": pl.DataFrame({"asset": list(SECTOR_OF), "sector": list(SECTOR_OF.values())}),
        "brinson_sector": brinson_sector,
        "brinson_holdings": brinson_holdings,
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Inputs:
    folder = tmp_path_factory.mktemp("inputs")
    frames = build_frames()
    for name, frame in frames.items():
        frame.write_csv(folder / f"{name}.csv")
        frame.write_parquet(folder / f"{name}.parquet")
        # The CSV files hold exactly the frames the API sees here.
        assert read_table(folder / f"{name}.csv").equals(frame), name
    return Inputs(folder, frames)


def csv_with_cell(frame: pl.DataFrame, path: Path, row: int, column: str, text: str) -> Path:
    """`frame` as CSV with the cell of `column` in 1-based data row `row` replaced by `text`."""
    lines = frame.write_csv().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = text
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return path


def quietly(call: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """The API result, its warnings (non-converged minimum-torsion windows) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


# --------------------------------------------------------------------------------------------
# exposures
# --------------------------------------------------------------------------------------------
EXPOSURE_OPTIONS = [
    pytest.param(["--window", "60"], {"window": 60}, id="window"),
    pytest.param(["--window", "expanding"], {"window": None}, id="expanding"),
    pytest.param(
        ["--window", "60", "--min-periods", "40"],
        {"window": 60, "min_periods": 40},
        id="min-periods",
    ),
    pytest.param(
        ["--window", "120", "--halflife", "30"], {"window": 120, "halflife": 30.0}, id="halflife"
    ),
    pytest.param(
        ["--window", "60", "--no-intercept", "--tstats"],
        {"window": 60, "intercept": False, "tstats": True},
        id="no-intercept-tstats",
    ),
    pytest.param(
        ["--window", "expanding", "--min-periods", "20", "--halflife", "45.5", "--tstats"],
        {"window": None, "min_periods": 20, "halflife": 45.5, "tstats": True},
        id="expanding-all-options",
    ),
]


@pytest.mark.parametrize(("in_fmt", "out_fmt"), IO_FORMATS)
@pytest.mark.parametrize(("options", "kwargs"), EXPOSURE_OPTIONS)
def test_exposures_matches_api(data, tmp_path, in_fmt, out_fmt, options, kwargs):
    out = tmp_path / f"exposures.{out_fmt}"
    files = ["--returns", data.path("returns", in_fmt), "--factors", data.path("factors", in_fmt)]
    result = run("exposures", *files, *options, "--out", out, cwd=tmp_path)
    assert_wrote(result, out, fc.rolling_exposures(data["returns"], data["factors"], **kwargs))
    if out_fmt == "parquet":  # the asset column is written as a string, not an Enum
        assert pl.read_parquet_schema(out)["asset"] == pl.String


@pytest.mark.parametrize("in_fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    ("name", "options", "kwargs"),
    [
        pytest.param("returns_long", [], {}, id="long"),
        pytest.param(
            "returns_long_custom",
            ["--asset", "ticker", "--value", "ret"],
            {"asset": "ticker", "value": "ret"},
            id="long-custom-columns",
        ),
    ],
)
def test_exposures_long_returns(data, tmp_path, in_fmt, name, options, kwargs):
    out = tmp_path / "exposures.csv"
    result = run(
        "exposures",
        *("--returns", data.path(name, in_fmt), "--factors", data.path("factors", in_fmt)),
        *("--window", "60", *options, "--out", out),
        cwd=tmp_path,
    )
    expected = fc.rolling_exposures(data[name], data["factors"], window=60, **kwargs)
    assert_wrote(result, out, expected)
    # long and wide input describe the same data
    wide = fc.rolling_exposures(data["returns"], data["factors"], window=60)
    assert_same_frame(read_table(out), wide)


def test_exposures_custom_date_column_and_nested_output(data, tmp_path):
    out = tmp_path / "new" / "nested" / "exposures.parquet"
    files = ["--returns", data.path("returns_day", "csv")]
    files += ["--factors", data.path("factors_day", "parquet")]
    result = run("exposures", *files, "--window", "50", "--date", "day", "--out", out, cwd=tmp_path)
    expected = fc.rolling_exposures(data["returns_day"], data["factors_day"], window=50, date="day")
    assert_wrote(result, out, expected)


def test_days_written_with_midnight_times_line_up_with_plain_days(data, tmp_path):
    # the factors file spells its days "2023-01-02 00:00:00", the returns file "2023-01-02"
    factors = tmp_path / "factors.csv"
    data["factors"].with_columns(pl.col("date").dt.strftime("%Y-%m-%d 00:00:00")).write_csv(factors)
    assert pl.read_csv(factors, infer_schema=False)["date"][0] == "2023-01-02 00:00:00"
    out = tmp_path / "exposures.parquet"
    files = ["--returns", data.path("returns", "csv"), "--factors", factors]
    result = run("exposures", *files, "--window", "60", "--out", out, cwd=tmp_path)
    assert_wrote(result, out, fc.rolling_exposures(data["returns"], data["factors"], window=60))


def test_intraday_times_stay_datetimes(data, tmp_path):
    stamped = data["returns"].with_columns(
        pl.col("date").cast(pl.Datetime("us")) + pl.duration(hours=16)
    )
    factors = data["factors"].with_columns(
        pl.col("date").cast(pl.Datetime("us")) + pl.duration(hours=16)
    )
    stamped.write_csv(tmp_path / "returns.csv")
    factors.write_csv(tmp_path / "factors.csv")
    out = tmp_path / "exposures.parquet"
    files = ["--returns", tmp_path / "returns.csv", "--factors", tmp_path / "factors.csv"]
    result = run("exposures", *files, "--window", "60", "--out", out, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert isinstance(pl.read_parquet_schema(out)["date"], pl.Datetime)
    expected = fc.rolling_exposures(stamped, factors, window=60)
    got = pl.read_parquet(out)
    assert got["date"].to_list() == expected["date"].to_list()
    np.testing.assert_allclose(got["mkt"].to_numpy(), expected["mkt"].to_numpy(), rtol=TOL)


def test_upper_case_extensions(data, tmp_path):
    returns = shutil.copy(data.path("returns", "csv"), tmp_path / "RETURNS.CSV")
    factors = shutil.copy(data.path("factors", "parquet"), tmp_path / "Factors.Parquet")
    out = tmp_path / "exposures.csv"
    files = ["--returns", returns, "--factors", factors]
    result = run("exposures", *files, "--window", "60", "--out", out, cwd=tmp_path)
    assert_wrote(result, out, fc.rolling_exposures(data["returns"], data["factors"], window=60))


# --------------------------------------------------------------------------------------------
# attribution
# --------------------------------------------------------------------------------------------
BRINSON_OPTIONS = [
    pytest.param([], {}, None, id="bf"),
    pytest.param(["--method", "bhb"], {"method": "bhb"}, None, id="bhb"),
    pytest.param(["--top-down"], {"top_down": True}, None, id="top-down"),
    pytest.param(["--method", "geometric"], {"method": "geometric"}, None, id="geometric"),
    pytest.param(["--link", "carino"], {}, "carino", id="bf-carino"),
    pytest.param(
        ["--method", "bhb", "--link", "menchero"], {"method": "bhb"}, "menchero", id="bhb-menchero"
    ),
    pytest.param(["--top-down", "--link", "grap"], {"top_down": True}, "grap", id="top-down-grap"),
    pytest.param(
        ["--method", "bf", "--link", "frongello"], {"method": "bf"}, "frongello", id="bf-frongello"
    ),
    pytest.param(
        ["--method", "geometric", "--link", "geometric"],
        {"method": "geometric"},
        "geometric",
        id="geometric-geometric",
    ),
]


def expected_attribution(frame: pl.DataFrame, kwargs: dict, link: str | None) -> pl.DataFrame:
    effects = fc.brinson(frame, **kwargs)
    return effects if link is None else fc.link(effects, method=link)


def assert_sectors_printed(result: subprocess.CompletedProcess, sectors) -> None:
    for sector in sectors:
        assert sector in result.stdout, (
            f"linked total of {sector!r} not printed\n{describe(result)}"
        )


@pytest.mark.parametrize("level", ["brinson_sector", "brinson_holdings"])
@pytest.mark.parametrize(("in_fmt", "out_fmt"), IO_FORMATS)
@pytest.mark.parametrize(("options", "kwargs", "link"), BRINSON_OPTIONS)
def test_attribution_data_matches_api(
    data, tmp_path, level, in_fmt, out_fmt, options, kwargs, link
):
    out = tmp_path / f"attribution.{out_fmt}"
    result = run(
        "attribution", "--data", data.path(level, in_fmt), *options, "--out", out, cwd=tmp_path
    )
    assert_wrote(result, out, expected_attribution(data[level], kwargs, link))
    assert_sectors_printed(result, data[level].get_column("sector").unique())


HOLDINGS_OPTIONS = [
    pytest.param([], {}, {}, None, id="monthly-bf"),
    pytest.param(["--every", "1q"], {"every": "1q"}, {}, None, id="quarterly"),
    pytest.param(
        ["--every", "1w", "--link", "carino"], {"every": "1w"}, {}, "carino", id="weekly-carino"
    ),
    pytest.param(
        ["--method", "bhb", "--top-down", "--link", "grap"],
        {},
        {"method": "bhb", "top_down": True},
        "grap",
        id="bhb-top-down-grap",
    ),
]


@pytest.mark.parametrize("returns", ["returns", "returns_long"])
@pytest.mark.parametrize(("in_fmt", "out_fmt"), IO_FORMATS)
@pytest.mark.parametrize(("options", "period_kwargs", "kwargs", "link"), HOLDINGS_OPTIONS)
def test_attribution_from_returns_and_weights(
    data, tmp_path, returns, in_fmt, out_fmt, options, period_kwargs, kwargs, link
):
    out = tmp_path / f"attribution.{out_fmt}"
    result = run(
        "attribution",
        *("--returns", data.path(returns, in_fmt)),
        *("--portfolio", data.path("portfolio", in_fmt)),
        *("--benchmark", data.path("benchmark", in_fmt)),
        *("--sectors", data.path("sectors", in_fmt)),
        *options,
        *("--out", out),
        cwd=tmp_path,
    )
    holdings = fc.holdings_periods(
        data[returns], data["portfolio"], data["benchmark"], data["sectors"], **period_kwargs
    )
    assert_wrote(result, out, expected_attribution(holdings, kwargs, link))
    assert_sectors_printed(result, set(SECTOR_OF.values()))


def test_attribution_from_returns_and_weights_with_custom_column_names(data, tmp_path):
    """--date/--asset/--sector name the columns of the input files; the output is the API's."""
    names = {"date": "asof", "asset": "ticker", "sector": "industry"}
    files = {}
    for name in ("returns", "portfolio", "benchmark", "sectors"):
        frame = data[name].rename({k: v for k, v in names.items() if k in data[name].columns})
        files[name] = tmp_path / f"{name}_custom.csv"
        frame.write_csv(files[name])
    out = tmp_path / "attribution.csv"
    result = run(
        "attribution",
        *(arg for name, path in files.items() for arg in (f"--{name}", path)),
        *(arg for key, column in names.items() for arg in (f"--{key}", column)),
        *("--out", out),
        cwd=tmp_path,
    )
    holdings = fc.holdings_periods(
        data["returns"], data["portfolio"], data["benchmark"], data["sectors"]
    )
    assert_wrote(result, out, expected_attribution(holdings, {}, None))


# --------------------------------------------------------------------------------------------
# diversification
# --------------------------------------------------------------------------------------------
DIVERSIFICATION_CASES = [
    pytest.param("returns", None, [], {}, id="whole-sample"),
    pytest.param(
        "returns",
        None,
        ["--window", "60", "--step", "5"],
        {"window": 60, "step": 5},
        id="window-step",
    ),
    pytest.param(
        "returns",
        "weights_static",
        ["--window", "60", "--step", "10"],
        {"window": 60, "step": 10},
        id="static-weights",
    ),
    pytest.param(
        "returns",
        "weights_snap",
        ["--window", "60", "--step", "5"],
        {"window": 60, "step": 5},
        id="snapshot-weights",
    ),
    pytest.param(
        "returns",
        "weights_snap",
        ["--window", "40", "--step", "20", "--shrinkage", "ledoit-wolf"],
        {"window": 40, "step": 20, "shrinkage": "ledoit-wolf"},
        id="ledoit-wolf",
    ),
    pytest.param(
        "returns",
        None,
        ["--window", "50", "--step", "25", "--max-iter", "3"],
        {"window": 50, "step": 25, "max_iter": 3},
        id="max-iter",
    ),
    pytest.param(
        "returns_long",
        "weights_static",
        ["--window", "60", "--step", "30"],
        {"window": 60, "step": 30},
        id="long-returns",
    ),
]


def weights_argument(data: Inputs, name: str | None):
    """What the API takes for a weights file: a mapping for static weights, else the frame."""
    if name is None:
        return None
    frame = data[name]
    if "date" not in frame.columns:
        return dict(zip(frame.get_column("asset"), frame.get_column("weight"), strict=True))
    return frame


@pytest.mark.parametrize(("in_fmt", "out_fmt"), IO_FORMATS)
@pytest.mark.parametrize(("returns", "weights", "options", "kwargs"), DIVERSIFICATION_CASES)
def test_diversification_matches_api(
    data, tmp_path, in_fmt, out_fmt, returns, weights, options, kwargs
):
    out = tmp_path / f"diversification.{out_fmt}"
    weight_args = [] if weights is None else ["--weights", data.path(weights, in_fmt)]
    result = run(
        "diversification",
        *("--returns", data.path(returns, in_fmt)),
        *weight_args,
        *options,
        *("--out", out),
        cwd=tmp_path,
    )
    expected = quietly(
        lambda: fc.diversification(data[returns], weights_argument(data, weights), **kwargs)
    )
    assert_wrote(result, out, expected)


def test_diversification_custom_date_column(data, tmp_path):
    out = tmp_path / "diversification.csv"
    result = run(
        "diversification",
        *("--returns", data.path("returns_day", "parquet"), "--date", "day"),
        *("--window", "80", "--step", "7", "--out", out),
        cwd=tmp_path,
    )
    expected = quietly(
        lambda: fc.diversification(data["returns_day"], window=80, step=7, date="day")
    )
    assert_wrote(result, out, expected)


def test_main_returns_exit_codes(data, tmp_path, capsys):
    """`factorcore.cli.main(argv)` returns the exit code instead of exiting."""
    from factorcore.cli import main

    out = tmp_path / "diversification.parquet"
    argv = ["diversification", "--returns", str(data.path("returns", "csv")), "--out", str(out)]
    assert main(argv) == 0
    assert_same_frame(read_table(out), quietly(lambda: fc.diversification(data["returns"])))
    capsys.readouterr()
    missing = str(tmp_path / "nope.csv")
    assert main(["diversification", "--returns", missing, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("factorcore: error: ") and "nope.csv" in err, err


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(5, "Input/output error", "returns.csv"), "returns.csv: Input/output error"),
        (MemoryError("cannot allocate 80.0 GB"), "out of memory: cannot allocate 80.0 GB"),
    ],
    ids=["oserror", "memoryerror"],
)
def test_any_other_system_error_is_one_line(data, tmp_path, capsys, monkeypatch, error, expected):
    """Whatever a step did not turn into a FileError itself still ends as one line."""
    from factorcore import cli

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "_diversification", fail)
    argv = ["diversification", "--returns", str(data.path("returns", "csv"))]
    assert cli.main([*argv, "--out", str(tmp_path / "out.csv")]) == 1
    err = capsys.readouterr().err
    assert err == f"factorcore: error: {expected}\n", err


# --------------------------------------------------------------------------------------------
# broken files: exit code 1, one line naming the file, the column and the row
# --------------------------------------------------------------------------------------------
def command_args(data: Inputs, base: str) -> list:
    """The start of a command line whose input files are all valid."""
    returns = data.path("returns", "csv")
    return {
        "exposures": ["exposures", "--returns", returns, "--factors", data.path("factors", "csv")],
        "diversification": ["diversification", "--returns", returns],
        "brinson": ["attribution", "--data", data.path("brinson_sector", "csv")],
    }.get(base, [base])


def exposures_args(data: Inputs, returns: Path, factors: Path | None = None) -> list:
    factors = data.path("factors", "csv") if factors is None else factors
    return ["exposures", "--returns", returns, "--factors", factors, "--window", "60"]


def returns_mode_args(data: Inputs, **files: Path) -> list:
    paths = {
        name: data.path(name, "csv") for name in ("returns", "portfolio", "benchmark", "sectors")
    }
    paths.update(files)
    return ["attribution", *(arg for name, path in paths.items() for arg in (f"--{name}", path))]


def _missing_returns(data, tmp):
    return exposures_args(data, tmp / "nope.csv"), ["nope.csv"]


def _missing_data_parquet(data, tmp):
    return ["attribution", "--data", tmp / "nope.parquet"], ["nope.parquet"]


def _missing_weights(data, tmp):
    args = [
        "diversification",
        "--returns",
        data.path("returns", "csv"),
        "--weights",
        tmp / "absent.csv",
    ]
    return args, ["absent.csv"]


def _xlsx_returns(data, tmp):
    path = tmp / "returns.xlsx"
    path.write_bytes(b"PK\x03\x04 not a spreadsheet")
    return exposures_args(data, path), ["returns.xlsx"]


def _xlsx_sectors(data, tmp):
    path = tmp / "sectors.xlsx"
    path.write_bytes(b"PK\x03\x04 not a spreadsheet")
    return returns_mode_args(data, sectors=path), ["sectors.xlsx"]


def _no_date_column(data, tmp):
    path = tmp / "factors_when.csv"
    data["factors"].rename({"date": "when"}).write_csv(path)
    return exposures_args(data, data.path("returns", "csv"), path), ["factors_when.csv", "date"]


def _no_custom_date_column(data, tmp):
    args = ["diversification", "--returns", data.path("returns", "parquet"), "--date", "asof"]
    return args, ["returns.parquet", "asof"]


def _bad_date_row_3(data, tmp):
    path = csv_with_cell(data["returns"], tmp / "bad_day.csv", 3, "date", "2024-13-45")
    return exposures_args(data, path), ["bad_day.csv", "date", "row 3"]


def _bad_custom_date_row_3(data, tmp):
    frame = data["returns"].rename({"date": "asof"})
    path = csv_with_cell(frame, tmp / "bad_asof.csv", 3, "asof", "2024-13-45")
    return ["diversification", "--returns", path, "--date", "asof"], [
        "bad_asof.csv",
        "asof",
        "row 3",
    ]


def _bad_weights_date_row_3(data, tmp):
    path = csv_with_cell(data["weights_snap"], tmp / "weights_bad.csv", 3, "date", "2024-02-30")
    args = ["diversification", "--returns", data.path("returns", "csv"), "--weights", path]
    return args, ["weights_bad.csv", "date", "row 3"]


def _bad_number_exposures(data, tmp):
    path = csv_with_cell(data["returns"], tmp / "bad_number.csv", 2, "AAA", "abc")
    return exposures_args(data, path), ["bad_number.csv", "AAA", "row 2"]


def _bad_number_diversification(data, tmp):
    path = csv_with_cell(data["returns"], tmp / "bad_number.csv", 2, "AAA", "abc")
    return ["diversification", "--returns", path], ["bad_number.csv", "AAA", "row 2"]


def _bad_number_long(data, tmp):
    path = csv_with_cell(data["returns_long"], tmp / "long_bad.csv", 2, "return", "abc")
    return exposures_args(data, path), ["long_bad.csv", "return", "row 2"]


def _bad_number_brinson(data, tmp):
    path = csv_with_cell(data["brinson_sector"], tmp / "brinson_bad.csv", 2, "wb", "abc")
    return ["attribution", "--data", path], ["brinson_bad.csv", "wb", "row 2"]


def _unguessable_date_format(data, tmp):
    path = tmp / "us_dates.csv"
    data["returns"].with_columns(pl.col("date").dt.strftime("%m/%d/%Y")).write_csv(path)
    return ["diversification", "--returns", path], ["us_dates.csv", "date"]


def _weights_without_asset_column(data, tmp):
    path = tmp / "tickers.csv"
    data["weights_static"].rename({"asset": "ticker"}).write_csv(path)
    args = ["diversification", "--returns", data.path("returns", "csv"), "--weights", path]
    return args, ["tickers.csv", "asset"]


def csv_with_line(frame: pl.DataFrame, path: Path, line: int, edit: Callable[[str], str]) -> Path:
    """`frame` as CSV with physical line `line` (1-based, the header is line 1) edited."""
    lines = frame.write_csv().splitlines()
    lines[line - 1] = edit(lines[line - 1])
    path.write_text("\n".join(lines) + "\n")
    return path


def drop_last_field(text: str) -> str:
    return text.rsplit(",", 1)[0]


# A row with too few or too many fields (issue 17 item 10): too few read as nulls, exit 0.
def _short_row_returns(data, tmp):
    path = csv_with_line(data["returns"], tmp / "short.csv", 4, drop_last_field)
    return exposures_args(data, path), ["short.csv", "line 4", "row 3", "6 fields", "7"]


def _long_row_returns(data, tmp):
    path = csv_with_line(data["returns"], tmp / "long_row.csv", 6, lambda t: t + ",0.5")
    return exposures_args(data, path), ["long_row.csv", "line 6", "row 5", "8 fields", "7"]


def _short_row_factors(data, tmp):
    path = csv_with_line(data["factors"], tmp / "factors_short.csv", 9, lambda t: t.split(",")[0])
    args = exposures_args(data, data.path("returns", "csv"), path)
    return args, ["factors_short.csv", "line 9", "1 field"]


def _blank_line_factors(data, tmp):
    path = csv_with_line(data["factors"], tmp / "factors_blank.csv", 10, lambda t: "")
    args = exposures_args(data, data.path("returns", "csv"), path)
    return args, ["factors_blank.csv", "line 10", "empty"]


def _short_row_sectors(data, tmp):
    path = csv_with_line(data["sectors"], tmp / "sectors_short.csv", 3, drop_last_field)
    return returns_mode_args(data, sectors=path), ["sectors_short.csv", "line 3"]


def _short_row_static_weights(data, tmp):
    path = csv_with_line(data["weights_static"], tmp / "weights_short.csv", 2, drop_last_field)
    args = ["diversification", "--returns", data.path("returns", "csv"), "--weights", path]
    return args, ["weights_short.csv", "line 2"]


def _short_row_brinson(data, tmp):
    path = csv_with_line(data["brinson_sector"], tmp / "brinson_short.csv", 7, drop_last_field)
    return ["attribution", "--data", path], ["brinson_short.csv", "line 7"]


def _short_row_crlf(data, tmp):
    path = csv_with_line(data["returns_long"], tmp / "long_crlf.csv", 5, drop_last_field)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    return exposures_args(data, path), ["long_crlf.csv", "line 5"]


def _short_row_after_quoted_newline(data, tmp):
    """Quoted fields (one holding a comma and a line break) are counted as CSV does, and
    the line named is the physical line: the break makes data row 4 line 6."""
    sectors = data["sectors"].with_columns(
        pl.when(pl.col("sector") == "Health Care")
        .then(pl.lit("Health,\nCare"))
        .otherwise("sector")
        .alias("sector")
    )
    path = tmp / "sectors_quoted.csv"
    sectors.write_csv(path, quote_style="always")
    lines = path.read_text().split("\n")
    assert lines[3] == '"CCC","Health,' and lines[5] == '"DDD","Health,', lines
    lines[5] = '"DDD"'  # data row 4 starts on line 6
    path.write_text("\n".join(lines[:6] + lines[7:]))
    return returns_mode_args(data, sectors=path), ["sectors_quoted.csv", "line 6", "row 4"]


BROKEN_FILES = {
    "unguessable-date-format": _unguessable_date_format,
    "weights-without-asset-column": _weights_without_asset_column,
    "missing-returns": _missing_returns,
    "missing-data-parquet": _missing_data_parquet,
    "missing-weights": _missing_weights,
    "xlsx-returns": _xlsx_returns,
    "xlsx-sectors": _xlsx_sectors,
    "no-date-column": _no_date_column,
    "no-custom-date-column": _no_custom_date_column,
    "bad-date-row-3": _bad_date_row_3,
    "bad-custom-date-row-3": _bad_custom_date_row_3,
    "bad-weights-date-row-3": _bad_weights_date_row_3,
    "bad-number-exposures": _bad_number_exposures,
    "bad-number-diversification": _bad_number_diversification,
    "bad-number-long": _bad_number_long,
    "bad-number-brinson": _bad_number_brinson,
    "short-row-returns": _short_row_returns,
    "long-row-returns": _long_row_returns,
    "short-row-factors": _short_row_factors,
    "blank-line-factors": _blank_line_factors,
    "short-row-sectors": _short_row_sectors,
    "short-row-static-weights": _short_row_static_weights,
    "short-row-brinson": _short_row_brinson,
    "short-row-crlf": _short_row_crlf,
    "short-row-after-quoted-newline": _short_row_after_quoted_newline,
}


def test_quoted_csv_with_commas_in_fields_reads_as_before(data, tmp_path):
    """The field count follows CSV quoting: commas inside quotes are not separators."""
    renamed = {a: f"{a}, Inc." for a in ASSETS}
    returns = data["returns"].rename(renamed)
    path = tmp_path / "quoted.csv"
    returns.write_csv(path, quote_style="always")
    assert path.read_text().startswith('"date","AAA, Inc."'), path.read_text()[:40]
    out = tmp_path / "exposures.csv"
    result = run(*exposures_args(data, path), "--out", out, cwd=tmp_path)
    assert_wrote(result, out, fc.rolling_exposures(returns, data["factors"], window=60))


@pytest.mark.parametrize("case", BROKEN_FILES)
def test_broken_file_is_one_line_error(data, tmp_path, case):
    args, needles = BROKEN_FILES[case](data, tmp_path)
    out = tmp_path / "out.csv"
    result = run(*args, "--out", out, cwd=tmp_path)
    assert_one_line_error(result, *needles)
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# errors raised by the library: exit code 1, one line
# --------------------------------------------------------------------------------------------
def _window_too_long_exposures(data, tmp):
    return (
        [*command_args(data, "exposures"), "--window", "1000"],
        lambda: fc.rolling_exposures(data["returns"], data["factors"], window=1000),
        [],
    )


def _window_too_long_diversification(data, tmp):
    return (
        ["diversification", "--returns", data.path("returns", "parquet"), "--window", "1000"],
        lambda: fc.diversification(data["returns"], window=1000),
        [],
    )


def _geometric_effects_linked_arithmetically(data, tmp):
    return (
        [*command_args(data, "brinson"), "--method", "geometric", "--link", "carino"],
        lambda: fc.link(fc.brinson(data["brinson_sector"], method="geometric"), method="carino"),
        [],
    )


def _weights_not_summing_to_one(data, tmp):
    frame = data["brinson_sector"].with_columns(
        pl.when(pl.col("date") == pl.col("date").min())
        .then(pl.col("wb") * 0.9)
        .otherwise("wb")
        .alias("wb")
    )
    path = tmp / "brinson_short.parquet"
    frame.write_parquet(path)
    return ["attribution", "--data", path], lambda: fc.brinson(frame), []


def _held_asset_without_sector(data, tmp):
    sectors = data["sectors"].filter(pl.col("asset") != "EEE")
    path = tmp / "sectors_no_eee.csv"
    sectors.write_csv(path)
    return (
        returns_mode_args(data, sectors=path),
        lambda: fc.holdings_periods(data["returns"], data["portfolio"], data["benchmark"], sectors),
        ["EEE"],
    )


LIBRARY_ERRORS = {
    "exposures-window-too-long": _window_too_long_exposures,
    "diversification-window-too-long": _window_too_long_diversification,
    "geometric-effects-carino": _geometric_effects_linked_arithmetically,
    "weights-not-summing-to-one": _weights_not_summing_to_one,
    "held-asset-without-sector": _held_asset_without_sector,
}


@pytest.mark.parametrize("case", LIBRARY_ERRORS)
def test_library_error_is_one_line_error(data, tmp_path, case):
    args, call, needles = LIBRARY_ERRORS[case](data, tmp_path)
    with pytest.raises((fc.InvalidInputError, fc.DtypeError)):
        call()
    out = tmp_path / "out.parquet"
    result = run(*args, "--out", out, cwd=tmp_path)
    assert_one_line_error(result, *needles)
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# --out naming an input: refused before any work, the input untouched (issue 17 item 7)
# --------------------------------------------------------------------------------------------
def copy_inputs(data: Inputs, folder: Path, fmt: str = "csv") -> dict[str, Path]:
    """Private copies of the input files in `folder`: these tests may overwrite them."""
    folder.mkdir(exist_ok=True)
    names = ["returns", "factors", "weights_static", "brinson_sector"]
    names += ["portfolio", "benchmark", "sectors"]
    return {n: Path(shutil.copy(data.path(n, fmt), folder / f"{n}.{fmt}")) for n in names}


def same_out_args(files: dict[str, Path], option: str) -> list:
    """A valid command line reading `files` in which `option` names one of them."""
    if option in ("returns", "factors"):
        files_args = ["--returns", files["returns"], "--factors", files["factors"]]
        return ["exposures", *files_args, "--window", "60"]
    if option == "weights":
        return ["diversification", "--returns", files["returns"], "--weights", files["weights"]]
    if option == "data":
        return ["attribution", "--data", files["data"]]
    built = ("returns", "portfolio", "benchmark", "sectors")
    return ["attribution", *(a for n in built for a in (f"--{n}", files[n]))]


def out_aliases(target: Path, tmp: Path) -> dict[str, Path]:
    """Ways for --out to name the file `target` (which lives in tmp/in)."""
    link = tmp / "link" / target.name
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(target)
    hard = tmp / "hard" / target.name
    hard.parent.mkdir(exist_ok=True)
    os.link(target, hard)
    return {
        "same-path": target,
        "relative": Path("in") / ".." / "in" / target.name,  # cwd is tmp
        "symlink": link,
        "hard-link": hard,
    }


# every alias for one input; the direct path and a symlink for each of the others
SAME_OUT_CASES = [("returns", a) for a in ("same-path", "relative", "symlink", "hard-link")] + [
    (option, alias)
    for option in ("factors", "weights", "data", "portfolio", "benchmark", "sectors")
    for alias in ("same-path", "symlink")
]


@pytest.mark.parametrize(("option", "alias"), SAME_OUT_CASES)
def test_out_naming_an_input_is_refused(data, tmp_path, option, alias):
    copies = copy_inputs(data, tmp_path / "in")
    files = {
        **copies,
        "weights": copies["weights_static"],
        "data": copies["brinson_sector"],
    }
    target = files[option]
    before = target.read_bytes()
    out = out_aliases(target, tmp_path)[alias]
    result = run(*same_out_args(files, option), "--out", out, cwd=tmp_path)
    assert_one_line_error(result, "--out", f"--{option}")
    assert result.stdout == "", f"work was done before the check\n{describe(result)}"
    assert target.read_bytes() == before, "the input file was changed"
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(
        p.name for p in copies.values()
    ), "a file was left beside the input"


def test_input_given_through_a_symlink_is_protected_too(data, tmp_path):
    """The input is a symlink; --out names the real file behind it (parquet this time)."""
    copies = copy_inputs(data, tmp_path / "in", "parquet")
    real = copies["returns"]
    before = real.read_bytes()
    link = tmp_path / "returns-link.parquet"
    link.symlink_to(real)
    args = ["diversification", "--returns", link]
    result = run(*args, "--out", real, cwd=tmp_path)
    assert_one_line_error(result, "--out", "--returns")
    assert real.read_bytes() == before
    assert link.is_symlink() and link.resolve() == real.resolve()


def test_out_beside_an_input_with_the_same_name_elsewhere_is_fine(data, tmp_path):
    """Same file name in another folder is another file: written as usual."""
    copies = copy_inputs(data, tmp_path / "in")
    out = tmp_path / "returns.csv"
    result = run("diversification", "--returns", copies["returns"], "--out", out, cwd=tmp_path)
    assert_wrote(result, out, quietly(lambda: fc.diversification(data["returns"])))


# --------------------------------------------------------------------------------------------
# outputs replaced only when complete (issue 17 item 8)
# --------------------------------------------------------------------------------------------
OLD_OUTPUT = b"date,note\n2020-01-01,the good output of an earlier run\n"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_failed_write_keeps_the_old_output(data, tmp_path, fmt):
    """A write that fails part-way (the file size limit: EFBIG after 8 KiB) is one error
    line; the earlier output is byte for byte what it was and no temporary is left."""
    folder = tmp_path / "results"
    folder.mkdir()
    out = folder / f"exposures.{fmt}"
    out.write_bytes(OLD_OUTPUT)
    result = run(
        *exposures_args(data, data.path("returns", "csv")),
        "--out",
        out,
        cwd=tmp_path,
        max_file_size=8192,
    )
    assert out.read_bytes() == OLD_OUTPUT, "the old output was overwritten by a partial one"
    assert files_in(folder) == [out.name], "a temporary file was left behind"
    assert_one_line_error(result, str(out))


def test_failed_first_write_leaves_no_file(data, tmp_path):
    out = tmp_path / "results" / "exposures.csv"
    result = run(
        *exposures_args(data, data.path("returns", "csv")),
        "--out",
        out,
        cwd=tmp_path,
        max_file_size=8192,
    )
    assert_one_line_error(result, str(out))
    assert files_in(out.parent) == [], "a truncated output or a temporary was left"


def test_kill_during_write_keeps_the_old_output(tmp_path):
    """SIGKILL while the CLI writes a 60 MB CSV: the target still holds the old file (a
    temporary beside it may remain; nothing can remove it after kill -9), and the next
    run replaces it."""
    rng = np.random.default_rng(17)
    n_days, n_assets = 1500, 300
    dates = business_days(n_days)
    factor_values = rng.normal(0.0, 0.01, (n_days, 3))
    values = factor_values @ rng.normal(1.0, 0.3, (3, n_assets))
    values += rng.normal(0.0, 0.01, values.shape)
    returns, factors = tmp_path / "returns.parquet", tmp_path / "factors.parquet"
    pl.DataFrame({"date": dates, **{f"A{j}": values[:, j] for j in range(n_assets)}}).write_parquet(
        returns
    )
    pl.DataFrame(
        {"date": dates, **{f: factor_values[:, k] for k, f in enumerate(FACTORS)}}
    ).write_parquet(factors)
    folder = tmp_path / "results"
    folder.mkdir()
    out = folder / "exposures.csv"
    out.write_bytes(OLD_OUTPUT)
    seen = out.stat()
    argv = ["exposures", "--returns", returns, "--factors", factors, "--window", "60"]
    child = subprocess.Popen(
        [sys.executable, "-m", "factorcore", *map(str, argv), "--out", str(out)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while child.poll() is None and time.monotonic() < deadline:
            # Writing has begun: the target changed (written in place) or a file beside
            # it holds data.
            now = out.stat()
            if (now.st_ino, now.st_size, now.st_mtime_ns) != (
                seen.st_ino,
                seen.st_size,
                seen.st_mtime_ns,
            ) or any(p.stat().st_size > 0 for p in folder.iterdir() if p != out):
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        if child.poll() is None and time.monotonic() >= deadline:
            child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL, (
        f"exit {child.returncode}: the write ended before it could be killed"
    )
    assert out.read_bytes() == OLD_OUTPUT, "kill -9 left a partial file in place of the old one"
    left = [name for name in files_in(folder) if name != out.name]
    assert all(name.startswith(".exposures.csv.") for name in left), left
    # The next run is not confused by the leftover temporary and replaces the old file.
    result = run(*argv, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    written = out.read_bytes()
    assert written.startswith(b"date,asset,") and written.endswith(b"\n")
    assert written.count(b"\n") == 1 + (n_days - 59) * n_assets  # header + every window
    for name in files_in(folder):
        (folder / name).unlink()  # 60 MB each


def test_replaced_output_keeps_its_permissions_and_new_ones_get_the_usual(data, tmp_path):
    """The temporary file must not leak its own mode into the result."""
    kept = tmp_path / "kept.csv"
    kept.write_bytes(OLD_OUTPUT)
    kept.chmod(0o640)
    fresh = tmp_path / "fresh.csv"
    for out in (kept, fresh):
        result = run(*command_args(data, "diversification"), "--out", out, cwd=tmp_path)
        assert result.returncode == 0, describe(result)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


def test_output_through_a_symlink_replaces_the_file_it_points_to(data, tmp_path):
    real = tmp_path / "store" / "scores.csv"
    real.parent.mkdir()
    real.write_bytes(OLD_OUTPUT)
    link = tmp_path / "scores.csv"
    link.symlink_to(real)
    result = run(*command_args(data, "diversification"), "--out", link, cwd=tmp_path)
    assert_wrote(result, link, quietly(lambda: fc.diversification(data["returns"])))
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert files_in(real.parent) == ["scores.csv"]


def test_output_name_at_the_length_limit_is_written(data, tmp_path):
    """The temporary name is shortened to fit beside a name near NAME_MAX (255)."""
    out = tmp_path / ("s" * 250 + ".csv")
    result = run(*command_args(data, "diversification"), "--out", out, cwd=tmp_path)
    assert_wrote(result, out, quietly(lambda: fc.diversification(data["returns"])))
    assert files_in(tmp_path) == [out.name]


def test_demo_failed_write_keeps_the_old_files(tmp_path):
    """The demo's tables go through the same replace-when-complete writes."""
    out = tmp_path / "report"
    out.mkdir()
    (out / "exposures.parquet").write_bytes(OLD_OUTPUT)
    result = run("demo", "--out", out, "--no-charts", cwd=tmp_path, max_file_size=65536)
    assert (out / "exposures.parquet").read_bytes() == OLD_OUTPUT
    assert files_in(out) == ["exposures.parquet"], "a temporary file was left behind"
    assert_one_line_error(result, str(out / "exposures.parquet"))


# --------------------------------------------------------------------------------------------
# the operating system refuses a path: exit code 1, one line (issue 17 item 11: tracebacks)
# --------------------------------------------------------------------------------------------
LONG_NAME = "r" * 300 + ".csv"  # one path component beyond NAME_MAX (255): ENAMETOOLONG


def _long_returns(data, tmp):
    return exposures_args(data, tmp / LONG_NAME)


def _long_factors(data, tmp):
    return exposures_args(data, data.path("returns", "csv"), tmp / LONG_NAME)


def _long_weights(data, tmp):  # read through the header first
    return ["diversification", "--returns", data.path("returns", "csv"), "--weights", LONG_NAME]


def _long_data(data, tmp):
    return ["attribution", "--data", tmp / LONG_NAME]


def _long_sectors(data, tmp):
    return returns_mode_args(data, sectors=tmp / LONG_NAME)


LONG_INPUTS = {
    "returns": _long_returns,
    "factors": _long_factors,
    "weights": _long_weights,
    "data": _long_data,
    "sectors": _long_sectors,
}


@pytest.mark.parametrize("case", LONG_INPUTS)
def test_input_path_too_long_is_one_line_error(data, tmp_path, case):
    out = tmp_path / "out.csv"
    result = run(*LONG_INPUTS[case](data, tmp_path), "--out", out, cwd=tmp_path)
    line = assert_one_line_error(result)
    assert "r" * 300 in line and "too long" in line.lower(), line
    assert not out.exists()


def test_input_that_is_a_directory_is_one_line_error(data, tmp_path):
    folder = tmp_path / "returns.csv"
    folder.mkdir()
    result = run(*exposures_args(data, folder), "--out", tmp_path / "out.csv", cwd=tmp_path)
    assert_one_line_error(result, "returns.csv", "directory")


def test_output_path_too_long_is_refused_before_any_work(data, tmp_path):
    out = tmp_path / LONG_NAME
    result = run(*command_args(data, "diversification"), "--out", out, cwd=tmp_path)
    line = assert_one_line_error(result)
    assert "r" * 300 in line and "too long" in line.lower(), line
    assert result.stdout == "", "the scores were computed before the output was checked"


def _plain_file(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("a file, not a folder\n")
    return path


DEMO_UNWRITABLE = {
    # /proc refuses new entries (as root too); a file cannot hold a folder; a file is no folder
    "proc": lambda tmp: Path("/proc/demo"),
    "under-a-file": lambda tmp: _plain_file(tmp) / "demo",
    "a-file": _plain_file,
}


@pytest.mark.parametrize("case", DEMO_UNWRITABLE)
def test_demo_unwritable_out_is_refused_before_any_work(tmp_path, case):
    if case == "proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    out = DEMO_UNWRITABLE[case](tmp_path)
    result = run("demo", "--out", out, "--no-charts", cwd=tmp_path)
    assert_one_line_error(result, str(out))
    assert "== Sample market ==" not in result.stdout, "the demo ran before checking --out"


# --------------------------------------------------------------------------------------------
# bad usage: exit code 2
# --------------------------------------------------------------------------------------------
# case: (base command, further arguments); every file exists, only the usage is wrong
USAGE_CASES = {
    "unknown-option": ("exposures", ["--window", "60", "--bogus"]),
    "window-abc": ("exposures", ["--window", "abc"]),
    "min-periods-abc": ("exposures", ["--window", "60", "--min-periods", "x"]),
    "diversification-window-abc": ("diversification", ["--window", "abc"]),
    "unknown-shrinkage": ("diversification", ["--shrinkage", "oas"]),
    "unknown-method": ("brinson", ["--method", "xyz"]),
    "unknown-link": ("brinson", ["--link", "xyz"]),
    "attribution-without-input": ("attribution", []),
    "unknown-command": ("frobnicate", []),
}


def assert_usage_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, exactly one stderr line ``factorcore: error: ...`` holding every needle."""
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line\n{describe(result)}"
    assert lines[0].startswith("factorcore: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("case", USAGE_CASES)
def test_bad_usage_exits_2(data, tmp_path, case):
    base, extra = USAGE_CASES[case]
    out = tmp_path / "out.csv"
    assert_usage_error(run(*command_args(data, base), *extra, "--out", out, cwd=tmp_path))


# Values no data could make valid are bad usage too, found before any file is read: beyond
# any integer the core takes (issue 17: 2**64 was an OverflowError traceback), zero, negative.
BAD_NUMBERS = {
    "window-2**64": ("exposures", "--window", "18446744073709551616"),
    "window-10**30": ("exposures", "--window", str(10**30)),
    "window-negative": ("exposures", "--window", "-1"),
    "window-zero": ("exposures", "--window", "0"),
    "min-periods-2**64": ("exposures", "--min-periods", "18446744073709551616"),
    "min-periods-zero": ("exposures", "--min-periods", "0"),
    "halflife-negative": ("exposures", "--halflife", "-2"),
    "halflife-nan": ("exposures", "--halflife", "nan"),
    "halflife-inf": ("exposures", "--halflife", "inf"),
    "diversification-window-2**64": ("diversification", "--window", "18446744073709551616"),
    "diversification-window-zero": ("diversification", "--window", "0"),
    "step-zero": ("diversification", "--step", "0"),
    "max-iter-2**64": ("diversification", "--max-iter", "18446744073709551616"),
    "max-iter-negative": ("diversification", "--max-iter", "-5"),
    "seed-negative": ("demo", "--seed", "-1"),
}


@pytest.mark.parametrize("case", BAD_NUMBERS)
def test_number_out_of_range_is_one_usage_line(data, tmp_path, case):
    base, option, value = BAD_NUMBERS[case]
    extra = [option, value]
    if base == "exposures" and option != "--window":
        extra = ["--window", "60", *extra]
    out = tmp_path / ("demo" if base == "demo" else "out.csv")
    result = run(*command_args(data, base), *extra, "--out", out, cwd=tmp_path)
    assert_usage_error(result, option, value)
    assert not out.exists()


@pytest.mark.parametrize("base", ["exposures", "diversification", "brinson"])
def test_unsupported_output_type_is_refused_before_any_work(data, tmp_path, base):
    extra = ["--window", "60"] if base == "exposures" else []
    out = tmp_path / "out.xlsx"
    result = run(*command_args(data, base), *extra, "--out", out, cwd=tmp_path)
    assert_usage_error(result)
    assert "out.xlsx" in result.stderr and not out.exists()
    assert not out.exists()


@pytest.mark.parametrize(
    ("base", "extra"),
    [("exposures", ["--window", "60"]), ("diversification", []), ("brinson", [])],
)
def test_missing_out_exits_2(data, tmp_path, base, extra):
    assert_usage_error(run(*command_args(data, base), *extra, cwd=tmp_path))
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------
# help and the console script
# --------------------------------------------------------------------------------------------
SUBCOMMAND_OPTIONS = {
    "exposures": [
        "--returns", "--factors", "--window", "--min-periods", "--halflife", "--no-intercept",
        "--tstats", "--date", "--asset", "--value", "--out",
    ],
    "attribution": [
        "--data", "--returns", "--portfolio", "--benchmark", "--sectors", "--every", "--method",
        "--top-down", "--link", "--out",
    ],
    "diversification": [
        "--returns", "--weights", "--window", "--step", "--shrinkage", "--max-iter", "--date",
        "--out",
    ],
    "demo": ["--out", "--seed", "--no-charts"],
}  # fmt: skip


@pytest.mark.parametrize("command", SUBCOMMAND_OPTIONS)
def test_subcommand_help(tmp_path, command):
    result = run(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    for option in SUBCOMMAND_OPTIONS[command]:
        assert re.search(re.escape(option) + r"(?![\w-])", result.stdout), f"{option} not in help"
    assert "example" in result.stdout.lower(), result.stdout


def test_top_level_help_lists_commands(tmp_path):
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    for command in SUBCOMMAND_OPTIONS:
        assert command in result.stdout


def test_console_script(data, tmp_path):
    script = Path(sys.executable).parent / "factorcore"
    assert script.is_file(), f"console script {script} not installed"
    result = run("--help", exe=script, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "exposures" in result.stdout
    out = tmp_path / "div.csv"
    result = run(
        "diversification",
        "--returns",
        data.path("returns", "csv"),
        "--out",
        out,
        exe=script,
        cwd=tmp_path,
    )
    assert_wrote(result, out, quietly(lambda: fc.diversification(data["returns"])))


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------
DEMO_HEADINGS = (
    "== Sample market ==",
    "== Exposures: growth vs value ==",
    "== Attribution: where the active return came from ==",
    "== Diversification: how many bets ==",
)
DEMO_FILES = (
    "exposures.parquet",
    "portfolio_exposures.parquet",
    "attribution.parquet",
    "attribution_linked.parquet",
    "diversification.parquet",
)
DEMO_CHARTS = ("exposures.png", "attribution.png", "diversification.png")
DEMO_FACTORS = ("market", "size", "value", "momentum", "dollar")
LINKED_COLUMNS = ["allocation", "selection", "interaction", "total"]
BRINSON_COLUMNS = ["date", "sector", "wp", "wb", "rp", "rb", *LINKED_COLUMNS]
PORTFOLIOS = ("rotation", "barbell")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    root = tmp_path_factory.mktemp("demo")
    out = root / "report"
    return run("demo", "--out", out, "--seed", "0", "--no-charts", cwd=root), out


@pytest.fixture(scope="module")
def demo(demo_run) -> Path:
    result, out = demo_run
    assert result.returncode == 0, describe(result)
    return out


@pytest.fixture(scope="module")
def market():
    from factorcore.datasets import sample_market

    return sample_market(seed=0)


def test_demo_report_and_files(demo_run):
    result, out = demo_run
    assert result.returncode == 0, describe(result)
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    for heading in DEMO_HEADINGS:
        assert heading in lines, f"heading {heading!r} missing\n{result.stdout}"
    for name in DEMO_FILES:
        assert (out / name).is_file(), (
            f"{name} not written; {sorted(p.name for p in out.iterdir())}"
        )
    assert not list(out.glob("*.png")), "--no-charts wrote a chart"


def portfolio_names(frame: pl.DataFrame) -> set[str]:
    return set(frame.get_column("portfolio").cast(pl.String))


def test_demo_portfolio_exposures_layout(demo):
    frame = pl.read_parquet(demo / "portfolio_exposures.parquet")
    assert frame.columns[:2] == ["portfolio", "date"], frame.columns
    assert set(DEMO_FACTORS) <= set(frame.columns), frame.columns
    assert portfolio_names(frame) == {*PORTFOLIOS, "benchmark"}


def test_demo_attribution_layout(demo):
    periods = pl.read_parquet(demo / "attribution.parquet")
    assert {"portfolio", *BRINSON_COLUMNS} <= set(periods.columns), periods.columns
    assert portfolio_names(periods) >= set(PORTFOLIOS)
    linked = pl.read_parquet(demo / "attribution_linked.parquet")
    assert linked.columns == ["portfolio", "sector", *LINKED_COLUMNS], linked.columns
    assert portfolio_names(linked) >= set(PORTFOLIOS)


def test_demo_diversification_layout(demo):
    frame = pl.read_parquet(demo / "diversification.parquet")
    assert frame.columns[:3] == ["portfolio", "date", "n_assets"], frame.columns
    assert portfolio_names(frame) == {*PORTFOLIOS, "benchmark"}


def test_demo_exposures_match_api(demo, market):
    """Every asset's exposures (window 252, halflife 63) on each date the file holds."""
    expected = fc.rolling_exposures(market.returns, market.factors, window=252, halflife=63)
    expected = expected.with_columns(pl.col("asset").cast(pl.String))
    got = pl.read_parquet(demo / "exposures.parquet", columns=expected.columns)
    got = got.with_columns(pl.col("asset").cast(pl.String))
    assert got.height > 0
    dates = got.get_column("date").unique().implode()
    expected = expected.filter(pl.col("date").is_in(dates))
    assert_same_frame(got.sort("date", "asset"), expected.sort("date", "asset"), tol=DEMO_TOL)


@pytest.mark.parametrize("portfolio", [*PORTFOLIOS, "benchmark"])
def test_demo_diversification_matches_api(demo, market, portfolio):
    """Portfolios: monthly 252-day windows ending on the last date, over the assets the
    portfolio ever holds. The benchmark: the last 252-day window, over every asset."""
    returns = market.returns
    if portfolio == "benchmark":
        expected = quietly(lambda: fc.diversification(returns.tail(252), market.benchmark))
    else:
        weights = market.portfolios[portfolio]
        universe = returns.slice((returns.height - 252) % 21).select(
            "date", *weights.get_column("asset").unique().sort()
        )
        expected = quietly(lambda: fc.diversification(universe, weights, window=252, step=21))
        assert expected.get_column("date").max() == returns.get_column("date").max()
    got = (
        pl.read_parquet(demo / "diversification.parquet")
        .filter(pl.col("portfolio").cast(pl.String) == portfolio)
        .select(expected.columns)
    )
    assert_same_frame(got, expected, tol=DEMO_TOL)


@pytest.mark.parametrize("portfolio", PORTFOLIOS)
def test_demo_linked_totals_add_up_to_compounded_excess(demo, portfolio):
    periods = (
        pl.read_parquet(demo / "attribution.parquet")
        .filter(pl.col("portfolio").cast(pl.String) == portfolio)
        .filter(pl.col("date") >= dt.date(2025, 1, 1))
        .group_by("date")
        .agg(
            (pl.col("wp") * pl.col("rp")).sum().alias("Rp"),
            (pl.col("wb") * pl.col("rb")).sum().alias("Rb"),
        )
    )
    assert periods.height >= 12, f"{periods.height} linked months"
    compounded_p = float((1.0 + periods.get_column("Rp")).product()) - 1.0
    compounded_b = float((1.0 + periods.get_column("Rb")).product()) - 1.0
    linked = pl.read_parquet(demo / "attribution_linked.parquet").filter(
        pl.col("portfolio").cast(pl.String) == portfolio
    )
    assert linked.height > 0
    total = float(linked.get_column("total").sum())
    assert abs(total - (compounded_p - compounded_b)) <= DEMO_TOL, (
        total,
        compounded_p - compounded_b,
    )


def test_demo_writes_charts_to_default_folder(tmp_path):
    assert importlib.util.find_spec("matplotlib") is not None, (
        "matplotlib is a test dependency (factorcore[plot])"
    )
    result = run("demo", "--seed", "0", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    out = tmp_path / "demo-output"
    for name in (*DEMO_FILES, *DEMO_CHARTS):
        assert (out / name).is_file(), f"{name} not written in {out}"
    for name in DEMO_CHARTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"


def report_table(stdout: str, column: str) -> dict[str, dict[str, str]]:
    """The Markdown table of the report whose header names `column`: row label -> cells."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and column in line)
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def test_demo_report_scores_match_api(demo_run, market):
    """The report's last-window table: the factor bets of each portfolio's latest holdings
    (fc.factor_bets on the last date's exposures) and the holdings' scores."""
    result, out = demo_run
    table = report_table(result.stdout, "factor_bets")
    assert set(table) == {*PORTFOLIOS, "benchmark"}
    exposures = fc.rolling_exposures(market.returns, market.factors, window=252, halflife=63)
    latest = exposures.filter(pl.col("date") == pl.col("date").max())
    scores = pl.read_parquet(out / "diversification.parquet")
    last = scores.filter(pl.col("date") == pl.col("date").max())
    for name, weights in {**market.portfolios, "benchmark": market.benchmark}.items():
        holdings = weights.filter(pl.col("date") == pl.col("date").max())
        bets = fc.factor_bets(latest, market.factors, holdings, window=252)["enb_mt"][-1]
        assert float(table[name]["factor_bets"]) == pytest.approx(round(bets, 2), abs=1e-9)
        assert int(table[name]["holdings"]) == holdings.height
        effective = last.filter(pl.col("portfolio") == name)["effective_n"][0]
        assert float(table[name]["effective_n"]) == pytest.approx(round(effective, 2), abs=1e-9)
