"""Shocks: crash, volatility spike and correlation-to-one windows on a synthetic path."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import ConfigError, DataError
from engine.synthetic._paths import (
    SHOCK_KINDS,
    SyntheticPath,
    _bars_frame,
    _DateLike,
    _wide,
)


def _window(ts: np.ndarray, at: int | _DateLike, days: int, what: str) -> tuple[int, int]:
    n_bars = len(ts)
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise ConfigError(f"{what}: days must be an integer of at least 1, got {days!r}.")
    if isinstance(at, (int, np.integer)) and not isinstance(at, bool):
        first = int(at)
        if first < 0:
            first += n_bars
    else:
        try:
            stamp = pd.Timestamp(at)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{what}: at must be a bar index or a date such as '2001-06-01', got {at!r}."
            ) from None
        if pd.isna(stamp) or stamp.tzinfo is not None:
            raise ConfigError(f"{what}: at must be a timezone-naive date, got {at!r}.")
        first = int(np.searchsorted(ts, stamp.to_datetime64().astype("datetime64[ns]")))
        if first >= n_bars:
            raise ConfigError(
                f"{what}: at={at!r} is after the last bar of the path "
                f"({pd.Timestamp(ts[-1]).date()})."
            )
    if not 1 <= first < n_bars:
        raise ConfigError(
            f"{what}: the window must start at bar 1 .. {n_bars - 1} (bar 0 has no previous "
            f"close to take a return from), got at={at!r}."
        )
    last = first + int(days)
    if last > n_bars:
        raise ConfigError(
            f"{what}: a {days}-bar window starting at bar {first} overruns the path "
            f"({n_bars} bars) by {last - n_bars} bars; it must end by bar {n_bars - 1}."
        )
    return first, last


def _asset_mask(
    path_assets: tuple[str, ...], assets: Sequence[str] | None, what: str
) -> np.ndarray:
    if assets is None:
        return np.ones(len(path_assets), dtype=bool)
    if isinstance(assets, str):
        assets = [assets]
    unknown = [a for a in assets if a not in path_assets]
    if unknown:
        raise DataError(f"{what}: unknown assets {unknown}; the path holds {list(path_assets)}.")
    return np.isin(np.array(path_assets, dtype=object), np.array(list(assets), dtype=object))


def _rebuild(
    path: SyntheticPath, new_returns: np.ndarray, old_returns: np.ndarray
) -> SyntheticPath:
    """Apply changed close-to-close log returns (bars 1..T-1) to the path's prices."""
    ts, assets, a = _wide(path.bars)
    delta = np.vstack([np.zeros((1, len(assets))), new_returns - old_returns])
    factor = np.exp(np.cumsum(delta, axis=0))
    prev_factor = np.vstack([np.ones((1, len(assets))), factor[:-1]])
    close = a["close"] * factor
    open_ = a["open"] * prev_factor
    up = np.log(a["high"] / np.maximum(a["open"], a["close"]))
    down = np.log(np.minimum(a["open"], a["close"]) / a["low"])
    high = np.maximum(open_, close) * np.exp(up)
    low = np.minimum(open_, close) * np.exp(-down)
    frame = _bars_frame(ts, assets, open_, high, low, close, a["volume"])
    return SyntheticPath(bars=frame, regimes=path.regimes, seed=path.seed, path=path.path)


