"""Long bars -> dense :class:`~engine.panel.Panel` on the union calendar.

The panel is built with one numpy scatter per column: bars are sorted by (ts, asset), so a
row's bar index is a running count of timestamp changes and its asset index its position
among the sorted asset names; no pivot, join or Python loop is needed (500 assets x 8,313
bars, validation included, take about half a second on one core).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.panel import Panel

from ._calendar import infer_periods_per_year
from ._validate import validate_bars


def align_bars(bars: pl.DataFrame, *, periods_per_year: float | None = None) -> Panel:
    """Validate long bars and lay them out on the union of all assets' timestamps.

    A cell where an asset has no bar is NaN in every matrix: it is never forward-filled, so
    the engine can value a position with the last close but never trade on a stale price.
    Assets are ordered alphabetically. Missing columns are filled from what exists:
    ``open = close`` (and ``has_open=False``, so fills happen at the next close),
    ``high = max(open, close)``, ``low = min(open, close)``, ``volume`` all NaN.
    ``periods_per_year`` defaults to :func:`engine.data.infer_periods_per_year` of the
    calendar. Time-zone-aware timestamps become UTC instants in ``Panel.ts``
    (``datetime64[ns]`` has no zone).
    """
    bars = validate_bars(bars)
    ts_ns = bars["ts"].to_physical().to_numpy()
    new_bar = np.empty(ts_ns.shape[0], dtype=bool)
    new_bar[0] = True
    np.not_equal(ts_ns[1:], ts_ns[:-1], out=new_bar[1:])
    bar_index = np.cumsum(new_bar, dtype=np.intp) - 1
    calendar = ts_ns[new_bar]

    assets = tuple(bars.select(pl.col("asset").unique().sort()).to_series().to_list())
    # An Enum over the sorted names turns each string into its sorted position in one pass.
    codes = bars.select(pl.col("asset").cast(pl.Enum(assets)).to_physical()).to_series()
    asset_index = codes.to_numpy().astype(np.intp)
    shape = (calendar.shape[0], len(assets))
    flat_index = bar_index * len(assets) + asset_index

    def scatter(column: str) -> np.ndarray:
        matrix = np.full(shape, np.nan)
        matrix.reshape(-1)[flat_index] = bars[column].to_numpy()
        return matrix

    close = scatter("close")
    has_open = "open" in bars.columns
    open_ = scatter("open") if has_open else close.copy()
    high = scatter("high") if "high" in bars.columns else np.fmax(open_, close)
    low = scatter("low") if "low" in bars.columns else np.fmin(open_, close)
    volume = scatter("volume") if "volume" in bars.columns else np.full(shape, np.nan)
    ts = calendar.view("datetime64[ns]")
    if periods_per_year is None:
        periods_per_year = infer_periods_per_year(bars["ts"].unique(maintain_order=True))
    return Panel(
        ts=ts,
        assets=assets,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        periods_per_year=float(periods_per_year),
        has_open=has_open,
    )
