"""Limit and stop entries with a time-in-force in bars: hand-derived golden cases."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Costs, Entries, SignalPlan, WeightPlan, run_backtest
from tests.engine.kernels.test_stops import _long_once, _panel

ZERO = Costs.zero()
C = [100.0, 100.0, 100.0, 100.0, 100.0]


def _fills(res):
    f = res.fills
    return [(int(d), round(float(p), 9), t) for d, p, t in
            zip(f["ts"].dt.day(), f["price"], f["trigger"], strict=True)]


def test_limit_buy_rests_below_the_decision_close_and_fills_at_its_level():
    # decided at the close of bar 0 (100): buy limit at 98; bar 1 low 99 (no), bar 2 low 97
    p = _panel([100, 100, 99, 99, 99], [100, 101, 100, 100, 100], [100, 99, 97, 98, 98], C)
    res = run_backtest(p, _long_once(5), costs=ZERO,
                       entries={"order": "limit", "offset": 0.02, "tif_bars": 3})
    assert _fills(res) == [(3, 98.0, "limit_entry")]
    assert res.orders["status"].to_list() == ["filled"]


def test_limit_buy_gap_below_the_level_fills_at_the_open():
    p = _panel([100, 95, 99, 99, 99], [100, 96, 100, 100, 100], [100, 94, 97, 98, 98], C)
    res = run_backtest(p, _long_once(5), costs=ZERO,
                       entries={"order": "limit", "offset": 0.02, "tif_bars": 3})
    assert _fills(res) == [(2, 95.0, "limit_entry")]


def test_stop_buy_fills_when_the_price_rises_to_its_level():
    p = _panel([100, 100, 101, 99, 99], [100, 101, 103, 100, 100], [100, 99, 100, 98, 98], C)
    res = run_backtest(p, _long_once(5), costs=ZERO,
                       entries={"order": "stop", "offset": 0.02, "tif_bars": 3})
    assert _fills(res) == [(3, 102.0, "stop_entry")]


def test_short_limit_entry_rests_above_the_close():
    p = _panel([100, 100, 101, 99, 99], [100, 101, 103, 100, 100], [100, 99, 100, 98, 98], C)
    res = run_backtest(p, _long_once(5, short=True), costs=ZERO,
                       entries={"order": "limit", "offset": 0.02, "tif_bars": 3})
    assert _fills(res) == [(3, 102.0, "limit_entry")]
    assert res.fills["qty"].to_list() == [-1.0]


def test_an_entry_whose_level_is_not_reached_expires_after_its_bars():
    flat = [100.0] * 5
    p = _panel(flat, [100.5] * 5, [99.5] * 5, flat)
    res = run_backtest(p, _long_once(5), costs=ZERO,
                       entries={"order": "limit", "offset": 0.02, "tif_bars": 2})
    assert res.fills.height == 0
    o = res.orders
    assert o["status"].to_list() == ["rejected"] and o["reason"].to_list() == ["expired"]
    assert int(o["fill_ts"].dt.day()[0]) == 3  # bars 1 and 2 live; expired at bar 2's end


def test_a_new_instruction_cancels_a_resting_entry_and_exits_stay_market_orders():
    # weights: 50% decided at bar 0 (rests at 98), 0% at bar 1 cancels it, 30% at bar 2
    # rests again; an exit is never delayed
    p = _panel([100, 100, 100, 99, 99], [100, 101, 101, 100, 100], [100, 99.5, 99.5, 97, 97],
               C)
    w = np.full((5, 1), np.nan)
    w[0], w[1], w[2] = 0.5, 0.0, 0.3
    res = run_backtest(p, WeightPlan(w), costs=ZERO, capital=10_000.0,
                       entries={"order": "limit", "offset": 0.02, "tif_bars": 5})
    o = res.orders
    assert o["reason"].to_list() == ["cancelled", ""]
    assert _fills(res) == [(4, 98.0, "limit_entry")]
    assert res.fills["qty"][0] == pytest.approx(0.3 * 10_000 / 98.0)  # sized at the fill


def test_market_entries_are_unchanged():
    rng = np.random.default_rng(2)
    c = 100 * np.cumprod(1 + rng.normal(0, 0.02, (80, 2)), axis=0)
    flags = [rng.random((80, 2)) < 0.1 for _ in range(4)]
    plan = SignalPlan(*flags, size=0.3, size_type="weight")
    a = run_backtest(_panel(c, c * 1.01, c * 0.99, c), plan)
    b = run_backtest(_panel(c, c * 1.01, c * 0.99, c), plan, entries=Entries())
    assert np.array_equal(a.records.equity, b.records.equity)
