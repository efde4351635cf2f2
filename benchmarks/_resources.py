"""Peak memory and cold start, each measured in fresh subprocesses (see ``_probe``)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._config import (
    COLD_START_TARGET_S,
    LARGE_MEMORY_TARGET_MB,
    PEAK_MEMORY_TARGET_MB,
    SuiteConfig,
)
from engine import RunError

REPO_ROOT = Path(__file__).resolve().parent.parent

# Cold start: run with `python -c` from the repository root, so nothing but the engine
# (and numpy/polars to build a toy input) is imported. The numba cache is warm by then.
COLD_START_CODE = r"""
import json, time
t0 = time.perf_counter()
import engine
t1 = time.perf_counter()
import numpy as np
import polars as pl
n_bars, assets = 252, ["AAA", "BBB", "CCC", "DDD", "EEE"]
ts = np.arange(np.datetime64("2020-01-01", "ns"), np.datetime64("2020-01-01", "ns")
               + n_bars * np.timedelta64(1, "D"), np.timedelta64(1, "D"))
rng = np.random.default_rng(0)
close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (n_bars, len(assets))), axis=0))
long_ts = np.repeat(ts, len(assets))
names = assets * n_bars
bars = pl.DataFrame({"ts": long_ts, "asset": names, "close": close.ravel()})
weights = pl.DataFrame({"ts": long_ts, "asset": names,
                        "target_weight": np.full(n_bars * len(assets), 0.2)})
weights = weights.filter(pl.col("ts").dt.day() == 1)
t2 = time.perf_counter()
result = engine.run_backtest(bars, weights)
frame = result.equity
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "inputs_s": t2 - t1, "first_call_s": t3 - t2,
                  "final_equity": result.final_equity, "bars": frame.height}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # the checkout itself, first: the subprocess must import this tree's engine
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                      env.get("PYTHONPATH", "")]))
    return env


