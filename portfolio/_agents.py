"""stable-baselines3 agents: built from config, saved with a plain-JSON card, loaded safely.

A saved policy is two files side by side: SB3's ``.zip`` (network and optimiser tensors)
and ``policy.json``, the *card*: algorithm, hyperparameters, the env config, the assets
in action order and the engine settings it was trained under. Loading rebuilds the agent
from the card and reads only the tensors from the zip with ``torch.load(weights_only=True)``
(SB3's ``set_parameters``): SB3's own ``load`` would unpickle objects stored in the zip,
which can run code, and a checkpoint must never do that (DESIGN.md "Trust").
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from engine.errors import ConfigError
from engine.settings import SimulationSettings
from portfolio._config import (
    ACTIVATIONS,
    RESERVED_HYPERPARAMETERS,
    AgentConfig,
    EnvConfig,
    _Strict,
)

CARD_NAME = "policy.json"
CARD_FORMAT = "alfred-rl-policy/1"
# Constructor arguments that take Python classes or objects: not expressible in YAML.
_OBJECT_HYPERPARAMETERS = frozenset(
    {"rollout_buffer_class", "replay_buffer_class", "action_noise"})


class PolicyCard(_Strict):
    """What a saved policy is: enough to rebuild it and to refuse a mismatched market."""

    format: str = CARD_FORMAT
    agent: AgentConfig
    env: EnvConfig
    settings: SimulationSettings
    assets: list[str]
    obs_dim: int
    periods_per_year: float
    seed: int
    train_span: list[str] = Field(default_factory=list)  # [first, last] bar, ISO
    validation_span: list[str] = Field(default_factory=list)
    num_timesteps: int = 0
    best_validation_reward: float | None = None


def algorithm_class(name: str):
    """The SB3 class for ``name`` (checked by AgentConfig already)."""
    import stable_baselines3 as sb3

    return {"ppo": sb3.PPO, "a2c": sb3.A2C, "sac": sb3.SAC}[name]


def _policy_kwargs(agent: AgentConfig) -> dict[str, Any]:
    kwargs = dict(agent.policy_kwargs)
    act = kwargs.get("activation_fn")
    if act is not None:
        import torch

        kwargs["activation_fn"] = getattr(torch.nn, ACTIVATIONS[act])
    return kwargs


def check_hyperparameters(agent: AgentConfig) -> None:
    """Unknown or object-valued hyperparameters are ConfigErrors naming the valid keys."""
    cls = algorithm_class(agent.algorithm)
    accepted = [p for p in inspect.signature(cls.__init__).parameters
                if p != "self" and p not in RESERVED_HYPERPARAMETERS
                and p not in _OBJECT_HYPERPARAMETERS]
    for key in agent.hyperparameters:
        if key not in accepted:
            from engine.configs import did_you_mean

            raise ConfigError(
                f"rl agent: {agent.algorithm} has no hyperparameter {key!r}"
                f"{did_you_mean(key, accepted)}; valid keys: {', '.join(accepted)}")


def resolve_device(request: str) -> str:
    """``auto`` = a GPU when present; asking for one that is absent is an error."""
    from analysts.training import resolve_device as _resolve

    return str(_resolve(request))


def build_model(agent: AgentConfig, env, *, seed: int, tensorboard_log: str | None = None,
                verbose: int = 0, inference_only: bool = False):
    """A fresh SB3 agent on ``env`` (a gymnasium env or an SB3 VecEnv)."""
    check_hyperparameters(agent)
    cls = algorithm_class(agent.algorithm)
    hyper = dict(agent.hyperparameters)
    if inference_only and "buffer_size" in inspect.signature(cls.__init__).parameters:
        hyper["buffer_size"] = 1  # a replay buffer is only needed to train
    try:
        model = cls(agent.policy, env, seed=seed, device=resolve_device(agent.device),
                    tensorboard_log=tensorboard_log, verbose=verbose,
                    policy_kwargs=_policy_kwargs(agent), **hyper)
    except (TypeError, ValueError, AssertionError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"rl agent: {agent.algorithm} rejected its settings "
                          f"(hyperparameters {agent.hyperparameters}, policy_kwargs "
                          f"{agent.policy_kwargs}): {exc}") from None
    if tensorboard_log is None and verbose == 0:
        # with nowhere to log, SB3 would still create an empty SB3-<date> temp folder
        from stable_baselines3.common.logger import Logger

        model.set_logger(Logger(folder=None, output_formats=[]))
    return model


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None: leave them), restoring the count after."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def write_card(directory: Path, card: PolicyCard) -> Path:
    path = Path(directory) / CARD_NAME
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(card.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_card(path: Path) -> PolicyCard:
    from portfolio._config import validate

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read policy card {path}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != CARD_FORMAT:
        raise ConfigError(f"{path} is not an Alfred policy card (format {CARD_FORMAT!r}); "
                          "point at a folder written by `alfred train-rl`")
    return validate(PolicyCard, raw, f"policy card {path}")


@dataclass(frozen=True)
class PolicyFiles:
    weights: Path  # the SB3 zip
    card: Path


def locate_policy(path: str | Path) -> PolicyFiles:
    """Resolve a seed folder (best model first, else final) or a ``.zip`` to its files."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("best_model.zip", "final_model.zip"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise ConfigError(f"{path} holds no best_model.zip or final_model.zip; point at a "
                              "seed folder written by `alfred train-rl` or at a model .zip")
    if not path.is_file():
        raise ConfigError(f"policy {path} not found; point at a seed folder of an "
                          "`alfred train-rl` run or at a model .zip")
    for folder in (path.parent, path.parent.parent):
        if (folder / CARD_NAME).is_file():
            return PolicyFiles(path, folder / CARD_NAME)
    raise ConfigError(f"{path} has no {CARD_NAME} next to it (or one folder up); Alfred "
                      "rebuilds a policy from that card and will not unpickle one")


