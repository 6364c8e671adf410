"""Performance benchmark for ``factorcore.diversification`` (rolling diversification measures).

Usage::

    python benches/bench_diversification.py [--quick] [--out FILE.md] [--strict]
    python benches/bench_diversification.py --peers-only   # cross-check the peers, no factorcore

Data: seeded synthetic returns from a 5-factor model plus noise (``make_returns`` of
bench_exposures.py: factor vol 0.4%, betas ~ N(0.5, 0.5), idiosyncratic vol 0.8%), as a wide
Polars frame ``date`` + one Float64 column per asset, no missing values, equal weights
(``weights=None``).  Two workloads, each with one counted target (``--quick`` sizes in brackets):

  * "all measures": T=2520 rows, N=250 assets, window 504, step 21 -> 97 windows [T=756, N=100,
    window 252 -> 25 windows].  Timed call ``fc.diversification(df, window=504, step=21)``.
    Peer: a plain NumPy loop over the windows; per window ``np.cov``, ``np.linalg.eigh`` of the
    covariance (PCA bets), ``np.linalg.eigvalsh`` of the correlation (absorption ratio,
    and positive definiteness for the torsion), average correlation, DR, effective_n, and the
    minimum-torsion ENB by the published exact algorithm (Meucci, Santangelo & Deguest 2013; R
    uncorbets ``torsion(sigma, "minimum-torsion", "exact")``) with matrix square roots by
    ``eigh``::

        c = sqrtm(C); d = 1
        loop: U = diag(d) c c diag(d); u = sqrtm(U); q = solve(u, diag(d) c); d = diag(q c)
              pi = diag(d) q; f_i = ||c - pi||_F
        t = diag(sigma) pi c^-1 diag(1/sigma)
        p = solve(t', w) * (t S w) / (w' S w); enb_mt = exp(-sum p ln p)

    (``c c`` is computed once, outside the loop; diag(d) products by broadcasting) in two
    variants: "published" stops when |f_i - f_{i-1}| / f_i / n <= 1e-8 (the published rule);
    "converged" iterates until max|change in d| <= 1e-12 (factorcore iterates to convergence).
    Target: factorcore >= 10x faster than the published-rule peer; the ratio against the
    converged peer is informational.  Each peer runs on all windows when that is estimated (from
    3 probe windows) to take at most ``--peer-budget`` seconds (20), otherwise on an evenly
    spaced sample of windows costing about half that budget, extrapolated linearly to all
    windows (the report says which).  Informational row: the full-sample call
    (``window=None``) at the same size against the converged peer on the whole sample.
  * "N=3000, no enb_mt": T=2520, N=3000, window 252, step 21 -> 109 windows [N=600, window 126
    -> 31 windows].  factorcore computes every column (enb_mt is NaN because W <= N, checked).
    Peer: per window ``np.cov`` and ``np.linalg.eigh`` of the N x N covariance (DR, effective_n,
    enb_pca), ``np.linalg.eigvalsh`` of the N x N correlation (absorption ratio, average
    correlation).  Seconds per window, so it runs on ``--wide-windows`` (3) evenly spaced windows
    (a warm-up run that is the check, then ``--wide-repeats`` (1) timed runs) and is
    extrapolated to all of them.  Target: >= 10x.

Peer times measured on the 2-core development VM (NumPy 2.4 with OpenBLAS 0.3.31, 2 threads),
quiet machine: published rule ~65-80 ms per window, 4 iterations in every window (the test
divides by n, so it stops early: enb_mt ~1e-4 relative off the converged value, ~0.02 of ~216);
converged ~235 ms per window, 17-19 iterations (~23 s for 97 windows, so it sits at the
``--peer-budget`` boundary); N=3000 ~5.5-6 s per window (cov 0.16 s, eigh 3.4 s, eigvalsh 2 s),
~10 min extrapolated to 109 windows.  Under load OpenBLAS's 2 threads slow down several-fold.

Checks before any timing (the warm-up run of every contender is its check): factorcore's output
layout (columns, one row per window, window-end dates, n_assets = N, excluded_weight = 0), then
every measure of each peer against factorcore's row for the same window, relative difference:
all columns except enb_mt < 1e-9 for both torsion peers and enb_mt < 1e-9 for the converged
peer (for the published-rule peer, which stops early, the largest enb_mt difference is printed,
not asserted); N=3000: DR, effective_n, enb_pca, absorption_ratio, avg_correlation < 1e-8 and
enb_mt NaN everywhere.

Timing is best-of-k with ``time.perf_counter``; factorcore and the peers of a workload are timed
round-robin (``time_group`` of bench_exposures.py) so that intermittent load hits them alike,
factorcore several times per round (it is much faster) so that it gets about ``--repeats`` (5)
runs while each peer gets ``--peer-repeats`` (2) after its warm-up.  A section disturbed by
other processes (more than 10% of the CPU) is re-run after waiting for a quiet machine
(``--retries``).  Peak memory of a diversification call (info rows): fresh subprocess, data
built, RSS high-water mark reset through /proc/self/clear_refs (fallback: RSS sampled every
1 ms); peak extra = VmHWM after the call - VmRSS before it.  The report has one row per target
(workload | factorcore | peer | peer time | ratio | target | pass); ``--strict`` exits 1 when a
counted target fails.  Until ``factorcore.diversification`` exists (and does not raise
NotImplementedError) the script falls back to ``--peers-only``: the peers cross-checked against
each other, against skfolio (DR, effective number of assets), against known invariants and the
N=3000 PCA bets against the W x W (dual) formulation, and their per-window times printed (exit
code 1 with ``--strict``).

The helpers for timing, load measurement, section re-runs and the report rows come from
bench_exposures.py (same folder), so that all benchmarks measure the same way.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import math
import sys
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from bench_exposures import (
    CONTENTION_LIMIT,
    FREE_PAGES_AT_ONCE,
    ForeignCpu,
    Report,
    Row,
    Timing,
    _dist_version,
    _read_status,
    _RssSampler,
    asset_names,
    dates,
    environment,
    fmt_bytes,
    fmt_s,
    load_average,
    make_returns,
    ratio_row,
    run_section,
    run_worker,
    time_group,
)

SEED = 20260301
K_FACTORS = 5
STEP = 21
COLUMNS = [
    "diversification_ratio",
    "effective_n",
    "enb_pca",
    "enb_mt",
    "absorption_ratio",
    "avg_correlation",
]
LAYOUT = ["date", "n_assets", "excluded_weight", *COLUMNS]
NO_MT = [col for col in COLUMNS if col != "enb_mt"]
RTOL_ALL = 1e-9  # relative difference accepted between factorcore and the N=250 peers
RTOL_WIDE = 1e-8  # ... and the N=3000 peer
SPEEDUP_TARGET = 10.0
PUBLISHED_TOL = 1e-8  # published stopping rule: |f_i - f_{i-1}| / f_i / n <= this
CONVERGED_TOL = 1e-12  # converged peer: max |change in d| <= this
MAX_ITER = 10_000
PD_RTOL = 1e-10  # C positive definite: smallest eigenvalue > this x largest (as factorcore)
RULES = {
    "published": "published stopping rule (abs(f_i - f_i-1) / f_i / n <= 1e-8)",
    "converged": "converged (max abs change in d <= 1e-12)",
}


# --------------------------------------------------------------------------------------------
# Workloads and data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    T: int
    N: int
    window: int
    step: int = STEP

    @property
    def ends(self) -> np.ndarray:
        """Row index of each window's last row."""
        return np.arange(self.window - 1, self.T, self.step)

    @property
    def label(self) -> str:
        return f"T={self.T} N={self.N} W={self.window} step={self.step} ({len(self.ends)} windows)"


