"""Which executor runs a fan-out, as a validated config (YAML ``executor:`` or CLI flags)."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.configs import build_config, describe_validation_error
from engine.errors import ConfigError

ExecutorKind = Literal["local", "ray", "inline"]
ADDRESS_ENV = "ALFRED_RAY_ADDRESS"  # the Ray address when neither the CLI nor the spec has one


class ExecutorSpec(BaseModel):
    """How tasks fan out.

    * ``local`` (default): a pool of ``workers`` fresh Python processes on this machine;
      ``auto`` = one per CPU core.
    * ``ray``: Ray tasks; ``address`` is ``local`` (start a private Ray instance with
      ``workers`` CPUs, shut down afterwards), ``auto`` (join the cluster this machine is
      part of) or ``ray://host:port`` / ``host:port`` (a remote cluster); default: the
      ``ALFRED_RAY_ADDRESS`` environment variable, else ``local``. ``resources``
      are per task, e.g. ``{num_gpus: 0.25}`` for analyst training.
    * ``inline``: tasks run one after another in this process: for debugging (breakpoints
      work) and for tiny fan-outs where starting processes costs more than the work.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ExecutorKind = "local"
    workers: int | Literal["auto"] = "auto"
    address: str = Field(default_factory=lambda: os.environ.get(ADDRESS_ENV) or "local")
    resources: dict[str, float] = Field(default_factory=dict)
    connect_timeout_s: float = Field(20.0, gt=0)
    threads_per_worker: int | None = Field(
        None, ge=1, description="BLAS/torch/numba/polars threads in each worker; "
        "default: cores // workers (at least 1), so workers do not oversubscribe the CPU")

    @field_validator("workers")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(
                f"workers must be 'auto' or at least 1, got {value}; use 1 to run tasks one "
                "at a time (kind: inline runs them in this process)"
            )
        return value

    @model_validator(mode="after")
    def _within_this_machine(self, info: ValidationInfo) -> ExecutorSpec:
        """More local workers than cores only slows a fan-out down (and a typo of 10000
        would start 10000 interpreters), so that takes an explicit CLI ``--workers``."""
        remote = self.kind == "ray" and self.address != "local"
        cores = os.cpu_count() or 1
        from_cli = bool(info.context and info.context.get("workers_from_cli"))
        if isinstance(self.workers, int) and self.workers > cores and not (remote or from_cli):
            raise ValueError(
                f"workers {self.workers} is more than this machine's {cores} CPU cores; use "
                f"'auto' (one per core) or at most {cores}, or pass --workers "
                f"{self.workers} on the command line to start that many anyway")
        return self

    @field_validator("resources")
    @classmethod
    def _known_resources(cls, value: dict[str, float]) -> dict[str, float]:
        for key, amount in value.items():
            if amount < 0:
                raise ValueError(f"resources.{key} must be >= 0, got {amount}")
        return value

    def n_workers(self) -> int:
        """The worker count ``auto`` stands for on this machine."""
        if self.workers == "auto":
            return max(1, os.cpu_count() or 1)
        return int(self.workers)

    def worker_threads(self) -> int:
        if self.threads_per_worker is not None:
            return self.threads_per_worker
        return max(1, (os.cpu_count() or 1) // self.n_workers())


def parse_executor_spec(spec: ExecutorSpec | str | dict[str, Any] | None,
                        **overrides: Any) -> ExecutorSpec:
    """``None`` -> local/auto; a kind name; a mapping; or a ready spec. ``overrides`` that
    are not None (CLI flags) win over the spec's own values."""
    if spec is None:
        values: dict[str, Any] = {}
    elif isinstance(spec, ExecutorSpec):
        values = spec.model_dump()
    elif isinstance(spec, str):
        values = {"kind": spec}
    elif isinstance(spec, dict):
        values = dict(spec)
    else:
        raise ConfigError(
            f"executor must be a kind name ('local', 'ray', 'inline') or a mapping, got "
            f"{type(spec).__name__}"
        )
    values.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(values.get("workers"), str) and values["workers"] != "auto":
        text = values["workers"]
        try:
            values["workers"] = int(text)
        except ValueError:
            raise ConfigError(f"executor workers must be 'auto' or a whole number, got "
                              f"{text!r}") from None
    if overrides.get("workers") is None:
        return build_config(ExecutorSpec, "executor", values)
    try:  # a worker count typed on the command line may exceed the cores
        return ExecutorSpec.model_validate(values, context={"workers_from_cli": True})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, "executor", ExecutorSpec)) from None
