"""``alfred walkforward``: refit the analysts fold by fold and report the stitched OOS run."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from alfred.cli.common import (
    AddressOpt,
    ExecutorOpt,
    OverwriteOpt,
    QuietOpt,
    RunOutOpt,
    TrustOpt,
    WorkersOpt,
    executor_override,
    exit_codes,
    out_console,
)


def walkforward_command(
    scenario: Annotated[str, typer.Argument(help="Scenario YAML with a walkforward: section.",
                                            show_default=False)],
    out: RunOutOpt = None,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    trust_scenario: TrustOpt = False,
) -> None:
    """Walk-forward validation: fit on each training window, trade the next test window."""
    from alfred.scenario import load_scenario
    from alfred.walkforward import run_walkforward

    with exit_codes("interrupted; no run folder was written, but finished folds are kept: "
                    "run the same command with the same --out to resume"):
        loaded = load_scenario(scenario, trust=trust_scenario)
        spec = executor_override(loaded, executor, address)
        result = run_walkforward(loaded, out, executor=spec, workers=workers,
                                 overwrite=overwrite, progress=not quiet)
        _print(result)


_SUMMARY = (("sharpe", "sharpe", "{:.2f}"), ("max dd", "max_drawdown", "{:.1%}"),
            ("win", "win_rate_periods", "{:.1%}"), ("total", "total_return", "{:.1%}"),
            ("cagr", "cagr", "{:.1%}"))


def _print(result) -> None:
    """Per-fold table and the stitched summary, narrow enough for an 80-column terminal."""
    console = out_console()
    for strategy in result.strategies:
        table = Table(title=f"{result.name} / {strategy.label}: {len(result.folds)} folds")
        for column in ("fold", "test window", "return", "sharpe", "max dd", "win", "turn",
                       "bench"):
            table.add_column(column, justify="left" if column == "test window" else "right",
                             no_wrap=column == "test window")
        for row in strategy.folds.iter_rows(named=True):
            table.add_row(str(row["fold"]), _window(row["test_start"], row["test_end"]),
                          _fmt(row["total_return"], "{:.1%}"), _fmt(row["sharpe"], "{:.2f}"),
                          _fmt(row["max_drawdown"], "{:.1%}"),
                          _fmt(row["win_rate_periods"], "{:.1%}"),
                          _fmt(row["turnover"], "{:.0f}"),
                          _fmt(row.get("benchmark_return"), "{:.1%}"))
        console.print(table)
        summary = Table(title=f"{strategy.label}: stitched out-of-sample")
        summary.add_column("")
        for header, _, _ in _SUMMARY:
            summary.add_column(header, justify="right")
        rows = [("out-of-sample", strategy.metrics)]
        if strategy.in_sample is not None:
            rows.append(("in-sample fit", strategy.in_sample))
        if result.benchmark is not None:
            rows.append((result.benchmark_label or "benchmark", result.benchmark))
        for name, metrics in rows:
            summary.add_row(name, *[_fmt(metrics.get(key), fmt) for _, key, fmt in _SUMMARY])
        console.print(summary)
    console.print(f"run folder: {result.run_dir}  ({result.elapsed_s:.1f} s on "
                  f"{result.executor})")


def _window(start: str, end: str) -> str:
    return f"{start}..{end[5:] if end[:4] == start[:4] else end}"


def _fmt(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return fmt.format(value)
