"""``alfred sweep``: run a scenario's sweep section through the executor."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from alfred.cli.common import (
    EXIT_FAILED,
    AddressOpt,
    ExecutorOpt,
    QuietOpt,
    TrustOpt,
    WorkersOpt,
    err_console,
    executor_override,
    exit_codes,
    out_console,
)

_SHOWN = ("sharpe", "dsr", "total_return", "benchmark_total_return", "max_drawdown",
          "win_rate_periods", "turnover")


def sweep_command(
    scenario: Annotated[str, typer.Argument(help="Scenario YAML with a sweep: section.",
                                            show_default=False)],
    out: Annotated[str | None, typer.Option("--out", "-o", help="Sweep folder (default "
                                            "runs/sweeps/<name>/<time>). An existing folder "
                                            "of the same sweep is resumed.")] = None,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    address: AddressOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Start over in an existing folder.")] = False,
    limit: Annotated[int | None, typer.Option(help="Run at most N unfinished variants.",
                                              min=1)] = None,
    top: Annotated[int, typer.Option(help="Rows of the summary to print.", min=1)] = 10,
    quiet: QuietOpt = False,
    trust_scenario: TrustOpt = False,
) -> None:
    """Run every variant of a scenario's sweep (grid or random), resumably, and rank them."""
    from alfred.scenario import load_scenario
    from alfred.sweep import run_sweep

    with exit_codes("interrupted; finished variants are kept: run the same command with the "
                    "same --out to resume"):
        loaded = load_scenario(scenario, trust=trust_scenario)
        spec = executor_override(loaded, executor, address)
        result = run_sweep(loaded, out, executor=spec, workers=workers, overwrite=overwrite,
                           progress=not quiet, limit=limit)
        _print(result, loaded.sweep.metric, top)
        if result.n_failed:
            for failure in result.failures[:5]:
                err_console().print(Text("failed: ", style="bold red")
                                    + Text(failure.describe_failure()))
            err_console().print(f"{result.n_failed} variant(s) failed; details in "
                                f"{result.out / 'failures.json'}. Rerun the same command to "
                                "retry them.")
            raise typer.Exit(EXIT_FAILED)


def _print(result, metric: str, top: int) -> None:
    summary = result.summary
    table = Table(title=f"sweep: {result.n_variants} variants, sorted by {metric}",
                  caption="dsr: deflated Sharpe ratio for the number of configurations tried")
    if summary.height:
        params = [c for c in summary.columns if "." in c]
        columns = ["variant", "strategy", *params,
                   *[c for c in (metric, *_SHOWN) if c in summary.columns]]
        columns = list(dict.fromkeys(columns))
        for column in columns:
            table.add_column(column.split(".")[-1] if "." in column else column,
                             justify="left" if column in ("variant", "strategy") else "right")
        for row in summary.head(top).iter_rows(named=True):
            table.add_row(*[_cell(row[c]) for c in columns])
    out_console().print(table)
    out_console().print(
        f"sweep folder: {result.out}  ({result.elapsed_s:.1f} s on {result.executor}; "
        f"{result.n_resumed} resumed, {result.n_failed} failed)")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)
