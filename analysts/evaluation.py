"""Out-of-sample evaluation of an analyst, always next to the same baselines, with tests.

The data is cut chronologically (default 60/20/20 by timestamp): the analyst is fit on
the first two periods (its own early stopping uses the second), then predicts the test
period. Every metric is computed on exactly the rows where the analyst, every baseline
and the realised label all exist, per asset and overall, so a number never looks good
because it was measured on easier rows.

Baselines (one set, named the same in evaluate, rolling-origin and walk-forward):

* ``zero`` -- no change (pred_return 0); it has no direction.
* ``drift`` -- the asset's mean ``horizon``-bar return over the labels observed by the
  end of the fit period (its sign is its direction).
* ``last`` -- the last ``horizon``-bar return repeats (``close[t] / close[t-h] - 1``).
* ``always_up`` -- direction only: every row "up".
* ``majority`` -- direction only: the majority class of the fit period's labels, flat
  labels left out.

Direction: "up" means ``r > 0``; rows with ``r == 0`` (flat) have no direction and are
left out of every direction metric; their count is reported (``n_flat``). The model's
direction is ``prob_up > 0.5`` when it emits ``prob_up``, else ``pred_return > 0``.

Definitions (``p`` predicted return, ``r`` realised return over the horizon, ``c`` the
close at the prediction's ts):

* accuracy, precision, recall, F1 of "up" (non-flat rows); up_share, the share of those
  rows a predictor calls "up" (a classifier that always says "up" shows 1.0);
* MAE, RMSE of ``p - r``; R² = ``1 - SSE / SST`` around the mean of ``r`` on the rows;
  Pearson of ``p`` and ``r``; sign accuracy = share of rows with ``sign(p) == sign(r)``;
* pct_return_mae = ``100 * MAE`` (percentage points); price_mae = mean
  ``|c (1 + p) - c (1 + r)|`` in price units; MAPE = ``100 * mean(|c (1+p) - c (1+r)| /
  (c (1 + r)))``, the percent error of the implied price.

Significance (:mod:`analysts.skill`; see :func:`forecast_tests`): Diebold-Mariano on
absolute errors against ``zero``, ``drift`` and ``last`` (Newey-West, ``h - 1`` lags,
HLN correction; pooled over assets by averaging per date), direction against
``majority`` and ``always_up`` (exact binomial on disagreements and a HAC test per date),
AUC, IC and rank IC per date with Newey-West t-stats, top-minus-bottom quintile spread,
signal turnover, Brier score and reliability of ``prob_up``, and a verdict line.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analysts import skill
from analysts._bars import as_datetime, check_bars
from analysts.features import add_targets, target_names
from analysts.training import check_fractions, chronological_split
from engine.errors import ConfigError, DataError

# The marker of a row whose analyst's tuned hyperparameters saw its test window.
TUNED_OVERLAP = "tuned on overlapping data"

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


BASELINES = ("zero", "drift", "last")
DIRECTION_BASELINES = ("always_up", "majority")
PREDICTORS = ("model", *BASELINES, *DIRECTION_BASELINES)
IC_HORIZONS = (1, 2, 5, 10, 20)


def baseline_frame(bars: pl.DataFrame, fit_end: datetime,
                   horizon: int) -> tuple[pl.DataFrame, bool]:
    """Every (ts, asset) with its ``close``, ``realised`` ``horizon``-bar return and the
    ``zero``, ``drift`` and ``last`` forecasts, and the ``majority`` direction (True =
    up), both learnt from the labels observed by ``fit_end`` (flat labels left out)."""
    _, change, seen = target_names(horizon)
    frame = add_targets(bars.select("ts", "asset", "close"), (horizon,)).with_columns(
        (pl.col("close") / pl.col("close").shift(horizon).over("asset") - 1).alias("last"))
    known = frame.filter(pl.col(seen) <= fit_end).drop_nulls(change)
    pooled = float(known[change].mean()) if known.height else 0.0
    drift = known.group_by("asset").agg(pl.col(change).mean().alias("drift"))
    majority_up = bool((known[change] > 0).sum() >= (known[change] < 0).sum())
    frame = frame.join(drift, on="asset", how="left").with_columns(
        pl.col("drift").fill_null(pooled), pl.lit(0.0).alias("zero"))
    return frame.select("ts", "asset", "close", pl.col(change).alias("realised"),
                        *BASELINES), majority_up


def _direction_of(rows: pl.DataFrame, predictor: str, use_prob: bool,
                  majority_up: bool) -> np.ndarray | None:
    """Predicted "up" per row, or None for a forecast without a direction (``zero``)."""
    n = rows.height
    if predictor == "model":
        return (rows["prob_up"].to_numpy() > 0.5 if use_prob
                else rows["pred_return"].to_numpy() > 0)
    if predictor == "always_up":
        return np.ones(n, bool)
    if predictor == "majority":  # a per-row column when rows pool several fit periods
        return (rows["majority"].to_numpy().astype(bool) if "majority" in rows.columns
                else np.full(n, majority_up))
    if predictor == "zero":
        return None
    return rows[predictor].to_numpy() > 0


def predictor_metrics(rows: pl.DataFrame, majority_up: bool) -> dict[str, dict[str, float]]:
    """Metrics of the model and every baseline on ``rows`` (see :func:`baseline_frame`;
    the model's columns ``pred_return`` and/or ``prob_up``)."""
    use_prob, magnitude = "prob_up" in rows.columns, "pred_return" in rows.columns
    realised = rows["realised"].to_numpy()
    moved = realised != 0
    out = {}
    for predictor in PREDICTORS:
        values: dict[str, float] = {"n": rows.height, "n_flat": int((~moved).sum())}
        pred_up = _direction_of(rows, predictor, use_prob, majority_up)
        values.update(direction_metrics(pred_up[moved], realised[moved] > 0)
                      if pred_up is not None else dict.fromkeys(DIRECTION_METRICS, math.nan))
        values["up_share"] = (float(pred_up[moved].mean()) if pred_up is not None
                              and moved.any() else math.nan)  # how often it says "up"
        column = "pred_return" if predictor == "model" else predictor
        if predictor in BASELINES or (predictor == "model" and magnitude):
            values.update(magnitude_metrics(rows[column].to_numpy(), realised,
                                            rows["close"].to_numpy()))
        else:
            values.update(dict.fromkeys(MAGNITUDE_METRICS, math.nan))
        out[predictor] = values
    return out


def forecast_tests(rows: pl.DataFrame, horizon: int, majority_up: bool,
                   cross_section: bool = True) -> dict[str, Any]:
    """Significance of the model against the baselines on ``rows`` (module docstring).

    ``dm``: per baseline, DM on absolute errors (pooled: per-date means). ``direction``:
    against ``majority`` and ``always_up``. With ``cross_section``: AUC, ``ic`` (IC and
    rank IC), ``spread`` (top-minus-bottom quintile), ``turnover``, and for ``prob_up``
    the Brier score and reliability curve. ``verdict``: one sentence.
    """
    use_prob, magnitude = "prob_up" in rows.columns, "pred_return" in rows.columns
    ts, realised = rows["ts"], rows["realised"].to_numpy()
    out: dict[str, Any] = {"dm": {}, "direction": {}}
    if magnitude:
        error = np.abs(rows["pred_return"].to_numpy() - realised)
        for base in BASELINES:
            test = skill.panel_diebold_mariano(ts, error, np.abs(rows[base].to_numpy()
                                                                 - realised), horizon)
            out["dm"][base] = test.to_dict()
    pred_up = _direction_of(rows, "model", use_prob, majority_up)
    for base in DIRECTION_BASELINES:
        test = skill.direction_test(ts, pred_up, _direction_of(rows, base, use_prob,
                                                               majority_up), realised, horizon)
        out["direction"][base] = test
    errors = {b: out["dm"][b]["p_better"] for b in out["dm"]}
    direction = {b: out["direction"][b]["hac_p"] for b in out["direction"]}
    if not cross_section:
        out["verdict"] = skill.skill_verdict(errors, direction)
        return out
    signal = rows["pred_return"] if magnitude else rows["prob_up"]
    moved = realised != 0
    out["auc"] = skill.auc(signal.to_numpy()[moved], realised[moved] > 0)
    panel = rows.select("ts", "asset", signal.alias("signal"), "realised")
    out["ic"] = skill.ic_table(panel, horizon)
    out["verdict"] = skill.skill_verdict(errors, direction, out["ic"]["rank_ic_p"])
    out["spread"] = skill.quantile_spread(panel, horizon)
    out["turnover"] = skill.signal_turnover(panel)
    if use_prob:
        prob, up = rows["prob_up"].to_numpy()[moved], realised[moved] > 0
        out["brier"] = skill.brier_score(prob, up)
        out["brier_majority"] = skill.brier_score(np.full(prob.size, float(majority_up)), up)
        out["reliability"] = skill.reliability_curve(prob, up).to_dicts()
    return out


def fit_returns(bars: pl.DataFrame, fit_end: datetime, horizon: int) -> np.ndarray:
    """The ``horizon``-bar returns observed by ``fit_end``: the climatology forecast."""
    _, change, seen = target_names(horizon)
    labels = add_targets(bars.select("ts", "asset", "close"), (horizon,))
    return labels.filter(pl.col(seen) <= fit_end).drop_nulls(change)[change].to_numpy()


def probabilistic_scores(samples: pl.DataFrame, rows: pl.DataFrame,
                         climatology: np.ndarray) -> dict[str, Any]:
    """CRPS, central-interval coverage (80 %, 90 %) and PIT histogram of the sampled
    ``horizon``-bar returns (``ts, asset, samples``) on the scored ``rows``, next to the
    CRPS of the climatology (every training-period return as the forecast
    distribution, 200 quantiles of it); ``crps_skill = 1 - crps / crps_climatology``."""
    joined = samples.join(rows.select("ts", "asset", "realised"), on=["ts", "asset"])
    if joined.height == 0 or climatology.size == 0:
        return {"rows": joined.height}
    draws = np.array(joined["samples"].to_list(), dtype=np.float64)
    observed = joined["realised"].to_numpy()
    crps = float(skill.crps_samples(draws, observed).mean())
    levels = np.quantile(climatology, (np.arange(200) + 0.5) / 200)
    reference = float(skill.crps_samples(np.broadcast_to(levels, (observed.size, 200)),
                                         observed).mean())
    return {"rows": joined.height, "samples_per_row": int(draws.shape[1]), "crps": crps,
            "crps_climatology": reference,
            "crps_skill": 1.0 - crps / reference if reference > 0 else math.nan,
            **skill.interval_coverage(draws, observed),
            "pit_histogram": skill.pit_histogram(skill.pit_values(draws, observed))}


def ic_decay(signals: pl.DataFrame, bars: pl.DataFrame, column: str,
             horizons: tuple[int, ...] = IC_HORIZONS) -> list[dict[str, float]]:
    """Rank IC (and t-stat) of ``column`` against the realised return ``h`` bars ahead,
    for each ``h``: how fast the signal's information fades."""
    labels = add_targets(bars.select("ts", "asset", "close"), horizons)
    joined = signals.select("ts", "asset", pl.col(column).alias("signal")).join(
        labels, on=["ts", "asset"])
    out = []
    for h in horizons:
        panel = joined.select("ts", "asset", "signal",
                              pl.col(target_names(h)[1]).alias("realised"))
        table = skill.ic_table(panel, h)
        out.append({"horizon": h, "rank_ic": table["rank_ic"], "rank_ic_t": table["rank_ic_t"],
                    "ic": table["ic"], "dates": table["dates"]})
    return out


@dataclass(frozen=True)
class Evaluation:
    """Metrics per scope (``overall`` and each asset) and per predictor, with tests."""

    analyst: str
    config: dict[str, Any]
    horizon: int
    periods: dict[str, str]
    n_rows: int
    metrics: dict[str, dict[str, dict[str, float]]]  # scope -> predictor -> metric -> value
    predictors: tuple[str, ...]
    training: dict[str, dict[str, Any]] | None = None  # per fitted unit: epochs, timing
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)  # scope -> tests
    ic_decay: list[dict[str, float]] = field(default_factory=list)
    majority: str = "up"
    notes: tuple[str, ...] = ()
    # TUNED_OVERLAP when tuned hyperparameters saw the test window (allow_tuned_overlap):
    # the model's rows carry it, the baselines' rows (no hyperparameters) do not
    tuned_overlap: str = ""

    @property
    def verdict(self) -> str:
        return self.tests.get("overall", {}).get("verdict", "not tested")

    def to_dict(self) -> dict[str, Any]:
        return {"analyst": self.analyst, "horizon": self.horizon, "periods": self.periods,
                "n_rows": self.n_rows, "config": self.config, "verdict": self.verdict,
                "majority": self.majority, "notes": list(self.notes),
                "tuned_overlap": self.tuned_overlap,
                "definitions": "see analysts/evaluation.py", "training": self.training,
                "metrics": _clean(self.metrics), "tests": _clean(self.tests),
                "ic_decay": _clean(self.ic_decay)}

    def table(self, scope: str | None = None) -> pl.DataFrame:
        """One row per (scope, predictor) with every metric as a column; with tuned
        hyperparameters that saw the test window, a ``tuned_overlap`` column marks the
        model's rows."""
        rows = []
        for name, by_predictor in self.metrics.items():
            if scope is not None and name != scope:
                continue
            for predictor, values in by_predictor.items():
                mark = {"tuned_overlap": self.tuned_overlap if predictor == "model" else ""}
                rows.append({"scope": name, "predictor": predictor, **values,
                             **(mark if self.tuned_overlap else {})})
        return pl.DataFrame(rows)

    def markdown(self) -> str:
        from analysts._report_md import evaluation_markdown

        return evaluation_markdown(self)

    def write(self, out: str | Path) -> Path:
        """``evaluation.json`` and ``evaluation.md`` in the folder ``out``."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "evaluation.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        (folder / "evaluation.md").write_text(self.markdown())
        return folder


def _clean(value: Any) -> Any:
    """NaN -> None so the JSON is standard."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


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


