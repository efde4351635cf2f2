"""Alfred's benchmark suite: our engine against vectorbt and backtrader, like for like.

Run ``python -m benchmarks`` (``--quick`` for a small size). Every workload is first
checked for equal results, then timed; see ``benchmarks/README.md`` for the rules.

Peers (vectorbt, pandas, backtrader) are imported on first use, so importing this
package costs only the engine's own imports.
"""

from benchmarks._config import (
    COLD_START_TARGET_S,
    PEAK_MEMORY_TARGET_MB,
    SPEEDUP_TARGETS,
    WORKLOAD_IDS,
    SuiteConfig,
)
from benchmarks._data import stocks_panel, tiled_panel
from benchmarks._signals import momentum_topk_weights, sma_crossover
from benchmarks._suite import run_suite

__all__ = [
    "COLD_START_TARGET_S", "PEAK_MEMORY_TARGET_MB", "SPEEDUP_TARGETS", "WORKLOAD_IDS",
    "SuiteConfig", "momentum_topk_weights", "run_suite", "sma_crossover", "stocks_panel",
    "tiled_panel",
]
