"""Features and labels for the trainable analysts (torch-free, polars only).

    from analysts.features import FeatureConfig, build_features, add_targets
    feats = build_features(bars)                 # cached per dataset + config
    frame = add_targets(feats.frame, (1, 3, 5))  # target_up_h, target_return_h, label_ts_h

Every feature looks backward only, so a value dated ``t`` uses bars up to ``t``. Scale
with :class:`FeatureScaler` fit on the training window only.
"""

from analysts.features._analysis import (
    ablation_report,
    feature_label_correlation,
    pick_least_correlated,
    return_correlations,
)
from analysts.features._build import (
    GROUPS,
    FeatureConfig,
    FeatureSet,
    build_features,
    clear_feature_cache,
    resolve_groups,
    warmup_bars,
)
from analysts.features._scaler import FeatureScaler
from analysts.features._targets import add_targets, target_names

__all__ = [
    "GROUPS",
    "FeatureConfig",
    "FeatureScaler",
    "FeatureSet",
    "ablation_report",
    "add_targets",
    "build_features",
    "clear_feature_cache",
    "feature_label_correlation",
    "pick_least_correlated",
    "resolve_groups",
    "return_correlations",
    "target_names",
    "warmup_bars",
]
