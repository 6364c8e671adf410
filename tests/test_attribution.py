"""Sector (Brinson) attribution: `factorcore.brinson`.

* Bacon's published three-sector example (BHB, BF, top-down and geometric), to the published
  precision.
* Agreement with an independent NumPy computation of the definitions on large random data,
  sector-level and holdings-level, for every method and sector dtype.
* The documented invariants (effects add up, one-sided sectors have no selection, ...).
* Every documented error, with a message that names the problem.
"""

from __future__ import annotations

import datetime as dt
import re

import factorcore as fc
import numpy as np
import polars as pl
import pytest
from attribution_reference import (
    BACON_DATES,
    BACON_RB,
    BACON_RP,
    BACON_SECTORS,
    BACON_WB,
    BACON_WP,
    EFFECTS,
    bacon_frame,
    brinson_ref,
    expected_brinson_frame,
    holdings_to_sector_arrays,
    month_ends,
    random_holdings,
    random_sector_arrays,
    random_weights,
    sector_frame,
    sp500_holdings_data,
)
from factorcore import DtypeError, InvalidInputError, NonFiniteError
from helpers import assert_close

# Effects are products of O(0.1) numbers summed over a few hundred sectors: agreement with
# the reference is limited only by the order of float additions.
RTOL = 1e-12
ATOL = 1e-14
# Bacon prints percentages with two decimals (fractions with four): one unit in that digit.
PUBLISHED_TOL = 1e-4

OUTPUT_COLUMNS = [
    "date",
    "sector",
    "wp",
    "wb",
    "rp",
    "rb",
    "allocation",
    "selection",
    "interaction",
    "total",
]
FLOAT_COLUMNS = OUTPUT_COLUMNS[2:]
# (method, top_down) combinations with an interaction-free or full arithmetic decomposition
ARITHMETIC = [("bf", False), ("bhb", False), ("bf", True), ("bhb", True)]
ALL_VARIANTS = [*ARITHMETIC, ("geometric", False)]
VARIANT_IDS = ["bf", "bhb", "bf-top-down", "bhb-top-down", "geometric"]


def has_all(*parts: str) -> str:
    """Regex matching a message that contains every one of ``parts`` (any order)."""
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


def by_sector(out: pl.DataFrame, column: str, day: dt.date | None = None) -> dict:
    """{sector: value} of one output column on one date (the only date by default)."""
    if day is not None:
        out = out.filter(pl.col("date") == day)
    assert out["date"].n_unique() == 1
    return dict(zip(out["sector"].cast(pl.String).to_list(), out[column].to_list(), strict=True))


def assert_published(got: dict, published: dict, name: str, tol: float) -> None:
    for sector, value in published.items():
        assert abs(got[sector] - value) <= tol, f"{name} {sector}: {got[sector]!r} vs {value}"


def assert_matches_expected(got: pl.DataFrame, exp: pl.DataFrame, label: str = "") -> None:
    """Documented columns in order, same keys in the same order and dtype, floats within tol.

    Null returns must stay null (zero weight on both sides), not become NaN.
    """
    assert got.columns == OUTPUT_COLUMNS, f"{label}columns {got.columns}"
    assert got.height == exp.height, f"{label}height {got.height} != {exp.height}"
    assert got.schema["date"] == exp.schema["date"], f"{label}date dtype {got.schema['date']}"
    assert got.schema["sector"] == exp.schema["sector"], (
        f"{label}sector dtype {got.schema['sector']} != {exp.schema['sector']}"
    )
    assert got["date"].to_list() == exp["date"].to_list(), f"{label}date order differs"
    assert got["sector"].to_list() == exp["sector"].to_list(), f"{label}sector order differs"
    for name in FLOAT_COLUMNS:
        assert got.schema[name] == pl.Float64, f"{label}{name} dtype {got.schema[name]}"
        assert got[name].is_null().to_list() == exp[name].is_null().to_list(), (
            f"{label}{name}: null pattern differs"
        )
        assert_close(
            got[name].to_numpy(), exp[name].to_numpy(), f"{label}{name}", rtol=RTOL, atol=ATOL
        )


def per_date_sums(out: pl.DataFrame) -> pl.DataFrame:
    return (
        out.group_by("date")
        .agg(
            (pl.col("wp") * pl.col("rp")).sum().alias("Rp"),
            (pl.col("wb") * pl.col("rb")).sum().alias("Rb"),
            *(pl.col(name).sum() for name in (*EFFECTS, "total")),
        )
        .sort("date")
    )


# --------------------------------------------------------------------------------------------
# sector labels of every supported dtype
# --------------------------------------------------------------------------------------------
SECTOR_KINDS = ["string", "enum", "categorical", "int64", "int32"]


def sector_labels(kind: str, n: int, rng) -> tuple[list, pl.DataType]:
    """``n`` labels in an order that is neither sorted nor the category order."""
    names = [f"S{j:03d}" for j in rng.permutation(n)]
    if kind == "string":
        return names, pl.String
    if kind == "enum":  # category order: reverse lexical
        return names, pl.Enum(sorted(names, reverse=True))
    if kind == "categorical":
        return names, pl.Categorical
    codes = [int(c) for c in 7 * rng.permutation(n) - 300]  # negative codes too
    return codes, pl.Int64 if kind == "int64" else pl.Int32


# --------------------------------------------------------------------------------------------
# API surface
# --------------------------------------------------------------------------------------------
def test_public_names():
    from factorcore import attribution

    assert fc.brinson is attribution.brinson
    assert fc.link is attribution.link
    assert fc.factor_attribution is attribution.factor_attribution


def test_weight_sum_tolerance_is_the_documented_value():
    from factorcore import attribution

    # Tight enough that Brinson-Fachler effects still add up to Rp - Rb to ~1e-9:
    # rounded weights are refused with a message that says how to normalise them.
    assert attribution.WEIGHT_SUM_TOLERANCE == 1e-9
    rounded = bacon_frame(1).with_columns(pl.col("wp") + pl.Series([5e-7, 0.0, 0.0]))
    with pytest.raises(fc.InvalidInputError, match="normalise the weights per date"):
        fc.brinson(rounded)


def test_docstring_example():
    out = fc.brinson(bacon_frame(1), method="bf")
    assert out["allocation"].sum() == pytest.approx(-0.012, abs=1e-15)


