"""`alfred analyst evaluate` shows the model next to every baseline, with tests and a
verdict; tuned configs are refused on a test window inside their tuning period."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from alfred.cli.analyst import analyst_app

SCENARIO = """
name: tiny_momentum
data: {source: sp500_stocks, assets: [AAPL, MSFT, JPM, XOM, KO], start: 2019-01-01,
       end: 2020-12-31}
analysts: [{name: momentum, config: {lookback: 20}}]
strategy: {name: topk_long_short, config: {k: 1}}
"""


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(analyst_app, name="analyst")
    return app


def test_evaluate_prints_verdict_baselines_and_tests(cli, tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(SCENARIO)
    result = CliRunner().invoke(cli, ["analyst", "evaluate", str(scenario), "--out",
                                      str(tmp_path / "eval")], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "momentum verdict:" in result.output and "DM |error|" in result.output
    for baseline in ("zero", "drift", "last", "always_up", "majority"):
        assert baseline in result.output
    assert "rank IC" in result.output
    saved = json.loads((tmp_path / "eval" / "momentum" / "evaluation.json").read_text())
    assert saved["verdict"] and saved["tests"]["overall"]["ic"]["dates"] > 50
    rolling = CliRunner().invoke(cli, ["analyst", "evaluate", str(scenario), "--rolling", "8",
                                       "--out", str(tmp_path / "roll")], terminal_width=160)
    assert rolling.exit_code == 0, rolling.output
    assert "momentum verdict:" in rolling.output
    import polars as pl

    table = pl.read_csv(tmp_path / "roll" / "momentum" / "rolling_origin.csv")
    for baseline in ("zero", "drift", "last"):
        assert {f"{baseline}_pct_return_mae", f"{baseline}_dm_p"} <= set(table.columns)


def test_tuned_configs_inside_their_tuning_period_exit_2(cli, tmp_path):
    tuned = tmp_path / "magnitude.json"
    tuned.write_text(json.dumps({
        "analyst": "magnitude", "symbols": {},
        "tuned_period": {"first_bar": "2019-01-02 00:00:00", "last_bar": "2020-12-30 00:00:00"},
        "tuned_on": {}}))
    scenario = tmp_path / "tuned.yaml"
    scenario.write_text(SCENARIO.replace(
        "[{name: momentum, config: {lookback: 20}}]",
        f"[{{name: magnitude, config: {{tuned_configs: {tuned}}}}}]"))
    result = CliRunner().invoke(cli, ["analyst", "evaluate", str(scenario), "--out",
                                      str(tmp_path / "eval")], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "overlaps the period its tuned_configs were tuned on" in " ".join(
        result.output.split())
    assert not (tmp_path / "eval" / "magnitude").exists()
