"""A run with trained analysts leaves training.json and loss.png in its folder."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("torch")

from alfred.run import run_scenario  # noqa: E402
from alfred.scenario import parse_scenario  # noqa: E402
from alfred.training_report import trained_analysts  # noqa: E402
from tests.analysts._ml_helpers import TINY_TRAIN  # noqa: E402

FEATURES = {"groups": ["returns", "ma_gaps", "volatility"], "ma_windows": [5, 10]}


def _scenario(strategy: dict) -> dict:
    return {
        "name": "tiny_trained",
        "data": {"source": "sp500_stocks", "assets": ["AAPL", "MSFT"],
                 "start": "2019-01-01", "end": "2020-12-31"},
        "train_until": "2019-12-31",
        "analysts": [
            {"name": "magnitude", "config": {"depth": 1, "width": 4, "features": FEATURES,
                                             "train": TINY_TRAIN}},
            {"name": "lstm", "config": {"window": 5, "hidden_size": 4, "per_symbol": True,
                                        "features": FEATURES,
                                        "train": {**TINY_TRAIN, "epochs": 3}}},
        ],
        "strategy": strategy,
        "report": {"tearsheet": False, "plots": False},
    }


def test_a_run_with_trained_analysts_writes_training_json_and_a_loss_plot(tmp_path):
    from PIL import Image

    strategy = {"name": "topk_long_short", "config": {"k": 1, "rank_by": "pred_return"}}
    scenario = parse_scenario(yaml.safe_dump(_scenario(strategy)), source="tiny.yaml")
    run_dir = run_scenario(scenario, out=tmp_path / "run").runs[0].run_dir
    saved = json.loads((run_dir / "training.json").read_text())["analysts"]
    assert list(saved) == ["0:magnitude", "1:lstm"]
    magnitude, lstm = saved["0:magnitude"], saved["1:lstm"]
    assert list(magnitude["units"]) == ["*"] and list(lstm["units"]) == ["AAPL", "MSFT"]
    pooled = magnitude["units"]["*"]
    assert [h["epoch"] for h in pooled["history"]] == [1, 2]
    assert all(h["train_loss"] > 0 and h["val_loss"] > 0 for h in pooled["history"])
    # one feature list, the same for every model built from the same feature config
    assert pooled["features"] and all(isinstance(f, str) for f in pooled["features"])
    assert all(u["features"] == pooled["features"] for u in lstm["units"].values())
    # the model learnt from the training window only: nothing after train_until
    assert pooled["train_window"][0] < pooled["train_window"][1] < pooled["validation_window"][0]
    assert pooled["validation_window"][1] <= "2019-12-31T23:59:59"
    assert pooled["stop_reason"] == "ran the configured 2 epochs"
    assert all(len(u["history"]) == 3 and 1 <= u["best_epoch"] <= 3
               for u in lstm["units"].values())
    # analysts.json holds the same summaries training.json was drawn from
    summaries = json.loads((run_dir / "analysts.json").read_text())
    assert trained_analysts(summaries) == saved
    with Image.open(run_dir / "loss.png") as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width > 500 and height > 2 * 250  # one panel per trained analyst
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 20  # lines were drawn, not a blank


def test_an_untrained_analyst_writes_no_training_files(tmp_path):
    scenario = {
        "name": "plain", "data": {"source": "sp500_stocks", "assets": ["AAPL", "MSFT"],
                                  "start": "2020-01-01", "end": "2020-06-30"},
        "analysts": [{"name": "momentum", "config": {"lookback": 20}}],
        "strategy": {"name": "topk_long_short", "config": {"k": 1}},
        "report": {"tearsheet": False, "plots": False},
    }
    run_dir = run_scenario(parse_scenario(yaml.safe_dump(scenario), source="p.yaml"),
                           out=tmp_path / "run").runs[0].run_dir
    assert not (run_dir / "training.json").exists() and not (run_dir / "loss.png").exists()


def test_ensemble_members_are_found_by_their_path():
    summaries = {"0:ensemble": {"weights": {"0:magnitude": 1.0}, "members": {
        "0:magnitude": {"training": {"analyst": "magnitude", "units": {"*": {}}}}}},
        "1:momentum": {"lookback": 20}}
    assert list(trained_analysts(summaries)) == ["0:ensemble/members/0:magnitude"]
