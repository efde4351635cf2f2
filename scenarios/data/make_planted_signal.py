"""Build the synthetic market of ``planted_signal.yaml`` and its oracle signals file.

Run from anywhere:  python scenarios/data/make_planted_signal.py [STRENGTH]

``planted_signal.parquet``: close-only bars of 10 synthetic assets, 1500 business days
from 2010-01-04, from the regime-switching generator with a planted delayed reversal of
known strength (``engine.synthetic.planted_signal_market``; default 0.05: the five-day
return that ended two bars ago reverses by 5 %). ``planted_signal_oracle.parquet``: the
true expected return of the bar a next-close fill holds (``planted_return``), the best
forecast any analyst could trade on, computed from bars up to each close only.
Deterministic (seed 7); a test checks that the committed files match this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from engine.synthetic import planted_signal_market

FOLDER = Path(__file__).parent
STRENGTH = 0.05
SEED = 7


def build(strength: float = STRENGTH, seed: int = SEED) -> tuple[pl.DataFrame, pl.DataFrame]:
    return planted_signal_market(strength, n_assets=10, n_days=1500, seed=seed)


def main() -> None:
    strength = float(sys.argv[1]) if len(sys.argv) > 1 else STRENGTH
    bars, oracle = build(strength)
    bars.write_parquet(FOLDER / "planted_signal.parquet")
    oracle.write_parquet(FOLDER / "planted_signal_oracle.parquet")
    print(f"wrote {FOLDER / 'planted_signal.parquet'} and the oracle (strength {strength})")


if __name__ == "__main__":
    main()
