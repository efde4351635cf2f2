"""Combining analysts: a validation-weighted ensemble and a volatility regime switch.

``ensemble`` -- members are any registered analysts (an ensemble of Kronos temperature
ensembles and Toto is an ensemble of ensembles). ``fit`` holds out the last
``validation_fraction`` of the bars up to ``until``, fits every member on the bars before
it, scores each member's ``pred_return`` against the realised ``horizon``-bar return on
the held-out bars (mean absolute error; only labels observed by ``until`` are used), then
refits the members on everything up to ``until``. Weights are ``1 / MAE``, normalised.
``predict`` averages the members' ``pred_return``, ``prob_up`` and ``uncertainty`` with
those weights (renormalised over the members that have a forecast at a row). With
``combine: best_per_symbol`` each symbol instead follows the one member with the lowest
validation MAE on that symbol (model selection per symbol; a ``member`` column says which).

``regime_switch`` -- two members, ``calm`` and ``volatile``: at each bar the asset's
trailing realised volatility (``vol_window`` returns up to that bar, annualised) picks
``volatile`` when it exceeds ``threshold``, else ``calm``. Causal by construction.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from analysts._bars import as_datetime, check_bars, in_window
from analysts._config import ConfiguredAnalyst
from analysts.base import AnalystConfig, TimeLike
from engine.errors import ConfigError, DataError

_SIGNALS = ("pred_return", "prob_up", "uncertainty")


class MemberSpec(BaseModel):
    """One member: a registered analyst name and its config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None


class EnsembleConfig(AnalystConfig):
    members: list[MemberSpec] = Field(min_length=2)
    horizon: int = Field(5, ge=1, description="bars of the realised return members are "
                         "scored against")
    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    refit: bool = Field(True, description="refit members on all bars up to until after "
                        "scoring them")
    min_mae: float = Field(1e-6, gt=0.0, description="floor on a member's MAE (caps its "
                           "weight)")
    combine: Literal["weighted", "best_per_symbol"] = Field(
        "weighted", description="weighted: 1/MAE average of all members; best_per_symbol: "
        "each symbol follows the member with the lowest validation MAE on that symbol")


class RegimeSwitchConfig(AnalystConfig):
    calm: MemberSpec
    volatile: MemberSpec
    vol_window: int = Field(21, ge=2)
    threshold: float = Field(0.25, gt=0.0, description="annualised volatility above which "
                             "the volatile member speaks")
    periods_per_year: float | None = Field(None, gt=0.0, description="default: inferred "
                                           "from the bars")


class CompositeAnalyst(ConfiguredAnalyst):
    """An analyst made of other analysts, handed to it already built.

    :func:`analysts.get_analyst` builds the members named by :meth:`member_specs` (from
    the registry) and passes them in, so this module never looks names up itself.
    """

    @classmethod
    def member_specs(cls, config: Any) -> dict[str, MemberSpec]:
        """The members to build, by label (each composite names its own)."""
        return {}

    def __init__(self, config: AnalystConfig | None = None, /, *,
                 members: dict[str, Any] | None = None, **values: Any) -> None:
        super().__init__(config, **values)
        expected = list(self.member_specs(self.config))
        if members is None or sorted(members) != sorted(expected):
            raise ConfigError(
                f"analyst {self.name!r} is built with its members: use "
                f"analysts.get_analyst({self.name!r}, ...), which builds {expected} from the "
                "registry")
        self.built = members


