"""Charts of the factorcore analytics, written as PNG files.

This module needs matplotlib (``pip install 'factorcore[plot]'``); the rest of the library
never imports it. Figures are drawn on their own Agg canvas, so no global matplotlib state
(the pyplot backend or its figure registry) is touched.

- :func:`exposures_chart`: factor exposures of each portfolio over time.
- :func:`attribution_chart`: linked allocation and selection effects per sector.
- :func:`diversification_chart`: numbers of bets and diversification ratio over time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from factorcore._frames import as_frame, check_dates, check_numeric, require_columns
from factorcore.errors import InvalidInputError

try:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
except ImportError as err:  # pragma: no cover - exercised in a subprocess
    raise ImportError("charts need matplotlib: pip install 'factorcore[plot]'") from err

__all__ = ["attribution_chart", "diversification_chart", "exposures_chart"]

DPI = 110
SIZE_PX = (1100, 700)


def _figure(title: str) -> Figure:
    fig = Figure(figsize=(SIZE_PX[0] / DPI, SIZE_PX[1] / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    fig.savefig(out, dpi=DPI, format="png")
    fig.clear()  # the figure is not registered with pyplot: this releases it
    return out


def _checked(
    table: pl.DataFrame, columns: list[str], numeric: list[str], what: str
) -> pl.DataFrame:
    """The table as a DataFrame, checked for columns, rows, numeric and date dtypes."""
    frame = as_frame(table, what)
    require_columns(frame, [*columns, *(c for c in numeric if c not in columns)], what)
    if frame.height == 0:
        raise InvalidInputError(f"{what} is empty: nothing to plot")
    check_numeric(frame, numeric, what)
    if "date" in columns:
        check_dates(frame.get_column("date"), what)
    return frame


def _series_by_portfolio(
    frame: pl.DataFrame, columns: list[str]
) -> Iterator[tuple[str, np.ndarray, dict[str, np.ndarray]]]:
    """(portfolio, dates, {column: values}) in order of first appearance, sorted by date."""
    for name in frame.get_column("portfolio").unique(maintain_order=True).to_list():
        part = frame.filter(pl.col("portfolio") == name).sort("date")
        values = {c: part.get_column(c).cast(pl.Float64).to_numpy() for c in columns}
        yield str(name), part.get_column("date").to_numpy(), values


def _line_style(portfolio: str) -> dict[str, object]:
    """The benchmark in grey behind the portfolios, which take the colour cycle."""
    if portfolio == "benchmark":
        return {"color": "0.45", "linewidth": 1.3, "zorder": 1}
    return {"linewidth": 1.7, "zorder": 2}


Marker = tuple[date, str]


def _mark(ax: Axes, dates: pl.Series, marker: Marker | None) -> None:
    """A dashed vertical line at the marker's date, labelled, when the dates span it."""
    if marker is not None and dates.min() < marker[0] <= dates.max():
        ax.axvline(np.datetime64(marker[0]), color="firebrick", linestyle="--", label=marker[1])


