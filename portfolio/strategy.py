"""The ``rl`` strategy: target weights from a trained portfolio-manager policy.

Two ways to get a policy:

* ``model: PATH`` -- a seed folder (or model ``.zip``) written by ``alfred train-rl``.
  The policy's card fixes the env settings and the universe; data with other assets is
  refused rather than fed into the wrong action slots.
* no ``model`` -- walk-forward training inside the run: the first ``train_fraction`` of
  the bars only trains (no positions), the rest is cut into ``folds`` blocks and each
  block is traded by a policy trained on every bar before it. Nothing a policy trades on
  was in its training data.

Either way the policy is run bar by bar with deterministic actions through the RL env,
which simulates its own book under ``settings`` (costs, leverage) -- the observation
holds the current weights, cash and drawdown, so the decisions depend on fills. When
``run_backtest`` uses the same settings, its result equals that simulation exactly.
Bars before the features are warm (``env.vol_window``) get no instruction.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
from pydantic import Field

from engine.errors import ConfigError
from engine.panel import Panel
from engine.plan import WeightPlan
from engine.settings import SimulationSettings
from portfolio._config import AgentConfig, EnvConfig, _Strict, validate


class RLConfig(_Strict):
    """``model``: a trained policy (then ``env``/``agent``/``settings`` come from its card).
    Without it: ``env`` and ``agent`` configure walk-forward training over the run's own
    bars (``train_fraction`` to start, ``folds`` retrainings), seeded by ``seed``.
    ``settings``: costs and limits of the policy's simulated book."""

    model: str | None = None
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    settings: SimulationSettings = Field(default_factory=SimulationSettings)
    train_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    folds: int = Field(1, ge=1, le=100)
    seed: int = 0