def test_output_columns_dtypes_and_inputs_passed_through():
    data = bacon_frame(4)
    out = fc.brinson(data)
    assert out.columns == OUTPUT_COLUMNS
    assert out.schema["date"] == pl.Date
    assert out.schema["sector"] == pl.String
    assert out.height == 12
    # sorted by date, then sector (String: sorted order)
    exp_keys = data.select("date", "sector").sort(["date", "sector"])
    assert out.select("date", "sector").equals(exp_keys)
    joined = out.join(data, on=["date", "sector"], suffix="_in")
    for name in ("wp", "wb", "rp", "rb"):
        got, given = joined[name].to_numpy(), joined[f"{name}_in"].to_numpy()
        assert_close(got, given, name, rtol=1e-15, atol=0)


def test_default_method_is_bf_without_top_down():
    data = bacon_frame(4)
    assert fc.brinson(data).equals(fc.brinson(data, method="bf", top_down=False))


# --------------------------------------------------------------------------------------------
# Bacon (2008) ch. 5: one quarter, three sectors.
# Published figures as reproduced in PortfolioAttribution's test suite
# (github.com/anandkkumar/PortfolioAttribution, tests/testthat/test_arithmetic.R,
# test_geometric.R and test_geometric_multi_period.R).
# --------------------------------------------------------------------------------------------
UK, JP, US = BACON_SECTORS


def test_bacon_portfolio_and_benchmark_returns():
    sums = per_date_sums(fc.brinson(bacon_frame(1)))
    # Bacon ch. 5: portfolio 8.3%, benchmark 6.4%
    assert sums["Rp"][0] == pytest.approx(0.083, abs=1e-15)
    assert sums["Rb"][0] == pytest.approx(0.064, abs=1e-15)


def test_bacon_bhb_table_5_2():
    out = fc.brinson(bacon_frame(1), method="bhb")
    # Bacon Table 5.2 (BHB); exact figures (products of the one- and two-digit inputs)
    published = {
        "allocation": ({UK: 0.0, JP: -0.004, US: -0.008}, -0.012),
        "selection": ({UK: 0.04, JP: -0.002, US: -0.008}, 0.03),
        "interaction": ({UK: 0.0, JP: -0.001, US: 0.002}, 0.001),
    }
    for effect, (sectors, total) in published.items():
        assert_published(by_sector(out, effect), sectors, effect, 1e-15)
        assert out[effect].sum() == pytest.approx(total, abs=1e-15), effect
    assert out["total"].sum() == pytest.approx(0.083 - 0.064, abs=1e-15)


def test_bacon_bf_table_5_3():
    out = fc.brinson(bacon_frame(1), method="bf")
    # Bacon Table 5.3 (Brinson-Fachler): allocation against the benchmark total of 6.4%
    published = {
        "allocation": ({UK: 0.0, JP: -0.0104, US: -0.0016}, -0.012),
        "selection": ({UK: 0.04, JP: -0.002, US: -0.008}, 0.03),
        "interaction": ({UK: 0.0, JP: -0.001, US: 0.002}, 0.001),
    }
    for effect, (sectors, total) in published.items():
        assert_published(by_sector(out, effect), sectors, effect, 1e-15)
        assert out[effect].sum() == pytest.approx(total, abs=1e-15), effect


def test_bacon_top_down_table_5_4():
    out = fc.brinson(bacon_frame(1), method="bf", top_down=True)
    # Bacon Table 5.4: interaction folded into selection, wp * (rp - rb)
    assert_published(by_sector(out, "allocation"), {UK: 0.0, JP: -0.0104, US: -0.0016}, "A", 1e-15)
    assert_published(by_sector(out, "selection"), {UK: 0.04, JP: -0.003, US: -0.006}, "S", 1e-15)
    assert out["selection"].sum() == pytest.approx(0.031, abs=1e-15)
    assert (out["interaction"] == 0.0).all()
    assert out["total"].sum() == pytest.approx(0.019, abs=1e-15)


def test_bacon_geometric_table_5_5():
    out = fc.brinson(bacon_frame(1), method="geometric")
    # Bacon Table 5.5 / first quarter of Table 8.6 (geometric, semi-notional return 5.2%).
    # Japan's selection: -0.29% in Table 8.6 (-0.002852 exactly); the reproduction of
    # Table 5.5 lists -0.28%, within the published precision either way.
    assert_published(
        by_sector(out, "allocation"), {UK: 0.0, JP: -0.0098, US: -0.0015}, "A", PUBLISHED_TOL
    )
    assert_published(
        by_sector(out, "selection"), {UK: 0.0380, JP: -0.0029, US: -0.0057}, "S", PUBLISHED_TOL
    )
    assert abs(out["allocation"].sum() - (-0.0113)) <= PUBLISHED_TOL
    assert abs(out["selection"].sum() - 0.0295) <= PUBLISHED_TOL
    assert (out["interaction"] == 0.0).all()
    geometric_excess = (1 + out["allocation"].sum()) * (1 + out["selection"].sum()) - 1
    assert geometric_excess == pytest.approx(1.083 / 1.064 - 1, abs=1e-14)


# Bacon Table 8.1: Brinson-Fachler, interaction folded into selection, four quarters.
# (allocation UK, JP, US, total), (selection UK, JP, US, total); exact at four decimals.
BACON_TABLE_8_1 = [
    ((0.0, -0.0104, -0.0016, -0.012), (0.04, -0.003, -0.006, 0.031)),
    ((-0.0072, -0.0086, 0.0108, -0.005), (0.014, -0.002, 0.005, 0.017)),
    ((0.025, 0.0175, -0.0075, 0.035), (0.015, 0.015, 0.01, 0.04)),
    ((-0.003, -0.007, 0.0, -0.01), (0.015, -0.01, 0.03, 0.035)),
]
# Bacon Table 8.6: geometric attribution of the same four quarters.
BACON_TABLE_8_6 = [
    ((0.0, -0.0098, -0.0015, -0.0113), (0.038, -0.0029, -0.0057, 0.0295)),
    ((-0.0075, -0.009, 0.0113, -0.0052), (0.0148, -0.0021, 0.0053, 0.0179)),
    ((0.0286, 0.02, -0.0086, 0.04), (0.0165, 0.0165, 0.011, 0.044)),
    ((-0.0029, -0.0069, 0.0, -0.0098), (0.0149, -0.0099, 0.0297, 0.0347)),
]


