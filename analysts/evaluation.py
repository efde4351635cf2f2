"""Out-of-sample evaluation of an analyst, always next to baselines on the same rows.

The data is cut chronologically (default 60/20/20 by timestamp): the analyst is fit on
the first two periods (its own early stopping uses the second), then predicts the test
period. Every metric is computed on exactly the rows where the analyst, the ``naive``
persistence baseline and the realised label all exist, per asset and overall, so a
number never looks good because it was measured on easier rows.

Baselines: ``naive`` (the last ``horizon``-bar return repeats; up if it was up) and
``constant`` (the training period's mean return; "always up" if most training labels
were up) -- the second is the bar a model must clear to have learnt anything at all.

Definitions (``p`` predicted return, ``r`` realised return over the horizon, ``c`` the
close at the prediction's ts; direction "up" means ``r > 0``):

* accuracy, precision, recall, F1 of "up" (predicted up: ``prob_up > 0.5``, or
  ``p > 0`` for an analyst without ``prob_up``);
* MAE, RMSE of ``p - r``; R² = ``1 - SSE / SST`` around the mean of ``r`` on the rows;
  Pearson of ``p`` and ``r``; sign accuracy = share of rows with ``sign(p) == sign(r)``;
* pct_return_mae = ``100 * MAE`` (percentage points); price_mae = mean
  ``|c (1 + p) - c (1 + r)|`` in price units; MAPE = ``100 * mean(|c (1+p) - c (1+r)| /
  (c (1 + r)))``, the percent error of the implied price.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analysts._bars import as_datetime, check_bars
from analysts._price import NaiveAnalyst
from analysts.features import add_targets, target_names
from analysts.training import check_fractions, chronological_split
from engine.errors import ConfigError, DataError

DIRECTION_METRICS = ("accuracy", "precision", "recall", "f1")
MAGNITUDE_METRICS = ("mae", "rmse", "mape", "r2", "pearson", "sign_accuracy",
                     "pct_return_mae", "price_mae")
# Metrics where larger is better (the others are errors: smaller is better).
HIGHER_IS_BETTER = {"accuracy", "precision", "recall", "f1", "r2", "pearson", "sign_accuracy"}


def direction_metrics(pred_up: np.ndarray, true_up: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of the "up" class (0 where undefined)."""
    pred_up, true_up = np.asarray(pred_up, bool), np.asarray(true_up, bool)
    tp = float(np.sum(pred_up & true_up))
    fp = float(np.sum(pred_up & ~true_up))
    fn = float(np.sum(~pred_up & true_up))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float(np.mean(pred_up == true_up)) if pred_up.size else math.nan,
            "precision": precision, "recall": recall, "f1": f1}


def magnitude_metrics(pred: np.ndarray, actual: np.ndarray,
                      close: np.ndarray) -> dict[str, float]:
    """Error metrics of predicted vs realised returns (see the module docstring)."""
    pred, actual, close = (np.asarray(a, np.float64) for a in (pred, actual, close))
    if pred.size == 0:
        return dict.fromkeys(MAGNITUDE_METRICS, math.nan)
    error = pred - actual
    sst = float(np.sum((actual - actual.mean()) ** 2))
    pred_price, true_price = close * (1 + pred), close * (1 + actual)
    price_error = np.abs(pred_price - true_price)
    pearson = (float(np.corrcoef(pred, actual)[0, 1])
               if pred.size > 1 and np.ptp(pred) > 0 and np.ptp(actual) > 0 else math.nan)
    mae = float(np.mean(np.abs(error)))
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mape": float(100 * np.mean(price_error / true_price)),
        "r2": 1.0 - float(np.sum(error**2)) / sst if sst > 0 else math.nan,
        "pearson": pearson,
        "sign_accuracy": float(np.mean(np.sign(pred) == np.sign(actual))),
        "pct_return_mae": 100 * mae,
        "price_mae": float(np.mean(price_error)),
    }


