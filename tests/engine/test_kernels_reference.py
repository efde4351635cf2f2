"""The numba kernels against the slow pure-Python reference on small random cases."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Costs, SignalPlan, WeightPlan, run_backtest
from tests.engine.conftest import make_panel, random_prices
from tests.engine.reference import reference_backtest, round_trips

FILLS = ["next_open", "next_close", "same_close"]


def _costs(rng):
    return Costs(commission_bps=float(rng.uniform(0, 20)), commission_fixed=float(rng.uniform(0, 2)),
                 slippage_bps=float(rng.uniform(0, 10)), half_spread_bps=float(rng.uniform(0, 5)),
                 borrow_fee_bps=float(rng.uniform(0, 300)))


def _ref_kwargs(costs, fill, capital, max_gross, max_net, cap=None, fractional=True):
    return dict(fill_mode=fill, capital=capital, commission_rate=costs.commission_bps / 1e4,
                commission_fixed=costs.commission_fixed, impact_rate=costs.price_impact_bps / 1e4,
                borrow_rate_per_bar=costs.borrow_fee_bps / 1e4 / 252, max_gross=max_gross,
                max_net=max_net, participation_cap=cap, fractional=fractional)


def _compare(res, ref, panel):
    np.testing.assert_allclose(res.records.equity, ref["equity"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(res.records.cash, ref["cash"], rtol=1e-9, atol=1e-6)
    o = res.orders
    assert o.height == len(ref["orders"])
    assert o["status"].to_list() == [r["status"] for r in ref["orders"]]
    assert o["reason"].to_list() == [r["reason"] for r in ref["orders"]]
    assert o["asset"].to_list() == [panel.assets[r["asset"]] for r in ref["orders"]]
    np.testing.assert_allclose(o["filled_qty"].to_numpy(), [r["filled"] for r in ref["orders"]],
                               rtol=1e-9, atol=1e-9)
    f = res.fills
    assert f.height == len(ref["fills"])
    np.testing.assert_allclose(f["qty"].to_numpy(), [r["qty"] for r in ref["fills"]], rtol=1e-9)
    np.testing.assert_allclose(f["price"].to_numpy(), [r["price"] for r in ref["fills"]], rtol=1e-12)
    np.testing.assert_allclose(f["commission"].to_numpy(), [r["commission"] for r in ref["fills"]],
                               rtol=1e-9, atol=1e-9)
    # closed round trips agree on entry/exit bars and prices
    closed = res.records.trades[: res.counts[2]]
    closed = closed[closed["is_open"] == 0]
    expect = round_trips(ref["fills"], panel.n_assets)
    got = sorted((int(t["asset"]), int(t["entry_bar"]), int(t["exit_bar"])) for t in closed)
    assert got == sorted((t["asset"], t["entry_bar"], t["exit_bar"]) for t in expect)
    by_key = {(t["asset"], t["entry_bar"], t["exit_bar"]): t for t in expect}
    for t in closed:
        e = by_key[(int(t["asset"]), int(t["entry_bar"]), int(t["exit_bar"]))]
        assert t["side"] == e["side"]
        np.testing.assert_allclose([t["entry_price"], t["exit_price"]],
                                   [e["entry_price"], e["exit_price"]], rtol=1e-9)
        # net pnl = gross pnl - commission - borrow attributed
        np.testing.assert_allclose(t["pnl"], e["gross_pnl"] - t["fees"], rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("fill", FILLS)
def test_weights_match_reference(seed, fill):
    rng = np.random.default_rng(seed)
    n_bars, n = 40, 4
    open_, close = random_prices(rng, n_bars, n, holes=0.08 if seed % 2 else 0.0)
    volume = rng.uniform(50, 5000, (n_bars, n)) if seed % 3 == 0 else None
    panel = make_panel(close, open_, volume)
    w = rng.uniform(-0.6, 0.6, (n_bars, n))
    if seed % 4 == 0:
        w = np.abs(w)  # long only
    w[rng.random((n_bars, n)) < 0.6] = np.nan
    w[rng.random((n_bars, n)) < 0.05] = 0.0
    max_gross, max_net = (2.0, 1.0) if seed % 5 else (3.0, 1.5)
    # keep instructed rows inside the limits (bad rows are input errors, tested elsewhere)
    g = np.nansum(np.abs(w), axis=1, keepdims=True)
    w = w * np.minimum(1.0, max_gross * 0.999 / np.maximum(g, 1e-12))
    nn = np.abs(np.nansum(w, axis=1, keepdims=True))
    w = w * np.minimum(1.0, max_net * 0.999 / np.maximum(nn, 1e-12))
    costs = _costs(rng)
    cap = 0.05 if volume is not None else None
    costs = Costs(**{**costs.to_dict(), "participation_cap": cap})
    fractional = seed % 6 != 1
    res = run_backtest(panel, WeightPlan(w), costs=costs, fill=fill, capital=100_000.0,
                       max_gross_leverage=max_gross, max_net_leverage=max_net,
                       fractional=fractional, unsafe_same_close=True)
    instr = [[None if np.isnan(w[t, j]) else ("w", w[t, j]) for j in range(n)] for t in range(n_bars)]
    vol = np.full((n_bars, n), np.nan) if volume is None else volume
    ref = reference_backtest(open_, close, vol, instr,
                             **_ref_kwargs(costs, fill, 100_000.0, max_gross, max_net, cap, fractional))
    _compare(res, ref, panel)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("fill", FILLS)
@pytest.mark.parametrize("size_type", ["weight", "value", "qty"])
def test_signals_match_reference(seed, fill, size_type):
    rng = np.random.default_rng(100 + seed)
    n_bars, n = 50, 3
    open_, close = random_prices(rng, n_bars, n, holes=0.05 if seed % 2 else 0.0)
    panel = make_panel(close, open_)
    flags = [rng.random((n_bars, n)) < 0.15 for _ in range(4)]
    size = {"weight": 0.3, "value": 25_000.0, "qty": 150.0}[size_type]
    costs = _costs(rng)
    res = run_backtest(panel, SignalPlan(*flags, size=size, size_type=size_type), costs=costs,
                       fill=fill, capital=100_000.0, max_gross_leverage=2.0, unsafe_same_close=True)
    kind = {"weight": "w", "value": "v", "qty": "q"}[size_type]
    ref = reference_backtest(open_, close, np.full((n_bars, n), np.nan), None,
                             signals=(*[f.tolist() for f in flags], size, kind),
                             **_ref_kwargs(costs, fill, 100_000.0, 2.0, 1.0))
    _compare(res, ref, panel)


@pytest.mark.parametrize("seed", range(6))
def test_accounting_identity_every_bar(seed):
    rng = np.random.default_rng(seed)
    n_bars, n = 60, 5
    open_, close = random_prices(rng, n_bars, n, holes=0.1)
    panel = make_panel(close, open_)
    w = rng.uniform(-0.3, 0.3, (n_bars, n))
    w[rng.random((n_bars, n)) < 0.5] = np.nan
    res = run_backtest(panel, WeightPlan(w), costs=_costs(rng), max_gross_leverage=2.0)
    pos = res.records.positions
    last = np.where(np.isfinite(close), close, np.nan)
    for t in range(1, n_bars):
        last[t] = np.where(np.isfinite(last[t]), last[t], last[t - 1])
    held = np.where(pos != 0, pos * np.nan_to_num(last), 0.0)
    np.testing.assert_allclose(res.records.equity, res.records.cash + held.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(res.records.gross, np.abs(held).sum(axis=1), rtol=1e-12)
    # positions are built only from fills
    f = res.fills
    for j, asset in enumerate(panel.assets):
        assert np.isclose(f.filter(f["asset"] == asset)["qty"].sum(), pos[-1, j], atol=1e-9)