def workloads(quick: bool) -> tuple[Workload, Workload]:
    """("all measures" N=250, "no enb_mt" N=3000) or their --quick versions."""
    if quick:
        return Workload(756, 100, 252), Workload(756, 600, 126)
    return Workload(2520, 250, 504), Workload(2520, 3000, 252)


def make_data(wl: Workload) -> tuple[np.ndarray, pl.DataFrame]:
    """Seeded factor-model returns (T, N) and the same as a wide frame (date + asset columns)."""
    y, _ = make_returns(wl.T, wl.N, K_FACTORS, seed=SEED)
    frame = pl.from_numpy(y, schema=asset_names(wl.N)).insert_column(0, dates(wl.T))
    return y, frame


def sample_indices(n: int, k: int) -> np.ndarray:
    """``k`` evenly spaced indices in 0..n-1, first and last included (all if k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(k, 1)).round().astype(np.int64))


# --------------------------------------------------------------------------------------------
# NumPy peers
# --------------------------------------------------------------------------------------------


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix through ``eigh`` (eigenvalues >= 0)."""
    lam, e = np.linalg.eigh(a)
    return (e * np.sqrt(np.clip(lam, 0.0, None))) @ e.T


def entropy_enb(p: np.ndarray) -> float:
    """exp(-sum p ln p), 0 ln 0 = 0."""
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def exact_min_torsion(C: np.ndarray, sigma: np.ndarray, rule: str) -> tuple[np.ndarray, int]:
    """Exact minimum-torsion matrix t of the covariance diag(sigma) C diag(sigma), and the number
    of iterations (Meucci, Santangelo & Deguest 2013; R uncorbets ``torsion(..., "exact")``)."""
    n = C.shape[0]
    c = sqrtm_psd(C)  # Riccati root of C
    cc = c @ c  # loop invariant of U = diag(d) c c diag(d)
    d = np.ones(n)
    f_prev = math.nan
    for i in range(1, MAX_ITER + 1):
        U = d[:, None] * cc * d[None, :]
        u = sqrtm_psd(U)
        q = np.linalg.solve(u, d[:, None] * c)
        d_new = np.einsum("ij,ji->i", q, c)  # diag(q c)
        pi = d_new[:, None] * q
        f = float(np.linalg.norm(c - pi))  # Frobenius
        if rule == "published":
            done = i > 1 and abs(f - f_prev) / f / n <= PUBLISHED_TOL
        else:
            done = float(np.max(np.abs(d_new - d))) <= CONVERGED_TOL
        d, f_prev = d_new, f
        if done:
            break
    else:
        raise RuntimeError(f"minimum torsion ({rule}) did not converge in {MAX_ITER} iterations")
    t = sigma[:, None] * (pi @ np.linalg.inv(c)) / sigma[None, :]
    return t, i


