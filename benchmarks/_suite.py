"""Run the whole suite and assemble one report (the JSON written by the CLI)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from benchmarks._config import SuiteConfig
from benchmarks._frames import w3_frames
from benchmarks._machine import machine_info
from benchmarks._resources import cold_start, large_workload, peak_memory
from benchmarks._workloads import universe, w1, w2, w3


def _quiet(_: str) -> None:
    return None


def run_suite(cfg: SuiteConfig | None = None, log: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Check, then time, every configured workload; measure memory and cold start.

    Returns the report dictionary (see ``benchmarks/README.md`` for its fields). The
    checks come first for each engine; a failed check is recorded (``all_checks_passed``
    false), never hidden, and the timings of that workload are still reported.
    """
    cfg = SuiteConfig() if cfg is None else cfg
    log = _quiet if log is None else log
    started = time.perf_counter()
    report: dict[str, Any] = {
        "suite": "alfred-benchmarks",
        "format_version": 1,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": cfg.mode,
        "config": cfg.to_dict(),
        "machine": machine_info(),
        "workloads": [],
    }
    if "W1" in cfg.workloads:
        report["workloads"].append(w1(cfg, log))
    if {"W2", "W3", "W3-frames"} & set(cfg.workloads):
        panel = universe(cfg)
        if "W2" in cfg.workloads:
            report["workloads"].append(w2(cfg, log, panel))
        if "W3" in cfg.workloads:
            report["workloads"].append(w3(cfg, log, panel))
        if "W3-frames" in cfg.workloads:
            report["workloads"].append(w3_frames(cfg, log, panel))
    for workload in ("W4", "W5"):
        if workload in cfg.workloads:
            log(f"{workload}: stages in a fresh process")
            report["workloads"].append(large_workload(workload, cfg))
    targets = [t for w in report["workloads"] for t in w["targets"]]
    if cfg.resources:
        log("peak memory of a W2 run (subprocesses)")
        report["memory"] = peak_memory(cfg, peer=cfg.peer_memory)
        log("cold start (subprocesses)")
        report["cold_start"] = cold_start()
        targets += [report["memory"]["target"], report["cold_start"]["target"]]
    report["targets"] = targets
    report["all_checks_passed"] = all(w["checks_passed"] for w in report["workloads"])
    report["all_targets_met"] = all(t["met"] for t in targets)
    report["machine"]["load_average_end"] = machine_info()["load_average_1_5_15"]
    report["total_wall_s"] = time.perf_counter() - started
    return report
