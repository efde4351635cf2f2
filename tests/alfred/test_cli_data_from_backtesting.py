"""`alfred data import --from backtesting NAME`: AGPL-3.0 sample data built locally, never shipped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alfred.cli import app

runner = CliRunner(env={"COLUMNS": "200"})


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result, " ".join(result.output.split())


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "store"
    monkeypatch.setenv("ALFRED_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def backtesting() -> None:
    pytest.importorskip(
        "backtesting",
        reason="the `backtesting` package (data-build extra) is not installed; install it "
        "with `pip install -c constraints.txt -e \".[dev,data-build]\"` to test "
        "`alfred data import --from backtesting`",
    )


@pytest.mark.usefixtures("backtesting")
@pytest.mark.parametrize(("name", "rows", "asset"), [("goog", 2148, "GOOG"),
                                                     ("eurusd_1h", 5000, "EURUSD")])
def test_build_states_the_licence_and_the_dataset_is_usable_by_name(
        name: str, rows: int, asset: str, store: Path, tmp_path: Path) -> None:
    result, text = invoke("data", "import", "--from", "backtesting", name)
    assert result.exit_code == 0, result.output
    assert f"built {name} from backtesting.test." in text
    assert f"1 assets, {rows} bars" in text
    assert "licence: AGPL-3.0" in text and "does not redistribute" in text
    assert f"Use it as data: {{source: {name}}}" in text
    record = json.loads((store / f"{name}.provenance.json").read_text(encoding="utf-8"))
    assert record["licence"].startswith("AGPL-3.0")
    assert record["source"]["package"] == "backtesting"
    assert (store / f"{name}.parquet").is_file()
    assert sorted(p.name for p in store.iterdir()) == [f"{name}.parquet",
                                                      f"{name}.provenance.json"]
    result, text = invoke("data", "list")
    assert name in text and "imported" in text
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: s\ndata: {{source: {name}}}\n"
                        f"strategy: {{name: buy_and_hold, config: {{asset: {asset}}}}}\n")
    result, text = invoke("validate", str(scenario))
    assert result.exit_code == 0, result.output
    result, text = invoke("data", "import", "--from", "backtesting", name)
    assert result.exit_code == 2 and "--overwrite" in text
    result, text = invoke("data", "import", "--from", "backtesting", name, "--overwrite")
    assert result.exit_code == 0, result.output


def test_bad_uses_exit_2_with_the_fix(store: Path) -> None:
    result, text = invoke("data", "import", "--from", "yfinance", "goog")
    assert result.exit_code == 2 and "from 'backtesting' only" in text
    result, text = invoke("data", "import", "--from", "backtesting", "gogl")
    assert result.exit_code == 2 and "Did you mean 'goog'" in text
    result, text = invoke("data", "import", "--from", "backtesting", "goog", "--name", "g")
    assert result.exit_code == 2 and "keeps its name" in text
    result, text = invoke("data", "import", "prices.csv")
    assert result.exit_code == 2 and "pass --name NAME" in text
    assert not store.exists()


def test_missing_package_says_how_to_install(store: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "backtesting.test", None)  # import now raises
    result, text = invoke("data", "import", "--from", "backtesting", "eurusd_1h")
    assert result.exit_code == 2
    assert "`backtesting` package is not installed" in text and "pip install backtesting" in text
    assert not store.exists()
