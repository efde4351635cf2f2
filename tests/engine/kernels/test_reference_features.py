"""The numba kernels against the independent reference engine with the features on:
``limit_policy='scale'``, stops (stop-loss, take-profit, trailing, both intrabar rules),
limit / stop entries with a time-in-force, and point-in-time membership with delisting
returns (``close_at_data_end``).

Hypothesis draws tiny OHLC panels (gaps through the levels, wide ranges that reach both
levels in one bar, missing bars, data that ends early), costs, limits, volume caps, whole
shares, every fill mode and either target weights or entry/exit signals; both engines must
agree bar by bar and record by record: every order in the order it was processed (stop
exits, lapsed instructions, cancelled / expired / filled entries, market orders,
settlements), every fill with its trigger and ambiguity flag, every trade.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from engine import Costs, SignalPlan, WeightPlan, run_backtest
from engine.kernels.enums import REASON_NAMES, STATUS_NAMES, TRIGGER_NAMES
from engine.panel import Panel
from tests.engine.kernels.reference_engine import ReferenceEngine, Settings
from tests.engine.kernels.test_reference_engine import (
    ATOL_CASH,
    ATOL_QTY,
    PERIODS_PER_YEAR,
    _close,
    _fit_rows,
    account,
    draw_signal_orders,
    market,
)

DAY0 = np.datetime64("2021-01-04", "ns")


def ohlc_panel(open_, high, low, close, volume):
    n_bars, n = close.shape
    ts = DAY0 + np.arange(n_bars) * np.timedelta64(1, "D")
    vol = np.full_like(close, np.nan) if volume is None else np.asarray(volume, dtype=float)
    return Panel(ts=ts, assets=tuple(f"A{j}" for j in range(n)), open=open_, high=high,
                 low=low, close=close, volume=vol, periods_per_year=PERIODS_PER_YEAR,
                 has_open=True)


# --- comparison -----------------------------------------------------------------------
def _same_qty(got, want, where):
    if math.isnan(want):
        assert math.isnan(got), where
    else:
        _close(got, want, ATOL_QTY, where)


def compare_all(res, ref):
    r = res.records
    for name in ("equity", "cash", "gross", "net", "traded", "fees", "borrow"):
        _close(getattr(r, name), [getattr(b, name) for b in ref.bars], ATOL_CASH, name)
    _close(r.positions, [b.positions for b in ref.bars], ATOL_QTY, "positions")

    orders = r.orders[: res.counts[0]]
    fills = r.fills[: res.counts[1]]
    assert len(orders) == len(ref.orders), "order count"
    assert list(orders["order_id"]) == list(range(len(orders))), "orders numbered in order"
    not_tradable = REASON_NAMES.index("not_tradable")
    # orders a bar processed, in processing order (not-tradable ones are recorded while the
    # instructions are read and are matched by bar and asset)
    got_seq = [o for o in orders if o["reason"] != not_tradable]
    want_seq = [o for o in ref.orders if o.reason != "not_tradable"]
    got_seq.sort(key=lambda o: (int(o["fill_bar"]), int(o["order_id"])))
    want_seq.sort(key=lambda o: (o.fill_bar, o.order_id))
    assert [(int(o["fill_bar"]), int(o["asset"])) for o in got_seq] == [
        (o.fill_bar, o.asset) for o in want_seq], "orders processed in another sequence"
    pairs = list(zip(got_seq, want_seq, strict=True))
    got_nt = {(int(o["fill_bar"]), int(o["asset"])): o for o in orders
              if o["reason"] == not_tradable}
    pairs += [(got_nt[(o.fill_bar, o.asset)], o) for o in ref.orders
              if o.reason == "not_tradable"]
    for got, want in pairs:
        where = f"{want.kind} order at bar {want.fill_bar} asset {want.asset}"
        assert int(got["bar"]) == want.decision_bar, where
        assert int(got["side"]) == want.side, where
        assert STATUS_NAMES[got["status"]] == want.status, where
        assert REASON_NAMES[got["reason"]] == want.reason, where
        _same_qty(got["requested_qty"], want.requested, where)
        _close(got["filled_qty"], want.filled, ATOL_QTY, where)

    assert len(fills) == len(ref.fills), "fill count"
    got_fills = sorted(fills, key=lambda f: int(f["order_id"]))
    want_fills = sorted(ref.fills, key=lambda f: f.order_id)
    ref_order_of = {o.order_id: o for o in ref.orders}
    got_order_of = {int(o["order_id"]): o for o in orders}
    for got, want in zip(got_fills, want_fills, strict=True):
        where = f"{want.trigger} fill at bar {want.bar} asset {want.asset}"
        assert (int(got["bar"]), int(got["asset"])) == (want.bar, want.asset), where
        g_order, w_order = got_order_of[int(got["order_id"])], ref_order_of[want.order_id]
        assert (int(g_order["fill_bar"]), int(g_order["asset"]), int(g_order["bar"])) == (
            w_order.fill_bar, w_order.asset, w_order.decision_bar), where
        assert TRIGGER_NAMES[got["trigger"]] == want.trigger, where
        assert bool(got["ambiguous"]) == want.ambiguous, where
        _close([got["qty"], got["price"], got["ref_price"]],
               [want.qty, want.price, want.ref_price], ATOL_QTY, where)
        _close([got["commission"], got["slippage_cost"]],
               [want.commission, want.slippage_cost], ATOL_CASH, where)
    assert int(res.counts[3]) == sum(f.ambiguous for f in ref.fills), "ambiguous count"

    trades = r.trades[: res.counts[2]]
    assert len(trades) == len(ref.trades), "trade count"
    got_by_key = {(int(t["asset"]), int(t["entry_bar"]), bool(t["is_open"])): t for t in trades}
    assert len(got_by_key) == len(trades), "trade keys"
    for want in ref.trades:
        got = got_by_key[(want.asset, want.entry_bar, want.is_open)]
        where = f"trade of asset {want.asset} entered at bar {want.entry_bar}"
        assert (int(got["side"]), int(got["exit_bar"])) == (want.side, want.exit_bar), where
        _close([got["entry_price"], got["exit_price"], got["qty"]],
               [want.entry_price, want.exit_price, want.max_qty], ATOL_QTY, where)
        _close([got["pnl"], got["fees"]], [want.pnl, want.fees], ATOL_CASH, where)
        _close(got["ret"], want.ret, 1e-9, where)


# --- running both ---------------------------------------------------------------------
def _membership_frame(spells, n_bars):
    """``spells[j]``: (start bar, end bar or None, delisting return or None)."""
    day = [DAY0 + np.timedelta64(t, "D") for t in range(n_bars)]
    return pl.DataFrame({
        "asset": [f"A{j}" for j in range(len(spells))],
        "start": pl.Series([day[s].astype("datetime64[us]").item() for s, _, _ in spells]),
        "end": pl.Series([None if e is None else day[e].astype("datetime64[us]").item()
                          for _, e, _ in spells], dtype=pl.Datetime("us")),
        "delisting_return": pl.Series([r for _, _, r in spells], dtype=pl.Float64)})


def _masked(case):
    """The panel's arrays as the reference sees them: NaN outside each membership spell,
    and each asset's settlement factor."""
    arrays = {k: np.array(case[k], dtype=float) for k in ("open", "high", "low", "close")}
    volume = (np.full_like(arrays["close"], np.nan) if case["volume"] is None
              else np.array(case["volume"], dtype=float))
    arrays["volume"] = volume
    n = arrays["close"].shape[1]
    factor = [1.0] * n
    for j, (start, end, ret) in enumerate(case.get("spells") or []):
        outside = np.ones(arrays["close"].shape[0], bool)
        outside[start: (end + 1 if end is not None else None)] = False
        for a in arrays.values():
            a[outside, j] = np.nan
        if end is not None and ret is not None:
            factor[j] = 1.0 + ret
    return arrays, factor