@dataclass(frozen=True)
class Evaluation:
    """Metrics per scope (``overall`` and each asset) and per predictor."""

    analyst: str
    config: dict[str, Any]
    horizon: int
    periods: dict[str, str]
    n_rows: int
    metrics: dict[str, dict[str, dict[str, float]]]  # scope -> predictor -> metric -> value
    predictors: tuple[str, ...]
    training: dict[str, dict[str, Any]] | None = None  # per fitted unit: epochs, timing

    def to_dict(self) -> dict[str, Any]:
        return {"analyst": self.analyst, "horizon": self.horizon, "periods": self.periods,
                "n_rows": self.n_rows, "config": self.config,
                "definitions": "see analysts/evaluation.py", "training": self.training,
                "metrics": _clean(self.metrics)}

    def table(self, scope: str | None = None) -> pl.DataFrame:
        """One row per (scope, predictor) with every metric as a column."""
        rows = []
        for name, by_predictor in self.metrics.items():
            if scope is not None and name != scope:
                continue
            for predictor, values in by_predictor.items():
                rows.append({"scope": name, "predictor": predictor, **values})
        return pl.DataFrame(rows)

    def markdown(self) -> str:
        table = self.table()
        metric_cols = [c for c in table.columns if c not in ("scope", "predictor")]
        lines = [f"# {self.analyst}: out-of-sample evaluation (horizon {self.horizon})", "",
                 f"Fit on {self.periods['fit_start']} .. {self.periods['fit_end']}; test "
                 f"{self.periods['test_start']} .. {self.periods['test_end']}; "
                 f"{self.n_rows} test rows shared by every predictor.", "",
                 "| scope | predictor | " + " | ".join(metric_cols) + " |",
                 "|---|---|" + "---|" * len(metric_cols)]
        for row in table.iter_rows(named=True):
            cells = [_fmt(row[c]) for c in metric_cols]
            lines.append(f"| {row['scope']} | {row['predictor']} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def write(self, out: str | Path) -> Path:
        """``evaluation.json`` and ``evaluation.md`` in the folder ``out``."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "evaluation.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        (folder / "evaluation.md").write_text(self.markdown())
        return folder


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _clean(value: Any) -> Any:
    """NaN -> None so the JSON is standard."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _predictor_metrics(frame: pl.DataFrame, prefix: str, magnitude: bool,
                       use_prob: bool) -> dict[str, float]:
    """Direction from ``prob_up`` when the analyst emits it, else from the sign of
    ``pred_return``; baselines are read the same way as the model they stand next to."""
    true_up = frame["_true"].to_numpy() > 0
    out: dict[str, float] = {"n": frame.height}
    prob, ret = f"{prefix}prob_up", f"{prefix}pred_return"
    pred_up = frame[prob].to_numpy() > 0.5 if use_prob else frame[ret].to_numpy() > 0
    out.update(direction_metrics(pred_up, true_up))
    if magnitude:
        out.update(magnitude_metrics(frame[ret].to_numpy(), frame["_true"].to_numpy(),
                                     frame["close"].to_numpy()))
    return out


def _training_summary(analyst: Any) -> dict[str, dict[str, Any]] | None:
    units = getattr(analyst, "units", None)
    if not units:
        return None
    out = {}
    for key, unit in units.items():
        best = unit.history[unit.best_epoch - 1] if 0 < unit.best_epoch <= len(unit.history) else {}
        out[key] = {"epochs_run": len(unit.history), "best_epoch": unit.best_epoch,
                    "best_val_loss": best.get("val_loss"), "seconds": round(unit.seconds, 2),
                    "train_end": str(unit.train_end), "fit_until": str(unit.fit_until)}
    return out


