"""goog / eurusd_1h built on the user's machine from an installed backtesting (AGPL-3.0).

The tests that build need the ``data-build`` extra (``pip install -c constraints.txt -e
".[dev,data-build]"``, as CI does); without ``backtesting`` they skip and say so.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from alfred_data.backtesting_import import SPECS, build_frame, import_from_backtesting
from engine.data import infer_periods_per_year, load_bars
from engine.errors import ConfigError

# sha256 of the CSV text of the frames Alfred bundled until it stopped shipping
# AGPL-derived data: the local build must give exactly the same bars.
CONTENT_SHA256 = {
    "goog": "ea88b24242b6e7c6cbaee5160f50717d473a8f785b6190b1f9e7f7b96b8039e4",
    "eurusd_1h": "e0eb369803c2fca450d8f13345ba367a08edef5a42e6b3c7034c598a56ace2dc",
}


@pytest.fixture
def backtesting() -> None:
    pytest.importorskip(
        "backtesting",
        reason="the `backtesting` package (data-build extra) is not installed; install it "
        "with `pip install -c constraints.txt -e \".[dev,data-build]\"` to test the local "
        "build of goog / eurusd_1h",
    )


@pytest.mark.usefixtures("backtesting")
@pytest.mark.parametrize("name", sorted(SPECS))
def test_build_is_deterministic_and_matches_what_was_bundled(name: str, tmp_path: Path) -> None:
    first = import_from_backtesting(name, tmp_path / "a")
    second = import_from_backtesting(name, tmp_path / "b")
    data = first.path.read_bytes()
    assert data == second.path.read_bytes()
    assert first.provenance_path.read_bytes() == second.provenance_path.read_bytes()
    assert hashlib.sha256(first.bars.write_csv().encode()).hexdigest() == CONTENT_SHA256[name]
    assert load_bars(first.path).equals(first.bars)
    record = json.loads(first.provenance_path.read_text(encoding="utf-8"))
    assert first.provenance_path.name == f"{name}.provenance.json"
    assert record == first.provenance
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["size_bytes"] == len(data)
    assert record["licence"].startswith("AGPL-3.0 ")
    assert "AGPL" in record["licence_declared_by_package"]
    assert record["source"]["package"] == "backtesting"
    assert record["source"]["version"]
    assert record["rows"] == first.bars.height
    assert record["columns"] == ["ts", "asset", "open", "high", "low", "close", "volume"]


@pytest.mark.usefixtures("backtesting")
def test_known_rows_and_the_hourly_frequency() -> None:
    goog = build_frame("goog")
    assert goog.height == 2148
    assert goog.row(0)[2:] == (100.0, 104.06, 95.96, 100.34, 22_351_900.0)
    eurusd = build_frame("eurusd_1h")
    assert eurusd.height == 5000
    assert str(eurusd["ts"].min()) == "2017-04-19 09:00:00"
    assert str(eurusd["ts"].max()) == "2018-02-07 15:00:00"
    # round-the-clock weekday FX: about 24 bars x 260 days a year
    assert infer_periods_per_year(eurusd["ts"]) == 6210.0


@pytest.mark.usefixtures("backtesting")
def test_existing_dataset_needs_overwrite(tmp_path: Path) -> None:
    import_from_backtesting("goog", tmp_path)
    with pytest.raises(ConfigError, match=r"'goog' already exists.*--overwrite"):
        import_from_backtesting("goog", tmp_path)
    again = import_from_backtesting("goog", tmp_path, overwrite=True)
    assert again.path == tmp_path / "goog.parquet"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["goog.parquet",
                                                         "goog.provenance.json"]


def test_unknown_name_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'gogl' is not a dataset.*Did you mean 'goog'"):
        import_from_backtesting("gogl", tmp_path)
    assert not tmp_path.joinpath("gogl.parquet").exists()


def test_missing_package_says_how_to_install(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "backtesting.test", None)  # import now raises
    with pytest.raises(ConfigError, match=r"`backtesting` package is not installed.*"
                                          r"pip install backtesting.*AGPL-3.0"):
        import_from_backtesting("eurusd_1h", tmp_path)
    assert list(tmp_path.iterdir()) == []
