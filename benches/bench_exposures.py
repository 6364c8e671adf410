"""Performance benchmark for ``factorcore.rolling_ols`` and ``factorcore.rolling_exposures``.

Usage::

    python benches/bench_exposures.py [--quick] [--out FILE.md] [--strict]
    python benches/bench_exposures.py --peers-only      # cross-check the peers, no factorcore

Full workload: T=2520 dates, N=3000 assets, K=5 factors + intercept, window 252, no gaps,
synthetic seeded factor-model returns (~1% daily vol).  ``--quick``: T=1260, N=500.

Every contender is run once as a warm-up (its result is checked against factorcore's betas,
max abs diff < 1e-8, before any timing), then timed best-of-k with ``time.perf_counter``.  The
two sides of each factorcore-vs-factorcore ratio (and NumPy and the floor vs factorcore) are
timed round-robin so that intermittent load hits both alike.  The Markdown report has one row
per target (workload | factorcore time | peer | peer time | ratio | target | pass).  Exit code is
0 even when targets fail, unless ``--strict`` is given.

Load from other processes is measured per section (/proc/stat minus this process's CPU time);
a section disturbed by more than 10% is re-run after waiting for a quiet machine (``--retries``),
and the report prints the share for every section.

Criteria that need a definition:
  * linear scaling: time at N in {N/4, N/2, N} (T fixed) and T in {T/4, T/2, T} (N fixed),
    divided by T*N; pass if max/min of that per-element time < 1.5x.
  * peak memory: fresh subprocess, inputs built, RSS high-water mark reset through
    /proc/self/clear_refs (fallback: RSS sampled every 1 ms), then one rolling_ols(stats=True);
    peak extra = VmHWM after - VmRSS before; pass if input + peak extra <= 1.5 x (input + output).
  * missing data: both runs use min_periods=W/2 (with 5% NaN almost no window is complete).
  * window 1260 vs 21 (quick: min(1260, T/2)): pass if the time ratio is within 1.3x either way.

Peers:
  * polars-ols: ``pl.col(a).least_squares.rolling_ols(*factors, ...)`` one expression per asset
    column, all in one ``df.select``.  It runs in-process when ``polars_ols`` imports; otherwise
    (or with ``--peer-python``) this same file is run as a worker under another interpreter, on
    the same data saved as ``.npy``, and only the ``select`` inside the worker is timed.
  * NumPy shared-X'X: windowed sums of x_t x_t' (T,P,P) and x_t y_t (T,P,N) by cumulative sums and
    window differences, one batched ``inv`` over dates and one batched ``matmul`` (the target
    row).  An informational second variant accumulates row by row (a loop over dates, each step
    vectorised), which is faster in NumPy than ``np.cumsum(axis=0)`` on a wide array.
  * statsmodels ``RollingOLS(...).fit(params_only=True)`` on a sample of assets, extrapolated.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

SEED = 20240607
ATOL = 1e-8  # max abs difference in betas accepted between factorcore and a peer
# a single-threaded NumPy run whose kernel time exceeds this share of wall time was slowed by
# page faults (a normal first touch of its ~1 GB of temporaries costs ~20-40% of wall time)
KERNEL_SHARE_LIMIT = 0.5
ASSET_PREFIX = "a"
FACTOR_PREFIX = "f"


# --------------------------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    T: int
    N: int
    K: int = 5
    window: int = 252

    @property
    def label(self) -> str:
        return f"T={self.T} N={self.N} K={self.K} W={self.window}"


def make_returns(
    T: int, N: int, K: int, *, seed: int = SEED, missing: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded factor-model daily returns: y (T, N) float64 C-order, x (T, K) float64.

    Factor vol 0.4%, betas ~ N(0.5, 0.5), idiosyncratic vol 0.8% -> total vol ~1%.
    ``missing`` > 0 sets that fraction of y to NaN, uniformly at random.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.004, size=(T, K))
    betas = rng.normal(0.5, 0.5, size=(N, K))
    alpha = rng.normal(0.0, 1e-4, size=N)
    y = x @ betas.T
    y += alpha
    y += rng.normal(0.0, 0.008, size=(T, N))
    if missing > 0.0:
        y[rng.random((T, N)) < missing] = np.nan
    return np.ascontiguousarray(y), np.ascontiguousarray(x)


def asset_names(N: int) -> list[str]:
    return [f"{ASSET_PREFIX}{j:05d}" for j in range(N)]


def factor_names(K: int) -> list[str]:
    return [f"{FACTOR_PREFIX}{k}" for k in range(K)]


def dates(T: int) -> pl.Series:
    days = np.datetime64("2000-01-03", "D") + np.arange(T)
    return pl.Series("date", days).cast(pl.Date)


# --------------------------------------------------------------------------------------------
# Timing helper
# --------------------------------------------------------------------------------------------


@dataclass
class Timing:
    best: float
    times: list[float]
    cpu_over_wall: float  # process CPU time / wall time of the best run (~2 = both cores busy)
    sys_share: float = 0.0  # kernel (system) CPU time / wall time of the best run

    def describe(self) -> str:
        runs = [round(t, 3) for t in self.times]
        return (
            f"best {fmt_s(self.best)} of {runs}, CPU/wall {self.cpu_over_wall:.2f}, "
            f"kernel time {self.sys_share:.0%} of wall"
        )


def time_group(
    fns: dict[Any, Callable[[], Any]],
    repeats: int,
    checks: dict[Any, Callable[[Any], None]] | None = None,
) -> dict[Any, Timing]:
    """Warm up each function once (its result goes to ``checks[name]``), then time them
    round-robin, ``repeats`` rounds, and keep each one's best.  Interleaving makes the ratios
    between group members robust to load that comes and goes on the machine."""
    checks = checks or {}
    for name, fn in fns.items():
        result = fn()
        if name in checks:
            checks[name](result)
        del result
    times: dict[Any, list[float]] = {name: [] for name in fns}
    cpu: dict[Any, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            result = fn()
            t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            del result
            wall = max(t1 - t0, 1e-12)
            user, kernel = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
            times[name].append(t1 - t0)
            cpu[name].append(((user + kernel) / wall, kernel / wall))
    out = {}
    for name, ts in times.items():
        i = int(np.argmin(ts))
        out[name] = Timing(ts[i], ts, *cpu[name][i])
    return out


def time_it(
    fn: Callable[[], Any], repeats: int, check: Callable[[Any], None] | None = None
) -> Timing:
    """One warm-up call (its result goes to ``check``), then best-of-``repeats``."""
    return time_group({"fn": fn}, repeats, {"fn": check} if check else None)["fn"]


def fmt_s(t: float) -> str:
    if t >= 100:
        return f"{t:.0f} s"
    if t >= 1:
        return f"{t:.2f} s"
    return f"{t * 1e3:.1f} ms"


def fmt_bytes(b: float) -> str:
    return f"{b / 2**20:.0f} MiB"


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    check_failed: bool = False
    contention: dict[str, float] = field(default_factory=dict)  # section -> foreign CPU share

    def check(self, name: str, diff: float, tol: float = ATOL, extra: str = "") -> bool:
        ok = bool(np.isfinite(diff) and diff < tol)
        verdict = "OK" if ok else "FAIL"
        line = f"CHECK {name}: max|diff| = {diff:.3g} (tol {tol:g}){extra} -> {verdict}"
        print(line, flush=True)
        self.checks.append(line)
        self.check_failed |= not ok
        return ok

    def note(self, line: str) -> None:
        print(line, flush=True)
        self.details.append(line)


@dataclass
class Row:
    workload: str
    fc_time: str
    peer: str
    peer_time: str
    ratio: str
    target: str
    passed: bool | None  # None = informational, not counted
    checked: bool = True

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        if not self.checked:
            return "FAIL (check)"
        return "pass" if self.passed else "**FAIL**"


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Max abs difference; NaN patterns must agree (a mismatch returns inf)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    na, nb = np.isnan(a), np.isnan(b)
    if not np.array_equal(na, nb):
        return float("inf")
    if na.all():
        return 0.0
    return float(np.max(np.abs(a[~na] - b[~na])))


def spot_check_lstsq(
    coef: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    window: int,
    min_periods: int,
    n_points: int = 8,
    seed: int = 1,
) -> float:
    """Compare coef[t, j] with a direct lstsq on the valid rows of y[t-W+1..t, j]."""
    rng = np.random.default_rng(seed)
    T, N = y.shape
    X1 = np.column_stack([np.ones(T), x])
    worst = 0.0
    ts = rng.integers(window - 1, T, size=n_points)
    ts[0] = T - 1
    js = rng.integers(0, N, size=n_points)
    for t, j in zip(ts, js, strict=True):
        lo = t - window + 1
        yy, xx = y[lo : t + 1, j], X1[lo : t + 1]
        ok = ~np.isnan(yy)
        if ok.sum() < min_periods:
            worst = max(worst, 0.0 if np.isnan(coef[t, j]).all() else float("inf"))
            continue
        b = np.linalg.lstsq(xx[ok], yy[ok], rcond=None)[0]
        worst = max(worst, float(np.max(np.abs(coef[t, j] - b))))
    return worst


# --------------------------------------------------------------------------------------------
# Contenders
# --------------------------------------------------------------------------------------------


def fc_rolling_ols(fc: Any, y: np.ndarray, x: np.ndarray, window: int, **kw: Any) -> dict:
    return fc.rolling_ols(y, x, window=window, **kw)


def numpy_shared_xtx(
    y: np.ndarray, x: np.ndarray, window: int, accumulate: str = "cumsum"
) -> np.ndarray:
    """Rolling OLS betas (T, N, K+1), intercept first, for gap-free data (shared X'X).

    Windowed sums of x_t x_t' (T,P,P) and x_t y_t (T,P,N) are window differences of cumulative
    sums; beta_t = (X'X)_t^-1 (X'y)_t for all assets and dates with one batched inverse and one
    batched matmul.  ``accumulate="cumsum"`` uses ``np.cumsum(axis=0)`` (fully vectorised);
    ``"rows"`` accumulates row by row (a loop over dates, each step vectorised over N*P), which
    is much faster in NumPy because ``cumsum`` along axis 0 of a wide array is poorly strided.
    """
    T, N = y.shape
    X1 = np.empty((T, x.shape[1] + 1))
    X1[:, 0] = 1.0
    X1[:, 1:] = x
    P = X1.shape[1]
    W = window
    n_out = T - W + 1
    out = np.empty((T, N, P))
    out[: W - 1] = np.nan
    if n_out <= 0:
        return out
    # X'X per window, (n_out, P, P), and its inverse
    xx = np.cumsum(X1[:, :, None] * X1[:, None, :], axis=0)
    sxx = xx[W - 1 :].copy()
    sxx[1:] -= xx[:-W]
    inv = np.linalg.inv(sxx)
    # X'y per window, (n_out, P, N)
    xy = X1[:, :, None] * y[:, None, :]
    if accumulate == "cumsum":
        np.cumsum(xy, axis=0, out=xy)
    elif accumulate == "rows":
        flat = xy.reshape(T, P * N)
        for t in range(1, T):
            np.add(flat[t], flat[t - 1], out=flat[t])
    else:
        raise ValueError(accumulate)
    sxy = np.empty((n_out, P, N))
    sxy[0] = xy[W - 1]
    np.subtract(xy[W:], xy[:-W], out=sxy[1:])
    del xy
    # beta[t, n, :] = sum_p sxy[t, p, n] inv[t, p, :]   (inv is symmetric)
    np.matmul(sxy.transpose(0, 2, 1), inv, out=out[W - 1 :])
    return out


def polars_ols_frame(y: np.ndarray, x: np.ndarray) -> tuple[pl.DataFrame, list[str], list[str]]:
    assets, factors = asset_names(y.shape[1]), factor_names(x.shape[1])
    df = pl.DataFrame(
        [pl.Series(a, y[:, j]) for j, a in enumerate(assets)]
        + [pl.Series(f, x[:, k]) for k, f in enumerate(factors)]
    )
    return df, assets, factors


def polars_ols_exprs(assets: Sequence[str], factors: Sequence[str], window: int) -> list[pl.Expr]:
    import polars_ols  # noqa: F401  (registers the .least_squares namespace)

    return [
        pl.col(a)
        .least_squares.rolling_ols(
            *factors,
            window_size=window,
            min_periods=window,  # same as factorcore's default min_periods
            mode="coefficients",
            add_intercept=True,
            null_policy="drop_window",
        )
        .alias(a)
        for a in assets
    ]


def polars_ols_to_array(out: pl.DataFrame, assets: Sequence[str]) -> np.ndarray:
    """Struct columns (features..., const) -> (T, N, K+1) with the intercept first."""
    cols = []
    for a in assets:
        arr = out[a].struct.unnest().to_numpy().astype(np.float64)  # (T, K+1), const last
        cols.append(np.concatenate([arr[:, -1:], arr[:, :-1]], axis=1))
    return np.stack(cols, axis=1)


def polars_ols_run(
    y: np.ndarray, x: np.ndarray, window: int, repeats: int
) -> tuple[Timing, np.ndarray, dict[str, str]]:
    """In-process polars-ols: returns timing, warm-up coefficients (T, N, K+1), versions."""
    import polars_ols

    df, assets, factors = polars_ols_frame(y, x)
    exprs = polars_ols_exprs(assets, factors, window)
    holder: dict[str, np.ndarray] = {}

    def keep(out: pl.DataFrame) -> None:
        holder["coef"] = polars_ols_to_array(out, assets)

    timing = time_it(lambda: df.select(exprs), repeats, check=keep)
    versions = {
        "polars-ols": getattr(polars_ols, "__version__", None) or _dist_version("polars-ols"),
        "polars (peer)": pl.__version__,
        "python (peer)": sys.executable,
    }
    return timing, holder["coef"], versions


def polars_ols_subprocess(
    python: str, y: np.ndarray, x: np.ndarray, window: int, repeats: int
) -> tuple[Timing, np.ndarray, dict[str, str]]:
    """Run polars-ols under another interpreter on the same data (only the select is timed)."""
    with tempfile.TemporaryDirectory(prefix="fc-bench-") as tmp:
        np.save(Path(tmp) / "y.npy", y)
        np.save(Path(tmp) / "x.npy", x)
        params = {"dir": tmp, "window": window, "repeats": repeats}
        cmd = [python, str(Path(__file__).resolve()), "--_worker", "polars-ols"]
        proc = subprocess.run(
            [*cmd, "--_params", json.dumps(params)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"polars-ols worker failed:\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        coef = np.load(Path(tmp) / "coef.npy")
    t = Timing(res["best"], res["times"], res["cpu_over_wall"])
    return t, coef, res["versions"]


def _worker_polars_ols(params: dict) -> None:
    d = Path(params["dir"])
    y, x = np.load(d / "y.npy"), np.load(d / "x.npy")
    timing, coef, versions = polars_ols_run(y, x, params["window"], params["repeats"])
    np.save(d / "coef.npy", coef)
    out = {"best": timing.best, "times": timing.times, "cpu_over_wall": timing.cpu_over_wall}
    print(json.dumps({**out, "versions": versions}))


def statsmodels_sample(
    y: np.ndarray, x: np.ndarray, window: int, cols: Sequence[int]
) -> np.ndarray:
    """statsmodels RollingOLS params for the given asset columns: (T, len(cols), K+1)."""
    import statsmodels.api as sm
    from statsmodels.regression.rolling import RollingOLS

    X = sm.add_constant(x, has_constant="add")
    out = [
        np.asarray(RollingOLS(y[:, j], X, window=window).fit(params_only=True).params) for j in cols
    ]
    return np.stack(out, axis=1)


def physical_floor(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, 1.0)


# --------------------------------------------------------------------------------------------
# Subprocess workers (peak memory, single-thread run)
# --------------------------------------------------------------------------------------------


def _read_status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+)", text).group(1)) * 1024 for k in ("VmRSS", "VmHWM")}


class _RssSampler(threading.Thread):
    """Fallback when /proc/self/clear_refs is not writable: sample RSS every ~1 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self._stop_evt = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        statm = Path("/proc/self/statm")
        while not self._stop_evt.is_set():
            self.peak = max(self.peak, int(statm.read_text().split()[1]) * self._page)
            time.sleep(0.001)

    def stop(self) -> int:
        self._stop_evt.set()
        self.join()
        return self.peak


def _worker_mem(params: dict) -> None:
    import factorcore as fc

    y, x = make_returns(params["T"], params["N"], params["K"])
    gc.collect()
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
    res = fc.rolling_ols(y, x, window=params["window"])
    elapsed = time.perf_counter() - t0
    after = _read_status()
    peak = sampler.stop() if sampler is not None else after["VmHWM"]
    if sampler is not None:
        peak = max(peak, after["VmRSS"])
    out_bytes = sum(v.nbytes for v in res.values() if isinstance(v, np.ndarray))
    print(
        json.dumps(
            {
                "method": method,
                "rss_before": before["VmRSS"],
                "hwm_before": before["VmHWM"],
                "peak": peak,
                "rss_after": after["VmRSS"],
                "input_bytes": y.nbytes + x.nbytes,
                "output_bytes": out_bytes,
                "output_keys": sorted(res),
                "seconds": elapsed,
            }
        )
    )


def _worker_time(params: dict) -> None:
    import factorcore as fc

    y, x = make_returns(params["T"], params["N"], params["K"])
    t = time_it(
        lambda: fc.rolling_ols(y, x, window=params["window"], stats=False), params["repeats"]
    )
    print(json.dumps({"best": t.best, "cpu_over_wall": t.cpu_over_wall}))


# Polars' jemalloc then returns freed pages at once, so that pages left over from building the
# data cannot be reused silently by the call being measured.
FREE_PAGES_AT_ONCE = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}


