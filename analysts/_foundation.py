"""Analysts backed by pretrained forecasting models that draw sample paths (Toto, Kronos).

They share one loop: at each forecast bar ``t`` (every ``stride`` bars of the predict
window, forward-filled between), give the model each asset's last ``context`` bars up
to and including ``t``, draw sample paths ``horizon`` bars ahead, and reduce the paths
with the configured aggregate (:mod:`analysts._aggregate`) to ``pred_return``,
``prob_up``, ``uncertainty`` and ``score`` (= ``pred_return``).

As-of rule: a forecast dated ``t`` sees bars up to ``t`` only, and its random draws are
seeded from ``(seed, t)`` alone, so changing or appending later bars never changes it.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from analysts._aggregate import parse_aggregate, summarise_paths
from analysts._bars import as_datetime, check_bars
from analysts._config import ConfiguredAnalyst
from analysts.base import AnalystConfig, TimeLike
from engine.errors import ConfigError, DataError

_OUTPUT = ("ts", "asset", "score", "prob_up", "pred_return", "uncertainty")
# A file in a weights folder holding the last date of the pretraining data (ISO date).
PRETRAINED_FILE = "pretrained_through.txt"


class ForecastConfig(AnalystConfig):
    """What every sample-path analyst shares."""

    horizon: int = Field(5, ge=1, description="bars ahead the forecast looks")
    context: int = Field(256, ge=2, description="bars of history given to the model")
    min_context: int | None = Field(None, ge=2, description="fewest bars before a first "
                                    "forecast (default: the model's own minimum)")
    stride: int = Field(1, ge=1, description="forecast every N bars, forward-filled between")
    aggregate: str = Field("median", description="how paths become one forecast: mean, "
                           "median, quantile_Q, trimmed_mean_X, lower_trimmed_mean_X")
    seed: int = 0
    device: str = "auto"
    threads: int | None = Field(None, ge=1, le=1024, description="torch CPU threads while "
                                "forecasting (default: half the cores, as in training; one "
                                "thread is fastest for tiny models on a busy machine)")
    tuned_configs: str | None = Field(None, description="per-symbol settings promoted from "
                                      "alfred tune (alfred analyst promote)")
    allow_tuned_overlap: bool = Field(False, description="forecast inside or before the "
                                      "period tuned_configs were tuned on (flagged)")
    pretrained_through: date | None = Field(None, description="last date of the model's "
                                            "pretraining data (default: the weights "
                                            f"folder's {PRETRAINED_FILE}, if any)")
    train_start: datetime | date | None = Field(None, description="with fine_tune: no "
                                                "training window starts before this bar")

    @model_validator(mode="after")
    def _train_start_needs_fine_tune(self) -> ForecastConfig:
        if self.train_start is not None and getattr(self, "fine_tune", None) is None:
            raise ValueError("train_start applies to fine-tuning only; add a fine_tune block "
                             "or drop train_start (a pretrained model learns nothing here)")
        return self

    @field_validator("aggregate")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parse_aggregate(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value


class ForecastAnalyst(ConfiguredAnalyst):
    """Base of the sample-path analysts; a subclass provides :meth:`forecast_paths`."""

    columns: ClassVar[tuple[str, ...]] = ("close",)  # bar columns the model reads
    config: ForecastConfig
    _samples: list | None = None

    def predict_samples(self, bars: pl.DataFrame, start: TimeLike | None = None,
                        end: TimeLike | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
        """:meth:`predict`'s signals and the sampled ``horizon``-bar returns behind them:
        a frame ``ts, asset, samples`` (one list of simple returns per forecast bar; with
        ``stride`` > 1 only the bars where the model ran). Per-symbol tuned analysts that
        run their own model contribute signals but no samples."""
        self._samples = []
        try:
            signals = self.predict(bars, start, end)
            collected = self._samples
        finally:
            self._samples = None
        dtype = signals.schema["ts"]
        frame = pl.DataFrame({
            "ts": pl.Series(np.array([t for t, _, _ in collected],
                                     dtype="datetime64[ns]")).cast(dtype),
            "asset": pl.Series([a for _, a, _ in collected], dtype=pl.String),
            "samples": pl.Series([r.tolist() for _, _, r in collected],
                                 dtype=pl.List(pl.Float64))})
        return signals, frame

    def model_min_context(self) -> int:
        """Fewest bars the model can forecast from."""
        return 2

    @property
    def pretrained_through(self) -> date | None:
        """Last date of the pretraining data: the config's ``pretrained_through``, else
        the weights folder's ``pretrained_through.txt``; None for random weights or when
        unknown. A test window on or before it is inside the pretraining period."""
        if self.config.pretrained_through is not None:
            return self.config.pretrained_through
        folder = getattr(self.config, "weights_dir", None)
        file = Path(folder).expanduser() / PRETRAINED_FILE if folder else None
        if file is None or not file.is_file():
            return None
        text = file.read_text().strip()
        try:
            return datetime.fromisoformat(text).date()
        except ValueError:
            raise ConfigError(f"{file} holds {text[:40]!r}, not an ISO date; write the last "
                              f"date of the model's pretraining data, e.g. 2024-01-31") from None

    @abstractmethod
    def forecast_paths(self, contexts: dict[str, np.ndarray], seed: int,
                       stamps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Price paths ``[paths, horizon]`` (close) per asset from its context
        ``[bars, len(columns)]`` (oldest first, the last row is the forecast bar) and
        the context's timestamps ``stamps[asset]`` (datetime64)."""

    def fit(self, bars: pl.DataFrame, until: TimeLike | None = None, *,
            on_epoch: Any = None) -> Self:
        """A pretrained model needs no fit; with a ``fine_tune`` block in the config the
        model adapts to the bars up to ``until`` (from ``train_start``, when set: no
        training window holds an earlier bar) (:meth:`fine_tune`)."""
        frame = check_bars(bars, self.name)
        cut = as_datetime(until, frame["ts"].dtype, "until") if until is not None else \
            frame["ts"].max()
        self._by_symbol = None
        spec = getattr(self.config, "fine_tune", None)
        if spec is not None:
            full = _with_columns(bars, frame, self.columns, self.name)
            window = pl.col("ts") <= cut
            if self.config.train_start is not None:
                first = as_datetime(self.config.train_start, frame["ts"].dtype, "train_start")
                if first >= cut:
                    raise DataError(f"analyst {self.name!r}: train_start {first} is not before "
                                    f"the fit's cut-off {cut}; move train_start earlier or "
                                    "the cut-off later")
                window = window & (pl.col("ts") >= first)
            self.training = self.fine_tune(full.filter(window), spec, on_epoch)
        if self.config.tuned_configs is not None:
            self._fit_symbols(bars, until, on_epoch)
        return self

    def fine_tune(self, bars: pl.DataFrame, spec: Any, on_epoch: Any) -> dict[str, Any]:
        """Adapt the model to ``bars`` (``ts, asset`` and :attr:`columns`, up to the cut);
        returns a summary for the run report. Models that can be fine-tuned override it."""
        raise ConfigError(f"analyst {self.name!r} cannot be fine-tuned")

    # -- per-symbol settings (tuned_configs) ------------------------------------------
    MODEL_KEYS: ClassVar[tuple[str, ...]] = ("weights_dir", "architecture", "seed", "device",
                                             "fine_tune")

    def share_model(self, other: ForecastAnalyst) -> None:
        """Use ``other``'s loaded (and fitted) model; subclasses that hold one override."""

    def _symbol_analysts(self) -> dict[str, ForecastAnalyst]:
        """One analyst per symbol with tuned settings (sharing this one's model when the
        settings that define the model are unchanged); cached."""
        if getattr(self, "_by_symbol", None) is None:
            from analysts._config import build_config
            from analysts._trainable import read_tuned_configs

            tuned = read_tuned_configs(self.config.tuned_configs, self.name)
            base = self.config.model_dump(exclude={"tuned_configs", "allow_tuned_overlap"})
            made: dict[str, ForecastAnalyst] = {}
            by_values: dict[str, ForecastAnalyst] = {}
            for symbol, overrides in tuned.items():
                values = {**base, **overrides}
                key = repr(sorted(values.items()))
                if key not in by_values:
                    config = build_config(type(self.config), f"analyst {self.name!r} "
                                          f"tuned config of {symbol}", values)
                    sub = type(self)(config)
                    if all(getattr(config, k, None) == getattr(self.config, k, None)
                           for k in self.MODEL_KEYS):
                        sub.share_model(self)
                    by_values[key] = sub
                made[symbol] = by_values[key]
            self._by_symbol = made
        return self._by_symbol

    def _fit_symbols(self, bars: pl.DataFrame, until: TimeLike | None,
                     on_epoch: Any) -> None:
        """Symbols whose tuned settings change the model fit their own, on their bars."""
        fitted: set[int] = set()
        for symbol, sub in self._symbol_analysts().items():
            if id(sub) in fitted or all(getattr(sub.config, k, None) == getattr(
                    self.config, k, None) for k in self.MODEL_KEYS):
                continue
            sub.fit(bars.filter(pl.col("asset") == symbol), until, on_epoch=on_epoch)
            fitted.add(id(sub))

    def predict(self, bars: pl.DataFrame, start: TimeLike | None = None,
                end: TimeLike | None = None) -> pl.DataFrame:
        if self.config.tuned_configs is None:
            return self._predict_all(bars, start, end)
        subs = self._symbol_analysts()
        assets = check_bars(bars, self.name)["asset"].unique().sort().to_list()
        groups: dict[int, tuple[ForecastAnalyst, list[str]]] = {}
        for asset in assets:
            sub = subs.get(asset, self)
            groups.setdefault(id(sub), (sub, []))[1].append(asset)
        frames = []
        for sub, members in groups.values():
            part = bars.filter(pl.col("asset").is_in(members))
            runner = sub._predict_all if sub is self else sub.predict
            frames.append(runner(part, start, end))
        return pl.concat(frames).sort("ts", "asset")

    def _predict_all(self, bars: pl.DataFrame, start: TimeLike | None = None,
                     end: TimeLike | None = None) -> pl.DataFrame:
        checked = check_bars(bars, self.name)  # ts, asset, close checks
        frame = _with_columns(bars, checked, self.columns, self.name)
        cfg = self.config
        dtype = frame["ts"].dtype
        lo = as_datetime(start, dtype, "start") if start is not None else None
        hi = as_datetime(end, dtype, "end") if end is not None else None
        need = cfg.min_context or self.model_min_context()
        aggregate = parse_aggregate(cfg.aggregate)
        per_asset = {a: part for (a,), part in frame.partition_by("asset", as_dict=True,
                                                                  maintain_order=True).items()}
        series = {a: (p["ts"].to_numpy(), p.select(self.columns).to_numpy())
                  for a, p in per_asset.items()}
        stamps = frame["ts"].unique().sort()
        keep = np.ones(stamps.len(), dtype=bool)
        if lo is not None:
            keep &= (stamps >= lo).to_numpy()
        if hi is not None:
            keep &= (stamps <= hi).to_numpy()
        window = stamps.filter(pl.Series(keep))
        points = window.to_numpy()[::cfg.stride]
        from analysts.training import cpu_threads  # torch only when an analyst forecasts
        with cpu_threads(cfg.threads):
            rows = self._forecast_rows(points, series, need, aggregate)
        if not rows:
            return _empty(dtype)
        out = pl.DataFrame({
            "ts": pl.Series(np.array([r["ts"] for r in rows])).cast(dtype),
            "asset": [r["asset"] for r in rows],
            **{c: [r[c] for r in rows] for c in ("pred_return", "prob_up", "uncertainty")}})
        out = out.with_columns(pl.col("pred_return").alias("score"))
        if cfg.stride > 1:  # each forecast holds until the next forecast bar
            grid = frame.select("ts", "asset").filter(pl.col("ts").is_in(window.implode()))
            out = (grid.join(out, on=["ts", "asset"], how="left").sort("asset", "ts")
                   .with_columns(pl.col(c).forward_fill().over("asset")
                                 for c in ("score", "prob_up", "pred_return", "uncertainty"))
                   .drop_nulls("pred_return"))
        return out.select(_OUTPUT).sort("ts", "asset")

    def _forecast_rows(self, points: np.ndarray, series: dict[str, tuple[np.ndarray, np.ndarray]],
                       need: int, aggregate: Any) -> list[dict[str, Any]]:
        """One row per (forecast bar, asset) with enough history: the paths summarised."""
        cfg = self.config
        rows: list[dict[str, Any]] = []
        for t in points:
            contexts, last, context_ts = {}, {}, {}
            for asset, (ts, values) in series.items():
                i = int(np.searchsorted(ts, t, side="right"))
                if i == 0 or ts[i - 1] != t or i < need:
                    continue  # no bar at t, or too little history yet
                contexts[asset] = values[max(0, i - cfg.context):i]
                context_ts[asset] = ts[max(0, i - cfg.context):i]
                last[asset] = values[i - 1, self.columns.index("close")]
            if not contexts:
                continue
            paths = self.forecast_paths(contexts, _seed(cfg.seed, t), context_ts)
            for asset, p in paths.items():
                p = np.asarray(p, dtype=np.float64)
                if p.ndim != 2 or p.shape[1] < 1 or not np.isfinite(p).all():
                    raise DataError(f"analyst {self.name!r}: the model returned paths of shape "
                                    f"{p.shape} (or non-finite values) for {asset} at {t}")
                s = summarise_paths(p[None], np.array([last[asset]]), aggregate)
                if self._samples is not None:  # predict_samples is collecting the paths
                    self._samples.append((t, asset, p[:, -1] / last[asset] - 1.0))
                rows.append({"ts": t, "asset": asset, "pred_return": float(s["pred_return"][0]),
                             "prob_up": float(s["prob_up"][0]),
                             "uncertainty": float(s["uncertainty"][0])})
        return rows


