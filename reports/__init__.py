"""Alfred's reports: metrics defined once, tear sheets, plots and run comparisons.

    from reports import metrics_for_result, write_report, compare_runs
    m = metrics_for_result(result, gross_result=gross)      # with / without costs
    write_report("runs/x", result, gross_result=gross)      # metrics.json, parquet, html, png
    markdown, html = compare_runs(["runs/x", "runs/y"])

Every metric's definition (annualisation, risk-free rate, ddof) is in
``METRIC_DEFINITIONS`` and the docstring of :mod:`reports.metrics`.
"""

from reports._compare import Comparison, compare_runs, comparison_table, write_comparison
from reports._definitions import METRIC_DEFINITIONS
from reports._plots import write_plots
from reports._psr import deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe_ratio
from reports._run_report import read_metrics, rebuild_report, write_report
from reports._tearsheet import write_tearsheet
from reports.metrics import compute_metrics, metrics_for_result, metrics_to_json, to_jsonable

__all__ = [
    "METRIC_DEFINITIONS",
    "Comparison",
    "compare_runs",
    "comparison_table",
    "compute_metrics",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "metrics_for_result",
    "metrics_to_json",
    "probabilistic_sharpe_ratio",
    "read_metrics",
    "rebuild_report",
    "to_jsonable",
    "write_comparison",
    "write_plots",
    "write_report",
    "write_tearsheet",
]
