"""The benchmark's backtrader peer (``benchmarks/_bt.py``, our sequencing and cash clip
inside a backtrader strategy) computes what our engine computes, and plain backtrader
rejects a buy it cannot pay for in full. backtrader with its own broker rules, and every
documented divergence, is in ``test_backtrader_broker.py``."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import sma_crossover
from benchmarks._bt import prepare, run, signal_events
from benchmarks._ours import run_sma_signals
from tests.engine.conftest import make_panel


def _close_only(close):
    panel = make_panel(close)
    return type(panel)(panel.ts, panel.assets, panel.close, panel.close, panel.close,
                       panel.close, panel.volume, panel.periods_per_year, False)


def _ours_before_fees(result):
    eq = result.equity
    return (eq["equity"] + eq["fees"]).to_numpy()


def test_signal_events_shift_one_bar_and_cancel_conflicts():
    le = np.zeros((4, 3), dtype=bool)
    se = np.zeros((4, 3), dtype=bool)
    le[0, 2] = le[1, 0] = True
    se[1, 1] = True
    le[2, 1] = se[2, 1] = True  # conflicting entries on one bar: none
    se[3, 0] = True  # decided on the last bar: no bar left to act on
    assert signal_events(le, se) == [[], [(2, 1)], [(0, 1), (1, -1)], []]


def test_clipped_backtrader_equals_ours_per_bar():
    rng = np.random.default_rng(5)
    close = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, (300, 5)), axis=0))
    panel = _close_only(close)
    le, se = sma_crossover(close, 5, 20)
    # a tenth of capital per position: the net limit (ours only, shorts > equity) never binds
    capital, value = 100_000.0, 100_000.0 / 10
    ours = run_sma_signals(panel, le, se, value, capital)
    assert (ours.orders["reason"] == "leverage_limit").sum() == 0
    out = run(prepare(panel), panel.assets, signal_events(le, se), value, capital)
    np.testing.assert_allclose(_ours_before_fees(ours), out["values"], rtol=1e-9)
    fills_before_last = int((ours.fills["ts"] < ours.equity["ts"][-1]).sum())
    assert out["executed"] == fills_before_last > 30
    assert out["margin_rejections"] == 0


def test_plain_backtrader_rejects_what_ours_fills_in_part():
    close = np.full((6, 3), 10.0)
    close[3:] = [12.0, 11.0, 9.0]
    panel = _close_only(close)
    le = np.zeros((6, 3), dtype=bool)
    le[1] = True  # three longs decided at the close of bar 1, filled at the close of bar 2
    se = np.zeros_like(le)
    capital, value = 30_000.0, 12_000.0  # 3 x 12,000 > 30,000: the third buy is short
    ours = run_sma_signals(panel, le, se, value, capital)
    orders = ours.orders
    assert orders["status"].to_list() == ["filled", "filled", "partial"]
    # the partial buy spends what is left: 30,000 - 2 x 12,012 = 5,976 -> 5,976 / 10.01
    assert orders["filled_qty"][2] == pytest.approx(5_976.0 / (10.0 * 1.001), rel=1e-12)
    events = signal_events(le, se)
    clipped = run(prepare(panel), panel.assets, events, value, capital)
    np.testing.assert_allclose(_ours_before_fees(ours), clipped["values"], rtol=1e-9)
    plain = run(prepare(panel), panel.assets, events, value, capital, clip_to_cash=False)
    assert plain["margin_rejections"] == 1 and plain["executed"] == 2
    # plain backtrader holds 1,200 A and 1,200 B only: cash 30,000 - 2 x 12,012 + marks
    assert plain["values"][-1] == pytest.approx(30_000.0 - 2 * 12_012.0 + 1_200.0 * 12.0
                                                + 1_200.0 * 11.0, rel=1e-12)
    assert clipped["values"][-1] == pytest.approx(plain["values"][-1]
                                                  + orders["filled_qty"][2] * (9.0 - 10.01),
                                                  rel=1e-12)
