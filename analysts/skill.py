"""Is a forecast better than a baseline, beyond luck? Tests and skill measures.

Everything here is plain numpy/scipy on arrays (or a long polars frame for the
cross-sectional measures), so evaluation, walk-forward and reports share one set of
definitions:

* :func:`diebold_mariano` -- DM test of equal expected loss, the variance of the mean loss
  differential from Newey-West (Bartlett weights, ``horizon - 1`` lags: an h-bar forecast
  error is MA(h-1) under the null), with the Harvey-Leybourne-Newbold small-sample
  correction and Student-t(n-1) p-values. :func:`panel_diebold_mariano` averages the loss
  differential over assets per date first (assets at one date are not independent) and
  tests the series of date means.
* :func:`direction_test` -- hit rate of a direction forecast against a baseline on the
  same rows: an exact binomial (sign) test on the rows where the two disagree (McNemar),
  and a HAC test on the per-date hit-rate difference (robust to overlapping labels and
  cross-sectional correlation). Flat rows (realised return exactly 0) have no direction:
  they are dropped from direction scoring and counted (``n_flat``).
* :func:`auc` -- area under the ROC curve (Mann-Whitney, ties count one half).
* :func:`ic_table` -- cross-sectional Pearson IC and Spearman rank IC per date, their
  mean, Newey-West t-stat and p-value; :func:`quantile_spread` -- top-minus-bottom
  quantile mean return per date; :func:`signal_turnover`.
* :func:`crps_samples`, :func:`interval_coverage`, :func:`pit_values`: scores of sample
  forecasts; :func:`brier_score`, :func:`reliability_curve` of ``prob_up``.
* :func:`verdict` -- one plain sentence from the tests.

Conventions: ``loss differential = loss(model) - loss(baseline)`` (negative = model
better); ``p_value`` is two-sided; ``p_better`` is one-sided for "the model's expected
loss is lower" (what a skill claim needs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

ALPHA = 0.05


def _stats():
    """``scipy.stats``, imported on first use: it costs about half a second, and a run
    that only asks :func:`analysts.evaluation.model_notes` never needs it."""
    from scipy import stats

    return stats


def newey_west_variance(x: np.ndarray, lags: int) -> float:
    """Long-run variance of ``x`` (Bartlett-weighted autocovariances up to ``lags``;
    divisor n, as in Newey and West 1987). The variance of the mean is this over n."""
    x = np.asarray(x, np.float64)
    n = x.size
    if n < 2:
        return math.nan
    e = x - x.mean()
    var = float(e @ e) / n
    for k in range(1, min(lags, n - 1) + 1):
        var += 2.0 * (1.0 - k / (lags + 1.0)) * float(e[k:] @ e[:-k]) / n
    return var


@dataclass(frozen=True)
class TestResult:
    """A test of "mean of the differential is zero": ``mean`` and its t-like ``stat``."""

    n: int
    mean: float
    stat: float
    p_value: float   # two-sided
    p_better: float  # one-sided: the model is better (mean < 0 for losses, > 0 for hits)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


_NAN_TEST = TestResult(0, math.nan, math.nan, math.nan, math.nan)


def diebold_mariano(loss_model: np.ndarray, loss_base: np.ndarray, horizon: int = 1,
                    hln: bool = True) -> TestResult:
    """DM test of equal expected loss on aligned loss series (one per period).

    ``stat = mean(d) / sqrt(NW(d, horizon - 1) / n)``; with ``hln`` it is multiplied by
    ``sqrt((n + 1 - 2h + h(h-1)/n) / n)`` and referred to Student-t(n-1), else to N(0,1).
    A differential with zero variance (identical forecasts) gives p = 1.
    """
    d = np.asarray(loss_model, np.float64) - np.asarray(loss_base, np.float64)
    d = d[np.isfinite(d)]
    n = d.size
    if n < 3:
        return TestResult(n, float(d.mean()) if n else math.nan, math.nan, math.nan, math.nan)
    mean = float(d.mean())
    var = newey_west_variance(d, max(horizon - 1, 0))
    if not var > 1e-300:  # a negative NW estimate is possible only with lags; fall back
        var = float(np.var(d))
    if not var > 1e-300:
        return TestResult(n, mean, 0.0, 1.0, 0.5 if mean == 0 else float(mean > 0))
    stat = mean / math.sqrt(var / n)
    if hln:
        h = max(horizon, 1)
        stat *= math.sqrt(max(n + 1 - 2 * h + h * (h - 1) / n, 1e-12) / n)
        dist = _stats().t(df=n - 1)
    else:
        dist = _stats().norm()
    return TestResult(n, mean, float(stat), float(2 * dist.sf(abs(stat))),
                      float(dist.cdf(stat)))


def per_date_mean(ts: np.ndarray | pl.Series, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per distinct ``ts``, in time order."""
    frame = pl.DataFrame({"ts": ts, "v": np.asarray(values, np.float64)})
    return frame.group_by("ts").agg(pl.col("v").mean()).sort("ts")["v"].to_numpy()


