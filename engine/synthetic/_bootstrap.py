"""The stationary block bootstrap (Politis and Romano 1994)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from engine.errors import ConfigError, DataError
from engine.synthetic._paths import (
    SyntheticPath,
    _bars_frame,
    _business_days,
    _check_counts,
    _check_seed,
    _close_matrix,
    _DateLike,
    _initial_vector,
    _ohlcv,
    _path_rngs,
)


def stationary_bootstrap_indices(
    n_obs: int, n_days: int, *, mean_block: float, rng: np.random.Generator
) -> np.ndarray:
    """Indices into ``n_obs`` observations for a stationary bootstrap of ``n_days`` days.

    Day 0 starts a block; every later day starts a new block with probability
    ``1 / mean_block`` (so block lengths are geometric with mean ``mean_block``) and
    otherwise takes the index after the previous day's, wrapping from ``n_obs - 1`` to 0.
    A new block starts at an index drawn uniformly from ``0 .. n_obs - 1``.
    """
    if n_obs < 1:
        raise DataError("stationary bootstrap needs at least 1 observation.")
    if not (math.isfinite(mean_block) and mean_block >= 1.0):
        raise ConfigError(f"mean_block must be a finite number >= 1, got {mean_block!r}.")
    new_block = rng.random(n_days) < 1.0 / mean_block
    new_block[0] = True
    starts = rng.integers(0, n_obs, size=n_days)
    pos = np.arange(n_days)
    block_start = np.maximum.accumulate(np.where(new_block, pos, 0))
    return (starts[block_start] + (pos - block_start)) % n_obs


def block_bootstrap(
    bars: pl.DataFrame,
    n_days: int,
    n_paths: int = 1,
    *,
    seed: int,
    mean_block: float = 20.0,
    assets: Sequence[str] | None = None,
    start: _DateLike = "2000-01-03",
    hist_start: _DateLike | None = None,
    hist_end: _DateLike | None = None,
    initial_prices: float | Mapping[str, float] = 100.0,
) -> list[SyntheticPath]:
    """Stationary block bootstrap of historical daily log returns (Politis-Romano).

    Historical closes of ``assets`` (default all) between ``hist_start`` and
    ``hist_end`` are aligned on the dates where every asset has a close, turned into log
    returns and resampled a whole day (all assets together) at a time with
    :func:`stationary_bootstrap_indices`. Bars are built as described in the module
    docstring, with each asset's full-sample daily volatility for the open gap and wicks.
    ``regimes`` holds ``regime = "bootstrap"`` and ``source_ts``, the historical date
    whose returns each synthetic bar carries.

    Raises ConfigError for ``n_days < 2``, ``n_paths < 1`` or ``mean_block < 1``;
    DataError for bad bars, unknown assets or fewer than 3 usable dates.
    """
    _check_counts(n_days, n_paths)
    seed = _check_seed(seed)
    if not (isinstance(mean_block, (int, float)) and math.isfinite(mean_block) and mean_block >= 1):
        raise ConfigError(f"mean_block must be a finite number >= 1, got {mean_block!r}.")
    dates, chosen, closes = _close_matrix(bars, assets, hist_start, hist_end, "block_bootstrap")
    if len(dates) < 3:
        raise DataError(
            f"block_bootstrap: {len(dates)} dates on which all of {list(chosen)} have a close; "
            f"at least 3 are needed (2 returns)."
        )
    returns = np.diff(np.log(closes), axis=0)
    source_dates = dates[1:]
    vol = returns.std(axis=0, ddof=1)
    ts = _business_days(start, int(n_days))
    p0 = _initial_vector(initial_prices, chosen)
    out = []
    for i, rng in enumerate(_path_rngs(seed, int(n_paths))):
        idx = stationary_bootstrap_indices(
            len(returns), int(n_days), mean_block=mean_block, rng=rng
        )
        o, h, lo, c, v = _ohlcv(
            returns[idx], np.broadcast_to(vol, (int(n_days), len(chosen))), p0, rng
        )
        frame = _bars_frame(ts, chosen, o, h, lo, c, v)
        regimes = pl.DataFrame(
            {
                "ts": pl.Series("ts", ts, dtype=pl.Datetime("ns")),
                "regime": pl.Series("regime", ["bootstrap"] * int(n_days), dtype=pl.Utf8),
                "source_ts": pl.Series("source_ts", source_dates[idx]).cast(pl.Datetime("ns")),
            }
        )
        out.append(SyntheticPath(bars=frame, regimes=regimes, seed=seed, path=i))
    return out


# --------------------------------------------------------------------------- shocks
