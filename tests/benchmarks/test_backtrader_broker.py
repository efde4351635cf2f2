"""backtrader's own broker against ours, on seeded windows of the bundled data.

backtrader runs here with its own rules only: its percentage commission scheme
(``setcommission``), market orders filled at the next bar's open (or at the order bar's
close with cheat-on-close), its cash check and ``Margin`` rejection, and its own sizing
(``buy``/``sell`` sizes, ``order_target_size``, ``order_target_percent``, ``close``). Ours
is set to what backtrader can express too: no spread, slippage or borrow (unless a test
turns one on in both), commission in bps, whole shares, ``limit_policy="clip"``, no gross limit (backtrader has none) and a net
limit of 1 (cash >= 0, backtrader's rule). Where both express the same thing, equity per
bar, positions, fills (time, size, price, commission) and closed trades are equal within
the tolerances declared below.

Divergences, each tested below as a divergence with its sign and size:

1. Cash shortfall: backtrader rejects a buy it cannot pay for in full (``Margin``);
   ours fills the whole shares the cash covers (``partial``, ``insufficient_cash``) under
   ``clip`` and scales the order (``partial``, ``scaled``) under ``scale``.
2. Cash checked twice: backtrader checks a market order at submission at the decision
   bar's close, then again at the fill price; an order that passed at the close is
   rejected in full when the next open gaps up. Ours checks once, at the fill price.
3. Sequencing: backtrader checks and fills a bar's orders in submission order, so a buy
   submitted before the sale that pays for it is rejected; ours fills reductions first.
4. Whole-share rounding: ``order_target_percent`` rounds the order (target - held)
   toward zero, ours rounds the target quantity toward zero. Opening or adding they agree;
   cutting a long to a fractional target backtrader keeps one share more, cutting a short
   it keeps one short share more.
5. Sizing price with next-open fills: ``order_target_percent`` sizes at the decision
   bar's close and value; ours sizes at the fill bar's open and the equity at that open.
   With cheat-on-close / ``next_close`` both size at the fill price.
6. A fill bar the asset lacks (missing bar): backtrader's market order waits and fills at
   the asset's next bar's open; with cheat-on-close it fills at the asset's last (stale)
   close. Ours rejects it (``not_tradable``, a day order) in both fill modes.
7. Fixed commission: backtrader's ``COMM_FIXED`` is per share; ours
   (``commission_fixed``) is per order.
8. Short borrow: backtrader's ``interest`` is charged on the short's entry price times
   calendar days / 365, at every bar after the opening fill's bar through the exit bar;
   ours charges ``1 / periods_per_year`` of the rate on the short's value at each close
   it is held (the opening bar included, the exit bar not).
9. Slippage at the bar's edge: backtrader's ``set_slippage_perc`` (default
   ``slip_out=False``) caps a slipped fill at the bar's high (buys) or low (sells); ours
   always fills at ``open * (1 +- slippage_bps / 1e4)``, even beyond the range.
   With ``slip_out=True`` the two are equal.
10. Leverage limits: backtrader has none beyond cash >= 0, so it opens a short of any
   size; ours cuts it at the net limit (``partial``, ``leverage_limit``).
11. Bookkeeping only: with cheat-on-close backtrader books a bar's fills in the next bar's
    broker cycle, so the value it reports in ``next()`` of bar t is ours plus the
    commission of bar t's fills, and it dates trades by that next bar (the comparison
    subtracts backtrader's own commissions and shifts its trade dates back a bar).

Cash interest (``cash_rate``), the bps half-spread, volume caps and market impact have
no backtrader counterpart and are off here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import engine
from engine import BacktestResult, Costs, Panel, SignalPlan, WeightPlan, run_backtest

# tolerances, declared once
VALUE_REL = 1e-9  # equity, cash, commissions, pnl (sums of products of data prices)
PRICE_REL = 1e-12  # fill prices are data values: equal up to float noise
CAPITAL = 100_000.0
FEE_BPS = 10.0
GROSS = 100.0  # backtrader has no gross limit: ours never binds
SEEDS = (0, 1, 2)


# --- data: seeded windows of the bundled datasets --------------------------------------

@cache
def _aligned(kind: str) -> Panel:
    if kind == "indices":  # SP500 and NASDAQ daily OHLCV (arch)
        import polars as pl

        bars = pl.concat([engine.load_bars("sp500_ohlcv"), engine.load_bars("nasdaq_ohlcv")])
        bars = bars.select("ts", "asset", "open", "high", "low", "close", "volume").sort(
            "ts", "asset")
    else:  # 20 S&P 500 stocks, daily closes (skfolio)
        bars = engine.load_bars("sp500_stocks")
    return engine.align_bars(bars, periods_per_year=252.0)


def _window(kind: str, seed: int, n_bars: int, n_assets: int | None = None,
            missing: tuple[tuple[int, int], ...] = ()) -> Panel:
    """A seeded window (and seeded choice of assets); ``missing`` (bar, column) cells
    are removed (NaN in every matrix, no row in backtrader's feed)."""
    full = _aligned(kind)
    rng = np.random.default_rng(seed)
    start = int(rng.integers(0, full.n_bars - n_bars))
    cols = (np.arange(full.n_assets) if n_assets is None
            else np.sort(rng.choice(full.n_assets, n_assets, replace=False)))
    rows = slice(start, start + n_bars)
    mats = {k: np.array(getattr(full, k)[rows][:, cols]) for k in
            ("open", "high", "low", "close", "volume")}
    assert np.isfinite(mats["close"]).all()
    for t, j in missing:
        for k in ("open", "high", "low", "close"):
            mats[k][t, j] = np.nan
    return dataclasses.replace(full, ts=full.ts[rows], assets=tuple(full.assets[c] for c in cols),
                               **mats)


# --- backtrader: its own broker, driven by a script of its own order calls ---------------

@dataclasses.dataclass(frozen=True)
class BtRun:
    values: np.ndarray  # broker.getvalue() in next(), per bar
    positions: np.ndarray  # position sizes in next(), per bar and asset
    fills: list[tuple[Any, ...]]  # (ts, asset, size, price, commission), by (ts, asset)
    rejected: list[tuple[Any, ...]]  # (ts of the decision, asset, requested size)
    trades: list[dict[str, Any]]  # closed trades
    accepted: int  # orders that passed the submission check
    cash: float


class Scripted(bt.Strategy):
    """Per bar index, a list of ``(method, asset, argument)``: backtrader's ``buy``/``sell``
    (a size), ``order_target_size``/``order_target_percent`` (a target) or ``close``."""

    params = (("script", None),)
    _KEYWORD = {"buy": "size", "sell": "size", "order_target_size": "target",
                "order_target_percent": "target"}

    def __init__(self) -> None:
        self.bar = 0
        self.values: list[float] = []
        self.held: list[list[float]] = []
        self.fills: list[tuple[Any, ...]] = []
        self.rejected: list[tuple[Any, ...]] = []
        self.trades: list[dict[str, Any]] = []
        self.accepted = 0

    def notify_order(self, order: Any) -> None:
        self.accepted += order.status == order.Accepted
        if order.status == order.Completed:
            self.fills.append((bt.num2date(order.executed.dt), order.data._name,
                               float(order.executed.size), order.executed.price,
                               order.executed.comm))
        elif order.status in (order.Margin, order.Rejected):
            self.rejected.append((bt.num2date(order.created.dt), order.data._name,
                                  float(order.created.size)))

    def notify_trade(self, trade: Any) -> None:
        if trade.isclosed:
            self.trades.append({"asset": trade.data._name, "entry_ts": bt.num2date(trade.dtopen),
                                "exit_ts": bt.num2date(trade.dtclose),
                                "entry_price": trade.price, "pnl": trade.pnl,
                                "pnlcomm": trade.pnlcomm, "fees": trade.commission})

    def next(self) -> None:
        self.values.append(self.broker.getvalue())
        self.held.append([self.getposition(d).size for d in self.datas])
        for method, asset, arg in self.p.script.get(self.bar, ()):
            data = self.getdatabyname(asset)
            if method == "close":
                self.close(data)
            else:
                getattr(self, method)(data, **{self._KEYWORD[method]: arg})
        self.bar += 1


def run_bt(panel: Panel, script: dict[int, list[tuple[str, str, Any]]], *, coc: bool = False,
           capital: float = CAPITAL, commission: float = FEE_BPS / 1e4,
           slippage: tuple[float, bool] | None = None, **comm: Any) -> BtRun:
    """``slippage``: (fraction, slip_out) for ``set_slippage_perc`` on market orders."""
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.set_cash(capital)
    cerebro.broker.set_coc(coc)
    if slippage is not None:
        cerebro.broker.set_slippage_perc(slippage[0], slip_open=True, slip_out=slippage[1])
    cerebro.broker.setcommission(commission=commission, **comm)
    for j, name in enumerate(panel.assets):
        has = np.isfinite(panel.close[:, j])
        frame = pd.DataFrame({k: getattr(panel, k)[has, j] for k in ("open", "high", "low",
                                                                        "close")},
                             index=pd.DatetimeIndex(panel.ts[has]))
        frame["volume"] = frame["openinterest"] = 0.0
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=name)
    cerebro.addstrategy(Scripted, script=script)
    s = cerebro.run()[0]
    assert len(s.values) == panel.n_bars
    return BtRun(np.asarray(s.values), np.asarray(s.held, dtype=np.float64),
                 sorted(s.fills, key=lambda f: (f[0], f[1])), s.rejected, s.trades,
                 s.accepted, float(cerebro.broker.getcash()))


