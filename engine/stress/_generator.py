"""Seeded synthetic markets whose output is an ordinary bars frame.

Two generators and three shocks, all reproducible for a given integer seed.

**Regime-switching Gaussian model** (:class:`RegimeModel`, :func:`calibrate`,
:func:`simulate_regimes`). The market is always in one of ``k`` regimes (by default
``bull``, ``bear``, ``sideways``, ``high_vol``). The regime follows a first-order Markov
chain with a ``k x k`` row-stochastic daily transition matrix. On a day spent in regime
``s`` the vector of daily close-to-close log returns of the ``n`` assets is drawn from a
multivariate normal distribution with mean ``means[s]`` and covariance ``covs[s]``.
Mixing the regimes in their stationary proportions gives the unconditional mean
``sum_s pi_s * means[s]`` and covariance
``sum_s pi_s * (covs[s] + means[s] means[s]') - mu mu'``; because :func:`calibrate`
estimates every regime from the same days it labels, this mixture reproduces the
full-sample mean and covariance of the calibration data (approximately: the stationary
distribution of the counted transitions is close to, not equal to, the label frequencies).

**Stationary block bootstrap** (:func:`block_bootstrap`, Politis and Romano 1994). Whole
cross-sectional days of historical log returns are resampled, so the cross-correlation of
the assets is kept exactly and short-range serial dependence is kept within blocks.
Blocks start at a uniformly drawn historical day, their lengths are geometric with mean
``mean_block``, and a block that reaches the last historical day wraps to the first.

**Bars from returns.** Both generators turn a ``(n_days x n_assets)`` matrix of log
returns ``r`` into OHLCV bars the same way. With ``P0`` the initial price,
``close[t] = P0 * exp(r[0] + ... + r[t])`` (so ``r[0]`` is the return from ``P0`` to the
first close). ``open[t] = close[t-1] * exp(g)`` with ``close[-1] = P0`` and
``g ~ N(0, (0.2 * sigma)^2)``, where ``sigma`` is the asset's daily volatility (that of the
day's regime for the regime model, the historical one for the bootstrap);
``high = max(open, close) * exp(0.5 * sigma * |z1|)`` and
``low = min(open, close) * exp(-0.5 * sigma * |z2|)`` with standard normal ``z1, z2``;
``volume = 1e6 * exp(0.3 * z3)``. Timestamps are consecutive business days
(Monday to Friday, no holidays) starting on ``start`` (rolled forward to a Monday if it
falls on a weekend), as timezone-naive ``Datetime('ns')``.

**Shocks** (:func:`crash`, :func:`vol_spike`, :func:`correlation_shock`,
:func:`apply_shocks`) edit the close-to-close log returns of a :class:`SyntheticPath` in
a window of bars and rebuild the prices: every close from the window on is multiplied by
the exponential of the cumulative change in log return, each open by the factor of the
previous close, and the high/low wicks keep their original log distance from
``max(open, close)`` / ``min(open, close)``. Bars before the window, timestamps, assets and
volume are unchanged. The return of bar ``t`` is ``log(close[t] / close[t-1])``, so a
window cannot start at bar 0 (which has no previous close in the frame).

Every path is a :class:`SyntheticPath`: the bars, a frame of the regime of each bar and
the seed. Path ``i`` of a call is generated from child ``i`` of
``np.random.SeedSequence(seed)``, so it does not depend on how many paths were asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from engine.data import validate_bars
from engine.errors import ConfigError, DataError

REGIME_NAMES: tuple[str, ...] = ("bull", "bear", "sideways", "high_vol")
"""Regime names produced by :func:`calibrate`, in this order."""

SHOCK_KINDS: tuple[str, ...] = ("crash", "vol_spike", "correlation")
"""Values accepted for ``kind`` by :func:`apply_shocks`."""

GAP_VOL_FRACTION = 0.2
"""Standard deviation of the open gap, as a fraction of the asset's daily volatility."""

WICK_VOL_FRACTION = 0.5
"""Scale of the high/low wicks, as a fraction of the asset's daily volatility."""

BASE_VOLUME = 1e6
"""Median synthetic volume per bar."""

VOLUME_LOG_SD = 0.3
"""Standard deviation of log volume."""

PSEUDO_COUNT = 1.0
"""Total pseudo-count (in days) spread over the counted transition matrix; see
:func:`count_transitions`."""

