"""Frozen configs of the RL portfolio manager: environment, agent, and the scenario's ``rl:``.

Every model rejects unknown keys (a misspelt ``turnover_penalty`` must not silently train
a different agent) and is built from plain YAML values, so a scenario file reproduces a
training run. Algorithms, policies and activation functions are picked by name from
fixed tables, never by import path.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.errors import ConfigError

# Algorithms of stable-baselines3 the manager trains; the class is looked up lazily.
ALGORITHMS: tuple[str, ...] = ("ppo", "a2c", "sac")
# Activation functions a policy_kwargs.activation_fn may name (torch.nn class names).
ACTIVATIONS: dict[str, str] = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU",
                               "leaky_relu": "LeakyReLU", "gelu": "GELU", "silu": "SiLU"}
# Keys the trainer sets itself; a YAML ``hyperparameters`` entry may not override them.
RESERVED_HYPERPARAMETERS: frozenset[str] = frozenset(
    {"policy", "env", "seed", "device", "tensorboard_log", "verbose", "policy_kwargs",
     "_init_setup_model"})


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnvConfig(_Strict):
    """What the manager sees, how its action becomes weights, and what it is paid.

    Observation at the close of bar t, per asset: the ``signals`` columns (as of t,
    carried forward between analyst rows; z-scored across the assets at t when
    ``signal_norm: zscore``), the last ``window`` log returns divided by the asset's
    volatility, that volatility (std of ``vol_window`` log returns, annualised) and the
    asset's current weight; then the cash weight and the drawdown of the book. Every
    value is clipped to ``[-obs_clip, obs_clip]``.

    Action: one number in [-1, 1] per asset. ``long_short`` uses it as a signed weight,
    ``long_only`` as ``(a + 1) / 2``; the vector is scaled down (never up) to respect the
    gross and net leverage limits. The book moves ``rebalance_speed`` of the way from its
    current weights to that target each bar (1 = all the way; lower values trade less,
    which is what costs reward); a weight that would change by less than
    ``rebalance_threshold`` is not traded.

    Reward per step: ``reward_scale * (base - drawdown_penalty * drawdown increase -
    turnover_penalty * traded / equity)`` with base the log return of equity net of all
    costs, or Moody & Saffell's differential Sharpe ratio (``sharpe_eta`` its decay).
    """

    signals: list[str] = Field(default_factory=lambda: ["pred_return"])
    signal_norm: Literal["zscore", "none"] = "zscore"
    window: int = Field(5, ge=1, le=250)
    vol_window: int = Field(20, ge=2, le=1000)
    episode_length: int | None = Field(252, ge=2)
    mode: Literal["long_short", "long_only"] = "long_short"
    reward: Literal["log_return", "differential_sharpe"] = "log_return"
    reward_scale: float = Field(100.0, gt=0, allow_inf_nan=False)
    drawdown_penalty: float = Field(0.0, ge=0, allow_inf_nan=False)
    turnover_penalty: float = Field(0.0, ge=0, allow_inf_nan=False)
    sharpe_eta: float = Field(0.01, gt=0, lt=1)
    rebalance_threshold: float = Field(0.0, ge=0, allow_inf_nan=False)
    rebalance_speed: float = Field(1.0, gt=0, le=1)
    obs_clip: float = Field(10.0, gt=0, allow_inf_nan=False)

    @field_validator("signals")
    @classmethod
    def _distinct_signals(cls, value: list[str]) -> list[str]:
        dupes = sorted({s for s in value if value.count(s) > 1})
        if dupes:
            raise ValueError(f"signals lists {dupes} more than once; list each column once")
        if any(s in ("ts", "asset") for s in value):
            raise ValueError("signals names the key columns 'ts'/'asset'; list signal columns "
                             "such as pred_return, prob_up or score")
        return value

    @property
    def n_asset_features(self) -> int:
        """Static features per asset (the current weight comes on top)."""
        return len(self.signals) + self.window + 1


class AgentConfig(_Strict):
    """A stable-baselines3 agent: algorithm and policy by name, hyperparameters as given.

    ``hyperparameters`` go to the algorithm's constructor (``learning_rate``, ``n_steps``,
    ``batch_size``, ``gamma``, ``buffer_size`` ...) and are checked against it;
    ``policy_kwargs`` go to the policy (``net_arch``, ``activation_fn`` by name,
    ``log_std_init`` ...). ``device: auto`` trains on a GPU when one is present.
    ``torch_threads`` caps torch's CPU threads for the process (1 is usually fastest for
    these small networks, and keeps seeded CPU runs comparable across machines).
    """

    algorithm: str = "ppo"
    policy: Literal["MlpPolicy"] = "MlpPolicy"
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    total_timesteps: int = Field(10_000, ge=1)
    n_envs: int = Field(1, ge=1, le=256)
    vec_env: Literal["dummy", "subproc"] = "dummy"
    device: str = "auto"
    torch_threads: int | None = Field(None, ge=1, le=256)

    @field_validator("algorithm", mode="before")
    @classmethod
    def _known_algorithm(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in ALGORITHMS:
            return value.lower()
        from engine.configs import did_you_mean

        raise ValueError(f"unknown algorithm {value!r}{did_you_mean(str(value).lower(), ALGORITHMS)}"
                         f"; choose one of {', '.join(ALGORITHMS)}")

    @field_validator("hyperparameters")
    @classmethod
    def _not_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        taken = sorted(set(value) & RESERVED_HYPERPARAMETERS)
        if taken:
            raise ValueError(f"hyperparameters may not set {taken}: the trainer sets them (seed "
                             "and device are their own keys, policy_kwargs is a sibling key)")
        return value

    @field_validator("policy_kwargs")
    @classmethod
    def _known_activation(cls, value: dict[str, Any]) -> dict[str, Any]:
        act = value.get("activation_fn")
        if act is not None and act not in ACTIVATIONS:
            raise ValueError(f"policy_kwargs.activation_fn {act!r} is not one of "
                             f"{sorted(ACTIVATIONS)}")
        return value

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        text = value.strip().lower()
        if text not in ("auto", "cpu", "cuda", "mps") and not text.startswith("cuda:"):
            raise ValueError(f"device {value!r} is not auto, cpu, cuda, cuda:N or mps")
        return text


class Span(_Strict):
    """An inclusive date range of bars."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}; swap them")
        return self


