"""Timing rules shared by every engine, so no side gets a friendlier stopwatch.

* The first call of a workload (numba compilation, caches, imports warming up) is timed
  separately and excluded; its output is the one the equality checks use.
* Then the call is repeated until at least ``min_repeats`` runs *and* ``min_total_s``
  seconds have accumulated (a 5 ms call runs hundreds of times), unless ``max_total_s``
  is used up first (a 30 s backtrader run stops after that budget, with at least one run).
* The best (minimum) time is the figure reported -- the run least disturbed by the
  machine -- with the median next to it. The garbage collector is off inside each timed
  call, as in :mod:`timeit`.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    first_s: float  # warm-up call, excluded from the figures below
    best_s: float
    median_s: float
    repeats: int

    def throughput(self, asset_bars: int) -> float:
        """Asset-bars simulated per second at the best time."""
        return asset_bars / self.best_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def timed_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call with the garbage collector paused.

    No ``gc.collect()`` here: with vectorbt's object graph loaded one full collection
    costs about a second, which would dominate a suite of thousands of short calls.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()
    return elapsed, result


def best_of(fn: Callable[[], Any], *, first_s: float, min_repeats: int = 5,
            min_total_s: float = 1.0, max_total_s: float | None = None) -> Timing:
    """Repeat ``fn`` (already warmed up by the caller) and keep the best time."""
    times: list[float] = []
    total = 0.0
    gc.collect()  # start every measurement from the same clean heap
    while True:
        elapsed, _ = timed_call(fn)
        times.append(elapsed)
        total += elapsed
        if len(times) >= min_repeats and total >= min_total_s:
            break
        if max_total_s is not None and total >= max_total_s:
            break
    return Timing(first_s=first_s, best_s=min(times), median_s=statistics.median(times),
                  repeats=len(times))
