from __future__ import annotations

import pytest
from pydantic import ValidationError

from analysts import REGISTRY, Analyst, MomentumAnalyst, MomentumConfig, available, get_analyst
from engine.errors import ConfigError

NAMES = ["ensemble", "file", "kronos", "kronos_ensemble", "lstm", "magnitude", "momentum",
         "naive", "regime_switch", "toto"]


def test_available_lists_every_registered_name_sorted():
    assert available() == NAMES
    assert all(cls.name == name for name, cls in REGISTRY.items())


@pytest.mark.parametrize("name", ["momentum", "naive"])
def test_built_ins_satisfy_the_protocol(name):
    analyst = get_analyst(name)
    assert isinstance(analyst, Analyst)
    assert analyst.name == name


def test_get_analyst_passes_config_and_configs_are_frozen():
    analyst = get_analyst("momentum", lookback=60, skip=5)
    assert isinstance(analyst, MomentumAnalyst)
    assert (analyst.config.lookback, analyst.config.skip) == (60, 5)
    with pytest.raises(ValidationError):
        analyst.config.lookback = 10
    assert MomentumAnalyst(MomentumConfig(lookback=7)).config.lookback == 7
    assert "MomentumAnalyst(lookback=60, skip=5" in repr(analyst)


def test_unknown_names_and_keys():
    with pytest.raises(ConfigError, match=r"unknown analyst 'momentun' \(did you mean 'momentum'\?\); "
                                          r"valid analysts: ensemble, file, kronos, kronos_ensemble, lstm, "
                                          r"magnitude, momentum, naive, regime_switch, toto"):
        get_analyst("momentun")
    with pytest.raises(ConfigError, match=r"analyst 'naive' config: unknown key 'horizn' "
                                          r"\(did you mean 'horizon'\?\)"):
        get_analyst("naive", horizn=3)
    with pytest.raises(ConfigError, match="not both"):
        MomentumAnalyst(MomentumConfig(), lookback=3)
    with pytest.raises(ConfigError, match="naive: expected a NaiveConfig, got MomentumConfig"):
        get_analyst("naive").__class__(MomentumConfig())