def run_worker(
    kind: str, params: dict, env: dict[str, str] | None = None, script: str = __file__
) -> dict:
    """Run `script` (by default this file) as a ``--_worker kind`` subprocess; its last
    stdout line is the JSON result."""
    cmd = [sys.executable, str(Path(script).resolve()), "--_worker", kind]
    proc = subprocess.run(
        [*cmd, "--_params", json.dumps(params)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Benchmark sections (each appends rows to the report)
# --------------------------------------------------------------------------------------------


@dataclass
class Ctx:
    fc: Any
    wl: Workload
    y: np.ndarray
    x: np.ndarray
    quick: bool
    peer_python: str | None
    report: Report
    ref: np.ndarray | None = None  # factorcore betas (T, N, K+1), betas-only run
    t_betas: Timing | None = None
    t_stats: Timing | None = None
    reps: int = 5  # best-of-k repeats for the fast (factorcore, floor) contenders


def ratio_row(
    workload: str,
    fc_t: float,
    peer: str,
    peer_t: float,
    *,
    speedup_target: float | None = None,
    max_ratio: float | None = None,
    checked: bool = True,
    info: bool = False,
) -> Row:
    """speedup_target: pass if peer_t / fc_t >= target; max_ratio: pass if fc_t/peer_t <= it."""
    if speedup_target is not None:
        r = peer_t / fc_t
        target = f">= {speedup_target:g}x faster"
        passed = r >= speedup_target
    else:
        assert max_ratio is not None
        r = fc_t / peer_t
        target = f"<= {max_ratio:g}x"
        passed = r <= max_ratio
    if info:
        target += " (info)"
    return Row(
        workload,
        fmt_s(fc_t),
        peer,
        fmt_s(peer_t),
        f"{r:.2f}x",
        target,
        None if info else passed,
        checked,
    )


def section_betas(c: Ctx) -> None:
    W = c.wl.window

    def check(res: dict) -> None:
        coef = res["coef"]
        P = c.wl.K + 1
        ok_shape = coef.shape == (c.wl.T, c.wl.N, P) and coef.dtype == np.float64
        absent = not any(k in res for k in ("r2", "resid_vol"))
        c.report.note(
            f"factorcore stats=False keys={sorted(res)} coef shape={coef.shape} "
            f"dtype={coef.dtype} (shape ok: {ok_shape}; r2/resid_vol absent: {absent})"
        )
        lead_nan = bool(np.isnan(coef[: W - 1]).all()) and not np.isnan(coef[W - 1 :]).any()
        c.report.check(
            "factorcore NaN pattern (rows < W-1 NaN, rest finite)",
            0.0 if lead_nan else float("inf"),
        )
        c.ref = np.array(coef)

    c.t_betas = time_it(lambda: fc_rolling_ols(c.fc, c.y, c.x, W, stats=False), c.reps, check)
    c.report.note(
        f"factorcore betas-only: {c.t_betas.describe()} "
        f"(os.cpu_count()={os.cpu_count()}; CPU/wall ~2.0 means rayon kept both cores busy)"
    )


def section_numpy(c: Ctx) -> None:
    W = c.wl.window
    labels = {
        "cumsum": "NumPy shared-X'X (np.cumsum, fully vectorised)",
        "rows": "NumPy shared-X'X (row-accumulate loop over dates)",
    }
    ok = {acc: True for acc in labels}

    def checker(acc: str) -> Callable[[np.ndarray], None]:
        def check(out: np.ndarray) -> None:
            ok[acc] = c.report.check(f"NumPy[{acc}] vs factorcore betas", max_abs_diff(out, c.ref))

        return check

    fns: dict[str, Callable[[], Any]] = {
        acc: (lambda acc=acc: numpy_shared_xtx(c.y, c.x, W, acc)) for acc in labels
    }
    fns["factorcore"] = lambda: fc_rolling_ols(c.fc, c.y, c.x, W, stats=False)
    # NumPy allocates ~3 output-sized temporaries per call, and fresh-page cost varies a lot
    # from call to call on VMs, so it gets as many repeats as factorcore
    t = time_group(fns, c.reps, {acc: checker(acc) for acc in labels})
    fcb = t["factorcore"].best
    c.report.note(f"factorcore betas-only interleaved with NumPy: {t['factorcore'].describe()}")
    for acc, label in labels.items():
        c.report.note(f"{label}: {t[acc].describe()}")
        if t[acc].sys_share > KERNEL_SHARE_LIMIT:
            c.report.note(
                f"WARNING {label}: even its best run spent {t[acc].sys_share:.0%} of its wall "
                "time in the kernel (fresh-page faults; on VMs that hand freed memory back to "
                "the host this varies several-fold between calls), so its time and ratio are "
                "inflated and unreliable"
            )
            label += " [kernel-time inflated, see details]"
        c.report.rows.append(
            ratio_row(
                f"betas-only {c.wl.label}",
                fcb,
                label,
                t[acc].best,
                speedup_target=5,
                checked=ok[acc],
                info=acc == "rows",
            )
        )


def section_polars_ols(c: Ctx) -> None:
    W = c.wl.window
    python = c.peer_python
    if python is None:
        try:
            import polars_ols  # noqa: F401
        except ImportError:
            alt = Path(__file__).resolve().parents[1] / ".venv-peers" / "bin" / "python"
            python = str(alt) if alt.exists() else None
            if python is None:
                c.report.note("polars-ols: not importable and no .venv-peers -> skipped")
                return
    reps = 2 if not c.quick else 3
    if python is None:
        t, coef, versions = polars_ols_run(c.y, c.x, W, reps)
    else:
        t, coef, versions = polars_ols_subprocess(python, c.y, c.x, W, reps)
    c.report.details.append(f"polars-ols versions: {versions}")
    print(f"polars-ols versions: {versions}")
    ok = c.report.check(
        "polars-ols vs factorcore betas (all assets, t >= W-1)",
        max_abs_diff(coef[W - 1 :], c.ref[W - 1 :]),
    )
    c.report.note(
        f"polars-ols: best {fmt_s(t.best)} of {[round(v, 3) for v in t.times]}, "
        f"CPU/wall {t.cpu_over_wall:.2f} (only df.select timed; struct unpacking not)"
    )
    c.report.rows.append(
        ratio_row(
            f"betas-only {c.wl.label}",
            c.t_betas.best,
            f"polars-ols {versions.get('polars-ols')} (all {c.wl.N} assets, one select)",
            t.best,
            speedup_target=50,
            checked=ok,
        )
    )


def section_statsmodels(c: Ctx) -> None:
    W = c.wl.window
    n_sample = 5 if c.quick else 10
    cols = list(np.linspace(0, c.wl.N - 1, n_sample).astype(int))
    ok = [True]

    def check(out: np.ndarray) -> None:
        ok[0] = c.report.check(
            f"statsmodels vs factorcore betas ({n_sample} assets)",
            max_abs_diff(out[W - 1 :], c.ref[W - 1 :, cols]),
        )

    t = time_it(lambda: statsmodels_sample(c.y, c.x, W, cols), 2, check)
    per_asset = t.best / n_sample
    extrapolated = per_asset * c.wl.N
    import statsmodels

    c.report.note(
        f"statsmodels {statsmodels.__version__}: {fmt_s(per_asset)} per asset "
        f"-> {fmt_s(extrapolated)} extrapolated to N={c.wl.N}"
    )
    c.report.rows.append(
        ratio_row(
            f"betas-only {c.wl.label}",
            c.t_betas.best,
            f"statsmodels RollingOLS ({n_sample} assets, x{c.wl.N / n_sample:g} extrap.)",
            extrapolated,
            speedup_target=1000,
            checked=ok[0],
        )
    )


def section_floor(c: Ctx) -> None:
    shape = (c.wl.T, c.wl.N, c.wl.K + 1)
    W = c.wl.window
    t = time_group(
        {
            "floor": lambda: physical_floor(shape),
            "betas": lambda: fc_rolling_ols(c.fc, c.y, c.x, W, stats=False),
        },
        c.reps,
    )
    nbytes = int(np.prod(shape)) * 8
    fl, fcb = t["floor"].best, t["betas"].best
    c.report.note(
        f"physical floor np.full({shape}, 1.0) = {fmt_bytes(nbytes)}: {t['floor'].describe()} "
        f"({nbytes / fl / 1e9:.1f} GB/s); factorcore betas-only interleaved with it: "
        f"{t['betas'].describe()}"
    )
    c.report.rows.append(
        ratio_row(f"betas-only {c.wl.label}", fcb, f"floor: np.full({shape}, 1.0)", fl, max_ratio=3)
    )


def section_stats(c: Ctx) -> None:
    W = c.wl.window

    def check_full(res: dict) -> None:
        want = {"coef", "r2", "resid_vol", "n_obs", "tstat"}
        c.report.note(f"factorcore stats+tstats keys={sorted(res)} (expected {sorted(want)})")
        c.report.check("stats+tstats coef vs betas-only coef", max_abs_diff(res["coef"], c.ref))
        n = res["n_obs"]
        c.report.check(
            "n_obs == W for t >= W-1 (no gaps)",
            float(np.abs(n[W - 1 :].astype(np.int64) - W).max()),
            tol=0.5,
            extra=f"; dtype {n.dtype}",
        )

    t = time_group(
        {
            "full": lambda: fc_rolling_ols(c.fc, c.y, c.x, W, stats=True, tstats=True),
            "stats": lambda: fc_rolling_ols(c.fc, c.y, c.x, W),
            "betas": lambda: fc_rolling_ols(c.fc, c.y, c.x, W, stats=False),
        },
        c.reps,
        {"full": check_full},
    )
    c.t_stats = t["stats"]
    c.report.note(
        f"factorcore (interleaved) stats=False: {fmt_s(t['betas'].best)}; stats=True: "
        f"{fmt_s(t['stats'].best)}; stats+tstats: {fmt_s(t['full'].best)}"
    )
    c.report.rows.append(
        ratio_row(
            f"stats+tstats {c.wl.label}",
            t["full"].best,
            "factorcore stats=False",
            t["betas"].best,
            max_ratio=2,
        )
    )


def section_exposures(c: Ctx) -> None:
    W, T, N = c.wl.window, c.wl.T, c.wl.N
    assets, factors = asset_names(N), factor_names(c.wl.K)
    d = dates(T)
    returns = pl.DataFrame([d, *(pl.Series(a, c.y[:, j]) for j, a in enumerate(assets))])
    fac = pl.DataFrame([d, *(pl.Series(f, c.x[:, k]) for k, f in enumerate(factors))])
    ok = [True]

    def check(out: pl.DataFrame) -> None:
        c.report.note(f"rolling_exposures: shape {out.shape}, columns {out.columns[:12]}")
        fixed = {"date", "asset", "alpha", "r2", "resid_vol", "n_obs"}
        beta_cols = [col for col in out.columns if col not in fixed]
        rows_ok = out.height == N * (T - W + 1) and len(beta_cols) == c.wl.K
        last = out.filter(pl.col("date") == d[-1]).sort("asset")
        got = last.select(["alpha", *beta_cols]).to_numpy().astype(np.float64)
        diff = max_abs_diff(got, c.ref[T - 1]) if got.shape == c.ref[T - 1].shape else np.inf
        ok[0] = c.report.check(
            "rolling_exposures last-date alpha/betas vs rolling_ols coef",
            diff if rows_ok else float("inf"),
            extra=f"; rows {out.height} (expected {N * (T - W + 1)}), beta cols {beta_cols}",
        )

    t = time_group(
        {
            "exposures": lambda: c.fc.rolling_exposures(returns, fac, window=W),
            "stats": lambda: fc_rolling_ols(c.fc, c.y, c.x, W),
        },
        c.reps,
        {"exposures": check},
    )
    c.report.rows.append(
        ratio_row(
            f"rolling_exposures (wide Polars in, long out) {c.wl.label}",
            t["exposures"].best,
            "rolling_ols stats=True (NumPy in/out)",
            t["stats"].best,
            max_ratio=2,
            checked=ok[0],
        )
    )


def section_missing(c: Ctx) -> None:
    W = c.wl.window
    mp = W // 2
    y_gap, _ = make_returns(c.wl.T, c.wl.N, c.wl.K, missing=0.05)
    c.report.note(f"missing: {np.isnan(y_gap).mean():.2%} of y is NaN; both runs min_periods={mp}")
    ok = [True]

    def check(res: dict) -> None:
        diff = spot_check_lstsq(res["coef"], y_gap, c.x, W, mp, n_points=12)
        n = res["n_obs"][W - 1 :].astype(np.float64)
        ok[0] = c.report.check(
            "5% NaN: coef vs direct lstsq on valid rows (12 points)",
            diff,
            extra=f"; mean n_obs {n.mean():.1f} of W={W}",
        )

    t = time_group(
        {
            "gap": lambda: fc_rolling_ols(c.fc, y_gap, c.x, W, min_periods=mp),
            "nogap": lambda: fc_rolling_ols(c.fc, c.y, c.x, W, min_periods=mp),
        },
        c.reps,
        {"gap": check},
    )
    c.report.rows.append(
        ratio_row(
            f"5% NaN in y, stats=True, min_periods={mp}, {c.wl.label}",
            t["gap"].best,
            "same, no gaps",
            t["nogap"].best,
            max_ratio=3,
            checked=ok[0],
        )
    )


def section_windows(c: Ctx) -> None:
    T, N = c.wl.T, c.wl.N
    w_long = min(1260, T // 2)
    w_short = 21
    ok = [True]

    def checker(w: int) -> Callable[[dict], None]:
        def check(r: dict) -> None:
            ok[0] &= c.report.check(
                f"window {w}: coef vs direct lstsq (8 points)",
                spot_check_lstsq(r["coef"], c.y, c.x, w, w),
            )

        return check

    t = time_group(
        {
            "long": lambda: fc_rolling_ols(c.fc, c.y, c.x, w_long),
            "short": lambda: fc_rolling_ols(c.fc, c.y, c.x, w_short),
        },
        c.reps,
        {"long": checker(w_long), "short": checker(w_short)},
    )
    tl, ts = t["long"].best, t["short"].best
    rows_l, rows_s = (T - w_long + 1) * N, (T - w_short + 1) * N
    c.report.note(
        f"window {w_long}: {fmt_s(tl)} = {tl / rows_l * 1e9:.1f} ns per output (date, asset) row; "
        f"window {w_short}: {fmt_s(ts)} = {ts / rows_s * 1e9:.1f} ns per row; "
        f"per-row ratio {tl / rows_l / (ts / rows_s):.2f}x"
    )
    r = max(tl / ts, ts / tl)
    c.report.rows.append(
        Row(
            f"window {w_long} vs window {w_short}, stats=True, T={T} N={N}",
            fmt_s(tl),
            f"window {w_short}",
            fmt_s(ts),
            f"{tl / ts:.2f}x",
            "within 1.3x either way",
            r <= 1.3,
            ok[0],
        )
    )


def section_scaling(c: Ctx) -> None:
    T, N, K, W = c.wl.T, c.wl.N, c.wl.K, c.wl.window
    sizes = [(T, N // 4), (T, N // 2), (T // 4, N), (T // 2, N), (T, N)]
    data = {size: make_returns(*size, K) for size in sizes}
    fns = {size: (lambda d=d: fc_rolling_ols(c.fc, d[0], d[1], W)) for size, d in data.items()}
    t = time_group(fns, c.reps)
    per = [(t_, n_, t[(t_, n_)].best, t[(t_, n_)].best / (t_ * n_) * 1e9) for t_, n_ in sizes]
    lo = min(p[3] for p in per)
    lines = [
        "",
        "| T | N | time (stats=True) | ns per (T*N) element | relative | ns per output row |",
        "|---|---|---|---|---|---|",
    ]
    for t_, n_, best, ns in per:
        per_row = best / (max(t_ - W + 1, 1) * n_) * 1e9
        lines.append(f"| {t_} | {n_} | {fmt_s(best)} | {ns:.2f} | {ns / lo:.2f}x | {per_row:.2f} |")
    spread = max(p[3] for p in per) / lo
    c.report.details.extend([*lines, ""])
    print("\n".join(lines))
    c.report.rows.append(
        Row(
            f"scaling: N in {{{N // 4},{N // 2},{N}}} x T in {{{T // 4},{T // 2},{T}}}, W={W}",
            fmt_s(t[(T, N)].best),
            "per-element time max/min",
            "-",
            f"{spread:.2f}x",
            "< 1.5x across sizes",
            spread < 1.5,
        )
    )


def section_memory(c: Ctx) -> None:
    params = {"T": c.wl.T, "N": c.wl.N, "K": c.wl.K, "window": c.wl.window}
    m = run_worker("mem", params)
    extra = m["peak"] - m["rss_before"]
    io = m["input_bytes"] + m["output_bytes"]
    ratio = (m["input_bytes"] + extra) / io
    c.report.note(
        f"memory ({m['method']}, fresh subprocess, stats=True, keys {m['output_keys']}): "
        f"RSS before call {fmt_bytes(m['rss_before'])}, peak {fmt_bytes(m['peak'])}, "
        f"after {fmt_bytes(m['rss_after'])}; peak extra {fmt_bytes(extra)} = "
        f"{extra / m['output_bytes']:.2f}x output bytes ({fmt_bytes(m['output_bytes'])}); "
        f"input {fmt_bytes(m['input_bytes'])}; (input + peak extra)/(input + output) = {ratio:.2f}"
    )
    c.report.rows.append(
        Row(
            f"peak memory rolling_ols stats=True {c.wl.label}",
            f"peak +{fmt_bytes(extra)}",
            "input + output bytes",
            fmt_bytes(io),
            f"{ratio:.2f}x",
            "(input + peak extra) <= 1.5x (input + output)",
            ratio <= 1.5,
        )
    )


def section_threads(c: Ctx) -> None:
    """Default rayon pool vs RAYON_NUM_THREADS=1, each in fresh subprocesses, alternated."""
    params = {"T": c.wl.T, "N": c.wl.N, "K": c.wl.K, "window": c.wl.window, "repeats": 3}
    runs: dict[str, list[dict]] = {"default": [], "1 thread": []}
    for _ in range(2):
        runs["default"].append(run_worker("time", params))
        runs["1 thread"].append(run_worker("time", params, env={"RAYON_NUM_THREADS": "1"}))
    best = {k: min(v, key=lambda r: r["best"]) for k, v in runs.items()}
    d, one = best["default"], best["1 thread"]
    c.report.note(
        f"betas-only in fresh subprocesses: default pool {fmt_s(d['best'])} "
        f"(CPU/wall {d['cpu_over_wall']:.2f}), RAYON_NUM_THREADS=1 {fmt_s(one['best'])} "
        f"(CPU/wall {one['cpu_over_wall']:.2f}) -> parallel speed-up "
        f"{one['best'] / d['best']:.2f}x on {os.cpu_count()} cores"
    )


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(fc: Any | None) -> list[str]:
    names = ["numpy", "polars", "polars-ols", "statsmodels", "pandas"]
    vers = {n: _dist_version(n) for n in names}
    fc_ver = None
    if fc is not None:
        fc_ver = getattr(fc, "__version__", None) or _dist_version("factorcore")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    build = ""
    if fc is not None:
        import hashlib

        core = sorted(Path(fc.__file__).parent.glob("_core*.so"))
        if core:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(core[0].stat().st_mtime))
            digest = hashlib.sha256(core[0].read_bytes()).hexdigest()[:12]
            build = f" ({core[0].name} built {stamp} UTC, sha256 {digest})"
    return [
        f"factorcore {fc_ver}{build}; " + ", ".join(f"{k} {v}" for k, v in vers.items()),
        f"python {platform.python_version()} ({sys.executable}); {platform.platform()}",
        f"os.cpu_count()={os.cpu_count()}, sched_getaffinity={affinity}, "
        f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS')}, "
        f"POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS')}; at start: {load_average()}",
        numpy_blas(),
    ]


def numpy_blas() -> str:
    """NumPy's BLAS and the kernels it picked: the NumPy peer's speed depends on them (an
    OPENBLAS_CORETYPE for an older core makes it markedly slower)."""
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return f"NumPy BLAS unknown (no threadpoolctl); OPENBLAS_CORETYPE={coretype}"
    np.linalg.inv(np.eye(2))  # load the BLAS so that threadpoolctl sees it
    blas = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} kernels "
        f"({i.get('num_threads')} threads)"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return f"NumPy BLAS {', '.join(blas) or 'unknown'}; OPENBLAS_CORETYPE={coretype}"


class ForeignCpu:
    """Share of the machine's CPU used by *other* processes while a section runs.

    Machine busy time comes from /proc/stat, this process's (and its children's) CPU time from
    ``os.times()``; the difference over wall time x cores is what other processes took away.
    """

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.ncpu = os.cpu_count() or 1
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(fields) - fields[3] - fields[4]) / self.tick  # minus idle and iowait
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return time.perf_counter(), busy, own

    def share(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None:
            return None
        wall = end[0] - self.start[0]
        foreign = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return max(0.0, foreign) / max(wall * self.ncpu, 1e-9)


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"
    except OSError:
        return "load average n/a"


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
        flag = "**WARNING: timings disturbed by other load** " if worst > 0.10 else ""
        lines += [f"{flag}CPU used by other processes during each section: {shares}", ""]
    lines += [
        "| workload | factorcore time | peer | peer time | ratio | target | pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        cells = [r.workload, r.fc_time, r.peer, r.peer_time, r.ratio, r.target, r.verdict]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios: for 'faster' targets ratio = peer time / factorcore time; otherwise ratio = "
        "factorcore time / peer time (window row: long / short, pass if within 1.3x either way). "
        "Scaling: time / (T*N) at each size, pass if max/min < 1.5x. Rows marked 'info' are not "
        "counted by --strict. A row whose correctness check failed is FAIL.",
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


def run_peers_only(quick: bool) -> int:
    """Cross-check the peers against each other and time them (no factorcore needed)."""
    wl = Workload(T=600, N=40, window=100) if quick else Workload(T=1260, N=300)
    y, x = make_returns(wl.T, wl.N, wl.K)
    W = wl.window
    ref = numpy_shared_xtx(y, x, W, "rows")
    rep = Report()
    t0 = time.perf_counter()
    cum = numpy_shared_xtx(y, x, W, "cumsum")
    t1 = time.perf_counter()
    rep.check("NumPy cumsum vs rows", max_abs_diff(cum, ref), extra=f" ({fmt_s(t1 - t0)})")
    rep.check("NumPy vs lstsq", spot_check_lstsq(ref, y, x, W, W))
    t, coef, vers = polars_ols_run(y, x, W, 1)
    rep.check(
        "polars-ols vs NumPy",
        max_abs_diff(coef[W - 1 :], ref[W - 1 :]),
        extra=f" ({fmt_s(t.best)}, {vers})",
    )
    cols = [0, wl.N // 2, wl.N - 1]
    t0 = time.perf_counter()
    sm_ = statsmodels_sample(y, x, W, cols)
    t1 = time.perf_counter()
    rep.check(
        "statsmodels vs NumPy",
        max_abs_diff(sm_[W - 1 :], ref[W - 1 :, cols]),
        extra=f" ({fmt_s((t1 - t0) / len(cols))} per asset)",
    )
    print("\n".join(environment(None)))
    return 1 if rep.check_failed else 0


CONTENTION_LIMIT = 0.10  # share of the machine's CPU used by other processes


def wait_for_quiet(timeout: float, interval: float = 5.0) -> float | None:
    """Wait until other processes use < CONTENTION_LIMIT of the CPU over ``interval`` s."""
    end = time.perf_counter() + timeout
    share = None
    while time.perf_counter() < end:
        probe = ForeignCpu()
        time.sleep(interval)
        share = probe.share()
        if share is None or share < CONTENTION_LIMIT:
            break
    return share


def run_section(ctx: Ctx, section: Callable[[Ctx], None], retries: int, deadline: float) -> None:
    """Run one section; re-run it (dropping its rows) if other load disturbed it."""
    name = section.__name__.removeprefix("section_")
    rep = ctx.report
    for attempt in range(retries + 1):
        print(f"--- {name} (attempt {attempt + 1}, {load_average()})", flush=True)
        mark = (len(rep.rows), len(rep.details), len(rep.checks))
        foreign = ForeignCpu()
        try:
            section(ctx)
        except Exception as exc:  # keep going: one broken contender must not hide the others
            msg = f"{name} raised {type(exc).__name__}: {exc}"
            rep.note(msg)
            rep.rows.append(Row(name, "error", "-", "-", "-", msg[:120], False))
        share = foreign.share()
        gc.collect()
        if share is not None:
            rep.contention[name] = share
        disturbed = share is not None and share > CONTENTION_LIMIT
        if not disturbed or attempt == retries or time.perf_counter() > deadline:
            break
        print(f"--- {name}: other processes used {share:.0%} of the CPU; re-running", flush=True)
        del rep.rows[mark[0] :], rep.details[mark[1] :], rep.checks[mark[2] :]
        wait_for_quiet(timeout=min(120.0, max(0.0, deadline - time.perf_counter())))
    if share is not None and attempt:
        rep.details.append(f"{name}: re-run {attempt}x because of other load")


WORKERS: dict[str, Callable[[dict], None]] = {
    "polars-ols": _worker_polars_ols,
    "mem": _worker_mem,
    "time": _worker_time,
}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="T=1260, N=500 (smoke run)")
    ap.add_argument("--out", type=Path, help="also write the Markdown report here")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any counted target fails")
    ap.add_argument("--peer-python", help="interpreter to run polars-ols in (subprocess)")
    ap.add_argument("--peers-only", action="store_true", help="cross-check peers, no factorcore")
    ap.add_argument("--repeats", type=int, default=5, help="best-of-k for factorcore (5)")
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
        params = json.loads(args._params)
        WORKERS[args._worker](params)
        return 0
    if args.peers_only:
        return run_peers_only(args.quick)

    import factorcore as fc

    start = time.perf_counter()
    wl = Workload(T=1260, N=500) if args.quick else Workload(T=2520, N=3000)
    wl = Workload(T=args.T or wl.T, N=args.N or wl.N)
    env = environment(fc)
    print("\n".join(env), flush=True)
    y, x = make_returns(wl.T, wl.N, wl.K)
    ctx = Ctx(fc, wl, y, x, args.quick, args.peer_python, Report(), reps=args.repeats)
    sections = [
        section_betas,
        section_polars_ols,
        section_numpy,
        section_statsmodels,
        section_floor,
        section_stats,
        section_exposures,
        section_missing,
        section_windows,
        section_scaling,
        section_memory,
        section_threads,
    ]
    budget = 120.0 if args.quick else 600.0  # stop re-running contended sections after this
    for section in sections:
        run_section(ctx, section, args.retries, deadline=start + budget)
    title = f"factorcore rolling OLS benchmark ({'quick' if args.quick else 'full'}: {wl.label})"
    text = render(ctx.report, title, env, time.perf_counter() - start)
    print(text)
    if args.out:
        args.out.write_text(text)
    failed = any(r.passed is False or (r.passed and not r.checked) for r in ctx.report.rows)
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