def panel_diebold_mariano(ts: np.ndarray | pl.Series, loss_model: np.ndarray,
                          loss_base: np.ndarray, horizon: int = 1) -> TestResult:
    """DM on the per-date mean loss differential of a panel (one row per ts and asset)."""
    d = np.asarray(loss_model, np.float64) - np.asarray(loss_base, np.float64)
    dates = per_date_mean(ts, d)
    return diebold_mariano(dates, np.zeros_like(dates), horizon)


def hac_mean_test(x: np.ndarray, lags: int, higher_is_better: bool = True) -> TestResult:
    """t-test of ``mean(x) = 0`` with a Newey-West variance (``lags``); normal p-values.
    ``p_better`` is one-sided in the direction ``higher_is_better`` says."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 3:
        return TestResult(n, float(x.mean()) if n else math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    var = newey_west_variance(x, lags)
    if not var > 1e-300:
        var = float(np.var(x))
    if not var > 1e-300:
        return TestResult(n, mean, 0.0, 1.0, 0.5)
    stat = mean / math.sqrt(var / n)
    norm = _stats().norm
    p_better = norm.sf(stat) if higher_is_better else norm.cdf(stat)
    return TestResult(n, mean, float(stat), float(2 * norm.sf(abs(stat))),
                      float(p_better))


# -- direction --------------------------------------------------------------------------
def direction_test(ts: np.ndarray | pl.Series, pred_up: np.ndarray, base_up: np.ndarray,
                   realised: np.ndarray, horizon: int = 1) -> dict[str, float]:
    """Hit rates of ``pred_up`` and ``base_up`` against ``realised > 0`` on the same rows.

    Flat rows (``realised == 0``) are left out and counted. ``binom_p``: exact one-sided
    binomial test that, among rows where the two forecasts disagree, the model is right
    more than half the time (McNemar); it assumes independent rows. ``hac_p``: one-sided
    HAC test of the per-date hit-rate difference (``horizon - 1`` lags), robust to
    overlapping labels and to assets moving together; verdicts use it.
    """
    realised = np.asarray(realised, np.float64)
    flat = realised == 0
    keep = ~flat & np.isfinite(realised)
    up = realised[keep] > 0
    model_hit = np.asarray(pred_up, bool)[keep] == up
    base_hit = np.asarray(base_up, bool)[keep] == up
    wins, losses = int(np.sum(model_hit & ~base_hit)), int(np.sum(~model_hit & base_hit))
    binom_p = (float(_stats().binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)
               if wins + losses else 1.0)
    stamps = np.asarray(ts)[keep]
    hac = hac_mean_test(per_date_mean(stamps, model_hit.astype(float) - base_hit),
                        max(horizon - 1, 0)) if keep.any() else _NAN_TEST
    return {"n": int(keep.sum()), "n_flat": int(flat.sum()),
            "accuracy": float(model_hit.mean()) if keep.any() else math.nan,
            "baseline_accuracy": float(base_hit.mean()) if keep.any() else math.nan,
            "wins": wins, "losses": losses, "binom_p": binom_p,
            "hac_stat": hac.stat, "hac_p": hac.p_better}


def auc(score: np.ndarray, up: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for the class ``up`` (ties count 1/2)."""
    score, up = np.asarray(score, np.float64), np.asarray(up, bool)
    n_pos, n_neg = int(up.sum()), int((~up).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _stats().rankdata(score)
    return float((ranks[up].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# -- cross-section ----------------------------------------------------------------------
def ic_series(frame: pl.DataFrame, signal: str = "signal", realised: str = "realised",
              min_assets: int = 3) -> pl.DataFrame:
    """Per date: ``ic`` (Pearson) and ``rank_ic`` (Spearman) of ``signal`` with
    ``realised`` across assets. Dates with fewer than ``min_assets`` assets or a constant
    signal or outcome are left out."""
    ranked = frame.drop_nulls([signal, realised]).with_columns(
        pl.col(signal).rank().over("ts").alias("_rs"),
        pl.col(realised).rank().over("ts").alias("_rr"))
    return (ranked.group_by("ts")
            .agg(pl.len().alias("n"), pl.corr(signal, realised).alias("ic"),
                 pl.corr("_rs", "_rr").alias("rank_ic"))
            .filter((pl.col("n") >= min_assets) & pl.col("ic").is_finite()
                    & pl.col("rank_ic").is_finite())
            .sort("ts"))


def ic_table(frame: pl.DataFrame, horizon: int = 1, signal: str = "signal",
             realised: str = "realised") -> dict[str, float]:
    """Mean IC and rank IC with Newey-West (``horizon - 1`` lags) t-stats and one-sided
    p-values (positive IC), and the share of dates with a positive rank IC."""
    series = ic_series(frame, signal, realised)
    out: dict[str, float] = {"dates": series.height}
    for column in ("ic", "rank_ic"):
        test = hac_mean_test(series[column].to_numpy(), max(horizon - 1, 0))
        out[column] = test.mean
        out[f"{column}_t"] = test.stat
        out[f"{column}_p"] = test.p_better
    out["rank_ic_hit"] = (float((series["rank_ic"] > 0).mean()) if series.height
                          else math.nan)
    return out


def quantile_spread(frame: pl.DataFrame, horizon: int = 1, quantiles: int = 5,
                    signal: str = "signal", realised: str = "realised") -> dict[str, float]:
    """Mean realised return of the top minus the bottom ``quantiles``-tile of the signal
    per date (assets split by signal rank), with a Newey-West t-stat. Needs at least
    ``quantiles`` assets per date."""
    q = (frame.drop_nulls([signal, realised])
         .with_columns(pl.len().over("ts").alias("_n"),
                       pl.col(signal).rank("ordinal").over("ts").alias("_rank"))
         .filter(pl.col("_n") >= quantiles)
         .with_columns(((pl.col("_rank") - 1) * quantiles // pl.col("_n")).alias("_bucket")))
    per = (q.group_by("ts").agg(
        pl.col(realised).filter(pl.col("_bucket") == quantiles - 1).mean().alias("top"),
        pl.col(realised).filter(pl.col("_bucket") == 0).mean().alias("bottom"))
        .drop_nulls().sort("ts"))
    spread = (per["top"] - per["bottom"]).to_numpy()
    test = hac_mean_test(spread, max(horizon - 1, 0))
    return {"dates": per.height, "quantiles": quantiles, "spread": test.mean,
            "spread_t": test.stat, "spread_p": test.p_better}


def signal_turnover(frame: pl.DataFrame, signal: str = "signal",
                    quantiles: int = 5) -> dict[str, float]:
    """How much the signal changes from one date to the next, per asset and cross-section.

    ``sign_flip_rate``: share of consecutive (asset) pairs whose signal sign flips.
    ``rank_autocorr``: mean over dates of the Spearman correlation of the cross-sectional
    ranks at t and t-1 (same assets). ``top_turnover``: mean share of the top quantile's
    names that were not in it the date before.
    """
    f = (frame.drop_nulls(signal).sort("asset", "ts")
         .with_columns(pl.col(signal).shift(1).over("asset").alias("_prev")))
    pairs = f.drop_nulls("_prev")
    flips = float((np.sign(pairs[signal].to_numpy()) != np.sign(pairs["_prev"].to_numpy()))
                  .mean()) if pairs.height else math.nan
    ranked = pairs.with_columns(pl.col(signal).rank().over("ts").alias("_r"),
                                pl.col("_prev").rank().over("ts").alias("_rp"),
                                pl.len().over("ts").alias("_n"))
    auto = (ranked.filter(pl.col("_n") >= 3).group_by("ts")
            .agg(pl.corr("_r", "_rp").alias("c")).filter(pl.col("c").is_finite()))
    top = (f.with_columns(pl.len().over("ts").alias("_n"),
                          pl.col(signal).rank("ordinal", descending=True).over("ts")
                          .alias("_rank"))
           .filter(pl.col("_n") >= quantiles)
           .filter(pl.col("_rank") <= pl.col("_n") // quantiles))
    members = {ts: set(g["asset"].to_list())
               for (ts,), g in top.partition_by("ts", as_dict=True).items()}
    stamps = sorted(members)
    changes = [len(members[b] - members[a]) / max(len(members[b]), 1)
               for a, b in zip(stamps, stamps[1:], strict=False)]
    return {"sign_flip_rate": flips,
            "rank_autocorr": float(auto["c"].mean()) if auto.height else math.nan,
            "top_turnover": float(np.mean(changes)) if changes else math.nan}


# -- probabilistic forecasts ------------------------------------------------------------
def crps_samples(samples: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """CRPS per row from forecast samples ``[rows, m]`` (energy form):
    ``mean|X - y| - 1/(2 m^2) sum_ij |X_i - X_j|``; lower is better, 0 for a point
    forecast that hits."""
    x = np.sort(np.atleast_2d(np.asarray(samples, np.float64)), axis=1)
    y = np.asarray(observed, np.float64).reshape(-1, 1)
    m = x.shape[1]
    first = np.mean(np.abs(x - y), axis=1)
    weights = 2.0 * np.arange(1, m + 1) - m - 1  # sum_{i<j} (x_(j) - x_(i)) over sorted x
    pairs = 2.0 * (x @ weights)  # sum over ordered pairs i != j
    return first - pairs / (2.0 * m * m)


def interval_coverage(samples: np.ndarray, observed: np.ndarray,
                      levels: tuple[float, ...] = (0.8, 0.9)) -> dict[str, float]:
    """Share of ``observed`` inside the central ``level`` interval of each row's samples
    (empirical quantiles); a calibrated forecast covers about ``level``."""
    x = np.atleast_2d(np.asarray(samples, np.float64))
    y = np.asarray(observed, np.float64)
    out = {}
    for level in levels:
        lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2], axis=1)
        out[f"coverage_{int(round(100 * level))}"] = float(np.mean((y >= lo) & (y <= hi)))
    return out


def pit_values(samples: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Probability integral transform: the share of samples below ``observed`` (ties
    count one half). Uniform on [0, 1] for a calibrated forecast."""
    x = np.atleast_2d(np.asarray(samples, np.float64))
    y = np.asarray(observed, np.float64).reshape(-1, 1)
    return np.mean(x < y, axis=1) + 0.5 * np.mean(x == y, axis=1)


def pit_histogram(pit: np.ndarray, bins: int = 10) -> list[float]:
    """Share of PIT values in each of ``bins`` equal bins (flat = calibrated)."""
    counts, _ = np.histogram(np.clip(pit, 0.0, 1.0), bins=bins, range=(0.0, 1.0))
    return (counts / max(len(pit), 1)).tolist()


def brier_score(prob_up: np.ndarray, up: np.ndarray) -> float:
    """Mean squared error of ``prob_up`` against the 0/1 outcome."""
    p, y = np.asarray(prob_up, np.float64), np.asarray(up, np.float64)
    return float(np.mean((p - y) ** 2)) if p.size else math.nan


def reliability_curve(prob_up: np.ndarray, up: np.ndarray, bins: int = 10) -> pl.DataFrame:
    """Per probability bin: rows, mean forecast probability, observed frequency of up."""
    p, y = np.asarray(prob_up, np.float64), np.asarray(up, np.float64)
    index = np.minimum((p * bins).astype(int), bins - 1)
    frame = pl.DataFrame({"bin": index, "p": p, "y": y})
    return (frame.group_by("bin").agg(pl.len().alias("n"), pl.col("p").mean().alias("mean_prob"),
                                      pl.col("y").mean().alias("observed_up"))
            .sort("bin").with_columns(pl.col("bin").cast(pl.Int64)))


# -- verdict ----------------------------------------------------------------------------
def verdict(tests: Mapping[str, float], alpha: float = ALPHA) -> str:
    """A plain sentence from one-sided p-values ``{baseline: p_better}`` (nan = untested).

    A skill claim needs every baseline beaten: "skill at 5% against every baseline
    (...)"; otherwise "no evidence of skill at 5%", naming the baselines not beaten when
    some were (beating ``last`` alone is easy: it doubles the noise).
    """
    tested = {k: v for k, v in tests.items() if v is not None and math.isfinite(v)}
    level = f"{100 * alpha:g}%"
    if not tested:
        return "not tested (too few rows)"
    beaten = [k for k, v in tested.items() if v < alpha]
    if not beaten:
        return f"no evidence of skill at {level}"
    if len(beaten) == len(tested):
        return f"skill at {level} against every baseline ({', '.join(beaten)})"
    others = [k for k in tested if k not in beaten]
    return (f"no evidence of skill at {level} against {', '.join(others)} "
            f"(beats only {', '.join(beaten)})")


def skill_verdict(errors: Mapping[str, float], direction: Mapping[str, float],
                  ranking: float | None = None, alpha: float = ALPHA) -> str:
    """One sentence over three families of one-sided p-values, Bonferroni-adjusted.

    ``errors``: DM p-values per return baseline (the model's errors are smaller than
    *every* baseline's: the family's p is the largest); ``direction``: HAC p-values per
    direction baseline (beats every one: largest); ``ranking``: the rank IC's p-value
    (None without a cross-section). A family counts when its p is below ``alpha`` divided
    by the number of families tested, so on pure noise the sentence claims skill at
    about ``alpha`` or less. Untested (nan) entries are skipped.
    """
    families: dict[str, float] = {}
    for name, tests in (("smaller errors than zero, drift and last", errors),
                        ("direction better than majority and always_up", direction)):
        values = [v for v in tests.values() if v is not None and math.isfinite(v)]
        if values and len(values) == len(tests):
            families[name] = max(values)
    if ranking is not None and math.isfinite(ranking):
        families["ranks assets (positive rank IC)"] = ranking
    level = f"{100 * alpha:g}%"
    if not families:
        return "not tested (too few rows)"
    cut = alpha / len(families)
    met = [name for name, p in families.items() if p < cut]
    if not met:
        return f"no evidence of skill at {level}"
    missed = [name for name in families if name not in met]
    tests = f"{len(families)} test{'s' if len(families) > 1 else ''}"
    return (f"skill at {level} ({tests}, Bonferroni): {'; '.join(met)}"
            + (f"; not shown: {'; '.join(missed)}" if missed else ""))
