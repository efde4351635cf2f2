"""Long signal frames -> dense matrices on a panel's calendar, as-of and never earlier.

A signal's ``ts`` is the last moment whose information it used (DESIGN.md "Signals"). It
is placed on the first bar at or after that moment: placing it on an earlier bar would let
the engine act on information before it existed.

Valid frames take a fast path: asset names are read as keys (their string views, or their
polars hashes when a name is over 12 bytes: see :func:`engine.data._align.asset_keys`),
looked up among the panel's names in numba (hashed names then checked name for name), and
the rows are placed in one numba pass
(:func:`engine.kernels.scatter.place_asof_nb`) that also spots every kind of bad row. When
it finds one, the exact polars checks below run and raise the message that names it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.errors import DataError
from engine.kernels.scatter import is_nondecreasing_nb, lookup_keys_nb, place_asof_nb
from engine.panel import Panel

from ._align import asset_keys, hashed_keys
from ._messages import did_you_mean, fmt_ts, preview


def _check_frame(frame: object, column: str, source: str) -> None:
    if not isinstance(frame, pl.DataFrame):
        raise DataError(f"{source}: expected a polars DataFrame, got {type(frame).__name__}.")
    missing = [c for c in ("ts", "asset", column) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {preview(missing)}; found {preview(frame.columns)}."
            f"{did_you_mean(column, frame.columns) if column in missing else ''} Fix: signals "
            f"are long frames with 'ts', 'asset' and one column per signal."
        )


def signals_to_matrix(
    frame: pl.DataFrame,
    panel: Panel,
    column: str,
    *,
    source: str = "signals",
    allow_nan: bool = False,
) -> np.ndarray:
    """float64 ``(panel.n_bars, panel.n_assets)`` matrix of ``frame[column]``, NaN where no row.

    Each row lands on the first bar with ``bar_ts >= row ts``. When several rows of one asset
    land on the same bar (e.g. weekend signals before Monday's bar) the latest one wins, as
    it holds the most information. Boolean columns become 1.0 / 0.0.

    Raises DataError for: a missing ``ts``/``asset``/``column``, null keys, assets that are
    not in the panel, rows dated after the panel's last bar (nothing could act on them),
    duplicate ``(ts, asset)`` rows, infinite values, and null/NaN values unless
    ``allow_nan`` (then they stay NaN, i.e. "no instruction").
    Time-zone-aware ``ts`` are compared as UTC instants, like ``Panel.ts``.
    """
    _check_frame(frame, column, source)
    matrix = np.full((panel.n_bars, panel.n_assets), np.nan)
    if frame.height == 0:
        return matrix
    data = _coerce(frame.select("ts", "asset", column), column, source)
    if _place_fast(data, panel, allow_nan, matrix):
        return matrix
    matrix[:] = np.nan
    data = data.with_row_index("_pos")

    for key in ("ts", "asset"):
        nulls = data.filter(pl.col(key).is_null())
        if nulls.height:
            raise DataError(
                f"{source}: missing {key!r} at row {nulls['_pos'][0]} ({nulls.height} such rows)."
                f" Fix: drop those rows."
            )

    known = set(panel.assets)
    unknown = [a for a in data["asset"].unique().sort().to_list() if a not in known]
    if unknown:
        hints = "".join(did_you_mean(a, panel.assets) for a in unknown[:5])
        raise DataError(
            f"{source}: asset(s) {preview(unknown)} are not in the bars ({preview(panel.assets)})."
            f"{hints} Fix: emit signals only for assets in the bars universe."
        )

    last_bar = int(panel.ts[-1].astype("datetime64[ns]").astype(np.int64))
    late = data.filter(pl.col("_ts_ns") > last_bar)
    if late.height:
        row = late.row(0, named=True)
        raise DataError(
            f"{source}: row {row['_pos']} (asset {row['asset']!r}, ts {fmt_ts(row['ts'])}) is "
            f"dated after the last bar {fmt_ts(panel.ts[-1])} ({late.height} such rows); no bar "
            f"could act on it. Fix: drop signals past the end of the bars or load more bars."
        )

    dups = data.filter(pl.struct("_ts_ns", "asset").is_duplicated())
    if dups.height:
        first = dups.row(0, named=True)
        rows = dups.filter((pl.col("_ts_ns") == first["_ts_ns"]) & (pl.col("asset") == first["asset"]))
        raise DataError(
            f"{source}: duplicate rows for asset {first['asset']!r} at {fmt_ts(first['ts'])}: "
            f"rows {preview(rows['_pos'].to_list(), 5)}. Fix: keep one signal per (ts, asset)."
        )

    values = data["_value"]
    infinite = data.filter(values.is_infinite())
    bad = infinite if allow_nan else data.filter(values.is_null() | values.is_nan() | values.is_infinite())
    if bad.height:
        row = bad.row(0, named=True)
        kind = "missing" if row["_value"] is None else repr(row["_value"])
        allowed = "" if allow_nan else " or pass allow_nan=True if NaN means 'no instruction'"
        raise DataError(
            f"{source}: column {column!r} is {kind} at row {row['_pos']} (asset "
            f"{row['asset']!r}, ts {fmt_ts(row['ts'])}; {bad.height} such rows). Fix: drop or "
            f"repair those rows{allowed}."
        )

    bar_ns = panel.ts.astype("datetime64[ns]").astype(np.int64)
    asset_pos = {asset: i for i, asset in enumerate(panel.assets)}
    placed = (
        data.with_columns(
            pl.Series("_bar", np.searchsorted(bar_ns, data["_ts_ns"].to_numpy(), side="left")),
            pl.col("asset").replace_strict(asset_pos, return_dtype=pl.Int64).alias("_asset"),
        )
        .sort("_ts_ns")
        .unique(["_bar", "_asset"], keep="last", maintain_order=True)
    )
    matrix[placed["_bar"].to_numpy(), placed["_asset"].to_numpy()] = (
        placed["_value"].fill_null(np.nan).to_numpy()
    )
    return matrix


def _place_fast(data: pl.DataFrame, panel: Panel, allow_nan: bool, matrix: np.ndarray
                ) -> bool:
    """Place valid rows into ``matrix``; False (matrix half written) on any bad row."""
    if panel.n_bars == 0 or data["ts"].null_count() or data["asset"].null_count():
        return False
    names = pl.Series(panel.assets, dtype=pl.String)
    asset = data["asset"]
    table, rows = asset_keys(names, exact_only=True), asset_keys(asset, exact_only=True)
    if table is None or rows is None:  # a name over 12 bytes: hash both, check names after
        table, rows = hashed_keys(names), hashed_keys(asset)
    codes = lookup_keys_nb(table.words, rows.words)
    if (codes < 0).any() or not (rows.exact or (names.gather(pl.Series(codes)) == asset).all()):
        return False  # an unknown asset (or, never in practice, a hash collision)
    ts_ns = np.ascontiguousarray(data["_ts_ns"].to_numpy())
    values = np.ascontiguousarray(data["_value"].to_numpy(), dtype=np.float64)  # null: NaN
    if not is_nondecreasing_nb(ts_ns):
        order = np.argsort(ts_ns, kind="stable")  # latest wins: stable order by ts
        ts_ns, codes, values = ts_ns[order], codes[order], values[order]
    bar_ns = panel.ts.astype("datetime64[ns]").view(np.int64)
    return place_asof_nb(ts_ns, codes, values, bar_ns, allow_nan, matrix) < 0


def _coerce(frame: pl.DataFrame, column: str, source: str) -> pl.DataFrame:
    ts_type = frame.schema["ts"]
    if ts_type == pl.Date:
        ts_ns = pl.col("ts").cast(pl.Datetime("ns"))
    elif isinstance(ts_type, pl.Datetime):
        ts_ns = pl.col("ts").dt.cast_time_unit("ns")
    else:
        raise DataError(
            f"{source}: column 'ts' has type {ts_type}, expected Datetime. Fix: parse it, e.g. "
            f"pl.col('ts').str.to_datetime()."
        )
    value_type = frame.schema[column]
    if not (value_type.is_numeric() or value_type == pl.Boolean):
        raise DataError(
            f"{source}: column {column!r} has type {value_type}, expected numbers or booleans. "
            f"Fix: cast it to float."
        )
    return frame.with_columns(
        ts_ns.to_physical().alias("_ts_ns"),
        pl.col("asset").cast(pl.String),
        pl.col(column).cast(pl.Float64).alias("_value"),
    )
