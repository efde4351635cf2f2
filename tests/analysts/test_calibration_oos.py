"""Calibration fits on out-of-sample forecasts only by default: a fitted model's in-sample
forecasts (it has seen their outcomes) never become calibration pairs, unless
``calibration_pairs: all`` asks for the old, biased behaviour."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import polars as pl
import pytest

import analysts.calibration as calibration
from analysts import AnalystConfig, ConfiguredAnalyst, get_analyst
from analysts.calibration import in_sample_until
from analysts.features import add_targets, target_names
from analysts.skill import brier_score
from tests.analysts._ml_helpers import SHORT_FEATURES, TINY_TRAIN, close_only, ohlcv_bars


class MemorizerConfig(AnalystConfig):
    confidence: float = 0.9


class Memorizer(ConfiguredAnalyst):
    """A model that learnt its training labels by heart and knows nothing else: on its
    training bars prob_up is 0.9 / 0.1 on the side that happened, after them a coin flip
    said with the same confidence (the over-fit network in caricature)."""

    name: ClassVar[str] = "memorizer"
    config_class: ClassVar[type[AnalystConfig]] = MemorizerConfig

    def fit(self, bars: pl.DataFrame, until: Any = None) -> Memorizer:
        stamps = bars.filter(pl.col("ts") <= until)["ts"].unique().sort()
        self.train_end = stamps[int(stamps.len() * 0.6)]  # the rest validates
        up, _, seen = target_names(1)
        labels = add_targets(bars.select("ts", "asset", "close"), (1,))
        self.known = labels.filter((pl.col("ts") <= self.train_end)
                                   & (pl.col(seen) <= self.train_end)).select(
            "ts", "asset", pl.col(up).alias("_known"))
        return self

    def in_sample_until(self) -> dict[str, datetime]:
        return {"*": self.train_end}

    def predict(self, bars: pl.DataFrame, start: Any = None, end: Any = None) -> pl.DataFrame:
        c = self.config.confidence
        frame = bars.select("ts", "asset").join(self.known, on=["ts", "asset"], how="left")
        seed = pl.col("ts").dt.epoch("d") * 31 + pl.col("asset").str.len_bytes()
        coin = (seed.hash(7) % 2).cast(pl.Float64)  # the same flip for the same row
        guess = pl.when(pl.col("_known").is_not_null()).then(pl.col("_known")).otherwise(coin)
        out = frame.select("ts", "asset", (c * guess + (1 - c) * (1 - guess)).alias("prob_up"))
        if start is not None:
            out = out.filter(pl.col("ts") >= start)
        return out.filter(pl.col("ts") <= end) if end is not None else out


def _test_brier(pairs: str, bars: pl.DataFrame, until: datetime, start: datetime) -> float:
    model = Memorizer(calibrate="isotonic", calibration_history=2000, calibration_pairs=pairs)
    model.fit(bars, until=until)
    out = model.predict(bars, start=start)
    up, change, _ = target_names(1)
    truth = add_targets(bars.select("ts", "asset", "close"), (1,)).filter(
        pl.col(change) != 0).select("ts", "asset", up)
    scored = out.join(truth, on=["ts", "asset"]).drop_nulls()
    return brier_score(scored["prob_up"].to_numpy(), scored[up].to_numpy())


def test_in_sample_pairs_keep_the_over_confidence_out_of_sample_ones_remove_it():
    bars = close_only(ohlcv_bars(700, 4, seed=11))
    stamps = bars["ts"].unique().sort()
    until, start = stamps[499], stamps[500]
    honest = _test_brier("out_of_sample", bars, until, start)
    biased = _test_brier("all", bars, until, start)
    raw = Memorizer().fit(bars, until=until).predict(bars, start=start)
    up, change, _ = target_names(1)
    truth = add_targets(bars.select("ts", "asset", "close"), (1,)).filter(
        pl.col(change) != 0).select("ts", "asset", up)
    scored = raw.join(truth, on=["ts", "asset"]).drop_nulls()
    uncalibrated = brier_score(scored["prob_up"].to_numpy(), scored[up].to_numpy())
    # a coin flip said with 0.9 confidence scores 0.41; calibrated on its validation
    # forecasts it becomes about 0.5 (0.25); calibrated on its memorised training rows
    # too, most of the over-confidence stays
    assert uncalibrated == pytest.approx(0.41, abs=0.03)
    assert honest < 0.27
    assert biased > honest + 0.05


def _captured(monkeypatch: pytest.MonkeyPatch) -> list[pl.DataFrame]:
    seen: list[pl.DataFrame] = []
    original = calibration.calibrate_series

    def spy(frame: pl.DataFrame, method: str, **kw: Any) -> Any:
        seen.append(frame)
        return original(frame, method, **kw)

    monkeypatch.setattr(calibration, "calibrate_series", spy)
    return seen


def test_a_trainable_analyst_calibrates_on_its_validation_slice_and_later(monkeypatch):
    pytest.importorskip("torch")
    bars = close_only(ohlcv_bars(420, 4, seed=12))
    stamps = bars["ts"].unique().sort()
    until, start = stamps[299], stamps[300]
    pairs_used = {}
    for pairs in ("out_of_sample", "all"):
        seen = _captured(monkeypatch)
        lstm = get_analyst("lstm", window=5, hidden_size=8, features=SHORT_FEATURES, train=TINY_TRAIN,
                           calibrate="isotonic", calibration_history=1000,
                           calibration_pairs=pairs).fit(bars, until=until)
        out = lstm.predict(bars, start=start)
        assert out["ts"].min() == start and out["prob_up"].is_between(0, 1).all()
        [frame] = seen
        pairs_used[pairs] = frame.filter(pl.col("_up").is_not_null())["ts"]
        train_end = lstm.units["*"].train_end
    assert in_sample_until(lstm) == {"*": train_end}
    assert pairs_used["out_of_sample"].min() > train_end  # the validation slice and later
    assert pairs_used["out_of_sample"].min() <= until  # ... and the validation slice counts
    assert pairs_used["all"].min() < train_end  # the old behaviour, on request only


def test_what_counts_as_in_sample_for_analysts_that_do_not_train_units():
    bars = close_only(ohlcv_bars(200, 2, seed=13))
    until = bars["ts"].unique().sort()[150]
    momentum = get_analyst("momentum", lookback=5).fit(bars, until=until)
    assert in_sample_until(momentum) == {}  # learns nothing: every forecast counts
    ensemble = get_analyst("ensemble", members=[{"name": "momentum"},
                                                {"name": "naive"}]).fit(bars, until=until)
    assert in_sample_until(ensemble) == {"*": until}  # weights learnt up to the cut-off
    toto = get_analyst("toto", architecture="tiny", context=32)
    assert in_sample_until(toto) == {}  # pretrained, used as is, never fit


def test_calibration_pairs_names_its_choices():
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="calibration_pairs"):
        get_analyst("momentum", calibrate="isotonic", calibration_pairs="in_sample")
