"""Turning a long signals frame into a dense ``(n_bars, n_assets)`` matrix.

One converter serves the whole project: ``engine.data.signals_to_matrix``. It places each
row on the *first bar whose ts is >= the row's ts*, so a signal can never act before it
was known, and rejects unknown assets, rows dated after the last bar, duplicate
(ts, asset) rows and non-finite values with a message naming the row. This module only
adds the strategy's name to those messages and catches a missing signals frame.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.data import signals_to_matrix
from engine.errors import DataError
from engine.panel import Panel


def signal_matrix(
    signals: pl.DataFrame | None, panel: Panel, column: str, *, strategy: str
) -> np.ndarray:
    """``column`` of ``signals`` as float64 ``(n_bars, n_assets)``, NaN where no signal."""
    if signals is None:
        raise DataError(
            f"strategy {strategy!r} needs a signals frame with a {column!r} column and got "
            f"none; add an analyst or a signals file to the run"
        )
    return signals_to_matrix(signals, panel, column, source=f"strategy {strategy!r} signals")
