"""Shared set-up of the pytest-benchmark comparisons in ``benches/``.

Every benchmark belongs to a *group*: one workload on one set of inputs, with exactly one
factorcore entry and one or more peers. A peer's answer is checked against factorcore's
before the peer is timed. ``benches/ratios.py`` turns a ``--benchmark-json`` file into the
ratio table (peer time / factorcore time per group) and checks it against the baseline.

Sizes: quick by default (the CI comparison, a few minutes on 2 cores); set
``FACTORCORE_BENCH=full`` for the sizes of the capability issues.

These files are not collected by a plain ``pytest`` run (its testpaths are ``tests/``);
run them with ``pytest benches --benchmark-only``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # the bench_* scripts hold the peers

FULL = os.environ.get("FACTORCORE_BENCH", "quick") == "full"


def size(quick: Any, full: Any) -> Any:
    """The quick or the full value of a workload parameter."""
    return full if FULL else quick


def measure(
    benchmark: Any,
    group: str,
    name: str,
    function: Callable[[], Any],
    *,
    factorcore: bool = False,
    scale: float = 1.0,
    rounds: int | None = None,
) -> Any:
    """Time `function` as `name` in `group`; returns its result.

    `scale` multiplies the measured time in the ratio table: a peer timed on a sample
    of the work (say 10 of 3000 assets) has scale 300. `rounds` fixes the number of
    calls (for slow peers: ``rounds=1``); otherwise pytest-benchmark calibrates.
    """
    benchmark.group = group
    benchmark.extra_info.update(
        group=group, name=name, side="factorcore" if factorcore else "peer", scale=scale
    )
    if rounds is not None:
        return benchmark.pedantic(function, rounds=rounds, iterations=1, warmup_rounds=0)
    return benchmark(function)
