"""Training one seed: vectorised envs, evaluation on a validation span, checkpoints, resume.

A seed folder holds ``policy.json`` (the card), ``best_model.zip`` (best validation
score), ``final_model.zip``, ``evaluations.npz`` (SB3's validation log),
``checkpoints/step_<n>.zip`` and ``tb/`` (TensorBoard). Resuming reads the newest
checkpoint with weights-only loading and trains the remaining timesteps.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.settings import SimulationSettings
from portfolio._agents import (
    PolicyCard,
    PolicyFiles,
    build_model,
    load_weights,
    write_card,
)
from portfolio._config import AgentConfig
from portfolio._env import PortfolioEnv, TimeLike
from portfolio._features import Market

_CHECKPOINT = re.compile(r"^step_(\d+)\.zip$")


def make_vec_env(market: Market, *, n_envs: int = 1, vec_env: str = "dummy", seed: int = 0,
                 start: TimeLike | None = None, end: TimeLike | None = None,
                 settings: SimulationSettings | None = None, **env_kwargs: Any):
    """``n_envs`` copies of :class:`PortfolioEnv` on one shared market, as an SB3 VecEnv.

    Each copy is wrapped in SB3's ``Monitor`` (episode returns for logs and callbacks)
    and seeded ``seed + i``. ``vec_env="subproc"`` steps them in worker processes.
    """
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if vec_env not in ("dummy", "subproc"):
        raise ConfigError(f"vec_env must be 'dummy' or 'subproc', got {vec_env!r}")
    PortfolioEnv(market, start=start, end=end, settings=settings, **env_kwargs)  # fail here
    cls = SubprocVecEnv if vec_env == "subproc" and n_envs > 1 else DummyVecEnv

    def factory() -> PortfolioEnv:
        return PortfolioEnv(market, start=start, end=end, settings=settings, **env_kwargs)

    return sb3_make_vec_env(factory, n_envs=n_envs, seed=seed, vec_env_cls=cls)


@dataclass(frozen=True)
class SeedResult:
    seed: int
    directory: Path | None
    model_path: Path | None  # best validation model, else the final one
    num_timesteps: int
    best_validation_reward: float | None
    elapsed_s: float
    model: Any = None  # the trained SB3 agent (final weights)


def _latest_checkpoint(directory: Path) -> tuple[int, Path] | None:
    found = []
    folder = directory / "checkpoints"
    if folder.is_dir():
        for path in folder.iterdir():
            match = _CHECKPOINT.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return max(found) if found else None


def _checkpoint_callback(directory: Path, every: int, n_envs: int):
    from stable_baselines3.common.callbacks import BaseCallback

    class _Checkpoints(BaseCallback):
        """Save ``checkpoints/step_<n>.zip`` every ``every`` timesteps (for resume)."""

        def __init__(self) -> None:
            super().__init__()
            self._every = max(every // n_envs, 1)

        def _on_step(self) -> bool:
            if self.n_calls % self._every == 0:
                folder = directory / "checkpoints"
                folder.mkdir(exist_ok=True)
                path = folder / f"step_{self.num_timesteps}.zip"
                partial = folder / f".step_{self.num_timesteps}.partial.zip"
                self.model.save(str(partial))
                partial.replace(path)
            return True

    return _Checkpoints()


def _restore_evaluations(callback, directory: Path) -> None:
    """Carry the validation log and best score over a resume."""
    log = directory / "evaluations.npz"
    if not log.is_file():
        return
    with np.load(log, allow_pickle=False) as data:
        callback.evaluations_timesteps = data["timesteps"].tolist()
        callback.evaluations_results = data["results"].tolist()
        callback.evaluations_length = data["ep_lengths"].tolist()
    if callback.evaluations_results:
        callback.best_mean_reward = float(max(np.mean(r) for r in callback.evaluations_results))


def train_policy(
    market: Market,
    agent: AgentConfig,
    *,
    seed: int,
    train: tuple[TimeLike | None, TimeLike | None] = (None, None),
    validation: tuple[TimeLike, TimeLike] | None = None,
    settings: SimulationSettings | None = None,
    directory: str | Path | None = None,
    eval_freq: int = 5_000,
    n_eval_episodes: int = 1,
    checkpoint_freq: int = 0,
    resume: bool = False,
    progress_bar: bool = False,
    verbose: int = 0,
) -> SeedResult:
    """Train one agent on the ``train`` span; keep the best policy on ``validation``.

    Without ``directory`` nothing is written (no evaluation, checkpoints or logs): the
    in-memory agent is returned, which is what the ``rl`` strategy's own training uses.
    """
    from portfolio._agents import torch_threads

    with torch_threads(agent.torch_threads):
        return _train(market, agent, seed=seed, train=train, validation=validation,
                      settings=settings, directory=directory, eval_freq=eval_freq,
                      n_eval_episodes=n_eval_episodes, checkpoint_freq=checkpoint_freq,
                      resume=resume, progress_bar=progress_bar, verbose=verbose)


def _train(market, agent, *, seed, train, validation, settings, directory, eval_freq,
           n_eval_episodes, checkpoint_freq, resume, progress_bar, verbose) -> SeedResult:
    started = time.perf_counter()
    settings = settings or SimulationSettings()
    folder = None if directory is None else Path(directory)
    if folder is None and (resume or validation is not None or checkpoint_freq):
        raise ConfigError("validation, checkpoints and resume need a directory to write to")
    envs = make_vec_env(market, n_envs=agent.n_envs, vec_env=agent.vec_env, seed=seed,
                        start=train[0], end=train[1], settings=settings)
    card = _card(market, agent, settings, seed, envs, train, validation)
    eval_env = None
    if validation is not None:
        from stable_baselines3.common.monitor import Monitor
        from stable_baselines3.common.vec_env import DummyVecEnv

        val = PortfolioEnv(market, start=validation[0], end=validation[1], settings=settings,
                           episode_length=None)
        eval_env = DummyVecEnv([lambda: Monitor(val)])
    try:
        tensorboard = None if folder is None else str(folder / "tb")
        model = build_model(agent, envs, seed=seed, tensorboard_log=tensorboard,
                            verbose=verbose)
        done = 0
        if resume:
            done = _resume(model, folder, agent)
        callbacks = []
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            write_card(folder, card)
            if eval_env is not None and eval_freq > 0:
                from stable_baselines3.common.callbacks import EvalCallback

                evaluation = EvalCallback(eval_env, best_model_save_path=str(folder),
                                          log_path=str(folder),
                                          eval_freq=max(eval_freq // agent.n_envs, 1),
                                          n_eval_episodes=n_eval_episodes,
                                          deterministic=True, verbose=0)
                if resume:
                    _restore_evaluations(evaluation, folder)
                callbacks.append(evaluation)
            if checkpoint_freq > 0:
                callbacks.append(_checkpoint_callback(folder, checkpoint_freq, agent.n_envs))
        remaining = agent.total_timesteps - done
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=callbacks or None,
                        progress_bar=progress_bar, reset_num_timesteps=not resume,
                        tb_log_name=agent.algorithm)
        best = None
        model_path = None
        if folder is not None:
            model.save(str(folder / "final_model.zip"))
            evaluation = next((c for c in callbacks if hasattr(c, "best_mean_reward")), None)
            if evaluation is not None and np.isfinite(evaluation.best_mean_reward):
                best = float(evaluation.best_mean_reward)
            card = card.model_copy(update={"num_timesteps": int(model.num_timesteps),
                                           "best_validation_reward": best})
            write_card(folder, card)
            best_zip = folder / "best_model.zip"
            model_path = best_zip if best_zip.is_file() else folder / "final_model.zip"
    finally:
        envs.close()
        if eval_env is not None:
            eval_env.close()
    return SeedResult(seed=seed, directory=folder, model_path=model_path,
                      num_timesteps=int(model.num_timesteps), best_validation_reward=best,
                      elapsed_s=time.perf_counter() - started, model=model)


def _resume(model, folder: Path | None, agent: AgentConfig) -> int:
    """Load the newest checkpoint (or the final model) into ``model``; timesteps done."""
    assert folder is not None  # checked by the caller
    latest = _latest_checkpoint(folder)
    final = folder / "final_model.zip"
    if latest is None and not final.is_file():
        raise ConfigError(f"nothing to resume in {folder}: no checkpoints/step_<n>.zip and no "
                          "final_model.zip; start a fresh run (drop --resume) or set "
                          "rl.checkpoint_freq so that runs can be resumed")
    from portfolio._agents import read_card

    card_path = folder / "policy.json"
    done_final = read_card(card_path).num_timesteps if card_path.is_file() else 0
    if latest is not None and latest[0] >= done_final:
        steps, path = latest
    else:
        steps, path = done_final, final
    load_weights(model, PolicyFiles(path, card_path))
    model.num_timesteps = int(steps)
    model._num_timesteps_at_start = int(steps)
    if steps > agent.total_timesteps:
        raise ConfigError(f"{path} has trained {steps} timesteps, more than "
                          f"agent.total_timesteps={agent.total_timesteps}; raise it to resume")
    return int(steps)


def _card(market: Market, agent: AgentConfig, settings: SimulationSettings, seed: int, envs,
          train, validation) -> PolicyCard:
    def span(bounds) -> list[str]:
        if bounds is None:
            return []
        env = PortfolioEnv(market, start=bounds[0], end=bounds[1], settings=settings,
                           episode_length=None, check_signals=False)
        ts = market.panel.ts
        return [str(np.datetime64(ts[env.first_bar], "s")), str(np.datetime64(ts[env.last_bar],
                                                                                 "s"))]

    return PolicyCard(agent=agent, env=market.config, settings=settings,
                      assets=list(market.panel.assets),
                      obs_dim=int(envs.observation_space.shape[0]),
                      periods_per_year=float(market.panel.periods_per_year), seed=seed,
                      train_span=span(train), validation_span=span(validation))
