"""Module-level task functions for the executor tests (spawned workers import them)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def square(x: int) -> int:
    if x == 3:
        raise ValueError("three is not allowed")
    return x * x


def backtest_total_return(seed: int, n_bars: int = 200) -> dict:
    """A real engine run on random bars: what the executor equality test compares."""
    import numpy as np

    from engine import run_backtest
    from engine.panel import Panel
    from engine.plan import WeightPlan

    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_bars, 3)), axis=0))
    ts = np.arange(n_bars).astype("datetime64[D]").astype("datetime64[ns]")
    panel = Panel(ts=ts, assets=("A", "B", "C"), open=close.copy(), high=close.copy(),
                  low=close.copy(), close=close, volume=np.full_like(close, 1e9),
                  periods_per_year=252.0, has_open=True)
    weights = np.where(rng.random((n_bars, 3)) < 0.1, rng.dirichlet([1, 1, 1], n_bars), np.nan)
    result = run_backtest(panel, WeightPlan(weights))
    equity = result.equity["equity"].to_numpy()
    return {"seed": seed, "final_equity": float(equity[-1]), "pid": os.getpid()}


def sleep_then(x: int, seconds: float, marker_dir: str) -> int:
    time.sleep(seconds)
    Path(marker_dir, f"{x}.done").write_text("1")
    return x


def thread_setting() -> str:
    return os.environ.get("OMP_NUM_THREADS", "")


def crash_worker() -> None:
    os._exit(3)
