"""Tiny hand-made bars frames for analyst tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl


def make_bars(closes: dict[str, list[float]], start: datetime = datetime(2024, 1, 1)) -> pl.DataFrame:
    """Long bars, one bar a day; a NaN close means the asset has no bar that day."""
    rows = []
    for asset, values in closes.items():
        for i, close in enumerate(values):
            if not np.isnan(close):
                rows.append((start + timedelta(days=i), asset, float(close)))
    return pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row").sort("ts", "asset")


def random_bars(rng: np.random.Generator, n_bars: int, n_assets: int) -> pl.DataFrame:
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, (n_bars, n_assets)), axis=0)
    return make_bars({f"S{j}": close[:, j].tolist() for j in range(n_assets)})
