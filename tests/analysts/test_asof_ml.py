"""The as-of rule for the trained analysts: bars after t never change a prediction <= t.

Three layers are checked: the features (incl. cross-sectional ranks and VIX), the fitted
analyst's predictions, and the fit itself (scaler and weights) when only bars after the
cut-off change.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from analysts import get_analyst  # noqa: E402
from analysts.features import FeatureConfig, build_features  # noqa: E402
from tests.analysts._ml_helpers import SHORT_FEATURES, TINY_TRAIN, ohlcv_bars  # noqa: E402

START = datetime(2020, 1, 1)
N_BARS = 160
UNTIL = START + timedelta(days=110)
SETTINGS = settings(max_examples=6, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return ohlcv_bars(N_BARS, 3, seed=9)


def _perturb_after(bars: pl.DataFrame, t: datetime, seed: int, drop: bool) -> pl.DataFrame:
    """Change every price after ``t`` (and maybe drop some of those bars)."""
    rng = np.random.default_rng(seed)
    factor = pl.Series(rng.uniform(0.5, 1.5, bars.height))
    later = pl.col("ts") > t
    changed = bars.with_columns([
        pl.when(later).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close", "volume")])
    changed = changed.with_columns(
        pl.max_horizontal("open", "high", "low", "close").alias("high"),
        pl.min_horizontal("open", "high", "low", "close").alias("low"))
    if drop:
        keep = pl.Series(rng.random(bars.height) > 0.3)
        changed = changed.filter(~later | keep)
    return changed


def _upto(frame: pl.DataFrame, t: datetime) -> pl.DataFrame:
    return frame.filter(pl.col("ts") <= t).sort("ts", "asset")


@SETTINGS
@given(day=st.integers(40, N_BARS - 2), seed=st.integers(0, 10_000), drop=st.booleans())
def test_features_dated_up_to_t_ignore_later_bars(bars, day, seed, drop):
    t = START + timedelta(days=day)
    days = sorted(bars["ts"].unique().to_list())
    vix = pl.DataFrame({"ts": days, "close": np.linspace(12, 30, len(days))})
    vix_changed = vix.with_columns(pl.when(pl.col("ts") > t).then(pl.col("close") * 3)
                                   .otherwise(pl.col("close")).alias("close"))
    config = FeatureConfig(ma_windows=(5, 20))
    base = build_features(bars, config, vix=vix)
    other = build_features(_perturb_after(bars, t, seed, drop), config, vix=vix_changed)
    assert base.columns == other.columns and "cs_rank_ret_1" in base.columns
    a, b = _upto(base.frame, t), _upto(other.frame, t)
    assert a.equals(b)


@pytest.fixture(scope="module", params=["magnitude", "lstm"])
def fitted(request, bars):
    config = {"features": SHORT_FEATURES, "train": TINY_TRAIN, "horizon": 2}
    config |= {"window": 4, "hidden_size": 4} if request.param == "lstm" else {"width": 8}
    analyst = get_analyst(request.param, **config)
    return analyst.fit(bars, until=UNTIL), config


@SETTINGS
@given(day=st.integers(112, N_BARS - 2), seed=st.integers(0, 10_000), drop=st.booleans())
def test_predictions_dated_up_to_t_ignore_later_bars(fitted, bars, day, seed, drop):
    analyst, _ = fitted
    t = START + timedelta(days=day)
    base = analyst.predict(bars, end=t)
    other = analyst.predict(_perturb_after(bars, t, seed, drop), end=t)
    assert base.height > 0 and base.equals(other)


@SETTINGS
@given(day=st.integers(110, N_BARS - 2), seed=st.integers(0, 10_000))
@example(day=110, seed=1)  # every bar after the cut-off changes
def test_the_fit_ignores_bars_after_until_scaler_included(fitted, bars, day, seed):
    analyst, config = fitted
    t = START + timedelta(days=day)  # t >= until: only bars after the cut-off change
    refit = get_analyst(analyst.name, **config).fit(_perturb_after(bars, t, seed, True),
                                                    until=UNTIL)
    old, new = analyst.units["*"], refit.units["*"]
    np.testing.assert_array_equal(old.scaler.mean, new.scaler.mean)
    np.testing.assert_array_equal(old.scaler.std, new.scaler.std)
    assert old.target_scale == new.target_scale
    assert old.history == new.history  # validation losses too: no label from after until
    for key, value in old.model.state_dict().items():
        assert np.array_equal(value.numpy(), new.model.state_dict()[key].numpy()), key
