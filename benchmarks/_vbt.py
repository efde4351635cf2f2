"""vectorbt on the same workloads, configured to compute exactly what our engine does.

vectorbt fills an order at the close of the bar it is placed on, so each decision array
is shifted one bar (:func:`~benchmarks._signals.shift_one_bar`); ``cash_sharing=True`` with
``group_by=True`` makes one account, and ``call_seq="auto"`` runs sells before buys. The
timed call includes ``pf.value()``: the equity curve is what our engine returns, so the
peer has to produce it too. vectorbt is imported on first use only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks._ours import FEE_BPS
from benchmarks._signals import shift_one_bar
from engine import Panel


def _vbt() -> Any:
    import vectorbt

    return vectorbt


def wide(panel: Panel, values: np.ndarray) -> Any:
    """A pandas frame indexed like the panel (built outside the timed region)."""
    import pandas as pd

    return pd.DataFrame(values, index=pd.DatetimeIndex(panel.ts), columns=list(panel.assets))


def prepare_signals(panel: Panel, long_entry: np.ndarray, short_entry: np.ndarray
                    ) -> dict[str, Any]:
    return {"close": wide(panel, panel.close),
            "entries": wide(panel, shift_one_bar(long_entry)),
            "short_entries": wide(panel, shift_one_bar(short_entry))}


def run_signals(frames: dict[str, Any], position_value: float, capital: float
                ) -> tuple[Any, np.ndarray]:
    """``Portfolio.from_signals``; a reversal is vectorbt's default opposite-entry mode."""
    pf = _vbt().Portfolio.from_signals(
        frames["close"], entries=frames["entries"], short_entries=frames["short_entries"],
        size=position_value, size_type="value", fees=FEE_BPS / 1e4, init_cash=capital,
        cash_sharing=True, group_by=True, call_seq="auto", freq="1D")
    return pf, np.asarray(pf.value(), dtype=np.float64).reshape(-1)


def prepare_weights(panel: Panel, weights: np.ndarray) -> dict[str, Any]:
    return {"close": wide(panel, panel.close), "size": wide(panel, shift_one_bar(weights))}


def run_weights(frames: dict[str, Any], capital: float) -> tuple[Any, np.ndarray]:
    """``Portfolio.from_orders`` with ``size_type="targetpercent"`` (NaN: no order)."""
    pf = _vbt().Portfolio.from_orders(
        frames["close"], size=frames["size"], size_type="targetpercent", fees=FEE_BPS / 1e4,
        init_cash=capital, cash_sharing=True, group_by=True, call_seq="auto", freq="1D")
    return pf, np.asarray(pf.value(), dtype=np.float64).reshape(-1)


def order_count(pf: Any) -> int:
    return int(len(pf.orders.records))


def version() -> str:
    return str(_vbt().__version__)