def _datetimes(panel: Panel) -> list[dt.datetime]:
    return panel.ts.astype("datetime64[us]").tolist()


def bt_equity(run: BtRun, panel: Panel, coc: bool) -> np.ndarray:
    """Equity at each close after that bar's fills, from backtrader's own numbers."""
    if not coc:
        return run.values
    ts = _datetimes(panel)
    comm = np.zeros(panel.n_bars)
    for when, _, _, _, c in run.fills:
        comm[ts.index(when)] += c
    return run.values - comm


# --- ours, set to what backtrader expresses ----------------------------------------------

def run_ours(panel: Panel, plan: SignalPlan | WeightPlan, *, fill: str, policy: str = "clip",
             capital: float = CAPITAL, fee_bps: float = FEE_BPS, **costs: Any
             ) -> BacktestResult:
    spec = {"commission_bps": fee_bps, "slippage_bps": 0.0, "half_spread_bps": 0.0,
            "borrow_fee_bps": 0.0, **costs}
    return run_backtest(panel, plan, costs=Costs(**spec), fill=fill, capital=capital,
                        fractional=False, max_gross_leverage=GROSS, max_net_leverage=1.0,
                        limit_policy=policy)


def signal_plan(panel: Panel, targets: dict[int, dict[str, float]]) -> tuple[SignalPlan, dict]:
    """Qty targets per decision bar -> our signal plan (entries of size |target|, exits)
    and backtrader's script (``order_target_size``), with the same meaning."""
    shape = (panel.n_bars, panel.n_assets)
    le, lx, se, sx = (np.zeros(shape, dtype=bool) for _ in range(4))
    size = np.zeros(shape)
    held = dict.fromkeys(panel.assets, 0.0)
    script: dict[int, list] = {}
    for t in sorted(targets):
        for asset, target in targets[t].items():
            j = panel.assets.index(asset)
            before, held[asset] = held[asset], target
            if target > 0:
                le[t, j] = True
            elif target < 0:
                se[t, j] = True
            elif before > 0:
                lx[t, j] = True
            else:
                sx[t, j] = True
            size[t, j] = abs(target)
            script.setdefault(t, []).append(("order_target_size", asset, target))
    return SignalPlan(le, lx, se, sx, size=size, size_type="qty"), script


