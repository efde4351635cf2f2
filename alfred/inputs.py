"""The inputs of a scenario run: bars, signals and benchmark, built once per scenario.

Time discipline lives here, so it is written down once:

* bars are loaded up to ``data.end`` *with their history before* ``data.start``: analysts
  need a look-back to warm up, and each prediction dated t uses bars up to t only (the
  analysts' as-of rule), so history can never leak forward;
* the backtest starts at the first bar on or after ``data.start`` and, when analysts are
  trained (``train_until``), strictly after the last training bar, so no decision is
  made from an in-sample prediction;
* analysts are fit on bars up to ``train_until``, or by default up to the first bar of the
  backtest (the built-ins learn nothing and only check their input);
* the benchmark is priced on the backtest's own calendar (last known close, as-of) and
  starts flat on the first bar, as the strategy does (its first fill is at bar 2).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alfred.scenario import AnalystSpec, Benchmark, Scenario, inherit_train_start
from engine.errors import ConfigError, DataError
from engine.panel import Panel
from engine.text import preview

_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SIGNAL_KEYS = ("ts", "asset")


def user_data_dir() -> Path:
    """Where ``alfred data import`` writes datasets: ``$ALFRED_DATA_DIR`` or ~/.alfred/data."""
    configured = os.environ.get("ALFRED_DATA_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".alfred" / "data"


def imported_datasets(directory: Path | None = None) -> dict[str, Path]:
    directory = directory or user_data_dir()
    if not directory.is_dir():
        return {}
    from engine.data import is_partitioned

    found = {p.stem: p for p in sorted(directory.glob("*.parquet")) if p.is_file()}
    found.update({p.name: p for p in sorted(directory.iterdir())
                  if not p.name.startswith(".") and is_partitioned(p)})
    return dict(sorted(found.items()))


def _bundled_names() -> tuple[str, ...]:
    from engine.data import list_datasets

    return tuple(list_datasets()["name"].to_list())


def resolve_source(source: str, base_dir: Path) -> str | Path:
    """A bundled name (returned as is), an existing path, or an imported dataset's file.

    Bundled names win, then paths relative to the scenario's folder, then datasets
    imported with ``alfred data import``.
    """
    if source in _bundled_names():
        return source
    path = Path(source).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if path.exists():
        return path.resolve()
    imported = imported_datasets()
    if source in imported:
        return imported[source]
    import difflib

    names = [*_bundled_names(), *imported]
    near = difflib.get_close_matches(source, names, n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise DataError(
        f"data source {source!r} is not a bundled dataset, an existing file or folder "
        f"(looked for {path}) or an imported dataset (in {user_data_dir()}).{hint} Known "
        f"datasets: {', '.join(names)}. Import your own with `alfred data import PATH "
        f"--name NAME`."
    )


# Bars loaded by the driver and shipped with a task: (source as written, assets, end) ->
# (the resolved source, its bars). A worker on another machine reads no data path.
SourceKey = tuple[str, tuple[str, ...] | None, date | None]
_PRELOADED: dict[SourceKey, tuple[str, pl.DataFrame]] = {}


def source_keys(scenario: Scenario) -> list[SourceKey]:
    """What :func:`load_inputs` reads for ``scenario``: its data and benchmark dataset."""
    spec = scenario.data
    keys = [(spec.source, tuple(spec.assets) if spec.assets is not None else None, spec.end)]
    if scenario.benchmark is not None and scenario.benchmark.dataset is not None:
        keys.append((scenario.benchmark.dataset, None, spec.end))
    return keys


def preload_sources(scenario: Scenario, loaded: dict | None = None
                    ) -> dict[SourceKey, tuple[str, pl.DataFrame]]:
    """Load here (the driver) every source ``scenario`` reads, for :func:`preloaded`.
    ``loaded`` is reused and filled, so the variants of a sweep load each source once."""
    loaded = {} if loaded is None else loaded
    for key in source_keys(scenario):
        if key not in loaded:
            loaded[key] = _load_source(key, scenario)
    return {key: loaded[key] for key in source_keys(scenario)}


@contextlib.contextmanager
def preloaded(frames: dict[SourceKey, tuple[str, pl.DataFrame]]) -> Iterator[None]:
    """Inside the block, :func:`load_inputs` takes these sources' bars from memory (the
    driver loaded them and they travelled with the task) instead of reading a path."""
    before = dict(_PRELOADED)
    _PRELOADED.update(frames)
    try:
        yield
    finally:
        _PRELOADED.clear()
        _PRELOADED.update(before)


def _load_source(key: SourceKey, scenario: Scenario) -> tuple[str, pl.DataFrame]:
    """(resolved source, bars) for ``key``: preloaded bars if shipped, else the loader."""
    from engine.data import load_bars

    if key in _PRELOADED:
        return _PRELOADED[key]
    source, assets, end = key
    resolved = resolve_source(source, scenario.base_dir)
    return str(resolved), load_bars(resolved, assets=None if assets is None else list(assets),
                                    end=end)


def import_dataset(path: str | Path, name: str, *, to: Path | None = None,
                   overwrite: bool = False, partitioned: bool | None = None
                   ) -> tuple[Path, pl.DataFrame]:
    """Validate bars at ``path`` (CSV, parquet or a folder) and store them as NAME.parquet,
    or, for large inputs (``partitioned`` None: over ``PARTITION_ROWS`` rows), as a
    hive-partitioned folder NAME/ a scenario reads only its assets and years of."""
    from engine.data import PARTITION_ROWS, is_partitioned, load_bars, write_partitioned

    if not _DATASET_NAME.match(name):
        raise ConfigError(
            f"dataset name {name!r} becomes a file name; use letters, digits, '_', '-' or '.'"
        )
    if name in _bundled_names():
        raise ConfigError(
            f"{name!r} is a bundled dataset and would shadow it; pick another --name"
        )
    bars = load_bars(Path(path).expanduser())
    directory = (to or user_data_dir()).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    split = bars.height > PARTITION_ROWS if partitioned is None else partitioned
    target = directory / (name if split else f"{name}.parquet")
    for existing in (directory / name, directory / f"{name}.parquet"):
        if existing.exists() and not overwrite:
            raise ConfigError(
                f"dataset {name!r} already exists at {existing}; pass --overwrite to replace "
                "it or choose another --name")
    folder = directory / name
    if folder.exists() and not is_partitioned(folder):
        raise ConfigError(f"{folder} exists and is not a dataset Alfred imported; move it or "
                          "choose another --name")
    if split:
        write_partitioned(bars, target)
        (directory / f"{name}.parquet").unlink(missing_ok=True)
        return target, bars
    if is_partitioned(folder):
        import shutil

        shutil.rmtree(folder)  # the partitioned import of this name, replaced (overwrite)
    partial = directory / f".{name}.parquet.partial-{os.getpid()}"
    try:
        bars.write_parquet(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target, bars


@dataclass(frozen=True, eq=False)
class ScenarioInputs:
    """Everything a scenario's strategies run on."""

    source: str  # the resolved data source, as loaded
    history: pl.DataFrame  # bars up to data.end, including warm-up history
    bars: pl.DataFrame  # the backtest's bars
    panel: Panel
    signals: pl.DataFrame | None
    benchmark: pl.DataFrame | None  # ts, return on the panel's calendar
    benchmark_label: str | None
    # what the analysts learnt that a reader should see (ensemble weights, fine-tuning
    # history), by "index:name"; empty when no analyst has anything to report
    analyst_summaries: dict = field(default_factory=dict)
    # one-line caveats every view of the results repeats: survivorship of the data, a
    # price-only benchmark, a model on random weights or inside its pretraining period
    notes: tuple[str, ...] = ()


