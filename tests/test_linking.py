"""Multi-period linking of Brinson effects: `factorcore.link`.

* Bacon's published four-quarter example (ch. 8) for every linking method.
* Agreement, per sector and effect, with NumPy implementations of the published formulas
  on effects computed independently of factorcore (300 periods x 200 sectors).
* The documented identities (linked totals add up to the compounded excess; Frongello's
  totals are GRAP's; geometric effects compound) and the documented errors.
"""

from __future__ import annotations

import datetime as dt
import re

import factorcore as fc
import numpy as np
import polars as pl
import pytest
from attribution_reference import (
    ARITHMETIC_LINKS,
    BACON_DATES,
    BACON_SECTORS,
    EFFECTS,
    bacon_frame,
    brinson_ref,
    compound,
    expected_brinson_frame,
    holdings_to_sector_arrays,
    month_ends,
    random_sector_arrays,
    sector_frame,
    sp500_holdings_data,
)
from factorcore import DtypeError, InvalidInputError
from helpers import assert_close

RTOL = 1e-12
ATOL = 1e-14
# Bacon prints percentages with two decimals, computed from rounded intermediate figures:
# one unit in the fourth decimal of the fraction (the precision the R package
# PortfolioAttribution also reproduces them to).
PUBLISHED_TOL = 1e-4

ARITHMETIC = list(ARITHMETIC_LINKS)  # carino, menchero, grap, frongello
LINKED_COLUMNS = ["sector", "allocation", "selection", "interaction", "total"]
UK, JP, US = BACON_SECTORS


def has_all(*parts: str) -> str:
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


def linked_by_sector(out: pl.DataFrame, column: str) -> dict:
    return dict(zip(out["sector"].cast(pl.String).to_list(), out[column].to_list(), strict=True))


# --------------------------------------------------------------------------------------------
# Bacon (2008) ch. 8: four quarters of the three-sector portfolio, Brinson-Fachler effects
# with the interaction folded into selection (Table 8.1), linked by each method.
# Published figures as reproduced in the test suite of the R package PortfolioAttribution
# (github.com/anandkkumar/PortfolioAttribution, tests/testthat/test_linking.R and
# test_geometric_multi_period.R).
# --------------------------------------------------------------------------------------------
# method: ((allocation UK, JP, US, total), (selection UK, JP, US, total))
BACON_LINKED = {
    # Table 8.2, Carino
    "carino": ((0.0165, -0.0060, 0.0015, 0.0120), (0.0804, 0.0018, 0.0385, 0.1207)),
    # Table 8.3, Menchero
    "menchero": ((0.0156, -0.0078, 0.0014, 0.0092), (0.0838, 0.0005, 0.0391, 0.1234)),
    # Table 8.4, GRAP
    "grap": ((0.0167, -0.0055, 0.0011, 0.0124), (0.0785, 0.0016, 0.0402, 0.1203)),
    # Table 8.5, Frongello: same four-quarter totals as GRAP
    "frongello": ((0.0167, -0.0055, 0.0011, 0.0124), (0.0785, 0.0016, 0.0402, 0.1203)),
}
# Exhibit 8.10: the four-quarter arithmetic excess return, compounded Rp - compounded Rb
BACON_ARITHMETIC_EXCESS = 0.1327
# Table 8.6, geometric: compounded allocation, compounded selection, geometric excess
BACON_GEOMETRIC = (0.0129, 0.1319, 0.1464)


@pytest.fixture(scope="module")
def bacon_top_down():
    return fc.brinson(bacon_frame(4), method="bf", top_down=True)


@pytest.mark.parametrize("method", ARITHMETIC)
def test_bacon_linked_effects(bacon_top_down, method):
    out = fc.link(bacon_top_down, method=method)
    assert out.columns == LINKED_COLUMNS
    assert sorted(out["sector"].to_list()) == sorted(BACON_SECTORS)
    alloc, sel = BACON_LINKED[method]
    for effect, published in (("allocation", alloc), ("selection", sel)):
        got = linked_by_sector(out, effect)
        for sector, value in zip(BACON_SECTORS, published[:3], strict=False):
            assert abs(got[sector] - value) <= PUBLISHED_TOL, (method, effect, sector, got)
        assert abs(sum(got.values()) - published[3]) <= PUBLISHED_TOL, (method, effect)
    assert (out["interaction"] == 0.0).all()
    assert abs(out["total"].sum() - BACON_ARITHMETIC_EXCESS) <= PUBLISHED_TOL


