"""Hypothesis with adversarial frames: whatever goes in, a documented error or sane numbers.

Frames carry NaN, nulls, infinities, unsorted or repeated dates, extreme magnitudes
(1e-300..1e300), wrong dtypes, no rows, windows longer than the data. The property: either
one of factorcore's documented errors (InvalidInputError, NonFiniteError, DtypeError) or a
result whose floats are finite or NaN and which agrees with NumPy on the definition where
the input was clean. Never another exception type, never a crash. test_properties.py covers
accuracy on well-conditioned problems and test_bad_input.py each bad input by name; this
file mixes the bad inputs at random.
"""

from __future__ import annotations

import datetime as dt

import factorcore as fc
import numpy as np
import polars as pl
import pytest
from factorcore import DtypeError, InvalidInputError, NonFiniteError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DOCUMENTED = (InvalidInputError, NonFiniteError, DtypeError)

ADVERSARIAL = settings(
    max_examples=60,
    deadline=2000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

START = dt.date(2020, 1, 1)


@st.composite
def columns(draw, n_rows: int) -> tuple[list[float | None], bool]:
    """Normal values at a random scale, with NaN/null/inf/outliers/extremes sprinkled in;
    also whether the column stayed clean (nothing sprinkled, ordinary scale)."""
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([1e-2, 1e-2, 1e-2, 1e-300, 1e-150, 1e150, 1e300]))
    values: list[float | None] = list(np.random.default_rng(seed).normal(size=n_rows) * scale)
    events = draw(
        st.lists(st.tuples(st.integers(0, max(n_rows - 1, 0)), st.integers(0, 4)), max_size=3)
    )
    for row, kind in events if n_rows else []:
        values[row] = [np.nan, None, np.inf, -np.inf, 1e12][kind]
    return values, not events and scale == 1e-2


@st.composite
def wide_frames(draw, max_assets: int = 4):
    n_rows = draw(st.integers(0, 40))
    n_assets = draw(st.integers(1, max_assets))
    order = list(range(n_rows))
    dates = [START + dt.timedelta(days=i) for i in order]
    messy_dates = draw(st.sampled_from(["sorted", "sorted", "shuffled", "repeated"]))
    if messy_dates == "shuffled" and n_rows > 1:
        dates = draw(st.permutations(dates))
    elif messy_dates == "repeated" and n_rows > 1:
        dates[-1] = dates[0]
    data: dict[str, object] = {"date": dates}
    clean = messy_dates == "sorted"
    for j in range(n_assets):
        values, ok = draw(columns(n_rows))
        clean &= ok
        data[f"a{j}"] = values
    frame = pl.DataFrame(data, schema_overrides={f"a{j}": pl.Float64 for j in range(n_assets)})
    if draw(st.integers(0, 9)) == 0:
        # A wrong dtype: strings where numbers belong.
        frame = frame.with_columns(pl.col("a0").cast(pl.String))
        clean = False
    return frame, clean


def finite_or_nan(result: pl.DataFrame) -> None:
    for name, dtype in result.schema.items():
        if dtype.is_float():
            values = result[name].to_numpy()
            assert not np.isinf(values).any(), f"infinite value in {name}"


@ADVERSARIAL
@given(data=st.data())
def test_rolling_exposures_adversarial(data):
    returns, clean_y = data.draw(wide_frames())
    factors, clean_x = data.draw(wide_frames(max_assets=2))
    factors = factors.rename({c: f"f{c}" for c in factors.columns if c != "date"})
    n_rows = returns.height
    window = data.draw(st.integers(1, n_rows + 3) | st.none())
    try:
        result = fc.rolling_exposures(returns, factors, window=window)
    except DOCUMENTED:
        return
    finite_or_nan(result)
    if not (clean_y and clean_x and factors.height == n_rows and window) or result.is_empty():
        return
    # The last window of one asset against lstsq on the definition.
    last = result.filter(pl.col("date") == result["date"].max(), pl.col("asset") == "a0")
    if last.is_empty() or np.isnan(last["alpha"][0]):
        return
    y = returns["a0"].to_numpy()[-window:]
    x = factors.drop("date").to_numpy()[-window:]
    design = np.column_stack([np.ones(window), x])
    if np.linalg.cond(design) > 1e6:
        return
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    got = np.array([last["alpha"][0]] + [last[c][0] for c in factors.columns if c != "date"])
    np.testing.assert_allclose(got, coef, rtol=1e-8, atol=1e-10)


