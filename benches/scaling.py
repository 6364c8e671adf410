"""Scaling curves of ``factorcore.rolling_ols``: time vs assets, dates, window length and threads.

Usage::

    python benches/scaling.py                   # full sizes, writes bench-results/scaling.{md,png}
    python benches/scaling.py --quick           # small sizes, well under a minute
    python benches/scaling.py --out DIR --repeats 7

Every call is ``rolling_ols(y, x, window=W, stats=True)`` with K=5 factors + intercept on the
seeded synthetic returns of ``bench_exposures.make_returns`` (no missing data), window 252 unless
the window is the variable.  Each point is one warm-up call, then the median of ``--repeats``
(default 5) timed with ``time.perf_counter``; within a curve the points are timed round-robin
(one call of each per round) so that intermittent load from other processes hits them alike.

Curves (full / ``--quick``):
  * time vs N (assets): N in {750, 1500, 3000, 6000} at T=2520 / N in {125, 250, 500} at T=1260;
  * time vs T (dates): T in {630, 1260, 2520, 5040} at N=3000 / T in {315, 630, 1260} at N=500;
  * time vs window: W in {21, 63, 252, 504, 1260}, keeping only W < T, at N=3000 T=2520 /
    N=500 T=1260;
  * time vs threads: 1, 2, 4, ... up to ``os.cpu_count()`` (1 and 2 always) at the sizes of the
    window curve, each count in its own subprocess of this script (hidden ``--worker`` mode)
    with ``RAYON_NUM_THREADS`` set, since rayon reads it at start-up.  A worker builds the
    inputs, makes the warm-up call and prints a JSON line, then makes one timed call per
    ``time`` line on its stdin and prints each result as JSON, so the thread counts too are
    timed round-robin.

The N, T and window curves run in this process with rayon's default pool (``RAYON_NUM_THREADS``
if set, else one thread per CPU).  Verdicts: linear growth in N and in T means the times lie on
a line (a fixed cost per call plus a cost per asset or date), pass if every point is within 10%
of the least-squares line; the per-element time is reported too; the window length should not
matter (rolling updates), pass if no window is 1.3x slower than the shortest (longer windows
leave more leading rows without a result, which cost less); threads report the speed-up over
one thread (no pass/fail).

Outputs: ``DIR/scaling.md`` (a Markdown section, also printed to stdout) and ``DIR/scaling.png``
(2x2 panels, ~1100x800 px).  Timings are wall-clock and sensitive to other load on the machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

sys.path.insert(0, str(Path(__file__).resolve().parent))

import factorcore
from bench_exposures import make_returns

K = 5
WINDOW = 252
WINDOWS = (21, 63, 252, 504, 1260)
LINEAR_LIMIT = 0.10  # largest relative distance of a point from the fitted line time = a + b * x
WINDOW_LIMIT = 1.3  # slowest time over the time of the shortest window


@dataclass(frozen=True)
class Sizes:
    n_curve: tuple[int, ...]  # N values at T = n_curve_T
    n_curve_T: int
    t_curve: tuple[int, ...]  # T values at N = t_curve_N
    t_curve_N: int
    fixed_N: int  # N and T of the window and thread curves
    fixed_T: int


FULL = Sizes((750, 1500, 3000, 6000), 2520, (630, 1260, 2520, 5040), 3000, 3000, 2520)
QUICK = Sizes((125, 250, 500), 1260, (315, 630, 1260), 500, 500, 1260)


@dataclass(frozen=True)
class Point:
    T: int
    N: int
    window: int
    time: float  # seconds, the median run
    times: tuple[float, ...]
    cpu_over_wall: float  # process CPU time / wall time of the median run
    threads: int | None = None  # RAYON_NUM_THREADS of a worker point

    @property
    def ns_per_element(self) -> float:
        return self.time / (self.T * self.N) * 1e9


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


Case = tuple[np.ndarray, np.ndarray, int]  # y (T, N), x (T, K), window


def call(case: Case) -> None:
    y, x, window = case
    out = factorcore.rolling_ols(y, x, window=window, stats=True)
    assert out["coef"].shape == (*y.shape, K + 1)


def timed_call(case: Case) -> tuple[float, float]:
    """One timed call: (wall seconds, process CPU time / wall time)."""
    gc.collect()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    call(case)
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    wall = t1 - t0
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    return wall, cpu / max(wall, 1e-12)


def median_point(
    T: int, N: int, window: int, runs: Sequence[tuple[float, float]], threads: int | None = None
) -> Point:
    times = [wall for wall, _ in runs]
    # The median: the best run is often one whose fresh output pages the allocator reused,
    # skipping the kernel's page zeroing that every other run pays.
    j = int(np.argsort(times)[len(times) // 2])
    return Point(T, N, window, times[j], tuple(times), runs[j][1], threads)


def time_curve(cases: Sequence[Case], repeats: int) -> list[Point]:
    """Time ``rolling_ols`` on each case: one warm-up call each, then ``repeats`` rounds that
    call every case once (round-robin, so that load from other processes that comes and goes
    hits all points of a curve alike), keeping each case's median time."""
    for case in cases:
        call(case)
    runs: list[list[tuple[float, float]]] = [[] for _ in cases]
    for _ in range(repeats):
        for i, case in enumerate(cases):
            runs[i].append(timed_call(case))
    return [
        median_point(*y.shape, window, r) for (y, _, window), r in zip(cases, runs, strict=True)
    ]


