"""run_backtest on hourly bars: fills at the next hourly bar, overnight included, and the
annualisation taken from the bar frequency (generated sessions, not shipped data)."""

from __future__ import annotations

import polars as pl
import pytest

from engine import Costs, run_backtest
from engine.synthetic import intraday_bars

NO_COSTS = Costs(commission_bps=0, slippage_bps=0, half_spread_bps=0, borrow_fee_bps=0)


@pytest.fixture(scope="module")
def hourly() -> pl.DataFrame:
    # 09:30-16:00 sessions, 7 bars a day, Wed 2024-01-03 .. Tue 2024-01-09 (a weekend inside)
    return intraday_bars("2024-01-03", days=5, assets=("A", "B"), seed=18, gap_vol=1.0)


def _next_bar(bars: pl.DataFrame, asset: str, ts) -> dict:
    rows = bars.filter((pl.col("asset") == asset) & (pl.col("ts") > ts)).sort("ts")
    return rows.row(0, named=True)


def test_orders_fill_at_the_next_hourly_open_overnight_and_over_the_weekend(hourly):
    stamps = hourly["ts"].unique().sort()
    last_friday = stamps.filter(stamps.dt.weekday() == 5).max()
    decisions = [(stamps[2], "A", 0.5), (stamps[6], "B", 0.3), (last_friday, "A", 0.2)]
    weights = pl.DataFrame(decisions, schema=["ts", "asset", "target_weight"], orient="row")
    res = run_backtest(hourly, weights, costs=NO_COSTS, capital=100_000.0)
    fills = res.fills.sort("ts")
    assert fills.height == 3
    for fill, (ts, asset, _) in zip(fills.iter_rows(named=True), decisions, strict=True):
        nxt = _next_bar(hourly, asset, ts)
        assert fill["asset"] == asset
        assert fill["ts"] == nxt["ts"]
        assert fill["price"] == pytest.approx(nxt["open"], rel=1e-12)
    # the 15:30 decision fills at 09:30 the next session, the Friday one on Monday
    assert [t.strftime("%a %H:%M") for t in fills["ts"]] == [
        "Wed 12:30", "Thu 09:30", "Mon 09:30"]
    assert res.periods_per_year == 7 * 252


def test_next_close_fills_and_equity_on_every_hourly_bar(hourly):
    stamps = hourly["ts"].unique().sort()
    weights = pl.DataFrame({"ts": [stamps[0]], "asset": ["B"], "target_weight": [1.0]})
    res = run_backtest(hourly, weights, costs=NO_COSTS, capital=10_000.0, fill="next_close",
                       fractional=True)
    fill = res.fills.row(0, named=True)
    nxt = _next_bar(hourly, "B", stamps[0])
    assert (fill["ts"], fill["price"]) == (nxt["ts"], pytest.approx(nxt["close"], rel=1e-12))
    assert res.equity.height == 5 * 7
    last_close = hourly.filter(pl.col("asset") == "B")["close"][-1]
    assert res.equity["equity"][-1] == pytest.approx(fill["qty"] * last_close, rel=1e-9)
