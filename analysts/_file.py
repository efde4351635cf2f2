"""``file``: bring your own signals from a parquet or CSV file.

The file is a long signals frame (DESIGN.md "Signals"): ``ts``, ``asset`` and one or
more numeric signal columns (``score, prob_up, pred_return, uncertainty`` or any other,
e.g. ``target_weight`` for the ``weights`` strategy). The analyst cannot check how the
numbers were made: it trusts that a row dated ``t`` used information up to ``t`` only,
and says so in its docstring rather than pretending otherwise.

Naive timestamps next to time-zone-aware bars are read in the bars' zone; aware ones are
converted. Nothing is dropped silently: a row for an asset the bars do not have (a typo
such as ``APPL`` would otherwise leave AAPL out of the book) is an error naming the row,
unless ``ignore_unknown_assets: true`` (a file that covers more than this run's universe),
which drops those rows with a warning. A row dated after the last bar of the data is an
error too: ``predict`` without ``end`` raises it, and :meth:`FileAnalyst.check_no_rows_after`
lets the application ask when the bars it holds run to the data's own end (a period cut
short by ``data.end`` leaves later rows out, as any window does).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from pydantic import Field

from analysts._bars import as_datetime, check_bars, in_window
from analysts._config import ConfiguredAnalyst, did_you_mean
from analysts.base import AnalystConfig, TimeLike
from engine.errors import ConfigError, DataError
from engine.text import shorten

_READERS = {".parquet": pl.read_parquet, ".pq": pl.read_parquet}
# Signal columns with a bounded meaning (DESIGN.md "Signals"): (low, high, as words).
_RANGES = {"prob_up": (0.0, 1.0, "in [0, 1]"), "uncertainty": (0.0, np.inf, ">= 0")}


class FileConfig(AnalystConfig):
    """``path``: a .parquet/.pq or .csv file. ``columns``: the signal columns to keep
    (default: every column but ts and asset)."""

    path: str = Field(min_length=1)
    columns: tuple[str, ...] | None = None
    ignore_unknown_assets: bool = Field(
        False, description="drop rows for assets the bars do not have, with a warning, "
        "instead of refusing the file")


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
        try:
            parsed = frame["ts"].str.to_datetime(strict=False)
        except pl.exceptions.PolarsError:  # no format fits even the first value
            parsed = pl.Series("ts", [None] * frame.height, dtype=pl.Datetime("us"))
        bad = np.flatnonzero((parsed.is_null() & frame["ts"].is_not_null()).to_numpy())
        if bad.size:
            raise DataError(
                f"{where}: row {int(bad[0])} has ts {shorten(frame['ts'][int(bad[0])])}, which "
                f"is not a date or time; write ISO 8601 such as 2020-01-31 or 2020-01-31T16:00:00"
            )
        return frame.with_columns(parsed.alias("ts"))
    if dtype == pl.Date:
        return frame.with_columns(pl.col("ts").cast(pl.Datetime("us")))
    if isinstance(dtype, pl.Datetime):
        return frame
    raise DataError(f"{where}: column 'ts' has type {dtype}; it must hold dates or times")


def _describe_row(frame: pl.DataFrame, row: int) -> str:
    return f"row {row} (asset {frame['asset'][row]!r}, ts {frame['ts'][row]})"


def read_signals_file(path: str | Path, columns: tuple[str, ...] | None = None, *,
                      rows: bool = False) -> pl.DataFrame:
    """Load and validate a signals file: ``ts, asset`` + float64 signal columns, sorted.

    ``rows=True`` keeps a ``_row`` column (the 0-based data row in the file) for messages.
    """
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
    if rows:
        frame = frame.with_row_index("_row")
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
        return read_signals_file(self.config.path, self.config.columns, rows=True)

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
        known = self._known_assets(signals, frame["asset"].unique().sort().to_list())
        last_bar = frame["ts"].max()
        if end is None:  # everything up to the end of the bars: nothing may lie beyond
            self._refuse_late(known, last_bar)
        return in_window(known.filter(pl.col("ts") <= last_bar), start, end).drop("_row")

    def check_no_rows_after(self, bars: pl.DataFrame) -> None:
        """Raise DataError for a row (of the bars' assets) dated after the last bar of
        ``bars``; the application calls it when ``bars`` run to the data's own end."""
        frame = check_bars(bars, self.name)
        signals = _to_dtype(self._load(), frame["ts"].dtype)
        known = signals.filter(pl.col("asset").is_in(frame["asset"].unique().to_list()))
        self._refuse_late(known, frame["ts"].max())

    def _refuse_late(self, signals: pl.DataFrame, last_bar: Any) -> None:
        late = signals.filter(pl.col("ts") > last_bar)
        if late.height:
            row = late.sort("_row").row(0, named=True)
            raise DataError(
                f"{self._where(row['_row'])} (asset {shorten(row['asset'], 60)}, ts {row['ts']}) is dated "
                f"after the last bar {last_bar} ({late.height} such rows): no bar could act on "
                "it. Drop the rows past the end of the data, or load bars that cover them"
            )

    def _where(self, row: int) -> str:
        line = f" (line {row + 2})" if self.config.path.lower().endswith(".csv") else ""
        return f"signals file {self.config.path!r}: row {row}{line}"

    def _known_assets(self, signals: pl.DataFrame, assets: list[str]) -> pl.DataFrame:
        """The rows for assets of the bars; the others refused or, if asked, dropped."""
        unknown = signals.filter(~pl.col("asset").is_in(assets))
        if unknown.height == 0:
            return signals
        names = unknown["asset"].unique().sort().to_list()
        if unknown.height == signals.height:
            raise DataError(
                f"signals file {self.config.path!r} has no row for the bars' assets "
                f"{assets[:20]}{did_you_mean(names[0], assets)}; its assets are {names[:20]}"
            )
        shown = ", ".join(repr(a) for a in names[:10]) + (" ..." if len(names) > 10 else "")
        if self.config.ignore_unknown_assets:
            warnings.warn(
                f"signals file {self.config.path!r}: dropped {unknown.height} rows for "
                f"{len(names)} asset(s) the data does not have ({shown}) because "
                "ignore_unknown_assets is true", UserWarning, stacklevel=3)
            return signals.filter(pl.col("asset").is_in(assets))
        row = unknown.sort("_row").row(0, named=True)
        raise DataError(
            f"{self._where(row['_row'])} is for asset {shorten(row['asset'], 60)}, which the data does "
            f"not have{did_you_mean(row['asset'], assets)} ({unknown.height} rows for "
            f"{len(names)} such asset(s): {shown}; the data has {assets[:20]}). Fix the asset "
            "name, or set ignore_unknown_assets: true in the file analyst's config to drop "
            "those rows with a warning"
        )
