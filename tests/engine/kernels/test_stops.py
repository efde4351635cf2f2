"""Stops in the step kernel: hand-derived golden cases per order type, the intrabar rule,
vectorbt's ``from_signals(sl_stop=, tp_stop=, sl_trail=)`` on OHLC data, and the one
rule where we differ from it on purpose."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Costs, SignalPlan, Stops, WeightPlan, run_backtest
from engine.errors import ConfigError
from engine.panel import Panel

ZERO = Costs.zero()


def _panel(o, h, lo, c, *, has_open=True):
    c = np.asarray(c, dtype=float).reshape(len(c), -1)
    o, h, lo = (np.asarray(x, dtype=float).reshape(c.shape) for x in (o, h, lo))
    ts = np.datetime64("2024-01-01", "ns") + np.arange(c.shape[0]) * np.timedelta64(1, "D")
    return Panel(ts=ts, assets=tuple(f"A{j}" for j in range(c.shape[1])), open=o, high=h,
                 low=lo, close=c, volume=np.full(c.shape, np.nan), periods_per_year=252.0,
                 has_open=has_open)


def _long_once(n_bars, n=1, short=False):
    """An entry decided at the close of bar 0 (fills at the open of bar 1)."""
    entry = np.zeros((n_bars, n), bool)
    entry[0] = True
    no = np.zeros_like(entry)
    if short:
        return SignalPlan(no, no, entry, no, size=1.0, size_type="qty")
    return SignalPlan(entry, no, no, no, size=1.0, size_type="qty")


# bars:         0      1 (entry at 100)   2                    3
OPENS = [100.0, 100.0, 99.0, 98.0]


def _exit(res):
    f = res.fills
    assert f.height == 2, f
    return round(float(f["price"][1]), 9), f["trigger"][1], bool(f["ambiguous"][1]), int(f["ts"].dt.day()[1])


def test_stop_loss_fills_at_its_level_inside_the_bar():
    p = _panel(OPENS, [100, 101, 100, 99], [100, 99, 94, 97], [100, 100, 96, 98])
    res = run_backtest(p, _long_once(4), costs=ZERO, stops={"sl_stop": 0.05})
    assert _exit(res) == (95.0, "stop_loss", False, 3)  # bar 2 (Jan 3), at 100 * 0.95
    assert res.counts[3] == 0


def test_stop_loss_gap_fills_at_the_open():
    p = _panel([100, 100, 90, 91], [100, 101, 92, 92], [100, 99, 89, 90], [100, 100, 91, 91])
    res = run_backtest(p, _long_once(4), costs=ZERO, stops={"sl_stop": 0.05})
    assert _exit(res) == (90.0, "stop_loss", False, 3)


def test_take_profit_fills_at_its_level():
    p = _panel(OPENS, [100, 101, 111, 99], [100, 99, 98, 97], [100, 100, 109, 98])
    res = run_backtest(p, _long_once(4), costs=ZERO, stops={"tp_stop": 0.10})
    assert _exit(res) == (110.0, "take_profit", False, 3)


def test_trailing_stop_follows_the_best_price_since_the_entry():
    # bar 2 makes a high of 120 (no hit: low 101 > 95); bar 3's low 113 reaches 120 * 0.95
    p = _panel([100, 100, 102, 118], [100, 101, 120, 119], [100, 99, 101, 113],
               [100, 100, 119, 115])
    res = run_backtest(p, _long_once(4), costs=ZERO, stops={"sl_stop": 0.05, "sl_trail": True})
    assert _exit(res) == (114.0, "trailing_stop", False, 4)


def test_trailing_stop_hit_in_a_bar_that_set_a_new_best_is_ambiguous():
    p = _panel([100, 100, 100, 98], [100, 101, 104, 99], [100, 99, 94, 97], [100, 100, 96, 98])
    res = run_backtest(p, _long_once(4), costs=ZERO, stops={"sl_stop": 0.05, "sl_trail": True})
    assert _exit(res) == (95.0, "trailing_stop", True, 3)  # anchor: the best before the bar
    assert res.counts[3] == 1


@pytest.mark.parametrize(("intrabar", "expected"), [("stop_first", (95.0, "stop_loss")),
                                                    ("target_first", (105.0, "take_profit"))])
def test_stop_and_target_in_one_bar_follow_the_intrabar_rule_and_count(intrabar, expected):
    p = _panel(OPENS, [100, 101, 106, 99], [100, 99, 94, 97], [100, 100, 100, 98])
    res = run_backtest(p, _long_once(4), costs=ZERO,
                       stops={"sl_stop": 0.05, "tp_stop": 0.05, "intrabar": intrabar})
    assert _exit(res) == (*expected, True, 3)
    assert res.counts[3] == 1


def test_short_stop_loss_is_above_the_entry():
    p = _panel(OPENS, [100, 101, 106, 99], [100, 99, 98, 97], [100, 100, 104, 98])
    res = run_backtest(p, _long_once(4, short=True), costs=ZERO, stops={"sl_stop": 0.05})
    price, trigger, ambiguous, day = _exit(res)
    assert (price, trigger, ambiguous, day) == (105.0, "stop_loss", False, 3)
    assert res.fills["qty"].to_list() == [-1.0, 1.0]


def test_close_only_data_checks_levels_on_closes():
    # entry fills at the close of bar 1 (100); bar 2 closes at 94: the stop fills at 94
    c = [100.0, 100.0, 94.0, 93.0]
    p = _panel(c, c, c, c, has_open=False)
    res = run_backtest(p, _long_once(4), costs=ZERO, stops={"sl_stop": 0.05})
    assert res.fill == "next_close"
    assert _exit(res) == (94.0, "stop_loss", False, 3)


def test_stops_pay_the_usual_costs():
    p = _panel(OPENS, [100, 101, 100, 99], [100, 99, 94, 97], [100, 100, 96, 98])
    costs = Costs(commission_bps=10, slippage_bps=5, half_spread_bps=0, borrow_fee_bps=0)
    res = run_backtest(p, _long_once(4), costs=costs, stops={"sl_stop": 0.05})
    f = res.fills
    assert float(f["price"][1]) == pytest.approx(95.0 * (1 - 5e-4), rel=1e-14)
    assert float(f["commission"][1]) == pytest.approx(95.0 * (1 - 5e-4) * 1e-3, rel=1e-12)


def test_a_stop_on_the_bar_of_an_instruction_lapses_the_instruction():
    # weights path: 50% long decided at bar 0; the stop fires on bar 2 where the plan asks
    # for 80%: the stop exit stands, the 80% instruction is recorded as rejected, 'stopped'
    p = _panel(OPENS, [100, 101, 100, 99], [100, 99, 94, 97], [100, 100, 96, 98])
    w = np.full((4, 1), np.nan)
    w[0], w[1] = 0.5, 0.8
    res = run_backtest(p, WeightPlan(w), costs=ZERO, capital=1000.0, stops={"sl_stop": 0.05})
    o = res.orders
    assert o["reason"].to_list() == ["", "", "stopped"]
    assert o["status"].to_list() == ["filled", "filled", "rejected"]
    assert res.records.positions[-1, 0] == 0.0  # flat until the plan says otherwise
    assert res.fills["trigger"].to_list() == ["market", "stop_loss"]


def test_adding_to_a_position_resets_the_stop_to_the_new_entry():
    # 10% long at 100 (bar 1), raised to 20% at 110 (bar 2): the 5% stop now refers to the
    # latest addition's price, 110 -> 104.5, which bar 3 reaches (its low is 104)
    o = [100.0, 100.0, 110.0, 108.0]
    p = _panel(o, [100, 101, 111, 109], [100, 99, 106, 104], [100, 100, 110, 105])
    w = np.full((4, 1), np.nan)
    w[0], w[1] = 0.1, 0.2
    res = run_backtest(p, WeightPlan(w), costs=ZERO, capital=1000.0, stops={"sl_stop": 0.05})
    f = res.fills
    assert f["qty"][0] == pytest.approx(1.0) and f["qty"][1] > 0 and f["qty"][2] < 0
    assert round(float(f["price"][2]), 9) == 104.5
    assert res.records.positions[-1, 0] == 0.0


def test_settings_validate_the_stops():
    with pytest.raises((ConfigError, ValueError), match="sl_trail"):
        Stops(sl_trail=True)
    with pytest.raises((ConfigError, ValueError), match="sl_stop"):
        Stops(sl_stop=-0.1)
    assert not Stops().enabled and Stops(tp_stop=0.1).enabled


def test_no_stops_leaves_results_bit_identical():
    rng = np.random.default_rng(3)
    o, h, lo, c = _ohlc(rng, 120, 3)
    flags = [rng.random((120, 3)) < 0.08 for _ in range(4)]
    plan = SignalPlan(*flags, size=10_000.0, size_type="value")
    a = run_backtest(_panel(o, h, lo, c), plan)
    b = run_backtest(_panel(o, h, lo, c), plan, stops=Stops())
    assert np.array_equal(a.records.equity, b.records.equity)


# --- vectorbt ----------------------------------------------------------------------------
def _ohlc(rng, n_bars, n):
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, (n_bars, n)), axis=0)
    open_ = np.empty_like(close)
    open_[0] = 100.0
    open_[1:] = close[:-1] * (1 + rng.normal(0, 0.01, (n_bars - 1, n)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, (n_bars, n))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, (n_bars, n))))
    return open_, high, low, close


def _shift(a):
    out = np.zeros_like(a)
    out[1:] = a[:-1]
    return out


def _vs_vectorbt(seed, stops, short):
    vbt = pytest.importorskip("vectorbt")
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    n_bars, n = 300, 3
    o, h, lo, c = _ohlc(rng, n_bars, n)
    le = rng.random((n_bars, n)) < 0.08
    lx = rng.random((n_bars, n)) < 0.03
    se = rng.random((n_bars, n)) < (0.06 if short else 0.0)
    sx = rng.random((n_bars, n)) < (0.03 if short else 0.0)
    res = run_backtest(_panel(o, h, lo, c), SignalPlan(le, lx, se, sx, size=15_000.0,
                                                       size_type="value"),
                       costs=Costs(commission_bps=10, slippage_bps=3, half_spread_bps=0,
                                   borrow_fee_bps=0),
                       fill="next_open", capital=100_000.0, max_gross_leverage=10.0,
                       stops=stops)
    frame = pd.DataFrame
    # our entry reference price is the fill's (the open): stop_entry_price="price"; a stop
    # exit pays slippage like any order: stop_exit_price="stopmarket"
    pf = vbt.Portfolio.from_signals(
        frame(c), entries=frame(_shift(le)), exits=frame(_shift(lx)),
        short_entries=frame(_shift(se)), short_exits=frame(_shift(sx)), price=frame(o),
        open=frame(o), high=frame(h), low=frame(lo), size=15_000.0, size_type="value",
        fees=10 / 1e4, slippage=3 / 1e4, init_cash=100_000.0, cash_sharing=True,
        group_by=True, call_seq="auto", freq="1D", stop_entry_price="price",
        stop_exit_price="stopmarket", **{k: v for k, v in stops.items() if k != "intrabar"})
    return res, pf


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("short", [False, True])
@pytest.mark.parametrize("stops", [{"sl_stop": 0.05}, {"tp_stop": 0.05},
                                   {"sl_stop": 0.05, "tp_stop": 0.08},
                                   {"sl_stop": 0.04, "sl_trail": True},
                                   {"sl_stop": 0.04, "tp_stop": 0.10, "sl_trail": True}])
def test_stops_equal_vectorbt_from_signals_on_ohlc(seed, short, stops):
    res, pf = _vs_vectorbt(seed, stops, short)
    value = np.asarray(pf.value(), dtype=np.float64).reshape(-1)
    np.testing.assert_allclose(res.records.equity, value, rtol=1e-12)
    assert res.fills.height == len(pf.orders.records)
    assert (res.fills["trigger"] != "market").sum() > 10


def test_deliberate_difference_a_gap_through_the_target_fills_at_the_open():
    """The open gaps above the target, then the bar falls through the stop. The open comes
    first, so we take the target at the open; vectorbt checks the stop-loss before the
    target on every bar and fills the stop at its level."""
    vbt = pytest.importorskip("vectorbt")
    pd = pytest.importorskip("pandas")
    o = [100.0, 100.0, 112.0, 90.0]
    h, lo, c = [100, 101, 113, 91], [100, 99, 94, 89], [100, 100, 95, 90]
    res = run_backtest(_panel(o, h, lo, c), _long_once(4), costs=ZERO,
                       stops={"sl_stop": 0.05, "tp_stop": 0.10})
    assert _exit(res) == (112.0, "take_profit", False, 3)
    frame = pd.DataFrame
    entries = np.array([[False], [True], [False], [False]])
    pf = vbt.Portfolio.from_signals(
        frame(c), entries=frame(entries), exits=frame(np.zeros_like(entries)), price=frame(o),
        open=frame(o), high=frame(h), low=frame(lo), size=1.0, init_cash=1000.0,
        stop_entry_price="price", stop_exit_price="stopmarket", sl_stop=0.05, tp_stop=0.10)
    assert pf.orders.records["price"].tolist() == pytest.approx([100.0, 95.0])
