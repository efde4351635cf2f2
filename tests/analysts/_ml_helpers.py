"""Synthetic bars for the ML analyst tests: small, seeded, optionally predictable."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

# Tiny models and short trainings: every test trains in well under a second.
TINY_TRAIN = {"epochs": 2, "batch_size": 64, "patience": None, "progress": False, "seed": 3,
              "threads": 1,
              "device": "cpu"}
# Close-only features with short look-backs, so a few hundred bars suffice.
SHORT_FEATURES = {"groups": ["returns", "ma_gaps", "rsi", "volatility", "cross_section"],
                  "ma_windows": [5, 10]}


def ohlcv_bars(n_bars: int, n_assets: int, *, seed: int = 0, ar: float = 0.0,
               start: datetime = datetime(2020, 1, 1)) -> pl.DataFrame:
    """Long OHLCV bars, one a day. ``ar`` is the lag-1 autocorrelation of returns (a
    negative value makes the next return predictable from the last one)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.01, (n_bars, n_assets))
    returns = np.zeros_like(noise)
    for t in range(n_bars):
        returns[t] = noise[t] + (ar * returns[t - 1] if t else 0.0)
    close = 100.0 * np.cumprod(1.0 + returns, axis=0)
    open_ = close * (1.0 + rng.normal(0.0, 0.003, close.shape))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.01, close.shape))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.01, close.shape))
    volume = rng.uniform(1e5, 2e5, close.shape)
    ts = [start + timedelta(days=i) for i in range(n_bars)]
    frames = [
        pl.DataFrame({"ts": ts, "asset": f"S{j}", "open": open_[:, j], "high": high[:, j],
                      "low": low[:, j], "close": close[:, j], "volume": volume[:, j]})
        for j in range(n_assets)
    ]
    return pl.concat(frames).sort("ts", "asset")


def close_only(bars: pl.DataFrame) -> pl.DataFrame:
    return bars.select("ts", "asset", "close")
