"""Column-name normalisation and timestamp parsing for bars read from files.

Vendors spell the same field many ways (``Date``, ``timestamp``, ``Adj Close``,
``Symbol``...). Files are mapped once, here, onto the canonical names of the bars
contract (DESIGN.md "Bars") so nothing downstream has to guess.

Adjusted-close rule: when a file has OHLC columns, ``close`` stays the *raw* close so it is
consistent with open/high/low (fills at the open and the close must be in the same price
space), and the adjusted close is kept as ``adj_close``. When a file has no open/high/low,
the adjusted close *becomes* ``close`` (a close-only series should be total-return
consistent) and the raw close is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import polars as pl

from engine.errors import DataError

from ._messages import preview, shorten

CANONICAL_ORDER = ("ts", "asset", "open", "high", "low", "close", "adj_close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")

# Keys are names lower-cased with everything but letters and digits removed, so
# "Adj Close", "adj_close" and "ADJ-CLOSE" all become "adjclose".
_ALIASES: dict[str, str] = {
    "ts": "ts",
    "date": "ts",
    "datetime": "ts",
    "timestamp": "ts",
    "time": "ts",
    "asset": "asset",
    "symbol": "asset",
    "ticker": "asset",
    "instrument": "asset",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "volume": "volume",
}
# Names pandas and other writers give an unnamed index column; used as ``ts`` only when
# no other column is a timestamp (backtesting.py's own CSVs look like this).
_INDEX_NAMES = {"", "unnamed0", "index", "indexlevel0", "column1"}

# A trailing zone: Z, +05:30 / -0800 after a time of day, or a bracketed name [Europe/Paris].
_ZONE_SUFFIX = r"(?:[Zz]|:\d\d(?:\.\d+)?\s?[+-]\d\d(?::?\d\d)?|\[[^\]]+\])$"
# Day and month can swap in these layouts; they are only accepted when one order is the
# only one that parses every value.
_AMBIGUOUS_DATE = re.compile(r"^\s*(\d{1,2})([./-])(\d{1,2})\2(\d{4})(?:[ T].*)?$")


Locate = Callable[[int], str]


def row_locator(pos: int) -> str:
    """Default location text: the 0-based position of the row in the frame."""
    return f"row {pos}"


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def normalise_columns(
    df: pl.DataFrame, *, source: str, locate: Locate = row_locator
) -> pl.DataFrame:
    """Rename vendor columns to canonical names, apply the adjusted-close rule, drop the rest.

    Returns a frame with ``ts`` (still raw: see :func:`parse_ts`), optionally ``asset``,
    and the canonical value columns that are present, cast to float64.
    """
    mapping: dict[str, str] = {}
    claimed: dict[str, list[str]] = {}
    for name in df.columns:
        canonical = _ALIASES.get(_key(name))
        if canonical is not None:
            claimed.setdefault(canonical, []).append(name)
    for canonical, names in claimed.items():
        if len(names) > 1:
            raise DataError(
                f"{source}: columns {preview(names)} all mean {canonical!r}, so it is unclear "
                f"which one to use. Fix: keep one of them (if a date and a time of day are "
                f"split over two columns, join them into one timestamp column)."
            )
        mapping[names[0]] = canonical
    if "ts" not in claimed:
        unnamed = [c for c in df.columns if _key(c) in _INDEX_NAMES]
        if len(unnamed) == 1:
            mapping[unnamed[0]] = "ts"
    if "ts" not in mapping.values():
        raise DataError(
            f"{source}: no timestamp column; found columns {preview(df.columns)}. Fix: name the "
            f"timestamp column one of 'ts', 'date', 'datetime', 'timestamp' or 'time'."
        )
    if "close" not in claimed and "adj_close" not in claimed:
        raise DataError(
            f"{source}: no close column; found columns {preview(df.columns)}. Fix: provide a "
            f"'close' (or 'Close' / 'Adj Close') column; it is the one price every bar needs."
        )

    out = df.select([pl.col(src).alias(dst) for src, dst in mapping.items()])
    has_ohlc = any(c in out.columns for c in ("open", "high", "low"))
    if has_ohlc and "close" not in out.columns:
        raise DataError(
            f"{source}: has open/high/low and an adjusted close but no raw close; using the "
            f"adjusted close with raw open/high/low would mix two price scales. Fix: add the "
            f"raw 'close' column, or drop open/high/low to load the adjusted close alone."
        )
    if "adj_close" in out.columns and not has_ohlc:
        out = out.drop("close", strict=False).rename({"adj_close": "close"})

    casts = []
    for column in VALUE_COLUMNS:
        if column not in out.columns:
            continue
        dtype = out.schema[column]
        if dtype.is_numeric():
            casts.append(pl.col(column).cast(pl.Float64))
            continue
        if dtype == pl.String:
            parsed = out[column].str.strip_chars().cast(pl.Float64, strict=False)
            bad = out.with_row_index("_pos").filter(parsed.is_null() & out[column].is_not_null())
            if bad.height == 0:
                casts.append(pl.col(column).str.strip_chars().cast(pl.Float64))
                continue
            first = bad.row(0, named=True)
            raise DataError(
                f"{source}: column {column!r} holds text that is not a number: "
                f"{shorten(first[column], 60)} at {locate(first['_pos'])} ({bad.height} such rows). Fix: clean those values or "
                f"mark missing values as empty fields."
            )
        raise DataError(
            f"{source}: column {column!r} has type {dtype}, expected numbers. Fix: cast it to "
            f"float before loading."
        )
    if casts:
        out = out.with_columns(casts)
    if "asset" in out.columns and out.schema["asset"] != pl.String:
        out = out.with_columns(pl.col("asset").cast(pl.String))
    order = [c for c in CANONICAL_ORDER if c in out.columns]
    return out.select(order).with_columns(parse_ts(out["ts"], source=source, locate=locate))


def parse_ts(series: pl.Series, *, source: str, locate: Locate = row_locator) -> pl.Series:
    """Return ``series`` as ``Datetime('ns', tz)``; strings are parsed, dates become midnight.

    ISO-like strings are parsed by polars' inference. ``dd/mm/yyyy`` vs ``mm/dd/yyyy`` style
    strings are tried both ways and accepted only when exactly one order parses every
    value: a silent day/month swap would shift every bar.
    """
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        return series.dt.cast_time_unit("ns").alias("ts")
    if dtype == pl.Date:
        return series.cast(pl.Datetime("ns")).alias("ts")
    if dtype != pl.String:
        raise DataError(
            f"{source}: timestamp column has type {dtype}; expected datetimes or date strings. "
            f"Fix: convert it to datetimes (e.g. pl.from_epoch for epoch numbers) before loading."
        )
    text = series.str.strip_chars()
    first = text.drop_nulls().head(1)
    if first.len() and _AMBIGUOUS_DATE.match(first[0]):
        return _parse_day_month(text, source=source, locate=locate)
    try:
        return text.str.to_datetime(time_unit="ns", strict=True).alias("ts")
    except pl.exceptions.PolarsError:
        return _raise_unparsed(text, _lenient(text), source=source, locate=locate)


def _parse_day_month(text: pl.Series, *, source: str, locate: Locate) -> pl.Series:
    first = text.drop_nulls()[0]
    match = _AMBIGUOUS_DATE.match(first)
    if match is None:  # the caller only sends text whose first value matches
        raise DataError(f"{source}: cannot read timestamp {shorten(first)}. Fix: use ISO dates.")
    sep, rest = match.group(2), first[match.end(4) :]
    time_fmt = ""
    if rest:
        time_fmt = rest[0] + ("%H:%M:%S" if rest.count(":") == 2 else "%H:%M")
    results: dict[str, pl.Series] = {}
    for fmt in (f"%m{sep}%d{sep}%Y{time_fmt}", f"%d{sep}%m{sep}%Y{time_fmt}"):
        parsed = text.str.to_datetime(fmt, time_unit="ns", strict=False)
        if parsed.null_count() == text.null_count():
            results[fmt] = parsed
    if len(results) == 1:
        return next(iter(results.values())).alias("ts")
    if len(results) == 2:
        a, b = results.values()
        if (a == b).all():
            return a.alias("ts")
        raise DataError(
            f"{source}: dates like {shorten(first)} read as both month-first and day-first, and "
            f"both readings are valid for every row. Fix: write dates as ISO 'YYYY-MM-DD'."
        )
    return _raise_unparsed(text, _lenient(text), source=source, locate=locate)


def _lenient(text: pl.Series) -> pl.Series:
    """Each value parsed on its own terms, null where it is not a time. Polars infers one
    format from the first value and raises when even that one is not a date."""
    try:
        return text.str.to_datetime(time_unit="ns", strict=False)
    except pl.exceptions.PolarsError:
        return pl.Series("ts", [None] * text.len(), dtype=pl.Datetime("ns"))


def _refuse_mixed_zones(text: pl.Series, *, source: str, locate: Locate) -> None:
    """Some timestamps with a zone or UTC offset and some without cannot be one clock."""
    frame = pl.DataFrame({"text": text}).with_row_index("_pos").drop_nulls("text")
    frame = frame.with_columns(zoned=pl.col("text").str.contains(_ZONE_SUFFIX))
    zoned, naive = frame.filter(pl.col("zoned")), frame.filter(~pl.col("zoned"))
    if zoned.height == 0 or naive.height == 0:
        return
    z, n = zoned.row(0, named=True), naive.row(0, named=True)
    raise DataError(
        f"{source}: the timestamps mix naive and zoned values: {shorten(n['text'], 60)} at "
        f"{locate(n['_pos'])} has no time zone, {shorten(z['text'], 60)} at "
        f"{locate(z['_pos'])} has one ({zoned.height} zoned, {naive.height} naive rows). Fix: "
        f"write every timestamp with a UTC offset (e.g. +00:00) or none (read as UTC)."
    )


def _raise_unparsed(
    text: pl.Series, parsed: pl.Series, *, source: str, locate: Locate
) -> pl.Series:
    _refuse_mixed_zones(text, source=source, locate=locate)
    bad = pl.DataFrame({"text": text, "ok": parsed.is_not_null()}).with_row_index("_pos")
    bad = bad.filter(pl.col("text").is_not_null() & ~pl.col("ok"))
    if bad.height == 0:
        raise DataError(
            f"{source}: the timestamp column mixes layouts or time zones (e.g. some values "
            f"with a UTC offset and some without), so it cannot be read as one clock. Fix: "
            f"write every timestamp in one layout and one time zone."
        )
    row = bad.row(0, named=True)
    raise DataError(
        f"{source}: timestamp {shorten(row['text'])} at {locate(row['_pos'])} is not a date/time "
        f"({bad.height} such rows). Fix: write timestamps as ISO 'YYYY-MM-DD' or "
        f"'YYYY-MM-DD HH:MM:SS'."
    )
