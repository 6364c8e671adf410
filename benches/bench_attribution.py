"""Performance benchmark for sector attribution: ``factorcore.brinson`` + ``factorcore.link``.

Usage::

    python benches/bench_attribution.py [--quick] [--out FILE.md] [--strict]
    python benches/bench_attribution.py --peers-only    # cross-check the peers, no factorcore

Full workload: holdings level, T=2520 business dates x N=3000 assets = 7.56 M rows, 11 GICS
sectors; columns ``date`` (pl.Date), ``asset`` (String, "A00042"), ``sector``, ``wp``, ``wb``,
``ret``; rows ordered by date, then asset.  ``--quick``: T=504, N=1000.  The timed call is
Brinson-Fachler followed by Carino linking per sector::

    fc.link(fc.brinson(data, method="bf"), method="carino")

It runs with ``sector`` as String, as Enum (the 11 sectors) and as Categorical (an extra,
informational row).  Seeded synthetic data: returns i.i.d. N(0, 2%); benchmark weights are
positive cap weights (log-normal caps drifting with the returns) summing to 1 per date; the
portfolio holds 10-20% of the assets (zero weight elsewhere), re-drawn every 21 dates with random
sector tilts, its weights drifting with the returns in between and summing to 1 per date.  It
holds no Utilities in the first half of the dates, so one sector has zero portfolio weight there
(pure allocation, the "take the other side's return" rule).

Targets (the Markdown report has one row each: workload | factorcore | peer | peer time | ratio |
target | pass; ``--strict`` exits 1 when a counted target fails):
  * >= 1.5x faster than the best pure-Polars implementation, sector String and Enum (the
    Categorical row is informational).  Formulations, each one lazy query and one collect:
      A  group_by(date, sector) sums -> sector returns, Rp/Rb and the BF effects with
         window expressions ``.over("date")`` -> Carino coefficients k_t with the overall k
         from a ``date.is_first_distinct()`` filter -> group_by(sector) linked sums;
      B  as A, but k_t / k on a per-date frame (group_by date) joined back on date;
      C  as B, grouping on one packed integer key date * m + physical sector code (Enum and
         Categorical only: for String the cast to codes costs more than it saves, ~2x slower);
      A' A on the in-memory engine (the default engine is the streaming one).
    All are timed and the fastest is the peer.  Tried and dropped as slower: ``wp.dot(ret)``
    aggregations instead of ``(wp * ret).sum()``, products materialised before the group_by.
  * >= 100x faster than a per-date pandas loop (``groupby("date")``; per date: groupby(sector)
    sums, BF effects; then Carino linking) timed on the first ``--pandas-dates`` dates (default
    126, quick: all) and extrapolated linearly to T; pandas gets date/sector/wp/wb/ret (no
    asset), sector as pandas "str" for String and as pandas Categorical for Enum.  The ratio
    uses factorcore's time from the Polars row of the same sector dtype.
  * peak memory of brinson + link <= 2x the input frame's ``estimated_size()``: fresh
    subprocess, data built, ``malloc_trim``, jemalloc told to return freed pages at once
    (``_RJEM_MALLOC_CONF``, Polars' allocator), RSS high-water mark reset through
    /proc/self/clear_refs (fallback: RSS sampled every 1 ms); peak extra = VmHWM after the call
    - VmRSS before it.

Every contender is run once as a warm-up whose result is checked first: factorcore's linked
allocation/selection/interaction/total per sector against each peer's (max abs diff < 1e-10),
factorcore's per-(date, sector) brinson output against the Polars sector stage, the linked
totals against the compounded excess return, and the output order.  Timing is best-of-k with
``time.perf_counter``, contenders of a row timed round-robin so that intermittent load hits
them alike, in a new (seeded random) order every round (``time_shuffled``); a section
disturbed by other processes (more than 10% of the CPU) is re-run after waiting for a quiet
machine (``--retries``).  Until ``factorcore.brinson``/``link`` work (they raise
NotImplementedError) the script falls back to ``--peers-only``: Polars formulations and pandas
checked against each other and timed (exit code 1 with ``--strict``).

The helpers for load measurement, section re-runs and the report rows come from
bench_exposures.py (same folder), so that both benchmarks measure the same way.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from bench_exposures import (
    CONTENTION_LIMIT,
    FREE_PAGES_AT_ONCE,
    Report,
    Row,
    Timing,
    _read_status,
    _RssSampler,
    environment,
    fmt_bytes,
    fmt_s,
    load_average,
    ratio_row,
    run_section,
    run_worker,
    time_group,
)
from factorcore.datasets import SECTORS as GICS_SECTORS

SEED = 20260114
ATOL = 1e-10  # max abs difference accepted between factorcore and a peer
SECTORS = GICS_SECTORS  # the 11 GICS sectors, as in the sample market
SECTOR_ENUM = pl.Enum(list(SECTORS))
EXCLUDED_SECTOR = SECTORS.index("Utilities")  # not held by the portfolio in the first half
EFFECTS = ["allocation", "selection", "interaction", "total"]
SECTOR_LEVEL = ["wp", "wb", "rp", "rb"]
DTYPES = ("String", "Enum", "Categorical")
COUNTED = ("String", "Enum")  # Categorical is reported as an informational row
REBALANCE = 21  # dates between portfolio re-draws
POLARS_TARGET = 1.5
PANDAS_TARGET = 100.0
MEMORY_TARGET = 2.0


# --------------------------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    T: int
    N: int

    @property
    def rows(self) -> int:
        return self.T * self.N

    @property
    def label(self) -> str:
        return f"T={self.T} N={self.N} S={len(SECTORS)} ({self.rows / 1e6:.2f} M rows)"


def make_holdings(T: int, N: int, *, seed: int = SEED) -> pl.DataFrame:
    """Seeded holdings-level frame ``date asset sector wp wb ret`` (sector as String).

    Rows ordered by date, then asset.  See the module docstring for the model.
    """
    rng = np.random.default_rng(seed)
    S = len(SECTORS)
    sector_of = rng.choice(S, size=N, p=rng.dirichlet(np.full(S, 8.0)))
    ret = rng.normal(0.0, 0.02, size=(T, N))
    # log growth of each asset up to the start of date t
    growth = np.empty((T, N))
    growth[0] = 0.0
    np.cumsum(np.log1p(ret[:-1]), axis=0, out=growth[1:])
    wb = np.exp(rng.normal(0.0, 1.5, size=N) + growth)
    wb /= wb.sum(axis=1, keepdims=True)
    wp = np.zeros((T, N))
    for t0 in range(0, T, REBALANCE):
        t1 = min(t0 + REBALANCE, T)
        tilt = rng.dirichlet(np.full(S, 3.0))
        if t0 < T // 2:
            tilt[EXCLUDED_SECTOR] = 0.0
        p = tilt[sector_of]
        k = int(rng.integers(N // 10, N // 5 + 1))
        held = rng.choice(N, size=min(k, int(np.count_nonzero(p))), replace=False, p=p / p.sum())
        w0 = rng.lognormal(0.0, 0.5, size=held.size)
        wp[t0:t1, held] = w0 * np.exp(growth[t0:t1, held] - growth[t0, held])
    del growth
    wp /= wp.sum(axis=1, keepdims=True)
    days = np.busday_offset("2015-01-02", np.arange(T), roll="forward")
    asset_idx = pl.Series(np.tile(np.arange(N, dtype=np.uint32), T))
    names = pl.Series("asset", [f"A{j:05d}" for j in range(N)])
    sector_names = pl.Series("sector", list(SECTORS))
    return pl.DataFrame(
        [
            pl.Series("date", np.repeat(days, N)).cast(pl.Date),
            names.gather(asset_idx),
            sector_names.gather(pl.Series(np.tile(sector_of.astype(np.uint32), T))),
            pl.Series("wp", wp.reshape(-1)),
            pl.Series("wb", wb.reshape(-1)),
            pl.Series("ret", ret.reshape(-1)),
        ]
    )


def with_sector_dtype(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """The same frame with ``sector`` as String, Enum or Categorical (other columns shared)."""
    if kind == "String":
        return df.with_columns(pl.col("sector").cast(pl.String))
    if kind == "Enum":
        return df.with_columns(pl.col("sector").cast(SECTOR_ENUM))
    if kind == "Categorical":
        return df.with_columns(pl.col("sector").cast(pl.Categorical))
    raise ValueError(kind)


def first_dates(df: pl.DataFrame, n: int) -> pl.DataFrame:
    """Rows of the first ``n`` dates."""
    last = df.get_column("date").unique().sort()[n - 1]
    return df.filter(pl.col("date") <= last)


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def time_shuffled(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    checks: dict[str, Callable[[Any], None]] | None = None,
    log: list[tuple[str, str | None, float, float]] | None = None,
) -> dict[str, Timing]:
    """Like bench_exposures.time_group (warm-up + check, then round-robin best-of-k), but each
    round runs the contenders in a new order (a seeded shuffle), so that none always runs right
    after the same other one.  On this VM a call's page-fault cost (kernel time) depends on
    what ran just before it: in development runs the first factorcore call after a Polars peer
    sometimes paid ~40 ms more than one after another factorcore call; a fixed (or merely
    rotated) order would charge such an effect to the same contender in every round.
    ``log`` receives (name, name of the run just before, seconds, kernel share) for every run."""
    checks = checks or {}
    for name, fn in fns.items():
        result = fn()
        if name in checks:
            checks[name](result)
        del result
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    rng = np.random.default_rng(SEED)
    before: str | None = None
    for _ in range(repeats):
        for i in rng.permutation(len(names)):
            name = names[i]
            gc.collect()
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            result = fns[name]()
            t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            del result
            wall = max(t1 - t0, 1e-12)
            user, kernel = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
            times[name].append(t1 - t0)
            cpu[name].append(((user + kernel) / wall, kernel / wall))
            if log is not None:
                log.append((name, before, t1 - t0, kernel / wall))
            before = name
    out = {}
    for name, ts in times.items():
        i = int(np.argmin(ts))
        out[name] = Timing(ts[i], ts, *cpu[name][i])
    return out


# --------------------------------------------------------------------------------------------
# factorcore
# --------------------------------------------------------------------------------------------


@dataclass
class FcApi:
    module: Any
    brinson: Callable[..., pl.DataFrame]
    link: Callable[..., pl.DataFrame]

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        return self.link(self.brinson(df, method="bf"), method="carino")


def load_factorcore() -> tuple[FcApi | None, str]:
    """factorcore's brinson/link, or None and why not (not importable, not implemented)."""
    try:
        import factorcore as fc
    except ImportError as exc:
        return None, f"factorcore not importable: {exc}"
    brinson = getattr(fc, "brinson", None)
    link = getattr(fc, "link", None)
    if brinson is None or link is None:
        try:
            from factorcore import attribution
        except ImportError as exc:
            return None, f"factorcore.attribution not importable: {exc}"
        brinson, link = attribution.brinson, attribution.link
    api = FcApi(fc, brinson, link)
    probe = make_holdings(3, 40, seed=1)
    try:
        api.run(probe)
    except NotImplementedError:
        return None, "factorcore.brinson/link raise NotImplementedError"
    return api, "factorcore.brinson/link available"