def evaluate_analyst(
    analyst: Any,
    bars: pl.DataFrame,
    *,
    split: Sequence[float] = (0.6, 0.2, 0.2),
    until: datetime | str | None = None,
    horizon: int | None = None,
    out: str | Path | None = None,
) -> Evaluation:
    """Fit ``analyst`` on the early data, predict the test period, compare with baselines.

    ``split``: train/validation/test fractions of the timestamps (the analyst's
    ``validation_fraction`` is set to ``val / (train + val)`` so its early stopping uses
    the validation period). ``until``: an explicit end of the fit period instead (the
    analyst keeps its own validation_fraction). ``horizon``: label horizon (default: the
    analyst's ``horizon``, else 1). ``out``: folder for evaluation.json/.md.
    """
    checked = check_bars(bars, getattr(analyst, "name", "analyst"))
    config = getattr(analyst, "config", None)
    horizon = int(horizon or getattr(config, "horizon", 1))
    if until is None:
        train_f, val_f, test_f = check_fractions(split)
        if test_f <= 0:
            raise ConfigError(f"split {list(split)} leaves no test period; give it a share")
        cut = chronological_split(checked["ts"], split)
        fit_end = cut.val_end
        if config is not None and "validation_fraction" in type(config).model_fields:
            if val_f <= 0:
                raise ConfigError("a trainable analyst needs a validation share in split "
                                  "(e.g. 0.6, 0.2, 0.2) for early stopping")
            config = config.model_copy(update={"validation_fraction": val_f / (train_f + val_f)})
            analyst = type(analyst)(config)
    else:
        fit_end = as_datetime(until, checked["ts"].dtype, "until")
    test_bars_ts = checked.filter(pl.col("ts") > fit_end)["ts"]
    if test_bars_ts.len() == 0:
        raise DataError(f"no bars after the fit period's end {fit_end}; nothing to test on")
    test_start = test_bars_ts.min()

    analyst.fit(bars, until=fit_end)
    predictions = analyst.predict(bars, start=test_start)
    magnitude = "pred_return" in predictions.columns
    if not magnitude and "prob_up" not in predictions.columns:
        raise DataError(f"analyst {analyst.name!r} emits neither prob_up nor pred_return; "
                        f"there is nothing to evaluate")
    naive = NaiveAnalyst(horizon=horizon).predict(bars, start=test_start)
    _, change, label_ts = target_names(horizon)
    labels = add_targets(checked.select("ts", "asset", "close"), (horizon,)).select(
        "ts", "asset", "close", pl.col(change).alias("_true"), pl.col(label_ts).alias("_seen"))
    keep = [c for c in ("prob_up", "pred_return") if c in predictions.columns]
    rows = (labels.drop("_seen").join(predictions.select("ts", "asset", *keep),
                                      on=["ts", "asset"])
            .join(naive.select("ts", "asset", *[pl.col(c).alias(f"naive_{c}")
                                                for c in ("prob_up", "pred_return")]),
                  on=["ts", "asset"])
            .drop_nulls()
            .filter(pl.col("_true").is_finite()))
    if rows.height == 0:
        raise DataError(f"analyst {analyst.name!r}: no test row has a prediction, a naive "
                        f"forecast and a realised {horizon}-bar label; use a longer test period")
    # The constant baseline learns from labels already observed when the fit period ends.
    fit_labels = labels.filter(pl.col("_seen") <= fit_end)["_true"]
    mean_return = float(fit_labels.mean()) if fit_labels.len() else 0.0
    up_share = float((fit_labels > 0).mean()) if fit_labels.len() else 0.5
    rows = rows.with_columns(
        pl.lit(mean_return).alias("constant_pred_return"),
        pl.lit(1.0 if up_share > 0.5 else 0.0).alias("constant_prob_up"),
    )
    predictors = {"model": "", "naive": "naive_", "constant": "constant_"}
    use_prob = "prob_up" in predictions.columns
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    scopes = [("overall", rows)] + [
        (asset, rows.filter(pl.col("asset") == asset))
        for asset in sorted(rows["asset"].unique().to_list())]
    for scope, part in scopes:
        metrics[scope] = {label: _predictor_metrics(part, prefix, magnitude, use_prob)
                          for label, prefix in predictors.items()}
    result = Evaluation(
        analyst=analyst.name,
        config=config.model_dump(mode="json") if config is not None else {},
        horizon=horizon,
        periods={"fit_start": str(checked["ts"].min()), "fit_end": str(fit_end),
                 "test_start": str(test_start), "test_end": str(checked["ts"].max())},
        n_rows=rows.height,
        metrics=metrics,
        predictors=tuple(predictors),
        training=_training_summary(analyst),
    )
    if out is not None:
        result.write(out)
    return result


