"""What the trainable analysts (``lstm``, ``magnitude``) share: fit, predict, save, load.

An analyst holds one fitted *unit* (model + scaler + target scale) for the whole
universe, or one per asset with ``per_symbol: true`` (each with its own hyperparameters
when ``tuned_configs`` points at a file written by ``alfred analyst promote``).

The as-of rule, concretely: ``fit(bars, until)`` uses rows dated ``<= until`` whose
labels were observed by ``until``; the scaler sees the training period only; ``predict``
computes backward-looking features and feeds each model a window ending at the row's own
ts. Nothing a prediction dated ``t`` reads comes from after ``t``.

Torch is imported inside the methods: ``import analysts`` must stay light.
"""

from __future__ import annotations

import json
import shutil
import uuid
import warnings
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from pydantic import Field

from analysts._bars import as_datetime, check_bars, in_window
from analysts._config import ConfiguredAnalyst, build_config
from analysts._samples import Rows, feature_rows, fit_cut
from analysts.base import AnalystConfig, TimeLike
from analysts.features import FeatureConfig, FeatureScaler
from analysts.training import TrainConfig
from engine.errors import ConfigError, DataError
from engine.files import swap_in

FORMAT_VERSION = 1
POOLED = "*"  # unit key of the model shared by every asset


class TrainableConfig(AnalystConfig):
    """Settings every trainable analyst has (model-specific ones live in subclasses).

    ``horizon``: bars ahead the label looks. ``window``: feature rows per sample.
    ``validation_fraction``: the latest share of the fit period held out for early
    stopping. ``vix_dataset``: a dataset name (e.g. ``vix``) whose close feeds VIX
    features. ``per_symbol``: one model per asset instead of one pooled model.
    ``tuned_configs``: per-symbol settings promoted from a tuning run (implies
    per_symbol); forecasting inside or before their tuning period is refused unless
    ``allow_tuned_overlap``. ``train_start``: the first bar a training (or validation) sample may be
    dated; earlier bars still feed the features' warm-up and the first windows, but no
    label before it is learnt from (default: the data's first bar).
    """

    horizon: int = Field(1, ge=1)
    window: int = Field(1, ge=1)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    validation_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    vix_dataset: str | None = None
    per_symbol: bool = False
    tuned_configs: str | None = None
    allow_tuned_overlap: bool = False
    train_start: datetime | date | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)


@dataclass
class Unit:
    """One fitted model with what it needs to predict: its config, scaler, target scale."""

    config: TrainableConfig
    model: Any  # torch.nn.Module
    scaler: FeatureScaler
    target_scale: float
    fit_until: datetime
    train_end: datetime | None = None  # last ts of the training period (scaler window)
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    # first/last ts of the training samples and of the validation samples; why it stopped
    train_window: tuple[datetime, datetime] | None = None
    val_window: tuple[datetime, datetime] | None = None
    stop_reason: str = ""


