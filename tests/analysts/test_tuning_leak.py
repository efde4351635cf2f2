"""Tuning cannot leak: the objective sits after the fit period and its embargo, tuned
configs carry their period and data hash, and a test window inside it is refused."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest

pytest.importorskip("optuna")
pytest.importorskip("torch")

import analysts.tuning as tuning  # noqa: E402
from analysts.tuning import (  # noqa: E402
    check_tuned_overlap,
    data_hash,
    parse_search_space,
    promote,
    trial_seed,
    tune,
    tuned_meta,
)
from engine.errors import ConfigError  # noqa: E402
from tests.analysts._ml_helpers import SHORT_FEATURES, TINY_TRAIN, close_only, ohlcv_bars  # noqa: E402

SPACE = {
    "analyst": "magnitude",
    "base": {"horizon": 3, "features": SHORT_FEATURES, "train": {**TINY_TRAIN, "epochs": 1}},
    "params": {"width": {"type": "int", "low": 4, "high": 64, "log": True},
               "train.lr": {"type": "float", "low": 0.001, "high": 0.01}},
}


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return close_only(ohlcv_bars(160, 2, seed=5))


def test_the_objective_lies_after_the_fit_period_and_its_embargo(bars, tmp_path, monkeypatch):
    seen = []
    real = tuning.validation_metrics

    def spy(analyst, data, start, end, horizon):
        seen.append((max(u.fit_until for u in analyst.units.values()), start, end, horizon))
        return real(analyst, data, start, end, horizon)

    monkeypatch.setattr(tuning, "validation_metrics", spy)
    records = tune(parse_search_space(SPACE), bars, n_trials=2, out=tmp_path,
                   symbols=["S0"], validation_fraction=0.3)
    stamps = bars["ts"].unique().sort()
    assert len(seen) == 2
    for fit_until, start, end, horizon in seen:
        assert horizon == 3 and end == stamps[-1]
        gap = stamps.filter((stamps > fit_until) & (stamps < start)).len()
        assert gap == horizon  # horizon whole bars between the fit's end and the objective
    record = records["S0"]
    assert record["tuning_period"]["fit_end"] == str(seen[0][0])
    assert record["tuned_on"]["first_bar"] == str(stamps[0])
    assert record["tuned_on"]["last_bar"] == str(stamps[-1])
    assert record["tuned_on"]["data_hash"] == data_hash(bars.filter(pl.col("asset") == "S0"))


def test_symbols_and_trials_get_distinct_sampler_seeds(bars, tmp_path):
    assert len({trial_seed(0, s, i) for s in ("S0", "S1") for i in range(50)}) == 100
    assert trial_seed(1, "S0", 0) != trial_seed(0, "S0", 0)
    twin = pl.concat([bars.filter(pl.col("asset") == "S0"),
                      bars.filter(pl.col("asset") == "S0").with_columns(
                          pl.lit("S1").alias("asset"))]).sort("ts", "asset")
    records = tune(parse_search_space(SPACE), twin, n_trials=1, out=tmp_path, seed=0)
    # identical data, one random trial each: the samplers drew different settings
    assert records["S0"]["params"] != records["S1"]["params"]


def test_data_hash_sees_any_change(bars):
    assert data_hash(bars) == data_hash(bars.sample(fraction=1.0, shuffle=True, seed=1))
    nudged = bars.with_columns(pl.when(pl.col("ts") == bars["ts"].max())
                               .then(pl.col("close") * 1.0001).otherwise(pl.col("close")))
    assert data_hash(nudged) != data_hash(bars)


def test_promoted_file_carries_the_period_and_the_overlap_check_uses_it(bars, tmp_path):
    tune(parse_search_space(SPACE), bars, n_trials=1, out=tmp_path, seed=0)
    [path] = promote(tmp_path)
    data = json.loads(path.read_text())
    stamps = bars["ts"].unique().sort()
    assert data["tuned_period"] == {"first_bar": str(stamps[0]), "last_bar": str(stamps[-1])}
    assert set(data["tuned_on"]) == {"S0", "S1"}
    meta = tuned_meta(path)
    after = datetime(2030, 1, 1)
    assert check_tuned_overlap(meta, after, datetime(2030, 6, 1)) is None
    with pytest.raises(ConfigError, match="overlaps the period its tuned_configs were tuned"):
        check_tuned_overlap(meta, stamps[-1], datetime(2030, 1, 1))  # the last tuned bar
    with pytest.raises(ConfigError, match="allow_tuned_overlap"):
        check_tuned_overlap(meta, stamps[0], stamps[10])  # before and inside
    note = check_tuned_overlap(meta, stamps[0], stamps[10], allow=True)
    assert "in sample for the hyperparameters" in note
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"analyst": "magnitude", "symbols": {}}))
    with pytest.raises(ConfigError, match="does not say which bars it was tuned on"):
        tuned_meta(old)