# --- comparisons ------------------------------------------------------------------------

def assert_equal_runs(ours: BacktestResult, theirs: BtRun, panel: Panel, *, coc: bool) -> None:
    np.testing.assert_allclose(ours.equity["equity"].to_numpy(), bt_equity(theirs, panel, coc),
                               rtol=VALUE_REL)
    held = ours.records.positions
    if coc:  # backtrader's next() of t+1 sees the cheat-on-close fills of t
        np.testing.assert_array_equal(held[:-1], theirs.positions[1:])
    else:
        np.testing.assert_array_equal(held, theirs.positions)
    fills = ours.fills.sort("ts", "asset", maintain_order=True)
    assert len(fills) == len(theirs.fills) > 0
    for row, (when, asset, size, price, comm) in zip(fills.iter_rows(named=True), theirs.fills,
                                                     strict=True):
        assert (row["ts"], row["asset"], row["qty"]) == (when, asset, size)
        assert row["price"] == pytest.approx(price, rel=PRICE_REL)
        assert row["commission"] == pytest.approx(comm, rel=VALUE_REL)
    closed = ours.trades.filter(~ours.trades["is_open"]).sort("exit_ts", "asset",
                                                              maintain_order=True)
    trades = sorted(theirs.trades, key=lambda r: (r["exit_ts"], r["asset"]))
    assert len(closed) == len(trades)
    ts = _datetimes(panel)
    shift = 1 if coc else 0  # backtrader dates a trade by the broker cycle that booked it
    for row, tr in zip(closed.iter_rows(named=True), trades, strict=True):
        assert (row["asset"], row["entry_ts"], row["exit_ts"]) == (
            tr["asset"], ts[ts.index(tr["entry_ts"]) - shift],
            ts[ts.index(tr["exit_ts"]) - shift])
        assert row["entry_price"] == pytest.approx(tr["entry_price"], rel=PRICE_REL)
        assert row["fees"] == pytest.approx(tr["fees"], rel=VALUE_REL)
        assert row["pnl"] == pytest.approx(tr["pnlcomm"], rel=VALUE_REL)
    assert (ours.orders["status"] == "filled").all()
    assert not theirs.rejected


