"""Numba kernels of the RL environment: one call per env step.

``env_step_nb`` maps the action to target weights, advances the book with the engine's
own ``step_nb`` (so fills, costs and limits are exactly those of ``run_backtest``),
computes the reward and builds the next observation. Crossing from Python into numba
costs microseconds, so a step makes exactly one such crossing; scalar settings travel in
one float64 array and the episode's running state in another.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels import (
    Book,
    Records,
    SimParams,
    TargetKind,
    borrow_nb,
    borrow_rows_nb,
    step_nb,
)

# settings[...] slots
S_LONG_ONLY, S_MAX_GROSS, S_MAX_NET, S_THRESHOLD = 0, 1, 2, 3
S_REWARD_KIND, S_REWARD_SCALE, S_DD_PENALTY, S_TO_PENALTY, S_ETA, S_OBS_CLIP = 4, 5, 6, 7, 8, 9
S_SPEED = 10
N_SETTINGS = 11
# state[...] slots
X_EQUITY, X_PEAK, X_DRAWDOWN, X_SHARPE_A, X_SHARPE_B = 0, 1, 2, 3, 4
N_STATE = 5
# reward kinds and step status codes
REWARD_LOG, REWARD_DSR = 0, 1
STATUS_OK, STATUS_NAN_ACTION, STATUS_BANKRUPT = 0, 1, 2


@njit(cache=True)
def map_action_nb(action, tradable, current, long_only, max_gross, max_net, threshold, speed,
                  out):
    """Target weights for ``action``; NaN = no instruction (hold).

    Actions are clipped to [-1, 1] (the action space), made long-only as ``(a + 1) / 2``
    when asked, then scaled down -- never up -- so gross exposure <= ``max_gross`` and
    |net| <= ``max_net`` (the side in excess is shrunk). The book then moves ``speed`` of
    the way from the current weights to those (1 = all the way). Assets without a price
    at the decision bar get no instruction, nor do weights within ``threshold`` of the
    current weight. Returns False when the action holds a NaN (nothing is written then).
    """
    n = action.shape[0]
    for j in range(n):
        if not np.isfinite(action[j]):
            return False
    gross = 0.0
    for j in range(n):
        a = min(1.0, max(-1.0, float(action[j])))
        w = 0.5 * (a + 1.0) if long_only else a
        if not tradable[j]:
            w = 0.0
        out[j] = w
        gross += abs(w)
    if gross > max_gross:
        f = max_gross / gross
        for j in range(n):
            out[j] *= f
    pos = 0.0
    neg = 0.0
    for j in range(n):
        if out[j] > 0.0:
            pos += out[j]
        else:
            neg -= out[j]
    if pos - neg > max_net:
        f = (max_net + neg) / pos
        for j in range(n):
            if out[j] > 0.0:
                out[j] *= f
    elif neg - pos > max_net:
        f = (max_net + pos) / neg
        for j in range(n):
            if out[j] < 0.0:
                out[j] *= f
    if speed < 1.0:
        for j in range(n):
            if tradable[j]:
                out[j] = current[j] + speed * (out[j] - current[j])
    for j in range(n):
        if not tradable[j] or abs(out[j] - current[j]) < threshold:
            out[j] = np.nan
    return True


@njit(cache=True)
def observe_nb(t, features, book, state, obs_clip):
    """Observation at the close of bar ``t`` (float32, clipped to ``obs_clip``)."""
    obs = np.empty(features.shape[1] + book.qty.shape[0] + 2, dtype=np.float32)
    observe_into_nb(t, features, book, state, obs_clip, obs)
    return obs


@njit(cache=True)
def observe_into_nb(t, features, book, state, obs_clip, obs):
    """:func:`observe_nb` written into ``obs`` (a row of a vectorised env's batch)."""
    book = borrow_nb(book)
    row = features[t]
    m = row.shape[0]
    n = book.qty.shape[0]
    for i in range(m):  # an element loop: a slice copy would make every call refcount
        obs[i] = row[i]
    equity = state[X_EQUITY]
    for j in range(n):
        w = 0.0
        q = book.qty[j]
        if q != 0.0 and equity > 0.0:
            w = q * book.last_price[j] / equity
        obs[m + j] = min(obs_clip, max(-obs_clip, w))
    cash = book.cash[0] / equity if equity > 0.0 else 0.0
    obs[m + n] = min(obs_clip, max(-obs_clip, cash))
    obs[m + n + 1] = max(-obs_clip, -state[X_DRAWDOWN])


@njit(cache=True)
def reset_nb(t, close, volume, features, book, params, recs, state, obs_clip):
    """Start an episode flat at the close of bar ``t`` (what run_backtest does at bar 0)."""
    book = borrow_nb(book)
    recs = borrow_nb(recs)
    n = close.shape[1]
    recs.traded[t] = 0.0  # per-bar sums the engine adds to; bars recur across episodes
    recs.fees[t] = 0.0
    c = close[t]
    step_nb(t, -1, c, c, c, c, c, volume[t], np.zeros(n, dtype=np.int64), np.zeros(n), book,
            params, recs)
    equity = recs.equity[t]
    state[X_EQUITY] = equity
    state[X_PEAK] = equity
    state[X_DRAWDOWN] = 0.0
    state[X_SHARPE_A] = 0.0
    state[X_SHARPE_B] = 0.0
    return observe_nb(t, features, book, state, obs_clip)


@njit(cache=True)
def env_step_nb(action, t, arrays, book_fields, recs_fields, params_fields):
    """Decide at the close of ``t``, fill at ``t + 1``.

    ``arrays`` = (settings, state, fill_price, close, volume, features, weights_log,
    tradable, current, kind, bar_range) -- tradable, current and kind are scratch space
    reused every step, bar_range the (3, bars, assets) opens, highs and lows; the
    book, records and params come as plain tuples of their fields (numba types a plain
    tuple in C but a NamedTuple in Python, several microseconds per call) and are rebuilt
    here. The target weights sent are written to ``weights_log`` (NaN = no instruction).
    Orders and fills are kept for this step only. Returns (obs, reward, status, equity,
    drawdown, turnover).
    """
    (settings, state, fill_price, close, volume, features, weights_log, tradable, current, kind,
     bar_range) = arrays
    # borrowed views: no reference counting on the ~32 arrays (engine.kernels.views)
    book = Book(*borrow_nb(book_fields))
    recs = Records(*borrow_nb(recs_fields))
    # the log has a row per bar, or a single scratch row when weights are not recorded
    target = weights_log[t] if weights_log.shape[0] > 1 else weights_log[0]
    obs = np.empty(features.shape[1] + book.qty.shape[0] + 2, dtype=np.float32)
    reward, status, equity, drawdown, turnover = advance_nb(
        action, t, settings, state, fill_price, close, volume, features, target, tradable,
        current, kind, book, SimParams(*params_fields), recs, obs, bar_range)
    if status == STATUS_NAN_ACTION:
        return np.empty(0, dtype=np.float32), reward, status, equity, drawdown, turnover
    return obs, reward, status, equity, drawdown, turnover


@njit(cache=True)
def advance_nb(action, t, settings, state, fill_price, close, volume, features, target,
               tradable, current, kind, book, params, recs, obs, bar_range):
    """One env step on one book: the body shared by the single and the vectorised env.

    ``bar_range`` (3, bars, assets) holds the opens, highs and lows the stops are checked on.

    Writes the target weights into ``target`` and the next observation into ``obs``;
    returns (reward, status, equity, drawdown, turnover).
    """
    book = borrow_nb(book)
    recs = borrow_nb(recs)
    book.counts[:] = 0
    n = close.shape[1]
    equity0 = state[X_EQUITY]
    for j in range(n):
        tradable[j] = np.isfinite(close[t, j])
        q = book.qty[j]
        current[j] = q * book.last_price[j] / equity0 if (q != 0.0 and equity0 > 0.0) else 0.0
    ok = map_action_nb(action, tradable, current, settings[S_LONG_ONLY] > 0.5,
                       settings[S_MAX_GROSS], settings[S_MAX_NET], settings[S_THRESHOLD],
                       settings[S_SPEED], target)
    if not ok:
        return 0.0, STATUS_NAN_ACTION, equity0, 0.0, 0.0
    for j in range(n):
        kind[j] = TargetKind.NoTarget if np.isnan(target[j]) else TargetKind.Weight
    bar = t + 1
    recs.traded[bar] = 0.0  # per-bar sums the engine adds to; bars recur across episodes
    recs.fees[bar] = 0.0
    step_nb(bar, t, fill_price[bar], bar_range[0, bar], bar_range[1, bar], bar_range[2, bar],
            close[bar], volume[bar], kind, target, book, params, recs)

    equity1 = recs.equity[bar]
    status = STATUS_OK
    if equity1 <= 0.0:
        status = STATUS_BANKRUPT
    ratio = equity1 / equity0 if equity0 > 0.0 else 0.0
    log_ret = np.log(max(ratio, 1e-6))
    peak = max(state[X_PEAK], equity1)
    drawdown = 1.0 - equity1 / peak if peak > 0.0 else 1.0
    dd_increase = max(0.0, drawdown - state[X_DRAWDOWN])
    turnover = recs.traded[bar] / equity0 if equity0 > 0.0 else 0.0

    if settings[S_REWARD_KIND] == REWARD_DSR:
        a_prev = state[X_SHARPE_A]
        b_prev = state[X_SHARPE_B]
        d_a = log_ret - a_prev
        d_b = log_ret * log_ret - b_prev
        denom = b_prev - a_prev * a_prev
        base = (b_prev * d_a - 0.5 * a_prev * d_b) / denom**1.5 if denom > 1e-12 else 0.0
        eta = settings[S_ETA]
        state[X_SHARPE_A] = a_prev + eta * d_a
        state[X_SHARPE_B] = b_prev + eta * d_b
    else:
        base = log_ret
    reward = settings[S_REWARD_SCALE] * (base - settings[S_DD_PENALTY] * dd_increase
                                         - settings[S_TO_PENALTY] * turnover)
    state[X_EQUITY] = equity1
    state[X_PEAK] = peak
    state[X_DRAWDOWN] = drawdown
    observe_into_nb(bar, features, book, state, settings[S_OBS_CLIP], obs)
    return reward, status, equity1, drawdown, turnover


@njit(cache=True)
def vec_step_nb(actions, t, stop, arrays, books, recs, params_fields, obs, out):
    """Step every env of a batch once (one crossing from Python for all of them).

    ``books`` and ``recs`` are the Book / Records fields stacked along a leading env axis;
    ``t`` (int64 per env) advances in place. ``arrays`` = (settings, state (envs, slots),
    fill_price, close, volume, features, targets (envs, assets), tradable, current, kind,
    bar_range).
    ``out`` (envs, 6) float64 receives reward, status, equity, drawdown, turnover and
    done (1.0 when the episode ended: bankrupt, or ``t`` reached ``stop``). Stops at the
    first env whose action holds a NaN and returns its index (-1 when none did).
    """
    # borrowed views and rows: no reference counting (engine.kernels.views)
    (settings, state, fill_price, close, volume, features, targets, tradable, current, kind,
     bar_range) = borrow_nb(arrays)
    params = SimParams(*params_fields)
    for e in range(actions.shape[0]):
        book = Book(*borrow_rows_nb(books, e))
        rec = Records(*borrow_rows_nb(recs, e))
        action, state_e, target, obs_e = borrow_rows_nb((actions, state, targets, obs), e)
        reward, status, equity, drawdown, turnover = advance_nb(
            action, t[e], settings, state_e, fill_price, close, volume, features, target,
            tradable, current, kind, book, params, rec, obs_e, bar_range)
        if status == STATUS_NAN_ACTION:
            return e
        t[e] += 1
        out[e, 0] = reward
        out[e, 1] = status
        out[e, 2] = equity
        out[e, 3] = drawdown
        out[e, 4] = turnover
        out[e, 5] = 1.0 if (status == STATUS_BANKRUPT or t[e] >= stop[e]) else 0.0
    return -1
