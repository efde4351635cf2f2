"""The step kernel: advance the book by one bar.

``step_nb`` = fill the pending instructions at this bar's fill prices (sells before buys,
costs applied, limits enforced, rejects recorded) and then mark to market at the close.
The backtest loops and the RL environment both call it, so they share one cost and fill
model. Everything here takes arrays, scalars and NamedTuples only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels._fill import (
    TradeSlots,
    fill_one_nb,
    impact_nb,
    new_order_nb,
    reduces_nb,
    split_order_nb,
    track_fill_nb,
    write_trade_nb,
)
from engine.kernels.enums import EntryType, LimitPolicy, OrderStatus, Reason, TargetKind, Trigger
from engine.kernels.views import borrow_nb

# Speed: every numba function that receives the Book / Records tuples increfs and decrefs
# each of their ~32 arrays on entry and exit, and again each time they are bound to an
# inlined helper's arguments, unless numba's refcount pruning can prove that unneeded.
# Each kernel here therefore starts with ``book = borrow_nb(book)`` (``views.py``): the
# views carry a null owner, which LLVM then sees, so the refcount calls fold away. The
# helpers of one fill (``_fill.py``) are inlined and take only the arrays they write.


@njit(cache=True)
def _valuation_price_nb(ref_price: float, last_price: float) -> float:
    if np.isfinite(ref_price):
        return ref_price
    if np.isfinite(last_price):
        return last_price
    return 0.0


@njit(cache=True)
def _limit_bound_nb(coef, rhs):
    """The largest s in [0, 1] with ``s * coef <= rhs`` (1 when the constraint never binds)."""
    if coef <= 0.0:
        return 1.0
    if rhs <= 0.0:
        return 0.0
    return min(1.0, rhs / coef)


@njit(cache=True)
def book_scale_nb(targets, ref_price, volume, equity, book, params):
    """The one factor s in [0, 1] on every order's opening part that fits the whole book.

    After all of the bar's orders (reductions in full, opening parts times s, costs paid)
    the book must satisfy gross <= max_gross * E(s), -max_net * E(s) <= net <=
    max_net * E(s) and cash >= -max(max_net - 1, 0) * E(s), where E(s) is the equity at
    the fill prices after the bar's costs. Every quantity is linear in s, so s is the
    smallest of the per-constraint bounds. Positions without an order are valued at this
    bar's price (the last close where the asset has none). The volume cap is applied first.
    """
    book = borrow_nb(book)
    n = book.qty.shape[0]
    cr = params.commission_rate
    g_fix = 0.0
    g_open = 0.0
    n_fix = 0.0
    n_open = 0.0
    c_fix = 0.0
    c_open = 0.0
    k_fix = book.cash[0]
    k_open = 0.0
    for j in range(n):
        q0 = book.qty[j]
        tq = targets[j]
        if not np.isfinite(tq):
            if q0 != 0.0:
                v = q0 * _valuation_price_nb(ref_price[j], book.last_price[j])
                g_fix += abs(v)
                n_fix += v
            continue
        p = ref_price[j]
        delta = tq - q0
        side = 1.0 if delta > 0 else -1.0
        cap = params.participation_cap
        if np.isfinite(cap) and np.isfinite(volume[j]) and abs(delta) > cap * volume[j]:
            delta = side * cap * volume[j]
        base, opening = split_order_nb(q0, q0 + delta, tq)
        fixed_trade = base - q0
        g_fix += abs(base) * p
        g_open += abs(opening) * p
        n_fix += base * p
        n_open += opening * p
        # impact at the unscaled size: an upper bound on the scaled orders' (sqrt impact)
        rate = impact_nb(abs(fixed_trade) + abs(opening), volume[j], params)
        fill_price = p * (1.0 + side * rate)
        unit_cost = p * rate + fill_price * cr  # equity lost per share traded
        c_fix += abs(fixed_trade) * unit_cost + params.commission_fixed
        c_open += abs(opening) * unit_cost
        k_fix -= fixed_trade * fill_price + abs(fixed_trade) * fill_price * cr \
            + params.commission_fixed
        k_open -= opening * fill_price + abs(opening) * fill_price * cr
    e_fix = equity - c_fix
    mg = params.max_gross
    mn = params.max_net
    floor_rate = max(mn - 1.0, 0.0)
    s = _limit_bound_nb(g_open + mg * c_open, mg * e_fix - g_fix)
    s = min(s, _limit_bound_nb(n_open + mn * c_open, mn * e_fix - n_fix))
    s = min(s, _limit_bound_nb(-n_open + mn * c_open, mn * e_fix + n_fix))
    s = min(s, _limit_bound_nb(floor_rate * c_open - k_open, k_fix + floor_rate * e_fix))
    if s > 1.0 - 1e-9:  # rounding noise, not a breach (the clip rule's own tolerance)
        return 1.0
    return s


@njit(cache=True)
def _target_qty_nb(kind, value, equity, val_p, fractional):
    """The signed quantity an instruction asks for, valued at ``val_p`` (NaN: no price to
    size on); whole shares round toward zero."""
    if kind == TargetKind.Qty:
        tq = value
    elif not np.isfinite(val_p) or val_p <= 0.0:
        tq = 0.0 if value == 0.0 else np.nan
    elif kind == TargetKind.Weight:
        tq = value * equity / val_p
    else:
        tq = value / val_p
    if not fractional and np.isfinite(tq):
        tq = np.trunc(tq)
    return tq


@njit(cache=True)
def _sort_orders_nb(order_value, idx, m):
    """Order ``idx[:m]`` by ``order_value[:m]``, ties in their given order: numpy's stable
    sort, as an insertion sort that allocates nothing for the few orders of a usual bar."""
    if m > 32:
        seq = np.argsort(order_value[:m], kind="mergesort")
        idx[:m] = idx[:m][seq]
        return
    for a in range(1, m):
        v = order_value[a]
        j = idx[a]
        b = a - 1
        while b >= 0 and v < order_value[b]:
            order_value[b + 1] = order_value[b]
            idx[b + 1] = idx[b]
            b -= 1
        order_value[b + 1] = v
        idx[b + 1] = j


@njit(cache=True)
def execute_nb(bar, decision_bar, ref_price, volume, kind, value, book, params, recs):
    """Fill the instructions ``(kind, value)`` (one per asset) at ``ref_price``.

    Targets are sized on equity valued at this bar's fill prices (last close where an
    asset has no price). Reductions are filled before orders that add exposure. An asset without a price here is not
    tradable: its order is recorded as rejected.
    """
    book = borrow_nb(book)
    recs = borrow_nb(recs)
    n = book.qty.shape[0]
    equity = book.cash[0]
    gross = 0.0
    net = 0.0
    for j in range(n):
        q = book.qty[j]
        if q != 0.0:
            v = q * _valuation_price_nb(ref_price[j], book.last_price[j])
            equity += v
            gross += abs(v)
            net += v
    targets = np.empty(n)
    for j in range(n):
        targets[j] = np.nan
        kj = kind[j]
        if kj == TargetKind.NoTarget:
            continue
        p = ref_price[j]
        val_p = p if np.isfinite(p) else book.last_price[j]
        if kj == TargetKind.Qty:
            tq = value[j]
        elif not np.isfinite(val_p) or val_p <= 0.0:
            tq = 0.0 if value[j] == 0.0 else np.nan
        elif kj == TargetKind.Weight:
            tq = value[j] * equity / val_p
        else:
            tq = value[j] / val_p
        if not params.fractional and np.isfinite(tq):
            tq = np.trunc(tq)
        if np.isfinite(tq) and abs(tq - book.qty[j]) <= 1e-12 * max(abs(tq), 1.0):
            continue
        if not np.isfinite(p):
            # not tradable at this bar: a day order that cannot trade is rejected; without
            # any price yet its size is unknown and its side is the instruction's sign
            if np.isfinite(tq):
                side = 1 if tq > book.qty[j] else -1
            else:
                side = 1 if value[j] > 0.0 else -1
            new_order_nb(decision_bar, bar, j, side,
                         abs(tq - book.qty[j]) if np.isfinite(tq) else np.nan,
                         Reason.NotTradable, book.counts, recs.orders)
            continue
        targets[j] = tq
    # Sequencing: first every order that only reduces a position (a sale of a long, a cover
    # of a short), so the exposure and cash they free are there for the rest; then the
    # orders that open, extend or flip a position. Within each group orders run in
    # ascending order of value (largest sale first, smallest purchase first), so a cash
    # shortfall trims the largest purchase, never an arbitrary column.
    scale = 1.0
    clip = params.limit_policy == LimitPolicy.Clip  # else the factor fits the whole book
    if not clip:
        scale = book_scale_nb(targets, ref_price, volume, equity, book, params)
    order_value = np.empty(n)
    idx = np.empty(n, dtype=np.int64)
    for group in range(2):  # 0: pure reductions, 1: opening / extending / flipping
        m = 0
        for j in range(n):
            tq = targets[j]
            if not np.isfinite(tq):
                continue
            q = book.qty[j]
            if reduces_nb(q, tq) != (group == 0):
                continue
            idx[m] = j
            # rounded so that equal-sized orders tie exactly and keep asset order
            order_value[m] = np.round((tq - q) * ref_price[j], 4)
            m += 1
        _sort_orders_nb(order_value, idx, m)
        for s in range(m):
            j = idx[s]
            cost, gross, net = fill_one_nb(j, decision_bar, bar, ref_price[j], volume[j],
                                           targets[j], scale if group == 1 else 1.0, equity,
                                           gross, net, book, params, recs, clip)
            targets[j] = np.nan
            equity -= cost


@njit(cache=True)
def mark_nb(bar, close, book, params, recs):
    """Mark to market at the close of ``bar``, accrue borrow fees and cash interest."""
    book = borrow_nb(book)
    recs = borrow_nb(recs)
    n = book.qty.shape[0]
    borrow = 0.0
    gross = 0.0
    net = 0.0
    for j in range(n):
        c = close[j]
        if np.isfinite(c):
            book.last_price[j] = c
        q = book.qty[j]
        if q != 0.0:
            v = q * book.last_price[j]
            gross += abs(v)
            net += v
            if q < 0.0 and params.borrow_rate_per_bar > 0.0:
                fee = -v * params.borrow_rate_per_bar
                borrow += fee
                book.tr_fees[j] += fee
    cash = book.cash[0] - borrow
    if cash > 0.0 and params.cash_rate_per_bar != 0.0:
        cash += cash * params.cash_rate_per_bar
    book.cash[0] = cash
    recs.cash[bar] = cash
    recs.equity[bar] = cash + net
    recs.gross[bar] = gross
    recs.net[bar] = net
    recs.borrow[bar] = borrow
    if recs.positions.shape[0] > 0:
        for j in range(n):
            recs.positions[bar, j] = book.qty[j]


@njit(cache=True)
def _bar_range_nb(open_, high, low, close):
    """(open, high, low) of a bar with missing parts filled from what is there: close-only
    data has open = high = low = close, so its levels are checked on closes."""
    o = open_ if np.isfinite(open_) else close
    h = high if np.isfinite(high) else max(o, close)
    lo = low if np.isfinite(low) else min(o, close)
    return o, max(h, o, close), min(lo, o, close)


@njit(cache=True)
def stop_level_nb(j, bar, open_, high, low, close, book, params):
    """(price, trigger, ambiguous) of the stop exit of asset j on this bar; trigger -1: none.

    Levels are fractions of the entry price: stop-loss ``entry * (1 - sl_stop)`` for a long
    (``1 + sl_stop`` for a short), measured from the best price since the entry when
    ``sl_trail``; take-profit ``entry * (1 + tp_stop)`` (``1 - tp_stop``). A gap through a
    level fills at the open; otherwise a level inside the bar's range fills at the level.
    Both inside one bar: the order of the two inside the bar is unknowable; ``stop_first``
    takes the stop (else the target) and the fill counts as ambiguous. A trailing stop hit
    on a bar that also set a new best price is ambiguous too (the anchor is the best price
    before the bar).
    """
    book = borrow_nb(book)
    q = book.qty[j]
    entry = book.stop_entry[j]
    if q == 0.0 or not np.isfinite(entry) or bar < book.stop_from_bar[j] \
            or not np.isfinite(close):
        return np.nan, -1, False
    o, h, lo = _bar_range_nb(open_, high, low, close)
    side = 1.0 if q > 0.0 else -1.0
    sl = np.nan
    sl_trigger = Trigger.StopLoss
    if np.isfinite(params.sl_stop):
        anchor = entry
        if params.sl_trail:
            anchor = book.stop_peak[j]
            sl_trigger = Trigger.TrailingStop
        sl = anchor * (1.0 - side * params.sl_stop)
    tp = entry * (1.0 + side * params.tp_stop) if np.isfinite(params.tp_stop) else np.nan
    # gaps: the open itself is through a level (only one level can be)
    if np.isfinite(sl) and side * (o - sl) <= 0.0:
        return o, sl_trigger, False
    if np.isfinite(tp) and side * (o - tp) >= 0.0:
        return o, Trigger.TakeProfit, False
    sl_hit = np.isfinite(sl) and (lo <= sl if side > 0 else h >= sl)
    tp_hit = np.isfinite(tp) and (h >= tp if side > 0 else lo <= tp)
    if sl_hit and tp_hit:
        if params.stop_first:
            return sl, sl_trigger, True
        return tp, Trigger.TakeProfit, True
    if sl_hit:
        new_best = (h > book.stop_peak[j]) if side > 0 else (lo < book.stop_peak[j])
        return sl, sl_trigger, params.sl_trail and new_best
    if tp_hit:
        return tp, Trigger.TakeProfit, False
    return np.nan, -1, False


@njit(cache=True)
def stop_exits_nb(bar, decision_bar, open_, high, low, close, volume, kind, value, book,
                  params, recs):
    """Fill the stop exits of this bar before its instructions; an asset whose stop fired
    has its instruction of this bar recorded as rejected (reason ``stopped``)."""
    book = borrow_nb(book)
    recs = borrow_nb(recs)
    n = book.qty.shape[0]
    equity = book.cash[0]
    gross = 0.0
    net = 0.0
    for j in range(n):
        q = book.qty[j]
        if q != 0.0:
            v = q * _valuation_price_nb(open_[j] if np.isfinite(open_[j]) else close[j],
                                        book.last_price[j])
            equity += v
            gross += abs(v)
            net += v
    for j in range(n):
        price, trigger, ambiguous = stop_level_nb(j, bar, open_[j], high[j], low[j], close[j],
                                                  book, params)
        if trigger < 0:
            continue
        n_fills = book.counts[1]
        cost, gross, net = fill_one_nb(j, bar, bar, price, volume[j], 0.0, 1.0, equity,
                                       gross, net, book, params, recs, True)
        equity -= cost
        if book.counts[1] > n_fills:
            f = recs.fills[n_fills]
            f.trigger = trigger
            f.ambiguous = 1 if ambiguous else 0
            if ambiguous:
                book.counts[3] += 1
        if kind[j] != TargetKind.NoTarget:
            kind[j] = TargetKind.NoTarget
            new_order_nb(decision_bar, bar, j, 1 if value[j] > 0.0 else -1, np.nan,
                         Reason.Stopped, book.counts, recs.orders)


@njit(cache=True)
def trail_stops_nb(bar, open_, high, low, close, book):
    """After the bar: a trailing anchor moves to the bar's best price (from the bar after
    the entry on; vectorbt's rule)."""
    book = borrow_nb(book)
    n = book.qty.shape[0]
    for j in range(n):
        q = book.qty[j]
        if q == 0.0 or not np.isfinite(book.stop_entry[j]) or bar < book.stop_from_bar[j] \
                or not np.isfinite(close[j]):
            continue
        o, h, lo = _bar_range_nb(open_[j], high[j], low[j], close[j])
        if q > 0.0 and h > book.stop_peak[j]:
            book.stop_peak[j] = h
        elif q < 0.0 and lo < book.stop_peak[j]:
            book.stop_peak[j] = lo