def _member_frame(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    cols = [c for c in _SIGNALS if c in frame.columns]
    if "pred_return" not in cols:
        raise DataError(f"ensemble member {label!r} emits no pred_return (columns: "
                        f"{frame.columns}); ensembles average pred_return forecasts")
    return frame.select("ts", "asset", *[pl.col(c).alias(f"{c}@{label}") for c in cols])


class EnsembleAnalyst(CompositeAnalyst):
    """Members weighted by inverse validation MAE (see the module docstring)."""

    name: ClassVar[str] = "ensemble"
    config_class: ClassVar[type[AnalystConfig]] = EnsembleConfig
    config: EnsembleConfig

    @classmethod
    def member_specs(cls, config: EnsembleConfig) -> dict[str, MemberSpec]:
        labels = [m.label or f"{i}:{m.name}" for i, m in enumerate(config.members)]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"ensemble member labels repeat: {labels}")
        return dict(zip(labels, config.members, strict=True))

    def __init__(self, config: EnsembleConfig | None = None, /, *,
                 members: dict[str, Any] | None = None, **values: Any) -> None:
        super().__init__(config, members=members, **values)
        self.labels = list(self.member_specs(self.config))
        self.members = [self.built[label] for label in self.labels]
        self.weights: dict[str, float] = {}
        self.validation: dict[str, float] = {}
        self.validation_by_symbol: dict[str, dict[str, float]] = {}
        self.best: dict[str, str] = {}  # symbol -> member label (best_per_symbol)

    def fit(self, bars: pl.DataFrame, until: TimeLike | None = None) -> Self:
        frame = check_bars(bars, self.name)
        cut = as_datetime(until, frame["ts"].dtype, "until") if until is not None else \
            frame["ts"].max()
        seen = bars.filter(pl.col("ts") <= cut)
        stamps = seen["ts"].unique().sort()
        h = self.config.horizon
        n_val = int(stamps.len() * self.config.validation_fraction)
        if n_val <= h + 1:
            raise DataError(f"analyst 'ensemble': {stamps.len()} bars up to {cut} leave "
                            f"{n_val} for validation, fewer than the horizon {h} + 2; give "
                            "more bars or raise validation_fraction")
        val_start, label_end = stamps[-n_val], stamps[-h - 1]
        early = seen.filter(pl.col("ts") < val_start)
        realised = _realised(frame.filter(pl.col("ts") <= cut), h)
        for member, label in zip(self.members, self.labels, strict=True):
            member.fit(early, until=early["ts"].max())
            forecast = member.predict(seen, start=val_start, end=label_end)
            scored = forecast.select("ts", "asset", "pred_return").join(
                realised, on=["ts", "asset"], how="inner").drop_nulls()
            if scored.height == 0:
                raise DataError(f"ensemble member {label!r} made no forecast on the "
                                f"validation bars {val_start} to {label_end}")
            mae = float((scored["pred_return"] - scored["_real"]).abs().mean())
            self.validation[label] = mae
            per = scored.group_by("asset").agg(
                (pl.col("pred_return") - pl.col("_real")).abs().mean().alias("mae"))
            for asset, value in per.iter_rows():
                self.validation_by_symbol.setdefault(asset, {})[label] = float(value)
        inverse = {k: 1.0 / max(v, self.config.min_mae) for k, v in self.validation.items()}
        total = sum(inverse.values())
        self.weights = {k: v / total for k, v in inverse.items()}
        self.best = {asset: min(errors, key=errors.get)
                     for asset, errors in self.validation_by_symbol.items()}
        if self.config.refit:
            for member in self.members:
                member.fit(seen, until=cut)
        return self

    def fit_summary(self) -> dict[str, Any]:
        """What the fit decided, for the run report (analysts.json)."""
        if not self.weights:
            return {}
        out: dict[str, Any] = {
            "combine": self.config.combine, "horizon": self.config.horizon,
            "weights": self.weights, "validation_mae": self.validation,
            "validation_mae_by_symbol": self.validation_by_symbol}
        if self.config.combine == "best_per_symbol":
            out["best_member_by_symbol"] = self.best
        members = {label: m.fit_summary() for label, m in zip(self.labels, self.members,
                                                              strict=True)
                   if callable(getattr(m, "fit_summary", None)) and m.fit_summary()}
        if members:
            out["members"] = members
        return out

    def predict(self, bars: pl.DataFrame, start: TimeLike | None = None,
                end: TimeLike | None = None) -> pl.DataFrame:
        if not self.weights:
            raise ConfigError("analyst 'ensemble' must be fit before predict (its weights come "
                              "from the members' validation errors)")
        merged = None
        for member, label in zip(self.members, self.labels, strict=True):
            part = _member_frame(member.predict(bars, start=start, end=end), label)
            merged = part if merged is None else merged.join(part, on=["ts", "asset"],
                                                             how="full", coalesce=True)
        out = merged.select("ts", "asset")
        if self.config.combine == "best_per_symbol":
            # each symbol's chosen member (symbols unseen in validation: the best overall)
            overall = min(self.validation, key=self.validation.get)
            choice = pl.col("asset").replace_strict(self.best, default=overall)
            for signal in _SIGNALS:
                cols = {label: f"{signal}@{label}" for label in self.labels
                        if f"{signal}@{label}" in merged.columns}
                if not cols:
                    continue
                expr = pl.lit(None, pl.Float64)
                for label, col in cols.items():
                    expr = pl.when(choice == label).then(pl.col(col)).otherwise(expr)
                out = out.with_columns(merged.select(expr).to_series().alias(signal))
            out = out.with_columns(merged.select(choice).to_series().alias("member"))
            out = out.drop_nulls("pred_return").with_columns(
                pl.col("pred_return").alias("score"))
            return out.sort("ts", "asset")
        for signal in _SIGNALS:
            cols = [(f"{signal}@{label}", self.weights[label]) for label in self.labels
                    if f"{signal}@{label}" in merged.columns]
            if not cols:
                continue
            num = sum(pl.col(c).fill_null(0.0) * w for c, w in cols)
            den = sum(pl.when(pl.col(c).is_not_null()).then(w).otherwise(0.0) for c, w in cols)
            out = out.with_columns(merged.select(pl.when(den > 0).then(num / den))
                                   .to_series().alias(signal))
        out = out.drop_nulls("pred_return").with_columns(pl.col("pred_return").alias("score"))
        return out.sort("ts", "asset")


