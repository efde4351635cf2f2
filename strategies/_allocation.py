"""Allocation strategies that need no forecast: ``weights``, ``buy_and_hold``, ``equal_weight``.

All three emit a :class:`~engine.plan.WeightPlan`, NaN on bars without an instruction, so
the engine holds positions between instructions instead of re-weighting them silently.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
from pydantic import Field

from engine.backtest import TargetWeights
from engine.errors import ConfigError, DataError
from engine.panel import Panel
from engine.plan import WeightPlan
from strategies._base import ConfiguredStrategy, StrategyConfig, did_you_mean
from strategies._schedule import Rebalance, rebalance_mask


class WeightsConfig(StrategyConfig):
    """``column``: the signals column holding target weights (fractions of equity)."""

    column: str = "target_weight"


class BuyAndHoldConfig(StrategyConfig):
    """``asset``: the one asset to hold; unset buys every asset tradable on the first bar
    in equal parts. ``weight``: the fraction of equity invested."""

    asset: str | None = None
    weight: float = Field(1.0, gt=0.0, allow_inf_nan=False)


class EqualWeightConfig(StrategyConfig):
    """``exposure`` split equally over the tradable assets on each rebalance bar;
    ``invest_at_start`` also buys on the first bar instead of waiting for the first
    period end (a monthly schedule would otherwise sit in cash for most of a month)."""

    rebalance: Rebalance = "monthly"
    exposure: float = Field(1.0, gt=0.0, allow_inf_nan=False)
    invest_at_start: bool = True


class WeightsStrategy(ConfiguredStrategy):
    """Pass target weights through: a row dated t is decided at the close of bar t.

    Delegates to the engine's :class:`~engine.backtest.TargetWeights`: each row lands on
    the first bar at or after its ts (never earlier); bars with no row carry NaN (hold).
    """

    name: ClassVar[str] = "weights"
    config_class: ClassVar[type[StrategyConfig]] = WeightsConfig
    config: WeightsConfig

    def plan(self, panel: Panel, signals: pl.DataFrame | None) -> WeightPlan:
        # The engine ships the pass-through (run_backtest's default); reuse it so a
        # "weights" run means the same thing whichever way it is named.
        return TargetWeights(column=self.config.column).plan(panel, signals)


def _first_tradable_bar(tradable: np.ndarray, what: str) -> int:
    bars = np.flatnonzero(tradable)
    if bars.size == 0:
        raise DataError(f"buy_and_hold: {what} has no bar in the data; pick another asset")
    return int(bars[0])


class BuyAndHoldStrategy(ConfiguredStrategy):
    """Invest once on the first tradable bar, then never trade again.

    Without ``asset``, the assets tradable on the first bar that has any data share
    ``weight`` equally; assets whose history starts later are never bought (holding means
    no rebalancing).
    """

    name: ClassVar[str] = "buy_and_hold"
    config_class: ClassVar[type[StrategyConfig]] = BuyAndHoldConfig
    config: BuyAndHoldConfig

    def plan(self, panel: Panel, signals: pl.DataFrame | None = None) -> WeightPlan:
        cfg = self.config
        tradable = panel.tradable
        target = np.full((panel.n_bars, panel.n_assets), np.nan)
        if cfg.asset is not None:
            if cfg.asset not in panel.assets:
                raise ConfigError(
                    f"buy_and_hold: asset {cfg.asset!r} is not in the data"
                    f"{did_you_mean(cfg.asset, panel.assets)}; assets: {list(panel.assets)[:20]}"
                )
            j = panel.asset_index(cfg.asset)
            target[_first_tradable_bar(tradable[:, j], f"asset {cfg.asset!r}"), j] = cfg.weight
            return WeightPlan(target)
        t = _first_tradable_bar(tradable.any(axis=1), "the universe")
        held = tradable[t]
        target[t, held] = cfg.weight / held.sum()
        return WeightPlan(target)


class EqualWeightStrategy(ConfiguredStrategy):
    """1/N of ``exposure`` in each tradable asset, re-set on every rebalance bar.

    Assets without a bar on a rebalance bar get weight 0 there (they cannot be valued
    for the split); a rebalance bar with no tradable asset gives no instruction.
    """

    name: ClassVar[str] = "equal_weight"
    config_class: ClassVar[type[StrategyConfig]] = EqualWeightConfig
    config: EqualWeightConfig

    def plan(self, panel: Panel, signals: pl.DataFrame | None = None) -> WeightPlan:
        cfg = self.config
        tradable = panel.tradable
        counts = tradable.sum(axis=1)
        rebalance = rebalance_mask(panel.ts, cfg.rebalance)
        if cfg.invest_at_start and counts.any():
            rebalance[int(np.argmax(counts > 0))] = True
        active = rebalance & (counts > 0)
        share = np.divide(cfg.exposure, counts, out=np.zeros(counts.shape), where=counts > 0)
        weights = np.where(tradable, share[:, None], 0.0)
        return WeightPlan(np.where(active[:, None], weights, np.nan))
