"""Sample-path aggregation and the sample-path analyst loop (model-agnostic parts)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
import pytest

from analysts._aggregate import parse_aggregate, summarise_paths
from analysts._foundation import ForecastAnalyst, ForecastConfig
from engine.errors import ConfigError
from tests.analysts._ml_helpers import close_only, ohlcv_bars


@pytest.mark.parametrize(("name", "expected"), [
    ("mean", 5.5), ("median", 5.5), ("quantile_0.25", 3.25), ("quantile_0.9", 9.1),
    ("trimmed_mean_10", 5.5),  # drops 1 and 10
    ("trimmed_mean_20", 5.5),  # drops 1, 2 and 9, 10
    ("lower_trimmed_mean_20", 4.5),  # drops 9 and 10 only
    ("lower_trimmed_mean_0", 5.5),
])
def test_aggregates_on_a_known_sample(name, expected):
    assert parse_aggregate(name).reduce(np.arange(1.0, 11.0)) == pytest.approx(expected)


def test_trimming_discards_outliers():
    x = np.array([1.0, 2.0, 3.0, 4.0, 1000.0])
    assert parse_aggregate("trimmed_mean_20").reduce(x) == pytest.approx(3.0)
    assert parse_aggregate("lower_trimmed_mean_20").reduce(x) == pytest.approx(2.5)


@pytest.mark.parametrize("bad", ["avg", "quantile_1.5", "quantile_0", "trimmed_mean_50",
                                 "lower_trimmed_mean_100", "trimmed_mean_-5", "quantile_x"])
def test_bad_aggregate_names_list_the_valid_forms(bad):
    with pytest.raises(ConfigError, match="valid forms: mean; median; quantile_Q"):
        parse_aggregate(bad)


def test_summary_of_paths():
    paths = np.array([[[100.0, 101.0], [100.0, 99.0], [100.0, 105.0], [100.0, 100.0]]])
    out = summarise_paths(paths, np.array([100.0]), "median")
    assert out["pred_price"][0] == pytest.approx(100.5)
    assert out["pred_return"][0] == pytest.approx(0.005)
    assert out["prob_up"][0] == pytest.approx((2 + 0.5) / 4)  # a tie counts half
    assert out["uncertainty"][0] == pytest.approx(np.std([0.01, -0.01, 0.05, 0.0], ddof=1))
    single = summarise_paths(paths[:, :1], np.array([100.0]), "mean")
    assert single["uncertainty"][0] == 0.0


class _Walk(ForecastAnalyst):
    """A model stand-in: Gaussian log-return paths with the context's mean and std."""

    name: ClassVar[str] = "walk"
    config_class = ForecastConfig
    calls: ClassVar[list] = []

    def forecast_paths(self, contexts, seed, stamps):
        rng = np.random.default_rng(seed)
        out = {}
        for asset, values in sorted(contexts.items()):
            type(self).calls.append((asset, len(values)))
            r = np.diff(np.log(values[:, 0]))
            steps = rng.normal(r.mean(), r.std() + 1e-4, (32, self.config.horizon))
            out[asset] = values[-1, 0] * np.exp(np.cumsum(steps, axis=1))
        return out


@pytest.fixture(scope="module")
def bars():
    return close_only(ohlcv_bars(120, 3, seed=1))


def test_forecasts_respect_context_stride_and_min_context(bars):
    _Walk.calls.clear()
    analyst = _Walk(context=30, min_context=20, stride=5, horizon=5, aggregate="mean")
    out = analyst.predict(bars)
    # forecast bars are every 5th bar from the window's start (bars 0, 5, 10, ...); the
    # first with 20 bars of history is bar 20, and each forecast holds until the next
    assert out["ts"].min() == bars["ts"].unique().sort()[20]
    assert max(n for _, n in _Walk.calls) == 30 and min(n for _, n in _Walk.calls) >= 20
    per_asset = out.filter(pl.col("asset") == "S0").sort("ts")
    changes = (per_asset["pred_return"].diff().fill_null(1.0) != 0).sum()
    assert changes == len([c for c in _Walk.calls if c[0] == "S0"])
    assert {"score", "prob_up", "pred_return", "uncertainty"} <= set(out.columns)
    assert out["prob_up"].is_between(0, 1).all()


def test_later_bars_change_no_earlier_forecast_and_seeds_reproduce(bars):
    analyst = _Walk(context=30, min_context=20, stride=3)
    first = analyst.predict(bars, start="2020-02-01")
    assert first.equals(analyst.predict(bars, start="2020-02-01"))
    cut = bars["ts"].unique().sort()[80]
    changed = bars.with_columns(pl.when(pl.col("ts") > cut).then(pl.col("close") * 1.7)
                                .otherwise(pl.col("close")).alias("close"))
    second = analyst.predict(changed, start="2020-02-01")
    upto = pl.col("ts") <= cut
    assert first.filter(upto).equals(second.filter(upto))
    assert not first.equals(second)
    other = _Walk(context=30, min_context=20, stride=3, seed=1).predict(bars, start="2020-02-01")
    assert not other.equals(first)
