"""The ``rl`` strategy: a saved policy or walk-forward training, as a WeightPlan."""

from __future__ import annotations

import numpy as np
import pytest

from engine import SimulationSettings, run_backtest
from engine.errors import ConfigError
from engine.plan import Strategy, WeightPlan
from portfolio import EnvConfig, PortfolioEnv, RLStrategy, backtest_rollout
from portfolio._evaluate import model_policy
from portfolio._train import train_policy
from tests.portfolio.conftest import make_panel, make_signals, tiny_agent

COSTS = {"commission_bps": 2, "slippage_bps": 1}


def test_a_saved_policy_trades_as_a_strategy_and_replays_exactly(market, panel, signals,
                                                                  tmp_path):
    settings = SimulationSettings(costs=COSTS, max_gross_leverage=1.2)
    res = train_policy(market, tiny_agent("ppo"), seed=2, settings=settings,
                       directory=tmp_path / "seed_2")
    strategy = RLStrategy(model=str(tmp_path / "seed_2"))
    assert isinstance(strategy, Strategy) and strategy.name == "rl"
    plan = strategy.plan(panel, signals)
    assert isinstance(plan, WeightPlan) and plan.target_weight.shape == (160, 4)
    warm = market.config.vol_window
    assert np.isnan(plan.target_weight[:warm]).all()
    assert np.isfinite(plan.target_weight[warm:-1]).any(axis=1).all()
    # the plan is the in-memory policy's own rollout, and the backtest of it replays it
    env = PortfolioEnv(market, settings=settings, episode_length=None, record_weights=True)
    replay = backtest_rollout(env, model_policy(res.model))
    np.testing.assert_array_equal(env.episode_plan()[1].target_weight,
                                  plan.target_weight[warm:])
    result = run_backtest(panel, plan, **settings.backtest_kwargs())
    np.testing.assert_array_equal(result.records.equity[warm:], replay.records.equity)
    assert strategy.plan(panel, signals) is plan  # asked twice (with/without costs): once

    other = make_panel(1, n_assets=5)
    with pytest.raises(ConfigError, match="trained on 4 assets"):
        strategy.plan(other, make_signals(other))


def test_walk_forward_trains_on_the_past_only(panel, signals):
    config = {"env": {"episode_length": 30}, "agent": tiny_agent("ppo").model_dump(),
              "train_fraction": 0.5, "folds": 2, "seed": 1, "settings": {"costs": COSTS}}
    plan = RLStrategy(**config).plan(panel, signals)
    w = plan.target_weight
    assert np.isnan(w[:80]).all()  # the first half only trains
    assert np.isfinite(w[80:-1]).any(axis=1).all()
    again = RLStrategy(**config).plan(panel, signals)
    np.testing.assert_array_equal(w, again.target_weight)  # seeded: reproducible

    # bars after bar 100 (inside the second fold) change nothing up to bar 100: the first
    # fold's policy saw bars <= 80, the second's bars <= 120 ... only the second may move
    cut = 100
    changed = make_panel(0)
    changed.close[cut + 1:] *= 1.3
    changed.open[cut + 1:] *= 0.8
    moved = RLStrategy(**config).plan(changed, signals).target_weight
    np.testing.assert_array_equal(moved[:cut + 1], w[:cut + 1])
    assert not np.array_equal(moved[cut + 1:], w[cut + 1:], equal_nan=True)


def test_fit_then_plan_and_bad_configs(panel, signals):
    strategy = RLStrategy(agent=tiny_agent("a2c").model_dump(), env={"episode_length": 30})
    strategy.fit(panel, signals, until="2020-03-31")
    w = strategy.plan(panel, signals).target_weight
    assert np.isfinite(w[20:-1]).any(axis=1).all()
    with pytest.raises(ConfigError, match="unknown key 'folds_'"):
        RLStrategy(folds_=2)
    with pytest.raises(ConfigError, match="train_fraction"):
        RLStrategy(train_fraction=1.0)
    with pytest.raises(ConfigError, match="trades a saved policy"):
        RLStrategy(model="somewhere").fit(panel, signals)
    with pytest.raises(ConfigError, match="not found"):
        RLStrategy(model="/nonexistent/policy.zip").plan(panel, signals)
    with pytest.raises(ConfigError, match="episode_length"):
        RLStrategy(env=EnvConfig(episode_length=500).model_dump(),
                   agent=tiny_agent().model_dump()).plan(panel, signals)
