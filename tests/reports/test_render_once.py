"""A run's charts are built and laid out once, and drawn the same as before.

``freeze_layout`` keeps the layout of the first render, so the tear sheet's SVG and the
PNG plots share one figure; ``CellLabels`` writes the heat map's numbers in one pass, at
the places ``ax.text`` put them. Both are checked pixel for pixel against matplotlib's own
path. ``import reports`` (metrics, comparisons in the main process) leaves matplotlib and
pandas unimported.
"""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
from matplotlib import image

from reports import _html
from reports._cell_labels import CellLabels
from reports._plots import PLOT_NAMES, RunFigures, _figure, freeze_layout, plot_style


def _pixels(fig) -> np.ndarray:
    buffer = io.BytesIO()
    with plot_style():
        fig.savefig(buffer, format="png")
    buffer.seek(0)
    return image.imread(buffer, format="png")


def _run(n: int = 420, seed: int = 11) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    ts = pd.bdate_range("2021-03-01", periods=n).to_numpy().astype("datetime64[ns]")
    bench = pl.DataFrame({"ts": ts, "return": rng.normal(0.0003, 0.009, n)})
    return rng.normal(0.0005, 0.012, n), ts.view(np.int64), bench


def test_a_frozen_figure_draws_the_png_a_fresh_save_draws():
    r, ts_ns, bench = _run()
    shared = RunFigures(r, ts_ns, bench, periods_per_year=252, title="demo")
    fresh = RunFigures(r, ts_ns, bench, periods_per_year=252, title="demo")
    for name in PLOT_NAMES:
        figure = shared[name]
        assert shared[name] is figure  # built once
        freeze_layout(figure)
        assert figure.get_layout_engine() is None
        svg = _html.svg(figure, id="x")  # the tear sheet's render first, then the PNG
        assert "<svg" in svg
        expected = _pixels(fresh[name])  # constrained layout run by savefig itself
        assert fresh[name].get_layout_engine() is not None
        np.testing.assert_array_equal(_pixels(figure), expected, err_msg=name)


def test_cell_labels_draw_the_numbers_where_ax_text_drew_them():
    grid = np.array([[0.012, -0.25, np.nan], [0.0, 0.081, -0.003]])
    rows, cols = np.nonzero(np.isfinite(grid))
    texts = [f"{v * 100:.1f}" for v in grid[rows, cols]]
    colours = ["white" if abs(v) > 0.1 else "black" for v in grid[rows, cols]]

    def heatmap(one_artist: bool):
        with plot_style():
            fig = _figure(4.0, 2.5)
            ax = fig.add_subplot()
            ax.imshow(grid, cmap="RdYlGn", vmin=-0.3, vmax=0.3, aspect="auto")
            if one_artist:
                ax.add_artist(CellLabels(cols, rows, texts, colours, fontsize=7))
            else:
                for x, y, text, colour in zip(cols, rows, texts, colours, strict=True):
                    ax.text(x, y, text, ha="center", va="center", fontsize=7, color=colour,
                            in_layout=False)
        return fig

    np.testing.assert_array_equal(_pixels(heatmap(True)), _pixels(heatmap(False)))
    svg = _html.svg(heatmap(True), id="cells")
    assert [t for t in texts if f">{t}</text>" not in svg] == []  # numbers stay text


def test_import_reports_leaves_matplotlib_and_pandas_unimported():
    code = ("import sys, reports; reports.compute_metrics([0.01, -0.02, 0.005], 252); "
            "print(sorted(m for m in ('matplotlib', 'pandas', 'scipy.stats') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
