"""Causal calibration of ``prob_up``: isotonic or Platt, refit on past outcomes only.

A model's ``prob_up`` is a score, not a probability, until it has been checked against
outcomes: the foundation models' share of rising sample paths and an LSTM's sigmoid are
both often over-confident, yet ``nuanced`` thresholds (0.3 / 0.7) read them as
probabilities. With ``calibrate: isotonic`` (or ``platt``) in an analyst's config, its
``prob_up`` is mapped through a calibrator fit on earlier (prob_up, went-up) pairs.

The causal rule: the calibrated value at ``t`` comes from a calibrator fit on pairs whose
outcome was *observed* by the close of ``t`` -- the forecast at ``s`` enters only once
``label_ts(s) = s + horizon bars <= t`` (the label-horizon embargo). The pairs come from
the analyst's own forecasts over the ``calibration_history`` bars before the requested
window plus the window's earlier bars (an expanding window). Until ``MIN_PAIRS`` pairs
exist the raw value passes through, and a warning says for how many rows. Flat outcomes
(no change) carry no direction and are not used.

Out of sample only (``calibration_pairs: out_of_sample``, the default): a fitted model's
forecasts on the bars it learnt from are over-confident (it has seen their outcomes), so
a calibrator fit on them would keep the over-confidence. A pair enters only if its
forecast is dated after the analyst's last in-sample bar (:func:`in_sample_until`): for
``lstm`` / ``magnitude`` the end of each model's training period, so the validation slice
(held out, used only to pick the epoch) and every later forecast count; for an analyst
that otherwise learns from the bars (a foundation model with ``fine_tune``, an
``ensemble``, whose weights and refit see every bar up to the cut-off) the fit's cut-off;
nothing for analysts that learn nothing (momentum, naive, file, a pretrained model used
as is). ``calibration_pairs: all`` restores the in-sample pairs (biased; for comparison).

``isotonic``: the monotone step function closest (least squares) to the outcomes
(pool-adjacent-violators, scipy). ``platt``: ``sigmoid(a * logit(p) + b)`` fit by
maximum likelihood (Newton steps). ``score`` follows as ``2 * prob_up - 1`` when the
analyst emits it that way; other columns are untouched.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import polars as pl

from engine.errors import ConfigError, DataError

MIN_PAIRS = 50
_EPS = 1e-6


def fit_isotonic(prob: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(x, y)`` of the isotonic fit of ``up`` on ``prob`` (y non-decreasing)."""
    from scipy.optimize import isotonic_regression

    order = np.argsort(prob, kind="stable")
    x, y = np.asarray(prob, np.float64)[order], np.asarray(up, np.float64)[order]
    xs, start = np.unique(x, return_index=True)  # tied forecasts share one value
    sums = np.add.reduceat(y, start)
    counts = np.diff(np.append(start, x.size)).astype(np.float64)
    fitted = isotonic_regression(sums / counts, weights=counts).x
    return xs, fitted


def apply_isotonic(knots: tuple[np.ndarray, np.ndarray], prob: np.ndarray) -> np.ndarray:
    xs, ys = knots
    return np.interp(np.asarray(prob, np.float64), xs, ys)


def fit_platt(prob: np.ndarray, up: np.ndarray, steps: int = 100) -> tuple[float, float]:
    """``(a, b)`` maximising the likelihood of ``up`` under ``sigmoid(a logit(p) + b)``
    (damped Newton steps with a tiny ridge, so a separable sample stays finite)."""
    z = _logit(prob)
    y = np.asarray(up, np.float64)
    design = np.column_stack([z, np.ones_like(z)])
    ridge = 1e-6

    def loss(w: np.ndarray) -> float:
        u = design @ w
        return float(np.sum(np.logaddexp(0.0, u) - y * u) + 0.5 * ridge * (w @ w))

    w = np.array([1.0, 0.0])
    current = loss(w)
    for _ in range(steps):
        q = _sigmoid(design @ w)
        grad = design.T @ (q - y) + ridge * w
        hess = (design * (q * (1 - q))[:, None]).T @ design + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-8 and loss(w - scale * step) > current:
            scale /= 2
        w = w - scale * step
        new = loss(w)
        if current - new < 1e-12:
            break
        current = new
    return float(w[0]), float(w[1])


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))


