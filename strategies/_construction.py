"""Portfolio construction on trailing data: ``risk_parity``, ``hrp``, ``mean_variance``.

Every rebalance bar t (a ``rebalance`` schedule) estimates from the ``lookback`` close-to-
close returns ending at t -- never a bar later -- and emits target weights decided at the
close of t. ``risk_parity`` (equal risk contributions) and ``hrp`` (hierarchical risk
parity) are skfolio's ``RiskBudgeting`` and ``HierarchicalRiskParity``, long only.
``mean_variance`` takes the analysts' ``pred_return`` at t as expected returns and a
Ledoit-Wolf shrunk covariance (scikit-learn's, which skfolio's ``ShrunkCovariance``
family wraps): ``w ~ inv(S) mu``, long-short, scaled to ``exposure`` gross (skfolio's
``MeanRisk`` takes its expected returns from a prior fitted on the same window, not from
a per-bar forecast, so the closed form is used). ``vol_target`` (annualised, optional)
scales each rebalance's weights so the portfolio's trailing volatility on the same window
meets the target, up to ``max_leverage`` gross.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import ConfigError
from engine.panel import Panel
from engine.plan import WeightPlan
from strategies._base import ConfiguredStrategy, StrategyConfig
from strategies._schedule import Rebalance, rebalance_mask


class ConstructionConfig(StrategyConfig):
    """Shared by the construction strategies (see the module doc)."""

    rebalance: Rebalance = "monthly"
    lookback: int = Field(126, ge=20)
    exposure: float = Field(1.0, gt=0.0, allow_inf_nan=False)
    vol_target: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    max_leverage: float = Field(1.0, gt=0.0, allow_inf_nan=False)


class MeanVarianceConfig(ConstructionConfig):
    signal: Literal["pred_return"] = "pred_return"


def _window_returns(close: np.ndarray, t: int, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """(returns, columns): the ``lookback`` returns ending at bar t of the assets with a
    full window (a close on every bar of it and at t)."""
    window = close[t - lookback: t + 1]
    full = np.isfinite(window).all(axis=0)
    rets = window[1:, full] / window[:-1, full] - 1.0
    return rets, np.flatnonzero(full)


class _Construction(ConfiguredStrategy):
    config: ConstructionConfig

    def plan(self, panel: Panel, signals: pl.DataFrame | None = None) -> WeightPlan:
        cfg = self.config
        target = np.full((panel.n_bars, panel.n_assets), np.nan)
        rebalance = rebalance_mask(panel.ts, cfg.rebalance)
        forecasts = self._forecasts(panel, signals)
        for t in np.flatnonzero(rebalance):
            if t < cfg.lookback:
                continue
            rets, cols = _window_returns(panel.close, t, cfg.lookback)
            if cols.size == 0:
                continue
            w = self._weights(rets, t, cols, forecasts)  # each subclass estimates its own
            if not np.isfinite(w).all() or not np.abs(w).sum() > 0:
                continue
            w = w * cfg.exposure / np.abs(w).sum()
            if cfg.vol_target is not None:
                vol = float(np.sqrt(max(w @ np.cov(rets, rowvar=False, ddof=1).reshape(
                    cols.size, cols.size) @ w, 0.0) * panel.periods_per_year))
                scale = cfg.vol_target / vol if vol > 0 else 1.0
                w = w * min(scale, cfg.max_leverage / np.abs(w).sum())
            row = np.zeros(panel.n_assets)
            row[cols] = w
            row[~np.isfinite(panel.close[t])] = np.nan  # no bar at t: no instruction
            target[t] = row
        return WeightPlan(target)

    def _forecasts(self, panel: Panel, signals: pl.DataFrame | None) -> np.ndarray | None:
        return None


class RiskParityStrategy(_Construction):
    """Equal risk contributions (skfolio ``RiskBudgeting``), long only."""

    name: ClassVar[str] = "risk_parity"
    config_class: ClassVar[type[StrategyConfig]] = ConstructionConfig

    def _weights(self, rets, t, cols, forecasts):
        from skfolio.optimization import RiskBudgeting

        return np.asarray(RiskBudgeting().fit(rets).weights_, dtype=float)


class HRPStrategy(_Construction):
    """Hierarchical risk parity (skfolio ``HierarchicalRiskParity``), long only."""

    name: ClassVar[str] = "hrp"
    config_class: ClassVar[type[StrategyConfig]] = ConstructionConfig

    def _weights(self, rets, t, cols, forecasts):
        from skfolio.optimization import HierarchicalRiskParity

        return np.asarray(HierarchicalRiskParity().fit(rets).weights_, dtype=float)


class MeanVarianceStrategy(_Construction):
    """``inv(S) mu``: forecast returns at t over a shrunk trailing covariance."""

    name: ClassVar[str] = "mean_variance"
    config_class: ClassVar[type[StrategyConfig]] = MeanVarianceConfig

    def _forecasts(self, panel, signals):
        if signals is None or "pred_return" not in signals.columns:
            raise ConfigError("mean_variance needs analyst forecasts with a 'pred_return' "
                              "column (e.g. the momentum or magnitude analyst)")
        from engine.data import signals_to_matrix

        return signals_to_matrix(signals, panel, "pred_return", source="signals")

    def _weights(self, rets, t, cols, forecasts):
        from sklearn.covariance import LedoitWolf

        mu = forecasts[t, cols]
        if not np.isfinite(mu).any():
            return np.full(cols.size, np.nan)
        mu = np.where(np.isfinite(mu), mu, 0.0)
        cov = LedoitWolf().fit(rets).covariance_
        return np.linalg.solve(cov, mu)


class VolTargetConfig(StrategyConfig):
    """``strategy`` / ``config``: the wrapped strategy (any registered one that emits target
    weights); ``target``: annualised volatility; ``lookback``: bars of trailing returns."""

    strategy: str = "equal_weight"
    config: dict[str, Any] = Field(default_factory=dict)
    target: float = Field(0.10, gt=0.0, allow_inf_nan=False)
    lookback: int = Field(63, ge=20)
    max_leverage: float = Field(1.0, gt=0.0, allow_inf_nan=False)


class VolTargetStrategy(ConfiguredStrategy):
    """A volatility-target overlay on any target-weight strategy.

    Each instruction row t of the wrapped plan is scaled by ``target / vol``, ``vol`` the
    annualised volatility of that row's weights over the ``lookback`` returns ending at t
    (assets without an instruction in the row count as 0), capped so gross stays within
    ``max_leverage``; rows before ``lookback`` bars of history pass unscaled.
    """

    name: ClassVar[str] = "vol_target"
    config_class: ClassVar[type[StrategyConfig]] = VolTargetConfig
    config: VolTargetConfig

    @classmethod
    def build(cls, values: dict[str, Any], lookup: Callable[..., Any]) -> VolTargetStrategy:
        """The overlay with its wrapped strategy built by ``lookup`` (a registry's
        ``get_strategy``), so this module never looks names up itself."""
        overlay = cls(**values)
        overlay.inner = lookup(overlay.config.strategy, **overlay.config.config)
        return overlay

    def plan(self, panel: Panel, signals: pl.DataFrame | None = None) -> WeightPlan:
        cfg = self.config
        wrapped = getattr(self, "inner", None)
        if wrapped is None:
            raise ConfigError("vol_target is built with its wrapped strategy: use "
                              "get_strategy('vol_target', strategy=..., ...)")
        inner = wrapped.plan(panel, signals)
        if not isinstance(inner, WeightPlan):
            raise ConfigError(f"vol_target wraps strategies that emit target weights; "
                              f"{cfg.strategy!r} emits entry/exit signals")
        target = inner.target_weight.copy()
        for t in np.flatnonzero(np.isfinite(target).any(axis=1)):
            if t < cfg.lookback:
                continue
            rets, cols = _window_returns(panel.close, t, cfg.lookback)
            w = np.nan_to_num(target[t, cols])
            if cols.size == 0 or not np.abs(w).sum() > 0:
                continue
            cov = np.cov(rets, rowvar=False, ddof=1).reshape(cols.size, cols.size)
            vol = float(np.sqrt(max(w @ cov @ w, 0.0) * panel.periods_per_year))
            gross = float(np.nansum(np.abs(target[t])))
            scale = min(cfg.target / vol if vol > 0 else 1.0, cfg.max_leverage / gross)
            target[t] = target[t] * scale
        return WeightPlan(target)
