"""The numba kernels against the independent reference engine, on every output.

Hypothesis draws tiny panels (missing bars, gaps, equal prices that make ties), costs,
limits that bind, volume caps, whole shares, all fill modes, and either target weights
or entry/exit signals; both engines must agree bar by bar on equity, cash, gross, net,
traded, fees, borrow and positions, and record by record on orders (status, reason,
processing order), fills (price, commission, slippage) and trades (closed and open,
fees and borrow included).
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Costs, SignalPlan, WeightPlan, run_backtest
from engine.panel import Panel
from tests.engine.kernels.reference_engine import ReferenceEngine, Settings

PERIODS_PER_YEAR = 252.0
RTOL, ATOL_CASH, ATOL_QTY = 1e-7, 1e-6, 1e-9
HAS_LIMIT_POLICY = "limit_policy" in inspect.signature(run_backtest).parameters


def make_panel(close, open_, volume=None):
    close = np.asarray(close, dtype=np.float64)
    open_ = np.asarray(open_, dtype=np.float64)
    n_bars, n = close.shape
    ts = np.datetime64("2021-01-04", "ns") + np.arange(n_bars) * np.timedelta64(1, "D")
    vol = np.full_like(close, np.nan) if volume is None else np.asarray(volume, dtype=float)
    return Panel(ts=ts, assets=tuple(f"A{j}" for j in range(n)), open=open_,
                 high=np.fmax(open_, close), low=np.fmin(open_, close), close=close,
                 volume=vol, periods_per_year=PERIODS_PER_YEAR, has_open=True)


# --- comparison -----------------------------------------------------------------------
def _close(got, want, atol, what):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                               rtol=RTOL, atol=atol, err_msg=what)


def compare(res, ref):
    r = res.records
    bars = ref.bars
    for name in ("equity", "cash", "gross", "net", "traded", "fees", "borrow"):
        _close(getattr(r, name), [getattr(b, name) for b in bars], ATOL_CASH, name)
    _close(r.positions, [b.positions for b in bars], ATOL_QTY, "positions")

    orders = r.orders[: res.counts[0]]
    assert len(orders) == len(ref.orders), "order count"
    by_key = {(int(o["fill_bar"]), int(o["asset"])): o for o in orders}
    assert len(by_key) == len(orders), "at most one order per asset and bar"
    status_names = ("filled", "partial", "rejected")
    reason_names = ("", "insufficient_cash", "not_tradable", "leverage_limit", "volume_cap")
    for want in ref.orders:
        got = by_key[(want.fill_bar, want.asset)]
        where = f"order at bar {want.fill_bar} asset {want.asset}"
        assert int(got["bar"]) == want.decision_bar, where
        assert int(got["side"]) == want.side, where
        assert status_names[got["status"]] == want.status, where
        assert reason_names[got["reason"]] == want.reason, where
        if math.isnan(want.requested):
            assert math.isnan(got["requested_qty"]), where
        else:
            _close(got["requested_qty"], want.requested, ATOL_QTY, where)
        _close(got["filled_qty"], want.filled, ATOL_QTY, where)
    # processing order within a bar: the kernel numbers orders in the order it fills them
    for bar, assets in ref.sequences.items():
        tradable = [o for o in orders if o["fill_bar"] == bar and o["reason"] != 2]
        tradable.sort(key=lambda o: o["order_id"])
        assert [int(o["asset"]) for o in tradable] == assets, f"sequence at bar {bar}"

    fills = r.fills[: res.counts[1]]
    assert len(fills) == len(ref.fills), "fill count"
    for got, want in zip(fills, ref.fills, strict=True):
        where = f"fill at bar {want.bar} asset {want.asset}"
        assert (int(got["bar"]), int(got["asset"])) == (want.bar, want.asset), where
        order = orders[orders["order_id"] == got["order_id"]][0]
        assert (int(order["fill_bar"]), int(order["asset"])) == (want.bar, want.asset), where
        _close([got["qty"], got["price"], got["ref_price"]],
               [want.qty, want.price, want.ref_price], ATOL_QTY, where)
        _close([got["commission"], got["slippage_cost"]],
               [want.commission, want.slippage_cost], ATOL_CASH, where)

    trades = r.trades[: res.counts[2]]
    assert len(trades) == len(ref.trades), "trade count"
    got_by_key = {(int(t["asset"]), int(t["entry_bar"]), bool(t["is_open"])): t for t in trades}
    for want in ref.trades:
        got = got_by_key[(want.asset, want.entry_bar, want.is_open)]
        where = f"trade of asset {want.asset} entered at bar {want.entry_bar}"
        assert (int(got["side"]), int(got["exit_bar"])) == (want.side, want.exit_bar), where
        _close([got["entry_price"], got["exit_price"], got["qty"]],
               [want.entry_price, want.exit_price, want.max_qty], ATOL_QTY, where)
        _close([got["pnl"], got["fees"]], [want.pnl, want.fees], ATOL_CASH, where)
        _close(got["ret"], want.ret, 1e-9, where)


# --- running both ---------------------------------------------------------------------
def run_both(case):
    panel = make_panel(case["close"], case["open"], case["volume"])
    kwargs = dict(costs=case["costs"], fill=case["fill"], capital=case["capital"],
                  max_gross_leverage=case["max_gross"], max_net_leverage=case["max_net"],
                  fractional=case["fractional"], unsafe_same_close=True)
    if HAS_LIMIT_POLICY:
        kwargs["limit_policy"] = "clip"  # the reference models the per-order clip rule
    if "close_at_data_end" in inspect.signature(run_backtest).parameters:
        # the reference values a position whose asset's bars ended at its last close
        kwargs["close_at_data_end"] = False
    settings_ = Settings.from_costs(case["costs"], PERIODS_PER_YEAR, fill=case["fill"],
                                    capital=case["capital"], max_gross=case["max_gross"],
                                    max_net=case["max_net"], fractional=case["fractional"])
    volume = panel.volume.tolist()
    ref = ReferenceEngine(case["open"].tolist(), case["close"].tolist(), volume, settings_)
    if "weights" in case:
        res = run_backtest(panel, WeightPlan(case["weights"]), **kwargs)
        out = ref.run_weights(case["weights"].tolist())
    else:
        le, lx, se, sx = case["flags"]
        res = run_backtest(panel, SignalPlan(le, lx, se, sx, size=case["size"],
                                             size_type=case["size_type"]), **kwargs)
        size = np.broadcast_to(case["size"], case["close"].shape).tolist()
        out = ref.run_signals(le.tolist(), lx.tolist(), se.tolist(), sx.tolist(), size,
                              case["size_type"])
    return res, out


# --- hypothesis cases -----------------------------------------------------------------
PRICES = [8.0, 10.0, 10.0, 12.5, 20.0, 40.0]  # repeated values make equal-valued orders


@st.composite
def market(draw):
    n_bars = draw(st.integers(3, 7))
    n = draw(st.integers(1, 3))
    price = st.one_of(st.sampled_from(PRICES), st.floats(5.0, 60.0))
    close = np.array(draw(st.lists(st.lists(price, min_size=n, max_size=n),
                                   min_size=n_bars, max_size=n_bars)))
    gap = draw(st.floats(0.0, 1.0))
    open_ = close * (1 + gap * np.array(draw(st.lists(
        st.sampled_from([-0.05, 0.0, 0.02]), min_size=n_bars * n, max_size=n_bars * n))
    ).reshape(n_bars, n))
    holes = np.array(draw(st.lists(st.booleans(), min_size=n_bars * n, max_size=n_bars * n))
                     ).reshape(n_bars, n) & draw(st.booleans())
    close[holes] = np.nan
    open_[holes] = np.nan
    volume = None
    if draw(st.booleans()):
        volume = np.array(draw(st.lists(st.sampled_from([0.0, 3.0, 40.0, 500.0, 1e6]),
                                        min_size=n_bars * n, max_size=n_bars * n)),
                          dtype=float).reshape(n_bars, n)
    return close, open_, volume


@st.composite
def account(draw, volume):
    zero = draw(st.booleans())
    cap = draw(st.sampled_from([None, 0.5, 1.0])) if volume is not None else None
    if zero:
        costs = Costs(commission_bps=0.0, slippage_bps=0.0, half_spread_bps=0.0,
                      borrow_fee_bps=0.0, cash_rate=draw(st.sampled_from([0.0, 0.3])),
                      participation_cap=cap)
    else:
        costs = Costs(commission_bps=draw(st.sampled_from([0.0, 1.0, 25.0])),
                      commission_fixed=draw(st.sampled_from([0.0, 0.5, 3.0])),
                      slippage_bps=draw(st.sampled_from([0.0, 2.0, 30.0])),
                      half_spread_bps=draw(st.sampled_from([0.0, 1.0])),
                      borrow_fee_bps=draw(st.sampled_from([0.0, 50.0, 5000.0])),
                      cash_rate=draw(st.sampled_from([0.0, 0.05, 2.0])),
                      participation_cap=cap)
    max_gross = draw(st.sampled_from([0.5, 1.0, 1.5, 3.0]))
    max_net = draw(st.sampled_from([0.5, 1.0, 2.0]))
    return dict(costs=costs, max_gross=max_gross, max_net=max_net,
                fractional=draw(st.booleans()),
                capital=draw(st.sampled_from([250.0, 1_000.0, 100_000.0])),
                fill=draw(st.sampled_from(["next_open", "next_close", "same_close"])))


def _fit_rows(w, max_gross, max_net):
    """Scale each row into the limits (rows beyond them are input errors)."""
    filled = np.nan_to_num(w)
    gross = np.abs(filled).sum(axis=1, keepdims=True)
    net = np.abs(filled.sum(axis=1, keepdims=True))
    factor = np.minimum(1.0, np.minimum(max_gross / np.maximum(gross, 1e-300),
                                        max_net / np.maximum(net, 1e-300)))
    return w * factor


@st.composite
def weights_case(draw):
    close, open_, volume = draw(market())
    case = dict(close=close, open=open_, volume=volume, **draw(account(volume)))
    cells = close.size
    raw = draw(st.lists(st.sampled_from([np.nan, np.nan, -1.0, -0.5, -0.3, 0.0, 0.25, 0.5,
                                         1.0]), min_size=cells, max_size=cells))
    w = np.array(raw).reshape(close.shape)
    case["weights"] = _fit_rows(w, case["max_gross"], case["max_net"])
    return case


def draw_signal_orders(draw, shape) -> dict:
    """Entry/exit flags (each the AND of two random masks, so sparse) and an order size."""
    cells = int(np.prod(shape))

    def mask():
        return np.array(draw(st.lists(st.booleans(), min_size=cells,
                                      max_size=cells))).reshape(shape)

    flags = tuple(mask() & mask() for _ in range(4))
    kind = draw(st.sampled_from(["weight", "value", "qty"]))
    return {"flags": flags, "size_type": kind,
            "size": draw(st.sampled_from({"weight": [0.3, 0.6, 1.0],
                                          "value": [100.0, 400.0, 5_000.0],
                                          "qty": [1.0, 7.0, 30.0, 2.5]}[kind]))}


@st.composite
def signals_case(draw):
    close, open_, volume = draw(market())
    case = dict(close=close, open=open_, volume=volume, **draw(account(volume)))
    case.update(draw_signal_orders(draw, close.shape))
    return case


SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(weights_case())
def test_weights_match_reference(case):
    compare(*run_both(case))


@SETTINGS
@given(signals_case())
def test_signals_match_reference(case):
    compare(*run_both(case))


# --- longer seeded panels (kept from the first reference's cases) ---------------------
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("path", ["weights", "signals"])
def test_longer_panels_match_reference(seed, path):
    rng = np.random.default_rng(seed)
    n_bars, n = 40, 4
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, (n_bars, n)), axis=0)
    open_ = close * (1 + rng.normal(0, 0.005, (n_bars, n)))
    if seed % 2:
        holes = rng.random((n_bars, n)) < 0.08
        close[holes] = open_[holes] = np.nan
    volume = rng.uniform(50, 5000, (n_bars, n)) if seed % 3 == 0 else None
    costs = Costs(commission_bps=float(rng.uniform(0, 20)),
                  commission_fixed=float(rng.uniform(0, 2)),
                  slippage_bps=float(rng.uniform(0, 10)),
                  half_spread_bps=float(rng.uniform(0, 5)),
                  borrow_fee_bps=float(rng.uniform(0, 300)), cash_rate=0.04,
                  participation_cap=0.05 if volume is not None else None)
    case = dict(close=close, open=open_, volume=volume, costs=costs, capital=100_000.0,
                max_gross=2.0 if seed % 5 else 3.0, max_net=1.0 if seed % 5 else 1.5,
                fractional=seed % 6 != 1, fill=("next_open", "next_close", "same_close")[seed % 3])
    if path == "weights":
        w = rng.uniform(-0.6, 0.6, (n_bars, n))
        w[rng.random((n_bars, n)) < 0.6] = np.nan
        w[rng.random((n_bars, n)) < 0.05] = 0.0
        case["weights"] = _fit_rows(w, case["max_gross"], case["max_net"])
    else:
        case["flags"] = tuple(rng.random((n_bars, n)) < 0.15 for _ in range(4))
        case["size_type"], case["size"] = [("weight", 0.3), ("value", 25_000.0),
                                           ("qty", 150.0)][seed % 3]
    compare(*run_both(case))


# --- the README's arbitrary choices, each pinned on a hand-made case -------------------
def _flat(n_bars, n, price=10.0):
    close = np.full((n_bars, n), price)
    return close, close.copy()


def test_equal_valued_orders_keep_column_order_and_the_last_is_cut():
    # three equal purchases, 0.4 each, at a gross limit of 1.0: the third is the one cut
    close, open_ = _flat(3, 3)
    w = np.full((3, 3), np.nan)
    w[0] = [1 / 3, 1 / 3, 1 / 3]
    costs = Costs(commission_bps=10.0, slippage_bps=0.0, half_spread_bps=0.0,
                  borrow_fee_bps=0.0)
    case = dict(close=close, open=open_, volume=None, costs=costs, capital=3_000.0,
                max_gross=1.0, max_net=1.0, fractional=True, fill="next_open", weights=w)
    res, ref = run_both(case)
    compare(res, ref)
    assert res.orders["asset"].to_list() == ["A0", "A1", "A2"]
    assert res.orders["status"].to_list() == ["filled", "filled", "partial"]
    assert res.orders["reason"][2] == "insufficient_cash"


def test_orders_exactly_at_the_limits_fill_in_full():
    # zero costs, weights summing exactly to the gross and net limits: nothing is cut
    close, open_ = _flat(3, 4, price=7.3)
    w = np.full((3, 4), np.nan)
    w[0] = [0.6, 0.7, 0.2, -0.5]  # gross 2.0, net 1.0
    case = dict(close=close, open=open_, volume=None, costs=Costs.zero(), capital=1_000.0,
                max_gross=2.0, max_net=1.0, fractional=True, fill="next_open", weights=w)
    res, ref = run_both(case)
    compare(res, ref)
    assert set(res.orders["status"].to_list()) == {"filled"}
    assert res.records.gross[1] == pytest.approx(2_000.0, rel=1e-12)


def test_a_limit_that_binds_reports_leverage_and_stops_at_the_limit():
    # A0 held at 0.8 (no new row); A1 asks for 0.5 at gross 1.0 with zero costs:
    # leverage and cash allow the same 0.2 -- the leverage limit is reported
    close, open_ = _flat(4, 2)
    w = np.full((4, 2), np.nan)
    w[0, 0] = 0.8
    w[1, 1] = 0.2 + 0.3
    case = dict(close=close, open=open_, volume=None, costs=Costs.zero(), capital=1_000.0,
                max_gross=1.0, max_net=1.0, fractional=True, fill="next_open", weights=w)
    res, ref = run_backtest_and_compare(case)
    o = res.orders.filter(res.orders["asset"] == "A1")
    assert (o["status"][0], o["reason"][0]) == ("partial", "leverage_limit")
    assert o["filled_qty"][0] == pytest.approx(20.0, rel=1e-12)
    assert res.records.gross[2] <= 1_000.0 * (1 + 1e-12)


def test_flip_splits_commission_and_borrow_goes_to_the_short():
    close, open_ = _flat(5, 1)
    w = np.full((5, 1), np.nan)
    w[0, 0], w[2, 0] = 0.5, -0.5  # long 50, then a flip of 100 shares to short 50
    costs = Costs(commission_bps=10.0, slippage_bps=0.0, half_spread_bps=0.0,
                  borrow_fee_bps=2520.0)  # 0.1 % a bar on 252 bars a year
    case = dict(close=close, open=open_, volume=None, costs=costs, capital=1_000.0,
                max_gross=1.0, max_net=1.0, fractional=True, fill="next_open", weights=w)
    res, ref = run_backtest_and_compare(case)
    closed = res.trades.filter(~res.trades["is_open"])
    opened = res.trades.filter(res.trades["is_open"])
    flip_fee, flip_qty = res.fills["commission"][1], -res.fills["qty"][1]
    closed_share = res.fills["qty"][0] / flip_qty  # the long's 50 shares of the flip
    assert 0.45 < closed_share < 0.55
    assert closed["fees"][0] == pytest.approx(res.fills["commission"][0]
                                              + flip_fee * closed_share, rel=1e-12)
    borrow = res.equity["borrow"].sum()
    assert borrow > 0
    assert opened["fees"][0] == pytest.approx(flip_fee * (1 - closed_share) + borrow,
                                              rel=1e-12)


def test_cash_interest_is_paid_on_positive_cash_after_borrow():
    close, open_ = _flat(4, 2)
    w = np.full((4, 2), np.nan)
    w[0] = [0.0, -0.5]
    costs = Costs(commission_bps=0.0, slippage_bps=0.0, half_spread_bps=0.0,
                  borrow_fee_bps=252.0, cash_rate=0.252)  # 0.01 % and 0.1 % a bar
    case = dict(close=close, open=open_, volume=None, costs=costs, capital=1_000.0,
                max_gross=1.0, max_net=1.0, fractional=True, fill="next_open", weights=w)
    res, _ = run_backtest_and_compare(case)
    cash = res.records.cash
    assert cash[0] == pytest.approx(1_000.0 * 1.001)
    # bar 1: short half the equity (1,001) -> proceeds 500.5, borrow 0.01 % of that, then
    # interest on what is left
    short_value = 0.5 * cash[0]
    assert cash[1] == pytest.approx((cash[0] + short_value - short_value * 1e-4) * 1.001,
                                    rel=1e-12)


def run_backtest_and_compare(case):
    res, ref = run_both(case)
    compare(res, ref)
    return res, ref


def test_accounting_identity_every_bar():
    rng = np.random.default_rng(3)
    n_bars, n = 60, 5
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, (n_bars, n)), axis=0)
    holes = rng.random((n_bars, n)) < 0.1
    close[holes] = np.nan
    w = rng.uniform(-0.3, 0.3, (n_bars, n))
    w[rng.random((n_bars, n)) < 0.5] = np.nan
    res = run_backtest(make_panel(close, close), WeightPlan(w), max_gross_leverage=2.0)
    pos = res.records.positions
    last = close.copy()
    for t in range(1, n_bars):
        last[t] = np.where(np.isfinite(last[t]), last[t], last[t - 1])
    held = np.where(pos != 0, pos * np.nan_to_num(last), 0.0)
    np.testing.assert_allclose(res.records.equity, res.records.cash + held.sum(axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(res.records.gross, np.abs(held).sum(axis=1), rtol=1e-12)
    f = res.fills  # positions are built only from fills
    for j, asset in enumerate(res.assets):
        assert np.isclose(f.filter(f["asset"] == asset)["qty"].sum(), pos[-1, j], atol=1e-9)


def test_a_short_cut_by_the_gross_limit_by_its_costs_alone():
    # two shorts of half the equity at gross 1.0: the first one's commission (1 bps) leaves
    # the second a hair too little room -- it is cut, by the leverage limit (no cash check
    # on sales), to exactly the limit
    close, open_ = _flat(3, 2, price=10.0)
    w = np.full((3, 2), np.nan)
    w[0] = [-0.5, -0.5]
    costs = Costs(commission_bps=1.0, slippage_bps=0.0, half_spread_bps=0.0, borrow_fee_bps=0.0)
    case = dict(close=close, open=open_, volume=None, costs=costs, capital=10_000.0,
                max_gross=1.0, max_net=1.0, fractional=True, fill="next_open", weights=w)
    res, _ = run_backtest_and_compare(case)
    assert res.orders["reason"].to_list() == ["", "leverage_limit"]
    # the limit is on the equity after the bar's earlier fills (not this fill's own fee)
    assert res.records.gross[1] == pytest.approx(
        res.records.equity[1] + res.fills["commission"][1], rel=1e-12)


def test_rows_exactly_at_the_limits_are_never_cut_by_rounding():
    # zero costs, every bar a new long-only row fully invested: float rounding must never
    # make the last purchase of a row look like a breach of the gross limit
    rng = np.random.default_rng(11)
    n_bars, n = 40, 5
    close = np.round(rng.uniform(3, 90, (n_bars, n)), 2)
    w = rng.uniform(0, 1, (n_bars, n))
    w /= w.sum(axis=1, keepdims=True)
    case = dict(close=close, open=close.copy(), volume=None, costs=Costs.zero(),
                capital=1_000.0, max_gross=1.0, max_net=1.0, fractional=True,
                fill="next_open", weights=w)
    res, _ = run_backtest_and_compare(case)
    assert set(res.orders["reason"].to_list()) == {""}


def test_orders_equal_to_4_decimals_run_in_column_order():
    # equal weights at different prices: the order values agree to far below 1/10,000 of
    # currency but differ in the last bits; the README rounds them, so column order decides
    prices = [3.7, 17.9, 7.1, 13.7, 9.3, 11.3]
    close = np.tile(prices, (3, 1))
    w = np.full((3, 6), np.nan)
    w[0] = 1 / 6
    case = dict(close=close, open=close.copy(), volume=None, costs=Costs(), capital=1_000.0,
                max_gross=1.0, max_net=1.0, fractional=True, fill="next_open", weights=w)
    res, ref = run_backtest_and_compare(case)
    assert ref.sequences[1] == list(range(6))
