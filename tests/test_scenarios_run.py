"""Every file in scenarios/ runs, and leaves a complete, sane run folder."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import polars as pl
import pytest

from alfred.components import strategy_names
from alfred.run import run_scenario
from alfred.scenario import ReportOptions, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
# Analysts that train nothing run in a fraction of a second; a scenario that trains a
# model (torch) takes tens of seconds and is marked slow.
PRICE_ONLY_ANALYSTS = {"naive", "momentum", "file"}


def _param(path: Path):
    trains = {a.name for a in load_scenario(path).analysts} - PRICE_ONLY_ANALYSTS
    return pytest.param(path, id=path.stem, marks=[pytest.mark.slow] if trains else [])


def test_the_scenarios_folder_is_not_empty():
    assert {p.stem for p in SCENARIOS} >= {"quickstart", "simple", "nuanced", "topk_long_short",
                                           "weights_file", "buy_and_hold", "equal_weight"}


def test_every_registered_strategy_has_a_scenario():
    used = {spec.name for path in SCENARIOS for spec in load_scenario(path).strategy_list}
    assert set(strategy_names()) <= used


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield float(tree)


@pytest.mark.parametrize("path", [_param(p) for p in SCENARIOS])
def test_scenario_runs_to_a_complete_folder(path, tmp_path):
    scenario = load_scenario(path)
    # The HTML tear sheet and PNG plots cost seconds per strategy and do not depend on the
    # scenario; they are checked once, on the quickstart as written, below.
    no_views = scenario.model_copy(update={"report": ReportOptions(tearsheet=False,
                                                                   plots=False)})
    summary = run_scenario(no_views, out=tmp_path / "run")
    assert summary.run_dir == (tmp_path / "run").resolve()
    labels = [spec.run_label for spec in scenario.strategy_list]
    assert [run.label for run in summary.runs] == labels
    if len(labels) > 1:
        assert list(summary.run_dir.glob("comparison*")), "no comparison at the top"
        assert (summary.run_dir / "config.yaml").is_file()
    for run in summary.runs:
        for name in ("config.yaml", "fingerprint.json", "metrics.json"):
            assert (run.run_dir / name).is_file(), f"{run.label}: {name} missing"
        metrics = json.loads((run.run_dir / "metrics.json").read_text())
        assert metrics, f"{run.label}: metrics.json is empty"
        assert all(not math.isinf(x) for x in _numbers(metrics)), "infinite metric"
        # the strategy had a position at some point and costs cost something
        assert run.n_trades >= 1
        assert math.isfinite(run.final_equity) and run.final_equity > 0
        assert run.total_return_without_costs >= run.total_return - 1e-12
        assert load_scenario(run.run_dir / "config.yaml").strategy.run_label == run.label
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_quickstart_as_written_writes_tear_sheets_plots_and_a_comparison(tmp_path):
    path = ROOT / "scenarios" / "quickstart.yaml"
    summary = run_scenario(path, out=tmp_path / "run")
    root = summary.run_dir
    for name in ("comparison.md", "comparison.html", "comparison.csv", "config.yaml"):
        assert (root / name).is_file(), name
    for run in summary.runs:
        assert (run.run_dir / "tearsheet.html").stat().st_size > 10_000
        assert len(list((run.run_dir / "plots").glob("*.png"))) >= 3
        assert (run.run_dir / "benchmark.parquet").is_file()
        metrics = run.metrics
        assert metrics["settings"]["benchmark"] == "sp500_index:SP500"
        assert -1.0 <= metrics["with_costs"]["max_drawdown"] <= 0.0
        assert metrics["without_costs"]["cagr"] >= metrics["with_costs"]["cagr"]
    comparison = pl.read_csv(root / "comparison.csv")
    runs = comparison.filter(pl.col("strategy") != "benchmark")
    assert sorted(runs["run"].to_list()) == ["nuanced", "topk"]
    assert comparison.filter(pl.col("strategy") == "benchmark")["run"].to_list() == [
        "sp500_index:SP500"]


def test_weights_signals_file_matches_its_script():
    script = ROOT / "scenarios" / "data" / "make_weights_signals.py"
    built = runpy.run_path(str(script))["build"]()
    on_disk = pl.read_csv(ROOT / "scenarios" / "data" / "weights_signals.csv",
                          try_parse_dates=True)
    assert on_disk.columns == built.columns
    assert on_disk["asset"].to_list() == built["asset"].to_list()
    assert on_disk["ts"].cast(pl.Datetime("ns")).to_list() == built["ts"].to_list()
    assert on_disk["target_weight"].to_list() == built["target_weight"].to_list()
    sums = on_disk.group_by("ts").agg(pl.col("target_weight").sum())["target_weight"]
    assert sums.max() <= 1.0 and sums.min() > 0.999


# The scenarios that drive a mode other than `alfred run` also run in that mode.

@pytest.mark.slow
def test_stress_scenario_runs_in_stress_mode(tmp_path):
    from alfred.stress import run_stress

    result = run_stress(ROOT / "scenarios" / "stress_topk.yaml", tmp_path / "stress", paths=4,
                        executor="inline", progress=False)
    assert result.n_paths == 4 and result.paths.height == 4 * 2
    assert (tmp_path / "stress" / "quantiles.md").is_file()


@pytest.mark.slow
def test_regime_sweep_scenario_runs_every_named_regime(tmp_path):
    from alfred.sweep import run_sweep
    from reports.regimes import REGIMES

    result = run_sweep(ROOT / "scenarios" / "regimes_quickstart.yaml", tmp_path / "sweep",
                       executor="inline", progress=False)
    assert sorted(set(result.summary["data.regime"])) == sorted(REGIMES)
    assert result.n_failed == 0


def test_walkforward_scenario_plans_fifteen_yearly_folds():
    from alfred.walkforward import plan_folds

    folds, ts, horizon = plan_folds(load_scenario(ROOT / "scenarios" /
                                                  "walkforward_magnitude_topk.yaml"))
    dates = [f.dates(ts) for f in folds]
    assert len(folds) == 15 and horizon == 5
    assert dates[0]["test_start"].startswith("2008-01") and dates[-1]["test_end"] == "2022-12-28"
    assert all(f.test_first - f.train_last - 1 == 5 for f in folds)
