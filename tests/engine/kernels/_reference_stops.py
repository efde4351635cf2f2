"""The reference engine's stops and resting entries, written from README "Stops" and
"Entries" (not from ``engine/kernels``).

Stops: a position remembers the reference price of the fill that opened, flipped or last
added to it (``entry``), the bar after that fill (``from_bar``) and, for a trailing stop,
the best price seen on the bars after the entry's bar (``best``: highs for a long, lows
for a short, starting at the entry price). On a bar with data, before its instructions,
the levels are compared with the bar's open first (a gap fills at the open) and then with
its low..high range.

Entries: an instruction that opens a position from flat rests at a level set from the
decision bar's close; it is live on the ``tif_bars`` bars after the decision and fills at
the open when the open is through the level, else at the level when the bar's range
reaches it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class StopState:
    entry: float  # reference price of the fill that armed the stops
    from_bar: int  # first bar the stops are checked on
    best: float  # best price since the entry's bar (trailing anchor)


@dataclass(frozen=True)
class StopHit:
    price: float  # the exit's reference price (the level, or the open on a gap)
    trigger: str  # stop_loss | take_profit | trailing_stop
    ambiguous: bool


def _through(side: int, price: float, level: float, favourable: bool) -> bool:
    """Is ``price`` at or beyond ``level`` in the favourable (target) or adverse (stop)
    direction of a position on ``side``?"""
    up = (side > 0) == favourable
    return price >= level if up else price <= level


def stop_hit(side: int, state: StopState, bar_open: float, bar_high: float, bar_low: float,
             sl_stop: float | None, tp_stop: float | None, sl_trail: bool,
             stop_first: bool) -> StopHit | None:
    """Which level (if any) the bar reaches, and at what price it fills."""
    anchor = state.best if sl_trail else state.entry
    stop_level = anchor * (1 - side * sl_stop) if sl_stop is not None else None
    target_level = state.entry * (1 + side * tp_stop) if tp_stop is not None else None
    stop_name = "trailing_stop" if sl_trail else "stop_loss"
    # the open comes first: a gap through either level fills there, unambiguously; both
    # are through it only when a trailing stop has passed the target (after an exit the
    # volume cap cut short): the stop then
    if stop_level is not None and _through(side, bar_open, stop_level, False):
        return StopHit(bar_open, stop_name, False)
    if target_level is not None and _through(side, bar_open, target_level, True):
        return StopHit(bar_open, "take_profit", False)
    adverse, favourable = (bar_low, bar_high) if side > 0 else (bar_high, bar_low)
    stop_in = stop_level is not None and _through(side, adverse, stop_level, False)
    target_in = target_level is not None and _through(side, favourable, target_level, True)
    new_best = favourable > state.best if side > 0 else favourable < state.best
    if stop_in and target_in:
        if stop_first:
            return StopHit(stop_level, stop_name, True)
        return StopHit(target_level, "take_profit", True)
    if stop_in:
        return StopHit(stop_level, stop_name, sl_trail and new_best)
    if target_in:
        return StopHit(target_level, "take_profit", False)
    return None


def update_best(side: int, state: StopState, bar_high: float, bar_low: float) -> None:
    """After a checked bar's close: the trailing anchor takes the bar's best price."""
    price = bar_high if side > 0 else bar_low
    if math.isfinite(price):
        state.best = max(state.best, price) if side > 0 else min(state.best, price)


@dataclass
class RestingEntry:
    decision_bar: int
    last_bar: int  # the last bar it is live on
    kind: str  # weight | value | qty
    value: float  # the instruction's signed size
    level: float

    @property
    def side(self) -> int:
        return 1 if self.value > 0 else -1


def entry_level(order: str, side: int, decision_close: float, offset: float) -> float:
    """A limit buy rests below the decision close, a stop buy above (shorts mirrored)."""
    below = (order == "limit") == (side > 0)
    return decision_close * (1 - offset) if below else decision_close * (1 + offset)


def entry_touch(order: str, side: int, level: float, bar_open: float, bar_high: float,
                bar_low: float) -> float | None:
    """The entry's reference fill price on this bar, or None when the level is not reached.

    A limit buy wants a price at or below its level, a stop buy one at or above (a short
    entry mirrored)."""
    wants_low = (order == "limit") == (side > 0)
    if wants_low:
        if bar_open <= level:
            return bar_open
        return level if bar_low <= level else None
    if bar_open >= level:
        return bar_open
    return level if bar_high >= level else None
