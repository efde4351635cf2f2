"""run_backtest from a user's side: bad input, a hand-computed case, real bundled data."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

import engine
from engine import Costs, DataError, run_backtest
from engine.errors import ConfigError


def _bars(closes: dict[str, list[float]], opens: dict[str, list[float]] | None = None):
    rows = []
    for asset, cs in closes.items():
        for i, c in enumerate(cs):
            row = {"ts": datetime(2024, 1, 1 + i), "asset": asset, "close": c}
            if opens:
                row["open"] = opens[asset][i]
            rows.append(row)
    return pl.DataFrame(rows).sort("ts", "asset")


def _weights(rows):
    return pl.DataFrame([{"ts": datetime(2024, 1, 1 + d), "asset": a, "target_weight": w}
                         for d, a, w in rows])


def test_hand_computed_two_asset_rebalance():
    # A: 100 -> open 102 -> 104 ; B: 50 -> open 49 -> 51. Decide at close of day 0:
    # 60% A, 40% B; fills at day-1 opens with 10 bps commission, 5 bps slippage.
    bars = _bars({"A": [100.0, 103.0, 104.0], "B": [50.0, 50.0, 51.0]},
                 {"A": [100.0, 102.0, 104.0], "B": [50.0, 49.0, 51.0]})
    costs = Costs(commission_bps=10, slippage_bps=5, half_spread_bps=0, borrow_fee_bps=0)
    # the per-order clip rule (the whole-book scale rule's version of this case is in
    # tests/engine/kernels/test_limit_policy.py)
    res = run_backtest(bars, _weights([(0, "A", 0.6), (0, "B", 0.4)]), costs=costs,
                       capital=10_000.0, limit_policy="clip")
    fills = res.fills.sort("asset")
    # targets sized on equity at the fill prices (all cash: 10,000); B is the smaller buy
    qty_b = 0.4 * 10_000 / 49.0
    price_b = 49.0 * 1.0005
    cash_after_b = 10_000 - qty_b * price_b * 1.001
    qty_a_wanted = 0.6 * 10_000 / 102.0
    price_a = 102.0 * 1.0005
    qty_a = min(qty_a_wanted, cash_after_b / (price_a * 1.001))  # cash-limited last buy
    assert fills["qty"].to_list() == pytest.approx([qty_a, qty_b], rel=1e-12)
    assert fills["price"].to_list() == pytest.approx([price_a, price_b], rel=1e-12)
    cash = cash_after_b - qty_a * price_a * 1.001
    assert res.equity["cash"][1] == pytest.approx(cash, rel=1e-12)
    assert res.equity["equity"].to_list() == pytest.approx(
        [10_000.0, cash + qty_a * 103 + qty_b * 50, cash + qty_a * 104 + qty_b * 51], rel=1e-12)
    orders = res.orders.sort("asset")
    assert orders["status"].to_list() == ["partial", "filled"]
    assert orders["reason"].to_list() == ["insufficient_cash", ""]
    assert res.positions.filter(pl.col("ts") == res.equity["ts"][2])["qty"].to_list() == \
        pytest.approx([qty_a, qty_b])


def test_costs_are_on_by_default():
    bars = _bars({"A": [100.0, 100.0, 100.0]}, {"A": [100.0, 100.0, 100.0]})
    res = run_backtest(bars, _weights([(0, "A", 1.0)]))
    assert res.costs == Costs()
    assert res.final_equity < 1_000_000.0
    assert res.fills["commission"][0] > 0


def test_close_only_data_fills_at_the_next_close():
    bars = _bars({"A": [100.0, 110.0, 120.0]})
    res = run_backtest(bars, _weights([(0, "A", 1.0)]), costs=Costs.zero())
    assert res.fill == "next_close"
    assert res.fills["ref_price"][0] == 110.0


def test_missing_bar_is_not_tradable_and_not_forward_filled():
    bars = pl.DataFrame({
        "ts": [datetime(2024, 1, d) for d in (1, 1, 2, 3, 3)],
        "asset": ["A", "B", "A", "A", "B"],
        "close": [10.0, 20.0, 11.0, 12.0, 22.0],
    })
    res = run_backtest(bars, _weights([(0, "A", 0.5), (0, "B", 0.5)]), costs=Costs.zero())
    o = res.orders.sort("asset")
    assert o["status"].to_list() == ["filled", "rejected"]
    assert o["reason"].to_list() == ["", "not_tradable"]
    # B is valued at its last close on day 2 (no trade happened there)
    assert res.equity["gross"][1] == pytest.approx(0.5 * 1_000_000 / 11.0 * 11.0)


@pytest.mark.parametrize("bad, match", [
    ({"close": [100.0, float("nan"), 101.0]}, "A"),
    ({"close": [100.0, float("inf"), 101.0]}, "A"),
    ({"close": [100.0, 0.0, 101.0]}, "A"),
    ({"close": [100.0, -1.0, 101.0]}, "A"),
])
def test_bad_prices_are_named(bad, match):
    bars = pl.DataFrame({"ts": [datetime(2024, 1, d) for d in (1, 2, 3)], "asset": ["A"] * 3, **bad})
    with pytest.raises(DataError, match=match):
        run_backtest(bars, _weights([(0, "A", 1.0)]))


def test_unsorted_and_duplicate_bars():
    bars = _bars({"A": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="sort"):
        run_backtest(bars.reverse(), _weights([(0, "A", 1.0)]))
    with pytest.raises(DataError, match="duplicate"):
        run_backtest(pl.concat([bars, bars.head(1)]).sort("ts", "asset"), _weights([(0, "A", 1.0)]))


def test_no_close_column_and_empty_universe():
    with pytest.raises(DataError, match="close"):
        run_backtest(pl.DataFrame({"ts": [datetime(2024, 1, 1)], "asset": ["A"], "price": [1.0]}),
                     None)
    with pytest.raises(DataError):
        run_backtest(_bars({"A": [1.0]}).clear(), _weights([(0, "A", 1.0)]))


def test_weights_nan_or_beyond_leverage():
    bars = _bars({"A": [10.0, 11.0, 12.0], "B": [5.0, 5.0, 5.0]})
    with pytest.raises(DataError, match="(?i)nan|null|finite"):
        run_backtest(bars, _weights([(0, "A", float("nan"))]))
    with pytest.raises(DataError, match="gross exposure 1.5"):
        run_backtest(bars, _weights([(0, "A", 0.75), (0, "B", 0.75)]))
    res = run_backtest(bars, _weights([(0, "A", 0.75), (0, "B", -0.75)]), max_gross_leverage=1.5)
    assert res.fills.height == 2


def test_signals_after_last_bar_or_unknown_asset():
    bars = _bars({"A": [10.0, 11.0, 12.0]})
    with pytest.raises(DataError, match="after the last bar"):
        run_backtest(bars, _weights([(5, "A", 1.0)]))
    with pytest.raises(DataError, match="ZZZ"):
        run_backtest(bars, pl.DataFrame({"ts": [datetime(2024, 1, 1)], "asset": ["ZZZ"],
                                         "target_weight": [1.0]}))


def test_same_close_needs_the_loud_option_and_bad_settings():
    bars = _bars({"A": [10.0, 11.0, 12.0]})
    w = _weights([(0, "A", 1.0)])
    with pytest.raises(ConfigError, match="unsafe_same_close"):
        run_backtest(bars, w, fill="same_close")
    res = run_backtest(bars, w, fill="same_close", unsafe_same_close=True, costs=Costs.zero())
    assert res.fills["ref_price"][0] == 10.0
    with pytest.raises(ConfigError, match="fill"):
        run_backtest(bars, w, fill="tomorrow")
    with pytest.raises(ConfigError, match="capital"):
        run_backtest(bars, w, capital=-5)
    with pytest.raises(ConfigError, match="participation_cap"):
        Costs(participation_cap=2.0)


def test_monthly_rebalance_on_bundled_stocks():
    bars = engine.load_bars("sp500_stocks", start="2015-01-01", end="2019-12-31")
    month_end = (bars.select("ts").unique().sort("ts")
                 .group_by_dynamic("ts", every="1mo").agg(pl.col("ts").last().alias("last"))["last"])
    assets = bars["asset"].unique().sort()
    w = (pl.DataFrame({"ts": month_end}).join(pl.DataFrame({"asset": assets}), how="cross")
         .with_columns(target_weight=pl.lit(1.0 / assets.len() * 0.99)))
    res = run_backtest(bars, w)
    eq = res.equity
    assert eq.height == bars["ts"].n_unique()
    np.testing.assert_allclose(eq["equity"], eq["cash"] + eq["net"], rtol=1e-12)
    assert (res.orders["status"] != "rejected").all()
    assert 0.98 * eq["equity"][-1] < eq["gross"][-1] < 1.0 * eq["equity"][-1]
    # 5 years of a diversified large-cap book: a sane, positive result
    assert 1.2 < res.final_equity / 1_000_000 < 3.0