# --------------------------------------------------------------------------------------------
# Polars peers
# --------------------------------------------------------------------------------------------

SUMS = {
    "wp": pl.col("wp").sum(),
    "wb": pl.col("wb").sum(),
    "cp": (pl.col("wp") * pl.col("ret")).sum(),
    "cb": (pl.col("wb") * pl.col("ret")).sum(),
}


def carino_k(rp: pl.Expr, rb: pl.Expr) -> pl.Expr:
    """ln((1+Rp)/(1+Rb)) / (Rp - Rb), and its limit 1/(1+Rp) when Rp == Rb."""
    d = rp - rb
    return pl.when(d != 0).then(((1 + rp).log() - (1 + rb).log()) / d).otherwise(1 / (1 + rp))


def bf_effects(sums: pl.LazyFrame, by: str) -> pl.LazyFrame:
    """Sector returns, Rp/Rb per date (``.over(by)``) and Brinson-Fachler effects.

    ``sums`` has one row per (date, sector): wp, wb, cp = sum wp*ret, cb = sum wb*ret.  A side
    with zero sector weight takes the other side's sector return; zero weight on both sides
    gives null returns and zero effects (the factorcore contract).
    """
    wp, wb, cp, cb = (pl.col(x) for x in ("wp", "wb", "cp", "cb"))
    rp_own, rb_own = cp / wp, cb / wb
    lf = sums.with_columns(
        rp=pl.when(wp != 0).then(rp_own).when(wb != 0).then(rb_own),
        rb=pl.when(wb != 0).then(rb_own).when(wp != 0).then(rp_own),
        Rp=cp.sum().over(by),
        Rb=cb.sum().over(by),
    )
    active, rp, rb = wp - wb, pl.col("rp"), pl.col("rb")
    lf = lf.with_columns(
        allocation=(active * (rb - pl.col("Rb"))).fill_null(0.0),
        selection=(wb * (rp - rb)).fill_null(0.0),
        interaction=(active * (rp - rb)).fill_null(0.0),
    )
    return lf.with_columns(total=pl.col("allocation") + pl.col("selection") + pl.col("interaction"))


