"""``alfred train-rl SCENARIO``: train the manager over seeds, then compare it on the test span.

The scenario is an ordinary one (data, analysts, costs, leverage, strategies) plus an
``rl:`` section (:class:`~portfolio.RLSpec`). Analysts are fit up to ``train_until`` as
in ``alfred run``, so the manager never trains on in-sample analyst output when the
scenario sets it. The manager and the scenario's other strategies run under the same
costs, fill model and leverage limits. A run folder holds the resolved scenario, one
folder per seed, and ``evaluation/`` (per-run metrics, mean/spread per strategy, a
Markdown report, equity curves), written last and in one move.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from pydantic import ValidationError

from alfred.outputs import (
    is_run_folder,
    mark,
    pack_folder,
    staged_folder,
    target_dir,
    unpack_folder,
)
from alfred.scenario import Scenario, StrategySpec, refuse_network_targets, scenario_to_dict
from engine.errors import ConfigError, RunError
from engine.settings import SimulationSettings
from portfolio import REPORTED_METRICS, Comparison, RLSpec, compare

ProgressFn = Callable[[str, int, int], None]
DEFAULT_BASELINES = ("topk_long_short", "equal_weight", "buy_and_hold")


class RLScenario(Scenario):
    """A scenario with its ``rl:`` section (until the scenario schema has one itself)."""

    rl: RLSpec


def parse_rl_scenario(text: str, *, source: str = "<string>",
                      base_dir: Path | None = None, trust: bool = False) -> RLScenario:
    """Validate scenario YAML with an ``rl:`` section; errors name the key and line."""
    from alfred._scenario_errors import pydantic_to_config_error
    from alfred._yaml import load_yaml

    raw, root = load_yaml(text, source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of keys (name:, data:, rl: ...)")
    if "rl" not in raw:
        raise ConfigError(f"{source} has no 'rl:' section; `alfred train-rl` needs one (see "
                          "scenarios/rl_portfolio.yaml)")
    if not trust:
        refuse_network_targets(raw, root, source)
    raw = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        scenario = RLScenario.model_validate(raw)
    except ValidationError as exc:
        raise pydantic_to_config_error(exc, raw, text, source, RLScenario) from None
    return scenario.located(base_dir, source)


def load_rl_scenario(path: str | os.PathLike[str], *, trust: bool = False) -> RLScenario:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"scenario file {path} not found; pass the path of a .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read scenario file {path}: {exc}") from None
    return parse_rl_scenario(text, source=str(path), base_dir=path.resolve().parent,
                             trust=trust)


def engine_settings(scenario: Scenario) -> SimulationSettings:
    """The scenario's costs, capital, fill and limits, as the env and backtests use them."""
    if scenario.fill == "same_close":
        raise ConfigError(f"{scenario.source}: fill: same_close is not offered to the RL "
                          "manager (it would act on the close it trades at); use next_open "
                          "or next_close")
    return scenario.simulation


def baseline_specs(scenario: Scenario) -> list[StrategySpec]:
    """The strategies the manager is compared with: the scenario's others, else the classics."""
    specs = [s for s in scenario.strategy_list if s.name != "rl"]
    return specs or [StrategySpec(name=name) for name in DEFAULT_BASELINES]


@dataclass(frozen=True)
class RLRunSummary:
    name: str
    run_dir: Path
    seeds: tuple  # SeedResult per seed
    comparison: Comparison
    elapsed_s: float


