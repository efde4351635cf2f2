"""Alfred's reports: metrics defined once, tear sheets, plots and run comparisons.

    from reports import metrics_for_result, write_report, compare_runs
    m = metrics_for_result(result, gross_result=gross)      # with / without costs
    write_report("runs/x", result, gross_result=gross)      # metrics.json, parquet, html, png
    markdown, html = compare_runs(["runs/x", "runs/y"])
    write_page("wf/index.html", render_walkforward(title=..., returns=..., folds=...))

Every page is one of a family (one stylesheet, inline SVG charts, offline); every number
is labelled and formatted by ``format_metric`` / ``metric_label``, the same in every view.

Every metric's definition (annualisation, risk-free rate, ddof) is in
``METRIC_DEFINITIONS`` and the docstring of :mod:`reports.metrics`.
"""

from reports._compare import Comparison, compare_runs, comparison_table, write_comparison
from reports._definitions import (
    LABELS,
    METRIC_DEFINITIONS,
    format_metric,
    format_windowed,
    metric_label,
    return_metric,
)
from reports._html import write_page
from reports._plots import plot_equity, plot_style, write_plots
from reports._psr import deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe_ratio
from reports._run_report import read_metrics, rebuild_report, write_report
from reports._tearsheet import write_tearsheet
from reports._views import (
    render_run_index,
    render_stress,
    render_sweep,
    render_train_rl,
    render_walkforward,
    render_walkforward_index,
)
from reports.metrics import compute_metrics, metrics_for_result, metrics_to_json, to_jsonable

__all__ = [
    "plot_equity",
    "plot_style",
    "LABELS",
    "METRIC_DEFINITIONS",
    "Comparison",
    "compare_runs",
    "comparison_table",
    "compute_metrics",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "format_metric",
    "format_windowed",
    "metrics_for_result",
    "metric_label",
    "metrics_to_json",
    "probabilistic_sharpe_ratio",
    "read_metrics",
    "rebuild_report",
    "render_run_index",
    "render_stress",
    "render_sweep",
    "render_train_rl",
    "render_walkforward",
    "render_walkforward_index",
    "return_metric",
    "to_jsonable",
    "write_comparison",
    "write_page",
    "write_plots",
    "write_report",
    "write_tearsheet",
]
