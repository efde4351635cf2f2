"""Order records the step kernel writes for instructions it cannot trade."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Costs, WeightPlan, run_backtest
from engine.panel import Panel


def _panel(close):
    close = np.asarray(close, dtype=float)
    ts = np.datetime64("2021-01-04", "ns") + np.arange(close.shape[0]) * np.timedelta64(1, "D")
    return Panel(ts=ts, assets=tuple(f"A{j}" for j in range(close.shape[1])), open=close,
                 high=close, low=close, close=close, volume=np.full_like(close, np.nan),
                 periods_per_year=252.0, has_open=True)


@pytest.mark.parametrize("weight,side", [(0.25, 1), (-0.25, -1)])
def test_order_for_an_asset_without_any_price_yet_keeps_its_side(weight, side):
    # A1 lists at bar 3: an instruction filled at bar 2 has no price to size it with
    close = [[8.0, np.nan], [8.0, np.nan], [8.0, np.nan], [8.0, 9.0]]
    w = np.full((4, 2), np.nan)
    w[1, 1] = weight
    res = run_backtest(_panel(close), WeightPlan(w), costs=Costs.zero(), capital=1_000.0)
    o = res.orders
    assert o.height == 1
    assert o["side"][0] == side
    assert (o["status"][0], o["reason"][0]) == ("rejected", "not_tradable")
    assert np.isnan(o["requested_qty"][0]) and o["filled_qty"][0] == 0.0
