"""Raw step rate of the RL portfolio env, side by side with a FinRL-style pandas env.

    python benchmarks/bench_rl_env.py                 # 20 and 500 assets
    python benchmarks/bench_rl_env.py --assets 20 --steps 50000 --json out.json
    python benchmarks/bench_rl_env.py --n-envs 16 64 256    # vectorised batch sizes

Three envs: the single gymnasium ``PortfolioEnv`` (one numba call per step), the
vectorised ``portfolio.vec_env.PortfolioVecEnv`` (one numba call per batch of envs; its
rate counts env-steps, i.e. batch steps x envs) and the pandas baseline. Before timing,
the vectorised env is checked against single envs stepped with the same actions (every
env's final equity equal, bit for bit).

Both envs do the same work per step: map the action to target weights within the
leverage limits, rebalance at the next bar's price with commission and spread/slippage
costs (sells before buys, shared cash), mark to market at the close, reward the log
return, and build the same observation (per-asset features, weights, cash, drawdown).
The pandas env is written the way FinRL's portfolio envs are (a long frame indexed by
day, ``df.loc[day]`` each step); ours is one numba call into the engine's step kernel.
Random actions are drawn up front; one process, one core; best of ``--repeats``.
Each run also prints how far the two envs' final equity differ (same actions): a check
that they really do the same accounting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import SimulationSettings  # noqa: E402
from engine.panel import Panel  # noqa: E402
from portfolio import EnvConfig, PortfolioEnv, build_market  # noqa: E402
from portfolio.vec_env import PortfolioVecEnv  # noqa: E402

COSTS = {"commission_bps": 1.0, "slippage_bps": 2.0, "half_spread_bps": 1.0,
         "borrow_fee_bps": 0.0}


def settings() -> SimulationSettings:
    # the pandas env cuts each order to the limits on its own, as limit_policy "clip" does
    return SimulationSettings(costs=COSTS, limit_policy="clip")


def synthetic(n_assets: int, n_bars: int, seed: int = 0):
    """A close-only panel of random walks plus one random signal per bar and asset."""
    rng = np.random.default_rng(seed)
    close = 50 * np.cumprod(1 + rng.normal(0.0002, 0.015, (n_bars, n_assets)), axis=0)
    ts = np.datetime64("2000-01-03", "ns") + np.arange(n_bars) * np.timedelta64(1, "D")
    panel = Panel(ts, tuple(f"S{j:04d}" for j in range(n_assets)), close, close, close, close,
                  np.full(close.shape, np.nan), 252.0, has_open=False)
    signal = rng.normal(0, 0.02, close.shape)
    return panel, signal


def ours(panel: Panel, signal: np.ndarray, config: EnvConfig) -> PortfolioEnv:
    import polars as pl

    t, j = np.nonzero(np.isfinite(signal))
    frame = pl.DataFrame({"ts": pl.Series(panel.ts[t]).cast(pl.Datetime("ns")),
                          "asset": np.asarray(panel.assets)[j], "pred_return": signal[t, j]})
    market = build_market(panel, frame, config)
    return PortfolioEnv(market, settings=settings(), episode_length=None)


class PandasPortfolioEnv:
    """The FinRL way: a long DataFrame indexed by day, pandas lookups every step."""

    def __init__(self, panel: Panel, signal: np.ndarray, config: EnvConfig) -> None:
        n_bars, n = panel.close.shape
        r = np.zeros_like(panel.close)
        r[1:] = np.log(panel.close[1:] / panel.close[:-1])
        vol = pd.DataFrame(r).rolling(config.vol_window, min_periods=2).std().fillna(0.0)
        vol = vol.to_numpy()
        scale = np.maximum(vol, 1e-4)
        frame = {"day": np.repeat(np.arange(n_bars), n), "tic": np.tile(panel.assets, n_bars),
                 "close": panel.close.ravel(), "signal": signal.ravel()}
        for lag in range(config.window):
            lagged = np.zeros_like(r)
            lagged[lag:] = r[: n_bars - lag]
            frame[f"ret_{lag}"] = (lagged / scale).ravel()
        frame["vol"] = (vol * np.sqrt(252)).ravel()
        self.df = pd.DataFrame(frame).set_index("day")
        self.features = ["signal", *[f"ret_{lag}" for lag in range(config.window)], "vol"]
        self.n = n
        self.start = config.vol_window
        self.last = n_bars - 1
        self.commission = COSTS["commission_bps"] / 1e4
        self.impact = (COSTS["half_spread_bps"] + COSTS["slippage_bps"]) / 1e4
        self.max_gross = self.max_net = 1.0

    def _obs(self, data: pd.DataFrame, equity: float) -> np.ndarray:
        z = data["signal"].to_numpy()
        z = (z - z.mean()) / z.std() if z.std() > 0 else np.zeros_like(z)
        feats = data[self.features].to_numpy().copy()
        feats[:, 0] = z
        weights = self.qty * data["close"].to_numpy() / equity
        return np.clip(np.concatenate([feats.ravel(), weights, [self.cash / equity,
                                                                -self.drawdown]]),
                       -10, 10).astype(np.float32)

    def reset(self):
        self.day = self.start
        self.cash = 1_000_000.0
        self.qty = np.zeros(self.n)
        self.equity = self.peak = 1_000_000.0
        self.drawdown = 0.0
        return self._obs(self.df.loc[self.day], self.equity)

    def _fill(self, j: int, q_new: float, p: float, equity: float, gross: float, net: float):
        """One order, with the engine's limits: leverage first, then the cash floor."""
        q0 = self.qty[j]
        side = 1.0 if q_new > q0 else -1.0
        gross_other, net_other = gross - abs(q0) * p, net - q0 * p
        hi = min(self.max_gross * equity - gross_other, self.max_net * equity - net_other) / p
        lo = max(-(self.max_gross * equity - gross_other), -self.max_net * equity - net_other) / p
        hi += 1e-9 * abs(hi) + 1e-12
        lo -= 1e-9 * abs(lo) + 1e-12
        if side > 0 and q_new > hi:
            q_new = min(q_new, max(q0 if q0 >= 0 else min(q_new, 0.0), hi))
        elif side < 0 and q_new < lo:
            q_new = max(q_new, min(q0 if q0 <= 0 else max(q_new, 0.0), lo))
        fill = p * (1 + side * self.impact)
        x = q_new - q0
        if x > 0:
            floor = -max(0.0, self.max_net - 1.0) * equity
            if x * fill * (1 + self.commission) > (self.cash - floor) * (1 + 1e-12) + 1e-12:
                x = max((self.cash - floor) / (fill * (1 + self.commission)), 0.0)
        if x == 0.0 or side * x <= 0:
            return 0.0, gross, net
        commission = abs(x) * fill * self.commission
        self.cash -= x * fill + commission
        q1 = q0 + x
        self.qty[j] = q1
        return (commission + abs(x) * abs(fill - p), gross_other + abs(q1) * p,
                net_other + q1 * p)

    def step(self, action: np.ndarray):
        w = np.clip(action, -1, 1)
        gross = np.abs(w).sum()
        if gross > 1.0:
            w = w / gross
        self.day += 1
        data = self.df.loc[self.day]
        price = data["close"].to_numpy()
        equity = self.cash + float(self.qty @ price)
        target = w * equity / price
        delta = target - self.qty
        reduces = ((self.qty > 0) & (target >= 0) & (target < self.qty)) | (
            (self.qty < 0) & (target <= 0) & (target > self.qty))
        value = self.qty * price
        gross, net = float(np.abs(value).sum()), float(value.sum())
        for group in (reduces, ~reduces):  # sells before buys, in value order
            idx = np.flatnonzero(group & (np.abs(delta) > 1e-12 * np.maximum(np.abs(target), 1)))
            for j in idx[np.argsort(np.round(delta[idx] * price[idx], 4), kind="mergesort")]:
                cost, gross, net = self._fill(j, target[j], price[j], equity, gross, net)
                equity -= cost
        new_equity = self.cash + float(self.qty @ price)
        reward = np.log(new_equity / self.equity)
        self.equity = new_equity
        self.peak = max(self.peak, new_equity)
        self.drawdown = 1 - new_equity / self.peak
        done = self.day >= self.last
        return self._obs(data, new_equity), reward, False, done, {"equity": new_equity}


