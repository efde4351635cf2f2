"""The workloads' decisions against hand-computed values and slow loop references."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import momentum_topk_weights, sma_crossover
from benchmarks._signals import month_starts, shift_one_bar, sma
from engine import DataError


def _sma_loop(close, window):
    out = np.full(close.shape, np.nan)
    for t in range(window - 1, close.shape[0]):
        out[t] = close[t - window + 1 : t + 1].mean(axis=0)
    return out


def _crossover_loop(close, fast, slow):
    f, s = _sma_loop(close, fast), _sma_loop(close, slow)
    le = np.zeros(close.shape, dtype=bool)
    se = np.zeros(close.shape, dtype=bool)
    for t in range(1, close.shape[0]):
        for j in range(close.shape[1]):
            values = (f[t, j], s[t, j], f[t - 1, j], s[t - 1, j])
            if not all(np.isfinite(values)):
                continue
            le[t, j] = f[t, j] > s[t, j] and not f[t - 1, j] > s[t - 1, j]
            se[t, j] = f[t, j] < s[t, j] and not f[t - 1, j] < s[t - 1, j]
    return le, se


def test_sma_matches_window_means():
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (400, 4)), axis=0))
    np.testing.assert_allclose(sma(close, 20), _sma_loop(close, 20), rtol=1e-12)
    assert np.isnan(sma(close, 20)[:19]).all()
    assert np.isnan(sma(close[:5], 20)).all()


def test_crossover_hand_computed():
    # sma2 = [., 2.5, 1.5, 1.5, 2.5, 3.5, 3.5, 2.5, 1.5]
    # sma3 = [., ., 2, 5/3, 2, 3, 10/3, 3, 2]: above from bar 4, below again at bar 7
    close = np.array([3, 2, 1, 2, 3, 4, 3, 2, 1], dtype=float)[:, None]
    le, se = sma_crossover(close, fast=2, slow=3)
    assert np.nonzero(le[:, 0])[0].tolist() == [4]
    assert np.nonzero(se[:, 0])[0].tolist() == [7]


def test_crossover_matches_loop_reference():
    rng = np.random.default_rng(2)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (600, 6)), axis=0))
    le, se = sma_crossover(close, 5, 30)
    ref_le, ref_se = _crossover_loop(close, 5, 30)
    np.testing.assert_array_equal(le, ref_le)
    np.testing.assert_array_equal(se, ref_se)
    assert le.sum() > 20 and se.sum() > 20
    assert not (le & se).any()


def test_crossover_rejects_bad_windows():
    with pytest.raises(DataError, match="fast < slow"):
        sma_crossover(np.ones((10, 1)), fast=5, slow=5)


def _days(start, n):
    return np.arange(np.datetime64(start, "ns"), np.datetime64(start, "ns")
                     + n * np.timedelta64(1, "D"), np.timedelta64(1, "D"))


def test_momentum_weights_hand_computed():
    ts = _days("2020-01-30", 6)  # Jan 30, Jan 31, Feb 1 (month start, bar 2), Feb 2..4
    close = np.ones((6, 4))
    close[2] = [1.1, 0.9, 1.3, 1.0]  # momentum over 2 bars: +10 %, -10 %, +30 %, 0 %
    w = momentum_topk_weights(close, ts, lookback=2, k=1, gross=1.0)
    np.testing.assert_array_equal(w[2], [0.0, -0.5, 0.5, 0.0])
    assert np.isnan(np.delete(w, 2, axis=0)).all()
    assert month_starts(ts).tolist() == [False, False, True, False, False, False]


def test_momentum_weights_are_as_of_and_balanced():
    rng = np.random.default_rng(3)
    ts = _days("2019-01-01", 700)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, (700, 40)), axis=0))
    w = momentum_topk_weights(close, ts, lookback=252, k=4, gross=1.0)
    rows = np.nonzero(np.isfinite(w[:, 0]))[0]
    assert rows.min() >= 252 and len(rows) >= 14
    np.testing.assert_allclose(np.abs(w[rows]).sum(axis=1), 1.0)
    np.testing.assert_allclose(w[rows].sum(axis=1), 0.0, atol=1e-15)
    assert ((w[rows] > 0).sum(axis=1) == 4).all()
    # changing every price after a rebalance leaves that rebalance and earlier ones alone
    t = rows[len(rows) // 2]
    later = close.copy()
    later[t + 1 :] *= rng.uniform(0.5, 2.0, later[t + 1 :].shape)
    w2 = momentum_topk_weights(later, ts, lookback=252, k=4, gross=1.0)
    np.testing.assert_array_equal(w2[: t + 1], w[: t + 1])


def test_momentum_rejects_too_large_k():
    with pytest.raises(DataError, match="k <= n_assets / 2"):
        momentum_topk_weights(np.ones((5, 4)), _days("2020-01-01", 5), k=3)


def test_shift_one_bar():
    flags = np.array([[True], [False], [True]])
    assert shift_one_bar(flags)[:, 0].tolist() == [False, True, False]
    w = np.array([[0.5], [np.nan], [0.1]])
    np.testing.assert_array_equal(shift_one_bar(w)[:, 0], [np.nan, 0.5, np.nan])
