"""backtrader on W1: 20 data feeds and a strategy that acts on the shifted crossover.

Timing semantics match ours: ``set_coc(True)`` (cheat-on-close) fills an order placed in
``next()`` of bar t at the close of t, so acting on the crossover of t-1 is our decision
at the close of t-1 filled at the close of t. backtrader books such a fill in the *next*
bar's broker cycle, so the value it reports in ``next()`` of bar t is ours *before* the
commission of the bar-t fills: the check compares ``equity + fees`` per bar.

Two engine rules have no backtrader switch and are reproduced in the strategy:

* sequencing -- orders go to the broker in our engine's order (position reductions
  first, then by ascending value, ties by column), and backtrader executes them FIFO;
* cash shortfall -- backtrader rejects a whole buy it cannot pay for (``Margin``) where
  our engine and vectorbt fill the part the cash covers. With ``clip_to_cash=True`` the
  strategy sizes such a buy down to the cash left, which is what makes the curves equal;
  ``clip_to_cash=False`` is plain backtrader, kept to measure that difference.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from benchmarks._ours import FEE_BPS
from engine import Panel

_CASH_MARGIN = 1e-12  # keep backtrader's post-trade cash >= 0 despite rounding


def signal_events(long_entry: np.ndarray, short_entry: np.ndarray) -> list[list[tuple[int, int]]]:
    """Per bar t: the (column, +1/-1) entries decided at the close of t-1.

    A long and a short entry on one bar cancel, as in our engine and vectorbt.
    """
    n_bars = long_entry.shape[0]
    events: list[list[tuple[int, int]]] = [[] for _ in range(n_bars)]
    le = long_entry & ~short_entry
    se = short_entry & ~long_entry
    for flags, direction in ((le, 1), (se, -1)):
        rows, cols = np.nonzero(flags[:-1])
        for t, j in zip(rows.tolist(), cols.tolist(), strict=True):
            events[t + 1].append((j, direction))
    for row in events:
        row.sort()
    return events


@lru_cache(maxsize=1)
def _strategy_class() -> type:
    import backtrader as bt

    class ShiftedCrossover(bt.Strategy):
        params = (("events", None), ("position_value", 0.0), ("fee_rate", 0.0),
                  ("clip_to_cash", True))

        def __init__(self) -> None:
            self.values: list[float] = []
            self.executed = 0
            self.margin_rejections = 0
            self._bar = 0

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.executed += 1
            elif order.status in (order.Margin, order.Rejected):
                self.margin_rejections += 1

        def next(self) -> None:
            t = self._bar
            self._bar += 1
            self.values.append(self.broker.getvalue())
            pending = []
            for j, direction in self.p.events[t]:
                data = self.datas[j]
                held = self.getposition(data).size
                if held * direction > 0:
                    continue  # already on that side: an entry adds nothing
                price = data.close[0]
                delta = direction * self.p.position_value / price - held
                reduces = (held > 0 > delta and held + delta >= 0) or (
                    held < 0 < delta and held + delta <= 0)
                pending.append((0 if reduces else 1, round(delta * price, 4), j, delta, price))
            pending.sort(key=lambda o: (o[0], o[1]))  # stable: ties keep column order
            cash = self.broker.getcash()
            fee = self.p.fee_rate
            for _, _, j, delta, price in pending:
                if delta > 0 and self.p.clip_to_cash:
                    if delta * price * (1 + fee) > cash * (1 + _CASH_MARGIN):
                        delta = max(cash / (price * (1 + fee)) * (1 - _CASH_MARGIN), 0.0)
                    if delta == 0.0:
                        continue
                if delta > 0:
                    self.buy(self.datas[j], size=delta)
                else:
                    self.sell(self.datas[j], size=-delta)
                cash -= delta * price + abs(delta) * price * fee

    return ShiftedCrossover


def prepare(panel: Panel) -> list[Any]:
    """One OHLC pandas frame per asset (close-only data: O = H = L = C), built untimed."""
    import pandas as pd

    index = pd.DatetimeIndex(panel.ts)
    frames = []
    for j in range(panel.n_assets):
        c = panel.close[:, j]
        frames.append(pd.DataFrame({"open": c, "high": c, "low": c, "close": c,
                                    "volume": 0.0, "openinterest": 0.0}, index=index))
    return frames


def run(frames: list[Any], names: tuple[str, ...], events: list[list[tuple[int, int]]],
        position_value: float, capital: float, *, clip_to_cash: bool = True
        ) -> dict[str, Any]:
    """One full backtrader run: cerebro, feeds, broker settings, strategy, ``run()``."""
    import backtrader as bt

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.set_cash(capital)
    cerebro.broker.set_coc(True)
    cerebro.broker.setcommission(commission=FEE_BPS / 1e4)  # 0.1 %, no slippage
    for frame, name in zip(frames, names, strict=True):
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=name)
    cerebro.addstrategy(_strategy_class(), events=events, position_value=position_value,
                        fee_rate=FEE_BPS / 1e4, clip_to_cash=clip_to_cash)
    strategy = cerebro.run()[0]
    return {"values": np.asarray(strategy.values, dtype=np.float64),
            "final_value": float(cerebro.broker.getvalue()),
            "executed": strategy.executed, "margin_rejections": strategy.margin_rejections}


def version() -> str:
    import backtrader as bt

    return str(bt.__version__)
