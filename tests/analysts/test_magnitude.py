from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")

from analysts import MagnitudeAnalyst, get_analyst, load_analyst  # noqa: E402
from analysts.evaluation import evaluate_analyst  # noqa: E402
from analysts.features import FeatureConfig, build_features  # noqa: E402
from engine.errors import ConfigError, DataError  # noqa: E402
from tests.analysts._ml_helpers import SHORT_FEATURES, TINY_TRAIN, close_only, ohlcv_bars  # noqa: E402

CONFIG = {"depth": 1, "width": 8, "features": SHORT_FEATURES, "train": TINY_TRAIN}


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return close_only(ohlcv_bars(200, 3, seed=3))


def test_predicts_pred_return_in_return_units(bars):
    analyst = get_analyst("magnitude", **CONFIG).fit(bars, until="2020-05-31")
    out = analyst.predict(bars, start="2020-06-01")
    assert out.columns == ["ts", "asset", "pred_return", "score"]
    pred = out["pred_return"].to_numpy()
    assert np.isfinite(pred).all() and np.array_equal(pred, out["score"].to_numpy())
    unit = analyst.units["*"]
    # labels are scaled by their training std (1 % daily noise) and scaled back
    assert 0.005 < unit.target_scale < 0.02
    assert np.abs(pred).max() <= 3.0 * unit.target_scale + 1e-9  # the tanh head's bound
    # the scaler saw the training period only (not validation, not later bars)
    feats = build_features(bars, FeatureConfig(**SHORT_FEATURES))
    train_rows = feats.frame.filter(feats.ready() & (pl.col("ts") <= unit.train_end))
    assert unit.train_end < unit.fit_until
    np.testing.assert_allclose(unit.scaler.mean,
                               train_rows.select(feats.columns).mean().row(0), rtol=1e-9)


@pytest.mark.parametrize("loss", ["mse", "huber", "mse_sign", "huber_sign", "sign_error_ratio",
                                  "asymmetric_mse"])
def test_every_loss_trains(bars, loss):
    config = {**CONFIG, "loss": loss, "train": {**TINY_TRAIN, "epochs": 1}}
    out = get_analyst("magnitude", **config).fit(bars, until="2020-05-31").predict(
        bars, start="2020-06-01")
    assert out.height > 0 and out["pred_return"].is_finite().all()


def test_learns_a_planted_signal_and_beats_the_baselines_out_of_sample():
    # returns with lag-1 autocorrelation -0.4: the last return predicts the next one
    bars = close_only(ohlcv_bars(700, 4, seed=8, ar=-0.4))
    config = {**CONFIG, "width": 16, "head": "identity", "loss": "mse",
              "features": {"groups": ["returns"]},
              "train": {**TINY_TRAIN, "epochs": 8, "lr": 0.005}}
    result = evaluate_analyst(get_analyst("magnitude", **config), bars)
    overall = result.metrics["overall"]
    model = overall["model"]
    assert model["sign_accuracy"] > 0.6
    assert model["mae"] < min(overall[b]["mae"] for b in ("zero", "drift", "last"))
    assert model["pearson"] > 0.3 and model["r2"] > 0.05
    tests = result.tests["overall"]
    assert all(tests["dm"][b]["p_better"] < 0.01 for b in ("zero", "drift", "last"))
    assert tests["ic"]["rank_ic"] > 0.2 and tests["ic"]["rank_ic_t"] > 3


def test_per_symbol_models_with_tuned_configs(bars, tmp_path):
    tuned = tmp_path / "magnitude.json"
    tuned.write_text(json.dumps({"analyst": "magnitude", "tuned_period": {
        "first_bar": "2019-01-01", "last_bar": "2019-12-31"},  # tuned before these bars
                                 "symbols": {"S0": {"width": 4}, "S1": {"width": 6}}}))
    analyst = get_analyst("magnitude", **CONFIG, tuned_configs=str(tuned))
    analyst.fit(bars, until="2020-05-31")
    assert sorted(analyst.units) == ["S0", "S1", "S2"]
    widths = {k: u.config.width for k, u in analyst.units.items()}
    assert widths == {"S0": 4, "S1": 6, "S2": 8}  # S2 keeps the base config
    out = analyst.predict(bars, start="2020-06-01")
    assert sorted(out["asset"].unique().to_list()) == ["S0", "S1", "S2"]
    loaded = load_analyst(analyst.save(tmp_path / "saved"))
    assert loaded.predict(bars, start="2020-06-01").equals(out)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"analyst": "lstm", "symbols": {}}))
    with pytest.raises(ConfigError, match="holds configs for analyst 'lstm'"):
        get_analyst("magnitude", **CONFIG, tuned_configs=str(bad)).fit(bars)


@pytest.mark.slow
def test_per_symbol_models_train_in_worker_processes_identically(bars):
    inline = get_analyst("magnitude", **CONFIG, per_symbol=True).fit(bars, until="2020-05-31")
    fanned = get_analyst("magnitude", **CONFIG, per_symbol=True).fit(
        bars, until="2020-05-31", executor={"kind": "local", "workers": 2})
    assert sorted(fanned.units) == ["S0", "S1", "S2"]
    a = inline.predict(bars, start="2020-06-01")
    b = fanned.predict(bars, start="2020-06-01")
    assert a.equals(b)  # each model is seeded from its config, whichever process trains it


def test_window_flattens_several_rows_and_mismatched_features_are_refused(bars, tmp_path):
    analyst = get_analyst("magnitude", **{**CONFIG, "window": 3}).fit(bars, until="2020-05-31")
    assert isinstance(analyst, MagnitudeAnalyst)
    n_features = len(analyst.units["*"].scaler.columns)
    assert analyst.units["*"].model.body[0].in_features == 3 * n_features
    # predicting on bars whose features differ (OHLCV instead of close-only, auto groups)
    auto = get_analyst("magnitude", **{**CONFIG, "features": {"ma_windows": [5, 10]}}).fit(
        bars, until="2020-05-31")
    with pytest.raises(DataError, match=r"columns differ from the ones it was fit on: "
                                        r"missing \[\], unexpected \['hl_range'"):
        auto.predict(ohlcv_bars(200, 3, seed=3))