@pytest.mark.parametrize(
    ("method", "table", "tol"),
    [("bf", BACON_TABLE_8_1, 1e-15), ("geometric", BACON_TABLE_8_6, PUBLISHED_TOL)],
    ids=["table-8.1-bf-top-down", "table-8.6-geometric"],
)
def test_bacon_four_quarters(method, table, tol):
    out = fc.brinson(bacon_frame(4), method=method, top_down=method == "bf")
    for day, (alloc, sel) in zip(BACON_DATES, table, strict=True):
        for effect, values in (("allocation", alloc), ("selection", sel)):
            got = by_sector(out, effect, day)
            published = dict(zip(BACON_SECTORS, values[:3], strict=False))
            assert_published(got, published, f"{day} {effect}", tol)
            assert abs(sum(got.values()) - values[3]) <= tol, f"{day} {effect} total"


def test_bacon_example_matches_reference_exactly():
    """The published example also agrees with the NumPy reference to rounding, every method."""
    for method, top_down in ALL_VARIANTS:
        ref = brinson_ref(BACON_WP, BACON_WB, BACON_RP, BACON_RB, method=method, top_down=top_down)
        exp = expected_brinson_frame(BACON_DATES, BACON_SECTORS, BACON_WP, BACON_WB, ref)
        got = fc.brinson(bacon_frame(4), method=method, top_down=top_down)
        assert_matches_expected(got, exp, f"{method} top_down={top_down}: ")


# --------------------------------------------------------------------------------------------
# random data against the NumPy reference
# --------------------------------------------------------------------------------------------
N_DATES = 300
N_SECTORS = 200


@pytest.fixture(scope="module")
def sector_arrays():
    rng = np.random.default_rng(20240131)
    wp, wb, rp, rb = random_sector_arrays(rng, N_DATES, N_SECTORS, zero_frac=0.15)
    # drop about half of the rows held on neither side: those (date, sector) pairs are absent
    absent = (wp == 0) & (wb == 0) & (rng.random(wp.shape) < 0.5)
    return month_ends(N_DATES), wp, wb, rp, rb, absent


def random_sector_case(sector_arrays, kind: str, seed: int = 5):
    dates, wp, wb, rp, rb, absent = sector_arrays
    labels, dtype = sector_labels(kind, N_SECTORS, np.random.default_rng(seed))
    frame = sector_frame(dates, labels, wp, wb, rp, rb, sector_dtype=dtype)
    frame = frame.filter(pl.Series(~absent.ravel()))
    return dates, labels, dtype, frame


@pytest.mark.parametrize("kind", SECTOR_KINDS)
@pytest.mark.parametrize(("method", "top_down"), ALL_VARIANTS, ids=VARIANT_IDS)
def test_sector_level_matches_reference(sector_arrays, kind, method, top_down):
    dates, labels, dtype, frame = random_sector_case(sector_arrays, kind)
    _, wp, wb, rp, rb, _ = sector_arrays
    ref = brinson_ref(wp, wb, rp, rb, method=method, top_down=top_down)
    exp = expected_brinson_frame(dates, labels, wp, wb, ref, sector_dtype=dtype, keys=frame)
    got = fc.brinson(frame, method=method, top_down=top_down)
    assert_matches_expected(got, exp)


@pytest.fixture(scope="module")
def holdings():
    rng = np.random.default_rng(777)
    frame, info = random_holdings(rng, N_DATES, N_SECTORS, per_sector=3)
    # drop some holdings held on neither side: sectors left with no rows on a date are absent
    both_zero = (pl.col("wp") == 0) & (pl.col("wb") == 0)
    keep = pl.Series(rng.random(frame.height) < 0.6)
    frame = frame.filter(~both_zero | keep)
    return frame, info


@pytest.mark.parametrize("kind", ["string", "enum", "categorical", "int64"])
@pytest.mark.parametrize(("method", "top_down"), ALL_VARIANTS, ids=VARIANT_IDS)
def test_holdings_level_matches_reference(holdings, kind, method, top_down):
    frame, info = holdings
    labels, dtype = sector_labels(kind, len(info["sectors"]), np.random.default_rng(9))
    relabel = dict(zip(info["sectors"], labels, strict=True))
    frame = frame.with_columns(
        pl.Series("sector", [relabel[s] for s in frame["sector"]]).cast(dtype)
    )
    swp, swb, srp, srb = holdings_to_sector_arrays(info)
    ref = brinson_ref(swp, swb, srp, srb, method=method, top_down=top_down)
    sectors = [relabel[s] for s in info["sectors"]]
    exp = expected_brinson_frame(
        info["dates"], sectors, swp, swb, ref, sector_dtype=dtype, keys=frame
    )
    got = fc.brinson(frame, method=method, top_down=top_down)
    assert_matches_expected(got, exp)


def test_holdings_with_one_asset_per_sector_equal_sector_level(sector_arrays):
    """Holdings input whose sectors hold one asset each is the sector-level problem."""
    dates, wp, wb, rp, rb, _ = sector_arrays
    # an asset has one return for both sides (NaN where neither side holds it)
    ret = np.where(wp != 0, rp, rb)
    sectors = [f"S{j:03d}" for j in range(N_SECTORS)]
    sect = sector_frame(dates, sectors, wp, wb, ret, ret)
    hold = sect.rename({"rp": "ret"}).drop("rb")
    hold = hold.with_columns(pl.col("sector").str.replace("S", "A").alias("asset"))
    for method, top_down in ALL_VARIANTS:
        got = fc.brinson(hold, method=method, top_down=top_down)
        exp = fc.brinson(sect, method=method, top_down=top_down)
        for name in FLOAT_COLUMNS:
            assert_close(got[name].to_numpy(), exp[name].to_numpy(), name, rtol=RTOL, atol=ATOL)


def test_datetime_dates_lazyframe_and_custom_column_names(sector_arrays):
    dates, wp, wb, rp, rb, _ = sector_arrays
    sectors = [f"S{j:03d}" for j in range(N_SECTORS)]
    frame = sector_frame(dates, sectors, wp, wb, rp, rb)
    ref = brinson_ref(wp, wb, rp, rb, method="bf")
    exp = expected_brinson_frame(dates, sectors, wp, wb, ref)
    names = {
        "date": "when",
        "sector": "gics",
        "wp": "w_port",
        "wb": "w_bench",
        "rp": "r_port",
        "rb": "r_bench",
    }
    renamed = frame.with_columns(pl.col("date").cast(pl.Datetime("us"))).rename(names)
    got = fc.brinson(renamed.lazy(), **names)
    # the key and input columns may keep the custom names: compare them by position
    assert got.columns[6:] == ["allocation", "selection", "interaction", "total"]
    assert got.schema[got.columns[0]] == pl.Datetime("us")
    got_days = [d.date() for d in got[got.columns[0]].to_list()]
    assert got_days == exp["date"].to_list()
    assert got[got.columns[1]].to_list() == exp["sector"].to_list()
    for i, name in enumerate(FLOAT_COLUMNS):
        assert_close(got[:, 2 + i].to_numpy(), exp[name].to_numpy(), name, rtol=RTOL, atol=ATOL)


