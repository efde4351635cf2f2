"""Tiny synthetic markets for the RL manager's tests (a few assets, a few hundred bars)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.panel import Panel
from portfolio import AgentConfig, EnvConfig, build_market

ASSETS = ("AAA", "BBB", "CCC", "DDD")


def make_panel(seed: int = 0, n_bars: int = 160, n_assets: int = 4, *, holes: float = 0.0,
               with_open: bool = True, volume: bool = False, start: str = "2020-01-01") -> Panel:
    rng = np.random.default_rng(seed)
    close = 50 * np.cumprod(1 + rng.normal(0.0003, 0.015, (n_bars, n_assets)), axis=0)
    open_ = close * (1 + rng.normal(0, 0.004, close.shape)) if with_open else close.copy()
    if holes:
        mask = rng.random(close.shape) < holes
        mask[:30] = False  # every asset trades at the start
        close[mask] = np.nan
        open_[mask] = np.nan
    vol = rng.uniform(1e3, 1e5, close.shape) if volume else np.full(close.shape, np.nan)
    ts = np.datetime64(start, "ns") + np.arange(n_bars) * np.timedelta64(1, "D")
    assets = tuple(f"A{j}" for j in range(n_assets)) if n_assets != 4 else ASSETS
    return Panel(ts=ts, assets=assets, open=open_, high=np.fmax(open_, close),
                 low=np.fmin(open_, close), close=close, volume=vol, periods_per_year=252.0,
                 has_open=with_open)


def make_signals(panel: Panel, seed: int = 1, *, first_bar: int = 0,
                 columns: tuple[str, ...] = ("pred_return", "prob_up")) -> pl.DataFrame:
    """One row per (bar >= first_bar, asset) with random signal values."""
    rng = np.random.default_rng(seed)
    t, j = np.meshgrid(np.arange(first_bar, panel.n_bars), np.arange(panel.n_assets),
                       indexing="ij")
    t, j = t.ravel(), j.ravel()
    data = {"ts": pl.Series(panel.ts[t]).cast(pl.Datetime("ns")),
            "asset": [panel.assets[k] for k in j]}
    for c in columns:
        data[c] = rng.normal(0, 0.02, t.size) if c != "prob_up" else rng.uniform(0, 1, t.size)
    return pl.DataFrame(data)


def tiny_agent(algorithm: str = "ppo", **overrides) -> AgentConfig:
    hyper = {
        "ppo": {"n_steps": 32, "batch_size": 16, "n_epochs": 1},
        "a2c": {"n_steps": 8},
        "sac": {"learning_starts": 16, "batch_size": 16, "buffer_size": 1_000},
    }[algorithm]
    values = {"algorithm": algorithm, "total_timesteps": 64, "device": "cpu",
              "policy_kwargs": {"net_arch": [16]}, "hyperparameters": hyper,
              "torch_threads": 1}
    values.update(overrides)
    return AgentConfig(**values)


@pytest.fixture
def panel() -> Panel:
    return make_panel()


@pytest.fixture
def signals(panel) -> pl.DataFrame:
    return make_signals(panel)


@pytest.fixture
def market(panel, signals):
    return build_market(panel, signals, EnvConfig(signals=["pred_return", "prob_up"],
                                                  episode_length=40))
