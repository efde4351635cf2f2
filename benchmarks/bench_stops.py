"""Kernel speed with stops enabled vs disabled, on the W1 and W2 SMA workloads.

    python -m benchmarks.bench_stops [--copies 25] [--repeats 5]

The W1/W2 panels are close-only, so the stops are checked on closes (the same code path
as OHLC bars). Reported: the best kernel time of ``--repeats`` warmed-up runs (numba loop
only, through ``benchmarks._ours.kernel_breakdown``), asset-bars per second, and the
number of stop exits, so a faster run cannot hide that it did less work.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from benchmarks._data import stocks_panel, tiled_panel
from benchmarks._ours import COSTS, GROSS_LIMIT, kernel_breakdown
from benchmarks._signals import sma_crossover
from engine import Panel, SignalPlan, run_backtest

CAPITAL = 1_000_000.0
VARIANTS: dict[str, dict[str, Any] | None] = {
    "stops off": None,
    "sl 5%": {"sl_stop": 0.05},
    "sl 5% + tp 10%": {"sl_stop": 0.05, "tp_stop": 0.10},
    "trailing 5% + tp 10%": {"sl_stop": 0.05, "sl_trail": True, "tp_stop": 0.10},
}


def _measure(panel: Panel, repeats: int) -> list[dict[str, Any]]:
    long_entry, short_entry = sma_crossover(panel.close)
    no_exit = long_entry & False
    plan = SignalPlan(long_entry, no_exit, short_entry, no_exit,
                      size=CAPITAL / panel.n_assets, size_type="value")
    rows = []
    for name, stops in VARIANTS.items():
        def call(stops=stops):
            return run_backtest(panel, plan, costs=COSTS, fill="next_close", capital=CAPITAL,
                                max_gross_leverage=GROSS_LIMIT, max_net_leverage=1.0,
                                stops=stops)
        result = call()  # compile / warm
        timing = kernel_breakdown(call, repeats)
        fills = result.fills
        rows.append({"variant": name, "kernel_ms": 1e3 * timing["kernel_s"],
                     "asset_bars_per_s": panel.n_bars * panel.n_assets / timing["kernel_s"],
                     "fills": fills.height,
                     "stop_exits": int((fills["trigger"] != "market").sum())})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=25, help="W2 universe = 20 x copies")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    base = stocks_panel()
    out = {"W1": _measure(base, args.repeats),
           "W2": _measure(tiled_panel(base, args.copies), args.repeats)}
    for workload, rows in out.items():
        off = rows[0]["kernel_ms"]
        for row in rows:
            print(f"{workload} {row['variant']:<22} {row['kernel_ms']:8.1f} ms  "
                  f"{row['asset_bars_per_s'] / 1e6:6.1f} M asset-bars/s  x{row['kernel_ms'] / off:4.2f}"
                  f"  fills {row['fills']:>7}  stop exits {row['stop_exits']:>6}")
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
