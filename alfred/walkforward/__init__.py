"""Walk-forward validation: analysts refit fold by fold, one stitched out-of-sample curve.

``alfred walkforward SCENARIO`` reads the scenario's ``walkforward:`` section
(:class:`WalkForwardSpec`), cuts the data into folds (:func:`make_folds`), fits the
analysts of every fold through the executor, trades the folds in order with capital
carried from one to the next, and writes the stitched report next to a per-fold table.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from alfred._callable import make_callable
from alfred.walkforward._folds import Fold, make_folds
from alfred.walkforward._spec import WalkForwardSpec, add_span

# alfred.scenario imports WalkForwardSpec from here; the runner imports alfred.scenario.
_LAZY = {"load_history": "_fold", "run_walkforward": "_run", "plan_folds": "_run", "WalkForwardResult": "_run",
         "StrategyOOS": "_run", "fit_fold": "_fold", "predict_fold": "_fold",
         "fold_task": "_fold", "forecast_metrics": "_fold",
         "write_walkforward_index": "_report"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"alfred.walkforward.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'alfred.walkforward' has no attribute {name!r}")


__all__ = ["load_history", "Fold", "StrategyOOS", "WalkForwardResult", "WalkForwardSpec", "add_span",
           "fit_fold", "fold_task", "forecast_metrics", "make_folds", "plan_folds",
           "predict_fold", "run_walkforward", "write_walkforward_index"]

# alfred.walkforward(scenario, ...) is run_walkforward(scenario, ...); see alfred._callable
make_callable(__name__, "run_walkforward")
