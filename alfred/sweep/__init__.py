"""Sweeps: a scenario run over a grid or random sample of its own keys (and symbols).

``alfred sweep SCENARIO`` runs every variant of the scenario's ``sweep:`` section as a
normal run folder, fanned out through :mod:`engine.executor`, resumable, and summarised
with the deflated Sharpe ratio for the number of configurations tried.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from alfred._callable import make_callable
from alfred.sweep._spec import Range, SweepSpec, expand, set_dotted

# The runner imports alfred.scenario, which imports SweepSpec from here: load it lazily.
_LAZY = ("SUMMARY_METRICS", "SweepResult", "Variant", "plan_sweep", "run_sweep")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module("alfred.sweep._run"), name)
    raise AttributeError(f"module 'alfred.sweep' has no attribute {name!r}")


__all__ = ["SUMMARY_METRICS", "Range", "SweepResult", "SweepSpec", "Variant", "expand",
           "plan_sweep", "run_sweep", "set_dotted"]

# alfred.sweep(scenario, ...) is run_sweep(scenario, ...); see alfred._callable
make_callable(__name__, "run_sweep")