class TrainableAnalyst(ConfiguredAnalyst):
    """Base of ``lstm`` and ``magnitude``: subclasses say how to build the model and loss
    and how to turn outputs into signal columns."""

    config: TrainableConfig
    output_columns: ClassVar[tuple[str, ...]]

    def __init__(self, config: AnalystConfig | None = None, /, **values: Any) -> None:
        super().__init__(config, **values)
        self.units: dict[str, Unit] = {}

    # -- what a subclass provides ------------------------------------------------------
    @abstractmethod
    def build_model(self, config: TrainableConfig, n_features: int) -> Any:
        """A fresh torch module for ``n_features`` inputs per row."""

    @abstractmethod
    def build_loss(self, config: TrainableConfig) -> Any:
        """The training loss (callable on outputs and labels)."""

    @abstractmethod
    def labels(self, rows: Rows, positions: np.ndarray) -> np.ndarray:
        """Raw labels for the rows at ``positions``."""

    @abstractmethod
    def signals(self, outputs: np.ndarray, unit: Unit) -> dict[str, np.ndarray]:
        """Signal columns from raw model outputs."""

    def scale_target(self, labels: np.ndarray) -> float:
        """Divisor applied to labels before training (1 = none)."""
        return 1.0

    # -- fit -------------------------------------------------------------------------------
    @property
    def is_fit(self) -> bool:
        return bool(self.units)

    def _vix(self, config: TrainableConfig) -> pl.DataFrame | None:
        if config.vix_dataset is None:
            return None
        from engine.data import load_bars

        return load_bars(config.vix_dataset)

    def unit_configs(self, assets: list[str]) -> dict[str, TrainableConfig]:
        """The config of each unit to fit: one pooled, or one per asset (tuned if given)."""
        config = self.config
        if not (config.per_symbol or config.tuned_configs):
            return {POOLED: config}
        tuned = read_tuned_configs(config.tuned_configs, self.name) if config.tuned_configs else {}
        base = config.model_dump(exclude={"per_symbol", "tuned_configs",
                                          "allow_tuned_overlap"})
        out = {}
        for asset in assets:
            values = _merge(base, tuned.get(asset, {}))
            out[asset] = build_config(type(config), f"analyst {self.name!r} ({asset})", values)
        return out

    def fit(self, bars: pl.DataFrame, until: TimeLike | None = None, *,
            on_epoch: Any = None, executor: Any = None) -> Self:
        """Train on bars dated ``<= until`` (all bars when None); returns self.

        ``on_epoch(epoch, train_loss, val_loss)`` is called after every epoch (tuning uses
        it to prune bad trials; it may raise to stop). ``executor`` (a spec for
        :func:`engine.executor.make_executor`) trains per-symbol models in parallel; each
        model is seeded from its own config, so the result does not depend on it."""
        checked = check_bars(bars, self.name)
        until_dt = (checked["ts"].max() if until is None
                    else as_datetime(until, checked["ts"].dtype, "until"))
        history = bars.filter(pl.col("ts") <= until_dt)
        if history.height == 0:
            raise DataError(f"analyst {self.name!r}: no bars on or before until={until_dt}; "
                            f"the bars start at {checked['ts'].min()}")
        assets = sorted(history["asset"].unique().to_list())
        configs = self.unit_configs(assets)
        parts = {key: history if key == POOLED else history.filter(pl.col("asset") == key)
                 for key in configs}
        if executor is not None and len(configs) > 1 and on_epoch is None:
            self.units = self._fit_units_fanned(parts, configs, until_dt, executor)
            return self
        self.units = {key: self._fit_unit(parts[key], config, until_dt, key, on_epoch)
                      for key, config in configs.items()}
        return self

    def _fit_units_fanned(self, parts: dict[str, pl.DataFrame], configs: dict,
                          until: datetime, executor: Any) -> dict[str, Unit]:
        from engine.errors import RunError
        from engine.executor import Task, make_executor

        tasks = [Task(key=key, fn=fit_unit_task, config={"analyst": self.name, "unit": key},
                      args=(type(self), self.config, parts[key], config, until, key))
                 for key, config in configs.items()]
        units = {}
        with make_executor(executor) as ex:
            for result in ex.run(tasks, progress=f"training {self.name} per symbol"):
                if not result.ok:
                    if result.error_type in ("DataError", "ConfigError"):
                        last = result.error_line()
                        raise DataError(f"analyst {self.name!r} ({result.key}): "
                                        f"{last.split(': ', 1)[-1]}")
                    raise RunError(f"{result.describe_failure()}\n{result.error}")
                units[result.key] = result.value
        return units

    def _fit_unit(self, history: pl.DataFrame, config: TrainableConfig, until: datetime,
                  key: str, on_epoch: Any = None) -> Unit:
        from analysts.training import SampleSet, seed_everything, train_model

        rows = feature_rows(history, config.features, config.horizon, config.window,
                            self._vix(config), name=self.name, what=f"a fit up to {until}")
        first = _train_start(config, history, until, self.name)
        if first is not None:  # samples dated before train_start are not learnt from
            rows = Rows(rows.frame.with_columns(pl.col("_eligible") & (pl.col("ts") >= first)),
                        rows.columns, rows.warmup, rows.horizon)
        cut = fit_cut(rows, until, config.validation_fraction, self.name, history,
                      config.window)
        in_training = pl.col("_ready") & (pl.col("ts") <= cut.train_end)
        if first is not None:
            in_training = in_training & (pl.col("ts") >= first)
        scaler = FeatureScaler().fit(rows.frame.filter(in_training), rows.columns)
        x = _scaled(rows, scaler)
        y_train = self.labels(rows, cut.train_rows)
        y_val = self.labels(rows, cut.val_rows)
        scale = self.scale_target(y_train)
        train = SampleSet.from_numpy(x, cut.train_rows, y_train / scale, config.window)
        val = SampleSet.from_numpy(x, cut.val_rows, y_val / scale, config.window)
        seed_everything(config.train.seed)
        model = self.build_model(config, x.shape[1])
        train_config = config.train
        if train_config.checkpoint_dir is not None and key != POOLED:
            train_config = train_config.model_copy(
                update={"checkpoint_dir": str(Path(train_config.checkpoint_dir) / key)})
        result = train_model(model, self.build_loss(config), train, val, train_config,
                             on_epoch=on_epoch)
        model.to("cpu")
        stamps = rows.frame["ts"]
        return Unit(config, model, scaler, float(scale), until, cut.train_end, result.history,
                    result.best_epoch, result.seconds,
                    _span(stamps.gather(cut.train_rows)), _span(stamps.gather(cut.val_rows)),
                    result.stop_reason)

    def in_sample_until(self) -> dict[str, datetime]:
        """Per model (``*`` the pooled one, else the asset) the last bar of its training
        period: forecasts dated after it (the validation slice, the test) are out of
        sample, and only they calibrate ``prob_up`` by default (analysts.calibration)."""
        return {key: unit.train_end or unit.fit_until for key, unit in self.units.items()}

    def fit_summary(self) -> dict[str, Any]:
        """What the fit learnt, for the run folder (``analysts.json``, ``training.json``):
        per model (``*`` the pooled one, else the asset) the feature list, the training and
        validation windows (first and last sample's bar), per-epoch train and validation
        loss, the best epoch and why training stopped."""
        if not self.units:
            return {}
        units = {}
        for key, unit in sorted(self.units.items()):
            units[key] = {
                "features": list(unit.scaler.columns),
                "train_window": _iso_span(unit.train_window),
                "validation_window": _iso_span(unit.val_window),
                "fit_until": unit.fit_until.isoformat(),
                "epochs_run": len(unit.history), "best_epoch": unit.best_epoch,
                "stop_reason": unit.stop_reason, "seconds": round(unit.seconds, 3),
                "history": [{"epoch": int(h["epoch"]), "train_loss": h["train_loss"],
                             "val_loss": h.get("val_loss")} for h in unit.history],
            }
        return {"training": {"analyst": self.name, "units": units}}

    # -- predict ---------------------------------------------------------------------------
    def predict(self, bars: pl.DataFrame, start: TimeLike | None = None,
                end: TimeLike | None = None) -> pl.DataFrame:
        """Signals dated in ``[start, end]``; each uses a window ending at its own ts."""
        if not self.units:
            raise ConfigError(f"analyst {self.name!r} is not fit; call fit(bars, until) or "
                              f"load a saved one with analysts.load_analyst(path)")
        check_bars(bars, self.name)
        frames = []
        for key, unit in self.units.items():
            part = bars if key == POOLED else bars.filter(pl.col("asset") == key)
            if part.height == 0:
                continue
            frames.append(self._predict_unit(part, unit, start, end))
        if self.config.per_symbol or self.config.tuned_configs:
            unseen = sorted(set(bars["asset"].unique().to_list()) - set(self.units))
            if unseen:
                warnings.warn(f"analyst {self.name!r} has no per-symbol model for {unseen}; "
                              f"they get no signal (fit on bars that include them)",
                              stacklevel=2)
        columns = ("ts", "asset", *self.output_columns)
        if not frames:
            return pl.DataFrame(schema={c: bars.schema[c] if c in ("ts", "asset")
                                        else pl.Float64 for c in columns})
        return pl.concat(frames).select(columns).sort("ts", "asset")

    def _predict_unit(self, bars: pl.DataFrame, unit: Unit, start: TimeLike | None,
                      end: TimeLike | None) -> pl.DataFrame:
        import torch

        config = unit.config
        rows = feature_rows(bars, config.features, config.horizon, config.window,
                            self._vix(config), name=self.name, what="a prediction",
                            with_label=False)
        unit.scaler.check_columns(rows.columns, where="bars' feature")
        frame = rows.frame.with_row_index("_pos")
        wanted = in_window(frame.filter(pl.col("_eligible")), start, end)
        if wanted.height == 0:
            return wanted.select("ts", "asset").with_columns(
                [pl.lit(None, pl.Float64).alias(c) for c in self.output_columns])
        x = _scaled(rows, unit.scaler)
        positions = wanted["_pos"].to_numpy()
        offsets = np.arange(-config.window + 1, 1)
        from analysts.training import cpu_threads

        model = unit.model
        model.eval()
        outputs = []
        with torch.no_grad(), cpu_threads(config.train.threads):
            for lo in range(0, len(positions), 4096):
                ends = positions[lo:lo + 4096]
                batch = torch.from_numpy(x[ends[:, None] + offsets])
                outputs.append(model(batch).float().numpy())
        values = self.signals(np.concatenate(outputs).astype(np.float64), unit)
        return wanted.select("ts", "asset").with_columns(
            [pl.Series(name, column) for name, column in values.items()])

    # -- save / load -------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` + one ``.safetensors`` per unit into the folder ``path``.

        Written into a temporary sibling folder and renamed into place, so a crash never
        leaves a folder that looks like a saved analyst.
        """
        from analysts.training import save_weights

        if not self.units:
            raise ConfigError(f"analyst {self.name!r} is not fit; nothing to save")
        target = Path(path)
        staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            meta: dict[str, Any] = {"format_version": FORMAT_VERSION, "analyst": self.name,
                                    "config": self.config.model_dump(mode="json"), "units": {}}
            for i, (key, unit) in enumerate(sorted(self.units.items())):
                weights = f"model-{i}.safetensors"
                save_weights(unit.model, staging / weights)
                meta["units"][key] = {
                    "weights": weights, "config": unit.config.model_dump(mode="json"),
                    "scaler": unit.scaler.to_dict(), "target_scale": unit.target_scale,
                    "fit_until": unit.fit_until.isoformat(),
                    "train_end": None if unit.train_end is None else unit.train_end.isoformat(),
                    "best_epoch": unit.best_epoch,
                    "history": unit.history, "seconds": unit.seconds,
                    "train_window": _iso_span(unit.train_window),
                    "val_window": _iso_span(unit.val_window), "stop_reason": unit.stop_reason,
                }
            (staging / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
            if target.exists():
                _check_replaceable(target)
            swap_in(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Rebuild a saved analyst; weights are checked against the saved config."""
        from analysts.training import load_weights

        meta = read_meta(Path(path))
        if meta["analyst"] != cls.name:
            raise DataError(f"{path} holds a {meta['analyst']!r} analyst, not {cls.name!r}; "
                            f"use analysts.load_analyst(path)")
        analyst = cls(**meta["config"])
        for key, saved in meta["units"].items():
            try:
                config = build_config(cls.config_class, f"saved analyst {path} ({key})",
                                      saved["config"])
                scaler = FeatureScaler.from_dict(saved["scaler"])
                model = analyst.build_model(config, len(scaler.columns))
                load_weights(model, Path(path) / saved["weights"])
                analyst.units[key] = Unit(
                    config, model.eval(), scaler, float(saved["target_scale"]),
                    datetime.fromisoformat(saved["fit_until"]),
                    datetime.fromisoformat(saved["train_end"]) if saved.get("train_end") else None,
                    saved.get("history", []),
                    int(saved.get("best_epoch", -1)), float(saved.get("seconds", 0.0)),
                    _parse_span(saved.get("train_window")), _parse_span(saved.get("val_window")),
                    str(saved.get("stop_reason", "")))
            except KeyError as exc:
                raise DataError(f"{path}/config.json: unit {key!r} lacks {exc}; the file is "
                                f"incomplete, save the analyst again") from None
        return analyst


