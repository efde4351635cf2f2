"""The vectorised env: every env's trajectory equals a single env's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from engine import SimulationSettings
from engine.errors import ConfigError, DataError
from portfolio import EnvConfig, PortfolioEnv, build_market, make_vec_env
from portfolio.vec_env import PortfolioVecEnv
from tests.portfolio.conftest import make_panel, make_signals

SETTINGS = SimulationSettings(costs={"commission_bps": 5, "slippage_bps": 3,
                                     "borrow_fee_bps": 200, "commission_fixed": 1.0},
                              capital=100_000.0, max_gross_leverage=1.5, max_net_leverage=1.0)


@pytest.mark.parametrize("reward", ["log_return", "differential_sharpe"])
def test_each_env_follows_the_single_env_with_the_same_seed(reward):
    panel = make_panel(3, n_bars=120, holes=0.03)
    config = EnvConfig(signals=["pred_return"], episode_length=9, reward=reward,
                       drawdown_penalty=0.5, turnover_penalty=0.01)
    market = build_market(panel, make_signals(panel), config)
    n_envs, seed = 3, 11
    vec = PortfolioVecEnv(market, n_envs=n_envs, seed=seed, settings=SETTINGS)
    singles = [PortfolioEnv(market, settings=SETTINGS) for _ in range(n_envs)]
    obs = vec.reset()
    for e, env in enumerate(singles):
        first, _ = env.reset(seed=seed + e)
        np.testing.assert_array_equal(obs[e], first)
    rng = np.random.default_rng(2)
    episodes_done = 0
    for _ in range(40):  # 40 steps of 9-bar episodes: every env resets four times
        actions = rng.uniform(-1.3, 1.3, (n_envs, panel.n_assets)).astype(np.float32)
        obs, rewards, dones, infos = vec.step(actions)
        for e, env in enumerate(singles):
            o, r, terminated, truncated, info = env.step(actions[e])
            assert rewards[e] == np.float32(r)
            assert dones[e] == (terminated or truncated)
            assert infos[e]["equity"] == info["equity"]
            assert infos[e]["drawdown"] == info["drawdown"]
            assert infos[e]["turnover"] == info["turnover"]
            if dones[e]:
                episodes_done += 1
                np.testing.assert_array_equal(infos[e]["terminal_observation"], o)
                assert infos[e]["TimeLimit.truncated"] == truncated
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[e], o)
    assert episodes_done >= 3 * n_envs


def test_a_drop_in_for_make_vec_env():
    panel = make_panel(4, n_bars=100)
    market = build_market(panel, make_signals(panel), EnvConfig(signals=["pred_return"],
                                                                 episode_length=15))
    ours = PortfolioVecEnv(market, n_envs=4, seed=3)
    theirs = make_vec_env(market, n_envs=4, seed=3)
    np.testing.assert_array_equal(ours.reset(), theirs.reset())
    rng = np.random.default_rng(0)
    for _ in range(35):
        actions = rng.uniform(-1, 1, (4, panel.n_assets)).astype(np.float32)
        o1, r1, d1, i1 = ours.step(actions)
        o2, r2, d2, i2 = theirs.step(actions)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        for a, b in zip(i1, i2, strict=True):
            if "terminal_observation" in b:
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])


def test_bad_batches_are_clear_errors_and_move_no_book():
    panel = make_panel(5, n_bars=80)
    market = build_market(panel, make_signals(panel), EnvConfig(signals=["pred_return"],
                                                                 episode_length=None))
    vec = PortfolioVecEnv(market, n_envs=2, seed=0)
    with pytest.raises(ConfigError, match="reset"):
        vec.step(np.zeros((2, 4)))
    vec.reset()
    vec.step(np.full((2, 4), 0.2))
    before = vec.equity()
    with pytest.raises(DataError, match=r"expects \(2, 4\)"):
        vec.step(np.zeros((3, 4)))
    bad = np.zeros((2, 4))
    bad[1, 2] = np.nan
    with pytest.raises(DataError, match=r"env 1 holds NaN/inf for asset\(s\) \['CCC'\]"):
        vec.step(bad)
    np.testing.assert_array_equal(vec.equity(), before)
    with pytest.raises(ConfigError, match="n_envs"):
        PortfolioVecEnv(market, n_envs=0)
