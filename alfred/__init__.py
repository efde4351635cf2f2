"""Alfred, the application: scenarios, workflows and the ``alfred`` command line.

This package sits on top of the simulation core (:mod:`engine`) and the component
packages (:mod:`analysts`, :mod:`strategies`, :mod:`portfolio`, :mod:`reports`); nothing
below imports it. From a notebook::

    import alfred
    summary = alfred.run("scenarios/quickstart.yaml")      # a run folder + headline figures
    result = alfred.run_backtest(bars, signals, strategy="nuanced")   # names resolved here

The layout, the data flow from YAML to report and the glossary are in
``docs/architecture.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "run": ("alfred.run", "run_scenario"),
    "validate": ("alfred.run", "validate_scenario"),
    "run_backtest": ("alfred.components", "run_backtest"),
    "load_scenario": ("alfred.scenario", "load_scenario"),
    "parse_scenario": ("alfred.scenario", "parse_scenario"),
    "Scenario": ("alfred.scenario", "Scenario"),
}


def __getattr__(name: str) -> Any:
    # workflows import polars, numba and friends: load them on first use, so that
    # `python -m alfred --help` and reading a scenario stay fast
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'alfred' has no attribute {name!r}")


__all__ = sorted(_LAZY)
