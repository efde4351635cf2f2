"""The result of a backtest: kernel records wrapped as polars frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from engine.costs import Costs
from engine.kernels import REASON_NAMES, STATUS_NAMES, TRIGGER_NAMES, Records
from engine.panel import Panel


def _ts_at(panel: Panel, bars: np.ndarray) -> pl.Series:
    return pl.Series(panel.ts[bars]).cast(pl.Datetime("ns"))


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Everything a run produced. Frames are built on first access."""

    panel: Panel
    records: Records
    counts: np.ndarray  # orders, fills, trades written
    capital: float
    costs: Costs
    fill: str
    settings: dict = field(default_factory=dict)
    # what produced it, so a report can rerun it under other costs (engine.sensitivity)
    plan: Any = None
    simulation: Any = None  # the SimulationSettings of the run

    @property
    def periods_per_year(self) -> float:
        return self.panel.periods_per_year

    @property
    def assets(self) -> tuple[str, ...]:
        return self.panel.assets

    @cached_property
    def equity(self) -> pl.DataFrame:
        r = self.records
        return pl.DataFrame(
            {
                "ts": pl.Series(self.panel.ts).cast(pl.Datetime("ns")),
                "equity": r.equity,
                "cash": r.cash,
                "gross": r.gross,
                "net": r.net,
                "traded": r.traded,
                "fees": r.fees,
                "borrow": r.borrow,
            }
        )

    @cached_property
    def returns(self) -> pl.DataFrame:
        eq = self.records.equity
        prev = np.concatenate(([self.capital], eq[:-1]))
        return pl.DataFrame({"ts": self.equity["ts"], "return": eq / prev - 1.0})

    def _asset_names(self, idx: np.ndarray) -> pl.Series:
        return pl.Series(np.asarray(self.panel.assets, dtype=object)[idx].tolist(), dtype=pl.Utf8)

    @cached_property
    def orders(self) -> pl.DataFrame:
        o = self.records.orders[: self.counts[0]]
        fill_bar = o["fill_bar"]
        return pl.DataFrame(
            {
                "order_id": o["order_id"],
                "ts": _ts_at(self.panel, np.maximum(o["bar"], 0)),
                "fill_ts": _ts_at(self.panel, fill_bar),
                "asset": self._asset_names(o["asset"]),
                "side": o["side"],
                "requested_qty": o["requested_qty"],
                "filled_qty": o["filled_qty"],
                "status": pl.Series([STATUS_NAMES[s] for s in o["status"]], dtype=pl.Utf8),
                "reason": pl.Series([REASON_NAMES[s] for s in o["reason"]], dtype=pl.Utf8),
            }
        )

    @cached_property
    def fills(self) -> pl.DataFrame:
        f = self.records.fills[: self.counts[1]]
        return pl.DataFrame(
            {
                "order_id": f["order_id"],
                "ts": _ts_at(self.panel, f["bar"]),
                "asset": self._asset_names(f["asset"]),
                "qty": f["qty"],
                "price": f["price"],
                "ref_price": f["ref_price"],
                "commission": f["commission"],
                "slippage_cost": f["slippage_cost"],
                "trigger": pl.Series([TRIGGER_NAMES[k] for k in f["trigger"]], dtype=pl.Utf8),
                "ambiguous": f["ambiguous"].astype(bool),
            }
        )

    @cached_property
    def trades(self) -> pl.DataFrame:
        t = self.records.trades[: self.counts[2]]
        return pl.DataFrame(
            {
                "asset": self._asset_names(t["asset"]),
                "side": pl.Series(["long" if s > 0 else "short" for s in t["side"]],
                                  dtype=pl.Utf8),
                "entry_ts": _ts_at(self.panel, t["entry_bar"]),
                "exit_ts": _ts_at(self.panel, t["exit_bar"]),
                "entry_price": t["entry_price"],
                "exit_price": t["exit_price"],
                "qty": t["qty"],
                "pnl": t["pnl"],
                "return": t["ret"],
                "fees": t["fees"],
                "is_open": t["is_open"].astype(bool),
            }
        ).sort("entry_ts", "asset", maintain_order=True)

    @cached_property
    def positions(self) -> pl.DataFrame:
        """Long frame of non-zero holdings at each bar's close, valued at the last close."""
        pos = self.records.positions
        if pos.shape[0] == 0:
            return pl.DataFrame(schema={"ts": pl.Datetime("ns"), "asset": pl.Utf8,
                                        "qty": pl.Float64, "value": pl.Float64})
        price = _last_close(self.panel.close)
        bar, col = np.nonzero(pos)
        return pl.DataFrame(
            {
                "ts": _ts_at(self.panel, bar),
                "asset": self._asset_names(col),
                "qty": pos[bar, col],
                "value": pos[bar, col] * price[bar, col],
            }
        )

    @property
    def final_equity(self) -> float:
        return float(self.records.equity[-1])

    def __repr__(self) -> str:
        return (
            f"BacktestResult({self.panel.n_bars} bars x {self.panel.n_assets} assets, "
            f"fill={self.fill}, final_equity={self.final_equity:,.2f}, "
            f"orders={int(self.counts[0])}, fills={int(self.counts[1])}, "
            f"trades={int(self.counts[2])})"
        )


def _last_close(close: np.ndarray) -> np.ndarray:
    """Carry the last finite close forward (valuation only, never for trading)."""
    idx = np.where(np.isfinite(close), np.arange(close.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    return close[idx, np.arange(close.shape[1])]