def test_holdings_custom_column_names(holdings):
    frame, _ = holdings
    base = fc.brinson(frame, method="bhb")
    names = {"date": "d", "sector": "grp", "asset": "ticker", "wp": "a", "wb": "b", "ret": "r"}
    got = fc.brinson(frame.rename(names), method="bhb", **names)
    for i, name in enumerate(FLOAT_COLUMNS):
        assert_close(got[:, 2 + i].to_numpy(), base[name].to_numpy(), name, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["string", "categorical", "int64"])
def test_many_sectors_per_date_match_reference(kind):
    """Tens of thousands of sectors per date, rows of each date in a random order and some
    pairs absent, against the NumPy definition. (Each new sector's first row used to be
    found by a search of its date: quadratic in sectors, 11 s for 100k labels.)"""
    rng = np.random.default_rng(1717)
    n_dates, n_sectors = 3, 30_000
    wp, wb, rp, rb = random_sector_arrays(rng, n_dates, n_sectors, zero_frac=0.2)
    dates = month_ends(n_dates)
    labels, dtype = sector_labels(kind, n_sectors, rng)
    frame = sector_frame(dates, labels, wp, wb, rp, rb, sector_dtype=dtype)
    absent = (wp == 0) & (wb == 0) & (rng.random(wp.shape) < 0.5)
    frame = frame.filter(pl.Series(~absent.ravel()))
    frame = frame.sample(fraction=1.0, shuffle=True, seed=3).sort("date", maintain_order=True)
    for method, top_down in [("bf", False), ("geometric", False)]:
        ref = brinson_ref(wp, wb, rp, rb, method=method, top_down=top_down)
        exp = expected_brinson_frame(dates, labels, wp, wb, ref, sector_dtype=dtype, keys=frame)
        assert_matches_expected(fc.brinson(frame, method=method), exp, f"{method}: ")


# --------------------------------------------------------------------------------------------
# invariants
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "top_down"), ARITHMETIC, ids=VARIANT_IDS[:4])
def test_arithmetic_effects_sum_to_active_return(sector_arrays, method, top_down):
    _, _, _, frame = random_sector_case(sector_arrays, "string")
    out = fc.brinson(frame, method=method, top_down=top_down)
    _, wp, wb, rp, rb, _ = sector_arrays
    active = np.nansum(wp * rp, axis=1) - np.nansum(wb * rb, axis=1)
    sums = per_date_sums(out)
    assert_close(sums["total"], active, "sum of totals", rtol=0, atol=1e-15)
    parts = sums["allocation"] + sums["selection"] + sums["interaction"]
    assert_close(parts, active, "sum of effects", rtol=0, atol=1e-15)
    if top_down:
        assert (out["interaction"] == 0.0).all()


def test_geometric_effects_compound_to_geometric_excess(sector_arrays):
    _, _, _, frame = random_sector_case(sector_arrays, "string")
    out = fc.brinson(frame, method="geometric")
    _, wp, wb, rp, rb, _ = sector_arrays
    excess = (1 + np.nansum(wp * rp, axis=1)) / (1 + np.nansum(wb * rb, axis=1))
    sums = per_date_sums(out)
    compounded = (1 + sums["allocation"].to_numpy()) * (1 + sums["selection"].to_numpy())
    assert_close(compounded, excess, "(1+A)(1+S)", rtol=0, atol=1e-15)
    assert (out["interaction"] == 0.0).all()


def test_bf_and_bhb_differ_only_in_how_allocation_is_spread(sector_arrays):
    """BF allocation = BHB allocation - (wp - wb) Rb: equal totals, identical other effects."""
    _, _, _, frame = random_sector_case(sector_arrays, "string")
    bf = fc.brinson(frame, method="bf")
    bhb = fc.brinson(frame, method="bhb")
    for name in ("selection", "interaction"):
        assert_close(bf[name].to_numpy(), bhb[name].to_numpy(), name, rtol=0, atol=1e-16)
    assert_close(
        per_date_sums(bf)["allocation"],
        per_date_sums(bhb)["allocation"],
        "allocation per date",
        rtol=0,
        atol=1e-15,
    )


def one_sided_frame(rp_missing, rb_missing) -> pl.DataFrame:
    """Three sectors; "Gold" held by the benchmark only, "Crypto" by the portfolio only."""
    return pl.DataFrame(
        {
            "date": [dt.date(2025, 6, 30)] * 3,
            "sector": ["Tech", "Gold", "Crypto"],
            "wp": [0.8, 0.0, 0.2],
            "wb": [0.7, 0.3, 0.0],
            "rp": [0.05, rp_missing, 0.30],
            "rb": [0.04, 0.02, rb_missing],
        },
        schema_overrides={"rp": pl.Float64, "rb": pl.Float64},
    )


@pytest.mark.parametrize(
    "missing", [None, float("nan"), 0.0, 0.5], ids=["null", "nan", "zero", "stale-value"]
)
@pytest.mark.parametrize(("method", "top_down"), ALL_VARIANTS, ids=VARIANT_IDS)
def test_sector_held_on_one_side_has_no_selection(method, top_down, missing):
    """A zero-weight side takes the other side's return, whatever value was given for it."""
    out = fc.brinson(one_sided_frame(missing, missing), method=method, top_down=top_down)
    sel = by_sector(out, "selection")
    inter = by_sector(out, "interaction")
    alloc = by_sector(out, "allocation")
    for sector in ("Gold", "Crypto"):
        assert sel[sector] == 0.0, f"{sector} selection {sel[sector]}"
        assert inter[sector] == 0.0, f"{sector} interaction {inter[sector]}"
    assert by_sector(out, "rp")["Gold"] == pytest.approx(0.02, abs=0)
    assert by_sector(out, "rb")["Crypto"] == pytest.approx(0.30, abs=0)
    big_rp, big_rb = 0.8 * 0.05 + 0.2 * 0.30, 0.7 * 0.04 + 0.3 * 0.02
    if method == "bhb":
        exp_gold, exp_crypto = -0.3 * 0.02, 0.2 * 0.30
    elif method == "bf":
        exp_gold, exp_crypto = -0.3 * (0.02 - big_rb), 0.2 * (0.30 - big_rb)
    else:
        exp_gold, exp_crypto = -0.3 * (1.02 / (1 + big_rb) - 1), 0.2 * (1.30 / (1 + big_rb) - 1)
    assert alloc["Gold"] == pytest.approx(exp_gold, abs=1e-16)
    assert alloc["Crypto"] == pytest.approx(exp_crypto, abs=1e-16)
    if method != "geometric":
        assert out["total"].sum() == pytest.approx(big_rp - big_rb, abs=1e-16)


