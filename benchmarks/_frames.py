"""W3-frames: the W3 backtest through the notebook call, polars frames in.

The README's notebook call is ``engine.run_backtest(bars, weights, ...)`` with a long bars
frame (``ts, asset, close``) and a long weights frame (``ts, asset, target_weight``, one
row per asset on each rebalance bar). That call validates and aligns the bars, places the
weights, runs the kernel and returns the result; the timed call also builds the equity
frame, as W3 does. Three of ours are timed:

* ``alfred`` -- the notebook call as a user repeats it: the same bars frame again, so
  the panel comes from the engine's content-keyed cache (the key is a digest of every
  value, computed on every call; the weights are placed afresh every call);
* ``alfred (no cache)`` -- the same call with the bars aligned from scratch each time
  (``align_bars(bars, cache=False)`` passed in; what a first call costs);
* ``alfred (panel+plan)`` -- the W3 call on the prebuilt panel and weight matrix.

vectorbt gets the same wide frames as in W3. The frames are built outside the timed region.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from benchmarks import _ours, _vbt
from benchmarks._checks import compare_counts, compare_curves
from benchmarks._config import SuiteConfig
from benchmarks._signals import momentum_topk_weights
from benchmarks._timing import best_of, timed_call
from engine import BacktestResult, Panel, align_bars, run_backtest

FRAMES_RATIO_TARGET = 2.0  # the frame call may cost at most this many panel+plan calls
VBT_RTOL = 1e-8


def long_frames(panel: Panel, weights: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(bars, weights) long frames sorted by (ts, asset), as a user would hold them."""
    order = np.argsort(np.asarray(panel.assets))
    n_bars, n = panel.close.shape
    bars = pl.DataFrame({"ts": np.repeat(panel.ts, n), "asset": tiled_names(panel.assets,
                                                                             n_bars),
                         "close": np.ascontiguousarray(panel.close[:, order]).ravel()})
    rows = np.flatnonzero(np.isfinite(weights).any(axis=1))
    frame = pl.DataFrame({"ts": np.repeat(panel.ts[rows], n),
                          "asset": tiled_names(panel.assets, rows.size),
                          "target_weight": np.ascontiguousarray(weights[rows][:, order]).ravel()})
    return bars, frame


def tiled_names(assets: tuple[str, ...], times: int) -> pl.Series:
    """The sorted names repeated ``times`` times (a gather: numpy text arrays convert slowly)."""
    names = pl.Series("asset", sorted(assets), dtype=pl.String)
    return names.gather(np.tile(np.arange(names.len(), dtype=np.uint32), times))


def notebook_call(bars: pl.DataFrame | Panel, weights: pl.DataFrame, capital: float
                  ) -> BacktestResult:
    """``engine.run_backtest(bars, weights, ...)`` with W3's like-for-like settings."""
    result = run_backtest(bars, weights, costs=_ours.COSTS, fill="next_close",
                          capital=capital, max_gross_leverage=2.0, max_net_leverage=1.0,
                          limit_policy=_ours.LIMIT_POLICY)
    _ = result.equity
    return result


def w3_frames(cfg: SuiteConfig, log: Callable[[str], None], panel: Panel) -> dict[str, Any]:
    from benchmarks._workloads import _engine_row, _result_facts, _summary

    asset_bars = panel.n_bars * panel.n_assets
    k = cfg.k_for(panel.n_assets)
    weights = momentum_topk_weights(panel.close, panel.ts, lookback=cfg.lookback, k=k,
                                    gross=cfg.gross)
    bars, weight_frame = long_frames(panel, weights)

    def frames() -> BacktestResult:
        return notebook_call(bars, weight_frame, cfg.capital)

    def frames_no_cache() -> BacktestResult:
        return notebook_call(align_bars(bars, cache=False), weight_frame, cfg.capital)

    def prebuilt() -> BacktestResult:
        result = _ours.run_target_weights(panel, weights, cfg.capital)
        _ = result.equity
        return result

    log("W3-frames: ours, first call (aligns the frame)")
    first_s, result = timed_call(frames)
    equity = _ours.equity_curve(result)
    p_first, reference = timed_call(prebuilt)
    log("W3-frames: vectorbt first call + checks")
    wide = _vbt.prepare_weights(panel, weights)
    v_first, (pf, v_equity) = timed_call(lambda: _vbt.run_weights(wide, cfg.capital))
    checks = [compare_curves("vectorbt", "equity per bar", equity, v_equity, VBT_RTOL),
              compare_counts("vectorbt", "fills", int(result.fills.height),
                             _vbt.order_count(pf)),
              compare_curves("alfred (panel+plan)", "equity per bar", equity,
                             _ours.equity_curve(reference), 1e-12,
                             "the frame path against the prebuilt panel and plan")]
    log("W3-frames: timing ours")
    engines = {"alfred": _engine_row(
        best_of(frames, first_s=first_s, min_repeats=cfg.min_repeats,
                min_total_s=cfg.min_total_s), asset_bars, "local")}
    n_first, _ = timed_call(frames_no_cache)
    engines["alfred (no cache)"] = _engine_row(
        best_of(frames_no_cache, first_s=n_first, min_repeats=cfg.min_repeats,
                min_total_s=cfg.min_total_s), asset_bars, "local")
    engines["alfred (panel+plan)"] = _engine_row(
        best_of(prebuilt, first_s=p_first, min_repeats=cfg.min_repeats,
                min_total_s=cfg.min_total_s), asset_bars, "local")
    log("W3-frames: timing vectorbt")
    engines["vectorbt"] = _engine_row(
        best_of(lambda: _vbt.run_weights(wide, cfg.capital), first_s=v_first,
                min_repeats=cfg.min_repeats, min_total_s=cfg.min_total_s),
        asset_bars, _vbt.version())
    ours = engines["alfred"]["best_s"]
    base = engines["alfred (panel+plan)"]["best_s"]
    uncached = engines["alfred (no cache)"]["best_s"]
    title = (f"W3 through engine.run_backtest(bars_frame, weights_frame): {bars.height:,} bar "
             f"rows, {weight_frame.height:,} weight rows")
    extra = {"ours": _result_facts(result), "bar_rows": bars.height,
             "weight_rows": weight_frame.height,
             "frames_over_panel": ours / base, "frames_no_cache_over_panel": uncached / base}
    summary = _summary("W3-frames", title, panel, engines, checks, extra)
    summary["targets"].append({
        "what": "W3-frames: frame call / panel+plan call", "target":
        f"<= {FRAMES_RATIO_TARGET:g}x", "measured": ours / base,
        "met": ours / base <= FRAMES_RATIO_TARGET})
    return summary