# --- equal where both express the same thing ----------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_buy_and_hold_market_order_fills_at_next_open(seed):
    panel = _window("indices", seed, 250, n_assets=1)
    asset = panel.assets[0]
    qty = float(int(0.9 * CAPITAL / panel.close[0, 0]))
    plan, script = signal_plan(panel, {0: {asset: qty}})
    ours = run_ours(panel, plan, fill="next_open")
    theirs = run_bt(panel, script)
    assert_equal_runs(ours, theirs, panel, coc=False)
    assert theirs.fills[0][3] == panel.open[1, 0]  # the next bar's open, not the close
    held = ours.trades.row(0, named=True)
    assert held["is_open"] and held["qty"] == qty


@pytest.mark.parametrize("seed", SEEDS)
def test_buy_and_hold_by_target_percent_cheat_on_close(seed):
    panel = _window("stocks", seed, 250, n_assets=1)
    weights = np.full((panel.n_bars, 1), np.nan)
    weights[0] = 0.95
    ours = run_ours(panel, WeightPlan(weights), fill="next_close")
    # decided at the close of bar 0, placed in next() of bar 1, filled at bar 1's close
    theirs = run_bt(panel, {1: [("order_target_percent", panel.assets[0], 0.95)]}, coc=True)
    assert_equal_runs(ours, theirs, panel, coc=True)
    assert theirs.fills[0][2] == int(0.95 * CAPITAL / panel.close[1, 0])


def _rotation(panel: Panel, every: int, lookback: int, top: int, weight: float) -> np.ndarray:
    """Top-``top`` momentum names at ``weight`` each; a row only where the book changes
    (NaN: hold), so every order opens or closes a position."""
    w = np.full(panel.close.shape, np.nan)
    held: set[int] = set()
    for t in range(lookback, panel.n_bars - 1, every):
        momentum = panel.close[t] / panel.close[t - lookback]
        pick = set(np.argsort(-momentum, kind="stable")[:top].tolist())
        for j in held - pick:
            w[t, j] = 0.0
        for j in pick - held:
            w[t, j] = weight
        held = pick
    return w


@pytest.mark.parametrize("seed", SEEDS)
def test_rotation_by_target_percent_with_a_missing_bar(seed):
    n_bars, every, lookback = 252, 21, 20
    # asset 3 has no bar at 100 (not a fill bar: fills come one bar after multiples of 21
    # plus 20), so both value it at its last close there
    panel = _window("stocks", seed, n_bars, n_assets=6, missing=((100, 3),))
    w = _rotation(panel, every, lookback, top=2, weight=0.2)
    assert np.isnan(w[99, 3])
    ours = run_ours(panel, WeightPlan(w), fill="next_close")
    script = {t + 1: [("order_target_percent", panel.assets[j], float(w[t, j]))
                      for j in np.nonzero(~np.isnan(w[t]))[0]]
              for t in range(n_bars) if not np.isnan(w[t]).all()}
    theirs = run_bt(panel, script, coc=True)
    assert_equal_runs(ours, theirs, panel, coc=True)
    assert len(theirs.fills) > 10 and len(theirs.trades) > 3


