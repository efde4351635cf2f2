"""W1-W3: build the inputs once, check every engine against ours, then time each.

Order of work per engine: one first call (compilation, warm caches) whose output feeds
the equality checks; only then the timed repeats (:mod:`benchmarks._timing`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import _bt, _ours, _vbt
from benchmarks._checks import Check, compare_counts, compare_curves
from benchmarks._config import SPEEDUP_TARGETS, SuiteConfig
from benchmarks._data import stocks_panel, tiled_panel
from benchmarks._signals import momentum_topk_weights, sma_crossover
from benchmarks._timing import Timing, best_of, timed_call
from engine import BacktestResult, Panel

Log = Callable[[str], None]
VBT_RTOL = 1e-8
BT_RTOL = 1e-6


def _ours_call(fn: Callable[[], BacktestResult]) -> Callable[[], BacktestResult]:
    def call() -> BacktestResult:
        result = fn()
        _ = result.equity  # the polars equity frame is part of what a user gets
        return result
    return call


def _time(fn: Callable[[], Any], first_s: float, cfg: SuiteConfig, *, slow: bool = False
          ) -> Timing:
    return best_of(fn, first_s=first_s, min_repeats=cfg.min_repeats,
                   min_total_s=cfg.min_total_s, max_total_s=cfg.peer_budget_s if slow else None)


def _engine_row(timing: Timing, asset_bars: int, version: str) -> dict[str, Any]:
    row = timing.to_dict()
    row["asset_bars_per_s"] = timing.throughput(asset_bars)
    row["version"] = version
    return row


def _summary(workload: str, title: str, panel: Panel, engines: dict[str, dict[str, Any]],
             checks: list[Check], extra: dict[str, Any]) -> dict[str, Any]:
    ours_best = engines["alfred"]["best_s"]
    speedups = {peer: row["best_s"] / ours_best for peer, row in engines.items()
                if peer != "alfred"}
    targets = []
    for (wid, peer), minimum in SPEEDUP_TARGETS.items():
        if wid == workload and peer in speedups:
            targets.append({"what": f"{workload} speed-up vs {peer}", "target": f">= {minimum:g}x",
                            "measured": speedups[peer], "met": speedups[peer] >= minimum})
    return {"id": workload, "title": title, "n_bars": panel.n_bars,
            "n_assets": panel.n_assets, "asset_bars": panel.n_bars * panel.n_assets,
            "engines": engines, "speedups": speedups,
            "checks": [c.to_dict() for c in checks],
            "checks_passed": all(c.passed for c in checks), "targets": targets, **extra}


def _result_facts(result: BacktestResult) -> dict[str, Any]:
    orders = result.orders
    not_full = orders.filter(orders["status"] != "filled")
    # a "leverage_limit" reason here would be a rule the peers do not have (see README)
    reasons = {reason: int(n) for reason, n in not_full.group_by("reason").len().iter_rows()}
    return {"final_equity": result.final_equity, "fills": int(result.fills.height),
            "orders_not_filled_in_full": int(not_full.height), "by_reason": reasons,
            "closed_trades": int((~result.trades["is_open"]).sum())}


def _sma_workload(workload: str, title: str, panel: Panel, cfg: SuiteConfig, log: Log,
                  *, with_backtrader: bool) -> dict[str, Any]:
    asset_bars = panel.n_bars * panel.n_assets
    long_entry, short_entry = sma_crossover(panel.close, cfg.fast, cfg.slow)
    value = cfg.capital / panel.n_assets
    engines: dict[str, dict[str, Any]] = {}
    checks: list[Check] = []

    log(f"{workload}: ours, first call")
    ours = _ours_call(lambda: _ours.run_sma_signals(panel, long_entry, short_entry, value,
                                                    cfg.capital))
    first_s, result = timed_call(ours)
    equity = _ours.equity_curve(result)

    v_first = None
    if cfg.vectorbt_signals:
        log(f"{workload}: vectorbt from_signals, first call (compiles) + check")
        frames = _vbt.prepare_signals(panel, long_entry, short_entry)
        v_first, (pf, v_equity) = timed_call(
            lambda: _vbt.run_signals(frames, value, cfg.capital))
        checks.append(compare_curves("vectorbt", "equity per bar", equity, v_equity,
                                     VBT_RTOL))
        checks.append(compare_counts("vectorbt", "fills", int(result.fills.height),
                                     _vbt.order_count(pf)))

    bt_first = None
    if with_backtrader:
        log(f"{workload}: backtrader, first call + check (slow)")
        bt_frames = _bt.prepare(panel)
        events = _bt.signal_events(long_entry, short_entry)

        def bt_call() -> dict[str, Any]:
            return _bt.run(bt_frames, panel.assets, events, value, cfg.capital)

        bt_first, bt_out = timed_call(bt_call)
        fees = result.equity["fees"].to_numpy()
        note = ("backtrader books a cheat-on-close fill in the next bar's cycle, so its value "
                "at bar t is ours before the bar-t commission: compared with equity + fees")
        checks.append(compare_curves("backtrader", "value per bar", equity + fees,
                                     bt_out["values"], BT_RTOL, note))
        checks.append(compare_curves("backtrader", "final value", equity[-1:] + fees[-1:],
                                     np.array([bt_out["final_value"]]), BT_RTOL))
        fills_before_last = int((result.fills["ts"] < result.equity["ts"][-1]).sum())
        checks.append(compare_counts(
            "backtrader", "executed orders", fills_before_last, int(bt_out["executed"]),
            "orders of the last bar never execute in backtrader; ours fill them at its close"))

    log(f"{workload}: timing ours")
    engines["alfred"] = _engine_row(_time(ours, first_s, cfg), asset_bars, "local")
    if v_first is not None:
        log(f"{workload}: timing vectorbt")
        engines["vectorbt"] = _engine_row(
            _time(lambda: _vbt.run_signals(frames, value, cfg.capital), v_first, cfg),
            asset_bars, _vbt.version())
    if bt_first is not None:
        log(f"{workload}: timing backtrader (budget {cfg.peer_budget_s:g} s)")
        engines["backtrader"] = _engine_row(_time(bt_call, bt_first, cfg, slow=True),
                                            asset_bars, _bt.version())
    extra: dict[str, Any] = {"ours": _result_facts(result), "position_value": value}
    if cfg.breakdown:
        extra["breakdown"] = _ours.kernel_breakdown(ours)
    return _summary(workload, title, panel, engines, checks, extra)


def w1(cfg: SuiteConfig, log: Log) -> dict[str, Any]:
    panel = stocks_panel(cfg.n_bars)
    title = (f"SMA({cfg.fast}/{cfg.slow}) reversal, {panel.n_assets} stocks, value "
             "capital/N per position, 10 bps")
    return _sma_workload("W1", title, panel, cfg, log, with_backtrader=cfg.backtrader)


def universe(cfg: SuiteConfig) -> Panel:
    """The W2/W3 panel: the 20 stocks tiled ``cfg.copies`` times with seeded noise."""
    return tiled_panel(stocks_panel(cfg.n_bars), cfg.copies, seed=cfg.seed,
                       noise_sigma=cfg.noise_sigma)


def w2(cfg: SuiteConfig, log: Log, panel: Panel | None = None) -> dict[str, Any]:
    panel = universe(cfg) if panel is None else panel
    title = (f"SMA({cfg.fast}/{cfg.slow}) reversal, {panel.n_assets} tiled assets, value "
             "capital/N per position, 10 bps")
    return _sma_workload("W2", title, panel, cfg, log, with_backtrader=False)


def w3(cfg: SuiteConfig, log: Log, panel: Panel | None = None) -> dict[str, Any]:
    panel = universe(cfg) if panel is None else panel
    asset_bars = panel.n_bars * panel.n_assets
    k = cfg.k_for(panel.n_assets)
    weights = momentum_topk_weights(panel.close, panel.ts, lookback=cfg.lookback, k=k,
                                    gross=cfg.gross)
    title = (f"monthly top-{k}/bottom-{k} {cfg.lookback}-bar momentum, gross {cfg.gross:g}, "
             f"{panel.n_assets} tiled assets, 10 bps")

    log("W3: ours, first call")
    ours = _ours_call(lambda: _ours.run_target_weights(panel, weights, cfg.capital))
    first_s, result = timed_call(ours)
    equity = _ours.equity_curve(result)
    log("W3: vectorbt from_orders(targetpercent), first call + check")
    frames = _vbt.prepare_weights(panel, weights)
    v_first, (pf, v_equity) = timed_call(lambda: _vbt.run_weights(frames, cfg.capital))
    checks = [compare_curves("vectorbt", "equity per bar", equity, v_equity, VBT_RTOL),
              compare_counts("vectorbt", "fills", int(result.fills.height),
                             _vbt.order_count(pf))]
    log("W3: timing ours")
    engines = {"alfred": _engine_row(_time(ours, first_s, cfg), asset_bars, "local")}
    log("W3: timing vectorbt")
    engines["vectorbt"] = _engine_row(
        _time(lambda: _vbt.run_weights(frames, cfg.capital), v_first, cfg), asset_bars,
        _vbt.version())
    extra: dict[str, Any] = {"ours": _result_facts(result),
                             "rebalances": int(np.isfinite(weights[:, 0]).sum())}
    if cfg.breakdown:
        extra["breakdown"] = _ours.kernel_breakdown(ours)
    return _summary("W3", title, panel, engines, checks, extra)
