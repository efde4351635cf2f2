"""Long rows -> dense (bar, asset) cells: the numba passes behind the frame API.

``engine.data`` turns a long polars frame into panel matrices with these kernels: it hashes
the asset strings once (polars), and everything after that is integer work here -- one
pass interns the hashes into codes, one lays rows out on the calendar while checking
the (ts, asset) order, one scatters values. Every kernel reports a problem as data (the
row where it was found, or ``False``); the caller then reruns its exact, slow checks,
which name the asset, the row and the fix. So these kernels only have to be right on
valid input and to never accept invalid input.
"""

from __future__ import annotations

import numba
import numpy as np

_MIN_TABLE = 1024


@numba.njit(cache=True)
def _slot_nb(h: np.int64, mask: np.int64) -> np.int64:
    return (h ^ (h >> 29)) & mask


@numba.njit(cache=True)
def intern_hashes_nb(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, first_rows): equal hashes share a code, numbered in order of first sight.

    ``hashes`` is int64 (a uint64 hash viewed as int64); codes are uint32 (polars' index
    type, so a Series of them needs no cast); ``first_rows[c]`` is the first row holding
    code ``c``. An open-addressing table that doubles at half load.
    """
    n = hashes.shape[0]
    cap = _MIN_TABLE
    keys = np.empty(cap, np.int64)
    vals = np.full(cap, -1, np.int64)
    codes = np.empty(n, np.uint32)
    first_rows = np.empty(64, np.int64)
    n_unique = 0
    for i in range(n):
        h = hashes[i]
        mask = cap - 1
        slot = _slot_nb(h, mask)
        while vals[slot] >= 0 and keys[slot] != h:
            slot = (slot + 1) & mask
        if vals[slot] >= 0:
            codes[i] = vals[slot]
            continue
        keys[slot] = h
        vals[slot] = n_unique
        codes[i] = n_unique
        if n_unique == first_rows.shape[0]:
            grown = np.empty(2 * n_unique, np.int64)
            grown[:n_unique] = first_rows
            first_rows = grown
        first_rows[n_unique] = i
        n_unique += 1
        if 2 * n_unique > cap:
            old_keys, old_vals = keys, vals
            cap *= 2
            mask = cap - 1
            keys = np.empty(cap, np.int64)
            vals = np.full(cap, -1, np.int64)
            for s in range(old_vals.shape[0]):
                if old_vals[s] >= 0:
                    k = old_keys[s]
                    t = _slot_nb(k, mask)
                    while vals[t] >= 0:
                        t = (t + 1) & mask
                    keys[t] = k
                    vals[t] = old_vals[s]
    return codes, first_rows[:n_unique].copy()


@numba.njit(cache=True)
def intern_layout_nb(hashes: np.ndarray, ts_ns: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.int64]:
    """:func:`intern_hashes_nb` and the calendar layout in one pass, for the usual case.

    Returns (codes, first_rows, bar_starts, bad_row). ``bad_row`` is the first row where
    the timestamps go backwards or, within a bar, the first-sight codes do not increase;
    -1 when there is none. When the names in first-sight order are also sorted (every
    asset present from the first bar, the common case), first-sight codes are the sorted
    positions, ``bad_row == -1`` proves the (ts, asset) order and no second pass is needed.
    """
    codes, first_rows = intern_hashes_nb(hashes)
    n = ts_ns.shape[0]
    starts = np.empty(1024, np.int64)
    n_bars = 1
    starts[0] = 0
    for i in range(1, n):
        if ts_ns[i] > ts_ns[i - 1]:
            if n_bars == starts.shape[0]:
                grown = np.empty(2 * n_bars, np.int64)
                grown[:n_bars] = starts
                starts = grown
            starts[n_bars] = i
            n_bars += 1
        elif ts_ns[i] < ts_ns[i - 1] or codes[i] <= codes[i - 1]:
            return codes, first_rows, starts[:n_bars].copy(), np.int64(i)
    return codes, first_rows, starts[:n_bars].copy(), np.int64(-1)


@numba.njit(cache=True)
def lookup_hashes_nb(table_hashes: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Position of each of ``hashes`` in ``table_hashes`` (distinct), -1 when absent."""
    cap = _MIN_TABLE
    while cap < 2 * table_hashes.shape[0]:
        cap *= 2
    mask = cap - 1
    keys = np.empty(cap, np.int64)
    vals = np.full(cap, -1, np.int64)
    for j in range(table_hashes.shape[0]):
        k = table_hashes[j]
        slot = _slot_nb(k, mask)
        while vals[slot] >= 0:
            slot = (slot + 1) & mask
        keys[slot] = k
        vals[slot] = j
    out = np.empty(hashes.shape[0], np.int64)
    for i in range(hashes.shape[0]):
        h = hashes[i]
        slot = _slot_nb(h, mask)
        while vals[slot] >= 0 and keys[slot] != h:
            slot = (slot + 1) & mask
        out[i] = vals[slot]
    return out


