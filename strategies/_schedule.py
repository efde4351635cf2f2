"""Rebalance calendars: which bars of a panel close a day, week, month or quarter.

A rebalance happens on the *last bar of each period present in the panel*: the decision
is taken at that bar's close (with only signals dated at or before it) and fills at the
next bar, like any other decision. Periods are calendar periods of the bar timestamps
(UTC for naive data); weeks start on Monday. Knowing that bar t ends its period uses the
timestamp of bar t+1 -- a calendar fact, not a price -- and the panel's final bar counts
as the end of its (possibly unfinished) period.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from engine.errors import ConfigError

Rebalance = Literal["daily", "weekly", "monthly", "quarterly"]
REBALANCE_FREQUENCIES: tuple[str, ...] = get_args(Rebalance)

# 1970-01-01 was a Thursday: shifting by 3 days makes Monday the first day of a week.
_EPOCH_TO_MONDAY_DAYS = 3


def period_index(ts: np.ndarray, frequency: Rebalance) -> np.ndarray:
    """int64 label of the calendar period each timestamp falls in."""
    if frequency == "daily":
        return ts.astype("datetime64[D]").astype(np.int64)
    if frequency == "weekly":
        return (ts.astype("datetime64[D]").astype(np.int64) + _EPOCH_TO_MONDAY_DAYS) // 7
    if frequency == "monthly":
        return ts.astype("datetime64[M]").astype(np.int64)
    if frequency == "quarterly":
        return ts.astype("datetime64[M]").astype(np.int64) // 3
    raise ConfigError(
        f"rebalance must be one of {', '.join(REBALANCE_FREQUENCIES)}, got {frequency!r}"
    )


def rebalance_mask(ts: np.ndarray, frequency: Rebalance) -> np.ndarray:
    """bool ``(n_bars,)``: True on the last bar of each period present in ``ts``."""
    period = period_index(np.asarray(ts), frequency)
    mask = np.ones(period.shape, dtype=bool)
    mask[:-1] = period[1:] != period[:-1]
    return mask
