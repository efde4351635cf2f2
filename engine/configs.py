"""Building frozen configs from user values, with errors that name the key.

Shared by strategies, analysts and the RL manager so every component reports an unknown
key, a wrong type or a missing value the same way: one :class:`ConfigError` naming the
component and the key, with "did you mean" — never a pydantic traceback.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.errors import ConfigError
from engine.text import did_you_mean, shorten

C = TypeVar("C", bound=BaseModel)


def describe_validation_error(exc: ValidationError, owner: str,
                              config_class: type[BaseModel]) -> str:
    """One paragraph naming every bad key of ``config_class`` and how to fix it."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = _cut(str(error["msg"]).removeprefix("Value error, "))
        if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            fields = sorted(_fields_at(config_class, error["loc"][:-1]))
            last = str(error["loc"][-1]) if error["loc"] else key
            problems.append(
                f"unknown key {shorten(key, 80)}{did_you_mean(last[:200], fields)}; valid keys: "
                f"{', '.join(fields)}"
            )
        elif error["type"] == "missing":
            problems.append(f"{key} is required; set it")
        elif key and " got " in message:
            problems.append(f"{key}: {message}")
        elif key:
            problems.append(f"{key}: {message} (got {shorten(error.get('input'))})")
        else:
            problems.append(message)
    return f"{owner} config: " + "; ".join(problems)


def _cut(message: str, limit: int = 1000) -> str:
    """A validator's sentence may quote a user value: bounded like every echo."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... ({len(message):,} characters)"


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the (nested) model at ``loc``; the top level's when unknown."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return list(current.model_fields)
        current = annotation
    return list(current.model_fields)


def build_config(config_class: type[C], owner: str, values: dict[str, Any]) -> C:
    """Validate ``values`` into ``config_class`` or raise one ConfigError naming the keys."""
    try:
        return config_class(**values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, owner, config_class)) from None


class _RaisesConfigError(type(BaseModel)):
    """``Model(...)`` called from Python raises ConfigError instead of ValidationError.

    Only direct calls go through the metaclass; a model nested in a scenario is built by
    pydantic itself, so its structured error reaches the scenario, which names the file,
    key path and line.
    """

    def __call__(cls, *args: Any, **values: Any) -> Any:
        try:
            return super().__call__(*args, **values)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, cls.owner, cls)) from None


class Frozen(BaseModel, metaclass=_RaisesConfigError):
    """Base of every settings model: frozen, closed (unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    owner: ClassVar[str] = "settings"


class Configured:
    """Base of a component paired with its frozen config class (strategies, analysts).

    Build one with keyword values (``SimpleStrategy(threshold=0.6)``) or with a ready
    config object (``SimpleStrategy(SimpleConfig(threshold=0.6))``), never both.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "component"  # "strategy", "analyst": names the owner in errors
    config_class: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel | None = None, /, **values: Any) -> None:
        if config is not None and values:
            raise ConfigError(
                f"{self.name}: pass either a config object or keyword values, not both "
                f"(got a config and {sorted(values)})"
            )
        if config is None:
            config = build_config(self.config_class, f"{self.kind} {self.name!r}", values)
        elif not isinstance(config, self.config_class):
            raise ConfigError(
                f"{self.name}: expected a {self.config_class.__name__}, got "
                f"{type(config).__name__}; build it with {self.config_class.__name__}(...)"
            )
        self.config = config

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({values})"
