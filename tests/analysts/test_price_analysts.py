from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysts import Analyst, MomentumAnalyst, NaiveAnalyst
from engine.errors import ConfigError, DataError
from tests.analysts.conftest import make_bars, random_bars

NAN = math.nan


def _logistic(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=float)))


def _column(frame: pl.DataFrame, asset: str, column: str) -> list[float]:
    return frame.filter(pl.col("asset") == asset)[column].to_list()


def test_naive_persists_the_last_return_with_a_hard_probability():
    bars = make_bars({"A": [10, 11, 9.9, 9.9, 12.87]})
    out = NaiveAnalyst().predict(bars)
    assert out.columns == ["ts", "asset", "score", "prob_up", "pred_return"]
    assert out["ts"].to_list() == [datetime(2024, 1, d) for d in (2, 3, 4, 5)]
    np.testing.assert_allclose(out["pred_return"].to_numpy(), [0.1, -0.1, 0.0, 0.3], atol=1e-12)
    assert out["prob_up"].to_list() == [1.0, 0.0, 0.5, 1.0]
    assert out["score"].to_list() == out["pred_return"].to_list()


def test_naive_horizon_and_smoothed_probability():
    bars = make_bars({"A": [10, 11, 9.9, 9.9, 12.87]})
    out = NaiveAnalyst(horizon=2, prob_scale=0.1).predict(bars)
    expected = [9.9 / 10 - 1, 9.9 / 11 - 1, 12.87 / 9.9 - 1]
    np.testing.assert_allclose(out["pred_return"].to_numpy(), expected)
    np.testing.assert_allclose(out["prob_up"].to_numpy(), _logistic(np.array(expected) / 0.1))


def test_look_back_counts_the_assets_own_bars_not_calendar_days():
    # B has no bar on day 3: its return on day 4 is against day 2
    bars = make_bars({"A": [10, 11, 12, 13], "B": [20, 22, NAN, 33]})
    out = NaiveAnalyst().predict(bars)
    np.testing.assert_allclose(_column(out, "B", "pred_return"), [0.1, 0.5])
    assert out.filter(pl.col("asset") == "B")["ts"].to_list() == [
        datetime(2024, 1, 2), datetime(2024, 1, 4)
    ]


def test_momentum_values_with_skip():
    bars = make_bars({"A": [10, 11, 12, 9, 15]})
    out = MomentumAnalyst(lookback=3, skip=1).predict(bars)
    np.testing.assert_allclose(out["pred_return"].to_numpy(), [12 / 10 - 1, 9 / 11 - 1])
    assert out["ts"].to_list() == [datetime(2024, 1, 4), datetime(2024, 1, 5)]
    # one asset: no cross-section, no view
    assert out["prob_up"].to_list() == [0.5, 0.5]


def test_momentum_cross_sectional_probability_matches_a_numpy_reference():
    closes = {"A": [10, 11, 12, 13], "B": [10, 9, 9.5, 10], "C": [10, 10, 10.5, 12]}
    out = MomentumAnalyst(lookback=2).predict(make_bars(closes))
    for t in (2, 3):
        mom = np.array([closes[a][t] / closes[a][t - 2] - 1 for a in "ABC"])
        z = (mom - mom.mean()) / mom.std()
        got = out.filter(pl.col("ts") == datetime(2024, 1, t + 1)).sort("asset")
        np.testing.assert_allclose(got["pred_return"].to_numpy(), mom)
        np.testing.assert_allclose(got["prob_up"].to_numpy(), _logistic(z))


def test_momentum_time_series_probability_matches_a_numpy_reference():
    close = np.array([10, 10.5, 10.2, 11, 11.8, 11.5, 12.4])
    lookback, skip = 4, 1
    out = MomentumAnalyst(lookback=lookback, skip=skip, prob_up_from="time_series").predict(
        make_bars({"A": close.tolist()})
    )
    log_ret = np.diff(np.log(close))  # log_ret[i - 1] is the return into bar i
    expected = []
    for t in range(lookback, close.size):
        window = log_ret[t - lookback : t - skip]
        trend = math.log(close[t - skip] / close[t - lookback])
        expected.append(_logistic(trend / (window.std(ddof=1) * math.sqrt(lookback - skip))))
    np.testing.assert_allclose(out["prob_up"].to_numpy(), expected)


def test_time_series_probability_of_a_flat_trend_is_half():
    out = MomentumAnalyst(lookback=2, prob_up_from="time_series").predict(
        make_bars({"A": [5.0] * 5})
    )
    assert out["prob_up"].to_list() == [0.5, 0.5, 0.5]


def test_predict_window_accepts_strings_dates_and_datetimes():
    bars = make_bars({"A": [10, 11, 12, 13, 14, 15]})
    naive = NaiveAnalyst()
    days = [d.day for d in naive.predict(bars, start="2024-01-03", end=date(2024, 1, 5))["ts"]]
    assert days == [3, 4, 5]
    days = [d.day for d in naive.predict(bars, end=datetime(2024, 1, 3))["ts"]]
    assert days == [2, 3]