def test_holdings_sector_held_on_one_side_has_no_selection():
    day = dt.date(2025, 6, 30)
    data = pl.DataFrame(
        {
            "date": [day] * 5,
            "asset": ["AAPL", "MSFT", "NEM", "GOLD", "COIN"],
            "sector": ["Tech", "Tech", "Gold", "Gold", "Crypto"],
            "wp": [0.5, 0.3, 0.0, 0.0, 0.2],
            "wb": [0.4, 0.3, 0.2, 0.1, 0.0],
            "ret": [0.05, 0.01, 0.03, -0.01, 0.30],
        }
    )
    for method, top_down in ALL_VARIANTS:
        out = fc.brinson(data, method=method, top_down=top_down)
        for sector in ("Gold", "Crypto"):
            assert by_sector(out, "selection")[sector] == 0.0, (method, sector)
            assert by_sector(out, "interaction")[sector] == 0.0, (method, sector)
        # Gold: benchmark return (0.2*0.03 - 0.1*0.01) / 0.3 used on both sides
        assert by_sector(out, "rb")["Gold"] == pytest.approx(0.005 / 0.3, rel=1e-15)
        assert by_sector(out, "rp")["Gold"] == pytest.approx(0.005 / 0.3, rel=1e-15)
        assert by_sector(out, "rp")["Crypto"] == pytest.approx(0.30, rel=1e-15)
        assert by_sector(out, "rb")["Crypto"] == pytest.approx(0.30, rel=1e-15)


@pytest.mark.parametrize("missing", [None, float("nan"), 0.07], ids=["null", "nan", "given"])
def test_sector_with_zero_weight_on_both_sides_has_null_returns_and_zero_effects(missing):
    data = one_sided_frame(0.01, 0.01).vstack(
        pl.DataFrame(
            {
                "date": [dt.date(2025, 6, 30)],
                "sector": ["Cash"],
                "wp": [0.0],
                "wb": [0.0],
                "rp": [missing],
                "rb": [missing],
            },
            schema_overrides={"rp": pl.Float64, "rb": pl.Float64},
        )
    )
    for method, top_down in ALL_VARIANTS:
        out = fc.brinson(data, method=method, top_down=top_down)
        row = out.filter(pl.col("sector") == "Cash")
        assert row.height == 1
        assert row["rp"].is_null().all() and row["rb"].is_null().all(), row
        for name in (*EFFECTS, "total"):
            assert row[name].to_list() == [0.0], (method, name, row)


def test_holdings_asset_changing_sector_between_dates():
    """The sector is read per row: a reclassified asset counts in its sector of the day."""
    days = [dt.date(2025, 1, 31), dt.date(2025, 2, 28)]
    data = pl.DataFrame(
        {
            "date": [days[0]] * 3 + [days[1]] * 3,
            "asset": ["A", "B", "C"] * 2,
            "sector": ["Tech", "Tech", "Energy", "Tech", "Energy", "Energy"],  # B moves
            "wp": [0.5, 0.3, 0.2, 0.5, 0.3, 0.2],
            "wb": [0.4, 0.2, 0.4, 0.4, 0.2, 0.4],
            "ret": [0.01, 0.03, -0.02, 0.02, -0.01, 0.04],
        }
    )
    out = fc.brinson(data, method="bhb")
    tech = (0.5 * 0.02) / 0.5
    energy_p = (0.3 * -0.01 + 0.2 * 0.04) / 0.5
    energy_b = (0.2 * -0.01 + 0.4 * 0.04) / 0.6
    assert by_sector(out, "wp", days[1]) == pytest.approx({"Tech": 0.5, "Energy": 0.5})
    assert by_sector(out, "rp", days[1]) == pytest.approx({"Tech": tech, "Energy": energy_p})
    assert by_sector(out, "rb", days[1])["Energy"] == pytest.approx(energy_b, rel=1e-15)
    assert by_sector(out, "rp", days[0])["Tech"] == pytest.approx((0.005 + 0.009) / 0.8)


@pytest.mark.parametrize("missing", [None, float("nan")], ids=["null", "nan"])
def test_holdings_missing_return_where_both_weights_are_zero_is_fine(holdings, missing):
    frame, _ = holdings
    both_zero = (pl.col("wp") == 0) & (pl.col("wb") == 0)
    assert frame.filter(both_zero).height > 0
    blanked = frame.with_columns(
        pl.when(both_zero).then(pl.lit(missing, dtype=pl.Float64)).otherwise("ret").alias("ret")
    )
    zeroed = frame.with_columns(pl.when(both_zero).then(0.0).otherwise("ret").alias("ret"))
    got = fc.brinson(blanked)
    exp = fc.brinson(zeroed)
    assert got.equals(exp)


@pytest.mark.parametrize("level", ["sector", "holdings"])
def test_unsorted_rows_give_the_same_result(sector_arrays, holdings, level):
    if level == "sector":
        _, _, _, frame = random_sector_case(sector_arrays, "enum")
    else:
        frame = holdings[0]
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    for method, top_down in ALL_VARIANTS:
        exp = fc.brinson(frame, method=method, top_down=top_down)
        got = fc.brinson(shuffled, method=method, top_down=top_down)
        assert got.select("date", "sector").equals(exp.select("date", "sector"))
        for name in FLOAT_COLUMNS:
            # holdings are summed in another order: equal to rounding
            assert_close(got[name].to_numpy(), exp[name].to_numpy(), name, rtol=1e-13, atol=1e-16)


