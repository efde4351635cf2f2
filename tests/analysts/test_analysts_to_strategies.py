"""Bars -> analyst -> strategy -> engine, the DESIGN.md data flow on a tiny universe."""

from __future__ import annotations

import numpy as np
import polars as pl

from analysts import get_analyst
from engine import Costs, run_backtest
from engine.data import align_bars
from strategies import get_strategy
from tests.analysts.conftest import random_bars


def test_naive_signals_drive_the_simple_strategy_one_bar_later():
    bars = random_bars(np.random.default_rng(5), n_bars=30, n_assets=1)
    signals = get_analyst("naive").fit(bars).predict(bars)
    panel = align_bars(bars)
    plan = get_strategy("simple").plan(panel, signals)
    ret = np.diff(panel.close[:, 0]) / panel.close[:-1, 0]
    np.testing.assert_array_equal(plan.long_entry[1:, 0], ret > 0)
    np.testing.assert_array_equal(plan.short_entry[1:, 0], ret < 0)
    assert not plan.long_entry[0, 0] and not plan.short_entry[0, 0]  # no signal yet


def test_momentum_top_k_runs_end_to_end_and_ranks_by_momentum():
    bars = random_bars(np.random.default_rng(6), n_bars=80, n_assets=6)
    signals = get_analyst("momentum", lookback=20, skip=2).fit(bars).predict(bars)
    strategy = get_strategy("topk_long_short", k=2, rebalance="weekly")
    panel = align_bars(bars)
    target = strategy.plan(panel, signals).target_weight
    rebalance_rows = np.flatnonzero(~np.isnan(target).all(axis=1))
    assert rebalance_rows.size >= 8
    t = rebalance_rows[-1]
    day = signals.filter(pl.col("ts") == panel.ts[t]).sort("pred_return", descending=True)
    top, bottom = day["asset"][:2].to_list(), day["asset"][-2:].to_list()
    for asset in top:
        assert target[t, panel.asset_index(asset)] == 0.25
    for asset in bottom:
        assert target[t, panel.asset_index(asset)] == -0.25
    result = run_backtest(bars, signals, strategy=strategy, costs=Costs.zero())
    assert result.trades.height > 0
    assert np.isfinite(result.final_equity)
