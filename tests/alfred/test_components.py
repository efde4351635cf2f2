"""Every strategy a scenario can name (strategies.REGISTRY plus the RL manager)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alfred.components import STRATEGIES as REGISTRY
from alfred.components import get_strategy
from alfred.components import strategy_names as available
from engine.errors import ConfigError
from engine.plan import Strategy
from strategies import SimpleStrategy

NAMES = ["buy_and_hold", "equal_weight", "hrp", "mean_variance", "nuanced", "risk_parity", "rl",
         "simple", "topk_long_short", "vol_target", "weights"]


def test_available_lists_every_registered_name_sorted():
    assert available() == NAMES
    assert sorted(REGISTRY) == NAMES
    assert all(cls.name == name for name, cls in REGISTRY.items())


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_builds_with_defaults_and_satisfies_the_protocol(name):
    strategy = get_strategy(name)
    assert isinstance(strategy, Strategy)
    assert strategy.name == name
    assert type(strategy).__name__ in repr(strategy)


def test_get_strategy_passes_config():
    strategy = get_strategy("simple", threshold=0.55, allow_short=False)
    assert isinstance(strategy, SimpleStrategy)
    assert strategy.config.threshold == 0.55 and strategy.config.allow_short is False


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("simpel", "did you mean 'simple'"),
        ("topk", "did you mean 'topk_long_short'"),
        ("buy_hold", "did you mean 'buy_and_hold'"),
    ],
)
def test_unknown_name_suggests_and_lists_valid_names(name, hint):
    with pytest.raises(ConfigError, match=hint) as info:
        get_strategy(name)
    assert ", ".join(NAMES) in str(info.value)


def test_non_string_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown strategy 3"):
        get_strategy(3)  # type: ignore[arg-type]


def test_bad_config_names_strategy_and_key():
    with pytest.raises(ConfigError, match=r"strategy 'topk_long_short' config: unknown key 'kk'"):
        get_strategy("topk_long_short", kk=2)
    with pytest.raises(ConfigError, match=r"strategy 'nuanced' config: upper: .*got 'high'"):
        get_strategy("nuanced", upper="high")
    with pytest.raises(ConfigError, match="path is required|unknown key 'path'"):
        get_strategy("weights", path="x.csv")


def test_configs_are_frozen():
    strategy = get_strategy("simple")
    with pytest.raises(ValidationError):
        strategy.config.threshold = 0.9
