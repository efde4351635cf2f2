"""The reference engine's whole-book factor (README "Limits: limit_policy: scale").

Written from the README, not from ``engine/kernels``: the book after all of the bar's
fills is written out as functions of the factor ``s`` -- cash, the value of every
position and the equity ``E`` after the bar's costs -- each of the form ``a + b * s``;
every limit then reads ``lhs(s) <= rhs(s)``, i.e. ``(lhs.b - rhs.b) * s <= rhs.a - lhs.a``,
and ``s`` is the largest value in [0, 1] that meets them all.
"""

from __future__ import annotations

from dataclasses import dataclass

ONE_TOL = 1e-9  # README: s within this of 1 is 1


@dataclass(frozen=True)
class Linear:
    """``a + b * s``."""

    a: float
    b: float

    def __add__(self, other: Linear) -> Linear:
        return Linear(self.a + other.a, self.b + other.b)

    def times(self, k: float) -> Linear:
        return Linear(self.a * k, self.b * k)


@dataclass(frozen=True)
class PlannedOrder:
    side: int
    held: float  # signed quantity before the bar's fills
    reducing: float  # shares of the (volume-capped) order that move towards flat
    opening: float  # shares beyond that: the part the factor scales
    price: float  # reference price


def _upper_bound(lhs: Linear, rhs: Linear) -> float:
    """The largest ``s`` with ``lhs(s) <= rhs(s)`` when the gap grows with ``s``; a
    constraint whose gap does not grow with ``s`` puts no upper bound on it."""
    slope = lhs.b - rhs.b
    if slope <= 0.0:
        return float("inf")
    return (rhs.a - lhs.a) / slope


def book_factor(orders: list[PlannedOrder], cash: float, others: list[float], *,
                impact_rate: float, commission_rate: float, commission_fixed: float,
                max_gross: float, max_net: float) -> float:
    """``others``: the values of the positions without an order this bar."""
    cash_after = Linear(cash, 0.0)
    net = Linear(sum(others), 0.0)
    gross = Linear(sum(abs(v) for v in others), 0.0)
    for o in orders:
        traded = Linear(o.reducing, o.opening)  # shares, as a function of s
        fill_price = o.price * (1 + o.side * impact_rate)
        cash_after = cash_after + traded.times(-o.side * fill_price)
        cash_after = cash_after + traded.times(-commission_rate * fill_price)
        cash_after = cash_after + Linear(-commission_fixed, 0.0)  # counted in full
        qty_after = Linear(o.held, 0.0) + traded.times(o.side)
        net = net + qty_after.times(o.price)
        # after the reducing part the position is flat or on the order's side, so its
        # size grows linearly with the opening part
        base = abs(o.held + o.side * o.reducing)
        gross = gross + Linear(base * o.price, o.opening * o.price)
    equity = cash_after + net
    floor = max(max_net - 1.0, 0.0)
    bounds = [
        _upper_bound(gross, equity.times(max_gross)),
        _upper_bound(net, equity.times(max_net)),
        _upper_bound(net.times(-1.0), equity.times(max_net)),
        _upper_bound(equity.times(-floor), cash_after),  # cash >= -floor * E
    ]
    s = min(1.0, max(0.0, min(bounds)))
    return 1.0 if s >= 1.0 - ONE_TOL else s