def link_over(eff: pl.LazyFrame, by: str, sector: str) -> pl.LazyFrame:
    """Carino: k_t from the per-row Rp/Rb, k from one row per date (is_first_distinct)."""
    first = pl.col(by).is_first_distinct()
    rp_all = (1 + pl.col("Rp").filter(first)).product() - 1
    rb_all = (1 + pl.col("Rb").filter(first)).product() - 1
    eff = eff.with_columns(kt=carino_k(pl.col("Rp"), pl.col("Rb")) / carino_k(rp_all, rb_all))
    return eff.group_by(sector, maintain_order=True).agg(
        [(pl.col(x) * pl.col("kt")).sum() for x in EFFECTS]
    )


def link_join(eff: pl.LazyFrame, by: str, sector: str) -> pl.LazyFrame:
    """Carino: k_t / k on a per-date frame, joined back on the date."""
    per = eff.group_by(by).agg(pl.col("Rp").first(), pl.col("Rb").first())
    rp_all = (1 + pl.col("Rp")).product() - 1
    rb_all = (1 + pl.col("Rb")).product() - 1
    per = per.select(by, kt=carino_k(pl.col("Rp"), pl.col("Rb")) / carino_k(rp_all, rb_all))
    return (
        eff.join(per, on=by)
        .group_by(sector, maintain_order=True)
        .agg([(pl.col(x) * pl.col("kt")).sum() for x in EFFECTS])
    )


