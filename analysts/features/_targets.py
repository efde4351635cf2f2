"""Training labels: direction and magnitude of the next ``h`` bars' move, per asset.

A label dated ``t`` is *known* only at the close of ``t + h`` (the asset's own h-th next
bar). ``label_ts_{h}`` records that time so a trainer can keep the rows whose label was
already observed at its cut-off: a row dated ``t <= until`` whose label needs a bar after
``until`` would leak the future into the fit.
"""

from __future__ import annotations

import polars as pl

from engine.errors import ConfigError


def target_names(horizon: int) -> tuple[str, str, str]:
    """(direction column, magnitude column, label-time column) for ``horizon``."""
    return f"target_up_{horizon}", f"target_return_{horizon}", f"label_ts_{horizon}"


def add_targets(frame: pl.DataFrame, horizons: tuple[int, ...] | list[int] = (1, 3, 5)
                ) -> pl.DataFrame:
    """Add direction (1.0 up, 0.0 otherwise), percent-change and label-time columns.

    ``frame`` must hold ``ts, asset, close``. ``target_return_h = close[t+h] / close[t] - 1``
    (a fraction); the last ``h`` bars of each asset have null labels.
    """
    if not horizons or any(int(h) < 1 for h in horizons):
        raise ConfigError(f"horizons must be positive bar counts, got {list(horizons)}")
    frame = frame.sort("asset", "ts")
    exprs = []
    for h in horizons:
        up, change, when = target_names(int(h))
        future = pl.col("close").shift(-h).over("asset")
        exprs += [
            (future / pl.col("close") - 1.0).alias(change),
            pl.when(future.is_null()).then(None)
            .otherwise((future > pl.col("close")).cast(pl.Float64)).alias(up),
            pl.col("ts").shift(-h).over("asset").alias(when),
        ]
    return frame.with_columns(exprs)