def sub_returns(y: np.ndarray, x: np.ndarray, T: int, N: int) -> tuple[np.ndarray, np.ndarray]:
    """The first T dates and N assets, C-contiguous (a copy when N is cut, made before timing)."""
    return np.ascontiguousarray(y[:T, :N]), np.ascontiguousarray(x[:T])


def thread_counts() -> list[int]:
    """1, 2, then powers of two up to ``os.cpu_count()``, then ``os.cpu_count()`` itself."""
    cpus = os.cpu_count() or 1
    counts = [1, 2]
    n = 4
    while n <= cpus:
        counts.append(n)
        n *= 2
    if cpus > counts[-1]:
        counts.append(cpus)
    return counts


def run_worker(T: int, N: int, window: int) -> None:
    """Hidden worker mode: build the inputs and make the warm-up call, print a JSON line
    ``{"ready": ...}``; then for every line ``time`` read from stdin make one timed call and
    print ``{"time": seconds, "cpu_over_wall": ...}``; stop at end of input."""
    y, x = make_returns(T, N, K)
    case = (y, x, window)
    call(case)
    threads = os.environ.get("RAYON_NUM_THREADS")
    print(json.dumps({"ready": True, "threads": threads, "T": T, "N": N}), flush=True)
    for line in sys.stdin:
        if line.strip() != "time":
            break
        wall, cpu = timed_call(case)
        print(json.dumps({"time": wall, "cpu_over_wall": cpu}), flush=True)


