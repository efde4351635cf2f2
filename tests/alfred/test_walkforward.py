"""Walk-forward: fold dates, no leakage across the fold boundary, the stitched run."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from alfred.scenario import parse_scenario
from alfred.walkforward import WalkForwardSpec, make_folds
from engine.errors import ConfigError

# --------------------------------------------------------------------------- fold dates


def _business_days(start: str, n: int) -> np.ndarray:
    days = np.busday_offset(np.datetime64(start, "D"), np.arange(n), roll="forward")
    return days.astype("datetime64[ns]")


@pytest.mark.parametrize("mode", ["rolling", "expanding"])
@pytest.mark.parametrize(("train", "test", "embargo"), [(100, 20, 5), (60, 7, 0), (250, 63, 10)])
def test_bar_folds_respect_embargo_never_overlap_and_tile_the_span(mode, train, test, embargo):
    ts = _business_days("2010-01-01", 1000)
    spec = WalkForwardSpec(train=train, test=test, embargo=embargo, mode=mode)
    folds = make_folds(ts, spec, horizon=embargo)
    first_test = folds[0].test_first
    assert first_test == train + embargo  # the earliest test a full training window allows
    covered = []
    for fold in folds:
        assert fold.test_first - fold.train_last - 1 == embargo  # exactly the embargo between
        assert fold.train_last < fold.test_first  # no overlap
        if mode == "rolling":
            assert fold.train_last - fold.train_first + 1 == train
        else:
            assert fold.train_first == 0
        assert fold.test_last - fold.test_first + 1 == test or fold is folds[-1]
        covered.extend(range(fold.test_first, fold.test_last + 1))
    # test windows tile [first test bar, last bar] exactly: no gap, no bar twice
    assert covered == list(range(first_test, ts.size))


def test_calendar_folds_start_on_anchored_dates_and_cover_the_requested_span():
    ts = _business_days("2005-01-03", 252 * 10)
    spec = WalkForwardSpec(train="3y", test="1y", start=datetime(2009, 1, 1).date())
    folds = make_folds(ts, spec, horizon=5, end=datetime(2013, 12, 31).date())
    dates = [f.dates(ts) for f in folds]
    days = ts.astype("datetime64[D]")
    # each test window is one calendar year: its first and last business days
    first_days = [str(days[days >= np.datetime64(f"{y}-01-01")][0]) for y in range(2009, 2014)]
    last_days = [str(days[days <= np.datetime64(f"{y}-12-31")][-1]) for y in range(2009, 2014)]
    assert [d["test_start"] for d in dates] == first_days
    assert [d["test_end"] for d in dates] == last_days
    assert "2011-01-03" in first_days  # 2011-01-01 was a Saturday
    for fold, d in zip(folds, dates, strict=True):
        assert fold.test_first - fold.train_last - 1 == 5  # embargo = horizon by default
        start = np.datetime64(d["train_start"])
        # about three years of training: within a week of the anchor
        expected = np.datetime64(ts[fold.train_last].astype("datetime64[D]")) - np.timedelta64(
            int(3 * 365.25), "D")
        assert abs(int((start - expected) / np.timedelta64(1, "D"))) <= 7


def test_a_step_longer_than_test_leaves_gaps_but_never_overlaps():
    ts = _business_days("2010-01-01", 600)
    folds = make_folds(ts, WalkForwardSpec(train=100, test=20, step=50), horizon=0)
    starts = [f.test_first for f in folds]
    assert np.all(np.diff(starts) == 50)
    assert all(a.test_last < b.test_first for a, b in zip(folds, folds[1:], strict=False))


def test_embargo_shorter_than_the_label_horizon_is_an_error():
    ts = _business_days("2010-01-01", 500)
    with pytest.raises(ConfigError, match="embargo 2 is shorter than the analysts' label "
                       "horizon 5"):
        make_folds(ts, WalkForwardSpec(train=100, test=20, embargo=2), horizon=5)


def test_a_training_window_longer_than_the_data_says_by_how_much():
    ts = _business_days("2010-01-01", 300)
    spec = WalkForwardSpec(train=250, test=20, start=datetime(2010, 6, 1).date())
    with pytest.raises(ConfigError, match=r"the data is \d+ bars short") as info:
        make_folds(ts, spec, horizon=5)
    # 250 training bars + 5 embargo bars must lie before the first test bar
    first_test = int(np.searchsorted(ts, np.datetime64("2010-06-01")))
    assert f"{255 - first_test} bars short" in str(info.value)


@pytest.mark.parametrize(("values", "message"), [
    ({"train": 100, "test": 20, "step": 10}, "step 10 is shorter than test 20"),
    ({"train": "5 years", "test": 20}, "is not a window"),
    ({"train": 0, "test": 20}, "at least 1 bar"),
    ({"train": 100, "test": 20, "mode": "anchored"}, "rolling"),
])
def test_bad_walkforward_sections_are_config_errors(values, message):
    import yaml

    block = "\n".join("  " + line for line in yaml.safe_dump(values).splitlines())
    text = (f"name: x\ndata: {{source: sp500_stocks}}\nanalysts: [{{name: momentum}}]\n"
            f"strategy: {{name: topk_long_short}}\nwalkforward:\n{block}\n")
    with pytest.raises(ConfigError, match=message):
        parse_scenario(text, source="wf.yaml")


# --------------------------------------------------------------------------- feature store

def test_features_are_causal_so_the_store_never_serves_later_information():
    from analysts._samples import feature_rows
    from analysts.features import FeatureConfig
    from tests.analysts._ml_helpers import SHORT_FEATURES, close_only, ohlcv_bars

    bars = close_only(ohlcv_bars(300, 3, seed=5))
    config = FeatureConfig(**SHORT_FEATURES)
    cut = datetime(2020, 6, 30)
    full = feature_rows(bars, config, 5, 1, with_label=False)
    prefix = feature_rows(bars.filter(pl.col("ts") <= cut), config, 5, 1, with_label=False)
    cols = ["ts", "asset", *full.columns]
    # every feature value at or before the cut is the same with or without the later bars
    assert prefix.frame.select(cols).equals(full.frame.filter(pl.col("ts") <= cut).select(cols))


def test_feature_store_serves_the_full_history_values_of_a_slice():
    from analysts._samples import feature_rows, feature_store
    from analysts.features import FeatureConfig
    from tests.analysts._ml_helpers import SHORT_FEATURES, close_only, ohlcv_bars

    bars = close_only(ohlcv_bars(300, 3, seed=5))
    config = FeatureConfig(**SHORT_FEATURES)
    part = bars.filter(pl.col("ts") >= datetime(2020, 3, 1))
    rebuilt = feature_rows(part, config, 5, 1)
    with feature_store(bars):
        served = feature_rows(part, config, 5, 1)
    full = feature_rows(bars, config, 5, 1)
    assert served.columns == rebuilt.columns
    # the slice's rows exactly, with the values built from all the history before them
    assert served.frame["ts"].min() == part["ts"].min()
    assert served.frame.equals(full.frame.filter(pl.col("ts") >= part["ts"].min()))
    # windowed features equal a rebuild wherever the rebuild is warmed up; recursive
    # ones (RSI: Wilder smoothing) restart in a rebuild, so only those may differ
    ready = rebuilt.frame.filter(pl.col("_ready")).sort("asset", "ts")
    same = served.frame.join(ready.select("ts", "asset"), on=["ts", "asset"]).sort("asset", "ts")
    assert ready.height > 100
    differ = [c for c in rebuilt.columns
              if not np.allclose(same[c].to_numpy(), ready[c].to_numpy(), rtol=1e-9,
                                 atol=1e-12, equal_nan=True)]
    assert differ == ["rsi_14"]


def test_feature_store_rebuilds_when_the_slice_differs_from_the_stored_bars():
    from analysts._samples import feature_rows, feature_store
    from analysts.features import FeatureConfig
    from tests.analysts._ml_helpers import SHORT_FEATURES, close_only, ohlcv_bars

    bars = close_only(ohlcv_bars(200, 2, seed=6))
    config = FeatureConfig(**SHORT_FEATURES)
    changed = bars.with_columns(pl.col("close") * 1.5)
    with feature_store(bars):
        served = feature_rows(changed, config, 5, 1)
    assert served.frame.equals(feature_rows(changed, config, 5, 1).frame)


# --------------------------------------------------------------------------- leakage

TRAIN = {"epochs": 2, "batch_size": 64, "patience": None, "progress": False, "seed": 3,
         "threads": 1, "device": "cpu"}
MAGNITUDE = {"horizon": 5, "depth": 1, "width": 8, "train": TRAIN,
             "features": {"groups": ["returns", "ma_gaps", "volatility", "cross_section"],
                          "ma_windows": [5, 10]}}


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    from tests.analysts._ml_helpers import close_only, ohlcv_bars

    return close_only(ohlcv_bars(360, 3, seed=11))


def _fold_run(history: pl.DataFrame, train_end: int, test_start: int, test_end: int):
    """What a fold task does: fit on the training window, forecast the test window (inside
    the feature store), then trade the test window."""
    from alfred.walkforward import fit_fold, predict_fold
    from analysts import get_analyst
    from analysts._samples import feature_store
    from engine.backtest import run_backtest
    from engine.data import align_bars
    from strategies import get_strategy

    ts = history["ts"].unique().sort()
    analyst = get_analyst("magnitude", **MAGNITUDE)
    with feature_store(history):
        fit_fold([analyst], history, ts[0], ts[train_end])
        signals = predict_fold([analyst], history, ts[test_start], ts[test_end])
    window = history.filter(pl.col("ts").is_between(ts[test_start], ts[test_end]))
    strategy = get_strategy("topk_long_short", k=1, rank_by="pred_return", rebalance="daily")
    result = run_backtest(align_bars(window), signals, strategy=strategy, capital=1e6)
    return analyst, signals, result


def _state(analyst) -> dict[str, np.ndarray]:
    unit = analyst.units["*"]
    state = {k: v.detach().numpy().copy() for k, v in unit.model.state_dict().items()}
    state["scaler_mean"] = np.asarray(unit.scaler.mean)
    state["scaler_std"] = np.asarray(unit.scaler.std)
    state["target_scale"] = np.asarray(unit.target_scale)
    return state


def _perturb(history: pl.DataFrame, from_bar: int, to_bar: int, factor: float) -> pl.DataFrame:
    """Scale the closes of bars ``from_bar..to_bar`` (every asset) by ``factor``."""
    ts = history["ts"].unique().sort()
    hit = pl.col("ts").is_between(ts[from_bar], ts[to_bar])
    return history.with_columns(pl.when(hit).then(pl.col("close") * factor)
                                .otherwise(pl.col("close")).alias("close"))


TRAIN_END, EMBARGO = 240, 5
TEST_START, TEST_END = TRAIN_END + EMBARGO + 1, 330


@pytest.fixture(scope="module")
def baseline(history):
    return _fold_run(history, TRAIN_END, TEST_START, TEST_END)


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.integers(TRAIN_END + 1, 359), factor=st.floats(0.5, 2.0).filter(
    lambda f: abs(f - 1.0) > 0.05))
@example(first=TRAIN_END + 1, factor=1.5)  # the first bar of the embargo
def test_bars_after_the_training_end_change_nothing_that_was_fit(history, baseline, first,
                                                                  factor):
    changed = _perturb(history, first, 359, factor)
    analyst, _, _ = _fold_run(changed, TRAIN_END, TEST_START, TEST_END)
    expected = _state(baseline[0])
    for key, value in _state(analyst).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


def test_the_fit_check_is_sensitive_a_training_bar_does_change_the_fit(history, baseline):
    # a bar 100 bars before the training end (before the validation tail): it moves the fit
    changed = _perturb(history, TRAIN_END - 100, TRAIN_END - 100, 1.5)
    analyst, _, _ = _fold_run(changed, TRAIN_END, TEST_START, TEST_END)
    expected = _state(baseline[0])
    assert any(not np.array_equal(v, expected[k]) for k, v in _state(analyst).items())


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(TEST_START, TEST_END - 1), factor=st.floats(0.5, 2.0).filter(
    lambda f: abs(f - 1.0) > 0.05))
def test_bars_after_a_test_bar_change_no_decision_at_or_before_it(history, baseline, cut,
                                                                  factor):
    changed = _perturb(history, cut + 1, 359, factor)
    _, signals, result = _fold_run(changed, TRAIN_END, TEST_START, TEST_END)
    _, base_signals, base_result = baseline
    stamp = history["ts"].unique().sort()[cut]
    upto = pl.col("ts") <= stamp
    assert signals.filter(upto).equals(base_signals.filter(upto))
    # what the run knows at the close of that bar: orders filled by then, equity so far
    # (an order decided at t is sized at its fill on t+1, so it belongs to t+1)
    filled = pl.col("fill_ts") <= stamp
    assert result.orders.filter(filled).equals(base_result.orders.filter(filled))
    assert result.equity.filter(upto).equals(base_result.equity.filter(upto))
    # the perturbation is real: later forecasts do move
    later = pl.col("ts") > stamp
    if signals.filter(later).height:
        assert not signals.filter(later).equals(base_signals.filter(later))


# --------------------------------------------------------------------------- end to end

SCENARIO = """
name: tiny_walkforward
data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ, XOM, JPM], start: 2019-01-01,
       end: 2020-12-31}
