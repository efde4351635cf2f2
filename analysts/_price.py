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

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from analysts._bars import AssetRows, as_datetime, bars_by_time, in_window, logistic
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
        frame = bars_by_time(bars, self.name)
        if until is not None:
            as_datetime(until, frame["ts"].dtype, "until")
        return self

    def predict(
        self, bars: pl.DataFrame, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pl.DataFrame:
        # The whole history feeds the look-back; the window only trims the output. The
        # frame is in (ts, asset) order and every step below keeps its row order, so the
        # output needs no sort.
        signals = self._signals(bars_by_time(bars, self.name))
        return in_window(signals, start, end).select(_OUTPUT)

    @abstractmethod
    def _signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Signal columns for every (ts, asset) whose look-back is full, in the row order
        of ``frame`` (sorted by ts, asset)."""


class NaiveAnalyst(_PriceAnalyst):
    """Persistence: the next ``horizon``-bar return is forecast to repeat the last one.

    pred_return = score = ``close[t] / close[t - horizon] - 1``.
    """

    name: ClassVar[str] = "naive"
    config_class: ClassVar[type[AnalystConfig]] = NaiveConfig
    config: NaiveConfig

    def _signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        horizon, scale = self.config.horizon, self.config.prob_scale
        rows = AssetRows(frame)
        close = frame["close"].to_numpy()
        last = pl.col("close") / pl.Series(rows.lagged(close, horizon)) - 1.0
        frame = rows.with_history(frame.with_columns(last.alias("pred_return")), horizon)
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
        rows = AssetRows(frame)
        close = frame["close"].to_numpy()
        recent = pl.Series(rows.lagged(close, skip))
        past = pl.Series(rows.lagged(close, lookback))
        frame = frame.with_columns((recent / past - 1.0).alias("pred_return"))
        if self.config.prob_up_from == "time_series":
            n = lookback - skip
            frame = rows.with_history(frame.with_columns(
                (recent / past).log().alias("_trend"),
                pl.Series("_sigma", _return_std(rows, close, n, skip)),
            ), lookback)
            trend, sigma = pl.col("_trend"), pl.col("_sigma")
            z = (
                pl.when(sigma > 0)
                .then(trend / (sigma * math.sqrt(n)))
                .otherwise(trend.sign() * math.inf)
            )
        else:
            frame = _with_cross_section(rows.with_history(frame, lookback))
            mom, spread = pl.col("pred_return"), pl.col("_spread")
            z = pl.when(spread > 0).then((mom - pl.col("_mean")) / spread).otherwise(0.0)
        prob = logistic(z).fill_nan(0.5)  # inf*0 for a flat zero-vol trend -> no view
        return frame.with_columns(prob.alias("prob_up"), pl.col("pred_return").alias("score"))


def _with_cross_section(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (sorted by ts) with ``_mean`` and ``_spread``: the mean and population std
    of ``pred_return`` over the rows of the same ts. One group-by, spread back over each
    ts's run of rows (a window expression would group once per use)."""
    mom = pl.col("pred_return")
    stats = frame.group_by("ts").agg(
        mom.mean().alias("_mean"), mom.std(ddof=0).alias("_spread"), pl.len().alias("_n")
    ).sort("ts")
    counts = stats["_n"].to_numpy()
    if counts.size and (counts == counts[0]).all():  # a full panel: a scalar repeat is faster
        counts = counts[0]
    return frame.with_columns(
        pl.Series("_mean", np.repeat(stats["_mean"].to_numpy(), counts)),
        pl.Series("_spread", np.repeat(stats["_spread"].to_numpy(), counts)),
    )


def _return_std(rows: AssetRows, close: np.ndarray, n: int, skip: int) -> np.ndarray:
    """Per row: the sample std of its asset's last ``n`` log returns ending ``skip`` bars
    back (NaN where the asset's history is shorter). Computed on the rows in (asset, ts)
    order, each asset a contiguous slice, then put back in the frame's order."""
    order, key = rows.by_asset()
    by_asset = pl.DataFrame({"_key": key, "close": close[order]})
    log_ret = pl.col("close").log().diff()
    sigma = by_asset.select(
        log_ret.rolling_std(n, ddof=1).shift(skip).over(pl.col("_key").set_sorted())
    ).to_series().to_numpy()
    out = np.empty_like(sigma)
    out[order] = sigma
    return out
