"""Run a scenario end to end: data -> analysts -> strategies -> engine -> report files.

``run_scenario`` is what ``alfred run`` calls. Its contract with the file system is the
part users rely on most: a run folder either holds a complete result or does not exist.
Everything is written into a hidden temporary folder next to the target and renamed
into place only after the last file is written, so a crash, a bad strategy setting
found half-way or Ctrl-C never leaves a folder that looks like a finished run.

Each strategy runs twice on the same panel and signals: with the scenario's costs, and
with ``Costs.zero()`` for the "without costs" figures, so the cost drag is measured
rather than guessed.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alfred._callable import make_callable
from alfred.fingerprint import make_fingerprint
from alfred.inputs import ScenarioInputs, build_analysts, load_inputs
from alfred.outputs import (
    DISK_FULL,
    make_parents,
    mark,
    output_error,
    publish,
    remove_stale_staging,
    target_dir,
)
from alfred.report_jobs import ComparisonJob, ReportJob, ReportWriter
from alfred.scenario import Scenario, StrategySpec, load_scenario, scenario_to_dict
from alfred.training_report import write_training
from engine.costs import Costs
from engine.errors import ConfigError, DataError

# progress(step, done, total): a description of the step starting now and how many of
# ``total`` steps are finished.
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class StrategyRun:
    """One strategy's result in a scenario run (headline figures; the rest is on disk)."""

    label: str
    strategy: str
    run_dir: Path
    final_equity: float
    total_return: float  # with costs
    total_return_without_costs: float
    n_trades: int  # every round trip: n_closed_trades + n_open_trades
    metrics: dict[str, Any] = field(default_factory=dict)  # metrics.json, when written
    n_closed_trades: int = 0  # round trips closed by the last bar (metrics' n_trades)
    n_open_trades: int = 0  # positions still open at the last bar


@dataclass(frozen=True)
class RunSummary:
    """What ``alfred run`` prints: where the run went and the headline figures."""

    name: str
    run_dir: Path
    runs: tuple[StrategyRun, ...]
    benchmark: str | None
    benchmark_return: float | None  # total over the backtest period
    period: tuple[datetime, datetime]
    n_bars: int
    n_assets: int
    elapsed_s: float
    warnings: tuple[str, ...] = ()
    # caveats shown with the numbers (data survivorship, price-only benchmark, random
    # weights, pretraining period); also in every report file of the run
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScenarioCheck:
    """What ``validate_scenario`` found: the scenario is runnable on this data."""

    scenario: Scenario
    source: str
    period: tuple[datetime, datetime]
    n_bars: int
    n_assets: int
    strategies: tuple[str, ...]
    benchmark: str | None
    warnings: tuple[str, ...] = ()
    fitted: bool = False  # the analysts were fit and run (validate --fit)
    plans_checked: bool = True  # every strategy planned on the data (and signals)


