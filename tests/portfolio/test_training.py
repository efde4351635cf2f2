"""Agents: every algorithm trains, seeds reproduce, checkpoints load weights-only, resume."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from engine.errors import ConfigError
from portfolio import AgentConfig, EnvConfig, PortfolioEnv, build_market, load_policy
from portfolio._config import validate
from portfolio._train import train_policy
from tests.portfolio.conftest import make_panel, make_signals, tiny_agent


def _same_weights(a, b) -> bool:
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("algorithm", ["ppo", "a2c", "sac"])
def test_each_algorithm_trains_and_the_same_seed_gives_the_same_policy(market, algorithm):
    agent = tiny_agent(algorithm)
    first = train_policy(market, agent, seed=3)
    second = train_policy(market, agent, seed=3)
    assert first.num_timesteps == second.num_timesteps == 64
    assert _same_weights(first.model, second.model)
    other = train_policy(market, agent, seed=4)
    assert not _same_weights(first.model, other.model)
    obs, _ = PortfolioEnv(market).reset(seed=0)
    action, _ = first.model.predict(obs, deterministic=True)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1)


def test_validation_checkpoints_card_and_weights_only_reload(market, tmp_path):
    agent = tiny_agent("ppo", total_timesteps=96, n_envs=2)
    res = train_policy(market, agent, seed=1, train=(None, "2020-04-15"),
                       validation=("2020-04-16", "2020-06-08"), directory=tmp_path / "s1",
                       eval_freq=32, checkpoint_freq=32)
    folder = tmp_path / "s1"
    names = {p.name for p in folder.iterdir()}
    assert {"policy.json", "best_model.zip", "final_model.zip", "evaluations.npz", "tb",
            "checkpoints"} <= names
    # every 32 timesteps = 16 steps of the 2 envs; PPO trains whole rollouts (2 x 32 steps)
    steps = sorted(int(p.stem.split("_")[1]) for p in (folder / "checkpoints").iterdir())
    assert steps == [32, 64, 96, 128]
    card = json.loads((folder / "policy.json").read_text())
    assert card["assets"] == ["AAA", "BBB", "CCC", "DDD"] and card["num_timesteps"] == 128
    assert card["obs_dim"] == market.obs_dim and card["train_span"][1].startswith("2020-04-15")
    assert res.model_path == folder / "best_model.zip"
    evaluations = np.load(folder / "evaluations.npz")
    assert res.best_validation_reward == pytest.approx(evaluations["results"].mean(axis=1).max())

    env = PortfolioEnv(market, episode_length=None)
    final = load_policy(folder / "final_model.zip", env)
    obs, _ = env.reset()
    for _ in range(5):
        a, _ = final.predict(obs, deterministic=True)
        b, _ = res.model.predict(obs, deterministic=True)
        np.testing.assert_array_equal(a, b)
        obs, *_ = env.step(a)
    # SB3's own zip holds pickled objects; our loader never reads them
    with zipfile.ZipFile(folder / "final_model.zip") as z:
        assert "data" in z.namelist()


def test_resume_continues_from_the_newest_checkpoint(market, tmp_path):
    folder = tmp_path / "run"
    agent = tiny_agent("ppo", total_timesteps=64)
    train_policy(market, agent, seed=0, directory=folder, checkpoint_freq=32)
    longer = tiny_agent("ppo", total_timesteps=128)
    res = train_policy(market, longer, seed=0, directory=folder, checkpoint_freq=32,
                       resume=True)
    assert res.num_timesteps == 128
    assert json.loads((folder / "policy.json").read_text())["num_timesteps"] == 128
    assert (folder / "checkpoints" / "step_128.zip").is_file()
    with pytest.raises(ConfigError, match="nothing to resume"):
        train_policy(market, agent, seed=0, directory=tmp_path / "empty", resume=True)


def test_unknown_algorithm_and_hyperparameters_are_config_errors(market):
    with pytest.raises(ConfigError, match=r"unknown algorithm 'ppo2' \(did you mean 'ppo'\?\)"):
        validate(AgentConfig, {"algorithm": "ppo2"}, "rl agent")
    with pytest.raises(ConfigError, match="unknown key 'learning_rat'"):
        validate(AgentConfig, {"learning_rat": 0.1}, "rl agent")
    with pytest.raises(ConfigError, match=r"may not set \['seed'\]"):
        validate(AgentConfig, {"hyperparameters": {"seed": 1}}, "rl agent")
    bad = AgentConfig(hyperparameters={"n_step": 8})
    with pytest.raises(ConfigError, match=r"no hyperparameter 'n_step' \(did you mean 'n_steps'"):
        train_policy(market, bad, seed=0)
    with pytest.raises(ConfigError, match="activation_fn"):
        validate(AgentConfig, {"policy_kwargs": {"activation_fn": "torch.nn.Tanh"}}, "rl")
    with pytest.raises(ConfigError, match="rejected its settings"):
        train_policy(market, AgentConfig(hyperparameters={"n_steps": "many"}), seed=0)


def test_a_checkpoint_from_another_observation_space_is_refused(market, panel, signals,
                                                                tmp_path):
    train_policy(market, tiny_agent("ppo"), seed=0, directory=tmp_path / "two")
    one_signal = build_market(panel, signals, EnvConfig(signals=["prob_up"], episode_length=40))
    train_policy(one_signal, tiny_agent("ppo"), seed=0, directory=tmp_path / "one")

    env_one = PortfolioEnv(one_signal)
    with pytest.raises(ConfigError, match="expects observations of size 38, this market "
                                          "gives 34"):
        load_policy(tmp_path / "two", env_one)
    # the right card with the wrong tensors: the zip does not fit what the card describes
    (tmp_path / "one" / "final_model.zip").write_bytes(
        (tmp_path / "two" / "final_model.zip").read_bytes())
    with pytest.raises(ConfigError, match="does not fit the policy its card describes"):
        load_policy(tmp_path / "one", env_one)
    other_assets = make_panel(0, n_assets=5)
    env5 = PortfolioEnv(build_market(other_assets, make_signals(other_assets),
                                     EnvConfig(episode_length=40)))
    with pytest.raises(ConfigError, match="trained on 4 assets"):
        load_policy(tmp_path / "two", env5)
    with pytest.raises(ConfigError, match="no best_model.zip or final_model.zip"):
        load_policy(tmp_path, env_one)