@njit(cache=True)
def _book_exposure_nb(price, book):
    """(equity, gross, net) with positions valued at ``price`` (last close where NaN)."""
    book = borrow_nb(book)
    equity = book.cash[0]
    gross = 0.0
    net = 0.0
    for j in range(book.qty.shape[0]):
        q = book.qty[j]
        if q != 0.0:
            v = q * _valuation_price_nb(price[j], book.last_price[j])
            equity += v
            gross += abs(v)
            net += v
    return equity, gross, net


@njit(cache=True)
def defer_entries_nb(bar, decision_bar, kind, value, close, book, params, recs):
    """Turn this bar's entries (instructions that open a position from flat) into resting
    limit / stop orders at a level set from the decision close; any instruction for an
    asset with a resting entry cancels it (recorded as rejected, reason ``cancelled``)."""
    book = borrow_nb(book)
    recs = borrow_nb(recs)
    n = book.qty.shape[0]
    for j in range(n):
        if kind[j] == TargetKind.NoTarget:
            continue
        if book.pend_kind[j] != TargetKind.NoTarget:
            new_order_nb(book.pend_decision[j], bar, j, 1 if book.pend_value[j] > 0 else -1,
                         np.nan, Reason.Cancelled, book.counts, recs.orders)
            book.pend_kind[j] = TargetKind.NoTarget
        # the decision close: this bar's own under same_close, else the last one marked
        ref = close[j] if decision_bar == bar and np.isfinite(close[j]) else book.last_price[j]
        if book.qty[j] != 0.0 or value[j] == 0.0 or not np.isfinite(ref):
            continue  # not an entry (or no close to set a level from): a market order
        side = 1.0 if value[j] > 0.0 else -1.0
        toward = -side if params.entry_type == EntryType.Limit else side
        book.pend_kind[j] = kind[j]
        book.pend_value[j] = value[j]
        book.pend_level[j] = ref * (1.0 + toward * params.entry_offset)
        book.pend_decision[j] = decision_bar
        kind[j] = TargetKind.NoTarget


