from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from analysts import skill


def test_newey_west_variance_by_hand():
    # e = [-1.5, -0.5, 0.5, 1.5]; gamma0 = 1.25, gamma1 = 0.3125, Bartlett weight 1/2
    assert skill.newey_west_variance(np.array([1.0, 2, 3, 4]), 0) == pytest.approx(1.25)
    assert skill.newey_west_variance(np.array([1.0, 2, 3, 4]), 1) == pytest.approx(1.5625)


def test_diebold_mariano_by_hand():
    d = np.array([1.0, -1.0, 2.0, 0.0, 3.0])  # mean 1, variance (ddof 0) 2
    plain = skill.diebold_mariano(d, np.zeros(5), horizon=1, hln=False)
    assert plain.stat == pytest.approx(1 / math.sqrt(2 / 5))
    assert plain.p_value == pytest.approx(2 * stats.norm.sf(1 / math.sqrt(2 / 5)))
    assert plain.p_better == pytest.approx(stats.norm.cdf(plain.stat))  # model worse: large
    hln = skill.diebold_mariano(d, np.zeros(5), horizon=1)
    assert hln.stat == pytest.approx(plain.stat * math.sqrt(4 / 5))  # (n + 1 - 2) / n
    assert hln.p_value == pytest.approx(2 * stats.t(4).sf(hln.stat))
    # the model better by the same amounts: the sign flips, p_better is small
    better = skill.diebold_mariano(np.zeros(5), d, horizon=1)
    assert better.stat == pytest.approx(-hln.stat) and better.p_better < 0.5
    same = skill.diebold_mariano(np.ones(5), np.ones(5))
    assert same.p_value == 1.0


def test_panel_dm_averages_assets_per_date_first():
    ts = np.array([1, 1, 2, 2, 3, 3, 4, 4])
    model = np.array([1.0, 3.0, 0.0, 0.0, 2.0, 2.0, 1.0, 1.0])
    got = skill.panel_diebold_mariano(ts, model, np.zeros(8), horizon=1)
    want = skill.diebold_mariano(np.array([2.0, 0.0, 2.0, 1.0]), np.zeros(4), horizon=1)
    assert got.n == 4 and got.stat == pytest.approx(want.stat)


def _rejections(rng: np.random.Generator, horizon: int, lags_for: int, n: int,
                reps: int) -> float:
    """Share of 5% rejections when two equally bad h-bar forecasts are compared; the
    target and both forecasts are overlapping h-bar sums, so losses are autocorrelated."""
    hits = 0
    for _ in range(reps):
        y, f1, f2 = (np.convolve(rng.normal(size=n + horizon), np.ones(horizon), "valid")[:n]
                     for _ in range(3))
        hits += skill.diebold_mariano((y - f1) ** 2, (y - f2) ** 2, lags_for).p_value < 0.05
    return hits / reps


def test_dm_rejects_at_about_the_nominal_rate_on_noise():
    rng = np.random.default_rng(7)
    assert 0.025 <= _rejections(rng, 1, 1, 300, 600) <= 0.08
    assert 0.025 <= _rejections(rng, 5, 5, 500, 400) <= 0.10  # HAC with 4 lags
    # ignoring the overlap (no lags) rejects far too often: the HAC term matters
    assert _rejections(rng, 5, 1, 500, 400) > 0.15


def test_dm_detects_a_real_difference():
    rng = np.random.default_rng(3)
    y = rng.normal(size=400)
    good = 0.5 * y + rng.normal(scale=0.5, size=400)
    result = skill.diebold_mariano(np.abs(y - good), np.abs(y), horizon=1)
    assert result.mean < 0 and result.p_better < 1e-4


def test_direction_test_on_noise_and_by_hand():
    rng = np.random.default_rng(11)
    rejected_binom = rejected_hac = 0
    reps = 400
    for _ in range(reps):
        realised = rng.normal(0.05, 1.0, 300)
        guess = rng.random(300) > 0.5
        out = skill.direction_test(np.arange(300), guess, np.ones(300, bool), realised)
        rejected_binom += out["binom_p"] < 0.05
        rejected_hac += out["hac_p"] < 0.05
    # a coin cannot beat "always up" (which it tends to lose to): one-sided tests
    # reject at most at about the nominal rate
    assert rejected_binom / reps <= 0.06 and rejected_hac / reps <= 0.07
    # flats are dropped and counted; wins / losses are the discordant rows
    realised = np.array([0.0, 1.0, -1.0, 1.0, -1.0, 0.0])
    pred = np.array([True, True, False, False, True, False])
    out = skill.direction_test(np.arange(6), pred, np.ones(6, bool), realised)
    assert out["n"] == 4 and out["n_flat"] == 2
    assert out["accuracy"] == 0.5 and out["baseline_accuracy"] == 0.5
    assert (out["wins"], out["losses"]) == (1, 1)
    assert out["binom_p"] == pytest.approx(0.75)  # P(X >= 1), X ~ Bin(2, 1/2)


def test_auc_matches_sklearn_with_ties():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    score = np.round(rng.normal(size=300), 1)  # many ties
    up = rng.random(300) < 0.5 + 0.2 * np.tanh(score)
    assert skill.auc(score, up) == pytest.approx(skm.roc_auc_score(up, score))
    assert skill.auc(np.array([0.1, 0.9]), np.array([False, True])) == 1.0
    assert math.isnan(skill.auc(np.ones(3), np.ones(3, bool)))