def test_short_then_cover():
    panel = _window("indices", 3, 120)
    j = panel.assets.index("NASDAQ")
    qty = float(int(0.3 * CAPITAL / panel.close[10, j]))
    plan, script = signal_plan(panel, {10: {"NASDAQ": -qty}, 70: {"NASDAQ": 0.0}})
    ours = run_ours(panel, plan, fill="next_open")
    theirs = run_bt(panel, script)
    assert_equal_runs(ours, theirs, panel, coc=False)
    trade = ours.trades.row(0, named=True)
    assert trade["side"] == "short" and trade["qty"] == qty
    gross = qty * (panel.open[11, j] - panel.open[71, j])
    assert trade["pnl"] == pytest.approx(gross - trade["fees"], rel=VALUE_REL)


def test_flip_splits_its_commission_like_backtrader():
    panel = _window("indices", 4, 120)
    j = panel.assets.index("SP500")
    qty = float(int(0.3 * CAPITAL / panel.close[5, j]))
    plan, script = signal_plan(panel, {5: {"SP500": qty}, 40: {"SP500": -qty},
                                       90: {"SP500": 0.0}})
    ours = run_ours(panel, plan, fill="next_open")
    theirs = run_bt(panel, script)
    assert_equal_runs(ours, theirs, panel, coc=False)
    flip = theirs.fills[1]
    assert flip[2] == -2 * qty  # one order of twice the position
    long, short = ours.trades.sort("entry_ts").iter_rows(named=True)
    entry_fee = qty * panel.open[6, j] * FEE_BPS / 1e4
    assert long["fees"] == pytest.approx(entry_fee + flip[4] / 2, rel=VALUE_REL)
    assert short["fees"] == pytest.approx(flip[4] / 2 + theirs.fills[2][4], rel=VALUE_REL)


def _random_targets(panel: Panel, seed: int, fraction: float) -> dict[int, dict[str, float]]:
    """Per asset, a new target among (-q, 0, +q) on about a tenth of the bars."""
    rng = np.random.default_rng(seed)
    targets: dict[int, dict[str, float]] = {}
    for j, asset in enumerate(panel.assets):
        q = float(int(fraction * CAPITAL / panel.close[0, j]))
        now = 0.0
        for t in np.nonzero(rng.random(panel.n_bars - 1) < 0.1)[0].tolist():
            now = float(rng.choice([x for x in (-q, 0.0, q) if x != now]))
            targets.setdefault(t, {})[asset] = now
    return targets


@pytest.mark.parametrize("seed", SEEDS)
def test_commission_on_longs_shorts_and_flips(seed):
    panel = _window("indices", 10 + seed, 300)
    plan, script = signal_plan(panel, _random_targets(panel, seed, 0.3))
    fee = 25.0  # bps
    ours = run_ours(panel, plan, fill="next_open", fee_bps=fee)
    theirs = run_bt(panel, script, commission=fee / 1e4)
    assert_equal_runs(ours, theirs, panel, coc=False)
    total = sum(f[4] for f in theirs.fills)
    assert ours.equity["fees"].sum() == pytest.approx(total, rel=VALUE_REL)
    assert total == pytest.approx(fee / 1e4 * sum(abs(f[2] * f[3]) for f in theirs.fills),
                                  rel=VALUE_REL)
    for asset in panel.assets:  # openings and closings of q shares, flips of 2q
        sizes = sorted({abs(f[2]) for f in theirs.fills if f[1] == asset})
        assert len(sizes) == 2 and sizes[1] == 2 * sizes[0]
    assert len(theirs.trades) > 10


# --- divergences, each shown with its sign and size ------------------------------------------

def _order(result: BacktestResult, i: int = 0) -> dict[str, Any]:
    return result.orders.row(i, named=True)


