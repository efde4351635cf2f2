from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from analysts import get_analyst
from analysts.calibration import (
    MIN_PAIRS,
    apply_isotonic,
    apply_platt,
    calibrate_series,
    fit_isotonic,
    fit_platt,
)
from analysts.skill import brier_score
from tests.analysts._ml_helpers import close_only, ohlcv_bars


def _overconfident(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=n)
    up = rng.random(n) < 1 / (1 + np.exp(-z))  # the true probability is sigmoid(z)
    return 1 / (1 + np.exp(-3 * z)), up  # the forecast says sigmoid(3 z): over-confident


def test_isotonic_and_platt_match_sklearn():
    sk_iso = pytest.importorskip("sklearn.isotonic")
    sk_lin = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    p, up = _overconfident(rng, 500)
    ours = apply_isotonic(fit_isotonic(p, up), p)
    theirs = sk_iso.IsotonicRegression(out_of_bounds="clip").fit(p, up).predict(p)
    assert np.allclose(ours, theirs)
    a, b = fit_platt(p, up)
    logit = np.log(p / (1 - p))[:, None]
    reference = sk_lin.LogisticRegression(C=1e9, tol=1e-12, max_iter=10_000).fit(logit, up)
    assert a == pytest.approx(reference.coef_[0, 0], rel=1e-4)
    assert b == pytest.approx(reference.intercept_[0], abs=1e-4)
    assert a == pytest.approx(1 / 3, abs=0.1)  # undoes the factor 3
    assert np.all(np.diff(apply_platt((a, b), np.sort(p))) >= 0)


def _series(rng: np.random.Generator, days: int, horizon: int = 2) -> pl.DataFrame:
    p, up = _overconfident(rng, days)
    start = datetime(2020, 1, 1)
    ts = [start + timedelta(days=i) for i in range(days)]
    seen = [start + timedelta(days=i + horizon) for i in range(days)]
    return pl.DataFrame({"ts": ts, "prob_up": p, "_up": up.astype(float), "_seen": seen})


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_is_causal_and_helps(method):
    rng = np.random.default_rng(1)
    frame = _series(rng, 1500)
    values, raw = calibrate_series(frame, method)
    # day i has seen the outcomes of days 0 .. i - 2: MIN_PAIRS of them from day MIN_PAIRS + 1
    assert raw[: MIN_PAIRS + 1].all() and not raw[MIN_PAIRS + 1:].any()
    # perturbing outcomes observed after t changes nothing calibrated at or before t
    cut = 700
    t = frame["ts"][cut]
    flipped = frame.with_columns(
        pl.when(pl.col("_seen") > t).then(1.0 - pl.col("_up")).otherwise(pl.col("_up"))
        .alias("_up"))
    again, _ = calibrate_series(flipped, method)
    assert np.array_equal(values[: cut + 1], again[: cut + 1])
    assert not np.array_equal(values[cut + 1:], again[cut + 1:])  # the test can fail
    # out of sample, the calibrated probabilities score better than the raw ones
    late = slice(300, None)
    up = frame["_up"].to_numpy()[late]
    assert brier_score(values[late], up) < brier_score(frame["prob_up"].to_numpy()[late], up)


def test_calibrated_analyst_is_causal_on_bars():
    bars = close_only(ohlcv_bars(260, 4, seed=2))
    analyst = get_analyst("momentum", lookback=5, calibrate="isotonic",
                          calibration_history=120)
    raw = get_analyst("momentum", lookback=5)
    start = bars["ts"].unique().sort()[150]
    with pytest.warns(UserWarning, match="keep their raw prob_up"):
        first = analyst.predict(bars, start=bars["ts"].min())
    out = analyst.predict(bars, start=start)
    plain = raw.predict(bars, start=start)
    assert out.height == plain.height and out["ts"].min() == start
    assert not np.allclose(out["prob_up"].to_numpy(), plain["prob_up"].to_numpy())
    assert first.height > out.height
    # bars after t changed: nothing dated <= t moves
    t = bars["ts"].unique().sort()[200]
    later = bars.with_columns(pl.when(pl.col("ts") > t).then(pl.col("close") * 1.3)
                              .otherwise(pl.col("close")).alias("close"))
    moved = analyst.predict(later, start=start)
    upto = pl.col("ts") <= t
    assert out.filter(upto).equals(moved.filter(upto))
    assert not out.filter(~upto).equals(moved.filter(~upto))


def test_calibrate_names_its_methods():
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="calibrate: .*'isotonic' or 'platt'"):
        get_analyst("momentum", calibrate="sigmoid")


def test_calibration_is_a_config_key_of_trainable_and_foundation_analysts():
    for name in ("lstm", "magnitude", "toto", "kronos", "naive", "file"):
        from analysts import REGISTRY

        assert "calibrate" in REGISTRY[name].config_class.model_fields