def train_rl_scenario(
    scenario: str | os.PathLike[str] | RLScenario,
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    seeds: list[int] | None = None,
    total_timesteps: int | None = None,
    progress: ProgressFn | None = None,
    progress_bar: bool = False,
    executor: Any = None,
    workers: int | str | None = None,
) -> RLRunSummary:
    """Train ``rl.seeds`` agents, evaluate each on the test span against the baselines.

    Every input is checked (schema, data, signal coverage of the spans, algorithm and
    hyperparameters, baseline strategies) before anything is written.
    """
    from alfred.components import get_strategy
    from alfred.inputs import load_inputs
    from portfolio import build_market

    started = time.perf_counter()
    started_at = datetime.now(UTC)
    sc = scenario if isinstance(scenario, RLScenario) else load_rl_scenario(scenario)
    spec = sc.rl
    if seeds is not None or total_timesteps is not None:
        agent = spec.agent if total_timesteps is None else spec.agent.model_copy(
            update={"total_timesteps": int(total_timesteps)})
        spec = spec.model_copy(update={"agent": agent, "seeds": list(seeds or spec.seeds)})
    settings = engine_settings(sc)
    baselines = []
    for spec_b in baseline_specs(sc):
        try:
            baselines.append((spec_b.run_label, get_strategy(spec_b.name, **spec_b.config)))
        except ConfigError as exc:
            raise ConfigError(f"{sc.source}: strategy {spec_b.run_label!r}: {exc}") from None
    report = progress or (lambda step, done, total: None)
    total = 2 + len(spec.seeds) + 1
    report("loading data and running analysts", 0, total)
    inputs = load_inputs(sc)
    market = build_market(inputs.panel, inputs.signals, spec.env)
    envs = _check_spans(sc, spec, market, settings)
    final = _target(sc, out, resume, overwrite, started_at)
    # A new run trains in a staging folder beside the target and replaces an old run only
    # once it is complete; a resumed run continues in place.
    with contextlib.ExitStack() as stack:
        target = final if resume else stack.enter_context(
            staged_folder(final, overwrite, kind="train-rl"))
        return _train_into(sc, spec, inputs, market, envs, settings, baselines, target, final,
                           resume, executor, workers, progress_bar, report, total, started,
                           started_at)


def _train_into(sc, spec, inputs, market, envs, settings, baselines, target: Path, final: Path,
                resume: bool, executor, workers, progress_bar, report, total: int,
                started: float, started_at: datetime) -> RLRunSummary:
    """Train every seed into ``target`` and evaluate; the summary names ``final``."""
    target.mkdir(parents=True, exist_ok=True)
    _write_config(target / "config.yaml", sc, spec, inputs.source, started_at)
    from engine.executor import Shared, Task, make_executor

    val = None if spec.validation is None else (spec.validation.start, spec.validation.end)
    shared = Shared(market)  # sent to a Ray cluster once, whatever the number of seeds
    tasks = []
    for seed in spec.seeds:
        folder = target / f"seed_{seed}"
        again = resume and _has_progress(folder)
        tasks.append(Task(key=f"seed_{seed}", fn=train_seed, config={"seed": seed}, kwargs=dict(
            market=shared, agent=spec.agent, seed=seed, train=(spec.train.start, spec.train.end),
            validation=val, settings=settings, directory=folder.name,
            files=pack_folder(folder) if again else {},
            eval_freq=spec.eval_freq, n_eval_episodes=spec.n_eval_episodes,
            checkpoint_freq=spec.checkpoint_freq, resume=again, progress_bar=progress_bar)))
    # Seeds are independent, so any executor gives the same policies; inline by default
    # (one process, the SB3 progress bar works), processes or Ray when asked.
    ex = make_executor(executor if executor is not None else (
        sc.executor if "executor" in sc.model_fields_set else "inline"), workers=workers)
    results = []
    with ex:
        for i, result in enumerate(ex.imap(tasks)):
            if not result.ok:
                raise RunError(f"{result.describe_failure()}\n{result.error}")
            results.append(_land_seed(result.value, target))
            report(f"trained seed {results[-1].seed} ({spec.agent.algorithm}, "
                   f"{spec.agent.total_timesteps} timesteps)", 2 + i, total)
    results.sort(key=lambda r: spec.seeds.index(r.seed))
    report("evaluating on the test span", 1 + len(spec.seeds), total)
    comparison, curves = _evaluate(results, spec.agent, envs["test"], baselines,
                                   inputs.signals, settings)
    _write_evaluation(target, comparison, curves)
    from alfred.rebuild import write_train_rl_report

    write_train_rl_report(target)  # learning curves, seeds, test span vs baselines
    report("done", total, total)
    results = [dataclasses.replace(
        r, directory=None if r.directory is None else final / r.directory.name,
        model_path=None if r.model_path is None else final / r.model_path.relative_to(target))
        for r in results]
    return RLRunSummary(name=sc.name, run_dir=final, seeds=tuple(results),
                        comparison=comparison, elapsed_s=time.perf_counter() - started)