_MIN_EIGEN_RATIO = 1e-8
_SHRINK = 0.1
_DateLike = str | date | datetime | np.datetime64 | pd.Timestamp


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


@dataclass(frozen=True)
class SyntheticPath:
    """One generated path.

    Attributes:
        bars: a bars frame (``ts, asset, open, high, low, close, volume``) that passes
            :func:`engine.data.validate_bars`.
        regimes: one row per bar timestamp, columns ``ts`` and ``regime`` (the regime
            name; ``"bootstrap"`` for :func:`block_bootstrap`, which adds ``source_ts``,
            the historical day whose returns were used).
        seed: the seed passed to the generator.
        path: index of this path among the paths of its call.
    """

    bars: pl.DataFrame
    regimes: pl.DataFrame
    seed: int
    path: int = 0


def _float_array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"RegimeModel: {name} must be numeric, got {type(value).__name__}."
        ) from None
    if arr.shape != shape:
        raise ConfigError(f"RegimeModel: {name} must have shape {shape}, got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ConfigError(f"RegimeModel: {name} contains NaN or infinite values.")
    arr.setflags(write=False)
    return arr


# --------------------------------------------------------------------------- data prep


def _close_matrix(
    bars: pl.DataFrame,
    assets: Sequence[str] | None,
    start: _DateLike | None,
    end: _DateLike | None,
    source: str,
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Validated bars -> (dates, assets, closes (T x n)) on dates where all assets trade."""
    frame = validate_bars(bars, source=source)
    available = sorted(frame["asset"].unique().to_list())
    if assets is None:
        chosen = tuple(available)
    else:
        if isinstance(assets, str):
            assets = [assets]
        chosen = tuple(dict.fromkeys(str(a) for a in assets))
        if not chosen:
            raise ConfigError(f"{source}: assets is empty; pick from {available}.")
        unknown = [a for a in chosen if a not in set(available)]
        if unknown:
            raise DataError(
                f"{source}: unknown assets {unknown}; the bars hold {len(available)} assets: "
                f"{available}."
            )
    tz = frame.schema["ts"].time_zone  # type: ignore[attr-defined]
    frame = frame.filter(pl.col("asset").is_in(list(chosen)))
    if start is not None:
        frame = frame.filter(pl.col("ts") >= _bound(start, tz, "start"))
    if end is not None:
        frame = frame.filter(pl.col("ts") <= _bound(end, tz, "end"))
    wide = (
        frame.pivot(on="asset", index="ts", values="close")
        .sort("ts")
        .select(["ts", *chosen])
        .drop_nulls()
    )
    closes = wide.select(chosen).to_numpy().astype(np.float64, copy=False)
    dates = wide["ts"].to_numpy()
    return dates, chosen, closes


def _bound(value: _DateLike, tz: str | None, name: str) -> datetime:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a date such as '2000-01-03', got {value!r}.") from None
    if pd.isna(stamp):
        raise ConfigError(f"{name} must be a date such as '2000-01-03', got {value!r}.")
    if tz is not None and stamp.tzinfo is None:
        stamp = stamp.tz_localize(tz)
    elif tz is None and stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    return stamp.to_pydatetime()


def _business_days(start: _DateLike, n_days: int) -> np.ndarray:
    try:
        first = pd.Timestamp(start)
    except (TypeError, ValueError):
        raise ConfigError(f"start must be a date such as '2000-01-03', got {start!r}.") from None
    if pd.isna(first) or first.tzinfo is not None:
        raise ConfigError(
            f"start must be a timezone-naive date such as '2000-01-03', got {start!r}."
        )
    too_long = ConfigError(
        f"{n_days} business days from {first.date()} run past "
        f"{pd.Timestamp.max.date()}, the last date a Datetime('ns') column can hold; use an "
        f"earlier start or fewer days (split a long sample into several paths)."
    )
    try:
        index = pd.bdate_range(first.normalize(), periods=n_days)
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise too_long from None
    # pandas may build the range at a coarser resolution than ns; the cast to ns would
    # then wrap around silently instead of failing.
    if index[-1] > pd.Timestamp.max or index[0] < pd.Timestamp.min:
        raise too_long
    return index.to_numpy().astype("datetime64[ns]")


def _check_counts(n_days: int, n_paths: int) -> None:
    if isinstance(n_paths, bool) or not isinstance(n_paths, (int, np.integer)) or n_paths < 1:
        raise ConfigError(f"n_paths must be an integer of at least 1, got {n_paths!r}.")
    if isinstance(n_days, bool) or not isinstance(n_days, (int, np.integer)) or n_days < 2:
        raise ConfigError(f"n_days must be an integer of at least 2, got {n_days!r}.")


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def _path_rngs(seed: int, n_paths: int) -> list[np.random.Generator]:
    return [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(n_paths)]


def _initial_vector(
    initial_prices: float | Mapping[str, float], assets: tuple[str, ...]
) -> np.ndarray:
    if isinstance(initial_prices, Mapping):
        missing = [a for a in assets if a not in initial_prices]
        if missing:
            raise ConfigError(
                f"initial_prices has no price for {missing}; give one for each of {list(assets)}."
            )
        values = np.array([float(initial_prices[a]) for a in assets])
    else:
        values = np.full(len(assets), float(initial_prices))
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ConfigError(f"initial_prices must be finite and > 0, got {values.tolist()}.")
    return values


# --------------------------------------------------------------------------- bars


def _ohlcv(
    returns: np.ndarray,
    daily_vol: np.ndarray,
    p0: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log returns (T x n) and per-bar daily vols (T x n) -> open, high, low, close, volume."""
    shape = returns.shape
    close = p0 * np.exp(np.cumsum(returns, axis=0))
    prev = np.vstack([p0[None, :], close[:-1]])
    noise = rng.standard_normal((4, *shape))
    open_ = prev * np.exp(GAP_VOL_FRACTION * daily_vol * noise[0])
    high = np.maximum(open_, close) * np.exp(WICK_VOL_FRACTION * daily_vol * np.abs(noise[1]))
    low = np.minimum(open_, close) * np.exp(-WICK_VOL_FRACTION * daily_vol * np.abs(noise[2]))
    volume = BASE_VOLUME * np.exp(VOLUME_LOG_SD * noise[3])
    return open_, high, low, close, volume


def _bars_frame(
    ts: np.ndarray,
    assets: tuple[str, ...],
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> pl.DataFrame:
    """Wide (T x n) arrays -> long bars frame sorted by (ts, asset)."""
    order = np.argsort(np.array(assets, dtype=object), kind="stable")
    names = np.array(assets, dtype=object)[order]
    n_bars, n = close.shape
    return pl.DataFrame(
        {
            "ts": pl.Series("ts", np.repeat(ts, n), dtype=pl.Datetime("ns")),
            "asset": pl.Series("asset", np.tile(names, n_bars).tolist(), dtype=pl.Utf8),
            "open": open_[:, order].ravel(),
            "high": high[:, order].ravel(),
            "low": low[:, order].ravel(),
            "close": close[:, order].ravel(),
            "volume": volume[:, order].ravel(),
        }
    )


def _wide(bars: pl.DataFrame) -> tuple[np.ndarray, tuple[str, ...], dict[str, np.ndarray]]:
    """A rectangular bars frame sorted by (ts, asset) -> ts, assets, wide OHLCV arrays."""
    needed = ("ts", "asset", "open", "high", "low", "close", "volume")
    missing = [c for c in needed if c not in bars.columns]
    if missing:
        raise DataError(f"path bars miss columns {missing}; a SyntheticPath holds {list(needed)}.")
    sorted_assets = tuple(sorted(bars["asset"].unique().to_list()))
    n = len(sorted_assets)
    if bars.height % n:
        raise DataError("path bars are not rectangular: every ts must hold every asset once.")
    n_bars = bars.height // n
    names = bars["asset"].to_numpy().reshape(n_bars, n)
    if not (names == np.array(sorted_assets, dtype=object)).all():
        raise DataError(
            "path bars must be sorted by (ts, asset) with every asset on every ts "
            "(as the generators produce them)."
        )
    ts = bars["ts"].to_numpy().reshape(n_bars, n)[:, 0]
    arrays = {c: bars[c].to_numpy().astype(np.float64).reshape(n_bars, n) for c in needed[2:]}
    return ts, sorted_assets, arrays


# --------------------------------------------------------------------------- calibrate


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


def stationary_bootstrap_indices(
    n_obs: int, n_days: int, *, mean_block: float, rng: np.random.Generator
) -> np.ndarray:
    """Indices into ``n_obs`` observations for a stationary bootstrap of ``n_days`` days.

    Day 0 starts a block; every later day starts a new block with probability
    ``1 / mean_block`` (so block lengths are geometric with mean ``mean_block``) and
    otherwise takes the index after the previous day's, wrapping from ``n_obs - 1`` to 0.
    A new block starts at an index drawn uniformly from ``0 .. n_obs - 1``.
    """
    if n_obs < 1:
        raise DataError("stationary bootstrap needs at least 1 observation.")
    if not (math.isfinite(mean_block) and mean_block >= 1.0):
        raise ConfigError(f"mean_block must be a finite number >= 1, got {mean_block!r}.")
    new_block = rng.random(n_days) < 1.0 / mean_block
    new_block[0] = True
    starts = rng.integers(0, n_obs, size=n_days)
    pos = np.arange(n_days)
    block_start = np.maximum.accumulate(np.where(new_block, pos, 0))
    return (starts[block_start] + (pos - block_start)) % n_obs


def block_bootstrap(
    bars: pl.DataFrame,
    n_days: int,
    n_paths: int = 1,
    *,
    seed: int,
    mean_block: float = 20.0,
    assets: Sequence[str] | None = None,
    start: _DateLike = "2000-01-03",
    hist_start: _DateLike | None = None,
    hist_end: _DateLike | None = None,
    initial_prices: float | Mapping[str, float] = 100.0,
) -> list[SyntheticPath]:
    """Stationary block bootstrap of historical daily log returns (Politis-Romano).

    Historical closes of ``assets`` (default all) between ``hist_start`` and
    ``hist_end`` are aligned on the dates where every asset has a close, turned into log
    returns and resampled a whole day (all assets together) at a time with
    :func:`stationary_bootstrap_indices`. Bars are built as described in the module
    docstring, with each asset's full-sample daily volatility for the open gap and wicks.
    ``regimes`` holds ``regime = "bootstrap"`` and ``source_ts``, the historical date
    whose returns each synthetic bar carries.

    Raises ConfigError for ``n_days < 2``, ``n_paths < 1`` or ``mean_block < 1``;
    DataError for bad bars, unknown assets or fewer than 3 usable dates.
    """
    _check_counts(n_days, n_paths)
    seed = _check_seed(seed)
    if not (isinstance(mean_block, (int, float)) and math.isfinite(mean_block) and mean_block >= 1):
        raise ConfigError(f"mean_block must be a finite number >= 1, got {mean_block!r}.")
    dates, chosen, closes = _close_matrix(bars, assets, hist_start, hist_end, "block_bootstrap")
    if len(dates) < 3:
        raise DataError(
            f"block_bootstrap: {len(dates)} dates on which all of {list(chosen)} have a close; "
            f"at least 3 are needed (2 returns)."
        )
    returns = np.diff(np.log(closes), axis=0)
    source_dates = dates[1:]
    vol = returns.std(axis=0, ddof=1)
    ts = _business_days(start, int(n_days))
    p0 = _initial_vector(initial_prices, chosen)
    out = []
    for i, rng in enumerate(_path_rngs(seed, int(n_paths))):
        idx = stationary_bootstrap_indices(
            len(returns), int(n_days), mean_block=mean_block, rng=rng
        )
        o, h, lo, c, v = _ohlcv(
            returns[idx], np.broadcast_to(vol, (int(n_days), len(chosen))), p0, rng
        )
        frame = _bars_frame(ts, chosen, o, h, lo, c, v)
        regimes = pl.DataFrame(
            {
                "ts": pl.Series("ts", ts, dtype=pl.Datetime("ns")),
                "regime": pl.Series("regime", ["bootstrap"] * int(n_days), dtype=pl.Utf8),
                "source_ts": pl.Series("source_ts", source_dates[idx]).cast(pl.Datetime("ns")),
            }
        )
        out.append(SyntheticPath(bars=frame, regimes=regimes, seed=seed, path=i))
    return out


# --------------------------------------------------------------------------- shocks


def _window(ts: np.ndarray, at: int | _DateLike, days: int, what: str) -> tuple[int, int]:
    n_bars = len(ts)
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise ConfigError(f"{what}: days must be an integer of at least 1, got {days!r}.")
    if isinstance(at, (int, np.integer)) and not isinstance(at, bool):
        first = int(at)
        if first < 0:
            first += n_bars
    else:
        try:
            stamp = pd.Timestamp(at)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{what}: at must be a bar index or a date such as '2001-06-01', got {at!r}."
            ) from None
        if pd.isna(stamp) or stamp.tzinfo is not None:
            raise ConfigError(f"{what}: at must be a timezone-naive date, got {at!r}.")
        first = int(np.searchsorted(ts, stamp.to_datetime64().astype("datetime64[ns]")))
        if first >= n_bars:
            raise ConfigError(
                f"{what}: at={at!r} is after the last bar of the path "
                f"({pd.Timestamp(ts[-1]).date()})."
            )
    if not 1 <= first < n_bars:
        raise ConfigError(
            f"{what}: the window must start at bar 1 .. {n_bars - 1} (bar 0 has no previous "
            f"close to take a return from), got at={at!r}."
        )
    last = first + int(days)
    if last > n_bars:
        raise ConfigError(
            f"{what}: a {days}-bar window starting at bar {first} overruns the path "
            f"({n_bars} bars) by {last - n_bars} bars; it must end by bar {n_bars - 1}."
        )
    return first, last


def _asset_mask(
    path_assets: tuple[str, ...], assets: Sequence[str] | None, what: str
) -> np.ndarray:
    if assets is None:
        return np.ones(len(path_assets), dtype=bool)
    if isinstance(assets, str):
        assets = [assets]
    unknown = [a for a in assets if a not in path_assets]
    if unknown:
        raise DataError(f"{what}: unknown assets {unknown}; the path holds {list(path_assets)}.")
    return np.isin(np.array(path_assets, dtype=object), np.array(list(assets), dtype=object))


def _rebuild(
    path: SyntheticPath, new_returns: np.ndarray, old_returns: np.ndarray
) -> SyntheticPath:
    """Apply changed close-to-close log returns (bars 1..T-1) to the path's prices."""
    ts, assets, a = _wide(path.bars)
    delta = np.vstack([np.zeros((1, len(assets))), new_returns - old_returns])
    factor = np.exp(np.cumsum(delta, axis=0))
    prev_factor = np.vstack([np.ones((1, len(assets))), factor[:-1]])
    close = a["close"] * factor
    open_ = a["open"] * prev_factor
    up = np.log(a["high"] / np.maximum(a["open"], a["close"]))
    down = np.log(np.minimum(a["open"], a["close"]) / a["low"])
    high = np.maximum(open_, close) * np.exp(up)
    low = np.minimum(open_, close) * np.exp(-down)
    frame = _bars_frame(ts, assets, open_, high, low, close, a["volume"])
    return SyntheticPath(bars=frame, regimes=path.regimes, seed=path.seed, path=path.path)


def _path_returns(path: SyntheticPath, what: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    if not isinstance(path, SyntheticPath):
        raise ConfigError(f"{what}: expected a SyntheticPath, got {type(path).__name__}.")
    ts, assets, a = _wide(path.bars)
    return ts, assets, np.diff(np.log(a["close"]), axis=0)


def crash(
    path: SyntheticPath,
    *,
    drop: float,
    days: int,
    at: int | _DateLike,
    assets: Sequence[str] | None = None,
) -> SyntheticPath:
    """Add a total fall of ``drop`` (0.3 = -30%) over ``days`` bars starting at ``at``.

    Each bar ``at .. at + days - 1`` of the chosen assets (default all) gets an extra log
    return of ``log(1 - drop) / days``, so every close from the end of the window on is
    exactly ``1 - drop`` times the unshocked close. ``at`` is a bar index (>= 1) or a date
    (the first bar on or after it). Raises ConfigError unless ``0 < drop < 1`` or if the
    window does not fit in the path.
    """
    try:
        drop = float(drop)
    except (TypeError, ValueError):
        raise ConfigError(f"crash: drop must be a number in (0, 1), got {drop!r}.") from None
    if not math.isfinite(drop) or drop >= 1.0:
        raise ConfigError(
            f"crash: drop={drop!r} is a shock of 100% or larger; a price cannot fall that far. "
            f"Use a drop strictly between 0 and 1 (0.3 means -30%)."
        )
    if drop <= 0.0:
        raise ConfigError(
            f"crash: drop must be strictly between 0 and 1 (0.3 means -30%), got {drop!r}."
        )
    ts, assets_, r = _path_returns(path, "crash")
    first, last = _window(ts, at, days, "crash")
    mask = _asset_mask(assets_, assets, "crash")
    new = r.copy()
    new[first - 1 : last - 1, mask] += math.log1p(-drop) / int(days)
    return _rebuild(path, new, r)


def vol_spike(
    path: SyntheticPath,
    *,
    factor: float,
    days: int,
    at: int | _DateLike,
    assets: Sequence[str] | None = None,
) -> SyntheticPath:
    """Scale the volatility of ``days`` bars from ``at`` by ``factor``.

    In the window each chosen asset's log return ``r`` becomes
    ``mean + factor * (r - mean)``, with ``mean`` its average return over the window, so
    the window's drift is kept and its standard deviation is multiplied by ``factor``.
    Raises ConfigError unless ``factor > 0`` or if the window does not fit.
    """
    try:
        factor = float(factor)
    except (TypeError, ValueError):
        raise ConfigError(f"vol_spike: factor must be a number > 0, got {factor!r}.") from None
    if not (math.isfinite(factor) and factor > 0):
        raise ConfigError(f"vol_spike: factor must be a finite number > 0, got {factor!r}.")
    ts, assets_, r = _path_returns(path, "vol_spike")
    first, last = _window(ts, at, days, "vol_spike")
    mask = _asset_mask(assets_, assets, "vol_spike")
    new = r.copy()
    block = new[first - 1 : last - 1][:, mask]
    mean = block.mean(axis=0)
    new[first - 1 : last - 1, mask] = mean + factor * (block - mean)
    return _rebuild(path, new, r)


def correlation_shock(
    path: SyntheticPath,
    *,
    days: int,
    at: int | _DateLike,
    strength: float = 1.0,
) -> SyntheticPath:
    """Push the cross-asset correlation of ``days`` bars from ``at`` towards 1.

    In the window let ``m_t`` be the cross-sectional mean log return of all assets and,
    for asset ``i``, ``mu_i``/``sd_i`` the window mean/standard deviation of its returns
    and ``mu_m``/``sd_m`` those of ``m``. The common component
    ``c_it = mu_i + (m_t - mu_m) * sd_i / sd_m`` has asset ``i``'s own mean and
    volatility; the new return is ``(1 - strength) * r_it + strength * c_it``. At
    ``strength = 1`` every pair of assets is perfectly correlated in the window.
    Raises ConfigError unless ``0 <= strength <= 1`` and ``days >= 2``, or if the window
    does not fit.
    """
    try:
        strength = float(strength)
    except (TypeError, ValueError):
        raise ConfigError(
            f"correlation_shock: strength must be in [0, 1], got {strength!r}."
        ) from None
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"correlation_shock: strength must be in [0, 1], got {strength!r}.")
    if isinstance(days, (int, np.integer)) and not isinstance(days, bool) and days < 2:
        raise ConfigError(
            f"correlation_shock: days must be at least 2 (a correlation needs two bars), got {days}."
        )
    ts, _, r = _path_returns(path, "correlation_shock")
    first, last = _window(ts, at, days, "correlation_shock")
    new = r.copy()
    block = r[first - 1 : last - 1]
    m = block.mean(axis=1)
    sd_m = m.std(ddof=1)
    if not sd_m > 0:
        return _rebuild(path, new, r)
    common = block.mean(axis=0) + np.outer(m - m.mean(), block.std(axis=0, ddof=1) / sd_m)
    new[first - 1 : last - 1] = (1.0 - strength) * block + strength * common
    return _rebuild(path, new, r)


def apply_shocks(path: SyntheticPath, shocks: Sequence[Mapping[str, Any]]) -> SyntheticPath:
    """Apply shocks in order; each is a mapping with ``kind`` and that shock's arguments.

    ``kind`` is ``"crash"`` (:func:`crash`), ``"vol_spike"`` (:func:`vol_spike`) or
    ``"correlation"`` (:func:`correlation_shock`). Raises ConfigError for an unknown kind
    or arguments the shock does not take.
    """
    functions = {"crash": crash, "vol_spike": vol_spike, "correlation": correlation_shock}
    for i, shock in enumerate(shocks):
        if not isinstance(shock, Mapping) or "kind" not in shock:
            raise ConfigError(
                f"shocks[{i}] must be a mapping with a 'kind' key (one of {list(SHOCK_KINDS)}), "
                f"got {shock!r}."
            )
        kwargs = dict(shock)
        kind = kwargs.pop("kind")
        if kind not in functions:
            raise ConfigError(
                f"shocks[{i}]: unknown kind {kind!r}; the kinds are {list(SHOCK_KINDS)}."
            )
        try:
            path = functions[kind](path, **kwargs)
        except TypeError as exc:
            raise ConfigError(
                f"shocks[{i}] ({kind}): bad arguments {sorted(kwargs)}: {exc}."
            ) from None
    return path
