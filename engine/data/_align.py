"""Long bars -> dense :class:`~engine.panel.Panel` on the union calendar.

Bars sorted by (ts, asset) need no pivot or join: a row's bar index is a running count of
timestamp changes and its asset index its position among the sorted asset names. The
fast path hashes the asset strings once (polars) and does the rest as integer passes in
numba (:mod:`engine.kernels.scatter`): intern the hashes, check the (ts, asset) order while
laying rows out, check the prices, scatter. Then every row's name is compared with the name
of its code, so a hash collision can never merge two assets. Whenever anything is off, the
exact path below runs instead: it validates with :func:`validate_bars` and raises the error
that names the asset, the row and the fix. 500 assets x 8,313 bars take about 50 ms.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import polars as pl

from engine.errors import DataError
from engine.kernels.scatter import (
    all_nonnegative_finite_nb,
    all_positive_finite_nb,
    bar_layout_nb,
    fingerprint_nb,
    intern_layout_nb,
    ranges_consistent_nb,
    scatter_nb,
)
from engine.panel import Panel

from ._calendar import infer_periods_per_year
from ._columns import CANONICAL_ORDER, PRICE_COLUMNS
from ._validate import RANGE_TOLERANCE, _coerce_types, validate_bars

HASH_SEED = 0  # polars string hashes are stable within a process for a fixed seed
# Panels of recently aligned frames, by content: a notebook passes the same bars frame to
# run_backtest again and again. Small and bounded: two panels, none over 1 GiB.
CACHE_ENTRIES = 2
CACHE_MAX_BYTES = 1 << 30
_cache: OrderedDict[tuple, Panel] = OrderedDict()
_cache_lock = threading.Lock()


class _Layout(NamedTuple):
    frame: pl.DataFrame  # canonical columns, coerced
    codes: np.ndarray  # per row: position of the row's asset in ``assets``
    bar_starts: np.ndarray  # first row of each bar
    assets: tuple[str, ...]


def align_bars(bars: pl.DataFrame, *, periods_per_year: float | None = None,
               cache: bool = True) -> Panel:
    """Validate long bars and lay them out on the union of all assets' timestamps.

    A cell where an asset has no bar is NaN in every matrix: it is never forward-filled, so
    the engine can value a position with the last close but never trade on a stale price.
    Assets are ordered alphabetically. Missing columns are filled from what exists:
    ``open = close`` (and ``has_open=False``, so fills happen at the next close),
    ``high = max(open, close)``, ``low = min(open, close)``, ``volume`` all NaN; for
    close-only data open, high and low are the close matrix itself (one array).
    ``periods_per_year`` defaults to :func:`engine.data.infer_periods_per_year` of the
    calendar. Time-zone-aware timestamps become UTC instants in ``Panel.ts``
    (``datetime64[ns]`` has no zone). Raises DataError for everything
    :func:`validate_bars` rejects, with the same message.

    With ``cache`` (the default) the panels of the last two frames are kept, keyed by a
    digest of every value of every column used (not by identity, so a frame changed in
    place is aligned afresh), and the same content returns the same Panel object. Do not
    write into a panel's arrays.
    """
    frame = _canonical(bars)
    hashes = key = None
    if frame is not None:
        hashes = frame["asset"].hash(seed=HASH_SEED).to_numpy().view(np.int64)
        if cache:
            key = _content_key(frame, hashes, periods_per_year)
            with _cache_lock:
                if key in _cache:
                    _cache.move_to_end(key)
                    return _cache[key]
    layout = None if frame is None else _fast_layout(frame, hashes)
    if layout is None:
        layout = _checked_layout(bars)
    panel = _build(layout, periods_per_year)
    if key is not None:
        _remember(key, panel)
    return panel


def _build(layout: _Layout, periods_per_year: float | None) -> Panel:
    frame, codes, starts, assets = layout
    shape = (starts.shape[0], len(assets))
    full = frame.height == shape[0] * shape[1]  # sorted and unique: row i is cell i

    def matrix(column: str) -> np.ndarray:
        values = frame[column].to_numpy()
        if full:
            return np.array(values, dtype=np.float64).reshape(shape)  # a writable copy
        return scatter_nb(starts, codes, np.ascontiguousarray(values, dtype=np.float64),
                          shape[1])

    close = matrix("close")
    has_open = "open" in frame.columns
    # close-only data: open, and high/low = max/min(open, close), are the close matrix
    # itself (one array, as in the benchmarks' panels; nothing writes into a panel)
    open_ = matrix("open") if has_open else close

    def bound(column: str, reduce: np.ufunc) -> np.ndarray:
        if column in frame.columns:
            return matrix(column)
        return reduce(open_, close) if has_open else close

    high, low = bound("high", np.fmax), bound("low", np.fmin)
    volume = matrix("volume") if "volume" in frame.columns else np.full(shape, np.nan)
    calendar = frame["ts"].gather(starts)
    if periods_per_year is None:
        periods_per_year = infer_periods_per_year(calendar)
    return Panel(
        ts=calendar.to_physical().to_numpy().view("datetime64[ns]"),
        assets=assets,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        periods_per_year=float(periods_per_year),
        has_open=has_open,
    )


def _checked_layout(bars: pl.DataFrame) -> _Layout:
    """The exact path: full validation (raises the precise error), then an Enum scatter."""
    frame = validate_bars(bars)
    ts_ns = frame["ts"].to_physical().to_numpy()
    new_bar = np.empty(ts_ns.shape[0], dtype=bool)
    new_bar[0] = True
    np.not_equal(ts_ns[1:], ts_ns[:-1], out=new_bar[1:])
    assets = tuple(frame.select(pl.col("asset").unique().sort()).to_series().to_list())
    # An Enum over the sorted names turns each string into its sorted position in one pass.
    codes = frame.select(pl.col("asset").cast(pl.Enum(assets)).to_physical()).to_series()
    return _Layout(frame, codes.to_numpy().astype(np.int64), np.flatnonzero(new_bar), assets)


def _canonical(bars: pl.DataFrame) -> pl.DataFrame | None:
    """The canonical columns, coerced; None when the exact path must look (bad input)."""
    if not isinstance(bars, pl.DataFrame) or bars.height == 0:
        return None
    if any(c not in bars.columns for c in ("ts", "asset", "close")):
        return None
    try:
        frame = _coerce_types(bars.select([c for c in CANONICAL_ORDER if c in bars.columns]),
                              "bars")
    except DataError:
        return None
    if frame["ts"].null_count() or frame["asset"].null_count():
        return None
    return frame


def _content_key(frame: pl.DataFrame, hashes: np.ndarray, periods_per_year: float | None
                 ) -> tuple:
    """Schema, height and a 64-bit digest per column of every value (nulls read as NaN)."""
    digests = [int(fingerprint_nb(hashes.view(np.uint64), np.uint64(1)))]
    for seed, column in enumerate(frame.columns[2:], start=3):
        words = np.ascontiguousarray(frame[column].to_numpy(), dtype=np.float64)
        digests.append(int(fingerprint_nb(words.view(np.uint64), np.uint64(seed))))
    ts_words = np.ascontiguousarray(frame["ts"].to_physical().to_numpy()).view(np.uint64)
    digests.append(int(fingerprint_nb(ts_words, np.uint64(2))))
    return (tuple((c, str(t)) for c, t in frame.schema.items()), frame.height,
            tuple(digests), periods_per_year)


def _remember(key: tuple, panel: Panel) -> None:
    arrays = {id(a): a for a in (panel.open, panel.high, panel.low, panel.close, panel.volume)}
    if sum(a.nbytes for a in arrays.values()) > CACHE_MAX_BYTES:
        return
    with _cache_lock:
        _cache[key] = panel
        _cache.move_to_end(key)
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)


def _fast_layout(frame: pl.DataFrame, hashes: np.ndarray) -> _Layout | None:
    """The layout of valid bars, or None whenever the exact path must look (bad input)."""
    if not _values_ok(frame):
        return None
    asset = frame["asset"]
    ts_ns = np.ascontiguousarray(frame["ts"].to_physical().to_numpy())
    codes, first_rows, starts, bad_row = intern_layout_nb(hashes, ts_ns)
    names = asset.gather(first_rows)
    in_order = bool((names.slice(1) > names.slice(0, names.len() - 1)).all())
    if not in_order or bad_row >= 0:  # names first seen out of order: sort, check again
        order = names.arg_sort().to_numpy()
        names = names.gather(order)
        remap = np.empty(order.shape[0], np.uint32)
        remap[order] = np.arange(order.shape[0])
        starts, bad_row = bar_layout_nb(ts_ns, remap, codes)
        if bad_row >= 0:
            return None
    # exact: every row's name is its code's name (no two names share a code)
    if not (names.gather(pl.Series(codes)) == asset).all():
        return None
    return _Layout(frame, codes, starts, tuple(names.to_list()))


def _values_ok(frame: pl.DataFrame) -> bool:
    cols = frame.columns
    arrays = {c: np.ascontiguousarray(frame[c].to_numpy()) for c in cols[2:]}  # nulls: NaN
    for column in PRICE_COLUMNS:
        if column in arrays and not all_positive_finite_nb(arrays[column]):
            return False
    if "volume" in arrays and not all_nonnegative_finite_nb(arrays["volume"]):
        return False
    if "high" in arrays and "low" in arrays:
        return bool(ranges_consistent_nb(arrays.get("open", arrays["close"]), arrays["high"],
                                         arrays["low"], arrays["close"], RANGE_TOLERANCE))
    return True