def test_divergence_cash_shortfall_rejected_whole_vs_filled_in_part():
    panel = _window("indices", 5, 60, n_assets=1)
    asset, fee = panel.assets[0], FEE_BPS / 1e4
    want = float(int(1.5 * CAPITAL / panel.close[0, 0]))
    plan, script = signal_plan(panel, {0: {asset: want}})
    theirs = run_bt(panel, script)
    # backtrader: the whole buy is refused at submission (never accepted), nothing held
    assert theirs.rejected == [(_datetimes(panel)[0], asset, want)] and theirs.accepted == 0
    assert not theirs.fills and (theirs.values == CAPITAL).all()
    affordable = np.floor(CAPITAL / (panel.open[1, 0] * (1 + fee)))
    clip = run_ours(panel, plan, fill="next_open", policy="clip")
    assert (_order(clip)["status"], _order(clip)["reason"]) == ("partial", "insufficient_cash")
    assert _order(clip)["filled_qty"] == affordable < want
    # the gap is the affordable position's P&L after its commission
    cost = affordable * panel.open[1, 0] * (1 + fee)
    assert clip.final_equity - theirs.values[-1] == pytest.approx(
        affordable * panel.close[-1, 0] - cost, rel=VALUE_REL)
    scale = run_ours(panel, plan, fill="next_open", policy="scale")
    assert (_order(scale)["status"], _order(scale)["reason"]) == ("partial", "scaled")
    assert _order(scale)["filled_qty"] == affordable


def test_divergence_cash_checked_again_at_a_gap_up_open():
    panel = _window("indices", 6, 250, n_assets=1)
    gaps = panel.open[1:, 0] / panel.close[:-1, 0]
    t = int(np.argmax(gaps))  # the largest gap up: decided at close t, filled at open t+1
    capital, fee = 1e7, FEE_BPS / 1e4
    want = float(int(capital / (panel.close[t, 0] * (1 + fee))))  # fits at the close of t
    assert want * panel.open[t + 1, 0] * (1 + fee) > capital  # but not at the next open
    plan, script = signal_plan(panel, {t: {panel.assets[0]: want}})
    theirs = run_bt(panel, script, capital=capital)
    # accepted at submission (priced at the close), then refused in full at the open
    assert theirs.accepted == 1 and len(theirs.rejected) == 1 and not theirs.fills
    ours = run_ours(panel, plan, fill="next_open", capital=capital)
    assert (_order(ours)["status"], _order(ours)["reason"]) == ("partial", "insufficient_cash")
    assert _order(ours)["filled_qty"] == np.floor(capital / (panel.open[t + 1, 0] * (1 + fee)))


def test_divergence_submission_order_vs_reductions_first():
    panel = _window("indices", 7, 80)
    a, b = panel.assets
    qa = float(int(0.9 * CAPITAL / panel.close[0, 0]))
    qb = float(int(0.8 * CAPITAL / panel.close[20, 1]))
    # at bar 20 the strategy submits the buy of b before the sale of a that pays for it
    plan, script = signal_plan(panel, {0: {a: qa}, 20: {b: qb, a: 0.0}})
    assert [x[1] for x in script[20]] == [b, a]
    ours = run_ours(panel, plan, fill="next_open")
    theirs = run_bt(panel, script)
    assert (ours.orders["status"] == "filled").all()  # ours sells a first, then buys b
    assert theirs.rejected == [(_datetimes(panel)[20], b, qb)]  # FIFO: b is refused
    assert theirs.positions[-1].tolist() == [0.0, 0.0]
    assert ours.records.positions[-1].tolist() == [0.0, qb]
    b_fill = ours.fills.row(2, named=True)
    assert ours.final_equity - theirs.values[-1] == pytest.approx(
        qb * panel.close[-1, 1] - qb * b_fill["price"] - b_fill["commission"], rel=VALUE_REL)
    # submitted sale first, backtrader's own rules give ours exactly
    script[20].reverse()
    assert_equal_runs(ours, run_bt(panel, script), panel, coc=False)


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_divergence_whole_shares_round_the_order_not_the_target(side):
    panel = _window("stocks", 8, 40, n_assets=1)
    w = np.full((panel.n_bars, 1), np.nan)
    w[0], w[20] = 0.6 * side, 0.3 * side  # open, then cut the position to half
    ours = run_ours(panel, WeightPlan(w), fill="next_close")
    theirs = run_bt(panel, {1: [("order_target_percent", panel.assets[0], 0.6 * side)],
                            21: [("order_target_percent", panel.assets[0], 0.3 * side)]},
                    coc=True)
    eq = ours.equity
    target = 0.3 * side * (eq["equity"][21] + eq["fees"][21]) / panel.close[21, 0]
    assert target != np.trunc(target)
    ours_held = ours.records.positions[-1, 0]
    theirs_held = theirs.positions[-1, 0]
    assert ours_held == np.trunc(target)  # ours: the target rounded toward zero
    assert theirs_held == ours_held + side  # backtrader: one share more of the position
    assert ours.records.positions[20, 0] == theirs.positions[21, 0]  # the opening agreed