def _fit_end(analyst: Any, checked: pl.DataFrame, split: Sequence[float],
             until: datetime | str | None) -> tuple[Any, Any, datetime]:
    """The analyst to evaluate (its validation share matched to ``split``), its config,
    and the end of the fit period."""
    config = getattr(analyst, "config", None)
    if until is not None:
        return analyst, config, as_datetime(until, checked["ts"].dtype, "until")
    train_f, val_f, test_f = check_fractions(split)
    if test_f <= 0:
        raise ConfigError(f"split {list(split)} leaves no test period; give it a share")
    cut = chronological_split(checked["ts"], split)
    if config is not None and "validation_fraction" in type(config).model_fields:
        if val_f <= 0:
            raise ConfigError("a trainable analyst needs a validation share in split "
                              "(e.g. 0.6, 0.2, 0.2) for early stopping")
        config = config.model_copy(update={"validation_fraction": val_f / (train_f + val_f)})
        analyst = type(analyst)(config)
    return analyst, config, cut.val_end


def evaluate_analyst(
    analyst: Any,
    bars: pl.DataFrame,
    *,
    split: Sequence[float] = (0.6, 0.2, 0.2),
    until: datetime | str | None = None,
    horizon: int | None = None,
    out: str | Path | None = None,
    notes: Sequence[str] = (),
) -> Evaluation:
    """Fit ``analyst`` on the early data, predict the test period, compare with baselines.

    ``split``: train/validation/test fractions of the timestamps (the analyst's
    ``validation_fraction`` is set to ``val / (train + val)`` so its early stopping uses
    the validation period). ``until``: an explicit end of the fit period instead (the
    analyst keeps its own validation_fraction). ``horizon``: label horizon (default: the
    analyst's ``horizon``, else 1). ``out``: folder for evaluation.json/.md. ``notes``:
    warnings the caller adds to every table (e.g. a tuned-period overlap).
    """
    checked = check_bars(bars, getattr(analyst, "name", "analyst"))
    analyst, config, fit_end = _fit_end(analyst, checked, split, until)
    horizon = int(horizon or getattr(config, "horizon", 1))
    test_bars_ts = checked.filter(pl.col("ts") > fit_end)["ts"]
    if test_bars_ts.len() == 0:
        raise DataError(f"no bars after the fit period's end {fit_end}; nothing to test on")
    test_start, test_end = test_bars_ts.min(), test_bars_ts.max()

    analyst.fit(bars, until=fit_end)
    samples = None
    if hasattr(analyst, "predict_samples"):  # sample-path analysts: score the paths too
        predictions, samples = analyst.predict_samples(bars, start=test_start)
    else:
        predictions = analyst.predict(bars, start=test_start)
    keep = [c for c in ("prob_up", "pred_return") if c in predictions.columns]
    if not keep:
        raise DataError(f"analyst {analyst.name!r} emits neither prob_up nor pred_return; "
                        f"there is nothing to evaluate")
    base, majority_up = baseline_frame(checked, fit_end, horizon)
    rows = (base.join(predictions.select("ts", "asset", *keep), on=["ts", "asset"])
            .drop_nulls().filter(pl.col("realised").is_finite()).sort("ts", "asset"))
    if rows.height == 0:
        raise DataError(f"analyst {analyst.name!r}: no test row has a prediction, every "
                        f"baseline and a realised {horizon}-bar label; use a longer test "
                        f"period")
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    tests: dict[str, dict[str, Any]] = {}
    scopes = [("overall", rows)] + [
        (asset, rows.filter(pl.col("asset") == asset))
        for asset in sorted(rows["asset"].unique().to_list())]
    for scope, part in scopes:
        metrics[scope] = predictor_metrics(part, majority_up)
        tests[scope] = forecast_tests(part, horizon, majority_up,
                                      cross_section=scope == "overall")
    column = "pred_return" if "pred_return" in keep else "prob_up"
    if samples is not None:
        tests["overall"]["probabilistic"] = probabilistic_scores(
            samples, rows, fit_returns(checked, fit_end, horizon))
    result = Evaluation(
        analyst=analyst.name,
        config=config.model_dump(mode="json") if config is not None else {},
        horizon=horizon,
        periods={"fit_start": str(checked["ts"].min()), "fit_end": str(fit_end),
                 "test_start": str(test_start), "test_end": str(checked["ts"].max())},
        n_rows=rows.height,
        metrics=metrics,
        predictors=PREDICTORS,
        training=_training_summary(analyst),
        tests=tests,
        ic_decay=ic_decay(predictions.filter(pl.col("ts") >= test_start), checked, column),
        majority="up" if majority_up else "down",
        notes=tuple(dict.fromkeys((*model_notes(analyst, test_start, test_end), *notes))),
        tuned_overlap=tuned_overlap(analyst, test_start, test_end),
    )
    if out is not None:
        result.write(out)
    return result


