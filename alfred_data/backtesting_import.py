"""Build backtesting.py's GOOG and EUR/USD test data on the user's machine.

backtesting.py (``pip install backtesting``) ships two small OHLCV tables with its tests:
daily GOOG 2004-2013 and hourly EUR/USD 2017-2018. The package, and so that data, is
AGPL-3.0 licensed; Alfred is MIT and does not redistribute files derived from it. This
module turns the tables of an *installed* ``backtesting`` into Alfred's long-bar parquet
(``goog`` and ``eurusd_1h``, exactly the datasets Alfred once bundled) inside a folder the
caller names (``alfred data import --from backtesting NAME`` passes the imported-datasets
folder), and writes ``NAME.provenance.json`` beside each file with the source package,
its version, the licence and the transformations.

The build is deterministic: the same ``backtesting`` version gives byte-identical parquet
(same column order, compression settings and no clock in the file or its provenance).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from alfred_data.build import canonical_frame, iso_text, ohlcv_frame, write_parquet
from engine.data import validate_bars
from engine.errors import ConfigError

PACKAGE = "backtesting"
LICENCE = (
    "AGPL-3.0 (licence of the backtesting package, whose test data this is; no separate "
    "data licence stated)"
)
LICENCE_NOTE = (
    "Built on this machine from the installed backtesting package; Alfred does not "
    "redistribute it. The AGPL-3.0 terms of backtesting.py apply if you share this file."
)
PROVENANCE_SUFFIX = ".provenance.json"


@dataclass(frozen=True)
class ImportSpec:
    """One table of ``backtesting.test`` and what to write down about it."""

    name: str
    attribute: str
    asset: str
    description: str
    frequency: str
    origin: str
    transformations: tuple[str, ...]


SPECS: dict[str, ImportSpec] = {
    "goog": ImportSpec(
        name="goog",
        attribute="GOOG",
        asset="GOOG",
        description="Alphabet (GOOG) daily OHLCV, 2004-2013",
        frequency="1d",
        origin=(
            "backtesting.py documents it as 'daily NASDAQ:GOOG (Google/Alphabet) stock price "
            "data from 2004 to 2013' (file backtesting/test/GOOG.csv); vendor not named. "
            "Prices are not split-adjusted (first close 100.34 on the 2004-08-19 IPO day; "
            "the 2014 split is after the range)."
        ),
        transformations=(
            "Open/High/Low/Close/Volume renamed; asset 'GOOG'",
            "volume cast to float64; timestamps to naive datetime[ns]",
        ),
    ),
    "eurusd_1h": ImportSpec(
        name="eurusd_1h",
        attribute="EURUSD",
        asset="EURUSD",
        description="EUR/USD hourly OHLCV, April 2017 - February 2018",
        frequency="1h",
        origin=(
            "backtesting.py documents it as 'hourly EUR/USD forex data from April 2017 to "
            "February 2018' (file backtesting/test/EURUSD.csv); vendor and the timestamps' "
            "time zone are not documented. Volume is as shipped (its unit, likely tick "
            "count, is not documented)."
        ),
        transformations=(
            "Open/High/Low/Close/Volume renamed; asset 'EURUSD'",
            "timestamps kept naive (zone unknown), cast to datetime[ns]; volume to float64",
        ),
    ),
}


@dataclass(frozen=True, eq=False)
class ImportedDataset:
    """What :func:`import_from_backtesting` wrote."""

    name: str
    path: Path
    provenance_path: Path
    bars: pl.DataFrame
    provenance: dict[str, Any]


def _spec(name: str) -> ImportSpec:
    if name in SPECS:
        return SPECS[name]
    import difflib

    near = difflib.get_close_matches(name, list(SPECS), n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise ConfigError(
        f"{name!r} is not a dataset that can be imported from backtesting.{hint} "
        f"Choose one of: {', '.join(SPECS)}."
    )


def _backtesting_test() -> ModuleType:
    try:
        return importlib.import_module("backtesting.test")
    except ImportError as exc:
        raise ConfigError(
            f"the `backtesting` package is not installed ({exc}); it is needed to build "
            f"goog / eurusd_1h locally. Install it with `pip install backtesting` (it is "
            f"AGPL-3.0 licensed) or `pip install \"alfred[data-build]\"`, then run the "
            f"import again."
        ) from None


def build_frame(name: str) -> pl.DataFrame:
    """The long bars of dataset ``name`` built from the installed ``backtesting``."""
    spec = _spec(name)
    table = getattr(_backtesting_test(), spec.attribute)
    frame = canonical_frame(ohlcv_frame(table, spec.asset))
    return validate_bars(frame, source=f"backtesting.test.{spec.attribute}")


def provenance_path(data_file: Path) -> Path:
    """Where the provenance of ``NAME.parquet`` lives: ``NAME.provenance.json`` beside it."""
    return data_file.with_name(data_file.stem + PROVENANCE_SUFFIX)


def _provenance(spec: ImportSpec, frame: pl.DataFrame, data: bytes) -> dict[str, Any]:
    metadata = importlib.metadata.metadata(PACKAGE)
    return {
        "format_version": 1,
        "name": spec.name,
        "file": f"{spec.name}.parquet",
        "description": spec.description,
        "frequency": spec.frequency,
        "start": iso_text(frame["ts"].min()),
        "end": iso_text(frame["ts"].max()),
        "rows": frame.height,
        "assets": frame["asset"].unique().sort().to_list(),
        "columns": frame.columns,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "source": {
            "package": PACKAGE,
            "version": importlib.metadata.version(PACKAGE),
            "function": f"backtesting.test.{spec.attribute}",
        },
        "licence": LICENCE,
        "licence_declared_by_package": metadata.get("License") or "",
        "licence_note": LICENCE_NOTE,
        "upstream_origin": spec.origin,
        "transformations": list(spec.transformations),
        "built_by": "alfred_data.backtesting_import",
    }


def import_from_backtesting(
    name: str, directory: Path, *, overwrite: bool = False
) -> ImportedDataset:
    """Build dataset ``name`` into ``directory`` as NAME.parquet + NAME.provenance.json."""
    spec = _spec(name)
    directory = Path(directory).expanduser()
    target = directory / f"{spec.name}.parquet"
    if target.exists() and not overwrite:
        raise ConfigError(
            f"dataset {spec.name!r} already exists at {target}; pass --overwrite to rebuild "
            f"it from backtesting"
        )
    frame = build_frame(spec.name)
    directory.mkdir(parents=True, exist_ok=True)
    data = write_parquet(frame, target)
    record = _provenance(spec, frame, data)
    record_path = provenance_path(target)
    partial = record_path.with_name(f".{record_path.name}.partial-{os.getpid()}")
    try:
        partial.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
        os.replace(partial, record_path)
    finally:
        partial.unlink(missing_ok=True)
    return ImportedDataset(spec.name, target, record_path, frame, record)
