"""Probability-threshold strategies: ``simple`` and ``nuanced``.

Both read the ``prob_up`` signal and emit a :class:`~engine.plan.SignalPlan`: entry and
exit flags that the engine evaluates inside its event loop against the position it
actually holds. A flag table cannot know whether an earlier entry filled; the event loop
does, so "exit only what is open" and "reverse on the opposite signal" stay correct under
rejected or partial fills. A bar without a signal (NaN) raises no flag: the position is
kept as it is.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from engine.errors import DataError
from engine.panel import Panel
from engine.plan import SignalPlan
from strategies._base import ConfiguredStrategy, StrategyConfig, fmt_ts
from strategies._signals import signal_matrix


class SimpleConfig(StrategyConfig):
    """``threshold``: prob_up above it is a long signal, below it a short signal; exactly
    at it is "no view" (no entry, no exit). ``size``: weight of equity per new position,
    default ``1 / n_assets`` so a fully invested book never needs leverage."""

    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    allow_short: bool = True
    size: float | None = Field(None, gt=0.0, allow_inf_nan=False)


class NuancedConfig(StrategyConfig):
    """Enter only on conviction (above ``upper`` / below ``lower``); inside the band, exit
    a position once the signal crosses ``mid`` against it, and never enter."""

    lower: float = Field(0.3, ge=0.0, le=1.0)
    mid: float = Field(0.5, ge=0.0, le=1.0)
    upper: float = Field(0.7, ge=0.0, le=1.0)
    allow_short: bool = True
    size: float | None = Field(None, gt=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> NuancedConfig:
        if not self.lower < self.mid < self.upper:
            raise ValueError(
                f"thresholds must satisfy lower < mid < upper, got lower={self.lower}, "
                f"mid={self.mid}, upper={self.upper}"
            )
        return self


def prob_up_matrix(signals: pl.DataFrame | None, panel: Panel, strategy: str) -> np.ndarray:
    """The prob_up signal as a matrix, rejecting values that are not probabilities."""
    prob_up = signal_matrix(signals, panel, "prob_up", strategy=strategy)
    outside = np.isfinite(prob_up) & ((prob_up < 0.0) | (prob_up > 1.0))
    if outside.any():
        t, j = (int(i[0]) for i in np.nonzero(outside))
        raise DataError(
            f"strategy {strategy!r}: prob_up must lie in [0, 1], got {prob_up[t, j]} for asset "
            f"{panel.assets[j]!r} at {fmt_ts(panel.ts[t])}; fix the analyst's output or use a strategy "
            f"that reads score"
        )
    return prob_up


def _size(size: float | None, panel: Panel) -> float:
    return size if size is not None else 1.0 / panel.n_assets


class SimpleStrategy(ConfiguredStrategy):
    """prob_up > threshold: go long; < threshold: go short (or just exit, long-only).

    long_entry = p > th, short_entry = p < th; each side's exit is the other side's
    signal, so an opposite signal both exits and (when shorting is allowed) reverses.
    """

    name: ClassVar[str] = "simple"
    config_class: ClassVar[type[StrategyConfig]] = SimpleConfig
    config: SimpleConfig

    def plan(self, panel: Panel, signals: pl.DataFrame | None) -> SignalPlan:
        cfg = self.config
        prob_up = prob_up_matrix(signals, panel, self.name)
        up = prob_up > cfg.threshold  # NaN compares False: no signal, no flag
        down = prob_up < cfg.threshold
        none = np.zeros_like(up)
        return SignalPlan(
            long_entry=up,
            long_exit=down,
            short_entry=down if cfg.allow_short else none,
            short_exit=up if cfg.allow_short else none,
            size=_size(cfg.size, panel),
            size_type="weight",
        )


class NuancedStrategy(ConfiguredStrategy):
    """Strong signals enter, a signal that crosses ``mid`` exits, the band never enters.

    long_entry = p > upper, short_entry = p < lower, long_exit = p < mid,
    short_exit = p > mid. A strong opposite signal therefore exits and reverses.
    """

    name: ClassVar[str] = "nuanced"
    config_class: ClassVar[type[StrategyConfig]] = NuancedConfig
    config: NuancedConfig

    def plan(self, panel: Panel, signals: pl.DataFrame | None) -> SignalPlan:
        cfg = self.config
        prob_up = prob_up_matrix(signals, panel, self.name)
        none = np.zeros(prob_up.shape, dtype=bool)
        return SignalPlan(
            long_entry=prob_up > cfg.upper,
            long_exit=prob_up < cfg.mid,
            short_entry=prob_up < cfg.lower if cfg.allow_short else none,
            short_exit=prob_up > cfg.mid if cfg.allow_short else none,
            size=_size(cfg.size, panel),
            size_type="weight",
        )