def load_inputs(scenario: Scenario, *, analysts: bool = True) -> ScenarioInputs:
    """Bars, panel, the analysts' signals and the benchmark of a scenario.

    ``analysts=False`` skips fitting and running the analysts (``signals`` is None):
    what ``alfred validate`` checks without ``--fit``.
    """
    from engine.data import align_bars, resample_bars

    spec = scenario.data
    try:
        source, history = _load_source(source_keys(scenario)[0], scenario)
        if spec.frequency is not None:
            history = resample_bars(history, spec.frequency)
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"{scenario.source}: data: {exc}") from None
    history = _choose_prices(scenario, history, str(source))
    if spec.regime is not None:
        _check_regime_covered(scenario, history, str(source))
    day = pl.col("ts").dt.date()
    in_period = pl.lit(True)
    if spec.start is not None:
        in_period = in_period & (day >= spec.start)
    if scenario.train_until is not None:
        in_period = in_period & (day > scenario.train_until)
    bars = history.filter(in_period)
    if bars.height == 0:
        first, last = history["ts"].min(), history["ts"].max()
        raise DataError(
            f"{scenario.source}: no bars left to backtest in {source} after data.start="
            f"{spec.start} and train_until={scenario.train_until}; the data spans {first} to "
            f"{last}. Move the dates inside that range."
        )
    if bars["ts"].n_unique() < 2:
        raise DataError(
            f"{scenario.source}: the backtest period holds a single bar ({bars['ts'][0]}); a "
            "backtest needs at least two. Widen data.start/data.end."
        )
    _check_universe_covered(scenario, history, bars, str(source))
    panel = align_bars(bars)
    if spec.membership is not None:  # point in time: not tradable outside each spell
        from engine.membership import apply_membership, load_membership

        panel = apply_membership(panel, load_membership(scenario.resolve_path(
            spec.membership)), source=spec.membership)
    if "fill" in scenario.model_fields_set and scenario.fill == "next_open" and not panel.has_open:
        warnings.warn(
            f"{scenario.source}: fill: next_open, but {source} has close prices only, so "
            "orders fill at the next bar's close; write fill: next_close to say so",
            UserWarning, stacklevel=2)
    summaries: dict = {}
    notes = list(dataset_caveats(source))
    signals = _run_analysts(scenario, history, bars, summaries, notes) if analysts else None
    benchmark, label = _benchmark_returns(scenario.benchmark, bars, panel, spec.end, scenario)
    if scenario.benchmark is not None and scenario.benchmark.dataset is not None:
        notes += dataset_caveats(source_keys(scenario)[1][0])
    return ScenarioInputs(str(source), history, bars, panel, signals, benchmark, label,
                          summaries, tuple(dict.fromkeys(notes)))


