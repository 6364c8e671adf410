"""The ``factorcore`` command line: the demo, and the analytics on your own files.

``factorcore demo`` runs everything on the built-in sample market;
``factorcore exposures|attribution|diversification`` read CSV or Parquet files, call
the Python API with the same options and write the result as CSV or Parquet.
Problems with the files are reported as one line naming the file, column and row.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import math
import os
import secrets
import stat
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

import factorcore as fc
from factorcore.errors import DtypeError, InvalidInputError

FORMATS = (".csv", ".parquet")


class FileError(Exception):
    """A problem with a user's file, reported as one line."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 an error in the data or files).

    Bad usage (an unknown option, a value no data could make valid) exits through
    argparse with code 2. Every error is one line on stderr, ``factorcore: error: ...``.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    warnings.formatwarning = _one_line_warning
    try:
        if args.command != "demo":
            _check_output(args)
        args.run(args)
    except (FileError, InvalidInputError, DtypeError, pl.exceptions.PolarsError) as exc:
        return _error(str(exc))
    except OSError as exc:  # one the steps below did not name: still one line
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return _error(f"{where}{exc.strerror or exc}")
    except MemoryError as exc:
        return _error(f"out of memory: {exc}" if str(exc) else "out of memory")
    except KeyboardInterrupt:
        print("factorcore: interrupted", file=sys.stderr)
        return 130
    return 0


def _error(message: str) -> int:
    message = " ".join(message.split())
    print(f"factorcore: error: {message}", file=sys.stderr)
    return 1


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    return f"factorcore: warning: {category.__name__}: {message}\n"


# --- reading and writing files -------------------------------------------------------


def read_table(
    path: str | Path,
    *,
    date: str | None,
    text: tuple[str, ...] = (),
    numeric: tuple[str, ...] | None = None,
) -> pl.DataFrame:
    """A CSV or Parquet file with its `date` column parsed and numeric columns checked.

    `text` columns stay strings; `numeric` lists the columns that must be numbers
    (``None``: every column except `date` and `text`). A value that does not parse is
    a :class:`FileError` naming the file, column and (1-based data) row.
    """
    path = Path(path)
    name = path.name
    frame = _read(path)
    if date is not None:
        if date not in frame.columns:
            raise FileError(
                f"{name}: no column {date!r} (columns: {', '.join(frame.columns[:12])})"
            )
        frame = frame.with_columns(_parse_dates(frame.get_column(date), name))
    for column in text:
        if column not in frame.columns:
            raise FileError(
                f"{name}: no column {column!r} (columns: {', '.join(frame.columns[:12])})"
            )
    if numeric is None:
        numeric = tuple(c for c in frame.columns if c != date and c not in text)
    for column in numeric:
        if column not in frame.columns:
            raise FileError(
                f"{name}: no column {column!r} (columns: {', '.join(frame.columns[:12])})"
            )
    # One call for all columns: a wide file can hold thousands of assets.
    return frame.with_columns(_parse_numbers(frame.get_column(c), name) for c in numeric)


def _read(path: Path) -> pl.DataFrame:
    _check_input(path)
    try:
        if path.suffix.lower() == ".csv":
            _check_fields(path)
            # Everything as text first, so that a bad value can be reported by row.
            return pl.read_csv(path, infer_schema=False)
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FileError(f"{path.name}: cannot read the file: {_first_line(exc)}") from None


def _check_fields(path: Path) -> None:
    """Every row of a CSV file has as many fields as its header.

    Polars fills a row with too few fields with nulls, which would pass for missing
    values, and refuses one with too many without saying where. Each physical line is
    read whole and its separators counted; a file with quotes (where a comma or a line
    break can sit inside a field) is counted by the csv module instead.
    """
    try:
        lines = pl.read_csv(
            path,
            has_header=False,
            new_columns=["line"],
            separator="\x1f",  # the ASCII unit separator: not expected in the text
            quote_char=None,
            infer_schema=False,
            raise_if_empty=False,
        ).get_column("line")
    except pl.exceptions.PolarsError:
        lines = None  # a unit separator after all, or bytes that are not UTF-8
    if lines is None or lines.str.contains('"', literal=True).any():
        _check_quoted_fields(path)
        return
    fields = lines.str.count_matches(",", literal=True) + 1  # null: a blank line
    present = fields.is_not_null().arg_true()
    if not present.len():
        return  # an empty file: the reader reports it
    header = int(present[0])  # blank lines before the header are skipped
    expected = int(fields[header])
    if expected == 1:  # a blank line is then one empty field, a missing value
        fields = fields.fill_null(1)
    wrong = fields.slice(header + 1).ne_missing(expected).arg_true()
    if wrong.len():
        row = int(wrong[0]) + 1
        got = fields[header + row]
        raise _field_count_error(path, header + row + 1, row, got, expected)