def run_both(case):
    panel = ohlc_panel(case["open"], case["high"], case["low"], case["close"], case["volume"])
    stops, entries = case["stops"], case["entries"]
    kwargs = dict(costs=case["costs"], fill=case["fill"], capital=case["capital"],
                  max_gross_leverage=case["max_gross"], max_net_leverage=case["max_net"],
                  fractional=case["fractional"], unsafe_same_close=True,
                  limit_policy=case["limit_policy"], stops=stops, entries=entries,
                  close_at_data_end=True)
    if case.get("spells"):
        kwargs["membership"] = _membership_frame(case["spells"], panel.n_bars)
    settings_ = Settings.from_costs(
        case["costs"], PERIODS_PER_YEAR, fill=case["fill"], capital=case["capital"],
        max_gross=case["max_gross"], max_net=case["max_net"], fractional=case["fractional"],
        limit_policy=case["limit_policy"], sl_stop=stops.get("sl_stop"),
        tp_stop=stops.get("tp_stop"), sl_trail=stops.get("sl_trail", False),
        stop_first=stops.get("intrabar", "stop_first") == "stop_first",
        entry_order=entries.get("order", "market"), entry_offset=entries.get("offset", 0.0),
        entry_tif_bars=entries.get("tif_bars", 1), close_at_data_end=True)
    a, factor = _masked(case)
    ref = ReferenceEngine(a["open"].tolist(), a["close"].tolist(), a["volume"].tolist(),
                          settings_, high=a["high"].tolist(), low=a["low"].tolist(),
                          delisting_factor=factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # settlements without a known return warn
        if "weights" in case:
            res = run_backtest(panel, WeightPlan(case["weights"]), **kwargs)
            out = ref.run_weights(case["weights"].tolist())
        else:
            le, lx, se, sx = case["flags"]
            res = run_backtest(panel, SignalPlan(le, lx, se, sx, size=case["size"],
                                                 size_type=case["size_type"]), **kwargs)
            size = np.broadcast_to(case["size"], case["close"].shape).tolist()
            out = ref.run_signals(le.tolist(), lx.tolist(), se.tolist(), sx.tolist(), size,
                                  case["size_type"])
    return res, out


# --- hypothesis cases -----------------------------------------------------------------
@st.composite
def ohlc_market(draw):
    close, open_, volume = draw(market())
    n_bars, n = close.shape
    if draw(st.integers(0, 2)):  # most panels complete, so positions live long enough
        close = np.where(np.isfinite(close), close, 10.0)
        open_ = np.where(np.isfinite(open_), open_, 10.0)
    if draw(st.booleans()):  # calm closes: the bars' ranges, not gaps, reach the levels
        steps = draw(st.lists(st.sampled_from([-0.01, 0.0, 0.01]), min_size=n_bars * n,
                              max_size=n_bars * n))
        calm = 10.0 * np.cumprod(1 + np.array(steps).reshape(n_bars, n), axis=0)
        close = np.where(np.isfinite(close), calm, np.nan)
        open_ = np.where(np.isfinite(open_), calm, np.nan)
    cells = n_bars * n
    # wide ranges reach the levels inside the bar, sometimes both of them
    up = np.array(draw(st.lists(st.sampled_from([0.0, 0.01, 0.04, 0.12, 0.12]), min_size=cells,
                                max_size=cells))).reshape(n_bars, n)
    down = np.array(draw(st.lists(st.sampled_from([0.0, 0.01, 0.04, 0.12, 0.12]), min_size=cells,
                                  max_size=cells))).reshape(n_bars, n)
    high = np.fmax(open_, close) * (1 + up)
    low = np.fmin(open_, close) * (1 - down)
    return dict(open=open_, high=high, low=low, close=close, volume=volume)


@st.composite
def features(draw, n_bars, n):
    out = dict(limit_policy=draw(st.sampled_from(["clip", "scale"])))
    stops = {}
    if draw(st.integers(0, 3)):
        sl = draw(st.sampled_from([None, 0.02, 0.05, 0.1]))
        tp = draw(st.sampled_from([None, 0.02, 0.05, 0.1]))
        stops = {"sl_stop": sl, "sl_trail": sl is not None and draw(st.booleans()),
                 "tp_stop": tp if tp is not None or sl is not None else 0.02,
                 "intrabar": draw(st.sampled_from(["stop_first", "target_first"]))}
    out["stops"] = stops
    entries = {}
    if draw(st.booleans()):
        entries = dict(order=draw(st.sampled_from(["limit", "stop"])),
                       offset=draw(st.sampled_from([0.0, 0.01, 0.03])),
                       tif_bars=draw(st.integers(1, 3)))
    out["entries"] = entries
    if draw(st.booleans()):
        spells = []
        for _ in range(n):
            start = draw(st.integers(0, n_bars - 1))
            end = draw(st.one_of(st.none(), st.integers(start, n_bars - 1)))
            ret = draw(st.sampled_from([None, -1.0, -0.4, 0.0, 0.15]))
            spells.append((start, end, ret))
        out["spells"] = spells
    return out


def _with_account(draw, prices):
    case = dict(prices, **draw(account(prices["volume"])))  # every fill mode
    case.update(draw(features(*prices["close"].shape)))
    return case


@st.composite
def weights_case(draw):
    case = _with_account(draw, draw(ohlc_market()))
    cells = case["close"].size
    raw = draw(st.lists(st.sampled_from([np.nan, np.nan, -1.0, -0.5, -0.3, 0.0, 0.25, 0.5,
                                         1.0]), min_size=cells, max_size=cells))
    w = np.array(raw).reshape(case["close"].shape)
    case["weights"] = _fit_rows(w, case["max_gross"], case["max_net"])
    return case


@st.composite
def signals_case(draw):
    case = _with_account(draw, draw(ohlc_market()))
    case.update(draw_signal_orders(draw, case["close"].shape))
    return case


# no shrinking: a failure is reported on the example found, so a failing run stays as
# short as a passing one (about 25 s for both tests on one idle core)
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(weights_case())
def test_weights_with_features_match_reference(case):
    compare_all(*run_both(case))


@SETTINGS
@given(signals_case())
def test_signals_with_features_match_reference(case):
    compare_all(*run_both(case))


# --- longer seeded panels: every path, deterministically ------------------------------
def seeded_case(seed):
    """40 calm bars of 3 assets with wide ranges (levels are reached inside bars, often
    both at once), one feature mix per seed, weights or signals."""
    rng = np.random.default_rng(1000 + seed)
    n_bars, n = 40, 3
    close = 20 * np.cumprod(1 + rng.normal(0, 0.01, (n_bars, n)), axis=0)
    open_ = close * (1 + rng.normal(0, 0.01, (n_bars, n)))
    high = np.fmax(open_, close) * (1 + rng.uniform(0, 0.06, (n_bars, n)))
    low = np.fmin(open_, close) * (1 - rng.uniform(0, 0.06, (n_bars, n)))
    volume = rng.uniform(20, 400, (n_bars, n)) if seed % 4 == 1 else None
    costs = Costs(commission_bps=float(rng.uniform(0, 20)), commission_fixed=0.5,
                  slippage_bps=float(rng.uniform(0, 10)), half_spread_bps=1.0,
                  borrow_fee_bps=200.0, cash_rate=0.04,
                  participation_cap=0.1 if volume is not None else None)
    case = dict(open=open_, high=high, low=low, close=close, volume=volume, costs=costs,
                capital=10_000.0, max_gross=(1.0, 1.5)[seed % 2], max_net=1.0,
                fractional=seed % 5 != 2, fill=("next_open", "next_close", "same_close")[seed % 3],
                limit_policy=("scale", "clip")[seed // 2 % 2],
                stops={"sl_stop": 0.03, "tp_stop": 0.03, "sl_trail": seed % 3 == 1,
                       "intrabar": ("stop_first", "target_first")[seed // 3 % 2]},
                entries=({} if seed % 4 == 0 else
                         {"order": ("limit", "stop")[seed % 2], "offset": 0.005,
                          "tif_bars": 1 + seed % 3}))
    if seed % 3 != 2:  # the third asset leaves early (at -40% or unknown)
        case["spells"] = [(0, None, None), (3, None, None),
                          (0, 25 + seed, (-0.4, None)[seed % 2])]
    if seed % 2:
        w = np.round(rng.uniform(-1.0, 1.0, (n_bars, n)), 2)
        w[rng.random((n_bars, n)) < 0.6] = np.nan
        case["weights"] = _fit_rows(w, case["max_gross"], case["max_net"])
    else:
        case["flags"] = tuple(rng.random((n_bars, n)) < 0.12 for _ in range(4))
        case["size_type"], case["size"] = [("weight", 0.5), ("value", 5_000.0),
                                           ("qty", 200.0)][seed % 3]
    return case


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_seeded_panels_with_features_match_reference(seed):
    compare_all(*run_both(seeded_case(seed)))


def test_the_seeded_panels_reach_every_rule():
    """The cases above are not vacuous: every trigger, both intrabar outcomes and every
    reason of the features occur in the reference's records."""
    seen = set()
    for seed in SEEDS:
        case = seeded_case(seed)
        a, factor = _masked(case)
        stops, entries = case["stops"], case["entries"]
        features_ = dict(limit_policy=case["limit_policy"], sl_stop=stops["sl_stop"],
                         tp_stop=stops["tp_stop"], sl_trail=stops["sl_trail"],
                         stop_first=stops["intrabar"] == "stop_first",
                         entry_order=entries.get("order", "market"),
                         entry_offset=entries.get("offset", 0.0),
                         entry_tif_bars=entries.get("tif_bars", 1), close_at_data_end=True)
        s = Settings.from_costs(case["costs"], PERIODS_PER_YEAR, fill=case["fill"],
                                capital=case["capital"], max_gross=case["max_gross"],
                                max_net=case["max_net"], fractional=case["fractional"],
                                **features_)
        ref = ReferenceEngine(a["open"].tolist(), a["close"].tolist(), a["volume"].tolist(),
                              s, high=a["high"].tolist(), low=a["low"].tolist(),
                              delisting_factor=factor)
        if "weights" in case:
            out = ref.run_weights(case["weights"].tolist())
        else:
            size = np.broadcast_to(case["size"], case["close"].shape).tolist()
            out = ref.run_signals(*(f.tolist() for f in case["flags"]), size,
                                  case["size_type"])
        seen |= {(f.trigger, f.ambiguous) for f in out.fills}
        seen |= {o.reason for o in out.orders}
    wanted = {("stop_loss", False), ("stop_loss", True), ("take_profit", False),
              ("take_profit", True), ("trailing_stop", False), ("trailing_stop", True),
              ("limit_entry", False), ("stop_entry", False), ("delisting", False),
              "scaled", "stopped", "expired", "cancelled", "leverage_limit", "volume_cap"}
    assert wanted <= seen, sorted(map(str, wanted - seen))


# --- hand-made cases: one rule each -----------------------------------------------------
def _flat_case(close, weights, **overrides):
    close = np.asarray(close, dtype=float)
    case = dict(open=close.copy(), high=close * 1.01, low=close * 0.99, close=close,
                volume=None, costs=Costs(), capital=10_000.0, max_gross=1.0, max_net=1.0,
                fractional=True, fill="next_open", limit_policy="scale", stops={},
                entries={}, weights=np.asarray(weights, dtype=float))
    case.update(overrides)
    return case


@pytest.mark.parametrize("fill", ["next_open", "next_close"])
def test_delisting_settles_at_the_last_member_close_times_the_return(fill):
    # A0 long, A1 short; A1 leaves after bar 3 at -40% (a gain for the short), A0's data
    # ends at bar 4 with no known return (settled at its last close)
    close = np.array([[10.0, 20.0], [11.0, 21.0], [12.0, 22.0], [13.0, 23.0], [14.0, 24.0],
                      [np.nan, 25.0], [np.nan, 26.0]])
    w = np.full(close.shape, np.nan)
    w[0] = [0.4, -0.4]
    case = _flat_case(close, w, fill=fill, spells=[(0, None, None), (0, 3, -0.4)])
    res, ref = run_both(case)
    compare_all(res, ref)
    settled = res.fills.filter(res.fills["trigger"] == "delisting").sort("asset")
    assert settled["price"].to_list() == pytest.approx([14.0, 23.0 * 0.6], rel=1e-12)
    assert res.records.positions[-1].tolist() == [0.0, 0.0]


def test_scale_fits_a_book_that_only_its_costs_push_over_the_limits():
    # a fully invested 60/40 book with costs on: one factor just below 1 on both orders
    close = np.array([[100.0, 50.0], [102.0, 49.0], [104.0, 51.0]])
    w = np.full(close.shape, np.nan)
    w[0] = [0.6, 0.4]
    costs = Costs(commission_bps=10, slippage_bps=5, half_spread_bps=0, borrow_fee_bps=0)
    res, ref = run_both(_flat_case(close, w, costs=costs))
    compare_all(res, ref)
    assert res.orders["reason"].to_list() == ["scaled", "scaled"]
