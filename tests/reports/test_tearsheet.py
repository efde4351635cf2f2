"""The HTML tear sheet: written offline, with our metrics table, an embedded equity chart
and quantstats' report (benchmark included), and checked in a real browser."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import polars as pl
import pytest

from engine.errors import ConfigError, RunError
from reports import compute_metrics, write_tearsheet
from reports._tearsheet import EQUITY_IMAGE_ID, METRICS_TABLE_ID, count_remote_urls
from reports.check_render import _dom_checks, check_tearsheet, find_chromium, main

pytest.importorskip("quantstats")
pytestmark = pytest.mark.slow  # quantstats draws a dozen figures per tear sheet (~5 s)


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
    row = re.search(r"<td[^>]*>Sharpe</td><td>([-0-9.]+)</td>", table.group(0))
    assert row is not None and float(row.group(1)) == pytest.approx(sharpe, abs=5e-4)
    assert "Beta" in table.group(0)  # benchmark rows shown when a benchmark is given


def test_embeds_a_decodable_equity_png(page):
    html, _ = page
    found = re.search(rf'<img id="{EQUITY_IMAGE_ID}"[^>]*src="data:image/png;base64,([^"]+)"',
                      html)
    assert found is not None
    png = base64.b64decode(found.group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_contains_quantstats_report_with_benchmark_and_charts(page):
    html, _ = page
    assert "Key Performance Metrics" in html
    assert html.count("<svg") >= 8  # quantstats' inline charts
    assert "S&amp;P 500" in html  # our benchmark label reached quantstats' table
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
    report = check_tearsheet(path, screenshot=shot, window=(1200, 1600))
    assert report.equity_image_size == (1000, 450)
    assert report.metric_rows >= 15 and report.svg_charts >= 8
    assert report.screenshot_ink is not None and report.screenshot_ink > 0.01


@needs_chromium
def test_render_script_fails_when_the_chart_does_not_decode(page, tmp_path, capsys):
    html, _ = page
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r'src="data:image/png;base64,[^"]+"',
                             'src="data:image/png;base64,AAAA"', html), encoding="utf-8")
    assert main([str(broken)]) == 1
    assert "did not decode" in capsys.readouterr().err


def test_dom_checks_name_what_is_missing(page):
    html, _ = page
    dom = html.replace("</body>", '<i data-equity-size="1000x450"></i></body>')
    assert _dom_checks(dom)[0] == (1000, 450)
    with pytest.raises(RunError, match="metrics table"):
        _dom_checks(dom.replace(f'id="{METRICS_TABLE_ID}"', 'id="other"'))
    with pytest.raises(RunError, match="equity chart"):
        _dom_checks(html)
    with pytest.raises(RunError, match="Key Performance Metrics"):
        _dom_checks(dom.replace("Key Performance Metrics", "x"))