def test_long_short_sector_weights(sector_arrays):
    """Negative sector weights are fine as long as each side nets to 1."""
    rng = np.random.default_rng(41)
    wp = random_weights(rng, (60, 40), short_frac=0.3)
    wb = random_weights(rng, (60, 40), short_frac=0.1)
    assert (wp < 0).any() and (wb < 0).any()
    rp = 0.01 * rng.standard_normal((60, 40))
    rb = 0.01 * rng.standard_normal((60, 40))
    dates = month_ends(60)
    sectors = [f"S{j:02d}" for j in range(40)]
    frame = sector_frame(dates, sectors, wp, wb, rp, rb)
    for method, top_down in ALL_VARIANTS:
        ref = brinson_ref(wp, wb, rp, rb, method=method, top_down=top_down)
        exp = expected_brinson_frame(dates, sectors, wp, wb, ref)
        assert_matches_expected(fc.brinson(frame, method=method, top_down=top_down), exp)


def test_long_short_holdings():
    """Shorts inside a sector: the sector return is still the weight-averaged return."""
    day = dt.date(2025, 3, 31)
    data = pl.DataFrame(
        {
            "date": [day] * 4,
            "asset": ["A", "B", "C", "D"],
            "sector": ["X", "X", "Y", "Y"],
            "wp": [0.9, -0.3, 0.5, -0.1],
            "wb": [0.3, 0.2, 0.25, 0.25],
            "ret": [0.02, 0.05, -0.01, 0.04],
        }
    )
    out = fc.brinson(data, method="bhb")
    rp = by_sector(out, "rp")
    assert by_sector(out, "wp") == pytest.approx({"X": 0.6, "Y": 0.4}, abs=1e-15)
    assert rp["X"] == pytest.approx((0.9 * 0.02 - 0.3 * 0.05) / 0.6, rel=1e-14)
    assert rp["Y"] == pytest.approx((0.5 * -0.01 - 0.1 * 0.04) / 0.4, rel=1e-14)
    big_rp = 0.9 * 0.02 - 0.3 * 0.05 + 0.5 * -0.01 - 0.1 * 0.04
    big_rb = 0.3 * 0.02 + 0.2 * 0.05 + 0.25 * -0.01 + 0.25 * 0.04
    assert out["total"].sum() == pytest.approx(big_rp - big_rb, abs=1e-16)


def test_single_sector_is_pure_selection():
    data = pl.DataFrame(
        {"date": [dt.date(2025, 1, 31)], "sector": ["All"], "wp": [1.0], "wb": [1.0]}
    ).with_columns(rp=pl.lit(0.031), rb=pl.lit(0.02))
    for method, top_down in ARITHMETIC:
        out = fc.brinson(data, method=method, top_down=top_down)
        assert out["allocation"].to_list() == [0.0]
        assert out["selection"][0] == pytest.approx(0.011, abs=1e-17)
        assert out["interaction"].to_list() == [0.0]


@pytest.mark.parametrize("side", ["wp", "wb"])
def test_weight_sum_tolerance_boundary(side):
    from factorcore.attribution import WEIGHT_SUM_TOLERANCE as tol

    data = bacon_frame(2)
    uk_first = (pl.col("date") == BACON_DATES[0]) & (pl.col("sector") == UK)

    def shifted(delta):
        return data.with_columns(
            pl.when(uk_first).then(pl.col(side) + delta).otherwise(side).alias(side)
        )

    fc.brinson(shifted(0.5 * tol))  # within the tolerance
    fc.brinson(shifted(-0.5 * tol))
    with pytest.raises(InvalidInputError, match=has_all(side, BACON_DATES[0].isoformat())):
        fc.brinson(shifted(5 * tol))


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
DAY2 = BACON_DATES[1]


def set_value(frame, column, value, *, day=DAY2, key=("sector", UK)):
    """``frame`` with ``column`` set to ``value`` in the row of ``day`` and ``key``."""
    cond = (pl.col("date") == day) & (pl.col(key[0]) == key[1])
    dtype = frame.schema[column]
    return frame.with_columns(
        pl.when(cond).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(column)).alias(column)
    )


@pytest.fixture
def hold_frame():
    """Holdings of Bacon's example: two assets per sector."""
    rows = []
    for t, day in enumerate(BACON_DATES):
        for j, sector in enumerate(BACON_SECTORS):
            for k, share in enumerate((0.6, 0.4)):
                rows.append(
                    {
                        "date": day,
                        "asset": f"{sector[:2]}{k}",
                        "sector": sector,
                        "wp": BACON_WP[t, j] * share,
                        "wb": BACON_WB[t, j] * (1 - share),
                        "ret": BACON_RP[t, j] + (0.01 if k else -0.01),
                    }
                )
    return pl.DataFrame(rows)


@pytest.mark.parametrize("side", ["wp", "wb"])
def test_weights_not_summing_to_one(side):
    data = set_value(bacon_frame(), side, 0.9)
    with pytest.raises(InvalidInputError, match=has_all(side, DAY2.isoformat())):
        fc.brinson(data)


@pytest.mark.parametrize("level", ["sector", "holdings"])
def test_date_without_benchmark_weights(hold_frame, level):
    data = bacon_frame() if level == "sector" else hold_frame
    data = data.with_columns(pl.when(pl.col("date") == DAY2).then(0.0).otherwise("wb").alias("wb"))
    with pytest.raises(InvalidInputError, match=has_all("wb", DAY2.isoformat())):
        fc.brinson(data)


def test_date_without_portfolio_weights():
    data = bacon_frame().with_columns(
        pl.when(pl.col("date") == DAY2).then(0.0).otherwise("wp").alias("wp")
    )
    with pytest.raises(InvalidInputError, match=has_all("wp", DAY2.isoformat())):
        fc.brinson(data)


def test_weights_netting_to_zero_are_named_as_such():
    """Offsetting weights were reported as "there are no portfolio weights"."""
    data = bacon_frame()
    on_day = pl.col("date") == DAY2
    net_zero = pl.when(pl.col("sector") == UK).then(0.5).when(pl.col("sector") == JP).then(-0.5)
    data = data.with_columns(
        pl.when(on_day).then(net_zero.otherwise(0.0)).otherwise(pl.col("wp")).alias("wp")
    )
    with pytest.raises(InvalidInputError, match=has_all("net to zero", "wp", DAY2.isoformat())):
        fc.brinson(data)


