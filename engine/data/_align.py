"""Long bars -> dense :class:`~engine.panel.Panel` on the union calendar.

Bars sorted by (ts, asset) need no pivot or join: a row's bar index is a running count of
timestamp changes and its asset index its position among the sorted asset names. The
fast path reads each asset name as a key -- its Arrow string view in place, which is the
name itself when it has at most 12 bytes, else its polars hash -- and does the rest as
integer passes in numba (:mod:`engine.kernels.scatter`): check the prices (and digest the
columns for the cache) in one pass per column; a full panel (every asset on every bar)
is then proved sorted, unique and full in one pass that compares every bar's keys with
the first bar's, and each column is a reshaped copy; otherwise one pass interns the keys
into codes while laying rows out and checking the (ts, asset) order, and values scatter. Hashed names are then compared with the
name of their code, so a hash collision can never merge two assets. Whenever anything is
off, the exact path below runs instead: it validates with :func:`validate_bars` and raises
the error that names the asset, the row and the fix.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import polars as pl

from engine.errors import DataError
from engine.kernels.scatter import (
    bar_layout_nb,
    checked_digest_nb,
    fingerprint_nb,
    full_grid_nb,
    inline_views_nb,
    intern_layout_nb,
    ranges_consistent_nb,
    scatter_nb,
)
from engine.panel import Panel

from ._calendar import infer_periods_per_year
from ._columns import CANONICAL_ORDER
from ._validate import RANGE_TOLERANCE, _coerce_types, validate_bars

HASH_SEED = 0  # polars string hashes are stable within a process for a fixed seed
# Panels of recently aligned frames, by content: a notebook passes the same bars frame to
# run_backtest again and again. Small and bounded: two panels, none over 1 GiB.
CACHE_ENTRIES = 2
CACHE_MAX_BYTES = 1 << 30
_cache: OrderedDict[tuple, Panel] = OrderedDict()
_cache_lock = threading.Lock()


class AssetKeys(NamedTuple):
    """Each row's asset name as uint64 words for the kernels (see :func:`asset_keys`)."""

    words: np.ndarray  # uint64 (n_rows, 2)
    exact: bool  # the words are the names themselves; else hashes (names checked after)
    digest: int  # fingerprint_nb of the words


class _Values(NamedTuple):
    ts_ns: np.ndarray  # int64 per row
    ok: bool  # every price finite and > 0, volume finite and >= 0, ranges consistent
    digests: tuple[int, ...]  # per value column, then ts


class _Layout(NamedTuple):
    frame: pl.DataFrame  # canonical columns, coerced
    codes: np.ndarray | None  # per row: position of its asset in ``assets``; None: full grid
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
    key = layout = None
    if frame is not None:
        keys, values = asset_keys(frame["asset"]), _check_values(frame)
        if cache:
            key = (tuple((c, str(t)) for c, t in frame.schema.items()), frame.height,
                   keys.exact, keys.digest, values.digests, periods_per_year)
            with _cache_lock:
                if key in _cache:
                    _cache.move_to_end(key)
                    return _cache[key]
        if values.ok:
            layout = _fast_layout(frame, keys, values.ts_ns)
    if layout is None:
        layout = _checked_layout(bars)
    panel = _build(layout, periods_per_year)
    if key is not None:
        _remember(key, panel)
    return panel


def asset_keys(asset: pl.Series, *, exact_only: bool = False) -> AssetKeys | None:
    """The rows' names as kernel keys: their string views when every name is at most 12
    bytes (exact, no copy), else their polars hashes (None with ``exact_only``)."""
    views = _string_views(asset)
    if views is not None:
        inline, digest = inline_views_nb(views.reshape(-1), np.uint64(1))
        if inline:
            return AssetKeys(views, True, int(digest))
    return None if exact_only else hashed_keys(asset)


def hashed_keys(asset: pl.Series) -> AssetKeys:
    hashes = asset.hash(seed=HASH_SEED).to_numpy().view(np.uint64)
    words = np.zeros((hashes.shape[0], 2), np.uint64)  # the kernels take two words a key
    words[:, 0] = hashes
    return AssetKeys(words, False, int(fingerprint_nb(hashes, np.uint64(1))))


