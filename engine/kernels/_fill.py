"""The helpers of one fill: order and fill records, round-trip bookkeeping, stops armed.

Split from ``step.py``; private to the kernels package. Each helper takes only the
arrays it writes -- the order records and their count, the trade slots, the stop
arrays -- not the whole Book and Records (32 arrays): numba binds every array of an
inlined helper's arguments anew on each call (see engine.kernels.views).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from engine.kernels.enums import OrderStatus, Reason, Trigger

EPS = 1e-12


class TradeSlots(NamedTuple):
    """The round trip in progress per asset: the Book's ``tr_*`` arrays (built where used,
    ``TradeSlots(book.tr_side, ...)``: a helper taking the Book would bind all of it)."""

    side: np.ndarray
    entry_bar: np.ndarray
    entry_value: np.ndarray
    entry_qty: np.ndarray
    exit_value: np.ndarray
    exit_qty: np.ndarray
    max_qty: np.ndarray
    fees: np.ndarray


@njit(cache=True, inline="always")
def new_order_nb(decision_bar, bar, j, side, requested, reason, counts, orders):
    """Append an order record (status rejected until a fill says otherwise)."""
    k = counts[0]
    if k >= orders.shape[0]:
        raise IndexError("order records full: more orders than instructions")
    o = orders[k]
    o.order_id = k
    o.bar = decision_bar
    o.fill_bar = bar
    o.asset = j
    o.side = side
    o.requested_qty = requested
    o.filled_qty = 0.0
    o.status = OrderStatus.Rejected
    o.reason = reason
    counts[0] = k + 1
    return k


@njit(cache=True, inline="always")
def write_trade_nb(j, bar, exit_price_override, is_open, slots, counts, trades):
    """Write the round trip held in the trade slots for asset ``j``."""
    k = counts[2]
    tr = trades[k]
    side = slots.side[j]
    entry_price = slots.entry_value[j] / slots.entry_qty[j]
    if slots.exit_qty[j] > 0:
        exit_price = slots.exit_value[j] / slots.exit_qty[j]
    else:
        exit_price = exit_price_override
    open_qty = slots.entry_qty[j] - slots.exit_qty[j]
    realised = side * (slots.exit_value[j] - slots.exit_qty[j] * entry_price)
    unrealised = 0.0
    if is_open and open_qty > 0 and np.isfinite(exit_price_override):
        unrealised = side * open_qty * (exit_price_override - entry_price)
        # average exit price over realised and marked quantities
        exit_price = (slots.exit_value[j] + open_qty * exit_price_override) / slots.entry_qty[j]
    pnl = realised + unrealised - slots.fees[j]
    tr.asset = j
    tr.side = side
    tr.entry_bar = slots.entry_bar[j]
    tr.exit_bar = bar
    tr.entry_price = entry_price
    tr.exit_price = exit_price
    tr.qty = slots.max_qty[j]
    tr.pnl = pnl
    tr.ret = pnl / slots.entry_value[j] if slots.entry_value[j] > 0 else np.nan
    tr.fees = slots.fees[j]
    tr.is_open = 1 if is_open else 0
    counts[2] = k + 1


@njit(cache=True, inline="always")
def open_trade_nb(j, bar, side, abs_qty, price, fee, slots):
    slots.side[j] = side
    slots.entry_bar[j] = bar
    slots.entry_value[j] = abs_qty * price
    slots.entry_qty[j] = abs_qty
    slots.exit_value[j] = 0.0
    slots.exit_qty[j] = 0.0
    slots.max_qty[j] = abs_qty
    slots.fees[j] = fee


@njit(cache=True, inline="always")
def track_fill_nb(j, bar, q0, q1, x, price, commission, slots, counts, trades):
    """Update round-trip bookkeeping for a fill of signed ``x`` at ``price`` (``q0`` the
    position before, ``q1`` after)."""
    ax = abs(x)
    if q0 == 0.0:
        open_trade_nb(j, bar, 1 if x > 0 else -1, ax, price, commission, slots)
        return
    if (q0 > 0) == (x > 0):
        slots.entry_value[j] += ax * price
        slots.entry_qty[j] += ax
        slots.fees[j] += commission
        if abs(q1) > slots.max_qty[j]:
            slots.max_qty[j] = abs(q1)
        return
    closing = min(ax, abs(q0))
    slots.exit_value[j] += closing * price
    slots.exit_qty[j] += closing
    slots.fees[j] += commission * closing / ax
    if q1 == 0.0 or (q1 > 0) != (q0 > 0):
        write_trade_nb(j, bar, np.nan, False, slots, counts, trades)
        slots.side[j] = 0
        if q1 != 0.0:
            open_trade_nb(j, bar, 1 if q1 > 0 else -1, abs(q1), price,
                          commission * (ax - closing) / ax, slots)


@njit(cache=True)
def impact_nb(abs_qty, volume, params):
    """Price impact as a fraction of the reference price: half-spread + slippage, plus
    ``sqrt_impact_rate * sqrt(qty / bar volume)`` under ``impact: sqrt`` (none where the
    bar has no volume)."""
    rate = params.impact_rate
    if params.sqrt_impact_rate > 0.0 and np.isfinite(volume) and volume > 0.0:
        rate += params.sqrt_impact_rate * np.sqrt(abs_qty / volume)
    return rate


@njit(cache=True, inline="always")
def affordable_qty_nb(lo, hi, ref_price, volume, budget, params):
    """The largest buy in [lo, hi] whose cost, square-root impact and commission included,
    fits ``budget`` (``lo`` fits; bisection: the cost rises with the quantity)."""
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        cost = mid * ref_price * (1.0 + impact_nb(mid, volume, params)) * (
            1.0 + params.commission_rate)
        if cost <= budget:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always")
def fill_one_nb(j, decision_bar, bar, ref_price, volume, target_qty, scale, equity_now,
                gross_now, net_now, book, params, recs, check_limits):
    """Fill one order moving asset j towards ``target_qty``; returns (cost, gross, net).

    ``scale`` (< 1 only under limit_policy scale) multiplies the part of the order that
    opens or extends exposure. ``check_limits``: cut that part at the leverage limits
    (limit_policy clip, and any order that fills alone: stop exits, resting entries).
    """
    q0 = book.qty[j]
    delta = target_qty - q0
    side = 1 if delta > 0 else -1
    requested = abs(delta)
    reason = Reason.NoReason
    q_new = target_qty

    # 1. volume participation cap
    cap = params.participation_cap
    if np.isfinite(cap) and np.isfinite(volume):
        max_abs = cap * volume
        if requested > max_abs:
            q_new = q0 + side * max_abs
            reason = Reason.VolumeCap

    # 1b. the whole-book scale factor, on the opening part only
    scaled = False
    if scale < 1.0:
        base, opening = split_order_nb(q0, q_new, target_qty)
        if opening != 0.0:
            q_new = base + scale * opening
            scaled = True

    # 2. leverage limits: only the part of an order that opens or extends exposure is
    # limited. Under limit_policy scale the factor has already fitted the whole book after
    # the rebalance; a per-order check here would see states between two fills of one bar
    # (a flip not yet filled) and cut whichever order comes first again.
    p = ref_price
    gross_other = gross_now - abs(q0) * p
    net_other = net_now - q0 * p
    if check_limits:
        hi = min(params.max_gross * equity_now - gross_other,
                 params.max_net * equity_now - net_other) / p
        lo = max(-(params.max_gross * equity_now - gross_other),
                 -params.max_net * equity_now - net_other) / p
        # a limit binds only when breached by more than rounding noise (pad); a cut order
        # then stops at the limit itself, and room smaller than the pad counts as none
        pad_hi = 1e-9 * abs(hi) + EPS
        pad_lo = 1e-9 * abs(lo) + EPS
        if side > 0:
            safe = q0 if q0 >= 0 else min(q_new, 0.0)
            if q_new > hi + pad_hi:
                clipped = hi if hi > safe + pad_hi else safe
                if clipped < q_new:
                    q_new = clipped
                    reason = Reason.LeverageLimit
        else:
            safe = q0 if q0 <= 0 else max(q_new, 0.0)
            if q_new < lo - pad_lo:
                clipped = lo if lo < safe - pad_lo else safe
                if clipped > q_new:
                    q_new = clipped
                    reason = Reason.LeverageLimit

    x = q_new - q0
    fill_price = ref_price * (1.0 + side * impact_nb(abs(x), volume, params))
    # 3. cash: buys may not take cash below the floor the net limit implies
    if side > 0 and x > 0:
        floor = -max(0.0, params.max_net - 1.0) * equity_now
        need = x * fill_price * (1.0 + params.commission_rate) + params.commission_fixed
        available = book.cash[0] - floor
        if need > available * (1.0 + 1e-12) + EPS:
            x = (available - params.commission_fixed) / (fill_price * (1.0 + params.commission_rate))
            if x < 0.0:
                x = 0.0
            if params.sqrt_impact_rate > 0.0 and x > 0.0:
                x = affordable_qty_nb(x, q_new - q0, ref_price, volume,
                                       available - params.commission_fixed, params)
            reason = Reason.InsufficientCash
    if not params.fractional:
        x = np.floor(abs(x) + 1e-9) * (1.0 if x > 0 else -1.0)
    fill_price = ref_price * (1.0 + side * impact_nb(abs(x), volume, params))
    if scaled and reason == Reason.NoReason:
        reason = Reason.Scaled

    k = new_order_nb(decision_bar, bar, j, side, requested, reason, book.counts, recs.orders)
    o = recs.orders[k]
    if x == 0.0 or side * x <= 0.0:
        if reason == Reason.NoReason:
            o.reason = Reason.InsufficientCash
        return 0.0, gross_now, net_now

    ax = abs(x)
    o.filled_qty = ax
    o.status = OrderStatus.Filled if ax >= requested * (1.0 - 1e-9) else OrderStatus.Partial
    commission = ax * fill_price * params.commission_rate + params.commission_fixed
    slip = ax * abs(fill_price - ref_price)
    book.cash[0] -= x * fill_price + commission
    q1 = q0 + x
    if abs(q1) <= 1e-12 * abs(q0):
        q1 = 0.0
    book.qty[j] = q1
    slots = TradeSlots(book.tr_side, book.tr_entry_bar, book.tr_entry_value, book.tr_entry_qty,
                       book.tr_exit_value, book.tr_exit_qty, book.tr_max_qty, book.tr_fees)
    track_fill_nb(j, bar, q0, q1, x, fill_price, commission, slots, book.counts, recs.trades)

    f = recs.fills[book.counts[1]]
    f.order_id = k
    f.bar = bar
    f.asset = j
    f.qty = x
    f.price = fill_price
    f.ref_price = ref_price
    f.commission = commission
    f.slippage_cost = slip
    f.trigger = Trigger.Market
    f.ambiguous = 0
    book.counts[1] += 1
    if params.use_stops:
        arm_stops_nb(j, bar, q0, q1, ref_price, book.stop_entry, book.stop_peak,
                     book.stop_from_bar)
    recs.traded[bar] += ax * fill_price
    recs.fees[bar] += commission + slip
    gross_new = gross_other + abs(q1) * p
    net_new = net_other + q1 * p
    return commission + slip, gross_new, net_new


@njit(cache=True)
def reduces_nb(q, tq):
    """True when moving from ``q`` to ``tq`` only reduces the position (a sale of a long, a
    cover of a short, possibly to flat)."""
    return (q > 0.0 and 0.0 <= tq < q) or (q < 0.0 and q < tq <= 0.0)


@njit(cache=True)
def split_order_nb(q0, q_want, target_qty):
    """(base, opening): an order from ``q0`` to ``q_want`` ends at ``base + opening``.

    ``base`` is where the order's reducing part leaves the position (``q0`` for an
    extension, 0 for a flip or an order from flat, ``q_want`` itself for a pure
    reduction); ``opening`` is the part that opens or extends exposure. ``target_qty``
    (before any volume cap) decides whether the order is a pure reduction.
    """
    if reduces_nb(q0, target_qty):
        return q_want, 0.0
    if q0 == 0.0:
        return 0.0, q_want
    if (q_want > 0.0) == (q0 > 0.0) and q_want != 0.0:
        if abs(q_want) >= abs(q0):
            return q0, q_want - q0  # extension
        return q_want, 0.0  # a flip cut by the volume cap to a reduction
    return 0.0, q_want  # flip (or close to flat)


@njit(cache=True, inline="always")
def arm_stops_nb(j, bar, q0, q1, ref_price, stop_entry, stop_peak, stop_from_bar):
    """Stops follow the position (vectorbt's rule): a new or flipped position, or an added
    quantity, sets them from this fill's reference price, checked from the next bar; a
    reduction keeps them; a closed position clears them."""
    if q1 == 0.0:
        stop_entry[j] = np.nan
        stop_peak[j] = np.nan
    elif q0 == 0.0 or (q0 > 0.0) != (q1 > 0.0) or abs(q1) > abs(q0):
        stop_entry[j] = ref_price
        stop_peak[j] = ref_price
        stop_from_bar[j] = bar + 1
