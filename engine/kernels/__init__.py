"""Numba kernels: numpy arrays, scalars and NamedTuples in; arrays and records out.

Nothing in this package may import polars, pandas, torch or pydantic (a test checks).
"""

from engine.kernels._cache import configure_kernel_cache

# must run before the kernel modules below are imported (numba picks the cache
# locator when a function is decorated)
CACHE_DIR = configure_kernel_cache()

# ruff: noqa: E402

from engine.kernels.enums import (
    ENTRY_TYPE_NAMES,
    FILL_MODE_NAMES,
    LIMIT_POLICY_NAMES,
    REASON_NAMES,
    STATUS_NAMES,
    TRIGGER_NAMES,
    FillMode,
    LimitPolicy,
    OrderStatus,
    Reason,
    TargetKind,
    Trigger,
)
from engine.kernels.loop import decide_signals_nb, simulate_signals_nb, simulate_weights_nb
from engine.kernels.records import (
    Book,
    Records,
    SimParams,
    fill_dt,
    new_book,
    new_records,
    order_dt,
    trade_dt,
)
from engine.kernels.step import close_open_trades_nb, execute_nb, mark_nb, step_nb
from engine.kernels.views import borrow_nb, borrow_rows_nb

__all__ = [
    "FILL_MODE_NAMES", "LIMIT_POLICY_NAMES", "REASON_NAMES", "STATUS_NAMES", "Book", "FillMode",
    "LimitPolicy", "OrderStatus", "borrow_nb", "borrow_rows_nb",
    "Reason", "Records", "SimParams", "TargetKind", "close_open_trades_nb", "decide_signals_nb",
    "execute_nb", "fill_dt", "mark_nb", "new_book", "new_records", "order_dt",
    "simulate_signals_nb", "simulate_weights_nb", "step_nb", "trade_dt", "TRIGGER_NAMES",
    "Trigger", "ENTRY_TYPE_NAMES",
]
