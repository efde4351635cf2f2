"""The bundled datasets: shapes, ranges, known values, manifest integrity, clean imports."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import alfred_data
from engine.data import dataset_info, list_datasets, load_bars, load_benchmark
from engine.errors import DataError

DATA_DIR = Path(alfred_data.__file__).parent
REPO_ROOT = Path(__file__).resolve().parents[3]
OHLCV = ["ts", "asset", "open", "high", "low", "close", "volume"]
OHLCV_ADJ = ["ts", "asset", "open", "high", "low", "close", "adj_close", "volume"]

# name -> (rows, first ts, last ts, assets, columns), from the source packages' docs.
EXPECTED = {
    "sp500_stocks": (166_260, "1990-01-02", "2022-12-28", 20, ["ts", "asset", "close"]),
    "sp500_index": (8_313, "1990-01-02", "2022-12-28", 1, ["ts", "asset", "close"]),
    "sp500_ohlcv": (5_031, "1999-01-04", "2018-12-31", 1, OHLCV_ADJ),
    "nasdaq_ohlcv": (5_031, "1999-01-04", "2018-12-31", 1, OHLCV_ADJ),
    "vix": (1_259, "2014-01-03", "2019-01-03", 1, ["ts", "asset", "close"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_dataset_shape_range_columns(name: str) -> None:
    rows, start, end, n_assets, columns = EXPECTED[name]
    bars = load_bars(name)
    assert bars.height == rows
    assert bars.columns == columns
    assert bars["asset"].n_unique() == n_assets
    assert str(bars["ts"].min()).removesuffix(" 00:00:00") == start
    assert str(bars["ts"].max()).removesuffix(" 00:00:00") == end
    numeric = bars.select(pl.exclude("ts", "asset")).to_numpy()
    assert np.isfinite(numeric).all()
    assert bars.null_count().sum_horizontal().item() == 0
    assert bars.schema["ts"] == pl.Datetime("ns")


def test_sp500_stocks_is_a_full_rectangle() -> None:
    bars = load_bars("sp500_stocks")
    counts = bars.group_by("asset").len()
    assert counts["len"].unique().to_list() == [8313]
    assert sorted(counts["asset"].to_list()) == dataset_info("sp500_stocks")["assets"]


def test_known_values_from_source_docs() -> None:
    # skfolio's docstrings print these (rounded); arch's first S&P 500 row is in its CSV.
    first = load_bars("sp500_stocks", end="1990-01-02")
    by_asset = dict(zip(first["asset"], first["close"], strict=True))
    assert by_asset["AAPL"] == pytest.approx(0.264, abs=5e-4)
    assert by_asset["XOM"] == pytest.approx(4.068, abs=5e-4)
    index = load_bars("sp500_index", end="1990-01-03")
    assert index["close"].to_list() == pytest.approx([359.69, 358.76], abs=5e-3)
    sp500 = load_bars("sp500_ohlcv", end="1999-01-04")
    assert sp500.row(0)[2:] == pytest.approx(
        (1229.23, 1248.81, 1219.10, 1228.10, 1228.10, 877_000_000.0), abs=5e-3)


def test_vix_has_no_holiday_rows() -> None:
    vix = load_bars("vix", start="2014-07-03", end="2014-07-07")
    assert vix["ts"].dt.strftime("%Y-%m-%d").to_list() == ["2014-07-03", "2014-07-07"]


def test_manifest_hashes_sizes_and_sources() -> None:
    manifest = json.loads((DATA_DIR / "manifest.json").read_text(encoding="utf-8"))
    total = 0
    for name, entry in manifest["datasets"].items():
        data = (DATA_DIR / entry["file"]).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert entry["rows"] == EXPECTED[name][0]
        assert entry["source"]["package"] in {"skfolio", "arch"}
        assert entry["source"]["version"]
        assert entry["licence"]
        assert f"## `{name}`" in (DATA_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    assert set(manifest["datasets"]) == set(EXPECTED)
    assert total < 15 * 1024 * 1024


def test_list_datasets_table() -> None:
    table = list_datasets()
    assert table.columns == ["name", "description", "frequency", "start", "end", "assets", "rows"]
    assert table["name"].to_list() == list(EXPECTED)
    row = table.filter(pl.col("name") == "vix").row(0, named=True)
    assert row["frequency"] == "1d"
    assert row["assets"] == ["VIX"]
    assert row["rows"] == 1259


def test_dataset_info_and_unknown_name() -> None:
    info = dataset_info("sp500_stocks")
    assert info["benchmark"] == {"dataset": "sp500_index", "asset": "SP500"}
    info["rows"] = -1  # a copy: the cached manifest must not change
    assert dataset_info("sp500_stocks")["rows"] == 166_260
    with pytest.raises(DataError, match=r"'vixx' is not a bundled dataset.*Did you mean 'vix'"):
        dataset_info("vixx")
    with pytest.raises(DataError, match="'goog' is not a bundled dataset"):
        dataset_info("goog")  # AGPL-derived: built locally by `alfred data import`, not shipped


def test_load_benchmark() -> None:
    bench = load_benchmark("sp500_stocks")
    assert bench is not None
    assert bench.equals(load_bars("sp500_index"))
    stocks_ts = load_bars("sp500_stocks")["ts"].unique().sort()
    assert bench["ts"].equals(stocks_ts)
    assert load_benchmark("vix") is None


def test_loading_bundled_data_imports_no_source_package() -> None:
    code = (
        "import sys\n"
        "import engine.data as d\n"
        "bars = d.load_bars('sp500_stocks')\n"
        "d.align_bars(bars)\n"
        "d.list_datasets()\n"
        "d.load_benchmark('sp500_stocks')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'skfolio', 'arch', 'backtesting'} or m == 'alfred_data.build')\n"
        "print(repr(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_build_is_deterministic_and_matches_shipped_files(tmp_path: Path) -> None:
    pytest.importorskip("skfolio")
    pytest.importorskip("arch")
    pytest.importorskip("backtesting")
    from alfred_data.build import build_all

    manifest = build_all(tmp_path)
    shipped = json.loads((DATA_DIR / "manifest.json").read_text(encoding="utf-8"))
    for name, entry in manifest["datasets"].items():
        rebuilt = (tmp_path / entry["file"]).read_bytes()
        assert rebuilt == (DATA_DIR / entry["file"]).read_bytes(), name
        assert entry["sha256"] == shipped["datasets"][name]["sha256"]
    assert (tmp_path / "PROVENANCE.md").read_text() == (DATA_DIR / "PROVENANCE.md").read_text()


@pytest.mark.slow
def test_values_equal_the_source_packages() -> None:
    skfolio_datasets = pytest.importorskip("skfolio.datasets")
    arch_sp500 = pytest.importorskip("arch.data.sp500")
    wide = skfolio_datasets.load_sp500_dataset()
    panel = load_bars("sp500_stocks").pivot(on="asset", index="ts", values="close").sort("ts")
    np.testing.assert_array_equal(panel.select(list(wide.columns)).to_numpy(), wide.to_numpy())
    source = arch_sp500.load()
    bars = load_bars("sp500_ohlcv")
    np.testing.assert_array_equal(bars["adj_close"].to_numpy(), source["Adj Close"].to_numpy())
    np.testing.assert_array_equal(bars["volume"].to_numpy(), source["Volume"].to_numpy(float))