def load_weights(model, files: PolicyFiles, *, with_extras: bool = True) -> None:
    """Tensors of ``files.weights`` into ``model`` (weights-only loading, shapes checked)."""
    from stable_baselines3.common.save_util import load_from_zip_file

    try:
        _, params, extras = load_from_zip_file(str(files.weights), device=model.device,
                                               load_data=False)
        model.set_parameters(params, exact_match=True, device=model.device)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"the checkpoint {files.weights} does not fit the policy its card describes "
            f"(observation or action space, network or algorithm differ): {_first_line(exc)}. "
            "Use the checkpoint with the card it was written with") from None
    if with_extras and extras:
        for name, value in extras.items():
            target = getattr(model, name, None)
            if target is not None and hasattr(target, "data"):
                target.data = value.data.to(model.device)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_card_fits(card: PolicyCard, assets: tuple[str, ...], obs_dim: int,
                    source: str | Path) -> None:
    """A policy only fits a market with its assets, in its order, and its observation."""
    if list(assets) != card.assets:
        missing = [a for a in card.assets if a not in assets]
        extra = [a for a in assets if a not in card.assets]
        detail = (f"missing {missing[:5]}, not trained on {extra[:5]}" if (missing or extra)
                  else "same assets in another order")
        raise ConfigError(
            f"policy {source} was trained on {len(card.assets)} assets {card.assets[:5]}..., "
            f"the data has {len(assets)} ({detail}); each action slot means one asset, so "
            "trade it on the universe it was trained on (data.assets) or retrain")
    if obs_dim != card.obs_dim:
        raise ConfigError(
            f"policy {source} expects observations of size {card.obs_dim}, this market gives "
            f"{obs_dim} (env settings differ: signals {card.env.signals}, window "
            f"{card.env.window}); use the card's env settings or retrain")


def load_policy(path: str | Path, env):
    """The agent saved at ``path`` (seed folder or ``.zip``), ready to act in ``env``.

    Refuses, with a ConfigError, an env whose assets or observation differ from the
    policy's card, and a zip whose tensors do not fit that card.
    """
    files = locate_policy(path)
    card = read_card(files.card)
    check_card_fits(card, tuple(env.panel.assets), int(env.observation_space.shape[0]),
                    files.weights)
    model = build_model(card.agent, env, seed=card.seed, inference_only=True)
    load_weights(model, files, with_extras=False)
    return model
