"""The scenario's top-level ``limit_policy`` key reaches the engine's settings."""

from __future__ import annotations

import pytest

from alfred.scenario import parse_scenario
from engine.errors import ConfigError

MINIMAL = """\
name: demo
data:
  source: sp500_stocks
strategy:
  name: buy_and_hold
"""


def test_limit_policy_defaults_to_scale_and_reaches_the_settings():
    assert parse_scenario(MINIMAL).simulation.limit_policy == "scale"
    sc = parse_scenario(MINIMAL + "limit_policy: clip\n")
    assert sc.simulation.limit_policy == "clip"
    assert sc.simulation.sim_params(252.0).limit_policy == 0


def test_unknown_limit_policy_names_the_key():
    with pytest.raises(ConfigError, match="limit_policy"):
        parse_scenario(MINIMAL + "limit_policy: trim\n", source="demo.yaml")
