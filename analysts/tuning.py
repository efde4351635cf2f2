"""Hyperparameter search with Optuna: YAML search spaces, one study per symbol.

A search space file names the analyst, the metric to optimise on the validation period
(default ``pct_return_mae`` for ``magnitude``, ``accuracy`` for ``lstm``), fixed
settings shared by every trial (``base``) and the searched ``params``::

    analyst: magnitude
    metric: pct_return_mae
    base: {train: {epochs: 8, patience: 3}}
    params:
      width: {type: int, low: 16, high: 128, log: true}
      loss: {type: categorical, choices: [huber, mse_sign]}
      train.lr: {type: float, low: 0.0003, high: 0.003, log: true}

Each symbol gets its own study (TPE sampler, SQLite in the output folder unless another
RDB URL is given; re-running continues the study). On a Ray cluster the trials run on
other machines, so the storage must be a database server every node reaches
(``postgresql://user:password@host/db``); a SQLite URL is refused there. Every trial is one task of the
executor (the progress bar counts trials) with its own sampler seed, derived from the
run's seed, the symbol and the trial's index, so symbols never share a random stream.

No leak into the objective: a trial fits on the tuning data up to ``fit_end`` (the
first ``1 - validation_fraction`` of its timestamps; the analyst's own early stopping
uses the last part of *that*), and is scored only on rows dated more than ``horizon``
bars after ``fit_end`` (the label embargo) whose labels are observed by the end of the
tuning data. Bad trials are pruned on their per-epoch early-stopping loss (median rule),
except when the loss itself is searched: losses of different kinds do not compare, so
pruning is then switched off with a warning.

Hyperparameters count as training: results carry the tuning period (first and last
bar) and a hash of the bars they were tuned on; :func:`promote` keeps them, and
:func:`check_tuned_overlap` refuses a test window that lies inside or before that
period. Results: ``<out>/<analyst>/<SYMBOL>.json`` with the best config, its validation
metrics and prediction latency; :func:`promote` gathers them into one file that a
scenario uses with ``tuned_configs: PATH`` (one model per symbol, each with its tuned
settings).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analysts._bars import as_datetime, check_bars, in_window
from analysts._config import build_config, did_you_mean
from analysts._tuned import check_tuned_overlap, tuned_meta
from analysts.evaluation import (
    HIGHER_IS_BETTER,
    MAGNITUDE_METRICS,
    direction_metrics,
    magnitude_metrics,
)
from analysts.features import add_targets, target_names
from engine.errors import ConfigError, DataError

__all__ = ["DEFAULT_METRIC", "ParamSpec", "SearchSpace", "check_tuned_overlap", "data_hash",
           "load_search_space", "objective_start", "parse_search_space", "promote",
           "trial_seed", "tune", "tuned_meta", "validation_metrics"]

DEFAULT_METRIC = {"magnitude": "pct_return_mae", "lstm": "accuracy", "toto": "pct_return_mae",
                  "kronos": "pct_return_mae", "kronos_ensemble": "pct_return_mae"}


class ParamSpec(BaseModel):
    """One searched setting: ``int``/``float`` in ``[low, high]`` (``log``, ``step``) or
    ``categorical`` over ``choices``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _valid_range(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None:
                raise ValueError("categorical takes 'choices', not low/high")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs both 'low' and 'high'")
        if not self.low < self.high:
            raise ValueError(f"empty range: low={self.low} must be below high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={self.low}")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"int bounds must be whole numbers, got {self.low}..{self.high}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self

    def suggest(self, trial: Any, name: str) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(name, self.choices)
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)


