"""Suite settings and the targets the figures are judged against."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from engine import ConfigError

WORKLOAD_IDS = ("W1", "W2", "W3", "W3-frames", "W4", "W5")

# (workload, peer) -> minimum speed-up of ours over the peer (peer time / our time)
SPEEDUP_TARGETS: dict[tuple[str, str], float] = {
    ("W1", "backtrader"): 300.0,
    ("W2", "vectorbt"): 3.0,
    ("W3", "vectorbt"): 3.0,
    ("W3-frames", "vectorbt"): 3.0,
}
LARGE_MEMORY_TARGET_MB = 8000.0  # W4/W5: highest RSS of any stage, vectorbt's included
PEAK_MEMORY_TARGET_MB = 1500.0  # 1.5 GB, absolute peak RSS of a W2 run of ours
COLD_START_TARGET_S = 2.0  # `import engine` + first small backtest, fresh process


@dataclass(frozen=True)
class SuiteConfig:
    """What to run and how long to time it. ``quick()`` is the small preset."""

    mode: str = "default"
    n_bars: int | None = None  # None: all 8,313 bundled bars; else the last n_bars
    copies: int = 25  # W2/W3 universe = 20 stocks x copies
    capital: float = 1_000_000.0
    fast: int = 20
    slow: int = 100
    lookback: int = 252  # W3 momentum window, bars
    top_k: int | None = None  # W3 names per side; None: a tenth of the universe (50 of 500)
    gross: float = 1.0  # W3 gross exposure, half long, half short
    seed: int = 7
    noise_sigma: float = 0.005
    workloads: tuple[str, ...] = WORKLOAD_IDS
    w4_copies: int = 100  # W4 universe = 20 stocks x w4_copies (2,000)
    w5_days: int = 1260  # W5: 100 assets x w5_days x 390 minute bars (5 years)
    backtrader: bool = True
    # vectorbt's from_signals is not cacheable (it takes a function argument), so it
    # compiles in every new process: ~10 s idle, ~40 s on a busy 2-core machine. False
    # leaves vectorbt out of W1/W2 (the smoke test does; from_orders on W3 is cached).
    vectorbt_signals: bool = True
    min_repeats: int = 5
    min_total_s: float = 1.0
    peer_budget_s: float = 100.0  # timed seconds per backtrader measurement (5 runs idle)
    breakdown: bool = True  # split our time into kernel / Python layer
    resources: bool = True  # peak-memory and cold-start subprocesses
    peer_memory: bool = True  # also measure vectorbt's W2 peak memory

    def __post_init__(self) -> None:
        unknown = [w for w in self.workloads if w not in WORKLOAD_IDS]
        if unknown:
            raise ConfigError(f"unknown workload(s) {unknown}; choose from {list(WORKLOAD_IDS)}")
        if self.copies < 1:
            raise ConfigError(f"copies must be >= 1, got {self.copies}")
        if self.min_repeats < 1:
            raise ConfigError(f"min_repeats must be >= 1, got {self.min_repeats}")
        if not self.capital > 0:
            raise ConfigError(f"capital must be > 0, got {self.capital}")

    @classmethod
    def quick(cls, **overrides: Any) -> SuiteConfig:
        """About a minute: the last 10 years, 100 assets, a short backtrader budget."""
        base = cls(mode="quick", n_bars=2520, copies=5, peer_budget_s=20.0, w4_copies=20,
                   w5_days=20)
        return replace(base, **overrides)

    def k_for(self, n_assets: int) -> int:
        return self.top_k if self.top_k is not None else max(1, n_assets // 10)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["workloads"] = list(self.workloads)
        return out
