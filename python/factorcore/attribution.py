"""Sector (Brinson) attribution, multi-period linking and factor attribution."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl

from factorcore import _core
from factorcore._frames import (
    OUT_OF_RANGE,
    as_frame,
    bool_arg,
    check_dates,
    check_labels,
    check_numeric,
    dates_of,
    first_duplicate,
    float_column,
    is_long,
    label_keys,
    no_infinite,
    require_columns,
    sector_labels,
)
from factorcore.errors import DtypeError, InvalidInputError, NonFiniteError

__all__ = ["WEIGHT_SUM_TOLERANCE", "brinson", "factor_attribution", "holdings_periods", "link"]

#: How far each side's Float64 weights may sum from 1 on a date before `brinson`
#: refuses them. Float32 weights get ``n * eps32 * sum |w|`` more (n rows on the date,
#: eps32 = 2**-23): the rounding of their own sum, so weights that sum to 1 in float32
#: pass.
WEIGHT_SUM_TOLERANCE = 1e-9

BrinsonMethod = Literal["bf", "bhb", "geometric"]
LinkMethod = Literal["carino", "menchero", "grap", "frongello", "geometric"]
_BRINSON_METHODS = ("bf", "bhb", "geometric")
_LINK_METHODS = ("carino", "menchero", "grap", "frongello", "geometric")
_EFFECTS = ("allocation", "selection", "interaction")


def brinson(
    data: pl.DataFrame | pl.LazyFrame,
    *,
    method: BrinsonMethod = "bf",
    top_down: bool = False,
    date: str = "date",
    sector: str = "sector",
    wp: str = "wp",
    wb: str = "wb",
    rp: str = "rp",
    rb: str = "rb",
    ret: str = "ret",
    asset: str = "asset",
) -> pl.DataFrame:
    """Single-period sector attribution of the active return, per date and sector.

    Parameters
    ----------
    data
        Either **sector-level** input, one row per (date, sector) with portfolio and
        benchmark weights `wp`, `wb` and sector returns `rp`, `rb`; or
        **holdings-level** input, one row per (date, asset) with `asset`, `sector`, `wp`,
        `wb` and the asset's return `ret`. Holdings are aggregated to sectors inside the
        core: the sector weight is the sum of its holdings' weights and the sector
        return their weight-averaged return, separately for each side. The level is
        read off the columns: `rp` and `rb` mean sector level, `ret` holdings level.
    method
        ``"bf"`` Brinson-Fachler (allocation measured against the benchmark total),
        ``"bhb"`` Brinson-Hood-Beebower, ``"geometric"`` Bacon's geometric attribution
        (no interaction; allocation and selection compound to the geometric excess).
    top_down
        Fold the interaction into selection (two effects: selection becomes
        ``wp * (rp - rb)`` and interaction is 0).
    date, sector, wp, wb, rp, rb, ret, asset
        Column names.

    Returns
    -------
    polars.DataFrame
        One row per (date, sector) present in the input, sorted by date then sector
        (Enum and Categorical sectors in category order, others in sorted order), with
        columns ``date sector wp wb rp rb allocation selection interaction total``.
        For ``bf``/``bhb`` the effects of a date sum to Rp - Rb, to rounding; for
        ``geometric`` ``(1 + sum allocation) * (1 + sum selection) = (1 + Rp) / (1 + Rb)``.

    Notes
    -----
    - Weights: on every date each side's weights must sum to 1 within
      :data:`WEIGHT_SUM_TOLERANCE` (Float32 weights: within their own rounding, see
      there). Hold cash as a sector (or holding) of its own with its return; negative
      weights (shorts) are allowed as long as each side nets to 1. A side whose weights
      net to zero (a long/short book without capital) is refused as such.
    - A sector with zero weight on one side takes the other side's sector return, so a
      sector held on one side only shows pure allocation and no selection. A return
      may be missing (null or NaN) only where its weight is 0 (for holdings, where both
      weights are 0); a sector with zero weight on both sides has null returns and
      zero effects.
    - Errors (:class:`~factorcore.InvalidInputError`): missing columns, null or NaN
      weights, a missing return under a non-zero weight, a (date, asset) or
      sector-level (date, sector) pair given twice, weights that do not sum to 1 on a
      date (for instance a date with no benchmark rows), a sector whose holdings net to
      zero weight but not to zero contribution, a weight or return beyond 1e150 in size
      (or below 1e-150 and not zero). ``inf`` anywhere raises
      :class:`~factorcore.NonFiniteError`.
    - Dates need not be sorted (sorting first costs time on large tables).

    Examples
    --------
    >>> import datetime as dt, polars as pl, factorcore as fc
    >>> data = pl.DataFrame({
    ...     "date": [dt.date(2024, 1, 31)] * 3,
    ...     "sector": ["UK", "Japan", "US"],
    ...     "wp": [0.4, 0.3, 0.3], "wb": [0.4, 0.2, 0.4],
    ...     "rp": [0.20, -0.05, 0.06], "rb": [0.10, -0.04, 0.08],
    ... })
    >>> out = fc.brinson(data, method="bf")
    >>> round(out["allocation"].sum(), 10), round(out["total"].sum(), 10)  # Rp - Rb = 1.9%
    (-0.012, 0.019)
    """
    frame = as_frame(data, "data")
    method = _choice(method, _BRINSON_METHODS, "method")
    top_down = bool_arg(top_down, "top_down")
    holdings = _level(frame.columns, rp=rp, rb=rb, ret=ret)
    names = [date, sector, wp, wb, *([asset, ret] if holdings else [rp, rb])]
    require_columns(frame, names, "data")
    if frame.height == 0:
        raise InvalidInputError("data has no rows")
    check_dates(frame.get_column(date), "data")
    values = [wp, wb, ret] if holdings else [wp, wb, rp, rb]
    check_numeric(frame, values, "data")
    for weight in (wp, wb):
        _no_nulls(frame, weight, "weight", date, sector)
    if not frame.get_column(date).is_sorted():
        frame = frame.sort(date, maintain_order=True)

    dates = frame.get_column(date)
    sectors = frame.get_column(sector)
    returns = (ret, ret) if holdings else (rp, rb)
    label_columns = [sector, asset] if holdings else [sector]
    sector_keys, *asset_keys = label_keys(frame, label_columns, "data", date)
    weights = {name: float_column(frame.get_column(name)) for name in (wp, wb)}
    try:
        out = _core.brinson(
            dates.to_physical().to_numpy(),
            sector_keys,
            asset_keys[0] if holdings else None,
            weights[wp],
            weights[wb],
            float_column(frame.get_column(returns[0])),
            float_column(frame.get_column(returns[1])),
            method=method,
            top_down=top_down,
            holdings=holdings,
        )
    except InvalidInputError as exc:
        columns = {"wp": wp, "wb": wb, "rp": rp, "rb": rb, "ret": ret}
        keys = [date, sector] + ([asset] if holdings else [])
        raise _at_row(exc, frame, keys, columns) from None

    starts = out["date_starts"]
    run_dates = dates.gather(starts[:-1])
    for side, name, key in (("portfolio", wp, "wp"), ("benchmark", wb, "wb")):
        float32 = frame.schema[name] == pl.Float32
        sums = out[key].sum(axis=1)
        _check_weight_sums(sums, run_dates, side, name, weights[name], starts, float32)

    labels = sectors.gather(out["sector_rows"])
    order = _label_order(labels)
    present = out["rows"][:, order] > 0
    date_index, sector_index = np.nonzero(present)

    def cells(name: str) -> np.ndarray:
        return out[name][:, order][present]

    effects = {name: cells(name) for name in _EFFECTS}
    result = pl.DataFrame(
        [
            run_dates.gather(date_index).alias(date),
            labels.gather(order).gather(sector_index).alias(sector),
            pl.Series(wp, cells("wp")),
            pl.Series(wb, cells("wb")),
            pl.Series(rp, cells("rp"), nan_to_null=True),
            pl.Series(rb, cells("rb"), nan_to_null=True),
            *(pl.Series(name, values) for name, values in effects.items()),
            pl.Series("total", sum(effects.values())),
        ]
    )
    return result


def link(
    effects: pl.DataFrame | pl.LazyFrame,
    *,
    method: LinkMethod = "carino",
    date: str = "date",
    sector: str = "sector",
) -> pl.DataFrame:
    """Link single-period effects over all periods so they add up to the compounded excess.

    Parameters
    ----------
    effects
        The output of :func:`brinson` (or of :func:`factor_attribution`). Its ``wp wb
        rp rb`` columns give each period's portfolio and benchmark returns
        ``Rp_t = sum wp * rp`` and ``Rb_t = sum wb * rb``.
    method
        How each period's effects are scaled before they are summed:

        - ``"carino"``: by ``k_t / k`` with ``k_t = ln((1+Rp_t)/(1+Rb_t)) / (Rp_t - Rb_t)``
          and ``k`` the same on the compounded returns (Carino 1999);
        - ``"menchero"``: by ``M + a_t``, Menchero's (2000) optimised coefficients;
        - ``"grap"``: by ``prod_{s<t}(1+Rp_s) * prod_{s>t}(1+Rb_s)`` (GRAP 1997);
        - ``"frongello"``: Frongello's (2002) recursion
          ``G_t = e_t * prod_{s<t}(1+Rp_s) + Rb_t * sum_{s<t} G_s``
          (its linked totals coincide with GRAP's);
        - ``"geometric"``: for effects of ``brinson(method="geometric")``, which compound.
    date, sector
        Column names.

    Returns
    -------
    polars.DataFrame
        For Brinson effects: one row per sector (in input order of first appearance)
        with linked ``allocation selection interaction total``. With the arithmetic
        methods, the sum of ``total`` is the compounded Rp minus the compounded Rb,
        to rounding. With ``"geometric"``, ``allocation`` and ``selection`` each sum to
        their compounded period totals, ``prod(1 + A_t) - 1`` and ``prod(1 + S_t) - 1``,
        which compound to the geometric excess ``(1+Rp)/(1+Rb) - 1``; each sector's
        ``total`` is its share of that geometric excess (so the totals add up to it).

        For factor attribution: one row per factor and one for ``specific``, columns
        ``factor contribution``, adding up to the compounded excess (or return).

    Raises
    ------
    InvalidInputError
        Missing columns, fewer than one period, a period whose effects do not add up to
        its excess return (for instance geometric effects linked arithmetically, or
        arithmetic ones with ``"geometric"``), a return of -100% or less, a return or
        effect whose size is beyond 1e150 (or below 1e-150 and not zero), returns that
        compound beyond the range of floating point.
    """
    frame = as_frame(effects, "effects")
    method = _choice(method, _LINK_METHODS, "method")
    if "specific" in frame.columns and sector not in frame.columns:
        return _link_factors(frame, method, date)
    names = [date, sector, "wp", "wb", "rp", "rb", *_EFFECTS]
    require_columns(frame, names, "effects")
    if frame.height == 0:
        raise InvalidInputError("effects has no rows")
    check_dates(frame.get_column(date), "effects")
    check_numeric(frame, names[2:], "effects")
    if not frame.get_column(date).is_sorted():
        frame = frame.sort(date, maintain_order=True)
    sectors = frame.get_column(sector)
    try:
        out = _core.link_sectors(
            frame.get_column(date).to_physical().to_numpy(),
            label_keys(frame, [sector], "effects")[0],
            *(float_column(frame.get_column(name)) for name in names[2:]),
            method=method,
        )
    except InvalidInputError as exc:
        # Most problems concern a whole period; the row points at the sector otherwise.
        raise _at_row(exc, frame, [date], {}) from None
    return pl.DataFrame(
        [
            sectors.gather(out["sector_rows"]),
            *(pl.Series(name, out[name]) for name in (*_EFFECTS, "total")),
        ]
    )


def _link_factors(frame: pl.DataFrame, method: str, date: str) -> pl.DataFrame:
    """Links the rows of a factor attribution (one row per period)."""
    if method == "geometric":
        raise InvalidInputError(
            "factor contributions add up arithmetically; link them with carino, menchero, "
            "grap or frongello"
        )
    require_columns(frame, [date, "rp", "rb", "total"], "effects")
    dates = dates_of(frame, date, "effects")
    if dates.len() == 0:
        raise InvalidInputError("effects has no rows")
    names = [c for c in frame.columns if c not in (date, "rp", "rb", "total", "unexposed_weight")]
    check_numeric(frame, ["rp", "rb", *names], "effects")
    matrix = np.column_stack([float_column(frame.get_column(n)) for n in names])
    try:
        linked = _core.link(
            float_column(frame.get_column("rp")),
            float_column(frame.get_column("rb")),
            np.ascontiguousarray(matrix),
            method=method,
        )
    except InvalidInputError as exc:
        row = getattr(exc, "row", None)
        if row is None:
            raise
        raise InvalidInputError(f"effects of {dates[row]} (row {row}): {exc.problem}") from None
    return pl.DataFrame({"factor": names, "contribution": linked})


def factor_attribution(
    weights: pl.DataFrame | pl.LazyFrame,
    exposures: pl.DataFrame | pl.LazyFrame,
    factor_returns: pl.DataFrame | pl.LazyFrame,
    returns: pl.DataFrame | pl.LazyFrame,
    *,
    date: str = "date",
    asset: str = "asset",
    wp: str = "wp",
    wb: str = "wb",
    value: str = "return",
) -> pl.DataFrame:
    """Split each period's return (or active return) into factor contributions and a specific part.

    Parameters
    ----------
    weights
        Long frame ``date asset wp`` of the weights held over each date's return, and
        optionally ``wb`` benchmark weights: then the active weights ``wp - wb`` are
        attributed and the excess return ``Rp - Rb`` is split.
    exposures
        The output of :func:`~factorcore.rolling_exposures` (long: ``date asset`` and one
        beta column per factor). For the return of date t each asset's exposures are
        those of the latest exposure date strictly before t: no look-ahead.
    factor_returns
        Wide frame: ``date`` and one column per factor (the factors that were regressed).
    returns
        Asset returns, wide (``date`` plus one column per asset) or long
        (``date asset`` `value`).
    date, asset, wp, wb, value
        Column names.

    Returns
    -------
    polars.DataFrame
        One row per weights date: ``date rp rb``, one contribution column per factor
        (``f_k,t * sum_i a_i,t * beta_i,k,t-1``), ``specific`` (the rest) and ``total``
        (``rp - rb``, with ``rb = 0`` without benchmark weights), plus
        ``unexposed_weight``: the summed weight of holdings that had no exposures yet
        (their whole return is specific). Contributions plus specific equal total.
        :func:`link` links the rows over periods.

    Raises
    ------
    InvalidInputError
        Missing columns, a held asset with no return on a date, null or NaN weights, a
        null asset label, (date, asset) given twice in `weights` or in `exposures`, a
        factor missing from `exposures`. ``inf`` in weights, returns, exposures or
        factor returns raises :class:`~factorcore.NonFiniteError` naming the column
        and date; a value beyond 1e150 in size (or below 1e-150 and not zero) raises
        InvalidInputError naming them too.
    """
    weights = as_frame(weights, "weights")
    exposures = as_frame(exposures, "exposures")
    factor_returns = as_frame(factor_returns, "factor_returns")
    returns = as_frame(returns, "returns")

    factor_dates = dates_of(factor_returns, date, "factor_returns")
    factors = [c for c in factor_returns.columns if c != date]
    if not factors:
        raise InvalidInputError("factor_returns has no factor columns")
    check_numeric(factor_returns, factors, "factor_returns")
    no_infinite(factor_returns, factors, "factor_returns", date)
    active = wb in weights.columns
    weight_names = [wp, wb] if active else [wp]
    require_columns(weights, [date, asset, *weight_names], "weights")
    require_columns(exposures, [date, asset, *factors], "exposures")
    if weights.height == 0:
        raise InvalidInputError("weights has no rows")
    for frame, what in ((weights, "weights"), (exposures, "exposures")):
        check_dates(frame.get_column(date), what)
        if frame.schema[date] != factor_dates.dtype:
            raise DtypeError(
                f"{what} dates are {frame.schema[date]} but factor_returns dates are "
                f"{factor_dates.dtype}"
            )
    check_numeric(weights, weight_names, "weights")
    check_numeric(exposures, factors, "exposures")
    check_labels(weights, asset, "weights", date)
    check_labels(exposures, asset, "exposures", date)
    for weight in weight_names:
        _no_nulls(weights, weight, "weight", date, asset)
    no_infinite(exposures, factors, "exposures", date, asset)
    # Two exposure rows for one (date, asset) would leave the backward join to pick one.
    row = first_duplicate(exposures, [date, asset])
    if row is not None:
        raise InvalidInputError(f"exposures has duplicate rows for date {row[0]}, asset {row[1]!r}")

    as_text = pl.col(asset).cast(pl.String)
    holdings = (
        weights.select(date, as_text, *weight_names)
        .join(_long_returns(returns, date, asset, value), on=[date, asset], how="left")
        .sort(date, maintain_order=True)
    )
    prior = exposures.select(date, as_text, *(pl.col(f).alias(f"_beta_{f}") for f in factors))
    holdings = holdings.join_asof(
        prior.sort(date),
        on=date,
        by=asset,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    periods = holdings.get_column(date).unique(maintain_order=True)
    period_factors = pl.DataFrame({date: periods}).join(factor_returns, on=date, how="left")
    missing = period_factors.filter(pl.any_horizontal(pl.col(factors).is_null()))
    if missing.height:
        raise InvalidInputError(
            f"factor_returns has no (or a null) return on {missing[date][0]}, a weights date"
        )
    matrix = np.column_stack([float_column(period_factors.get_column(f)) for f in factors])
    try:
        out = _core.factor_contributions(
            holdings.get_column(date).to_physical().to_numpy(),
            label_keys(holdings, [asset], "weights")[0],
            float_column(holdings.get_column(wp)),
            float_column(holdings.get_column(wb)) if active else None,
            float_column(holdings.get_column(value)),
            [float_column(holdings.get_column(f"_beta_{f}")) for f in factors],
            np.ascontiguousarray(matrix),
        )
    except InvalidInputError as exc:
        if getattr(exc, "input", None) == "factor_returns":
            # Positioned by period and factor.
            factor, on = factors[exc.column], periods[exc.row]
            raise InvalidInputError(
                f"factor_returns column {factor!r} {OUT_OF_RANGE} on {on}; rescale the data"
            ) from None
        columns = {"wp": wp, "wb": wb, "returns": value, "exposures": factors}
        raise _at_row(exc, holdings, [date, asset], columns) from None

    contributions = out["contributions"]
    total = out["rp"] - out["rb"]
    return pl.DataFrame(
        [
            periods,
            pl.Series("rp", out["rp"]),
            pl.Series("rb", out["rb"]),
            *(pl.Series(f, contributions[:, k]) for k, f in enumerate(factors)),
            pl.Series("specific", out["specific"]),
            pl.Series("total", total),
            pl.Series("unexposed_weight", out["unexposed_weight"]),
        ]
    )


def holdings_periods(
    returns: pl.DataFrame | pl.LazyFrame,
    portfolio: pl.DataFrame | pl.LazyFrame,
    benchmark: pl.DataFrame | pl.LazyFrame,
    sectors: pl.DataFrame | pl.LazyFrame,
    *,
    every: str = "1mo",
    date: str = "date",
    asset: str = "asset",
    weight: str = "weight",
    sector: str = "sector",
    value: str = "return",
) -> pl.DataFrame:
    """Holdings-level input for :func:`brinson` from daily returns and weight snapshots.

    Parameters
    ----------
    returns
        Asset returns: wide (`date` plus one column per asset) or long (`date`, `asset`,
        `value`; taken as long when `asset` holds labels: String, Categorical, Enum or
        integer). A missing return (null or NaN) counts as 0: the asset did not trade.
        A return below -100% is an error, and so is ``inf``.
    portfolio, benchmark
        Weight snapshots, long frames `date`, `asset`, `weight`: the weights set at the
        close of each snapshot date.
    sectors
        One row per asset: `asset` and `sector` (other columns are ignored).
    every
        Period length as a Polars interval (``"1mo"``, ``"1q"``, ``"1w"``, ...): the
        return dates are grouped by ``date.dt.truncate(every)``.
    date, asset, weight, sector, value
        Column names.

    Returns
    -------
    polars.DataFrame
        Columns ``date asset sector wp wb ret`` (these names whatever the input's, so
        that :func:`brinson` takes the frame as it is), one row per period and asset with a
        non-zero weight on either side (0.0 on the side that does not hold it), sorted
        by date then asset. A period is dated by its last return date. Each side holds
        its latest snapshot dated before the period's first return date, and `ret` is
        the asset's compounded return over the period. Periods before both sides have a
        snapshot are left out.

    Raises
    ------
    InvalidInputError
        Missing columns, null or NaN weights, a null asset label, an asset weighted
        twice in one snapshot, a weighted asset that `returns` does not have, a held
        asset without a sector, a return below -100%, an invalid `every`. ``inf`` in
        returns or weights raises :class:`~factorcore.NonFiniteError`.

    Examples
    --------
    >>> import factorcore as fc
    >>> from factorcore.datasets import sample_market
    >>> market = sample_market(n_assets=60)
    >>> periods = fc.holdings_periods(
    ...     market.returns, market.portfolios["barbell"], market.benchmark, market.sectors
    ... )
    >>> effects = fc.brinson(periods)          # monthly Brinson-Fachler per sector
    >>> periods.columns
    ['date', 'asset', 'sector', 'wp', 'wb', 'ret']
    """
    returns = as_frame(returns, "returns")
    labels = sector_labels(sectors, asset, sector).rename({"asset": asset, "sector": sector})
    periods, compounded = _period_returns(returns, every, date, asset, value)
    sides = [
        _held_weights(frame, side, periods, date, asset, weight)
        for frame, side in ((portfolio, "portfolio"), (benchmark, "benchmark"))
    ]
    held = (
        sides[0]
        .join(sides[1], on=["_period", asset], how="full", coalesce=True)
        .join(periods.select("_period", date), on="_period")
        .with_columns(pl.col("wp", "wb").fill_null(0.0))
        .filter((pl.col("wp") != 0) | (pl.col("wb") != 0))
    )
    # Periods before one side's first snapshot have no rows on that side.
    both = (
        sides[0].select("_period").unique().join(sides[1].select("_period").unique(), on="_period")
    )
    held = held.join(both, on="_period", how="semi")
    known = compounded.get_column(asset).unique()
    unknown = held.filter(~pl.col(asset).is_in(known.implode()))
    if unknown.height:
        raise InvalidInputError(
            f"weights hold asset {unknown.get_column(asset)[0]!r}, which returns does not have"
        )
    out = held.join(labels, on=asset, how="left").join(
        compounded, on=["_period", asset], how="left"
    )
    unlabelled = out.filter(pl.col(sector).is_null())
    if unlabelled.height:
        raise InvalidInputError(
            f"sectors has no row for held asset {unlabelled.get_column(asset)[0]!r}"
        )
    return out.select(
        pl.col(date).alias("date"),
        pl.col(asset).alias("asset"),
        pl.col(sector).alias("sector"),
        pl.col("wp").cast(pl.Float64),
        pl.col("wb").cast(pl.Float64),
        pl.col("ret").fill_null(0.0),
    ).sort("date", "asset")


def _period_returns(
    returns: pl.DataFrame, every: str, date: str, asset: str, value: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Periods (`_period _first date`) and compounded returns (`_period asset ret`)."""
    wide = not is_long(returns, date, asset, value)
    if wide:
        dates_of(returns, date, "returns")
        assets = [c for c in returns.columns if c != date]
        check_numeric(returns, assets, "returns")
        for name in assets:
            _check_period_return(returns, name, date, name)
    else:
        returns = _long_returns(returns, date, asset, value)
        _check_period_return(returns, value, date, None, asset)
    try:
        period = pl.col(date).dt.truncate(every).alias("_period")
        returns.head(1).select(period)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"every={every!r} is not a Polars interval: {exc}") from None
    periods = (
        returns.group_by(period)
        .agg(pl.col(date).min().alias("_first"), pl.col(date).max().alias(date))
        .sort("_first")
    )
    # Compounding treats a missing return as a day without trading.
    growth = (pl.exclude(date, "_period").fill_nan(None).fill_null(0.0) + 1.0).product() - 1.0
    if wide:
        compounded = (
            returns.group_by(period)
            .agg(growth)
            .unpivot(index="_period", variable_name=asset, value_name="ret")
        )
    else:
        compounded = returns.group_by(period, asset).agg(
            (pl.col(value).fill_nan(None).fill_null(0.0) + 1.0).product().sub(1.0).alias("ret")
        )
    return periods, compounded


