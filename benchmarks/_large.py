"""W4 and W5: large universes and minute bars, stage by stage, each in its own process.

* **W4** -- 2,000 assets x 8,313 daily bars (:func:`large_universe_bars`: the bundled 20
  stocks tiled 100 times, each copy times its own seeded lognormal noise path, as a long
  polars frame). Pipeline: the ``momentum`` analyst (12-1 months) -> ``topk_long_short``
  (k = a tenth of the universe per side, monthly) through ``engine.run_backtest`` on the
  frames -> ``reports.metrics_for_result``.
* **W5** -- 100 assets x 5 years of minute bars (1,260 days x 390 bars = 491,400 bars, 49 M
  asset-bars; :func:`minute_panel`, a seeded geometric random walk per asset on a
  09:30-16:00 session). Pipeline: daily top-k / bottom-k on the day's return, decided at
  the day's last bar -> ``run_backtest`` on the panel and plan (positions not recorded)
  -> metrics.

Both end with vectorbt ``from_orders(targetpercent)`` on the same plan; its equity is
compared with ours before any ratio is reported. Each stage runs once (a tiny warm-up call
loads numba's cache first) and reports its wall time and the peak RSS during the stage
(the kernel's high-water mark is reset before it, ``/proc/self/clear_refs``): the figure
includes everything earlier stages still hold. ``python -m benchmarks._large w4|w5
'<json settings>'`` prints one JSON line; the suite starts it in a fresh process.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks._probe import _status_mb

MINUTES_PER_SESSION = 390  # 09:30-16:00
W4_DEFAULTS = {"copies": 100, "n_bars": None, "seed": 7, "noise_sigma": 0.005,
               "lookback": 252, "skip": 21, "capital": 1_000_000.0}
W5_DEFAULTS = {"n_assets": 100, "n_days": 1260, "seed": 11, "k": 10, "capital": 1_000_000.0}
VBT_RTOL = 1e-8


def large_universe_bars(copies: int = 100, n_bars: int | None = None, *, seed: int = 7,
                        noise_sigma: float = 0.005) -> Any:
    """The W4 universe as a long polars bars frame (``ts, asset, close``), sorted.

    ``20 * copies`` assets named ``<TICKER>_<copy>``; copy k of a stock is its adjusted
    close times ``exp(cumsum(N(0, noise_sigma)))`` drawn from ``seed`` (the same tiling as
    W2/W3, so a W4 with 25 copies is the W3 universe). ``n_bars`` keeps the last bars.
    """
    import polars as pl

    from benchmarks._data import stocks_panel, tiled_panel
    from benchmarks._frames import tiled_names

    panel = tiled_panel(stocks_panel(n_bars), copies, seed=seed, noise_sigma=noise_sigma)
    order = np.argsort(np.asarray(panel.assets))
    return pl.DataFrame({"ts": np.repeat(panel.ts, panel.n_assets),
                         "asset": tiled_names(panel.assets, panel.n_bars),
                         "close": np.ascontiguousarray(panel.close[:, order]).ravel()})


def minute_panel(n_assets: int = 100, n_days: int = 1260, *, seed: int = 11) -> Any:
    """A close-only panel of minute bars: ``n_days`` weekdays x 390 bars, seeded.

    Per asset a geometric random walk, 25 % annual volatility spread evenly over the
    session's bars, a drift of 5 % a year, an overnight gap of half a day's volatility;
    prices start at 20-200. Asset ``j`` is drawn from child ``j`` of
    ``SeedSequence(seed)``. Timestamps are the bar starts, timezone-naive.
    """
    from engine import Panel

    days = np.busday_offset(np.datetime64("2018-01-02"), np.arange(n_days), roll="forward")
    minutes = np.arange(MINUTES_PER_SESSION) * np.timedelta64(1, "m")
    ts = (days.astype("datetime64[m]")[:, None] + np.timedelta64(570, "m")
          + minutes[None, :]).ravel().astype("datetime64[ns]")
    n_bars = ts.size
    per_bar = 0.25 / np.sqrt(252 * MINUTES_PER_SESSION)
    close = np.empty((n_bars, n_assets))
    for j, child in enumerate(np.random.SeedSequence(seed).spawn(n_assets)):
        rng = np.random.default_rng(child)
        r = rng.normal(0.05 / (252 * MINUTES_PER_SESSION), per_bar, n_bars)
        r[::MINUTES_PER_SESSION] += rng.normal(0.0, 0.5 * per_bar * np.sqrt(MINUTES_PER_SESSION),
                                               n_days)
        close[:, j] = rng.uniform(20, 200) * np.exp(np.cumsum(r))
    names = tuple(f"M{j:03d}" for j in range(n_assets))
    return Panel(ts=ts, assets=names, open=close, high=close, low=close, close=close,
                 volume=np.full(close.shape, np.nan),
                 periods_per_year=float(252 * MINUTES_PER_SESSION), has_open=False)


def daily_topk_weights(close: np.ndarray, k: int, gross: float = 1.0) -> np.ndarray:
    """At each day's last bar: long the k best, short the k worst returns of the day."""
    n_bars, n = close.shape
    weights = np.full((n_bars, n), np.nan)
    last = np.arange(2 * MINUTES_PER_SESSION - 1, n_bars, MINUTES_PER_SESSION)
    day_return = close[last] / close[last - MINUTES_PER_SESSION] - 1.0
    rank = np.argsort(day_return, axis=1, kind="stable")
    rows = np.zeros((last.size, n))
    np.put_along_axis(rows, rank[:, -k:], gross / 2 / k, axis=1)
    np.put_along_axis(rows, rank[:, :k], -gross / 2 / k, axis=1)
    weights[last] = rows
    return weights


