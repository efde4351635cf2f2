"""Turning sample paths of a forecasting model into one forecast and its spread.

Toto and Kronos draw many sample paths of the future; an analyst reduces them to one
``pred_return`` with an aggregate named in its config:

=========================  ===========================================================
``mean``                   the average of the paths
``median``                 the middle path value
``quantile_Q``             the Q quantile, 0 < Q < 1 (``quantile_0.4``: a cautious view)
``trimmed_mean_X``         the mean after dropping X% of the paths at each tail (0 <= X < 50)
``lower_trimmed_mean_X``   the mean after dropping only the top X% (0 <= X < 100):
                           discounts the most optimistic paths
=========================  ===========================================================

Aggregates apply value by value across paths (at each horizon step). From the paths'
values at the horizon, ``prob_up`` is the share of paths ending above the last close and
``uncertainty`` the standard deviation of the paths' returns to the horizon.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from engine.errors import ConfigError

_FORMS = ("mean", "median", "quantile_Q (0 < Q < 1, e.g. quantile_0.4)",
          "trimmed_mean_X (0 <= X < 50, e.g. trimmed_mean_10)",
          "lower_trimmed_mean_X (0 <= X < 100, e.g. lower_trimmed_mean_20)")
_NUMBER = r"(\d+(?:\.\d+)?)"


@dataclass(frozen=True)
class Aggregate:
    """A parsed aggregate; call :meth:`reduce` on paths along ``axis``."""

    name: str
    kind: str  # mean, median, quantile, trimmed, lower_trimmed
    value: float = 0.0

    def reduce(self, paths: np.ndarray, axis: int = 0) -> np.ndarray:
        x = np.asarray(paths, dtype=np.float64)
        if x.shape[axis] == 0:
            raise ConfigError("cannot aggregate zero sample paths")
        if self.kind == "mean":
            return x.mean(axis=axis)
        if self.kind == "median":
            return np.median(x, axis=axis)
        if self.kind == "quantile":
            return np.quantile(x, self.value, axis=axis)
        n = x.shape[axis]
        ordered = np.sort(x, axis=axis)
        cut_top = int(math.floor(n * self.value / 100.0))
        cut_low = cut_top if self.kind == "trimmed" else 0
        keep = np.arange(cut_low, n - cut_top)
        if keep.size == 0:  # pragma: no cover - ranges above keep at least one path
            keep = np.arange(n)
        return np.take(ordered, keep, axis=axis).mean(axis=axis)


def parse_aggregate(name: str) -> Aggregate:
    """Parse an aggregate name (see the module docstring); ConfigError lists the forms."""
    text = str(name).strip()
    if text in ("mean", "median"):
        return Aggregate(text, text)
    match = re.fullmatch(rf"quantile_{_NUMBER}", text)
    if match and 0.0 < float(match.group(1)) < 1.0:
        return Aggregate(text, "quantile", float(match.group(1)))
    match = re.fullmatch(rf"(lower_)?trimmed_mean_{_NUMBER}", text)
    if match:
        value = float(match.group(2))
        lower = match.group(1) is not None
        if (lower and 0.0 <= value < 100.0) or (not lower and 0.0 <= value < 50.0):
            return Aggregate(text, "lower_trimmed" if lower else "trimmed", value)
    raise ConfigError(f"aggregate {name!r} does not parse; valid forms: {'; '.join(_FORMS)}")


def summarise_paths(paths: np.ndarray, last_close: np.ndarray | float,
                    aggregate: Aggregate | str) -> dict[str, np.ndarray]:
    """Signals from price paths ``[..., paths, horizon]`` and the last observed close.

    Returns ``pred_price`` (aggregate of the horizon values), ``pred_return``
    (``pred_price / last_close - 1``), ``prob_up`` (share of paths ending above the last
    close; ties count half) and ``uncertainty`` (std of the paths' horizon returns, 0 for
    a single path).
    """
    agg = parse_aggregate(aggregate) if isinstance(aggregate, str) else aggregate
    x = np.asarray(paths, dtype=np.float64)
    if x.ndim < 2:
        raise ConfigError(f"paths must be [..., paths, horizon], got shape {x.shape}")
    last = np.asarray(last_close, dtype=np.float64)
    final = x[..., -1]  # [..., paths]
    returns = final / last[..., None] - 1.0
    pred_price = agg.reduce(final, axis=-1)
    up = (final > last[..., None]).mean(axis=-1) + 0.5 * (final == last[..., None]).mean(axis=-1)
    spread = returns.std(axis=-1, ddof=1) if x.shape[-2] > 1 else np.zeros(final.shape[:-1])
    return {"pred_price": pred_price, "pred_return": pred_price / last - 1.0,
            "prob_up": up, "uncertainty": spread}
