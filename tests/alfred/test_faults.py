"""Faults leave nothing behind: SIGTERM cleans up like Ctrl-C, report workers follow a
killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.engine.executor.test_faults import alive, wait_for

psutil = pytest.importorskip("psutil")

_ROOT = Path(__file__).resolve().parents[2]

SWEEP = """
name: sigterm_sweep
data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ], start: 2019-01-01, end: 2020-12-31}
analysts: [{name: momentum, config: {lookback: 21}}]
strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, rebalance: weekly}}
report: {tearsheet: false, plots: false}
sweep: {params: {costs.slippage_bps: [1, 2, 3, 4, 5, 6, 7, 8]}}
"""


def test_sigterm_stops_a_sweep_like_ctrl_c_and_leaves_no_staging_folder(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SWEEP)
    out = tmp_path / "sw"
    process = subprocess.Popen(
        [sys.executable, "-m", "alfred", "sweep", str(scenario), "--out", str(out),
         "--workers", "1", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # mid-sweep: a first variant is journaled and the worker is on the next ones
        journal = out / "tasks.jsonl"
        assert wait_for(lambda: journal.is_file() and journal.read_text().count("\n") >= 1, 180)
        workers = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "SIGTERM" in stderr and "interrupted" in stderr and "Traceback" not in stderr
    assert not list(tmp_path.rglob(".*.partial-*"))  # the worker's finally removed it
    assert not any(alive(pid) for pid in workers)
    assert (out / "sweep.yaml").is_file()  # the sweep folder stays, to be resumed


_REPORT_PARENT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from alfred.report_jobs import ReportJob, ReportWriter

    class Stall:  # unpickling it sleeps: the child is busy with the job when killed
        def __reduce__(self):
            return (time.sleep, (600,))

    folder = Path(sys.argv[1])
    (folder / "run").mkdir()
    job = ReportJob(label="a", run_dir=folder / "run", result=Stall(), gross=None,
                    benchmark=None, benchmark_label=None, title="a", tearsheet=True,
                    plots=True)
    writer = ReportWriter(2, views=True, scratch=folder)
    writer.max_workers = 2
    writer.submit(job, lambda j: None)
    print(writer.server_pid, flush=True)
    time.sleep(600)
""")


def test_a_report_server_and_its_child_die_with_their_killed_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", _REPORT_PARENT, str(tmp_path)],
                              cwd=_ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(_ROOT)})
    server, children = None, []
    try:
        server = int(parent.stdout.readline())
        # the server imports, reads the job and forks a child for it, which stalls in it
        assert wait_for(lambda: len(psutil.Process(server).children()) == 1, 120)
        children = [c.pid for c in psutil.Process(server).children()]
        assert not list(tmp_path.glob("*.job"))  # the job came over a pipe, not a file
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        killed = time.monotonic()
        assert wait_for(lambda: not alive(server) and not alive(children[0]), 5)
        assert time.monotonic() - killed < 2.5
        assert not (tmp_path / "run" / "metrics.json").exists()  # nothing was finished
    finally:
        for pid in (parent.pid, server, *children):
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)
