"""Price-only analysts: ``naive`` (persistence) and ``momentum``.

Neither learns parameters: ``fit`` checks its input and returns the analyst unchanged.
Both compute every value from an asset's own bars dated at or before the prediction's ts
(shifts within the asset, never forward), plus -- for the cross-sectional probability --
other assets' values at the *same* ts, so the as-of rule holds by construction. Rows
whose look-back is not yet full are left out rather than emitted as NaN.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar, Literal, Self

import polars as pl
from pydantic import Field, model_validator

from analysts._bars import as_datetime, check_bars, in_window, logistic
from analysts._config import ConfiguredAnalyst
from analysts.base import AnalystConfig, TimeLike

_OUTPUT = ("ts", "asset", "score", "prob_up", "pred_return")


class NaiveConfig(AnalystConfig):
    """``horizon``: bars the persisted return spans. ``prob_scale``: unset gives a hard
    prob_up (1 after a rise, 0 after a fall, 0.5 when flat); a positive value smooths it
    to ``logistic(pred_return / prob_scale)``."""

    horizon: int = Field(1, ge=1)
    prob_scale: float | None = Field(None, gt=0.0, allow_inf_nan=False)


class MomentumConfig(AnalystConfig):
    """Momentum = ``close[t - skip] / close[t - lookback] - 1`` (the 12-1 month classic
    is ``lookback=252, skip=21``). ``prob_up_from``: ``cross_section`` ranks an asset
    against the others at the same ts, ``time_series`` against its own volatility."""

    lookback: int = Field(20, ge=1)
    skip: int = Field(0, ge=0)
    prob_up_from: Literal["cross_section", "time_series"] = "cross_section"

    @model_validator(mode="after")
    def _window(self) -> MomentumConfig:
        if self.skip >= self.lookback:
            raise ValueError(
                f"skip must be smaller than lookback, got skip={self.skip}, "
                f"lookback={self.lookback}"
            )
        if self.prob_up_from == "time_series" and self.lookback - self.skip < 2:
            raise ValueError(
                f"prob_up_from='time_series' estimates a volatility from lookback - skip "
                f"returns and needs at least 2, got lookback={self.lookback}, skip={self.skip}"
            )
        return self


class _PriceAnalyst(ConfiguredAnalyst, ABC):
    def fit(self, bars: pl.DataFrame, until: TimeLike | None = None) -> Self:
        """Nothing to learn; checks the bars (and ``until``) so bad input fails early."""
        frame = check_bars(bars, self.name)
        if until is not None:
            as_datetime(until, frame["ts"].dtype, "until")
        return self

    def predict(
        self, bars: pl.DataFrame, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pl.DataFrame:
        # The whole history feeds the look-back; the window only trims the output.
        signals = self._signals(check_bars(bars, self.name))
        return in_window(signals, start, end).select(_OUTPUT).sort("ts", "asset")

    @abstractmethod
    def _signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Signal columns for every (ts, asset) whose look-back is full."""


class NaiveAnalyst(_PriceAnalyst):
    """Persistence: the next ``horizon``-bar return is forecast to repeat the last one.

    pred_return = score = ``close[t] / close[t - horizon] - 1``.
    """

    name: ClassVar[str] = "naive"
    config_class: ClassVar[type[AnalystConfig]] = NaiveConfig
    config: NaiveConfig

    def _signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        horizon, scale = self.config.horizon, self.config.prob_scale
        last = pl.col("close") / pl.col("close").shift(horizon).over("asset") - 1.0
        frame = frame.with_columns(last.alias("pred_return")).drop_nulls("pred_return")
        ret = pl.col("pred_return")
        if scale is None:
            prob = pl.when(ret > 0).then(1.0).when(ret < 0).then(0.0).otherwise(0.5)
        else:
            prob = logistic(ret / scale)
        return frame.with_columns(prob.alias("prob_up"), ret.alias("score"))


class MomentumAnalyst(_PriceAnalyst):
    """Past return over ``lookback`` bars, ignoring the last ``skip`` bars.

    score = pred_return = momentum (a raw, uncalibrated forecast). prob_up:

    * ``cross_section`` -- ``logistic(z)`` with z the momentum z-scored over the assets
      that have a value at the same ts (population std); z = 0 (prob_up 0.5) when fewer
      than two assets have a value or all are equal: it measures *relative* strength.
    * ``time_series`` -- ``logistic(log momentum / (sigma * sqrt(lookback - skip)))``
      with sigma the sample std of the asset's log returns over the same bars: a t-stat
      of the trend, usable on one asset.
    """

    name: ClassVar[str] = "momentum"
    config_class: ClassVar[type[AnalystConfig]] = MomentumConfig
    config: MomentumConfig

    def _signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        lookback, skip = self.config.lookback, self.config.skip
        close = pl.col("close")
        recent = close.shift(skip).over("asset")
        past = close.shift(lookback).over("asset")
        frame = frame.with_columns((recent / past - 1.0).alias("pred_return"))
        if self.config.prob_up_from == "time_series":
            n = lookback - skip
            log_ret = close.log().diff().over("asset")
            sigma = log_ret.rolling_std(n, ddof=1).shift(skip).over("asset")
            frame = frame.with_columns(
                (recent / past).log().alias("_trend"), sigma.alias("_sigma")
            ).drop_nulls("pred_return")
            trend, sigma = pl.col("_trend"), pl.col("_sigma")
            z = (
                pl.when(sigma > 0)
                .then(trend / (sigma * math.sqrt(n)))
                .otherwise(trend.sign() * math.inf)
            )
        else:
            frame = frame.drop_nulls("pred_return")
            mom = pl.col("pred_return")
            spread = mom.std(ddof=0).over("ts")
            z = (
                pl.when(spread > 0)
                .then((mom - mom.mean().over("ts")) / spread)
                .otherwise(0.0)
            )
        prob = logistic(z).fill_nan(0.5)  # inf*0 for a flat zero-vol trend -> no view
        return frame.with_columns(prob.alias("prob_up"), pl.col("pred_return").alias("score"))