benchmark: {dataset: sp500_index, asset: SP500}
analysts:
  - name: magnitude
    config:
      horizon: 5
      depth: 1
      width: 8
      features: {groups: [returns, ma_gaps, volatility], ma_windows: [5, 10]}
      train: {epochs: 2, batch_size: 128, patience: null, progress: false, seed: 3,
              threads: 1, device: cpu}
strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, rebalance: weekly}}
walkforward: {train: 2y, test: 6mo}
executor: {kind: inline}
capital: 1000000
report: {tearsheet: false, plots: false}
"""


@pytest.fixture(scope="module")
def walkforward_run(tmp_path_factory):
    from alfred.walkforward import run_walkforward

    out = tmp_path_factory.mktemp("wf") / "run"
    scenario = parse_scenario(SCENARIO, source="tiny_walkforward.yaml")
    return run_walkforward(scenario, out, progress=False)


@pytest.mark.slow
def test_walkforward_stitches_folds_with_capital_carried(walkforward_run):
    result = walkforward_run
    assert [d["test_start"] for d in result.fold_dates] == [
        "2019-01-02", "2019-07-02", "2020-01-02", "2020-07-02"]
    run = result.strategies[0]
    folds = run.folds
    assert folds.height == 4
    # the stitched curve is the folds' test bars, in order, each once
    stitched = run.returns
    assert stitched["ts"].is_sorted() and stitched["ts"].n_unique() == stitched.height
    assert stitched.group_by("fold").len().sort("fold")["len"].to_list() == folds["bars"].to_list()
    # capital carries: each fold starts from the previous fold's end less its exit costs
    for prev, nxt in zip(folds.iter_rows(named=True), list(folds.iter_rows(named=True))[1:],
                         strict=False):
        first_return = stitched.filter(pl.col("fold") == nxt["fold"])["return"][0]
        carried = prev["end_equity"] - prev["exit_cost"]
        assert prev["exit_cost"] > 0  # costs on: liquidating the book is not free
        np.testing.assert_allclose(nxt["start_equity"] / prev["end_equity"] - 1, first_return,
                                   rtol=1e-9)
        assert nxt["start_equity"] <= carried + 1e-6
    equity = float(np.prod(1 + stitched["return"].to_numpy())) * 1e6
    np.testing.assert_allclose(equity, folds["end_equity"][-1], rtol=1e-9)
    np.testing.assert_allclose(run.metrics["total_return"], equity / 1e6 - 1, rtol=1e-9)
    assert run.in_sample is not None and result.benchmark is not None


@pytest.mark.slow
def test_walkforward_report_folder(walkforward_run):
    folder = walkforward_run.run_dir
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["kind"] == "walkforward"
    for name in ("returns.parquet", "equity.parquet", "trades.parquet", "folds.parquet",
                 "folds.csv", "folds.md", "config.yaml"):
        assert (folder / name).is_file(), name
    folds = pl.read_csv(folder / "folds.csv")
    assert folds.height == 4 and {"sharpe", "max_drawdown", "win_rate_periods",
                                  "turnover"} <= set(folds.columns)
    table = walkforward_run.analysts
    assert set(table["fold"].to_list()) == {-1, 0, 1, 2, 3}
    assert {"pct_return_mae", "zero_pct_return_mae", "drift_pct_return_mae",
            "last_pct_return_mae", "zero_dm_p", "rank_ic", "verdict"} <= set(table.columns)
    [pooled] = metrics["forecasts"].values()  # one analyst, pooled over the folds
    assert set(pooled["dm"]) == {"zero", "drift", "last"} and pooled["verdict"]
    assert "pooled over folds" in (folder / "folds.md").read_text()


@pytest.mark.slow
def test_walkforward_writes_an_html_report_with_the_fold_table(walkforward_run):
    page = (walkforward_run.run_dir / "report.html").read_text()
    assert 'id="walkforward-folds"' in page and 'id="walkforward-is-oos"' in page
    assert "<svg" in page
    folds = walkforward_run.strategies[0].folds
    for start in folds["test_start"].to_list():
        assert str(start)[:10] in page


@pytest.mark.slow
def test_local_workers_give_the_inline_numbers(walkforward_run, tmp_path):
    from alfred.walkforward import run_walkforward

    scenario = parse_scenario(SCENARIO, source="tiny_walkforward.yaml")
    local = run_walkforward(scenario, tmp_path / "local", executor="local", workers=2,
                            progress=False)
    assert local.strategies[0].returns.equals(walkforward_run.strategies[0].returns)


def test_cli_reports_bad_walkforward_input_without_a_traceback(tmp_path):
    from alfred.cli import app

    bad = SCENARIO.replace("walkforward: {train: 2y, test: 6mo}",
                           "walkforward: {train: 2y, test: 6mo, embargo: 1}")
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    result = CliRunner().invoke(app, ["walkforward", str(path), "--out", str(tmp_path / "o"),
                                      "-q"])
    assert result.exit_code == 2, result.output
    assert "embargo 1 is shorter than the analysts' label horizon 5" in result.output
    assert not (tmp_path / "o").exists()
    missing = SCENARIO.replace("walkforward: {train: 2y, test: 6mo}\n", "")
    path.write_text(missing)
    result = CliRunner().invoke(app, ["walkforward", str(path), "-q"])
    assert result.exit_code == 2 and "no walkforward: section" in result.output
