"""Wall time of the README's first command, warm: ``alfred run scenarios/quickstart.yaml``.

    python benchmarks/bench_quickstart.py                  # 5 timed runs of each variant
    python benchmarks/bench_quickstart.py --repeats 3 --json out.json

Each variant is run once untimed (numba's cache and the OS file cache warm), then
``--repeats`` times; the table shows the median and the fastest wall time, and the CPU
seconds of the main process and of everything it started (the report server and its
children), from ``os.wait4``. Variants: the full run (tear sheets and plots, as the
README), ``--no-tearsheet``, and a copy of the scenario with ``report.plots: false`` as
well (backtests, metrics and parquet files only). The machine's load average is printed
with every variant: on a shared machine the wall time moves with it, the CPU seconds much
less. Output folders are temporary; nothing is written into the checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "quickstart.yaml"


def _alfred() -> list[str]:
    """The ``alfred`` console script next to this interpreter, else ``python -m alfred``."""
    script = Path(sys.executable).with_name("alfred")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "alfred"]


def _one_run(args: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    err = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited with {process.returncode}:\n{err[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


def _variant(name: str, args: list[str], repeats: int) -> dict:
    _one_run(args)  # warm: numba cache loaded once, files in the OS cache
    runs = [_one_run(args) for _ in range(repeats)]
    walls = [r["wall_s"] for r in runs]
    return {"variant": name, "median_wall_s": statistics.median(walls),
            "best_wall_s": min(walls), "median_cpu_s": statistics.median(
                r["cpu_s"] for r in runs), "load": os.getloadavg()[0], "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    options = parser.parse_args(argv)
    if options.repeats < 1:
        parser.error("--repeats must be at least 1")
    scratch = Path(tempfile.mkdtemp(prefix="alfred-bench-quickstart-"))
    try:
        bare = yaml.safe_load(SCENARIO.read_text())
        bare["report"] = {"tearsheet": False, "plots": False}
        bare_path = scratch / "quickstart_no_views.yaml"
        bare_path.write_text(yaml.safe_dump(bare))
        out = str(scratch / "run")
        command = [*_alfred(), "run"]
        variants = [
            ("full (README)", [*command, str(SCENARIO), "--out", out, "--overwrite", "-q"]),
            ("--no-tearsheet", [*command, str(SCENARIO), "--out", out, "--overwrite", "-q",
                                "--no-tearsheet"]),
            ("no tear sheet, no plots", [*command, str(bare_path), "--out", out,
                                         "--overwrite", "-q"]),
        ]
        results = [_variant(name, args, options.repeats) for name, args in variants]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"quickstart, warm, {options.repeats} runs each, {os.cpu_count()} CPUs")
    print(f"{'variant':<26}{'median wall':>12}{'best':>8}{'CPU s':>8}{'load':>7}")
    for r in results:
        print(f"{r['variant']:<26}{r['median_wall_s']:>11.2f}s{r['best_wall_s']:>7.2f}s"
              f"{r['median_cpu_s']:>8.2f}{r['load']:>7.2f}")
    if options.json is not None:
        options.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
