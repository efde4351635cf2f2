"""``load_bars``: one entry point for bundled datasets, directories and single files.

Files are per-asset or long; either way the loader normalises column names, parses
timestamps, sorts (a file's row order carries no meaning, unlike a frame handed to
``validate_bars``), validates each file on its own so errors name the file and line, then
checks what only the union can break: time zones that differ between files, and the same
``(ts, asset)`` bar coming from two files.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from engine.errors import ConfigError, DataError

from ._bundled import bundled_names, bundled_path, dataset_info
from ._columns import VALUE_COLUMNS, normalise_columns
from ._messages import did_you_mean, fmt_ts, preview, shorten
from ._partitioned import is_partitioned, read_meta, scan_partitioned
from ._validate import check_bars, check_sorted_unique

_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq")
_NULL_TEXT = ["", "NA", "N/A", "null", "NULL", "None", "#N/A"]
_ROW = "_row"
_FILE_SHIFT = 32
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Bound = str | dt.date | dt.datetime | np.datetime64 | None


class DataWarning(UserWarning):
    """Suspicious but usable input: a skipped file, columns dropped to align files."""


def load_bars(
    source: str | os.PathLike[str],
    *,
    assets: str | Sequence[str] | None = None,
    start: Bound = None,
    end: Bound = None,
    skip_bad_files: bool = False,
) -> pl.DataFrame:
    """Load validated long bars (``ts, asset, close`` + optional OHLCV) from ``source``.

    ``source`` is a bundled dataset name (see ``list_datasets()``; a bundled name wins over
    a same-named path in the working directory, write ``./name`` for the path), a directory of
    per-symbol CSV/parquet files (the asset is the file stem, e.g. ``SPY.csv`` -> ``SPY``,
    unless the file has its own asset/symbol/ticker column), or one CSV/parquet file (long
    with an asset column, or single-asset named by its stem). Vendor column spellings are
    mapped as described in ``engine.data._columns`` (including the adjusted-close rule).

    ``assets`` keeps only those assets (every one must exist). ``start``/``end`` are
    inclusive; a date-only ``end`` such as ``"2020-12-31"`` keeps that whole day. Naive
    bounds on time-zone-aware data are read in the data's zone.

    A broken file in a directory raises DataError naming it, unless ``skip_bad_files``:
    then it is skipped with a :class:`DataWarning` and the rest loads. Optional columns that
    only some files have are dropped (with a warning) so every asset has the same fields.
    """
    if isinstance(source, str) and source in bundled_names():
        bars = _load_bundled(source)
    else:
        path = Path(source).expanduser()
        if is_partitioned(path):
            bars = _load_partitioned(path, assets=assets, start=start, end=end)
        elif path.is_dir():
            bars = _load_directory(path, skip_bad_files=skip_bad_files)
        elif path.is_file():
            bars = _load_files([path], str(path), skip_bad_files=False)
        else:
            names = bundled_names()
            raise DataError(
                f"{shorten(str(source))} is neither a bundled dataset nor an existing file or "
                f"directory (looked for {path.resolve()}). Bundled datasets: "
                f"{', '.join(names)}.{did_you_mean(str(source), names)}"
            )
    return _select(bars, str(source), assets=assets, start=start, end=end)


def load_benchmark(
    name: str, *, start: Bound = None, end: Bound = None
) -> pl.DataFrame | None:
    """Bars of the benchmark the manifest names for bundled dataset ``name``, else None.

    ``load_benchmark("sp500_stocks")`` returns the ``SP500`` bars of ``sp500_index``.
    """
    benchmark = dataset_info(name).get("benchmark")
    if not benchmark:
        return None
    return load_bars(benchmark["dataset"], assets=[benchmark["asset"]], start=start, end=end)


def _load_bundled(name: str) -> pl.DataFrame:
    path = bundled_path(name)
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(
            f"bundled dataset {name!r} ({path}) cannot be read ({exc}). Fix: reinstall Alfred "
            f"or rebuild the data with `python -m alfred_data.build`."
        ) from exc
    return check_bars(frame, source=f"bundled dataset {name!r}", locate=lambda r: f"row {r}")


def _load_partitioned(path: Path, *, assets: str | Sequence[str] | None, start: Bound,
                      end: Bound) -> pl.DataFrame:
    """Only the partitions (asset, year) the selection can touch; exact cuts follow."""
    meta = read_meta(path)
    wanted = None if assets is None else ([assets] if isinstance(assets, str) else list(assets))
    if wanted is not None:
        missing = [a for a in wanted if a not in set(meta["assets"])]
        if missing or not wanted:
            hints = "".join(did_you_mean(a, meta["assets"]) for a in missing)
            raise DataError(
                f"{path}: asset(s) {preview(missing) if missing else '(none given)'} not in "
                f"the data, which has {preview(meta['assets'], 20)}.{hints} Fix: pick assets "
                "from that list.")
    lower, upper = _bound(start, None, "start"), _bound(end, None, "end")
    # a year either side: zoned data may cross a year boundary within the day
    first = None if lower is None else lower[0] - dt.timedelta(days=366)
    last = None if upper is None else upper[0] + dt.timedelta(days=366)
    frame = scan_partitioned(path, assets=wanted, first=first, last=last)
    if frame.height == 0:
        raise DataError(f"{path}: no bars for {preview(wanted or meta['assets'])} between "
                        f"start={start!r} and end={end!r}; the data spans {meta['start']} to "
                        f"{meta['end']}. Fix: choose dates inside that range.")
    return check_bars(frame, source=str(path), locate=lambda r: f"row {r}")


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in _SUFFIXES if name.endswith(s)), None)


def _load_directory(path: Path, *, skip_bad_files: bool) -> pl.DataFrame:
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    files = [p for p in entries if p.is_file() and _suffix(p)]
    if not files:
        raise DataError(
            f"directory {path} has no bar files (looked for {', '.join(_SUFFIXES)}; found "
            f"{preview([p.name for p in entries]) or 'nothing'}). Fix: point at the folder "
            f"holding one CSV/parquet file per symbol."
        )
    return _load_files(files, str(path), skip_bad_files=skip_bad_files)


def _load_files(files: list[Path], source: str, *, skip_bad_files: bool) -> pl.DataFrame:
    frames: list[pl.DataFrame] = []
    kept: list[Path] = []
    for path in files:
        try:
            frame = _read_file(path)
        except DataError as exc:
            if not skip_bad_files:
                raise
            # stacklevel: warn <- _load_files <- _load_directory <- load_bars <- the caller
            warnings.warn(f"skipping {path}: {exc}", DataWarning, stacklevel=4)
            continue
        index = len(kept)
        code = (pl.lit(index << _FILE_SHIFT, pl.Int64) + pl.col(_ROW)).alias(_ROW)
        frames.append(frame.with_columns(code))
        kept.append(path)
    if not frames:
        raise DataError(
            f"{source}: every file was skipped as unreadable, so there are no bars (empty "
            f"universe). Fix: repair the files listed in the warnings."
        )
    _check_time_zones(frames, kept, source)
    frames = _common_columns(frames, kept, source)
    if len(frames) == 1:
        return frames[0].drop(_ROW)
    bars = pl.concat(frames, how="vertical").sort(["ts", "asset"], maintain_order=True)

    def locate(code: int) -> str:
        path = kept[code >> _FILE_SHIFT]
        return _file_locator(path)(code & ((1 << _FILE_SHIFT) - 1))

    check_sorted_unique(bars, source, locate)
    return bars.drop(_ROW)


def _file_locator(path: Path):
    if _suffix(path) in (".csv", ".csv.gz"):
        return lambda r: f"line {r + 2} of {path.name}"
    return lambda r: f"row {r} of {path.name}"


def _read_file(path: Path) -> pl.DataFrame:
    """Read, normalise, sort and validate one file; the result keeps its original row numbers."""
    try:
        if _suffix(path) in (".parquet", ".pq"):
            raw = pl.read_parquet(path)
        else:
            raw = pl.read_csv(path, infer_schema_length=None, null_values=_NULL_TEXT)
    except (OSError, UnicodeDecodeError, pl.exceptions.PolarsError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"file {path} cannot be read as {_suffix(path)} ({first_line}). Fix: repair or "
            f"remove the file (or pass skip_bad_files=True to load the others)."
        ) from exc
    if raw.height == 0:
        raise DataError(
            f"file {path} has no rows (columns {preview(raw.columns)}). Fix: remove it or fill "
            f"it (or pass skip_bad_files=True)."
        )
    locate = _file_locator(path)
    frame = normalise_columns(raw, source=f"file {path}", locate=locate)
    if "asset" not in frame.columns:
        stem = path.name[: -len(_suffix(path) or "")]
        frame = frame.with_columns(pl.lit(stem, pl.String).alias("asset"))
    frame = frame.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))
    frame = frame.sort(["ts", "asset"], maintain_order=True)
    return check_bars(
        frame, source=f"file {path}", locate=locate, row_column=_ROW, keep_row=True
    )


def _check_time_zones(frames: list[pl.DataFrame], files: list[Path], source: str) -> None:
    zones: dict[str | None, list[str]] = {}
    for frame, path in zip(frames, files, strict=True):
        zones.setdefault(frame.schema["ts"].time_zone, []).append(path.name)  # type: ignore[union-attr]
    if len(zones) > 1:
        detail = "; ".join(
            f"{zone or 'no time zone'}: {preview(names, 5)}" for zone, names in zones.items()
        )
        raise DataError(
            f"{source}: files use different time zones ({detail}), so their bars cannot be "
            f"put on one clock. Fix: write every file in one zone (UTC, or all naive local time)."
        )


def _common_columns(
    frames: list[pl.DataFrame], files: list[Path], source: str
) -> list[pl.DataFrame]:
    present = [set(f.columns) & set(VALUE_COLUMNS) for f in frames]
    common = set.intersection(*present)
    dropped = set.union(*present) - common
    if not dropped:
        return frames
    lacking = {c: [p.name for p, cols in zip(files, present, strict=True) if c not in cols]
               for c in sorted(dropped)}
    detail = "; ".join(f"{c!r} missing in {preview(names, 5)}" for c, names in lacking.items())
    warnings.warn(
        f"{source}: dropping column(s) {preview(sorted(dropped))} because not every file has "
        f"them ({detail}). Fix: give every file the same columns to keep them.",
        DataWarning,
        stacklevel=5,
    )
    return [f.drop([c for c in dropped if c in f.columns]) for f in frames]


def _select(
    bars: pl.DataFrame,
    source: str,
    *,
    assets: str | Sequence[str] | None,
    start: Bound,
    end: Bound,
) -> pl.DataFrame:
    if assets is not None:
        wanted = [assets] if isinstance(assets, str) else list(assets)
        available = bars["asset"].unique().sort().to_list()
        missing = [a for a in wanted if a not in set(available)]
        if missing or not wanted:
            hints = "".join(did_you_mean(a, available) for a in missing)
            raise DataError(
                f"{source}: asset(s) {preview(missing) if missing else '(none given)'} not in "
                f"the data, which has {preview(available, 20)}.{hints} Fix: pick assets from "
                f"that list."
            )
        bars = bars.filter(pl.col("asset").is_in(wanted))
    tz = bars.schema["ts"].time_zone  # type: ignore[union-attr]
    lower = _bound(start, tz, "start")
    upper = _bound(end, tz, "end")
    if lower is not None and upper is not None and lower[0] > upper[0]:
        raise ConfigError(f"{source}: start {start!r} is after end {end!r}. Fix: swap them.")
    span = bars.select(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi")).row(0)
    if lower is not None:
        bars = bars.filter(pl.col("ts") >= lower[1])
    if upper is not None:
        bars = bars.filter(pl.col("ts") < upper[1] if upper[2] else pl.col("ts") <= upper[1])
    if bars.height == 0:
        raise DataError(
            f"{source}: no bars between start={start!r} and end={end!r} (empty universe); the "
            f"data spans {fmt_ts(span[0])} to {fmt_ts(span[1])}. Fix: choose dates inside "
            f"that range."
        )
    return bars


# The instants a 64-bit nanosecond timestamp can hold (whole microseconds).
_FIRST_NS = dt.datetime(1677, 9, 21, 0, 12, 43, 145225)
_LAST_NS = dt.datetime(2262, 4, 11, 23, 47, 16, 854775)


def _bound(value: Bound, tz: str | None, which: str) -> tuple[dt.datetime, pl.Expr, bool] | None:
    """(comparable datetime, polars literal, exclusive?) for a start/end argument."""
    if value is None:
        return None
    date_only = False
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").item()
    if isinstance(value, str):
        text = value.strip()
        try:
            if _DATE_ONLY.match(text):
                value = dt.date.fromisoformat(text)
            else:
                value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"{which}={value!r} is not a date. Fix: use 'YYYY-MM-DD' or "
                f"'YYYY-MM-DD HH:MM:SS'."
            ) from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        date_only = True
        day = value + dt.timedelta(days=1) if which == "end" else value
        value = dt.datetime(day.year, day.month, day.day)
        if value > _LAST_NS and which == "end":  # the last representable day: keep it all
            value, date_only = _LAST_NS, False
    if not isinstance(value, dt.datetime):
        raise ConfigError(
            f"{which}={value!r} has type {type(value).__name__}; expected a date string, "
            f"datetime.date or datetime.datetime."
        )
    if not _FIRST_NS <= value.replace(tzinfo=None) <= _LAST_NS:
        raise ConfigError(
            f"{which}={value} is outside the supported range {_FIRST_NS:%Y-%m-%d}.."
            f"{_LAST_NS:%Y-%m-%d} (bar times are 64-bit nanoseconds). Fix: pick a date in "
            f"range or leave {which} out.")
    if value.tzinfo is not None and tz is None:
        raise ConfigError(
            f"{which}={value!r} has a time zone but the bars have none. Fix: pass a naive "
            f"datetime."
        )
    if value.tzinfo is not None:
        literal = pl.lit(value).dt.convert_time_zone(tz).dt.cast_time_unit("ns")  # type: ignore[arg-type]
        comparable = value.replace(tzinfo=None)
    else:
        literal = pl.lit(value).cast(pl.Datetime("ns"))
        if tz is not None:
            literal = literal.dt.replace_time_zone(tz)
        comparable = value
    return comparable, literal, date_only and which == "end"
