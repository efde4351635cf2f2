"""The datasets shipped in the ``alfred_data`` package, read through its manifest.

Only the parquet files and ``manifest.json`` are touched here; the packages the data came
from (skfolio, arch, backtesting) are needed to *rebuild* them (``python -m
alfred_data.build``), never to load them.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import DataError

from ._messages import did_you_mean


@lru_cache(maxsize=1)
def _data_dir() -> Path:
    return Path(str(resources.files("alfred_data")))


@lru_cache(maxsize=1)
def _manifest() -> dict[str, Any]:
    path = _data_dir() / "manifest.json"
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"bundled data manifest {path} cannot be read ({exc}). Fix: reinstall Alfred or "
            f"rebuild the data with `python -m alfred_data.build`."
        ) from exc


def bundled_names() -> tuple[str, ...]:
    """Names of the bundled datasets, in manifest order."""
    return tuple(_manifest()["datasets"])


def dataset_info(name: str) -> dict[str, Any]:
    """Manifest entry of one bundled dataset (a copy: file, description, frequency, start,
    end, rows, assets, columns, benchmark, sha256, source, licence)."""
    datasets = _manifest()["datasets"]
    if name not in datasets:
        raise DataError(
            f"{name!r} is not a bundled dataset; bundled: {', '.join(datasets)}."
            f"{did_you_mean(name, datasets)}"
        )
    info = copy.deepcopy(datasets[name])
    info["name"] = name
    return info


def bundled_path(name: str) -> Path:
    return _data_dir() / dataset_info(name)["file"]


def list_datasets() -> pl.DataFrame:
    """One row per bundled dataset: name, description, frequency, start, end, assets, rows."""
    rows = [dataset_info(name) for name in bundled_names()]
    return pl.DataFrame(
        {
            "name": [r["name"] for r in rows],
            "description": [r["description"] for r in rows],
            "frequency": [r["frequency"] for r in rows],
            "start": [r["start"] for r in rows],
            "end": [r["end"] for r in rows],
            "assets": [r["assets"] for r in rows],
            "rows": [r["rows"] for r in rows],
        },
        schema={
            "name": pl.String,
            "description": pl.String,
            "frequency": pl.String,
            "start": pl.String,
            "end": pl.String,
            "assets": pl.List(pl.String),
            "rows": pl.Int64,
        },
    ).with_columns(pl.col("start", "end").str.to_datetime(time_unit="ns"))


def benchmark_of(name: str) -> dict[str, str] | None:
    """``{"dataset": ..., "asset": ...}`` naming the benchmark of a bundled set, or None."""
    return dataset_info(name).get("benchmark")
