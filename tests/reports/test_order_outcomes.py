"""order_outcomes: orders by status and reason in metrics.json and the rebuilt report."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from engine import Costs, WeightPlan, run_backtest
from reports import rebuild_report, write_report
from reports.metrics import order_outcomes
from tests.engine.conftest import make_panel


def test_counts_by_status_and_reason():
    orders = pl.DataFrame({
        "status": ["filled", "partial", "partial", "rejected", "partial"],
        "reason": ["", "scaled", "volume_cap", "not_tradable", "scaled"],
        "requested_qty": [1.0, 10.0, 4.0, 2.0, 8.0],
        "filled_qty": [1.0, 9.0, 2.0, 0.0, 7.9],
    })
    out = order_outcomes(orders)
    assert out["orders"] == 5 and out["filled"] == 1 and out["partial"] == 3
    assert out["rejected"] == 1
    assert out["by_reason"] == {"partial": {"scaled": 2, "volume_cap": 1},
                                "rejected": {"not_tradable": 1}}
    assert out["scaled_fill_ratio_min"] == 0.9


def test_stop_exits_and_ambiguous_fills_are_counted():
    orders = pl.DataFrame({"status": ["filled"] * 3, "reason": [""] * 3})
    fills = pl.DataFrame({"trigger": ["market", "stop_loss", "take_profit"],
                          "ambiguous": [False, True, False]})
    out = order_outcomes(orders, fills)
    assert out["triggered_fills"] == {"stop_loss": 1, "take_profit": 1}
    assert out["ambiguous_intrabar_fills"] == 1


def test_all_filled_has_no_reasons():
    out = order_outcomes(pl.DataFrame({"status": ["filled"], "reason": [""]}))
    assert out == {"orders": 1, "filled": 1, "partial": 0, "rejected": 0, "by_reason": {}}


def test_metrics_json_carries_order_outcomes_and_rebuild_keeps_them(tmp_path):
    close = np.array([[100.0, 50.0], [103.0, 50.0], [104.0, 51.0], [105.0, 52.0]])
    w = np.full((4, 2), np.nan)
    w[0] = [0.6, 0.4]  # fully invested: the costs make the rebalance scale
    res = run_backtest(make_panel(close), WeightPlan(w), capital=10_000.0,
                       costs=Costs(commission_bps=10, slippage_bps=5, half_spread_bps=0))
    metrics = write_report(tmp_path, res, tearsheet=False, plots=False)
    expected = {"orders": 2, "filled": 0, "partial": 2, "rejected": 0,
                "by_reason": {"partial": {"scaled": 2}}}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for block in (metrics["order_outcomes"], saved["order_outcomes"],
                  rebuild_report(tmp_path, tearsheet=False, plots=False)["order_outcomes"]):
        assert {k: block[k] for k in expected} == expected
        assert 0.998 < block["scaled_fill_ratio_min"] < 1.0
        assert block["ambiguous_intrabar_fills"] == 0 and block["triggered_fills"] == {}
    assert saved["settings"]["limit_policy"] == "scale"
    # the cost curve is replayed from the result's plan and kept when a folder is rebuilt
    curve = saved["cost_sensitivity"]["curve"]
    assert [row["one_way_bps"] for row in curve] == [0.0, 2.0, 5.0, 10.0, 20.0, 50.0]
    assert rebuild_report(tmp_path, tearsheet=False, plots=False)["cost_sensitivity"] == \
        saved["cost_sensitivity"]