def _held_weights(
    snapshots: Any,
    side: str,
    periods: pl.DataFrame,
    date: str,
    asset: str,
    weight: str,
) -> pl.DataFrame:
    """`_period asset wp|wb`: each period's latest snapshot dated before its first date."""
    frame = as_frame(snapshots, side)
    require_columns(frame, [date, asset, weight], side)
    check_dates(frame.get_column(date), side)
    if frame.schema[date] != periods.schema[date]:
        raise DtypeError(
            f"{side} dates are {frame.schema[date]} but returns dates are {periods.schema[date]}"
        )
    check_numeric(frame, [weight], side)
    check_labels(frame, asset, side, date)
    _no_nulls(frame, weight, "weight", date, asset)
    frame = frame.select(date, pl.col(asset).cast(pl.String), pl.col(weight).cast(pl.Float64))
    no_infinite(frame, [weight], side, date, asset)
    nan = frame.get_column(weight).is_nan()
    if nan.any():
        where = _describe(frame, int(nan.arg_true()[0]), (date, asset))
        raise InvalidInputError(f"{side} weight column {weight!r} is NaN at {where}")
    row = first_duplicate(frame, [date, asset])
    if row is not None:
        raise InvalidInputError(f"{side} weights {row[1]!r} twice on {row[0]}")
    snapshot = periods.join_asof(
        frame.select(pl.col(date).alias("_snapshot")).unique().sort("_snapshot"),
        left_on="_first",
        right_on="_snapshot",
        strategy="backward",
        allow_exact_matches=False,
    )
    name = "wp" if side == "portfolio" else "wb"
    return snapshot.join(
        frame.rename({date: "_snapshot", weight: name}), on="_snapshot", how="inner"
    ).select("_period", asset, name)


