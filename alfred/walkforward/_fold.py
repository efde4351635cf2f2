"""One fold's analyst work: fit on the training window, forecast the test window.

This is the expensive part of a walk-forward (model training), so it is what fans out
through the executor; the backtests that follow are milliseconds and run in order in
the parent, because each fold starts with the capital the previous one ended with.

Causal features are computed once per worker process for the whole dataset (the
analysts' feature store) and sliced per fold, instead of being rebuilt for every fold:
a causal feature at bar t depends on bars up to t only, so a fold's rows hold nothing
from after their own bar (tested: changing later bars changes nothing fitted), and the
labels of bars past a fold's cut-off are never used by a fit (the fit keeps rows whose
label is observed by then). Recursive features (RSI, MACD, ATR) carry their smoothing
from the start of the data rather than restarting it at the training window's start.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alfred.scenario import Scenario

_HISTORY: dict[tuple, pl.DataFrame] = {}  # per worker process: the dataset, loaded once


def load_history(scenario: Scenario) -> tuple[str, pl.DataFrame]:
    """Every bar of the scenario's data up to data.end (no start cut: training windows
    may reach before data.start), loaded once per process."""
    from alfred.inputs import resolve_source
    from engine.data import load_bars, resample_bars

    spec = scenario.data
    source = resolve_source(spec.source, scenario.base_dir)
    key = (str(source), tuple(spec.assets or ()), spec.end, spec.frequency)
    if key not in _HISTORY:
        bars = load_bars(source, assets=spec.assets, end=spec.end)
        if spec.frequency is not None:
            bars = resample_bars(bars, spec.frequency)
        _HISTORY.clear()
        _HISTORY[key] = bars
    return str(source), _HISTORY[key]


def build_fold_analysts(scenario: Scenario, validation: float | None) -> list:
    from alfred.inputs import build_analysts
    from analysts import TrainableAnalyst

    analysts = build_analysts(scenario)
    if validation is None:
        return analysts
    out = []
    for analyst in analysts:
        if isinstance(analyst, TrainableAnalyst):
            analyst = type(analyst)(analyst.config.model_copy(
                update={"validation_fraction": validation}))
        out.append(analyst)
    return out


def fit_fold(analysts: list, history: pl.DataFrame, train_start: datetime,
             train_end: datetime) -> list:
    """Fit every analyst on the bars of the training window only."""
    window = history.filter((pl.col("ts") >= train_start) & (pl.col("ts") <= train_end))
    for analyst in analysts:
        analyst.fit(window, until=train_end)
    return analysts


def predict_fold(analysts: list, history: pl.DataFrame, test_start: datetime,
                 test_end: datetime) -> pl.DataFrame:
    """Merged signals for the test window; each forecast sees bars up to its own ts (the
    analysts' as-of rule), and no bar after the window is even passed in."""
    from alfred.inputs import merge_signals

    visible = history.filter(pl.col("ts") <= test_end)
    frames = [a.predict(visible, start=test_start, end=test_end) for a in analysts]
    return merge_signals(frames)


def forecast_metrics(analyst, signals: pl.DataFrame, history: pl.DataFrame,
                     test_start: datetime, test_end: datetime, train_end: datetime
                     ) -> tuple[dict[str, Any] | None, pl.DataFrame | None]:
    """How the analyst's forecasts scored on the test window next to the baselines
    (analysts.evaluation: zero, drift and majority learnt from labels observed by
    ``train_end``, last, always_up), with DM / direction tests, rank IC, a verdict and
    the model's notes (random weights, a test window inside its pretraining period,
    tuned hyperparameters that saw it -- then ``tuned_overlap`` marks the row);
    and the scored rows (for the pooled tests over folds). None for an analyst with
    neither ``pred_return`` nor ``prob_up``."""
    from analysts.evaluation import (
        baseline_frame,
        forecast_tests,
        model_notes,
        predictor_metrics,
        tuned_overlap,
    )

    keep = [c for c in ("prob_up", "pred_return") if c in signals.columns]
    if not keep:
        return None, None
    horizon = int(getattr(analyst.config, "horizon", 1) or 1)
    base, majority_up = baseline_frame(history, train_end, horizon)
    rows = (base.join(signals.select("ts", "asset", *keep), on=["ts", "asset"])
            .filter((pl.col("ts") >= test_start) & (pl.col("ts") <= test_end))
            .drop_nulls().filter(pl.col("realised").is_finite()).sort("ts", "asset"))
    if rows.height == 0:
        return None, None
    metrics = predictor_metrics(rows, majority_up)
    tests = forecast_tests(rows, horizon, majority_up)
    model = metrics["model"]
    out: dict[str, Any] = {"horizon": horizon, "rows": rows.height,
                           "pct_return_mae": model["pct_return_mae"],
                           "sign_accuracy": model["sign_accuracy"]}
    for name in ("zero", "drift", "last"):
        out[f"{name}_pct_return_mae"] = metrics[name]["pct_return_mae"]
        out[f"{name}_dm_p"] = tests["dm"].get(name, {}).get("p_better", float("nan"))
    out.update(accuracy=model["accuracy"], majority_accuracy=metrics["majority"]["accuracy"],
               always_up_accuracy=metrics["always_up"]["accuracy"],
               majority_direction_p=tests["direction"]["majority"]["hac_p"],
               auc=tests["auc"], rank_ic=tests["ic"]["rank_ic"],
               rank_ic_t=tests["ic"]["rank_ic_t"], verdict=tests["verdict"],
               tuned_overlap=tuned_overlap(analyst, test_start, test_end),
               notes="; ".join(model_notes(analyst, test_start, test_end)))
    return out, rows.with_columns(pl.lit(majority_up).alias("majority"))


def fold_task(tree: dict[str, Any], base_dir: str, dates: dict[str, str],
              validation: float | None, history: pl.DataFrame) -> dict[str, Any]:
    """Executor task: the signals of one fold and how its forecasts scored.

    ``history`` is :func:`load_history`'s bars, loaded by the driver and shipped with the
    task; the fold reads no data path and writes nothing (its outputs are the value)."""
    from engine.executor import apply_worker_threads

    apply_worker_threads()
    started = time.perf_counter()
    scenario = Scenario.model_validate(tree).located(Path(base_dir), "walk-forward fold")
    stamp = lambda key, end=False: _as_ts(history, dates[key], end)  # noqa: E731
    from analysts import feature_store

    analysts = build_fold_analysts(scenario, validation)
    test_start, test_end = stamp("test_start"), stamp("test_end", True)
    with feature_store(history):
        fit_fold(analysts, history, stamp("train_start"), stamp("train_end", True))
        fitted = time.perf_counter()
        visible = history.filter(pl.col("ts") <= test_end)
        own = [a.predict(visible, start=test_start, end=test_end) for a in analysts]
    from alfred.inputs import merge_signals

    signals = merge_signals(own)
    metrics, scored_rows = {}, {}
    train_end = stamp("train_end", True)
    for i, (analyst, frame) in enumerate(zip(analysts, own, strict=True)):
        scored, rows = forecast_metrics(analyst, frame, history, test_start, test_end,
                                        train_end)
        if scored is not None:
            metrics[f"{i}:{analyst.name}"] = scored
            scored_rows[f"{i}:{analyst.name}"] = rows
    from analysts.evaluation import tuned_overlap

    marks = [tuned_overlap(a, test_start, test_end) for a in analysts]
    return {"signals": signals, "analysts": metrics, "forecast_rows": scored_rows,
            "fit_s": fitted - started, "predict_s": time.perf_counter() - fitted,
            "tuned_overlap": next((m for m in marks if m), "")}


def _as_ts(history: pl.DataFrame, day: str, end: bool) -> datetime:
    """The first (or, with ``end``, the last) bar timestamp on ``day``."""
    stamps = history.filter(pl.col("ts").dt.date() == np.datetime64(day, "D").astype(object))
    if stamps.height == 0:  # pragma: no cover - fold dates come from these very bars
        raise ValueError(f"no bar on {day}")
    return stamps["ts"].max() if end else stamps["ts"].min()
