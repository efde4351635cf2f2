"""Synthetic paths: bars built from a matrix of log returns, shared constants and checks.

See :mod:`engine.synthetic` for the model description."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from engine.data import validate_bars
from engine.errors import ConfigError, DataError

REGIME_NAMES: tuple[str, ...] = ("bull", "bear", "sideways", "high_vol")
"""Regime names produced by :func:`calibrate`, in this order."""

SHOCK_KINDS: tuple[str, ...] = ("crash", "vol_spike", "correlation")
"""Values accepted for ``kind`` by :func:`apply_shocks`."""

GAP_VOL_FRACTION = 0.2
"""Standard deviation of the open gap, as a fraction of the asset's daily volatility."""

WICK_VOL_FRACTION = 0.5
"""Scale of the high/low wicks, as a fraction of the asset's daily volatility."""

BASE_VOLUME = 1e6
"""Median synthetic volume per bar."""

VOLUME_LOG_SD = 0.3
"""Standard deviation of log volume."""

PSEUDO_COUNT = 1.0
"""Total pseudo-count (in days) spread over the counted transition matrix; see
:func:`count_transitions`."""

_MIN_EIGEN_RATIO = 1e-8
_SHRINK = 0.1
_DateLike = str | date | datetime | np.datetime64 | pd.Timestamp



@dataclass(frozen=True)
class SyntheticPath:
    """One generated path.

    Attributes:
        bars: a bars frame (``ts, asset, open, high, low, close, volume``) that passes
            :func:`engine.data.validate_bars`.
        regimes: one row per bar timestamp, columns ``ts`` and ``regime`` (the regime
            name; ``"bootstrap"`` for :func:`block_bootstrap`, which adds ``source_ts``,
            the historical day whose returns were used).
        seed: the seed passed to the generator.
        path: index of this path among the paths of its call.
    """

    bars: pl.DataFrame
    regimes: pl.DataFrame
    seed: int
    path: int = 0