def _seed(seed: int, t: np.datetime64) -> int:
    """A seed from the run's seed and the forecast bar alone (not the window, not the data)."""
    stamp = int(np.datetime64(t, "s").astype(np.int64))
    return int((seed * 1_000_003 + stamp) % (2**31 - 1))


def _with_columns(bars: pl.DataFrame, checked: pl.DataFrame, columns: tuple[str, ...],
                  name: str) -> pl.DataFrame:
    """``ts, asset`` and the model's columns, sorted by (asset, ts); missing OHLC columns
    fall back to the close, missing volume/amount to NaN for the model to handle."""
    extra = [c for c in columns if c != "close"]
    if not extra:
        return checked
    keep = [c for c in extra if c in bars.columns]
    joined = checked.join(bars.select("ts", "asset", *keep).with_columns(
        pl.col("ts").cast(checked["ts"].dtype), pl.col("asset").cast(pl.String)),
        on=["ts", "asset"], how="left")
    fills = []
    for c in extra:
        if c not in keep:
            fills.append((pl.col("close") if c in ("open", "high", "low")
                          else pl.lit(float("nan"))).alias(c))
    joined = joined.with_columns(fills) if fills else joined
    values = joined.select([c for c in columns if c in ("open", "high", "low")])
    if values.width and values.select(pl.all().is_nan().any()).row(0).count(True):
        raise DataError(f"analyst {name!r}: bars hold NaN prices; validate them first")
    return joined.select("ts", "asset", *columns).with_columns(
        pl.col(c).cast(pl.Float64) for c in columns).sort("asset", "ts")


def _empty(dtype) -> pl.DataFrame:
    return pl.DataFrame(schema={"ts": dtype, "asset": pl.String, "score": pl.Float64,
                                "prob_up": pl.Float64, "pred_return": pl.Float64,
                                "uncertainty": pl.Float64})
