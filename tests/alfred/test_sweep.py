"""Sweeps: expansion, validation before running, equal results on every executor, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from alfred.scenario import parse_scenario
from alfred.sweep import Range, SweepSpec, expand, plan_sweep, run_sweep, set_dotted
from engine.errors import ConfigError

BASE = """
name: tiny_sweep
data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ, XOM], start: 2019-01-01,
       end: 2020-12-31}
analysts: [{name: momentum, config: {lookback: 21}}]
strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, rebalance: weekly}}
report: {tearsheet: false, plots: false}
"""
GRID = """
sweep:
  params:
    strategy.config.k: [1, 2]
    costs.slippage_bps: [2, 20]
"""


def _scenario(extra: str = GRID, tmp_path: Path | None = None):
    return parse_scenario(BASE + extra, source="tiny.yaml", base_dir=tmp_path)


def test_grid_expands_every_combination_in_order():
    spec = SweepSpec(params={"a": [1, 2], "b": ["x", "y", "z"]})
    combos = expand(spec)
    assert len(combos) == 6
    assert combos[0] == {"a": 1, "b": "x"} and combos[-1] == {"a": 2, "b": "z"}


def test_random_mode_samples_distinct_grid_points_reproducibly():
    spec = SweepSpec(mode="random", n=4, seed=3, params={"a": [1, 2, 3], "b": [10, 20]})
    first, again = expand(spec), expand(spec)
    assert first == again and len(first) == 4
    assert len({tuple(c.values()) for c in first}) == 4  # no point twice
    ranged = SweepSpec(mode="random", n=50, seed=1,
                       params={"lr": Range(low=1e-4, high=1e-1, log=True),
                               "k": Range(low=1, high=5, integer=True)})
    values = expand(ranged)
    assert all(1e-4 <= c["lr"] <= 1e-1 and isinstance(c["k"], int) and 1 <= c["k"] <= 5
               for c in values)
    assert len({c["k"] for c in values}) > 2


def test_symbols_multiply_the_grid():
    spec = SweepSpec(params={"a": [1, 2]}, symbols=["AAPL", "MSFT", "XOM"])
    combos = expand(spec)
    assert len(combos) == 6
    assert combos[0] == {"a": 1, "data.assets": ["AAPL"]}


def test_set_dotted_creates_sections_and_indexes_lists():
    tree = {"strategies": [{"config": {}}, {"config": {"k": 1}}], "costs": None}
    set_dotted(tree, "strategies.1.config.k", 3)
    set_dotted(tree, "costs.slippage_bps", 5)
    assert tree == {"strategies": [{"config": {}}, {"config": {"k": 3}}],
                    "costs": {"slippage_bps": 5}}
    with pytest.raises(ConfigError, match="not an index"):
        set_dotted(tree, "strategies.7.config.k", 1)


@pytest.mark.parametrize("extra, message", [
    ("sweep: {params: {costs.comission_bps: [1, 5]}}",
     "'costs.comission_bps' does not exist.*did you mean 'costs.commission_bps'"),
    ("sweep: {params: {strategy.config.kk: [1, 2]}}", "unknown key 'kk'"),
    ("sweep: {params: {strategy.config.k: []}}", "empty"),
    ("sweep: {params: {}}", "nothing varies"),
    ("sweep: {params: {strategy.config.k: {low: 1, high: 3}}}", "only random mode"),
    ("sweep: {mode: random, params: {strategy.config.k: [1, 2]}}", "needs n"),
    ("sweep: {params: {strategy.config.k: [1, many]}}", "k"),
])
def test_bad_sweeps_fail_before_anything_runs(extra, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        plan_sweep(_scenario(extra, tmp_path))


def test_sweep_runs_summarises_and_deflates(tmp_path):
    result = run_sweep(_scenario(), tmp_path / "sw", executor="inline", progress=False)
    assert result.n_variants == 4 and result.n_failed == 0
    summary = result.summary
    assert summary.height == 4
    assert summary["sharpe"].to_list() == sorted(summary["sharpe"].to_list(), reverse=True)
    # every variant is a normal run folder whose metrics the summary repeats
    for row in summary.iter_rows(named=True):
        metrics = json.loads((tmp_path / "sw" / row["run_dir"] / "metrics.json").read_text())
        assert metrics["with_costs"]["sharpe"] == pytest.approx(row["sharpe"], abs=0)
    # deflating for four tries can only lower the probability
    assert all(d <= p + 1e-12 for d, p in zip(summary["dsr"], summary["psr"], strict=True))
    # more slippage, same k: lower return (the sweep really changed the costs)
    by = {(r["strategy.config.k"], r["costs.slippage_bps"]): r["total_return"]
          for r in summary.iter_rows(named=True)}
    assert by[(1, 20)] < by[(1, 2)] and by[(2, 20)] < by[(2, 2)]
    assert {"summary.csv", "summary.md", "summary.parquet", "sweep.yaml", "tasks.jsonl"} <= {
        p.name for p in (tmp_path / "sw").iterdir()}


def test_local_pool_gives_the_inline_numbers(tmp_path):
    inline = run_sweep(_scenario(), tmp_path / "a", executor="inline", progress=False)
    local = run_sweep(_scenario(), tmp_path / "b", executor="local", workers=2,
                      progress=False)
    cols = ["variant", "sharpe", "total_return", "max_drawdown", "dsr"]
    assert inline.summary.select(cols).equals(local.summary.select(cols))


def test_a_different_sweep_in_the_same_folder_is_refused(tmp_path):
    run_sweep(_scenario(), tmp_path / "sw", executor="inline", progress=False, limit=1)
    other = _scenario("sweep: {params: {strategy.config.k: [1, 3]}}", tmp_path)
    with pytest.raises(ConfigError, match="different sweep"):
        run_sweep(other, tmp_path / "sw", executor="inline", progress=False)


@pytest.mark.slow
def test_killed_sweep_resumes_with_only_the_unfinished_variants(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE + """
sweep:
  params:
    strategy.config.k: [1, 2]
    costs.slippage_bps: [2, 5, 10, 20, 40, 80]
""")
    out = tmp_path / "sw"
    journal = out / "tasks.jsonl"
    command = [sys.executable, "-m", "alfred", "sweep", str(scenario), "--out", str(out),
               "--workers", "1", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 2:
            break
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # a hard kill: no clean-up code runs
    process.wait()
    finished = {json.loads(line)["key"] for line in journal.read_text().splitlines()
                if line.endswith("}")}
    assert 2 <= len(finished) < 12

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    lines = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    keys = [line["key"] for line in lines]
    # each variant ran exactly once across the two sessions
    assert len(keys) == len(set(keys)) == 12
    assert set(keys[: len(finished)]) == finished
    summary = pl.read_parquet(out / "summary.parquet")
    assert summary.height == 12
    assert f"{len(finished)} resumed" in again.stdout


@pytest.mark.slow
def test_ray_sweep_gives_the_local_numbers(tmp_path):
    pytest.importorskip("ray")
    local = run_sweep(_scenario(), tmp_path / "a", executor="local", workers=2,
                      progress=False)
    ray = run_sweep(_scenario(), tmp_path / "b",
                    executor={"kind": "ray", "address": "local", "workers": 2},
                    progress=False)
    import ray as ray_module

    assert not ray_module.is_initialized()  # started for the sweep and shut down after it
    cols = ["variant", "sharpe", "total_return", "max_drawdown", "win_rate_periods", "dsr"]
    assert local.summary.select(cols).equals(ray.summary.select(cols))