def _float_array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"RegimeModel: {name} must be numeric, got {type(value).__name__}."
        ) from None
    if arr.shape != shape:
        raise ConfigError(f"RegimeModel: {name} must have shape {shape}, got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ConfigError(f"RegimeModel: {name} contains NaN or infinite values.")
    arr.setflags(write=False)
    return arr


# --------------------------------------------------------------------------- data prep


def _close_matrix(
    bars: pl.DataFrame,
    assets: Sequence[str] | None,
    start: _DateLike | None,
    end: _DateLike | None,
    source: str,
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Validated bars -> (dates, assets, closes (T x n)) on dates where all assets trade."""
    frame = validate_bars(bars, source=source)
    available = sorted(frame["asset"].unique().to_list())
    if assets is None:
        chosen = tuple(available)
    else:
        if isinstance(assets, str):
            assets = [assets]
        chosen = tuple(dict.fromkeys(str(a) for a in assets))
        if not chosen:
            raise ConfigError(f"{source}: assets is empty; pick from {available}.")
        unknown = [a for a in chosen if a not in set(available)]
        if unknown:
            raise DataError(
                f"{source}: unknown assets {unknown}; the bars hold {len(available)} assets: "
                f"{available}."
            )
    tz = frame.schema["ts"].time_zone  # type: ignore[attr-defined]
    frame = frame.filter(pl.col("asset").is_in(list(chosen)))
    if start is not None:
        frame = frame.filter(pl.col("ts") >= _bound(start, tz, "start"))
    if end is not None:
        frame = frame.filter(pl.col("ts") <= _bound(end, tz, "end"))
    wide = (
        frame.pivot(on="asset", index="ts", values="close")
        .sort("ts")
        .select(["ts", *chosen])
        .drop_nulls()
    )
    closes = wide.select(chosen).to_numpy().astype(np.float64, copy=False)
    dates = wide["ts"].to_numpy()
    return dates, chosen, closes


def _bound(value: _DateLike, tz: str | None, name: str) -> datetime:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a date such as '2000-01-03', got {value!r}.") from None
    if pd.isna(stamp):
        raise ConfigError(f"{name} must be a date such as '2000-01-03', got {value!r}.")
    if tz is not None and stamp.tzinfo is None:
        stamp = stamp.tz_localize(tz)
    elif tz is None and stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    return stamp.to_pydatetime()


def _business_days(start: _DateLike, n_days: int) -> np.ndarray:
    try:
        first = pd.Timestamp(start)
    except (TypeError, ValueError):
        raise ConfigError(f"start must be a date such as '2000-01-03', got {start!r}.") from None
    if pd.isna(first) or first.tzinfo is not None:
        raise ConfigError(
            f"start must be a timezone-naive date such as '2000-01-03', got {start!r}."
        )
    too_long = ConfigError(
        f"{n_days} business days from {first.date()} run past "
        f"{pd.Timestamp.max.date()}, the last date a Datetime('ns') column can hold; use an "
        f"earlier start or fewer days (split a long sample into several paths)."
    )
    try:
        index = pd.bdate_range(first.normalize(), periods=n_days)
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise too_long from None
    # pandas may build the range at a coarser resolution than ns; the cast to ns would
    # then wrap around silently instead of failing.
    if index[-1] > pd.Timestamp.max or index[0] < pd.Timestamp.min:
        raise too_long
    return index.to_numpy().astype("datetime64[ns]")


def _check_counts(n_days: int, n_paths: int) -> None:
    if isinstance(n_paths, bool) or not isinstance(n_paths, (int, np.integer)) or n_paths < 1:
        raise ConfigError(f"n_paths must be an integer of at least 1, got {n_paths!r}.")
    if isinstance(n_days, bool) or not isinstance(n_days, (int, np.integer)) or n_days < 2:
        raise ConfigError(f"n_days must be an integer of at least 2, got {n_days!r}.")


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def _path_rngs(seed: int, n_paths: int) -> list[np.random.Generator]:
    return [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(n_paths)]


def _initial_vector(
    initial_prices: float | Mapping[str, float], assets: tuple[str, ...]
) -> np.ndarray:
    if isinstance(initial_prices, Mapping):
        missing = [a for a in assets if a not in initial_prices]
        if missing:
            raise ConfigError(
                f"initial_prices has no price for {missing}; give one for each of {list(assets)}."
            )
        values = np.array([float(initial_prices[a]) for a in assets])
    else:
        values = np.full(len(assets), float(initial_prices))
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ConfigError(f"initial_prices must be finite and > 0, got {values.tolist()}.")
    return values


# --------------------------------------------------------------------------- bars


def _ohlcv(
    returns: np.ndarray,
    daily_vol: np.ndarray,
    p0: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log returns (T x n) and per-bar daily vols (T x n) -> open, high, low, close, volume."""
    shape = returns.shape
    close = p0 * np.exp(np.cumsum(returns, axis=0))
    prev = np.vstack([p0[None, :], close[:-1]])
    noise = rng.standard_normal((4, *shape))
    open_ = prev * np.exp(GAP_VOL_FRACTION * daily_vol * noise[0])
    high = np.maximum(open_, close) * np.exp(WICK_VOL_FRACTION * daily_vol * np.abs(noise[1]))
    low = np.minimum(open_, close) * np.exp(-WICK_VOL_FRACTION * daily_vol * np.abs(noise[2]))
    volume = BASE_VOLUME * np.exp(VOLUME_LOG_SD * noise[3])
    return open_, high, low, close, volume


def _bars_frame(
    ts: np.ndarray,
    assets: tuple[str, ...],
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> pl.DataFrame:
    """Wide (T x n) arrays -> long bars frame sorted by (ts, asset)."""
    order = np.argsort(np.array(assets, dtype=object), kind="stable")
    names = np.array(assets, dtype=object)[order]
    n_bars, n = close.shape
    return pl.DataFrame(
        {
            "ts": pl.Series("ts", np.repeat(ts, n), dtype=pl.Datetime("ns")),
            "asset": pl.Series("asset", np.tile(names, n_bars).tolist(), dtype=pl.Utf8),
            "open": open_[:, order].ravel(),
            "high": high[:, order].ravel(),
            "low": low[:, order].ravel(),
            "close": close[:, order].ravel(),
            "volume": volume[:, order].ravel(),
        }
    )


def _wide(bars: pl.DataFrame) -> tuple[np.ndarray, tuple[str, ...], dict[str, np.ndarray]]:
    """A rectangular bars frame sorted by (ts, asset) -> ts, assets, wide OHLCV arrays."""
    needed = ("ts", "asset", "open", "high", "low", "close", "volume")
    missing = [c for c in needed if c not in bars.columns]
    if missing:
        raise DataError(f"path bars miss columns {missing}; a SyntheticPath holds {list(needed)}.")
    sorted_assets = tuple(sorted(bars["asset"].unique().to_list()))
    n = len(sorted_assets)
    if bars.height % n:
        raise DataError("path bars are not rectangular: every ts must hold every asset once.")
    n_bars = bars.height // n
    names = bars["asset"].to_numpy().reshape(n_bars, n)
    if not (names == np.array(sorted_assets, dtype=object)).all():
        raise DataError(
            "path bars must be sorted by (ts, asset) with every asset on every ts "
            "(as the generators produce them)."
        )
    ts = bars["ts"].to_numpy().reshape(n_bars, n)[:, 0]
    arrays = {c: bars[c].to_numpy().astype(np.float64).reshape(n_bars, n) for c in needed[2:]}
    return ts, sorted_assets, arrays


# --------------------------------------------------------------------------- calibrate
