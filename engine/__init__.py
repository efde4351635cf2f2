"""Alfred's engine: data, the numba event engine and the Python API around it.

The public surface is small::

    import engine
    bars = engine.load_bars("sp500_stocks")
    result = engine.run_backtest(bars, weights, costs=engine.Costs(commission_bps=5))
    result.equity, result.orders, result.fills, result.trades, result.positions
"""

from engine.backtest import TargetWeights, run_backtest, to_panel
from engine.errors import AlfredError, ConfigError, DataError, RunError
from engine.panel import Panel
from engine.plan import SignalPlan, Strategy, WeightPlan
from engine.result import BacktestResult
from engine.settings import Costs, SimulationSettings, Stops


def __getattr__(name: str):
    # the data layer is imported on first use so `import engine` stays light
    if name in {"load_bars", "validate_bars", "align_bars", "resample_bars", "list_datasets",
                "dataset_info", "load_benchmark", "signals_to_matrix"}:
        import engine.data as _data

        return getattr(_data, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = [
    "AlfredError", "BacktestResult", "ConfigError", "Costs", "DataError", "Panel", "RunError", "Stops",
    "SignalPlan", "SimulationSettings", "Strategy", "TargetWeights", "WeightPlan", "run_backtest", "to_panel",
    "load_bars", "validate_bars", "align_bars", "resample_bars", "list_datasets",
    "dataset_info", "load_benchmark", "signals_to_matrix",
]
