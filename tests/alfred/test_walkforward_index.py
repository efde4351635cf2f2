"""A multi-strategy walk-forward folder gets a top-level report.html linking each
strategy's own page; alfred report rebuilds it from the saved files."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from alfred.cli import app
from alfred.scenario import parse_scenario

SCENARIO = """
name: tiny_wf_multi
data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ, XOM], start: 2018-01-01,
       end: 2020-12-31}
benchmark: {dataset: sp500_index, asset: SP500}
analysts: [{name: momentum, config: {lookback: 21}}]
strategies:
  - {name: topk_long_short, label: top1, config: {k: 1, rank_by: pred_return}}
  - {name: topk_long_short, label: top2, config: {k: 2, rank_by: pred_return}}
walkforward: {train: 1y, test: 6mo}
executor: {kind: inline}
report: {tearsheet: false, plots: false}
"""


def test_multi_strategy_walkforward_has_an_index_page(tmp_path):
    from alfred.walkforward import run_walkforward

    out = tmp_path / "wf"
    run_walkforward(parse_scenario(SCENARIO, source="wf.yaml", base_dir=tmp_path), out,
                    progress=False)
    page = (out / "report.html").read_text()
    assert 'content="walkforward-index"' in page
    assert "tiny_wf_multi: walk-forward" in page
    # every strategy is a row linking to its own page, which exists and links back
    for label in ("top1", "top2"):
        assert f'<a href="{label}/report.html">{label}</a>' in page
        child = (out / label / "report.html").read_text()
        assert '<a href="../report.html">all strategies</a>' in child
    # the benchmark row and the overlay chart with both strategies in its legend
    assert '<tr class="benchmark"><td class="text">sp500_index:SP500' in page
    chart = page[page.index('id="walkforward-index-equity"'):]
    assert ">top1<" in chart and ">top2<" in chart
    folds = re.search(r"2 strategies, (\d+) folds", page)
    assert folds and int(folds.group(1)) >= 2

    # alfred report rebuilds the index (and the children's links back to it)
    (out / "report.html").unlink()
    (out / "top1" / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    again = (out / "report.html").read_text()
    assert '<a href="top1/report.html">top1</a>' in again and folds.group(0) in again
    assert '<a href="../report.html">all strategies</a>' in (out / "top1" / "report.html"
                                                             ).read_text()
