"""``topk_long_short``: rank the universe, long the top k, short the bottom k.

At each rebalance bar (the last bar of each day / week / month / quarter in the panel)
the assets that are tradable *and* have a signal on that bar are ranked by ``rank_by``.
The long side gets ``(gross + net) / 2`` of equity, the short side ``(gross - net) / 2``;
every other asset is instructed to weight 0, so names that drop out of the top or bottom
are closed. Between rebalance bars the plan is NaN: positions are held, not re-weighted.

Sizing within a side:

* ``equal`` -- every name on a side gets the same weight.
* ``signal`` -- weight proportional to the name's distance from the cross-sectional
  median signal (longs: ``s - median``, shorts: ``median - s``). The median rather than
  zero, because a top-k long may well have a negative predicted return in a falling
  market. A name on the wrong side of the median (possible when one side holds more
  than half the ranked names, e.g. long-only) gets weight 0; a side whose distances are
  all zero falls back to equal weights.

When a rebalance bar ranks fewer names than ``k_long + k_short`` (assets not yet listed,
signals still warming up) both sides shrink in proportion (``k * ranked // (k_long +
k_short)``) with a warning; a bar that ranks no name, or too few for any side, gives no
instruction. Ties in the signal go to the asset listed first in the panel.
"""

from __future__ import annotations

import warnings
from typing import ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from engine.errors import ConfigError
from engine.panel import Panel
from engine.plan import WeightPlan
from strategies._base import ConfiguredStrategy, StrategyConfig, fmt_ts
from strategies._schedule import Rebalance, rebalance_mask
from strategies._signals import signal_matrix


class TopKConfig(StrategyConfig):
    """``k`` names per side unless ``k_long`` / ``k_short`` say otherwise (``k_short=0``
    is the long-only variant). ``net_exposure`` defaults to 0 for long-short, to
    ``+gross`` for long-only and ``-gross`` for short-only books."""

    k: int = Field(1, ge=1)
    k_long: int | None = Field(None, ge=0)
    k_short: int | None = Field(None, ge=0)
    rank_by: str = "pred_return"
    weighting: Literal["equal", "signal"] = "equal"
    rebalance: Rebalance = "daily"
    gross_exposure: float = Field(1.0, gt=0.0, allow_inf_nan=False)
    net_exposure: float | None = Field(None, allow_inf_nan=False)

    @property
    def n_long(self) -> int:
        return self.k if self.k_long is None else self.k_long

    @property
    def n_short(self) -> int:
        return self.k if self.k_short is None else self.k_short

    @property
    def net(self) -> float:
        if self.net_exposure is not None:
            return self.net_exposure
        if self.n_short == 0:
            return self.gross_exposure
        if self.n_long == 0:
            return -self.gross_exposure
        return 0.0

    @model_validator(mode="after")
    def _consistent(self) -> TopKConfig:
        if self.n_long == 0 and self.n_short == 0:
            raise ValueError("k_long and k_short are both 0: the book would hold nothing")
        gross, net = self.gross_exposure, self.net
        if abs(net) > gross:
            raise ValueError(
                f"net_exposure={net} exceeds gross_exposure={gross} in size; a book's net "
                f"exposure lies between -gross and +gross"
            )
        if self.n_short == 0 and net != gross:
            raise ValueError(
                f"k_short=0 (long only) needs net_exposure == gross_exposure, got "
                f"net_exposure={net}, gross_exposure={gross}; drop net_exposure or set k_short"
            )
        if self.n_long == 0 and net != -gross:
            raise ValueError(
                f"k_long=0 (short only) needs net_exposure == -gross_exposure, got "
                f"net_exposure={net}, gross_exposure={gross}; drop net_exposure or set k_long"
            )
        return self


class TopKLongShortStrategy(ConfiguredStrategy):
    """Long the top ``k_long``, short the bottom ``k_short`` names on a schedule."""

    name: ClassVar[str] = "topk_long_short"
    config_class: ClassVar[type[StrategyConfig]] = TopKConfig
    config: TopKConfig

    def plan(self, panel: Panel, signals: pl.DataFrame | None) -> WeightPlan:
        cfg = self.config
        n_long, n_short = cfg.n_long, cfg.n_short
        tradable = panel.tradable
        universe = int(tradable.any(axis=0).sum())
        if n_long + n_short > universe:
            raise ConfigError(
                f"topk_long_short: k_long={n_long} + k_short={n_short} names need at least "
                f"{n_long + n_short} tradable assets, the universe has {universe}; lower k to "
                f"at most {universe // 2} per side"
            )
        signal = signal_matrix(signals, panel, cfg.rank_by, strategy=self.name)
        long_side = (cfg.gross_exposure + cfg.net) / 2.0
        short_side = (cfg.gross_exposure - cfg.net) / 2.0

        target = np.full((panel.n_bars, panel.n_assets), np.nan)
        short_bars: list[int] = []
        for t in np.flatnonzero(rebalance_mask(panel.ts, cfg.rebalance)):
            ranked = np.flatnonzero(tradable[t] & np.isfinite(signal[t]))
            if ranked.size == 0:
                continue
            k_long, k_short = n_long, n_short
            if ranked.size < n_long + n_short:
                short_bars.append(int(t))
                k_long = n_long * ranked.size // (n_long + n_short)
                k_short = n_short * ranked.size // (n_long + n_short)
                if k_long == 0 and k_short == 0:
                    continue
            values = signal[t, ranked]
            order = ranked[np.argsort(-values, kind="stable")]
            longs, shorts = order[:k_long], order[::-1][:k_short]
            row = np.zeros(panel.n_assets)
            median = float(np.median(values))
            row[longs] = self._side_weights(signal[t, longs] - median, long_side)
            row[shorts] = -self._side_weights(median - signal[t, shorts], short_side)
            target[t] = row
        if short_bars:
            warnings.warn(
                f"topk_long_short: {len(short_bars)} rebalance bar(s) ranked fewer than "
                f"k_long + k_short = {n_long + n_short} assets (first at "
                f"{fmt_ts(panel.ts[short_bars[0]])}); those bars traded fewer names",
                UserWarning,
                stacklevel=2,
            )
        return WeightPlan(target)

    def _side_weights(self, distance: np.ndarray, side_exposure: float) -> np.ndarray:
        if distance.size == 0:
            return distance
        distance = np.maximum(distance, 0.0)
        total = float(distance.sum())
        if self.config.weighting == "signal" and total > 0.0:
            return side_exposure * distance / total
        return np.full(distance.size, side_exposure / distance.size)
