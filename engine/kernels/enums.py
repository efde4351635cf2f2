"""Integer enums for the kernels, as NamedTuple instances so numba sees constants."""

from __future__ import annotations

from typing import NamedTuple


class _FillMode(NamedTuple):
    NextOpen: int = 0
    NextClose: int = 1
    SameClose: int = 2


class _OrderStatus(NamedTuple):
    Filled: int = 0
    Partial: int = 1
    Rejected: int = 2


class _Reason(NamedTuple):
    NoReason: int = 0
    InsufficientCash: int = 1
    NotTradable: int = 2
    LeverageLimit: int = 3
    VolumeCap: int = 4
    Scaled: int = 5  # cut only by the whole-book scale factor (limit_policy scale)
    Stopped: int = 6  # the asset's stop or target fired on this bar: its instruction lapses
    Expired: int = 7  # a limit / stop entry whose level was not reached within its bars
    Cancelled: int = 8  # a resting entry replaced by a newer instruction for the asset


class _Trigger(NamedTuple):
    Market: int = 0  # an instruction of the plan (or the RL action)
    StopLoss: int = 1
    TakeProfit: int = 2
    TrailingStop: int = 3
    LimitEntry: int = 4
    StopEntry: int = 5
    Delisting: int = 6  # the asset left the universe (or its data ended): position settled


class _EntryType(NamedTuple):
    Market: int = 0
    Limit: int = 1  # buy at or below close * (1 - offset), sell at or above close * (1 + offset)
    Stop: int = 2  # buy at or above close * (1 + offset), sell at or below close * (1 - offset)


class _LimitPolicy(NamedTuple):
    Clip: int = 0  # each order is clipped in sequence when it would breach a limit
    Scale: int = 1  # the whole rebalance is scaled by one factor to fit the limits


class _TargetKind(NamedTuple):
    NoTarget: int = 0
    Weight: int = 1  # fraction of equity at the fill
    Value: int = 2  # signed cash value at the fill's reference price
    Qty: int = 3  # signed quantity


FillMode = _FillMode()
OrderStatus = _OrderStatus()
Reason = _Reason()
TargetKind = _TargetKind()
LimitPolicy = _LimitPolicy()
Trigger = _Trigger()
EntryType = _EntryType()

FILL_MODE_NAMES = {"next_open": FillMode.NextOpen, "next_close": FillMode.NextClose,
                   "same_close": FillMode.SameClose}
STATUS_NAMES = ("filled", "partial", "rejected")
REASON_NAMES = ("", "insufficient_cash", "not_tradable", "leverage_limit", "volume_cap",
                "scaled", "stopped", "expired", "cancelled")
TRIGGER_NAMES = ("market", "stop_loss", "take_profit", "trailing_stop", "limit_entry",
                 "stop_entry", "delisting")
ENTRY_TYPE_NAMES = {"market": 0, "limit": 1, "stop": 2}
LIMIT_POLICY_NAMES = {"clip": LimitPolicy.Clip, "scale": LimitPolicy.Scale}
