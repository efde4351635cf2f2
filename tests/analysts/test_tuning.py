from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("optuna")
pytest.importorskip("torch")

from alfred.cli.analyst import analyst_app, tune_command  # noqa: E402
from analysts import get_analyst  # noqa: E402
from analysts.tuning import load_search_space, parse_search_space, promote, tune  # noqa: E402
from engine.errors import ConfigError  # noqa: E402
from tests.analysts._ml_helpers import SHORT_FEATURES, TINY_TRAIN, close_only, ohlcv_bars  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPACE = {
    "analyst": "magnitude",
    "base": {"features": SHORT_FEATURES, "train": {**TINY_TRAIN, "epochs": 1}},
    "params": {"width": {"type": "int", "low": 4, "high": 16, "log": True},
               "train.lr": {"type": "float", "low": 0.001, "high": 0.01}},
}


@pytest.mark.parametrize(("params", "message"), [
    ({"width": {"type": "int", "low": 8, "high": 8}}, r"params.width: empty range: low=8"),
    ({"loss": {"type": "categorical", "choices": []}}, "non-empty 'choices'"),
    ({"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "log scale needs low > 0"),
    ({"width": {"type": "int", "low": 1, "hi": 8}}, r"unknown key \(did you mean 'high'\?\)"),
    ({}, "params is empty"),
])
def test_bad_search_spaces_name_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        parse_search_space({"analyst": "magnitude", "params": params}, source="space.yaml")


def test_metric_and_analyst_are_checked():
    with pytest.raises(ConfigError, match="metric 'pct_mae' is not one of"):
        parse_search_space({**SPACE, "metric": "pct_mae"})
    with pytest.raises(ConfigError, match="lstm analyst predicts direction only"):
        parse_search_space({**SPACE, "analyst": "lstm", "metric": "rmse"})
    space = parse_search_space(SPACE)
    assert (space.objective, space.study_direction) == ("pct_return_mae", "minimize")
    assert parse_search_space({**SPACE, "analyst": "lstm"}).study_direction == "maximize"


def test_shipped_search_spaces_are_valid():
    for name in ("magnitude", "lstm"):
        assert load_search_space(REPO / "scenarios" / "tuning" / f"{name}.yaml").analyst == name


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return close_only(ohlcv_bars(160, 2, seed=5))


def test_tune_writes_the_best_config_per_symbol_and_is_seeded(bars, tmp_path):
    space = parse_search_space(SPACE)
    records = tune(space, bars, n_trials=2, out=tmp_path / "a", symbols=["S1"], seed=3)
    saved = json.loads((tmp_path / "a" / "magnitude" / "S1.json").read_text())
    assert saved["symbol"] == "S1" and saved["metric"] == "pct_return_mae"
    assert saved["value"] == pytest.approx(saved["validation"]["pct_return_mae"])
    assert 4 <= saved["config"]["width"] <= 16 and saved["overrides"]["width"] == saved[
        "params"]["width"]
    assert saved["latency"]["ms_per_row"] > 0 and saved["trials"]["complete"] == 2
    assert (tmp_path / "a" / "optuna.db").is_file()
    import optuna

    study = optuna.load_study(study_name="magnitude-S1",
                              storage=f"sqlite:///{tmp_path / 'a' / 'optuna.db'}")
    # each epoch's validation loss reaches the pruner
    assert all(t.intermediate_values for t in study.trials)
    again = tune(space, bars, n_trials=2, out=tmp_path / "b", symbols=["S1"], seed=3,
                 storage=f"sqlite:///{tmp_path / 'other.db'}")  # any RDB URL
    assert again["S1"]["params"] == records["S1"]["params"]
    assert again["S1"]["storage"].endswith("other.db")
    # the study lives in the storage: a second call continues it
    more = tune(space, bars, n_trials=1, out=tmp_path / "a", symbols=["S1"], seed=3)
    assert more["S1"]["trials"]["complete"] == 3


@pytest.mark.slow
def test_trials_fan_out_over_workers_into_one_shared_study(bars, tmp_path):
    import optuna

    space = parse_search_space(SPACE)
    records = tune(space, bars, n_trials=4, out=tmp_path, symbols=["S0", "S1"], seed=3,
                   executor="local", workers=2)
    assert set(records) == {"S0", "S1"}
    for symbol in ("S0", "S1"):
        study = optuna.load_study(study_name=f"magnitude-{symbol}",
                                  storage=f"sqlite:///{tmp_path / 'optuna.db'}")
        # two workers each ran half of the trials against the same stored study
        assert len(study.trials) == 4 and records[symbol]["trials"]["complete"] + records[
            symbol]["trials"]["pruned"] == 4
        best = min((t for t in study.trials if t.value is not None), key=lambda t: t.value)
        assert records[symbol]["value"] == pytest.approx(best.value)


def test_promoted_configs_feed_per_symbol_models(bars, tmp_path):
    tune(parse_search_space(SPACE), bars, n_trials=1, out=tmp_path, seed=0)
    [path] = promote(tmp_path)
    data = json.loads(path.read_text())
    assert path == tmp_path / "promoted" / "magnitude.json" and set(data["symbols"]) == {"S0",
                                                                                        "S1"}
    analyst = get_analyst("magnitude", features=SHORT_FEATURES, train=TINY_TRAIN,
                          tuned_configs=str(path)).fit(bars)
    assert {k: u.config.width for k, u in analyst.units.items()} == {
        s: v["width"] for s, v in data["symbols"].items()}
    with pytest.raises(ConfigError, match="holds no tuning results"):
        promote(tmp_path, analyst="lstm")


SCENARIO = """
name: tiny_ml
data: {source: sp500_stocks, assets: [AAPL, MSFT], start: 2019-06-01, end: 2020-12-31}
train_until: 2019-12-31
analysts:
  - name: magnitude
    config:
      depth: 1
      width: 4
      train: {epochs: 1, max_samples_per_epoch: 512, progress: false, threads: 1}
strategy: {name: topk_long_short, config: {k: 1}}
"""


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(analyst_app, name="analyst")
    app.command("tune")(tune_command)
    return app


def test_cli_train_evaluate_tune_promote(cli, tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(SCENARIO)
    runner = CliRunner()
    result = runner.invoke(cli, ["analyst", "train", str(scenario), "--out",
                                 str(tmp_path / "models"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "models" / "magnitude" / "config.json").is_file()
    result = runner.invoke(cli, ["analyst", "evaluate", str(scenario), "--out",
                                 str(tmp_path / "eval"), "--quiet"])
    assert result.exit_code == 0, result.output
    evaluation = json.loads((tmp_path / "eval" / "magnitude" / "evaluation.json").read_text())
    assert evaluation["periods"]["test_start"].startswith("2020-01-02")
    assert {"zero", "drift", "last", "majority"} <= set(evaluation["metrics"]["overall"])
    assert evaluation["verdict"]
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps({"analyst": "magnitude", "params": {
        "width": {"type": "int", "low": 2, "high": 6}}}))
    result = runner.invoke(cli, ["tune", str(scenario), "--trials", "1", "--space", str(space),
                                 "--symbols", "MSFT", "--out", str(tmp_path / "tune")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "tune" / "magnitude" / "MSFT.json").read_text())
    assert record["tuning_period"]["end"].startswith("2019-12-31")  # never past train_until
    result = runner.invoke(cli, ["analyst", "promote", str(tmp_path / "tune")])
    assert result.exit_code == 0 and "tuned_configs" in result.output
    missing = runner.invoke(cli, ["tune", str(scenario), "--trials", "1"])
    assert missing.exit_code == 2 and "no search space given" in missing.output


def test_cli_train_replaces_only_saved_analysts_and_only_when_asked(cli, tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(SCENARIO)
    runner = CliRunner()
    args = ["analyst", "train", str(scenario), "--out", str(tmp_path / "models"), "--quiet"]
    assert runner.invoke(cli, args).exit_code == 0
    again = runner.invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(cli, [*args, "--overwrite"]).exit_code == 0
    notes = tmp_path / "mine" / "magnitude"
    notes.mkdir(parents=True)
    (notes / "keep.txt").write_text("x")
    refused = runner.invoke(cli, ["analyst", "train", str(scenario), "--out",
                                  str(tmp_path / "mine"), "--quiet", "--overwrite"])
    assert refused.exit_code == 2 and "not a saved analyst" in refused.output
    assert (notes / "keep.txt").is_file()
