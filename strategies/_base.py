"""What every built-in strategy shares: a frozen config and one way to build it.

A strategy is a small policy object holding a validated, immutable config. Building the
config from user values (a YAML mapping, keyword arguments) goes through
:func:`build_config` so that every mistake -- an unknown key, a value of the wrong type,
thresholds out of order -- surfaces as one :class:`~engine.errors.ConfigError` that names
the strategy and the key, instead of a pydantic traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from engine.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


class StrategyConfig(BaseModel):
    """Base of every strategy config: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix for error messages, or ``""``."""
    options = list(options)
    word = str(word)
    matches = difflib.get_close_matches(word, options, n=1) or [
        option for option in options if word and word.lower() in option.lower()
    ][:1]
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def fmt_ts(ts: np.datetime64) -> str:
    """A bar timestamp for messages: ``2024-01-05`` for daily bars, else to the second."""
    text = np.datetime_as_string(np.datetime64(ts, "s"))
    return text.removesuffix("T00:00:00")


def build_config(config_class: type[C], owner: str, values: dict[str, Any]) -> C:
    """Validate ``values`` into ``config_class`` or raise one ConfigError naming the keys."""
    try:
        return config_class(**values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, owner, config_class)) from None


def describe_validation_error(exc: ValidationError, owner: str, config_class: type[BaseModel]) -> str:
    fields = sorted(config_class.model_fields)
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
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


class ConfiguredStrategy:
    """Base class pairing a strategy with its config class.

    Build one with keyword values (``SimpleStrategy(threshold=0.6)``) or with a ready
    config object (``SimpleStrategy(SimpleConfig(threshold=0.6))``), never both.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[StrategyConfig]]

    def __init__(self, config: StrategyConfig | None = None, /, **values: Any) -> None:
        if config is not None and values:
            raise ConfigError(
                f"{self.name}: pass either a config object or keyword values, not both "
                f"(got a config and {sorted(values)})"
            )
        if config is None:
            config = build_config(self.config_class, f"strategy {self.name!r}", values)
        elif not isinstance(config, self.config_class):
            raise ConfigError(
                f"{self.name}: expected a {self.config_class.__name__}, got "
                f"{type(config).__name__}; build it with {self.config_class.__name__}(...)"
            )
        self.config = config

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({values})"
