"""Every file in scenarios/ runs, and leaves a complete, sane run folder."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import polars as pl
import pytest
import yaml

from alfred.components import strategy_names
from alfred.run import run_scenario
from alfred.scenario import ReportOptions, load_scenario, parse_scenario

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


# Scenarios whose analysts train or sample a model run here on a lighter budget: the same
# file, analysts and strategies, with forecasts at most monthly (stride >= 21), few sample
# paths and members, one epoch. What they exercise (every component wired end to end) does
# not depend on the budget; their full-size numbers are the README's and the notes'.
_LIGHTER = {"stride": lambda v: max(v, 21), "num_samples": lambda v: min(v, 4),
            "sample_count": lambda v: 1, "members": lambda v: min(v, 2),
            "epochs": lambda v: 1, "max_samples_per_epoch": lambda v: min(v, 2000)}


def _lighter(node):
    if isinstance(node, dict):
        return {k: _LIGHTER[k](v) if k in _LIGHTER and type(v) is int else _lighter(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_lighter(v) for v in node]
    return node


def _as_tested(path: Path):
    """The scenario as this test runs it: no HTML tear sheet or PNG plots (they cost seconds
    per strategy, do not depend on the scenario and are checked on the README's quickstart),
    and the lighter budget above for scenarios marked slow."""
    scenario = load_scenario(path)
    if {a.name for a in scenario.analysts} <= PRICE_ONLY_ANALYSTS:
        return scenario.model_copy(update={"report": ReportOptions(tearsheet=False,
                                                                   plots=False)})
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw = {k: v for k, v in raw.items() if not str(k).startswith("x-")}
    raw["analysts"] = _lighter(raw["analysts"])
    raw["report"] = {**raw.get("report", {}), "tearsheet": False, "plots": False}
    return parse_scenario(yaml.safe_dump(raw, sort_keys=False), source=str(path),
                          base_dir=path.parent)


def test_the_lighter_budget_changes_only_the_budget():
    raw = {"stride": 5, "num_samples": 32, "fine_tune": {"train": {"epochs": 3}},
           "members": [{"name": "toto", "config": {"stride": 40, "sample_count": 8}}],
           "members_n": 3, "seed": 7}
    assert _lighter(raw) == {"stride": 21, "num_samples": 4,
                             "fine_tune": {"train": {"epochs": 1}},
                             "members": [{"name": "toto", "config": {"stride": 40,
                                                                     "sample_count": 1}}],
                             "members_n": 3, "seed": 7}
    lighter = _as_tested(ROOT / "scenarios" / "toto_topk.yaml")
    shipped = load_scenario(ROOT / "scenarios" / "toto_topk.yaml")
    assert [a.name for a in lighter.analysts] == [a.name for a in shipped.analysts]
    assert lighter.data == shipped.data and lighter.strategy_list == shipped.strategy_list


@pytest.mark.parametrize("path", [_param(p) for p in SCENARIOS])
def test_scenario_runs_to_a_complete_folder(path, tmp_path):
    scenario = load_scenario(path)
    summary = run_scenario(_as_tested(path), out=tmp_path / "run")
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


# The quickstart as written (tear sheets, plots, comparison) and the regime sweep are
# checked on the folders the README tour leaves (tests/test_readme_commands.py).


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


def test_walkforward_scenario_plans_fifteen_yearly_folds():
    from alfred.walkforward import plan_folds

    folds, ts, horizon = plan_folds(load_scenario(ROOT / "scenarios" /
                                                  "walkforward_magnitude_topk.yaml"))
    dates = [f.dates(ts) for f in folds]
    assert len(folds) == 15 and horizon == 5
    assert dates[0]["test_start"].startswith("2008-01") and dates[-1]["test_end"] == "2022-12-28"
    assert all(f.test_first - f.train_last - 1 == 5 for f in folds)