def _train_start(config: TrainableConfig, history: pl.DataFrame, until: datetime,
                 name: str) -> datetime | None:
    """``config.train_start`` in the bars' time type, checked against the fit's cut-off."""
    if config.train_start is None:
        return None
    first = as_datetime(config.train_start, history["ts"].dtype, "train_start")
    if first >= until:
        raise DataError(f"analyst {name!r}: train_start {first} is not before the fit's "
                        f"cut-off {until}; move train_start earlier or the cut-off later")
    return first


def _span(stamps: pl.Series) -> tuple[datetime, datetime] | None:
    return None if stamps.len() == 0 else (stamps.min(), stamps.max())


def _iso_span(span: tuple[datetime, datetime] | None) -> list[str] | None:
    return None if span is None else [span[0].isoformat(), span[1].isoformat()]


def _parse_span(values: list[str] | None) -> tuple[datetime, datetime] | None:
    if not values:
        return None
    return datetime.fromisoformat(values[0]), datetime.fromisoformat(values[1])


def _scaled(rows: Rows, scaler: FeatureScaler) -> np.ndarray:
    x = scaler.transform(rows.frame.select(rows.columns))
    x[~np.isfinite(x)] = 0.0  # warm-up rows; never inside an eligible window
    return x


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_tuned_configs(path: str, analyst: str) -> dict[str, dict[str, Any]]:
    """Per-symbol settings from a promoted file: ``{"analyst": ..., "symbols": {SYM: {...}}}``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"analyst {analyst!r}: tuned_configs file {str(file)!r} does not "
                          f"exist; write it with `alfred analyst promote TUNE_DIR`")
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"analyst {analyst!r}: cannot read tuned_configs {file} ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("symbols"), dict):
        raise ConfigError(f"analyst {analyst!r}: {file} is not a promoted tuning file (it needs "
                          f"a 'symbols' mapping); write it with `alfred analyst promote`")
    if data.get("analyst") not in (None, analyst):
        raise ConfigError(f"analyst {analyst!r}: {file} holds configs for analyst "
                          f"{data.get('analyst')!r}")
    for symbol, values in data["symbols"].items():
        bad = {"per_symbol", "tuned_configs"} & set(values)
        if bad:
            raise ConfigError(f"analyst {analyst!r}: {file}: {symbol} sets {sorted(bad)}, which "
                              f"cannot be tuned per symbol; remove them")
    return data["symbols"]


def _check_replaceable(target: Path) -> None:
    """Only a folder a saved analyst wrote may be replaced (never a folder of yours)."""
    try:
        read_meta(target)
    except DataError:
        raise ConfigError(f"{target} exists and is not a saved analyst; Alfred will not "
                          "replace it. Choose another folder") from None


def read_meta(path: Path) -> dict[str, Any]:
    file = path / "config.json"
    if not file.is_file():
        raise DataError(f"{path} is not a saved analyst (no config.json); save one with "
                        f"analyst.save(path) or `alfred analyst train`")
    try:
        meta = json.loads(file.read_text())
    except ValueError as exc:
        raise DataError(f"{file} is not valid JSON ({exc}); save the analyst again") from None
    for key in ("format_version", "analyst", "config", "units"):
        if key not in meta:
            raise DataError(f"{file} lacks {key!r}; it was not written by analyst.save")
    if meta["format_version"] != FORMAT_VERSION:
        raise DataError(f"{file} has format_version {meta['format_version']}; this Alfred "
                        f"reads version {FORMAT_VERSION}. Retrain and save the analyst")
    return meta


def fit_unit_task(cls: type[TrainableAnalyst], analyst_config: Any, part: pl.DataFrame,
                  config: TrainableConfig, until: datetime, key: str) -> Unit:
    """One per-symbol model trained in an executor worker (module level: it must pickle)."""
    from engine.executor import apply_worker_threads

    apply_worker_threads()
    return cls(analyst_config)._fit_unit(part, config, until, key)
