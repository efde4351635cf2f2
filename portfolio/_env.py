"""The portfolio-manager environment (gymnasium API) on the engine's step kernel.

At the close of bar t the agent sees the observation of t and chooses target weights;
they fill at bar t + 1 (its open, or its close for close-only data) through
``engine.kernels.step_nb`` -- the very function ``run_backtest`` loops over -- with the
same costs and leverage limits, and the book is marked at the close of t + 1. The equity
path of an episode therefore equals ``run_backtest`` on the same bars with the weights the
env sent (``episode_plan`` hands them out), to the last bit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from engine.errors import ConfigError, DataError, RunError
from engine.kernels import new_book, new_records
from engine.membership import delisting_schedule
from engine.panel import Panel
from engine.plan import WeightPlan
from engine.settings import SimulationSettings
from portfolio import _kernels as K
from portfolio._config import EnvConfig
from portfolio._features import Market, slice_panel

TimeLike = date | datetime | str | np.datetime64


def _settings_array(config: EnvConfig, engine: SimulationSettings) -> np.ndarray:
    s = np.zeros(K.N_SETTINGS)
    s[K.S_LONG_ONLY] = 1.0 if config.mode == "long_only" else 0.0
    s[K.S_MAX_GROSS] = engine.max_gross_leverage
    s[K.S_MAX_NET] = engine.max_net_leverage
    s[K.S_THRESHOLD] = config.rebalance_threshold
    s[K.S_REWARD_KIND] = K.REWARD_DSR if config.reward == "differential_sharpe" else K.REWARD_LOG
    s[K.S_REWARD_SCALE] = config.reward_scale
    s[K.S_DD_PENALTY] = config.drawdown_penalty
    s[K.S_TO_PENALTY] = config.turnover_penalty
    s[K.S_ETA] = config.sharpe_eta
    s[K.S_OBS_CLIP] = config.obs_clip
    s[K.S_SPEED] = config.rebalance_speed
    return s


class PortfolioEnv(gym.Env):
    """Allocate across the panel's assets, one bar per step.

    ``start``/``end`` (inclusive dates) limit the span episodes are drawn from; features
    still use the history before ``start``. With ``episode_length`` (default: the env
    config's) each reset starts at a random bar of the span, drawn from the generator
    ``reset(seed=...)`` seeds; with ``episode_length=None`` every episode runs the whole
    span from its first bar (what evaluation uses). Bars before ``min_history`` (default
    ``vol_window``) of panel history are skipped so features are warm.

    Observation: ``Box(n_assets * (n_features + 1) + 2)`` float32 (see
    :class:`~portfolio.EnvConfig`); action: ``Box(-1, 1, (n_assets,))``. An action of the
    wrong shape or holding NaN raises DataError (nothing is clipped silently).
    """

    metadata = {"render_modes": []}

    def __init__(self, market: Market, *, start: TimeLike | None = None,
                 end: TimeLike | None = None, settings: SimulationSettings | None = None,
                 episode_length: int | None | str = "config", min_history: int | None = None,
                 record_weights: bool = False, check_signals: bool = True) -> None:
        super().__init__()
        self.market = market
        self.config = market.config
        self.settings = settings or SimulationSettings()
        panel = market.panel
        self.panel = panel
        lo = 0 if start is None else market.bar_of(start, side="left")
        hi = panel.n_bars - 1 if end is None else market.bar_of(end, side="right")
        history = self.config.vol_window if min_history is None else int(min_history)
        first = max(lo, min(history, hi))
        if hi - first < 1:
            raise ConfigError(
                f"the span {_day(panel, lo)}..{_day(panel, hi)} leaves {max(hi - first, 0)} "
                f"decision bar(s) after {history} bars of feature warm-up; an episode needs at "
                "least one. Widen the span or start it later in the data"
            )
        length = self.config.episode_length if episode_length == "config" else episode_length
        if length is not None and length > hi - first:
            raise ConfigError(
                f"episode_length {length} is longer than the span's {hi - first} decision bars "
                f"({_day(panel, first)}..{_day(panel, hi)}); shorten env.episode_length or "
                "widen the span"
            )
        if check_signals:
            market.check_coverage(first, hi, f"span {_day(panel, first)}..{_day(panel, hi)}")
        self.first_bar, self.last_bar = first, hi
        self.episode_length = length
        n = panel.n_assets
        self.n_assets = n
        self._shape = (n,)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        clip = self.config.obs_clip
        self.observation_space = spaces.Box(-clip, clip, shape=(market.obs_dim,),
                                            dtype=np.float32)
        self._settings = _settings_array(self.config, self.settings)
        if self.settings.fill == "same_close":
            raise ConfigError("fill: same_close is not offered to the RL manager (it would "
                              "act on the close it trades at); use next_open or next_close")
        self._params = self.settings.sim_params(panel.periods_per_year)
        if self.settings.close_at_data_end:  # as run_backtest: some asset's bars end early
            self._params = self._params._replace(
                use_delisting=bool((delisting_schedule(panel)[0] >= 0).any()))
        fill = self.settings.fill_for(panel.has_open)
        self.fill = fill
        self._fill_price = panel.open if fill == "next_open" else panel.close
        self._close = panel.close
        self._volume = panel.volume
        self._features = market.features
        # Orders and fills are kept for one step only (counts reset each step): an env
        # needs the equity path, not an episode's order book, and 500 assets x 5,000
        # bars of orders would not fit in memory per env.
        self._recs = new_records(panel.n_bars, n, 2 * n, record_positions=False)
        self._weights = np.full((panel.n_bars if record_weights else 1, n), np.nan)
        self._record_weights = record_weights
        self._state = np.zeros(K.N_STATE)
        self._book = new_book(n, self.settings.capital)
        self._start = self._t = self._stop = -1
        self._book_fields = tuple(self._book)
        self._recs_fields = tuple(self._recs)
        self._params_fields = tuple(self._params)
        # opens, highs and lows: the bars the stops are checked on (engine.Stops)
        self._bar_range = np.ascontiguousarray(np.stack([panel.open, panel.high, panel.low]))
        self._arrays = (self._settings, self._state, self._fill_price, self._close, self._volume,
                        self._features, self._weights, np.zeros(n, dtype=np.bool_),
                        np.zeros(n), np.zeros(n, dtype=np.int64), self._bar_range)

    # -- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self.episode_length is None:
            start = self.first_bar
            stop = self.last_bar
        else:
            start = int(self.np_random.integers(self.first_bar,
                                                self.last_bar - self.episode_length + 1))
            stop = start + self.episode_length
        if options and "start_bar" in options:
            start = int(options["start_bar"])
            if not self.first_bar <= start < self.last_bar:
                raise ConfigError(f"options['start_bar']={start} is outside the decision bars "
                                  f"{self.first_bar}..{self.last_bar - 1}")
            stop = self.last_bar if self.episode_length is None else min(
                self.last_bar, start + self.episode_length)
        self._book = new_book(self.n_assets, self.settings.capital)
        if self.settings.close_at_data_end:  # as run_backtest: settle where an asset's bars end
            self._book.delist_bar[:], self._book.delist_factor[:], _ = delisting_schedule(
                self.panel)
        self._book_fields = tuple(self._book)
        if self._record_weights:
            self._weights[:] = np.nan
        self._recs.equity[:] = np.nan
        self._start, self._t, self._stop = start, start, stop
        obs = K.reset_nb(start, self._close, self._volume, self._features, self._book,
                         self._params, self._recs, self._state, self.config.obs_clip)
        return obs, {"equity": float(self._state[K.X_EQUITY]), "bar": start}

    def step(self, action):
        t = self._t
        if t < 0 or t >= self._stop:
            raise RunError("the episode is over (or was never started); call reset() first")
        # one dtype and layout, so the kernel is compiled (and cached) once
        a = np.ascontiguousarray(action, dtype=np.float64)
        if a.shape != self._shape:
            raise DataError(f"action has shape {a.shape}; this env trades {self.n_assets} "
                            f"assets and expects shape {self._shape} (one weight per asset in "
                            f"{list(self.panel.assets)[:5]}...)")
        obs, reward, status, equity, drawdown, turnover = K.env_step_nb(
            a, t, self._arrays, self._book_fields, self._recs_fields, self._params_fields)
        if status == K.STATUS_NAN_ACTION:
            bad = [self.panel.assets[j] for j in np.flatnonzero(~np.isfinite(a))][:5]
            raise DataError(f"action holds NaN/inf for asset(s) {bad} at bar {t}; the env does "
                            "not guess a weight for them. Fix the policy (or replace NaN "
                            "yourself before stepping)")
        self._t = t + 1
        terminated = status == K.STATUS_BANKRUPT
        truncated = self._t >= self._stop and not terminated
        return obs, reward, terminated, truncated, {"equity": equity, "drawdown": drawdown,
                                                    "turnover": turnover}

    # -- the episode, for checks and for strategies -----------------------------------------
    @property
    def bar(self) -> int:
        """The bar whose close the next action is decided at."""
        return self._t

    def equity_curve(self) -> np.ndarray:
        """Equity at the close of every bar of the episode so far (first = capital)."""
        return self._recs.equity[self._start: self._t + 1].copy()

    def episode_plan(self) -> tuple[Panel, WeightPlan]:
        """The episode's bars and the weights the env sent, as run_backtest inputs.

        ``run_backtest(panel, plan, **settings.backtest_kwargs())`` reproduces
        :meth:`equity_curve` exactly. Needs ``record_weights=True``.
        """
        if not self._record_weights:
            raise ConfigError("build the env with record_weights=True to get its plan")
        panel = slice_panel(self.panel, self._start, self._t)
        weights = self._weights[self._start: self._t + 1].copy()
        weights[-1] = np.nan  # decided at the last close: nothing fills it yet
        return panel, WeightPlan(weights)


def _day(panel: Panel, bar: int) -> str:
    bar = min(max(bar, 0), panel.n_bars - 1)
    return np.datetime_as_string(np.datetime64(panel.ts[bar], "s")).removesuffix("T00:00:00")
