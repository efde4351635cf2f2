"""Hive-partitioned datasets: a folder a scenario reads only the assets and years of.

Large imports (``alfred data import`` over :data:`PARTITION_ROWS` rows, or with
``--partitioned``) are written as ``NAME/asset=<ASSET>/year=<YYYY>/part.parquet`` plus a
``dataset.json`` listing the assets, columns and span. Loading scans the folder lazily
(``polars.scan_parquet`` with hive partitioning) and pushes the asset and year filters
down, so a 2,000-asset, 30-year dataset costs a scenario of 50 assets over 5 years only
those files. Each partition holds already-validated bars; loading validates the selected
rows again (cheap), so a file edited by hand is still caught.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from engine.errors import DataError
from engine.files import swap_in

MARKER = "dataset.json"
PARTITION_ROWS = 5_000_000  # an import larger than this is written partitioned
FORMAT_VERSION = 1


def is_partitioned(path: Path) -> bool:
    """True for a folder written by :func:`write_partitioned`."""
    return path.is_dir() and (path / MARKER).is_file()


def write_partitioned(bars: pl.DataFrame, target: Path) -> Path:
    """Write validated long bars as ``asset=/year=`` partitions into ``target`` atomically."""
    staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        with_year = bars.with_columns(pl.col("ts").dt.year().alias("year"))
        for (asset, year), part in with_year.group_by(["asset", "year"], maintain_order=True):
            folder = staging / f"asset={asset}" / f"year={year}"
            folder.mkdir(parents=True, exist_ok=True)
            part.drop("asset", "year").write_parquet(folder / "part.parquet")
        meta = {
            "format_version": FORMAT_VERSION,
            "assets": bars["asset"].unique().sort().to_list(),
            "columns": bars.columns,
            "ts_dtype": str(bars.schema["ts"]),
            "start": str(bars["ts"].min()),
            "end": str(bars["ts"].max()),
            "rows": bars.height,
        }
        (staging / MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_meta(path: Path) -> dict:
    try:
        meta = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path / MARKER} cannot be read ({exc}); re-import the dataset with "
                        "`alfred data import`") from None
    if meta.get("format_version") != FORMAT_VERSION or "assets" not in meta:
        raise DataError(f"{path / MARKER} is not a dataset description this Alfred reads "
                        f"(format_version {meta.get('format_version')!r}); re-import it")
    return meta


def scan_partitioned(path: Path, *, assets: Sequence[str] | None,
                     first: dt.datetime | None, last: dt.datetime | None) -> pl.DataFrame:
    """The rows of the chosen assets whose year lies in ``first..last`` (both optional)."""
    meta = read_meta(path)
    lazy = pl.scan_parquet(str(path / "**" / "*.parquet"), hive_partitioning=True,
                           hive_schema={"asset": pl.String, "year": pl.Int32})
    if assets is not None:
        lazy = lazy.filter(pl.col("asset").is_in(list(assets)))
    if first is not None:
        lazy = lazy.filter(pl.col("year") >= first.year)
    if last is not None:
        lazy = lazy.filter(pl.col("year") <= last.year)
    frame = lazy.drop("year").collect()
    columns = [c for c in meta["columns"] if c in frame.columns]
    return frame.select(columns).sort("ts", "asset")