def _panel(signal: list[list[float]], realised: list[list[float]]) -> pl.DataFrame:
    rows = []
    start = datetime(2020, 1, 1)
    for d, (s_row, r_row) in enumerate(zip(signal, realised, strict=True)):
        for a, (s, r) in enumerate(zip(s_row, r_row, strict=True)):
            rows.append({"ts": start + timedelta(days=d), "asset": f"A{a}", "signal": s,
                         "realised": r})
    return pl.DataFrame(rows)


def test_ic_by_hand():
    frame = _panel([[1, 2, 3], [3, 2, 1], [1, 2, 3]], [[1, 3, 2], [1, 2, 3], [1, 2, 4]])
    series = skill.ic_series(frame)
    assert series["rank_ic"].to_list() == pytest.approx([0.5, -1.0, 1.0])
    assert series["ic"][0] == pytest.approx(0.5)
    table = skill.ic_table(frame)
    assert table["rank_ic"] == pytest.approx(1 / 6) and table["dates"] == 3
    assert table["rank_ic_hit"] == pytest.approx(2 / 3)


def test_quantile_spread_and_turnover_by_hand():
    frame = _panel([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]],
                   [[0.0, 0.1, 0.2, 0.3, 0.4], [0.5, 0.0, 0.0, 0.0, 0.1]])
    spread = skill.quantile_spread(frame, quantiles=5)
    assert spread["spread"] == pytest.approx(np.mean([0.4 - 0.0, 0.5 - 0.1]))
    turnover = skill.signal_turnover(frame, quantiles=5)
    assert turnover["rank_autocorr"] == pytest.approx(-1.0)
    assert turnover["top_turnover"] == 1.0  # the top name changed
    assert turnover["sign_flip_rate"] == 0.0


def test_crps_by_hand_and_against_the_normal_closed_form():
    assert skill.crps_samples(np.array([[0.0, 1.0]]), np.array([0.5]))[0] == pytest.approx(0.25)
    assert skill.crps_samples(np.array([[2.0]]), np.array([0.0]))[0] == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(1, 20000))
    closed = 2 * stats.norm.pdf(0) - 1 / math.sqrt(math.pi)  # CRPS(N(0,1), 0)
    assert skill.crps_samples(draws, np.array([0.0]))[0] == pytest.approx(closed, abs=0.01)


def test_coverage_and_pit_of_a_calibrated_forecast():
    rng = np.random.default_rng(5)
    samples = rng.normal(size=(2000, 200))
    observed = rng.normal(size=2000)
    coverage = skill.interval_coverage(samples, observed)
    assert coverage["coverage_80"] == pytest.approx(0.8, abs=0.03)
    assert coverage["coverage_90"] == pytest.approx(0.9, abs=0.025)
    hist = skill.pit_histogram(skill.pit_values(samples, observed))
    assert max(hist) < 0.13 and min(hist) > 0.07
    # a forecast too narrow covers too little
    assert skill.interval_coverage(0.3 * samples, observed)["coverage_80"] < 0.5
    assert skill.pit_values(np.array([[1.0, 2.0, 3.0]]), np.array([2.0]))[0] == 0.5


def test_brier_and_reliability_by_hand():
    p = np.array([0.1, 0.1, 0.9, 0.9])
    up = np.array([0, 1, 1, 1], bool)
    assert skill.brier_score(p, up) == pytest.approx((0.01 + 0.81 + 0.01 + 0.01) / 4)
    curve = skill.reliability_curve(p, up)
    assert curve["bin"].to_list() == [1, 9]
    assert curve["observed_up"].to_list() == [0.5, 1.0] and curve["n"].to_list() == [2, 2]


def test_verdict_words():
    assert skill.verdict({"zero": 0.3, "drift": 0.5}) == "no evidence of skill at 5%"
    assert skill.verdict({"zero": 0.01, "drift": 0.02}).startswith(
        "skill at 5% against every baseline")
    assert skill.verdict({"zero": 0.4, "last": 0.01}) == \
        "no evidence of skill at 5% against zero (beats only last)"
    assert skill.verdict({"zero": math.nan}) == "not tested (too few rows)"


def test_skill_verdict_families_and_bonferroni():
    errors = {"zero": 0.001, "drift": 0.002, "last": 0.0}
    direction = {"majority": 0.3, "always_up": 0.2}
    text = skill.skill_verdict(errors, direction, ranking=0.01)
    assert text.startswith("skill at 5% (3 tests, Bonferroni): smaller errors")
    assert "ranks assets" in text and "not shown: direction" in text
    # 0.02 would pass alone, not among three families (0.05 / 3 = 0.0167)
    assert skill.skill_verdict({"zero": 0.02}, {"majority": 0.5}, ranking=0.5) == \
        "no evidence of skill at 5%"
    assert skill.skill_verdict({"zero": 0.02}, {}, None).startswith("skill at 5% (1 test,")
    # beating last but not zero is no error skill: the family's p is the largest
    assert skill.skill_verdict({"zero": 0.4, "last": 0.0}, {"majority": 0.5}) == \
        "no evidence of skill at 5%"