def _check_quoted_fields(path: Path) -> None:
    with open(path, newline="", encoding="utf-8", errors="replace") as file:
        reader = csv.reader(file)
        expected, row = None, 0
        try:
            while True:
                line = reader.line_num + 1  # where the next record starts
                record = next(reader, None)
                if record is None:
                    return
                if expected is None:
                    expected = len(record) or None  # blank lines before the header
                    continue
                row += 1
                if len(record) != expected and not (expected == 1 and not record):
                    raise _field_count_error(path, line, row, len(record) or None, expected)
        except csv.Error:
            return  # not CSV the csv module can follow; the reader reports what it finds


def _field_count_error(
    path: Path, line: int, row: int, got: int | None, expected: int
) -> FileError:
    where = f"{path.name}: line {line} (row {row})"
    if got is None:
        return FileError(f"{where} is empty; the header has {expected} fields")
    noun = "field" if got == 1 else "fields"
    return FileError(f"{where} has {got} {noun}, the header has {expected}")


def _parse_dates(column: pl.Series, file: str) -> pl.Series:
    if column.dtype in (pl.Date,) or isinstance(column.dtype, pl.Datetime):
        parsed = column
    elif column.dtype == pl.String:
        text = column.str.strip_chars()
        longest = text.str.len_chars().max()
        to_type = pl.Datetime if longest is not None and longest > 10 else pl.Date
        try:
            parsed = text.str.strptime(to_type, strict=False)
        except pl.exceptions.PolarsError:  # no format fits the first values
            first = text.drop_nulls()
            raise FileError(
                f"{file}: column {column.name!r}: cannot parse dates such as "
                f"{first[0] if first.len() else ''!r} (expected YYYY-MM-DD)"
            ) from None
        failed = parsed.is_null() & text.is_not_null()
        if failed.any():
            row = int(failed.arg_true()[0])
            raise FileError(
                f"{file}: column {column.name!r}, row {row + 1}: cannot parse "
                f"{text[row]!r} as a date (expected YYYY-MM-DD)"
            )
        # "2024-01-31 00:00:00" is a day too: files that spell their days differently
        # must still line up.
        if parsed.dtype != pl.Date and (parsed.dt.truncate("1d") == parsed).all():
            parsed = parsed.cast(pl.Date)
    else:
        raise FileError(f"{file}: column {column.name!r} holds {column.dtype}, not dates")
    if parsed.null_count():
        row = int(parsed.is_null().arg_true()[0])
        raise FileError(f"{file}: column {column.name!r}, row {row + 1}: the date is empty")
    return parsed


def _parse_numbers(column: pl.Series, file: str) -> pl.Series:
    if column.dtype.is_numeric():
        return column
    if column.dtype != pl.String:
        raise FileError(f"{file}: column {column.name!r} holds {column.dtype}, not numbers")
    text = column.str.strip_chars()
    text = pl.select(pl.when(text.str.len_chars() > 0).then(text)).to_series().alias(column.name)
    parsed = text.cast(pl.Float64, strict=False)
    failed = parsed.is_null() & text.is_not_null()
    if failed.any():
        row = int(failed.arg_true()[0])
        raise FileError(
            f"{file}: column {column.name!r}, row {row + 1}: cannot parse {text[row]!r} as a number"
        )
    return parsed