def _choose_prices(scenario: Scenario, history: pl.DataFrame, source: str) -> pl.DataFrame:
    """Bars with open/high/low and an adjusted close trade on one of two price scales;
    ``data.price`` picks it, and without it the raw close is used and the run says so."""
    price = scenario.data.price
    if "adj_close" not in history.columns:
        if price == "adjusted":
            raise ConfigError(
                f"{scenario.source}: data.price: adjusted, but {source} has no adjusted close "
                "next to open/high/low (a close-only file's adjusted close is already its "
                "close); drop data.price")
        return history
    if price is None:
        warnings.warn(
            f"{scenario.source}: {source} has open/high/low and an adjusted close; trading on "
            "the raw prices (splits and dividends show as jumps). Set data.price: adjusted "
            "to trade on adjusted prices (open/high/low scaled by adj_close / close), or "
            "data.price: raw to keep the raw ones without this note", UserWarning, stacklevel=2)
    if price != "adjusted":
        return history
    factor = pl.col("adj_close") / pl.col("close")
    scaled = [(pl.col(c) * factor).alias(c) for c in ("open", "high", "low")
              if c in history.columns]
    return history.with_columns(*scaled, pl.col("adj_close").alias("close"))


def _check_universe_covered(scenario: Scenario, history: pl.DataFrame, bars: pl.DataFrame,
                            source: str) -> None:
    """An asset without a bar in the period would leave the universe silently: an asset the
    file lists is an error, one that ``assets: all`` picked up is a warning naming it."""
    present = set(bars["asset"].unique().to_list())
    first, last = bars["ts"].min(), bars["ts"].max()
    listed = scenario.data.assets
    if listed is not None:
        missing = [a for a in listed if a not in present]
        if missing:
            raise DataError(
                f"{scenario.source}: data.assets lists {preview(missing)}, which have no bar "
                f"in {source} between {first:%Y-%m-%d} and {last:%Y-%m-%d}; drop them from "
                "data.assets or move data.start/data.end to where they trade")
        return
    absent = sorted(set(history["asset"].unique().to_list()) - present)
    if absent:
        warnings.warn(
            f"{scenario.source}: {len(absent)} asset(s) of {source} have no bar between "
            f"{first:%Y-%m-%d} and {last:%Y-%m-%d} and are not in the universe: "
            f"{preview(absent)}", UserWarning, stacklevel=2)