def test_window_on_time_zone_aware_bars():
    bars = make_bars({"A": [10, 11, 12, 13]}).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC")
    )
    out = NaiveAnalyst().predict(bars, start="2024-01-03")
    assert out["ts"].dtype == pl.Datetime("us", "UTC")
    assert out.height == 2
    aware = datetime.fromisoformat("2024-01-03T00:00:00+01:00")  # 2024-01-02 23:00 UTC
    assert NaiveAnalyst().predict(bars, start=aware).height == 2


def _as_of_analysts():
    return [
        NaiveAnalyst(),
        NaiveAnalyst(horizon=3, prob_scale=0.05),
        MomentumAnalyst(lookback=5, skip=1),
        MomentumAnalyst(lookback=4, prob_up_from="time_series"),
    ]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 29))
def test_as_of_bars_after_t_never_change_predictions_at_or_before_t(seed, cut):
    rng = np.random.default_rng(seed)
    bars = random_bars(rng, n_bars=30, n_assets=3)
    cut_ts = bars["ts"].unique().sort()[cut]
    later = pl.col("ts") > cut_ts
    shocked = bars.with_columns(
        pl.when(later)
        .then(pl.col("close") * pl.Series(rng.uniform(0.5, 2.0, bars.height)))
        .otherwise(pl.col("close"))
    )
    truncated = bars.filter(~later)
    for analyst in _as_of_analysts():
        reference = analyst.predict(bars, end=cut_ts)
        assert reference.equals(analyst.predict(shocked, end=cut_ts))
        assert reference.equals(analyst.predict(truncated))


def test_fit_checks_input_and_returns_the_analyst():
    bars = make_bars({"A": [10, 11, 12]})
    analyst = MomentumAnalyst(lookback=2)
    assert analyst.fit(bars, until="2024-01-02") is analyst
    assert isinstance(analyst, Analyst)
    with pytest.raises(ConfigError, match="until 'yesterday' is not an ISO 8601"):
        analyst.fit(bars, until="yesterday")