def validate_scenario(scenario: str | os.PathLike[str] | dict[str, Any] | Scenario,
                      *, fit: bool = False, progress: ProgressFn | None = None
                      ) -> ScenarioCheck:
    """What ``run_scenario`` checks before it simulates, without simulating.

    Always: schema, component names and settings (strategies' and analysts' configs),
    data source, universe, period and benchmark; each strategy's plan when the scenario
    has no analysts (so "k larger than the universe" is caught here too). ``fit=True``
    also fits and runs the analysts and checks every strategy's plan on their signals
    (a full dry run: as slow as the run's analyst stage). Nothing is written.
    """
    scenario = as_scenario(scenario)
    report = progress or (lambda step, done, total: None)
    plans = fit or not scenario.analysts
    total = 3 + (1 if fit and scenario.analysts else 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        report("checking strategies and analysts", 0, total)
        strategies = _build_strategies(scenario)
        build_analysts(scenario)
        report("loading data and benchmark" + (", fitting and running analysts"
                                               if fit and scenario.analysts else ""), 1, total)
        inputs = load_inputs(scenario, analysts=fit)
        done = total - 1
        if plans:
            report("checking strategy plans", done, total)
            for i, (spec, strategy) in enumerate(zip(scenario.strategy_list, strategies,
                                                     strict=True)):
                with _located(scenario, i, spec):
                    strategy.plan(inputs.panel, inputs.signals)
        report("done", total, total)
    return ScenarioCheck(
        fitted=fit and bool(scenario.analysts), plans_checked=plans,
        scenario=scenario,
        source=inputs.source,
        period=_period(inputs),
        n_bars=inputs.panel.n_bars,
        n_assets=inputs.panel.n_assets,
        strategies=tuple(s.run_label for s in scenario.strategy_list),
        benchmark=inputs.benchmark_label,
        warnings=_messages(caught),
    )


def run_scenario(
    scenario: str | os.PathLike[str] | dict[str, Any] | Scenario,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> RunSummary:
    """Run every strategy of a scenario and write its run folder.

    ``out`` overrides ``output.directory``; by default the run goes to
    ``runs/<name>/<UTC timestamp>`` under the working directory. An existing folder is a
    ConfigError unless ``overwrite``. With one strategy the run folder holds its report;
    with several, one sub-folder per strategy label plus a comparison at the top.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    scenario = as_scenario(scenario)
    specs = scenario.strategy_list
    step = _Steps(progress, 2 + 3 * len(specs) + (1 if len(specs) > 1 else 0))

    strategies = _build_strategies(scenario)
    build_analysts(scenario)
    target = _target_dir(scenario, out, overwrite, started_at)

    # parallel report workers start now: they import while the data loads (report_jobs)
    writer = ReportWriter(len(specs), scenario.report.tearsheet or scenario.report.plots)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        _seed(scenario.seed)
        step("loading data and running analysts")
        try:
            inputs = load_inputs(scenario)
            step.done()
            staging, created = _open_staging(target)
        except BaseException:
            writer.close()
            raise
        try:
            runs = _write_runs(scenario, inputs, strategies, staging, writer, step, started_at)
            step("finishing")
            publish(staging, target, overwrite)
        except BaseException as exc:
            writer.close()
            shutil.rmtree(staging, ignore_errors=True)
            for folder in reversed(created):  # e.g. runs/<name>/ made for this run only
                with contextlib.suppress(OSError):
                    folder.rmdir()
            if isinstance(exc, OSError) and exc.errno in DISK_FULL:
                raise output_error(exc, target) from None
            raise
    step.done()
    step("done")

    bench = inputs.benchmark
    return RunSummary(
        name=scenario.name,
        run_dir=target,
        runs=tuple(_strategy_run(spec, target / run_dir.relative_to(staging), result, gross)
                   for spec, run_dir, result, gross in runs),
        benchmark=inputs.benchmark_label,
        benchmark_return=(None if bench is None
                          else float(np.prod(1.0 + bench["return"].to_numpy()) - 1.0)),
        period=_period(inputs),
        n_bars=inputs.panel.n_bars,
        n_assets=inputs.panel.n_assets,
        elapsed_s=time.perf_counter() - started,
        warnings=tuple(dict.fromkeys((*_messages(caught), *writer.warnings))),
        notes=inputs.notes,
    )


class _Steps:
    """Progress of a run: ``step(description)`` announces, ``step.done()`` counts one."""

    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self._report = progress or (lambda step, done, total: None)
        self.total, self.count = total, 0

    def __call__(self, description: str) -> None:
        self._report(description, self.count, self.total)

    def done(self, description: str | None = None) -> None:
        self.count += 1
        if description is not None:
            self(description)


def _open_staging(target: Path) -> tuple[Path, list[Path]]:
    """The hidden staging folder beside ``target`` (marked as Alfred's) and the parents
    made for it."""
    try:
        created = make_parents(target.parent)
        remove_stale_staging(target.parent)
        staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
    except OSError as exc:
        raise output_error(exc, target) from None
    mark(staging, "run")
    return staging, created


def _write_runs(scenario: Scenario, inputs: ScenarioInputs, strategies: list, staging: Path,
                writer: ReportWriter, step: _Steps, started_at: datetime) -> list[tuple]:
    """Backtest every strategy with and without costs and write its folder (and the
    comparison of several) into ``staging``."""
    specs = scenario.strategy_list
    multi = len(specs) > 1
    fingerprint = make_fingerprint(bars=inputs.history, signals=inputs.signals,
                                   benchmark=inputs.benchmark, seed=scenario.seed,
                                   data_source=inputs.source, started_at=started_at)

    def written(job: ReportJob) -> None:
        step.done(f"{job.label}: report written")

    runs = []
    for i, (spec, strategy) in enumerate(zip(specs, strategies, strict=True)):
        run_dir = staging / spec.run_label if multi else staging
        run_dir.mkdir(exist_ok=True)
        label = spec.run_label
        step(f"{label}: backtest with costs")
        with _located(scenario, i, spec):
            result = _backtest(scenario, inputs, strategy, scenario.costs)
            step.done(f"{label}: backtest without costs")
            gross = _backtest(scenario, inputs, strategy, Costs.zero())
        step.done(f"{label}: writing report")
        _write_json(run_dir / "fingerprint.json", fingerprint)
        if inputs.analyst_summaries:
            _write_json(run_dir / "analysts.json", inputs.analyst_summaries)
            write_training(run_dir, inputs.analyst_summaries)
        _write_config(run_dir / "config.yaml", _single(scenario, spec), inputs, started_at)
        writer.submit(_report_job(run_dir, result, gross, inputs, scenario, label), written)
        runs.append((spec, run_dir, result, gross))
    if multi:  # while reports are written, so that it is not left for after them
        _write_json(staging / "fingerprint.json", fingerprint)
        _write_config(staging / "config.yaml", scenario, inputs, started_at)
        writer.wait()  # the comparison reads the strategies' reports
        step("writing comparison")
        writer.submit(ComparisonJob(staging, tuple(run_dir for _, run_dir, _, _ in runs)),
                      lambda job: step.done())
    writer.finish()
    return runs


def as_scenario(scenario: str | os.PathLike[str] | dict[str, Any] | Scenario) -> Scenario:
    """A Scenario from a YAML path, a plain dict (as the YAML would read; relative input
    paths resolve against the working directory) or a Scenario (returned as is)."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str | os.PathLike):
        return load_scenario(scenario)
    if isinstance(scenario, dict):
        return _scenario_from_dict(scenario)
    raise ConfigError(f"expected a scenario path, a dict or a Scenario, got "
                      f"{type(scenario).__name__}")


def _scenario_from_dict(tree: dict[str, Any]) -> Scenario:
    from pydantic import ValidationError

    from alfred._scenario_errors import pydantic_to_config_error

    source = "<dict>"
    raw = {k: v for k, v in tree.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise pydantic_to_config_error(exc, raw, "", source, Scenario) from None
    return scenario.located(Path.cwd(), source)


def _build_strategies(scenario: Scenario) -> list:
    from alfred.components import get_strategy

    built = []
    for i, spec in enumerate(scenario.strategy_list):
        with _located(scenario, i, spec):
            built.append(get_strategy(spec.name, **spec.config))
    return built


class _located:
    """Prefix a strategy's ConfigError/DataError with the scenario file and the key path."""

    def __init__(self, scenario: Scenario, index: int, spec: StrategySpec) -> None:
        if scenario.strategies is None:
            self.where = f"{scenario.source}: strategy ({spec.name})"
        else:
            self.where = f"{scenario.source}: strategies[{index}] ({spec.run_label})"

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, ConfigError | DataError) and not str(exc).startswith(self.where):
            raise type(exc)(f"{self.where}: {exc}") from None
        return False


def _backtest(scenario: Scenario, inputs: ScenarioInputs, strategy, costs: Costs):
    from engine.backtest import run_backtest

    return run_backtest(inputs.panel, inputs.signals, strategy=strategy,
                        settings=scenario.simulation.replace(costs=costs))


def _report_job(run_dir: Path, result, gross, inputs: ScenarioInputs, scenario: Scenario,
                label: str) -> ReportJob:
    from engine.sensitivity import cost_sensitivity

    title = scenario.name if scenario.strategies is None else f"{scenario.name}: {label}"
    # replayed here, where the kernels are loaded (a report worker would load them again)
    sensitivity = None if getattr(result, "plan", None) is None else cost_sensitivity(result)
    return ReportJob(label=label, run_dir=run_dir, result=result, gross=gross,
                     benchmark=inputs.benchmark, benchmark_label=inputs.benchmark_label,
                     title=title, tearsheet=scenario.report.tearsheet,
                     plots=scenario.report.plots, notes=inputs.notes,
                     cost_sensitivity=sensitivity)


def _seed(seed: int) -> None:
    """Seed the global generators analysts may use; CPU runs are then bit-reproducible.

    The legacy global numpy state is seeded on purpose: it is what third-party model code
    draws from when it is not handed a Generator.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002


def _target_dir(scenario: Scenario, out: str | os.PathLike[str] | None, overwrite: bool,
                started_at: datetime, prefix: str = "") -> Path:
    """The run folder (see :mod:`alfred.outputs` for the rule and what --overwrite may do)."""
    chosen = out if out is not None else scenario.output.directory
    protect = (scenario.base_dir,) if scenario.source != "<string>" else ()
    return target_dir(chosen, scenario.name, started_at, overwrite=overwrite,
                      protect=protect, prefix=prefix)


def _single(scenario: Scenario, spec: StrategySpec) -> Scenario:
    """The scenario as if it had only this strategy (what its sub-folder reproduces)."""
    if scenario.strategies is None:
        return scenario
    return scenario.model_copy(update={"strategy": spec, "strategies": None})


def _write_config(path: Path, scenario: Scenario, inputs: ScenarioInputs,
                  started_at: datetime) -> None:
    """The resolved scenario: defaults filled in, anchors expanded, input paths absolute.

    ``output`` is left empty so that running this file again writes a new run folder.
    """
    resolved = scenario_to_dict(scenario)
    resolved["data"]["source"] = inputs.source
    for analyst in resolved["analysts"]:
        path_value = analyst["config"].get("path")
        if isinstance(path_value, str):
            analyst["config"]["path"] = str(scenario.resolve_path(path_value))
    resolved["output"] = {"directory": None}
    header = (f"# Resolved scenario {scenario.name!r} as run at "
              f"{started_at.isoformat(timespec='seconds')}; rerun with `alfred run {path.name}`.\n")
    path.write_text(header + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")


def _write_json(path: Path, data: dict) -> None:
    import json

    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def _strategy_run(spec: StrategySpec, run_dir: Path, result, gross) -> StrategyRun:
    import json

    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    equity = result.equity["equity"]
    n_open = int(result.trades["is_open"].sum())
    return StrategyRun(
        label=spec.run_label,
        strategy=spec.name,
        run_dir=run_dir,
        final_equity=float(equity[-1]),
        total_return=float(equity[-1] / result.capital - 1.0),
        total_return_without_costs=float(gross.equity["equity"][-1] / gross.capital - 1.0),
        n_trades=int(result.trades.height),
        metrics=metrics,
        n_closed_trades=int(result.trades.height - n_open),
        n_open_trades=n_open,
    )


def _period(inputs: ScenarioInputs) -> tuple[datetime, datetime]:
    return inputs.bars["ts"].min(), inputs.bars["ts"].max()


def _messages(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for w in caught:
        seen.setdefault(f"{w.category.__name__}: {w.message}", None)
    return tuple(seen)


def run(scenario: str | os.PathLike[str] | dict[str, Any] | Scenario,
        out: str | os.PathLike[str] | None = None, *, overwrite: bool = False,
        progress: ProgressFn | None = None) -> Any:
    """``alfred.run(...)``: :func:`run_scenario` on a YAML path, a dict (as the YAML would
    read) or a Scenario, returning an :class:`alfred.api.RunResult` (per-strategy
    ``.metrics()``, ``.tearsheet(path)``, ``.plot()``; ``.summary`` a frame)."""
    from alfred.api import RunResult

    return RunResult.from_summary(run_scenario(as_scenario(scenario), out=out,
                                               overwrite=overwrite, progress=progress))


make_callable(__name__, "run")  # alfred.run(path) is run(path); see alfred._callable
