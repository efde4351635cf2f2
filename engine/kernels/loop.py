"""Loop kernels: run the step kernel over every bar of a panel.

Timing: an instruction decided at the close of bar t fills at bar t+1 (its open for
``next_open``, its close for ``next_close``) or, only for the explicitly unsafe
``same_close`` mode, at the close of t itself. Instructions of the last bar have no bar
left to fill on and are dropped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.enums import FillMode, TargetKind
from engine.kernels.step import close_open_trades_nb, step_nb
from engine.kernels.views import borrow_nb


@njit(cache=True)
def _fill_prices_nb(t, fill_mode, open_, close):
    if fill_mode == FillMode.NextOpen:
        return open_[t]
    return close[t]


@njit(cache=True)
def simulate_weights_nb(open_, high, low, close, volume, target_weight, fill_mode, book,
                        params, recs):
    """Target-weight backtest: ``target_weight[t, j]`` (NaN = none) decided at close t."""
    book = borrow_nb(book)  # views without reference counting (views.py)
    recs = borrow_nb(recs)
    n_bars, n = close.shape
    kind = np.zeros(n, dtype=np.int64)
    no_kind = np.zeros(n, dtype=np.int64)
    empty = np.zeros(n)
    for t in range(n_bars):
        decision = t if fill_mode == FillMode.SameClose else t - 1
        if decision >= 0:
            row = target_weight[decision]
            for j in range(n):
                kind[j] = TargetKind.NoTarget if np.isnan(row[j]) else TargetKind.Weight
            step_nb(t, decision, _fill_prices_nb(t, fill_mode, open_, close), open_[t],
                    high[t], low[t], close[t], volume[t], kind, row, book, params, recs)
        else:
            step_nb(t, decision, close[t], open_[t], high[t], low[t], close[t], volume[t],
                    no_kind, empty, book, params, recs)
    close_open_trades_nb(n_bars - 1, book, recs)


@njit(cache=True)
def decide_signals_nb(qty, long_entry, long_exit, short_entry, short_exit, size, size_kind,
                      kind, value):
    """Turn one bar's entry/exit flags into instructions, against the position held.

    Flat: an entry opens ``size``. Long: a short entry reverses to a short of ``size``,
    else a long exit closes. Short: mirror image. Conflicting flags on one bar (entry and
    exit of a side, or long and short entries) are removed by the caller beforehand.
    """
    n = qty.shape[0]
    for j in range(n):
        kind[j] = TargetKind.NoTarget
        q = qty[j]
        if q > 0.0:
            if short_entry[j]:
                kind[j] = size_kind
                value[j] = -size[j]
            elif long_exit[j]:
                kind[j] = TargetKind.Qty
                value[j] = 0.0
        elif q < 0.0:
            if long_entry[j]:
                kind[j] = size_kind
                value[j] = size[j]
            elif short_exit[j]:
                kind[j] = TargetKind.Qty
                value[j] = 0.0
        elif long_entry[j] != short_entry[j]:
            kind[j] = size_kind
            value[j] = size[j] if long_entry[j] else -size[j]


@njit(cache=True)
def simulate_signals_nb(open_, high, low, close, volume, long_entry, long_exit, short_entry,
                        short_exit, size, size_kind, fill_mode, book, params, recs):
    """Entry/exit-signal backtest evaluated against the position actually held."""
    book = borrow_nb(book)  # views without reference counting (views.py)
    recs = borrow_nb(recs)
    n_bars, n = close.shape
    kind = np.zeros(n, dtype=np.int64)
    value = np.zeros(n)
    for t in range(n_bars):
        if fill_mode == FillMode.SameClose:
            decide_signals_nb(book.qty, long_entry[t], long_exit[t], short_entry[t],
                              short_exit[t], size[t], size_kind, kind, value)
            step_nb(t, t, close[t], open_[t], high[t], low[t], close[t], volume[t], kind,
                    value, book, params, recs)
        else:
            # ``kind``/``value`` hold the instructions decided at the close of t - 1
            step_nb(t, t - 1, _fill_prices_nb(t, fill_mode, open_, close), open_[t], high[t],
                    low[t], close[t], volume[t], kind, value, book, params, recs)
            decide_signals_nb(book.qty, long_entry[t], long_exit[t], short_entry[t],
                              short_exit[t], size[t], size_kind, kind, value)
    close_open_trades_nb(n_bars - 1, book, recs)
