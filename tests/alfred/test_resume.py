"""Long jobs you can trust to resume: sweeps, walk-forward and stress runs.

A sweep folder is recognised by what it computes, not by how the scenario was named; one
sweep at a time may write it; its journal survives a cut line; its summary does not
depend on the order variants finished in. Walk-forward and stress runs keep their
finished folds/paths in a hidden ``.<name>.resume`` folder until they are published.
"""

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
from typer.testing import CliRunner

from alfred.resume import folder_lock
from alfred.scenario import load_scenario, parse_scenario
from alfred.sweep import plan_sweep, run_sweep
from engine.errors import ConfigError
from engine.executor import Journal

SWEEP = """
name: tiny_resume
data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ], start: 2020-01-01, end: 2020-12-31}
analysts: [{name: momentum, config: {lookback: 21}}]
strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, rebalance: weekly}}
report: {tearsheet: false, plots: false}
sweep:
  params:
    costs.slippage_bps: [2, 20, 40]
"""


def _write(folder: Path, text: str = SWEEP, name: str = "s.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _keys(journal: Path) -> list[str]:
    return [json.loads(line)["key"] for line in journal.read_text().splitlines()]


def test_resume_from_another_folder_with_an_absolute_path(tmp_path, monkeypatch):
    home = tmp_path / "project"
    _write(home)
    monkeypatch.chdir(home)
    first = run_sweep(load_scenario("s.yaml"), "sw", executor="inline", progress=False,
                      limit=1)
    assert first.n_variants == 3 and first.summary.height == 1
    manifest = (home / "sw" / "sweep.yaml").read_text()
    assert "scenario_sha256" in manifest

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = run_sweep(load_scenario(home / "s.yaml"), home / "sw", executor="inline",
                      progress=False)
    assert again.n_resumed == 1 and again.n_failed == 0 and again.summary.height == 3
    keys = _keys(home / "sw" / "tasks.jsonl")
    assert len(keys) == len(set(keys)) == 3  # the finished variant did not run again

    # the summary (and its DSR) does not depend on the order the variants finished in
    from alfred.sweep._run import summarise

    finished = list(Journal(home / "sw" / "tasks.jsonl").finished().values())
    by_key = {v.key: v for v in plan_sweep(load_scenario(home / "s.yaml"))}
    spec = load_scenario(home / "s.yaml").sweep
    forward = summarise(home / "sw", finished, by_key, spec)
    backward = summarise(home / "sw", finished[::-1], by_key, spec)
    assert forward.equals(backward)
    assert not list((home / "sw").glob(".*.tmp-*"))  # atomic writes leave no temporaries


def test_a_second_sweep_on_the_same_folder_exits_2_and_changes_nothing(tmp_path):
    from alfred.cli import app

    scenario = _write(tmp_path)
    out = tmp_path / "sw"
    run_sweep(load_scenario(scenario), out, executor="inline", progress=False, limit=1)
    before = (out / "tasks.jsonl").read_text()
    with folder_lock(out, "sweep"):  # a sweep running in the folder right now
        result = CliRunner().invoke(app, ["sweep", str(scenario), "--out", str(out),
                                          "--executor", "inline", "--quiet"])
    assert result.exit_code == 2, result.output
    assert "another alfred sweep is running" in result.output
    assert (out / "tasks.jsonl").read_text() == before


def test_a_cut_journal_line_is_repaired_and_its_variant_rerun(tmp_path):
    scenario = _write(tmp_path)
    out = tmp_path / "sw"
    run_sweep(load_scenario(scenario), out, executor="inline", progress=False, limit=1)
    journal = out / "tasks.jsonl"
    (done,) = _keys(journal)
    with journal.open("a") as handle:
        handle.write('{"key": "v0001-cut", "ok": true, "val')  # killed mid-write
    (out / "failures.json").write_text("[]")  # as an earlier failed attempt left it
    result = run_sweep(load_scenario(scenario), out, executor="inline", progress=False)
    assert result.n_resumed == 1 and result.summary.height == 3
    keys = _keys(journal)  # every line parses: the cut one was removed before appending
    assert keys[0] == done and len(keys) == len(set(keys)) == 3
    assert not (out / "failures.json").exists()  # the resume succeeded: no stale failures


def test_a_metric_typo_is_refused_before_any_variant_runs(tmp_path):
    scenario = _write(tmp_path, SWEEP + "  metric: sharp\n")
    with pytest.raises(ConfigError, match="sweep.metric 'sharp'.*did you mean 'sharpe'"):
        run_sweep(load_scenario(scenario), tmp_path / "sw", executor="inline",
                  progress=False)
    assert not (tmp_path / "sw").exists()
    # a swept key or dsr is a valid metric; changing only the metric keeps a folder resumable
    run_sweep(load_scenario(_write(tmp_path, SWEEP + "  metric: dsr\n")), tmp_path / "sw",
              executor="inline", progress=False, limit=1)
    ranked = _write(tmp_path, SWEEP + "  metric: costs.slippage_bps\n  order: asc\n")
    result = run_sweep(load_scenario(ranked), tmp_path / "sw", executor="inline",
                       progress=False)
    assert result.n_resumed == 1
    assert result.summary["costs.slippage_bps"].to_list() == [2, 20, 40]
    assert "metric: costs.slippage_bps" in (tmp_path / "sw" / "sweep.yaml").read_text()


def test_a_bad_variant_setting_is_refused_before_any_variant_runs(tmp_path):
    scenario = _write(tmp_path, SWEEP.replace("costs.slippage_bps: [2, 20, 40]",
                                              "costs.slippage_bps: [2, -5]"))
    with pytest.raises(ConfigError, match="slippage_bps"):
        run_sweep(load_scenario(scenario), tmp_path / "sw", executor="inline",
                  progress=False)
    assert not (tmp_path / "sw").exists()


# --------------------------------------------------------------------------- stress


STRESS = """
name: stress_resume
data: {source: sp500_stocks, assets: [AAPL, MSFT, JPM, XOM], start: 2015-01-01,
       end: 2020-12-31}
analysts: [{name: momentum, config: {lookback: 21}}]
strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, rebalance: monthly}}
seed: 3
executor: {kind: inline}
report: {plots: false, tearsheet: false}
stress: {generator: bootstrap, paths: 4, days: 120}
"""


def test_a_stress_run_that_failed_to_publish_resumes_every_finished_path(tmp_path,
                                                                          monkeypatch):
    import alfred.stress._report as report
    from alfred.stress import run_stress

    scenario = parse_scenario(STRESS, source="x.yaml")
    fresh = run_stress(scenario, tmp_path / "fresh", progress=False)
    real = report.write_stress

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_stress", broken)
    with pytest.raises(OSError):
        run_stress(scenario, tmp_path / "out", progress=False)
    hidden = tmp_path / ".out.resume"
    assert len(_keys(hidden / "tasks.jsonl")) == 4 and not (tmp_path / "out").exists()

    ran: list[int] = []
    monkeypatch.setattr(report, "write_stress", real)
    import alfred.stress._run as stress_run

    original = stress_run.run_path
    monkeypatch.setattr(stress_run, "run_path", lambda *a: ran.append(a[-1]) or original(*a))
    resumed = run_stress(scenario, tmp_path / "out", progress=False)
    assert ran == []  # every path came from the journal and its stored frames
    assert resumed.paths.equals(fresh.paths) and resumed.returns.equals(fresh.returns)
    assert resumed.quantiles.equals(fresh.quantiles)
    assert not hidden.exists()  # published: the resume folder is gone

    # a different question (another seed) never reuses the old answers
    monkeypatch.setattr(report, "write_stress", broken)
    with pytest.raises(OSError):
        run_stress(scenario, tmp_path / "other", progress=False)
    other = parse_scenario(STRESS.replace("seed: 3", "seed: 4"), source="x.yaml")
    monkeypatch.setattr(report, "write_stress", real)
    ran.clear()
    run_stress(other, tmp_path / "other", progress=False)
    assert sorted(ran) == [0, 1, 2, 3]


# --------------------------------------------------------------------------- walk-forward


WALKFORWARD = """
name: tiny_wf
data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ, XOM], start: 2020-01-01,
       end: 2020-12-31}
analysts: [{name: momentum, config: {lookback: 21}}]
strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, rebalance: weekly}}
walkforward: {train: 250, test: 85, in_sample: false}
report: {tearsheet: false, plots: false}
"""


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_killed_walkforward_resumes_only_the_unfinished_folds(tmp_path):
    import psutil

    scenario = _write(tmp_path, WALKFORWARD, "wf.yaml")
    out = tmp_path / "out"
    journal = tmp_path / ".out.resume" / "tasks.jsonl"
    command = [sys.executable, "-m", "alfred", "walkforward", str(scenario), "--out",
               str(out), "--workers", "1", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while time.time() < deadline and not (journal.is_file() and journal.read_text()):
        time.sleep(0.05)
    workers = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    os.kill(process.pid, signal.SIGKILL)  # the parent only: its workers must follow it
    process.wait()
    killed = time.monotonic()
    while any(_alive(pid) for pid in workers) and time.monotonic() - killed < 5:
        time.sleep(0.02)
    assert not any(_alive(pid) for pid in workers)
    assert time.monotonic() - killed < 2.5
    finished = {int(line["key"].split("_")[1]): line["value"]["fit_s"] for line in
                (json.loads(x) for x in journal.read_text().splitlines() if x.endswith("}"))}
    assert 1 <= len(finished) < 3 and not out.exists()

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert not journal.parent.exists()  # published: nothing left to resume
    folds = pl.read_parquet(out / "folds.parquet")
    assert folds["fold"].to_list() == [0, 1, 2]
    # a finished fold was not fit again: its timing is the one journaled before the kill
    fit = dict(zip(folds["fold"], folds["0:momentum.fit_s"], strict=True))
    assert all(fit[fold] == seconds for fold, seconds in finished.items())

    # the resumed run equals one that was never interrupted
    whole = subprocess.run([*command[:6], str(tmp_path / "whole"), *command[7:]],
                           capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    for name in ("returns.parquet", "folds.parquet", "trades.parquet", "equity.parquet"):
        resumed, uninterrupted = (pl.read_parquet(folder / name).select(
            pl.exclude("^.*fit_s$")) for folder in (out, tmp_path / "whole"))  # timings differ
        assert resumed.equals(uninterrupted), name
