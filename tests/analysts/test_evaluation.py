from __future__ import annotations

import json
import math

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
    assert set(overall) == {"model", "zero", "drift", "last", "always_up", "majority"}
    assert {overall[p]["n"] for p in overall} == {58}
    # the baselines, recomputed by hand
    frame = bars.sort("asset", "ts").with_columns(
        (pl.col("close") / pl.col("close").shift(1).over("asset") - 1).alias("last"),
        (pl.col("close").shift(-1).over("asset") / pl.col("close") - 1).alias("next"),
    )
    fit_end = frame["ts"].unique().sort()[119]
    seen = frame.filter(pl.col("ts").shift(-1).over("asset") <= fit_end)
    drift = seen.group_by("asset").agg(pl.col("next").mean().alias("drift"))
    test = frame.filter((pl.col("ts") >= pl.datetime(2020, 4, 30))
                        & pl.col("next").is_not_null()).join(drift, on="asset")
    real = test["next"].to_numpy()
    assert overall["last"]["mae"] == pytest.approx(np.mean(np.abs(test["last"].to_numpy() - real)))
    assert overall["zero"]["mae"] == pytest.approx(np.mean(np.abs(real)))
    assert overall["drift"]["mae"] == pytest.approx(np.mean(np.abs(test["drift"].to_numpy() - real)))
    moved = real != 0
    assert overall["always_up"]["accuracy"] == pytest.approx(np.mean(real[moved] > 0))
    majority_up = (seen["next"] > 0).sum() >= (seen["next"] < 0).sum()
    assert result.majority == ("up" if majority_up else "down")
    assert math.isnan(overall["zero"]["accuracy"])  # no change has no direction
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved["metrics"]["overall"]["last"]["mae"] == pytest.approx(overall["last"]["mae"])
    assert saved["verdict"] == result.verdict and set(saved["tests"]["overall"]["dm"]) == {
        "zero", "drift", "last"}
    table = (tmp_path / "evaluation.md").read_text()
    assert "| overall | drift |" in table and "| S1 | model |" in table
    assert "**Verdict:" in table and "Diebold-Mariano" in table
    assert [d["horizon"] for d in result.ic_decay] == [1, 2, 5, 10, 20]


def test_flat_rows_are_left_out_of_direction_and_counted():
    from analysts.evaluation import predictor_metrics

    rows = pl.DataFrame({"ts": [1, 2, 3, 4], "asset": ["A"] * 4, "close": [1.0] * 4,
                         "realised": [0.0, 0.01, -0.01, 0.0], "zero": [0.0] * 4,
                         "drift": [0.001] * 4, "last": [0.0, 0.0, 0.0, 0.0],
                         "pred_return": [0.01, 0.01, 0.01, -0.01]})
    metrics = predictor_metrics(rows, majority_up=False)
    assert metrics["model"]["n_flat"] == 2
    assert metrics["model"]["accuracy"] == 0.5  # rows 2 and 3 only
    assert metrics["always_up"]["accuracy"] == 0.5 and metrics["majority"]["accuracy"] == 0.5
    assert metrics["drift"]["accuracy"] == 0.5
    assert metrics["model"]["up_share"] == 1.0 and metrics["majority"]["up_share"] == 0.0


def test_the_verdict_claims_skill_on_noise_at_most_at_about_the_nominal_rate():
    from analysts.evaluation import forecast_tests

    rng = np.random.default_rng(21)
    n_days, n_assets, claims, reps = 120, 6, 0, 150
    ts = np.repeat(np.arange(n_days), n_assets)
    asset = np.tile([f"A{i}" for i in range(n_assets)], n_days)
    for _ in range(reps):
        realised = rng.normal(0.0, 0.01, ts.size)
        rows = pl.DataFrame({"ts": ts, "asset": asset, "close": np.ones(ts.size),
                             "realised": realised, "zero": np.zeros(ts.size),
                             "drift": np.full(ts.size, rng.normal(0, 0.001)),
                             "last": rng.normal(0.0, 0.01, ts.size),
                             "pred_return": rng.normal(0, 0.002, ts.size)})
        claims += forecast_tests(rows, 1, majority_up=True)["verdict"].startswith("skill")
    assert claims / reps <= 0.07


def test_noise_forecaster_gets_no_skill_and_a_planted_one_does():
    """A forecast of pure noise is not declared skilful; one that sees part of the next
    return is, against every baseline."""
    from analysts.evaluation import forecast_tests

    rng = np.random.default_rng(0)
    n_days, n_assets = 400, 8
    ts = np.repeat(np.arange(n_days), n_assets)
    asset = np.tile([f"A{i}" for i in range(n_assets)], n_days)
    realised = rng.normal(0.0005, 0.01, n_days * n_assets)
    common = {"ts": ts, "asset": asset, "close": np.ones(ts.size), "realised": realised,
              "zero": np.zeros(ts.size), "drift": np.full(ts.size, 0.0005),
              "last": np.roll(realised, n_assets)}
    noise = pl.DataFrame({**common, "pred_return": rng.normal(0, 0.001, ts.size)})
    tests = forecast_tests(noise, 1, majority_up=True)
    assert tests["verdict"].startswith("no evidence of skill")
    planted = pl.DataFrame({**common, "pred_return": 0.3 * realised
                            + rng.normal(0, 0.002, ts.size)})
    tests = forecast_tests(planted, 1, majority_up=True)
    assert tests["verdict"].startswith("skill at 5% (3 tests, Bonferroni)")
    assert "not shown" not in tests["verdict"]
    assert tests["ic"]["rank_ic"] > 0.5 and tests["ic"]["rank_ic_t"] > 10
    assert tests["spread"]["spread"] > 0 and tests["auc"] > 0.8


def test_split_without_a_test_share_is_refused(bars):
    with pytest.raises(ConfigError, match="no test period"):
        evaluate_analyst(get_analyst("naive"), bars, split=(0.8, 0.2, 0.0))
    with pytest.raises(ConfigError, match="sum to 1"):
        evaluate_analyst(get_analyst("naive"), bars, split=(0.5, 0.2, 0.2))


def test_sample_path_analysts_get_crps_coverage_and_pit(tmp_path):
    pytest.importorskip("torch")
    bars = close_only(ohlcv_bars(160, 2, seed=4))
    analyst = get_analyst("toto", context=48, horizon=5, num_samples=16, stride=5,
                          device="cpu")
    signals, samples = analyst.predict_samples(bars, start="2020-04-01")
    assert signals.equals(analyst.predict(bars, start="2020-04-01"))
    assert samples.height > 0 and samples["samples"].list.len().min() == 16
    result = evaluate_analyst(analyst, bars, horizon=5, out=tmp_path)
    prob = result.tests["overall"]["probabilistic"]
    assert prob["rows"] > 0 and prob["crps"] > 0 and prob["crps_climatology"] > 0
    assert 0 <= prob["coverage_80"] <= prob["coverage_90"] <= 1
    assert sum(prob["pit_histogram"]) == pytest.approx(1.0)
    assert "random weights" in " ".join(result.notes)
    assert "CRPS climatology" in (tmp_path / "evaluation.md").read_text()