def _check_period_return(
    frame: pl.DataFrame, column: str, date: str, name: str | None, asset: str | None = None
) -> None:
    """Returns to compound must be finite and at least -100%; the error names the asset
    (`name`, or the `asset` column of the row) and the date."""
    values = float_column(frame.get_column(column))
    infinite = np.isinf(values)
    below = values < -1.0
    bad = np.flatnonzero(infinite | below)
    if not bad.size:
        return
    row = int(bad[0])
    label = name if name is not None else frame.get_column(asset)[row]
    day = frame.get_column(date)[row]
    if infinite[row]:
        raise NonFiniteError(
            f"returns of {label!r} are infinite on {day} (row {row}); use null or NaN "
            "for missing values"
        )
    raise InvalidInputError(
        f"returns of {label!r} are {float(values[row])!r} on {day} (row {row}): a return "
        "below -100% is impossible (returns are fractions: -0.05 is -5%)"
    )


def _long_returns(returns: pl.DataFrame, date: str, asset: str, value: str) -> pl.DataFrame:
    """Asset returns as a long frame ``date asset value`` with String assets."""
    if is_long(returns, date, asset, value):
        check_labels(returns, asset, "returns", date)
        long = returns.select(date, pl.col(asset).cast(pl.String), value)
        check_dates(long.get_column(date), "returns")
        check_numeric(long, [value], "returns")
        row = first_duplicate(long, [date, asset])
        if row is not None:
            raise InvalidInputError(f"returns has two rows for {row[1]!r} on {row[0]}")
        return long
    dates_of(returns, date, "returns")
    assets = [c for c in returns.columns if c != date]
    check_numeric(returns, assets, "returns")
    return returns.unpivot(index=date, variable_name=asset, value_name=value)


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInputError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _level(columns: list[str], *, rp: str, rb: str, ret: str) -> bool:
    """True for holdings-level input (asset returns), False for sector-level input."""
    sector_level = rp in columns or rb in columns
    if sector_level and ret in columns:
        raise InvalidInputError(
            f"data has both sector returns ({rp!r}, {rb!r}) and asset returns ({ret!r}); "
            "give one level: sector returns for sector-level rows, asset returns for holdings"
        )
    if not sector_level and ret not in columns:
        raise InvalidInputError(
            f"data has neither sector returns ({rp!r} and {rb!r}) nor asset returns "
            f"({ret!r}) (columns: {columns[:12]})"
        )
    return not sector_level


