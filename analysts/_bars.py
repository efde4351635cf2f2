"""Checks and time handling shared by the built-in analysts.

Analysts receive bars that the data layer has already validated; these checks only
guard what the analysts themselves rely on (columns, one row per (ts, asset), positive
finite closes), so a hand-built frame fails with a message instead of silent NaNs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from analysts.base import TimeLike
from engine.errors import ConfigError, DataError


def check_bars(bars: pl.DataFrame, analyst: str) -> pl.DataFrame:
    """The bars' ``ts, asset, close`` columns, sorted by (asset, ts)."""
    if not isinstance(bars, pl.DataFrame):
        raise DataError(
            f"analyst {analyst!r} needs bars as a polars DataFrame, got {type(bars).__name__}; "
            f"load them with engine.data.load_bars(...)"
        )
    missing = [c for c in ("ts", "asset", "close") if c not in bars.columns]
    if missing:
        raise DataError(
            f"analyst {analyst!r}: bars lack column(s) {missing} (columns: {bars.columns}); "
            f"bars are long frames with ts, asset, close"
        )
    if bars.height == 0:
        raise DataError(f"analyst {analyst!r}: the bars frame is empty; load some data first")
    frame = bars.select("ts", "asset", "close").with_row_index("_row")
    if frame["ts"].dtype == pl.Date:
        frame = frame.with_columns(pl.col("ts").cast(pl.Datetime("us")))
    if not isinstance(frame["ts"].dtype, pl.Datetime):
        raise DataError(
            f"analyst {analyst!r}: bars column 'ts' must be a Datetime, got "
            f"{frame['ts'].dtype}; parse it with pl.col('ts').str.to_datetime()"
        )
    frame = frame.with_columns(pl.col("asset").cast(pl.String), pl.col("close").cast(pl.Float64))
    close = frame["close"].fill_null(np.nan).to_numpy()
    bad = np.flatnonzero(~(np.isfinite(close) & (close > 0)))
    if bad.size:
        row = frame.row(int(bad[0]), named=True)
        raise DataError(
            f"analyst {analyst!r}: bars row {row['_row']} (asset {row['asset']!r}, ts "
            f"{row['ts']}) has close {row['close']}; closes must be finite and > 0 -- validate "
            f"the bars with engine.data.validate_bars"
        )
    frame = frame.sort("asset", "ts")
    dup = frame.select(
        (pl.col("asset") == pl.col("asset").shift(1)) & (pl.col("ts") == pl.col("ts").shift(1))
    ).to_series()
    if dup.any():
        row = frame.row(int(np.flatnonzero(dup.fill_null(False).to_numpy())[0]), named=True)
        raise DataError(
            f"analyst {analyst!r}: bars have two rows for asset {row['asset']!r} at ts "
            f"{row['ts']} (row {row['_row']}); keep one bar per asset and ts"
        )
    return frame.drop("_row")


def as_datetime(value: TimeLike, dtype: pl.Datetime, what: str) -> datetime:
    """``value`` as a datetime comparable with a column of ``dtype`` (same time zone)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(
                f"{what} {value!r} is not an ISO 8601 date or time; write e.g. '2020-01-31'"
            ) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if not isinstance(value, datetime):
        raise ConfigError(f"{what} must be a datetime, date or ISO string, got {value!r}")
    zone = dtype.time_zone
    if zone is None:
        # Naive bars are UTC by contract: move an aware bound to UTC and drop its zone.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(ZoneInfo(zone))


def in_window(
    frame: pl.DataFrame, start: TimeLike | None, end: TimeLike | None, *, column: str = "ts"
) -> pl.DataFrame:
    """Rows of ``frame`` with ``start <= ts <= end`` (either bound optional)."""
    dtype = frame[column].dtype
    if start is not None:
        frame = frame.filter(pl.col(column) >= as_datetime(start, dtype, "start"))
    if end is not None:
        frame = frame.filter(pl.col(column) <= as_datetime(end, dtype, "end"))
    return frame


def logistic(z: pl.Expr) -> pl.Expr:
    return 1.0 / (1.0 + (-z).exp())
