"""Point-in-time universes: membership spells, delisting returns, no stale valuation, and
the survivorship gap measured on a synthetic universe with listings and delistings."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from engine import Costs, DataError, WeightPlan, run_backtest
from engine.membership import apply_membership, load_membership
from engine.panel import Panel

START = np.datetime64("2020-01-01", "ns")


def _panel(close):
    close = np.asarray(close, dtype=float)
    ts = START + np.arange(close.shape[0]) * np.timedelta64(1, "D")
    return Panel(ts=ts, assets=tuple(f"A{j}" for j in range(close.shape[1])), open=close,
                 high=close, low=close, close=close, volume=np.full(close.shape, np.nan),
                 periods_per_year=252.0, has_open=True)


def _day(i):
    return datetime(2020, 1, 1 + i)


def _hold_all(n_bars, n, w):
    weights = np.full((n_bars, n), np.nan)
    weights[0] = w
    return WeightPlan(weights)


def test_a_delisted_position_settles_at_the_last_close_plus_the_delisting_return():
    close = np.array([[10.0, 20.0], [11.0, 20.0], [12.0, 21.0], [13.0, 22.0], [14.0, 23.0]])
    membership = pl.DataFrame({"asset": ["A0", "A1"], "start": [_day(0), _day(0)],
                               "end": [_day(2), None], "delisting_return": [-0.5, None]})
    res = run_backtest(_panel(close), _hold_all(5, 2, [0.5, 0.5]), costs=Costs.zero(),
                       capital=1000.0, membership=membership)
    f = res.fills
    settle = f.filter(pl.col("trigger") == "delisting")
    assert settle["asset"].to_list() == ["A0"]
    assert float(settle["price"][0]) == pytest.approx(12.0 * 0.5)
    qty = 500.0 / 11.0  # bought at the open of bar 1
    assert res.records.positions[2:, 0].tolist() == [0.0, 0.0, 0.0]
    # equity after the settlement never again depends on A0's (masked) prices
    cash = 1000.0 - qty * 11.0 - 500.0 + qty * 6.0
    a1 = 500.0 / 20.0
    assert res.records.equity[4] == pytest.approx(cash + a1 * 23.0)


def test_outside_its_spell_an_asset_is_not_tradable():
    close = np.full((5, 2), 50.0)
    membership = pl.DataFrame({"asset": ["A0", "A1"], "start": [_day(0), _day(3)],
                               "end": [None, None]})
    w = np.full((5, 2), np.nan)
    w[0] = [0.4, 0.4]  # A1 is not listed yet at bar 1
    res = run_backtest(_panel(close), WeightPlan(w), costs=Costs.zero(), membership=membership)
    o = res.orders
    assert o.filter(pl.col("asset") == "A1")["reason"].to_list() == ["not_tradable"]


def test_data_that_ends_early_is_settled_at_the_last_close_with_a_warning():
    close = np.array([[10.0, 20.0], [10.0, 20.0], [12.0, 20.0], [np.nan, 20.0],
                      [np.nan, 20.0]])
    with pytest.warns(UserWarning, match="A0"):
        res = run_backtest(_panel(close), _hold_all(5, 2, [0.5, 0.5]), costs=Costs.zero())
    settle = res.fills.filter(pl.col("trigger") == "delisting")
    assert float(settle["price"][0]) == 12.0
    assert res.records.positions[-1, 0] == 0.0
    old = run_backtest(_panel(close), _hold_all(5, 2, [0.5, 0.5]), costs=Costs.zero(),
                       close_at_data_end=False)  # the old rule: valued at 12 forever
    assert old.records.positions[-1, 0] > 0.0


def test_membership_files_are_checked(tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("asset,start,end,delisting_return\nA0,2020-01-01,2019-01-01,\n")
    with pytest.raises(DataError, match="before start"):
        load_membership(path)
    path.write_text("asset,start,end\nA0,2020-01-01,\n")
    with pytest.raises(DataError, match=r"no row for \['A1'\]"):
        apply_membership(_panel(np.ones((3, 2))), load_membership(path))
    path.write_text("asset,start,end,delisting_return\nA0,2020-01-01,2020-02-01,-2\n")
    with pytest.raises(DataError, match=">= -1"):
        load_membership(path)


# --- the survivorship gap on a synthetic universe -------------------------------------
def synthetic_universe(seed=0, n_bars=756, n_survivors=24, n_delisted=12, n_listed=6):
    """Daily closes and a membership table: survivors drift up; assets that will be
    delisted decline over their last year and leave with a -40% delisting return; late
    listings start part-way. Returns (panel, membership)."""
    rng = np.random.default_rng(seed)
    n = n_survivors + n_delisted + n_listed
    drift = np.full(n, 0.08 / 252)
    ret = rng.normal(0.0, 0.25 / np.sqrt(252), (n_bars, n))
    ends = rng.integers(250, n_bars - 30, n_delisted)
    starts = rng.integers(100, 400, n_listed)
    ret += drift
    for k, end in enumerate(ends):
        j = n_survivors + k
        ret[max(end - 252, 0): end + 1, j] -= 0.60 / 252  # the slide before a delisting
    close = 50.0 * np.exp(np.cumsum(ret, axis=0))
    member_start = [_day(0)] * n
    member_end: list = [None] * n
    delisting: list = [None] * n
    for k, end in enumerate(ends):
        j = n_survivors + k
        close[end + 1:, j] = np.nan  # nothing trades after the delisting
        member_end[j] = START.astype("datetime64[us]").item() + (
            np.timedelta64(int(end), "D")).astype("timedelta64[us]").item()
        delisting[j] = -0.4
    for k, start in enumerate(starts):
        j = n_survivors + n_delisted + k
        close[:start, j] = np.nan
        member_start[j] = START.astype("datetime64[us]").item() + (
            np.timedelta64(int(start), "D")).astype("timedelta64[us]").item()
    panel = _panel(close)
    membership = pl.DataFrame({"asset": list(panel.assets), "start": member_start,
                               "end": member_end, "delisting_return": delisting},
                              schema={"asset": pl.Utf8, "start": pl.Datetime("us"),
                                      "end": pl.Datetime("us"),
                                      "delisting_return": pl.Float64})
    return panel, membership


def equal_weight_members(panel, every=21):
    """Equal weight over the assets with a bar at the decision close (causal)."""
    w = np.full((panel.n_bars, panel.n_assets), np.nan)
    for t in range(0, panel.n_bars - 1, every):
        live = np.isfinite(panel.close[t])
        w[t] = np.where(live, 0.99 / live.sum(), 0.0)
        w[t, ~live] = np.nan
    return WeightPlan(w)


def test_survivorship_gap_on_a_synthetic_universe():
    panel, membership = synthetic_universe()
    pit = apply_membership(panel, membership)
    point_in_time = run_backtest(pit, equal_weight_members(pit), costs=Costs())
    alive = np.isfinite(panel.close[-1])
    survivors = Panel(ts=panel.ts, assets=tuple(np.array(panel.assets)[alive]),
                      open=panel.open[:, alive], high=panel.high[:, alive],
                      low=panel.low[:, alive], close=panel.close[:, alive],
                      volume=panel.volume[:, alive], periods_per_year=252.0)
    # survivors only: today's universe, backtested over the whole period with hindsight
    survivor_run = run_backtest(survivors, equal_weight_members(survivors), costs=Costs())
    years = panel.n_bars / 252
    cagr_pit = (point_in_time.final_equity / 1e6) ** (1 / years) - 1
    cagr_survivors = (survivor_run.final_equity / 1e6) ** (1 / years) - 1
    gap = cagr_survivors - cagr_pit
    print(f"survivorship gap: {gap:.2%} a year (survivors {cagr_survivors:.2%}, "
          f"point-in-time {cagr_pit:.2%})")
    assert gap > 0.03  # the delisted names' slide and delisting losses are what it hides
    settled = point_in_time.fills.filter(pl.col("trigger") == "delisting")
    assert settled.height == 12  # every delisted name was held and settled
    # no position outlives its asset's data
    pos = point_in_time.records.positions
    finite = np.isfinite(pit.close)
    last = pit.n_bars - 1 - np.argmax(finite[::-1], axis=0)
    for j in range(pit.n_assets):
        assert not (pos[last[j] + 1:, j] != 0).any(), pit.assets[j]