class RLStrategy:
    """A portfolio-manager policy as a strategy (see the module docstring).

    Built like every registered strategy -- ``RLStrategy(folds=2)`` or
    ``RLStrategy(RLConfig(...))`` -- but without importing ``strategies``, so that the
    strategy registry can import this module without a cycle.
    """

    name: ClassVar[str] = "rl"
    config_class: ClassVar[type[_Strict]] = RLConfig
    config: RLConfig

    def __init__(self, config: RLConfig | None = None, /, **values: Any) -> None:
        if config is not None and values:
            raise ConfigError(f"rl: pass either a config object or keyword values, not both "
                              f"(got a config and {sorted(values)})")
        if config is None:
            config = validate(RLConfig, values, "strategy 'rl'")
        elif not isinstance(config, RLConfig):
            raise ConfigError(f"rl: expected an RLConfig, got {type(config).__name__}; build "
                              "it with RLConfig(...)")
        self.config = config
        self._fitted: tuple[EnvConfig, SimulationSettings, Any] | None = None
        self._loaded: tuple[Any, Any] | None = None  # (policy files, agent) of config.model
        # the last plan, by input identity: a scenario run asks twice for the same bars (with
        # and without costs) and training the walk-forward policies twice would waste minutes
        self._last: tuple[Panel, pl.DataFrame | None, WeightPlan] | None = None

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items()
                           if k in ("model", "train_fraction", "folds", "seed"))
        return f"RLStrategy({values}, ...)"

    # -- training inside the run ----------------------------------------------------------
    def fit(self, panel: Panel, signals: pl.DataFrame | None, until=None) -> RLStrategy:
        """Train one policy on the bars up to ``until`` (inclusive; all when None).

        A walk-forward runner calls this per fold on the fold's training bars, then
        :meth:`plan` on its test bars. A ``model`` in the config is not retrained.
        """
        if self.config.model is not None:
            raise ConfigError("rl: this strategy trades a saved policy (model: ...); drop "
                              "'model' to train it per fold")
        from portfolio._features import build_market
        from portfolio._train import train_policy

        market = build_market(panel, signals, self.config.env)
        result = train_policy(market, self.config.agent, seed=self.config.seed,
                              train=(None, until), settings=self.config.settings)
        self._fitted = (self.config.env, self.config.settings, result.model)
        self._last = None
        return self

    # -- the Strategy protocol ------------------------------------------------------------
    def plan(self, panel: Panel, signals: pl.DataFrame | None) -> WeightPlan:
        last = self._last
        if last is not None and last[0] is panel and last[1] is signals:
            return last[2]
        plan = self._plan(panel, signals)
        self._last = (panel, signals, plan)
        return plan

    def _plan(self, panel: Panel, signals: pl.DataFrame | None) -> WeightPlan:
        from portfolio._evaluate import model_policy

        if self.config.model is not None:
            from portfolio._agents import locate_policy, read_card

            files = locate_policy(self.config.model)
            card = read_card(files.card)
            return self._run(panel, signals, card.env, card.settings,
                             lambda env: model_policy(self._load(files, card, env)))
        if self._fitted is not None:
            env_config, settings, model = self._fitted
            return self._run(panel, signals, env_config, settings,
                             lambda env: model_policy(model))
        return self._walk_forward(panel, signals)

    def _load(self, files, card, env):
        """The saved agent (built once per strategy, tensors read weights-only)."""
        from portfolio._agents import check_card_fits, load_policy

        check_card_fits(card, env.panel.assets, int(env.observation_space.shape[0]),
                        files.weights)
        if self._loaded is None or self._loaded[0] != files:
            self._loaded = (files, load_policy(files.weights, env))
        return self._loaded[1]

    def _run(self, panel, signals, env_config, settings, make_policy) -> WeightPlan:
        from portfolio._env import PortfolioEnv
        from portfolio._evaluate import rollout
        from portfolio._features import build_market

        market = build_market(panel, signals, env_config)
        env = PortfolioEnv(market, settings=settings, episode_length=None, record_weights=True)
        _, plan, _ = rollout(env, make_policy(env))
        return _embed(plan, env.first_bar, panel)

    def _walk_forward(self, panel: Panel, signals: pl.DataFrame | None) -> WeightPlan:
        from portfolio._env import PortfolioEnv
        from portfolio._evaluate import model_policy, rollout
        from portfolio._features import build_market
        from portfolio._train import train_policy

        cfg = self.config
        market = build_market(panel, signals, cfg.env)
        n_bars = panel.n_bars
        first_test = int(np.floor(n_bars * cfg.train_fraction))
        if n_bars - 1 - first_test < cfg.folds:
            raise ConfigError(f"rl: {n_bars} bars leave {n_bars - 1 - first_test} to trade after "
                              f"train_fraction={cfg.train_fraction}, fewer than folds="
                              f"{cfg.folds}; lower train_fraction or folds, or give more bars")
        cuts = np.linspace(first_test, n_bars - 1, cfg.folds + 1).round().astype(np.int64)
        ts = panel.ts
        policies = []
        for k in range(cfg.folds):
            # trained on bars <= cuts[k]: the bar at whose close fold k first decides
            result = train_policy(market, cfg.agent, seed=cfg.seed,
                                  train=(None, ts[cuts[k]]), settings=cfg.settings)
            policies.append(model_policy(result.model))
        starts = cuts[:-1]

        def act(bar: int, obs: np.ndarray) -> np.ndarray:
            return policies[int(np.searchsorted(starts, bar, side="right")) - 1](bar, obs)

        env = PortfolioEnv(market, start=ts[first_test], settings=cfg.settings,
                           episode_length=None, record_weights=True, min_history=first_test)
        _, plan, _ = rollout(env, act)
        return _embed(plan, env.first_bar, panel)


def _embed(plan: WeightPlan, first_bar: int, panel: Panel) -> WeightPlan:
    """The rollout's weights on the whole panel (no instruction outside the rollout)."""
    weights = np.full((panel.n_bars, panel.n_assets), np.nan)
    weights[first_bar: first_bar + plan.target_weight.shape[0]] = plan.target_weight
    return WeightPlan(weights)