def apply_platt(coef: tuple[float, float], prob: np.ndarray) -> np.ndarray:
    return _sigmoid(coef[0] * _logit(prob) + coef[1])


def _logit(prob: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(prob, np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def calibrate_series(frame: pl.DataFrame, method: str, *, prob: str = "prob_up",
                     up: str = "_up", seen: str = "_seen") -> tuple[np.ndarray, np.ndarray]:
    """Causally calibrated ``prob`` for every row of ``frame`` (``ts``, ``prob``, ``up``:
    1/0 or null when unknown or flat, ``seen``: when the outcome is observed, or null).

    Returns the values in the frame's row order and a mask of the rows that passed
    through raw (too few observed pairs yet). The calibrator used at date ``t`` is fit on
    the rows with ``seen <= t``; it is refit whenever new outcomes have arrived.
    """
    if method not in ("isotonic", "platt"):
        raise ConfigError(f"calibrate: {method!r} is not a method; use isotonic or platt")
    ts = frame["ts"].to_numpy()
    p = frame[prob].to_numpy().astype(np.float64)
    labelled = frame.select(pl.col(up).is_not_null() & pl.col(seen).is_not_null()).to_series()
    idx = np.flatnonzero(labelled.to_numpy())
    seen_at = frame[seen].to_numpy()[idx]
    order = np.argsort(seen_at, kind="stable")
    pair_p = p[idx][order]
    pair_y = frame[up].to_numpy()[idx][order].astype(np.float64)
    pair_seen = seen_at[order]
    out, raw = p.copy(), np.zeros(p.size, bool)
    fitted, fitted_n = None, -1
    for t in np.unique(ts):
        rows = np.flatnonzero(ts == t)
        n = int(np.searchsorted(pair_seen, t, side="right"))  # outcomes known by t
        if n < MIN_PAIRS or np.unique(pair_y[:n]).size < 2:
            raw[rows] = True
            continue
        if n != fitted_n:
            fitted = (fit_isotonic(pair_p[:n], pair_y[:n]) if method == "isotonic"
                      else fit_platt(pair_p[:n], pair_y[:n]))
            fitted_n = n
        out[rows] = (apply_isotonic(fitted, p[rows]) if method == "isotonic"
                     else apply_platt(fitted, p[rows]))
    return out, raw


def in_sample_until(analyst: Any) -> dict[str, Any]:
    """Per asset (``*``: every asset) the last bar whose forecast the analyst made in
    sample; empty when it learnt nothing from the bars (see the module docstring)."""
    hook = getattr(analyst, "in_sample_until", None)
    if callable(hook):
        return {key: value for key, value in hook().items() if value is not None}
    cut = getattr(analyst, "fit_cutoff", None)
    return {"*": cut} if cut is not None and _learns(analyst) else {}


def _learns(analyst: Any) -> bool:
    if getattr(getattr(analyst, "config", None), "fine_tune", None) is not None:
        return True
    if getattr(analyst, "members", None):  # ensemble: weights from held-out errors, refit
        return True
    return any(m is not None and (callable(getattr(m, "in_sample_until", None)) or _learns(m))
               for m in (getattr(analyst, "calm", None), getattr(analyst, "volatile", None)))


def _out_of_sample(frame: pl.DataFrame, cuts: dict[str, Any]) -> pl.Expr:
    """True where a row's forecast is dated after its asset's in-sample end."""
    from analysts._bars import as_datetime

    dtype = frame.schema["ts"]
    after = {k: as_datetime(v, dtype, "in-sample end") for k, v in cuts.items()}
    if "*" in after:
        return pl.col("ts") > after["*"]
    expr = pl.lit(False)
    for asset, cut in after.items():
        expr = pl.when(pl.col("asset") == asset).then(pl.col("ts") > cut).otherwise(expr)
    return expr


def calibrated_predict(analyst: Any, raw_predict: Any, bars: pl.DataFrame,
                       start: Any, end: Any) -> pl.DataFrame:
    """``raw_predict(bars, start', end)`` from ``calibration_history`` bars before
    ``start`` (no earlier than the analyst's in-sample end when only out-of-sample pairs
    count), calibrated causally, trimmed back to ``[start, end]``."""
    from analysts._bars import as_datetime, check_bars, in_window
    from analysts.features import add_targets, target_names

    config = analyst.config
    checked = check_bars(bars, analyst.name)
    stamps = checked["ts"].unique().sort()
    first = 0
    if start is not None:
        lo = as_datetime(start, stamps.dtype, "start")
        first = int(stamps.search_sorted(lo, side="left"))
    cuts = in_sample_until(analyst) if config.calibration_pairs == "out_of_sample" else {}
    begin = max(0, first - config.calibration_history)
    if cuts and stamps.len():  # in-sample forecasts are not needed: skip computing them
        oldest = min(as_datetime(c, stamps.dtype, "in-sample end") for c in cuts.values())
        begin = min(first, max(begin, int(stamps.search_sorted(oldest, side="right"))))
    early = stamps[min(begin, stamps.len() - 1)] if stamps.len() else None
    signals = raw_predict(bars, early, end)
    if "prob_up" not in signals.columns:
        raise ConfigError(f"analyst {analyst.name!r}: calibrate is set but the analyst emits "
                          f"no prob_up; remove calibrate from its config")
    if signals.height == 0:
        return in_window(signals, start, end)
    horizon = int(getattr(config, "horizon", 1))
    up, change, seen = target_names(horizon)
    labels = add_targets(checked.select("ts", "asset", "close"), (horizon,)).select(
        "ts", "asset", pl.when(pl.col(change) == 0).then(None).otherwise(pl.col(up))
        .cast(pl.Float64).alias("_up"), pl.col(seen).alias("_seen"))
    frame = signals.join(labels, on=["ts", "asset"], how="left").sort("ts", "asset")
    if frame["prob_up"].null_count():
        raise DataError(f"analyst {analyst.name!r} emitted null prob_up; cannot calibrate")
    if cuts:  # an in-sample forecast's outcome is never a calibration pair
        frame = frame.with_columns(pl.when(_out_of_sample(frame, cuts)).then(pl.col("_up"))
                                   .otherwise(None).alias("_up"))
    values, raw = calibrate_series(frame, config.calibrate)
    frame = frame.with_columns(pl.Series("prob_up", values), pl.Series("_raw", raw))
    if "score" in frame.columns and _score_is_prob(signals):
        frame = frame.with_columns((2.0 * pl.col("prob_up") - 1.0).alias("score"))
    out = in_window(frame, start, end)
    n_raw = int(out["_raw"].sum())
    if n_raw:
        kind = ("out-of-sample outcomes (forecasts on the bars the analyst learnt from do "
                "not count)" if cuts else "outcomes")
        warnings.warn(f"analyst {analyst.name!r}: calibrate={config.calibrate}: {n_raw} of "
                      f"{out.height} forecasts came before {MIN_PAIRS} {kind} were observed "
                      f"and keep their raw prob_up (raise calibration_history, or hold out "
                      f"more bars before the window)", stacklevel=3)
    return out.select(signals.columns)


def _score_is_prob(signals: pl.DataFrame) -> bool:
    """True when the analyst's score is ``2 * prob_up - 1`` (the LSTM's convention)."""
    both = signals.drop_nulls(["score", "prob_up"])
    if both.height == 0:
        return False
    diff = (both["score"] - (2 * both["prob_up"] - 1)).abs().max()
    return diff is not None and math.isfinite(diff) and diff < 1e-9
