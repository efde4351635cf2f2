"""The RL portfolio manager: a gymnasium env on the engine's step kernel, SB3 agents.

    from portfolio import EnvConfig, build_market, PortfolioEnv
    market = build_market(panel, signals, EnvConfig(signals=["pred_return"]))
    env = PortfolioEnv(market, start="2010-01-01", end="2016-12-31")
    vec = PortfolioVecEnv(market, n_envs=64)   # SB3 VecEnv: all envs in one numba call

Train over seeds and compare with classic strategies from a scenario with
``alfred train-rl SCENARIO`` (:func:`alfred.train_rl.train_rl_scenario`); trade a trained policy with the
``rl`` strategy (:class:`RLStrategy`). Names load on first use, so importing the package
(as the strategy registry does) pulls in neither torch nor stable-baselines3.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from portfolio._config import ALGORITHMS, AgentConfig, EnvConfig, RLSpec, Span

_LAZY = {
    "Market": "_features", "build_market": "_features",
    "PortfolioEnv": "_env", "PortfolioVecEnv": "vec_env",
    "make_vec_env": "_train", "train_policy": "_train", "SeedResult": "_train",
    "PolicyCard": "_agents", "build_model": "_agents", "locate_policy": "_agents",
    "read_card": "_agents", "load_policy": "_agents",
    "Comparison": "_evaluate", "rollout": "_evaluate", "backtest_rollout": "_evaluate",
    "compare": "_evaluate", "REPORTED_METRICS": "_evaluate", "PolicyFiles": "_agents",
    "load_weights": "_agents", "check_hyperparameters": "_agents", "slice_panel": "_features",
    "model_policy": "_evaluate",
    "RLConfig": "strategy", "RLStrategy": "strategy",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"portfolio.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'portfolio' has no attribute {name!r}")


__all__ = [
    "ALGORITHMS", "REPORTED_METRICS", "AgentConfig", "Comparison", "PolicyFiles",
    "check_hyperparameters", "compare", "load_weights", "slice_panel", "EnvConfig", "Market",
    "PolicyCard", "PortfolioEnv", "PortfolioVecEnv", "RLConfig", "RLSpec",
    "RLStrategy", "SeedResult", "Span", "backtest_rollout", "build_market", "build_model",
    "load_policy", "locate_policy", "make_vec_env", "model_policy", "read_card", "rollout",
    "train_policy",
]
