"""``file``: bring your own signals from a parquet or CSV file.

The file is a long signals frame (DESIGN.md "Signals"): ``ts``, ``asset`` and one or
more numeric signal columns (``score, prob_up, pred_return, uncertainty`` or any other,
e.g. ``target_weight`` for the ``weights`` strategy). The analyst cannot check how the
numbers were made: it trusts that a row dated ``t`` used information up to ``t`` only,
and says so in its docstring rather than pretending otherwise.

Naive timestamps next to time-zone-aware bars are read in the bars' zone; aware ones are
converted. Rows for assets the bars do not have, and rows dated after the bars' last
bar, are dropped at ``predict`` (a file often covers more than one run's universe).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import polars as pl
from pydantic import Field

from analysts._bars import as_datetime, check_bars, in_window
from analysts._config import ConfiguredAnalyst, did_you_mean
from analysts.base import AnalystConfig, TimeLike
from engine.errors import ConfigError, DataError

_READERS = {".parquet": pl.read_parquet, ".pq": pl.read_parquet}
# Signal columns with a bounded meaning (DESIGN.md "Signals"): (low, high, as words).
_RANGES = {"prob_up": (0.0, 1.0, "in [0, 1]"), "uncertainty": (0.0, np.inf, ">= 0")}


class FileConfig(AnalystConfig):
    """``path``: a .parquet/.pq or .csv file. ``columns``: the signal columns to keep
    (default: every column but ts and asset)."""

    path: str = Field(min_length=1)
    columns: tuple[str, ...] | None = None


def _read(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise ConfigError(
            f"file analyst: signals file {str(path)!r} does not exist; fix the analyst's "
            f"'path' (relative paths start at {Path.cwd()})"
        )
    suffix = path.suffix.lower()
    if suffix not in (*_READERS, ".csv"):
        raise ConfigError(
            f"file analyst: {str(path)!r} has suffix {suffix!r}; signals files are .parquet, "
            f".pq or .csv"
        )
    try:
        if suffix == ".csv":
            return pl.read_csv(path, try_parse_dates=True)
        return _READERS[suffix](path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(
            f"file analyst: cannot read {str(path)!r} ({exc}); check that it is a valid "
            f"{suffix[1:]} file"
        ) from None


def _parse_ts(frame: pl.DataFrame, where: str) -> pl.DataFrame:
    dtype = frame["ts"].dtype
    if dtype == pl.String:
        parsed = frame["ts"].str.to_datetime(strict=False)
        bad = np.flatnonzero((parsed.is_null() & frame["ts"].is_not_null()).to_numpy())
        if bad.size:
            raise DataError(
                f"{where}: row {int(bad[0])} has ts {frame['ts'][int(bad[0])]!r}, which is not "
                f"a date or time; write ISO 8601 such as 2020-01-31 or 2020-01-31T16:00:00"
            )
        return frame.with_columns(parsed.alias("ts"))
    if dtype == pl.Date:
        return frame.with_columns(pl.col("ts").cast(pl.Datetime("us")))
    if isinstance(dtype, pl.Datetime):
        return frame
    raise DataError(f"{where}: column 'ts' has type {dtype}; it must hold dates or times")


def _describe_row(frame: pl.DataFrame, row: int) -> str:
    return f"row {row} (asset {frame['asset'][row]!r}, ts {frame['ts'][row]})"


def read_signals_file(path: str | Path, columns: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Load and validate a signals file: ``ts, asset`` + float64 signal columns, sorted."""
    path = Path(path)
    where = f"signals file {str(path)!r}"
    frame = _read(path)
    missing = [c for c in ("ts", "asset") if c not in frame.columns]
    if missing:
        hints = "".join(did_you_mean(c, frame.columns) for c in missing)
        raise DataError(
            f"{where} lacks column(s) {missing}{hints}; its columns are {frame.columns}. "
            f"Rename them: signals files need ts and asset"
        )
    others = [c for c in frame.columns if c not in ("ts", "asset")]
    if columns is not None:
        absent = [c for c in columns if c not in others]
        if absent:
            raise ConfigError(
                f"file analyst: columns {absent} are not in {where}"
                f"{did_you_mean(absent[0], others)}; it has {others}"
            )
        others = list(columns)
    if not others:
        raise DataError(
            f"{where} has no signal column besides ts and asset; add e.g. prob_up, score or "
            f"pred_return"
        )
    frame = _parse_ts(frame.select("ts", "asset", *others), where)
    nulls = np.flatnonzero((frame["ts"].is_null() | frame["asset"].is_null()).to_numpy())
    if nulls.size:
        raise DataError(f"{where}: row {int(nulls[0])} has an empty ts or asset; fill or drop it")
    frame = frame.with_columns(pl.col("asset").cast(pl.String))

    for column in others:
        if not frame[column].dtype.is_numeric():
            raise DataError(
                f"{where}: signal column {column!r} has type {frame[column].dtype}; signal "
                f"columns hold numbers"
            )
        values = frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(
                f"{where}: {column} is {values[bad[0]]} at {_describe_row(frame, int(bad[0]))}; "
                f"give a finite value or drop the row"
            )
        if column in _RANGES:
            low, high, allowed = _RANGES[column]
            bad = np.flatnonzero((values < low) | (values > high))
            if bad.size:
                raise DataError(
                    f"{where}: {column} must be {allowed}, got {values[bad[0]]} at "
                    f"{_describe_row(frame, int(bad[0]))}"
                )
        frame = frame.with_columns(pl.Series(column, values))

    dup = frame.select(pl.struct("ts", "asset").is_duplicated()).to_series().to_numpy()
    if dup.any():
        raise DataError(
            f"{where}: more than one row for {_describe_row(frame, int(np.flatnonzero(dup)[0]))}; "
            f"keep one row per asset and ts"
        )
    return frame.sort("ts", "asset")


def _to_dtype(frame: pl.DataFrame, target: pl.Datetime) -> pl.DataFrame:
    from engine.data import match_ts_type  # naive timestamps are UTC, everywhere

    return match_ts_type(frame, target)


class FileAnalyst(ConfiguredAnalyst):
    """Signals read from ``path``; the file's ts are trusted as as-of times."""

    name: ClassVar[str] = "file"
    config_class: ClassVar[type[AnalystConfig]] = FileConfig
    config: FileConfig

    def _load(self) -> pl.DataFrame:
        return read_signals_file(self.config.path, self.config.columns)

    def fit(self, bars: pl.DataFrame, until: TimeLike | None = None) -> Self:
        """Nothing to learn; reads and validates the file now so a bad one fails early."""
        frame = check_bars(bars, self.name)
        if until is not None:
            as_datetime(until, frame["ts"].dtype, "until")
        self._load()
        return self

    def predict(
        self, bars: pl.DataFrame, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pl.DataFrame:
        frame = check_bars(bars, self.name)
        signals = _to_dtype(self._load(), frame["ts"].dtype)
        assets = frame["asset"].unique().to_list()
        known = signals.filter(pl.col("asset").is_in(assets))
        if known.height == 0:
            file_assets = signals["asset"].unique().sort().to_list()
            raise DataError(
                f"signals file {self.config.path!r} has no row for the bars' assets "
                f"{sorted(assets)[:20]}{did_you_mean(file_assets[0], assets)}; its assets are "
                f"{file_assets[:20]}"
            )
        known = known.filter(pl.col("ts") <= frame["ts"].max())
        return in_window(known, start, end)
