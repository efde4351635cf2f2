"""fit_summary of the trainable analysts: loss curves, features, windows, stop reason."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

pytest.importorskip("torch")

from analysts import get_analyst, load_analyst  # noqa: E402
from tests.analysts._ml_helpers import SHORT_FEATURES, TINY_TRAIN, close_only, ohlcv_bars  # noqa: E402


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return close_only(ohlcv_bars(200, 2, seed=5))


def test_magnitude_summary_has_curves_features_and_windows(bars):
    analyst = get_analyst("magnitude", depth=1, width=4, features=SHORT_FEATURES,
                          train={**TINY_TRAIN, "epochs": 3}).fit(bars, until="2020-05-31")
    training = analyst.fit_summary()["training"]
    assert training["analyst"] == "magnitude" and list(training["units"]) == ["*"]
    unit = training["units"]["*"]
    assert unit["features"] == list(analyst.units["*"].scaler.columns) and unit["features"]
    assert [h["epoch"] for h in unit["history"]] == [1, 2, 3]
    assert all(h["train_loss"] > 0 and h["val_loss"] > 0 for h in unit["history"])
    assert unit["epochs_run"] == 3 and 1 <= unit["best_epoch"] <= 3
    assert unit["stop_reason"] == "ran the configured 3 epochs"
    first, last = (datetime.fromisoformat(s) for s in unit["train_window"])
    v_first, v_last = (datetime.fromisoformat(s) for s in unit["validation_window"])
    # training samples come first, then validation, all by the fit's cut-off
    assert bars["ts"].min() < first < last < v_first <= v_last <= datetime(2020, 5, 31)
    # the last training sample's label (one bar ahead) is observed by the scaler's cut
    assert last < analyst.units["*"].train_end < v_first


def test_early_stopping_is_named_and_survives_save_and_load(bars, tmp_path):
    # min_delta so large that only the first epoch counts as an improvement
    train = {**TINY_TRAIN, "epochs": 6, "patience": 2, "min_delta": 1e9}
    analyst = get_analyst("lstm", window=5, hidden_size=4, features=SHORT_FEATURES,
                          per_symbol=True, train=train).fit(bars, until="2020-05-31")
    summary = analyst.fit_summary()["training"]
    assert list(summary["units"]) == ["S0", "S1"]
    for unit in summary["units"].values():
        assert unit["epochs_run"] == 3 and unit["best_epoch"] == 1
        assert unit["stop_reason"].startswith("early stopping") and "2 epochs" in unit["stop_reason"]
    loaded = load_analyst(analyst.save(tmp_path / "lstm"))
    assert loaded.fit_summary() == analyst.fit_summary()


def test_an_unfit_analyst_has_nothing_to_report():
    assert get_analyst("magnitude").fit_summary() == {}
