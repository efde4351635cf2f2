"""A sweep on a two-node Ray cluster whose worker node cannot see the driver's disk.

One machine plays the cluster: a head node with no CPUs (so no task runs beside the
driver's files) and a worker node started inside its own mount namespace (``unshare -m``)
with an empty tmpfs over the driver's folder, its own temp folder and working directory.
A worker that read the scenario's data path or wrote the run folder where the driver
reads it would fail or leave the driver's folder incomplete; the controls show that such
a read does fail and such a write does not reach the driver, so the test can fail.

Both nodes are stopped by the ids of their own processes (``ray stop`` would end every
Ray process on the machine, other people's included).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import polars as pl
import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow

SCENARIO = """
name: cluster_sweep
data: {{source: {data}, start: 2019-01-01, end: 2020-12-31}}
benchmark: {{dataset: {index}}}
analysts: [{{name: momentum, config: {{lookback: 21}}}}]
strategy: {{name: topk_long_short, config: {{k: 1, rank_by: pred_return, rebalance: weekly}}}}
report: {{tearsheet: false, plots: false}}
sweep:
  params:
    strategy.config.k: [1, 2]
    costs.slippage_bps: [2, 20]
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ray") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


def _ray_start(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed: {done.stdout[-2000:]}"
                           f"{done.stderr[-2000:]}")


def _stop(markers: list[Path]) -> None:
    """End the processes of the nodes this test started (those whose command line names
    one of their temp folders, and their children), SIGTERM first, then SIGKILL."""
    mine: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info.get("cmdline") or [])
        if proc.pid != os.getpid() and any(str(m) in line for m in markers):
            mine[proc.pid] = proc
            for child in _children(proc):
                mine[child.pid] = child
    for proc in mine.values():
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(list(mine.values()), timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def _children(proc):
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """(driver folder, head address): the worker node sees an empty tmpfs at the folder."""
    if not _can_unshare():
        pytest.skip("needs root, unshare -m and the ray CLI")
    driver = tmp_path / "driver"
    driver.mkdir()
    head_tmp = Path(tempfile.mkdtemp(prefix="rh", dir="/tmp"))
    node_tmp = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))
    node_cwd = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    (node_cwd / "tmp").mkdir()
    port = _free_port()
    # Ray turns token authentication on by itself when ~/.ray/auth_token exists; say off
    # for the nodes and this driver alike, so they agree whatever the machine holds
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats",
              f"--dashboard-agent-listen-port={_free_port()}",
              f"--metrics-export-port={_free_port()}"]
    try:
        _ray_start(["ray", "start", "--head", "--num-cpus=0", f"--port={port}",
                    f"--temp-dir={head_tmp}", "--include-dashboard=false",
                    f"--ray-client-server-port={_free_port()}", *common], env)
        node = " ".join(["exec", "ray", "start", f"--address=127.0.0.1:{port}",
                         "--num-cpus=2", f"--temp-dir={node_tmp}", *common])
        script = (f"mount -t tmpfs tmpfs {driver} && cd {node_cwd} && "
                  f"TMPDIR={node_cwd / 'tmp'} {node}")
        _ray_start(["unshare", "-m", "--propagation", "private", "sh", "-c", script], env)
        yield driver, f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _stop([head_tmp, node_tmp])
        for folder in (head_tmp, node_tmp, node_cwd):
            shutil.rmtree(folder, ignore_errors=True)


def _driver_data(driver: Path) -> tuple[Path, Path]:
    from engine.data import load_bars

    data = driver / "data"
    data.mkdir()
    bars = load_bars("sp500_stocks", assets=["AAPL", "MSFT", "JNJ", "XOM"], end="2020-12-31")
    bars.filter(pl.col("ts").dt.year() >= 2018).write_parquet(data / "bars.parquet")
    index = load_bars("sp500_index", end="2020-12-31")
    index.filter(pl.col("ts").dt.year() >= 2018).write_parquet(data / "index.parquet")
    return data / "bars.parquet", data / "index.parquet"


def test_sweep_lands_on_the_driver_when_workers_share_no_disk(cluster):
    from alfred.sweep import run_sweep
    from engine.data import load_bars
    from engine.executor import Task, make_executor

    driver, address = cluster
    bars, index = _driver_data(driver)
    folder = driver / "scenario"
    folder.mkdir()
    path = folder / "sweep.yaml"
    # relative data paths: they resolve against the scenario's folder, on the driver only
    path.write_text(SCENARIO.format(data="../data/bars.parquet", index="../data/index.parquet"))
    started = time.perf_counter()
    spec = {"kind": "ray", "address": address, "connect_timeout_s": 30}
    result = run_sweep(path, driver / "out", executor=spec, progress=False)
    sweep_s = time.perf_counter() - started

    assert result.n_failed == 0, [r.error_line() for r in result.failures]
    assert result.n_variants == 4 and result.summary.height == 4
    for key in result.summary["variant"].to_list():
        run = driver / "out" / "runs" / key
        for name in ("metrics.json", "equity.parquet", "config.yaml", "fingerprint.json",
                     ".alfred-run"):
            assert (run / name).is_file(), f"{run / name} missing on the driver"
        assert json.loads((run / "metrics.json").read_text())["with_costs"]
        assert str(bars) in (run / "config.yaml").read_text()  # the driver's data path
    lines = (driver / "out" / "tasks.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["ok"] for line in lines)
    assert "files" not in lines[0]  # the journal keeps metrics, not the folder's bytes
    assert (driver / "out" / "summary.csv").is_file()

    # the controls: on this cluster a worker can neither read the driver's data nor write
    # into the driver's output folder (it does not exist on the worker's file system)
    probe = driver / "out" / "written-by-a-worker.txt"
    with make_executor({**spec, "workers": 2}) as ex:
        read, write = ex.run([Task(key="read", fn=load_bars, args=(str(bars),)),
                              Task(key="write", fn=Path.write_text, args=(probe, "x"))])
        nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    assert sorted(n["Resources"].get("CPU", 0) for n in nodes) == [0, 2]
    assert not read.ok and read.error_type == "DataError", read.error
    assert not write.ok and write.error_type == "FileNotFoundError", write.error
    assert not probe.exists()
    assert load_bars(str(bars)).height > 0  # the same read works here, on the driver
    assert sweep_s < 120