def _check_regime_covered(scenario: Scenario, history: pl.DataFrame, source: str) -> None:
    """A named regime must lie inside the data: a half-covered crash would mislead."""
    spec = scenario.data
    first, last = history["ts"].min().date(), history["ts"].max().date()
    slack = 7  # days: the window may start on a weekend or holiday
    if (spec.start - first).days < -slack or (last - spec.end).days < -slack:
        raise DataError(
            f"{scenario.source}: data.regime {spec.regime!r} ({spec.start} to {spec.end}) lies "
            f"outside {source}, which spans {first} to {last}; pick a regime inside those "
            "dates (alfred regimes lists them) or another dataset")


def build_analysts(scenario: Scenario) -> list:
    """Instantiate every analyst; errors name the scenario key. Analysts that train take
    the scenario's ``train_start`` unless their config sets their own."""
    from analysts import get_analyst

    built = []
    for i, spec in enumerate(scenario.analysts):
        config = resolve_analyst_paths(spec, scenario)
        config = inherit_train_start(spec.name, config, scenario.train_start)
        try:
            built.append(get_analyst(spec.name, **config))
        except ConfigError as exc:
            raise ConfigError(f"{scenario.source}: analysts[{i}] ({spec.name}): {exc}") from None
    return built


_PATH_KEYS = ("path", "tuned_configs", "weights_dir", "tokenizer_dir")
_TRAIN_PATH_KEYS = ("checkpoint_dir", "log_dir")


def resolve_analyst_paths(spec: AnalystSpec, scenario: Scenario) -> dict:
    """Paths in an analyst's config (``path``, ``tuned_configs``, ``weights_dir``,
    ``tokenizer_dir``, ``train.checkpoint_dir``, ``train.log_dir``) are relative to the
    scenario file, like data.source -- also inside the member configs of ``ensemble`` and
    ``regime_switch``."""
    return _resolve_config(dict(spec.config), scenario)


def _resolve_config(config: dict, scenario: Scenario) -> dict:
    config = dict(config)
    for key in _PATH_KEYS:
        value = config.get(key)
        if isinstance(value, str) and value:
            config[key] = str(scenario.resolve_path(value))
    train = config.get("train")
    if isinstance(train, dict):
        config["train"] = {key: str(scenario.resolve_path(value))
                           if key in _TRAIN_PATH_KEYS and isinstance(value, str) and value
                           else value for key, value in train.items()}
    members = config.get("members")
    if isinstance(members, list):
        config["members"] = [_resolve_member(m, scenario) for m in members]
    for key in ("calm", "volatile"):
        if isinstance(config.get(key), dict):
            config[key] = _resolve_member(config[key], scenario)
    return config


def _resolve_member(member, scenario: Scenario):
    if isinstance(member, dict) and isinstance(member.get("config"), dict):
        return {**member, "config": _resolve_config(member["config"], scenario)}
    return member


def dataset_caveats(source: str | Path) -> list[str]:
    """The bundled dataset's caveat line (survivorship, price-only index), if it has one."""
    from engine.data import dataset_info, list_datasets

    if not isinstance(source, str) or source not in list_datasets()["name"].to_list():
        return []
    caveat = dataset_info(source).get("caveat")
    return [caveat] if caveat else []


