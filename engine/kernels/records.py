"""Structured record dtypes written by the kernels and the state they advance."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

order_dt = np.dtype(
    [
        ("order_id", np.int64),
        ("bar", np.int64),  # bar whose close the decision was made at
        ("fill_bar", np.int64),
        ("asset", np.int64),
        ("side", np.int64),  # +1 buy, -1 sell
        ("requested_qty", np.float64),  # unsigned
        ("filled_qty", np.float64),  # unsigned
        ("status", np.int64),
        ("reason", np.int64),
    ],
    align=True,
)

fill_dt = np.dtype(
    [
        ("order_id", np.int64),
        ("bar", np.int64),
        ("asset", np.int64),
        ("qty", np.float64),  # signed
        ("price", np.float64),  # incl. half-spread and slippage
        ("ref_price", np.float64),
        ("commission", np.float64),
        ("slippage_cost", np.float64),
        ("trigger", np.int64),  # Trigger: market, stop_loss, take_profit, trailing_stop
        ("ambiguous", np.int64),  # 1: the fill depended on the unknown order inside the bar
    ],
    align=True,
)

trade_dt = np.dtype(
    [
        ("asset", np.int64),
        ("side", np.int64),  # +1 long, -1 short
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("entry_price", np.float64),  # average over the increases
        ("exit_price", np.float64),  # average over the reductions
        ("qty", np.float64),  # largest absolute size reached
        ("pnl", np.float64),  # net of commission and borrow fees
        ("ret", np.float64),  # pnl / capital deployed at entry
        ("fees", np.float64),  # commission + borrow attributed to the trade
        ("is_open", np.int64),
    ],
    align=True,
)


class SimParams(NamedTuple):
    """Scalars the kernels need; built from Costs and engine settings in Python."""

    commission_rate: float
    commission_fixed: float
    impact_rate: float  # half-spread + slippage, as a fraction of the reference price
    sqrt_impact_rate: float  # impact: sqrt -- this times sqrt(qty / bar volume); 0 = off
    borrow_rate_per_bar: float
    cash_rate_per_bar: float
    participation_cap: float  # NaN = no cap
    max_gross: float
    max_net: float
    fractional: bool
    limit_policy: int  # LimitPolicy: 0 clip, 1 scale
    sl_stop: float  # stop-loss distance as a fraction of the entry price; NaN = none
    tp_stop: float  # take-profit distance as a fraction of the entry price; NaN = none
    sl_trail: bool  # the stop-loss trails the best price since the entry
    stop_first: bool  # stop and target both inside one bar: the stop counts (pessimistic)
    use_stops: bool  # sl_stop or tp_stop is set
    entry_type: int  # EntryType: market, limit or stop entries
    entry_offset: float  # the entry level's distance from the decision close, a fraction
    entry_tif_bars: int  # bars a limit / stop entry rests before it expires
    use_delisting: bool  # some asset leaves early (Book.delist_bar); set per run


class Book(NamedTuple):
    """Mutable account state (arrays mutated in place by the kernels)."""

    cash: np.ndarray  # (1,)
    qty: np.ndarray  # (n,)
    last_price: np.ndarray  # (n,) valuation price: last finite close
    tr_side: np.ndarray  # (n,) int64, 0 = flat
    tr_entry_bar: np.ndarray  # (n,) int64
    tr_entry_value: np.ndarray  # (n,) sum |qty * price| over increases
    tr_entry_qty: np.ndarray
    tr_exit_value: np.ndarray
    tr_exit_qty: np.ndarray
    tr_max_qty: np.ndarray
    tr_fees: np.ndarray
    counts: np.ndarray  # (4,) int64: orders, fills, trades written, ambiguous fills
    stop_entry: np.ndarray  # (n,) entry reference price the stops refer to; NaN = none
    stop_peak: np.ndarray  # (n,) best price since the entry (the trailing stop's anchor)
    stop_from_bar: np.ndarray  # (n,) int64: first bar the stops are checked on
    pend_kind: np.ndarray  # (n,) int64: TargetKind of a resting limit / stop entry (0: none)
    pend_value: np.ndarray  # (n,) its instruction value
    pend_level: np.ndarray  # (n,) its price level
    pend_decision: np.ndarray  # (n,) int64: the bar it was decided at
    delist_bar: np.ndarray  # (n,) int64: the asset's last bar when it leaves early; -1: never
    delist_factor: np.ndarray  # (n,) the position settles at close * factor on that bar


class Records(NamedTuple):
    """Preallocated outputs."""

    orders: np.ndarray
    fills: np.ndarray
    trades: np.ndarray
    equity: np.ndarray  # (n_bars,)
    cash: np.ndarray
    gross: np.ndarray
    net: np.ndarray
    traded: np.ndarray
    fees: np.ndarray  # commission + spread/slippage cost
    borrow: np.ndarray
    positions: np.ndarray  # (n_bars, n) or (0, n) when not recorded


def new_book(n_assets: int, capital: float) -> Book:
    z = np.zeros(n_assets)
    zi = np.zeros(n_assets, dtype=np.int64)
    return Book(
        cash=np.array([float(capital)]),
        qty=z.copy(),
        last_price=np.full(n_assets, np.nan),
        tr_side=zi.copy(),
        tr_entry_bar=zi.copy(),
        tr_entry_value=z.copy(),
        tr_entry_qty=z.copy(),
        tr_exit_value=z.copy(),
        tr_exit_qty=z.copy(),
        tr_max_qty=z.copy(),
        tr_fees=z.copy(),
        counts=np.zeros(4, dtype=np.int64),
        stop_entry=np.full(n_assets, np.nan),
        stop_peak=np.full(n_assets, np.nan),
        stop_from_bar=zi.copy(),
        pend_kind=zi.copy(),
        pend_value=z.copy(),
        pend_level=np.full(n_assets, np.nan),
        pend_decision=zi.copy(),
        delist_bar=np.full(n_assets, -1, dtype=np.int64),
        delist_factor=np.ones(n_assets),
    )


def new_records(n_bars: int, n_assets: int, max_orders: int, *, record_positions: bool = True
                ) -> Records:
    f = np.full(n_bars, np.nan)
    return Records(
        orders=np.empty(max_orders, dtype=order_dt),
        fills=np.empty(max_orders, dtype=fill_dt),
        trades=np.empty(max_orders + n_assets, dtype=trade_dt),
        equity=f.copy(),
        cash=f.copy(),
        gross=f.copy(),
        net=f.copy(),
        traded=np.zeros(n_bars),
        fees=np.zeros(n_bars),
        borrow=np.zeros(n_bars),
        positions=np.zeros((n_bars if record_positions else 0, n_assets)),
    )