def _no_nulls(frame: pl.DataFrame, column: str, kind: str, *keys: str) -> None:
    series = frame.get_column(column)
    if series.null_count():
        row = int(series.is_null().arg_true()[0])
        where = _describe(frame, row, keys)
        raise InvalidInputError(f"{kind} column {column!r} is null at {where}")


def _describe(frame: pl.DataFrame, row: int, keys: list[str] | tuple[str, ...]) -> str:
    """'row 12 (date 2024-01-02, sector 'Energy')' for error messages."""
    values = [(k, frame.get_column(k)[row]) for k in keys]
    parts = ", ".join(f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}" for k, v in values)
    return f"row {row} ({parts})"


def _at_row(
    exc: InvalidInputError,
    frame: pl.DataFrame,
    keys: list[str],
    columns: dict[str, str | list[str]],
) -> InvalidInputError:
    """The core's row error with the row's dates and labels, or `exc` unchanged.

    `columns` names the core's inputs: a column name, or one name per core column.
    """
    row = getattr(exc, "row", None)
    if row is None:
        return exc
    where = _describe(frame, row, keys)
    internal = getattr(exc, "input", None)
    if internal is not None:
        # A value at a position: infinite, or out of range.
        name = columns.get(internal, internal)
        if isinstance(name, list):
            name = name[exc.column]
        err: InvalidInputError
        if isinstance(exc, NonFiniteError):
            err = NonFiniteError(
                f"column {name!r} is infinite at {where}; use null or NaN for missing values"
            )
        else:
            err = InvalidInputError(f"column {name!r} {OUT_OF_RANGE} at {where}; rescale the data")
        err.input, err.row, err.column = exc.input, exc.row, exc.column
        return err
    problem = exc.problem
    for internal, name in columns.items():
        if isinstance(name, str):
            problem = problem.replace(f"{internal} (", f"{name!r} (")
    err = InvalidInputError(f"{where}: {problem}")
    err.row = row
    return err


