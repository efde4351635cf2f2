"""W3-frames: the W3 backtest through the notebook call, polars frames in.

The README's notebook call is ``engine.run_backtest(bars, weights, ...)`` with a long bars
frame (``ts, asset, close``) and a long weights frame (``ts, asset, target_weight``, one
row per asset on each rebalance bar). That call validates and aligns the bars, places the
weights, runs the kernel and returns the result; the timed call also builds the equity
frame, as W3 does. Three of ours are timed, in interleaved rounds (one call of each per
round, so a busy machine slows all three alike), and judged by their medians:

* ``alfred`` -- the notebook call as a user repeats it: the same bars frame again, so
  the panel comes from the engine's content-keyed cache (the key is a digest of every
  value, computed on every call; the weights are placed afresh every call);
* ``alfred (no cache)`` -- the first call: fresh frames every round (built outside the
  timed region) and the panel cache cleared (``engine.data.clear_panel_cache()``), so the
  call aligns the bars from scratch and computes the cache key once, as a new session's
  first call does;
* ``alfred (panel+plan)`` -- the W3 call on the prebuilt panel and weight matrix.

vectorbt gets the same wide frames as in W3. The frames are built outside the timed region.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from benchmarks import _ours, _vbt
from benchmarks._checks import compare_counts, compare_curves
from benchmarks._config import SuiteConfig
from benchmarks._signals import momentum_topk_weights
from benchmarks._timing import Timing, best_of, timed_call
from engine import BacktestResult, Panel, run_backtest
from engine.data import clear_panel_cache

FRAMES_RATIO_TARGET = 2.0  # the frame call may cost at most this many panel+plan calls
MIN_ROUNDS = 5  # interleaved rounds at least; medians are judged
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


def interleaved(calls: dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]],
                first_s: dict[str, float], rounds: int) -> dict[str, Timing]:
    """Time ``fn(setup())`` for every (setup, fn) of ``calls`` once a round, ``rounds`` times;
    only ``fn`` is timed (setup builds fresh inputs, clears caches)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, (setup, fn) in calls.items():
            arg = setup()
            elapsed, _ = timed_call(lambda fn=fn, arg=arg: fn(arg))
            times[name].append(elapsed)
    return {name: Timing(first_s=first_s[name], best_s=min(t), median_s=statistics.median(t),
                         repeats=len(t)) for name, t in times.items()}


def w3_frames(cfg: SuiteConfig, log: Callable[[str], None], panel: Panel) -> dict[str, Any]:
    from benchmarks._workloads import _engine_row, _result_facts, _summary

    asset_bars = panel.n_bars * panel.n_assets
    k = cfg.k_for(panel.n_assets)
    weights = momentum_topk_weights(panel.close, panel.ts, lookback=cfg.lookback, k=k,
                                    gross=cfg.gross)
    bars, weight_frame = long_frames(panel, weights)

    def fresh() -> tuple[pl.DataFrame, pl.DataFrame]:
        clear_panel_cache()
        return long_frames(panel, weights)

    def frames(inputs: tuple[pl.DataFrame, pl.DataFrame]) -> BacktestResult:
        return notebook_call(inputs[0], inputs[1], cfg.capital)

    def prebuilt(_: object = None) -> BacktestResult:
        result = _ours.run_target_weights(panel, weights, cfg.capital)
        _ = result.equity
        return result

    log("W3-frames: ours, first call (aligns the frame)")
    inputs = fresh()
    first = {"alfred (no cache)": timed_call(lambda: frames(inputs))[0]}
    first["alfred"], result = timed_call(lambda: frames((bars, weight_frame)))
    equity = _ours.equity_curve(result)
    first["alfred (panel+plan)"], reference = timed_call(prebuilt)
    log("W3-frames: vectorbt first call + checks")
    wide = _vbt.prepare_weights(panel, weights)
    v_first, (pf, v_equity) = timed_call(lambda: _vbt.run_weights(wide, cfg.capital))
    checks = [compare_curves("vectorbt", "equity per bar", equity, v_equity, VBT_RTOL),
              compare_counts("vectorbt", "fills", int(result.fills.height),
                             _vbt.order_count(pf)),
              compare_curves("alfred (panel+plan)", "equity per bar", equity,
                             _ours.equity_curve(reference), 1e-12,
                             "the frame path against the prebuilt panel and plan")]
    log("W3-frames: timing ours (interleaved rounds: panel+plan, first call, repeated call)")
    timings = interleaved({"alfred (panel+plan)": (lambda: None, prebuilt),
                           "alfred (no cache)": (fresh, frames),
                           "alfred": (lambda: (bars, weight_frame), frames)},
                          first, max(MIN_ROUNDS, cfg.min_repeats))
    engines = {name: _engine_row(timing, asset_bars, "local")
               for name, timing in sorted(timings.items(), key=lambda kv: kv[0] != "alfred")}
    log("W3-frames: timing vectorbt")
    engines["vectorbt"] = _engine_row(
        best_of(lambda: _vbt.run_weights(wide, cfg.capital), first_s=v_first,
                min_repeats=cfg.min_repeats, min_total_s=cfg.min_total_s),
        asset_bars, _vbt.version())
    base = timings["alfred (panel+plan)"].median_s
    cached = timings["alfred"].median_s / base
    uncached = timings["alfred (no cache)"].median_s / base
    title = (f"W3 through engine.run_backtest(bars_frame, weights_frame): {bars.height:,} bar "
             f"rows, {weight_frame.height:,} weight rows")
    extra = {"ours": _result_facts(result), "bar_rows": bars.height,
             "weight_rows": weight_frame.height,
             "frames_over_panel": cached, "frames_no_cache_over_panel": uncached}
    summary = _summary("W3-frames", title, panel, engines, checks, extra)
    for what, ratio in (("repeated frame call", cached), ("first (uncached) frame call",
                                                           uncached)):
        summary["targets"].append({
            "what": f"W3-frames: {what} / panel+plan call (medians)",
            "target": f"<= {FRAMES_RATIO_TARGET:g}x", "measured": ratio,
            "met": ratio <= FRAMES_RATIO_TARGET})
    log(f"W3-frames: frame call / panel+plan call (medians of {timings['alfred'].repeats}): "
        f"repeated {cached:.2f}x, first (uncached) {uncached:.2f}x")
    return summary