def _path_returns(path: SyntheticPath, what: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    if not isinstance(path, SyntheticPath):
        raise ConfigError(f"{what}: expected a SyntheticPath, got {type(path).__name__}.")
    ts, assets, a = _wide(path.bars)
    return ts, assets, np.diff(np.log(a["close"]), axis=0)


def crash(
    path: SyntheticPath,
    *,
    drop: float,
    days: int,
    at: int | _DateLike,
    assets: Sequence[str] | None = None,
) -> SyntheticPath:
    """Add a total fall of ``drop`` (0.3 = -30%) over ``days`` bars starting at ``at``.

    Each bar ``at .. at + days - 1`` of the chosen assets (default all) gets an extra log
    return of ``log(1 - drop) / days``, so every close from the end of the window on is
    exactly ``1 - drop`` times the unshocked close. ``at`` is a bar index (>= 1) or a date
    (the first bar on or after it). Raises ConfigError unless ``0 < drop < 1`` or if the
    window does not fit in the path.
    """
    try:
        drop = float(drop)
    except (TypeError, ValueError):
        raise ConfigError(f"crash: drop must be a number in (0, 1), got {drop!r}.") from None
    if not math.isfinite(drop) or drop >= 1.0:
        raise ConfigError(
            f"crash: drop={drop!r} is a shock of 100% or larger; a price cannot fall that far. "
            f"Use a drop strictly between 0 and 1 (0.3 means -30%)."
        )
    if drop <= 0.0:
        raise ConfigError(
            f"crash: drop must be strictly between 0 and 1 (0.3 means -30%), got {drop!r}."
        )
    ts, assets_, r = _path_returns(path, "crash")
    first, last = _window(ts, at, days, "crash")
    mask = _asset_mask(assets_, assets, "crash")
    new = r.copy()
    new[first - 1 : last - 1, mask] += math.log1p(-drop) / int(days)
    return _rebuild(path, new, r)


def vol_spike(
    path: SyntheticPath,
    *,
    factor: float,
    days: int,
    at: int | _DateLike,
    assets: Sequence[str] | None = None,
) -> SyntheticPath:
    """Scale the volatility of ``days`` bars from ``at`` by ``factor``.

    In the window each chosen asset's log return ``r`` becomes
    ``mean + factor * (r - mean)``, with ``mean`` its average return over the window, so
    the window's drift is kept and its standard deviation is multiplied by ``factor``.
    Raises ConfigError unless ``factor > 0`` or if the window does not fit.
    """
    try:
        factor = float(factor)
    except (TypeError, ValueError):
        raise ConfigError(f"vol_spike: factor must be a number > 0, got {factor!r}.") from None
    if not (math.isfinite(factor) and factor > 0):
        raise ConfigError(f"vol_spike: factor must be a finite number > 0, got {factor!r}.")
    ts, assets_, r = _path_returns(path, "vol_spike")
    first, last = _window(ts, at, days, "vol_spike")
    mask = _asset_mask(assets_, assets, "vol_spike")
    new = r.copy()
    block = new[first - 1 : last - 1][:, mask]
    mean = block.mean(axis=0)
    new[first - 1 : last - 1, mask] = mean + factor * (block - mean)
    return _rebuild(path, new, r)


def correlation_shock(
    path: SyntheticPath,
    *,
    days: int,
    at: int | _DateLike,
    strength: float = 1.0,
) -> SyntheticPath:
    """Push the cross-asset correlation of ``days`` bars from ``at`` towards 1.

    In the window let ``m_t`` be the cross-sectional mean log return of all assets and,
    for asset ``i``, ``mu_i``/``sd_i`` the window mean/standard deviation of its returns
    and ``mu_m``/``sd_m`` those of ``m``. The common component
    ``c_it = mu_i + (m_t - mu_m) * sd_i / sd_m`` has asset ``i``'s own mean and
    volatility; the new return is ``(1 - strength) * r_it + strength * c_it``. At
    ``strength = 1`` every pair of assets is perfectly correlated in the window.
    Raises ConfigError unless ``0 <= strength <= 1`` and ``days >= 2``, or if the window
    does not fit.
    """
    try:
        strength = float(strength)
    except (TypeError, ValueError):
        raise ConfigError(
            f"correlation_shock: strength must be in [0, 1], got {strength!r}."
        ) from None
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"correlation_shock: strength must be in [0, 1], got {strength!r}.")
    if isinstance(days, (int, np.integer)) and not isinstance(days, bool) and days < 2:
        raise ConfigError(
            f"correlation_shock: days must be at least 2 (a correlation needs two bars), got {days}."
        )
    ts, _, r = _path_returns(path, "correlation_shock")
    first, last = _window(ts, at, days, "correlation_shock")
    new = r.copy()
    block = r[first - 1 : last - 1]
    m = block.mean(axis=1)
    sd_m = m.std(ddof=1)
    if not sd_m > 0:
        return _rebuild(path, new, r)
    common = block.mean(axis=0) + np.outer(m - m.mean(), block.std(axis=0, ddof=1) / sd_m)
    new[first - 1 : last - 1] = (1.0 - strength) * block + strength * common
    return _rebuild(path, new, r)


def apply_shocks(path: SyntheticPath, shocks: Sequence[Mapping[str, Any]]) -> SyntheticPath:
    """Apply shocks in order; each is a mapping with ``kind`` and that shock's arguments.

    ``kind`` is ``"crash"`` (:func:`crash`), ``"vol_spike"`` (:func:`vol_spike`) or
    ``"correlation"`` (:func:`correlation_shock`). Raises ConfigError for an unknown kind
    or arguments the shock does not take.
    """
    functions = {"crash": crash, "vol_spike": vol_spike, "correlation": correlation_shock}
    for i, shock in enumerate(shocks):
        if not isinstance(shock, Mapping) or "kind" not in shock:
            raise ConfigError(
                f"shocks[{i}] must be a mapping with a 'kind' key (one of {list(SHOCK_KINDS)}), "
                f"got {shock!r}."
            )
        kwargs = dict(shock)
        kind = kwargs.pop("kind")
        if kind not in functions:
            raise ConfigError(
                f"shocks[{i}]: unknown kind {kind!r}; the kinds are {list(SHOCK_KINDS)}."
            )
        try:
            path = functions[kind](path, **kwargs)
        except TypeError as exc:
            raise ConfigError(
                f"shocks[{i}] ({kind}): bad arguments {sorted(kwargs)}: {exc}."
            ) from None
    return path
