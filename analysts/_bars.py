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
    frame = bars_by_time(bars, analyst)
    order, _ = AssetRows(frame).by_asset()
    return frame[order].with_columns(pl.col("asset").set_sorted())


def bars_by_time(bars: pl.DataFrame, analyst: str) -> pl.DataFrame:
    """The bars' ``ts, asset, close`` columns, checked and sorted by (ts, asset).

    Bars that arrive sorted (the data layer's contract) are only scanned once: no sort,
    and no string is compared except with its neighbour row's.
    """
    frame = _columns(bars, analyst)
    ts, asset = pl.col("ts"), pl.col("asset")
    prev_ts, prev_asset = ts.shift(1), asset.shift(1)
    ordered = (ts > prev_ts) | ((ts == prev_ts) & (asset > prev_asset))
    ordered = frame.select(ordered.slice(1).fill_null(False).all()).item()
    if ordered:
        return _unflagged(frame.drop("_row"))
    names = frame["asset"].unique().sort()
    frame = frame.with_columns(asset.cast(pl.Enum(names)).to_physical().alias("_code"))
    frame = frame.sort("ts", "_code")
    dup = frame.select((ts == prev_ts) & (pl.col("_code") == pl.col("_code").shift(1)))
    dup = dup.to_series().fill_null(False).to_numpy()
    if dup.any():
        row = frame.row(int(np.flatnonzero(dup)[0]), named=True)
        raise DataError(
            f"analyst {analyst!r}: bars have two rows for asset {row['asset']!r} at ts "
            f"{row['ts']} (row {row['_row']}); keep one bar per asset and ts"
        )
    return _unflagged(frame.drop("_row", "_code"))


class AssetRows:
    """Where each row of a frame sorted by (ts, asset) finds its asset's earlier bars.

    Look-backs count an asset's own bars, not calendar steps. A full panel (every ts has
    the same assets) needs no index: the bar ``k`` steps back is ``k * width`` rows up.
    Otherwise the assets get codes (in name order) and a stable sort by code lists each
    asset's rows in time order.
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self.n_rows = frame.height
        self.width = _panel_width(frame)
        self._order = self._position = self._codes = None
        if self.width is None:
            names = frame["asset"].unique().sort()
            codes = frame["asset"].cast(pl.Enum(names)).to_physical().to_numpy()
            order = np.argsort(codes, kind="stable")
            counts = np.bincount(codes, minlength=names.len())
            starts = np.cumsum(counts) - counts
            # position of the i-th row of the by-asset order within its asset's history
            self._position = np.arange(self.n_rows) - np.repeat(starts, counts)
            self._order, self._codes = order, codes[order]

    def lagged(self, values: np.ndarray, k: int) -> np.ndarray:
        """``values`` of the same asset ``k`` of its bars earlier; NaN where it has fewer."""
        out = np.full(self.n_rows, np.nan)
        if k == 0:
            out[:] = values
        elif self.width is not None:
            shift = k * self.width
            out[shift:] = values[: max(0, self.n_rows - shift)]
        else:
            ok = self._position[k:] >= k
            out[self._order[k:][ok]] = values[self._order[:-k][ok]]
        return out

    def with_history(self, frame: pl.DataFrame, k: int) -> pl.DataFrame:
        """The rows of ``frame`` (the frame these rows index) whose asset has at least
        ``k`` earlier bars, in their order."""
        if self.width is not None:
            return frame.slice(min(k * self.width, self.n_rows))
        mask = np.zeros(self.n_rows, dtype=bool)
        mask[self._order[self._position >= k]] = True
        return frame.filter(pl.Series(mask))

    def by_asset(self) -> tuple[np.ndarray, np.ndarray]:
        """(order, key): the rows in (asset, ts) order and, per row of that order, its
        asset's code (sorted, so polars groups ``over`` it as contiguous slices)."""
        if self.width is not None:
            n_ts = self.n_rows // self.width
            order = np.arange(self.n_rows).reshape(n_ts, self.width).T.ravel()
            return order, np.repeat(np.arange(self.width, dtype=np.uint32), n_ts)
        return self._order, self._codes


def _panel_width(frame: pl.DataFrame) -> int | None:
    """The number of assets when every ts of ``frame`` (sorted by ts, asset, unique) has
    the same assets; None when some ts lacks one."""
    ts = frame["ts"].to_physical().to_numpy()
    n = ts.size
    width = int(np.searchsorted(ts, ts[0], side="right"))
    if n % width:
        return None
    blocks = ts.reshape(n // width, width)
    if not (blocks == blocks[:, :1]).all():
        return None
    asset = frame["asset"]
    if n > width and not (asset.slice(width) == asset.slice(0, n - width)).all():
        return None
    return width


def _unflagged(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its ``ts`` column's sorted flag cleared: polars aggregates the groups
    of a column flagged sorted as slices, summing in another order, so a cross-sectional
    mean would otherwise depend on how the caller built the frame (last-bit differences)."""
    ts = frame["ts"]
    return frame.with_columns(pl.Series("ts", ts.to_physical().to_numpy()).cast(ts.dtype))


def _columns(bars: pl.DataFrame, analyst: str) -> pl.DataFrame:
    """``_row, ts, asset, close`` with their types checked and every close finite, > 0."""
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
    for column in ("ts", "asset"):
        if frame[column].null_count():
            row = frame.row(int(frame[column].is_null().arg_true()[0]), named=True)
            raise DataError(
                f"analyst {analyst!r}: bars row {row['_row']} has no {column}; every bar "
                f"needs a ts and an asset -- validate the bars with engine.data.validate_bars"
            )
    close = frame["close"].fill_null(np.nan).to_numpy()
    bad = np.flatnonzero(~(np.isfinite(close) & (close > 0)))
    if bad.size:
        row = frame.row(int(bad[0]), named=True)
        raise DataError(
            f"analyst {analyst!r}: bars row {row['_row']} (asset {row['asset']!r}, ts "
            f"{row['ts']}) has close {row['close']}; closes must be finite and > 0 -- validate "
            f"the bars with engine.data.validate_bars"
        )
    return frame


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
