"""``alfred stress``: the scenario's strategies on N synthetic markets, and the spread."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich import box
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

_SHOWN = (("sharpe", "sharpe", "{:.2f}"), ("max_drawdown", "max dd", "{:.1%}"),
          ("cagr", "cagr", "{:.1%}"))


def stress_command(
    scenario: Annotated[str, typer.Argument(help="Scenario YAML with a stress: section.",
                                            show_default=False)],
    out: RunOutOpt = None,
    paths: Annotated[int | None, typer.Option("--paths", help="Number of synthetic paths "
                                              "(default: stress.paths).")] = None,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    trust_scenario: TrustOpt = False,
) -> None:
    """Stress test: run the strategies on synthetic paths and report the spread of Sharpe,
    max drawdown and CAGR against an equal-weight benchmark."""
    from alfred.scenario import load_scenario
    from alfred.stress import run_stress

    with exit_codes("interrupted; no run folder was written, but finished paths are kept: "
                    "run the same command with the same --out to resume"):
        loaded = load_scenario(scenario, trust=trust_scenario)
        spec = executor_override(loaded, executor, address)
        result = run_stress(loaded, out, paths=paths, executor=spec, workers=workers,
                            overwrite=overwrite, progress=not quiet)
        print_result(result)


def print_result(result) -> None:
    """The quantile table of Sharpe, max drawdown and CAGR (80 columns wide at most)."""
    console = out_console()
    q = result.quantiles
    columns = [c for c in q.columns if c.startswith("q")] + ["mean"]
    how = "regime-switching" if result.generator == "regimes" else "block-bootstrap"
    table = Table(title=f"{result.name}: {result.n_paths} {how} paths of {result.days} bars",
                  box=box.SIMPLE_HEAD)
    table.add_column("strategy", overflow="fold", max_width=18)
    table.add_column("metric", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    labels = q["strategy"].unique(maintain_order=True).to_list()
    for label in labels:
        for metric, short, fmt in _SHOWN:
            row = q.filter((q["strategy"] == label) & (q["metric"] == metric)).row(0, named=True)
            table.add_row(label if metric == "sharpe" else "", short,
                          *[_fmt(row[c], fmt) for c in columns])
        if label != labels[-1]:
            table.add_section()
    console.print(table)
    for label, beats in result.beats().items():
        share = "" if beats["share"] is None else f" ({beats['share']:.0%})"
        console.print(f"{label} beat the benchmark's total return in {beats['beat']} of "
                      f"{beats['paths']} paths{share}")
    console.print(f"run folder: {result.run_dir}  ({result.elapsed_s:.1f} s on "
                  f"{result.executor})")


def _fmt(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return fmt.format(value)
