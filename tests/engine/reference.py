"""A slow, obvious pure-Python model of the engine's semantics (DESIGN.md), for tests.

Written from the spec, not from the kernels: plain loops over bars and assets, floats and
lists. Returns per-bar equity/cash, the order and fill lists and the closed trades.
"""

from __future__ import annotations

import math


def _f(x):
    return x is not None and math.isfinite(x)


def reference_backtest(open_, close, volume, instructions, *, fill_mode, capital, commission_rate,
                       commission_fixed, impact_rate, borrow_rate_per_bar, max_gross, max_net,
                       participation_cap=None, fractional=True, signals=None):
    """``instructions[t][j]`` is None or (kind, value); kind 'w' weight, 'v' value, 'q' qty.

    With ``signals`` = (le, lx, se, sx, size, kind) the instructions are derived in the loop
    from the position held, as the engine's signal interface does.
    """
    n_bars, n = len(close), len(close[0])
    cash = capital
    qty = [0.0] * n
    last = [math.nan] * n
    equity_out, cash_out, orders, fills = [], [], [], []
    pending = [None] * n

    def decide(t):
        le, lx, se, sx, size, kind = signals
        out = [None] * n
        for j in range(n):
            a, b = le[t][j] and not lx[t][j], lx[t][j] and not le[t][j]
            c, d = se[t][j] and not sx[t][j], sx[t][j] and not se[t][j]
            a, c = a and not c, c and not a  # long and short entry together: ignored
            q = qty[j]
            if q > 0:
                if c:
                    out[j] = (kind, -size)
                elif b:
                    out[j] = ("q", 0.0)
            elif q < 0:
                if a:
                    out[j] = (kind, size)
                elif d:
                    out[j] = ("q", 0.0)
            elif a != c:
                out[j] = (kind, size if a else -size)
        return out

    def execute(t, decision, ref, instr):
        nonlocal cash
        px = [ref[j] if _f(ref[j]) else (last[j] if _f(last[j]) else 0.0) for j in range(n)]
        equity = cash + sum(qty[j] * px[j] for j in range(n))
        targets = {}
        for j in range(n):
            if instr[j] is None:
                continue
            kind, v = instr[j]
            vp = ref[j] if _f(ref[j]) else last[j]
            if kind == "q":
                tq = v
            elif not _f(vp) or vp <= 0:
                tq = 0.0 if v == 0 else math.nan
            elif kind == "w":
                tq = v * equity / vp
            else:
                tq = v / vp
            if not fractional and _f(tq):
                tq = float(math.trunc(tq))
            if _f(tq) and abs(tq - qty[j]) <= 1e-12 * max(abs(tq), 1.0):
                continue
            if not _f(ref[j]):
                orders.append(dict(bar=decision, fill_bar=t, asset=j, filled=0.0,
                                   status="rejected", reason="not_tradable"))
                continue
            targets[j] = tq
        # reductions first, then orders that open/extend/flip; each group by order value
        def reduces(j):
            q, tq = qty[j], targets[j]
            return (q > 0 and 0 <= tq < q) or (q < 0 and q < tq <= 0)

        sequence = sorted(targets, key=lambda j: (0 if reduces(j) else 1,
                                                  round((targets[j] - qty[j]) * ref[j], 4)))
        eq_now = equity
        for j in sequence:
            tq, q0, p = targets[j], qty[j], ref[j]
            gross = sum(abs(qty[k] * px[k]) for k in range(n))
            net = sum(qty[k] * px[k] for k in range(n))
            side = 1 if tq > q0 else -1
            reason = ""
            q_new = tq
            if participation_cap is not None and _f(volume[t][j]):
                cap = participation_cap * volume[t][j]
                if abs(tq - q0) > cap:
                    q_new, reason = q0 + side * cap, "volume_cap"
            g_other, n_other = gross - abs(q0) * p, net - q0 * p
            hi = min(max_gross * eq_now - g_other, max_net * eq_now - n_other) / p
            lo = max(-(max_gross * eq_now - g_other), -max_net * eq_now - n_other) / p
            hi += 1e-9 * abs(hi) + 1e-12
            lo -= 1e-9 * abs(lo) + 1e-12
            if side > 0 and q_new > hi:
                safe = q0 if q0 >= 0 else min(q_new, 0.0)
                if max(safe, hi) < q_new:
                    q_new, reason = max(safe, hi), "leverage_limit"
            if side < 0 and q_new < lo:
                safe = q0 if q0 <= 0 else max(q_new, 0.0)
                if min(safe, lo) > q_new:
                    q_new, reason = min(safe, lo), "leverage_limit"
            fp = p * (1 + side * impact_rate)
            x = q_new - q0
            if x > 0:
                floor = -max(0.0, max_net - 1.0) * eq_now
                need = x * fp * (1 + commission_rate) + commission_fixed
                if need > (cash - floor) * (1 + 1e-12) + 1e-12:
                    x = max(0.0, (cash - floor - commission_fixed) / (fp * (1 + commission_rate)))
                    reason = "insufficient_cash"
            if not fractional:
                x = math.floor(abs(x) + 1e-9) * (1 if x > 0 else -1)
            if x == 0 or side * x <= 0:
                orders.append(dict(bar=decision, fill_bar=t, asset=j, filled=0.0,
                                   status="rejected", reason=reason or "insufficient_cash"))
                continue
            commission = abs(x) * fp * commission_rate + commission_fixed
            cash -= x * fp + commission
            qty[j] = q0 + x
            if abs(qty[j]) <= 1e-12 * abs(q0):
                qty[j] = 0.0
            eq_now -= commission + abs(x) * abs(fp - p)
            status = "filled" if abs(x) >= abs(tq - q0) * (1 - 1e-9) else "partial"
            orders.append(dict(bar=decision, fill_bar=t, asset=j, filled=abs(x), status=status,
                               reason=reason))
            fills.append(dict(bar=t, asset=j, qty=x, price=fp, commission=commission))

    def mark(t):
        nonlocal cash
        for j in range(n):
            if _f(close[t][j]):
                last[j] = close[t][j]
        borrow = sum(-qty[j] * last[j] * borrow_rate_per_bar for j in range(n) if qty[j] < 0)
        cash -= borrow
        equity_out.append(cash + sum(qty[j] * last[j] for j in range(n) if qty[j] != 0))
        cash_out.append(cash)

    for t in range(n_bars):
        if fill_mode == "same_close":
            instr = decide(t) if signals else instructions[t]
            execute(t, t, close[t], instr)
        elif t > 0:
            ref = open_[t] if fill_mode == "next_open" else close[t]
            execute(t, t - 1, ref, pending if signals else instructions[t - 1])
        mark(t)
        if signals and fill_mode != "same_close":
            pending = decide(t)
    return dict(equity=equity_out, cash=cash_out, orders=orders, fills=fills, qty=qty)