def write_table(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write `frame` as CSV or Parquet (by extension), creating the directory.

    The file is replaced only once it is complete (see :func:`write_file`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise FileError(
            f"{path.name}: unsupported output type {suffix or '(none)'!r}; use .csv or .parquet"
        )
    labels = [c for c, t in frame.schema.items() if isinstance(t, (pl.Enum, pl.Categorical))]
    frame = frame.with_columns(pl.col(labels).cast(pl.String))
    return write_file(path, frame.write_csv if suffix == ".csv" else frame.write_parquet)


def write_file(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Have `write(temporary)` write the file, then put it in place of `path` at once.

    The temporary file sits beside the target (same folder, so the rename cannot cross
    file systems), is flushed to disk, then renamed over `path`: a reader, a crash or a
    ``kill -9`` sees the old file or the new one, never a part. On any error the
    temporary is removed and an existing file at `path` is left as it was. Through a
    symlink the file it points to is replaced, as writing through the link would. Errors
    are a :class:`FileError` naming `path`.
    """
    path = Path(path)
    try:
        target = Path(os.path.realpath(path)) if path.is_symlink() else path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_beside(target)
        try:
            with contextlib.suppress(FileNotFoundError):  # keep the mode of the file replaced
                os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
            write(temporary)
            _flush_to_disk(temporary)
            os.replace(temporary, target)
        except BaseException:  # Ctrl-C included: never leave the temporary behind
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _flush_folder(target.parent)
    except (OSError, pl.exceptions.PolarsError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
        raise FileError(f"{path}: cannot write: {reason}") from None
    return path


def _temporary_beside(target: Path) -> Path:
    """A new empty file ``.<name>.<random>.tmp<suffix>`` in the target's folder, made with
    O_EXCL (never an existing file) and the usual permissions (0o666 less the umask)."""
    try:
        longest = os.pathconf(target.parent, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        longest = 255
    for _ in range(16):
        tail = f".{secrets.token_hex(4)}.tmp{target.suffix}"
        # A target name near the limit must still leave room for the tail.
        head = f".{target.name}".encode()[: max(1, longest - len(tail.encode()))]
        temporary = target.parent / (head.decode(errors="ignore") + tail)
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temporary
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


def _flush_to_disk(file: Path) -> None:
    descriptor = os.open(file, os.O_RDWR)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _flush_folder(folder: Path) -> None:
    """Make the rename itself durable; not every system can open a folder for that."""
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _read_returns(path: str, date: str, asset: str, value: str) -> pl.DataFrame:
    """Returns, wide or long (an `asset` and a `value` column)."""
    header = _header(path)
    if asset in header and value in header:
        return read_table(path, date=date, text=(asset,), numeric=(value,))
    return read_table(path, date=date)


def _header(path: str) -> list[str]:
    file = Path(path)
    _check_input(file)
    try:
        if file.suffix.lower() == ".csv":
            return pl.read_csv(file, n_rows=0, infer_schema=False).columns
        return list(pl.read_parquet_schema(file))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FileError(f"{file.name}: cannot read the file: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_input(file: Path) -> None:
    if file.suffix.lower() not in FORMATS:
        raise FileError(
            f"{file.name}: unsupported file type {file.suffix or '(none)'!r}; use .csv or .parquet"
        )
    try:
        mode = file.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise FileError(f"{file.name}: no such file") from None
    except OSError as exc:  # a name too long, a loop of links, no permission, ...
        raise FileError(f"{file.name}: cannot read the file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise FileError(f"{file.name}: is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise FileError(f"{file.name}: not a regular file")


# The options that name files a command reads.
INPUT_OPTIONS = ("returns", "factors", "data", "portfolio", "benchmark", "sectors", "weights")


def _check_output(args: argparse.Namespace) -> None:
    """Refuse, before any work, an `--out` the system already says it cannot use, or one
    that is an input file: by name, through a symlink or as another link to the same file
    (same device and inode), since writing it would destroy that input."""
    path = Path(args.out)
    try:
        out = path.stat()
    except FileNotFoundError:
        return  # the usual case: a new file (its missing folders are created)
    except OSError as exc:
        raise FileError(f"{path}: cannot write: {exc.strerror or exc}") from None
    if stat.S_ISDIR(out.st_mode):
        raise FileError(f"{path}: cannot write: is a directory")
    for option in INPUT_OPTIONS:
        given = getattr(args, option, None)
        if given is None:
            continue
        try:
            source = os.stat(given)
        except OSError:
            continue  # reported when the file is read
        if (source.st_dev, source.st_ino) == (out.st_dev, out.st_ino):
            raise FileError(
                f"--out {path} is the input file of --{option.replace('_', '-')} ({given}); "
                "writing it would destroy that input: choose another --out"
            )


# --- progress ------------------------------------------------------------------------


@contextmanager
def progress(label: str, *, after: float = 2.0) -> Iterator[None]:
    """Report on stderr every `after` seconds while a step runs longer than that."""
    start = time.perf_counter()
    done = threading.Event()

    def report() -> None:
        while not done.wait(after):
            print(
                f"  ... {label} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True
            )

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _finish(frame: pl.DataFrame, out: str) -> None:
    path = write_table(frame, out)
    print(f"wrote {path} ({frame.height} rows)")


def _show(frame: pl.DataFrame, rows: int = 12) -> None:
    with pl.Config(
        tbl_rows=rows,
        tbl_cols=12,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=120,
        float_precision=4,
    ):
        print(frame)


# --- commands ------------------------------------------------------------------------


def _exposures(args: argparse.Namespace) -> None:
    returns = _read_returns(args.returns, args.date, args.asset, args.value)
    factors = read_table(args.factors, date=args.date)
    with progress("rolling regressions"):
        out = fc.rolling_exposures(
            returns,
            factors,
            window=args.window,
            min_periods=args.min_periods,
            halflife=args.halflife,
            intercept=not args.no_intercept,
            tstats=args.tstats,
            date=args.date,
            asset=args.asset,
            value=args.value,
        )
    names = [c for c in factors.columns if c != args.date]
    if out.height:
        last = out.get_column("date").max()  # the output's date column is always `date`
        print(f"Exposures on {last} (cross-section over assets):")
        _show(
            out.filter(pl.col("date") == last)
            .select(names)
            .describe(percentiles=(0.5,))
            .filter(pl.col("statistic").is_in(["count", "mean", "std", "min", "50%", "max"]))
        )
    _finish(out, args.out)


def _attribution(args: argparse.Namespace) -> None:
    built = (args.returns, args.portfolio, args.benchmark, args.sectors)
    if args.data is not None:
        if any(p is not None for p in built):
            args.usage("give either --data, or --returns --portfolio --benchmark --sectors")
        header = _header(args.data)
        text = tuple(c for c in (args.sector, args.asset) if c in header)
        data = read_table(args.data, date=args.date, text=text)
        names = {"date": args.date, "sector": args.sector, "asset": args.asset}
    else:
        missing = [
            flag
            for flag, p in zip(
                ("--returns", "--portfolio", "--benchmark", "--sectors"), built, strict=True
            )
            if p is None
        ]
        if missing:
            args.usage(f"attribution needs --data, or {', '.join(missing)} as well")
        weights = {"date": args.date, "text": (args.asset,), "numeric": ("weight",)}
        with progress("building the holdings periods"):
            data = fc.holdings_periods(
                _read_returns(args.returns, args.date, args.asset, "return"),
                read_table(args.portfolio, **weights),
                read_table(args.benchmark, **weights),
                read_table(args.sectors, date=None, text=(args.asset, args.sector), numeric=()),
                every=args.every,
                date=args.date,
                asset=args.asset,
                sector=args.sector,
            )
        names = {"date": "date", "sector": "sector", "asset": "asset"}  # holdings_periods' own
    with progress("attribution"):
        effects = fc.brinson(data, method=args.method, top_down=args.top_down, **names)
        link = args.link or ("geometric" if args.method == "geometric" else "carino")
        linked = fc.link(effects, method=link, date=names["date"], sector=names["sector"])
    periods = effects.get_column(names["date"]).n_unique()
    print(f"Sector attribution ({args.method}) over {periods} periods, linked ({link}):")
    _show(linked, rows=40)
    _finish(linked if args.link else effects, args.out)


def _diversification(args: argparse.Namespace) -> None:
    returns = _read_returns(args.returns, args.date, "asset", "return")
    weights: Any = None
    if args.weights is not None:
        header = _header(args.weights)
        dated = args.date in header
        table = read_table(
            args.weights, date=args.date if dated else None, text=("asset",), numeric=("weight",)
        )
        if dated:
            weights = table
        else:
            if table.get_column("asset").is_duplicated().any():
                dup = table.filter(pl.col("asset").is_duplicated()).get_column("asset")[0]
                raise FileError(f"{Path(args.weights).name}: asset {dup!r} is listed twice")
            weights = dict(table.select("asset", "weight").iter_rows())
    with progress("diversification scores"):
        out = fc.diversification(
            returns,
            weights,
            window=args.window,
            step=args.step,
            shrinkage=args.shrinkage,
            date=args.date,
            max_iter=args.max_iter,
        )
    print(f"Diversification over {out.height} window(s), the last ones:")
    _show(out.tail(5))
    _finish(out, args.out)


def _demo(args: argparse.Namespace) -> None:
    from factorcore.demo import run

    out = Path(args.out)
    try:  # before the analytics, so that an unusable folder costs no time
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FileError(f"{out}: cannot create the folder: a file of that name exists") from None
    except OSError as exc:
        raise FileError(f"{out}: cannot create the folder: {exc.strerror or exc}") from None
    run(out, seed=args.seed, charts=not args.no_charts)


# --- the parser ----------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error (exit code 2)."""

    def error(self, message: str) -> Any:
        message = " ".join(message.split())
        self.exit(2, f"factorcore: error: {message} (see {self.prog} --help)\n")


# Counts beyond this are no row count of any file and would overflow the core's integers.
_LARGEST = sys.maxsize


def _count(text: str, *, smallest: int = 1, what: str = "a positive whole number") -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < smallest:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if value > _LARGEST:
        raise argparse.ArgumentTypeError(f"{text!r} is too large: at most {_LARGEST}")
    return value


def _seed(text: str) -> int:
    # NumPy takes seeds of any size, but not negative ones.
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _window(text: str) -> int | None:
    if text.strip().lower() == "expanding":
        return None
    return _count(text, what="a positive number of rows or 'expanding'")


def _halflife(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of rows, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="factorcore",
        description="Rolling factor exposures, sector attribution and diversification scores.",
        epilog="Example: factorcore demo --out demo-output",
    )
    parser.add_argument("--version", action="version", version=f"factorcore {fc.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str, help: str, example: str, run: Callable[[argparse.Namespace], None]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"Example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run, usage=sub.error)  # usage(message) exits with code 2
        return sub

    demo = command(
        "demo",
        "Run exposures, attribution and diversification on the built-in sample market and "
        "print a report; write the tables (Parquet) and charts (PNG).",
        "factorcore demo --out demo-output",
        _demo,
    )
    demo.add_argument(
        "--out",
        default="demo-output",
        metavar="DIR",
        help="directory for the tables and charts (default: demo-output)",
    )
    demo.add_argument(
        "--seed", type=_seed, default=0, help="seed of the sample market (default: 0)"
    )
    demo.add_argument(
        "--no-charts",
        action="store_true",
        help="write no charts (they need matplotlib: pip install 'factorcore[plot]')",
    )

    exposures = command(
        "exposures",
        "Rolling factor exposures (time-series regressions of each asset on the factors).",
        "factorcore exposures --returns returns.csv --factors factors.csv --window 252 "
        "--halflife 63 --tstats --out exposures.parquet",
        _exposures,
    )
    _returns_option(
        exposures, "asset returns: wide (date + one column per asset) or long (date, asset, return)"
    )
    exposures.add_argument(
        "--factors",
        required=True,
        metavar="FILE",
        help="factor returns, wide: date + one column per factor",
    )
    exposures.add_argument(
        "--window", required=True, type=_window, metavar="N", help="rows per window, or 'expanding'"
    )
    exposures.add_argument(
        "--min-periods",
        type=_count,
        metavar="N",
        help="fewest valid rows for a result (default: the window; with 'expanding': factors + 2)",
    )
    exposures.add_argument(
        "--halflife",
        type=_halflife,
        metavar="H",
        help="exponential weights: a row H rows older weighs half (default: equal weights)",
    )
    exposures.add_argument(
        "--no-intercept", action="store_true", help="regress without an intercept (no alpha)"
    )
    exposures.add_argument(
        "--tstats", action="store_true", help="also write t-statistics (t_alpha, t_<factor>)"
    )
    _column_options(exposures, asset=True, value=True)
    _out_option(exposures)

    attribution = command(
        "attribution",
        "Sector attribution of the active return (Brinson), per period and linked over the "
        "periods, from ready Brinson rows (--data) or daily returns and weight snapshots.",
        "factorcore attribution --returns returns.csv --portfolio portfolio.csv "
        "--benchmark benchmark.csv --sectors sectors.csv --link carino --out linked.csv",
        _attribution,
    )
    attribution.add_argument(
        "--data",
        metavar="FILE",
        help="Brinson rows: sector level (date sector wp wb rp rb) "
        "or holdings level (date asset sector wp wb ret)",
    )
    attribution.add_argument(
        "--returns", metavar="FILE", help="daily asset returns, wide or long (date, asset, return)"
    )
    attribution.add_argument(
        "--portfolio", metavar="FILE", help="portfolio weight snapshots: date, asset, weight"
    )
    attribution.add_argument(
        "--benchmark", metavar="FILE", help="benchmark weight snapshots: date, asset, weight"
    )
    attribution.add_argument(
        "--sectors", metavar="FILE", help="sector of each asset: asset, sector"
    )
    attribution.add_argument(
        "--every",
        default="1mo",
        metavar="INTERVAL",
        help="period length with --returns: 1mo, 1q, 1w, ... (default: 1mo)",
    )
    attribution.add_argument(
        "--method",
        choices=("bf", "bhb", "geometric"),
        default="bf",
        help="bf (Brinson-Fachler, default), bhb (Brinson-Hood-Beebower), geometric",
    )
    attribution.add_argument(
        "--top-down", action="store_true", help="fold the interaction into selection"
    )
    attribution.add_argument(
        "--link",
        choices=("carino", "menchero", "grap", "frongello", "geometric"),
        help="write the effects linked over all periods (one row per sector) with this "
        "method instead of the per-period table",
    )
    _column_options(attribution, asset=True, sector=True)
    _out_option(attribution)

    diversification = command(
        "diversification",
        "Correlation-aware diversification scores: diversification ratio, effective number of "
        "assets and of bets (principal components, minimum torsion), absorption ratio.",
        "factorcore diversification --returns returns.parquet --weights weights.csv "
        "--window 252 --step 21 --out scores.csv",
        _diversification,
    )
    _returns_option(
        diversification,
        "asset returns: wide (date + one column per asset) or long (date, asset, return)",
    )
    diversification.add_argument(
        "--weights",
        metavar="FILE",
        help="static weights (asset, weight) or snapshots (date, asset, weight); "
        "default: equal weights",
    )
    diversification.add_argument(
        "--window",
        type=_window,
        metavar="N",
        help="rows per window (default: one result for the whole sample)",
    )
    diversification.add_argument(
        "--step", type=_count, default=1, metavar="N", help="rows between windows (default: 1)"
    )
    diversification.add_argument(
        "--shrinkage",
        choices=("ledoit-wolf",),
        help="shrink the covariance (default: sample covariance)",
    )
    diversification.add_argument(
        "--max-iter",
        type=_count,
        default=1000,
        metavar="N",
        help="bound on the minimum-torsion iterations per window (default: 1000)",
    )
    _column_options(diversification)
    _out_option(diversification)
    return parser


def _returns_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--returns", required=True, metavar="FILE", help=help)


def _column_options(
    parser: argparse.ArgumentParser,
    *,
    asset: bool = False,
    value: bool = False,
    sector: bool = False,
) -> None:
    parser.add_argument(
        "--date", default="date", metavar="COL", help="name of the date column (default: date)"
    )
    if asset:
        parser.add_argument(
            "--asset",
            default="asset",
            metavar="COL",
            help="name of the asset column of long files (default: asset)",
        )
    if value:
        parser.add_argument(
            "--value",
            default="return",
            metavar="COL",
            help="name of the return column of long files (default: return)",
        )
    if sector:
        parser.add_argument(
            "--sector",
            default="sector",
            metavar="COL",
            help="name of the sector column (default: sector)",
        )


def _output_file(text: str) -> str:
    if Path(text).suffix.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(f"{text!r}: use a .csv or .parquet file name")
    return text


def _out_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        required=True,
        type=_output_file,
        metavar="FILE",
        help="output file, .csv or .parquet",
    )
