from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from analysts import get_analyst
from analysts.evaluation import direction_metrics, evaluate_analyst, magnitude_metrics
from engine.errors import ConfigError
from tests.analysts._ml_helpers import close_only, ohlcv_bars


def test_direction_metrics_match_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    true, pred = rng.random(200) > 0.45, rng.random(200) > 0.3
    got = direction_metrics(pred, true)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(true, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(true, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(true, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(true, pred))
    # never predicting up: precision and F1 are 0, not NaN
    assert direction_metrics(np.zeros(4, bool), np.array([1, 0, 1, 0], bool))["f1"] == 0.0


def test_magnitude_metrics_by_hand_and_against_sklearn():
    got = magnitude_metrics(np.array([0.01, -0.02]), np.array([0.02, -0.01]),
                            np.array([100.0, 50.0]))
    assert got["mae"] == pytest.approx(0.01) and got["rmse"] == pytest.approx(0.01)
    assert got["pct_return_mae"] == pytest.approx(1.0)
    assert got["price_mae"] == pytest.approx(0.75)  # |101 - 102| and |49 - 49.5|
    assert got["mape"] == pytest.approx(100 * np.mean([1 / 102, 0.5 / 49.5]))
    assert got["r2"] == pytest.approx(1 - 0.0002 / 0.00045)
    assert got["sign_accuracy"] == 1.0
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    actual = rng.normal(0, 0.02, 300)
    pred = 0.3 * actual + rng.normal(0, 0.01, 300)
    got = magnitude_metrics(pred, actual, np.full(300, 10.0))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(actual, pred))
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(actual, pred)))
    assert got["r2"] == pytest.approx(skm.r2_score(actual, pred))
    assert got["pearson"] == pytest.approx(np.corrcoef(pred, actual)[0, 1])


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return close_only(ohlcv_bars(150, 2, seed=4))


def test_evaluation_puts_the_model_next_to_baselines_on_the_same_rows(bars, tmp_path):
    result = evaluate_analyst(get_analyst("momentum", lookback=5), bars, out=tmp_path)
    # 150 days: 90 train, 30 validation, 30 test; the last test day has no next-day label
    assert result.periods["test_start"].startswith("2020-04-30")
    assert result.n_rows == 2 * 29
    assert set(result.metrics) == {"overall", "S0", "S1"}
    overall = result.metrics["overall"]
    assert {p: overall[p]["n"] for p in overall} == {"model": 58, "naive": 58, "constant": 58}
    # the naive baseline, recomputed by hand: yesterday's return repeats
    frame = bars.sort("asset", "ts").with_columns(
        (pl.col("close") / pl.col("close").shift(1).over("asset") - 1).alias("last"),
        (pl.col("close").shift(-1).over("asset") / pl.col("close") - 1).alias("next"),
    ).filter((pl.col("ts") >= pl.datetime(2020, 4, 30)) & pl.col("next").is_not_null())
    expected = np.mean(np.abs(frame["last"].to_numpy() - frame["next"].to_numpy()))
    assert overall["naive"]["mae"] == pytest.approx(expected)
    assert overall["naive"]["sign_accuracy"] == pytest.approx(
        np.mean(np.sign(frame["last"].to_numpy()) == np.sign(frame["next"].to_numpy())))
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved["metrics"]["overall"]["naive"]["mae"] == pytest.approx(expected)
    table = (tmp_path / "evaluation.md").read_text()
    assert "| overall | naive |" in table and "| S1 | model |" in table


def test_split_without_a_test_share_is_refused(bars):
    with pytest.raises(ConfigError, match="no test period"):
        evaluate_analyst(get_analyst("naive"), bars, split=(0.8, 0.2, 0.0))
    with pytest.raises(ConfigError, match="sum to 1"):
        evaluate_analyst(get_analyst("naive"), bars, split=(0.5, 0.2, 0.2))
