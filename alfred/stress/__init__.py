"""``alfred stress SCENARIO``: the scenario's strategies on synthetic markets.

The markets themselves (regime-switching model, block bootstrap, shocks) are built by
:mod:`engine.synthetic`; this package reads the scenario's ``stress:`` section, fans the
paths out through the executor and writes the report.
"""

from importlib import import_module
from typing import Any

from alfred._callable import make_callable
from alfred.stress._spec import ShockSpec, StressSpec

# alfred.scenario imports the stress: section's schema from here; the runner loads on
# first use only, so reading a scenario stays cheap.
_LAZY = {"run_stress": "_run", "StressResult": "_run"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"alfred.stress.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'alfred.stress' has no attribute {name!r}")


__all__ = ["ShockSpec", "StressResult", "StressSpec", "run_stress"]

# alfred.stress(scenario, ...) is run_stress(scenario, ...); see alfred._callable
make_callable(__name__, "run_stress")
