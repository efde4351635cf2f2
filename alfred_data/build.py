"""Rebuild the bundled datasets from the PyPI packages that ship them.

Run ``python -m alfred_data.build`` (needs the ``data-build`` extra; only skfolio and arch
are read here). It writes one zstd parquet file per dataset (long bars sorted by
``(ts, asset)``), ``manifest.json`` and ``PROVENANCE.md`` next to this file. Only data
under a licence compatible with Alfred's MIT licence is bundled; backtesting.py's AGPL-3.0
test data is built on the user's machine instead (``alfred_data.backtesting_import``).

The build is deterministic: no clock, no random state, fixed column order and compression
settings, so two runs with the same package versions give byte-identical files, and the
sha256 in the manifest pins exactly what was shipped. Loading the data never imports this
module or the source packages (see ``engine.data``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.data import validate_bars

DATA_DIR = Path(__file__).resolve().parent
_COMPRESSION_LEVEL = 19
_CANONICAL = ("ts", "asset", "open", "high", "low", "close", "adj_close", "volume")
_OHLCV_NAMES = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}
_LICENCES = {
    "skfolio": "BSD-3-Clause (licence of the skfolio package; no separate data licence stated)",
    "arch": "NCSA (University of Illinois/NCSA Open Source License of the arch package; "
    "no separate data licence stated)",
}


@dataclass(frozen=True)
class DatasetSpec:
    """What to build and what to write down about it."""

    name: str
    description: str
    frequency: str
    package: str
    function: str
    build: Callable[[], pl.DataFrame]
    origin: str
    transformations: tuple[str, ...]
    benchmark: dict[str, str] | None = None
    notes: tuple[str, ...] = field(default=())
    # one line every report on this data repeats next to its numbers
    caveat: str | None = None


def _ts_array(index: Any) -> np.ndarray:
    return np.asarray(index.values).astype("datetime64[ns]")


def _wide_close(frame: Any) -> pl.DataFrame:
    """pandas wide close prices (index = dates, one column per asset) -> long bars."""
    ts = _ts_array(frame.index)
    parts = [
        pl.DataFrame(
            {
                "ts": ts,
                "asset": [str(column)] * len(ts),
                "close": frame[column].to_numpy(dtype=np.float64),
            }
        )
        for column in frame.columns
    ]
    return pl.concat(parts).drop_nulls().filter(pl.col("close").is_not_nan())


def ohlcv_frame(frame: Any, asset: str) -> pl.DataFrame:
    """pandas OHLCV frame (Open/High/Low/Close[/Adj Close]/Volume) -> long bars of one asset."""
    ts = _ts_array(frame.index)
    columns: dict[str, Any] = {"ts": ts, "asset": [asset] * len(ts)}
    for source, target in _OHLCV_NAMES.items():
        if source in frame.columns:
            columns[target] = frame[source].to_numpy(dtype=np.float64)
    return pl.DataFrame(columns)


def canonical_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Canonical column order, ``Datetime('ns')`` timestamps, rows sorted by (ts, asset)."""
    order = [c for c in _CANONICAL if c in frame.columns]
    return (
        frame.select(order)
        .with_columns(pl.col("ts").cast(pl.Datetime("ns")), pl.col("asset").cast(pl.String))
        .sort(["ts", "asset"])
    )


def _sp500_stocks() -> pl.DataFrame:
    from skfolio.datasets import load_sp500_dataset

    return _wide_close(load_sp500_dataset())


def _sp500_index() -> pl.DataFrame:
    from skfolio.datasets import load_sp500_index

    return _wide_close(load_sp500_index())


def _arch_ohlcv(module: str, asset: str) -> Callable[[], pl.DataFrame]:
    def build() -> pl.DataFrame:
        return ohlcv_frame(importlib.import_module(module).load(), asset)

    return build


def _vix() -> pl.DataFrame:
    from arch.data import vix

    frame = vix.load()
    ts = _ts_array(frame.index)
    out = pl.DataFrame(
        {"ts": ts, "asset": ["VIX"] * len(ts), "close": frame["vix"].to_numpy(dtype=np.float64)}
    )
    return out.filter(pl.col("close").is_not_nan())


_SKFOLIO_CAUTION = (
    "skfolio's caution, repeated here: the data is provided solely for testing and example "
    "purposes; it is stale, does not reflect current or accurate market prices and is not "
    "intended for investment, trading or commercial use."
)

SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="sp500_stocks",
        description="20 S&P 500 constituents, daily adjusted closes 1990-2022 (close only)",
        frequency="1d",
        package="skfolio",
        function="skfolio.datasets.load_sp500_dataset",
        build=_sp500_stocks,
        origin=(
            "skfolio documents this as 'daily adjusted closing prices for 20 selected "
            "constituents of the S&P 500 Index, covering the period from 1990-01-02 to "
            "2022-12-28' (file skfolio/datasets/data/sp500_dataset.csv.gz). The package "
            "does not name the upstream price vendor. " + _SKFOLIO_CAUTION
        ),
        transformations=(
            "wide table (one column per ticker) melted to long rows (ts, asset, close)",
            "close = the adjusted close as shipped (split/dividend adjusted per skfolio's "
            "docs); no open/high/low/volume exist",
            "timestamps cast to naive datetime[ns] (dates at midnight); rows sorted by "
            "(ts, asset)",
        ),
        benchmark={"dataset": "sp500_index", "asset": "SP500"},
        caveat=("sp500_stocks holds 20 stocks picked with hindsight (all survived 1990-2022): "
                "backtests on them overstate what was achievable (survivorship bias)"),
        notes=(
            "Survivorship bias: all 20 names trade over the whole 1990-2022 span, so the "
            "selection was made with hindsight; do not read backtest returns as achievable.",
        ),
    ),
    DatasetSpec(
        name="sp500_index",
        description="S&P 500 index level, daily 1990-2022 (benchmark of sp500_stocks)",
        frequency="1d",
        package="skfolio",
        function="skfolio.datasets.load_sp500_index",
        build=_sp500_index,
        origin=(
            "skfolio documents this as 'daily adjusted closing prices of the S&P 500 Index, "
            "covering the period from 1990-01-02 to 2022-12-28' (file "
            "skfolio/datasets/data/sp500_index.csv.gz). The upstream vendor is not named. "
            "It is a price index (no dividends reinvested). " + _SKFOLIO_CAUTION
        ),
        transformations=(
            "single column 'SP500' -> long rows with asset 'SP500'",
            "timestamps cast to naive datetime[ns]",
        ),
        caveat=("the S&P 500 benchmark is the price index without dividends: it understates "
                "the index's total return (by about 2% a year over 1990-2022)"),
    ),
    DatasetSpec(
        name="sp500_ohlcv",
        description="S&P 500 index daily OHLCV with adjusted close, 1999-2018",
        frequency="1d",
        package="arch",
        function="arch.data.sp500.load",
        build=_arch_ohlcv("arch.data.sp500", "SP500"),
        origin=(
            "arch documents it as 'the S&P 500 data used in the examples ... OHLC, adjusted "
            "close and the trading volume' (file arch/data/sp500/sp500.csv.gz). arch does not "
            "name the vendor; the column layout (Open, High, Low, Close, Adj Close, Volume) "
            "is that of Yahoo Finance's historical-price export."
        ),
        transformations=(
            "Open/High/Low/Close/Adj Close/Volume renamed to open/high/low/close/adj_close/"
            "volume; asset 'SP500'",
            "close is the raw close; adj_close kept as shipped (identical to close on every "
            "row: an index level has no dividend adjustment)",
            "volume cast from int64 to float64; timestamps to naive datetime[ns]",
        ),
    ),
    DatasetSpec(
        name="nasdaq_ohlcv",
        description="NASDAQ Composite daily OHLCV with adjusted close, 1999-2018",
        frequency="1d",
        package="arch",
        function="arch.data.nasdaq.load",
        build=_arch_ohlcv("arch.data.nasdaq", "NASDAQ"),
        origin=(
            "arch documents it as 'the NASDAQ Composite data used in the examples ... OHLC, "
            "adjusted close and the trading volume' (file "
            "arch/data/nasdaq/nasdaq.csv.gz); vendor not named, same Yahoo-style layout as "
            "sp500_ohlcv."
        ),
        transformations=(
            "columns renamed as for sp500_ohlcv; asset 'NASDAQ'",
            "adj_close kept (equal to close on every row)",
            "volume cast to float64 (two rows, 2015-05-12 and 2018-01-09, have volume 0 as "
            "shipped; kept)",
        ),
    ),
    DatasetSpec(
        name="vix",
        description="CBOE VIX index daily close, 2014-2019",
        frequency="1d",
        package="arch",
        function="arch.data.vix.load",
        build=_vix,
        origin=(
            "arch documents it as 'the VIX Index data used in the examples' (file "
            "arch/data/vix/vix.csv.gz, one column 'vix'). The VIX is computed and published "
            "by Cboe; arch does not name the vendor it was downloaded from."
        ),
        transformations=(
            "column 'vix' -> close; asset 'VIX'; the file has no open/high/low/volume",
            "46 dates with an empty value dropped (all US market holidays, e.g. 2014-01-20, "
            "2014-07-04, 2018-12-05)",
        ),
        notes=("The VIX is an index, not a tradable price: use it as a feature or regime flag.",),
    ),
)


