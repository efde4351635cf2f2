"""The workloads' decisions, computed once in numpy and handed to every engine as is.

Every engine gets the very same boolean/weight arrays, so a difference in results can
only come from the simulation, never from two indicator implementations disagreeing on
a near-tie.
"""

from __future__ import annotations

import numpy as np

from engine import DataError


def sma(close: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average per column; NaN until ``window`` bars exist (as-of t)."""
    if window < 1:
        raise DataError(f"SMA window must be >= 1, got {window}")
    out = np.full(close.shape, np.nan)
    if close.shape[0] < window:
        return out
    csum = np.cumsum(close, axis=0)
    out[window - 1] = csum[window - 1] / window
    out[window:] = (csum[window:] - csum[:-window]) / window
    return out


def _previous(a: np.ndarray, fill) -> np.ndarray:
    out = np.full_like(a, fill)
    out[1:] = a[:-1]
    return out


def sma_crossover(close: np.ndarray, fast: int = 20, slow: int = 100
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(long_entry, short_entry): the fast SMA crosses above / below the slow one at t.

    A cross needs both averages on bars t-1 and t; "above" is strict at t and the previous
    bar was at or below (mirror for "below"), so a cross is flagged on one bar only.
    """
    if not 1 <= fast < slow:
        raise DataError(f"need 1 <= fast < slow for an SMA crossover, got {fast}/{slow}")
    f, s = sma(close, fast), sma(close, slow)
    valid = np.isfinite(f) & np.isfinite(s)
    valid &= _previous(valid, False)
    above, below = f > s, f < s
    long_entry = valid & above & ~_previous(above, False)
    short_entry = valid & below & ~_previous(below, False)
    return long_entry, short_entry


def month_starts(ts: np.ndarray) -> np.ndarray:
    """Boolean per bar: the first bar of a calendar month (never the very first bar)."""
    months = ts.astype("datetime64[M]")
    out = np.zeros(ts.shape[0], dtype=bool)
    out[1:] = months[1:] != months[:-1]
    return out


def momentum_topk_weights(close: np.ndarray, ts: np.ndarray, *, lookback: int = 252,
                          k: int = 50, gross: float = 1.0) -> np.ndarray:
    """Monthly long-short target weights: long the top ``k`` by trailing return, short the
    bottom ``k``, ``gross / 2`` on each side in equal weights, 0 for everyone else.

    Rows are NaN (no instruction) except on the first bar of each month with ``lookback``
    bars of history; momentum there is ``close[t] / close[t - lookback] - 1`` -- closes up
    to the rebalance bar only. Ties rank by column order (stable sort).
    """
    n_bars, n = close.shape
    if not 1 <= k <= n // 2:
        raise DataError(f"top-k needs 1 <= k <= n_assets / 2, got k={k} for {n} assets")
    if lookback < 1:
        raise DataError(f"momentum lookback must be >= 1 bar, got {lookback}")
    weights = np.full((n_bars, n), np.nan)
    side = gross / 2.0 / k
    for t in np.nonzero(month_starts(ts))[0]:
        if t < lookback:
            continue
        momentum = close[t] / close[t - lookback] - 1.0
        if not np.isfinite(momentum).all():
            raise DataError(f"momentum at bar {t} is not finite for every asset; the "
                            "benchmark panel must be gap-free with positive closes")
        rank = np.argsort(momentum, kind="stable")
        row = np.zeros(n)
        row[rank[-k:]] = side
        row[rank[:k]] = -side
        weights[t] = row
    return weights


def shift_one_bar(a: np.ndarray) -> np.ndarray:
    """Move row t to t+1: a decision at the close of t becomes an order placed on bar t+1.

    This is how our ``fill="next_close"`` maps onto vectorbt, which fills an order at the
    close of the bar it is placed on (False / NaN on the first bar).
    """
    return _previous(a, False if a.dtype == np.bool_ else np.nan)
