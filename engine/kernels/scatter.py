"""Long rows -> dense (bar, asset) cells: the numba passes behind the frame API.

``engine.data`` turns a long polars frame into panel matrices with these kernels. An asset
name enters as a key of uint64 words: its Arrow string view (16 bytes, the name itself
when it is at most 12 bytes long) or, for longer names, its polars hash. Everything after
that is integer work here -- one pass interns the keys into codes while laying rows out on
the calendar and checking the (ts, asset) order, one scatters values. Every kernel reports
a problem as data (the row where it was found, or ``False``); the caller then reruns its
exact, slow checks, which name the asset, the row and the fix. So these kernels only have
to be right on valid input and to never accept invalid input.
"""

from __future__ import annotations

import numba
import numpy as np

_MIN_TABLE = 1024
_INLINE_BYTES = 12  # an Arrow string view holds a string this short inside its 16 bytes
_LENGTH_MASK = np.uint64(0xFFFFFFFF)
_INLINE_BYTES_U = np.uint64(_INLINE_BYTES)


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
def _slot_nb(a: np.uint64, b: np.uint64, mask: np.int64) -> np.int64:
    return np.int64(_mix_nb(a ^ _mix_nb(b)) & np.uint64(mask))


@numba.njit(cache=True)
def _doubled_nb(values: np.ndarray) -> np.ndarray:
    out = np.empty(2 * values.shape[0], values.dtype)
    out[: values.shape[0]] = values
    return out


@numba.njit(cache=True)
def _table_nb(key0: np.ndarray, key1: np.ndarray, n_keys: int, cap: int) -> np.ndarray:
    """Open-addressing table of ``cap`` slots (a power of two): slot -> key index, -1 empty."""
    table = np.full(cap, -1, np.int64)
    mask = cap - 1
    for c in range(n_keys):
        slot = _slot_nb(key0[c], key1[c], mask)
        while table[slot] >= 0:
            slot = (slot + 1) & mask
        table[slot] = c
    return table


@numba.njit(cache=True)
def intern_layout_nb(keys: np.ndarray, ts_ns: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.int64]:
    """Intern the rows' asset keys into codes and lay the rows out on the calendar, one pass.

    ``keys`` is uint64 ``(n_rows, 2)``: equal rows share a code, numbered in order of first
    sight (uint32, polars' index type). Returns (codes, first_rows, bar_starts, bad_row):
    ``first_rows[c]`` is the first row holding code ``c``, ``bar_starts`` the first row of
    each bar (a new bar wherever ``ts_ns`` increases). ``bad_row`` is the first row where
    the timestamps go backwards or, within a bar, the codes do not increase; -1 when there
    is none (then the layout is final), else only the codes are complete.
    """
    n = keys.shape[0]
    codes = np.empty(n, np.uint32)
    first_rows = np.empty(64, np.int64)
    key0 = np.empty(64, np.uint64)
    key1 = np.empty(64, np.uint64)
    table = np.full(_MIN_TABLE, -1, np.int64)
    starts = np.empty(1024, np.int64)
    state = np.array([0, 0, -1], np.int64)  # n_unique, n_bars, bad_row
    row = 0
    while True:  # the pass stops when an array is full; grow it here and resume
        row = _intern_rows_nb(keys, ts_ns, row, codes, first_rows, key0, key1, table, starts,
                              state)
        if row == n:
            break
        n_unique = state[0]
        if state[1] == starts.shape[0]:
            starts = _doubled_nb(starts)
        if n_unique == key0.shape[0]:
            first_rows = _doubled_nb(first_rows)
            key0 = _doubled_nb(key0)
            key1 = _doubled_nb(key1)
        if 2 * (n_unique + 1) > table.shape[0]:
            table = _table_nb(key0, key1, n_unique, 2 * table.shape[0])
    return codes, first_rows[: state[0]].copy(), starts[: state[1]].copy(), state[2]


@numba.njit(cache=True)
def _intern_rows_nb(keys: np.ndarray, ts_ns: np.ndarray, row: int, codes: np.ndarray,
                    first_rows: np.ndarray, key0: np.ndarray, key1: np.ndarray,
                    table: np.ndarray, starts: np.ndarray, state: np.ndarray) -> int:
    """:func:`intern_layout_nb` from ``row`` on, until the end or an array is full (then
    the row to resume at). Arrays are never rebound inside the loop, so numba keeps no
    reference counts in it.

    A row's code is first guessed as the one after the previous row's (wrapping to 0): in
    bars sorted by (ts, asset) that is right for every row of a full panel after its first
    bar, so the hash table is probed only for new names and gaps.
    """
    n_unique, n_bars, bad_row = state[0], state[1], state[2]
    mask = table.shape[0] - 1
    code = np.int64(codes[row - 1]) if row > 0 else np.int64(-1)
    i = row
    while i < keys.shape[0]:
        if n_bars == starts.shape[0] or n_unique == key0.shape[0] \
                or 2 * (n_unique + 1) > table.shape[0]:
            break  # room for one more bar and one more name, always
        a = keys[i, 0]
        b = keys[i, 1]
        code += 1
        if code >= n_unique:
            code = 0
        if n_unique == 0 or key0[code] != a or key1[code] != b:
            slot = _slot_nb(a, b, mask)
            while table[slot] >= 0 and (key0[table[slot]] != a or key1[table[slot]] != b):
                slot = (slot + 1) & mask
            code = table[slot]
            if code < 0:
                code = n_unique
                first_rows[code] = i
                key0[code] = a
                key1[code] = b
                table[slot] = code
                n_unique += 1
        codes[i] = code
        if bad_row < 0:
            if i == 0 or ts_ns[i] > ts_ns[i - 1]:
                starts[n_bars] = i
                n_bars += 1
            elif ts_ns[i] < ts_ns[i - 1] or code <= codes[i - 1]:
                bad_row = i
        i += 1
    state[0], state[1], state[2] = n_unique, n_bars, bad_row
    return i


