"""The notebook API: alfred.run / run_backtest / metrics and the workflow modules."""

from __future__ import annotations

import json
import math
import pickle
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure

import alfred
from alfred.api import WITHOUT_COSTS, Backtest, RunResult
from engine import Costs
from engine.errors import ConfigError
from engine.result import BacktestResult
from reports import METRIC_DEFINITIONS

N_BARS = 60
TS = [datetime(2021, 1, 4) + timedelta(days=i) for i in range(N_BARS)]
CLOSE = {"A": 100 * 1.01 ** np.arange(N_BARS),
         "B": 50 * (1 + 0.05 * np.sin(np.arange(N_BARS))),
         "C": 20 + 0.1 * np.arange(N_BARS)}


def bars() -> pl.DataFrame:
    rows = [(TS[t], a, float(CLOSE[a][t])) for t in range(N_BARS) for a in CLOSE]
    return pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row")


def tiny(**extra) -> dict:
    return {"name": "tiny", "data": {"source": "bars.csv"}, "benchmark": {"asset": "A"},
            "analysts": [{"name": "momentum", "config": {"lookback": 3}}],
            "strategies": [{"name": "equal_weight"},
                           {"name": "topk_long_short", "label": "top1", "config": {"k": 1}}],
            "report": {"tearsheet": False, "plots": False}, **extra}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bars().write_csv(tmp_path / "bars.csv")
    return tmp_path


KEYS = [*METRIC_DEFINITIONS, *(k + WITHOUT_COSTS for k in METRIC_DEFINITIONS)]


def test_run_takes_a_dict_and_returns_typed_results(in_tmp):
    result = alfred.run(tiny(), out="out")
    assert isinstance(result, RunResult) and result.run_dir == in_tmp / "out"
    assert [s.label for s in result] == ["equal_weight", "top1"]
    saved = json.loads((in_tmp / "out" / "top1" / "metrics.json").read_text())
    top = result["top1"]
    flat = top.metrics()
    assert list(flat) == KEYS  # the documented key set, in the definitions' order
    for key, value in saved["with_costs"].items():
        assert flat[key] == pytest.approx(value, nan_ok=True) if value is not None \
            else math.isnan(flat[key])
    assert flat["sharpe_without_costs"] == pytest.approx(saved["without_costs"]["sharpe"])
    # closed and open trades apart, and together the old n_trades
    assert top.n_closed_trades == flat["n_trades"] and top.n_open_trades == flat["n_open_trades"]
    assert top.run.n_trades == top.n_closed_trades + top.n_open_trades == top.trades.height
    assert top.n_closed_trades > 0  # k=1 on a ranking that changes: some trades closed
    summary = result.summary
    assert summary["strategy"].to_list() == ["equal_weight", "top1"]
    assert summary.filter(pl.col("strategy") == "top1")["n_closed_trades"][0] == \
        top.n_closed_trades
    assert summary["benchmark_total_return"][0] == pytest.approx(result.benchmark_return)
    assert result.metrics().shape == (2, 1 + len(KEYS))
    with pytest.raises(KeyError, match="labels: equal_weight, top1"):
        result["nope"]
    with pytest.raises(ConfigError, match="pick one"):
        result.plot()


def test_tearsheet_and_plot_of_a_run_strategy(in_tmp):
    result = alfred.run(tiny(), out="out")
    page = result["equal_weight"].tearsheet(in_tmp / "ew.html")
    text = page.read_text()
    assert "equal_weight" in text and "Sharpe" in text and 'id="alfred-equity-chart"' in text
    fig = result["equal_weight"].plot()
    assert isinstance(fig, Figure)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels[:2] == ["equal_weight", "A"]  # strategy and benchmark


def test_run_is_callable_again_and_takes_a_path(in_tmp):
    (in_tmp / "s.yaml").write_text(
        "name: one\ndata: {source: bars.csv}\nstrategy: {name: equal_weight}\n"
        "report: {tearsheet: false, plots: false}\n")
    first = alfred.run("s.yaml", out="a")
    second = alfred.run(in_tmp / "s.yaml", out="b")  # alfred.run is still callable
    assert first.only().metrics()["total_return"] == second.only().metrics()["total_return"]
    assert isinstance(alfred.run.run_scenario("s.yaml", out="c"), alfred.RunSummary)


def test_a_bad_dict_names_the_key(in_tmp):
    with pytest.raises(ConfigError, match=r"<dict>: bogus: unknown key"):
        alfred.run({**tiny(), "bogus": 1})
    with pytest.raises(ConfigError, match="a dict or a Scenario"):
        alfred.run(42)


def test_run_backtest_returns_a_backtest_with_metrics_with_and_without_costs():
    frame = bars()
    bt = alfred.run_backtest(frame, strategy="equal_weight", costs=Costs(commission_bps=20))
    assert isinstance(bt, BacktestResult) and isinstance(bt, Backtest)
    assert bt.equity.height == N_BARS and bt.final_equity == bt.records.equity[-1]
    flat = bt.metrics()
    assert list(flat) == KEYS
    assert flat["total_return"] < flat["total_return_without_costs"]  # costs cost
    assert flat["total_return_without_costs"] == pytest.approx(
        bt.gross_result.final_equity / bt.capital - 1)
    table = bt.metrics_table()
    assert table.filter(pl.col("metric") == "n_trades")["label"][0] == "Closed trades"
    assert pickle.loads(pickle.dumps(bt)).metrics()["sharpe"] == flat["sharpe"]
    once = alfred.run_backtest(frame, strategy="equal_weight", without_costs=False)
    assert once.gross_result is None and math.isnan(once.metrics()["sharpe_without_costs"])
    assert isinstance(bt.plot(), Figure)


def test_metrics_of_a_plain_engine_result():
    import engine

    frame = bars()
    weights = pl.DataFrame({"ts": [TS[0]] * 2, "asset": ["A", "B"],
                            "target_weight": [0.5, 0.5]})
    net = engine.run_backtest(frame, weights)
    gross = engine.run_backtest(frame, weights, costs=Costs.zero())
    flat = alfred.metrics(net)
    assert math.isnan(flat["sharpe_without_costs"])  # unknown without the gross run
    both = alfred.metrics(net, gross_result=gross)
    assert both["total_return"] == flat["total_return"]
    assert both["total_return_without_costs"] == pytest.approx(gross.final_equity / 1e6 - 1)
    with pytest.raises(ConfigError, match="engine.BacktestResult"):
        alfred.metrics(net.equity)


def test_workflow_modules_are_callable_with_a_dict(in_tmp):
    import alfred.sweep
    import alfred.walkforward

    assert callable(alfred.sweep) and callable(alfred.walkforward) and callable(alfred.stress)
    with pytest.raises(ConfigError, match="<dict> has no sweep: section"):
        alfred.sweep(tiny())
    with pytest.raises(ConfigError, match="<dict> has no walkforward: section"):
        alfred.walkforward(tiny())
    assert alfred.sweep.SweepResult is alfred.SweepResult  # still a package