def test_bacon_geometric_linking():
    effects = fc.brinson(bacon_frame(4), method="geometric")
    out = fc.link(effects, method="geometric")
    assert out.columns == LINKED_COLUMNS
    alloc, sel, excess = BACON_GEOMETRIC
    assert abs(out["allocation"].sum() - alloc) <= PUBLISHED_TOL
    assert abs(out["selection"].sum() - sel) <= PUBLISHED_TOL
    assert abs(out["total"].sum() - excess) <= PUBLISHED_TOL
    assert (out["interaction"] == 0.0).all()


def test_bacon_linked_effects_match_the_formulas_exactly(bacon_top_down):
    """The same example against the NumPy formulas, to rounding (not just to 4 decimals)."""
    from attribution_reference import BACON_RB, BACON_RP, BACON_WB, BACON_WP

    ref = brinson_ref(BACON_WP, BACON_WB, BACON_RP, BACON_RB, method="bf", top_down=True)
    for method, linker in ARITHMETIC_LINKS.items():
        out = fc.link(bacon_top_down, method=method)
        for effect in (*EFFECTS, "total"):
            exp = linker(ref[effect], ref["Rp"], ref["Rb"])
            got = linked_by_sector(out, effect)
            assert_close(
                [got[s] for s in BACON_SECTORS], exp, f"{method} {effect}", rtol=RTOL, atol=ATOL
            )


# --------------------------------------------------------------------------------------------
# random data against the formulas
# --------------------------------------------------------------------------------------------
N_DATES = 300
N_SECTORS = 200


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(8128)
    wp, wb, rp, rb = random_sector_arrays(rng, N_DATES, N_SECTORS, zero_frac=0.15)
    dates = month_ends(N_DATES)
    sectors = [f"S{j:03d}" for j in rng.permutation(N_SECTORS)]
    # rows held on neither side are dropped half of the time: absent from those periods
    absent = (wp == 0) & (wb == 0) & (rng.random(wp.shape) < 0.5)
    frame = sector_frame(dates, sectors, wp, wb, rp, rb).filter(pl.Series(~absent.ravel()))
    return dates, sectors, wp, wb, rp, rb, frame


def reference_effects_frame(random_case, method, top_down):
    """The documented brinson output built from the NumPy reference (no factorcore)."""
    dates, sectors, wp, wb, rp, rb, frame = random_case
    ref = brinson_ref(wp, wb, rp, rb, method=method, top_down=top_down)
    return ref, expected_brinson_frame(dates, sectors, wp, wb, ref, keys=frame)


def first_appearance(effects: pl.DataFrame) -> list:
    return effects["sector"].unique(maintain_order=True).to_list()


BRINSON_VARIANTS = [("bf", False), ("bhb", False), ("bf", True)]