def rolling_origin(analyst: Any, bars: pl.DataFrame, *, windows: int = 20,
                   horizon: int | None = None) -> pl.DataFrame:
    """Rolling-origin evaluation: the last ``windows`` forecast origins, ``horizon`` bars
    apart, each forecast from the bars up to its origin only.

    For origin ``t`` the analyst (already fit, or pretrained) is called once with the bars
    dated ``<= t`` and asked for its forecast at ``t`` for every asset; the call is timed.
    The forecast is scored against the realised ``horizon``-bar return next to the naive
    forecast of no change. Returns one row per asset plus ``ALL``: ``n``,
    ``pct_return_mae``, ``price_mae``, ``naive_pct_return_mae``, ``naive_price_mae``,
    ``sign_accuracy`` and ``ms_per_call`` (mean latency of the timed calls).
    """
    checked = check_bars(bars, getattr(analyst, "name", "analyst"))
    config = getattr(analyst, "config", None)
    horizon = int(horizon or getattr(config, "horizon", 1))
    if windows < 1:
        raise ConfigError(f"windows must be at least 1, got {windows}")
    stamps = checked["ts"].unique().sort()
    last = stamps.len() - 1 - horizon
    if last < 1:
        raise DataError(f"{stamps.len()} bars leave no origin with a realised "
                        f"{horizon}-bar return")
    origins = [stamps[i] for i in range(last, max(-1, last - windows * horizon), -horizon)][::-1]
    labels = add_targets(checked.select("ts", "asset", "close"), (horizon,))
    _, change, _ = target_names(horizon)
    rows, seconds = [], []
    for t in origins:
        visible = bars.filter(pl.col("ts") <= t)
        began = time.perf_counter()
        forecast = analyst.predict(visible, start=t, end=t)
        seconds.append(time.perf_counter() - began)
        if "pred_return" not in forecast.columns:
            raise DataError(f"analyst {analyst.name!r} emits no pred_return; rolling-origin "
                            "evaluation scores return forecasts")
        rows.append(forecast.select("ts", "asset", "pred_return"))
    if not any(r.height for r in rows):
        raise DataError("the analyst made no forecast at any origin; give it more history")
    scored = (pl.concat([r for r in rows if r.height]).join(labels.select(
        "ts", "asset", "close", pl.col(change).alias("_real")), on=["ts", "asset"])
        .drop_nulls("_real"))
    latency = 1000 * float(np.mean(seconds))
    out = []
    scopes = [("ALL", scored)] + [(a, scored.filter(pl.col("asset") == a))
                                  for a in sorted(scored["asset"].unique().to_list())]
    for scope, part in scopes:
        pred, real, close = (part[c].to_numpy() for c in ("pred_return", "_real", "close"))
        model = magnitude_metrics(pred, real, close)
        naive = magnitude_metrics(np.zeros_like(real), real, close)
        out.append({"asset": scope, "n": part.height, "horizon": horizon,
                    "pct_return_mae": model["pct_return_mae"], "price_mae": model["price_mae"],
                    "naive_pct_return_mae": naive["pct_return_mae"],
                    "naive_price_mae": naive["price_mae"],
                    "sign_accuracy": model["sign_accuracy"], "ms_per_call": latency})
    return pl.DataFrame(out)