def train_seed(*, directory: str, files: dict[str, bytes], **options: Any) -> dict[str, Any]:
    """One seed's training as an executor task, in a temporary folder of the worker's own
    (seeded with ``files``, the driver's seed folder when resuming). Returns the result
    without the in-memory agent (an SB3 model does not travel well) and the seed folder
    as data, which :func:`_land_seed` writes on the driver: no worker touches its disk."""
    import tempfile

    from engine.executor import apply_worker_threads
    from portfolio import train_policy

    apply_worker_threads()
    with tempfile.TemporaryDirectory(prefix="alfred-seed-") as scratch:
        folder = Path(scratch) / directory
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        result = train_policy(directory=folder, **options)
        model = (None if result.model_path is None
                 else result.model_path.relative_to(folder).as_posix())
        return {"result": dataclasses.replace(result, model=None, directory=None,
                                              model_path=None),
                "directory": directory, "model_path": model, "files": pack_folder(folder)}


def _land_seed(value: dict[str, Any], target: Path):
    """Write a seed's folder (returned as data) into the run folder; its SeedResult."""
    folder = target / value["directory"]
    if folder.is_dir() and not is_run_folder(folder):
        mark(folder, "train-rl-seed")  # a seed folder of this very run, written before
    unpack_folder(value["files"], folder, overwrite=True, kind="train-rl-seed")
    path = None if value["model_path"] is None else folder / value["model_path"]
    return dataclasses.replace(value["result"], directory=folder, model_path=path)


def _has_progress(folder: Path) -> bool:
    """A seed folder a resume can continue (a seed not started yet trains from scratch)."""
    return (folder / "final_model.zip").is_file() or any(
        (folder / "checkpoints").glob("step_*.zip"))


def _check_spans(sc: RLScenario, spec: RLSpec, market, settings: SimulationSettings) -> dict:
    """Build one env per span now, so a span outside the data or the signals fails early."""
    from portfolio import PortfolioEnv, build_model, check_hyperparameters

    envs = {}
    spans = [("train", spec.train, "config"), ("validation", spec.validation, None),
             ("test", spec.test, None)]
    ts = market.panel.ts
    first_day = ts[0].astype("datetime64[D]")
    last_day = ts[-1].astype("datetime64[D]")
    week = np.timedelta64(7, "D")
    for name, span, length in spans:
        if span is None:
            continue
        # a span reaching a week past the bars is a mistake, not a weekend or a holiday
        start, end = np.datetime64(span.start, "D"), np.datetime64(span.end, "D")
        if start < first_day - week or end > last_day + week:
            after = f" (the first bar after train_until {sc.train_until})" if (
                sc.train_until is not None and start < first_day) else ""
            raise ConfigError(
                f"{sc.source}: rl.{name} ({span.start}..{span.end}) reaches outside the "
                f"scenario's bars, {first_day}{after} to {last_day}; move it inside, or "
                "widen data.start/data.end")
        try:
            envs[name] = PortfolioEnv(market, start=span.start, end=span.end, settings=settings,
                                      episode_length=length, record_weights=name == "test")
        except (ConfigError, ValueError) as exc:
            raise type(exc)(f"{sc.source}: rl.{name} ({span.start}..{span.end}): {exc}") from None
    check_hyperparameters(spec.agent)
    build_model(spec.agent, envs["train"], seed=0, inference_only=True)  # policy_kwargs etc.
    return envs


