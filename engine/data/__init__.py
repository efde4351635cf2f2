"""Bars in, panels out: Alfred's data layer (polars at the boundary, numpy for the kernels).

- :func:`load_bars` reads a bundled dataset, a directory of per-symbol files or one file,
  normalises vendor column names and validates the result (:func:`validate_bars`).
- :func:`align_bars` lays long bars on the union calendar as a dense
  :class:`~engine.panel.Panel` (NaN where an asset has no bar, never forward-filled).
- :func:`resample_bars` rolls bars up (weekly, monthly, quarterly, daily from intraday)
  stamped at the last bar of each bucket, so no look-ahead.
- :func:`infer_periods_per_year` is the annualisation rule used everywhere.
- :func:`signals_to_matrix` places long signals on a panel's calendar, as-of.
- :func:`list_datasets`, :func:`dataset_info`, :func:`load_benchmark` describe the bundled
  data shipped in ``alfred_data`` (see its PROVENANCE.md).
"""

from ._align import align_bars, clear_panel_cache
from ._bundled import dataset_info, list_datasets
from ._calendar import infer_periods_per_year, match_ts_type
from ._load import DataWarning, load_bars, load_benchmark
from ._partitioned import PARTITION_ROWS, is_partitioned, write_partitioned
from ._resample import resample_bars
from ._signals import signals_to_matrix
from ._validate import validate_bars

__all__ = [
    "PARTITION_ROWS",
    "is_partitioned",
    "write_partitioned",
    "DataWarning",
    "align_bars",
    "clear_panel_cache",
    "dataset_info",
    "infer_periods_per_year",
    "match_ts_type",
    "list_datasets",
    "load_bars",
    "load_benchmark",
    "resample_bars",
    "signals_to_matrix",
    "validate_bars",
]
