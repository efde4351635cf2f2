"""Equality with vectorbt on identical settings (fees, next-close fills): equity to 1e-8.

vectorbt fills an order at the price of the bar it is placed on, so our "decided at the
close of t, filled at the close of t+1" is vectorbt's order shifted one bar, at the close.
Neither borrow fees nor leverage limits exist in vectorbt: they are off / not binding here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import Costs, SignalPlan, WeightPlan, run_backtest
from tests.engine.conftest import make_panel, random_prices

vbt = pytest.importorskip("vectorbt")

CAPITAL = 100_000.0


def _costs(fees_bps, fixed, slip_bps):
    return Costs(commission_bps=fees_bps, commission_fixed=fixed, slippage_bps=slip_bps,
                 half_spread_bps=0.0, borrow_fee_bps=0.0)


def _shift(a):
    out = np.zeros_like(a) if a.dtype == bool else np.full_like(a, np.nan)
    out[1:] = a[:-1]
    return out


def _vbt_value(pf):
    return np.asarray(pf.value(), dtype=np.float64).reshape(-1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fees_bps,fixed,slip_bps", [(10.0, 0.0, 0.0), (5.0, 1.0, 3.0)])
def test_long_only_signals_equal_vectorbt(seed, fees_bps, fixed, slip_bps):
    rng = np.random.default_rng(seed)
    n_bars, n = 300, 3
    _, close = random_prices(rng, n_bars, n)
    entries = rng.random((n_bars, n)) < 0.08
    exits = rng.random((n_bars, n)) < 0.08
    res = run_backtest(make_panel(close), SignalPlan(entries, exits, np.zeros_like(entries),
                                                     np.zeros_like(entries), size=20_000.0,
                                                     size_type="value"),
                       costs=_costs(fees_bps, fixed, slip_bps), fill="next_close", capital=CAPITAL)
    pf = vbt.Portfolio.from_signals(
        pd.DataFrame(close), entries=pd.DataFrame(_shift(entries)), exits=pd.DataFrame(_shift(exits)),
        size=20_000.0, size_type="value", fees=fees_bps / 1e4, fixed_fees=fixed,
        slippage=slip_bps / 1e4, init_cash=CAPITAL, cash_sharing=True, group_by=True,
        call_seq="auto", freq="1D")
    np.testing.assert_allclose(res.records.equity, _vbt_value(pf), rtol=1e-8)
    assert res.fills.height == len(pf.orders.records)


@pytest.mark.parametrize("seed", range(4))
def test_long_short_signals_equal_vectorbt(seed):
    rng = np.random.default_rng(10 + seed)
    n_bars, n = 300, 3
    _, close = random_prices(rng, n_bars, n)
    flags = [rng.random((n_bars, n)) < 0.06 for _ in range(4)]
    le, lx, se, sx = flags
    # vectorbt ignores an entry and an exit of one side on the same bar, as we do
    res = run_backtest(make_panel(close), SignalPlan(le, lx, se, sx, size=15_000.0,
                                                     size_type="value"),
                       costs=_costs(10.0, 0.0, 2.0), fill="next_close", capital=CAPITAL,
                       max_gross_leverage=10.0)
    pf = vbt.Portfolio.from_signals(
        pd.DataFrame(close), entries=pd.DataFrame(_shift(le)), exits=pd.DataFrame(_shift(lx)),
        short_entries=pd.DataFrame(_shift(se)), short_exits=pd.DataFrame(_shift(sx)),
        size=15_000.0, size_type="value", fees=10 / 1e4, slippage=2 / 1e4, init_cash=CAPITAL,
        cash_sharing=True, group_by=True, call_seq="auto", freq="1D")
    np.testing.assert_allclose(res.records.equity, _vbt_value(pf), rtol=1e-8)
    assert res.fills.height == len(pf.orders.records)
    assert res.trades.filter(~res.trades["is_open"]).height > 5


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("long_only", [True, False])
def test_target_percent_rebalancing_equals_vectorbt(seed, long_only):
    rng = np.random.default_rng(20 + seed)
    n_bars, n = 250, 5
    _, close = random_prices(rng, n_bars, n)
    w = np.full((n_bars, n), np.nan)
    rebalance = np.arange(0, n_bars, 21)
    raw = rng.uniform(0, 1, (rebalance.size, n))
    raw /= raw.sum(axis=1, keepdims=True)
    if not long_only:
        # 100% long in three assets, 50% short in two: 150% gross, 50% net
        raw[:, :3] /= raw[:, :3].sum(axis=1, keepdims=True)
        raw[:, 3:] = -0.5 * raw[:, 3:] / raw[:, 3:].sum(axis=1, keepdims=True)
    w[rebalance] = raw
    res = run_backtest(make_panel(close), WeightPlan(w), costs=_costs(10.0, 0.0, 5.0),
                       fill="next_close", capital=CAPITAL, max_gross_leverage=3.0)
    pf = vbt.Portfolio.from_orders(
        pd.DataFrame(close), size=pd.DataFrame(_shift(w)), size_type="targetpercent",
        fees=10 / 1e4, slippage=5 / 1e4, init_cash=CAPITAL, cash_sharing=True, group_by=True,
        call_seq="auto", freq="1D")
    np.testing.assert_allclose(res.records.equity, _vbt_value(pf), rtol=1e-8)
    assert res.fills.height == len(pf.orders.records)