@ADVERSARIAL
@given(data=st.data())
def test_diversification_adversarial(data):
    returns, clean = data.draw(wide_frames())
    window = data.draw(st.integers(0, returns.height + 3) | st.none())
    try:
        result = fc.diversification(returns, window=window)
    except DOCUMENTED:
        return
    finite_or_nan(result)
    if not clean or window is None or result.is_empty():
        return
    # Volatility of the equal-weight portfolio in the last window, on the definition.
    last = result.row(-1, named=True)
    if last["n_assets"] != returns.width - 1:
        return
    r = returns.drop("date").to_numpy()[-window:]
    w = np.full(r.shape[1], 1.0 / r.shape[1])
    want = np.sqrt(w @ np.cov(r, rowvar=False, ddof=1).reshape(r.shape[1], r.shape[1]) @ w)
    np.testing.assert_allclose(last["volatility"], want, rtol=1e-8)


@ADVERSARIAL
@given(data=st.data())
def test_risk_contributions_adversarial(data):
    returns, clean = data.draw(wide_frames())
    try:
        result = fc.risk_contributions(returns)
    except DOCUMENTED:
        return
    finite_or_nan(result)
    if not clean:
        return
    r = returns.drop("date").to_numpy()
    w = result["weight"].to_numpy()
    cov = np.cov(r, rowvar=False, ddof=1).reshape(r.shape[1], r.shape[1])
    vol = np.sqrt(w @ cov @ w)
    np.testing.assert_allclose(
        result["component"].to_numpy(), w * (cov @ w) / vol, rtol=1e-8, atol=1e-15
    )


@ADVERSARIAL
@given(data=st.data())
def test_brinson_adversarial(data):
    n_rows = data.draw(st.integers(0, 24))
    cols = {name: data.draw(columns(n_rows))[0] for name in ["wp", "wb", "rp", "rb"]}
    frame = pl.DataFrame(
        {
            "date": [
                START + dt.timedelta(days=data.draw(st.integers(0, 3))) for _ in range(n_rows)
            ],
            "sector": [data.draw(st.sampled_from(["a", "b", "c", None])) for _ in range(n_rows)],
            **cols,
        },
        schema_overrides={name: pl.Float64 for name in cols},
    )
    method = data.draw(st.sampled_from(["bf", "bhb", "geometric"]))
    try:
        result = fc.brinson(frame, method=method)
    except DOCUMENTED:
        return
    finite_or_nan(result)


def test_returns_whose_squares_overflow_are_refused():
    # Found by this suite: returns near 1e299 gave an infinite volatility.
    frame = pl.DataFrame(
        {"date": [START, START + dt.timedelta(days=1)], "a0": [1.2573e299, -1.3210e299]}
    )
    for call in (lambda: fc.risk_contributions(frame), lambda: fc.diversification(frame, window=2)):
        try:
            call()
        except InvalidInputError as error:
            assert "too large" in str(error)
        else:
            raise AssertionError("accepted returns beyond 1e150")


def test_brinson_values_out_of_range_name_the_column_and_row():
    # Found by the kernel fuzz target: weights near 1e300 gave infinite effects.
    day = [START, START, START + dt.timedelta(days=1), START + dt.timedelta(days=1)]
    frame = pl.DataFrame(
        {
            "date": day,
            "sector": ["a", "b", "a", "b"],
            "wp": [0.5, 0.5, 0.5, 0.5],
            "wb": [0.4, 0.6, 0.4, 0.6],
            "rp": [0.01, 0.02, 0.03, 1e200],
            "rb": [0.01, 0.01, 0.02, 0.02],
        }
    )
    with pytest.raises(InvalidInputError, match=r"'rp'.*too large.*row 3"):
        fc.brinson(frame)


def test_linked_returns_that_compound_beyond_floating_point_are_refused():
    # Found by the kernel fuzz target: returns in range compounded to inf.
    n = 5
    rp = [1e100] * n
    effects = pl.DataFrame(
        {
            "date": [START + dt.timedelta(days=d) for d in range(n)],
            "rp": rp,
            "rb": [0.0] * n,
            "MKT": rp,
            "specific": [0.0] * n,
            "total": rp,
        }
    )
    with pytest.raises(InvalidInputError, match="compound beyond the range"):
        fc.link(effects)
