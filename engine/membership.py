"""Point-in-time universes: which assets were in the universe when, and how they left.

A membership table has one row per asset spell: ``asset``, ``start``, ``end`` (dates,
inclusive; ``end`` null = still a member) and optionally ``delisting_return`` (what a
holder got when the asset left after ``end``: -0.3 for a 30% loss, 0 for a clean exit,
null for unknown). :func:`apply_membership` masks the panel outside the spells (an asset is
not tradable there) and records the delisting returns on the panel; ``run_backtest`` then
settles a position at the asset's last member bar, at that close times ``1 +
delisting_return`` (unknown: the last close, with a warning). Without a membership table,
an asset whose data ends before the panel's last bar is settled the same way at its last
close, so no position sits valued at a stale price.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl

from engine.errors import DataError
from engine.panel import Panel

REQUIRED = ("asset", "start", "end")


def load_membership(path: str | Path) -> pl.DataFrame:
    """A membership table from a CSV or parquet file (columns as in the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"membership file {path} does not exist; give a CSV or parquet file "
                        "with columns asset, start, end[, delisting_return]")
    if path.suffix.lower() == ".parquet":
        frame = pl.read_parquet(path)
    else:
        frame = pl.read_csv(path, try_parse_dates=True)
    return check_membership(frame, source=str(path))


def check_membership(frame: pl.DataFrame, *, source: str = "membership") -> pl.DataFrame:
    """The table with typed columns; names the row and the fix for a bad one."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{source} lacks column(s) {missing} (has {frame.columns}); a "
                        "membership table needs asset, start, end[, delisting_return]")
    if "delisting_return" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("delisting_return"))
    try:
        frame = frame.select(
            pl.col("asset").cast(pl.Utf8),
            pl.col("start").cast(pl.Datetime("ns")),
            pl.col("end").cast(pl.Datetime("ns")),
            pl.col("delisting_return").cast(pl.Float64))
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{source}: start/end must be dates and delisting_return a number "
                        f"({exc})") from None
    for i, (asset, start, end, ret) in enumerate(frame.iter_rows()):
        if asset is None or start is None:
            raise DataError(f"{source} row {i + 1}: asset and start are required")
        if end is not None and end < start:
            raise DataError(f"{source} row {i + 1} ({asset}): end {end:%Y-%m-%d} is before "
                            f"start {start:%Y-%m-%d}; swap them")
        if ret is not None and not (np.isfinite(ret) and ret >= -1.0):
            raise DataError(f"{source} row {i + 1} ({asset}): delisting_return {ret} must be "
                            ">= -1 (-1 = a total loss); leave it empty when unknown")
    dup = frame.group_by("asset").len().filter(pl.col("len") > 1)
    if dup.height:
        raise DataError(f"{source}: asset {dup['asset'][0]!r} has {dup['len'][0]} rows; one "
                        "spell per asset is supported (split a re-listed asset into two names)")
    return frame


def apply_membership(panel: Panel, membership: pl.DataFrame, *,
                     source: str = "membership") -> Panel:
    """The panel with every asset masked outside its spell and its delisting return set.

    Every asset of the panel needs a row (one left out would be traded with hindsight);
    rows for assets not in the panel are ignored.
    """
    membership = check_membership(membership, source=source)
    rows = {r[0]: r for r in membership.iter_rows()}
    absent = [a for a in panel.assets if a not in rows]
    if absent:
        raise DataError(f"{source} has no row for {absent[:5]}; every traded asset needs its "
                        "spell (asset, start, end), or drop the asset from data.assets")
    member = np.zeros((panel.n_bars, panel.n_assets), dtype=bool)
    delisting = np.full(panel.n_assets, np.nan)
    ts = panel.ts.astype("datetime64[ns]")
    for j, asset in enumerate(panel.assets):
        _, start, end, ret = rows[asset]
        inside = ts >= np.datetime64(start, "ns")
        if end is not None:
            inside &= ts <= np.datetime64(end, "ns")
            delisting[j] = np.nan if ret is None else ret
        member[:, j] = inside
    masked = {name: np.where(member, getattr(panel, name), np.nan)
              for name in ("open", "high", "low", "close", "volume")}
    return dataclasses.replace(panel, delisting_return=delisting, **masked)


def delisting_schedule(panel: Panel) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(delist_bar, factor, unknown): per asset the bar a position is settled at (-1:
    never) and the price factor; ``unknown`` names assets whose exit return is unknown.

    An asset leaves at its last bar with a close when that is before the panel's last bar.
    """
    finite = np.isfinite(panel.close)
    n_bars = panel.n_bars
    last = np.where(finite.any(axis=0), n_bars - 1 - np.argmax(finite[::-1], axis=0), -1)
    delist_bar = np.where((last >= 0) & (last < n_bars - 1), last, -1).astype(np.int64)
    given = (panel.delisting_return if panel.delisting_return is not None
             else np.full(panel.n_assets, np.nan))
    factor = np.where(np.isfinite(given), 1.0 + np.nan_to_num(given), 1.0)
    unknown = [panel.assets[j] for j in np.flatnonzero((delist_bar >= 0) & ~np.isfinite(given))]
    return delist_bar, factor, unknown
