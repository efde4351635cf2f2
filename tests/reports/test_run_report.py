"""End to end: a real backtest -> metrics_for_result -> write_report -> rebuild_report."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

import engine
from engine.errors import ConfigError, DataError
from reports import (
    METRIC_DEFINITIONS,
    compute_metrics,
    metrics_for_result,
    read_metrics,
    rebuild_report,
    write_report,
)

pytest.importorskip("quantstats")

REPORT_FILES = {"metrics.json", "equity.parquet", "trades.parquet", "orders.parquet",
                "fills.parquet", "equity_without_costs.parquet",
                "trades_without_costs.parquet", "benchmark.parquet", "tearsheet.html", "plots",
                "regimes.csv", "regimes.md"}


def test_metrics_agree_with_the_result_itself(backtest_pair):
    result, gross, bench = backtest_pair
    m = metrics_for_result(result, gross_result=gross, benchmark=bench)
    net, before = m["with_costs"], m["without_costs"]
    equity = result.equity
    assert net["total_return"] == pytest.approx(result.final_equity / result.capital - 1.0,
                                                rel=1e-9)
    assert before["total_return"] == pytest.approx(gross.final_equity / gross.capital - 1.0,
                                                   rel=1e-9)
    assert net["total_return"] < before["total_return"]  # costs cost money
    trades = result.trades
    assert net["n_trades"] == trades.filter(~pl.col("is_open")).height > 0
    assert net["n_open_trades"] == trades.filter(pl.col("is_open")).height
    closed = trades.filter(~pl.col("is_open"))
    assert net["win_rate_trades"] == pytest.approx(
        closed.filter(pl.col("pnl") > 0).height / closed.filter(pl.col("pnl") != 0).height)
    # exposure: the schedule is flat one phase in three
    gross_exposure = equity["gross"].to_numpy()
    assert net["exposure"] == pytest.approx(np.mean(gross_exposure > 0))
    assert 0.5 < net["exposure"] < 0.8
    ppy = result.periods_per_year
    assert net["turnover"] == pytest.approx(
        equity["traded"].sum() / equity["equity"].mean() * ppy / equity.height, rel=1e-9)
    assert -1 < net["beta"] < 1 and math.isfinite(net["alpha"])
    assert m["settings"]["periods_per_year"] == ppy == 252
    assert m["settings"]["costs"]["commission_bps"] == 1.0
    assert m["settings"]["without_costs"]["costs"]["commission_bps"] == 0.0
    assert m["definitions"] == METRIC_DEFINITIONS


def test_without_gross_run_the_before_costs_block_is_null(backtest_pair):
    result, _, _ = backtest_pair
    m = metrics_for_result(result)
    assert m["without_costs"] is None
    assert math.isnan(m["with_costs"]["beta"])


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, backtest_pair):
    result, gross, bench = backtest_pair
    folder = tmp_path_factory.mktemp("run")
    metrics = write_report(folder, result, gross_result=gross, benchmark_returns=bench,
                           title="three stocks", benchmark_label="S&P 500")
    return folder, metrics


@pytest.mark.slow
def test_write_report_writes_every_file(report_dir, backtest_pair):
    folder, metrics = report_dir
    result, _, _ = backtest_pair
    assert {p.name for p in folder.iterdir()} == REPORT_FILES
    assert sorted(p.name for p in (folder / "plots").iterdir()) == [
        "drawdown.png", "equity.png", "monthly_returns.png", "regimes.png", "rolling_sharpe.png"]
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["with_costs"]["sharpe"] == pytest.approx(metrics["with_costs"]["sharpe"])
    assert saved["settings"]["title"] == "three stocks"
    assert saved["settings"]["benchmark"] == "S&P 500"
    equity = pl.read_parquet(folder / "equity.parquet")
    assert equity["return"].to_list() == result.returns["return"].to_list()
    assert equity.drop("return").equals(result.equity)
    assert pl.read_parquet(folder / "trades.parquet").equals(result.trades)
    assert pl.read_parquet(folder / "orders.parquet").height == result.orders.height
    assert pl.read_parquet(folder / "fills.parquet").height == result.fills.height
    assert "three stocks" in (folder / "tearsheet.html").read_text()


@pytest.mark.slow
def test_rebuild_reproduces_the_metrics_from_the_files(report_dir):
    folder, metrics = report_dir
    before = json.loads((folder / "metrics.json").read_text())
    (folder / "tearsheet.html").unlink()
    (folder / "plots" / "equity.png").unlink()
    rebuilt = rebuild_report(folder)
    after = json.loads((folder / "metrics.json").read_text())
    assert after == before
    for section in ("with_costs", "without_costs"):
        for key, value in metrics[section].items():
            if math.isnan(value):
                assert math.isnan(rebuilt[section][key])
            else:
                assert rebuilt[section][key] == pytest.approx(value, rel=1e-12), key
    assert (folder / "tearsheet.html").is_file()
    assert (folder / "plots" / "equity.png").is_file()


def test_report_without_tearsheet_plots_gross_or_benchmark(tmp_path, backtest_pair):
    result, _, _ = backtest_pair
    metrics = write_report(tmp_path, result, tearsheet=False, plots=False)
    assert {p.name for p in tmp_path.iterdir()} == {
        "metrics.json", "equity.parquet", "trades.parquet", "orders.parquet", "fills.parquet"}
    saved = read_metrics(tmp_path)
    assert saved["without_costs"] is None and saved["with_costs"]["beta"] is None
    assert saved["settings"]["title"] == "weights"
    assert metrics["with_costs"]["n_trades"] == saved["with_costs"]["n_trades"]


def test_benchmark_given_as_plain_values(tmp_path, backtest_pair):
    result, _, _ = backtest_pair
    values = np.zeros(result.equity.height)
    values[::2] = 0.001
    m = write_report(tmp_path, result, benchmark_returns=values, tearsheet=False, plots=False)
    direct = compute_metrics(result.returns, 252, benchmark=values)
    assert m["with_costs"]["beta"] == pytest.approx(direct["beta"], rel=1e-12)
    saved = pl.read_parquet(tmp_path / "benchmark.parquet")
    assert saved["ts"].to_list() == result.equity["ts"].to_list()


def test_bad_input_leaves_the_folder_untouched(tmp_path, backtest_pair):
    result, _, _ = backtest_pair
    with pytest.raises(DataError, match="benchmark: return at row 3"):
        write_report(tmp_path, result, benchmark_returns=np.array([0.0, 0.0, 0.0, np.nan]))
    with pytest.raises(DataError, match="benchmark has 2 returns"):
        write_report(tmp_path, result, benchmark_returns=np.array([0.0, 0.0]))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="does not exist"):
        write_report(tmp_path / "nope", result)


def test_rebuild_names_missing_or_damaged_files(tmp_path, backtest_pair):
    result, _, _ = backtest_pair
    with pytest.raises(DataError, match="metrics.json is missing"):
        rebuild_report(tmp_path)
    write_report(tmp_path, result, tearsheet=False, plots=False)
    (tmp_path / "trades.parquet").unlink()
    with pytest.raises(DataError, match="trades.parquet is missing"):
        rebuild_report(tmp_path, tearsheet=False, plots=False)
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        rebuild_report(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"with_costs": {}, "settings": {}}))
    with pytest.raises(DataError, match="periods_per_year"):
        rebuild_report(tmp_path)


def test_one_bar_run_refuses_a_tearsheet_before_writing(tmp_path):
    close = np.array([[100.0]])
    panel = engine.Panel(np.array(["2024-01-02"], dtype="datetime64[ns]"), ("A",), close,
                         close, close, close, np.full((1, 1), np.nan), 252.0, False)
    result = engine.run_backtest(panel, engine.WeightPlan(np.array([[1.0]])))
    with pytest.raises(ConfigError, match="1 bar"):
        write_report(tmp_path, result)
    assert list(tmp_path.iterdir()) == []
    metrics = write_report(tmp_path, result, tearsheet=False)
    assert metrics["with_costs"]["total_return"] == 0.0
    assert (tmp_path / "plots" / "equity.png").is_file()
