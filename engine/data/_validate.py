"""The bars contract, enforced (DESIGN.md "Bars").

Bad bars are the cheapest bugs to catch and the most expensive to miss: a zero price
turns into an infinite return, a duplicate row into a doubled position, an unsorted frame
into look-ahead. Every check here names the source, the asset, the timestamp and the row
of the first offender, counts the others and says how to fix them.

All checks are vectorised (one pass per check family) so validating millions of bars costs
a fraction of a second.
"""

from __future__ import annotations

import polars as pl

from engine.errors import DataError

from ._columns import CANONICAL_ORDER, PRICE_COLUMNS, Locate, row_locator
from ._messages import fmt_ts, preview, shorten

# Relative slack for the OHLC range checks: rounding of adjusted prices in vendor files puts
# a close a few ulps outside [low, high]; anything larger is a real inconsistency.
RANGE_TOLERANCE = 1e-9

_ROW = "_row"


def validate_bars(df: pl.DataFrame, *, source: str = "bars") -> pl.DataFrame:
    """Check a long bars frame against the contract and return it in canonical form.

    The frame must already use canonical column names (``ts, asset, close`` and optionally
    ``open, high, low, adj_close, volume``; :func:`engine.data.load_bars` maps vendor
    spellings) and be sorted by ``(ts, asset)``: an unsorted frame is rejected, not
    silently sorted, because a caller who thinks row order means time has a bug.
    Returns the canonical columns in canonical order (``ts`` as ``Datetime('ns')`` keeping
    its time zone, prices and volume as float64); other columns are dropped.

    Raises DataError for: an empty frame, missing ``ts``/``asset``/``close``, null
    timestamps or assets, null/NaN/inf/zero/negative prices, negative or non-finite volume,
    ``high < low``, ``open``/``close`` outside ``[low, high]``, duplicate ``(ts, asset)``
    rows and unsorted rows.
    """
    return check_bars(df, source=source, locate=row_locator)


def check_bars(
    df: pl.DataFrame,
    *,
    source: str,
    locate: Locate,
    row_column: str | None = None,
    check_order: bool = True,
    keep_row: bool = False,
) -> pl.DataFrame:
    """:func:`validate_bars` with loader hooks.

    ``row_column`` names an integer column holding each row's original position (the
    loader sorts files, so positions in the sorted frame would mislead); ``locate`` turns
    that number into text such as ``"line 7 of SPY.csv"``; ``keep_row`` returns that column
    (as ``_row``) alongside the bars.
    """
    if not isinstance(df, pl.DataFrame):
        hint = ""
        if type(df).__module__.startswith("pandas"):
            hint = " Convert a pandas frame with pl.from_pandas(df.reset_index())."
        raise DataError(f"{source}: expected a polars DataFrame, got {type(df).__name__}.{hint}")
    _check_columns(df, source)
    if df.height == 0:
        raise DataError(
            f"{source}: the bars frame is empty (columns {preview(df.columns)}, no rows). "
            f"Fix: check the file, the asset filter and the start/end dates."
        )
    keep = [c for c in CANONICAL_ORDER if c in df.columns]
    frame = df.select(keep + [row_column] if row_column else keep)
    if row_column is None:
        frame = frame.with_row_index(_ROW)
    elif row_column != _ROW:
        frame = frame.rename({row_column: _ROW})
    frame = _coerce_types(frame, source)
    _check_missing_keys(frame, source, locate)
    _check_values(frame, source, locate)
    if check_order:
        check_sorted_unique(frame, source, locate)
    return frame.select([*keep, _ROW] if keep_row else keep)


def _check_columns(df: pl.DataFrame, source: str) -> None:
    missing = [c for c in ("ts", "asset", "close") if c not in df.columns]
    if not missing:
        return
    near = {c.lower().replace(" ", "_"): c for c in df.columns}
    hints = [f"{near[m]!r} -> {m!r}" for m in missing if m in near]
    for alias, target in (("date", "ts"), ("symbol", "asset"), ("adj_close", "close")):
        if target in missing and alias in near and target not in near:
            hints.append(f"{near[alias]!r} -> {target!r}")
    fix = (
        f"rename {', '.join(hints)}" if hints else "add them"
    ) + " (engine.data.load_bars maps vendor spellings for you)"
    raise DataError(
        f"{source}: missing required column(s) {preview(missing)}; found {preview(df.columns)}. "
        f"Fix: {fix}."
    )


