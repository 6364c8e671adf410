"""Validation and conversion of user frames and arrays; nothing numeric happens here."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import polars as pl

from factorcore.errors import DtypeError, InvalidInputError, NonFiniteError

NUMERIC_HINT = "expected a numeric (float or integer) column"


# What the core says of a finite value too large or too small to compute with.
OUT_OF_RANGE = (
    "has a value too large or too small to compute with (nonzero values must lie "
    "between 1e-150 and 1e150 in size)"
)


def as_frame(obj: Any, what: str) -> pl.DataFrame:
    """A DataFrame from a DataFrame or LazyFrame, or a DtypeError naming `what`."""
    if isinstance(obj, pl.LazyFrame):
        return obj.collect()
    if isinstance(obj, pl.DataFrame):
        return obj
    raise DtypeError(f"{what} must be a polars DataFrame or LazyFrame, got {type(obj).__name__}")


def dates_of(
    frame: pl.DataFrame, date: str, what: str, *, sorted_required: bool = True
) -> pl.Series:
    """The date column of `frame`, checked to be Date/Datetime, non-null, strictly increasing."""
    if date not in frame.columns:
        raise InvalidInputError(
            f"{what} has no date column {date!r} (columns: {frame.columns[:10]})"
        )
    dates = frame.get_column(date)
    check_dates(dates, what)
    if sorted_required and dates.len() > 1:
        physical = dates.to_physical().to_numpy()
        bad = np.flatnonzero(np.diff(physical) <= 0)
        if bad.size:
            i = int(bad[0])
            kind = "duplicate" if physical[i] == physical[i + 1] else "unsorted"
            raise InvalidInputError(
                f"{what} dates must be strictly increasing: {kind} date {dates[i + 1]} "
                f"at row {i + 1} follows {dates[i]}"
            )
    return dates


def check_numeric(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    schema = frame.schema  # built afresh on every access: read it once
    for name in columns:
        dtype = schema[name]
        if not (dtype.is_float() or dtype.is_integer()):
            raise DtypeError(f"{what} column {name!r} has dtype {dtype}; {NUMERIC_HINT}")


def float_column(series: pl.Series) -> np.ndarray:
    """A contiguous float64 view of a column, NaN for null; zero-copy when it already is one."""
    if series.dtype != pl.Float64:
        series = series.cast(pl.Float64)
    values = series.to_numpy()
    return values if values.flags.c_contiguous else np.ascontiguousarray(values)


def float_array(obj: Any, what: str) -> np.ndarray:
    """`obj` as a float64 NumPy array (no copy if it already is one).

    The masked entries of a NumPy masked array become NaN: masked means missing.
    (``np.asarray`` alone would drop the mask and hand over the hidden values.)
    """
    masked = isinstance(obj, np.ma.MaskedArray)
    try:
        array = np.ma.getdata(obj) if masked else np.asarray(obj)
    except Exception as exc:  # ragged sequences and the like
        raise DtypeError(f"{what} cannot be read as a numeric array: {exc}") from None
    if array.dtype.kind not in "fiu":
        raise DtypeError(f"{what} must hold floats or integers, got dtype {array.dtype}")
    if masked:
        mask = np.ma.getmaskarray(obj)
        if mask.any():
            return np.where(mask, np.nan, array.astype(np.float64))
    return np.asarray(array, dtype=np.float64)


def bool_arg(value: Any, name: str) -> bool:
    """A flag that must be a bool: ``intercept="no"`` would otherwise count as true."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise DtypeError(f"{name} must be True or False, got {value!r}")


def window_arg(window: Any) -> int | None:
    if window is None:
        return None
    return count_arg(window, "window")


