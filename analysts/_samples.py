"""From bars to model-ready rows: features, labels, eligibility of windows, time cuts.

Kept apart from the analysts so the as-of reasoning sits in one place:

* features look backward only (see ``analysts.features``);
* a window ending at row ``t`` is *eligible* when ``t`` and the ``window - 1`` rows of
  the same asset before it all have every feature (a gap in the middle breaks the run);
* a training row dated ``t`` counts only if its label was observed by the cut-off
  (``label_ts <= until``), and training rows stop ``horizon`` bars before the validation
  period starts (an embargo), so no label straddles the boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from analysts.features import (
    FeatureConfig,
    FeatureSet,
    add_targets,
    build_features,
    resolve_groups,
    target_names,
    warmup_bars,
)
from engine.errors import DataError


@dataclass(frozen=True, eq=False)
class Rows:
    """A feature frame sorted by (asset, ts) with ``_eligible`` and label columns."""

    frame: pl.DataFrame
    columns: tuple[str, ...]
    warmup: int
    horizon: int

    @property
    def label_up(self) -> str:
        return target_names(self.horizon)[0]

    @property
    def label_return(self) -> str:
        return target_names(self.horizon)[1]

    @property
    def label_ts(self) -> str:
        return target_names(self.horizon)[2]


# The feature store (see ``feature_store``): the full dataset and the rows built on it.
_STORE: dict[str, Any] = {"bars": None, "rows": {}}


@contextmanager
def feature_store(bars: pl.DataFrame) -> Iterator[None]:
    """Build features once on ``bars`` and serve every time slice of them from that.

    Walk-forward folds fit and predict on many time slices of one dataset. Every feature
    is causal (its value at bar t depends on bars up to t only; tested), so a served row
    never holds information from after its own bar. A served slice carries the values
    computed with all the history before it: for windowed features (returns, moving
    averages, rolling volatility) that equals a rebuild on the slice wherever the rebuild
    is warmed up; for recursive ones (RSI, MACD, ATR: exponential smoothing) it is the
    value a live system holding the full history would compute, where a rebuild would
    restart the smoothing at the slice's first bar. Slices are checked by content, not
    trusted: bars that differ from the stored ones are built afresh. Labels of rows past a
    fit's cut-off exist in the full build but are never used: a fit keeps only rows whose
    label is observed by its cut-off.
    """
    previous = dict(_STORE)
    if _STORE["bars"] is not bars:
        _STORE.update(bars=bars, rows={})
    try:
        yield
    finally:
        if previous["bars"] is None:
            _STORE.update(bars=None, rows={})


def _from_store(bars: pl.DataFrame, key: tuple, build) -> Rows | None:
    store = _STORE["bars"]
    if store is None or bars.height == 0 or bars.columns != store.columns:
        return None
    first, last = bars["ts"].min(), bars["ts"].max()
    if store is not bars:
        part = store.filter((pl.col("ts") >= first) & (pl.col("ts") <= last))
        if part.height != bars.height or not part.sort(["asset", "ts"]).equals(
                bars.sort(["asset", "ts"])):
            return None
    if key not in _STORE["rows"]:
        _STORE["rows"][key] = build(store)
    full: Rows = _STORE["rows"][key]
    frame = full.frame.filter((pl.col("ts") >= first) & (pl.col("ts") <= last))
    if frame.height == 0:
        return None
    return Rows(frame, full.columns, full.warmup, full.horizon)


def feature_rows(bars: pl.DataFrame, features: FeatureConfig, horizon: int, window: int,
                 vix: pl.DataFrame | None = None, *, name: str = "analyst",
                 what: str = "features", with_label: bool = True) -> Rows:
    """Features + labels for ``horizon`` + ``_eligible`` (a full window ends here).

    Bars too short for even one sample fail here, with the number of bars needed,
    before the feature builder would complain about all-NaN columns. Inside
    :func:`feature_store`, time slices of the stored bars are served from one build.
    """
    if _STORE["bars"] is not None:
        vix_key = None if vix is None else (vix.height, str(vix["ts"].max()))
        key = (features.model_dump_json(), horizon, window, vix_key, with_label)
        stored = _from_store(bars, key, lambda full: _build_rows(
            full, features, horizon, window, vix, name=name, what=what,
            with_label=with_label))
        if stored is not None:
            return stored
    return _build_rows(bars, features, horizon, window, vix, name=name, what=what,
                       with_label=with_label)


def _build_rows(bars: pl.DataFrame, features: FeatureConfig, horizon: int, window: int,
                vix: pl.DataFrame | None = None, *, name: str = "analyst",
                what: str = "features", with_label: bool = True) -> Rows:
    warmup = warmup_bars(features, resolve_groups(features, bars, vix is not None))
    longest = bars.group_by("asset").len()["len"].max()
    stub = Rows(pl.DataFrame(), (), warmup, horizon)
    if longest is None or longest < bars_needed(stub, window, with_label):
        raise too_few_rows(name, stub, window, bars, what, with_label)
    feats: FeatureSet = build_features(bars, features, vix=vix)
    frame = add_targets(feats.frame, (horizon,))
    ready = feats.ready()
    broken = (~ready).cast(pl.Int32).cum_sum().over("asset")
    run = ready.cast(pl.Int32).cum_sum().over("asset", broken)
    frame = frame.with_columns(ready.alias("_ready")).with_columns(
        (pl.col("_ready") & (run >= window)).alias("_eligible"))
    return Rows(frame, feats.columns, warmup_bars(features, feats.groups), horizon)


def bars_needed(rows: Rows, window: int, with_label: bool = True) -> int:
    """Bars one asset needs for a single sample (with a known label when training)."""
    return rows.warmup + window - 1 + (rows.horizon if with_label else 0)


def too_few_rows(name: str, rows: Rows, window: int, history: pl.DataFrame,
                 what: str, with_label: bool = True) -> DataError:
    longest = history.group_by("asset").len().sort("len", descending=True).row(0)
    need = bars_needed(rows, window, with_label)
    parts = f"feature warm-up {rows.warmup} + window {window} - 1" + (
        f" + horizon {rows.horizon}" if with_label else "")
    split = (", and a train/validation split needs well more than that" if with_label else "")
    return DataError(
        f"analyst {name!r}: too few rows for {what}: a sample needs {need} bars of one asset "
        f"({parts}){split}; the longest history, {longest[0]!r}, has {longest[1]} bars. Load "
        f"more history, move the cut-off later or shorten window/horizon/features.ma_windows"
    )


@dataclass(frozen=True)
class FitCut:
    """Training and validation rows of one fit (row positions in ``Rows.frame``)."""

    train_end: datetime
    train_rows: np.ndarray
    val_rows: np.ndarray


def fit_cut(rows: Rows, until: datetime, validation_fraction: float, name: str,
            history: pl.DataFrame, window: int) -> FitCut:
    """Train rows (label known by the validation start) and validation rows (label known
    by ``until``); the validation period is the last fraction of eligible timestamps."""
    frame = rows.frame.with_row_index("_pos")
    usable = frame.filter(
        pl.col("_eligible") & (pl.col("ts") <= until) & pl.col(rows.label_ts).is_not_null()
        & (pl.col(rows.label_ts) <= until)
    )
    if usable.height == 0:
        raise too_few_rows(name, rows, window, history.filter(pl.col("ts") <= until),
                           f"a fit up to {until}")
    stamps = usable["ts"].unique().sort()
    n_val = int(np.ceil(stamps.len() * validation_fraction)) if validation_fraction > 0 else 0
    if validation_fraction > 0 and (n_val < 1 or stamps.len() - n_val < 1):
        raise too_few_rows(name, rows, window, history.filter(pl.col("ts") <= until),
                           f"a train/validation split ({stamps.len()} usable timestamps)")
    train_end = stamps[stamps.len() - n_val - 1]
    train = usable.filter((pl.col("ts") <= train_end) & (pl.col(rows.label_ts) <= train_end))
    val = usable.filter(pl.col("ts") > train_end)
    if train.height == 0:
        raise too_few_rows(name, rows, window, history.filter(pl.col("ts") <= until),
                           "a training period before the validation period")
    return FitCut(train_end, train["_pos"].to_numpy(), val["_pos"].to_numpy())