def _check_weight_sums(
    sums: np.ndarray,
    dates: pl.Series,
    side: str,
    column: str,
    weights: np.ndarray,
    starts: np.ndarray,
    float32: bool,
) -> None:
    """Each date's weights of one side (rows `starts[i]:starts[i+1]`) must sum to 1."""
    starts = starts.astype(np.int64)
    tolerance = np.full(sums.shape, WEIGHT_SUM_TOLERANCE)
    if float32:
        # Weights rounded to float32 carry up to eps32/2 relative error each, and a sum
        # that is 1 in float32 up to n * eps32 * gross: the 1e-9 of float64 would refuse it.
        gross = np.add.reduceat(np.abs(weights), starts[:-1])
        tolerance += np.diff(starts) * np.finfo(np.float32).eps * gross
    bad = np.flatnonzero(~(np.abs(sums - 1.0) <= tolerance))
    if not bad.size:
        return
    i = int(bad[0])
    on_date = weights[starts[i] : starts[i + 1]]
    gross_i = float(np.abs(on_date).sum())
    if gross_i == 0:
        raise InvalidInputError(
            f"there are no {side} weights ({column!r}) on {dates[i]}: every {side} weight "
            "of the date is 0"
        )
    if abs(float(sums[i])) <= tolerance[i]:
        raise InvalidInputError(
            f"{side} weights ({column!r}) net to zero on {dates[i]} (their absolute values "
            f"sum to {gross_i:.6g}); attribution needs weights that are fractions of a "
            "whole summing to 1: give a long/short book's capital (cash) a row of its own"
        )
    raise InvalidInputError(
        f"{side} weights ({column!r}) sum to {float(sums[i])!r} on {dates[i]}, not 1 "
        f"(tolerance {float(tolerance[i]):.3g}); weights are fractions of the whole: hold "
        "cash as a sector (or holding) of its own, or normalise the weights per date"
    )


def _label_order(labels: pl.Series) -> np.ndarray:
    """Output order of the distinct labels: Enum in category order, others sorted."""
    if isinstance(labels.dtype, pl.Enum):
        return np.argsort(labels.to_physical().to_numpy(), kind="stable")
    return labels.arg_sort().to_numpy()
