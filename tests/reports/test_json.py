"""NaN and inf serialise to JSON null; the output is strict JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl

from reports import METRIC_DEFINITIONS, compute_metrics, metrics_to_json, to_jsonable


def _strict_loads(text: str):
    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_nan_metrics_become_null():
    no_trades = pl.DataFrame(schema={"pnl": pl.Float64, "return": pl.Float64,
                                     "is_open": pl.Boolean})
    metrics = compute_metrics([0.0, 0.0, 0.0], 252, trades=no_trades)
    assert math.isnan(metrics["sharpe"]) and math.isnan(metrics["win_rate_trades"])
    loaded = _strict_loads(metrics_to_json({"with_costs": metrics}))
    assert loaded["with_costs"]["sharpe"] is None
    assert loaded["with_costs"]["win_rate_trades"] is None
    assert loaded["with_costs"]["n_trades"] == 0
    assert set(loaded["with_costs"]) == set(METRIC_DEFINITIONS)


def test_inf_numpy_scalars_and_nesting():
    value = {"a": math.inf, "b": -math.inf, "c": np.float64("nan"), "d": np.int64(3),
             "e": np.bool_(True), "f": [1.5, float("nan")], "g": (np.float32(2.5),),
             "h": None, "i": "text", 7: np.datetime64("2024-01-02")}
    out = to_jsonable(value)
    assert out == {"a": None, "b": None, "c": None, "d": 3, "e": True, "f": [1.5, None],
                   "g": [2.5], "h": None, "i": "text", "7": "2024-01-02"}
    assert _strict_loads(metrics_to_json(value))["f"] == [1.5, None]


def test_cagr_that_overflows_a_float_is_inf_and_serialises_as_null():
    metrics = compute_metrics([0.5], 6048)  # +50% in one 10-minute bar, annualised
    assert metrics["cagr"] == math.inf
    assert math.isnan(metrics["calmar"])
    assert _strict_loads(metrics_to_json(metrics))["cagr"] is None
