"""How a result depends on trading costs: a cost-sensitivity curve and the break-even cost.

The run is replayed (same bars, same plan, same settings) with every fill charged a
one-way cost of ``c`` bps -- as commission on the fill value, with spread, slippage, fixed
fees and market impact off; the short-borrow fee and cash interest stay as in the run. The
break-even cost is the ``c`` at which the replay's CAGR is zero (found by bisection to
0.1 bps); None when the run loses money before any trading cost, or still earns at
``max_bps``.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from engine.errors import ConfigError

CURVE_BPS = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0)


def _cagr(result) -> float:
    years = result.panel.n_bars / result.periods_per_year
    growth = result.final_equity / result.capital
    if growth <= 0.0:
        return -1.0
    return growth ** (1.0 / years) - 1.0


def _replay(result, bps: float):
    from engine.backtest import run_backtest

    costs = result.simulation.costs.model_copy(update={
        "commission_bps": float(bps), "commission_fixed": 0.0, "slippage_bps": 0.0,
        "half_spread_bps": 0.0, "impact": "none"})
    return run_backtest(result.panel, result.plan, settings=result.simulation.replace(
        costs=costs), record_positions=False)


class _Replays:
    """(CAGR, total return) of ``result`` replayed at a cost, each cost replayed once (the
    curve's 0 bps is also the search's lower edge)."""

    def __init__(self, result) -> None:
        if result.plan is None or result.simulation is None:
            raise ConfigError("this result does not carry its plan and settings; run it "
                              "with engine.run_backtest to get a cost-sensitivity curve")
        self.result = result
        self._seen: dict[float, tuple[float, float]] = {}

    def __call__(self, bps: float) -> tuple[float, float]:
        key = float(bps)
        if key not in self._seen:
            replay = _replay(self.result, key)
            self._seen[key] = (_cagr(replay), replay.final_equity / replay.capital - 1.0)
        return self._seen[key]

    def cagr(self, bps: float) -> float:
        return self(bps)[0]


def cost_sensitivity(result, curve_bps: tuple[float, ...] = CURVE_BPS,
                     max_bps: float = 1000.0) -> dict[str, Any]:
    """``{"curve": [{"one_way_bps", "cagr", "total_return"}, ...], "break_even_bps"}``."""
    replays = _Replays(result)
    rows = []
    for bps in curve_bps:
        cagr, total_return = replays(bps)
        rows.append({"one_way_bps": float(bps), "cagr": cagr, "total_return": total_return})
    return {"curve": rows, "break_even_bps": _break_even(replays, max_bps, 0.1)}


def break_even_bps(result, *, max_bps: float = 1000.0, tol_bps: float = 0.1) -> float | None:
    """The one-way cost in bps at which the replay's CAGR is zero (see the module doc)."""
    return _break_even(_Replays(result), max_bps, tol_bps)


def _break_even(replays: _Replays, max_bps: float, tol_bps: float) -> float | None:
    lo, hi = 0.0, float(max_bps)
    if replays.cagr(lo) <= 0.0 or replays.cagr(hi) > 0.0:
        return None
    while hi - lo > tol_bps:
        mid = 0.5 * (lo + hi)
        if replays.cagr(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def curve_frame(sensitivity: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(sensitivity["curve"])
