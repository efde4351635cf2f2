"""What a strategy hands the engine: a plan of instructions over the whole panel.

Two forms exist, both dense ``(n_bars, n_assets)`` arrays aligned with a :class:`Panel`:

* :class:`WeightPlan` -- ``target_weight[t, j]`` is an instruction decided at the close of
  bar ``t`` to rebalance asset ``j`` to that fraction of equity at the fill. NaN means "no
  instruction": the position is held as it is (no silent daily re-weighting).
* :class:`SignalPlan` -- entry/exit flags evaluated *inside* the event loop against the
  position actually held, so position-dependent policies (exit only what is open,
  reverse on an opposite entry) see real fills rather than a precomputed table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import polars as pl

from engine.panel import Panel

SizeType = Literal["weight", "value", "qty"]


@dataclass(frozen=True, eq=False)
class WeightPlan:
    target_weight: np.ndarray  # float64 (n_bars, n_assets), NaN = no instruction


@dataclass(frozen=True, eq=False)
class SignalPlan:
    long_entry: np.ndarray  # bool (n_bars, n_assets)
    long_exit: np.ndarray
    short_entry: np.ndarray
    short_exit: np.ndarray
    # Size of a new position: a fraction of equity ("weight"), cash value ("value") or a
    # quantity ("qty"); a scalar or a float64 (n_bars, n_assets) array.
    size: float | np.ndarray = 1.0
    size_type: SizeType = "weight"


Plan = WeightPlan | SignalPlan


@runtime_checkable
class Strategy(Protocol):
    """A pure policy: (panel, signals) -> plan. Registered by name in ``strategies``."""

    name: str

    def plan(self, panel: Panel, signals: pl.DataFrame | None) -> Plan: ...