@numba.njit(cache=True)
def bar_layout_nb(ts_ns: np.ndarray, remap: np.ndarray, codes: np.ndarray
                  ) -> tuple[np.ndarray, np.int64]:
    """(bar_starts, bad_row) of rows sorted by (ts, asset), unique.

    ``codes`` are rewritten in place through ``remap`` (first-sight code -> sorted-name
    code). A new bar starts wherever the timestamp changes; ``bar_starts`` holds the first
    row of each bar. ``bad_row`` is the first row that breaks the strict (ts, asset) order
    (a duplicate or an unsorted row), -1 when none does.
    """
    n = ts_ns.shape[0]
    starts = np.empty(1024, np.int64)
    n_bars = 1
    starts[0] = 0
    codes[0] = remap[codes[0]]
    for i in range(1, n):
        c = remap[codes[i]]
        codes[i] = c
        if ts_ns[i] > ts_ns[i - 1]:
            if n_bars == starts.shape[0]:
                grown = np.empty(2 * n_bars, np.int64)
                grown[:n_bars] = starts
                starts = grown
            starts[n_bars] = i
            n_bars += 1
        elif ts_ns[i] < ts_ns[i - 1] or c <= codes[i - 1]:
            return starts[:n_bars].copy(), np.int64(i)
    return starts[:n_bars].copy(), np.int64(-1)


@numba.njit(cache=True)
def scatter_nb(bar_starts: np.ndarray, codes: np.ndarray, values: np.ndarray,
               n_assets: int) -> np.ndarray:
    """float64 (n_bars, n_assets): NaN, except row i's value in its (bar, asset) cell.

    Rows ``bar_starts[b]`` up to the next start belong to bar ``b``.
    """
    n_bars = bar_starts.shape[0]
    out = np.full((n_bars, n_assets), np.nan)
    for b in range(n_bars):
        stop = bar_starts[b + 1] if b + 1 < n_bars else values.shape[0]
        for i in range(bar_starts[b], stop):
            out[b, codes[i]] = values[i]
    return out


@numba.njit(cache=True)
def all_positive_finite_nb(values: np.ndarray) -> bool:
    ok = True
    for x in values:  # no early exit: the loop vectorises; NaN fails the comparisons
        ok &= (x > 0.0) & (x < np.inf)
    return ok


@numba.njit(cache=True)
def all_nonnegative_finite_nb(values: np.ndarray) -> bool:
    ok = True
    for x in values:
        ok &= (x >= 0.0) & (x < np.inf)
    return ok


@numba.njit(cache=True)
def ranges_consistent_nb(open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                         close: np.ndarray, tolerance: float) -> bool:
    """``low <= high`` and open and close inside ``[low, high]`` up to a relative slack."""
    for i in range(high.shape[0]):
        hi = high[i]
        lo = low[i]
        upper = hi * (1.0 + tolerance)
        lower = lo * (1.0 - tolerance)
        if hi < lo or open_[i] > upper or open_[i] < lower or close[i] > upper \
                or close[i] < lower:
            return False
    return True


@numba.njit(cache=True)
def is_nondecreasing_nb(values: np.ndarray) -> bool:
    for i in range(1, values.shape[0]):
        if values[i] < values[i - 1]:
            return False
    return True


@numba.njit(cache=True)
def place_asof_nb(ts_ns: np.ndarray, codes: np.ndarray, values: np.ndarray,
                  bar_ns: np.ndarray, allow_nan: bool, out: np.ndarray) -> np.int64:
    """Write rows sorted by ts onto the first bar at or after their ts; latest row wins.

    Returns the first row that cannot be placed -- an unknown asset (code -1), a ts after
    the last bar, a duplicate (ts, asset), an infinite value, or NaN unless ``allow_nan``
    -- or -1 when every row was placed.
    """
    n_bars = bar_ns.shape[0]
    last_ts = np.empty(out.shape[1], np.int64)
    seen = np.zeros(out.shape[1], np.bool_)
    bar = 0
    for i in range(ts_ns.shape[0]):
        t = ts_ns[i]
        c = codes[i]
        v = values[i]
        if c < 0 or t > bar_ns[n_bars - 1] or np.isinf(v) or (np.isnan(v) and not allow_nan):
            return np.int64(i)
        if seen[c] and last_ts[c] == t:
            return np.int64(i)
        seen[c] = True
        last_ts[c] = t
        while bar_ns[bar] < t:
            bar += 1
        out[bar, c] = v
    return np.int64(-1)


@numba.njit(cache=True)
def _mix_nb(x: np.uint64) -> np.uint64:
    # splitmix64's finaliser: every input bit moves about half the output bits
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@numba.njit(cache=True)
def fingerprint_nb(words: np.ndarray, seed: np.uint64) -> np.uint64:
    """A 64-bit digest of a uint64 array that depends on every word and its position.

    A sum of independently mixed (word, position) pairs, so the loop has no carried
    dependency beyond one addition and runs at memory speed.
    """
    acc = _mix_nb(seed ^ np.uint64(words.shape[0]))
    golden = np.uint64(0x9E3779B97F4A7C15)
    for i in range(words.shape[0]):
        acc += _mix_nb(words[i] ^ (np.uint64(i) * golden + seed))
    return acc
