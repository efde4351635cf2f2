"""Every metric on a five-bar series, against values worked out by hand.

r = [+10%, -5%, +2%, -3%, +4%], P = 12 bars a year, daily timestamps 2024-01-01..05.
Wealth: 1.1, 1.045, 1.0659, 1.033923, 1.07527992 (never back above the 1.1 peak).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.errors import ConfigError, DataError
from reports import METRIC_DEFINITIONS, compute_metrics
from tests.reports.conftest import TINY_BENCHMARK, TINY_RETURNS, TINY_TS

P = 12.0
REL = 1e-12


@pytest.fixture(scope="module")
def tiny() -> dict[str, float]:
    return compute_metrics(TINY_RETURNS, P, ts=TINY_TS)


def test_key_set_is_the_definition_table(tiny):
    assert list(tiny) == list(METRIC_DEFINITIONS)
    assert all(isinstance(v, float) for v in tiny.values())


def test_return_and_growth(tiny):
    total = 1.1 * 0.95 * 1.02 * 0.97 * 1.04 - 1.0  # 0.07527992
    assert tiny["total_return"] == pytest.approx(0.07527992, rel=REL)
    assert tiny["total_return"] == pytest.approx(total, rel=REL)
    # five bars at twelve a year = 5/12 of a year
    assert tiny["cagr"] == pytest.approx(1.07527992 ** (12 / 5) - 1.0, rel=REL)
    assert tiny["cagr"] == pytest.approx(0.1902869876, rel=1e-9)


def test_volatility_sharpe_sortino(tiny):
    # mean 0.016; deviations .084 -.066 .004 -.046 .024; sum of squares 0.01412; /4
    sd = math.sqrt(0.01412 / 4)
    assert tiny["volatility"] == pytest.approx(sd * math.sqrt(12), rel=REL)
    assert tiny["sharpe"] == pytest.approx(0.016 / sd * math.sqrt(12), rel=REL)
    assert tiny["sharpe"] == pytest.approx(0.93287456687, rel=1e-9)
    # downside deviation over all five bars: sqrt((0.05^2 + 0.03^2) / 5) = sqrt(0.00068)
    assert tiny["sortino"] == pytest.approx(0.016 / math.sqrt(0.00068) * math.sqrt(12),
                                            rel=REL)


def test_risk_free_rate_is_annual_and_compounded():
    rf = 0.05
    rf_p = 1.05 ** (1 / 12) - 1.0
    m = compute_metrics(TINY_RETURNS, P, rf=rf)
    sd = math.sqrt(0.01412 / 4)  # a constant shift leaves the std unchanged
    assert m["sharpe"] == pytest.approx((0.016 - rf_p) / sd * math.sqrt(12), rel=1e-12)
    excess = TINY_RETURNS - rf_p
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in excess) / 5)
    assert m["sortino"] == pytest.approx((0.016 - rf_p) / downside * math.sqrt(12), rel=1e-12)
    # rf does not enter volatility or CAGR
    assert m["volatility"] == pytest.approx(sd * math.sqrt(12), rel=REL)
    assert m["cagr"] == pytest.approx(1.07527992 ** (12 / 5) - 1.0, rel=REL)


def test_drawdown_depth_and_duration(tiny):
    # peak 1.1 after bar 0, trough 1.033923 at bar 3, still under water at the end
    assert tiny["max_drawdown"] == pytest.approx(1.033923 / 1.1 - 1.0, rel=REL)
    assert tiny["max_drawdown_duration_bars"] == 4  # bars 1..4
    assert tiny["max_drawdown_duration_days"] == 4  # Jan 2 .. Jan 5 inclusive
    assert tiny["longest_drawdown_bars"] == 4
    assert tiny["longest_drawdown_days"] == 4
    assert tiny["calmar"] == pytest.approx(tiny["cagr"] / 0.06007, rel=1e-9)


def test_drawdown_counts_a_first_bar_loss_and_picks_the_deepest_spell():
    # spell A: bars 0-1 (first-bar loss, from the starting capital), depth -10%;
    # recovered at bar 2; spell B: bars 3-6 (longer but shallower, -4%)
    r = np.array([-0.10, 0.05, 0.07, -0.02, -0.02, 0.01, 0.01, 0.05])
    ts = np.array(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05",
                   "2024-01-08", "2024-01-09", "2024-01-10"], dtype="datetime64[ns]")
    m = compute_metrics(r, 252, ts=ts)
    assert m["max_drawdown"] == pytest.approx(-0.10, rel=REL)
    assert m["max_drawdown_duration_bars"] == 2
    assert m["max_drawdown_duration_days"] == 2  # Jan 1 .. Jan 2
    assert m["longest_drawdown_bars"] == 4  # bars 3..6
    assert m["longest_drawdown_days"] == 6  # Jan 4 .. Jan 9 (a weekend inside)
    wealth_b = 0.9 * 1.05 * 1.07
    assert wealth_b > 1.0  # bar 2 is a new peak, so the spells really are separate


def test_no_drawdown_and_no_timestamps():
    m = compute_metrics([0.01, 0.02, 0.0, 0.01], 252)
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_duration_bars"] == 0.0
    assert math.isnan(m["max_drawdown_duration_days"])  # no ts given
    assert math.isnan(m["calmar"])  # CAGR / 0 is not a number we report


def test_period_statistics(tiny):
    assert tiny["win_rate_periods"] == pytest.approx(3 / 5, rel=REL)
    assert tiny["profit_factor_periods"] == pytest.approx(0.16 / 0.08, rel=REL)
    assert tiny["avg_win_period"] == pytest.approx(0.16 / 3, rel=REL)
    assert tiny["avg_loss_period"] == pytest.approx(-0.04, rel=REL)
    assert tiny["best_period"] == 0.10
    assert tiny["worst_period"] == -0.05
    # sorted: -.05 -.03 .02 .04 .10; q05 at position 0.2 -> -.05 + .2 * .02
    assert tiny["var_95"] == pytest.approx(-0.046, rel=REL)
    assert tiny["cvar_95"] == pytest.approx(-0.05, rel=REL)  # only -5% lies below
    # q95 at position 3.8 -> .04 + .8 * .06 = .088
    assert tiny["tail_ratio"] == pytest.approx(0.088 / 0.046, rel=REL)


def test_win_rate_ignores_flat_bars():
    m = compute_metrics([0.01, 0.0, 0.0, -0.02, 0.03], 252)
    assert m["win_rate_periods"] == pytest.approx(2 / 3, rel=REL)


def test_skew_and_kurtosis_match_the_textbook_estimators(tiny):
    x = TINY_RETURNS
    n, mean = x.size, x.mean()
    m2 = sum((v - mean) ** 2 for v in x) / n
    m3 = sum((v - mean) ** 3 for v in x) / n
    m4 = sum((v - mean) ** 4 for v in x) / n
    g1 = m3 / m2**1.5
    g2 = m4 / m2**2 - 3.0
    assert tiny["skew"] == pytest.approx(g1 * math.sqrt(n * (n - 1)) / (n - 2), rel=1e-10)
    assert tiny["kurtosis"] == pytest.approx(
        (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6.0), rel=1e-10)


def test_trade_metrics_from_the_trades_frame():
    trades = pl.DataFrame({
        "pnl": [100.0, -50.0, 30.0, 0.0, -20.0],
        "return": [0.10, -0.05, 0.03, 0.0, -0.02],
        "is_open": [False, False, False, False, True],
    })
    m = compute_metrics(TINY_RETURNS, P, trades=trades)
    assert m["n_trades"] == 4 and m["n_open_trades"] == 1
    assert m["win_rate_trades"] == pytest.approx(2 / 3, rel=REL)  # the break-even one is out
    assert m["profit_factor_trades"] == pytest.approx(130 / 50, rel=REL)
    assert m["avg_win_trade"] == pytest.approx(0.065, rel=REL)
    assert m["avg_loss_trade"] == pytest.approx(-0.05, rel=REL)
    assert m["avg_win_trade_pnl"] == pytest.approx(65.0, rel=REL)
    assert m["avg_loss_trade_pnl"] == pytest.approx(-50.0, rel=REL)


def test_profit_factor_without_losses_is_infinite_and_without_trades_nan():
    winners = pl.DataFrame({"pnl": [1.0, 2.0], "return": [0.1, 0.2], "is_open": [False, False]})
    assert compute_metrics(TINY_RETURNS, P, trades=winners)["profit_factor_trades"] == math.inf
    empty = winners.clear()
    m = compute_metrics(TINY_RETURNS, P, trades=empty)
    assert m["n_trades"] == 0
    assert math.isnan(m["win_rate_trades"]) and math.isnan(m["profit_factor_trades"])
    assert math.isnan(compute_metrics(TINY_RETURNS, P)["n_trades"])  # no frame at all


def test_book_metrics_from_the_equity_frame():
    equity = pl.DataFrame({
        "equity": [100.0, 110.0, 104.5, 106.59, 103.3923],
        "gross": [0.0, 55.0, 52.25, 0.0, 0.0],
        "traded": [0.0, 50.0, 0.0, 53.3, 0.0],
    })
    m = compute_metrics(TINY_RETURNS, P, equity=equity)
    assert m["exposure"] == pytest.approx(2 / 5, rel=REL)
    assert m["avg_gross_leverage"] == pytest.approx((0.5 + 0.5) / 5, rel=REL)
    mean_equity = (100.0 + 110.0 + 104.5 + 106.59 + 103.3923) / 5
    assert m["turnover"] == pytest.approx(103.3 / mean_equity * 12 / 5, rel=REL)


def test_benchmark_statistics_by_hand():
    r, b = TINY_RETURNS, TINY_BENCHMARK
    m = compute_metrics(r, P, ts=TINY_TS, benchmark=b)
    mr, mb = r.mean(), b.mean()
    cov = sum((x - mr) * (y - mb) for x, y in zip(r, b, strict=True)) / 4
    var_b = sum((y - mb) ** 2 for y in b) / 4
    var_r = sum((x - mr) ** 2 for x in r) / 4
    beta = cov / var_b
    active = r - b
    te = math.sqrt(sum((a - active.mean()) ** 2 for a in active) / 4)
    assert m["beta"] == pytest.approx(beta, rel=1e-12)
    assert m["alpha"] == pytest.approx((mr - beta * mb) * 12, rel=1e-12)
    assert m["correlation"] == pytest.approx(cov / math.sqrt(var_r * var_b), rel=1e-12)
    assert m["tracking_error"] == pytest.approx(te * math.sqrt(12), rel=1e-12)
    assert m["information_ratio"] == pytest.approx(active.mean() / te * math.sqrt(12), rel=1e-12)
    assert m["benchmark_total_return"] == pytest.approx(
        1.05 * 0.98 * 1.01 * 0.99 * 1.03 - 1.0, rel=1e-12)


def test_benchmark_is_aligned_on_timestamps():
    # the benchmark lacks Jan 3 and has an extra Dec 31: only the 4 shared bars count
    bench = pl.DataFrame({
        "ts": np.array(["2023-12-31", "2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"],
                       dtype="datetime64[ns]"),
        "return": [0.5, 0.05, -0.02, -0.01, 0.03],
    })
    m = compute_metrics(pl.DataFrame({"ts": TINY_TS, "return": TINY_RETURNS}), P,
                        benchmark=bench)
    keep = [0, 1, 3, 4]
    direct = compute_metrics(TINY_RETURNS[keep], P,
                             benchmark=np.array([0.05, -0.02, -0.01, 0.03]))
    for key in ("alpha", "beta", "correlation", "tracking_error", "information_ratio",
                "benchmark_total_return"):
        assert m[key] == pytest.approx(direct[key], rel=1e-12)


def test_timezone_aware_benchmark_aligns_with_naive_utc_strategy():
    ts_utc = pl.Series(TINY_TS).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")
    bench = pl.DataFrame({"ts": ts_utc.dt.convert_time_zone("America/New_York"),
                          "return": TINY_BENCHMARK})
    m = compute_metrics(TINY_RETURNS, P, ts=TINY_TS, benchmark=bench)
    assert m["beta"] == pytest.approx(
        compute_metrics(TINY_RETURNS, P, benchmark=TINY_BENCHMARK)["beta"], rel=1e-12)


def test_undefined_metrics_are_nan_not_errors():
    m = compute_metrics([0.0, 0.0, 0.0], 252)
    for key in ("sharpe", "sortino", "skew", "kurtosis", "tail_ratio", "win_rate_periods",
                "psr", "beta"):
        assert math.isnan(m[key]), key
    one = compute_metrics([0.01], 252)
    assert one["total_return"] == pytest.approx(0.01, rel=1e-12)
    assert math.isnan(one["volatility"])


@pytest.mark.parametrize("bad, match", [
    ([0.01, float("nan")], "row 1"),
    ([0.01, float("inf")], "row 1"),
    ([0.01, -1.5], "below -100%"),
    ([], "empty"),
    ([[0.01, 0.02]], "1-D"),
])
def test_bad_returns_are_refused_with_the_row(bad, match):
    with pytest.raises(DataError, match=match):
        compute_metrics(bad, 252)


def test_bad_settings_and_misaligned_inputs_are_refused():
    with pytest.raises(ConfigError, match="periods_per_year"):
        compute_metrics(TINY_RETURNS, 0)
    with pytest.raises(ConfigError, match="rf"):
        compute_metrics(TINY_RETURNS, 12, rf=float("nan"))
    with pytest.raises(DataError, match="4 returns for 5"):
        compute_metrics(TINY_RETURNS, 12, benchmark=TINY_BENCHMARK[:4])
    with pytest.raises(DataError, match="not after"):
        compute_metrics(TINY_RETURNS, 12, ts=TINY_TS[::-1])
    far = pl.DataFrame({"ts": TINY_TS + np.timedelta64(3650, "D"), "return": TINY_BENCHMARK})
    with pytest.raises(DataError, match="shares no timestamp"):
        compute_metrics(TINY_RETURNS, 12, ts=TINY_TS, benchmark=far)
    with pytest.raises(DataError, match="lacks column"):
        compute_metrics(TINY_RETURNS, 12, trades=pl.DataFrame({"pnl": [1.0]}))
    with pytest.raises(DataError, match="equity frame has 2 rows"):
        compute_metrics(TINY_RETURNS, 12, equity=pl.DataFrame(
            {"equity": [1.0, 1.0], "gross": [0.0, 0.0], "traded": [0.0, 0.0]}))