def test_divergence_target_percent_sized_at_the_close_vs_at_the_fill_open():
    panel = _window("indices", 9, 120, n_assets=1)
    gaps = np.abs(np.log(panel.open[1:, 0] / panel.close[:-1, 0]))
    t = int(np.argmax(gaps))
    capital = 1e7
    w = np.full((panel.n_bars, 1), np.nan)
    w[t] = 0.5
    ours = run_ours(panel, WeightPlan(w), fill="next_open", capital=capital)
    theirs = run_bt(panel, {t: [("order_target_percent", panel.assets[0], 0.5)]},
                    capital=capital)
    at_close = int(0.5 * capital / panel.close[t, 0])  # backtrader: value and price at t
    at_open = np.trunc(0.5 * capital / panel.open[t + 1, 0])  # ours: at the fill's open
    assert theirs.fills[0][2] == at_close and ours.fills["qty"][0] == at_open
    # both fill at the same open; the sizes differ by the gap, with its sign
    assert theirs.fills[0][3] == ours.fills["price"][0] == panel.open[t + 1, 0]
    assert np.sign(at_close - at_open) == np.sign(panel.open[t + 1, 0] - panel.close[t, 0]) != 0


def test_divergence_missing_fill_bar_waits_vs_rejected():
    panel = _window("indices", 11, 40, missing=((11, 1),))
    asset = panel.assets[1]
    plan, script = signal_plan(panel, {10: {asset: 10.0}})
    ours = run_ours(panel, plan, fill="next_open")
    theirs = run_bt(panel, script)
    assert (_order(ours)["status"], _order(ours)["reason"]) == ("rejected", "not_tradable")
    assert ours.fills.is_empty()
    ts = _datetimes(panel)
    assert theirs.fills[0][:4] == (ts[12], asset, 10.0, panel.open[12, 1])  # a bar later


def test_divergence_fixed_commission_per_share_vs_per_order():
    panel = _window("indices", 12, 30, n_assets=1)
    plan, script = signal_plan(panel, {0: {panel.assets[0]: 20.0}})
    ours = run_ours(panel, plan, fill="next_open", fee_bps=0.0, commission_fixed=1.0)
    theirs = run_bt(panel, script, commission=1.0, commtype=bt.CommInfoBase.COMM_FIXED,
                    stocklike=True)
    assert ours.fills["commission"][0] == 1.0 and theirs.fills[0][4] == 20.0
    np.testing.assert_allclose(ours.equity["equity"].to_numpy()[1:] - theirs.values[1:], 19.0,
                               rtol=VALUE_REL)


def test_divergence_short_borrow_by_calendar_days_vs_per_bar():
    panel = _window("indices", 13, 60, n_assets=1)
    rate, q, t0, t1 = 0.05, 20.0, 5, 45  # short decided at t0, covered at t1
    plan, script = signal_plan(panel, {t0: {panel.assets[0]: -q}, t1: {panel.assets[0]: 0.0}})
    ours = run_ours(panel, plan, fill="next_open", fee_bps=0.0, borrow_fee_bps=rate * 1e4)
    theirs = run_bt(panel, script, commission=0.0, interest=rate)
    entry = panel.open[t0 + 1, 0]
    # backtrader: the entry price, calendar days from the fill bar to the exit bar, / 365
    days = (_datetimes(panel)[t1 + 1] - _datetimes(panel)[t0 + 1]).days
    theirs_borrow = q * entry * rate * days / 365
    # ours: each close held, fill bar included and exit bar not, / periods_per_year
    ours_borrow = q * rate / 252 * panel.close[t0 + 1:t1 + 1, 0].sum()
    assert ours.equity["borrow"].sum() == pytest.approx(ours_borrow, rel=VALUE_REL)
    assert theirs.trades[0]["fees"] == pytest.approx(theirs_borrow, rel=VALUE_REL)
    assert ours.final_equity - theirs.values[-1] == pytest.approx(
        theirs_borrow - ours_borrow, rel=VALUE_REL)
    assert days > t1 - t0  # weekends: calendar days outnumber bars


