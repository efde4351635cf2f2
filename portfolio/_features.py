"""Observation features, computed once per panel and never from data after their bar.

Every feature of bar t is a function of prices and signals dated <= t: returns and
volatilities use backward windows only (cumulative sums up to t), signals are placed on
the first bar at or after their as-of time and carried forward, and the signal z-score is
taken across the assets *at* t, never over time. A test perturbs everything after t and
checks that no observation up to t moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import polars as pl

from engine.errors import DataError
from engine.panel import Panel
from portfolio._config import EnvConfig

_VOL_FLOOR = 1e-4  # a per-bar volatility below this is a stale price, not a calm asset


@dataclass(frozen=True, eq=False)
class Market:
    """A panel with its observation features, shared by every env built on it.

    ``features`` is float32 ``(n_bars, n_assets * n_features)``, asset-major (the
    ``n_features`` values of asset 0, then asset 1 ...). ``signal_bars`` marks, per
    signal column, the bars on which the analyst emitted a row for some asset (used to
    check that the signals cover a training span).
    """

    panel: Panel
    config: EnvConfig
    features: np.ndarray
    signal_bars: dict[str, np.ndarray]

    @property
    def n_assets(self) -> int:
        return self.panel.n_assets

    @property
    def n_features(self) -> int:
        return self.config.n_asset_features

    @property
    def obs_dim(self) -> int:
        return self.n_assets * (self.n_features + 1) + 2

    def bar_of(self, when, *, side: str = "left") -> int:
        """Index of the first bar at or after ``when`` (``side='right'``: the last at or before).

        A calendar date (a ``date`` or a ``YYYY-MM-DD`` string) means the whole day: as an
        end it includes that day's intraday bars. A timestamp is exact.
        """
        ts = self.panel.ts
        whole_day = (isinstance(when, date) and not isinstance(when, datetime)) or (
            isinstance(when, str) and len(when.strip()) == 10)
        stamp = np.datetime64(when, "ns")
        if side == "left":
            return int(np.searchsorted(ts, stamp, side="left"))
        if whole_day:
            stamp = stamp + np.timedelta64(1, "D") - np.timedelta64(1, "ns")
        return int(np.searchsorted(ts, stamp, side="right")) - 1

    def check_coverage(self, start_bar: int, end_bar: int, what: str) -> None:
        """Raise DataError unless every signal column has rows throughout the decision bars.

        Decisions are made at bars ``start_bar .. end_bar - 1``. A column covers them when
        its first row is at or before ``start_bar`` and its last row is no further before
        ``end_bar - 1`` than the longest gap between its own rows (weekly signals are
        fine; signals that stopped a year early are not).
        """
        ts = self.panel.ts
        last_decision = end_bar - 1
        for column, bars in self.signal_bars.items():
            if bars.size == 0:
                raise DataError(f"signals column {column!r} has no row on the bars' calendar; "
                                f"the RL environment cannot observe it. Fix: emit it for the "
                                f"assets {list(self.panel.assets)[:5]}... or drop it from "
                                "env.signals")
            gap = int(np.diff(bars).max()) if bars.size > 1 else 1
            first, last = int(bars[0]), int(bars[-1])
            if first > start_bar or last < last_decision - gap:
                raise DataError(
                    f"signals column {column!r} runs from {_day(ts[first])} to {_day(ts[last])} "
                    f"but the {what} needs it from {_day(ts[start_bar])} to "
                    f"{_day(ts[last_decision])}; the manager would trade on missing or stale "
                    "signals. Fix: produce signals over the whole span (train the analyst "
                    "earlier, e.g. train_until before it) or move the span inside the signals"
                )


def _day(ts: np.datetime64) -> str:
    return np.datetime_as_string(np.datetime64(ts, "s")).removesuffix("T00:00:00")


def _ffill(matrix: np.ndarray) -> np.ndarray:
    """Carry the last finite value of each column forward (as-of values); NaN before any."""
    finite = np.isfinite(matrix)
    idx = np.where(finite, np.arange(matrix.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = matrix[idx, np.arange(matrix.shape[1])]
    out[~np.logical_or.accumulate(finite, axis=0)] = np.nan
    return out


def _zscore_rows(x: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score per bar over the finite cells; 0 where undefined."""
    finite = np.isfinite(x)
    count = finite.sum(axis=1, keepdims=True)
    safe = np.where(finite, x, 0.0)
    mean = safe.sum(axis=1, keepdims=True) / np.maximum(count, 1)
    dev = np.where(finite, x - mean, 0.0)
    std = np.sqrt((dev**2).sum(axis=1, keepdims=True) / np.maximum(count, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(std > 0, dev / std, 0.0)
    return np.where(finite, z, 0.0)


def log_returns(close: np.ndarray) -> np.ndarray:
    """Bar-to-bar log returns; 0 where either close is missing (and on the first bar)."""
    r = np.zeros_like(close)
    with np.errstate(invalid="ignore", divide="ignore"):
        r[1:] = np.log(close[1:] / close[:-1])
    r[~np.isfinite(r)] = 0.0
    return r


def rolling_vol(r: np.ndarray, window: int) -> np.ndarray:
    """Sample std of the last ``window`` returns (fewer at the start), per bar and asset."""
    n_bars = r.shape[0]
    s1 = np.cumsum(r, axis=0)
    s2 = np.cumsum(r * r, axis=0)
    lag1 = np.zeros_like(s1)
    lag2 = np.zeros_like(s2)
    if n_bars > window:
        lag1[window:] = s1[:-window]
        lag2[window:] = s2[:-window]
    count = np.minimum(np.arange(1, n_bars + 1), window)[:, None].astype(np.float64)
    w1 = s1 - lag1
    w2 = s2 - lag2
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (w2 - w1 * w1 / count) / (count - 1.0)
    var[~np.isfinite(var)] = 0.0
    return np.sqrt(np.maximum(var, 0.0))


def signal_matrices(panel: Panel, signals: pl.DataFrame | None, columns: list[str]
                    ) -> dict[str, np.ndarray]:
    """One as-of ``(n_bars, n_assets)`` matrix per column (NaN where no row yet)."""
    if not columns:
        return {}
    if signals is None:
        raise DataError(f"the RL environment observes signal columns {columns} but no signals "
                        "frame was given; add an analyst to the scenario or set env.signals: []")
    from engine.data import signals_to_matrix

    missing = [c for c in columns if c not in signals.columns]
    if missing:
        from engine.configs import did_you_mean

        hint = did_you_mean(missing[0], [c for c in signals.columns if c not in ("ts", "asset")])
        raise DataError(f"signals have no column(s) {missing}{hint}; found {signals.columns}. "
                        "Fix: list columns the analysts emit in env.signals")
    # rows after the last bar cannot inform any decision on it: drop them (a slice of a
    # longer history is a normal input here), everything else is checked by the engine
    ts = pl.col("ts")
    dtype = signals.schema["ts"]
    if dtype == pl.Date:
        ts = ts.cast(pl.Datetime("ns"))
    elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        last = int(panel.ts[-1].astype("datetime64[ns]").astype(np.int64))
        signals = signals.filter(ts.dt.cast_time_unit("ns").to_physical() <= last)
    return {c: signals_to_matrix(signals, panel, c, source="signals", allow_nan=True)
            for c in columns}


def build_market(panel: Panel, signals: pl.DataFrame | None, config: EnvConfig) -> Market:
    """Compute every bar's features for ``panel`` (float32, clipped to ``obs_clip``)."""
    if panel.n_assets == 0 or panel.n_bars < 2:
        raise DataError("the RL environment needs at least one asset and two bars")
    raw = signal_matrices(panel, signals, list(config.signals))
    tradable = np.isfinite(panel.close)
    n_bars, n = panel.close.shape
    blocks: list[np.ndarray] = []
    for column in config.signals:
        values = _ffill(raw[column])
        values[~tradable] = np.nan
        if config.signal_norm == "zscore":
            values = _zscore_rows(values)
        blocks.append(np.where(np.isfinite(values), values, 0.0))
    r = log_returns(panel.close)
    vol = rolling_vol(r, config.vol_window)
    scale = np.maximum(vol, _VOL_FLOOR)  # today's volatility, for every lag
    for lag in range(config.window):
        lagged = np.zeros_like(r)
        lagged[lag:] = r[: n_bars - lag]
        blocks.append(lagged / scale)
    blocks.append(vol * np.sqrt(panel.periods_per_year))
    stacked = np.stack(blocks, axis=2)  # (n_bars, n_assets, n_features)
    stacked[~tradable] = 0.0
    np.clip(stacked, -config.obs_clip, config.obs_clip, out=stacked)
    features = np.ascontiguousarray(stacked.reshape(n_bars, n * len(blocks)), dtype=np.float32)
    signal_bars = {c: np.flatnonzero(np.isfinite(m).any(axis=1)) for c, m in raw.items()}
    return Market(panel=panel, config=config, features=features, signal_bars=signal_bars)


def slice_panel(panel: Panel, start: int, end: int) -> Panel:
    """Bars ``start .. end`` (inclusive) of a panel, same assets and annualisation."""
    s = slice(start, end + 1)
    return Panel(panel.ts[s], panel.assets, panel.open[s], panel.high[s], panel.low[s],
                 panel.close[s], panel.volume[s], panel.periods_per_year, panel.has_open)