def _rate(env, actions: np.ndarray, steps: int, repeats: int) -> tuple[float, float]:
    best = 0.0
    final = float("nan")
    for _ in range(repeats):
        env.reset()
        done_steps = 0
        started = time.perf_counter()
        i = 0
        while done_steps < steps:
            _, _, terminated, truncated, info = env.step(actions[i % len(actions)])
            done_steps += 1
            i += 1
            if terminated or truncated:
                final = info["equity"]
                env.reset()
                i = 0
        best = max(best, steps / (time.perf_counter() - started))
    return best, final


def _vec_rate(vec: PortfolioVecEnv, actions: np.ndarray, steps: int, repeats: int
              ) -> tuple[float, float]:
    """Env-steps per second of a batch: ``steps`` env-steps in batches of ``num_envs``.

    Returns (wall-clock rate, CPU-time rate): the best of ``repeats`` each. The CPU-time
    rate counts only the time this thread ran, so it shows the code's own speed on a
    machine shared with other work (the wall-clock rate falls with the load average)."""
    n_envs = vec.num_envs
    batches = [np.ascontiguousarray(np.roll(actions, k, axis=0)[:n_envs]) for k in range(64)]
    best = best_cpu = 0.0
    for _ in range(repeats):
        vec.reset()
        started, started_cpu = time.perf_counter(), time.thread_time()
        done = 0
        while done < steps:
            vec.step(batches[(done // n_envs) % len(batches)])
            done += n_envs
        best = max(best, done / (time.perf_counter() - started))
        best_cpu = max(best_cpu, done / max(time.thread_time() - started_cpu, 1e-9))
    return best, best_cpu


def check_vec_equals_single(market, n_envs: int, actions: np.ndarray) -> bool:
    """Every env of a batch ends an episode with the single env's equity (same seed)."""
    vec = PortfolioVecEnv(market, n_envs=n_envs, seed=3, settings=settings(),
                          episode_length=50)
    singles = [PortfolioEnv(market, settings=settings(), episode_length=50)
               for _ in range(n_envs)]
    vec.reset()
    for e, env in enumerate(singles):
        env.reset(seed=3 + e)
    for k in range(50):
        batch = np.ascontiguousarray(np.roll(actions, k, axis=0)[:n_envs])
        _, _, _, infos = vec.step(batch)
        for e, env in enumerate(singles):
            _, _, _, _, info = env.step(batch[e])
            if info["equity"] != infos[e]["equity"]:
                return False
    return True


def run(n_assets: int, steps: int, repeats: int, n_bars: int,
        n_envs: tuple[int, ...] = (64,)) -> dict:
    config = EnvConfig(signals=["pred_return"], episode_length=None, window=5, vol_window=20)
    panel, signal = synthetic(n_assets, n_bars)
    env = ours(panel, signal, config)
    actions = np.random.default_rng(1).uniform(-1, 1, (n_bars, n_assets)).astype(np.float32)
    env.reset()
    env.step(actions[0])  # load the compiled kernels
    rate_ours, _ = _rate(env, actions, steps, repeats)
    pandas_env = PandasPortfolioEnv(panel, signal, config)
    pandas_steps = max(200, steps // 20)
    rate_pandas, _ = _rate(pandas_env, actions, pandas_steps, repeats)
    # same accounting: one full episode through each, same actions
    env.reset()
    pandas_env.reset()
    for k in range(env.last_bar - env.first_bar):
        _, _, _, _, a = env.step(actions[k])
        _, _, _, _, b = pandas_env.step(actions[k])
    gap = abs(a["equity"] - b["equity"]) / a["equity"]
    vec_rates, vec_cpu = {}, {}
    vec_equal = check_vec_equals_single(env.market, min(8, max(n_envs)), actions)
    for k in n_envs:
        vec = PortfolioVecEnv(env.market, n_envs=k, seed=0,
                              settings=settings(), episode_length=None)
        vec.reset()
        vec.step(np.ascontiguousarray(actions[:k]) if k <= len(actions)
                 else np.zeros((k, n_assets)))  # load the compiled kernel
        wall, cpu = _vec_rate(vec, actions, max(steps, 4 * k), repeats)
        vec_rates[k], vec_cpu[k] = round(wall), round(cpu)
    return {"assets": n_assets, "bars": n_bars, "obs_dim": int(env.observation_space.shape[0]),
            "steps_per_s_alfred": round(rate_ours), "steps_per_s_pandas": round(rate_pandas),
            "speedup": round(rate_ours / rate_pandas, 1),
            "steps_per_s_vectorised": vec_rates, "steps_per_cpu_s_vectorised": vec_cpu,
            "vectorised_equals_single": vec_equal,
            "final_equity_rel_gap": float(f"{gap:.3g}")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, nargs="+", default=[20, 500])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--bars", type=int, default=1_500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[16, 64, 256],
                        help="batch sizes of the vectorised env")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    rows = [run(n, args.steps if n <= 100 else max(2_000, args.steps // 10), args.repeats,
                args.bars, tuple(args.n_envs)) for n in args.assets]
    print(f"{'assets':>6} {'obs':>6} {'single steps/s':>15} {'pandas steps/s':>15} "
          f"{'speedup':>8} {'equity gap':>11}  vectorised env-steps/s (n_envs: rate)")
    for r in rows:
        vec = ", ".join(f"{k}: {v:,}" for k, v in r["steps_per_s_vectorised"].items())
        same = "equal to single" if r["vectorised_equals_single"] else "DIFFERS from single"
        print(f"{r['assets']:>6} {r['obs_dim']:>6} {r['steps_per_s_alfred']:>15,} "
              f"{r['steps_per_s_pandas']:>15,} {r['speedup']:>7}x "
              f"{r['final_equity_rel_gap']:>11.2g}  {vec} ({same})")
    for r in rows:  # the headline: the batched env next to the pandas env
        best_k = max(r["steps_per_s_vectorised"], key=r["steps_per_s_vectorised"].get)
        print(f"{r['assets']} assets: batched env {r['steps_per_s_vectorised'][best_k]:,} "
              f"env-steps/s wall ({best_k} envs; CPU time only: "
              f"{r['steps_per_cpu_s_vectorised'][best_k]:,}/s) vs pandas "
              f"{r['steps_per_s_pandas']:,} steps/s")
    print(f"load average (1 min) at start {load_start:.1f}, at end {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    if args.json:
        machine = {"python": platform.python_version(), "machine": platform.machine(),
                   "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
                   "load_avg_1m_start": load_start}
        args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
