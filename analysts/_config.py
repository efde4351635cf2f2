"""Building analysts from config values, with errors that name the key.

Mirrors ``strategies._base``: analysts sit upstream of strategies in the data flow and
must not import them, so the few lines of config plumbing live here too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import ValidationError

from analysts.base import AnalystConfig
from engine.errors import ConfigError


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix for error messages, or ``""``."""
    options = list(options)
    word = str(word)
    matches = difflib.get_close_matches(word, options, n=1) or [
        option for option in options if word and word.lower() in option.lower()
    ][:1]
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def build_config(config_class: type[AnalystConfig], owner: str, values: dict[str, Any]):
    """Validate ``values`` into ``config_class`` or raise one ConfigError naming the keys."""
    try:
        return config_class(**values)
    except ValidationError as exc:
        fields = sorted(config_class.model_fields)
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
                problems.append(
                    f"unknown key {key!r}{did_you_mean(key, fields)}; valid keys: "
                    f"{', '.join(fields)}"
                )
            elif error["type"] == "missing":
                problems.append(f"{key} is required; set it")
            elif key:
                problems.append(f"{key}: {message} (got {error.get('input')!r})")
            else:
                problems.append(message)
        raise ConfigError(f"{owner} config: " + "; ".join(problems)) from None


class ConfiguredAnalyst:
    """Base class pairing an analyst with its frozen config class.

    Build one with keyword values (``MomentumAnalyst(lookback=60)``) or a ready config
    object, never both.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[AnalystConfig]]

    def __init__(self, config: AnalystConfig | None = None, /, **values: Any) -> None:
        if config is not None and values:
            raise ConfigError(
                f"{self.name}: pass either a config object or keyword values, not both "
                f"(got a config and {sorted(values)})"
            )
        if config is None:
            config = build_config(self.config_class, f"analyst {self.name!r}", values)
        elif not isinstance(config, self.config_class):
            raise ConfigError(
                f"{self.name}: expected a {self.config_class.__name__}, got "
                f"{type(config).__name__}; build it with {self.config_class.__name__}(...)"
            )
        self.config = config

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({values})"
