"""Pure trading policies: (panel, signals) -> a plan the engine executes.

Pick one by name with :func:`get_strategy` (``get_strategy("topk_long_short", k=5)``);
:func:`available` lists the names. Every strategy pairs with a frozen config class that
rejects unknown keys.
"""

from strategies._allocation import (
    BuyAndHoldConfig,
    BuyAndHoldStrategy,
    EqualWeightConfig,
    EqualWeightStrategy,
    WeightsConfig,
    WeightsStrategy,
)
from strategies._base import ConfiguredStrategy, StrategyConfig
from strategies._construction import (
    ConstructionConfig,
    HRPStrategy,
    MeanVarianceConfig,
    MeanVarianceStrategy,
    RiskParityStrategy,
    VolTargetConfig,
    VolTargetStrategy,
)
from strategies._registry import REGISTRY, available, get_strategy
from strategies._schedule import REBALANCE_FREQUENCIES, Rebalance, rebalance_mask
from strategies._threshold import NuancedConfig, NuancedStrategy, SimpleConfig, SimpleStrategy
from strategies._topk import TopKConfig, TopKLongShortStrategy

__all__ = [
    "REBALANCE_FREQUENCIES",
    "REGISTRY",
    "BuyAndHoldConfig",
    "BuyAndHoldStrategy",
    "ConfiguredStrategy",
    "ConstructionConfig",
    "HRPStrategy",
    "MeanVarianceConfig",
    "MeanVarianceStrategy",
    "RiskParityStrategy",
    "VolTargetConfig",
    "VolTargetStrategy",
    "EqualWeightConfig",
    "EqualWeightStrategy",
    "NuancedConfig",
    "NuancedStrategy",
    "Rebalance",
    "SimpleConfig",
    "SimpleStrategy",
    "StrategyConfig",
    "TopKConfig",
    "TopKLongShortStrategy",
    "WeightsConfig",
    "WeightsStrategy",
    "available",
    "get_strategy",
    "rebalance_mask",
]
