from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")

from analysts import LSTMAnalyst, get_analyst, load_analyst  # noqa: E402
from engine.errors import ConfigError, DataError  # noqa: E402
from tests.analysts._ml_helpers import SHORT_FEATURES, TINY_TRAIN, close_only, ohlcv_bars  # noqa: E402

CONFIG = {"window": 5, "hidden_size": 4, "features": SHORT_FEATURES, "train": TINY_TRAIN}


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return close_only(ohlcv_bars(200, 3, seed=2))


@pytest.fixture(scope="module")
def fitted(bars) -> LSTMAnalyst:
    return get_analyst("lstm", **CONFIG).fit(bars, until="2020-05-31")


def test_registered_and_configured_by_name():
    analyst = get_analyst("lstm", hidden_size=8, loss="focal")
    assert isinstance(analyst, LSTMAnalyst) and analyst.config.hidden_size == 8
    with pytest.raises(ConfigError, match="unknown key 'hiden_size'.*did you mean 'hidden_size'"):
        get_analyst("lstm", hiden_size=8)
    with pytest.raises(ConfigError, match="loss"):
        get_analyst("lstm", loss="mse")


def test_predicts_prob_up_for_every_eligible_row(fitted, bars):
    out = fitted.predict(bars, start="2020-06-01")
    assert out.columns == ["ts", "asset", "prob_up", "score"]
    assert out["ts"].min().isoformat() >= "2020-06-01"
    prob = out["prob_up"].to_numpy()
    assert ((prob > 0) & (prob < 1)).all()
    np.testing.assert_allclose(out["score"].to_numpy(), 2 * prob - 1)
    # every bar after the warm-up gets a prediction: 3 assets x the days in June..July 18
    days = bars.filter(pl.col("ts") >= pl.datetime(2020, 6, 1))["ts"].n_unique()
    assert out.height == 3 * days
    unit = fitted.units["*"]
    assert unit.fit_until.isoformat().startswith("2020-05-31")
    assert len(unit.history) == TINY_TRAIN["epochs"] and "val_loss" in unit.history[0]


def test_focal_loss_trains_too(bars):
    analyst = get_analyst("lstm", **{**CONFIG, "loss": "focal", "focal_alpha": 0.3})
    out = analyst.fit(bars, until="2020-05-31").predict(bars, start="2020-06-01")
    assert out["prob_up"].is_finite().all()


def test_save_and_load_give_identical_predictions(fitted, bars, tmp_path):
    path = fitted.save(tmp_path / "lstm")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model-0.safetensors"]
    loaded = load_analyst(path)
    assert isinstance(loaded, LSTMAnalyst)
    assert loaded.predict(bars).equals(fitted.predict(bars))


def test_a_checkpoint_whose_config_does_not_match_the_model_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "lstm")
    meta = json.loads((path / "config.json").read_text())
    meta["units"]["*"]["config"]["hidden_size"] = 9
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="does not match the model built from its config"):
        load_analyst(path)


def test_too_few_rows_says_how_many_are_needed(bars):
    short = bars.filter(pl.col("ts") < pl.datetime(2020, 1, 20))
    # warm-up 30 (the cross-sectional rank of the 30-bar MA gap) + window 5 - 1 + horizon 1
    with pytest.raises(DataError, match=r"too few rows.*needs 35 bars of one asset.*has 19 "
                                        r"bars"):
        get_analyst("lstm", **CONFIG).fit(short)
    # enough for one sample, not for a train/validation split
    barely = bars.filter(pl.col("ts") < pl.datetime(2020, 2, 5))
    with pytest.raises(DataError, match="too few rows for a train/validation split"):
        get_analyst("lstm", **CONFIG).fit(barely)


def test_predict_before_fit_and_missing_cuda_are_clear(bars):
    with pytest.raises(ConfigError, match="not fit"):
        get_analyst("lstm", **CONFIG).predict(bars)
    import torch

    if not torch.cuda.is_available():
        analyst = get_analyst("lstm", **{**CONFIG, "train": {**TINY_TRAIN, "device": "cuda"}})
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            analyst.fit(bars, until="2020-05-31")
        auto = get_analyst("lstm", **{**CONFIG, "train": {**TINY_TRAIN, "device": "auto"}})
        assert auto.fit(bars, until="2020-05-31").is_fit  # auto falls back to the CPU
