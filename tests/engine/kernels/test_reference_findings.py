"""Where the kernel and the reference engine part, each on the smallest case found: the
README's rule, the reference's answer and a direct check of the kernel's records.

These fail until the kernel follows the README; each test names the rule it checks.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import Costs, WeightPlan, run_backtest
from tests.engine.kernels.test_reference_features import compare_all, run_both
from tests.engine.kernels.test_stops import _panel

ZERO = Costs.zero()


def _case(close, weights, **overrides):
    close = np.asarray(close, dtype=float)
    case = dict(open=close.copy(), high=close.copy(), low=close.copy(), close=close,
                volume=None, costs=ZERO, capital=1_000.0, max_gross=1.0, max_net=1.0,
                fractional=True, fill="next_open", limit_policy="clip", stops={},
                entries={}, weights=np.asarray(weights, dtype=float))
    case.update(overrides)
    return case


def test_a_resting_entry_under_scale_keeps_the_gross_limit():
    # README "Book": gross exposure stays within max_gross * equity under either policy.
    # A0 fills a 100% limit entry on bar 1; A1's short entry of 50% fills on bar 2: the
    # book has no room left, so the entry is cut to nothing (as under clip)
    c = np.full((4, 2), 10.0)
    w = np.full((4, 2), np.nan)
    w[0, 0], w[1, 1] = 1.0, -0.5
    entries = {"order": "limit", "offset": 0.0, "tif_bars": 1}
    res = run_backtest(_panel(c, c, c, c), WeightPlan(w), costs=ZERO, capital=1_000.0,
                       limit_policy="scale", entries=entries)
    assert res.records.gross.max() <= 1_000.0 * (1 + 1e-9), res.records.gross
    compare_all(*run_both(_case(c, w, limit_policy="scale", entries=entries)))


def test_an_entry_is_sized_on_an_equity_that_counts_a_position_bought_on_its_bar():
    # README "Entries": a resting entry is sized on the equity of that moment. A1 has no
    # bar before bar 1, so its 50% instruction is a market order at bar 1's open (no close
    # to set a level from); A0's 30% limit entry fills at the same open. The equity then is
    # still 1,000 (cash 500 + 50 shares of A1 at 10), so A0 gets 30 shares, not 15
    close = np.array([[10.0, np.nan], [10.0, 10.0], [10.0, 10.0]])
    w = np.full((3, 2), np.nan)
    w[0] = [0.3, 0.5]
    entries = {"order": "limit", "offset": 0.0, "tif_bars": 1}
    res, ref = run_both(_case(close, w, entries=entries, max_gross=1.0))
    a0 = res.fills.filter(res.fills["asset"] == "A0")
    assert a0["qty"].to_list() == pytest.approx([30.0], rel=1e-12)
    compare_all(res, ref)


def test_same_close_lapsed_instruction_records_its_decision_bar():
    # README "Stops": the instruction of a stopped asset lapses (rejected, ``stopped``);
    # under same_close an instruction decided at the close of t belongs to bar t
    close = np.array([[100.0], [100.0], [100.0]])
    low = np.array([[100.0], [90.0], [100.0]])
    w = np.array([[0.5], [0.2], [np.nan]])
    case = _case(close, w, low=low, fill="same_close", stops={"sl_stop": 0.05})
    res, ref = run_both(case)
    lapsed = res.orders.filter(res.orders["reason"] == "stopped")
    assert lapsed["ts"].to_list() == lapsed["fill_ts"].to_list()
    compare_all(res, ref)


def test_same_close_entry_level_comes_from_the_decision_close():
    # README "Entries": the level is set from the decision bar's close; under same_close
    # that is the close the instruction is decided at (110 here, a limit at 107.8), not the
    # close before it (100, a limit at 98 that bar 2 never reaches)
    close = np.array([[100.0], [110.0], [108.0], [108.0]])
    low = np.array([[100.0], [110.0], [105.0], [108.0]])
    w = np.array([[np.nan], [0.5], [np.nan], [np.nan]])
    entries = {"order": "limit", "offset": 0.02, "tif_bars": 1}
    res, ref = run_both(_case(close, w, low=low, fill="same_close", entries=entries))
    assert res.fills["price"].to_list() == pytest.approx([107.8], rel=1e-12)
    compare_all(res, ref)