@njit(cache=True)
def fill_entries_nb(bar, fill_price, open_, high, low, close, volume, book, params, recs):
    """Fill the resting entries whose level this bar reaches (a gap through it fills at the
    open), sized on the equity at that moment; expire those whose last bar this was."""
    book = borrow_nb(book)
    recs = borrow_nb(recs)
    n = book.qty.shape[0]
    for j in range(n):
        if book.pend_kind[j] == TargetKind.NoTarget or bar <= book.pend_decision[j]:
            continue
        side = 1.0 if book.pend_value[j] > 0.0 else -1.0
        level = book.pend_level[j]
        price = np.nan
        if np.isfinite(close[j]):
            o, h, lo = _bar_range_nb(open_[j], high[j], low[j], close[j])
            if params.entry_type == EntryType.Limit:  # buy at or below / sell at or above
                if side * (o - level) <= 0.0:
                    price = o
                elif (lo <= level) if side > 0 else (h >= level):
                    price = level
            else:  # stop entry: buy at or above / sell at or below
                if side * (o - level) >= 0.0:
                    price = o
                elif (h >= level) if side > 0 else (lo <= level):
                    price = level
        if np.isfinite(price):
            # other positions at their last close, or this bar's price where none yet
            prices = np.where(np.isfinite(book.last_price), book.last_price, fill_price)
            prices[j] = price
            equity, gross, net = _book_exposure_nb(prices, book)
            tq = _target_qty_nb(book.pend_kind[j], book.pend_value[j], equity, price,
                                params.fractional)
            book.pend_kind[j] = TargetKind.NoTarget
            n_fills = book.counts[1]
            fill_one_nb(j, book.pend_decision[j], bar, price, volume[j], tq, 1.0, equity,
                        gross, net, book, params, recs, True)
            if book.counts[1] > n_fills:
                recs.fills[n_fills].trigger = (Trigger.LimitEntry
                                               if params.entry_type == EntryType.Limit
                                               else Trigger.StopEntry)
        elif bar >= book.pend_decision[j] + params.entry_tif_bars:
            new_order_nb(book.pend_decision[j], bar, j, int(side), np.nan, Reason.Expired,
                         book.counts, recs.orders)
            book.pend_kind[j] = TargetKind.NoTarget


