"""Thread safety and GIL release."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import factorcore as fc
import numpy as np
import pytest
from helpers import assert_frames_close, make_dates, wide_frame
from reference import make_factor_data

KEYS = ("coef", "r2", "resid_vol", "tstat", "n_obs")


def _task_inputs(i: int):
    y, x = make_factor_data(400, 30, 3 + i % 3, seed=500 + i)
    rng = np.random.default_rng(600 + i)
    y[rng.random(y.shape) < 0.03] = np.nan
    x[rng.random(400) < 0.01, 0] = np.nan
    kw = [
        {"window": 120},
        {"window": 120, "min_periods": 60, "halflife": 30.0},
        {"window": None},
        {"window": 60, "intercept": False},
    ][i % 4]
    return y, x, kw


def _run(i: int):
    y, x, kw = _task_inputs(i)
    return fc.rolling_ols(y, x, tstats=True, **kw)


def test_concurrent_calls_match_sequential_calls():
    n_tasks = 16
    sequential = [_run(i) for i in range(n_tasks)]
    for _ in range(2):
        with ThreadPoolExecutor(max_workers=8) as pool:
            concurrent = list(pool.map(_run, range(n_tasks)))
        for i, (a, b) in enumerate(zip(sequential, concurrent, strict=True)):
            for key in KEYS:
                np.testing.assert_array_equal(b[key], a[key], err_msg=f"task {i} {key}")


def test_concurrent_rolling_exposures_match_sequential_calls():
    def run(i: int):
        y, x, kw = _task_inputs(i)
        dates = make_dates(400)
        rets = wide_frame(dates, y[:, :8], [f"A{j}" for j in range(8)])
        facs = wide_frame(dates, x, [f"F{j}" for j in range(x.shape[1])])
        return fc.rolling_exposures(rets, facs, tstats=True, **kw)

    sequential = [run(i) for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(run, range(8)))
    for a, b in zip(sequential, concurrent, strict=True):
        assert_frames_close(b, a)


def test_concurrent_bad_input_raises_in_each_thread():
    y, x = make_factor_data(50, 2, 2, seed=700)

    def bad(i: int):
        with pytest.raises(fc.InvalidInputError):
            fc.rolling_ols(y, x, window=100 + i)
        return fc.rolling_ols(y, x, window=20)["coef"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(bad, range(12)))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def _spin_rate(seconds: float) -> float:
    """Iterations per second of the spinner loop while the main thread sleeps."""
    state = {"count": 0, "stop": False}

    def spin():
        while not state["stop"]:
            state["count"] += 1

    th = threading.Thread(target=spin)
    th.start()
    time.sleep(0.02)
    c0 = state["count"]
    t0 = time.perf_counter()
    time.sleep(seconds)
    c1 = state["count"]
    t1 = time.perf_counter()
    state["stop"] = True
    th.join()
    return (c1 - c0) / (t1 - t0)


def test_gil_is_released_during_rolling_ols():
    """A pure-Python thread keeps running while a large rolling_ols executes.

    The main thread reads the spinner's counter right before and right after the call.  If the
    core held the GIL for the whole computation the spinner could not run at all during it
    (only a few switch intervals of leakage around the call), so its progress would be ~0.
    """
    rng = np.random.default_rng(800)
    t_len, k = 2000, 5
    n_assets = 2000
    x = 0.01 * rng.standard_normal((t_len, k))
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        rate = _spin_rate(0.2)
        while True:
            y = x @ rng.standard_normal((k, n_assets)) + 0.01 * rng.standard_normal(
                (t_len, n_assets)
            )
            state = {"count": 0, "stop": False}

            def spin(state=state):
                while not state["stop"]:
                    state["count"] += 1

            th = threading.Thread(target=spin)
            th.start()
            time.sleep(0.02)
            c0 = state["count"]
            t0 = time.perf_counter()
            res = fc.rolling_ols(y, x, window=252, tstats=True)
            t1 = time.perf_counter()
            c1 = state["count"]
            state["stop"] = True
            th.join()
            duration = t1 - t0
            if duration >= 0.2 or n_assets >= 16000:
                break
            n_assets *= 2  # the call was too quick to measure anything: make it bigger
    finally:
        sys.setswitchinterval(old_interval)

    assert res["coef"].shape == (t_len, n_assets, k + 1)
    assert duration >= 0.05, f"rolling_ols took only {duration:.3f}s: cannot measure"
    progress = (c1 - c0) / (rate * duration)
    # GIL released: the spinner gets a large share of a core (>= ~1/3 even if the core keeps
    # both cores busy).  GIL held: only leakage of a few 1 ms switch intervals (< 5%).
    assert progress > 0.10, (
        f"Python thread progressed {c1 - c0} iterations ({progress:.1%} of its free-running "
        f"rate) during a {duration:.3f}s rolling_ols call: the GIL seems to be held"
    )
