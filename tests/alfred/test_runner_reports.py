"""Report writing in worker interpreters: same files, errors that keep their type."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from alfred import run_backtest
from alfred.report_jobs import ComparisonJob, ReportJob, ReportWriter
from engine import Costs
from engine.errors import ConfigError, RunError


def tiny_result(costs: Costs | None = None):
    ts = [datetime(2021, 1, 4) + timedelta(days=i) for i in range(30)]
    bars = pl.DataFrame({"ts": ts * 2, "asset": ["A"] * 30 + ["B"] * 30,
                         "close": np.r_[100 * 1.01 ** np.arange(30), 50 + np.arange(30.0)]}
                        ).sort("ts", "asset")
    return run_backtest(bars, strategy="equal_weight", costs=costs)


def job(run_dir, label="a", result=None) -> ReportJob:
    result = tiny_result() if result is None else result
    return ReportJob(label=label, run_dir=run_dir, result=result,
                     gross=tiny_result(Costs.zero()), benchmark=None, benchmark_label=None,
                     title=label, tearsheet=False, plots=False)


def parallel_writer(scratch) -> ReportWriter:
    writer = ReportWriter(2, views=True, scratch=scratch)
    writer.max_workers = 2  # whatever this machine's CPU count
    return writer


@pytest.mark.slow  # two fresh interpreters import polars, numba and the reports stack
def test_workers_write_the_same_files_as_in_process(tmp_path):
    for name in ("inline", "w1", "w2"):
        (tmp_path / name).mkdir()
    inline = ReportWriter(1, views=False, scratch=tmp_path)
    assert not inline.parallel
    done: list[str] = []
    inline.submit(job(tmp_path / "inline"), lambda j: done.append(j.label))
    writer = parallel_writer(tmp_path)
    writer.submit(job(tmp_path / "w1", "w1"), lambda j: done.append(j.label))
    writer.submit(job(tmp_path / "w2", "w2"), lambda j: done.append(j.label))
    assert done == ["a"]  # workers report on collection, in submission order
    writer.wait()
    assert done == ["a", "w1", "w2"]
    # a comparison, once its runs are written: the same table as one written here
    (tmp_path / "cmp").mkdir()
    writer.submit(ComparisonJob(tmp_path / "cmp", (tmp_path / "w1", tmp_path / "w2")),
                  lambda j: done.append(j.label))
    writer.finish()
    assert done == ["a", "w1", "w2", "comparison"]
    inline.submit(ComparisonJob(tmp_path / "inline_cmp", (tmp_path / "w1", tmp_path / "w2")),
                  lambda j: None)
    assert (tmp_path / "cmp" / "comparison.csv").read_text() == (
        tmp_path / "inline_cmp" / "comparison.csv").read_text()
    assert "w2" in (tmp_path / "cmp" / "comparison.md").read_text()
    expected = json.loads((tmp_path / "inline" / "metrics.json").read_text())
    for name in ("w1", "w2"):
        got = json.loads((tmp_path / name / "metrics.json").read_text())
        assert got["with_costs"] == expected["with_costs"]
        assert pl.read_parquet(tmp_path / name / "equity.parquet").equals(
            pl.read_parquet(tmp_path / "inline" / "equity.parquet"))
    # the worker's scratch files are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp", "inline", "inline_cmp",
                                                          "w1", "w2"]


def test_a_worker_input_error_keeps_its_type(tmp_path):
    writer = parallel_writer(tmp_path)
    writer.submit(job(tmp_path / "missing"), lambda j: None)
    with pytest.raises(ConfigError, match="does not exist"):
        writer.finish()
    assert list(tmp_path.iterdir()) == []


def test_a_worker_bug_surfaces_as_run_error_with_its_traceback(tmp_path):
    (tmp_path / "run").mkdir()
    broken = ReportJob(label="b", run_dir=tmp_path / "run", result=None, gross=None,
                       benchmark=None, benchmark_label=None, title="b", tearsheet=False,
                       plots=False)
    writer = parallel_writer(tmp_path)
    writer.submit(broken, lambda j: None)
    with pytest.raises(RunError) as info:
        writer.finish()
    assert "Traceback" in str(info.value) and "'b'" in str(info.value)


def test_a_server_without_fork_writes_the_reports_itself(tmp_path):
    """Where ``os.fork`` does not exist (Windows) the server writes each job in-process
    and frames its outcome the same way."""
    import pickle
    import subprocess
    import sys
    from pathlib import Path

    from alfred import report_jobs

    root = Path(report_jobs.__file__).resolve().parents[1]
    (tmp_path / "run").mkdir()
    payload = pickle.dumps(job(tmp_path / "run"))
    code = ("import os, runpy; del os.fork; "
            "runpy.run_module('alfred.report_jobs', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          timeout=300, input=report_jobs._JOB.pack(7, len(payload)) + payload)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    number, status, size = report_jobs._OUTCOME.unpack_from(done.stdout)
    assert (number, status) == (7, 0)
    kind, _ = pickle.loads(done.stdout[report_jobs._OUTCOME.size:][:size])
    assert kind == "ok"
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_an_early_server_writes_even_a_single_report(tmp_path, monkeypatch):
    """``alfred run`` starts the server before its imports: a one-strategy run with views
    uses it too (its imports overlap the data loading), with the same files."""
    from alfred.report_jobs import early_report_server

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    for name in ("inline", "early"):
        (tmp_path / name).mkdir()
    ReportWriter(1, views=False).submit(job(tmp_path / "inline"), lambda j: None)
    done: list[str] = []
    with early_report_server(views=True):
        writer = ReportWriter(1, views=True)
        assert writer.parallel and writer.server_pid is not None
        writer.submit(job(tmp_path / "early"), lambda j: done.append(j.label))
        writer.finish()
    assert done == ["a"]
    assert json.loads((tmp_path / "early" / "metrics.json").read_text())["with_costs"] == (
        json.loads((tmp_path / "inline" / "metrics.json").read_text())["with_costs"])
    from alfred import report_jobs

    with early_report_server(views=False):  # nothing to draw: no server
        assert report_jobs._early is None


def test_a_cost_curve_computed_by_the_run_is_written_as_given(tmp_path):
    """The run replays the cost curve where its kernels are loaded and hands it to the
    report; without it the report replays the run itself, to the same numbers."""
    import engine
    from engine.sensitivity import cost_sensitivity

    bars = tiny_result().equity.select("ts").join(
        pl.DataFrame({"asset": ["A", "B"]}), how="cross")
    bars = bars.with_columns(pl.lit(100.0).alias("close") + pl.int_range(pl.len()) % 7)
    weights = bars.select("ts", "asset").with_columns(
        pl.when(pl.col("asset") == "A").then(0.6).otherwise(-0.3).alias("target_weight"))
    result = engine.run_backtest(bars, weights)
    given = cost_sensitivity(result)
    writer = ReportWriter(1, views=False)
    for name, curve in (("replayed", None), ("given", given)):
        (tmp_path / name).mkdir()
        writer.submit(dataclasses.replace(job(tmp_path / name, result=result),
                                          cost_sensitivity=curve), lambda j: None)
    replayed = json.loads((tmp_path / "replayed" / "metrics.json").read_text())
    written = json.loads((tmp_path / "given" / "metrics.json").read_text())
    assert written["cost_sensitivity"] == replayed["cost_sensitivity"]
    (tmp_path / "marked").mkdir()
    marked = {**given, "break_even_bps": 12.5}
    writer.submit(dataclasses.replace(job(tmp_path / "marked", result=result),
                                      cost_sensitivity=marked), lambda j: None)
    got = json.loads((tmp_path / "marked" / "metrics.json").read_text())["cost_sensitivity"]
    assert got["break_even_bps"] == 12.5


def test_an_early_server_the_run_does_not_need_is_stopped(monkeypatch):
    from alfred import report_jobs

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    with report_jobs.early_report_server(views=True):
        server = report_jobs._early
        assert server is not None and server.process.poll() is None
        report_jobs.drop_early_server()  # the scenario turned out to draw nothing
        assert report_jobs._early is None
        assert server.process.poll() is not None


def test_a_run_without_tear_sheets_gets_a_server_without_quantstats(tmp_path, monkeypatch):
    """``--no-tearsheet`` (or ``report.tearsheet: false``): the server skips importing
    quantstats, and a report with plots is written all the same."""
    from alfred import report_jobs

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    with report_jobs.early_report_server(views=True):
        first = report_jobs._early
        report_jobs.early_server_without_tearsheet()  # the scenario said tearsheet: false
        server = report_jobs._early
        assert first.process.poll() is not None  # the quantstats one was stopped
        assert report_jobs._NO_QUANTSTATS in server.process.args
        (tmp_path / "run").mkdir()
        writer = ReportWriter(1, views=True)
        assert writer.server_pid == server.process.pid
        writer.submit(dataclasses.replace(job(tmp_path / "run"), plots=True), lambda j: None)
        writer.finish()
    assert (tmp_path / "run" / "plots" / "equity.png").is_file()
    assert not (tmp_path / "run" / "tearsheet.html").exists()


def _die_in_worker() -> None:
    import os
    import sys

    sys.stderr.write("report child going down\n")
    sys.stderr.flush()
    os._exit(3)


class _Crash:
    """Unpickling it ends the process (a child that dies without an outcome)."""

    def __reduce__(self):
        return (_die_in_worker, ())


def test_a_report_child_that_dies_is_named_with_its_exit_code_and_output(tmp_path):
    (tmp_path / "run").mkdir()
    crashing = dataclasses.replace(job(tmp_path / "run", "c"), result=_Crash())
    writer = parallel_writer(tmp_path)
    writer.submit(crashing, lambda j: None)
    with pytest.raises(RunError) as info:
        writer.finish()
    message = str(info.value)
    assert "'c'" in message and "exit code 3" in message
    assert "report child going down" in message


def test_off_linux_each_report_at_once_gets_its_own_server(tmp_path, monkeypatch):
    """Where servers do not fork (``FORKS`` false: macOS, Windows) the writer starts one
    server per report written at once and reuses a server once its report is in."""
    from alfred import report_jobs

    monkeypatch.setattr(report_jobs, "FORKS", False)
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    writer = parallel_writer(tmp_path)
    done: list[str] = []
    writer.submit(job(tmp_path / "a", "a"), lambda j: done.append(j.label))
    writer.submit(job(tmp_path / "b", "b"), lambda j: done.append(j.label))
    servers = [server for *_, server in writer._running]
    assert len({id(s) for s in servers}) == 2  # two reports at once, two servers
    writer.submit(job(tmp_path / "c", "c"), lambda j: done.append(j.label))
    assert done == ["a"]  # the first collected to make room; its server took "c"
    assert writer._running[-1][-1] is servers[0] and len(writer._servers) == 2
    writer.finish()
    assert done == ["a", "b", "c"]
    assert all((tmp_path / name / "metrics.json").is_file() for name in ("a", "b", "c"))
    assert all(s.process.returncode == 0 for s in servers)