def test_float32_weights_get_the_tolerance_of_float32():
    """Float32 weights normalised in float32 were refused by the float64 tolerance (1e-9):
    rounded to float32 they sum to 1 only to about 1e-8."""
    rng = np.random.default_rng(32)
    n_dates, n_sectors = 6, 40
    wp, wb, rp, rb = random_sector_arrays(rng, n_dates, n_sectors, zero_frac=0.0)
    wp32, wb32 = wp.astype(np.float32).astype(float), wb.astype(np.float32).astype(float)
    assert np.abs(wp32.sum(axis=1) - 1).max() > 1e-9  # what the old check refused
    dates = month_ends(n_dates)
    sectors = [f"S{j:02d}" for j in range(n_sectors)]
    frame = sector_frame(dates, sectors, wp32, wb32, rp, rb)
    frame = frame.with_columns(pl.col("wp", "wb").cast(pl.Float32))
    for method in ("bf", "geometric"):
        ref = brinson_ref(wp32, wb32, rp, rb, method=method)
        exp = expected_brinson_frame(dates, sectors, wp32, wb32, ref)
        assert_matches_expected(fc.brinson(frame, method=method), exp, f"{method}: ")
    # Float32 weights that do not sum to 1 are still refused.
    off = frame.with_columns(
        pl.when(pl.col("date") == dates[2]).then(pl.col("wb") * 0.999).otherwise("wb").alias("wb")
    )
    with pytest.raises(InvalidInputError, match=has_all("wb", dates[2].isoformat(), "not 1")):
        fc.brinson(off)


@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_top_down_must_be_a_bool(value):
    with pytest.raises(DtypeError, match="top_down"):
        fc.brinson(bacon_frame(), top_down=value)


def test_duplicate_date_asset_in_holdings(hold_frame):
    dup = hold_frame.filter((pl.col("date") == DAY2) & (pl.col("asset") == "Ja1"))
    data = pl.concat([hold_frame, dup])
    with pytest.raises(InvalidInputError, match=has_all(DAY2.isoformat(), "Ja1")):
        fc.brinson(data)


def test_duplicate_date_asset_with_different_sectors(hold_frame):
    """The same asset listed in two sectors on one date is still a duplicate (date, asset)."""
    dup = hold_frame.filter((pl.col("date") == DAY2) & (pl.col("asset") == "Ja1"))
    dup = dup.with_columns(sector=pl.lit(US), wp=pl.lit(0.0), wb=pl.lit(0.0))
    with pytest.raises(InvalidInputError, match=has_all(DAY2.isoformat(), "Ja1")):
        fc.brinson(pl.concat([hold_frame, dup]))


def test_duplicate_date_sector_in_sector_level_input():
    data = bacon_frame()
    dup = data.filter((pl.col("date") == DAY2) & (pl.col("sector") == JP))
    # split Japan's weight over two rows: the sums still match, the duplicate must be caught
    half = dup.with_columns(pl.col("wp") / 2, pl.col("wb") / 2)
    data = pl.concat(
        [data.filter(~((pl.col("date") == DAY2) & (pl.col("sector") == JP))), half, half]
    )
    with pytest.raises(InvalidInputError, match=has_all(DAY2.isoformat(), JP)):
        fc.brinson(data)


@pytest.mark.parametrize("value", [None, float("nan")], ids=["null", "nan"])
@pytest.mark.parametrize("side", ["wp", "wb"])
@pytest.mark.parametrize("level", ["sector", "holdings"])
def test_missing_weight(hold_frame, level, side, value):
    if level == "sector":
        data = set_value(bacon_frame(), side, value)
    else:
        data = set_value(hold_frame, side, value, key=("asset", "UK0"))
    with pytest.raises(InvalidInputError, match=has_all(side, DAY2.isoformat())):
        fc.brinson(data)


@pytest.mark.parametrize("value", [None, float("nan")], ids=["null", "nan"])
@pytest.mark.parametrize("column", ["rp", "rb"])
def test_missing_sector_return_under_nonzero_weight(column, value):
    data = set_value(bacon_frame(), column, value)
    with pytest.raises(InvalidInputError, match=has_all(column, DAY2.isoformat())):
        fc.brinson(data)


def move_weight(frame, side: str, src: str, dst: str, day=DAY2) -> pl.DataFrame:
    """``frame`` with ``src``'s ``side`` weight moved to ``dst`` on ``day``: sums stay 1."""
    on_day = pl.col("date") == day
    w = frame.filter(on_day & (pl.col("asset") == src))[side][0]
    return frame.with_columns(
        pl.when(on_day & (pl.col("asset") == src))
        .then(0.0)
        .when(on_day & (pl.col("asset") == dst))
        .then(pl.col(side) + w)
        .otherwise(pl.col(side))
        .alias(side)
    )


@pytest.mark.parametrize("value", [None, float("nan")], ids=["null", "nan"])
@pytest.mark.parametrize("zero_side", ["wp", "wb", "neither"])
def test_missing_holding_return_under_nonzero_weight(hold_frame, zero_side, value):
    """Only a holding with both weights 0 may lack a return."""
    data = hold_frame
    if zero_side != "neither":  # held on the other side only: still an error
        data = move_weight(data, zero_side, "US0", "US1")
    data = set_value(data, "ret", value, key=("asset", "US0"))
    with pytest.raises(InvalidInputError, match=has_all("ret", DAY2.isoformat())):
        fc.brinson(data)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("column", ["wp", "wb", "rp", "rb"])
def test_inf_in_sector_level_input(column, value):
    data = set_value(bacon_frame(), column, value)
    with pytest.raises(NonFiniteError, match=column):
        fc.brinson(data)


@pytest.mark.parametrize("column", ["wp", "wb", "ret"])
def test_inf_in_holdings_input(hold_frame, column):
    data = set_value(hold_frame, column, np.inf, key=("asset", "Ja0"))
    with pytest.raises(NonFiniteError, match=column):
        fc.brinson(data)


@pytest.mark.parametrize("column", ["date", "sector", "wp", "wb", "rb"])
def test_missing_sector_level_column(column):
    data = bacon_frame().drop(column)
    with pytest.raises(InvalidInputError, match=re.escape(column)):
        fc.brinson(data)


@pytest.mark.parametrize("column", ["date", "sector", "asset", "wp", "wb"])
def test_missing_holdings_column(hold_frame, column):
    with pytest.raises(InvalidInputError, match=re.escape(column)):
        fc.brinson(hold_frame.drop(column))


@pytest.mark.parametrize(
    "names", [{"wp": "weight"}, {"sector": "gics"}, {"date": "asof"}, {"rb": "bench_ret"}]
)
def test_named_column_not_in_frame(names):
    (name,) = names.values()
    with pytest.raises(InvalidInputError, match=re.escape(name)):
        fc.brinson(bacon_frame(), **names)


