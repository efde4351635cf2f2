"""The environment: gym API conformance, engine equality, no look-ahead, rewards, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Costs, SimulationSettings, WeightPlan, run_backtest
from engine.errors import ConfigError, DataError, RunError
from portfolio import EnvConfig, PortfolioEnv, build_market, make_vec_env
from portfolio._features import slice_panel
from tests.portfolio.conftest import make_panel, make_signals


def reference_weights(action, tradable, long_only, max_gross, max_net):
    """The documented action -> weight map, written out plainly (threshold 0)."""
    a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
    w = (a + 1.0) / 2.0 if long_only else a.copy()
    w[~tradable] = 0.0
    gross = float(np.sum(np.abs(w)))
    if gross > max_gross:
        w = w * (max_gross / gross)
    pos, neg = w[w > 0].sum(), -w[w < 0].sum()
    if pos - neg > max_net:
        w[w > 0] *= (max_net + neg) / pos
    elif neg - pos > max_net:
        w[w < 0] *= (max_net + pos) / neg
    w[~tradable] = np.nan
    return w


def run_actions(env, actions):
    obs = [env.reset()[0]]
    rewards, infos = [], []
    for a in actions:
        o, r, terminated, truncated, info = env.step(a)
        obs.append(o)
        rewards.append(r)
        infos.append(info)
        if terminated or truncated:
            break
    return obs, rewards, infos


@pytest.mark.parametrize(
    ("mode", "with_open", "max_gross", "max_net", "holes", "cap"),
    [("long_short", True, 1.5, 0.5, 0.0, None),
     ("long_short", False, 1.0, 1.0, 0.05, 0.5),
     ("long_only", True, 1.0, 1.0, 0.05, None),
     ("long_short", True, 2.0, 1.5, 0.0, 0.2)],
)
def test_equity_path_equals_run_backtest_with_the_same_weights(mode, with_open, max_gross,
                                                               max_net, holes, cap):
    panel = make_panel(3, n_bars=90, holes=holes, with_open=with_open, volume=cap is not None)
    market = build_market(panel, make_signals(panel), EnvConfig(mode=mode, episode_length=None,
                                                                signals=["pred_return"]))
    eng = SimulationSettings(costs={"commission_bps": 5, "slippage_bps": 3, "commission_fixed": 1.0,
                                "borrow_fee_bps": 200, "cash_rate": 0.02,
                                "participation_cap": cap},
                         capital=250_000.0, max_gross_leverage=max_gross,
                         max_net_leverage=max_net)
    env = PortfolioEnv(market, settings=eng, record_weights=True)
    rng = np.random.default_rng(7)
    actions = rng.uniform(-1.4, 1.4, (panel.n_bars, panel.n_assets))
    run_actions(env, actions)
    sliced, plan = env.episode_plan()
    assert sliced.n_bars == panel.n_bars - env.first_bar

    # the weights follow the documented map, independently of the env's code
    expected = np.full_like(plan.target_weight, np.nan)
    for i in range(sliced.n_bars - 1):
        t = env.first_bar + i
        expected[i] = reference_weights(actions[i], np.isfinite(panel.close[t]),
                                        mode == "long_only", max_gross, max_net)
    np.testing.assert_allclose(plan.target_weight, expected, rtol=1e-14, atol=1e-15)

    # ... and the engine run on those weights gives the env's equity, bit for bit
    fill = "next_open" if with_open else "next_close"
    result = run_backtest(sliced, WeightPlan(plan.target_weight), costs=eng.costs,
                          capital=250_000.0, fill=fill, max_gross_leverage=max_gross,
                          max_net_leverage=max_net)
    np.testing.assert_array_equal(result.records.equity, env.equity_curve())
    replay = run_backtest(sliced, WeightPlan(expected), costs=eng.costs, capital=250_000.0,
                          fill=fill, max_gross_leverage=max_gross, max_net_leverage=max_net)
    np.testing.assert_allclose(replay.records.equity, env.equity_curve(), rtol=1e-12)
    assert result.fills.height > 0 and np.ptp(env.equity_curve()) > 0


def test_no_trade_band_and_its_replay():
    panel = make_panel(4, n_bars=70)
    market = build_market(panel, make_signals(panel),
                          EnvConfig(episode_length=None, rebalance_threshold=0.05))
    env = PortfolioEnv(market, record_weights=True)
    rng = np.random.default_rng(1)
    base = rng.uniform(-0.5, 0.5, panel.n_assets)
    actions = base + rng.normal(0, 0.03, (panel.n_bars, panel.n_assets))
    run_actions(env, actions)
    sliced, plan = env.episode_plan()
    w = plan.target_weight[:-1]
    assert np.isnan(w).any() and np.isfinite(w).any()  # small changes are held, not traded
    result = run_backtest(sliced, plan)  # defaults = SimulationSettings defaults
    np.testing.assert_array_equal(result.records.equity, env.equity_curve())


def test_partial_rebalancing_moves_part_of_the_way_and_replays():
    panel = make_panel(8, n_bars=70)
    signals = make_signals(panel)
    actions = np.random.default_rng(4).uniform(-1, 1, (70, 4))
    full = PortfolioEnv(build_market(panel, signals, EnvConfig(episode_length=None)),
                        record_weights=True)
    slow = PortfolioEnv(build_market(panel, signals, EnvConfig(episode_length=None,
                                                               rebalance_speed=0.25)),
                        record_weights=True)
    _, _, full_info = run_actions(full, actions)
    _, _, slow_info = run_actions(slow, actions)
    w_full = full.episode_plan()[1].target_weight
    sliced, plan = slow.episode_plan()
    np.testing.assert_allclose(plan.target_weight[0], 0.25 * w_full[0], rtol=1e-15)  # from flat
    assert sum(i["turnover"] for i in slow_info) < 0.5 * sum(i["turnover"] for i in full_info)
    result = run_backtest(sliced, plan)
    np.testing.assert_array_equal(result.records.equity, slow.equity_curve())


@settings(max_examples=25, deadline=None)
@given(action=st.lists(st.floats(-3, 3), min_size=4, max_size=4),
       long_only=st.booleans(), max_gross=st.floats(0.2, 3.0), max_net=st.floats(0.1, 3.0))
def test_mapped_weights_respect_the_limits(action, long_only, max_gross, max_net):
    panel = make_panel(0, n_bars=40)
    market = build_market(panel, None, EnvConfig(signals=[], episode_length=None,
                                                  mode="long_only" if long_only else "long_short"))
    eng = SimulationSettings(max_gross_leverage=max_gross, max_net_leverage=max_net)
    env = PortfolioEnv(market, settings=eng, record_weights=True)
    env.reset()
    env.step(np.array(action))
    w = env.episode_plan()[1].target_weight[0]
    assert np.abs(w).sum() <= max_gross * (1 + 1e-12)
    assert abs(w.sum()) <= max_net * (1 + 1e-12)
    if long_only:
        assert (w >= 0).all()
    raw = np.clip(action, -1, 1)
    raw = (raw + 1) / 2 if long_only else raw
    if np.abs(raw).sum() <= max_gross and abs(raw.sum()) <= max_net:
        np.testing.assert_allclose(w, raw, rtol=1e-15)  # never scaled up, never touched
    else:
        assert np.all(np.abs(w) <= np.abs(raw) + 1e-15) and np.all(w * raw >= 0)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1_000), t=st.integers(25, 85))
def test_perturbing_data_after_t_changes_no_observation_up_to_t(seed, t):
    panel = make_panel(seed, n_bars=100, holes=0.03)
    signals = make_signals(panel, seed + 1)
    rng = np.random.default_rng(seed + 2)
    close, open_ = panel.close.copy(), panel.open.copy()
    close[t + 1:] *= rng.uniform(0.5, 1.5, close[t + 1:].shape)
    open_[t + 1:] *= rng.uniform(0.5, 1.5, open_[t + 1:].shape)
    other = type(panel)(panel.ts, panel.assets, open_, np.fmax(open_, close),
                        np.fmin(open_, close), close, panel.volume, 252.0, True)
    late = pl.col("ts") > pl.lit(panel.ts[t]).cast(pl.Datetime("ns"))
    signals2 = signals.with_columns(
        pl.when(late).then(pl.col("pred_return") * -7 + 0.3).otherwise(pl.col("pred_return"))
        .alias("pred_return"),
        pl.when(late).then(1 - pl.col("prob_up")).otherwise(pl.col("prob_up")).alias("prob_up"))
    config = EnvConfig(signals=["pred_return", "prob_up"], episode_length=None, window=3,
                       vol_window=10)
    a, b = build_market(panel, signals, config), build_market(other, signals2, config)
    np.testing.assert_array_equal(a.features[: t + 1], b.features[: t + 1])
    assert not np.array_equal(a.features[t + 1:], b.features[t + 1:])
    actions = rng.uniform(-1, 1, (panel.n_bars, panel.n_assets))
    obs_a, rew_a, _ = run_actions(PortfolioEnv(a), actions)
    obs_b, rew_b, _ = run_actions(PortfolioEnv(b), actions)
    first = PortfolioEnv(a).first_bar
    upto = t - first  # obs[k] is the observation at bar first + k
    for k in range(upto + 1):
        np.testing.assert_array_equal(obs_a[k], obs_b[k])
    assert rew_a[:upto] == rew_b[:upto]


def test_rewards_log_return_turnover_and_drawdown_penalties():
    panel = make_panel(5, n_bars=80)
    signals = make_signals(panel)
    actions = np.random.default_rng(3).uniform(-1, 1, (80, 4))
    plain = PortfolioEnv(build_market(panel, signals, EnvConfig(episode_length=None,
                                                                reward_scale=1.0)))
    _, rewards, infos = run_actions(plain, actions)
    equity = plain.equity_curve()
    np.testing.assert_allclose(rewards, np.log(equity[1:] / equity[:-1]), rtol=1e-12)
    assert math.isclose(sum(rewards), math.log(equity[-1] / equity[0]), rel_tol=1e-9)
    assert [i["equity"] for i in infos] == list(equity[1:])

    config = EnvConfig(episode_length=None, reward_scale=50.0, turnover_penalty=0.01,
                       drawdown_penalty=2.0)
    env = PortfolioEnv(build_market(panel, signals, config))
    _, penalised, infos = run_actions(env, actions)
    np.testing.assert_array_equal(env.equity_curve(), equity)  # penalties never touch the book
    turnover = np.array([i["turnover"] for i in infos])
    dd = 1 - equity / np.maximum.accumulate(equity)
    expected = 50.0 * (np.log(equity[1:] / equity[:-1]) - 2.0 * np.maximum(np.diff(dd), 0)
                       - 0.01 * turnover)
    np.testing.assert_allclose(penalised, expected, rtol=1e-9, atol=1e-12)
    assert turnover.max() > 0 and np.diff(dd).max() > 0


def test_differential_sharpe_reward_matches_moody_saffell():
    panel = make_panel(6, n_bars=60)
    config = EnvConfig(episode_length=None, reward="differential_sharpe", sharpe_eta=0.05,
                       reward_scale=1.0)
    env = PortfolioEnv(build_market(panel, make_signals(panel), config))
    _, rewards, _ = run_actions(env, np.random.default_rng(2).uniform(-1, 1, (60, 4)))
    equity = env.equity_curve()
    a = b = 0.0
    expected = []
    for r in np.log(equity[1:] / equity[:-1]):
        denom = b - a * a
        expected.append((b * (r - a) - 0.5 * a * (r * r - b)) / denom**1.5 if denom > 1e-12
                        else 0.0)
        a, b = a + 0.05 * (r - a), b + 0.05 * (r * r - b)
    np.testing.assert_allclose(rewards, expected, rtol=1e-9)
    assert len(expected) == 39 and np.count_nonzero(expected) == 38  # first: no variance yet


def test_passes_gymnasium_and_sb3_env_checkers(market):
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check(PortfolioEnv(market), skip_render_check=True)
        sb3_check(PortfolioEnv(market), warn=True)


def test_seeded_resets_and_episode_bounds(market):
    env = PortfolioEnv(market)
    o1, i1 = env.reset(seed=11)
    o2, i2 = env.reset(seed=11)
    np.testing.assert_array_equal(o1, o2)
    assert i1["bar"] == i2["bar"]
    starts = {env.reset(seed=s)[1]["bar"] for s in range(30)}
    assert len(starts) > 5
    assert min(starts) >= env.first_bar and max(starts) <= env.last_bar - 40
    env.reset(seed=3)
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(np.zeros(4))
        steps += 1
        if terminated or truncated:
            break
    assert steps == 40 and truncated and not terminated
    with pytest.raises(RunError, match="reset"):
        env.step(np.zeros(4))
    assert env.reset(options={"start_bar": env.first_bar + 3})[1]["bar"] == env.first_bar + 3
    with pytest.raises(ConfigError, match="outside the decision bars"):
        env.reset(options={"start_bar": 0})


def test_observation_layout(market, panel):
    env = PortfolioEnv(market, episode_length=None)
    obs, _ = env.reset()
    n, f = panel.n_assets, market.n_features
    assert obs.shape == (n * (f + 1) + 2,) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[: n * f], market.features[env.first_bar])
    assert obs[n * f:].tolist() == [0.0] * n + [1.0, 0.0]  # flat book, all cash, no drawdown
    obs, *_ = env.step(np.array([0.5, -0.25, 0.0, 0.0]))
    weights = obs[n * f: n * f + n]
    assert weights[0] > 0.45 and weights[1] < -0.2 and weights[2] == 0
    assert obs[n * f + n] == pytest.approx(1 - weights.sum(), abs=1e-6)


def test_vectorised_envs(market):
    vec = make_vec_env(market, n_envs=3, seed=5)
    obs = vec.reset()
    assert obs.shape == (3, market.obs_dim)
    assert len({o.tobytes() for o in obs}) == 3  # three different start bars
    obs, rewards, dones, infos = vec.step(np.zeros((3, 4), dtype=np.float32))
    assert obs.shape == (3, market.obs_dim) and rewards.shape == (3,)
    vec.close()


def test_bad_actions_are_clear_errors_and_leave_the_book_alone(market):
    env = PortfolioEnv(market, episode_length=None)
    env.reset()
    env.step(np.array([0.3, 0.2, -0.1, 0.0]))
    before = env.equity_curve()
    with pytest.raises(DataError, match=r"shape \(5,\).*expects shape \(4,\)"):
        env.step(np.zeros(5))
    with pytest.raises(DataError, match="shape"):
        env.step(np.zeros((1, 4)))
    with pytest.raises(DataError, match=r"NaN/inf for asset\(s\) \['BBB'\]"):
        env.step(np.array([0.1, np.nan, 0.0, 0.0]))
    np.testing.assert_array_equal(env.equity_curve(), before)
    env.step([0.3, 0.2, -0.1, 0.0])  # lists are fine; the episode goes on
    assert env.equity_curve().size == before.size + 1


def test_signals_that_do_not_cover_the_span_are_refused(panel):
    late = make_signals(panel, first_bar=60)
    market = build_market(panel, late, EnvConfig(episode_length=None))
    with pytest.raises(DataError, match=r"'pred_return' runs from 2020-03-01.*needs it from "
                                        r"2020-01-21"):
        PortfolioEnv(market)
    PortfolioEnv(market, start="2020-03-05")  # a span inside the signals is fine
    stopped = make_signals(panel).filter(pl.col("ts") < pl.datetime(2020, 3, 1))
    with pytest.raises(DataError, match="stale"):
        PortfolioEnv(build_market(panel, stopped, EnvConfig(episode_length=None)))
    with pytest.raises(DataError, match="did you mean 'prob_up'"):
        build_market(panel, late, EnvConfig(signals=["prob_upp"]))
    with pytest.raises(DataError, match="no signals frame"):
        build_market(panel, None, EnvConfig())


def test_bad_spans_and_settings(market):
    with pytest.raises(ConfigError, match="episode_length 400 is longer"):
        PortfolioEnv(market, episode_length=400)
    with pytest.raises(ConfigError, match="decision bar"):
        PortfolioEnv(market, start="2030-01-01")
    with pytest.raises(ValueError, match="costs.commission_bps"):
        SimulationSettings(costs={"commission_bps": -1})
    with pytest.raises(ValueError, match="did you mean 'slippage_bps'"):
        SimulationSettings(costs={"slipage_bps": 1})


def test_episode_plan_is_exactly_the_slice_the_env_ran_on(market, panel):
    env = PortfolioEnv(market, record_weights=True, start="2020-02-15", end="2020-04-30",
                       episode_length=None)
    run_actions(env, np.full((200, 4), 0.2))
    sliced, plan = env.episode_plan()
    np.testing.assert_array_equal(sliced.ts, panel.ts[env.first_bar: env.last_bar + 1])
    np.testing.assert_array_equal(sliced.close, slice_panel(panel, env.first_bar,
                                                            env.last_bar).close)
    assert np.isnan(plan.target_weight[-1]).all()
    costs = Costs()
    res = run_backtest(sliced, plan, costs=costs)
    np.testing.assert_array_equal(res.records.equity, env.equity_curve())


def test_span_ends_are_whole_days_for_dates_and_exact_for_timestamps(panel):
    from engine.panel import Panel

    ts = np.datetime64("2020-01-01T00", "ns") + np.arange(160) * np.timedelta64(6, "h")
    intraday = Panel(ts, panel.assets, panel.open, panel.high, panel.low, panel.close,
                     panel.volume, 1460.0, True)
    market = build_market(intraday, None, EnvConfig(signals=[], episode_length=None,
                                                    vol_window=4))
    assert PortfolioEnv(market, end="2020-01-03").last_bar == 11  # the day's last bar
    assert PortfolioEnv(market, end=ts[9]).last_bar == 9  # no later bar of that day
    assert PortfolioEnv(market, start="2020-01-03").first_bar == 8
