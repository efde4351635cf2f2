"""limit_policy: the whole-book scale rule at the gross/net/cash limits, and clip."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Costs, WeightPlan, run_backtest
from engine.errors import ConfigError
from engine.settings import SimulationSettings
from tests.engine.conftest import make_panel, random_prices


def _two_asset_case(policy):
    # A: open 102 at bar 1; B: open 49. 60% A, 40% B decided at the close of bar 0,
    # 10 bps commission, 5 bps slippage: the costs push a fully invested book over the
    # cash (and the gross limit 1.0) by 15.005 bps
    close = np.array([[100.0, 50.0], [103.0, 50.0], [104.0, 51.0]])
    open_ = np.array([[100.0, 50.0], [102.0, 49.0], [104.0, 51.0]])
    w = np.full((3, 2), np.nan)
    w[0] = [0.6, 0.4]
    costs = Costs(commission_bps=10, slippage_bps=5, half_spread_bps=0, borrow_fee_bps=0)
    return run_backtest(make_panel(close, open_), WeightPlan(w), costs=costs,
                        capital=10_000.0, limit_policy=policy)


def test_scale_golden_two_asset_rebalance():
    res = _two_asset_case("scale")
    # gross: s * 10,000 <= 10,000 - s * 10,000 * (0.0005 + 1.0005 * 0.001)
    # cash:  s * 10,000 * 1.0005 * 1.001 <= 10,000      -> both give s = 1 / 1.0015005
    s = 1.0 / 1.0015005
    qty = [0.6 * 10_000 / 102.0 * s, 0.4 * 10_000 / 49.0 * s]
    fills = res.fills.sort("asset")
    assert fills["qty"].to_list() == pytest.approx(qty, rel=1e-12)
    assert fills["price"].to_list() == pytest.approx([102.0 * 1.0005, 49.0 * 1.0005], rel=1e-14)
    assert res.equity["cash"][1] == pytest.approx(0.0, abs=1e-9)
    orders = res.orders.sort("asset")
    assert orders["status"].to_list() == ["partial", "partial"]
    assert orders["reason"].to_list() == ["scaled", "scaled"]
    # both orders got the same share of their request: the book keeps its 60/40 mix
    ratio = (orders["filled_qty"] / orders["requested_qty"]).to_list()
    assert ratio == pytest.approx([s, s], rel=1e-12)


def test_clip_keeps_the_per_order_rule():
    res = _two_asset_case("clip")
    orders = res.orders.sort("asset")
    assert orders["status"].to_list() == ["partial", "filled"]  # the last buy (A) is cut
    assert orders["reason"].to_list() == ["insufficient_cash", ""]


def _long_short(rng, n_bars=60, n=6):
    open_, close = random_prices(rng, n_bars, n)
    w = np.full((n_bars, n), np.nan)
    for t in range(0, n_bars - 1, 5):
        raw = rng.uniform(0.2, 1.0, n)
        sign = np.where(rng.permutation(n) < n // 2, 1.0, -1.0)
        w[t] = sign * raw / raw.sum()  # gross exactly 1.0: at the limit
    return open_, close, w


@pytest.mark.parametrize("seed", range(6))
def test_scale_never_cuts_at_leverage_and_keeps_the_limits(seed):
    rng = np.random.default_rng(seed)
    open_, close, w = _long_short(rng)
    costs = Costs(commission_bps=5, slippage_bps=3, half_spread_bps=2, borrow_fee_bps=0)
    panel = make_panel(close, open_)
    clip = run_backtest(panel, WeightPlan(w), costs=costs, limit_policy="clip",
                        record_positions=True)
    scale = run_backtest(panel, WeightPlan(w), costs=costs, record_positions=True)
    assert "leverage_limit" in clip.orders["reason"].to_list()  # the case does bind
    reasons = set(scale.orders["reason"].to_list())
    assert reasons <= {"", "scaled"}
    # after each rebalance (valued at the fill prices) the book is inside the limits
    pos = scale.records.positions
    eq = scale.records.equity
    for t in np.nonzero(scale.records.traded)[0]:
        held = pos[t] * open_[t]
        equity_at_fill = eq[t] - (pos[t] * (close[t] - open_[t])).sum()
        assert np.abs(held).sum() <= equity_at_fill * (1 + 1e-9)
    # one common factor: the first rebalance opens every position from flat, so every
    # order got the same share of its request
    o = scale.orders
    first = o.filter(o["fill_ts"] == o["fill_ts"][0])
    ratios = (first["filled_qty"] / first["requested_qty"]).to_numpy()
    assert ratios.max() < 1.0 and np.ptp(ratios) < 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_scale_does_not_depend_on_the_column_order(seed):
    rng = np.random.default_rng(100 + seed)
    open_, close, w = _long_short(rng)
    costs = Costs(commission_bps=5, slippage_bps=3, half_spread_bps=2, borrow_fee_bps=20)
    perm = rng.permutation(close.shape[1])
    a = run_backtest(make_panel(close, open_), WeightPlan(w), costs=costs)
    b = run_backtest(make_panel(close[:, perm], open_[:, perm]), WeightPlan(w[:, perm]),
                     costs=costs)
    np.testing.assert_allclose(a.records.equity, b.records.equity, rtol=1e-11)
    np.testing.assert_allclose(a.records.positions[:, perm], b.records.positions, rtol=1e-11,
                               atol=1e-9)


def test_scale_leaves_a_book_inside_the_limits_alone():
    rng = np.random.default_rng(7)
    open_, close, w = _long_short(rng)
    w *= 0.9  # well inside gross 1.0 after costs
    panel = make_panel(close, open_)
    # the same book with limits far away: nothing may differ, to the last bit
    free = run_backtest(panel, WeightPlan(w), max_gross_leverage=10.0, max_net_leverage=10.0)
    b = run_backtest(panel, WeightPlan(w), limit_policy="scale")
    assert np.array_equal(free.records.equity, b.records.equity)
    assert set(b.orders["status"].to_list()) == {"filled"}


def test_scale_applies_to_signal_plans_and_net_limits():
    from engine import SignalPlan

    n_bars, n = 6, 3
    close = np.full((n_bars, n), 100.0)
    le = np.zeros((n_bars, n), bool)
    le[0] = True  # three longs of 40% each: gross 1.2 over a net/gross limit of 1.0
    no = np.zeros_like(le)
    res = run_backtest(make_panel(close), SignalPlan(le, no, no, no, size=0.4,
                                                     size_type="weight"),
                       costs=Costs.zero(), capital=300.0)
    o = res.orders
    assert o["reason"].to_list() == ["scaled"] * 3
    np.testing.assert_allclose(o["filled_qty"].to_numpy(), [1.0, 1.0, 1.0], rtol=1e-12)
    assert res.records.gross[1] == pytest.approx(300.0, rel=1e-12)


def test_unknown_limit_policy_is_refused():
    with pytest.raises((ConfigError, ValueError), match="limit_policy"):
        SimulationSettings(limit_policy="trim")
