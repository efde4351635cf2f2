"""Components by registry name: the only way a scenario picks one (never an import path).

Strategies come from :data:`strategies.REGISTRY` plus the RL portfolio manager (``rl``,
from :mod:`portfolio`), analysts from :data:`analysts.REGISTRY`. The engine itself knows
no names; :func:`run_backtest` here resolves one and hands the object to
:func:`engine.run_backtest`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

import engine
from engine.errors import ConfigError
from engine.text import did_you_mean
from portfolio import RLStrategy  # imports neither torch nor gymnasium until used
from strategies import REGISTRY as _STRATEGY_CLASSES

STRATEGIES: dict[str, type] = {**_STRATEGY_CLASSES, RLStrategy.name: RLStrategy}


def strategy_names() -> list[str]:
    """Every strategy a scenario may name, sorted."""
    return sorted(STRATEGIES)


def get_strategy(name: str, **config: Any) -> Any:
    """Build the strategy registered as ``name`` (``rl`` included) from config values."""
    cls = STRATEGIES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(
            f"unknown strategy {name!r}{did_you_mean(str(name), STRATEGIES)}; valid "
            f"strategies: {', '.join(strategy_names())}")
    build = getattr(cls, "build", None)  # composites get their parts built here
    return build(config, get_strategy) if callable(build) else cls(**config)


def get_analyst(name: str, **config: Any) -> Any:
    """Build the analyst registered as ``name`` (composites get their members built)."""
    from analysts import get_analyst as build

    return build(name, **config)


def run_backtest(bars: pl.DataFrame | engine.Panel, signals_or_weights: Any = None, *,
                 strategy: str | Any = "weights", **settings: Any) -> engine.BacktestResult:
    """:func:`engine.run_backtest` with the strategy given by registry name or object.

    ``alfred.run_backtest(bars, signals, strategy="nuanced", costs=engine.Costs())``.
    """
    if isinstance(strategy, str) and strategy != "weights":
        strategy = get_strategy(strategy)
    return engine.run_backtest(bars, signals_or_weights, strategy=strategy, **settings)