def _run_json(args: list[str], timeout_s: float = 600.0) -> tuple[dict[str, Any], float]:
    """Run ``python *args`` in a fresh process and parse its last JSON line.

    Linux carries a process's ``ru_maxrss`` across fork and exec, so a probe started
    straight from this (large) process would report our own high-water mark. Going
    through ``sh``, which forks the probe rather than exec-ing it (a command follows),
    gives the probe a clean counter.
    """
    start = time.perf_counter()
    command = ["/bin/sh", "-c", '"$0" "$@"; exit $?', sys.executable, *args]
    proc = subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True,
                          text=True, timeout=timeout_s, check=False)
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RunError(f"benchmark probe {' '.join(args[:3])} failed (exit {proc.returncode}):"
                       f"\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1]), wall


def _probe_settings(cfg: SuiteConfig) -> str:
    return json.dumps({"n_bars": cfg.n_bars, "copies": cfg.copies, "seed": cfg.seed,
                       "noise_sigma": cfg.noise_sigma, "fast": cfg.fast, "slow": cfg.slow,
                       "capital": cfg.capital})


def peak_memory(cfg: SuiteConfig, *, peer: bool = True) -> dict[str, Any]:
    """Peak RSS of one W2 run of ours (and of vectorbt's, for scale) in its own process."""
    settings = _probe_settings(cfg)
    ours, _ = _run_json(["-m", "benchmarks._probe", "memory-ours", settings])
    out: dict[str, Any] = {"alfred": ours}
    if peer:
        out["vectorbt"], _ = _run_json(["-m", "benchmarks._probe", "memory-vectorbt", settings])
    out["target"] = {"what": "W2 peak memory of ours (absolute RSS)",
                     "target": f"< {PEAK_MEMORY_TARGET_MB:g} MB", "measured": ours["peak_mb"],
                     "met": ours["peak_mb"] < PEAK_MEMORY_TARGET_MB}
    return out


def cold_start(runs: int = 3) -> dict[str, Any]:
    """``import engine`` then a first small backtest, in fresh interpreters.

    One unmeasured run first fills numba's on-disk cache if it is cold; the figures are
    the median over ``runs`` more (best alongside). ``process_s`` adds interpreter
    start-up and exit, measured from outside.
    """
    _run_json(["-c", COLD_START_CODE])
    samples = []
    for _ in range(max(1, runs)):
        sample, wall = _run_json(["-c", COLD_START_CODE])
        sample["total_s"] = sample["import_s"] + sample["inputs_s"] + sample["first_call_s"]
        sample["process_s"] = wall
        samples.append(sample)

    def stat(key: str) -> dict[str, float]:
        values = [s[key] for s in samples]
        return {"median": statistics.median(values), "best": min(values)}

    out: dict[str, Any] = {key: stat(key) for key in
                           ("import_s", "inputs_s", "first_call_s", "total_s", "process_s")}
    out["runs"] = len(samples)
    total = out["total_s"]["median"]
    out["target"] = {"what": "cold start: import engine + first small backtest (median)",
                     "target": f"< {COLD_START_TARGET_S:g} s", "measured": total,
                     "met": total < COLD_START_TARGET_S}
    return out


def large_workload(workload: str, cfg: SuiteConfig) -> dict[str, Any]:
    """W4 or W5 in a fresh process (``benchmarks._large``), as a suite workload entry.

    Each stage runs once. "alfred" is our backtest on the panel and plan (the like-for-like
    figure against vectorbt's ``from_orders`` on the same plan); W4 also reports the whole
    frame call (align, signals, top-k plan, kernel) as "alfred (frames)".
    """
    if workload == "W4":
        settings = {"copies": cfg.w4_copies, "n_bars": cfg.n_bars, "seed": cfg.seed,
                    "noise_sigma": cfg.noise_sigma, "capital": cfg.capital}
    else:
        settings = {"n_days": cfg.w5_days, "capital": cfg.capital}
    out, wall = _run_json(["-m", "benchmarks._large", workload.lower(), json.dumps(settings)],
                          timeout_s=3600.0)
    by_name = {s["stage"].split(":")[0]: s for s in out["stages"]}
    asset_bars = out["n_bars"] * out["n_assets"]

    def row(stage: str, version: str) -> dict[str, Any]:
        seconds = by_name[stage]["seconds"]
        return {"first_s": seconds, "best_s": seconds, "median_s": seconds, "repeats": 1,
                "asset_bars_per_s": asset_bars / seconds, "version": version}

    ours_stage = "backtest again" if workload == "W4" else "backtest"
    engines = {"alfred": row(ours_stage, "local")}
    if workload == "W4":  # the whole `alfred run` (load -> analyst -> backtests -> reports)
        engines["alfred run (scenario)"] = {**row("backtest", "local"),
                                            "first_s": out["pipeline_s"],
                                            "best_s": out["pipeline_s"],
                                            "median_s": out["pipeline_s"],
                                            "asset_bars_per_s": asset_bars / out["pipeline_s"]}
    engines["vectorbt"] = row("vectorbt from_orders + value()", "")
    speedups = {name: r["best_s"] / engines["alfred"]["best_s"] for name, r in engines.items()
                if not name.startswith("alfred")}
    peak = max(s["peak_rss_mb"] or 0.0 for s in out["stages"])
    title = ("2,000-asset momentum top-k through alfred run: load -> analyst -> backtests "
             "-> reports"
             if workload == "W4" else "minute bars: daily top-k -> engine -> metrics")
    target = {"what": f"{workload} peak memory, any stage (absolute RSS)",
              "target": f"< {LARGE_MEMORY_TARGET_MB:g} MB", "measured": peak,
              "met": peak < LARGE_MEMORY_TARGET_MB}
    return {"id": workload, "title": title, "n_bars": out["n_bars"], "n_assets": out["n_assets"],
            "asset_bars": asset_bars, "engines": engines, "speedups": speedups,
            "checks": out["checks"], "checks_passed": all(c["passed"] for c in out["checks"]),
            "targets": [target], "stages": out["stages"], "peak_rss_mb": peak,
            "process_s": wall, "final_equity": out["final_equity"]}