def _frame_for(spec: DatasetSpec) -> pl.DataFrame:
    frame = canonical_frame(spec.build())
    return validate_bars(frame, source=f"build of {spec.name}")


def write_parquet(frame: pl.DataFrame, path: Path) -> bytes:
    """Write ``frame`` to ``path`` atomically with the fixed zstd settings; returns the bytes."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.write_parquet(
        tmp, compression="zstd", compression_level=_COMPRESSION_LEVEL, statistics=True
    )
    try:
        data = tmp.read_bytes()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return data


def iso_text(value: Any) -> str:
    """A timestamp as text, without the time of day when it is midnight."""
    text = str(value)
    return text[:-9] if text.endswith(" 00:00:00") else text


def build_all(out_dir: Path = DATA_DIR) -> dict[str, Any]:
    """Build every dataset into ``out_dir``; returns the manifest that was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    for spec in SPECS:
        frame = _frame_for(spec)
        file_name = f"{spec.name}.parquet"
        data = write_parquet(frame, out_dir / file_name)
        entries[spec.name] = {
            "file": file_name,
            "description": spec.description,
            "frequency": spec.frequency,
            "start": iso_text(frame["ts"].min()),
            "end": iso_text(frame["ts"].max()),
            "rows": frame.height,
            "assets": frame["asset"].unique().sort().to_list(),
            "columns": frame.columns,
            "benchmark": spec.benchmark,
            "caveat": spec.caveat,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data),
            "source": {
                "package": spec.package,
                "version": importlib.metadata.version(spec.package),
                "function": spec.function,
            },
            "licence": _LICENCES[spec.package],
        }
    manifest = {"format_version": 1, "datasets": entries}
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (out_dir / "manifest.json").write_text(text, encoding="utf-8")
    (out_dir / "PROVENANCE.md").write_text(_provenance(manifest), encoding="utf-8")
    return manifest


def _provenance(manifest: dict[str, Any]) -> str:
    lines = [
        "# Provenance of the bundled datasets",
        "",
        "Generated by `python -m alfred_data.build` (do not edit by hand). Every file is long",
        "bars (`ts, asset, close[, open, high, low, adj_close, volume]`) sorted by",
        "`(ts, asset)`, zstd-compressed parquet; `manifest.json` pins each file's sha256.",
        "The data is for research, testing and examples only. It comes from the PyPI",
        "packages named below, under the licences those packages state; none of them ships a",
        "separate data licence. Only permissive licences (MIT, BSD, Apache-2.0, NCSA, public",
        "domain) are bundled, matching Alfred's MIT licence; the test suite enforces it.",
        "",
        "Not bundled: `goog` (GOOG daily OHLCV 2004-2013) and `eurusd_1h` (EUR/USD hourly",
        "2017-2018) come from the test data of backtesting.py, which is AGPL-3.0. Alfred does",
        "not redistribute them; `alfred data import --from backtesting goog` (or `eurusd_1h`)",
        "builds them on your machine from an installed `backtesting` package, into the",
        "imported-datasets folder, with a `NAME.provenance.json` beside the file.",
        "",
    ]
    by_name = {spec.name: spec for spec in SPECS}
    for name, entry in manifest["datasets"].items():
        spec = by_name[name]
        source = entry["source"]
        lines += [
            f"## `{name}`",
            "",
            f"- Description: {entry['description']}",
            f"- Source: `{source['function']}` from the `{source['package']}` package, "
            f"version {source['version']}",
            f"- Licence: {entry['licence']}",
            f"- Range: {entry['start']} to {entry['end']}, {entry['rows']} rows, "
            f"assets {', '.join(entry['assets'])}, frequency {entry['frequency']}",
            f"- Columns: {', '.join(entry['columns'])}",
        ]
        if entry.get("caveat"):
            lines.append(f"- Caveat shown with every result on it: {entry['caveat']}")
        if entry["benchmark"]:
            bench = entry["benchmark"]
            lines.append(f"- Benchmark: asset `{bench['asset']}` of `{bench['dataset']}`")
        lines += [f"- Upstream origin: {spec.origin}", "- Transformations:"]
        lines += [f"  - {step}" for step in spec.transformations]
        lines += [f"- Note: {note}" for note in spec.notes]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    manifest = build_all()
    total = sum(entry["size_bytes"] for entry in manifest["datasets"].values())
    for name, entry in manifest["datasets"].items():
        print(f"{name:14s} {entry['rows']:>8d} rows  {entry['size_bytes']:>9d} bytes")
    print(f"total {total} bytes in {DATA_DIR}")


if __name__ == "__main__":
    main()
