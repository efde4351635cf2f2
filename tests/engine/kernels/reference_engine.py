"""An independent reference engine: a plain-Python, object-per-order event simulator.

Written from the README's "Engine semantics" section, not from ``engine/kernels``: every
order is an :class:`Order` object, every fill a :class:`Fill`, every round trip a
:class:`Trade`; exposures and equity are recomputed from the positions whenever they are
needed instead of being carried along, and an order's size is the smallest of the sizes
each limit allows on its own (volume cap, leverage, cash) rather than a chain of clips.
It is slow on purpose and is meant for panels of a few bars and assets.

The rules it follows, as the README states them:

* a decision at the close of t fills at t+1 (open or close) or, for ``same_close``, at t;
* targets are sized on the equity before any of the bar's fills, valued at the bar's
  reference prices (last close for an asset without a bar);
* reductions run before orders that open, extend or flip; within each group orders run
  by ascending signed value ``(target - held) * reference price`` rounded to 4 decimals
  of currency, equal values in asset column order;
* the part of an order that reduces a position is never limited; the rest may not take
  gross exposure above ``max_gross * equity`` nor net exposure outside
  ``+-max_net * equity`` (equity after the costs of the bar's earlier fills);
* a buy may not take cash below ``-(max_net - 1) * equity`` (zero when max_net <= 1);
* an order cut by several limits to the same size reports the first of volume cap,
  leverage limit, insufficient cash; room within the tolerance of none is none;
* whole shares: targets round toward zero, cut orders round down to whole shares;
* borrow is charged on shorts at each close on their value at that close and attributed
  to the open trade; positive cash then earns interest (negative cash pays none);
* a fill's commission is split between the trade it closes and the trade it opens in
  proportion to quantity.

Under ``limit_policy="scale"`` the leverage rule above is replaced by one factor for the
whole bar (``_reference_scale``); stops, resting limit / stop entries
(``_reference_stops``) and the settlement of a position whose asset leaves (delisting, or
its data ending early) follow the README's sections of the same names. One bar runs:
stop exits (an instruction for a stopped asset lapses), resting entries cancelled by a
newer instruction and new ones placed, market orders, resting entries that the bar
reaches (then those whose last bar it was expire), delisting settlements, the close
(borrow, interest, marks), then the trailing stops' best prices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from tests.engine.kernels._reference_scale import PlannedOrder, book_factor
from tests.engine.kernels._reference_stops import (
    RestingEntry,
    StopState,
    entry_level,
    entry_touch,
    stop_hit,
    update_best,
)

# --- tolerances, declared once -------------------------------------------------------
NO_ORDER_TOL = 1e-12  # a target within this share (min 1 share) of the holding: no order
LIMIT_TOL = 1e-9  # a limit cuts an order only if breached by more than this x equity
WHOLE_SHARE_TOL = 1e-9  # a share count this far below a whole number rounds up to it
FILLED_TOL = 1e-9  # an order filled to within this share of its request is "filled"
SORT_DECIMALS = Decimal("0.0001")  # README: order values rounded to 4 decimals for sorting

REASONS = ("volume_cap", "leverage_limit", "insufficient_cash")  # tie order: first wins


@dataclass(frozen=True)
class Settings:
    fill: str  # next_open | next_close | same_close
    capital: float
    commission_rate: float
    commission_fixed: float
    impact_rate: float
    borrow_rate_per_bar: float
    cash_rate_per_bar: float
    participation_cap: float | None
    max_gross: float
    max_net: float
    fractional: bool
    limit_policy: str = "clip"  # clip | scale
    sl_stop: float | None = None
    tp_stop: float | None = None
    sl_trail: bool = False
    stop_first: bool = True
    entry_order: str = "market"  # market | limit | stop
    entry_offset: float = 0.0
    entry_tif_bars: int = 1
    close_at_data_end: bool = False

    @property
    def stops_on(self) -> bool:
        return self.sl_stop is not None or self.tp_stop is not None

    @classmethod
    def from_costs(cls, costs, periods_per_year, *, fill, capital, max_gross=1.0, max_net=1.0,
                   fractional=True, **features):
        return cls(fill=fill, capital=capital,
                   commission_rate=costs.commission_bps / 10_000,
                   commission_fixed=costs.commission_fixed,
                   impact_rate=(costs.half_spread_bps + costs.slippage_bps) / 10_000,
                   borrow_rate_per_bar=costs.borrow_fee_bps / 10_000 / periods_per_year,
                   cash_rate_per_bar=costs.cash_rate / periods_per_year,
                   participation_cap=costs.participation_cap, max_gross=max_gross,
                   max_net=max_net, fractional=fractional, **features)


@dataclass
class Order:
    order_id: int
    decision_bar: int
    fill_bar: int
    asset: int
    side: int
    requested: float
    filled: float = 0.0
    status: str = "rejected"
    reason: str = ""
    kind: str = "market"  # market | stop | lapsed | entry | cancelled | expired | delisting


@dataclass
class Fill:
    order_id: int
    bar: int
    asset: int
    qty: float  # signed
    price: float
    ref_price: float
    commission: float
    slippage_cost: float
    trigger: str = "market"
    ambiguous: bool = False


@dataclass
class Trade:
    asset: int
    side: int
    entry_bar: int
    entry_qty: float = 0.0
    entry_value: float = 0.0
    exit_qty: float = 0.0
    exit_value: float = 0.0
    max_qty: float = 0.0
    fees: float = 0.0
    exit_bar: int = -1
    is_open: bool = True
    mark: float = math.nan  # last price an open trade is valued at

    @property
    def entry_price(self) -> float:
        return self.entry_value / self.entry_qty

    @property
    def open_qty(self) -> float:
        return self.entry_qty - self.exit_qty if self.is_open else 0.0

    @property
    def exit_price(self) -> float:
        if not self.is_open:
            return self.exit_value / self.exit_qty
        return (self.exit_value + self.open_qty * self.mark) / self.entry_qty

    @property
    def pnl(self) -> float:
        proceeds = self.exit_value + (self.open_qty * self.mark if self.is_open else 0.0)
        return self.side * (proceeds - self.entry_value) - self.fees

    @property
    def ret(self) -> float:
        return self.pnl / self.entry_value


@dataclass
class Position:
    qty: float = 0.0
    last_close: float = math.nan
    trade: Trade | None = None
    stop: StopState | None = None
    resting: RestingEntry | None = None


@dataclass
class BarRecord:
    equity: float
    cash: float
    gross: float
    net: float
    traded: float
    fees: float
    borrow: float
    positions: list[float]


@dataclass
class Outcome:
    bars: list[BarRecord] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    sequences: dict[int, list[int]] = field(default_factory=dict)  # bar -> market orders' assets


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def _sort_value(value: float) -> Decimal:
    return Decimal(value).quantize(SORT_DECIMALS, rounding=ROUND_HALF_EVEN)


def _envelope(a, b, pick):
    return [[pick(x, y) if _finite(x) and _finite(y) else math.nan
             for x, y in zip(ra, rb, strict=True)] for ra, rb in zip(a, b, strict=True)]


class ReferenceEngine:
    """One run over ``open_``/``close``/``volume`` (lists of rows, NaN = no bar).

    ``high``/``low`` default to the larger/smaller of open and close; ``delisting_factor``
    (per asset, ``1 + delisting_return``; default 1) applies when ``close_at_data_end``
    settles a position at its asset's last bar."""

    def __init__(self, open_, close, volume, settings: Settings, *, high=None, low=None,
                 delisting_factor=None):
        self.open, self.close, self.volume, self.s = open_, close, volume, settings
        self.n_bars, self.n = len(close), len(close[0])
        self.high = high if high is not None else _envelope(open_, close, max)
        self.low = low if low is not None else _envelope(open_, close, min)
        self.delisting_factor = delisting_factor or [1.0] * self.n
        self.last_bar = [max((t for t in range(self.n_bars) if _finite(close[t][j])),
                             default=-1) for j in range(self.n)]
        self.cash = settings.capital
        self.pos = [Position() for _ in range(self.n)]
        self.out = Outcome()
        self._bookings = {"traded": 0.0, "fees": 0.0}

    # --- valuation ---------------------------------------------------------------------
    def _value_price(self, j, ref):
        return ref[j] if _finite(ref[j]) else self.pos[j].last_close

    def _equity(self, ref) -> float:
        held = sum(p.qty * self._value_price(j, ref) for j, p in enumerate(self.pos) if p.qty)
        return self.cash + held

    def _exposure(self, ref, skip) -> tuple[float, float]:
        values = [p.qty * self._value_price(j, ref) for j, p in enumerate(self.pos)
                  if j != skip and p.qty]
        return sum(abs(v) for v in values), sum(values)

    # --- one bar -----------------------------------------------------------------------
    def step(self, t, decision, ref, instructions):
        """``instructions[j]`` is None or (kind, value); kind weight | value | qty."""
        instructions = list(instructions)
        if self.s.stops_on:
            self._stop_exits(t, decision, instructions)
        if self.s.entry_order != "market":
            self._place_entries(t, decision, instructions)
        self.execute(t, decision, ref, instructions)
        if self.s.entry_order != "market":
            self._fill_entries(t, ref)
        if self.s.close_at_data_end:
            self._settle_leavers(t)
        self.mark(t)
        if self.s.stops_on and self.s.sl_trail:
            for j, pos in enumerate(self.pos):
                if pos.qty and pos.stop is not None and t >= pos.stop.from_bar:
                    update_best(1 if pos.qty > 0 else -1, pos.stop, self.high[t][j],
                                self.low[t][j])

    def _bar_ohlc(self, t, j):
        return self.open[t][j], self.high[t][j], self.low[t][j], self.close[t][j]

    # --- stops -------------------------------------------------------------------------
    def _stop_exits(self, t, decision, instructions):
        for j, pos in enumerate(self.pos):
            bar_open, bar_high, bar_low, bar_close = self._bar_ohlc(t, j)
            if not pos.qty or pos.stop is None or t < pos.stop.from_bar or not _finite(
                    bar_close):
                continue
            side = 1 if pos.qty > 0 else -1
            hit = stop_hit(side, pos.stop, bar_open, bar_high, bar_low, self.s.sl_stop,
                           self.s.tp_stop, self.s.sl_trail, self.s.stop_first)
            if hit is None:
                continue
            want = abs(pos.qty)
            size, reason = want, ""
            cap = self._volume_cap(t, j)
            if cap is not None and want > cap:
                size, reason = cap, "volume_cap"
            if side < 0:  # a short's cover is a buy: the cash rule applies
                equity = self._equity(self.open[t])
                cash_cap = self._cash_cap(hit.price, equity)
                if size > cash_cap + LIMIT_TOL * abs(equity) / hit.price:
                    size, reason = cash_cap, "insufficient_cash"
            size = self._whole(size)
            if size <= 0.0:
                self._new_order(t, t, j, -side, want, 0.0, reason, kind="stop")
            else:
                self._book_fill(t, t, j, -side, size, want, hit.price, reason, kind="stop",
                                trigger=hit.trigger, ambiguous=hit.ambiguous)
            if instructions[j] is not None:
                self._lapse(t, decision, j, instructions[j])
                instructions[j] = None

    def _lapse(self, t, decision, j, instr):
        self._new_order(decision, t, j, 1 if instr[1] > 0 else -1, math.nan, 0.0, "stopped",
                        kind="lapsed")

    # --- resting entries ---------------------------------------------------------------
    def _place_entries(self, t, decision, instructions):
        for j, instr in enumerate(instructions):
            if instr is None:
                continue
            pos = self.pos[j]
            if pos.resting is not None:
                old = pos.resting
                self._new_order(old.decision_bar, t, j, old.side, math.nan, 0.0, "cancelled",
                                kind="cancelled")
                pos.resting = None
            base = self._decision_close(decision, j)
            if pos.qty == 0.0 and instr[1] != 0.0 and _finite(base):
                side = 1 if instr[1] > 0 else -1
                level = entry_level(self.s.entry_order, side, base, self.s.entry_offset)
                pos.resting = RestingEntry(decision, decision + self.s.entry_tif_bars,
                                           instr[0], instr[1], level)
                instructions[j] = None

    def _decision_close(self, decision, j):
        """The decision bar's close, or the last close before it (none: NaN)."""
        return next((self.close[b][j] for b in range(decision, -1, -1)
                     if _finite(self.close[b][j])), math.nan)

    def _fill_entries(self, t, ref):
        for j, pos in enumerate(self.pos):
            entry = pos.resting
            if entry is None or t <= entry.decision_bar:
                continue
            bar_open, bar_high, bar_low, bar_close = self._bar_ohlc(t, j)
            price = None
            if _finite(bar_close):
                price = entry_touch(self.s.entry_order, entry.side, entry.level, bar_open,
                                    bar_high, bar_low)
            if price is not None:
                pos.resting = None
                # this asset at its fill price, the others at their last close (one
                # bought on this bar before any close of its own: at this bar's reference)
                at = [price if k == j else p.last_close if _finite(p.last_close) else ref[k]
                      for k, p in enumerate(self.pos)]
                target = self._target(entry.kind, entry.value, j, at, self._equity(at))
                if target == 0.0:  # whole shares: the entry sized to none at its fill
                    self._new_order(entry.decision_bar, t, j, -1, 0.0, 0.0,
                                    "insufficient_cash", kind="entry")
                    continue
                # it fills alone, after the bar's book: the per-order (clip) rule, whatever
                # the limit policy
                self._fill_order(t, entry.decision_bar, j, target, at, kind="entry",
                                 trigger=f"{self.s.entry_order}_entry")
            elif t >= entry.last_bar:
                pos.resting = None
                self._new_order(entry.decision_bar, t, j, entry.side, math.nan, 0.0,
                                "expired", kind="expired")

    # --- delisting ---------------------------------------------------------------------
    def _settle_leavers(self, t):
        for j, pos in enumerate(self.pos):
            if pos.qty and self.last_bar[j] == t < self.n_bars - 1:
                price = self.close[t][j] * self.delisting_factor[j]
                side = -1 if pos.qty > 0 else 1
                self._book_fill(t, t, j, side, abs(pos.qty), abs(pos.qty), price, "",
                                kind="delisting", trigger="delisting", costs=False,
                                ref_price=self.close[t][j])

    # --- market orders -----------------------------------------------------------------
    def _target(self, kind, value, j, ref, equity):
        if kind == "qty":
            target = value
        else:
            price = self._value_price(j, ref)
            if not _finite(price):
                return 0.0 if value == 0 else None  # size unknown without any price
            target = value * equity / price if kind == "weight" else value / price
        if not self.s.fractional:
            target = float(math.trunc(target))
        return target

    def execute(self, t, decision, ref, instructions):
        if all(i is None for i in instructions):
            return
        equity = self._equity(ref)
        wanted = []
        for j, instr in enumerate(instructions):
            if instr is None:
                continue
            held = self.pos[j].qty
            target = self._target(instr[0], instr[1], j, ref, equity)
            if target is not None and abs(target - held) <= NO_ORDER_TOL * max(abs(target), 1.0):
                continue
            if not _finite(ref[j]):
                if target is None:
                    side, requested = (1 if instr[1] > 0 else -1), math.nan
                else:
                    side, requested = (1 if target > held else -1), abs(target - held)
                self._new_order(decision, t, j, side, requested, 0.0, "not_tradable")
                continue
            wanted.append((j, target))
        reductions = [(j, tq) for j, tq in wanted if self._reduces(self.pos[j].qty, tq)]
        others = [(j, tq) for j, tq in wanted if not self._reduces(self.pos[j].qty, tq)]
        sequence = []
        for group in (reductions, others):
            sequence += sorted(group, key=lambda o: (_sort_value((o[1] - self.pos[o[0]].qty)
                                                                 * ref[o[0]]), o[0]))
        self.out.sequences[t] = [j for j, _ in sequence]
        if self.s.limit_policy == "scale":
            factor = self._factor(t, sequence, ref)
            for j, target in sequence:
                self._fill_scaled(t, decision, j, target, ref, factor)
        else:
            for j, target in sequence:
                self._fill_order(t, decision, j, target, ref)

    @staticmethod
    def _reduces(held, target) -> bool:
        if held > 0:
            return 0 <= target < held
        if held < 0:
            return held < target <= 0
        return False

    def _new_order(self, decision, t, j, side, requested, filled, reason, status="rejected",
                   kind="market"):
        order = Order(len(self.out.orders), decision, t, j, side, requested, filled, status,
                      reason, kind)
        self.out.orders.append(order)
        return order

    def _volume_cap(self, t, j):
        vol = self.volume[t][j]
        if self.s.participation_cap is not None and _finite(vol):
            return self.s.participation_cap * vol
        return None

    def _whole(self, size):
        return size if self.s.fractional else float(math.floor(size + WHOLE_SHARE_TOL))

    def _cash_cap(self, price, equity):
        """Shares a buy at reference ``price`` may take before cash hits its floor."""
        fill_price = price * (1 + self.s.impact_rate)
        cash_floor = -max(self.s.max_net - 1.0, 0.0) * equity
        spendable = self.cash - cash_floor - self.s.commission_fixed
        return max(spendable / (fill_price * (1 + self.s.commission_rate)), 0.0)

    def _caps(self, j, side, held, ref, t):
        """Each limit's own allowance for this order, in shares (None: no such limit)."""
        p = ref[j]
        equity = self._equity(ref)
        gross_other, net_other = self._exposure(ref, j)
        caps = {}
        cap = self._volume_cap(t, j)
        if cap is not None:
            caps["volume_cap"] = cap
        # leverage: reducing to flat is free; the new exposure beyond flat has to fit
        if side > 0:
            room = min(self.s.max_gross * equity - gross_other,
                       self.s.max_net * equity - net_other) / p
        else:
            room = min(self.s.max_gross * equity - gross_other,
                       self.s.max_net * equity + net_other) / p
        reducing = max(-side * held, 0.0)  # shares of the order that move towards flat
        existing = max(side * held, 0.0)  # a position on the order's side already held
        caps["leverage_limit"] = reducing + max(room - existing, 0.0)
        if side > 0:
            caps["insufficient_cash"] = self._cash_cap(p, equity)
        return caps, equity

    def _fill_order(self, t, decision, j, target, ref, kind="market", trigger="market"):
        """Clip rule: the smallest of each limit's own allowance."""
        held = self.pos[j].qty
        side = 1 if target > held else -1
        requested = want = abs(target - held)
        caps, equity = self._caps(j, side, held, ref, t)
        margin = LIMIT_TOL * abs(equity) / ref[j]
        size = want
        for name in REASONS:
            cap = caps.get(name)
            if cap is None:
                continue
            limit = cap if name == "volume_cap" else cap + margin
            if want > limit:
                size = min(size, cap)
        if size <= margin:
            size = 0.0  # room within the tolerance of none is none
        reason = ""
        if size < want:
            for name in reversed(REASONS):  # the first limit that allows only ``size`` wins
                cap = caps.get(name)
                if cap is not None and cap <= size + margin and want > (
                        cap if name == "volume_cap" else cap + margin):
                    reason = name
        self._place(t, decision, j, side, self._whole(size), requested, target, ref[j], reason,
                    kind, trigger)

    def _place(self, t, decision, j, side, size, requested, target, price, reason, kind,
               trigger):
        if size <= 0.0:
            if not reason:
                raise AssertionError(f"bar {t} asset {j}: an order filled nothing without "
                                     "any limit binding")
            self._new_order(decision, t, j, side, requested, 0.0, reason, kind=kind)
            return
        self._book_fill(t, decision, j, side, size, requested, price, reason, kind=kind,
                        trigger=trigger, target=target)

    def _planned(self, t, j, target, ref):
        held = self.pos[j].qty
        side = 1 if target > held else -1
        want = abs(target - held)
        cap = self._volume_cap(t, j)
        capped = min(want, cap) if cap is not None else want
        reducing = min(capped, max(-side * held, 0.0))
        return PlannedOrder(side, held, reducing, capped - reducing, ref[j])

    def _factor(self, t, sequence, ref):
        planned = [self._planned(t, j, target, ref) for j, target in sequence]
        if not any(o.opening > 0.0 for o in planned):
            return 1.0
        ordered = {j for j, _ in sequence}
        others = [p.qty * self._value_price(j, ref) for j, p in enumerate(self.pos)
                  if j not in ordered and p.qty]
        return book_factor(planned, self.cash, others, impact_rate=self.s.impact_rate,
                           commission_rate=self.s.commission_rate,
                           commission_fixed=self.s.commission_fixed,
                           max_gross=self.s.max_gross, max_net=self.s.max_net)

    def _fill_scaled(self, t, decision, j, target, ref, factor):
        """Scale rule: the volume cap, then the factor on the opening part, then cash."""
        plan = self._planned(t, j, target, ref)
        want = abs(target - plan.held)
        size = plan.reducing + factor * plan.opening
        reason = ""
        if plan.reducing + plan.opening < want:
            reason = "volume_cap"
        elif size < want:
            reason = "scaled"
        if plan.side > 0:
            equity = self._equity(ref)
            cash_cap = self._cash_cap(ref[j], equity)
            if size > cash_cap + LIMIT_TOL * abs(equity) / ref[j]:
                size, reason = cash_cap, "insufficient_cash"
        self._place(t, decision, j, plan.side, self._whole(size), want, target, ref[j], reason,
                    "market", "market")

    # --- fills and trades --------------------------------------------------------------
    def _book_fill(self, t, decision, j, side, size, requested, price, reason, *, kind,
                   trigger="market", ambiguous=False, costs=True, target=None,
                   ref_price=None):
        status = "filled" if size >= requested * (1 - FILLED_TOL) else "partial"
        if status == "filled":
            reason = ""
        order = self._new_order(decision, t, j, side, requested, size, reason, status, kind)
        impact = self.s.impact_rate if costs else 0.0
        fill_price = price * (1 + side * impact)
        commission = (size * fill_price * self.s.commission_rate + self.s.commission_fixed
                      if costs else 0.0)
        slippage = size * price * impact
        held = self.pos[j].qty
        self.cash -= side * size * fill_price + commission
        new_qty = target if status == "filled" and target is not None else held + side * size
        if status == "filled" and kind in ("stop", "delisting"):
            new_qty = 0.0
        self.out.fills.append(Fill(order.order_id, t, j, side * size, fill_price,
                                   price if ref_price is None else ref_price, commission,
                                   slippage, trigger, ambiguous))
        self._bookings["traded"] += size * fill_price
        self._bookings["fees"] += commission + slippage
        self._book_trade(j, t, held, new_qty, side, size, fill_price, commission)
        self.pos[j].qty = new_qty
        self._arm_stops(j, t, held, new_qty, price)

    def _arm_stops(self, j, t, held, new_qty, price):
        pos = self.pos[j]
        if not self.s.stops_on:
            return
        if new_qty == 0.0:
            pos.stop = None
        elif held == 0.0 or (held > 0) != (new_qty > 0) or abs(new_qty) > abs(held):
            pos.stop = StopState(entry=price, from_bar=t + 1, best=price)

    def _book_trade(self, j, t, held, new_qty, side, size, price, commission):
        pos = self.pos[j]
        if held == 0.0 or (held > 0) == (side > 0):
            if pos.trade is None:
                pos.trade = Trade(asset=j, side=side, entry_bar=t)
            tr = pos.trade
            tr.entry_qty += size
            tr.entry_value += size * price
            tr.fees += commission
            tr.max_qty = max(tr.max_qty, abs(new_qty))
            return
        closing = min(size, abs(held))
        tr = pos.trade
        tr.exit_qty += closing
        tr.exit_value += closing * price
        tr.fees += commission * closing / size
        if new_qty == 0.0 or (new_qty > 0) != (held > 0):
            tr.exit_bar, tr.is_open = t, False
            self.out.trades.append(tr)
            pos.trade = None
            opening = size - closing
            if new_qty != 0.0:
                pos.trade = Trade(asset=j, side=side, entry_bar=t, entry_qty=opening,
                                  entry_value=opening * price, max_qty=opening,
                                  fees=commission * opening / size)

    # --- close of the bar --------------------------------------------------------------
    def mark(self, t):
        bookings, self._bookings = self._bookings, {"traded": 0.0, "fees": 0.0}
        borrow = 0.0
        for j, pos in enumerate(self.pos):
            if _finite(self.close[t][j]):
                pos.last_close = self.close[t][j]
            if pos.qty < 0:
                fee = abs(pos.qty) * pos.last_close * self.s.borrow_rate_per_bar
                borrow += fee
                pos.trade.fees += fee
        self.cash -= borrow
        if self.cash > 0:
            self.cash *= 1 + self.s.cash_rate_per_bar
        values = [p.qty * p.last_close if p.qty else 0.0 for p in self.pos]
        self.out.bars.append(BarRecord(
            equity=self.cash + sum(values), cash=self.cash, gross=sum(abs(v) for v in values),
            net=sum(values), traded=bookings["traded"], fees=bookings["fees"], borrow=borrow,
            positions=[p.qty for p in self.pos]))

    def finish(self):
        for pos in self.pos:
            if pos.trade is not None and pos.qty != 0.0:
                pos.trade.exit_bar = self.n_bars - 1
                pos.trade.mark = pos.last_close
                self.out.trades.append(pos.trade)
        return self.out

    # --- drivers -----------------------------------------------------------------------
    def _fill_ref(self, t):
        return self.open[t] if self.s.fill == "next_open" else self.close[t]

    def run_weights(self, weights):
        """``weights[t][j]``: target weight decided at the close of t (NaN: none)."""
        none = [None] * self.n
        for t in range(self.n_bars):
            decision = t if self.s.fill == "same_close" else t - 1
            row = none
            if decision >= 0:
                row = [None if math.isnan(w) else ("weight", w) for w in weights[decision]]
            self.step(t, decision, self._fill_ref(t) if decision >= 0 else self.close[t], row)
        return self.finish()

    def run_signals(self, long_entry, long_exit, short_entry, short_exit, size, size_kind):
        """Entry/exit flags decided at each close against the position then held."""
        pending = [None] * self.n
        flags = (long_entry, long_exit, short_entry, short_exit, size, size_kind)
        for t in range(self.n_bars):
            if self.s.fill == "same_close":
                self.step(t, t, self.close[t], self._decide(t, *flags))
            else:
                self.step(t, t - 1, self._fill_ref(t) if t > 0 else self.close[t], pending)
                pending = self._decide(t, *flags)
        return self.finish()

    def _decide(self, t, le, lx, se, sx, size, kind):
        out = []
        for j in range(self.n):
            # an entry and an exit of one side cancel; then a long and a short entry cancel
            long_in, long_out = le[t][j] and not lx[t][j], lx[t][j] and not le[t][j]
            short_in, short_out = se[t][j] and not sx[t][j], sx[t][j] and not se[t][j]
            long_in, short_in = long_in and not short_in, short_in and not long_in
            q, s = self.pos[j].qty, size[t][j]
            instr = None
            if q > 0:
                instr = (kind, -s) if short_in else (("qty", 0.0) if long_out else None)
            elif q < 0:
                instr = (kind, s) if long_in else (("qty", 0.0) if short_out else None)
            elif long_in or short_in:
                instr = (kind, s if long_in else -s)
            out.append(instr)
        return out