def _coerce_types(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    casts: list[pl.Expr] = []
    ts_type = frame.schema["ts"]
    if isinstance(ts_type, pl.Datetime):
        casts.append(pl.col("ts").dt.cast_time_unit("ns"))
    elif ts_type == pl.Date:
        casts.append(pl.col("ts").cast(pl.Datetime("ns")))
    else:
        raise DataError(
            f"{source}: column 'ts' has type {ts_type}, expected Datetime. Fix: parse it, e.g. "
            f"df.with_columns(pl.col('ts').str.to_datetime()), or use engine.data.load_bars."
        )
    asset_type = frame.schema["asset"]
    if asset_type in (pl.String, pl.Categorical) or isinstance(asset_type, pl.Enum):
        casts.append(pl.col("asset").cast(pl.String))
    else:
        raise DataError(
            f"{source}: column 'asset' has type {asset_type}, expected text. Fix: cast it, e.g. "
            f"df.with_columns(pl.col('asset').cast(pl.String))."
        )
    for column in (*PRICE_COLUMNS, "volume"):
        if column not in frame.columns:
            continue
        dtype = frame.schema[column]
        if not dtype.is_numeric():
            raise DataError(
                f"{source}: column {column!r} has type {dtype}, expected numbers. Fix: cast it "
                f"to float (text prices usually mean a stray header or thousands separator)."
            )
        casts.append(pl.col(column).cast(pl.Float64))
    return frame.with_columns(casts)


def _where(row: dict, locate: Locate) -> str:
    return f"asset {shorten(row['asset'], 60)} at {fmt_ts(row['ts'])} ({locate(row[_ROW])})"


def _check_missing_keys(frame: pl.DataFrame, source: str, locate: Locate) -> None:
    for column in ("ts", "asset"):
        bad = frame.filter(pl.col(column).is_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise DataError(
                f"{source}: missing {column!r} value at {locate(row[_ROW])} ({bad.height} such "
                f"rows). Fix: drop those rows or fill in the {column}."
            )


def _describe(value: float | None) -> str:
    if value is None:
        return "a missing (null) value"
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return f"{value}"
    if value == 0:
        return "zero"
    return f"negative value {value}"


def _check_values(frame: pl.DataFrame, source: str, locate: Locate) -> None:
    cols = frame.columns
    checks: list[tuple[str, pl.Expr]] = []
    for column in PRICE_COLUMNS:
        if column in cols:
            ok = pl.col(column).is_finite() & (pl.col(column) > 0)
            checks.append((column, ~ok.fill_null(False)))
    if "volume" in cols:
        ok = pl.col("volume").is_finite() & (pl.col("volume") >= 0)
        checks.append(("volume", ~ok.fill_null(False)))
    if "high" in cols and "low" in cols:
        checks.append(("high<low", pl.col("high") < pl.col("low")))
        upper = pl.col("high") * (1 + RANGE_TOLERANCE)
        lower = pl.col("low") * (1 - RANGE_TOLERANCE)
        for column in ("open", "close"):
            if column in cols:
                outside = (pl.col(column) > upper) | (pl.col(column) < lower)
                checks.append((f"{column}-range", outside))
    if not checks:
        return
    flags = frame.select([expr.any().alias(name) for name, expr in checks]).row(0, named=True)
    for name, expr in checks:
        if not flags[name]:
            continue
        bad = frame.filter(expr)
        row = bad.row(0, named=True)
        where = _where(row, locate)
        more = f" ({bad.height} rows affected)" if bad.height > 1 else ""
        if name == "volume":
            raise DataError(
                f"{source}: {where}: volume is {_describe(row['volume'])}{more}. Fix: volume "
                f"must be a finite number >= 0; repair the rows or drop the volume column."
            )
        if name == "high<low":
            raise DataError(
                f"{source}: {where}: high {row['high']} is below low {row['low']}{more}. Fix: "
                f"the high/low columns are swapped or corrupt; repair or drop these bars."
            )
        if name.endswith("-range"):
            column = name.split("-")[0]
            raise DataError(
                f"{source}: {where}: {column} {row[column]} is outside the bar's range "
                f"[low {row['low']}, high {row['high']}]{more}. Fix: the columns are misaligned "
                f"or on different price scales (raw vs adjusted); repair or drop these bars."
            )
        raise DataError(
            f"{source}: {where}: {name} is {_describe(row[name])}{more}. Fix: prices must be "
            f"finite and > 0; drop or repair these bars (a missing bar is simply an absent "
            f"row, never a NaN or zero price)."
        )


def check_sorted_unique(frame: pl.DataFrame, source: str, locate: Locate) -> None:
    """Reject duplicate ``(ts, asset)`` rows and rows out of ``(ts, asset)`` order.

    Sortedness makes uniqueness a neighbour comparison, so both are one linear pass.
    """
    prev_ts = pl.col("ts").shift(1)
    prev_asset = pl.col("asset").shift(1)
    same_ts = pl.col("ts") == prev_ts
    dup = (same_ts & (pl.col("asset") == prev_asset)).fill_null(False)
    back = ((pl.col("ts") < prev_ts) | (same_ts & (pl.col("asset") < prev_asset))).fill_null(False)
    flags = frame.select(dup.any().alias("dup"), back.any().alias("back")).row(0, named=True)
    if not (flags["dup"] or flags["back"]):
        return
    if flags["back"]:
        counts = frame.group_by("ts", "asset").agg(pl.len().alias("n"), pl.col(_ROW).sort())
        dups = counts.filter(pl.col("n") > 1).sort(pl.col(_ROW).list.first())
        if dups.height == 0:
            first = frame.with_row_index("_pos").filter(back).row(0, named=True)
            prev = frame.row(first["_pos"] - 1, named=True)
            raise DataError(
                f"{source}: rows are not sorted by (ts, asset): {_where(first, locate)} comes "
                f"after asset {shorten(prev['asset'], 60)} at {fmt_ts(prev['ts'])} "
                f"({locate(prev[_ROW])}). "
                f"Fix: call .sort(['ts', 'asset']) on the frame before passing it in."
            )
        row = dups.row(0, named=True)
        rows, total = row[_ROW], dups.height
    else:
        first = frame.with_row_index("_pos").filter(dup).row(0, named=True)
        prev = frame.row(first["_pos"] - 1, named=True)
        row = first
        rows, total = [prev[_ROW], first[_ROW]], int(frame.select(dup.sum()).item())
    places = " and ".join(locate(r) for r in rows[:3])
    more = f" ({total} duplicates in all)" if total > 1 else ""
    raise DataError(
        f"{source}: duplicate bar for asset {shorten(row['asset'], 60)} at "
        f"{fmt_ts(row['ts'])}: {places}"
        f"{more}. Fix: keep one bar per (ts, asset), e.g. .unique(['ts', 'asset'], keep='last')."
    )
