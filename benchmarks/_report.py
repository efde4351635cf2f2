"""The console table and the JSON files of a suite run."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _num(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if abs(x) >= 1e6:
        return f"{x / 1e6:,.2f}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:,.1f}k"
    return f"{x:.{digits}g}"


def _seconds(x: float) -> str:
    return f"{x * 1e3:.2f} ms" if x < 1 else f"{x:.2f} s"


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    m = report["machine"]
    console.print(f"[bold]Alfred benchmarks[/bold] ({report['mode']}) on {m['cpu']}, "
                  f"{m['cores_usable']} usable cores, Python {m['python']}, load "
                  f"{', '.join(f'{v:.2f}' for v in m['load_average_1_5_15'] or [])}")

    table = Table(title="Throughput (best of N after a warm-up call)")
    for col in ("workload", "engine", "bars x assets", "first call", "best", "median", "N",
                "asset-bars/s", "ours / peer", "checks vs ours"):
        table.add_column(col, justify="left" if col in ("workload", "engine") else "right")
    for w in report["workloads"]:
        checks_by_peer: dict[str, list[dict[str, Any]]] = {}
        for c in w["checks"]:
            checks_by_peer.setdefault(c["peer"], []).append(c)
        for name, row in w["engines"].items():
            speed = w["speedups"].get(name)
            peer_checks = checks_by_peer.get(name, [])
            if peer_checks:
                # counts are exact checks (tolerance 0); show the worst curve difference
                worst = max((c["max_rel_diff"] for c in peer_checks if c["tolerance"] > 0),
                            default=0.0)
                ok = all(c["passed"] for c in peer_checks)
                check = f"{'[green]equal' if ok else '[red]DIFFER'}[/] ({worst:.1e})"
            else:
                check = "reference" if name == "alfred" else "-"
            table.add_row(w["id"], name, f"{w['n_bars']} x {w['n_assets']}",
                          _seconds(row["first_s"]), _seconds(row["best_s"]),
                          _seconds(row["median_s"]), str(row["repeats"]),
                          _num(row["asset_bars_per_s"]),
                          "" if speed is None else f"{speed:,.1f}x", check)
    console.print(table)

    for w in report["workloads"]:
        b = w.get("breakdown")
        if b:
            console.print(f"{w['id']} ours: kernel {_seconds(b['kernel_s'])} "
                          f"({b['kernel_share']:.0%}), Python layer {_seconds(b['python_s'])}")
    for w in report["workloads"]:
        if w.get("stages"):
            stages = Table(title=f"{w['id']} stages ({w['n_bars']:,} bars x {w['n_assets']:,} "
                                 "assets), each run once, peak RSS during the stage")
            for col in ("stage", "time", "peak RSS"):
                stages.add_column(col, justify="left" if col == "stage" else "right")
            for st in w["stages"]:
                stages.add_row(st["stage"], _seconds(st["seconds"]),
                               f"{(st['peak_rss_mb'] or 0):,.0f} MB")
            console.print(stages)
        if "frames_over_panel" in w:
            console.print(f"{w['id']}: the frame call costs {w['frames_over_panel']:.2f}x the "
                          f"panel+plan call ({w['frames_no_cache_over_panel']:.2f}x with the "
                          "bars aligned afresh every call)")
    mem = report.get("memory")
    if mem:
        o = mem["alfred"]
        line = (f"W2 peak memory, ours: {o['peak_mb']:.0f} MB absolute, "
                f"{o['over_baseline_mb']:.0f} MB over the baseline after imports "
                f"(result arrays {o['result_arrays_mb']:.0f} MB)")
        if "vectorbt" in mem:
            v = mem["vectorbt"]
            line += (f"; vectorbt: {v['peak_mb']:.0f} MB absolute, "
                     f"{v['over_baseline_mb']:.0f} MB over its baseline")
        console.print(line)
    cold = report.get("cold_start")
    if cold:
        console.print(f"cold start (median of {cold['runs']}): import engine "
                      f"{_seconds(cold['import_s']['median'])} + first small backtest "
                      f"{_seconds(cold['first_call_s']['median'])} = "
                      f"{_seconds(cold['total_s']['median'])}")

    targets = Table(title="Targets")
    for col in ("what", "target", "measured", "met"):
        targets.add_column(col)
    for t in report["targets"]:
        measured = t["measured"]
        shown = f"{measured:,.1f}x" if t["target"].endswith("x") else (
            f"{measured:,.0f} MB" if "MB" in t["target"] else _seconds(measured))
        targets.add_row(t["what"], t["target"], shown,
                        "[green]yes[/]" if t["met"] else "[red]NO[/]")
    console.print(targets)
    if not report["all_checks_passed"]:
        console.print("[red bold]Some equality checks failed: the timings of those "
                      "workloads compare different answers.[/]")
        for w in report["workloads"]:
            for c in w["checks"]:
                if not c["passed"]:
                    console.print(f"  {w['id']} vs {c['peer']} ({c['what']}): max rel diff "
                                  f"{c['max_rel_diff']:.3g} > {c['tolerance']:g}, first at bar "
                                  f"{c['first_bad_bar']} {c['note']}")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(report: dict[str, Any], out_dir: Path | None = None) -> list[Path]:
    """``latest.json`` and a timestamped copy; returns both paths."""
    out_dir = DEFAULT_RESULTS_DIR if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, sort_keys=False) + "\n"
    stamp = report["created_utc"].replace(":", "-")
    paths = [out_dir / f"{stamp}_{report['mode']}.json", out_dir / "latest.json"]
    for path in paths:
        _write_atomic(path, text)
    return paths


def markdown_summary(report: dict[str, Any]) -> str:
    """The figures as Markdown tables (what ``benchmarks/README.md`` shows)."""
    m = report["machine"]
    load = ", ".join(f"{v:.1f}" for v in m.get("load_average_1_5_15") or [])
    lines = [f"Run {report['created_utc']} ({report['mode']}), {m['cpu']}, "
             f"{m['cores_usable']} cores, Python {m['python']}, numba "
             f"{m['packages'].get('numba')}, vectorbt {m['packages'].get('vectorbt')}, "
             f"backtrader {m['packages'].get('backtrader')}; load average at start {load}.",
             "",
             "| workload | engine | bars x assets | first call | best | median | N | "
             "asset-bars/s | ours faster by | equal to ours (max rel. diff) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for w in report["workloads"]:
        for name, row in w["engines"].items():
            checks = [c for c in w["checks"] if c["peer"] == name and c["tolerance"] > 0]
            verdict = "reference" if name == "alfred" else (
                ("yes" if all(c["passed"] for c in checks) else "NO")
                + f" ({max(c['max_rel_diff'] for c in checks):.1e})" if checks else "-")
            speed = w["speedups"].get(name)
            lines.append(
                f"| {w['id']} | {name} | {w['n_bars']} x {w['n_assets']} | "
                f"{_seconds(row['first_s'])} | {_seconds(row['best_s'])} | "
                f"{_seconds(row['median_s'])} | {row['repeats']} | "
                f"{_num(row['asset_bars_per_s'])} | "
                f"{'' if speed is None else f'{speed:,.1f}x'} | {verdict} |")
    lines += ["", "| target | goal | measured | met |", "|---|---|---|---|"]
    for t in report["targets"]:
        measured = t["measured"]
        shown = f"{measured:,.1f}x" if t["target"].endswith("x") else (
            f"{measured:,.0f} MB" if "MB" in t["target"] else _seconds(measured))
        lines.append(f"| {t['what']} | {t['target']} | {shown} | "
                     f"{'yes' if t['met'] else 'NO'} |")
    for w in report["workloads"]:
        if "frames_over_panel" in w:
            lines += ["", f"{w['id']}: the frame call costs {w['frames_over_panel']:.2f}x the "
                          f"panel+plan call ({w['frames_no_cache_over_panel']:.2f}x with the "
                          "bars aligned afresh every call)."]
        if w.get("stages"):
            lines += ["", f"{w['id']} stages ({w['n_bars']:,} bars x {w['n_assets']:,} assets; "
                          "each run once; peak RSS during the stage, absolute):", "",
                      "| stage | time | peak RSS |", "|---|---|---|"]
            lines += [f"| {st['stage']} | {_seconds(st['seconds'])} | "
                      f"{(st['peak_rss_mb'] or 0):,.0f} MB |" for st in w["stages"]]
    mem, cold = report.get("memory"), report.get("cold_start")
    if mem:
        o = mem["alfred"]
        text = (f"W2 memory, ours: peak {o['peak_mb']:.0f} MB (after imports "
                f"{o['after_imports_mb']:.0f} MB, after a warm-up call {o['baseline_mb']:.0f} MB,"
                f" {o['over_baseline_mb']:.0f} MB over that; the result's arrays "
                f"{o['result_arrays_mb']:.0f} MB)")
        if "vectorbt" in mem:
            v = mem["vectorbt"]
            text += (f"; vectorbt: peak {v['peak_mb']:.0f} MB, {v['over_baseline_mb']:.0f} MB "
                     "over its baseline")
        lines += ["", text + "."]
    if cold:
        lines += ["", f"Cold start, median (best) of {cold['runs']} fresh processes: import "
                      f"{_seconds(cold['import_s']['median'])} "
                      f"({_seconds(cold['import_s']['best'])}) + first backtest "
                      f"{_seconds(cold['first_call_s']['median'])} "
                      f"({_seconds(cold['first_call_s']['best'])}) = "
                      f"{_seconds(cold['total_s']['median'])} "
                      f"({_seconds(cold['total_s']['best'])})."]
    return "\n".join(lines) + "\n"