def test_divergence_no_leverage_limit_in_backtrader():
    panel = _window("indices", 14, 30, n_assets=1)
    want = float(int(2 * CAPITAL / panel.close[0, 0]))  # a short of twice the equity
    plan, script = signal_plan(panel, {0: {panel.assets[0]: -want}})
    theirs = run_bt(panel, script)
    assert theirs.fills[0][2] == -want and not theirs.rejected
    ours = run_ours(panel, plan, fill="next_open")
    assert (_order(ours)["status"], _order(ours)["reason"]) == ("partial", "leverage_limit")
    # |net| <= equity after the fill's commission: q * open * (1 + fee) <= capital
    assert _order(ours)["filled_qty"] == np.floor(
        CAPITAL / (panel.open[1, 0] * (1 + FEE_BPS / 1e4))) < want / 1.9


@pytest.mark.parametrize("seed", SEEDS)
def test_slippage_in_the_fill_price(seed):
    panel = _window("indices", 20 + seed, 200)
    plan, script = signal_plan(panel, _random_targets(panel, seed, 0.3))
    slip = 5.0  # bps
    ours = run_ours(panel, plan, fill="next_open", slippage_bps=slip)
    theirs = run_bt(panel, script, slippage=(slip / 1e4, True))
    assert_equal_runs(ours, theirs, panel, coc=False)
    sides = np.sign(ours.fills["qty"].to_numpy())
    assert (ours.fills["price"] / ours.fills["ref_price"]).to_numpy() == pytest.approx(
        1 + sides * slip / 1e4, rel=PRICE_REL)


def test_divergence_slippage_capped_at_the_bars_high():
    panel = _window("indices", 23, 250, n_assets=1)
    slip = 20.0 / 1e4
    edge = np.nonzero(panel.open[1:, 0] * (1 + slip) > panel.high[1:, 0])[0]
    t = int(edge[0])  # a buy decided at t whose slipped open lies above bar t+1's high
    plan, script = signal_plan(panel, {t: {panel.assets[0]: 10.0}})
    ours = run_ours(panel, plan, fill="next_open", slippage_bps=slip * 1e4)
    theirs = run_bt(panel, script, slippage=(slip, False))
    high, slipped = panel.high[t + 1, 0], panel.open[t + 1, 0] * (1 + slip)
    assert theirs.fills[0][3] == high < slipped
    assert ours.fills["price"][0] == pytest.approx(slipped, rel=PRICE_REL)
    assert ours.final_equity - theirs.values[-1] == pytest.approx(
        -10.0 * (slipped - high) * (1 + FEE_BPS / 1e4), rel=VALUE_REL)


def test_divergence_cheat_on_close_trades_a_missing_bar_at_the_stale_close():
    panel = _window("stocks", 15, 40, n_assets=2, missing=((21, 1),))
    w = np.full(panel.close.shape, np.nan)
    w[20, 1] = 0.5  # decided at the close of 20, to fill at the close of 21: no bar there
    ours = run_ours(panel, WeightPlan(w), fill="next_close")
    assert (_order(ours)["status"], _order(ours)["reason"]) == ("rejected", "not_tradable")
    assert ours.fills.is_empty()
    theirs = run_bt(panel, {21: [("order_target_percent", panel.assets[1], 0.5)]}, coc=True)
    # backtrader fills at the close the asset last had: bar 20's, placed a bar after it
    when, asset, size, price, _ = theirs.fills[0]
    assert (when, asset, price) == (_datetimes(panel)[20], panel.assets[1], panel.close[20, 1])
    assert size == int(0.5 * CAPITAL / panel.close[20, 1])