def analyst_notes(analyst: Any, test_start: datetime,
                  test_end: datetime | None = None) -> list[str]:
    """Random weights or a test window inside the pretraining period, for an analyst and
    every member of a composite one, each named; given ``test_end``, tuned
    hyperparameters that saw the window (a note starting "tuned on overlapping data",
    which the run comparison turns into a marked row)."""
    from analysts.evaluation import model_notes

    members = list(getattr(analyst, "members", []) or [])
    members += [m for m in (getattr(analyst, "calm", None), getattr(analyst, "volatile", None))
                if m is not None]
    notes = [f"analyst {analyst.name!r}: {note}"
             for note in model_notes(analyst, test_start, test_end)]  # tuned: members too
    for member in members:
        notes += analyst_notes(member, test_start)
    return list(dict.fromkeys(notes))


def _run_analysts(scenario: Scenario, history: pl.DataFrame, bars: pl.DataFrame,
                  summaries: dict | None = None, notes: list[str] | None = None
                  ) -> pl.DataFrame | None:
    if not scenario.analysts:
        return None
    first_bar: datetime = bars["ts"].min()
    last_bar: datetime = bars["ts"].max()
    if scenario.train_until is not None:
        until = history.filter(pl.col("ts").dt.date() <= scenario.train_until)["ts"].max()
        if until is None:
            raise DataError(
                f"{scenario.source}: train_until {scenario.train_until} is before the first "
                f"bar ({history['ts'].min()}); there is nothing to train on. Move it later."
            )
    else:
        until = first_bar
    frames = []
    for i, analyst in enumerate(build_analysts(scenario)):
        try:
            analyst.fit(history, until=until, **_fit_options(scenario, analyst))
            signals = analyst.predict(history, start=first_bar, end=last_bar)
            # Without data.end the bars run to the data's own end: a file row dated past it
            # could never be traded, so it is an error, not a row outside the period.
            check = getattr(analyst, "check_no_rows_after", None)
            if scenario.data.end is None and callable(check):
                check(history)
        except (ConfigError, DataError) as exc:
            raise type(exc)(f"{scenario.source}: analysts[{i}] ({analyst.name}): {exc}") from None
        summary = getattr(analyst, "fit_summary", None)
        if summaries is not None and callable(summary) and summary():
            summaries[f"{i}:{analyst.name}"] = summary()
        if notes is not None:
            notes += [n for n in analyst_notes(analyst, first_bar, last_bar) if n not in notes]
        if signals.height == 0:
            raise DataError(
                f"{scenario.source}: analyst {analyst.name!r} produced no signal between "
                f"{first_bar} and {last_bar}; check its look-back against the period (or the "
                "dates in its file)."
            )
        frames.append(signals)
    return merge_signals(frames)


def _fit_options(scenario: Scenario, analyst) -> dict:
    """Per-symbol models train through the scenario's executor when the file asks for one
    (an ``executor:`` section) and this process is not itself an executor's worker."""
    from analysts import TrainableAnalyst
    from engine.executor import in_worker

    if ("executor" in scenario.model_fields_set and isinstance(analyst, TrainableAnalyst)
            and not in_worker()):
        return {"executor": scenario.executor}
    return {}


