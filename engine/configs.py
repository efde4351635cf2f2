"""Building frozen configs from user values, with errors that name the key.

Shared by strategies, analysts and the RL manager so every component reports an unknown
key, a wrong type or a missing value the same way: one :class:`ConfigError` naming the
component and the key, with "did you mean" — never a pydantic traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from engine.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix for error messages, or ``""``."""
    options = list(options)
    word = str(word)
    matches = difflib.get_close_matches(word, options, n=1) or [
        option for option in options if word and word.lower() in option.lower()
    ][:1]
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def describe_validation_error(exc: ValidationError, owner: str,
                              config_class: type[BaseModel]) -> str:
    """One paragraph naming every bad key of ``config_class`` and how to fix it."""
    fields = sorted(config_class.model_fields)
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            problems.append(
                f"unknown key {key!r}{did_you_mean(key, fields)}; valid keys: {', '.join(fields)}"
            )
        elif error["type"] == "missing":
            problems.append(f"{key} is required; set it")
        elif key:
            problems.append(f"{key}: {message} (got {error.get('input')!r})")
        else:
            problems.append(message)
    return f"{owner} config: " + "; ".join(problems)


def build_config(config_class: type[C], owner: str, values: dict[str, Any]) -> C:
    """Validate ``values`` into ``config_class`` or raise one ConfigError naming the keys."""
    try:
        return config_class(**values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, owner, config_class)) from None


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