class Worker:
    """This script in worker mode, in a subprocess with ``RAYON_NUM_THREADS=threads``."""

    def __init__(self, threads: int, T: int, N: int, window: int) -> None:
        self.threads = threads
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", f"{T},{N},{window}"]
        env = {**os.environ, "RAYON_NUM_THREADS": str(threads)}
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reply()  # inputs built, warm-up call made

    def reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise RuntimeError(
                f"worker with RAYON_NUM_THREADS={self.threads} failed "
                f"({self.proc.returncode}):\n{err}"
            )
        return json.loads(line)

    def time(self) -> tuple[float, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("time\n")
        self.proc.stdin.flush()
        d = self.reply()
        return d["time"], d["cpu_over_wall"]

    def close(self) -> int:
        """Close stdin (the worker exits) and wait; the worker's exit code."""
        if self.proc.poll() is None:
            self.proc.communicate()
        return self.proc.returncode


def time_threads(counts: Sequence[int], T: int, N: int, window: int, repeats: int) -> list[Point]:
    """One worker subprocess per thread count, started one after the other; then ``repeats``
    rounds asking each worker in turn for one timed call (the idle ones wait on stdin)."""
    workers: list[Worker] = []
    try:
        for n in counts:
            workers.append(Worker(n, T, N, window))
        runs: list[list[tuple[float, float]]] = [[] for _ in workers]
        for _ in range(repeats):
            for i, w in enumerate(workers):
                runs[i].append(w.time())
    finally:
        codes = [w.close() for w in workers]
    if any(codes):
        raise RuntimeError(f"a worker failed: exit codes {dict(zip(counts, codes, strict=True))}")
    return [median_point(T, N, window, r, n) for n, r in zip(counts, runs, strict=True)]


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    sizes: Sizes
    quick: bool
    repeats: int
    n_curve: list[Point]
    t_curve: list[Point]
    w_curve: list[Point]
    threads: list[Point]


def ratio(values: Sequence[float]) -> float:
    return max(values) / min(values)


def verdict(value: float, limit: float) -> str:
    return "pass" if value < limit else "FAIL"


def line_fit(xs: Sequence[float], times: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares line time = fixed + slope * x; returns (fixed, slope, largest relative
    distance of a point from the line). Linear growth allows a fixed cost per call."""
    slope, fixed = np.polyfit(np.asarray(xs, float), np.asarray(times, float), 1)
    fitted = fixed + slope * np.asarray(xs, float)
    worst = float(np.max(np.abs(np.asarray(times) - fitted) / np.asarray(times)))
    return float(fixed), float(slope), worst


def verdict_lines(r: Results) -> list[str]:
    shortest = min(r.w_curve, key=lambda p: p.window)
    w_ratio = max(p.time for p in r.w_curve) / shortest.time
    base = r.threads[0].time
    speedups = ", ".join(f"{p.threads} threads {base / p.time:.2f}x" for p in r.threads[1:])
    lines = []
    for name, curve, x_of in (
        ("N", r.n_curve, lambda p: p.N),
        ("T", r.t_curve, lambda p: p.T),
    ):
        fixed, slope, worst = line_fit([x_of(p) for p in curve], [p.time for p in curve])
        per_element = ratio([p.ns_per_element for p in curve])
        lines.append(
            f"- time vs {name}: line fit {fixed * 1e3:.1f} ms + {slope * 1e3:.3f} ms per {name}, "
            f"points within {worst:.0%} of it (linear if < {LINEAR_LIMIT:.0%}) -> "
            f"**{verdict(worst, LINEAR_LIMIT)}**; per-element time max/min {per_element:.2f}x"
        )
    return [
        *lines,
        f"- time vs window: slowest / window {shortest.window} = {w_ratio:.2f}x "
        f"(flat if < {WINDOW_LIMIT}: a longer window costs no more) -> "
        f"**{verdict(w_ratio, WINDOW_LIMIT)}**",
        f"- threads: speed-up over 1 thread: {speedups}",
    ]


def markdown(r: Results, elapsed: float, load: tuple[float, float]) -> str:
    s = r.sizes
    pool = os.environ.get("RAYON_NUM_THREADS") or f"default ({os.cpu_count()} CPUs)"
    lines = [
        f"## Scaling of `rolling_ols`{' (quick)' if r.quick else ''}",
        "",
        f"`rolling_ols(y, x, window=W, stats=True)`, K={K} factors + intercept, window {WINDOW} "
        f"unless varied, no missing data; median of {r.repeats} after one warm-up. "
        f"ns/element = time / (T x N). N, T and window curves: rayon threads {pool}; "
        f"thread curve: one subprocess per count with `RAYON_NUM_THREADS`. "
        "Points of a curve are timed round-robin.",
        "",
        f"**Time vs N** (T={s.n_curve_T})",
        "",
        "| N | time (s) | ns / element |",
        "|---:|---:|---:|",
        *(f"| {p.N} | {p.time:.4f} | {p.ns_per_element:.2f} |" for p in r.n_curve),
        "",
        f"**Time vs T** (N={s.t_curve_N})",
        "",
        "| T | time (s) | ns / element |",
        "|---:|---:|---:|",
        *(f"| {p.T} | {p.time:.4f} | {p.ns_per_element:.2f} |" for p in r.t_curve),
        "",
        f"**Time vs window** (N={s.fixed_N}, T={s.fixed_T})",
        "",
        "| window | time (s) | ns / element |",
        "|---:|---:|---:|",
        *(f"| {p.window} | {p.time:.4f} | {p.ns_per_element:.2f} |" for p in r.w_curve),
        "",
        f"**Time vs threads** (N={s.fixed_N}, T={s.fixed_T}, window {WINDOW})",
        "",
        "| threads | time (s) | ns / element | speed-up | efficiency | CPU/wall |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    base = r.threads[0].time
    for p in r.threads:
        n = p.threads or 1
        lines.append(
            f"| {n} | {p.time:.4f} | {p.ns_per_element:.2f} | {base / p.time:.2f}x "
            f"| {base / p.time / n:.0%} | {p.cpu_over_wall:.2f} |"
        )
    lines += [
        "",
        *verdict_lines(r),
        "",
        f"Run time {elapsed:.1f} s; 1-minute load average {load[0]:.2f} at start, "
        f"{load[1]:.2f} at end, on {os.cpu_count()} CPUs (other processes inflate the times; "
        "a CPU/wall well below the thread count means they held cores).",
        "",
    ]
    return "\n".join(lines)


def plot(r: Results, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), dpi=100)
    FigureCanvasAgg(fig)
    (ax_n, ax_t), (ax_w, ax_p) = fig.subplots(2, 2)
    s = r.sizes

    def linear_panel(ax: Axes, xs: list[int], ts: list[float], xlabel: str, title: str) -> None:
        ax.plot(xs, ts, "o-", color="C0", label="measured")
        x_max, t_max = xs[int(np.argmax(xs))], ts[int(np.argmax(xs))]
        ax.plot([0, x_max], [0, t_max], "--", color="grey", label="linear (origin to largest)")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time (s)")
        ax.set_title(title)
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)

    linear_panel(
        ax_n,
        [p.N for p in r.n_curve],
        [p.time for p in r.n_curve],
        "N (assets)",
        f"time vs N (T={s.n_curve_T})",
    )
    linear_panel(
        ax_t,
        [p.T for p in r.t_curve],
        [p.time for p in r.t_curve],
        "T (dates)",
        f"time vs T (N={s.t_curve_N})",
    )

    ws = [p.window for p in r.w_curve]
    ax_w.plot(ws, [p.time for p in r.w_curve], "o-", color="C1")
    ax_w.set_xscale("log")
    ax_w.set_xticks(ws, [str(w) for w in ws])
    ax_w.minorticks_off()
    ax_w.set_ylim(0, max(p.time for p in r.w_curve) * 1.2)
    ax_w.set_xlabel("window length (dates, log scale)")
    ax_w.set_ylabel("time (s)")
    ax_w.set_title(f"time vs window (N={s.fixed_N}, T={s.fixed_T})")
    ax_w.grid(alpha=0.3)

    ns = [p.threads or 1 for p in r.threads]
    base = r.threads[0].time
    ax_p.plot(ns, [base / p.time for p in r.threads], "o-", color="C2", label="measured")
    ax_p.plot([1, max(ns)], [1, max(ns)], "--", color="grey", label="ideal")
    ax_p.set_xticks(ns)
    ax_p.set_xlim(0.8, max(ns) + 0.2)
    ax_p.set_ylim(0, max(ns) * 1.1)
    ax_p.set_xlabel("RAYON_NUM_THREADS")
    ax_p.set_ylabel("speed-up vs 1 thread")
    ax_p.set_title(f"speed-up vs threads (N={s.fixed_N}, T={s.fixed_T})")
    ax_p.legend(loc="upper left")
    ax_p.grid(alpha=0.3)

    fig.suptitle(f"factorcore.rolling_ols scaling{' (quick)' if r.quick else ''}")
    fig.tight_layout()
    fig.savefig(path)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def report(points: Sequence[Point]) -> None:
    for p in points:
        runs = ", ".join(f"{t:.4f}" for t in p.times)
        threads = f" threads={p.threads}" if p.threads else ""
        print(
            f"  T={p.T} N={p.N} W={p.window}{threads}: median {p.time:.4f} s of [{runs}], "
            f"CPU/wall {p.cpu_over_wall:.2f}",
            file=sys.stderr,
        )


def run(sizes: Sizes, quick: bool, repeats: int) -> Results:
    T_max = max(sizes.n_curve_T, *sizes.t_curve, sizes.fixed_T)
    N_max = max(*sizes.n_curve, sizes.t_curve_N, sizes.fixed_N)
    y_all, x_all = make_returns(T_max, N_max, K)

    def curve(name: str, shapes: Sequence[tuple[int, int, int]]) -> list[Point]:
        print(name, file=sys.stderr)
        cases = [(*sub_returns(y_all, x_all, T, N), w) for T, N, w in shapes]
        points = time_curve(cases, repeats)
        report(points)
        return points

    n_curve = curve("time vs N", [(sizes.n_curve_T, n, WINDOW) for n in sizes.n_curve])
    t_curve = curve("time vs T", [(t, sizes.t_curve_N, WINDOW) for t in sizes.t_curve])
    windows = [w for w in WINDOWS if w < sizes.fixed_T]
    w_curve = curve("time vs window", [(sizes.fixed_T, sizes.fixed_N, w) for w in windows])
    print("time vs threads", file=sys.stderr)
    threads = time_threads(thread_counts(), sizes.fixed_T, sizes.fixed_N, WINDOW, repeats)
    report(threads)
    return Results(sizes, quick, repeats, n_curve, t_curve, w_curve, threads)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (T=1260, N<=500)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per point (median of)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "T,N,WINDOW": one point, JSON
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    if args.worker:
        T, N, window = (int(v) for v in args.worker.split(","))
        run_worker(T, N, window)
        return 0

    start, load_start = time.perf_counter(), os.getloadavg()[0]
    results = run(QUICK if args.quick else FULL, args.quick, args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / "scaling.png")
    md = markdown(results, time.perf_counter() - start, (load_start, os.getloadavg()[0]))
    (args.out / "scaling.md").write_text(md)
    print(md)
    print(f"wrote {args.out / 'scaling.md'} and {args.out / 'scaling.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
