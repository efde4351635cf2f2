"""Strategies by registry name: the only way a scenario picks one (never an import path).

The RL portfolio manager (``rl``) lives in :mod:`portfolio` and joins these in
:mod:`alfred.components`, which is what scenarios use.
"""

from __future__ import annotations

from typing import Any

from engine.errors import ConfigError
from strategies._allocation import BuyAndHoldStrategy, EqualWeightStrategy, WeightsStrategy
from strategies._base import ConfiguredStrategy, did_you_mean
from strategies._construction import (
    HRPStrategy,
    MeanVarianceStrategy,
    RiskParityStrategy,
    VolTargetStrategy,
)
from strategies._threshold import NuancedStrategy, SimpleStrategy
from strategies._topk import TopKLongShortStrategy

REGISTRY: dict[str, type[ConfiguredStrategy]] = {
    cls.name: cls
    for cls in (
        SimpleStrategy,
        NuancedStrategy,
        TopKLongShortStrategy,
        WeightsStrategy,
        BuyAndHoldStrategy,
        EqualWeightStrategy,
        RiskParityStrategy,
        HRPStrategy,
        MeanVarianceStrategy,
        VolTargetStrategy,
    )
}


def available() -> list[str]:
    """Registered strategy names, sorted."""
    return sorted(REGISTRY)


def get_strategy(name: str, **config: Any) -> ConfiguredStrategy:
    """Build the strategy registered as ``name`` from config values.

    Unknown names and invalid config values raise :class:`~engine.errors.ConfigError`
    naming the strategy, the key and the valid choices.
    """
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(
            f"unknown strategy {name!r}{did_you_mean(str(name), REGISTRY)}; valid strategies: "
            f"{', '.join(available())}"
        )
    build = getattr(cls, "build", None)  # composites get their parts built by this registry
    return build(config, get_strategy) if callable(build) else cls(**config)