def test_window(bars: pl.DataFrame, *, split: Sequence[float] = (0.6, 0.2, 0.2),
                until: datetime | str | None = None) -> tuple[datetime, datetime]:
    """First and last bar of the test period :func:`evaluate_analyst` would score."""
    checked = check_bars(bars, "evaluation")
    _, _, fit_end = _fit_end(None, checked, split, until)
    after = checked.filter(pl.col("ts") > fit_end)["ts"]
    if after.len() == 0:
        raise DataError(f"no bars after the fit period's end {fit_end}; nothing to test on")
    return after.min(), after.max()


def tuned_overlap_notes(analyst: Any, test_start: datetime, test_end: datetime) -> list[str]:
    """For an analyst whose ``tuned_configs`` were tuned on bars up to or after
    ``test_start`` (run anyway with ``allow_tuned_overlap``): the note saying so, starting
    with :data:`TUNED_OVERLAP`; for every member of a composite analyst too. Empty when
    the window lies after every tuning period."""
    from analysts._tuned import check_tuned_overlap, tuned_meta

    notes = []
    path = getattr(getattr(analyst, "config", None), "tuned_configs", None)
    if path:
        try:
            meta = tuned_meta(path)
        except ConfigError:  # allow_tuned_overlap let a file without its period through
            notes.append(f"{TUNED_OVERLAP}: {path} does not say which bars it was tuned on")
        else:
            note = check_tuned_overlap(meta, test_start, test_end, allow=True)
            if note:
                notes.append(f"{TUNED_OVERLAP}: {note}")
    for member in _members(analyst):
        notes += [n for n in tuned_overlap_notes(member, test_start, test_end)
                  if n not in notes]
    return notes