def count_arg(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise DtypeError(f"{name} must be an integer number of rows, got {value!r}")
    try:
        count = operator.index(value)
    except TypeError:
        raise DtypeError(f"{name} must be an integer number of rows, got {value!r}") from None
    if count < 1:
        raise InvalidInputError(f"{name} must be at least 1, got {count}")
    return count


def halflife_arg(halflife: Any) -> float | None:
    if halflife is None:
        return None
    if isinstance(halflife, bool) or not isinstance(
        halflife, (int, float, np.integer, np.floating)
    ):
        raise DtypeError(f"halflife must be a number of rows, got {halflife!r}")
    value = float(halflife)
    if not (np.isfinite(value) and value > 0):
        raise InvalidInputError(f"halflife must be a positive number of rows, got {halflife!r}")
    return value


def require_columns(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    """An InvalidInputError naming every column of `columns` that `frame` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"{what} has no column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))} (columns: {frame.columns[:12]})"
        )


def check_dates(series: pl.Series, what: str) -> None:
    """A Date/Datetime column without nulls (any order, repeats allowed)."""
    if not (series.dtype == pl.Date or isinstance(series.dtype, pl.Datetime)):
        raise DtypeError(
            f"{what} column {series.name!r} must be Date or Datetime, got {series.dtype}"
        )
    if series.null_count():
        row = series.is_null().arg_true()[0]
        raise InvalidInputError(f"{what} column {series.name!r} has a null date at row {row}")


def check_labels(frame: pl.DataFrame, column: str, what: str, date: str | None = None) -> None:
    """An InvalidInputError naming the first row (and its date) whose label is null.

    A null label is not an asset: pivoting or joining on it would invent one ("null")
    or silently drop its rows.
    """
    series = frame.get_column(column)
    if series.null_count():
        row = int(series.is_null().arg_true()[0])
        on = ""
        if date is not None and date in frame.columns:
            on = f" (date {frame.get_column(date)[row]})"
        raise InvalidInputError(f"{what} column {column!r} is null at row {row}{on}")


def first_duplicate(frame: pl.DataFrame, columns: list[str]) -> tuple[Any, ...] | None:
    """The first key (values of `columns`) that two rows of `frame` share, or None.

    One 64-bit hash per row screens the frame (about 1 s for 7.5M rows, where
    ``DataFrame.is_duplicated`` takes 6 s); the keys themselves are compared only when
    two hashes agree, so a hash collision cannot raise a false error.
    """
    hashes = frame.select(pl.struct(columns).hash()).to_series()
    if hashes.n_unique() == frame.height:
        return None
    keys = frame.select(columns)
    duplicated = keys.is_duplicated()
    return keys.filter(duplicated).row(0) if duplicated.any() else None


def no_infinite(
    frame: pl.DataFrame, columns: list[str], what: str, date: str, key: str | None = None
) -> None:
    """A NonFiniteError naming the column, date (and `key` label) of the first inf."""
    for name in columns:
        infinite = frame.get_column(name).cast(pl.Float64).is_infinite()
        if infinite.any():
            row = int(infinite.arg_true()[0])
            label = "" if key is None else f" for {key} {frame.get_column(key)[row]!r}"
            raise NonFiniteError(
                f"{what} column {name!r} is infinite on {frame.get_column(date)[row]}{label} "
                f"(row {row}); use null or NaN for missing values"
            )


def is_long(frame: pl.DataFrame, date: str, asset: str, value: str) -> bool:
    """Whether a returns frame is long (`date`, `asset`, `value`) rather than wide.

    Long when it has all three columns and the `asset` column holds labels: String,
    Categorical, Enum or integer. In a wide frame every column but the dates holds
    returns, so a wide frame whose assets happen to be named like `asset` and `value`
    has float columns there and stays wide.
    """
    if not {date, asset, value} <= set(frame.columns):
        return False
    dtype = frame.schema[asset]
    return dtype == pl.String or is_coded(dtype) or dtype.is_integer()


def is_coded(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.Enum, pl.Categorical))


def label_keys(
    frame: pl.DataFrame, columns: list[str], what: str, date: str | None = None
) -> list[Any]:
    """Keys of label columns for the core, equal when the labels are equal.

    Enum and Categorical columns give their physical codes and integer labels their own
    bits (both exact). String columns are handed over as Arrow C streams (PyCapsules)
    that the core reads in place, hashing each label to 64 bits: two different labels
    would share a key only on a hash collision, with odds of about n_labels**2 / 2**65.
    """
    schema = frame.schema
    keys: list[Any] = []
    for name in columns:
        series = frame.get_column(name)
        check_labels(frame, name, what, date)
        dtype = schema[name]
        if is_coded(dtype):
            keys.append(series.to_physical().to_numpy())
        elif dtype.is_integer():
            keys.append(series.cast(pl.Int64).to_numpy().view(np.uint64))
        elif dtype == pl.String:
            keys.append(series.rechunk().__arrow_c_stream__())
        else:
            raise DtypeError(
                f"{what} column {name!r} has dtype {dtype}; expected String, Enum, "
                "Categorical or integer labels"
            )
    return keys


def sector_labels(sectors: Any, asset: str, sector: str) -> pl.DataFrame:
    """The sector map as String columns `asset` and `sector`: one row per asset, no nulls."""
    labels = as_frame(sectors, "sectors")
    require_columns(labels, [asset, sector], "sectors")
    check_labels(labels, asset, "sectors")
    labels = labels.select(
        pl.col(asset).cast(pl.String).alias("asset"), pl.col(sector).cast(pl.String).alias("sector")
    )
    if labels.get_column("asset").is_duplicated().any():
        dup = labels.filter(pl.col("asset").is_duplicated()).get_column("asset")[0]
        raise InvalidInputError(f"sectors lists asset {dup!r} more than once")
    if labels.get_column("sector").null_count():
        row = labels.filter(pl.col("sector").is_null()).get_column("asset")[0]
        raise InvalidInputError(f"sectors has a null sector for asset {row!r}")
    return labels
