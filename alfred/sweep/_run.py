"""Running a sweep: variants fanned out through the executor, resumable, summarised.

Layout of a sweep folder::

    sweep.yaml        the resolved scenario, its SHA-256 and every variant's key and params
                      (a resumed sweep must match them; the path the scenario was given by
                      does not matter, nor do sweep.metric and sweep.order, which only rank)
    tasks.jsonl       one line per finished variant (the executor's journal; a last line
                      cut by a kill is repaired before anything is appended)
    runs/<key>/       a normal run folder per variant (``alfred report`` works on it)
    summary.csv/.parquet/.md   one row per variant and strategy, sorted by the metric
    failures.json     the variants that failed, if any (removed once a resume succeeds)
    .alfred.lock      held while a sweep runs: a second sweep on the folder exits 2

Summary files and failures.json are written atomically (a temporary file renamed into
place), so a kill never leaves half of one.

Selection bias is the point of the summary's last column: the best of 40 configurations
has a high Sharpe ratio by luck alone, so each row carries its deflated Sharpe ratio
(Bailey & López de Prado) for the number of configurations tried: the probability that
its true Sharpe is above the best one expected from that many unskilled trials.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from pydantic import ValidationError

from alfred.outputs import (
    MARKER,
    check_not_protected,
    check_replaceable,
    is_run_folder,
    mark,
    pack_folder,
    remove_stale_staging,
    unpack_folder,
)
from alfred.resume import (
    LOCK_NAME,
    atomic_path,
    folder_lock,
    scenario_identity,
    write_atomic,
)
from alfred.scenario import Scenario, scenario_to_dict
from alfred.sweep._spec import SweepSpec, expand, set_dotted
from engine.configs import did_you_mean
from engine.errors import ConfigError, DataError
from engine.executor import Shared, Task, TaskResult, make_executor

# Headline metrics kept in the summary and the journal (with costs; metrics.json has all).
SUMMARY_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar",
                   "volatility", "win_rate_periods", "win_rate_trades", "n_trades",
                   "turnover", "exposure", "psr", "benchmark_total_return", "alpha")
# Keys of the sweep section that only rank the summary: changing them keeps a folder resumable.
_RANKING_ONLY = ("sweep.metric", "sweep.order")


@dataclass(frozen=True)
class Variant:
    key: str
    params: dict[str, Any]
    scenario: dict[str, Any]  # plain data, validated


@dataclass(frozen=True)
class SweepResult:
    out: Path
    summary: pl.DataFrame
    n_variants: int
    n_failed: int
    n_resumed: int
    failures: tuple[TaskResult, ...]
    elapsed_s: float
    executor: str


def plan_sweep(scenario: Scenario, spec: SweepSpec | None = None) -> list[Variant]:
    """Every variant, validated (schema and component configs) before anything runs."""
    spec = spec or scenario.sweep
    if spec is None:
        raise ConfigError(f"{scenario.source} has no sweep: section; add one, e.g. "
                          "sweep: {params: {strategy.config.k: [2, 3, 4]}}")
    base = scenario_to_dict(scenario)
    base.pop("sweep", None)
    universe = None
    if spec.symbols == "all":
        universe = _universe(scenario)
    known = sorted(_dotted_keys(base))
    _check_metric(scenario, spec)
    variants = []
    for i, params in enumerate(expand(spec, universe)):
        tree = copy.deepcopy(base)
        for key, value in params.items():
            set_dotted(tree, key, value)
        if params.get("data.regime") is not None:  # a named regime brings its own period
            tree["data"].update(start=None, end=None)
        _validate(tree, scenario, params, known)
        digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode())
        variants.append(Variant(key=f"v{i:04d}-{digest.hexdigest()[:8]}", params=params,
                                scenario=tree))
    return variants


def run_sweep(scenario: str | os.PathLike[str] | Scenario, out: str | os.PathLike[str] |
              None = None, *, executor: Any = None, workers: int | str | None = None,
              overwrite: bool = False, progress: bool = True,
              limit: int | None = None) -> SweepResult:
    """Run (or resume) a sweep into ``out``; see the module docstring for the layout.

    ``executor`` overrides the scenario's ``executor:`` section (a kind name or a mapping)
    and ``workers`` its worker count. An existing folder of the *same* sweep resumes:
    finished variants are read from its journal, not rerun. ``limit`` runs only the
    first N unfinished variants (to try a sweep, or to split it across sessions).
    """
    from alfred.run import as_scenario

    started = time.perf_counter()
    scenario = as_scenario(scenario)  # a path, a dict or a Scenario
    spec = scenario.sweep
    variants = plan_sweep(scenario, spec)
    # absolute once, here: workers may run in another folder (the README's default-folder
    # sweep used to fail every variant on a relative path)
    target = (Path(out).expanduser() if out is not None else (
        Path("runs") / "sweeps" / scenario.name / datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    ).resolve()
    protect = (scenario.base_dir,) if scenario.source != "<string>" else ()
    check_not_protected(target, protect)
    manifest = _manifest(scenario, variants)
    with _opened(target, manifest, scenario, overwrite):
        return _run(scenario, spec, variants, target, executor, workers, progress, limit,
                    started)


def _run(scenario: Scenario, spec: SweepSpec, variants: list[Variant], target: Path,
         executor: Any, workers: int | str | None, progress: bool, limit: int | None,
         started: float) -> SweepResult:
    """The sweep itself, with the folder locked and checked (see :func:`run_sweep`)."""
    journal = target / "tasks.jsonl"
    shipped = _shipped_inputs(scenario, variants)
    tasks = [
        Task(key=v.key, fn=run_variant,
             args=(v.scenario, str(scenario.base_dir), shipped[v.key], spec.tearsheet,
                   spec.plots),
             config=v.params)
        for v in variants
    ]
    if limit is not None:
        from engine.executor import Journal

        done = set(Journal(journal).finished())
        keep = {t.key for t in tasks if t.key not in done}
        keep = set(sorted(keep, key=[t.key for t in tasks].index)[:limit]) | done
        tasks = [t for t in tasks if t.key in keep]
    ex = make_executor(executor if executor is not None else scenario.executor, workers=workers)
    results: list[TaskResult] = []
    with ex:
        for result in ex.imap(tasks, progress="sweep" if progress else None, journal=journal,
                              receive=lambda r: _land(r, target)):
            results.append(result)
    by_key = {v.key: v for v in variants}
    summary = summarise(target, [r for r in results if r.ok], by_key, spec)
    _write_summary(target, summary, spec, len(variants))
    if summary.height:
        from alfred.rebuild import write_sweep_report

        write_sweep_report(target)  # ranked table with DSR, heat map of two swept keys
    failures = tuple(sorted((r for r in results if not r.ok), key=lambda r: r.key))
    if failures:
        write_atomic(target / "failures.json", json.dumps(
            [{"key": r.key, "params": r.config, "error": r.error} for r in failures],
            indent=2, default=str) + "\n")
    else:  # a resume retried every earlier failure successfully
        (target / "failures.json").unlink(missing_ok=True)
    return SweepResult(out=target, summary=summary, n_variants=len(variants),
                       n_failed=len(failures), n_resumed=sum(r.resumed for r in results),
                       failures=failures, elapsed_s=time.perf_counter() - started,
                       executor=ex.describe())


def _shipped_inputs(scenario: Scenario, variants: list[Variant]) -> dict[str, Shared]:
    """The bars each variant reads, loaded here once per distinct source and shipped with
    the task (one Shared per distinct set: a Ray cluster gets it once, no shared disk).
    A variant whose data cannot load carries the error, so that variant alone fails."""
    from alfred.inputs import preload_sources

    loaded: dict = {}
    by_sources: dict[tuple, Shared] = {}
    shipped = {}
    for v in variants:
        variant = Scenario.model_validate(v.scenario).located(scenario.base_dir,
                                                              "sweep variant")
        try:
            frames = preload_sources(variant, loaded)
        except (ConfigError, DataError) as exc:
            shipped[v.key] = Shared(type(exc)(f"sweep variant: data: {exc}"))
            continue
        shipped[v.key] = by_sources.setdefault(tuple(frames), Shared(frames))
    return shipped


def _land(result: TaskResult, target: Path) -> TaskResult:
    """Write a finished variant's run folder into runs/<key> (here, on the driver) and keep
    only its metrics in the result (what the journal records)."""
    from dataclasses import replace

    unpack_folder(result.value["files"], target / "runs" / result.key, overwrite=True)
    metrics = {label: {**row, "run_dir": (Path("runs") / result.key / row["run_dir"])
                       .as_posix()} for label, row in result.value["metrics"].items()}
    return replace(result, value=metrics)


def run_variant(tree: dict[str, Any], base_dir: str, inputs: dict | Exception,
                tearsheet: bool, plots: bool) -> dict[str, Any]:
    """One variant as a normal run folder, returned as data with its headline metrics per
    strategy label: ``{"metrics": ..., "files": {relative path: bytes}}``.

    Module-level so any executor can ship it to a worker; it rebuilds the scenario from
    plain data there and runs on the bars the driver loaded (``inputs``, see
    :func:`alfred.inputs.preloaded`), writing only into a temporary folder of its own: a
    worker on another machine reads and writes no driver path.
    """
    import tempfile

    from alfred.inputs import preloaded
    from alfred.run import run_scenario
    from engine.executor import apply_worker_threads

    if isinstance(inputs, Exception):
        raise inputs
    apply_worker_threads()
    tree = copy.deepcopy(tree)
    tree["report"] = {"tearsheet": tearsheet, "plots": plots}
    tree["output"] = {"directory": None}
    scenario = Scenario.model_validate(tree).located(Path(base_dir), source="sweep variant")
    with tempfile.TemporaryDirectory(prefix="alfred-variant-") as scratch:
        out_dir = Path(scratch).resolve() / "runs" / "variant"
        with preloaded(inputs):
            summary = run_scenario(scenario, out=out_dir, overwrite=True)
        metrics = {
            run.label: {
                "run_dir": Path(run.run_dir).resolve().relative_to(out_dir).as_posix(),
                **{m: run.metrics.get("with_costs", {}).get(m) for m in SUMMARY_METRICS}}
            for run in summary.runs
        }
        return {"metrics": metrics, "files": pack_folder(out_dir)}


def summarise(target: Path, results: list[TaskResult], variants: dict[str, Variant],
              spec: SweepSpec) -> pl.DataFrame:
    """One row per (variant, strategy) with its params, metrics and deflated Sharpe."""
    rows = []
    # in key order, not completion order: the DSR's variance of Sharpe ratios is then
    # summed in one order, so a resumed or parallel sweep gives the same bits
    for result in sorted(results, key=lambda r: r.key):
        variant = variants.get(result.key)
        if variant is None:
            continue  # a journal line of a variant no longer in the sweep
        for label, metrics in result.value.items():
            row = {"variant": result.key, "strategy": label}
            row.update({k: _cell(v) for k, v in variant.params.items()})
            row.update(metrics)
            rows.append(row)
    if not rows:
        return pl.DataFrame()
    frame = pl.DataFrame(rows, infer_schema_length=None).sort("variant", "strategy",
                                                               maintain_order=True)
    frame = frame.with_columns(pl.Series("dsr", _deflated(target, frame)))
    if spec.metric not in frame.columns:
        raise ConfigError(f"sweep metric {spec.metric!r} is not in the summary"
                          f"{did_you_mean(spec.metric, frame.columns)}; choose one of "
                          f"{', '.join(SUMMARY_METRICS)} or dsr")
    return frame.sort(spec.metric, descending=spec.order == "desc", nulls_last=True,
                      maintain_order=True)


def _deflated(target: Path, frame: pl.DataFrame) -> list[float | None]:
    """DSR of each row for n_trials = the number of rows (configurations tried)."""
    from reports import deflated_sharpe_ratio

    series, sharpes = [], []
    for run_dir in frame["run_dir"].to_list():
        equity = pl.read_parquet(target / run_dir / "equity.parquet", columns=["equity"])
        values = equity["equity"].to_numpy()
        returns = values[1:] / values[:-1] - 1.0
        series.append(returns)
        sd = returns.std(ddof=1) if returns.size > 1 else 0.0
        sharpes.append(returns.mean() / sd if sd > 0 else np.nan)
    finite = np.asarray([s for s in sharpes if np.isfinite(s)])
    variance = float(finite.var(ddof=1)) if finite.size > 1 else 0.0
    out = []
    for returns in series:
        value = deflated_sharpe_ratio(returns, len(series), variance)
        out.append(None if not np.isfinite(value) else float(value))
    return out


def _write_summary(target: Path, summary: pl.DataFrame, spec: SweepSpec, n: int) -> None:
    """summary.parquet/.csv/.md, each replaced atomically; removed when nothing succeeded
    (an older summary would describe a sweep that is no longer there)."""
    if summary.height == 0:
        for name in ("summary.parquet", "summary.csv", "summary.md"):
            (target / name).unlink(missing_ok=True)
        return
    with atomic_path(target / "summary.parquet") as temporary:
        summary.write_parquet(temporary)
    flat = summary.with_columns(
        [pl.col(c).cast(pl.String) for c, t in summary.schema.items() if t.is_nested()])
    with atomic_path(target / "summary.csv") as temporary:
        flat.write_csv(temporary)
    lines = [f"# Sweep summary: {n} variants, sorted by {spec.metric} ({spec.order})", "",
             "dsr = deflated Sharpe ratio for the number of configurations tried.", ""]
    columns = [c for c in flat.columns if c != "run_dir"]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in flat.iter_rows(named=True):
        lines.append("| " + " | ".join(_fmt(row[c]) for c in columns) + " |")
    write_atomic(target / "summary.md", "\n".join(lines) + "\n")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _manifest(scenario: Scenario, variants: list[Variant]) -> dict[str, Any]:
    """What makes a sweep this sweep: the resolved scenario (by content, not by the path
    it was given as) and every variant. ``source`` is kept for people, never compared."""
    identity = scenario_identity(scenario, drop=_RANKING_ONLY)
    return {"scenario_sha256": identity["sha256"],
            "scenario": scenario_identity(scenario)["scenario"],  # as run, ranking included
            "variants": [{"key": v.key, "params": v.params} for v in variants],
            "source": str(Path(scenario.base_dir) / Path(scenario.source).name)
            if scenario.source != "<string>" else scenario.source}


def _same_sweep(old: Any, new: dict[str, Any], scenario: Scenario) -> bool:
    if not isinstance(old, dict) or old.get("variants") != new["variants"]:
        return False
    if "scenario_sha256" in old:
        return old["scenario_sha256"] == new["scenario_sha256"]
    # written before sweep.yaml held a hash: the scenario as it was dumped then, minus
    # what only ranks (the path it was given by was never part of the scenario)
    before, now = copy.deepcopy(old.get("scenario")), scenario_to_dict(scenario)
    for tree in (before, now):
        for key in ("metric", "order"):
            ((tree or {}).get("sweep") or {}).pop(key, None)
    return before == now


@contextlib.contextmanager
def _opened(target: Path, manifest: dict[str, Any], scenario: Scenario,
            overwrite: bool) -> Iterator[None]:
    """Create the folder, or check that an existing one holds this very sweep (resume);
    either way hold its lock (a second sweep on it exits 2) while the block runs."""
    path = target / "sweep.yaml"
    if target.exists() and not (path.is_file() or is_run_folder(target)):
        if overwrite:
            check_replaceable(target, overwrite=True)  # refuses: not Alfred's folder
        raise ConfigError(f"{target} exists and is not a sweep folder; pick another --out "
                          "or pass --overwrite")
    target.mkdir(parents=True, exist_ok=True)
    with folder_lock(target, "sweep"):
        if overwrite and path.is_file():
            check_replaceable(target, overwrite=True)
            _empty(target)
        if path.is_file():
            old = yaml.safe_load(path.read_text(encoding="utf-8"))
            if not _same_sweep(old, manifest, scenario):
                raise ConfigError(
                    f"{target} holds a different sweep (its sweep.yaml differs from this "
                    "scenario and grid), so it cannot be resumed; pick another --out or pass "
                    "--overwrite")
            if old != manifest:  # e.g. another sweep.metric: the summary is ranked anew
                write_atomic(path, yaml.safe_dump(manifest, sort_keys=False,
                                                  allow_unicode=True))
            # the folder is ours alone while the lock is held: any staging left in runs/
            # belongs to a variant killed earlier
            remove_stale_staging(target / "runs", min_age_s=0.0)
        else:
            (target / "runs").mkdir(exist_ok=True)
            mark(target, "sweep")
            write_atomic(path, yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
        yield


def _empty(target: Path) -> None:
    """Remove everything of an old sweep (--overwrite) but the lock this process holds."""
    for child in target.iterdir():
        if child.name in (LOCK_NAME, MARKER):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _check_metric(scenario: Scenario, spec: SweepSpec) -> None:
    """sweep.metric names a column of the summary: a headline metric, dsr or a swept key."""
    columns = [*SUMMARY_METRICS, "dsr", *spec.params,
               *(["data.assets"] if spec.symbols is not None else [])]
    if spec.metric not in columns:
        raise ConfigError(
            f"{scenario.source}: sweep.metric {spec.metric!r} is not a column of the sweep "
            f"summary{did_you_mean(spec.metric, columns)}; choose one of "
            f"{', '.join(SUMMARY_METRICS)}, dsr or a swept key")


def _validate(tree: dict[str, Any], scenario: Scenario, params: dict[str, Any],
              known: list[str]) -> None:
    from alfred.inputs import build_analysts
    from alfred.run import _build_strategies

    where = f"{scenario.source}: sweep variant {params}"
    try:
        variant = Scenario.model_validate(tree).located(scenario.base_dir, where)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = ".".join(str(p) for p in error["loc"])
            if error["type"] == "extra_forbidden":
                swept = next((k for k in params if k == loc or loc.startswith(k + ".")
                              or k.startswith(loc + ".")), loc)
                problems.append(f"sweep key {swept!r} does not exist in the scenario schema"
                                f"{did_you_mean(swept, known)}")
            else:
                problems.append(f"{loc}: {str(error['msg']).removeprefix('Value error, ')} "
                                f"(got {error.get('input')!r})")
        raise ConfigError(f"{where}: " + "; ".join(problems)) from None
    try:
        _build_strategies(variant)
        build_analysts(variant)
    except ConfigError as exc:
        raise ConfigError(f"{exc}") from None


def _dotted_keys(tree: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}{key}"
            keys.add(path)
            keys |= _dotted_keys(value, path + ".")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            keys |= _dotted_keys(value, f"{prefix}{i}.")
    return keys


def _universe(scenario: Scenario) -> list[str]:
    from alfred.inputs import resolve_source
    from engine.data import load_bars

    try:
        source = resolve_source(scenario.data.source, scenario.base_dir)
        bars = load_bars(source, assets=scenario.data.assets, end=scenario.data.end)
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"{scenario.source}: data: {exc}") from None
    return bars["asset"].unique().sort().to_list()