def peer_window(X: np.ndarray, w: np.ndarray, rule: str | None) -> tuple[list[float], int]:
    """All measures of one window (rows of X) for weights w, in COLUMNS order, and the torsion
    iterations.  ``rule=None`` skips the torsion (enb_mt NaN).  The workload has no missing data
    and no zero-volatility asset, so every asset takes part."""
    S = np.atleast_2d(np.cov(X, rowvar=False))
    sigma = np.sqrt(np.diag(S))
    Sw = S @ w
    var = float(w @ Sw)
    aw = np.abs(w)
    dr = float(aw @ sigma) / math.sqrt(var)
    eff_n = float(aw.sum()) ** 2 / float(w @ w)
    # PCA bets (Meucci 2009)
    lam, E = np.linalg.eigh(S)
    contrib = np.clip(lam, 0.0, None) * (E.T @ w) ** 2
    enb_pca = entropy_enb(contrib / contrib.sum())
    # correlation: absorption ratio and average correlation
    C = S / np.outer(sigma, sigma)
    np.fill_diagonal(C, 1.0)
    m = C.shape[0]
    ev = np.linalg.eigvalsh(C)[::-1]
    absorption = float(ev[: math.ceil(m / 5)].sum()) / m
    avg_corr = (float(C.sum()) - m) / (m * (m - 1)) if m > 1 else math.nan
    # minimum-torsion bets
    enb_mt, iters = math.nan, 0
    if rule is not None and ev[-1] > PD_RTOL * ev[0]:
        t, iters = exact_min_torsion(C, sigma, rule)
        p = np.linalg.solve(t.T, w) * (t @ Sw) / var
        enb_mt = entropy_enb(p)
    return [dr, eff_n, enb_pca, enb_mt, absorption, avg_corr], iters


def run_peer(
    y: np.ndarray, ends: np.ndarray, window: int, w: np.ndarray, rule: str | None
) -> tuple[np.ndarray, list[int]]:
    """The peer loop over the windows ending at ``ends``: (len(ends), 6) measures, iterations."""
    out = np.empty((len(ends), len(COLUMNS)))
    iters = []
    for k, e in enumerate(ends):
        out[k], it = peer_window(y[e - window + 1 : e + 1], w, rule)
        iters.append(it)
    return out, iters


def enb_pca_dual(X: np.ndarray, w: np.ndarray) -> float:
    """PCA bets through the W x W Gram matrix of the centred window (same non-zero spectrum):
    p_k = (v_k' Xc w)^2 / (W - 1) per eigenpair (lambda_k, v_k) of Xc Xc' / (W - 1)."""
    Xc = X - X.mean(axis=0)
    G = (Xc @ Xc.T) / (X.shape[0] - 1)
    lam, V = np.linalg.eigh(G)
    contrib = np.where(lam > 0, (V.T @ (Xc @ w)) ** 2 / (X.shape[0] - 1), 0.0)
    return entropy_enb(contrib / contrib.sum())


# --------------------------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------------------------


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / |b| (|a - b| where b == 0); NaN patterns must agree (else inf)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    na, nb = np.isnan(a), np.isnan(b)
    if not np.array_equal(na, nb):
        return float("inf")
    if na.all():
        return 0.0
    diff = np.abs(a[~na] - b[~nb])
    scale = np.abs(b[~nb])
    return float(np.max(np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), diff)))


def column_diffs(got: np.ndarray, ref: np.ndarray, cols: Sequence[str]) -> dict[str, float]:
    """Relative difference per column name (arrays in COLUMNS order)."""
    return {
        col: max_rel_diff(got[:, COLUMNS.index(col)], ref[:, COLUMNS.index(col)]) for col in cols
    }


def check_columns(
    rep: Report, name: str, got: np.ndarray, ref: np.ndarray, cols: Sequence[str], tol: float
) -> bool:
    diffs = column_diffs(got, ref, cols)
    worst = max(diffs, key=lambda col: diffs[col])
    detail = ", ".join(f"{col} {d:.2g}" for col, d in diffs.items())
    return rep.check(name, diffs[worst], tol, f" relative, worst {worst}; {detail}")


def fc_array(out: pl.DataFrame) -> np.ndarray:
    """factorcore's measures as (rows, 6) float64 in COLUMNS order (a missing column -> NaN)."""
    cols = [
        out.get_column(col).cast(pl.Float64).to_numpy()
        if col in out.columns
        else np.full(out.height, np.nan)
        for col in COLUMNS
    ]
    return np.column_stack(cols)


def check_layout(
    rep: Report, tag: str, out: pl.DataFrame, wl: Workload, ends: np.ndarray | None = None
) -> bool:
    """Columns in order, one row per window (rows ``ends``, default the workload's windows)
    dated by the window's last row, n_assets = N and excluded_weight = 0 everywhere."""
    ends = wl.ends if ends is None else ends
    problems = []
    if out.columns != LAYOUT:
        problems.append(f"columns {out.columns}")
    if out.height != len(ends):
        problems.append(f"{out.height} rows, expected {len(ends)}")
    elif "date" in out.columns and not out.get_column("date").equals(dates(wl.T).gather(ends)):
        problems.append("dates are not the window-end dates")
    if "n_assets" in out.columns and not (out.get_column("n_assets") == wl.N).all():
        problems.append(f"n_assets {out.get_column('n_assets').unique().to_list()[:5]}")
    if "excluded_weight" in out.columns and not (out.get_column("excluded_weight") == 0).all():
        problems.append("excluded_weight != 0")
    extra = f"; schema {dict(out.schema)}" + (f"; {'; '.join(problems)}" if problems else "")
    return rep.check(
        f"[{tag}] output layout (columns, rows, dates, n_assets, excluded_weight)",
        float("inf") if problems else 0.0,
        extra=extra,
    )


