"""Fan-out scaling: a 40-variant sweep on 1 and 2 local workers, and Ray's per-task cost.

    python benchmarks/bench_executor.py                  # both parts
    python benchmarks/bench_executor.py --json out.json  # also write the figures

Part 1 runs ``scenarios/sweep_topk.yaml`` (40 variants: 20 stocks, 2010-2022, momentum
top-k, no tear sheets) with the local executor at 1 and 2 workers, and inline (this
process) for reference; each into a fresh folder, so nothing is resumed. The summaries of
all runs are checked equal before any time is reported.

Part 2 measures the cost of the executor itself: ``--tasks`` trivial tasks (return a
number: the builtin ``abs``) through local processes and a private local Ray instance, each with 2 workers.
Start-up (spawning workers, starting Ray) and per-task cost are timed separately: the
first batch pays the start-up, the second batch on the warm pool measures per-task cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sweep_scaling(scenario: Path) -> dict:
    from alfred.sweep import run_sweep

    figures, summaries = {}, {}
    for label, options in (("inline", {"executor": "inline"}),
                           ("local_1", {"executor": "local", "workers": 1}),
                           ("local_2", {"executor": "local", "workers": 2})):
        folder = Path(tempfile.mkdtemp(prefix=f"bench-sweep-{label}-"))
        try:
            started = time.perf_counter()
            result = run_sweep(scenario, folder / "sweep", progress=False, **options)
            figures[label] = time.perf_counter() - started
            if result.n_failed:
                raise SystemExit(f"{label}: {result.n_failed} variants failed")
            summaries[label] = result.summary.select("variant", "sharpe", "total_return")
            figures[f"{label}_variants"] = result.n_variants
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    first = summaries["inline"]
    figures["equal"] = all(s.equals(first) for s in summaries.values())
    figures["speedup_2_vs_1"] = figures["local_1"] / figures["local_2"]
    return figures


def executor_overhead(n_tasks: int) -> dict:
    from engine.executor import Task, make_executor

    tasks = [Task(key=f"t{i}", fn=abs, args=(i,)) for i in range(n_tasks)]
    again = [Task(key=f"u{i}", fn=abs, args=(i,)) for i in range(n_tasks)]
    figures = {}
    for label, spec in (("local", {"kind": "local", "workers": 2}),
                        ("ray", {"kind": "ray", "address": "local", "workers": 2})):
        with make_executor(spec) as ex:
            started = time.perf_counter()
            first = ex.run(tasks)
            cold = time.perf_counter() - started
            started = time.perf_counter()
            second = ex.run(again)
            warm = time.perf_counter() - started
        if not all(r.ok for r in first + second):
            raise SystemExit(f"{label}: a no-op task failed")
        figures[f"{label}_first_batch_s"] = cold
        figures[f"{label}_per_task_ms"] = warm / n_tasks * 1000
    figures["tasks"] = n_tasks
    figures["ray_vs_local_per_task"] = figures["ray_per_task_ms"] / figures["local_per_task_ms"]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "sweep_topk.yaml"))
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_at_start": os.getloadavg()}}
    if not args.skip_sweep:
        report["sweep"] = sweep_scaling(Path(args.scenario))
        s = report["sweep"]
        print(f"sweep of {s['local_1_variants']} variants: inline {s['inline']:.1f} s, "
              f"1 worker {s['local_1']:.1f} s, 2 workers {s['local_2']:.1f} s "
              f"(x{s['speedup_2_vs_1']:.2f}); summaries equal: {s['equal']}")
    report["overhead"] = executor_overhead(args.tasks)
    o = report["overhead"]
    print(f"{o['tasks']} no-op tasks, 2 workers: local {o['local_per_task_ms']:.2f} ms/task "
          f"(first batch incl. start-up {o['local_first_batch_s']:.2f} s); ray "
          f"{o['ray_per_task_ms']:.2f} ms/task (first batch {o['ray_first_batch_s']:.2f} s); "
          f"ray/local x{o['ray_vs_local_per_task']:.1f}")
    report["machine"]["load_at_end"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if report.get("sweep", {}).get("equal", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
