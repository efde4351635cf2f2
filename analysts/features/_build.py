"""Build the feature frame for a bars frame: groups of indicators, VIX, cross-sectional ranks.

Features are computed once per (dataset, feature config) and cached: in memory for the
life of the process (a small LRU, so tuning trials and the analysts of one scenario share
one computation) and, when ``cache_dir`` is given, as parquet on disk keyed by a content
hash of the bars, so a second process (another tuning worker) reuses it too.

What a group needs is declared next to it. ``groups=None`` ("auto") takes every group the
bars' columns allow, so close-only data quietly gets close-only features; naming a group
whose columns are missing is an error that says which columns it needs.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analysts.features import _indicators as ind
from engine.errors import ConfigError, DataError

KEYS = ("ts", "asset")
_OHLCV = ("open", "high", "low", "close", "volume")


class FeatureConfig(BaseModel):
    """Which features to build. ``groups=None`` means every group the data allows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: tuple[str, ...] | None = None
    ma_windows: tuple[int, ...] = (7, 30, 90, 180)
    regime_low: float = Field(0.8, gt=0.0)
    regime_high: float = Field(1.2, gt=0.0)
    rank_columns: tuple[str, ...] = ("ret_1", "ret_5", "ret_20", "ma_gap_30", "hist_vol_20")

    @field_validator("groups")
    @classmethod
    def _known_groups(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("groups is empty; list feature groups or leave it unset (auto)")
        unknown = [g for g in value if g not in GROUPS]
        if unknown:
            raise ValueError(
                f"unknown feature group(s) {unknown}; valid groups: {', '.join(GROUPS)}"
            )
        return value

    @field_validator("ma_windows")
    @classmethod
    def _positive_windows(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(w < 2 for w in value):
            raise ValueError(f"ma_windows must be a non-empty list of ints >= 2, got {value}")
        return value

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> FeatureConfig:
        if self.regime_low >= self.regime_high:
            raise ValueError(
                f"regime_low ({self.regime_low}) must be below regime_high ({self.regime_high})"
            )
        return self


# group -> (bars columns it needs, builder(config) -> {feature name: expression})
_Builder = Callable[[FeatureConfig], dict[str, pl.Expr]]


def _returns(_: FeatureConfig) -> dict[str, pl.Expr]:
    return {"ret_1": ind.ret(1), "log_ret_1": ind.log_ret(), "ret_5": ind.ret(5),
            "ret_10": ind.ret(10), "ret_20": ind.ret(20)}


def _price(_: FeatureConfig) -> dict[str, pl.Expr]:
    close, prev = pl.col("close"), pl.col("close").shift(1)
    return {"hl_range": (pl.col("high") - pl.col("low")) / close,
            "oc_return": close / pl.col("open") - 1.0,
            "gap_return": pl.col("open") / prev - 1.0}


def _regime(config: FeatureConfig) -> dict[str, pl.Expr]:
    ratio = ind.vol_regime_ratio(5, 20)
    return {"vol_regime_ratio": ratio,
            "vol_regime_code": ind.regime_code(ratio, config.regime_low, config.regime_high)}


GROUPS: dict[str, tuple[tuple[str, ...], _Builder]] = {
    "returns": (("close",), _returns),
    "price": (("open", "high", "low", "close"), _price),
    "ma_gaps": (("close",), lambda c: {f"ma_gap_{n}": ind.ma_gap(n) for n in c.ma_windows}),
    "rsi": (("close",), lambda c: {"rsi_14": ind.rsi(14)}),
    "macd": (("close",), lambda c: ind.macd(12, 26, 9)),
    "bollinger": (("close",), lambda c: ind.bollinger(20, 2.0)),
    "atr": (("high", "low", "close"), lambda c: {"atr_pct_14": ind.atr_pct(14)}),
    "stochastic": (("high", "low", "close"), lambda c: ind.stochastic(14, 3)),
    "williams_r": (("high", "low", "close"), lambda c: {"williams_r_14": ind.williams_r(14)}),
    "roc": (("close",), lambda c: {"roc_10": ind.roc(10)}),
    "obv": (("close", "volume"), lambda c: {"obv_change_20": ind.obv_change(20)}),
    "volume": (("volume",), lambda c: {"volume_ratio_5": ind.volume_ratio(5),
                                       "volume_ratio_20": ind.volume_ratio(20)}),
    "volatility": (("close",), lambda c: {"hist_vol_5": ind.hist_vol(5),
                                          "hist_vol_20": ind.hist_vol(20)}),
    "parkinson": (("high", "low"), lambda c: {"parkinson_vol_20": ind.parkinson_vol(20)}),
    "garman_klass": (("open", "high", "low", "close"),
                     lambda c: {"garman_klass_vol_20": ind.garman_klass_vol(20)}),
    "regime": (("close",), _regime),
    "vix": ((), lambda c: {}),  # needs a VIX series, handled in _vix_features
    "cross_section": (("close",), lambda c: {}),  # ranks of other features, added last
}


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features per (asset, ts), sorted by (asset, ts).

    ``frame`` holds ``ts, asset, close``, every feature column and the ``vol_regime``
    label (LOW/NORMAL/HIGH) when the regime group is on. ``columns`` are the numeric
    model inputs, in a fixed order. Warm-up rows hold nulls; :meth:`ready` marks the rows
    where every feature is known.
    """

    frame: pl.DataFrame
    columns: tuple[str, ...]
    groups: tuple[str, ...]

    def ready(self) -> pl.Expr:
        """True where every feature column is a finite number."""
        return pl.all_horizontal(
            [pl.col(c).is_not_null() & pl.col(c).is_finite() for c in self.columns]
        )


def resolve_groups(config: FeatureConfig, bars: pl.DataFrame,
                   has_vix: bool = False) -> tuple[str, ...]:
    """The feature groups :func:`build_features` will compute for these bars."""
    frame = _prepare(bars)
    return _resolve_groups(config, set(frame.columns), has_vix, frame["asset"].n_unique())


def _resolve_groups(config: FeatureConfig, columns: set[str], has_vix: bool,
                    n_assets: int) -> tuple[str, ...]:
    if config.groups is None:
        chosen = [g for g, (need, _) in GROUPS.items() if set(need) <= columns]
        if not has_vix:
            chosen.remove("vix")
        if n_assets < 2:
            chosen.remove("cross_section")
        return tuple(chosen)
    for group in config.groups:
        missing = [c for c in GROUPS[group][0] if c not in columns]
        if missing:
            raise DataError(
                f"feature group {group!r} needs bars column(s) {missing}, which the bars "
                f"lack (columns: {sorted(columns)}); load OHLCV data or drop {group!r} from "
                f"features.groups"
            )
        if group == "vix" and not has_vix:
            raise DataError(
                "feature group 'vix' needs a VIX series; pass vix=engine.load_bars('vix') "
                "(or set the analyst's vix_dataset) or drop 'vix' from features.groups"
            )
    return config.groups


def _frame_digest(frame: pl.DataFrame | None) -> str:
    if frame is None:
        return "none"
    digest = hashlib.sha256(str(frame.schema).encode())
    digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()[:24]


_CACHE: OrderedDict[str, FeatureSet] = OrderedDict()
_CACHE_SIZE = 8


def clear_feature_cache() -> None:
    """Forget the in-memory feature cache (tests; or to free memory)."""
    _CACHE.clear()


def build_features(
    bars: pl.DataFrame,
    config: FeatureConfig | None = None,
    *,
    vix: pl.DataFrame | None = None,
    cache_dir: str | Path | None = None,
) -> FeatureSet:
    """Features for every (asset, ts) of ``bars``, computed once per dataset and cached.

    ``vix``: a frame with ``ts`` and ``close`` (the bundled ``vix`` dataset) joined as-of
    (the last VIX close at or before each bar). Raises DataError for missing columns and
    for features that come out NaN on every row (say which input column is empty).
    """
    config = config or FeatureConfig()
    frame = _prepare(bars)
    vix_frame = _prepare_vix(vix, frame["ts"].dtype) if vix is not None else None
    key = hashlib.sha256(
        "|".join([_frame_digest(frame), _frame_digest(vix_frame),
                  config.model_dump_json()]).encode()
    ).hexdigest()[:32]
    disk = Path(cache_dir) / f"features-{key}.parquet" if cache_dir is not None else None
    if key in _CACHE:
        _CACHE.move_to_end(key)
        result = _CACHE[key]
    elif disk is not None and disk.is_file():
        meta = json.loads(disk.with_suffix(".json").read_text())
        result = FeatureSet(pl.read_parquet(disk), tuple(meta["columns"]), tuple(meta["groups"]))
    else:
        result = _compute(frame, config, vix_frame)
    if disk is not None and not disk.is_file():
        disk.parent.mkdir(parents=True, exist_ok=True)
        disk.with_suffix(".json").write_text(
            json.dumps({"columns": result.columns, "groups": result.groups}))
        tmp = disk.with_suffix(".partial")
        result.frame.write_parquet(tmp)
        tmp.replace(disk)  # the parquet appears last: its presence means both are complete
    _CACHE[key] = result
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result


def _prepare(bars: pl.DataFrame) -> pl.DataFrame:
    if not isinstance(bars, pl.DataFrame):
        raise DataError(f"features need bars as a polars DataFrame, got {type(bars).__name__}")
    missing = [c for c in ("ts", "asset", "close") if c not in bars.columns]
    if missing:
        raise DataError(
            f"bars lack column(s) {missing} (columns: {bars.columns}); features need at least "
            f"ts, asset, close"
        )
    if bars.height == 0:
        raise DataError("the bars frame is empty; features need bars to compute on")
    keep = [c for c in (*KEYS, *_OHLCV) if c in bars.columns]
    frame = bars.select(keep).with_columns(
        [pl.col(c).cast(pl.Float64) for c in _OHLCV if c in bars.columns]
    ).with_columns(pl.col("asset").cast(pl.String))
    if frame["ts"].dtype == pl.Date:
        frame = frame.with_columns(pl.col("ts").cast(pl.Datetime("us")))
    # An OHLCV column that is empty for every row carries no information: drop it so
    # "auto" does not pick groups that would come out all-NaN.
    for column in ("open", "high", "low", "volume"):
        if column in frame.columns and frame[column].fill_nan(None).null_count() == frame.height:
            frame = frame.drop(column)
    return frame.sort("asset", "ts")


def _prepare_vix(vix: pl.DataFrame, dtype: pl.DataType) -> pl.DataFrame:
    if not isinstance(vix, pl.DataFrame) or not {"ts", "close"} <= set(vix.columns):
        raise DataError("vix must be a polars DataFrame with ts and close columns "
                        "(e.g. engine.load_bars('vix'))")
    if "asset" in vix.columns and vix["asset"].n_unique() > 1:
        raise DataError(
            f"vix holds {vix['asset'].n_unique()} assets; pass the VIX series only"
        )
    out = vix.select("ts", pl.col("close").cast(pl.Float64)).sort("ts")
    from engine.data import match_ts_type

    return match_ts_type(out, dtype)


def _vix_features(vix: pl.DataFrame) -> pl.DataFrame:
    close = pl.col("close")
    return vix.select(
        "ts",
        close.alias("vix_level"),
        (close / close.shift(5) - 1.0).alias("vix_change_5"),
        (close / close.rolling_mean(20, min_samples=20) - 1.0).alias("vix_ma_gap_20"),
    )


def _compute(frame: pl.DataFrame, config: FeatureConfig,
             vix: pl.DataFrame | None) -> FeatureSet:
    groups = _resolve_groups(config, set(frame.columns), vix is not None,
                             frame["asset"].n_unique())
    exprs: dict[str, pl.Expr] = {}
    for group in groups:
        exprs.update(GROUPS[group][1](config))
    # Per-asset features whose ranks are asked for must exist even if their group is off.
    helpers = {}
    if "cross_section" in groups:
        available = {**_returns(config), **{f"ma_gap_{n}": ind.ma_gap(n) for n in (30,)},
                     "hist_vol_20": ind.hist_vol(20)}
        for name in config.rank_columns:
            if name not in exprs:
                if name not in available:
                    raise ConfigError(
                        f"features.rank_columns names {name!r}, which no feature group "
                        f"builds; rank one of {sorted({*exprs, *available})}"
                    )
                helpers[name] = available[name]
    out = frame.with_columns(
        [e.over("asset").alias(n) for n, e in {**exprs, **helpers}.items()]
    )
    columns = list(exprs)
    if "regime" in groups:
        out = out.with_columns(
            ind.regime_label(pl.col("vol_regime_ratio"), config.regime_low,
                             config.regime_high).alias("vol_regime")
        )
    if vix is not None and "vix" in groups:
        vix_feats = _vix_features(vix)
        out = out.sort("ts").join_asof(vix_feats, on="ts", strategy="backward").sort(
            "asset", "ts")
        columns += [c for c in vix_feats.columns if c != "ts"]
    if "cross_section" in groups:
        ranks = []
        for name in config.rank_columns:
            value = pl.col(name)
            known = value.is_not_null() & value.is_finite()
            n = known.sum().over("ts")
            rank = pl.when(known).then(value).otherwise(None).rank("average").over("ts")
            ranks.append(
                pl.when(~known).then(None).when(n > 1).then((rank - 1.0) / (n - 1.0))
                .otherwise(0.5).alias(f"cs_rank_{name}")
            )
        out = out.with_columns(ranks)
        columns += [f"cs_rank_{name}" for name in config.rank_columns]
    out = out.drop([h for h in helpers if h not in columns])
    _check_all_nan(out, columns, frame)
    return FeatureSet(out, tuple(columns), tuple(groups))


def _check_all_nan(out: pl.DataFrame, columns: list[str], frame: pl.DataFrame) -> None:
    finite = out.select(
        [(pl.col(c).is_not_null() & pl.col(c).is_finite()).any().alias(c) for c in columns]
    ).row(0, named=True)
    empty = [c for c in columns if not finite[c]]
    if not empty:
        return
    rows_per_asset = frame.group_by("asset").len()["len"].max()
    raise DataError(
        f"feature(s) {empty} are NaN on every row; each asset has at most {rows_per_asset} "
        f"bars, so a look-back window may be longer than the data (the longest needs "
        f"{max([*_lookbacks(empty), 1])} bars) or an input column holds no valid values. "
        f"Load more history or drop those groups with features.groups"
    )


def _lookbacks(names: list[str]) -> list[int]:
    out = []
    for name in names:
        tail = name.rsplit("_", 1)[-1]
        if tail.isdigit():
            out.append(int(tail) + 1)
    return out


def warmup_bars(config: FeatureConfig, groups: tuple[str, ...]) -> int:
    """Bars an asset needs before every feature of ``groups`` is known.

    The longest look-back of the chosen groups (an EWM counts the bars its ``min_samples``
    waits for; MACD's signal line waits for the slow EMA first).
    """
    need = {"returns": 21, "price": 2, "ma_gaps": max(config.ma_windows), "rsi": 15,
            "macd": 26 + 9 - 1, "bollinger": 20, "atr": 15, "stochastic": 16,
            "williams_r": 14, "roc": 11, "obv": 21, "volume": 20, "volatility": 21,
            "parkinson": 20, "garman_klass": 20, "regime": 21, "vix": 1,
            "cross_section": max([_rank_lookback(c) for c in config.rank_columns] or [1])}
    return max(need[g] for g in groups)


def _rank_lookback(column: str) -> int:
    """Bars before a ranked feature is known (``ma_gap_N``: N; ``ret_N``, ``hist_vol_N``: N+1)."""
    tail = column.rsplit("_", 1)[-1]
    if not tail.isdigit():
        return 2
    return int(tail) if column.startswith("ma_gap_") else int(tail) + 1