def merged_timing(t: dict[str, Timing], prefix: str = "factorcore#") -> Timing:
    """One Timing from the round-robin slots ``prefix0``, ``prefix1``, ... of one contender."""
    parts = [v for k, v in t.items() if k.startswith(prefix)]
    best = min(parts, key=lambda p: p.best)
    runs = [x for rnd in zip(*(p.times for p in parts), strict=True) for x in rnd]
    return Timing(best.best, runs, best.cpu_over_wall, best.sys_share)


def interleaved(
    fc_call: Callable[[], Any], peers: dict[str, Callable[[], Any]], slots: int
) -> dict[str, Callable[[], Any]]:
    """factorcore#0, peer 1, factorcore#1, peer 2, ... (``slots`` factorcore runs per round)."""
    fns: dict[str, Callable[[], Any]] = {}
    names = list(peers)
    for i in range(max(slots, len(names))):
        if i < slots:
            fns[f"factorcore#{i}"] = fc_call
        if i < len(names):
            fns[names[i]] = peers[names[i]]
    return fns


def iter_summary(iters: Sequence[int]) -> str:
    a = np.asarray(iters)
    return f"{a.min()}/{np.median(a):g}/{a.max()}"


def peer_plan(n: int, per_window: float, budget: float) -> np.ndarray:
    """All windows if their estimated time fits the budget, else an evenly spaced sample that
    costs about half of it (at least 3 windows)."""
    if per_window * n <= budget:
        return np.arange(n)
    return sample_indices(n, max(3, int(budget / 2 / per_window)))


def windows_label(k: int, n: int) -> str:
    return f"all {n} windows" if k == n else f"{k} of {n} windows, x{n / k:.3g} extrap."


# --------------------------------------------------------------------------------------------
# factorcore
# --------------------------------------------------------------------------------------------


def load_factorcore() -> tuple[Any, Callable[..., pl.DataFrame] | None, str]:
    """(module, diversification function or None, why)."""
    try:
        import factorcore as fc
    except ImportError as exc:
        return None, None, f"factorcore not importable: {exc}"
    fn: Any = getattr(fc, "diversification", None)
    if fn is None:
        try:
            fn = importlib.import_module("factorcore.diversification")
        except ImportError as exc:
            return fc, None, f"factorcore.diversification not importable: {exc}"
    if isinstance(fn, types.ModuleType):
        fn = getattr(fn, "diversification", None)
    if not callable(fn):
        return fc, None, "factorcore has no diversification function"
    _, probe = make_data(Workload(30, 4, 10, 5))
    try:
        fn(probe, window=10, step=5)
    except NotImplementedError:
        return fc, None, "factorcore.diversification raises NotImplementedError"
    return fc, fn, "factorcore.diversification available"


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass
class Ctx:
    fc: Callable[..., pl.DataFrame]
    wl_all: Workload
    wl_wide: Workload
    report: Report
    reps: int = 5
    peer_reps: int = 2
    peer_budget: float = 20.0
    wide_windows: int = 3
    wide_reps: int = 1
    data: dict[Workload, tuple[np.ndarray, pl.DataFrame]] = field(default_factory=dict)

    def get(self, wl: Workload) -> tuple[np.ndarray, pl.DataFrame]:
        if wl not in self.data:
            self.data[wl] = make_data(wl)
        return self.data[wl]


def probe_peers(
    y: np.ndarray, wl: Workload, w: np.ndarray, rules: Sequence[str]
) -> dict[str, tuple[float, list[int]]]:
    """Per-window time and iterations of each torsion peer on 3 evenly spaced windows (after a
    throw-away window, which pays the first-call costs)."""
    ends = wl.ends
    idx = sample_indices(len(ends), 3)
    run_peer(y, ends[:1], wl.window, w, "published")
    out = {}
    for rule in rules:
        t0 = time.perf_counter()
        _, iters = run_peer(y, ends[idx], wl.window, w, rule)
        out[rule] = ((time.perf_counter() - t0) / len(idx), iters)
    return out