def polars_sector_stage(df: pl.DataFrame) -> pl.LazyFrame:
    """Per-(date, sector) BF effects (group_by on two keys); also the check for brinson()."""
    return bf_effects(df.lazy().group_by("date", "sector").agg(**SUMS), "date")


def polars_a(df: pl.DataFrame) -> pl.DataFrame:
    return link_over(polars_sector_stage(df), "date", "sector").collect()


def polars_a_in_memory(df: pl.DataFrame) -> pl.DataFrame:
    return link_over(polars_sector_stage(df), "date", "sector").collect(engine="in-memory")


def polars_b(df: pl.DataFrame) -> pl.DataFrame:
    return link_join(polars_sector_stage(df), "date", "sector").collect()


def polars_c(df: pl.DataFrame) -> pl.DataFrame:
    """Group on one packed integer key date * m + physical sector code (Enum/Categorical).

    For an Enum m is its number of categories (static, Int32 key); a Categorical's codes are
    global, so m = max code + 1 (Int64 key) and the date is aggregated back with ``first``.
    """
    dtype = df.schema["sector"]
    code = pl.col("sector").to_physical()
    if isinstance(dtype, pl.Enum):
        m = len(dtype.categories)
        key = pl.col("date").to_physical() * m + code.cast(pl.Int32)
        sums = df.lazy().group_by(key.alias("key")).agg(**SUMS, sector=pl.col("sector").first())
        sums = sums.with_columns(d=pl.col("key") // m)
    else:
        key = pl.col("date").to_physical().cast(pl.Int64) * (code.max().cast(pl.Int64) + 1)
        key = key + code.cast(pl.Int64)
        sums = (
            df.lazy()
            .group_by(key.alias("key"))
            .agg(**SUMS, sector=pl.col("sector").first(), d=pl.col("date").first())
        )
    return link_join(bf_effects(sums, "d"), "d", "sector").collect()


POLARS_PEERS: dict[str, tuple[str, Callable[[pl.DataFrame], pl.DataFrame], tuple[str, ...]]] = {
    "A": ("group_by(date,sector) + over(date) + is_first_distinct k", polars_a, DTYPES),
    "B": ("group_by(date,sector) + over(date) + per-date k joined", polars_b, DTYPES),
    "C": ("packed key date*m+code + per-date k joined", polars_c, ("Enum", "Categorical")),
    "A'": ("A on the in-memory engine", polars_a_in_memory, DTYPES),
}


# --------------------------------------------------------------------------------------------
# pandas peer
# --------------------------------------------------------------------------------------------


def to_pandas_frame(df: pl.DataFrame) -> pd.DataFrame:
    """date/sector/wp/wb/ret as pandas (no pyarrow needed); Enum/Categorical -> Categorical."""
    cols: dict[str, Any] = {k: df.get_column(k).to_numpy() for k in ("date", "wp", "wb", "ret")}
    s = df.get_column("sector")
    if s.dtype == pl.String:
        cols["sector"] = pd.array(s.to_numpy(), dtype="str")
    else:
        cats = s.dtype.categories.to_list() if isinstance(s.dtype, pl.Enum) else None
        cats = cats or s.unique().cast(pl.String).sort().to_list()
        codes = s.cast(pl.String).cast(pl.Enum(cats)).to_physical().to_numpy().astype(np.int64)
        cols["sector"] = pd.Categorical.from_codes(codes, cats)
    return pd.DataFrame(cols)


def _carino_np(rp: Any, rb: Any) -> np.ndarray:
    rp, rb = np.asarray(rp, dtype=np.float64), np.asarray(rb, dtype=np.float64)
    d = rp - rb
    safe = np.where(d != 0, d, 1.0)
    return np.where(d != 0, (np.log1p(rp) - np.log1p(rb)) / safe, 1 / (1 + rp))


def pandas_loop(pdf: pd.DataFrame) -> pd.DataFrame:
    """Per-date loop: groupby(sector) sums and BF effects per date, then Carino linking."""
    parts = []
    for day, g in pdf.groupby("date", sort=True):
        s = (
            g.assign(cp=g["wp"] * g["ret"], cb=g["wb"] * g["ret"])
            .groupby("sector", observed=True, sort=True)[["wp", "wb", "cp", "cb"]]
            .sum()
        )
        wp, wb = s["wp"], s["wb"]
        rp_own, rb_own = s["cp"] / wp.where(wp != 0), s["cb"] / wb.where(wb != 0)
        rp, rb = rp_own.fillna(rb_own), rb_own.fillna(rp_own)
        eff = pd.DataFrame(
            {
                "allocation": (wp - wb) * (rb - s["cb"].sum()),
                "selection": wb * (rp - rb),
                "interaction": (wp - wb) * (rp - rb),
            }
        ).fillna(0.0)
        eff["total"] = eff.sum(axis=1)
        eff["Rp"], eff["Rb"], eff["date"] = s["cp"].sum(), s["cb"].sum(), day
        parts.append(eff)
    eff = pd.concat(parts)
    per = eff.groupby("date")[["Rp", "Rb"]].first()
    k_all = _carino_np((1 + per["Rp"]).prod() - 1, (1 + per["Rb"]).prod() - 1)
    kt = pd.Series(_carino_np(per["Rp"], per["Rb"]) / k_all, index=per.index)
    linked = eff[EFFECTS].mul(eff["date"].map(kt), axis=0)
    return linked.groupby(level=0, observed=True, sort=False).sum()


def pandas_to_polars(out: pd.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(
        {"sector": [str(s) for s in out.index], **{x: out[x].to_numpy() for x in EFFECTS}}
    )


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def linked_diff(got: pl.DataFrame, ref: pl.DataFrame) -> tuple[float, str]:
    """Max abs difference of the linked effects, matched by sector name; inf if sets differ."""
    missing = [x for x in ["sector", *EFFECTS] if x not in got.columns]
    if missing:
        return float("inf"), f"; missing columns {missing}"
    a = got.with_columns(pl.col("sector").cast(pl.String))
    b = ref.with_columns(pl.col("sector").cast(pl.String))
    if a.height != b.height or set(a["sector"]) != set(b["sector"]):
        return float("inf"), f"; sectors {sorted(a['sector'])} vs {sorted(b['sector'])}"
    j = a.join(b, on="sector", suffix="_ref")
    diffs = [(j[x] - j[f"{x}_ref"]).abs().max() for x in EFFECTS]
    return float(max(diffs)), ""


def effects_diff(got: pl.DataFrame, ref: pl.DataFrame) -> tuple[float, str]:
    """Per-(date, sector) wp wb rp rb and effects; nulls must coincide."""
    cols = [*SECTOR_LEVEL, *EFFECTS]
    missing = [x for x in ["date", "sector", *cols] if x not in got.columns]
    if missing:
        return float("inf"), f"; missing columns {missing}"
    a = got.with_columns(pl.col("sector").cast(pl.String))
    b = ref.with_columns(pl.col("sector").cast(pl.String))
    if a.height != b.height:
        return float("inf"), f"; {a.height} rows vs {b.height}"
    j = a.join(b, on=["date", "sector"], suffix="_ref")
    if j.height != a.height:
        return float("inf"), f"; only {j.height} of {a.height} (date, sector) rows match"
    worst = 0.0
    for x in cols:
        if (j[x].is_null() != j[f"{x}_ref"].is_null()).any():
            return float("inf"), f"; null pattern of {x} differs"
        d = (j[x] - j[f"{x}_ref"]).abs().max()
        worst = max(worst, float(d) if d is not None else 0.0)
    return worst, ""


def compounded_excess(effects: pl.DataFrame) -> float:
    """prod(1 + Rp_t) - prod(1 + Rb_t) with Rp_t = sum wp*rp, Rb_t = sum wb*rb."""
    per = effects.group_by("date").agg(
        Rp=(pl.col("wp") * pl.col("rp")).fill_null(0.0).sum(),
        Rb=(pl.col("wb") * pl.col("rb")).fill_null(0.0).sum(),
    )
    return float((1 + per["Rp"]).product() - (1 + per["Rb"]).product())


def is_date_sector_sorted(effects: pl.DataFrame) -> bool:
    """Sorted by date, then sector in Polars' own order for the dtype (Enum: category order;
    String and, in Polars 2, Categorical: lexical)."""
    keys = effects.select("date", "sector")
    return keys.equals(keys.sort("date", "sector", maintain_order=True))


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass
class Ctx:
    fc: FcApi
    wl: Workload
    frames: dict[str, pl.DataFrame]
    report: Report
    reps: int = 5
    pandas_dates: int = 126
    t_fc: dict[str, Timing] = field(default_factory=dict)


def check_factorcore(c: Ctx, kind: str, df: pl.DataFrame, linked: pl.DataFrame) -> bool:
    """brinson output vs the Polars sector stage, order, and linked totals vs compounded excess."""
    rep = c.report
    eff = c.fc.brinson(df, method="bf")
    ref_eff = polars_sector_stage(df).collect()
    diff, extra = effects_diff(eff, ref_eff)
    ok = rep.check(
        f"[{kind}] brinson per (date, sector) vs Polars sector stage",
        diff,
        ATOL,
        f"{extra}; {eff.height} rows, columns {eff.columns}",
    )
    ok &= rep.check(
        f"[{kind}] brinson rows sorted by date, then sector",
        0.0 if is_date_sector_sorted(eff) else float("inf"),
        ATOL,
        f"; sector dtype out {eff.schema.get('sector')}",
    )
    excess = compounded_excess(eff)
    total = float(linked["total"].sum()) if "total" in linked.columns else float("nan")
    ok &= rep.check(
        f"[{kind}] sum of linked totals vs compounded Rp - Rb",
        abs(total - excess),
        ATOL,
        f" ({total:.6g} vs {excess:.6g})",
    )
    return ok


def section_polars(c: Ctx, kind: str) -> None:
    df = c.frames[kind]
    peers = {k: v for k, v in POLARS_PEERS.items() if kind in v[2]}
    ok: dict[str, bool] = {}
    ref: dict[str, pl.DataFrame] = {}

    def check_fc(out: pl.DataFrame) -> None:
        ref["fc"] = out
        c.report.note(f"[{kind}] factorcore link output: {out.shape}, columns {out.columns}")
        ok["factorcore"] = check_factorcore(c, kind, df, out)

    def checker(name: str) -> Callable[[pl.DataFrame], None]:
        def check(out: pl.DataFrame) -> None:
            diff, extra = linked_diff(out, ref["fc"])
            ok[name] = c.report.check(
                f"[{kind}] Polars {name} vs factorcore linked effects", diff, ATOL, extra
            )

        return check

    fns: dict[str, Callable[[], Any]] = {"factorcore": lambda: c.fc.run(df)}
    fns["factorcore brinson only"] = lambda: c.fc.brinson(df, method="bf")
    effects = c.fc.brinson(df, method="bf")
    fns["factorcore link only"] = lambda: c.fc.link(effects, method="carino")
    fns.update({name: (lambda fn=fn: fn(df)) for name, (_, fn, _) in peers.items()})
    checks = {"factorcore": check_fc, **{name: checker(name) for name in peers}}
    log: list[tuple[str, str | None, float, float]] = []
    t = time_shuffled(fns, c.reps, checks, log)
    c.t_fc[kind] = t["factorcore"]
    c.report.note(f"[{kind}] factorcore brinson+link: {t['factorcore'].describe()}")
    for part in ("brinson", "link"):
        c.report.note(f"[{kind}] factorcore {part} only: {t[f'factorcore {part} only'].describe()}")
    for name, (label, _, _) in peers.items():
        c.report.note(f"[{kind}] Polars {name} ({label}): {t[name].describe()}")
    after: dict[str, list[tuple[float, float]]] = {"a Polars peer": [], "a factorcore call": []}
    for name, prev, secs, kernel in log:
        if name == "factorcore" and prev is not None:
            after["a Polars peer" if prev in peers else "a factorcore call"].append((secs, kernel))
    c.report.note(
        f"[{kind}] factorcore brinson+link by what ran just before it: "
        + "; ".join(
            f"after {k}: best {fmt_s(min(v)[0])} (kernel {min(v)[1]:.0%} of wall, {len(v)} runs)"
            for k, v in after.items()
            if v
        )
    )
    best = min(peers, key=lambda name: t[name].best)
    c.report.rows.append(
        ratio_row(
            f"brinson(bf) + link(carino), sector {kind}, {c.wl.label}",
            t["factorcore"].best,
            f"best Polars of {len(peers)}: {best} ({peers[best][0]})",
            t[best].best,
            speedup_target=POLARS_TARGET,
            checked=ok.get("factorcore", False) and all(ok.get(n, False) for n in peers),
            info=kind not in COUNTED,
        )
    )


def section_polars_string(c: Ctx) -> None:
    section_polars(c, "String")


def section_polars_enum(c: Ctx) -> None:
    section_polars(c, "Enum")


def section_polars_categorical(c: Ctx) -> None:
    section_polars(c, "Categorical")


def section_pandas(c: Ctx) -> None:
    n = min(c.pandas_dates, c.wl.T) if c.pandas_dates > 0 else c.wl.T
    ok: dict[str, bool] = {}
    for kind in COUNTED:
        sub = first_dates(c.frames[kind], n)
        pdf = to_pandas_frame(sub)
        want = c.fc.run(sub)

        def check(out: pd.DataFrame, kind: str = kind, want: pl.DataFrame = want) -> None:
            diff, extra = linked_diff(pandas_to_polars(out), want)
            ok[kind] = c.report.check(
                f"[{kind}] pandas loop vs factorcore linked effects ({n} dates)", diff, ATOL, extra
            )

        t = time_group({"pandas": lambda pdf=pdf: pandas_loop(pdf)}, 2, {"pandas": check})
        scale = c.wl.T / n
        extrapolated = t["pandas"].best * scale
        c.report.note(
            f"[{kind}] pandas {pd.__version__} loop on {n} dates (sector {pdf['sector'].dtype}): "
            f"{t['pandas'].describe()}; {t['pandas'].best / n * 1e3:.2f} ms per date "
            f"-> {fmt_s(extrapolated)} for T={c.wl.T}"
        )
        fc_t = c.t_fc.get(kind)
        if fc_t is None:
            fc_t = time_group({"fc": lambda kind=kind: c.fc.run(c.frames[kind])}, c.reps)["fc"]
        peer = "pandas per-date groupby loop"
        if n < c.wl.T:
            peer += f" ({n} dates, x{scale:.4g} extrap.)"
        c.report.rows.append(
            ratio_row(
                f"brinson(bf) + link(carino), sector {kind}, {c.wl.label}",
                fc_t.best,
                peer,
                extrapolated,
                speedup_target=PANDAS_TARGET,
                checked=ok.get(kind, False),
            )
        )


def section_memory(c: Ctx) -> None:
    for kind in COUNTED:
        params = {"T": c.wl.T, "N": c.wl.N, "kind": kind}
        m = run_worker("mem", params, env=FREE_PAGES_AT_ONCE, script=__file__)
        extra = m["peak"] - m["rss_before"]
        ratio = extra / m["input_bytes"]
        c.report.note(
            f"[{kind}] memory ({m['method']}, fresh subprocess): RSS before data "
            f"{fmt_bytes(m['rss_start'])}, before call {fmt_bytes(m['rss_before'])} (building "
            f"the frame added {fmt_bytes(m['rss_before'] - m['rss_start'])} resident, "
            f"estimated_size {fmt_bytes(m['input_bytes'])}), peak {fmt_bytes(m['peak'])}, after "
            f"{fmt_bytes(m['rss_after'])}; peak extra {fmt_bytes(extra)} = {ratio:.2f}x input; "
            f"brinson output {fmt_bytes(m['effects_bytes'])}; call took {fmt_s(m['seconds'])}"
        )
        c.report.rows.append(
            Row(
                f"peak memory brinson + link, sector {kind}, {c.wl.label}",
                f"peak +{fmt_bytes(extra)}",
                "input df.estimated_size()",
                fmt_bytes(m["input_bytes"]),
                f"{ratio:.2f}x",
                f"peak extra <= {MEMORY_TARGET:g}x input",
                ratio <= MEMORY_TARGET,
            )
        )


# --------------------------------------------------------------------------------------------
# Subprocess worker (peak memory)
# --------------------------------------------------------------------------------------------


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _worker_mem(params: dict) -> None:
    fc, why = load_factorcore()
    if fc is None:
        raise RuntimeError(why)
    gc.collect()
    _malloc_trim()
    start = _read_status()
    df = with_sector_dtype(make_holdings(params["T"], params["N"]), params["kind"])
    gc.collect()
    _malloc_trim()
    method = "VmHWM after clear_refs"
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the RSS high-water mark
        sampler = None
    except OSError:
        method = "RSS sampled every 1 ms"
        sampler = _RssSampler()
        sampler.start()
    before = _read_status()
    t0 = time.perf_counter()
    eff = fc.brinson(df, method="bf")
    linked = fc.link(eff, method="carino")
    elapsed = time.perf_counter() - t0
    after = _read_status()
    peak = after["VmHWM"] if sampler is None else max(sampler.stop(), after["VmRSS"])
    print(
        json.dumps(
            {
                "method": method,
                "rss_start": start["VmRSS"],
                "rss_before": before["VmRSS"],
                "peak": peak,
                "rss_after": after["VmRSS"],
                "input_bytes": df.estimated_size(),
                "effects_bytes": eff.estimated_size(),
                "linked_rows": linked.height,
                "seconds": elapsed,
            }
        )
    )


WORKERS: dict[str, Callable[[dict], None]] = {"mem": _worker_mem}


# --------------------------------------------------------------------------------------------
# Peers only (while factorcore is not implemented)
# --------------------------------------------------------------------------------------------


def run_peers_only(wl: Workload, reps: int, pandas_dates: int) -> int:
    """Polars formulations and pandas checked against Polars A and timed; no factorcore."""
    rep = Report()
    base = make_holdings(wl.T, wl.N)
    print(f"peers only, {wl.label}; {load_average()}", flush=True)
    for kind in DTYPES:
        df = with_sector_dtype(base, kind)
        ref = polars_a(df)
        eff = polars_sector_stage(df).collect()
        rep.check(
            f"[{kind}] Polars A: sum of linked totals vs compounded Rp - Rb",
            abs(float(ref["total"].sum()) - compounded_excess(eff)),
            ATOL,
        )
        day_sum = eff.group_by("date").agg(
            (pl.col("total").sum() - (pl.col("cp").sum() - pl.col("cb").sum())).abs().alias("d")
        )
        rep.check(
            f"[{kind}] Polars stage: effects sum to Rp - Rb per date", day_sum["d"].max(), ATOL
        )
        peers = {k: v for k, v in POLARS_PEERS.items() if kind in v[2]}

        def checker(name: str, kind: str = kind, ref: pl.DataFrame = ref) -> Callable:
            def check(out: pl.DataFrame) -> None:
                diff, extra = linked_diff(out, ref)
                rep.check(f"[{kind}] Polars {name} vs Polars A", diff, ATOL, extra)

            return check

        fns = {name: (lambda fn=fn, df=df: fn(df)) for name, (_, fn, _) in peers.items()}
        t = time_shuffled(fns, reps, {name: checker(name) for name in peers})
        for name, (label, _, _) in peers.items():
            rep.note(f"[{kind}] Polars {name} ({label}): {t[name].describe()}")
        if kind in COUNTED:
            n = min(pandas_dates, wl.T) if pandas_dates > 0 else wl.T
            sub = first_dates(df, n)
            sub_ref = polars_a(sub)
            pdf = to_pandas_frame(sub)
            t0 = time.perf_counter()
            pd_out = pandas_loop(pdf)
            dt = time.perf_counter() - t0
            diff, extra = linked_diff(pandas_to_polars(pd_out), sub_ref)
            rep.check(f"[{kind}] pandas loop vs Polars A ({n} dates)", diff, ATOL, extra)
            rep.note(
                f"[{kind}] pandas loop: {fmt_s(dt)} for {n} dates -> "
                f"{fmt_s(dt * wl.T / n)} extrapolated to T={wl.T}"
            )
    print("\n".join(environment(None)))
    return 1 if rep.check_failed else 0


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def render(report: Report, title: str, env: list[str], elapsed: float) -> str:
    lines = [
        f"# {title}",
        "",
        *(f"- {e}" for e in env),
        f"- total bench time {elapsed:.0f} s; at end: {load_average()} (other load skews timings)",
        "",
    ]
    if report.contention:
        worst = max(report.contention.values())
        shares = ", ".join(f"{k} {v:.0%}" for k, v in report.contention.items())
        flag = "**WARNING: timings disturbed by other load** " if worst > CONTENTION_LIMIT else ""
        lines += [f"{flag}CPU used by other processes during each section: {shares}", ""]
    lines += [
        "| workload | factorcore | peer | peer time | ratio | target | pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        cells = [r.workload, r.fc_time, r.peer, r.peer_time, r.ratio, r.target, r.verdict]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Speed rows: ratio = peer time / factorcore time (best of k each, timed round-robin); "
        "the Polars peer is the fastest of the formulations listed in Details. Memory rows: "
        "ratio = peak RSS growth during brinson + link / input frame's estimated_size(). Rows "
        "marked 'info' are not counted by --strict; a row whose correctness check failed is FAIL.",
        "",
        "## Checks",
        "",
        *(f"- {c}" for c in report.checks),
        "",
        "## Details",
        "",
        *(d if d.startswith("|") or not d else f"- {d}" for d in report.details),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="T=504, N=1000 (smoke run)")
    ap.add_argument("--out", type=Path, help="also write the Markdown report here")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any counted target fails")
    ap.add_argument("--peers-only", action="store_true", help="cross-check peers, no factorcore")
    ap.add_argument("--repeats", type=int, default=5, help="best-of-k for the fast contenders (5)")
    ap.add_argument(
        "--pandas-dates",
        type=int,
        help="dates the pandas loop runs on, extrapolated to T (default 126; quick: all; 0 = all)",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=2,
        help="re-run a section (after waiting for a quiet machine) when other processes used\n"
        f"more than {CONTENTION_LIMIT * 100:.0f}%% of the CPU during it (default 2; 0 disables)",
    )
    ap.add_argument("--T", type=int, help="override the number of dates")
    ap.add_argument("--N", type=int, help="override the number of assets")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_params", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker:
        WORKERS[args._worker](json.loads(args._params))
        return 0
    wl = Workload(T=504, N=1000) if args.quick else Workload(T=2520, N=3000)
    wl = Workload(T=args.T or wl.T, N=args.N or wl.N)
    pandas_dates = args.pandas_dates
    if pandas_dates is None:
        pandas_dates = 0 if args.quick else 126
    if args.peers_only:
        return run_peers_only(wl, args.repeats, pandas_dates)
    fc, why = load_factorcore()
    if fc is None:
        print(f"{why}: running --peers-only instead", flush=True)
        rc = run_peers_only(wl, args.repeats, pandas_dates)
        return 1 if args.strict else rc

    start = time.perf_counter()
    env = environment(fc.module)
    print("\n".join(env), flush=True)
    base = make_holdings(wl.T, wl.N)
    frames = {kind: with_sector_dtype(base, kind) for kind in DTYPES}
    ctx = Ctx(fc, wl, frames, Report(), args.repeats, pandas_dates)
    ctx.report.note(
        f"input frame: {base.shape}, schema {dict(base.schema)}, estimated_size "
        + ", ".join(f"{k} {fmt_bytes(f.estimated_size())}" for k, f in frames.items())
    )
    held = base.group_by("date").agg((pl.col("wp") > 0).mean().alias("h"))["h"]
    ctx.report.note(
        f"portfolio holds {held.min():.1%}-{held.max():.1%} of the assets per date; "
        f"no {SECTORS[EXCLUDED_SECTOR]} in the first {wl.T // 2} dates"
    )
    sections = [
        section_polars_string,
        section_polars_enum,
        section_polars_categorical,
        section_pandas,
        section_memory,
    ]
    budget = 120.0 if args.quick else 600.0  # stop re-running contended sections after this
    for section in sections:
        run_section(ctx, section, args.retries, deadline=start + budget)
    title = f"factorcore sector attribution benchmark ({'quick' if args.quick else 'full'}: "
    title += f"{wl.label})"
    text = render(ctx.report, title, env, time.perf_counter() - start)
    print(text)
    if args.out:
        args.out.write_text(text)
    failed = any(r.passed is False or (r.passed and not r.checked) for r in ctx.report.rows)
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
