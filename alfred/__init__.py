"""Alfred, the application: scenarios, workflows and the ``alfred`` command line.

This package sits on top of the simulation core (:mod:`engine`) and the component
packages (:mod:`analysts`, :mod:`strategies`, :mod:`portfolio`, :mod:`reports`); nothing
below imports it. From a notebook::

    import alfred
    result = alfred.run("scenarios/quickstart.yaml")    # or a dict; a RunResult
    result.summary                                      # one row per strategy
    result["topk"].metrics()                            # flat dict, with/without costs
    result["topk"].tearsheet("topk.html"); result["topk"].plot()
    bt = alfred.run_backtest(bars, signals, strategy="nuanced")   # names resolved here
    wf = alfred.walkforward("scenarios/walkforward_magnitude_topk.yaml")
    sw = alfred.sweep("scenarios/sweep_topk.yaml")

``alfred.run``, ``alfred.walkforward``, ``alfred.sweep`` and ``alfred.stress`` are modules
that can be called as their workflow (``alfred.run.run``, ``run_walkforward``,
``run_sweep``, ``run_stress``; see ``alfred/_callable.py``).

The layout, the data flow from YAML to report and the glossary are in
``docs/architecture.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "validate": ("alfred.run", "validate_scenario"),
    "run_backtest": ("alfred.api", "run_backtest"),
    "metrics": ("alfred.api", "metrics"),
    "RunResult": ("alfred.api", "RunResult"),
    "StrategyResult": ("alfred.api", "StrategyResult"),
    "Backtest": ("alfred.api", "Backtest"),
    "RunSummary": ("alfred.run", "RunSummary"),
    "as_scenario": ("alfred.run", "as_scenario"),
    "WalkForwardResult": ("alfred.walkforward", "WalkForwardResult"),
    "SweepResult": ("alfred.sweep", "SweepResult"),
    "StressResult": ("alfred.stress", "StressResult"),
    "load_scenario": ("alfred.scenario", "load_scenario"),
    "parse_scenario": ("alfred.scenario", "parse_scenario"),
    "Scenario": ("alfred.scenario", "Scenario"),
}


# Workflow packages double as their workflow: alfred.walkforward(path) runs it.
_WORKFLOWS = ("run", "walkforward", "sweep", "stress")


def __getattr__(name: str) -> Any:
    # workflows import polars, numba and friends: load them on first use, so that
    # `python -m alfred --help` and reading a scenario stay fast
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    if name in _WORKFLOWS:
        return import_module(f"alfred.{name}")
    raise AttributeError(f"module 'alfred' has no attribute {name!r}")


__all__ = sorted((*_LAZY, *_WORKFLOWS))
