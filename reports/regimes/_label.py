"""Automatic regime labels for any price or return series (for reports, not for trading).

Two rules, both standard and both easy to check by hand:

* **Drawdown rule (bull / bear).** A bear market is a fall of at least ``threshold``
  (20% by default) from a running peak; it runs from that peak to the lowest point before
  prices rise ``threshold`` from it again; everything else is bull. Dating a peak needs
  the fall that follows it, so the labels use the whole series: they describe what
  happened, and must never feed a decision (a strategy sees only causal features).
* **Volatility terciles (low_vol / mid_vol / high_vol).** The trailing ``window``-bar
  volatility of returns, cut at its own 1/3 and 2/3 quantiles over the series. The first
  ``window - 1`` bars have no full window and take the first full window's label.

Both return one label per bar, as a numpy array of strings.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ConfigError, DataError


def drawdown_regimes(prices: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """``bull`` / ``bear`` per bar by the peak-to-trough rule (see the module docstring)."""
    p = np.asarray(prices, dtype=np.float64)
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"drawdown threshold must be in (0, 1), got {threshold}")
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise DataError("drawdown regimes need a 1-d series of positive finite prices")
    labels = np.full(p.size, "bull", dtype=object)
    state = "bull"
    peak_i = trough_i = 0
    for i in range(1, p.size):
        if state == "bull":
            if p[i] > p[peak_i]:
                peak_i = i
            elif p[i] <= p[peak_i] * (1.0 - threshold):
                state, trough_i = "bear", i
        else:
            if p[i] < p[trough_i]:
                trough_i = i
            elif p[i] >= p[trough_i] * (1.0 + threshold):
                labels[peak_i + 1: trough_i + 1] = "bear"  # the fall: after the peak bar
                state, peak_i = "bull", i
                for j in range(trough_i + 1, i + 1):  # the new peak since the trough
                    if p[j] > p[peak_i]:
                        peak_i = j
    if state == "bear":  # still falling or not yet recovered at the end: bear to the low
        labels[peak_i + 1: trough_i + 1] = "bear"
    return labels.astype(str)


def volatility_regimes(returns: np.ndarray, window: int = 21) -> np.ndarray:
    """``low_vol`` / ``mid_vol`` / ``high_vol`` per bar by trailing-volatility terciles."""
    r = np.asarray(returns, dtype=np.float64)
    if window < 2:
        raise ConfigError(f"volatility window must be at least 2 bars, got {window}")
    if r.ndim != 1 or r.size < window:
        raise DataError(f"volatility regimes need at least {window} returns, got {r.size}")
    r = np.where(np.isfinite(r), r, 0.0)
    csum = np.concatenate([[0.0], np.cumsum(r)])
    csq = np.concatenate([[0.0], np.cumsum(r * r)])
    n = window
    mean = (csum[n:] - csum[:-n]) / n
    var = np.maximum((csq[n:] - csq[:-n]) / n - mean * mean, 0.0) * n / (n - 1)
    vol = np.sqrt(var)
    vol = np.concatenate([np.full(window - 1, vol[0]), vol])
    low, high = np.quantile(vol, [1 / 3, 2 / 3])
    return np.where(vol <= low, "low_vol", np.where(vol <= high, "mid_vol", "high_vol"))


def episodes(mask: np.ndarray) -> int:
    """Number of separate runs of True in ``mask`` (how many times a regime occurred)."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return 0
    return int(m[0]) + int(np.count_nonzero(m[1:] & ~m[:-1]))
