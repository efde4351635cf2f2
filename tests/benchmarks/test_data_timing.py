"""Benchmark panels, the equality checks and the timing rules."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import stocks_panel, tiled_panel
from benchmarks._checks import compare_counts, compare_curves
from benchmarks._timing import best_of
from engine import DataError


@pytest.fixture(scope="module")
def base():
    return stocks_panel(300)


def test_stocks_panel_is_the_tail_of_the_bundled_set(base):
    full = stocks_panel()
    assert full.n_bars == 8313 and full.n_assets == 20
    np.testing.assert_array_equal(base.close, full.close[-300:])
    np.testing.assert_array_equal(base.ts, full.ts[-300:])
    assert not base.has_open and base.open is base.close
    with pytest.raises(DataError, match="outside 2..8313"):
        stocks_panel(9000)


def test_tiled_panel_is_seeded_noise_on_each_copy(base):
    tiled = tiled_panel(base, 3, seed=11, noise_sigma=0.01)
    assert tiled.close.shape == (300, 60)
    assert tiled.assets[:2] == (f"{base.assets[0]}_00", f"{base.assets[1]}_00")
    assert tiled.assets[20] == f"{base.assets[0]}_01"
    np.testing.assert_array_equal(tiled.close, tiled_panel(base, 3, seed=11,
                                                           noise_sigma=0.01).close)
    # each copy = base x its own path exp(cumsum(N(0, sigma))); recover the increments
    ratio = tiled.close / np.tile(base.close, (1, 3))
    steps = np.diff(np.log(ratio), axis=0)
    assert 0.008 < steps.std() < 0.012
    assert not np.allclose(ratio[:, 0], ratio[:, 20])  # copies differ
    rng = np.random.default_rng(11)
    expected_first_row = np.exp(rng.normal(0.0, 0.01, (300, 60)))[0]
    np.testing.assert_allclose(ratio[0], expected_first_row, rtol=1e-12)
    np.testing.assert_array_equal(tiled_panel(base, 1, noise_sigma=0.0).close, base.close)


def test_compare_curves_reports_worst_and_first_bad_bar():
    ours = np.array([100.0, 101.0, 102.0, 103.0])
    theirs = np.array([100.0, 101.0, 102.0 * (1 + 1e-5), 103.0 * (1 + 1e-3)])
    check = compare_curves("peer", "equity", ours, theirs, 1e-6)
    assert not check.passed and check.first_bad_bar == 2
    assert check.max_rel_diff == pytest.approx(1e-3 / (1 + 1e-3), rel=1e-9)
    assert compare_curves("peer", "equity", ours, ours * (1 + 1e-10), 1e-8).passed
    nan_check = compare_curves("peer", "equity", ours, np.array([100.0, np.nan, 102, 103]), 1)
    assert not nan_check.passed and nan_check.first_bad_bar == 1
    short = compare_curves("peer", "equity", ours, ours[:3], 1e-8)
    assert not short.passed and "length" in short.note


def test_compare_counts():
    assert compare_counts("peer", "fills", 5, 5).passed
    bad = compare_counts("peer", "fills", 5, 4)
    assert not bad.passed and bad.max_rel_diff == pytest.approx(0.25)


def test_best_of_repeats_and_budget():
    calls = []
    timing = best_of(lambda: calls.append(1), first_s=0.5, min_repeats=7, min_total_s=0.0)
    assert len(calls) == 7 and timing.repeats == 7 and timing.first_s == 0.5
    assert 0 <= timing.best_s <= timing.median_s
    calls.clear()
    # a budget already spent stops after one timed run, however many repeats were asked
    timing = best_of(lambda: calls.append(1), first_s=0.0, min_repeats=50,
                     min_total_s=100.0, max_total_s=0.0)
    assert len(calls) == 1 and timing.repeats == 1
    assert timing.throughput(1000) == pytest.approx(1000 / timing.best_s)
