"""``run_backtest``: the one call a notebook user needs.

It validates and aligns the bars once, asks the strategy for a plan, checks the plan,
hands plain arrays to the numba loop kernels and wraps the records in a
:class:`~engine.result.BacktestResult`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.errors import ConfigError, DataError
from engine.kernels import (
    FILL_MODE_NAMES,
    TargetKind,
    Trigger,
    new_book,
    new_records,
    simulate_signals_nb,
    simulate_weights_nb,
)
from engine.membership import apply_membership, delisting_schedule
from engine.panel import Panel
from engine.plan import Plan, SignalPlan, Strategy, WeightPlan
from engine.result import BacktestResult
from engine.settings import Costs, Entries, SimulationSettings, Stops
from engine.types import FillName

_SIZE_KINDS = {"weight": TargetKind.Weight, "value": TargetKind.Value, "qty": TargetKind.Qty}


@dataclass(frozen=True)
class TargetWeights:
    """Pass-through strategy: a ``target_weight`` column is the plan.

    A row dated t is an instruction, decided at the close of t, to rebalance that asset to
    that weight of equity at the fill. Between an asset's rows its quantity is held.
    """

    column: str = "target_weight"
    name: str = "weights"

    def plan(self, panel: Panel, signals: pl.DataFrame | None) -> WeightPlan:
        if signals is None:
            raise ConfigError(
                "the 'weights' strategy needs a frame with ts, asset and "
                f"'{self.column}' columns; pass it as run_backtest(bars, weights_frame)"
            )
        from engine.data import signals_to_matrix

        return WeightPlan(signals_to_matrix(signals, panel, self.column, source="weights"))


def to_panel(bars: pl.DataFrame | Panel, periods_per_year: float | None = None) -> Panel:
    """Validate and align a long bars frame (a Panel passes through)."""
    if isinstance(bars, pl.DataFrame):
        from engine.data import align_bars

        if periods_per_year is not None and not (math.isfinite(periods_per_year)
                                                 and periods_per_year > 0):
            raise ConfigError(f"periods_per_year must be > 0, got {periods_per_year!r}")
        return align_bars(bars, periods_per_year=periods_per_year)  # validates first
    if isinstance(bars, Panel):
        panel = bars
    else:
        raise DataError(
            f"bars must be a polars DataFrame (ts, asset, close, ...) or a Panel, got "
            f"{type(bars).__name__}; load data with engine.load_bars(...)"
        )
    if periods_per_year is not None:
        if not (math.isfinite(periods_per_year) and periods_per_year > 0):
            raise ConfigError(f"periods_per_year must be > 0, got {periods_per_year!r}")
        panel = dataclasses.replace(panel, periods_per_year=float(periods_per_year))
    return panel


def _resolve_strategy(strategy: str | Strategy) -> Strategy:
    """A strategy object; the engine knows only the pass-through ``"weights"`` by name.

    Named strategies live in the registries above the engine: ``strategies.get_strategy``
    (or ``alfred.run_backtest(..., strategy="nuanced")``, which resolves names).
    """
    if isinstance(strategy, str):
        if strategy == "weights":
            return TargetWeights()
        raise ConfigError(
            f"engine.run_backtest takes a strategy object, not the name {strategy!r}; pass "
            f"strategies.get_strategy({strategy!r}) or call alfred.run_backtest(..., "
            f"strategy={strategy!r}), which looks names up in the registries")
    if not hasattr(strategy, "plan"):
        raise ConfigError(f"strategy must be an object with .plan(panel, signals) or "
                          f"'weights', got {type(strategy).__name__}")
    return strategy


def _check_weights(plan: WeightPlan, panel: Panel, max_gross: float, max_net: float) -> None:
    w = plan.target_weight
    if w.shape != (panel.n_bars, panel.n_assets):
        raise DataError(f"target weights have shape {w.shape}, expected "
                        f"{(panel.n_bars, panel.n_assets)} (bars x assets)")
    bad = np.isinf(w)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise DataError(f"target weight for {panel.assets[j]} at {panel.ts[t]} is infinite; "
                        "use a finite weight (or null for no instruction)")
    rows = np.nonzero((~np.isnan(w)).any(axis=1))[0]  # only bars that carry instructions
    wr = np.nan_to_num(w[rows])
    gross = np.zeros(w.shape[0])
    net = np.zeros(w.shape[0])
    gross[rows] = np.abs(wr).sum(axis=1)
    net[rows] = wr.sum(axis=1)
    tol = 1e-9
    for name, values, limit in (("gross", gross, max_gross), ("net", np.abs(net), max_net)):
        over = np.nonzero(values > limit + tol)[0]
        if over.size:
            t = over[0]
            raise DataError(
                f"target weights at {panel.ts[t]} have {name} exposure {values[t]:.6g}, above "
                f"max_{name}_leverage={limit:g} ({over.size} bar(s) affected); scale the "
                f"weights down or raise max_{name}_leverage"
            )


def _simulate_signals(plan: SignalPlan, panel: Panel, fill_mode: int, book, params,
                      record_positions: bool):
    """Check a signal plan, resolve conflicting flags and run the signals loop."""
    flags = [_bool_matrix(getattr(plan, k), panel, k)
             for k in ("long_entry", "long_exit", "short_entry", "short_exit")]
    le, lx, se, sx = flags
    # conflicting flags on one bar are ignored: first an entry and an exit of the same
    # side, then a long and a short entry (the same rule as vectorbt's defaults)
    le, lx = le & ~lx, lx & ~le
    se, sx = se & ~sx, sx & ~se
    le, se = le & ~se, se & ~le
    if plan.size_type not in _SIZE_KINDS:
        raise ConfigError(f"size_type must be one of {sorted(_SIZE_KINDS)}, "
                          f"got {plan.size_type!r}")
    size = np.broadcast_to(np.asarray(plan.size, dtype=np.float64),
                           (panel.n_bars, panel.n_assets))
    if not np.isfinite(size).all() or (size < 0).any():
        raise DataError("signal size must be finite and >= 0 (direction comes from the "
                        "entry flags)")
    n_orders = _order_capacity(int(np.count_nonzero(le | lx | se | sx)), panel, params)
    recs = new_records(panel.n_bars, panel.n_assets, n_orders,
                       record_positions=record_positions)
    simulate_signals_nb(panel.open, panel.high, panel.low, panel.close, panel.volume, le, lx,
                        se, sx, np.ascontiguousarray(size), _SIZE_KINDS[plan.size_type],
                        fill_mode, book, params, recs)
    return recs


def _bool_matrix(a: np.ndarray, panel: Panel, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.shape != (panel.n_bars, panel.n_assets):
        raise DataError(f"signal plan '{name}' has shape {a.shape}, expected "
                        f"{(panel.n_bars, panel.n_assets)} (bars x assets)")
    return a.astype(np.bool_, copy=False)


def _warn_unknown_exits(recs, book, panel: Panel, unknown: list[str]) -> None:
    """One warning naming the assets whose positions were settled without a known exit
    return (data or membership ended, no delisting_return given)."""
    if not unknown:
        return
    fills = recs.fills[: book.counts[1]]
    settled = {panel.assets[j] for j in fills["asset"][fills["trigger"] == Trigger.Delisting]}
    named = [a for a in unknown if a in settled]
    if named:
        warnings.warn(
            f"{len(named)} asset(s) left the universe while held ({', '.join(named[:5])}"
            f"{', ...' if len(named) > 5 else ''}) without a known delisting return; their "
            "positions were closed at the last close. Give delisting_return in a membership "
            "table (engine.membership) to settle them at what holders got", stacklevel=3)


def _order_capacity(n_instructions: int, panel: Panel, params) -> int:
    """Order records to preallocate: one per instruction, and with stops one stop exit per
    position an instruction opened plus one lapsed instruction record each."""
    if not params.use_stops and params.entry_type == 0:
        return n_instructions + panel.n_assets  # + one delisting settlement per asset
    # a resting entry's cancel record and its replacement's order, stop exits, lapses
    return 3 * n_instructions + 2 * panel.n_assets


def run_backtest(
    bars: pl.DataFrame | Panel,
    signals_or_weights: pl.DataFrame | Plan | None = None,
    *,
    strategy: str | Strategy = "weights",
    settings: SimulationSettings | None = None,
    costs: Costs | dict | None = None,
    fill: FillName | None = None,
    capital: float | None = None,
    max_gross_leverage: float | None = None,
    max_net_leverage: float | None = None,
    fractional: bool | None = None,
    periods_per_year: float | None = None,
    unsafe_same_close: bool | None = None,
    limit_policy: str | None = None,
    stops: Stops | dict | None = None,
    entries: Entries | dict | None = None,
    membership: pl.DataFrame | None = None,
    close_at_data_end: bool | None = None,
    record_positions: bool = True,
) -> BacktestResult:
    """Run one backtest.

    ``signals_or_weights`` is a signals frame for ``strategy`` (for the default
    ``"weights"`` strategy: ``ts, asset, target_weight``) or a ready plan. ``settings``
    (a :class:`SimulationSettings`) holds costs, fill, capital, limits and the quantity
    rule, the limit policy (``"scale"``, default, or ``"clip"``) and the stops
    (:class:`~engine.settings.Stops`: ``sl_stop``, ``tp_stop``, ``sl_trail``, ``intrabar``)
    and the entry orders (:class:`~engine.settings.Entries`: market, limit or stop);
    the keywords of the same names override single values. ``membership`` (asset, start,
    end, delisting_return; see :mod:`engine.membership`) makes the universe point-in-time;
    ``close_at_data_end`` (default True) settles a position whose asset's bars end before
    the last bar, at its last close (``False``: the old rule, valued at it forever). Costs default to
    ``Costs()`` -- on. Fills default to the next bar's open; ``same_close`` lets a decision
    fill at the very close it was computed from and is refused unless
    ``unsafe_same_close=True``.
    """
    if fill is not None and fill not in FILL_MODE_NAMES:
        raise ConfigError(f"fill must be one of {sorted(FILL_MODE_NAMES)}, got {fill!r}")
    if capital is not None and not (isinstance(capital, int | float) and math.isfinite(capital)
                                    and capital > 0):
        raise ConfigError(f"capital must be a positive number, got {capital!r}")
    settings = (settings or SimulationSettings()).replace(
        costs=costs, fill=fill, capital=capital, max_gross_leverage=max_gross_leverage,
        max_net_leverage=max_net_leverage, fractional=fractional,
        unsafe_same_close=unsafe_same_close, limit_policy=limit_policy, stops=stops,
        entries=entries, close_at_data_end=close_at_data_end)
    panel = to_panel(bars, periods_per_year)
    if membership is not None:
        panel = apply_membership(panel, membership)
    if panel.n_assets == 0 or panel.n_bars == 0:
        raise DataError("the bars hold no asset or no bar; nothing to backtest")
    fill = settings.fill_for(panel.has_open)  # close-only data fills at the next close

    if isinstance(signals_or_weights, WeightPlan | SignalPlan):
        plan: Plan = signals_or_weights
        strategy_name = getattr(strategy, "name", strategy) if strategy != "weights" else "plan"
    else:
        strat = _resolve_strategy(strategy)
        plan = strat.plan(panel, signals_or_weights)
        strategy_name = strat.name

    ppy = panel.periods_per_year
    params = settings.sim_params(ppy)
    fill_mode = FILL_MODE_NAMES[fill]
    capital = settings.capital
    book = new_book(panel.n_assets, float(capital))
    unknown_exit: list[str] = []
    if settings.close_at_data_end:
        book.delist_bar[:], book.delist_factor[:], unknown_exit = delisting_schedule(panel)
        params = params._replace(use_delisting=bool((book.delist_bar >= 0).any()))
    volume = panel.volume

    if isinstance(plan, WeightPlan):
        weights = np.ascontiguousarray(plan.target_weight, dtype=np.float64)
        _check_weights(WeightPlan(weights), panel, settings.max_gross_leverage,
                       settings.max_net_leverage)
        n_orders = _order_capacity(int(np.count_nonzero(~np.isnan(weights))), panel, params)
        recs = new_records(panel.n_bars, panel.n_assets, n_orders,
                           record_positions=record_positions)
        simulate_weights_nb(panel.open, panel.high, panel.low, panel.close, volume, weights,
                            fill_mode, book, params, recs)
    elif isinstance(plan, SignalPlan):
        recs = _simulate_signals(plan, panel, fill_mode, book, params, record_positions)
    else:
        raise ConfigError(f"strategy returned {type(plan).__name__}, expected a WeightPlan or "
                          "SignalPlan")

    _warn_unknown_exits(recs, book, panel, unknown_exit)
    described = {"strategy": strategy_name, **settings.describe(), "fill": fill,
                 "periods_per_year": ppy}
    return BacktestResult(panel=panel, records=recs, counts=book.counts.copy(),
                          capital=float(capital), costs=settings.costs, fill=fill,
                          settings=described, plan=plan, simulation=settings)