def _time_panels(
    frame: pl.DataFrame,
    panels: list[tuple[str, str, str]],
    title: str,
    path: str | os.PathLike[str],
    marker: Marker | None,
) -> Path:
    """One panel per ``(column, title, ylabel)``, three to a row, a line per portfolio."""
    fig = _figure(title)
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
    series = list(_series_by_portfolio(frame, [column for column, _, _ in panels]))
    dates = frame.get_column("date").cast(pl.Date)
    for ax, (column, panel_title, ylabel) in zip(axes, panels, strict=False):
        for portfolio, x, values in series:
            ax.plot(x, values[column], label=portfolio, **_line_style(portfolio))
        _mark(ax, dates, marker)
        ax.set(title=panel_title, ylabel=ylabel)
        ax.grid(alpha=0.3)
        locator = AutoDateLocator(minticks=2, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[len(panels) - ncols : len(panels)]:  # the lowest panel of each column
        ax.set_xlabel("Date")
        ax.xaxis.set_tick_params(labelbottom=True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    return _save(fig, path)


def exposures_chart(
    portfolio_exposures: pl.DataFrame,
    path: str | os.PathLike[str],
    *,
    factors: Sequence[str] | None = None,
    marker: Marker | None = None,
) -> Path:
    """Plot the factor exposures of each portfolio over time, one panel per factor.

    Parameters
    ----------
    portfolio_exposures : pl.DataFrame
        Columns ``date`` and ``portfolio`` and one numeric column per factor.
    path : str or os.PathLike
        Where to write the PNG.
    factors : sequence of str, optional
        The factor columns to draw, in this order; by default every numeric column.
    marker : (date, label), optional
        A labelled dashed line at that date, e.g. ``(date(2026, 1, 1), "2026 rotation")``.

    Returns
    -------
    pathlib.Path
        The path of the written PNG.

    Raises
    ------
    InvalidInputError
        If a required column is missing, no factor column is present or the table is empty.
    """
    frame = as_frame(portfolio_exposures, "portfolio_exposures")
    if factors is None:
        factors = [
            name
            for name, dtype in frame.schema.items()
            if name not in ("date", "portfolio") and dtype.is_numeric()
        ]
    if not factors:
        raise InvalidInputError("portfolio_exposures has no factor columns")
    frame = _checked(frame, ["date", "portfolio"], list(factors), "portfolio_exposures")
    panels = [(f, f.capitalize(), "Beta") for f in factors]
    return _time_panels(frame, panels, "Factor exposures by portfolio", path, marker)


def diversification_chart(
    scores: pl.DataFrame, path: str | os.PathLike[str], *, marker: Marker | None = None
) -> Path:
    """Plot ``enb_mt``, ``enb_pca`` and ``diversification_ratio`` over time per portfolio.

    Missing values (NaN or null, e.g. where ``enb_mt`` did not converge) appear as gaps.

    Parameters
    ----------
    scores : pl.DataFrame
        The output of :func:`factorcore.diversification` with a ``portfolio`` column:
        at least ``portfolio``, ``date``, ``enb_mt``, ``enb_pca``, ``diversification_ratio``.
    path : str or os.PathLike
        Where to write the PNG.
    marker : (date, label), optional
        A labelled dashed line at that date.

    Returns
    -------
    pathlib.Path
        The path of the written PNG.

    Raises
    ------
    InvalidInputError
        If a required column is missing or the table is empty.
    """
    columns = ["enb_mt", "enb_pca", "diversification_ratio"]
    frame = _checked(scores, ["portfolio", "date", *columns], columns, "scores")
    panels = [
        ("enb_mt", "Minimum-torsion bets (enb_mt)", "Effective number of bets"),
        ("enb_pca", "PCA bets (enb_pca)", "Effective number of bets"),
        ("diversification_ratio", "Diversification ratio", "Ratio"),
    ]
    return _time_panels(frame, panels, "Diversification: how many bets", path, marker)


def attribution_chart(linked: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Plot linked allocation and selection effects per sector, one panel per portfolio.

    Parameters
    ----------
    linked : pl.DataFrame
        Linked Brinson effects with columns ``portfolio``, ``sector``, ``allocation`` and
        ``selection`` as fractions (0.01 is one percent); drawn in percent.
    path : str or os.PathLike
        Where to write the PNG.

    Returns
    -------
    pathlib.Path
        The path of the written PNG.

    Raises
    ------
    InvalidInputError
        If a required column is missing or the table is empty.
    """
    effects = ["allocation", "selection"]
    frame = _checked(linked, ["portfolio", "sector", *effects], effects, "linked")
    frame = frame.with_columns(pl.col("sector").cast(pl.String).fill_null("(none)"))
    sectors = sorted(frame.get_column("sector").unique().to_list(), reverse=True)
    portfolios = frame.get_column("portfolio").unique(maintain_order=True).to_list()
    fig = _figure("Attribution: where the active return came from")
    axes = fig.subplots(1, len(portfolios), sharex=True, sharey=True, squeeze=False)[0]
    y = np.arange(len(sectors), dtype=float)
    height = 0.38
    for ax, portfolio in zip(axes, portfolios, strict=True):
        part = (
            frame.filter(pl.col("portfolio") == portfolio)
            .group_by("sector")
            .agg(pl.col(effects).sum())
        )
        grid = pl.DataFrame({"sector": sectors}).join(part, on="sector", how="left")
        for k, (effect, color) in enumerate(zip(effects, ("tab:blue", "tab:orange"), strict=True)):
            values = 100.0 * grid.get_column(effect).cast(pl.Float64).to_numpy()
            ax.barh(y + (0.5 - k) * height, values, height, label=effect.capitalize(), color=color)
        ax.axvline(0.0, color="0.2", linewidth=0.8)
        ax.set_title(str(portfolio))
        ax.set_xlabel("Effect (%)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, sectors)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    return _save(fig, path)
