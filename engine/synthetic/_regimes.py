"""The regime-switching Gaussian model: calibration, labels and simulation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.errors import ConfigError, DataError
from engine.synthetic._paths import (
    _MIN_EIGEN_RATIO,
    _SHRINK,
    PSEUDO_COUNT,
    REGIME_NAMES,
    SyntheticPath,
    _bars_frame,
    _business_days,
    _check_counts,
    _check_seed,
    _close_matrix,
    _DateLike,
    _float_array,
    _initial_vector,
    _ohlcv,
    _path_rngs,
)

# --------------------------------------------------------------------------- model


@dataclass(frozen=True, eq=False)
class RegimeModel:
    """A calibrated regime-switching Gaussian model of daily log returns.

    Attributes:
        names: regime names, ``k`` of them (:data:`REGIME_NAMES` when calibrated).
        transition: ``(k, k)`` row-stochastic matrix; ``transition[i, j]`` is the
            probability of being in regime ``j`` tomorrow given regime ``i`` today.
        means: ``(k, n)`` daily log-return means, one row per regime.
        covs: ``(k, n, n)`` daily log-return covariance matrices, symmetric positive
            definite.
        assets: the ``n`` asset names, in the column order of ``means``/``covs``.
        initial: ``(k,)`` probabilities of the first day's regime (the stationary
            distribution of ``transition`` when calibrated).
        periods_per_year: bars per year, used only for annualised figures.

    The arrays are stored as read-only float64 copies. Raises ConfigError when shapes
    disagree, probabilities are not probabilities or a covariance is not symmetric
    positive definite.
    """

    names: tuple[str, ...]
    transition: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    assets: tuple[str, ...]
    initial: np.ndarray
    periods_per_year: float = 252.0

    def __post_init__(self) -> None:
        names = tuple(str(x) for x in self.names)
        assets = tuple(str(x) for x in self.assets)
        k, n = len(names), len(assets)
        if k < 1 or n < 1:
            raise ConfigError(
                f"RegimeModel needs at least 1 regime and 1 asset, got {k} regimes and {n} assets."
            )
        if len(set(names)) != k or len(set(assets)) != n:
            raise ConfigError("RegimeModel: regime names and asset names must be unique.")
        transition = _float_array(self.transition, (k, k), "transition")
        means = _float_array(self.means, (k, n), "means")
        covs = _float_array(self.covs, (k, n, n), "covs")
        initial = _float_array(self.initial, (k,), "initial")
        if (transition < 0).any() or not np.allclose(transition.sum(axis=1), 1.0, atol=1e-8):
            raise ConfigError(
                "RegimeModel: every row of transition must hold probabilities in [0, 1] "
                f"summing to 1; the row sums are {np.round(transition.sum(axis=1), 6).tolist()}."
            )
        if (initial < 0).any() or not math.isclose(initial.sum(), 1.0, abs_tol=1e-8):
            raise ConfigError(
                "RegimeModel: initial must hold probabilities in [0, 1] summing to 1, "
                f"got {initial.tolist()}."
            )
        for s in range(k):
            c = covs[s]
            if not np.allclose(c, c.T, rtol=1e-10, atol=1e-14):
                raise ConfigError(f"RegimeModel: covs[{s}] ({names[s]}) is not symmetric.")
            try:
                np.linalg.cholesky(c)
            except np.linalg.LinAlgError:
                raise ConfigError(
                    f"RegimeModel: covs[{s}] ({names[s]}) is not positive definite "
                    f"(smallest eigenvalue {np.linalg.eigvalsh(c).min():.3g}; it must be > 0)."
                ) from None
        ppy = float(self.periods_per_year)
        if not (math.isfinite(ppy) and ppy > 0):
            raise ConfigError(f"RegimeModel: periods_per_year must be > 0, got {ppy}.")
        for name, value in (
            ("names", names),
            ("assets", assets),
            ("transition", transition),
            ("means", means),
            ("covs", covs),
            ("initial", initial),
            ("periods_per_year", ppy),
        ):
            object.__setattr__(self, name, value)

    @property
    def n_regimes(self) -> int:
        """Number of regimes ``k``."""
        return len(self.names)

    def stationary_mean(self) -> np.ndarray:
        """Unconditional daily mean log return per asset under ``initial`` weights."""
        return self.initial @ self.means

    def stationary_cov(self) -> np.ndarray:
        """Unconditional daily covariance under ``initial`` weights (mixture formula)."""
        mu = self.stationary_mean()
        second = np.einsum("s,sij->ij", self.initial, self.covs) + np.einsum(
            "s,si,sj->ij", self.initial, self.means, self.means
        )
        return second - np.outer(mu, mu)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly representation (lists and floats); inverse of :meth:`from_dict`."""
        return {
            "names": list(self.names),
            "assets": list(self.assets),
            "transition": self.transition.tolist(),
            "means": self.means.tolist(),
            "covs": self.covs.tolist(),
            "initial": self.initial.tolist(),
            "periods_per_year": self.periods_per_year,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegimeModel:
        """Rebuild a model from :meth:`to_dict` output; ConfigError names missing keys."""
        required = ("names", "assets", "transition", "means", "covs", "initial")
        missing = [key for key in required if key not in data]
        if missing:
            raise ConfigError(
                f"RegimeModel.from_dict: missing keys {missing}; required keys are "
                f"{list(required)} (optional: periods_per_year)."
            )
        return cls(
            names=tuple(data["names"]),
            transition=np.asarray(data["transition"], dtype=np.float64),
            means=np.asarray(data["means"], dtype=np.float64),
            covs=np.asarray(data["covs"], dtype=np.float64),
            assets=tuple(data["assets"]),
            initial=np.asarray(data["initial"], dtype=np.float64),
            periods_per_year=float(data.get("periods_per_year", 252.0)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegimeModel):
            return NotImplemented
        return (
            self.names == other.names
            and self.assets == other.assets
            and self.periods_per_year == other.periods_per_year
            and all(
                np.array_equal(getattr(self, f), getattr(other, f))
                for f in ("transition", "means", "covs", "initial")
            )
        )

    __hash__ = None  # type: ignore[assignment]



def calibrate(
    bars: pl.DataFrame,
    *,
    assets: Sequence[str] | None = None,
    start: _DateLike | None = None,
    end: _DateLike | None = None,
    window: int = 63,
    min_days: int = 20,
    vol_quantile: float = 0.8,
    trend_threshold: float = 0.10,
    periods_per_year: float = 252.0,
) -> RegimeModel:
    """Fit a :class:`RegimeModel` to historical closes.

    Closes of the chosen ``assets`` (default: all) between ``start`` and ``end``
    (inclusive) are pivoted to a ``(T x n)`` matrix, keeping only dates on which every
    chosen asset has a close, and turned into ``T - 1`` daily log returns.

    Labelling rule, applied to the equal-weight index (the cross-sectional mean of the
    log returns). For return day ``t`` let ``m_t`` and ``v_t`` be the mean and standard
    deviation of the index returns of the ``window`` days centred on ``t`` (half before,
    half after: the labels describe history after the fact, so a bull day lies inside an
    up-trend), annualised as ``m_t * periods_per_year`` and
    ``v_t * sqrt(periods_per_year)``. Then, in this order of precedence:

    - ``high_vol`` if the annualised ``v_t`` is above the ``vol_quantile`` quantile
      (default 80th percentile) of all annualised ``v_t`` in the sample;
    - ``bull`` if the annualised ``m_t`` is above ``+trend_threshold`` (default +10%);
    - ``bear`` if the annualised ``m_t`` is below ``-trend_threshold``;
    - ``sideways`` otherwise.

    The first and last ``window / 2`` days have no full centred window; they use the
    first (last) full window.

    Estimates: per regime, the sample mean vector and sample covariance (``ddof=1``) of
    the returns on its days. A regime with fewer than ``min_days`` days uses the pooled
    (all-days) mean and covariance instead. A covariance that is not positive definite
    is shrunk 10% towards its diagonal and its eigenvalues are clipped from below at
    ``1e-8`` times the largest. The transition matrix is the count of consecutive label
    pairs (counted circularly, plus a small balanced pseudo-count; see
    :func:`count_transitions`), normalised by row; ``initial`` is its stationary
    distribution, which equals the label frequencies up to the pseudo-count. That is
    what makes the stationary mixture reproduce the full-sample mean and covariance.

    Raises DataError for bars that break the contract, unknown assets, or fewer than
    ``2 * window`` usable dates; ConfigError for out-of-range parameters.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ConfigError(f"window must be an integer of at least 2, got {window!r}.")
    if isinstance(min_days, bool) or not isinstance(min_days, (int, np.integer)) or min_days < 2:
        raise ConfigError(f"min_days must be an integer of at least 2, got {min_days!r}.")
    if not 0.0 < vol_quantile < 1.0:
        raise ConfigError(f"vol_quantile must be strictly between 0 and 1, got {vol_quantile}.")
    if not (math.isfinite(trend_threshold) and trend_threshold >= 0):
        raise ConfigError(f"trend_threshold must be finite and >= 0, got {trend_threshold}.")
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ConfigError(f"periods_per_year must be > 0, got {periods_per_year}.")
    dates, chosen, closes = _close_matrix(bars, assets, start, end, "calibrate")
    needed = 2 * window
    if len(dates) < needed:
        raise DataError(
            f"calibrate: {len(dates)} dates on which all of {list(chosen)} have a close "
            f"(after the start/end filter); window={window} needs at least {needed}. "
            f"Widen start/end, drop assets with short histories or lower window."
        )
    returns = np.diff(np.log(closes), axis=0)
    labels = label_regimes(
        returns.mean(axis=1),
        window=window,
        vol_quantile=vol_quantile,
        trend_threshold=trend_threshold,
        periods_per_year=periods_per_year,
    )
    k, n = len(REGIME_NAMES), len(chosen)
    pooled_mean = returns.mean(axis=0)
    pooled_cov = _sample_cov(returns)
    means = np.empty((k, n))
    covs = np.empty((k, n, n))
    for s in range(k):
        rows = returns[labels == s]
        if len(rows) >= min_days:
            means[s] = rows.mean(axis=0)
            covs[s] = _make_pd(_sample_cov(rows))
        else:
            means[s] = pooled_mean
            covs[s] = _make_pd(pooled_cov)
    transition = count_transitions(labels, k)
    return RegimeModel(
        names=REGIME_NAMES,
        transition=transition,
        means=means,
        covs=covs,
        assets=chosen,
        initial=stationary_distribution(transition),
        periods_per_year=periods_per_year,
    )


def label_regimes(
    index_returns: np.ndarray,
    *,
    window: int = 63,
    vol_quantile: float = 0.8,
    trend_threshold: float = 0.10,
    periods_per_year: float = 252.0,
) -> np.ndarray:
    """Regime codes (indices into :data:`REGIME_NAMES`) for a series of index returns.

    Implements the rule documented in :func:`calibrate`; needs more than ``window`` returns.
    """
    x = np.asarray(index_returns, dtype=np.float64)
    if len(x) <= window:
        raise DataError(
            f"label_regimes: {len(x)} returns; window={window} needs more than {window}."
        )
    rows = np.lib.stride_tricks.sliding_window_view(x, window)  # row j: days j..j+window-1
    # Centred windows: day t is labelled by the returns around it (half before, half
    # after), so a "bull" day lies inside an up-trend. A trailing window would label the
    # day *after* a trend, and the regime means would then measure what follows a trend
    # (mean reversion) rather than the trend itself.
    centre = np.clip(np.arange(len(x)) - window // 2, 0, len(rows) - 1)
    ret = rows.mean(axis=1)[centre] * periods_per_year
    vol = rows.std(axis=1, ddof=1)[centre] * math.sqrt(periods_per_year)
    cut = np.quantile(vol, vol_quantile)
    bull, bear, sideways, high_vol = range(4)
    lab = np.full(len(x), sideways, dtype=np.int64)
    lab[ret > trend_threshold] = bull
    lab[ret < -trend_threshold] = bear
    lab[vol > cut] = high_vol
    return lab


def count_transitions(labels: np.ndarray, k: int) -> np.ndarray:
    """Row-stochastic transition matrix counted from a label sequence, balanced.

    Consecutive pairs ``(labels[t], labels[t+1])`` are counted with the sequence closed
    into a circle (the pair ``(labels[-1], labels[0])`` is counted too), so every regime
    is entered as often as it is left. Each cell ``(i, j)`` then gets the pseudo-count
    ``PSEUDO_COUNT * g_i * g_j`` with ``g`` the average of the label frequencies and the
    uniform distribution, so every row is a valid distribution. Both steps keep row sums
    equal to column sums, hence the stationary distribution of the result is exactly
    ``(count_i + PSEUDO_COUNT * g_i) / (len(labels) + PSEUDO_COUNT)``: the label
    frequencies, up to the pseudo-count. (Counting only the ``T - 1`` open pairs would
    leave one regime entered once more or less than it is left; for a persistent regime
    with few exits that alone moves its stationary weight by several percent.)
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.zeros((k, k))
    np.add.at(counts, (labels, np.roll(labels, -1)), 1.0)
    g = 0.5 * (np.bincount(labels, minlength=k) / len(labels) + 1.0 / k)
    counts += PSEUDO_COUNT * np.outer(g, g)
    return counts / counts.sum(axis=1, keepdims=True)


def stationary_distribution(transition: np.ndarray) -> np.ndarray:
    """The probability vector ``pi`` with ``pi @ transition == pi`` (least squares)."""
    p = np.asarray(transition, dtype=np.float64)
    k = p.shape[0]
    system = np.vstack([p.T - np.eye(k), np.ones((1, k))])
    rhs = np.zeros(k + 1)
    rhs[-1] = 1.0
    pi = np.linalg.lstsq(system, rhs, rcond=None)[0]
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def _sample_cov(rows: np.ndarray) -> np.ndarray:
    return np.atleast_2d(np.cov(rows, rowvar=False, ddof=1))


def _make_pd(cov: np.ndarray) -> np.ndarray:
    cov = 0.5 * (cov + cov.T)
    eig = np.linalg.eigvalsh(cov)
    floor = _MIN_EIGEN_RATIO * max(float(eig.max()), 1e-300)
    if eig.min() > floor:
        return cov
    cov = (1.0 - _SHRINK) * cov + _SHRINK * np.diag(np.diag(cov))
    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, floor, None)
    out = (vecs * vals) @ vecs.T
    return 0.5 * (out + out.T)


# --------------------------------------------------------------------------- simulate


def simulate_regimes(
    model: RegimeModel,
    n_days: int,
    n_paths: int = 1,
    *,
    seed: int,
    start: _DateLike = "2000-01-03",
    initial_prices: float | Mapping[str, float] = 100.0,
) -> list[SyntheticPath]:
    """Simulate ``n_paths`` paths of ``n_days`` bars from a :class:`RegimeModel`.

    The first day's regime is drawn from ``model.initial``, each later one from the
    transition row of the day before. The day's log returns are
    ``means[s] + L_s z`` with ``L_s`` the Cholesky factor of ``covs[s]`` and ``z``
    standard normal. Bars are built as described in the module docstring;
    ``initial_prices`` is one price for all assets or a mapping asset -> price.

    Raises ConfigError for ``n_days < 2``, ``n_paths < 1``, a bad seed, start or initial
    price, or a date range past the year 2262 (the end of ``Datetime('ns')``).
    """
    if not isinstance(model, RegimeModel):
        raise ConfigError(f"model must be a RegimeModel, got {type(model).__name__}.")
    _check_counts(n_days, n_paths)
    seed = _check_seed(seed)
    ts = _business_days(start, int(n_days))
    p0 = _initial_vector(initial_prices, model.assets)
    chol = np.stack([np.linalg.cholesky(c) for c in model.covs])
    vols = np.sqrt(np.stack([np.diag(c) for c in model.covs]))
    cum = np.cumsum(model.transition, axis=1)
    cum[:, -1] = 1.0
    names = np.array(model.names, dtype=object)
    out = []
    for i, rng in enumerate(_path_rngs(seed, int(n_paths))):
        states = _markov_chain(model.initial, cum, int(n_days), rng)
        z = rng.standard_normal((int(n_days), len(model.assets)))
        returns = model.means[states] + np.einsum("tij,tj->ti", chol[states], z)
        o, h, lo, c, v = _ohlcv(returns, vols[states], p0, rng)
        frame = _bars_frame(ts, model.assets, o, h, lo, c, v)
        regimes = pl.DataFrame(
            {
                "ts": pl.Series("ts", ts, dtype=pl.Datetime("ns")),
                "regime": pl.Series("regime", names[states].tolist(), dtype=pl.Utf8),
            }
        )
        out.append(SyntheticPath(bars=frame, regimes=regimes, seed=seed, path=i))
    return out


def _markov_chain(
    initial: np.ndarray, cum: np.ndarray, n_days: int, rng: np.random.Generator
) -> np.ndarray:
    u = rng.random(n_days)
    start_cum = np.cumsum(initial)
    start_cum[-1] = 1.0
    states = np.empty(n_days, dtype=np.int64)
    state = int(np.searchsorted(start_cum, u[0], side="right"))
    states[0] = state
    rows = [cum[s] for s in range(cum.shape[0])]
    for t in range(1, n_days):
        state = int(np.searchsorted(rows[state], u[t], side="right"))
        states[t] = state
    return states


# --------------------------------------------------------------------------- bootstrap