def tuned_overlap(analyst: Any, test_start: datetime, test_end: datetime) -> str:
    """:data:`TUNED_OVERLAP` when :func:`tuned_overlap_notes` has a note, else "": the
    marker every table row of the analyst's forecasts on that window carries."""
    return TUNED_OVERLAP if tuned_overlap_notes(analyst, test_start, test_end) else ""


def _members(analyst: Any) -> list[Any]:
    members = list(getattr(analyst, "members", None) or [])
    return members + [m for m in (getattr(analyst, "calm", None),
                                  getattr(analyst, "volatile", None)) if m is not None]


def model_notes(analyst: Any, test_start: datetime,
                test_end: datetime | None = None) -> list[str]:
    """Warnings every table of this analyst must carry: random weights, a test window
    inside the model's pretraining period, and (given ``test_end``) tuned
    hyperparameters that saw the test window (:func:`tuned_overlap_notes`)."""
    notes = []
    if test_end is not None:
        notes += tuned_overlap_notes(analyst, test_start, test_end)
    summary = analyst.fit_summary() if hasattr(analyst, "fit_summary") else {}
    if isinstance(summary.get("model"), dict) and "random_weights" in summary["model"]:
        notes.append("the model runs on random weights: its forecasts carry no skill")
    through = getattr(analyst, "pretrained_through", None)
    if through is not None and test_start.date() <= through:
        notes.append(f"test window starts {test_start.date()} inside the model's pretraining "
                     f"period (pretrained through {through}): its numbers are not out of "
                     f"sample")
    return notes


