"""Regimes: the named library, automatic labels, per-regime report rows, scenario use."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from alfred.scenario import parse_scenario
from engine.errors import ConfigError, DataError
from reports.regimes import (
    REGIMES,
    drawdown_regimes,
    episodes,
    get_regime,
    regime_breakdown,
    volatility_regimes,
)

# --------------------------------------------------------------------------- labels


def test_drawdown_rule_on_a_hand_built_series():
    p = np.array([100, 110, 120, 100, 90, 95, 80, 85, 100, 110, 130, 120, 100, 96, 97.0])
    labels = drawdown_regimes(p, 0.2)
    # 120 -> 90 is -25%: bear from the bar after the peak (index 3) to the low 80 (index
    # 6); 80 -> 100 is +25%: bull again. 130 -> 100 is -23%: bear to the low 96 (index 13)
    assert labels.tolist() == ["bull"] * 3 + ["bear"] * 4 + ["bull"] * 4 + ["bear"] * 3 + [
        "bull"]
    # a fall of 19% is not a bear market
    assert set(drawdown_regimes(np.array([100, 90, 81.5, 95, 100.0]))) == {"bull"}


def test_drawdown_rule_finds_the_known_sp500_bear_markets():
    from engine.data import load_bars

    index = load_bars("sp500_index").sort("ts")
    labels = drawdown_regimes(index["close"].to_numpy())
    days = index["ts"].dt.date().to_numpy()
    bear = labels == "bear"
    starts = days[bear & ~np.r_[False, bear[:-1]]]
    ends = days[bear & ~np.r_[bear[1:], False]]
    spells = list(zip(starts.tolist(), ends.tolist(), strict=True))
    # the COVID crash: the day after the 2020-02-19 peak to the 2020-03-23 low
    assert (date(2020, 2, 20), date(2020, 3, 23)) in spells
    # 2022: from the first trading day after the 2022-01-03 peak to the 2022-10-12 low
    assert (date(2022, 1, 4), date(2022, 10, 12)) in spells
    # the GFC ends at the 2009-03-09 low; the 2007-10-09 peak starts it
    assert any(a == date(2007, 10, 10) for a, _ in spells)
    assert any(z == date(2009, 3, 9) for _, z in spells)
    assert episodes(bear) == len(spells) == 6


def test_volatility_terciles_split_the_bars_in_thirds_and_see_the_covid_spike():
    from engine.data import load_bars

    index = load_bars("sp500_index").sort("ts")
    r = index["close"].pct_change().fill_null(0.0).to_numpy()
    labels = volatility_regimes(r, 21)
    counts = {k: int((labels == k).sum()) for k in ("low_vol", "mid_vol", "high_vol")}
    assert max(counts.values()) - min(counts.values()) <= 2
    covid = (index["ts"].dt.date() >= date(2020, 3, 9)) & (
        index["ts"].dt.date() <= date(2020, 4, 30))
    assert set(labels[covid.to_numpy()]) == {"high_vol"}


def test_label_inputs_are_checked():
    with pytest.raises(ConfigError, match="threshold"):
        drawdown_regimes(np.ones(5), 1.5)
    with pytest.raises(DataError, match="positive"):
        drawdown_regimes(np.array([1.0, -1.0]))
    with pytest.raises(DataError, match="at least 21 returns"):
        volatility_regimes(np.zeros(5), 21)
    assert episodes(np.array([True, True, False, True, False, False, True])) == 3
    assert episodes(np.array([], dtype=bool)) == 0


# --------------------------------------------------------------------------- breakdown


def test_breakdown_scores_each_regime_on_its_own_bars():
    n = 120
    ts = [datetime(2015, 1, 1) + timedelta(days=i) for i in range(n)]
    bench = np.full(n, 0.002)
    bench[40:70] = -0.012  # a 30-bar fall of about 30%: one bear episode
    strategy = np.where(np.arange(n) % 2 == 0, 0.001, -0.0005)
    table = regime_breakdown(pl.DataFrame({"ts": ts, "return": strategy}),
                             pl.DataFrame({"ts": ts, "return": bench}), 252.0,
                             folds=[("2015-01-01", "2015-02-28"), ("2015-03-01", "2015-05-31")])
    bear = table.filter((pl.col("labelling") == "market") & (pl.col("regime") == "bear")).row(
        0, named=True)
    # the peak is bar 39 (the last up bar); bear runs from bar 40 to the low at bar 69
    assert bear["bars"] == 30 and bear["episodes"] == 1
    assert bear["start"] == "2015-02-10" and bear["end"] == "2015-03-11"
    np.testing.assert_allclose(bear["strategy_return"], np.prod(1 + strategy[40:70]) - 1)
    np.testing.assert_allclose(bear["benchmark_return"], (1 - 0.012) ** 30 - 1)
    assert bear["beats_benchmark"] is True
    assert bear["folds"] == 2  # the fall spans the boundary of the two folds
    bull = table.filter(pl.col("regime") == "bull").row(0, named=True)
    assert bull["bars"] == 90 and bull["episodes"] == 2
    assert bull["beats_benchmark"] is False
    named = table.filter(pl.col("labelling") == "named")
    assert named["regime"].to_list() == ["sideways_2015_2016"]  # 2015 lies inside it
    assert named["bars"].to_list() == [n]


# --------------------------------------------------------------------------- library, YAML

BASE = """
name: regime_run
data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ, XOM], regime: %s}
benchmark: {dataset: sp500_index, asset: SP500}
analysts: [{name: momentum, config: {lookback: 21}}]
strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, rebalance: weekly}}
report: {tearsheet: false, plots: false}
"""


def test_unknown_regime_lists_the_names():
    with pytest.raises(ConfigError) as info:
        get_regime("gcf")
    message = str(info.value)
    assert "Did you mean 'gfc'?" in message
    assert all(name in message for name in REGIMES)
    with pytest.raises(ConfigError, match="unknown regime 'gcf'"):
        parse_scenario(BASE % "gcf", source="r.yaml")


def test_a_regime_sets_the_period_and_conflicting_dates_are_refused():
    scenario = parse_scenario(BASE % "covid_crash", source="r.yaml")
    assert (scenario.data.start, scenario.data.end) == (date(2020, 2, 19), date(2020, 3, 23))
    text = BASE.replace("regime: %s}", "regime: gfc, start: 2001-01-01}")
    with pytest.raises(ConfigError, match="sets the period"):
        parse_scenario(text, source="r.yaml")


def test_a_regime_outside_the_dataset_is_an_error():
    from alfred.inputs import load_inputs

    text = (BASE % "bear_2022").replace("sp500_stocks, assets: [AAPL, MSFT, JNJ, XOM]",
                                        "sp500_ohlcv")
    scenario = parse_scenario(text.replace("benchmark: {dataset: sp500_index, asset: SP500}\n",
                                           ""), source="r.yaml")
    with pytest.raises(DataError, match="lies outside .*1999-01-04 to 2018-12-31"):
        load_inputs(scenario)


def test_a_regime_run_reports_per_regime_results(tmp_path):
    from alfred.run import run_scenario

    scenario = parse_scenario(BASE % "q4_2018", source="r.yaml")
    summary = run_scenario(scenario, out=tmp_path / "run", overwrite=True)
    run = summary.runs[0]
    equity = pl.read_parquet(run.run_dir / "equity.parquet")
    assert equity["ts"].min().date() >= date(2018, 10, 1)
    assert equity["ts"].max().date() <= date(2018, 12, 31)
    table = pl.read_csv(run.run_dir / "regimes.csv")
    named = table.filter(pl.col("labelling") == "named")
    assert named["regime"].to_list() == ["q4_2018"]
    assert named["bars"][0] == equity.height
    assert "per-regime results" in (run.run_dir / "regimes.md").read_text()


def test_a_sweep_over_regimes_drops_the_base_period():
    from alfred.sweep import plan_sweep

    text = BASE.replace("regime: %s}", "start: 2019-01-01, end: 2020-12-31}") + (
        "sweep: {params: {data.regime: [gfc, covid_crash]}}\n")
    variants = plan_sweep(parse_scenario(text, source="r.yaml"))
    assert [v.scenario["data"]["regime"] for v in variants] == ["gfc", "covid_crash"]
    assert all(v.scenario["data"]["start"] is None for v in variants)


def test_cli_lists_regimes_and_labels_a_dataset():
    from alfred.cli import app

    listed = CliRunner().invoke(app, ["regimes"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert all(name in listed.output for name in REGIMES)
    spells = CliRunner().invoke(app, ["regimes", "--dataset", "sp500_index"],
                                env={"COLUMNS": "200"})
    assert spells.exit_code == 0 and "2020-02-20" in spells.output
    many = CliRunner().invoke(app, ["regimes", "--dataset", "sp500_stocks"])
    assert many.exit_code == 2 and "--asset" in many.output