def section_all_measures(c: Ctx) -> None:
    wl, rep = c.wl_all, c.report
    y, frame = c.get(wl)
    ends = wl.ends
    n = len(ends)
    w = np.full(wl.N, 1.0 / wl.N)
    probe = probe_peers(y, wl, w, list(RULES))
    plan = {rule: peer_plan(n, probe[rule][0], c.peer_budget) for rule in RULES}
    for rule, (per, iters) in probe.items():
        rep.note(
            f"[N={wl.N}] probe, {rule} peer: {fmt_s(per)} per window ({iters} iterations) -> est. "
            f"{fmt_s(per * n)} for {n} windows; timed on {windows_label(len(plan[rule]), n)}"
        )
    ref: dict[str, np.ndarray] = {}
    ok: dict[str, bool] = {}
    iters: dict[str, list[int]] = {}

    def check_fc(out: pl.DataFrame) -> None:
        ok["factorcore"] = check_layout(rep, f"N={wl.N}", out, wl)
        ref["fc"] = fc_array(out)

    def checker(rule: str) -> Callable[[tuple[np.ndarray, list[int]]], None]:
        def check(res: tuple[np.ndarray, list[int]]) -> None:
            got, iters[rule] = res
            want = ref["fc"][plan[rule]]
            k = len(plan[rule])
            if rule == "converged":
                ok[rule] = check_columns(
                    rep,
                    f"[N={wl.N}] converged peer vs factorcore, all columns ({k} windows)",
                    got,
                    want,
                    COLUMNS,
                    RTOL_ALL,
                )
                return
            ok[rule] = check_columns(
                rep,
                f"[N={wl.N}] published-rule peer vs factorcore, all but enb_mt ({k} windows)",
                got,
                want,
                NO_MT,
                RTOL_ALL,
            )
            j = COLUMNS.index("enb_mt")
            absd = float(np.nanmax(np.abs(got[:, j] - want[:, j])))
            rep.note(
                f"[N={wl.N}] published-rule peer enb_mt vs factorcore (not asserted, the published "
                f"rule stops early): largest difference {absd:.3g} absolute, "
                f"{max_rel_diff(got[:, j], want[:, j]):.3g} relative (enb_mt "
                f"{np.nanmin(want[:, j]):.2f}..{np.nanmax(want[:, j]):.2f})"
            )

        return check

    def fc_call() -> pl.DataFrame:
        return c.fc(frame, window=wl.window, step=wl.step)

    peers = {
        rule: (lambda rule=rule: run_peer(y, ends[plan[rule]], wl.window, w, rule))
        for rule in RULES
    }
    slots = math.ceil(c.reps / c.peer_reps)
    checks = {"factorcore#0": check_fc, **{rule: checker(rule) for rule in RULES}}
    t = time_group(interleaved(fc_call, peers, slots), c.peer_reps, checks)
    t_fc = merged_timing(t)
    rep.note(f"[N={wl.N}] factorcore window={wl.window} step={wl.step}: {t_fc.describe()}")
    for rule, label in RULES.items():
        k = len(plan[rule])
        total = t[rule].best * n / k
        rep.note(
            f"[N={wl.N}] NumPy peer, {label}: {t[rule].describe()} on {k} windows -> "
            f"{fmt_s(t[rule].best / k)} per window, {fmt_s(total)} for {n} windows; torsion "
            f"iterations per window min/median/max {iter_summary(iters.get(rule, [0]))}"
        )
        rep.rows.append(
            ratio_row(
                f"all measures, {wl.label}",
                t_fc.best,
                f"NumPy per-window loop, {label} ({windows_label(k, n)})",
                total,
                speedup_target=SPEEDUP_TARGET,
                checked=ok.get("factorcore", False) and ok.get(rule, False),
                info=rule != "published",
            )
        )


def section_full_sample(c: Ctx) -> None:
    wl, rep = c.wl_all, c.report
    y, frame = c.get(wl)
    w = np.full(wl.N, 1.0 / wl.N)
    ref: dict[str, np.ndarray] = {}
    ok: dict[str, bool] = {}
    iters: list[int] = []

    def check_fc(out: pl.DataFrame) -> None:
        last = np.array([wl.T - 1])
        ok["factorcore"] = check_layout(rep, f"N={wl.N} window=None", out, wl, last)
        ref["fc"] = fc_array(out)

    def check_peer(res: tuple[np.ndarray, list[int]]) -> None:
        got, its = res
        iters.extend(its)
        ok["peer"] = check_columns(
            rep,
            f"[N={wl.N} window=None] converged peer vs factorcore, all columns",
            got,
            ref["fc"],
            COLUMNS,
            RTOL_ALL,
        )

    peers = {"converged": lambda: run_peer(y, np.array([wl.T - 1]), wl.T, w, "converged")}
    fns = interleaved(lambda: c.fc(frame, window=None), peers, 1)
    t = time_group(fns, c.reps, {"factorcore#0": check_fc, "converged": check_peer})
    t_fc, t_peer = merged_timing(t), t["converged"]
    rep.note(f"[N={wl.N}] factorcore window=None (one {wl.T}-row window): {t_fc.describe()}")
    rep.note(
        f"[N={wl.N}] NumPy peer ({RULES['converged']}) on the full sample: {t_peer.describe()}; "
        f"{iters[0] if iters else '?'} torsion iterations"
    )
    rep.rows.append(
        ratio_row(
            f"all measures, window=None (full sample), T={wl.T} N={wl.N}",
            t_fc.best,
            f"NumPy, {RULES['converged']} (1 window)",
            t_peer.best,
            speedup_target=SPEEDUP_TARGET,
            checked=ok.get("factorcore", False) and ok.get("peer", False),
            info=True,
        )
    )