def test_bad_bars_are_data_errors_naming_the_row():
    bars = make_bars({"A": [10, 11, 12], "B": [5, 5, 5]})
    with pytest.raises(DataError, match=r"lack column\(s\) \['close'\]"):
        NaiveAnalyst().predict(bars.drop("close"))
    broken = bars.with_columns(
        pl.when((pl.col("asset") == "B") & (pl.col("ts") == datetime(2024, 1, 2)))
        .then(-1.0)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    with pytest.raises(DataError, match=r"row 3 \(asset 'B', ts 2024-01-02 00:00:00\) has close -1"):
        NaiveAnalyst().predict(broken)
    with pytest.raises(DataError, match="two rows for asset 'A' at ts 2024-01-01"):
        NaiveAnalyst().predict(pl.concat([bars, bars.head(1)]))
    with pytest.raises(DataError, match="polars DataFrame"):
        NaiveAnalyst().predict(bars.to_pandas())
    with pytest.raises(DataError, match="empty"):
        NaiveAnalyst().predict(bars.clear())


@pytest.mark.parametrize(
    ("cls", "config", "message"),
    [
        (NaiveAnalyst, {"horizon": 0}, "horizon"),
        (NaiveAnalyst, {"prob_scale": 0}, "prob_scale"),
        (MomentumAnalyst, {"lookback": 5, "skip": 5}, "skip=5, lookback=5"),
        (MomentumAnalyst, {"lookback": 2, "skip": 1, "prob_up_from": "time_series"}, "at least 2"),
        (MomentumAnalyst, {"prob_up_from": "rank"}, "prob_up_from"),
        (MomentumAnalyst, {"look_back": 5}, "did you mean 'lookback'"),
    ],
)
def test_config_errors(cls, config, message):
    with pytest.raises(ConfigError, match=message):
        cls(**config)


# -- the fast path against the window-expression definition ------------------------------------
def _reference(analyst, bars: pl.DataFrame) -> pl.DataFrame:
    """The analysts' signals written as polars window expressions over each asset's rows
    (sorted by asset, ts) and each ts's rows: slow on a large universe, obvious."""
    frame = bars.select("ts", "asset", pl.col("close").cast(pl.Float64)).sort("asset", "ts")
    close, config = pl.col("close"), analyst.config
    if isinstance(analyst, NaiveAnalyst):
        ret = close / close.shift(config.horizon).over("asset") - 1.0
        frame = frame.with_columns(ret.alias("pred_return")).drop_nulls("pred_return")
        r = pl.col("pred_return")
        prob = (pl.when(r > 0).then(1.0).when(r < 0).then(0.0).otherwise(0.5)
                if config.prob_scale is None else 1.0 / (1.0 + (-(r / config.prob_scale)).exp()))
    else:
        lookback, skip = config.lookback, config.skip
        recent, past = close.shift(skip).over("asset"), close.shift(lookback).over("asset")
        frame = frame.with_columns((recent / past - 1.0).alias("pred_return"))
        if config.prob_up_from == "time_series":
            n = lookback - skip
            sigma = close.log().diff().over("asset").rolling_std(n, ddof=1).shift(skip)
            frame = frame.with_columns((recent / past).log().alias("t"),
                                       sigma.over("asset").alias("s")).drop_nulls("pred_return")
            t, s = pl.col("t"), pl.col("s")
            z = pl.when(s > 0).then(t / (s * math.sqrt(n))).otherwise(t.sign() * math.inf)
        else:
            frame = frame.drop_nulls("pred_return")
            m = pl.col("pred_return")
            spread = m.std(ddof=0).over("ts")
            z = pl.when(spread > 0).then((m - m.mean().over("ts")) / spread).otherwise(0.0)
        prob = (1.0 / (1.0 + (-z).exp())).fill_nan(0.5)
    return (frame.with_columns(prob.alias("prob_up"), pl.col("pred_return").alias("score"))
            .select("ts", "asset", "score", "prob_up", "pred_return").sort("ts", "asset"))


def _fast_path_analysts():
    return [NaiveAnalyst(horizon=2), NaiveAnalyst(prob_scale=0.03),
            MomentumAnalyst(lookback=6, skip=2),
            MomentumAnalyst(lookback=5, skip=1, prob_up_from="time_series")]


@pytest.mark.parametrize("layout", ["full", "gappy", "shuffled", "flagged"])
def test_fast_path_equals_the_window_definition_bit_for_bit(layout):
    rng = np.random.default_rng(4)
    bars = random_bars(rng, n_bars=40, n_assets=7)
    if layout != "full":  # assets missing on some days, one listed late, one delisted
        keep = rng.uniform(size=bars.height) > 0.15
        keep &= ~((bars["asset"] == "S2") & (bars["ts"] < datetime(2024, 1, 15))).to_numpy()
        keep &= ~((bars["asset"] == "S5") & (bars["ts"] > datetime(2024, 1, 25))).to_numpy()
        bars = bars.filter(pl.Series(keep))
    if layout == "shuffled":
        bars = bars.sample(fraction=1.0, shuffle=True, seed=3)
    if layout == "flagged":  # a ts column polars knows is sorted must not change a bit
        bars = bars.with_columns(pl.col("ts").set_sorted())
    for analyst in _fast_path_analysts():
        got = analyst.predict(bars)
        assert got.height > 0
        assert got.equals(_reference(analyst, bars)), (layout, analyst.config)


def test_output_is_sorted_by_ts_then_asset_and_starts_after_the_look_back():
    bars = make_bars({"B": [1, 2, 3, 4, 5], "A": [5, 4, 3, 2, 1], "C": [2, NAN, 2, 3, 4]})
    out = MomentumAnalyst(lookback=2).predict(bars.reverse())
    keys = list(zip(out["ts"].to_list(), out["asset"].to_list(), strict=True))
    assert keys == sorted(keys)
    # C has no bar on day 2: its first momentum is on day 4 (two of its own bars back)
    assert [d.day for d in out.filter(pl.col("asset") == "C")["ts"]] == [4, 5]


def test_history_shorter_than_the_look_back_gives_no_rows():
    bars = make_bars({"A": [1.0, 2.0, 3.0], "B": [2.0, 3.0, 4.0]})
    for analyst in (MomentumAnalyst(lookback=5), NaiveAnalyst(horizon=3),
                    MomentumAnalyst(lookback=5, prob_up_from="time_series")):
        out = analyst.predict(bars)
        assert out.height == 0
        assert out.columns == ["ts", "asset", "score", "prob_up", "pred_return"]


def test_bars_without_ts_or_asset_are_data_errors():
    bars = make_bars({"A": [10, 11, 12]})
    no_asset = bars.with_columns(pl.when(pl.col("close") == 11).then(None)
                                 .otherwise(pl.col("asset")).alias("asset"))
    with pytest.raises(DataError, match="row 1 has no asset"):
        MomentumAnalyst(lookback=1).predict(no_asset)
    no_ts = bars.with_columns(pl.when(pl.col("close") == 12).then(None)
                              .otherwise(pl.col("ts")).alias("ts"))
    with pytest.raises(DataError, match="row 2 has no ts"):
        NaiveAnalyst().predict(no_ts)


def test_check_bars_orders_by_asset_then_ts():
    from analysts._bars import check_bars

    bars = make_bars({"B": [1, 2, NAN, 4], "A": [5, NAN, 3, 2]}).sample(fraction=1.0, seed=1,
                                                                        shuffle=True)
    checked = check_bars(bars, "test")
    assert checked.columns == ["ts", "asset", "close"]
    assert checked.equals(bars.select("ts", "asset", "close").sort("asset", "ts"))
