"""``alfred train-rl SCENARIO``: the command function the ``alfred`` app mounts.

Mounted with ``app.command("train-rl")(train_rl)``. Exit codes follow ``alfred``'s: 0
success, 1 the run failed (traceback shown), 2 bad input (one message naming the file
and key, no traceback).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from alfred.cli.common import TrustOpt, exit_codes
from engine.errors import ConfigError


def _exit_codes() -> AbstractContextManager[None]:
    return exit_codes("interrupted; resume with --resume --out RUN_FOLDER")


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers separated by commas (e.g. 0,1,2), got "
                          f"{text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds needs distinct seeds, got {text!r}")
    return seeds


def train_rl(
    scenario: Annotated[str, typer.Argument(help="Scenario YAML with an 'rl:' section.",
                                            show_default=False)],
    out: Annotated[str | None, typer.Option("--out", "-o", help="Run folder (default: "
                                            "runs/<name>/train-rl-<time>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its newest "
                                         "checkpoints.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    seeds: Annotated[str | None, typer.Option(help="Override rl.seeds, e.g. 0,1,2.")] = None,
    timesteps: Annotated[int | None, typer.Option(help="Override rl.agent.total_timesteps.",
                                                  min=1)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    executor: Annotated[str | None, typer.Option(help="Train seeds in parallel: local or "
                                                 "ray (default inline, unless the scenario "
                                                 "has an executor: section).")] = None,
    workers: Annotated[str | None, typer.Option(help="Workers for local/ray: auto or N.")]
    = None,
    trust_scenario: TrustOpt = False,
) -> None:
    """Train the RL portfolio manager (PPO, A2C or SAC) over seeds; compare it on the test span.

    The policy scoring best on rl.validation is kept and run on rl.test next to the
    scenario's other strategies: Sharpe, drawdown, win rate, turnover, mean ± spread.
    """
    from alfred.train_rl import load_rl_scenario, train_rl_scenario

    with _exit_codes():
        console = Console(stderr=True)

        def progress(step: str, done: int, total: int) -> None:
            if not quiet:
                console.print(Text(f"[{done}/{total}] {step}", style="dim"))

        loaded = load_rl_scenario(scenario, trust=trust_scenario)
        summary = train_rl_scenario(loaded, out=out, resume=resume, overwrite=overwrite,
                                    seeds=_parse_seeds(seeds), total_timesteps=timesteps,
                                    progress=progress, progress_bar=not quiet,
                                    executor=executor or ("local" if workers else None),
                                    workers=workers)
        _print_summary(summary)


def _print_summary(summary) -> None:
    columns = ["sharpe", "max_drawdown", "win_rate", "turnover", "total_return"]
    table = Table(title=f"{summary.name}: test span, mean ± spread over seeds")
    table.add_column("strategy")
    table.add_column("n", justify="right")
    for column in columns:
        table.add_column(column, justify="right")
    for row in summary.comparison.summary.iter_rows(named=True):
        cells = []
        for column in columns:
            mean, std = row[f"{column}_mean"], row[f"{column}_std"]
            cells.append("n/a" if mean is None else f"{mean:.3f} ± {std or 0.0:.3f}")
        table.add_row(row["strategy"], str(row["n"]), *cells)
    console = Console()
    console.print(table)
    console.print(Text(f"run folder: {summary.run_dir}  ({summary.elapsed_s:.1f} s); "
                       f"TensorBoard: tensorboard --logdir {summary.run_dir}"))