def section_wide(c: Ctx) -> None:
    wl, rep = c.wl_wide, c.report
    y, frame = c.get(wl)
    ends = wl.ends
    n = len(ends)
    w = np.full(wl.N, 1.0 / wl.N)
    idx = sample_indices(n, c.wide_windows)
    k = len(idx)
    ref: dict[str, np.ndarray] = {}
    ok: dict[str, bool] = {}

    def check_fc(out: pl.DataFrame) -> None:
        ok["factorcore"] = check_layout(rep, f"N={wl.N}", out, wl)
        ref["fc"] = fc_array(out)
        mt = ref["fc"][:, COLUMNS.index("enb_mt")]
        ok["factorcore"] &= rep.check(
            f"[N={wl.N}] enb_mt is NaN in every window (W={wl.window} <= N, no shrinkage)",
            0.0 if np.isnan(mt).all() else float("inf"),
            extra=f"; {int(np.isfinite(mt).sum())} finite of {len(mt)}",
        )

    def check_peer(res: tuple[np.ndarray, list[int]]) -> None:
        got, _ = res
        ok["peer"] = check_columns(
            rep,
            f"[N={wl.N}] NumPy eigh peer vs factorcore ({k} windows)",
            got,
            ref["fc"][idx],
            NO_MT,
            RTOL_WIDE,
        )

    peers = {"numpy": lambda: run_peer(y, ends[idx], wl.window, w, None)}
    slots = math.ceil(c.reps / c.wide_reps)
    checks = {"factorcore#0": check_fc, "numpy": check_peer}
    t = time_group(
        interleaved(lambda: c.fc(frame, window=wl.window, step=wl.step), peers, slots),
        c.wide_reps,
        checks,
    )
    t_fc, t_peer = merged_timing(t), t["numpy"]
    total = t_peer.best * n / k
    rep.note(f"[N={wl.N}] factorcore window={wl.window} step={wl.step}: {t_fc.describe()}")
    rep.note(
        f"[N={wl.N}] NumPy peer (cov + eigh {wl.N}x{wl.N} + eigvalsh of the correlation) on "
        f"windows {idx.tolist()}: {t_peer.describe()} -> {fmt_s(t_peer.best / k)} per window, "
        f"{fmt_s(total)} extrapolated to {n} windows"
    )
    rep.rows.append(
        ratio_row(
            f"N={wl.N}, no enb_mt, {wl.label}",
            t_fc.best,
            f"NumPy cov + eigh per window ({windows_label(k, n)})",
            total,
            speedup_target=SPEEDUP_TARGET,
            checked=ok.get("factorcore", False) and ok.get("peer", False),
        )
    )


