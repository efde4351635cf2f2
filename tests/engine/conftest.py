from __future__ import annotations

import numpy as np
import pytest

from engine.panel import Panel


def make_panel(close, open_=None, volume=None, periods_per_year=252.0, start="2020-01-01"):
    close = np.asarray(close, dtype=np.float64)
    n_bars, n = close.shape
    ts = np.arange(np.datetime64(start, "ns"), np.datetime64(start, "ns") + n_bars * np.timedelta64(1, "D"),
                   np.timedelta64(1, "D"))
    open_ = close.copy() if open_ is None else np.asarray(open_, dtype=np.float64)
    vol = np.full_like(close, np.nan) if volume is None else np.asarray(volume, dtype=np.float64)
    return Panel(ts=ts, assets=tuple(f"A{j}" for j in range(n)), open=open_,
                 high=np.fmax(open_, close), low=np.fmin(open_, close), close=close, volume=vol,
                 periods_per_year=periods_per_year, has_open=True)


def random_prices(rng, n_bars, n, *, holes=0.0):
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, (n_bars, n)), axis=0)
    open_ = close * (1 + rng.normal(0, 0.005, (n_bars, n)))
    if holes:
        mask = rng.random((n_bars, n)) < holes
        close[mask] = np.nan
        open_[mask] = np.nan
    return open_, close


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
