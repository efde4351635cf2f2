"""Synthetic markets for stress tests: regime-switching simulation, block bootstrap, shocks.

See :mod:`engine.stress._generator` for the model. Every generator returns
:class:`SyntheticPath` objects whose ``bars`` is an ordinary bars frame.
"""

from importlib import import_module
from typing import Any

from engine.stress._spec import ShockSpec, StressSpec

# engine.scenario imports the stress: section's schema from here; the generator (numpy,
# pandas) loads on first use only, so reading a scenario stays cheap.
_GENERATOR = {"REGIME_NAMES", "SHOCK_KINDS", "RegimeModel", "SyntheticPath", "apply_shocks",
              "block_bootstrap", "calibrate", "correlation_shock", "count_transitions",
              "crash", "label_regimes", "simulate_regimes", "stationary_bootstrap_indices",
              "stationary_distribution", "vol_spike"}
_LAZY = {"run_stress": "_run", "StressResult": "_run"}


def __getattr__(name: str) -> Any:
    if name in _GENERATOR:
        return getattr(import_module("engine.stress._generator"), name)
    if name in _LAZY:
        return getattr(import_module(f"engine.stress.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'engine.stress' has no attribute {name!r}")


__all__ = [
    "ShockSpec",
    "StressSpec",
    "StressResult",
    "run_stress",
    "REGIME_NAMES",
    "SHOCK_KINDS",
    "RegimeModel",
    "SyntheticPath",
    "apply_shocks",
    "block_bootstrap",
    "calibrate",
    "count_transitions",
    "correlation_shock",
    "crash",
    "label_regimes",
    "simulate_regimes",
    "stationary_bootstrap_indices",
    "stationary_distribution",
    "vol_spike",
]
