"""A batch of portfolio envs stepped by one numba call: SB3's ``VecEnv`` interface.

    from portfolio import EnvConfig, build_market
    from portfolio.vec_env import PortfolioVecEnv
    vec = PortfolioVecEnv(market, n_envs=64, seed=0)     # a drop-in for make_vec_env(...)
    obs = vec.reset()
    obs, rewards, dones, infos = vec.step(actions)        # actions: (64, n_assets)

Env ``i`` is :class:`~portfolio.PortfolioEnv` seeded ``seed + i`` (as ``make_vec_env``
seeds its copies): the same episode starts, the same book, the same step kernel -- the
per-env trajectories equal those of single envs bit for bit (a test checks). What
changes is the cost per step: ``DummyVecEnv`` calls into numba once per env and builds
the gym tuples in Python; here one call advances every book (the engine's ``step_nb``
per env, inside ``portfolio._kernels.vec_step_nb``) and the batch comes back as arrays.

An episode that ends is reset at once, as SB3 expects: its last observation is in
``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"]`` tells a
time limit from bankruptcy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from engine.errors import ConfigError, DataError
from engine.kernels import new_book, new_records
from engine.membership import delisting_schedule
from engine.settings import SimulationSettings
from portfolio import _kernels as K
from portfolio._env import PortfolioEnv, TimeLike
from portfolio._features import Market


class PortfolioVecEnv(VecEnv):
    """``n_envs`` portfolio envs on one market, stepped together.

    Arguments are those of :class:`~portfolio.PortfolioEnv` (the first env is built as one,
    so bad arguments fail with its messages) plus ``n_envs`` and ``seed``.
    """

    def __init__(self, market: Market, *, n_envs: int = 8, seed: int | None = 0,
                 start: TimeLike | None = None, end: TimeLike | None = None,
                 settings: SimulationSettings | None = None,
                 episode_length: int | None | str = "config", min_history: int | None = None,
                 check_signals: bool = True) -> None:
        if not (isinstance(n_envs, int) and n_envs >= 1):
            raise ConfigError(f"n_envs must be a whole number >= 1, got {n_envs!r}")
        spec = PortfolioEnv(market, start=start, end=end, settings=settings,
                            episode_length=episode_length, min_history=min_history,
                            check_signals=check_signals)
        self.spec_env = spec
        super().__init__(n_envs, spec.observation_space, spec.action_space)
        self.market = market
        n, n_bars = spec.n_assets, market.panel.n_bars
        self.n_assets = n
        self._capital = spec.settings.capital
        self._params_fields = tuple(spec._params)
        self._books = tuple(np.stack([f] * n_envs) for f in new_book(n, self._capital))
        recs = new_records(n_bars, n, 2 * n, record_positions=False)
        self._recs = tuple(np.stack([f] * n_envs) for f in recs)
        self._equity_field = type(recs)._fields.index("equity")
        self._state = np.zeros((n_envs, K.N_STATE))
        self._targets = np.full((n_envs, n), np.nan)
        self._arrays = (spec._settings, self._state, spec._fill_price, spec._close,
                        spec._volume, spec._features, self._targets,
                        np.zeros(n, dtype=np.bool_), np.zeros(n), np.zeros(n, dtype=np.int64),
                        spec._bar_range)
        self._t = np.full(n_envs, -1, dtype=np.int64)
        self._stop = np.full(n_envs, -1, dtype=np.int64)
        self._start = np.full(n_envs, -1, dtype=np.int64)
        self._obs = np.zeros((n_envs, spec.observation_space.shape[0]), dtype=np.float32)
        self._out = np.zeros((n_envs, 6))
        self._actions: np.ndarray | None = None
        self._rngs = [seeding.np_random(None if seed is None else seed + i)[0]
                      for i in range(n_envs)]

    # -- one env's episode start --------------------------------------------------------------
    def _book(self, e: int) -> Any:
        from engine.kernels import Book, Records

        return (Book(*(f[e] for f in self._books)), Records(*(f[e] for f in self._recs)))

    def _reset_env(self, e: int) -> None:
        spec = self.spec_env
        if spec.episode_length is None:
            start, stop = spec.first_bar, spec.last_bar
        else:
            start = int(self._rngs[e].integers(spec.first_bar,
                                               spec.last_bar - spec.episode_length + 1))
            stop = start + spec.episode_length
        fresh = new_book(self.n_assets, self._capital)
        if spec.settings.close_at_data_end:  # as run_backtest and PortfolioEnv
            fresh.delist_bar[:], fresh.delist_factor[:], _ = delisting_schedule(spec.panel)
        for stacked, field in zip(self._books, fresh, strict=True):
            stacked[e] = field
        self._recs[self._equity_field][e] = np.nan  # the episode's path only
        book, recs = self._book(e)
        self._obs[e] = K.reset_nb(start, spec._close, spec._volume, spec._features, book,
                                  spec._params, recs, self._state[e], spec.config.obs_clip)
        self._start[e], self._t[e], self._stop[e] = start, start, stop

    # -- the VecEnv interface -----------------------------------------------------------------
    def reset(self) -> np.ndarray:
        for e, seed in enumerate(self._seeds):  # set by seed(): env e gets seed + e
            if seed is not None:
                self._rngs[e] = seeding.np_random(seed)[0]
        self._reset_seeds()
        for e in range(self.num_envs):
            self._reset_env(e)
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.ascontiguousarray(actions, dtype=np.float64)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        a = self._actions
        if a is None or self._t[0] < 0:
            raise ConfigError("call reset() before step() on a PortfolioVecEnv")
        if a.shape != (self.num_envs, self.n_assets):
            raise DataError(f"actions have shape {a.shape}; this vectorised env runs "
                            f"{self.num_envs} envs on {self.n_assets} assets and expects "
                            f"{(self.num_envs, self.n_assets)}")
        # checked before any book moves, so a bad batch leaves every env as it was
        bad = -1 if np.isfinite(a).all() else int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
        if bad < 0:
            bad = K.vec_step_nb(a, self._t, self._stop, self._arrays, self._books, self._recs,
                                self._params_fields, self._obs, self._out)
        if bad >= 0:
            assets = self.spec_env.panel.assets
            names = [assets[j] for j in np.flatnonzero(~np.isfinite(a[bad]))][:5]
            raise DataError(f"action of env {bad} holds NaN/inf for asset(s) {names} at bar "
                            f"{int(self._t[bad])}; the env does not guess a weight for them. "
                            "Fix the policy (or replace NaN yourself before stepping)")
        out = self._out
        rewards = out[:, 0].astype(np.float32)
        dones = out[:, 5] > 0.5
        # three flat lists, not one list per env: fewer objects for the garbage collector
        infos = [{"equity": eq, "drawdown": dd, "turnover": to} for eq, dd, to in
                 zip(out[:, 2].tolist(), out[:, 3].tolist(), out[:, 4].tolist(), strict=True)]
        obs = self._obs.copy()
        for e in np.flatnonzero(dones):
            infos[e]["terminal_observation"] = obs[e].copy()
            infos[e]["TimeLimit.truncated"] = bool(out[e, 1] != K.STATUS_BANKRUPT)
            self._reset_env(int(e))
            obs[e] = self._obs[e]
        return obs, rewards, dones, infos

    def close(self) -> None:
        return None

    # -- attribute access, as SB3 expects of a VecEnv ------------------------------------------
    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.spec_env, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise ConfigError("PortfolioVecEnv's envs share one configuration; build a new "
                          f"PortfolioVecEnv instead of setting {attr_name!r}")

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None,
                   **method_kwargs: Any) -> list[Any]:
        raise ConfigError(f"PortfolioVecEnv has no per-env objects to call {method_name!r} on; "
                          "use PortfolioEnv for per-env access")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def equity(self) -> np.ndarray:
        """Each env's equity at the close of its current bar."""
        return self._state[:, K.X_EQUITY].copy()

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)