def round_trips(fills, n_assets):
    """Flat-to-flat round trips from a fill list (average-cost), without fees/borrow."""
    out = []
    pos = [0.0] * n_assets
    book = [None] * n_assets
    for f in fills:
        j, x, p = f["asset"], f["qty"], f["price"]
        q0 = pos[j]
        q1 = q0 + x
        if abs(q1) <= 1e-12 * abs(q0):
            q1 = 0.0
        pos[j] = q1
        if q0 == 0:
            book[j] = dict(side=1 if x > 0 else -1, entry_bar=f["bar"], ev=abs(x) * p,
                           eq=abs(x), xv=0.0, xq=0.0)
        elif (q0 > 0) == (x > 0):
            book[j]["ev"] += abs(x) * p
            book[j]["eq"] += abs(x)
        else:
            c = min(abs(x), abs(q0))
            book[j]["xv"] += c * p
            book[j]["xq"] += c
            if q1 == 0 or (q1 > 0) != (q0 > 0):
                b = book[j]
                ep = b["ev"] / b["eq"]
                out.append(dict(asset=j, side=b["side"], entry_bar=b["entry_bar"],
                                exit_bar=f["bar"], entry_price=ep, exit_price=b["xv"] / b["xq"],
                                gross_pnl=b["side"] * (b["xv"] - b["xq"] * ep)))
                book[j] = None
                if q1 != 0:
                    book[j] = dict(side=1 if q1 > 0 else -1, entry_bar=f["bar"],
                                   ev=abs(q1) * p, eq=abs(q1), xv=0.0, xq=0.0)
    return out