def test_both_sector_returns_and_holding_returns():
    data = bacon_frame().with_columns(ret=pl.col("rp"), asset=pl.col("sector"))
    with pytest.raises(InvalidInputError, match=has_all("rp", "ret")):
        fc.brinson(data)


def test_neither_sector_returns_nor_holding_returns():
    data = bacon_frame().drop("rp", "rb")
    with pytest.raises(InvalidInputError, match=has_all("rp", "ret")):
        fc.brinson(data)


@pytest.mark.parametrize("column", ["wp", "wb", "rp", "rb"])
def test_string_numeric_column(column):
    data = bacon_frame().with_columns(pl.col(column).cast(pl.String))
    with pytest.raises(DtypeError, match=column):
        fc.brinson(data)


def test_boolean_holding_return(hold_frame):
    data = hold_frame.with_columns(pl.col("ret") > 0)
    with pytest.raises(DtypeError, match="ret"):
        fc.brinson(data)


@pytest.mark.parametrize("dtype", [pl.String, pl.Int64])
def test_date_column_not_temporal(dtype):
    data = bacon_frame()
    if dtype == pl.String:
        data = data.with_columns(pl.col("date").dt.strftime("%Y-%m-%d"))
    else:
        data = data.with_columns(pl.col("date").dt.epoch("d").cast(pl.Int64))
    with pytest.raises(DtypeError, match="date"):
        fc.brinson(data)


@pytest.mark.parametrize("level", ["sector", "holdings"])
def test_empty_frame(hold_frame, level):
    data = bacon_frame() if level == "sector" else hold_frame
    with pytest.raises(InvalidInputError):
        fc.brinson(data.clear())


@pytest.mark.parametrize("method", ["BF", "brinson", "carino", ""])
def test_unknown_method(method):
    with pytest.raises(InvalidInputError, match="method"):
        fc.brinson(bacon_frame(), method=method)


@pytest.mark.parametrize("bad", ["dict", "numpy"])
def test_not_a_dataframe(bad):
    data = bacon_frame()
    if bad == "dict":
        obj = data.to_dict(as_series=False)
    else:
        obj = data.drop("date", "sector").to_numpy()
    with pytest.raises(DtypeError):
        fc.brinson(obj)


@pytest.mark.parametrize(
    "pair_weights",
    [(0.2, -0.2, 0.0), (0.3, -0.1, -0.2)],  # the second nets to 0 only up to float rounding
    ids=["exact-zero", "rounding-zero"],
)
def test_holdings_netting_to_zero_weight_with_nonzero_contribution(pair_weights):
    day = dt.date(2025, 3, 31)
    data = pl.DataFrame(
        {
            "date": [day] * 5,
            "asset": ["A", "B", "C", "D", "E"],
            "sector": ["Pair", "Pair", "Pair", "Rest", "Rest"],
            "wp": [*pair_weights, 0.5, 0.5],  # nets to 0 but earns a non-zero return
            "wb": [0.0, 0.0, 0.0, 0.5, 0.5],
            "ret": [0.05, 0.01, 0.02, 0.02, 0.03],
        }
    )
    with pytest.raises(InvalidInputError, match=has_all("Pair", day.isoformat())):
        fc.brinson(data)


@pytest.mark.parametrize("bench_holds_pair", [False, True], ids=["no-side", "benchmark-side"])
def test_holdings_netting_to_zero_weight_and_zero_contribution_is_fine(bench_holds_pair):
    """A perfect hedge (same return on both legs) is a sector with zero portfolio weight."""
    day = dt.date(2025, 3, 31)
    wb = [0.1, 0.0, 0.4, 0.5] if bench_holds_pair else [0.0, 0.0, 0.5, 0.5]
    data = pl.DataFrame(
        {
            "date": [day] * 4,
            "asset": ["A", "B", "C", "D"],
            "sector": ["Pair", "Pair", "Rest", "Rest"],
            "wp": [0.2, -0.2, 0.5, 0.5],
            "wb": wb,
            "ret": [0.05, 0.05, 0.02, 0.03],
        }
    )
    for method, top_down in ALL_VARIANTS:
        out = fc.brinson(data, method=method, top_down=top_down)
        pair = out.filter(pl.col("sector") == "Pair")
        assert pair["wp"].to_list() == [0.0]
        assert pair["selection"].to_list() == [0.0]
        assert pair["interaction"].to_list() == [0.0]
        if bench_holds_pair:  # held by the benchmark only: its return on both sides
            assert pair["rp"].to_list() == pytest.approx([0.05], rel=1e-15)
        else:  # held on neither side
            assert pair["rp"].is_null().all() and pair["rb"].is_null().all()
            assert pair["total"].to_list() == [0.0]


# --------------------------------------------------------------------------------------------
# real data: skfolio's S&P 500 prices
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sp500_holdings():
    datasets = pytest.importorskip(
        "skfolio.datasets", reason="skfolio is not installed (pip install skfolio)"
    )
    return sp500_holdings_data(datasets.load_sp500_dataset())


def test_sp500_holdings_against_reference_and_invariants(sp500_holdings):
    frame, info = sp500_holdings
    days, sectors = info["dates"], info["sectors"]
    wp, wb, rets = info["wp"], info["wb"], info["ret"]
    swp, swb, srp, srb = holdings_to_sector_arrays(info)
    big_rp = np.sum(wp * rets, axis=1)
    big_rb = np.sum(wb * rets, axis=1)
    for method, top_down in ALL_VARIANTS:
        out = fc.brinson(frame, method=method, top_down=top_down)
        ref = brinson_ref(swp, swb, srp, srb, method=method, top_down=top_down)
        exp = expected_brinson_frame(days, sectors, swp, swb, ref)
        assert_matches_expected(out, exp, f"{method}: ")
        sums = per_date_sums(out)
        if method == "geometric":
            lhs = (1 + sums["allocation"].to_numpy()) * (1 + sums["selection"].to_numpy())
            assert_close(lhs, (1 + big_rp) / (1 + big_rb), "geometric", rtol=0, atol=1e-15)
        else:
            assert_close(sums["total"], big_rp - big_rb, "active", rtol=0, atol=1e-15)
        # no energy stocks in the portfolio: energy has no selection effect at all
        energy = out.filter(pl.col("sector") == "Energy")
        assert (energy["selection"] == 0.0).all() and (energy["interaction"] == 0.0).all()