@pytest.mark.parametrize(("bmethod", "top_down"), BRINSON_VARIANTS, ids=["bf", "bhb", "top-down"])
@pytest.mark.parametrize("method", ARITHMETIC)
def test_arithmetic_linking_matches_formulas(random_case, method, bmethod, top_down):
    ref, effects = reference_effects_frame(random_case, bmethod, top_down)
    sectors = random_case[1]
    out = fc.link(effects, method=method)
    assert out.columns == LINKED_COLUMNS
    assert out["sector"].to_list() == first_appearance(effects)
    pos = {s: j for j, s in enumerate(sectors)}
    cols = [pos[s] for s in out["sector"].to_list()]
    linker = ARITHMETIC_LINKS[method]
    for effect in (*EFFECTS, "total"):
        exp = linker(ref[effect], ref["Rp"], ref["Rb"])[cols]
        assert_close(out[effect].to_numpy(), exp, f"{method} {effect}", rtol=RTOL, atol=ATOL)
    excess = compound(ref["Rp"]) - compound(ref["Rb"])
    assert out["total"].sum() == pytest.approx(excess, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("method", ARITHMETIC)
def test_linking_brinson_output_matches_formulas(random_case, method):
    """End to end: factorcore's own brinson output linked, against the formulas."""
    ref, _ = reference_effects_frame(random_case, "bf", False)
    sectors, frame = random_case[1], random_case[6]
    out = fc.link(fc.brinson(frame), method=method)
    pos = {s: j for j, s in enumerate(sectors)}
    cols = [pos[s] for s in out["sector"].to_list()]
    for effect in (*EFFECTS, "total"):
        exp = ARITHMETIC_LINKS[method](ref[effect], ref["Rp"], ref["Rb"])[cols]
        assert_close(out[effect].to_numpy(), exp, f"{method} {effect}", rtol=RTOL, atol=ATOL)


def test_geometric_linking_identities(random_case):
    ref, effects = reference_effects_frame(random_case, "geometric", False)
    out = fc.link(effects, method="geometric")
    assert out.columns == LINKED_COLUMNS
    assert out["sector"].to_list() == first_appearance(effects)
    alloc_t = ref["allocation"].sum(axis=1)
    sel_t = ref["selection"].sum(axis=1)
    geo_excess = (1 + compound(ref["Rp"])) / (1 + compound(ref["Rb"])) - 1
    assert out["allocation"].sum() == pytest.approx(compound(alloc_t), rel=1e-12)
    assert out["selection"].sum() == pytest.approx(compound(sel_t), rel=1e-12)
    assert out["total"].sum() == pytest.approx(geo_excess, rel=1e-12)
    assert (1 + compound(alloc_t)) * (1 + compound(sel_t)) - 1 == pytest.approx(
        geo_excess, rel=1e-12
    )
    assert (out["interaction"] == 0.0).all()


def test_geometric_linking_of_brinson_output(random_case):
    frame = random_case[6]
    ref, _ = reference_effects_frame(random_case, "geometric", False)
    out = fc.link(fc.brinson(frame, method="geometric"), method="geometric")
    geo_excess = (1 + compound(ref["Rp"])) / (1 + compound(ref["Rb"])) - 1
    assert out["total"].sum() == pytest.approx(geo_excess, rel=1e-12)
    assert out["allocation"].sum() == pytest.approx(
        compound(ref["allocation"].sum(axis=1)), rel=1e-12
    )


# --------------------------------------------------------------------------------------------
# identities and edge cases
# --------------------------------------------------------------------------------------------
def test_frongello_totals_equal_grap_totals(random_case):
    _, effects = reference_effects_frame(random_case, "bf", False)
    grap = fc.link(effects, method="grap")
    frongello = fc.link(effects, method="frongello")
    assert grap["sector"].to_list() == frongello["sector"].to_list()
    for effect in (*EFFECTS, "total"):
        assert_close(
            frongello[effect].to_numpy(), grap[effect].to_numpy(), effect, rtol=1e-11, atol=ATOL
        )


@pytest.mark.parametrize("method", [*ARITHMETIC, "geometric"])
def test_single_period_is_left_unchanged(random_case, method):
    """With one period there is nothing to link: every scaling coefficient is 1."""
    bmethod = "geometric" if method == "geometric" else "bf"
    _, effects = reference_effects_frame(random_case, bmethod, False)
    one = effects.filter(pl.col("date") == pl.col("date").min())
    out = fc.link(one, method=method)
    assert out["sector"].to_list() == one["sector"].to_list()
    for effect in ("allocation", "selection", "interaction"):
        assert_close(out[effect].to_numpy(), one[effect].to_numpy(), effect, rtol=1e-13, atol=1e-16)
    if method != "geometric":
        assert_close(
            out["total"].to_numpy(), one["total"].to_numpy(), "total", rtol=1e-13, atol=1e-16
        )
    else:  # the sector totals share out the period's geometric excess
        geo = (1 + one["allocation"].sum()) * (1 + one["selection"].sum()) - 1
        assert out["total"].sum() == pytest.approx(geo, rel=1e-13)


@pytest.mark.parametrize("method", [*ARITHMETIC, "geometric"])
def test_identical_portfolio_and_benchmark_links_to_zero(method):
    """Rp_t == Rb_t in every period: Carino's and Menchero's limits, no 0/0."""
    dates = month_ends(12)
    rng = np.random.default_rng(1)
    w = np.tile([0.5, 0.3, 0.2], (12, 1))
    r = 0.02 * rng.standard_normal((12, 3))
    frame = sector_frame(dates, ["A", "B", "C"], w, w, r, r)
    bmethod = "geometric" if method == "geometric" else "bf"
    out = fc.link(fc.brinson(frame, method=bmethod), method=method)
    for effect in (*EFFECTS, "total"):
        assert out[effect].to_list() == pytest.approx([0.0] * 3, abs=1e-17), effect


@pytest.mark.parametrize("method", ARITHMETIC)
def test_period_with_equal_portfolio_and_benchmark_return(method):
    """One period with Rp_t == Rb_t (Carino's k_t limit) among ordinary ones."""
    dates = month_ends(3)
    wp = np.array([[0.6, 0.4], [0.5, 0.5], [0.3, 0.7]])
    wb = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    rp = np.array([[0.03, -0.01], [0.02, 0.04], [0.05, 0.01]])
    rb = np.array([[0.02, 0.00], [0.04, 0.02], [0.01, 0.03]])  # period 2: Rp = Rb = 0.03
    ref = brinson_ref(wp, wb, rp, rb, method="bf")
    assert ref["Rp"][1] == ref["Rb"][1]
    out = fc.link(fc.brinson(sector_frame(dates, ["X", "Y"], wp, wb, rp, rb)), method=method)
    for effect in (*EFFECTS, "total"):
        exp = ARITHMETIC_LINKS[method](ref[effect], ref["Rp"], ref["Rb"])
        assert_close(out[effect].to_numpy(), exp, effect, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("method", ARITHMETIC)
def test_equal_compounded_returns_with_unequal_periods(method):
    """Portfolio and benchmark swap their returns: compounded excess 0 (Menchero's limit)."""
    dates = month_ends(2)
    wp = np.array([[0.6, 0.4], [0.6, 0.4]])
    wb = np.array([[0.5, 0.5], [0.5, 0.5]])
    rp = np.array([[0.05, 0.00], [-0.02, 0.03]])  # Rp = 0.03, 0.000
    rb = np.array([[0.00, 0.00], [0.03, 0.03]])  # Rb = 0.00, 0.03
    ref = brinson_ref(wp, wb, rp, rb, method="bf")
    assert compound(ref["Rp"]) == compound(ref["Rb"])
    out = fc.link(fc.brinson(sector_frame(dates, ["X", "Y"], wp, wb, rp, rb)), method=method)
    assert out["total"].sum() == pytest.approx(0.0, abs=1e-16)
    for effect in (*EFFECTS, "total"):
        exp = ARITHMETIC_LINKS[method](ref[effect], ref["Rp"], ref["Rb"])
        assert_close(out[effect].to_numpy(), exp, effect, rtol=1e-10, atol=1e-15)


def test_sector_order_is_first_appearance():
    """Rows come out in the order sectors first appear in the input, not sorted."""
    dates = month_ends(2)
    wp = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    r = np.array([[0.01, 0.02, 0.03], [0.03, 0.02, 0.01]])
    frame = sector_frame(dates, ["Zeta", "Alpha", "Mu"], wp, wp[::-1], r, r * 0.5)
    effects = fc.brinson(frame)
    shuffled = pl.concat(
        [effects.filter(pl.col("date") == d).reverse() for d in dates]
    )  # dates still in order, sectors reversed within each date
    out = fc.link(shuffled)
    assert out["sector"].to_list() == shuffled["sector"].unique(maintain_order=True).to_list()


@pytest.mark.parametrize("dtype", [pl.Enum(["US", "JP", "UK"]), pl.Categorical, pl.Int32])
def test_sector_dtype_is_kept(dtype):
    frame = bacon_frame(4)
    if dtype == pl.Int32:
        frame = frame.with_columns(
            pl.col("sector").replace_strict({UK: 3, JP: 1, US: 2}, return_dtype=pl.Int32)
        )
    else:
        short = {UK: "UK", JP: "JP", US: "US"}
        frame = frame.with_columns(pl.col("sector").replace_strict(short).cast(dtype))
    out = fc.link(fc.brinson(frame, top_down=True), method="grap")
    assert out.schema["sector"] == frame.schema["sector"]
    assert out["total"].sum() == pytest.approx(0.132655729, abs=1e-9)


def test_lazyframe_and_custom_names(bacon_top_down):
    renamed = bacon_top_down.rename({"date": "quarter", "sector": "region"}).with_columns(
        pl.col("quarter").cast(pl.Datetime("ms"))
    )
    out = fc.link(renamed.lazy(), method="carino", date="quarter", sector="region")
    exp = fc.link(bacon_top_down, method="carino")
    assert out.columns[1:] == LINKED_COLUMNS[1:]
    for effect in (*EFFECTS, "total"):
        assert out[effect].to_list() == exp[effect].to_list()


# --------------------------------------------------------------------------------------------
# real data: daily effects of skfolio's S&P 500 holdings, 2018-2022 (~1250 periods)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sp500_effects():
    datasets = pytest.importorskip(
        "skfolio.datasets", reason="skfolio is not installed (pip install skfolio)"
    )
    frame, info = sp500_holdings_data(datasets.load_sp500_dataset())
    return frame, info


@pytest.mark.parametrize("method", ARITHMETIC)
def test_sp500_daily_linking(sp500_effects, method):
    frame, info = sp500_effects
    swp, swb, srp, srb = holdings_to_sector_arrays(info)
    ref = brinson_ref(swp, swb, srp, srb, method="bf")
    out = fc.link(fc.brinson(frame), method=method)
    cols = [info["sectors"].index(s) for s in out["sector"].to_list()]
    for effect in (*EFFECTS, "total"):
        exp = ARITHMETIC_LINKS[method](ref[effect], ref["Rp"], ref["Rb"])[cols]
        assert_close(out[effect].to_numpy(), exp, f"{method} {effect}", rtol=1e-10, atol=1e-13)
    rp = np.sum(info["wp"] * info["ret"], axis=1)
    rb = np.sum(info["wb"] * info["ret"], axis=1)
    assert out["total"].sum() == pytest.approx(compound(rp) - compound(rb), rel=1e-11)


def test_sp500_daily_geometric_linking(sp500_effects):
    frame, info = sp500_effects
    out = fc.link(fc.brinson(frame, method="geometric"), method="geometric")
    rp = np.sum(info["wp"] * info["ret"], axis=1)
    rb = np.sum(info["wb"] * info["ret"], axis=1)
    excess = (1 + compound(rp)) / (1 + compound(rb)) - 1
    assert out["total"].sum() == pytest.approx(excess, rel=1e-11)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "column", ["date", "sector", "wp", "wb", "rp", "rb", "allocation", "selection"]
)
def test_missing_column(bacon_top_down, column):
    with pytest.raises(InvalidInputError, match=re.escape(column)):
        fc.link(bacon_top_down.drop(column))


def test_named_column_not_in_frame(bacon_top_down):
    with pytest.raises(InvalidInputError, match="region"):
        fc.link(bacon_top_down, sector="region")


def test_empty_effects(bacon_top_down):
    with pytest.raises(InvalidInputError):
        fc.link(bacon_top_down.clear())


@pytest.mark.parametrize("method", ["Carino", "bf", "linear", ""])
def test_unknown_method(bacon_top_down, method):
    with pytest.raises(InvalidInputError, match="method"):
        fc.link(bacon_top_down, method=method)


@pytest.mark.parametrize("method", ARITHMETIC)
def test_geometric_effects_linked_arithmetically(method):
    effects = fc.brinson(bacon_frame(4), method="geometric")
    with pytest.raises(InvalidInputError, match=r"(?i)geometric|add up|sum"):
        fc.link(effects, method=method)


@pytest.mark.parametrize(("bmethod", "top_down"), BRINSON_VARIANTS, ids=["bf", "bhb", "top-down"])
def test_arithmetic_effects_linked_geometrically(bmethod, top_down):
    effects = fc.brinson(bacon_frame(4), method=bmethod, top_down=top_down)
    with pytest.raises(InvalidInputError, match=r"(?i)geometric|add up|sum|compound"):
        fc.link(effects, method="geometric")


@pytest.mark.parametrize("method", [*ARITHMETIC, "geometric"])
def test_tampered_period_is_named(bacon_top_down, method):
    """Effects of one period that no longer add up: the message names that period."""
    effects = fc.brinson(bacon_frame(4), method="geometric" if method == "geometric" else "bf")
    day = BACON_DATES[2]
    effects = effects.with_columns(
        pl.when((pl.col("date") == day) & (pl.col("sector") == JP))
        .then(pl.col("allocation") + 0.01)
        .otherwise("allocation")
        .alias("allocation")
    )
    with pytest.raises(InvalidInputError, match=day.isoformat()):
        fc.link(effects, method=method)


@pytest.mark.parametrize("side", ["rp", "rb"])
@pytest.mark.parametrize("level", [-1.0, -1.5])
@pytest.mark.parametrize("method", [*ARITHMETIC, "geometric"])
def test_return_of_minus_100_percent_or_less(method, level, side):
    dates = [dt.date(2025, 1, 31), dt.date(2025, 2, 28)]
    other = "rb" if side == "rp" else "rp"
    frame = pl.DataFrame(
        {
            "date": dates,
            "sector": ["All", "All"],
            "wp": [1.0, 1.0],
            "wb": [1.0, 1.0],
            side: [0.01, level],
            other: [0.02, -0.3],
        }
    )
    bmethod = "geometric" if method == "geometric" else "bf"
    if bmethod == "geometric" and side == "rb":
        # geometric effects divide by 1 + Rb: brinson may refuse them itself
        try:
            effects = fc.brinson(frame, method=bmethod)
        except InvalidInputError:
            return
    else:
        effects = fc.brinson(frame, method=bmethod)
    with pytest.raises(InvalidInputError, match=dates[1].isoformat()):
        fc.link(effects, method=method)


def test_not_a_dataframe(bacon_top_down):
    with pytest.raises(DtypeError):
        fc.link(bacon_top_down.to_dict(as_series=False))
