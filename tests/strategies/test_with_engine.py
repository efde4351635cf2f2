"""Strategies run through the real engine: plans it accepts, fills where expected."""

from __future__ import annotations

import numpy as np
import pytest

from alfred import run_backtest
from engine import Costs
from strategies import get_strategy
from tests.strategies.conftest import build_panel, daily, signals_frame


def _random_panel(seed: int, n_bars: int = 60, n_assets: int = 4):
    rng = np.random.default_rng(seed)
    close = 100 * np.cumprod(1 + rng.normal(0, 0.01, (n_bars, n_assets)), axis=0)
    return build_panel(close, daily("2024-01-01", n_bars)), rng


def test_buy_and_hold_tracks_the_asset_exactly_without_costs():
    panel, _ = _random_panel(1)
    result = run_backtest(panel, None, strategy=get_strategy("buy_and_hold", asset="C"),
                          costs=Costs.zero(), capital=1000.0)
    # decided at the close of bar 0; close-only data fills at the close of bar 1
    j = panel.asset_index("C")
    assert result.final_equity == pytest.approx(1000.0 * panel.close[-1, j] / panel.close[1, j])


def test_simple_strategy_positions_follow_the_signal_one_bar_later():
    panel, _ = _random_panel(2, n_bars=8, n_assets=1)
    p = np.array([[0.6, 0.7, 0.4, 0.5, 0.3, 0.9, 0.8, 0.2]]).T
    result = run_backtest(panel, signals_frame(panel, "prob_up", p), strategy="simple",
                          costs=Costs.zero())
    side = np.zeros(panel.n_bars, dtype=int)
    qty = result.positions
    bar = np.searchsorted(panel.ts, qty["ts"].to_numpy().astype("datetime64[ns]"))
    side[bar] = np.sign(qty["qty"].to_numpy()).astype(int)
    # decisions: long, long, short (reverse), hold, short, long (reverse), long, short
    assert side.tolist() == [0, 1, 1, -1, -1, -1, 1, 1]


@pytest.mark.parametrize(
    ("name", "config", "column"),
    [
        ("simple", {}, "prob_up"),
        ("nuanced", {}, "prob_up"),
        ("topk_long_short", {"k": 1, "rebalance": "weekly"}, "pred_return"),
        ("topk_long_short", {"k": 2, "weighting": "signal"}, "pred_return"),
        ("equal_weight", {"rebalance": "weekly"}, None),
        ("buy_and_hold", {}, None),
    ],
)
def test_every_strategy_runs_through_the_engine_within_leverage(name, config, column):
    panel, rng = _random_panel(3)
    signals = None
    if column == "prob_up":
        signals = signals_frame(panel, column, rng.uniform(size=panel.close.shape))
    elif column is not None:
        signals = signals_frame(panel, column, rng.normal(size=panel.close.shape))
    result = run_backtest(panel, signals, strategy=get_strategy(name, **config))
    equity = result.equity
    assert result.orders.height > 0
    assert result.settings["strategy"] == name
    np.testing.assert_allclose(
        equity["equity"].to_numpy(), (equity["cash"] + equity["net"]).to_numpy(), rtol=1e-9
    )


def test_topk_rotation_at_full_gross_fills_completely_without_costs():
    panel = build_panel(np.full((4, 4), 100.0), daily("2024-01-01", 4))
    pred = np.array(
        [[0.1, 0.0, -0.1, 0.0], [0.1, 0.0, -0.1, 0.0], [-0.1, 0.1, 0.0, -0.2], [0.0] * 4]
    )
    result = run_backtest(panel, signals_frame(panel, "pred_return", pred),
                          strategy=get_strategy("topk_long_short", k=1), costs=Costs.zero())
    # rotation at the close of bar 2: long A/short C -> long B/short D, 5000 shares each
    assert result.orders["status"].to_list() == ["filled"] * 6
