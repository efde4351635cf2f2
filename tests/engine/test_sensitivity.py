"""Cost sensitivity: the curve and the break-even cost, against a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Costs, WeightPlan, run_backtest
from engine.sensitivity import break_even_bps, cost_sensitivity
from tests.engine.conftest import make_panel


def _buy_and_hold(end_price):
    # one year of bars from 100 to end_price; all in at the open of bar 1 (100)
    close = np.linspace(100.0, end_price, 253).reshape(-1, 1)
    close[1] = 100.0
    w = np.full_like(close, np.nan)
    w[0] = 1.0
    return run_backtest(make_panel(close), WeightPlan(w), costs=Costs(borrow_fee_bps=0),
                        capital=10_000.0)


def test_break_even_is_the_cost_that_eats_the_gain():
    # fully invested under the scale rule: final = capital * 1.01 / (1 + c), zero growth
    # at c = 1% = 100 bps
    result = _buy_and_hold(101.0)
    assert break_even_bps(result) == pytest.approx(100.0, abs=0.1)


def test_curve_falls_with_cost_and_starts_at_the_cost_free_run():
    result = _buy_and_hold(110.0)
    out = cost_sensitivity(result)
    cagr = [row["cagr"] for row in out["curve"]]
    assert cagr == sorted(cagr, reverse=True)
    years = 253 / 252.0  # CAGR counts bars / periods_per_year
    assert cagr[0] == pytest.approx(1.10 ** (1 / years) - 1, rel=1e-9)
    # 10% gain: 1.10 / (1 + c) = 1 at c = 1,000 bps (the search's upper edge)
    assert out["break_even_bps"] == pytest.approx(1000.0, abs=0.1)


def test_a_losing_run_has_no_break_even():
    assert break_even_bps(_buy_and_hold(95.0)) is None