class RegimeSwitchAnalyst(CompositeAnalyst):
    """The calm or the volatile member by trailing volatility (see the module docstring)."""

    name: ClassVar[str] = "regime_switch"
    config_class: ClassVar[type[AnalystConfig]] = RegimeSwitchConfig
    config: RegimeSwitchConfig

    @classmethod
    def member_specs(cls, config: RegimeSwitchConfig) -> dict[str, MemberSpec]:
        return {"calm": config.calm, "volatile": config.volatile}

    def __init__(self, config: RegimeSwitchConfig | None = None, /, *,
                 members: dict[str, Any] | None = None, **values: Any) -> None:
        super().__init__(config, members=members, **values)
        self.calm, self.volatile = self.built["calm"], self.built["volatile"]

    def fit(self, bars: pl.DataFrame, until: TimeLike | None = None) -> Self:
        self.calm.fit(bars, until=until)
        self.volatile.fit(bars, until=until)
        return self

    def fit_summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"threshold": self.config.threshold,
                               "vol_window": self.config.vol_window}
        for key, member in (("calm", self.calm), ("volatile", self.volatile)):
            summary = getattr(member, "fit_summary", None)
            out[key] = {"analyst": member.name,
                        **(summary() if callable(summary) else {})}
        return out

    def predict(self, bars: pl.DataFrame, start: TimeLike | None = None,
                end: TimeLike | None = None) -> pl.DataFrame:
        from engine.data import infer_periods_per_year

        frame = check_bars(bars, self.name)
        ppy = self.config.periods_per_year or infer_periods_per_year(frame["ts"].unique())
        n = self.config.vol_window
        vol = frame.with_columns(
            (pl.col("close").log().diff().over("asset").rolling_std(n, ddof=1).over("asset")
             * math.sqrt(ppy)).alias("_vol")).select("ts", "asset", "_vol")
        calm = _member_frame(self.calm.predict(bars, start=start, end=end), "calm")
        volatile = _member_frame(self.volatile.predict(bars, start=start, end=end), "volatile")
        both = (calm.join(volatile, on=["ts", "asset"], how="full", coalesce=True)
                .join(vol, on=["ts", "asset"], how="left"))
        hot = pl.col("_vol").fill_null(0.0) > self.config.threshold
        cols = []
        for signal in _SIGNALS:
            a, b = f"{signal}@calm", f"{signal}@volatile"
            if a in both.columns or b in both.columns:
                av = pl.col(a) if a in both.columns else pl.lit(None, pl.Float64)
                bv = pl.col(b) if b in both.columns else pl.lit(None, pl.Float64)
                cols.append(pl.when(hot).then(bv).otherwise(av).alias(signal))
        out = both.select("ts", "asset", *cols, hot.alias("volatile_regime"))
        out = out.drop_nulls("pred_return").with_columns(pl.col("pred_return").alias("score"))
        return in_window(out, start, end).sort("ts", "asset")


def _realised(frame: pl.DataFrame, horizon: int) -> pl.DataFrame:
    return frame.sort("asset", "ts").with_columns(
        (pl.col("close").shift(-horizon).over("asset") / pl.col("close") - 1.0).alias("_real")
    ).select("ts", "asset", "_real")
