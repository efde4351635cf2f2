"""``python -m benchmarks`` / ``python benchmarks/run.py``: run, print, write JSON."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from benchmarks._config import WORKLOAD_IDS, SuiteConfig
from benchmarks._report import DEFAULT_RESULTS_DIR, markdown_summary, print_report, write_json
from benchmarks._suite import run_suite


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Alfred vs vectorbt and backtrader: equality checks first, then "
                    "throughput, peak memory and cold start.")
    p.add_argument("--quick", action="store_true",
                   help="small preset (last 2,520 bars, 100 assets): about a minute")
    p.add_argument("--workloads", nargs="+", choices=WORKLOAD_IDS, default=None,
                   help="run only these workloads (default: all)")
    p.add_argument("--no-backtrader", action="store_true", help="skip backtrader on W1")
    p.add_argument("--no-vbt-signals", action="store_true",
                   help="skip vectorbt on W1/W2 (its from_signals compiles in every process)")
    p.add_argument("--no-resources", action="store_true",
                   help="skip the peak-memory and cold-start subprocesses")
    p.add_argument("--bars", type=int, default=None, help="use the last N bundled bars")
    p.add_argument("--copies", type=int, default=None,
                   help="W2/W3 universe = 20 stocks x COPIES (default 25)")
    p.add_argument("--repeats", type=int, default=None, help="minimum timed repeats (5)")
    p.add_argument("--bt-budget", type=float, default=None,
                   help="seconds of timed backtrader runs (default 100; 20 with --quick)")
    p.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR,
                   help=f"results folder (default {DEFAULT_RESULTS_DIR})")
    p.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    p.add_argument("--markdown", type=Path, default=None, metavar="JSON",
                   help="run nothing: print the figures of a results JSON as Markdown")
    return p


def config_from_args(args: argparse.Namespace) -> SuiteConfig:
    cfg = SuiteConfig.quick() if args.quick else SuiteConfig()
    changes: dict[str, object] = {}
    if args.workloads:
        changes["workloads"] = tuple(args.workloads)
    if args.no_backtrader:
        changes["backtrader"] = False
    if args.no_vbt_signals:
        changes["vectorbt_signals"] = False
    if args.no_resources:
        changes["resources"] = False
    if args.bars is not None:
        changes["n_bars"] = args.bars
    if args.copies is not None:
        changes["copies"] = args.copies
    if args.repeats is not None:
        changes["min_repeats"] = args.repeats
    if args.bt_budget is not None:
        changes["peer_budget_s"] = args.bt_budget
    if changes:
        changes["mode"] = f"{cfg.mode}+custom"
    return replace(cfg, **changes)


def main(argv: list[str] | None = None) -> int:
    """Exit status 1 when an equality check failed (the timings then compare different
    answers); missed targets are reported, not errors."""
    args = _parser().parse_args(argv)
    if args.markdown is not None:
        print(markdown_summary(json.loads(args.markdown.read_text(encoding="utf-8"))), end="")
        return 0
    cfg = config_from_args(args)
    # wide enough for the table when the output goes to a file or a narrow pipe
    console = Console(width=max(Console().width, 132))
    with console.status("running benchmarks") as status:
        report = run_suite(cfg, log=lambda msg: status.update(msg))
    print_report(report, console)
    if not args.no_write:
        for path in write_json(report, args.out):
            console.print(f"wrote {path}")
    console.print(f"total {report['total_wall_s']:.0f} s")
    return 0 if report["all_checks_passed"] else 1