@njit(cache=True)
def delist_nb(bar, close, book, recs):
    """Settle every position whose asset leaves the universe at this bar's close: at
    ``close * delist_factor`` (the last close plus the delisting return), without costs
    (a payout, not a trade). The asset has no bar afterwards, so nothing is valued stale."""
    book = borrow_nb(book)
    recs = borrow_nb(recs)
    for j in range(book.qty.shape[0]):
        q0 = book.qty[j]
        if book.delist_bar[j] != bar or q0 == 0.0:
            continue
        ref = close[j] if np.isfinite(close[j]) else book.last_price[j]
        price = ref * book.delist_factor[j]
        side = -1 if q0 > 0.0 else 1
        k = new_order_nb(bar, bar, j, side, abs(q0), Reason.NoReason, book.counts, recs.orders)
        recs.orders[k].filled_qty = abs(q0)
        recs.orders[k].status = OrderStatus.Filled
        book.cash[0] += q0 * price
        book.qty[j] = 0.0
        slots = TradeSlots(book.tr_side, book.tr_entry_bar, book.tr_entry_value,
                           book.tr_entry_qty, book.tr_exit_value, book.tr_exit_qty,
                           book.tr_max_qty, book.tr_fees)
        track_fill_nb(j, bar, q0, 0.0, -q0, price, 0.0, slots, book.counts, recs.trades)
        f = recs.fills[book.counts[1]]
        f.order_id = k
        f.bar = bar
        f.asset = j
        f.qty = -q0
        f.price = price
        f.ref_price = ref
        f.commission = 0.0
        f.slippage_cost = 0.0
        f.trigger = Trigger.Delisting
        f.ambiguous = 0
        book.counts[1] += 1
        recs.traded[bar] += abs(q0) * price
        book.stop_entry[j] = np.nan
        book.pend_kind[j] = TargetKind.NoTarget