@numba.njit(cache=True)
def full_grid_nb(keys: np.ndarray, ts_ns: np.ndarray) -> int:
    """The width of a full grid, or -1: rows in blocks of the first bar's width, every
    block at one timestamp later than the block before, and every row's key equal to the
    key of the row at its position in the first block. With exact keys and the first
    block's names strictly increasing (the caller checks those few names) this proves the
    rows sorted by (ts, asset), unique, every asset on every bar: no codes are needed.
    """
    n = keys.shape[0]
    width = 1
    while width < n and ts_ns[width] == ts_ns[0]:
        width += 1
    if n % width:
        return -1
    ok = True
    for start in range(width, n, width):  # no early exit: the inner loop vectorises
        t = ts_ns[start]
        ok &= t > ts_ns[start - width]
        for j in range(width):
            i = start + j
            ok &= (ts_ns[i] == t) & (keys[i, 0] == keys[j, 0]) & (keys[i, 1] == keys[j, 1])
        if not ok:
            return -1
    return width


@numba.njit(cache=True)
def lookup_keys_nb(table_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each row of ``keys`` among the rows of ``table_keys`` (distinct), -1 when
    absent. Both uint64 ``(n, 2)``; the row after the previous match is tried first."""
    n_table = table_keys.shape[0]
    key0 = np.ascontiguousarray(table_keys[:, 0])
    key1 = np.ascontiguousarray(table_keys[:, 1])
    cap = _MIN_TABLE
    while cap < 2 * n_table:
        cap *= 2
    table = _table_nb(key0, key1, n_table, cap)
    mask = cap - 1
    out = np.empty(keys.shape[0], np.int64)
    code = np.int64(-1)
    for i in range(keys.shape[0]):
        a = keys[i, 0]
        b = keys[i, 1]
        code += 1
        if code >= n_table:
            code = 0
        if n_table == 0 or key0[code] != a or key1[code] != b:
            slot = _slot_nb(a, b, mask)
            while table[slot] >= 0 and (key0[table[slot]] != a or key1[table[slot]] != b):
                slot = (slot + 1) & mask
            code = table[slot]
        out[i] = code
    return out


@numba.njit(cache=True)
def inline_views_nb(words: np.ndarray, seed: np.uint64) -> tuple[bool, np.uint64]:
    """(every view is inline, digest) of Arrow string views: ``words`` is their uint64
    words, two per view, flat.

    A view's first 4 bytes (little-endian) are the string's length; a string of at most 12
    bytes sits in the remaining 12, so its 16 bytes are the string itself. A longer one
    points into a data buffer and its view says nothing exact about its bytes. The digest
    is :func:`fingerprint_nb` of the words, a content digest only when all are inline.
    """
    acc = _mix_nb(seed ^ np.uint64(words.shape[0]))
    golden = np.uint64(0x9E3779B97F4A7C15)
    inline = True
    for i in range(words.shape[0]):  # one pass: the check and the digest read the same words
        w = words[i]
        inline &= ((w & _LENGTH_MASK) <= _INLINE_BYTES_U) | ((i & 1) == 1)
        acc += _mix_nb(w ^ (np.uint64(i) * golden + seed))
    return inline, acc


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
def checked_digest_nb(values: np.ndarray, words: np.ndarray, seed: np.uint64,
                      allow_zero: bool) -> tuple[bool, np.uint64]:
    """(every value finite and > 0 -- >= 0 with ``allow_zero`` --, digest) in one pass.

    ``words`` is ``values`` viewed as uint64; the digest is :func:`fingerprint_nb` of it.
    """
    acc = _mix_nb(seed ^ np.uint64(words.shape[0]))
    golden = np.uint64(0x9E3779B97F4A7C15)
    ok = True
    for i in range(values.shape[0]):  # no early exit: NaN fails both comparisons
        x = values[i]
        ok &= ((x > 0.0) | (allow_zero & (x == 0.0))) & (x < np.inf)
        acc += _mix_nb(words[i] ^ (np.uint64(i) * golden + seed))
    return ok, acc


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
