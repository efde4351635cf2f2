"""Partitioned datasets: a scenario reads only its assets and years, with the same rows."""

from __future__ import annotations

import polars as pl
import pytest

import engine
from alfred.inputs import import_dataset, imported_datasets
from engine.data import is_partitioned, write_partitioned
from engine.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def bars():
    return engine.load_bars("sp500_stocks", start="2010-01-01", end="2014-12-31")


def test_a_partitioned_folder_loads_the_same_rows_as_the_file(bars, tmp_path):
    folder = write_partitioned(bars, tmp_path / "big")
    assert is_partitioned(folder)
    assert (folder / "asset=AAPL" / "year=2012" / "part.parquet").is_file()
    assert engine.load_bars(str(folder)).equals(bars)
    sub = engine.load_bars(str(folder), assets=["MSFT", "AAPL"], start="2012-03-01",
                           end="2013-02-28")
    ref = engine.load_bars("sp500_stocks", assets=["MSFT", "AAPL"], start="2012-03-01",
                           end="2013-02-28")
    assert sub.equals(ref) and sub.schema == ref.schema


def test_only_the_needed_partitions_are_read(bars, tmp_path):
    folder = write_partitioned(bars, tmp_path / "big")
    # a damaged partition outside the selection is never opened...
    (folder / "asset=KO" / "year=2010" / "part.parquet").write_bytes(b"not parquet")
    sub = engine.load_bars(str(folder), assets=["AAPL"], start="2013-01-01")
    assert sub["asset"].unique().to_list() == ["AAPL"]
    assert sub["ts"].min().year == 2013
    # ...and one inside it is an error, not a silent gap
    with pytest.raises((DataError, pl.exceptions.PolarsError, OSError)):
        engine.load_bars(str(folder), assets=["KO"], start="2010-01-01")


def test_unknown_assets_and_empty_periods_are_named(bars, tmp_path):
    folder = write_partitioned(bars, tmp_path / "big")
    with pytest.raises(DataError, match=r"'APPL' not in the data.*Did you mean 'AAPL'"):
        engine.load_bars(str(folder), assets=["APPL"])
    with pytest.raises(DataError, match="no bars"):
        engine.load_bars(str(folder), start="1995-01-01", end="1996-01-01")


def test_import_writes_partitions_for_large_inputs_and_lists_them(bars, tmp_path):
    source = tmp_path / "in.parquet"
    bars.write_parquet(source)
    store = tmp_path / "store"
    target, _ = import_dataset(source, "wide", to=store, partitioned=True)
    assert target == store / "wide" and is_partitioned(target)
    assert imported_datasets(store) == {"wide": target}
    with pytest.raises(ConfigError, match="already exists"):
        import_dataset(source, "wide", to=store)
    target, _ = import_dataset(source, "wide", to=store, overwrite=True, partitioned=False)
    assert target == store / "wide.parquet" and not (store / "wide").exists()
    notes = store / "mine"
    notes.mkdir()
    (notes / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a dataset Alfred imported"):
        import_dataset(source, "mine", to=store, overwrite=True, partitioned=True)
    assert (notes / "keep.txt").is_file()
