"""Alfred's engine: data, the numba event engine and the Python API around it.

The public surface is small::

    import engine
    bars = engine.load_bars("sp500_stocks")
    result = engine.run_backtest(bars, weights, costs=engine.Costs(commission_bps=5))
    result.equity, result.orders, result.fills, result.trades, result.positions

Names load on first use, so ``import engine.kernels`` (numba and numpy only) does not
pull in pydantic or the data layer.
"""

from importlib import import_module
from typing import Any

from engine.errors import AlfredError, ConfigError, DataError, RunError

_LAZY = {
    "run_backtest": "engine.backtest", "to_panel": "engine.backtest",
    "TargetWeights": "engine.backtest",
    "Panel": "engine.panel",
    "SignalPlan": "engine.plan", "Strategy": "engine.plan", "WeightPlan": "engine.plan",
    "BacktestResult": "engine.result",
    "Costs": "engine.settings", "Entries": "engine.settings",
    "SimulationSettings": "engine.settings", "Stops": "engine.settings",
    **{name: "engine.data" for name in (
        "load_bars", "validate_bars", "align_bars", "resample_bars", "list_datasets",
        "dataset_info", "load_benchmark", "signals_to_matrix")},
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = ["AlfredError", "ConfigError", "DataError", "RunError", *sorted(_LAZY)]