def _target(sc: RLScenario, out, resume: bool, overwrite: bool, started_at: datetime) -> Path:
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out: the run folder to continue")
        target = Path(out).expanduser().resolve()
        if not target.is_dir():
            raise ConfigError(f"cannot resume: {target} is not a run folder")
        return target
    protect = (sc.base_dir,) if sc.source != "<string>" else ()
    try:
        return target_dir(out, sc.name, started_at, overwrite=overwrite, protect=protect,
                          prefix="train-rl-")
    except ConfigError as exc:
        if "already exists" in str(exc):
            raise ConfigError(f"{exc}; or --resume to continue it") from None
        raise


def _write_config(path: Path, sc: RLScenario, spec: RLSpec, source: str,
                  started_at: datetime) -> None:
    resolved = scenario_to_dict(sc)
    resolved["rl"] = spec.model_dump(mode="json")
    resolved["data"]["source"] = source
    resolved["output"] = {"directory": None}
    header = (f"# Resolved RL scenario {sc.name!r} as trained at "
              f"{started_at.isoformat(timespec='seconds')}; rerun with "
              f"`alfred train-rl {path.name}`.\n")
    path.write_text(header + yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")


def _evaluate(results, agent, test_env, baselines, signals, settings: SimulationSettings):
    """Each seed's kept policy (best on validation, else final) and every baseline."""
    from engine.backtest import run_backtest
    from portfolio import (
        PolicyFiles,
        backtest_rollout,
        build_model,
        load_weights,
        model_policy,
        slice_panel,
    )

    rows = []
    curves = []
    for res in results:
        model = res.model
        # the best validation model, or one trained in another process: load its weights
        if res.model_path is not None and (model is None
                                           or res.model_path.name == "best_model.zip"):
            model = build_model(agent, test_env, seed=res.seed, inference_only=True)
            load_weights(model, PolicyFiles(res.model_path, res.directory / "policy.json"),
                         with_extras=False)
        result = backtest_rollout(test_env, model_policy(model))
        rows.append({"strategy": "rl", "seed": res.seed, **metrics_row(result)})
        curves.append(_curve(result, "rl", res.seed))
    panel = slice_panel(test_env.panel, test_env.first_bar, test_env.last_bar)
    test_signals = None
    if signals is not None:
        first, last = (pl.Series(panel.ts[[0, -1]]).cast(pl.Datetime("ns")).to_list())
        ts = pl.col("ts").cast(pl.Datetime("ns"))
        test_signals = signals.filter((ts >= first) & (ts <= last))
    for label, strategy in baselines:
        result = run_backtest(panel, test_signals, strategy=strategy,
                              **settings.backtest_kwargs())
        rows.append({"strategy": label, "seed": None, **metrics_row(result)})
        curves.append(_curve(result, label, None))
    return compare(rows), pl.concat(curves)


def _curve(result, strategy: str, seed: int | None) -> pl.DataFrame:
    eq = result.equity.select("ts", "equity")
    return eq.with_columns(pl.lit(strategy).alias("strategy"),
                           pl.lit(seed, dtype=pl.Int64).alias("seed"))


def _write_evaluation(target: Path, comparison: Comparison, curves: pl.DataFrame) -> None:
    import json

    staging = target / f".evaluation.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        comparison.runs.write_csv(staging / "runs.csv")
        comparison.summary.write_csv(staging / "summary.csv")
        from reports import to_jsonable

        (staging / "summary.json").write_text(
            json.dumps(to_jsonable(comparison.summary.to_dicts()), indent=2) + "\n",
            encoding="utf-8")
        (staging / "report.md").write_text(comparison.to_markdown(), encoding="utf-8")
        curves.write_parquet(staging / "equity.parquet")
        final = target / "evaluation"
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def metrics_row(result) -> dict[str, float]:
    """The comparison metrics of one BacktestResult (definitions: reports.metrics)."""
    from reports import compute_metrics

    m = compute_metrics(result.returns, result.periods_per_year, trades=result.trades,
                        equity=result.equity)
    return {column: float(m[name]) for name, column in REPORTED_METRICS.items()}