class SearchSpace(BaseModel):
    """A whole search space file (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    analyst: str
    metric: str | None = None
    direction: Literal["minimize", "maximize"] | None = None
    base: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, ParamSpec]

    @model_validator(mode="after")
    def _some_params(self) -> SearchSpace:
        if not self.params:
            raise ValueError("params is empty; declare at least one searched setting")
        return self

    @property
    def objective(self) -> str:
        return self.metric or DEFAULT_METRIC.get(self.analyst, "pct_return_mae")

    @property
    def study_direction(self) -> str:
        if self.direction is not None:
            return self.direction
        return "maximize" if self.objective in HIGHER_IS_BETTER else "minimize"


def load_search_space(path: str | Path) -> SearchSpace:
    """Read and validate a search space YAML file (safe_load; errors name the key)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"search space file {path} not found; see scenarios/tuning/ for "
                          f"examples")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"search space {path} is not valid YAML: {exc}") from None
    return parse_search_space(raw, source=str(path))


def parse_search_space(raw: Any, source: str = "<search space>") -> SearchSpace:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping with analyst, params (and optionally "
                          f"metric, direction, base)")
    try:
        space = SearchSpace.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function"))
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                fields = list(ParamSpec.model_fields) if "params" in key else list(
                    SearchSpace.model_fields)
                message = f"unknown key{did_you_mean(key.rsplit('.', 1)[-1], fields)}"
            problems.append(f"{key}: {message}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
    from analysts._registry import REGISTRY

    if space.analyst not in REGISTRY:
        raise ConfigError(f"{source}: unknown analyst {space.analyst!r}"
                          f"{did_you_mean(space.analyst, REGISTRY)}")
    metrics = ("accuracy", "precision", "recall", "f1", *MAGNITUDE_METRICS)
    if space.objective not in metrics:
        raise ConfigError(f"{source}: metric {space.objective!r} is not one of "
                          f"{', '.join(metrics)}{did_you_mean(space.objective, metrics)}")
    if space.analyst == "lstm" and space.objective in MAGNITUDE_METRICS:
        raise ConfigError(f"{source}: the lstm analyst predicts direction only; optimise "
                          f"accuracy, precision, recall or f1, not {space.objective!r}")
    return space


def _set_dotted(values: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = values
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"search parameter {dotted!r}: {part!r} is not a section")
    node[parts[-1]] = value


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def validation_metrics(analyst: Any, bars: pl.DataFrame, start: datetime, end: datetime,
                       horizon: int) -> tuple[dict[str, float], dict[str, float]]:
    """Metrics of ``analyst`` on rows dated in ``[start, end]`` whose label is known by
    ``end``, and its prediction latency."""
    began = time.perf_counter()
    signals = analyst.predict(bars, start=start, end=end)
    seconds = time.perf_counter() - began
    _, change, seen = target_names(horizon)
    labels = add_targets(check_bars(bars, analyst.name), (horizon,))
    rows = in_window(labels, start, end).filter(pl.col(seen) <= end).join(
        signals, on=["ts", "asset"]).drop_nulls(change)
    if rows.height == 0:
        raise DataError(f"analyst {analyst.name!r}: no validation row with a known label "
                        f"between {start} and {end}; give the tuning more data")
    actual = rows[change].to_numpy()
    out: dict[str, float] = {"n": rows.height}
    if "prob_up" in rows.columns:
        out.update(direction_metrics(rows["prob_up"].to_numpy() > 0.5, actual > 0))
    else:
        out.update(direction_metrics(rows["pred_return"].to_numpy() > 0, actual > 0))
    if "pred_return" in rows.columns:
        out.update(magnitude_metrics(rows["pred_return"].to_numpy(), actual,
                                     rows["close"].to_numpy()))
    latency = {"predict_seconds": seconds, "ms_per_row": 1000 * seconds / max(signals.height, 1),
               "rows": signals.height}
    return out, latency


def tune(
    space: SearchSpace,
    bars: pl.DataFrame,
    *,
    n_trials: int,
    out: str | Path,
    base_config: dict[str, Any] | None = None,
    symbols: list[str] | None = None,
    pooled: bool = False,
    storage: str | None = None,
    seed: int = 0,
    until: datetime | str | None = None,
    validation_fraction: float = 0.25,
    timeout_s: float | None = None,
    executor: Any = "inline",
    workers: int | str | None = None,
) -> dict[str, dict[str, Any]]:
    """Run one study per symbol (or one ``pooled`` study named ``ALL``); write the best.

    ``bars`` up to ``until`` (default: all) are the tuning data: trials fit on the first
    ``1 - validation_fraction`` of its timestamps and are scored on the rows dated more
    than ``horizon`` bars later (module docstring). Returns the written records by symbol.

    Trials fan out through :mod:`engine.executor` (``executor``: ``inline`` by default,
    ``local`` processes or ``ray``), one task per trial, all of a symbol's trials
    optimising the same study in the shared RDB ``storage``, each with the sampler seed
    :func:`trial_seed` (run seed, symbol, trial index). Inline, trials run in order, so
    results are reproducible.
    """
    from engine.executor import Shared, Task, make_executor

    if n_trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {n_trials}")
    if not 0.0 < validation_fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    checked = check_bars(bars, space.analyst)
    if until is not None:
        cut = as_datetime(until, checked["ts"].dtype, "until")
        bars = bars.filter(pl.col("ts") <= cut)
    assets = sorted(bars["asset"].unique().to_list())
    if symbols:
        unknown = [s for s in symbols if s not in assets]
        if unknown:
            raise ConfigError(f"symbols {unknown} are not in the data's assets {assets}")
        assets = list(symbols)
    groups = {"ALL": bars.filter(pl.col("asset").is_in(assets))} if pooled else {
        symbol: bars.filter(pl.col("asset") == symbol) for symbol in assets}

    out = Path(out)
    folder = out / space.analyst
    folder.mkdir(parents=True, exist_ok=True)
    storage_url = storage or f"sqlite:///{(out / 'optuna.db').resolve()}"
    base = _merge(base_config or {}, space.base)
    base.pop("per_symbol", None)
    base.pop("tuned_configs", None)
    if isinstance(base.get("train"), dict):  # one checkpoint folder cannot serve every trial
        base["train"] = {k: v for k, v in base["train"].items() if k != "checkpoint_dir"}
    if "loss" in space.params:
        warnings.warn("the search space varies 'loss': validation losses of different kinds "
                      "do not compare, so trials are not pruned", stacklevel=2)
    periods = {}
    for symbol, data in groups.items():
        stamps = data["ts"].unique().sort()
        if stamps.len() < 4:
            raise DataError(f"symbol {symbol}: {stamps.len()} bars are too few to tune on")
        cut = max(int(stamps.len() * (1 - validation_fraction)) - 1, 0)
        periods[symbol] = (stamps[0], stamps[cut], stamps[-1])

    ex = make_executor(executor, workers=workers)
    check_cluster_storage(storage_url, ex.kind, getattr(ex.spec, "address", "local"))
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for symbol in groups:  # create storage tables and studies once, before workers race for them
        optuna.create_study(study_name=f"{space.analyst}-{symbol}", storage=_storage(storage_url),
                            load_if_exists=True, direction=space.study_direction)
    shared = {symbol: Shared(data) for symbol, data in groups.items()}  # sent once per symbol
    tasks = [
        Task(key=f"{symbol}#{i}", fn=_optimise, config={"symbol": symbol, "trial": i},
             args=(space, base, shared[symbol], periods[symbol][1], periods[symbol][2],
                   storage_url, f"{space.analyst}-{symbol}", trial_seed(seed, symbol, i), 1,
                   timeout_s))
        for symbol in groups for i in range(n_trials)
    ]
    with ex:
        results = ex.run(tasks, progress=f"tuning trials ({len(groups)} studies)")
    failed = [r for r in results if not r.ok]
    if failed:
        raise DataError("tuning failed: " + "; ".join(r.describe_failure() for r in failed[:3]))

    return {symbol: _write_best(space, symbol, base, periods[symbol], groups[symbol],
                                storage_url, folder) for symbol in groups}


def _write_best(space: SearchSpace, symbol: str, base: dict[str, Any], period: tuple,
                data: pl.DataFrame, storage_url: str, folder: Path) -> dict[str, Any]:
    """The best trial of a symbol's study, written as ``<folder>/<symbol>.json``."""
    import optuna

    study = optuna.load_study(study_name=f"{space.analyst}-{symbol}",
                              storage=_storage(storage_url))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise DataError(f"symbol {symbol}: no trial completed ({len(study.trials)} pruned "
                        f"or failed); widen the search space or give more data")
    best = study.best_trial
    overrides = json.loads(json.dumps(base))
    for name, value in best.params.items():
        _set_dotted(overrides, name, value)
    first, fit_end, last = period
    record = {
        "analyst": space.analyst, "symbol": symbol, "metric": space.objective,
        "direction": space.study_direction, "value": best.value,
        "trial": best.number, "params": best.params, "overrides": overrides,
        "config": best.user_attrs["config"], "validation": best.user_attrs["metrics"],
        "latency": best.user_attrs["latency"],
        "trials": {state.name.lower(): sum(t.state == state for t in study.trials)
                   for state in optuna.trial.TrialState},
        "study": study.study_name, "storage": _redact(storage_url),
        "tuning_period": {"start": str(first), "fit_end": str(fit_end), "end": str(last)},
        "tuned_on": {"first_bar": str(first), "last_bar": str(last),
                     "data_hash": data_hash(data)},
    }
    (folder / f"{symbol}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def trial_seed(seed: int, symbol: str, trial: int) -> int:
    """The sampler seed of one trial: distinct per symbol and per trial index."""
    return (seed * 1_000_003 + zlib.crc32(symbol.encode()) * 7919 + trial) % (2**31 - 1)


def data_hash(bars: pl.DataFrame) -> str:
    """A short content hash of the bars a config was tuned on (order-independent)."""
    frame = bars.select(sorted(bars.columns)).sort("asset", "ts")
    digest = hashlib.sha256()
    for column in frame.columns:
        digest.update(column.encode())
        digest.update(frame[column].cast(pl.String).str.join("|").item().encode())
    return digest.hexdigest()[:16]


def objective_start(data: pl.DataFrame, fit_end: datetime, horizon: int) -> datetime:
    """First ts of the objective window: more than ``horizon`` bars after ``fit_end``."""
    later = data["ts"].unique().sort().filter(data["ts"].unique().sort() > fit_end)
    if later.len() <= horizon:
        raise DataError(f"tuning: {later.len()} bars after the fit period's end {fit_end} "
                        f"leave no objective row past the {horizon}-bar embargo; lower "
                        f"horizon or raise validation_fraction")
    return later[horizon]


def _optimise(space: SearchSpace, base: dict[str, Any], data: pl.DataFrame,
              fit_end: datetime, last: datetime, storage_url: str, study_name: str,
              seed: int, n_trials: int, timeout_s: float | None) -> int:
    """Run ``n_trials`` of the symbol's study (shared storage); a task of the executor."""
    import optuna

    from analysts._registry import REGISTRY, get_analyst
    from engine.executor import apply_worker_threads

    apply_worker_threads()
    config_class = REGISTRY[space.analyst].config_class
    horizon_default = config_class.model_fields["horizon"].default
    searched_loss = "loss" in space.params

    def objective(trial: optuna.Trial) -> float:
        values = json.loads(json.dumps(base))
        for name, spec in space.params.items():
            _set_dotted(values, name, spec.suggest(trial, name))
        config = build_config(config_class, f"trial {trial.number}", values)
        analyst = get_analyst(space.analyst, **config.model_dump())

        def report(epoch: int, train_loss: float, val_loss: float | None) -> None:
            if searched_loss or val_loss is None:
                return
            trial.report(val_loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        analyst.fit(data, until=fit_end, on_epoch=report)
        horizon = getattr(config, "horizon", horizon_default)
        start = objective_start(data, fit_end, horizon)
        metrics, latency = validation_metrics(analyst, data, start, last, horizon)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("latency", latency)
        trial.set_user_attr("config", config.model_dump(mode="json"))
        value = metrics[space.objective]
        if value is None or not math.isfinite(value):
            raise optuna.TrialPruned(f"{space.objective} is undefined for this trial")
        return float(value)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, storage=_storage(storage_url), load_if_exists=True,
        direction=space.study_direction, sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    study.optimize(objective, n_trials=n_trials, timeout=timeout_s, catch=(DataError,))
    return n_trials


def check_cluster_storage(url: str, kind: str, address: str) -> None:
    """Refuse a SQLite storage for trials on a Ray cluster (any address but ``local``).

    Every trial reads and writes its study in the storage from whichever node runs it: a
    SQLite file lives on the driver's disk, which other nodes cannot open, and SQLite on
    a network file system loses writes under concurrent writers. A cluster needs a
    database server every node reaches."""
    if kind == "ray" and address != "local" and url.startswith("sqlite"):
        raise ConfigError(
            f"tuning on the Ray cluster at {address!r} cannot use the SQLite storage "
            f"{_redact(url)}: trials run on other machines, which cannot open a file on this "
            "one (and SQLite on a shared file system loses writes under concurrent trials). "
            "Pass --storage with a database every node reaches, e.g. "
            "postgresql://user:password@db-host/optuna, or run with --executor local")


def _storage(url: str) -> Any:
    """Optuna RDB storage for ``url``; SQLite waits for the write lock instead of failing.

    Workers of one study write to the same SQLite file; its default 5 s busy timeout is too
    short when a worker commits a trial while another holds the lock (``database is
    locked``). Server databases (PostgreSQL, MySQL) are used as given.
    """
    import optuna

    kwargs = {"connect_args": {"timeout": 300}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def _redact(url: str) -> str:
    """A storage URL without its password, fit for a results file."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def promote(tune_dir: str | Path, dest: str | Path | None = None,
            analyst: str | None = None) -> list[Path]:
    """Gather ``<tune_dir>/<analyst>/<SYMBOL>.json`` into ``<dest>/<analyst>.json``.

    The written file is what an analyst's ``tuned_configs`` reads: ``{"analyst": ...,
    "symbols": {SYMBOL: overrides}}``. ``dest`` defaults to ``<tune_dir>/promoted``.
    """
    tune_dir = Path(tune_dir)
    if not tune_dir.is_dir():
        raise ConfigError(f"tuning folder {tune_dir} does not exist; run `alfred tune` first")
    folders = sorted(p for p in tune_dir.iterdir() if p.is_dir() and any(p.glob("*.json")))
    folders = [p for p in folders if p.name != "promoted"]
    if analyst is not None:
        folders = [p for p in folders if p.name == analyst]
    if not folders:
        raise ConfigError(f"{tune_dir} holds no tuning results (<analyst>/<SYMBOL>.json)"
                          + (f" for analyst {analyst!r}" if analyst else ""))
    dest = Path(dest) if dest is not None else tune_dir / "promoted"
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for folder in folders:
        symbols, metric, tuned_on = {}, None, {}
        for file in sorted(folder.glob("*.json")):
            try:
                record = json.loads(file.read_text())
                symbols[record["symbol"]] = record["overrides"]
                tuned_on[record["symbol"]] = record["tuned_on"]
                metric = record.get("metric", metric)
            except (ValueError, KeyError) as exc:
                raise DataError(f"{file} is not a tuning result of this Alfred ({exc}); "
                                f"remove it or re-run the tuning") from None
        period = {"first_bar": min(v["first_bar"] for v in tuned_on.values()),
                  "last_bar": max(v["last_bar"] for v in tuned_on.values())}
        target = dest / f"{folder.name}.json"
        target.write_text(json.dumps({"analyst": folder.name, "metric": metric,
                                      "source": str(folder.resolve()), "tuned_period": period,
                                      "tuned_on": tuned_on, "symbols": symbols},
                                     indent=2) + "\n")
        written.append(target)
    return written
