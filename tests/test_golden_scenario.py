"""Golden scenario: 3 assets, 10 bars, every number derived by hand below.

Close-only data, so a decision at the close of bar t fills at the close of t+1.
Costs: commission 10 bps only (no spread, slippage or borrow fee) so each figure is a
line of arithmetic. Capital 10,000.

  bar   date        A    B    C
   0   2024-01-01   10   20   50     decide: A 50%, B 50%
   1   2024-01-02   11   20   50     fill at these closes
   2   2024-01-03   12   18   50
   3   2024-01-04   12   18   50
   4   2024-01-05   12   19   50     decide: A 0%, C 50% (B has no row: held)
   5   2024-01-08   13   19   40     fill: sell A first (a reduction), then buy C
   6   2024-01-09   13   20   40
   7   2024-01-10   13   20   45
   8   2024-01-11   14   20   45
   9   2024-01-12   14   21   50
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alfred.run import run_scenario
from alfred.scenario import load_scenario

DATES = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08",
         "2024-01-09", "2024-01-10", "2024-01-11", "2024-01-12"]
PRICES = {"A": [10, 11, 12, 12, 12, 13, 13, 13, 14, 14],
          "B": [20, 20, 18, 18, 19, 19, 20, 20, 20, 21],
          "C": [50, 50, 50, 50, 50, 40, 40, 45, 45, 50]}

SCENARIO = """
name: golden
data:
  source: bars
  assets: all
analysts:
  - name: file
    config: {path: weights.csv, columns: [target_weight]}
strategy:
  name: weights
costs: {commission_bps: 10, slippage_bps: 0, half_spread_bps: 0, borrow_fee_bps: 0}
capital: 10000
fill: next_open
limit_policy: clip   # the hand derivation below cuts the last order (whole-book scaling
                     # has its own hand-derived case in tests/engine/kernels/test_limit_policy.py)
seed: 1
report: {tearsheet: false, plots: false}
"""


def _expected():
    fee = 0.001
    # bar 1: both buys are worth 5,000; equal values keep asset order: A, then B.
    qa = 0.5 * 10_000 / 11                     # 454.5454...
    cash = 10_000 - qa * 11 * (1 + fee)        # 4,995.00
    qb_wanted = 0.5 * 10_000 / 20              # 250
    qb = cash / (20 * (1 + fee))               # cash-limited: 249.5005 (partial fill)
    cash = 0.0
    eq = [10_000.0]
    for t in range(1, 5):
        eq.append(cash + qa * PRICES["A"][t] + qb * PRICES["B"][t])
    # bar 5: equity at the fill prices sizes the C target
    e5 = qa * 13 + qb * 19
    cash = qa * 13 * (1 - fee)                 # sell all A
    qc = 0.5 * e5 / 40
    cash -= qc * 40 * (1 + fee)                # buy C (cash suffices)
    for t in range(5, 10):
        eq.append(cash + qb * PRICES["B"][t] + qc * PRICES["C"][t])
    fills = [("A", qa, 11.0), ("B", qb, 20.0), ("A", -qa, 13.0), ("C", qc, 40.0)]
    # the closed round trip: A bought at 11, sold at 13, commission both ways
    a_pnl = qa * (13 - 11) - qa * 11 * fee - qa * 13 * fee
    return np.array(eq), fills, qb_wanted, a_pnl


@pytest.fixture
def golden_run(tmp_path: Path):
    bars_dir = tmp_path / "bars"
    bars_dir.mkdir()
    for asset, closes in PRICES.items():
        pl.DataFrame({"Date": DATES, "Close": [float(c) for c in closes]}).write_csv(
            bars_dir / f"{asset}.csv")
    pl.DataFrame({"ts": ["2024-01-01", "2024-01-01", "2024-01-05", "2024-01-05"],
                  "asset": ["A", "B", "A", "C"],
                  "target_weight": [0.5, 0.5, 0.0, 0.5]}).write_csv(tmp_path / "weights.csv")
    path = tmp_path / "golden.yaml"
    path.write_text(SCENARIO)
    summary = run_scenario(load_scenario(path), out=tmp_path / "run")
    return summary.runs[0].run_dir


def test_golden_equity_fills_and_metrics(golden_run: Path):
    eq, fills, qb_wanted, a_pnl = _expected()
    equity = pl.read_parquet(golden_run / "equity.parquet")
    np.testing.assert_allclose(equity["equity"].to_numpy(), eq, rtol=1e-12)

    got = pl.read_parquet(golden_run / "fills.parquet")
    assert got["asset"].to_list() == [a for a, _, _ in fills]
    np.testing.assert_allclose(got["qty"].to_numpy(), [q for _, q, _ in fills], rtol=1e-12)
    np.testing.assert_allclose(got["price"].to_numpy(), [p for _, _, p in fills], rtol=1e-15)
    np.testing.assert_allclose(got["commission"].to_numpy(),
                               [abs(q) * p * 0.001 for _, q, p in fills], rtol=1e-12)

    orders = pl.read_parquet(golden_run / "orders.parquet")
    b = orders.filter(pl.col("asset") == "B").row(0, named=True)
    assert (b["status"], b["reason"]) == ("partial", "insufficient_cash")
    assert b["requested_qty"] == pytest.approx(qb_wanted)

    trades = pl.read_parquet(golden_run / "trades.parquet")
    closed = trades.filter(~pl.col("is_open"))
    assert closed["asset"].to_list() == ["A"]
    assert closed["pnl"][0] == pytest.approx(a_pnl, rel=1e-12)

    m = json.loads((golden_run / "metrics.json").read_text())["with_costs"]
    r = eq / np.concatenate(([10_000.0], eq[:-1])) - 1
    assert m["total_return"] == pytest.approx(eq[-1] / 10_000 - 1, rel=1e-12)
    # Sharpe: mean / sample std (ddof=1) of the per-bar returns, times sqrt(252)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252), rel=1e-9)
    peak = np.maximum.accumulate(eq)
    assert m["max_drawdown"] == pytest.approx((eq / peak - 1).min(), rel=1e-12)
    assert m["n_trades"] == 1 and m["win_rate_trades"] == 1.0