def rolling_origin(analyst: Any, bars: pl.DataFrame, *, windows: int = 20,
                   horizon: int | None = None) -> pl.DataFrame:
    """Rolling-origin evaluation: the last ``windows`` forecast origins, ``horizon`` bars
    apart, each forecast from the bars up to its origin only.

    For origin ``t`` the analyst (already fit, or pretrained) is called once with the bars
    dated ``<= t`` and asked for its forecast at ``t`` for every asset; the call is timed.
    The forecast is scored against the realised ``horizon``-bar return next to the
    ``zero``, ``drift`` (mean return of the labels observed by the first origin) and
    ``last`` baselines. Origins are ``horizon`` bars apart, so errors do not overlap.
    Returns one row per asset plus ``ALL``: ``n``, ``pct_return_mae``, ``price_mae``,
    ``<baseline>_pct_return_mae`` and ``<baseline>_dm_p`` (one-sided DM p-value that the
    model's absolute error is lower), ``sign_accuracy``, ``verdict`` and ``ms_per_call``.
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
    base, _ = baseline_frame(checked, origins[0], horizon)
    scored = (pl.concat([r for r in rows if r.height]).join(base, on=["ts", "asset"])
              .drop_nulls().sort("ts", "asset"))
    latency = 1000 * float(np.mean(seconds))
    mark = tuned_overlap(analyst, origins[0], origins[-1])
    out = []
    scopes = [("ALL", scored)] + [(a, scored.filter(pl.col("asset") == a))
                                  for a in sorted(scored["asset"].unique().to_list())]
    for scope, part in scopes:
        pred, real, close = (part[c].to_numpy() for c in ("pred_return", "realised", "close"))
        model = magnitude_metrics(pred, real, close)
        row: dict[str, Any] = {"asset": scope, "n": part.height, "horizon": horizon,
                               "pct_return_mae": model["pct_return_mae"],
                               "price_mae": model["price_mae"]}
        p_better = {}
        for name in BASELINES:
            forecast = part[name].to_numpy()
            row[f"{name}_pct_return_mae"] = magnitude_metrics(forecast, real,
                                                              close)["pct_return_mae"]
            test = skill.panel_diebold_mariano(part["ts"], np.abs(pred - real),
                                               np.abs(forecast - real), 1)
            row[f"{name}_dm_p"] = p_better[name] = test.p_better
        row.update(sign_accuracy=model["sign_accuracy"], verdict=skill.verdict(p_better),
                   ms_per_call=latency, **({"tuned_overlap": mark} if mark else {}))
        out.append(row)
    return pl.DataFrame(out)


def tests_markdown(tests: dict[str, Any], scope: str = "overall") -> str:
    """Markdown tables of :func:`forecast_tests` output (DM, direction, ranking, Brier)."""
    from analysts._report_md import test_lines

    return "\n".join([f"**Verdict ({scope}): {tests['verdict']}.**", "",
                      *test_lines(tests, scope)])
