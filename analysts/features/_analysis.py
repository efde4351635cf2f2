"""Looking at features before training on them: label correlation, ablation, universe.

* :func:`feature_label_correlation` -- Pearson and Spearman correlation of each feature
  with a label, strongest first.
* :func:`ablation_report` -- leave-one-feature-out: a ridge regression (closed form, so
  the report takes seconds, not a training run per feature) is fit on the earlier part
  of the rows and scored on the later part, with all features and without each one. A
  feature whose removal *improves* the score is a candidate to drop.
* :func:`pick_least_correlated` -- a greedy universe: start from one ticker, repeatedly
  add the stock least correlated (on daily returns) with those already chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import polars as pl

from analysts.features._scaler import FeatureScaler
from engine.errors import ConfigError, DataError


def _finite_rows(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    ok = pl.all_horizontal([pl.col(c).is_not_null() & pl.col(c).is_finite() for c in columns])
    return frame.filter(ok)


def feature_label_correlation(frame: pl.DataFrame, columns: Sequence[str],
                              label: str) -> pl.DataFrame:
    """``feature, pearson, spearman, n`` sorted by absolute Pearson correlation, descending.

    Rows where the feature or the label is missing are left out pair by pair.
    """
    if label not in frame.columns:
        raise DataError(f"label column {label!r} is not in the frame; add targets first "
                        f"(analysts.features.add_targets)")
    rows = []
    for column in columns:
        pair = _finite_rows(frame.select(column, label), [column, label])
        x, y = pair[column].to_numpy(), pair[label].to_numpy()
        if pair.height < 3 or np.std(x) == 0 or np.std(y) == 0:
            rows.append((column, None, None, pair.height))
            continue
        pearson = float(np.corrcoef(x, y)[0, 1])
        rx = pair[column].rank("average").to_numpy()
        ry = pair[label].rank("average").to_numpy()
        spearman = float(np.corrcoef(rx, ry)[0, 1])
        rows.append((column, pearson, spearman, pair.height))
    out = pl.DataFrame(rows, schema={"feature": pl.String, "pearson": pl.Float64,
                                     "spearman": pl.Float64, "n": pl.Int64}, orient="row")
    return out.sort(pl.col("pearson").abs(), descending=True, nulls_last=True)


def _ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    design = np.column_stack([x, np.ones(len(x))])
    penalty = alpha * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # do not shrink the intercept
    return np.linalg.solve(design.T @ design + penalty, design.T @ y)


def _ridge_scores(train: np.ndarray, y_train: np.ndarray, valid: np.ndarray,
                  y_valid: np.ndarray, alpha: float) -> tuple[float, float]:
    beta = _ridge_fit(train, y_train, alpha)
    pred = np.column_stack([valid, np.ones(len(valid))]) @ beta
    mse = float(np.mean((pred - y_valid) ** 2))
    sign = float(np.mean(np.sign(pred) == np.sign(y_valid)))
    return mse, sign


def ablation_report(frame: pl.DataFrame, columns: Sequence[str], label: str, *,
                    train_fraction: float = 0.8, alpha: float = 1.0) -> pl.DataFrame:
    """Leave-one-feature-out report of a ridge regression on ``label``.

    Rows are split by time (the earliest ``train_fraction`` of timestamps train, the rest
    validate); the scaler is fit on the training rows only. Columns: ``removed`` (the
    left-out feature, ``"<none>"`` for the full model), ``val_mse``, ``delta_mse``
    (positive = the feature helped), ``sign_accuracy``, ``delta_sign_accuracy``.
    """
    columns = list(columns)
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if len(columns) < 2:
        raise ConfigError("ablation needs at least two features to leave one out")
    data = _finite_rows(frame.select("ts", *columns, label), [*columns, label]).sort("ts")
    stamps = data["ts"].unique().sort()
    if stamps.len() < 4:
        raise DataError(f"ablation needs rows on at least 4 timestamps, got {stamps.len()}")
    cut = stamps[int(stamps.len() * train_fraction) - 1]
    train, valid = data.filter(pl.col("ts") <= cut), data.filter(pl.col("ts") > cut)
    scaler = FeatureScaler().fit(train, columns)
    x_train, x_valid = scaler.transform(train.select(columns)), scaler.transform(
        valid.select(columns))
    y_train, y_valid = train[label].to_numpy(), valid[label].to_numpy()
    base_mse, base_sign = _ridge_scores(x_train, y_train, x_valid, y_valid, alpha)
    rows = [("<none>", base_mse, 0.0, base_sign, 0.0)]
    for i, column in enumerate(columns):
        keep = [j for j in range(len(columns)) if j != i]
        mse, sign = _ridge_scores(x_train[:, keep], y_train, x_valid[:, keep], y_valid, alpha)
        rows.append((column, mse, mse - base_mse, sign, base_sign - sign))
    out = pl.DataFrame(rows, schema=["removed", "val_mse", "delta_mse", "sign_accuracy",
                                     "delta_sign_accuracy"], orient="row")
    return out.sort("delta_mse", descending=True)


def return_correlations(bars: pl.DataFrame, until: datetime | None = None) -> pl.DataFrame:
    """Pairwise Pearson correlation of daily simple returns (pairwise-complete rows)."""
    frame = bars.select("ts", "asset", "close")
    if until is not None:
        frame = frame.filter(pl.col("ts") <= until)
    wide = frame.sort("asset", "ts").with_columns(
        (pl.col("close") / pl.col("close").shift(1).over("asset") - 1.0).alias("r")
    ).pivot(on="asset", index="ts", values="r").sort("ts")
    assets = [c for c in wide.columns if c != "ts"]
    values = wide.select(assets).to_numpy().astype(np.float64)
    n = len(assets)
    corr = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i, n):
            ok = np.isfinite(values[:, i]) & np.isfinite(values[:, j])
            if ok.sum() >= 3 and values[ok, i].std() > 0 and values[ok, j].std() > 0:
                c = float(np.corrcoef(values[ok, i], values[ok, j])[0, 1])
                corr[i, j] = corr[j, i] = c
    return pl.DataFrame({"asset": assets, **{a: corr[:, k] for k, a in enumerate(assets)}})


def pick_least_correlated(bars: pl.DataFrame, start: str, n: int, *,
                          until: datetime | None = None, measure: str = "mean") -> list[str]:
    """A universe of ``n`` assets, greedily least correlated, beginning with ``start``.

    At each step the candidate with the lowest ``measure`` (``mean`` or ``max``) of its
    return correlations with the assets chosen so far is added (ties: alphabetical).
    ``until`` limits the returns used, so a universe picked for a backtest can be chosen
    from data before it.
    """
    if measure not in ("mean", "max"):
        raise ConfigError(f"measure must be 'mean' or 'max', got {measure!r}")
    corr = return_correlations(bars, until)
    assets = corr["asset"].to_list()
    if start not in assets:
        raise ConfigError(f"start ticker {start!r} is not in the bars' assets {assets}")
    if not 1 <= n <= len(assets):
        raise ConfigError(f"n must be between 1 and {len(assets)} (the assets available), "
                          f"got {n}")
    matrix = corr.select(assets).to_numpy()
    chosen = [assets.index(start)]
    reduce = np.mean if measure == "mean" else np.max
    while len(chosen) < n:
        best, best_score = None, np.inf
        for j in sorted(range(len(assets)), key=lambda k: assets[k]):
            if j in chosen:
                continue
            values = matrix[j, chosen]
            score = reduce(values) if np.isfinite(values).all() else np.inf
            if best is None or score < best_score:
                best, best_score = j, score
        chosen.append(best)
    return [assets[j] for j in chosen]
