"""Walk-forward forecast scoring covers classifiers (prob_up only) as well as
regressors, next to the same baselines."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl

from alfred.walkforward._fold import forecast_metrics
from tests.analysts._ml_helpers import close_only, ohlcv_bars


def test_a_classifier_gets_direction_scores_and_a_verdict():
    bars = close_only(ohlcv_bars(200, 4, seed=9))
    stamps = bars["ts"].unique().sort()
    train_end, test_start, test_end = stamps[119], stamps[125], stamps[-1]
    rng = np.random.default_rng(0)
    signals = bars.filter(pl.col("ts") >= test_start).select("ts", "asset").with_columns(
        pl.Series("prob_up", rng.random(bars.filter(pl.col("ts") >= test_start).height)))
    lstm = SimpleNamespace(config=SimpleNamespace(horizon=1))
    scored, rows = forecast_metrics(lstm, signals, bars, test_start, test_end, train_end)
    assert scored is not None and rows.height == scored["rows"] == 4 * 74
    assert np.isnan(scored["pct_return_mae"]) and scored["zero_pct_return_mae"] > 0
    assert 0 < scored["accuracy"] < 1 and 0 < scored["majority_accuracy"] < 1
    assert 0 <= scored["majority_direction_p"] <= 1 and 0 < scored["auc"] < 1
    assert scored["verdict"] == "no evidence of skill at 5%" and scored["notes"] == ""
    assert "majority" in rows.columns  # each fold's own majority, for the pooled tests
    nothing = forecast_metrics(lstm, signals.select("ts", "asset"), bars, test_start,
                               test_end, train_end)
    assert nothing == (None, None)


def test_fold_rows_say_when_the_model_runs_on_random_weights_or_inside_its_pretraining():
    from analysts import get_analyst

    bars = close_only(ohlcv_bars(120, 2, seed=9))
    stamps = bars["ts"].unique().sort()
    toto = get_analyst("toto", context=32, horizon=1, num_samples=4, stride=10,
                       device="cpu")
    signals = toto.predict(bars, start=stamps[100])
    scored, _ = forecast_metrics(toto, signals, bars, stamps[100], stamps[-1], stamps[90])
    assert "random weights" in scored["notes"]
    toto = get_analyst("toto", context=32, horizon=1, num_samples=4, stride=10,
                       device="cpu", pretrained_through="2024-01-31")
    toto.__dict__["fit_summary"] = lambda: {"model": {"weights_dir": "x"}}
    scored, _ = forecast_metrics(toto, signals, bars, stamps[100], stamps[-1], stamps[90])
    assert "inside the model's pretraining period" in scored["notes"]