# -- the stage harness (runs in the child process) --------------------------------------------
def _reset_peak(collect: bool = True) -> bool:
    if collect:
        gc.collect()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _stage(stages: list[dict[str, Any]], name: str, fn: Callable[[], Any]) -> Any:
    _reset_peak()
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    stages.append({"stage": name, "seconds": elapsed, "peak_rss_mb": _status_mb("VmHWM:"),
                   "rss_after_mb": _status_mb("VmRSS:")})
    return out


def _warm_up() -> None:
    """Load numba's cached kernels (and vectorbt's) on a toy case, outside every stage."""
    from benchmarks import _ours, _vbt
    from benchmarks._data import stocks_panel, tiled_panel

    tiny = tiled_panel(stocks_panel(30), 1)
    w = np.full(tiny.close.shape, np.nan)
    w[5] = 0.05
    _ = _ours.run_target_weights(tiny, w, 1e6).equity
    _vbt.run_weights(_vbt.prepare_weights(tiny, w), 1e6)


def vbt_check(stages: list[dict[str, Any]], panel: Any, weights: np.ndarray,
               ours_equity: np.ndarray, capital: float, ours_fills: int) -> list[dict]:
    from benchmarks import _vbt
    from benchmarks._checks import compare_counts, compare_curves

    wide = _stage(stages, "vectorbt inputs (pandas wide frames)",
                  lambda: _vbt.prepare_weights(panel, weights))
    pf, v_equity = _stage(stages, "vectorbt from_orders + value()",
                          lambda: _vbt.run_weights(wide, capital))
    return [compare_curves("vectorbt", "equity per bar", ours_equity, v_equity,
                           VBT_RTOL).to_dict(),
            compare_counts("vectorbt", "fills", ours_fills, _vbt.order_count(pf)).to_dict()]


def run_w4(settings: dict[str, Any]) -> dict[str, Any]:
    """W4 through ``alfred run`` (:mod:`benchmarks._w4`), then the peer on its plan."""
    from benchmarks._w4 import run_w4_scenario

    _warm_up()
    return run_w4_scenario({**W4_DEFAULTS, **settings}, _stage,
                           lambda: _reset_peak(collect=False))


def run_w5(settings: dict[str, Any]) -> dict[str, Any]:
    from benchmarks import _ours
    from engine import WeightPlan, run_backtest
    from reports import metrics_for_result

    s = {**W5_DEFAULTS, **settings}
    _warm_up()
    stages: list[dict[str, Any]] = []
    panel = _stage(stages, "data: seeded minute bars (panel)",
                   lambda: minute_panel(s["n_assets"], s["n_days"], seed=s["seed"]))
    weights = _stage(stages, "signal: daily top-k / bottom-k weights",
                     lambda: daily_topk_weights(panel.close, s["k"]))

    def backtest() -> Any:
        result = run_backtest(panel, WeightPlan(weights), costs=_ours.COSTS,
                              fill="next_close", capital=s["capital"], max_gross_leverage=2.0,
                              max_net_leverage=1.0, limit_policy=_ours.LIMIT_POLICY,
                              record_positions=False)
        _ = result.equity
        return result

    result = _stage(stages, "backtest: run_backtest(panel, plan) + equity", backtest)
    _stage(stages, "metrics: metrics_for_result", lambda: metrics_for_result(result))
    checks = vbt_check(stages, panel, weights, _ours.equity_curve(result), s["capital"],
                        int(result.fills.height))
    return {"id": "W5", "n_bars": panel.n_bars, "n_assets": panel.n_assets,
            "stages": stages, "checks": checks, "final_equity": result.final_equity}


_RUNS = {"w4": run_w4, "w5": run_w5}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in _RUNS:
        print("usage: python -m benchmarks._large {w4|w5} '<json settings>'", file=sys.stderr)
        return 2
    print(json.dumps(_RUNS[argv[0]](json.loads(argv[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
