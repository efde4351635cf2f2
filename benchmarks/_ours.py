"""Our engine on the workloads, through the public ``run_backtest`` with a ready plan.

Settings that make the comparison like for like (the same mapping as
``tests/engine/test_vs_vectorbt.py``): decisions at the close of t fill at the close of
t+1 (``fill="next_close"``), commission only (10 bps), no spread/slippage, no borrow fee;
the gross limit is raised so it never binds (the peers have none), the net limit stays at
1 so buys cannot take cash below zero -- the rule vectorbt and backtrader apply too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import engine.backtest as _backtest
from engine import BacktestResult, Costs, Panel, SignalPlan, WeightPlan, run_backtest

FEE_BPS = 10.0
COSTS = Costs(commission_bps=FEE_BPS, commission_fixed=0.0, slippage_bps=0.0,
              half_spread_bps=0.0, borrow_fee_bps=0.0)
GROSS_LIMIT = 100.0  # never binds: no peer has a gross limit
# A buy the cash cannot pay for is cut on its own (the peers' rule), not by scaling the
# whole rebalance (the engine's default "scale" policy, which no peer has).
LIMIT_POLICY = "clip"


def run_sma_signals(panel: Panel, long_entry: np.ndarray, short_entry: np.ndarray,
                    position_value: float, capital: float) -> BacktestResult:
    """Reversal system: a long entry flips a short to long and vice versa; no exits."""
    no_exit = np.zeros_like(long_entry)
    plan = SignalPlan(long_entry, no_exit, short_entry, no_exit, size=position_value,
                      size_type="value")
    return run_backtest(panel, plan, costs=COSTS, fill="next_close", capital=capital,
                        max_gross_leverage=GROSS_LIMIT, max_net_leverage=1.0,
                        limit_policy=LIMIT_POLICY)


def run_target_weights(panel: Panel, weights: np.ndarray, capital: float) -> BacktestResult:
    """Rebalance to ``weights`` (NaN rows: hold) -- gross 1.0, limit 2.0 so fees never clip."""
    return run_backtest(panel, WeightPlan(weights), costs=COSTS, fill="next_close",
                        capital=capital, max_gross_leverage=2.0, max_net_leverage=1.0,
                        limit_policy=LIMIT_POLICY)


def equity_curve(result: BacktestResult) -> np.ndarray:
    return result.equity["equity"].to_numpy()


_KERNEL_NAMES = ("simulate_signals_nb", "simulate_weights_nb")


@contextmanager
def _kernel_stopwatch(spent: list[float]) -> Iterator[None]:
    """Time the numba loop kernels inside ``run_backtest`` by wrapping the names the
    backtest module calls them by (restored afterwards; no engine file is touched)."""
    # a renamed kernel is simply not timed; kernel_s = 0 then shows it (the smoke test fails)
    originals = {name: getattr(_backtest, name) for name in _KERNEL_NAMES
                 if hasattr(_backtest, name)}

    def wrap(kernel: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return kernel(*args)
            finally:
                spent.append(time.perf_counter() - start)
        return timed

    for name, kernel in originals.items():
        setattr(_backtest, name, wrap(kernel))
    try:
        yield
    finally:
        for name, kernel in originals.items():
            setattr(_backtest, name, kernel)


def kernel_breakdown(call: Callable[[], BacktestResult], repeats: int = 5) -> dict[str, float]:
    """Split a warmed-up call into the numba kernel and everything around it.

    ``python_s`` (validation, conversion, record allocation, result frames) is the best
    total minus the best kernel time over ``repeats`` runs.
    """
    totals: list[float] = []
    kernels: list[float] = []
    for _ in range(max(1, repeats)):
        spent: list[float] = []
        with _kernel_stopwatch(spent):
            start = time.perf_counter()
            _ = call().equity  # building the frame is part of the call
            totals.append(time.perf_counter() - start)
        kernels.append(sum(spent))
    total, kernel = min(totals), min(kernels)
    return {"total_s": total, "kernel_s": kernel, "python_s": max(total - kernel, 0.0),
            "kernel_share": kernel / total if total > 0 else float("nan")}