@njit(cache=True)
def _has_instruction_nb(kind):
    """True when some asset has an instruction this bar."""
    for j in range(kind.shape[0]):
        if kind[j] != TargetKind.NoTarget:
            return True
    return False


@njit(cache=True, inline="always")
def step_nb(bar, decision_bar, fill_price, open_, high, low, close, volume, kind, value, book,
            params, recs):
    """Advance the book by one bar: stop exits (when stops are set), the pending
    instructions at ``fill_price``, resting entries, delistings, then mark at the close. ``open_``, ``high``, ``low``,
    ``close`` and ``volume`` are this bar's rows."""
    if params.use_stops:
        stop_exits_nb(bar, decision_bar, open_, high, low, close, volume, kind, value, book,
                      params, recs)
    if params.entry_type != EntryType.Market:
        defer_entries_nb(bar, decision_bar, kind, value, close, book, params, recs)
    if _has_instruction_nb(kind):
        execute_nb(bar, decision_bar, fill_price, volume, kind, value, book, params, recs)
    if params.entry_type != EntryType.Market:
        fill_entries_nb(bar, fill_price, open_, high, low, close, volume, book, params, recs)
    if params.use_delisting:
        delist_nb(bar, close, book, recs)
    mark_nb(bar, close, book, params, recs)
    if params.use_stops and params.sl_trail:
        trail_stops_nb(bar, open_, high, low, close, book)


@njit(cache=True)
def close_open_trades_nb(bar, book, recs):
    """Record every still-open position as an open trade marked at the last price."""
    book = borrow_nb(book)
    recs = borrow_nb(recs)
    n = book.qty.shape[0]
    slots = TradeSlots(book.tr_side, book.tr_entry_bar, book.tr_entry_value, book.tr_entry_qty,
                       book.tr_exit_value, book.tr_exit_qty, book.tr_max_qty, book.tr_fees)
    for j in range(n):
        if book.tr_side[j] != 0 and book.qty[j] != 0.0:
            write_trade_nb(j, bar, book.last_price[j], True, slots, book.counts, recs.trades)
