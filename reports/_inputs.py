"""Turn the shapes users hand to reports into checked numpy arrays, once.

Returns may come as a numpy array, a list, a polars or pandas Series, or a polars frame
with ``ts`` and ``return`` columns (``BacktestResult.returns``). Timestamps become int64
nanoseconds, timezone-aware ones converted to UTC, so two series line up on their
instants whatever zone they were written in.

pandas is imported only by :func:`to_pandas` (for quantstats): a pandas object can exist
only once pandas was imported, so the type checks look for it in ``sys.modules``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from engine.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

RETURN_COLUMN = "return"


def _pandas_types(*names: str) -> tuple[type, ...]:
    """pandas classes by name for isinstance, () while pandas is not imported."""
    pandas = sys.modules.get("pandas")
    return () if pandas is None else tuple(getattr(pandas, n) for n in names)


def _first_bad(values: np.ndarray) -> int:
    return int(np.flatnonzero(~np.isfinite(values))[0])


def as_returns_array(returns, name: str = "returns") -> np.ndarray:
    """1-D float64 array of finite simple returns."""
    if isinstance(returns, pl.DataFrame):
        if RETURN_COLUMN not in returns.columns:
            raise DataError(f"{name}: frame has columns {returns.columns}, expected a "
                            f"'{RETURN_COLUMN}' column (e.g. BacktestResult.returns)")
        returns = returns[RETURN_COLUMN]
    if isinstance(returns, (pl.Series, *_pandas_types("Series"))):
        values = returns.to_numpy()
    else:
        values = np.asarray(returns)
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name}: expected numbers (simple returns per bar), got "
                        f"{type(returns).__name__} of {values.dtype}") from None
    if values.ndim != 1:
        raise DataError(f"{name}: expected a 1-D series of per-bar returns, got shape "
                        f"{values.shape}")
    if not np.isfinite(values).all():
        row = _first_bad(values)
        raise DataError(f"{name}: return at row {row} is {values[row]!r}; returns must be "
                        "finite (drop or fill the bar before computing metrics)")
    if (values < -1.0).any():
        row = int(np.flatnonzero(values < -1.0)[0])
        raise DataError(f"{name}: return at row {row} is {values[row]:.6g}, below -100%: "
                        "either equity went below zero or these are not simple returns "
                        "(equity_t / equity_t-1 - 1; not prices, not percentages)")
    return values


def as_ts_ns(ts, name: str = "ts") -> np.ndarray:
    """int64 nanoseconds since the epoch (UTC for zone-aware input)."""
    if isinstance(ts, pl.Series):
        dtype = ts.dtype
        if not isinstance(dtype, pl.Datetime | pl.Date):
            raise DataError(f"{name}: expected datetimes, got polars {dtype}")
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        values = ts.cast(pl.Datetime("ns")).to_numpy()
    elif isinstance(ts, _pandas_types("Series", "DatetimeIndex")):
        import pandas as pd

        index = pd.DatetimeIndex(ts)
        if index.tz is not None:
            index = index.tz_convert("UTC").tz_localize(None)
        values = index.to_numpy()
    else:
        values = np.asarray(ts)
    if not np.issubdtype(values.dtype, np.datetime64):
        raise DataError(f"{name}: expected datetimes, got {values.dtype}")
    values = values.astype("datetime64[ns]")
    if np.isnat(values).any():
        raise DataError(f"{name}: timestamp at row {int(np.flatnonzero(np.isnat(values))[0])} "
                        "is missing")
    return values.view(np.int64)


def returns_with_ts(returns, ts=None, name: str = "returns") -> tuple[np.ndarray, np.ndarray | None]:
    """Returns and their timestamps (from ``ts`` or the frame's ``ts`` column)."""
    if ts is None and isinstance(returns, pl.DataFrame) and "ts" in returns.columns:
        ts = returns["ts"]
    if ts is None and isinstance(returns, _pandas_types("Series")) and isinstance(
            returns.index, _pandas_types("DatetimeIndex")):
        ts = returns.index
    r = as_returns_array(returns, name)
    if ts is None:
        return r, None
    ts_ns = as_ts_ns(ts, f"{name} ts")
    if ts_ns.size != r.size:
        raise DataError(f"{name}: {r.size} returns but {ts_ns.size} timestamps; pass one ts "
                        "per return")
    if ts_ns.size > 1 and not (np.diff(ts_ns) > 0).all():
        row = int(np.flatnonzero(np.diff(ts_ns) <= 0)[0]) + 1
        raise DataError(f"{name}: ts at row {row} ({np.datetime64(int(ts_ns[row]), 'ns')}) is "
                        "not after the previous one; sort by ts and drop duplicates")
    return r, ts_ns


def align_benchmark(r: np.ndarray, ts_ns: np.ndarray | None, benchmark,
                    name: str = "benchmark") -> tuple[np.ndarray, np.ndarray]:
    """Strategy and benchmark returns on the bars both have (inner join on ts).

    A benchmark without timestamps must have one return per strategy bar.
    """
    b, b_ts = returns_with_ts(benchmark, None, name)
    if b_ts is None:
        if b.size != r.size:
            raise DataError(f"{name}: {b.size} returns for {r.size} strategy bars; pass a "
                            "frame with ts and return columns to align on timestamps")
        return r, b
    if ts_ns is None:
        raise DataError(f"{name} has timestamps but the strategy returns do not; pass ts= "
                        "(or a frame with a ts column) so the two can be aligned")
    common, ri, bi = np.intersect1d(ts_ns, b_ts, assume_unique=True, return_indices=True)
    if common.size == 0:
        raise DataError(
            f"{name} shares no timestamp with the strategy (strategy "
            f"{np.datetime64(int(ts_ns[0]), 'ns')} .. {np.datetime64(int(ts_ns[-1]), 'ns')}, "
            f"{name} {np.datetime64(int(b_ts[0]), 'ns')} .. "
            f"{np.datetime64(int(b_ts[-1]), 'ns')}); price it on the strategy's bars"
        )
    return r[ri], b[bi]


def to_pandas(r: np.ndarray, ts_ns: np.ndarray, name: str) -> pd.Series:
    """A pandas Series on a naive DatetimeIndex, the shape quantstats expects."""
    import pandas as pd

    index = pd.DatetimeIndex(ts_ns.view("datetime64[ns]"), name="ts")
    return pd.Series(r, index=index, name=name, dtype=np.float64)


def returns_frame(r: np.ndarray, ts_ns: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"ts": pl.Series(ts_ns.view("datetime64[ns]")).cast(pl.Datetime("ns")),
                         RETURN_COLUMN: r})


def ensure_columns(frame: pl.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{name} lacks column(s) {missing} (has {frame.columns}); pass the "
                        f"frame a BacktestResult exposes as .{name}")
