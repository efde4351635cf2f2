"""Toto configuration, key for key the ``config.json`` of the published checkpoints.

The field names are those of Datadog's ``config.json`` (Toto-Open-Base-1.0), so a
published folder loads as is and :meth:`TotoConfig.to_dict` writes a file the
reference implementation reads back. Keys this module does not know are dropped with a
:mod:`warnings` note; keys the reference knows but that do not change the maths here
(``pre_xformers_checkpoint``) are dropped silently.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

# The class names the reference writes into config.json (its pickled class repr).
SCALER_CAUSAL_PATCH = "<class 'model.scaler.CausalPatchStdMeanScaler'>"
SCALER_CAUSAL = "<class 'model.scaler.CausalStdMeanScaler'>"
SCALER_STD_MEAN = "<class 'model.scaler.StdMeanScaler'>"
SCALERS = (SCALER_CAUSAL_PATCH, SCALER_CAUSAL, SCALER_STD_MEAN)

DIST_MIXTURE = "<class 'model.distribution.MixtureOfStudentTsOutput'>"
DIST_STUDENT_T = "<class 'model.distribution.StudentTOutput'>"
DISTRIBUTIONS = (DIST_MIXTURE, DIST_STUDENT_T)

# Keys of the reference's config that carry no meaning for this implementation.
_SILENTLY_IGNORED = frozenset({"pre_xformers_checkpoint"})


@dataclass
class TotoConfig:
    """Hyper-parameters of a Toto model (names as in the published ``config.json``).

    ``use_memory_efficient_attention`` only chose xFormers kernels in the reference; it is
    kept for round trips and does not change the maths. ``dropout`` only acts in
    training mode.
    """

    patch_size: int = 64
    stride: int = 64
    embed_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_hidden_dim: int = 3072
    dropout: float = 0.1
    spacewise_every_n_layers: int = 12
    scaler_cls: str = SCALER_CAUSAL_PATCH
    output_distribution_classes: list[str] = field(default_factory=lambda: [DIST_MIXTURE])
    spacewise_first: bool = False
    output_distribution_kwargs: dict[str, Any] | None = field(
        default_factory=lambda: {"k_components": 24}
    )
    use_memory_efficient_attention: bool = True
    stabilize_with_global: bool = True
    scale_factor_exponent: float = 10.0

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ presets
    @classmethod
    def base(cls) -> TotoConfig:
        """The settings of Datadog/Toto-Open-Base-1.0 (151M parameters)."""
        return cls()

    @classmethod
    def tiny(cls, **overrides: Any) -> TotoConfig:
        """A tiny model for tests: 2 layers (time then space), embed 32, 2 heads, patch 8."""
        values: dict[str, Any] = {
            "patch_size": 8,
            "stride": 8,
            "embed_dim": 32,
            "num_layers": 2,
            "num_heads": 2,
            "mlp_hidden_dim": 64,
            "dropout": 0.0,
            "spacewise_every_n_layers": 2,
            "spacewise_first": False,
            "output_distribution_kwargs": {"k_components": 4},
            "use_memory_efficient_attention": False,
        }
        values.update(overrides)
        return cls(**values)

    # ------------------------------------------------------------------ derived
    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def k_components(self) -> int:
        """Mixture components (1 for the single Student-T head)."""
        if self.output_distribution_classes[0] == DIST_STUDENT_T:
            return 1
        return int((self.output_distribution_kwargs or {}).get("k_components", 1))

    @property
    def is_mixture(self) -> bool:
        return self.output_distribution_classes[0] == DIST_MIXTURE

    def layer_axes(self) -> list[str]:
        """``"time"`` or ``"space"`` for each layer, in the reference's order."""
        n = self.spacewise_every_n_layers
        if n == -1:
            return ["time"] * self.num_layers
        block = ["time"] * (n - 1)
        block = ["space", *block] if self.spacewise_first else [*block, "space"]
        return block * (self.num_layers // n)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        ints = ("patch_size", "stride", "embed_dim", "num_layers", "num_heads", "mlp_hidden_dim")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"TotoConfig.{name} must be a positive integer, got {value!r}")
        if self.stride != self.patch_size:
            raise ConfigError(
                f"TotoConfig: stride ({self.stride}) must equal patch_size ({self.patch_size}); "
                "overlapping patches are not supported (nor by the reference's decoder)"
            )
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"TotoConfig: embed_dim ({self.embed_dim}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        if self.head_dim % 2:
            raise ConfigError(
                f"TotoConfig: the head dimension embed_dim/num_heads = {self.head_dim} must be "
                "even for the rotary embedding"
            )
        n = self.spacewise_every_n_layers
        if n != -1 and (not isinstance(n, int) or n <= 0 or self.num_layers % n):
            raise ConfigError(
                f"TotoConfig: spacewise_every_n_layers ({n!r}) must be -1 or a positive divisor "
                f"of num_layers ({self.num_layers})"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"TotoConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.scaler_cls not in SCALERS:
            raise ConfigError(
                f"TotoConfig.scaler_cls {self.scaler_cls!r} is unknown; expected one of {SCALERS}"
            )
        classes = self.output_distribution_classes
        if not isinstance(classes, list | tuple) or not classes or classes[0] not in DISTRIBUTIONS:
            raise ConfigError(
                f"TotoConfig.output_distribution_classes {classes!r} is unknown; expected a "
                f"list whose first entry is one of {DISTRIBUTIONS}"
            )
        self.output_distribution_classes = list(classes)
        if self.is_mixture and self.k_components < 1:
            raise ConfigError(
                "TotoConfig.output_distribution_kwargs['k_components'] must be >= 1, got "
                f"{self.k_components}"
            )

    # ------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TotoConfig:
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in values if k not in known and k not in _SILENTLY_IGNORED)
        if unknown:
            warnings.warn(
                f"{source}: ignoring keys that Toto does not use: {', '.join(unknown)}",
                UserWarning,
                stacklevel=2,
            )
        kwargs = {k: v for k, v in values.items() if k in known}
        try:
            return cls(**kwargs)
        except TypeError as exc:  # pragma: no cover - dataclass signature errors
            raise ConfigError(f"{source}: {exc}") from exc

    @classmethod
    def from_json(cls, path: str | Path) -> TotoConfig:
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(values, source=str(path))

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
