"""Analysts by registry name: the only way a scenario picks one (never an import path)."""

from __future__ import annotations

from typing import Any

from analysts._config import ConfiguredAnalyst, did_you_mean
from analysts._ensemble import CompositeAnalyst, EnsembleAnalyst, RegimeSwitchAnalyst
from analysts._file import FileAnalyst
from analysts._foundation_analysts import KronosAnalyst, KronosEnsembleAnalyst, TotoAnalyst
from analysts._lstm import LSTMAnalyst
from analysts._magnitude import MagnitudeAnalyst
from analysts._price import MomentumAnalyst, NaiveAnalyst
from engine.configs import build_config
from engine.errors import ConfigError

REGISTRY: dict[str, type[ConfiguredAnalyst]] = {
    cls.name: cls
    for cls in (NaiveAnalyst, MomentumAnalyst, FileAnalyst, LSTMAnalyst, MagnitudeAnalyst,
                EnsembleAnalyst, RegimeSwitchAnalyst, TotoAnalyst, KronosAnalyst,
                KronosEnsembleAnalyst)
}


def available() -> list[str]:
    """Registered analyst names, sorted."""
    return sorted(REGISTRY)


def get_analyst(name: str, **config: Any) -> ConfiguredAnalyst:
    """Build the analyst registered as ``name`` from config values.

    Unknown names and invalid config values raise :class:`~engine.errors.ConfigError`
    naming the analyst, the key and the valid choices.
    """
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(
            f"unknown analyst {name!r}{did_you_mean(str(name), REGISTRY)}; valid analysts: "
            f"{', '.join(available())}"
        )
    if not issubclass(cls, CompositeAnalyst):
        return cls(**config)
    built = build_config(cls.config_class, f"analyst {name!r}", config)
    members = {}
    for key, spec in cls.member_specs(built).items():
        where = (f"ensemble member {key!r}" if cls is EnsembleAnalyst
                 else f"{name} member {key!r}")
        try:
            members[key] = get_analyst(spec.name, **spec.config)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return cls(built, members=members)