def merge_signals(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Outer-join several analysts' signals on (ts, asset).

    A column that several analysts emit (two ``prob_up`` forecasts) is their mean over the
    analysts that have a value for that row: the simplest ensemble, and symmetric, so the
    order of the analysts in the file does not matter.
    """
    if len(frames) == 1:
        return frames[0].sort(SIGNAL_KEYS)
    tagged = []
    for i, frame in enumerate(frames):
        values = [c for c in frame.columns if c not in SIGNAL_KEYS]
        tagged.append(frame.rename({c: f"{c}\x00{i}" for c in values}))
    merged = tagged[0]
    for frame in tagged[1:]:
        merged = merged.join(frame, on=list(SIGNAL_KEYS), how="full", coalesce=True)
    names: dict[str, list[str]] = {}
    for column in merged.columns:
        if "\x00" in column:
            names.setdefault(column.split("\x00")[0], []).append(column)
    merged = merged.select(
        *SIGNAL_KEYS,
        *[pl.mean_horizontal(cols).alias(name) if len(cols) > 1 else pl.col(cols[0]).alias(name)
          for name, cols in names.items()],
    )
    return merged.sort(SIGNAL_KEYS)


def _benchmark_returns(
    benchmark: Benchmark | None, bars: pl.DataFrame, panel: Panel, end: date | None,
    scenario: Scenario,
) -> tuple[pl.DataFrame | None, str | None]:
    if benchmark is None:
        return None, None
    calendar = pl.DataFrame({"ts": bars["ts"].unique().sort()})
    if benchmark.equal_weight:
        per_asset = bars.select(
            "ts", "asset", (pl.col("close") / pl.col("close").shift(1).over("asset") - 1.0)
            .alias("r")
        )
        # One bar's return is the mean over the assets that traded on both bars: an equal-
        # weight book rebalanced every bar, without costs.
        mean = per_asset.group_by("ts").agg(pl.col("r").mean())
        frame = calendar.join(mean, on="ts", how="left").sort("ts")
        returns = frame["r"].fill_null(0.0).to_numpy().copy()
        returns[0] = 0.0
        return _returns_frame(panel, returns), "equal_weight"
    if benchmark.dataset is None:
        asset = benchmark.asset
        if asset not in panel.assets:
            raise ConfigError(
                f"{scenario.source}: benchmark asset {asset!r} is not in the data's universe "
                f"{list(panel.assets)[:20]}; name one of them, or use {{dataset: NAME, asset: "
                f"{asset}}} for a separate dataset"
            )
        prices = bars.filter(pl.col("asset") == asset).select("ts", "close")
        label = asset
    else:
        from engine.data import match_ts_type

        _, loaded = _load_source((benchmark.dataset, None, end), scenario)
        assets = loaded["asset"].unique().sort().to_list()
        asset = benchmark.asset
        if asset is None:
            if len(assets) != 1:
                raise ConfigError(
                    f"{scenario.source}: benchmark dataset {benchmark.dataset!r} holds "
                    f"{len(assets)} assets; pick one with benchmark.asset (one of "
                    f"{assets[:20]})"
                )
            asset = assets[0]
        elif asset not in assets:
            raise ConfigError(
                f"{scenario.source}: benchmark dataset {benchmark.dataset!r} has no asset "
                f"{asset!r}; its assets: {assets[:20]}"
            )
        prices = loaded.filter(pl.col("asset") == asset).select("ts", "close")
        prices = match_ts_type(prices, bars["ts"].dtype)
        label = f"{benchmark.dataset}:{asset}"
    # Price the benchmark on the strategy's calendar with its last known close (as-of).
    on_calendar = calendar.join_asof(prices.sort("ts"), on="ts", strategy="backward")
    close = on_calendar["close"].to_numpy()
    if not np.isfinite(close).any():
        raise DataError(
            f"{scenario.source}: benchmark {label} has no price on or before the backtest's "
            f"bars ({calendar['ts'][0]} to {calendar['ts'][-1]}); pick a benchmark that "
            "covers the period."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.concatenate(([0.0], close[1:] / close[:-1] - 1.0))
    returns[~np.isfinite(returns)] = 0.0
    return _returns_frame(panel, returns), label


def _returns_frame(panel: Panel, returns: np.ndarray) -> pl.DataFrame:
    """Stamped like ``BacktestResult.returns`` (the panel's naive UTC ns calendar)."""
    if returns.shape[0] != panel.n_bars:  # pragma: no cover - both come from the same bars
        raise DataError("benchmark calendar does not match the backtest's bars")
    return pl.DataFrame({"ts": pl.Series(panel.ts).cast(pl.Datetime("ns")), "return": returns})
