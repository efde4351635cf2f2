"""impact: sqrt -- square-root market impact tied to the fill bar's volume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import Costs, WeightPlan, run_backtest
from tests.engine.conftest import make_panel


def _one_buy(costs, volume=10_000.0, weight=0.5, capital=100_000.0):
    close = np.array([[100.0], [100.0], [100.0]])
    w = np.full((3, 1), np.nan)
    w[0] = weight
    return run_backtest(make_panel(close, volume=np.full((3, 1), volume)), WeightPlan(w),
                        costs=costs, capital=capital)


def test_fill_price_carries_the_square_root_of_participation():
    costs = Costs(commission_bps=0, slippage_bps=2, half_spread_bps=1, borrow_fee_bps=0,
                  impact="sqrt", impact_coef_bps=50)
    res = _one_buy(costs)
    qty = float(res.fills["qty"][0])
    # 500 shares of 10,000 traded: 50 bps * sqrt(0.05) on top of the 3 bps
    expected = 100.0 * (1 + 3e-4 + 50e-4 * math.sqrt(qty / 10_000.0))
    assert float(res.fills["price"][0]) == pytest.approx(expected, rel=1e-13)
    assert qty == pytest.approx(500.0, rel=1e-3)  # sized at the reference price


def test_impact_grows_with_size_and_vanishes_without_volume():
    costs = Costs(commission_bps=0, slippage_bps=0, half_spread_bps=0, borrow_fee_bps=0,
                  impact="sqrt", impact_coef_bps=100)
    small = _one_buy(costs, weight=0.1)
    large = _one_buy(costs, weight=0.9)
    bps = [(float(r.fills["price"][0]) / 100.0 - 1) * 1e4 for r in (small, large)]
    assert bps[1] / bps[0] == pytest.approx(math.sqrt(9.0), rel=1e-3)
    no_volume = _one_buy(costs, volume=np.nan)
    assert float(no_volume.fills["price"][0]) == 100.0


def test_a_cash_limited_buy_with_impact_spends_the_cash_and_no_more():
    costs = Costs(commission_bps=10, slippage_bps=0, half_spread_bps=0, borrow_fee_bps=0,
                  impact="sqrt", impact_coef_bps=200)
    close = np.array([[100.0], [100.0], [100.0]])
    w = np.full((3, 1), np.nan)
    w[0] = 1.0
    panel = make_panel(close, volume=np.full((3, 1), 2_000.0))
    clip = run_backtest(panel, WeightPlan(w), costs=costs, capital=100_000.0,
                        limit_policy="clip")
    assert clip.equity["cash"][1] == pytest.approx(0.0, abs=1e-6)  # solved exactly
    assert clip.orders["reason"][0] == "insufficient_cash"
    # the whole-book factor prices impact at the unscaled size (an upper bound): the
    # scaled book stays inside the cash and leaves at most a sliver unspent
    scale = run_backtest(panel, WeightPlan(w), costs=costs, capital=100_000.0)
    assert 0.0 <= scale.equity["cash"][1] < 1e-3 * 100_000.0
    assert scale.orders["reason"][0] == "scaled"


def test_default_costs_have_no_sqrt_impact():
    a = _one_buy(Costs())
    b = _one_buy(Costs(impact_coef_bps=80))  # coefficient without impact: sqrt is unused
    assert np.array_equal(a.records.equity, b.records.equity)
