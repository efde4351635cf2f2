"""The HTML tear sheet: written offline, with our metrics table, our inline SVG charts and
quantstats' metrics table as a cross-check (benchmark included), checked in a browser."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import polars as pl
import pytest

from engine.errors import ConfigError
from reports import _html, compute_metrics, plot_equity, write_tearsheet
from reports._tearsheet import (
    EOY_CHART_ID,
    EQUITY_CHART_ID,
    METRICS_TABLE_ID,
    QUANTSTATS_TABLE_ID,
    count_remote_urls,
)
from reports.check_render import check_tearsheet, find_chromium, main

pytest.importorskip("quantstats")
pytestmark = pytest.mark.slow  # a tear sheet draws five figures and quantstats' table


@pytest.fixture(scope="module")
def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(5)
    ts = pd.bdate_range("2022-01-03", periods=320).to_numpy()
    strategy = pl.DataFrame({"ts": ts, "return": rng.normal(0.0005, 0.011, ts.size)})
    bench = pl.DataFrame({"ts": ts, "return": rng.normal(0.0003, 0.009, ts.size)})
    return strategy, bench


@pytest.fixture(scope="module")
def page(tmp_path_factory, frames) -> tuple[str, object]:
    strategy, bench = frames
    path = tmp_path_factory.mktemp("tearsheet") / "tearsheet.html"
    written = write_tearsheet(path, strategy, bench, title="Demo <strategy>",
                              periods_per_year=252, benchmark_label="S&P 500")
    assert written == path
    return path.read_text(encoding="utf-8"), path


def test_has_our_metrics_table_with_our_numbers(page, frames):
    html, _ = page
    strategy, bench = frames
    table = re.search(rf'<table id="{METRICS_TABLE_ID}">.*?</table>', html, re.S)
    assert table is not None
    sharpe = compute_metrics(strategy, 252, benchmark=bench)["sharpe"]
    row = re.search(r"<td[^>]*>Sharpe</td><td[^>]*>([-0-9.]+)</td>", table.group(0))
    assert row is not None and row.group(1) == f"{sharpe:.2f}"  # ratios: 2 decimals
    assert "Beta" in table.group(0)  # benchmark rows shown when a benchmark is given


def test_charts_are_inline_svg_with_text_kept(page):
    html, _ = page
    for chart in (EQUITY_CHART_ID, EOY_CHART_ID):
        figure = re.search(rf'<figure id="{chart}"><svg.*?</svg>', html, re.S)
        assert figure is not None, chart
    eoy = re.search(rf'<figure id="{EOY_CHART_ID}">.*?</figure>', html, re.S).group(0)
    assert '<g id="eoy-year-2022">' in eoy and '<g id="eoy-year-2023">' in eoy
    assert "<img" not in html


def test_equity_chart_is_the_figure_plot_equity_draws(page, frames):
    # built under matplotlib's default style, although quantstats (imported by then)
    # restyles the global rcParams: the same chart as plots/equity.png and plot_equity
    html, _ = page
    strategy, bench = frames
    chart = _html.svg(plot_equity(strategy, bench, title="Demo <strategy>",
                                  benchmark_label="S&P 500"), id=EQUITY_CHART_ID)
    assert chart in html


def test_contains_quantstats_table_with_benchmark_and_fixed_labels(page):
    html, _ = page
    table = re.search(rf'<table id="{QUANTSTATS_TABLE_ID}">.*?</table>', html, re.S)
    assert table is not None and ">CAGR<" in table.group(0)
    assert "\ufe6a" not in html  # quantstats' "CAGR" + small percent sign: no font has it
    assert "S&amp;P 500" in table.group(0)  # our benchmark label reached quantstats' table
    assert "Demo &lt;strategy&gt;" in html and "Demo <strategy>" not in html


def test_fetches_nothing_from_the_network(page):
    html, _ = page
    assert count_remote_urls(html) == 0
    assert "qtpylib.io/favicon" not in html


def test_no_temporary_files_left(page):
    _, path = page
    assert sorted(p.name for p in path.parent.iterdir()) == ["tearsheet.html"]


def test_refuses_tickers_and_bad_input(tmp_path, frames):
    strategy, _ = frames
    with pytest.raises(ConfigError, match="never downloads"):
        write_tearsheet(tmp_path / "t.html", strategy, "SPY")
    with pytest.raises(ConfigError, match="timestamps"):
        write_tearsheet(tmp_path / "t.html", strategy["return"])
    with pytest.raises(ConfigError, match="does not exist"):
        write_tearsheet(tmp_path / "missing" / "t.html", strategy)
    assert list(tmp_path.iterdir()) == []


needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")


@needs_chromium
def test_renders_in_headless_chromium(page, tmp_path):
    _, path = page
    shot = tmp_path / "shot.png"
    report = check_tearsheet(path, screenshot=shot, years=[2022, 2023])
    assert report.charts == 5 and report.missing_glyphs == []
    assert report.screenshot_ink is not None and report.screenshot_ink > 0.01


@needs_chromium
def test_render_script_fails_when_a_table_overflows(page, tmp_path, capsys):
    html, _ = page
    broken = tmp_path / "broken.html"
    broken.write_text(html.replace("</main>", '<div style="width:4000px">wide</div></main>'),
                      encoding="utf-8")
    assert main([str(broken)]) == 1
    assert "wide" in capsys.readouterr().err