def _string_views(asset: pl.Series) -> np.ndarray | None:
    """uint64 (n, 2): the 16-byte Arrow string view of each row, read in place; None where
    the column cannot be read that way (then its names are hashed instead)."""
    compat = getattr(pl, "CompatLevel", None)
    if compat is None or sys.byteorder != "little" or asset.dtype != pl.String:
        return None
    array = (asset if asset.n_chunks() == 1 else asset.rechunk()).to_arrow(
        compat_level=compat.newest())
    if str(array.type) != "string_view" or array.null_count or len(array) == 0:
        return None
    stop = array.offset + len(array)
    words = np.frombuffer(array.buffers()[1], dtype=np.uint64, count=2 * stop)
    views = words.reshape(stop, 2)[array.offset:]
    return views if views.flags.aligned else None


def _check_values(frame: pl.DataFrame) -> _Values:
    """The value checks of the fast path and the digests of the cache key, in one pass per
    column (nulls read as NaN, so they fail the checks)."""
    digests, ok = [], True
    arrays: dict[str, np.ndarray] = {}
    for seed, column in enumerate(frame.columns[2:], start=3):
        values = np.ascontiguousarray(frame[column].to_numpy(), dtype=np.float64)
        column_ok, digest = checked_digest_nb(values, values.view(np.uint64), np.uint64(seed),
                                              column == "volume")
        ok &= bool(column_ok)
        digests.append(int(digest))
        arrays[column] = values
    if ok and "high" in arrays and "low" in arrays:
        ok = bool(ranges_consistent_nb(arrays.get("open", arrays["close"]), arrays["high"],
                                       arrays["low"], arrays["close"], RANGE_TOLERANCE))
    ts_ns = np.ascontiguousarray(frame["ts"].to_physical().to_numpy())
    digests.append(int(fingerprint_nb(ts_ns.view(np.uint64), np.uint64(2))))
    return _Values(ts_ns, ok, tuple(digests))


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
    frame = bars.select([c for c in CANONICAL_ORDER if c in bars.columns])
    if not _is_coerced(frame.schema):
        try:
            frame = _coerce_types(frame, "bars")
        except DataError:
            return None
    if frame["ts"].null_count() or frame["asset"].null_count():
        return None
    return frame


def clear_panel_cache() -> None:
    """Forget every cached panel: the next :func:`align_bars` of any frame aligns afresh
    (what a first call in a new session costs)."""
    with _cache_lock:
        _cache.clear()


def _is_coerced(schema: pl.Schema) -> bool:
    """The types :func:`_coerce_types` gives already (then it is not run: its casts would
    change nothing)."""
    ts = schema["ts"]
    return (isinstance(ts, pl.Datetime) and ts.time_unit == "ns" and schema["asset"] == pl.String
            and all(t == pl.Float64 for c, t in schema.items() if c not in ("ts", "asset")))


def _remember(key: tuple, panel: Panel) -> None:
    arrays = {id(a): a for a in (panel.open, panel.high, panel.low, panel.close, panel.volume)}
    if sum(a.nbytes for a in arrays.values()) > CACHE_MAX_BYTES:
        return
    with _cache_lock:
        _cache[key] = panel
        _cache.move_to_end(key)
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)


def _fast_layout(frame: pl.DataFrame, keys: AssetKeys, ts_ns: np.ndarray) -> _Layout | None:
    """The layout of valid bars, or None whenever the exact path must look (bad input)."""
    asset = frame["asset"]
    if keys.exact:  # the usual panel: every asset on every bar, checked without codes
        width = full_grid_nb(keys.words, ts_ns)
        if width > 0 and _strictly_increasing(names := asset.slice(0, width)):
            starts = np.arange(0, frame.height, width, dtype=np.int64)
            return _Layout(frame, None, starts, tuple(names.to_list()))
    codes, first_rows, starts, bad_row = intern_layout_nb(keys.words, ts_ns)
    names = asset.gather(first_rows)
    if not _strictly_increasing(names) or bad_row >= 0:
        # names first seen out of order: sort them, lay the rows out again
        order = names.arg_sort().to_numpy()
        names = names.gather(order)
        if not _strictly_increasing(names):
            return None  # one name under two codes (views of a name that differ)
        remap = np.empty(order.shape[0], np.uint32)
        remap[order] = np.arange(order.shape[0])
        starts, bad_row = bar_layout_nb(ts_ns, remap, codes)
        if bad_row >= 0:
            return None
    # hashed names: every row's name must be its code's name (no two names share a hash)
    if not keys.exact and not (names.gather(pl.Series(codes)) == asset).all():
        return None
    return _Layout(frame, codes, starts, tuple(names.to_list()))


def _strictly_increasing(names: pl.Series) -> bool:
    return bool((names.slice(1) > names.slice(0, names.len() - 1)).all())
