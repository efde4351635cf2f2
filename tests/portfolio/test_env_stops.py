"""The RL environment under stops and limit entries: the same step kernel, so the same
equity as run_backtest on the weights the env sent, to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

from engine import SimulationSettings, run_backtest
from portfolio import EnvConfig, PortfolioEnv, build_market, make_vec_env
from tests.portfolio.conftest import make_panel, make_signals


@pytest.mark.parametrize(("stops", "entries"), [
    ({"sl_stop": 0.01}, {}),
    ({"sl_stop": 0.01, "sl_trail": True, "tp_stop": 0.02}, {}),
    ({"sl_stop": 0.01}, {"order": "limit", "offset": 0.002, "tif_bars": 3})])
def test_env_with_stops_equals_run_backtest(stops, entries):
    panel = make_panel(3, n_bars=90)
    market = build_market(panel, make_signals(panel), EnvConfig(episode_length=None,
                                                                signals=["pred_return"]))
    eng = SimulationSettings(costs={"commission_bps": 5, "slippage_bps": 3},
                             max_gross_leverage=1.5, max_net_leverage=1.0, stops=stops,
                             entries=entries)
    env = PortfolioEnv(market, settings=eng, record_weights=True)
    env.reset()
    rng = np.random.default_rng(11)
    # hold each action for 10 bars, so positions live long enough to be stopped
    actions = np.repeat(rng.uniform(-1, 1, (panel.n_bars // 10 + 1, panel.n_assets)), 10,
                        axis=0)
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            break
    sliced, plan = env.episode_plan()
    result = run_backtest(sliced, plan, settings=eng)
    np.testing.assert_array_equal(result.records.equity, env.equity_curve())
    assert (result.fills["trigger"] != "market").sum() > 0  # the stops did fire


def test_vec_env_steps_with_stops():
    panel = make_panel(4, n_bars=80)
    market = build_market(panel, make_signals(panel), EnvConfig(episode_length=20))
    eng = SimulationSettings(stops={"sl_stop": 0.01})
    vec = make_vec_env(market, n_envs=2, seed=3, settings=eng)
    vec.reset()
    for _ in range(5):
        _, rewards, _, _ = vec.step(np.full((2, panel.n_assets), 0.5, dtype=np.float32))
        assert np.isfinite(rewards).all()
    vec.close()


def test_env_settles_an_asset_whose_data_ends_like_run_backtest():
    panel = make_panel(5, n_bars=90)
    panel.close[70:, 1] = np.nan  # asset 1's data ends at bar 69
    panel.open[70:, 1] = np.nan
    market = build_market(panel, make_signals(panel), EnvConfig(episode_length=None,
                                                                signals=["pred_return"]))
    env = PortfolioEnv(market, record_weights=True)
    env.reset()
    for _ in range(panel.n_bars):
        _, _, terminated, truncated, _ = env.step(np.full(panel.n_assets, 0.2))
        if terminated or truncated:
            break
    sliced, plan = env.episode_plan()
    with pytest.warns(UserWarning, match="left the universe"):
        result = run_backtest(sliced, plan)
    np.testing.assert_array_equal(result.records.equity, env.equity_curve())
    assert "delisting" in result.fills["trigger"].to_list()
