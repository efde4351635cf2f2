"""Tiny hand-made panels and signals frames for strategy tests."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.panel import Panel


def build_panel(close, ts, assets=None) -> Panel:
    close = np.asarray(close, dtype=float)
    ts = np.asarray(ts, dtype="datetime64[ns]")
    if assets is None:
        assets = tuple("ABCDEFGH"[: close.shape[1]])
    return Panel(
        ts=ts,
        assets=tuple(assets),
        open=close.copy(),
        high=close.copy(),
        low=close.copy(),
        close=close,
        volume=np.full(close.shape, np.nan),
        periods_per_year=252.0,
        has_open=False,
    )


def daily(start: str, n: int) -> np.ndarray:
    return np.datetime64(start, "ns") + np.arange(n) * np.timedelta64(1, "D")


def signals_frame(panel: Panel, column: str, values) -> pl.DataFrame:
    """Long frame with one row per finite cell of ``values`` (n_bars, n_assets)."""
    values = np.asarray(values, dtype=float)
    t, j = np.nonzero(np.isfinite(values))
    return pl.DataFrame(
        {
            "ts": pl.Series(panel.ts[t]).cast(pl.Datetime("ns")),
            "asset": [panel.assets[k] for k in j],
            column: values[t, j],
        }
    )


@pytest.fixture
def make_panel():
    return build_panel