def section_memory(c: Ctx) -> None:
    for wl in (c.wl_all, c.wl_wide):
        params = {"T": wl.T, "N": wl.N, "window": wl.window, "step": wl.step}
        m = run_worker("mem", params, env=FREE_PAGES_AT_ONCE, script=__file__)
        extra = m["peak"] - m["rss_before"]
        ratio = extra / m["input_bytes"]
        c.report.note(
            f"[N={wl.N}] memory ({m['method']}, fresh subprocess): RSS before call "
            f"{fmt_bytes(m['rss_before'])}, peak {fmt_bytes(m['peak'])}, after "
            f"{fmt_bytes(m['rss_after'])}; peak extra {fmt_bytes(extra)} = {ratio:.2f}x input "
            f"({fmt_bytes(m['input_bytes'])} estimated_size); output {m['output_rows']} rows; "
            f"call took {fmt_s(m['seconds'])}"
        )
        c.report.rows.append(
            Row(
                f"peak memory diversification, {wl.label}",
                f"peak +{fmt_bytes(extra)}",
                "input df.estimated_size()",
                fmt_bytes(m["input_bytes"]),
                f"{ratio:.2f}x",
                "- (info)",
                None,
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
    _, fn, why = load_factorcore()
    if fn is None:
        raise RuntimeError(why)
    wl = Workload(params["T"], params["N"], params["window"], params["step"])
    _, frame = make_data(wl)
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
    out = fn(frame, window=wl.window, step=wl.step)
    elapsed = time.perf_counter() - t0
    after = _read_status()
    peak = after["VmHWM"] if sampler is None else max(sampler.stop(), after["VmRSS"])
    print(
        json.dumps(
            {
                "method": method,
                "rss_before": before["VmRSS"],
                "peak": peak,
                "rss_after": after["VmRSS"],
                "input_bytes": frame.estimated_size(),
                "output_rows": out.height,
                "seconds": elapsed,
            }
        )
    )


WORKERS: dict[str, Callable[[dict], None]] = {"mem": _worker_mem}


# --------------------------------------------------------------------------------------------
# Peers only (while factorcore.diversification is not available)
# --------------------------------------------------------------------------------------------


def invariant_checks(rep: Report) -> None:
    """Known answers: uncorrelated assets (exactly orthogonal centred columns)."""
    rng = np.random.default_rng(SEED)
    n, W = 12, 60
    Z = rng.normal(size=(W, n))
    Q, _ = np.linalg.qr(Z - Z.mean(axis=0))  # orthonormal, centred columns
    eq = np.full(n, 1.0 / n)
    res, _ = peer_window(Q * 0.01, eq, "converged")
    want = [math.sqrt(n), n, math.nan, n, math.nan, 0.0]  # enb_pca: tied eigenvalues
    keep = [0, 1, 3, 5]
    diff = max(abs(res[j] - want[j]) / max(abs(want[j]), 1.0) for j in keep)
    rep.check(
        f"{n} uncorrelated equal-vol assets, equal weight: DR = sqrt(n), effective_n = enb_mt = n, "
        "avg_correlation = 0",
        diff,
        1e-10,
    )
    vols = np.linspace(0.005, 0.03, n)
    inv = 1.0 / vols
    res, _ = peer_window(Q * vols, inv / inv.sum(), "converged")
    rep.check(
        f"{n} uncorrelated assets, distinct vols, weights 1/sigma: enb_pca = enb_mt = n",
        max(abs(res[2] - n), abs(res[3] - n)) / n,
        1e-10,
    )
    res, _ = peer_window(Q[:, :1] * 0.02, np.ones(1), "converged")
    rep.check(
        "one asset: DR = effective_n = enb_pca = enb_mt = 1",
        max(abs(res[j] - 1.0) for j in range(4)),
        1e-12,
    )


def run_peers_only(
    quick: bool, peer_reps: int, budget: float, wide_windows: int
) -> tuple[str, bool]:
    """Peers cross-checked and timed, no factorcore: (Markdown report, a check failed)."""
    rep = Report()
    start = time.perf_counter()
    wl, wide = workloads(quick)
    env = [*environment(None), *extra_environment()]
    print("\n".join(env), flush=True)
    invariant_checks(rep)

    # N=250: torsion peers
    foreign = ForeignCpu()
    y, _ = make_returns(wl.T, wl.N, K_FACTORS, seed=SEED)
    ends, n = wl.ends, len(wl.ends)
    w = np.full(wl.N, 1.0 / wl.N)
    probe = probe_peers(y, wl, w, list(RULES))
    plan = {rule: peer_plan(n, probe[rule][0], budget) for rule in RULES}
    out: dict[str, tuple[np.ndarray, list[int]]] = {}
    fns = {
        rule: (lambda rule=rule: run_peer(y, ends[plan[rule]], wl.window, w, rule))
        for rule in RULES
    }
    checks = {rule: (lambda res, rule=rule: out.__setitem__(rule, res)) for rule in RULES}
    t = time_group(fns, peer_reps, checks)
    common = np.intersect1d(plan["published"], plan["converged"])
    pub = out["published"][0][np.searchsorted(plan["published"], common)]
    con = out["converged"][0][np.searchsorted(plan["converged"], common)]
    check_columns(
        rep,
        f"[N={wl.N}] published vs converged peer, all but enb_mt ({len(common)} windows)",
        pub,
        con,
        NO_MT,
        1e-12,
    )
    j = COLUMNS.index("enb_mt")
    rep.note(
        f"[N={wl.N}] published-rule enb_mt vs converged: largest difference "
        f"{np.max(np.abs(pub[:, j] - con[:, j])):.3g} absolute, "
        f"{max_rel_diff(pub[:, j], con[:, j]):.3g} relative (enb_mt {con[:, j].min():.2f}.."
        f"{con[:, j].max():.2f})"
    )
    # torsion sanity on the first window: t S t' diagonal, p >= 0, sum p = 1
    X = y[ends[0] - wl.window + 1 : ends[0] + 1]
    S = np.cov(X, rowvar=False)
    sigma = np.sqrt(np.diag(S))
    for rule in RULES:
        tt, _ = exact_min_torsion(S / np.outer(sigma, sigma), sigma, rule)
        F = tt @ S @ tt.T
        off = np.abs(F - np.diag(np.diag(F))).max() / np.abs(np.diag(F)).max()
        p = np.linalg.solve(tt.T, w) * (tt @ S @ w) / (w @ S @ w)
        rep.check(
            f"[N={wl.N}] {rule} torsion factors uncorrelated (max off-diag / max diag of t S t')",
            float(off),
            1e-10,
            f"; min p {p.min():.3g}, |sum p - 1| {abs(p.sum() - 1):.2g}",
        )
    try:
        from skfolio import Portfolio
        from skfolio.measures import effective_number_assets

        wr = np.random.default_rng(SEED).uniform(0.5, 1.5, wl.N)
        wr /= wr.sum()
        res, _ = peer_window(X, wr, None)
        sk_dr = Portfolio(X=X, weights=wr).diversification
        diff = max(abs(res[0] - sk_dr) / sk_dr, abs(res[1] - effective_number_assets(wr)) / res[1])
        rep.check(f"[N={wl.N}] DR, effective_n vs skfolio (random long-only weights)", diff, 1e-12)
    except ImportError as exc:
        rep.note(f"skfolio not importable ({exc}): no skfolio cross-check")
    lines = [
        "| workload | peer | windows timed | per window | all windows | torsion iterations |",
        "|---|---|---|---|---|---|",
    ]
    for rule, label in RULES.items():
        k = len(plan[rule])
        rep.note(f"[N={wl.N}] NumPy peer, {label}: {t[rule].describe()} on {k} windows")
        lines.append(
            f"| all measures, {wl.label} | NumPy per-window loop, {label} | "
            f"{windows_label(k, n)} | "
            f"{fmt_s(t[rule].best / k)} | {fmt_s(t[rule].best * n / k)} | "
            f"{iter_summary(out[rule][1])} (min/median/max) |"
        )

    rep.contention[f"N={wl.N}"] = foreign.share() or 0.0

    # N=3000: eigh peer
    foreign = ForeignCpu()
    y, _ = make_returns(wide.T, wide.N, K_FACTORS, seed=SEED)
    ends, n = wide.ends, len(wide.ends)
    w = np.full(wide.N, 1.0 / wide.N)
    idx = sample_indices(n, wide_windows)
    got: dict[str, np.ndarray] = {}
    tw = time_group(
        {"numpy": lambda: run_peer(y, ends[idx], wide.window, w, None)},
        1,
        {"numpy": lambda res: got.__setitem__("numpy", res[0])},
    )["numpy"]
    dual = np.array([enb_pca_dual(y[e - wide.window + 1 : e + 1], w) for e in ends[idx]])
    rep.check(
        f"[N={wide.N}] eigh peer enb_pca vs W x W dual formulation ({len(idx)} windows)",
        max_rel_diff(got["numpy"][:, COLUMNS.index("enb_pca")], dual),
        RTOL_WIDE,
    )
    rep.note(f"[N={wide.N}] NumPy eigh peer: {tw.describe()} on windows {idx.tolist()}")
    k = len(idx)
    lines.append(
        f"| N={wide.N}, no enb_mt, {wide.label} | NumPy cov + eigh per window | "
        f"{windows_label(k, n)} | {fmt_s(tw.best / k)} | {fmt_s(tw.best * n / k)} | - |"
    )
    rep.contention[f"N={wide.N}"] = foreign.share() or 0.0
    shares = ", ".join(f"{k} {v:.0%}" for k, v in rep.contention.items())
    flag = (
        "**WARNING: timings disturbed by other load** "
        if max(rep.contention.values()) > CONTENTION_LIMIT
        else ""
    )
    lines += ["", f"{flag}CPU used by other processes while the peers ran: {shares}"]
    print("\n".join(lines))
    title = f"factorcore diversification benchmark, PEERS ONLY ({'quick' if quick else 'full'})"
    text = "\n".join(
        [
            f"# {title}",
            "",
            *(f"- {e}" for e in env),
            f"- total time {time.perf_counter() - start:.0f} s; at end: {load_average()}",
            "",
            "factorcore.diversification not available: no targets measured.",
            "",
            *lines,
            "",
            "## Checks",
            "",
            *(f"- {line}" for line in rep.checks),
            "",
            "## Details",
            "",
            *(f"- {d}" for d in rep.details),
            "",
        ]
    )
    return text, rep.check_failed


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def extra_environment() -> list[str]:
    """Versions of the peers' libraries (NumPy's BLAS is in `environment`)."""
    vers = {n: _dist_version(n) for n in ("scipy", "scikit-learn", "skfolio")}
    return [", ".join(f"{k} {v}" for k, v in vers.items())]


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
        "Speed rows: ratio = peer time / factorcore time (best of k each, timed round-robin); a "
        "peer timed on a sample of windows is extrapolated linearly to all windows (peer time is "
        "the extrapolated time). Memory rows: peak RSS growth during one diversification call / "
        "input frame's estimated_size(). Rows marked 'info' are not counted by --strict; a row "
        "whose correctness check failed is FAIL.",
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
    ap.add_argument(
        "--quick", action="store_true", help="T=756; N=100 W=252 and N=600 W=126 (smoke run)"
    )
    ap.add_argument("--out", type=Path, help="also write the Markdown report here")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any counted target fails")
    ap.add_argument("--peers-only", action="store_true", help="cross-check peers, no factorcore")
    ap.add_argument("--repeats", type=int, default=5, help="best-of-k for factorcore (5)")
    ap.add_argument(
        "--peer-repeats",
        type=int,
        default=2,
        help="timed runs of each N=250 peer after its warm-up (2)",
    )
    ap.add_argument(
        "--peer-budget",
        type=float,
        default=20.0,
        help="an N=250 peer runs on all windows if estimated to take at most this many seconds,\n"
        "else on a sample costing about half of it, extrapolated (20)",
    )
    ap.add_argument(
        "--wide-windows", type=int, default=3, help="windows the N=3000 peer runs on (3)"
    )
    ap.add_argument(
        "--wide-repeats",
        type=int,
        default=1,
        help="timed runs of the N=3000 peer after its warm-up (1)",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=2,
        help="re-run a section (after waiting for a quiet machine) when other processes used\n"
        f"more than {CONTENTION_LIMIT * 100:.0f}%% of the CPU during it (default 2; 0 disables)",
    )
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_params", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker:
        WORKERS[args._worker](json.loads(args._params))
        return 0
    fn = None
    if not args.peers_only:
        module, fn, why = load_factorcore()
        if fn is None:
            print(f"{why}: running --peers-only instead", flush=True)
    if fn is None:
        text, check_failed = run_peers_only(
            args.quick, args.peer_repeats, args.peer_budget, args.wide_windows
        )
        print(text)
        if args.out:
            args.out.write_text(text)
        return 1 if (args.strict or check_failed) else 0

    start = time.perf_counter()
    env = [*environment(module), *extra_environment()]
    print("\n".join(env), flush=True)
    wl_all, wl_wide = workloads(args.quick)
    ctx = Ctx(
        fn,
        wl_all,
        wl_wide,
        Report(),
        reps=args.repeats,
        peer_reps=args.peer_repeats,
        peer_budget=args.peer_budget,
        wide_windows=args.wide_windows,
        wide_reps=args.wide_repeats,
    )
    sections = [section_all_measures, section_full_sample, section_wide, section_memory]
    budget = 60.0 if args.quick else 900.0  # stop re-running contended sections after this
    for section in sections:
        run_section(ctx, section, args.retries, deadline=start + budget)
    title = f"factorcore diversification benchmark ({'quick' if args.quick else 'full'}: "
    title += f"{wl_all.label}; {wl_wide.label})"
    text = render(ctx.report, title, env, time.perf_counter() - start)
    print(text)
    if args.out:
        args.out.write_text(text)
    failed = any(r.passed is False or (r.passed and not r.checked) for r in ctx.report.rows)
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