class RLSpec(_Strict):
    """The scenario's ``rl:`` section: what ``alfred train-rl`` trains and evaluates.

    The manager trains on ``train`` (episodes of ``env.episode_length`` bars at random
    offsets), is scored every ``eval_freq`` timesteps on the whole ``validation`` span with
    deterministic actions (the best scoring policy is kept), and is compared on ``test``
    with the scenario's other strategies, once per seed. The spans must be in this order
    and must not overlap.
    """

    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    train: Span
    validation: Span | None = None
    test: Span
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    eval_freq: int = Field(5_000, ge=0)
    n_eval_episodes: int = Field(1, ge=1)
    checkpoint_freq: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _ordered_spans(self) -> RLSpec:
        spans = [("train", self.train)]
        if self.validation is not None:
            spans.append(("validation", self.validation))
        spans.append(("test", self.test))
        for (name_a, a), (name_b, b) in zip(spans, spans[1:], strict=False):
            if b.start <= a.end:
                raise ValueError(f"rl.{name_b} starts {b.start}, not after rl.{name_a} ends "
                                 f"{a.end}; spans must be in order train < validation < test "
                                 "and must not overlap")
        dupes = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
        if dupes:
            raise ValueError(f"seeds lists {dupes} more than once")
        return self


def validate(model: type[BaseModel], values: Any, owner: str) -> Any:
    """``model(**values)`` or one ConfigError naming ``owner`` and the keys at fault."""
    from pydantic import ValidationError

    from engine.configs import describe_validation_error

    if isinstance(values, model):
        return values
    if not isinstance(values, dict):
        raise ConfigError(f"{owner}: expected a mapping of keys, got {type(values).__name__}")
    try:
        return model(**values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, owner, model)) from None


