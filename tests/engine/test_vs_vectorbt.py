"""Equality with vectorbt on identical settings (fees, next-close fills): equity to 1e-8.

vectorbt fills an order at the price of the bar it is placed on, so our "decided at the
close of t, filled at the close of t+1" is vectorbt's order shifted one bar, at the close.
Neither borrow fees nor leverage limits exist in vectorbt: they are off / not binding here.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from engine import Costs, SignalPlan, WeightPlan, run_backtest
from tests.engine.conftest import make_panel, random_prices

vbt = pytest.importorskip("vectorbt")

CAPITAL = 100_000.0
# vectorbt cuts an order to the cash left, one order at a time: our "clip" rule
CLIP = ({"limit_policy": "clip"}
        if "limit_policy" in inspect.signature(run_backtest).parameters else {})


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
    # vectorbt fills the last buy of a rebalance partially when cash runs out: that is the
    # per-order clip rule, so this comparison runs under limit_policy="clip"
    res = run_backtest(make_panel(close), WeightPlan(w), costs=_costs(10.0, 0.0, 5.0),
                       fill="next_close", capital=CAPITAL, max_gross_leverage=3.0,
                       limit_policy="clip")
    pf = vbt.Portfolio.from_orders(
        pd.DataFrame(close), size=pd.DataFrame(_shift(w)), size_type="targetpercent",
        fees=10 / 1e4, slippage=5 / 1e4, init_cash=CAPITAL, cash_sharing=True, group_by=True,
        call_seq="auto", freq="1D")
    np.testing.assert_allclose(res.records.equity, _vbt_value(pf), rtol=1e-8)
    assert res.fills.height == len(pf.orders.records)


# --- next_open: vectorbt orders shifted one bar and priced on the opens ---------------
def _hole_panel(rng, n_bars, n, holes):
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, (n_bars, n)), axis=0)
    open_ = close * (1 + rng.normal(0, 0.01, (n_bars, n)))
    if holes:
        mask = rng.random((n_bars, n)) < holes
        mask[0] = False
        close[mask] = np.nan
        open_[mask] = np.nan
    return open_, close


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("holes", [0.0, 0.08])
def test_next_open_rebalancing_with_binding_cash_equals_vectorbt(seed, holes):
    """Long-only weights summing to 1 with costs: the last purchase of every rebalance is
    cut to the cash left (ours: partial, insufficient_cash; vectorbt: allow_partial).
    Missing bars: neither engine trades an asset without a bar, both value it at its last
    close (vectorbt: NaN order size there, forward-filled valuation price)."""
    rng = np.random.default_rng(40 + seed)
    n_bars, n = 120, 4
    open_, close = _hole_panel(rng, n_bars, n, holes)
    w = np.full((n_bars, n), np.nan)
    rebalance = np.arange(0, n_bars - 1, 10)
    raw = rng.uniform(0.1, 1, (rebalance.size, n))
    w[rebalance] = raw / raw.sum(axis=1, keepdims=True)
    res = run_backtest(make_panel(close, open_), WeightPlan(w), costs=_costs(10.0, 0.0, 5.0),
                       fill="next_open", capital=CAPITAL, max_gross_leverage=1.0, **CLIP,
                       close_at_data_end=False)  # vectorbt values a position whose bars
    # ended at its last price forever; we settle it there by default
    assert (res.orders["reason"] == "insufficient_cash").sum() >= rebalance.size // 2
    if holes:
        assert (res.orders["reason"] == "not_tradable").sum() > 0
    size = _shift(w)
    size[~np.isfinite(open_)] = np.nan  # no bar at the fill: no order
    # valuation at the fill: the open, or the last close where the asset has no bar
    last_close = pd.DataFrame(close).ffill().shift(1)
    val_price = pd.DataFrame(open_).fillna(last_close)
    pf = vbt.Portfolio.from_orders(
        pd.DataFrame(close), size=pd.DataFrame(size), size_type="targetpercent",
        price=pd.DataFrame(open_), val_price=val_price, fees=10 / 1e4,
        slippage=5 / 1e4, init_cash=CAPITAL, cash_sharing=True, group_by=True,
        call_seq="auto", freq="1D")
    np.testing.assert_allclose(res.records.equity, _vbt_value(pf), rtol=1e-8)
    assert res.fills.height == len(pf.orders.records)


@pytest.mark.parametrize("seed", range(3))
def test_next_open_signals_with_binding_cash_equal_vectorbt(seed):
    rng = np.random.default_rng(60 + seed)
    n_bars, n = 200, 3
    open_, close = _hole_panel(rng, n_bars, n, 0.0)
    entries = rng.random((n_bars, n)) < 0.1
    exits = rng.random((n_bars, n)) < 0.08
    no = np.zeros_like(entries)
    # 45,000 a position on 100,000 of capital: the third open position gets what is left
    res = run_backtest(make_panel(close, open_), SignalPlan(entries, exits, no, no,
                                                            size=45_000.0, size_type="value"),
                       costs=_costs(10.0, 1.0, 3.0), fill="next_open", capital=CAPITAL, **CLIP)
    assert (res.orders["status"] == "partial").sum() > 0
    pf = vbt.Portfolio.from_signals(
        pd.DataFrame(close), entries=pd.DataFrame(_shift(entries)),
        exits=pd.DataFrame(_shift(exits)), price=pd.DataFrame(open_), size=45_000.0,
        size_type="value", fees=10 / 1e4, fixed_fees=1.0, slippage=3 / 1e4,
        init_cash=CAPITAL, cash_sharing=True, group_by=True, call_seq="auto", freq="1D")
    np.testing.assert_allclose(res.records.equity, _vbt_value(pf), rtol=1e-8)
    assert res.fills.height == len(pf.orders.records)
