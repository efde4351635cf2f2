"""Market regimes: a library of named historical windows, automatic labels, reports.

* :data:`REGIMES` / :func:`get_regime`: named windows (``gfc``, ``covid_crash``, ...),
  selectable in a scenario with ``data: {regime: NAME}``.
* :func:`drawdown_regimes`, :func:`volatility_regimes`: bull/bear and volatility-tercile
  labels of any series.
* :func:`regime_breakdown`: a run's metrics next to its benchmark's, per regime; every
  run report with a benchmark writes it as ``regimes.csv`` / ``regimes.md``.
"""

from reports.regimes._label import drawdown_regimes, episodes, volatility_regimes
from reports.regimes._library import REGIMES, Regime, get_regime, regimes_table
from reports.regimes._report import regime_breakdown, regimes_markdown, write_regimes

__all__ = ["REGIMES", "Regime", "drawdown_regimes", "episodes", "get_regime",
           "regime_breakdown", "regimes_markdown", "regimes_table", "volatility_regimes",
           "write_regimes"]
