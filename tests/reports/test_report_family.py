"""The HTML report family in a real browser: each kind renders with its content, the tear
sheet's end-of-year chart labels the data's years under their own bars, no glyph is
missing, nothing overflows the page; and one run shows the same numbers in every view.

Screenshots go to ``$ALFRED_SCREENSHOT_DIR`` when set (to look at them), else to tmp.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from engine.errors import RunError
from reports import (
    format_metric,
    metric_label,
    read_metrics,
    render_run_index,
    render_stress,
    render_sweep,
    render_train_rl,
    render_walkforward,
    write_comparison,
    write_page,
    write_report,
    write_tearsheet,
)
from reports._charts import yearly_returns
from reports.check_render import check_page, check_tearsheet, find_chromium, missing_glyphs

pytest.importorskip("quantstats")
pytestmark = pytest.mark.slow
needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("ALFRED_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("shots")


def _years(frame: pl.DataFrame) -> list[int]:
    return sorted(set(frame["ts"].dt.year().to_list()))


@pytest.fixture(scope="module")
def long_sheet(tmp_path_factory, sp500_returns):
    """23 calendar years, the run on which quantstats crammed its year labels."""
    r = sp500_returns.filter(pl.col("ts") >= pl.datetime(2000, 1, 1))
    bench = r.with_columns(pl.col("return") * 0.8)
    path = tmp_path_factory.mktemp("long") / "tearsheet.html"
    write_tearsheet(path, r, bench, title="S&P 500", periods_per_year=252,
                    benchmark_label="S&P 500 x0.8")
    return path, _years(r)


@pytest.fixture(scope="module")
def short_sheet(tmp_path_factory, sp500_returns):
    """5 calendar years starting mid-year, where quantstats shifted labels by one."""
    r = sp500_returns.filter(pl.col("ts") >= pl.datetime(2018, 6, 15))
    path = tmp_path_factory.mktemp("short") / "tearsheet.html"
    write_tearsheet(path, r, r.with_columns(pl.col("return") * 0.5), title="Short",
                    periods_per_year=252)
    return path, _years(r)


def test_yearly_returns_compound_within_each_calendar_year():
    ts = pd.to_datetime(["2020-12-30", "2020-12-31", "2021-01-04", "2021-06-01"]).to_numpy()
    r = np.array([0.10, -0.05, 0.02, 0.03])
    table = yearly_returns(r, ts.astype("datetime64[ns]").view(np.int64), r / 2)
    assert table["year"].to_list() == [2020, 2021]
    assert table["strategy"].to_list() == pytest.approx([1.1 * 0.95 - 1, 1.02 * 1.03 - 1])
    assert table["benchmark"].to_list() == pytest.approx([1.05 * 0.975 - 1, 1.01 * 1.015 - 1])


def test_missing_glyphs_are_found():
    assert missing_glyphs("CAGR%") == []
    assert missing_glyphs("CAGR\ufe6a") == ["U+FE6A '\ufe6a'"]


@needs_chromium
@pytest.mark.parametrize("which", ["long_sheet", "short_sheet"])
def test_tearsheet_years_glyphs_and_width(which, request, shots):
    path, years = request.getfixturevalue(which)
    report = check_tearsheet(path, years=years, screenshot=shots / f"tearsheet_{which}.png")
    assert report.years == years and len(years) in (23, 5)
    assert report.scrolled_tables == [] and report.outside == []
    assert report.missing_glyphs == []
    assert "CAGR" in report.text and "\ufe6a" not in report.text
    assert "quantstats cross-check" in report.text
    assert report.screenshot_ink > 0.02


@needs_chromium
def test_shifted_year_labels_are_caught(long_sheet, tmp_path):
    path, years = long_sheet
    page = path.read_text(encoding="utf-8")

    def shift(match: re.Match) -> str:  # every label names the next year, as quantstats did
        year = int(match.group(1)) + 1
        return match.group(0).replace(match.group(1), str(year))

    shifted = re.sub(r'<g id="eoy-year-(\d{4})">.*?</g>', shift, page, flags=re.S)
    assert shifted != page
    broken = tmp_path / "shifted.html"
    broken.write_text(shifted, encoding="utf-8")
    with pytest.raises(RunError, match="not under its bars"):
        check_tearsheet(broken, years=years)


@needs_chromium
def test_missing_glyph_and_overflow_are_caught(short_sheet, tmp_path):
    path, _ = short_sheet
    page = path.read_text(encoding="utf-8")
    glyph = tmp_path / "glyph.html"
    glyph.write_text(page.replace("<h2>Metrics</h2>", "<h2>CAGR\ufe6a</h2>"), encoding="utf-8")
    with pytest.raises(RunError, match="U\\+FE6A"):
        check_tearsheet(glyph)
    wide = tmp_path / "wide.html"
    wide.write_text(page.replace("<h2>Metrics</h2>",
                                 '<h2>Metrics</h2><div style="width:3000px">x</div>'),
                    encoding="utf-8")
    with pytest.raises(RunError, match="wide|right edge"):
        check_tearsheet(wide)


@pytest.fixture(scope="module")
def run_folders(tmp_path_factory, backtest_pair):
    result, gross, benchmark = backtest_pair
    root = tmp_path_factory.mktemp("runs")
    folders = []
    for name, net in (("with_costs", result), ("no_costs", gross)):
        folder = root / name
        folder.mkdir()
        write_report(folder, net, gross_result=gross, benchmark_returns=benchmark,
                     benchmark_label="S&P 500", plots=False)
        folders.append(folder)
    return root, folders


def _cell(html: str, table_id: str, row_label: str, column: int) -> str:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>",
                                                              row, re.S)]
        if cells and cells[0] == row_label:
            return cells[column]
    raise AssertionError(f"no row {row_label!r} in table {table_id}")


def _column(html: str, table_id: str, header: str, row_label: str) -> str:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
    headers = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<th[^>]*>(.*?)</th>", table)]
    return _cell(html, table_id, row_label, headers.index(header))


def test_same_run_same_numbers_in_every_view(run_folders):
    root, folders = run_folders
    folder = folders[0]
    saved = read_metrics(folder)["with_costs"]
    assert saved["n_open_trades"] is not None
    expected = {k: format_metric(k, saved[k])
                for k in ("n_trades", "n_open_trades", "win_rate_trades", "total_return")}
    sheet = (folder / "tearsheet.html").read_text(encoding="utf-8")
    comparison = write_comparison(root / "cmp", folders)
    index = render_run_index([{"name": "with_costs", "metrics": read_metrics(folder)}])
    csv = pl.read_csv(root / "cmp" / "comparison.csv").filter(pl.col("run") == "with_costs")
    md_rows = {line.split(" | ")[0].strip("| "): line.split(" | ")
               for line in comparison.markdown.splitlines()}
    md_head = [c.strip("| ") for c in comparison.markdown.splitlines()[0].split(" | ")]
    for key, text in expected.items():
        label = metric_label(key)
        assert _cell(sheet, "alfred-metrics", label, 1) == text, key
        assert _column(comparison.html, "comparison", label, "with_costs") == text, key
        assert _column(index, "run-index", label, "with_costs") == text, key
        assert md_rows["with_costs"][md_head.index(label)].strip("| ") == text, key
        assert csv[key].item() == pytest.approx(saved[key]), key


def test_comparison_has_periods_benchmark_row_overlay_and_links(run_folders):
    root, folders = run_folders
    comparison = write_comparison(root / "cmp2", folders)
    table = comparison.table
    assert table["strategy"].to_list()[-1] == "benchmark"
    assert table["run"].to_list()[-1] == "S&P 500"
    assert set(table["start"].to_list()) == {"2011-01-03"}
    assert 'href="../with_costs/tearsheet.html"' in comparison.html
    assert 'id="comparison-equity"' in comparison.html and "<svg" in comparison.html
    assert '<tr class="benchmark">' in comparison.html


def _walkforward_page() -> str:
    ts = pd.bdate_range("2020-01-01", periods=300).to_numpy()
    rng = np.random.default_rng(3)
    returns = pl.DataFrame({"ts": ts, "return": rng.normal(0.0004, 0.01, ts.size)})
    folds = pl.DataFrame({
        "fold": [0, 1, 2],
        "train_start": ["2019-01-01", "2019-06-01", "2019-11-01"],
        "train_end": ["2019-12-31", "2020-05-31", "2020-10-31"],
        "test_start": [str(ts[0])[:10], str(ts[100])[:10], str(ts[200])[:10]],
        "test_end": [str(ts[99])[:10], str(ts[199])[:10], str(ts[299])[:10]],
        "total_return": [0.031, -0.012, 0.054], "sharpe": [1.1, -0.4, 1.9],
        "max_drawdown": [-0.05, -0.08, -0.03]})
    return render_walkforward(
        title="WF demo", returns=returns, folds=folds,
        metrics={"total_return": 0.074, "sharpe": 0.9, "max_drawdown": -0.08,
                 "n_trades": 12.0, "n_open_trades": 1.0, "win_rate_trades": 0.5},
        in_sample={"total_return": 0.2, "sharpe": 2.5, "max_drawdown": -0.03},
        benchmark=returns.with_columns(pl.col("return") * 0.5), periods_per_year=252,
        fold_links={0: "fold_0/tearsheet.html"}, tearsheet_href="tearsheet.html")


def _stress_page() -> str:
    rng = np.random.default_rng(4)
    ts = pd.bdate_range("2030-01-01", periods=120).to_numpy()
    rows = [pl.DataFrame({"strategy": s, "path": p, "ts": ts,
                          "return": rng.normal(mu, 0.01, ts.size)})
            for s, mu in (("momentum", 0.0006), ("benchmark", 0.0003)) for p in range(20)]
    quantiles = pl.DataFrame({"strategy": ["momentum", "momentum"],
                              "metric": ["sharpe", "max_drawdown"], "q05": [-0.5, -0.2],
                              "q50": [0.8, -0.09], "q95": [2.1, -0.03], "paths": [20, 20]})
    return render_stress(title="Stress demo", returns=pl.concat(rows), quantiles=quantiles,
                         beats={"momentum": {"beat": 13, "paths": 20, "share": 0.65}},
                         info=["20 paths of 120 bars, seed 4"])


def _sweep_page() -> str:
    rows = [{"variant": f"v{i}", "strategy": "nuanced", "strategy.upper": up,
             "strategy.lower": lo, "sharpe": up - lo + 0.1 * i, "total_return": 0.01 * i,
             "dsr": 0.1 * (i % 10)}
            for i, (up, lo) in enumerate((u, v) for u in (0.6, 0.7, 0.8) for v in (0.2, 0.3))]
    return render_sweep(title="Sweep demo", summary=pl.DataFrame(rows), metric="sharpe",
                        params=["strategy.upper", "strategy.lower"],
                        run_links={"v0": "v0/tearsheet.html"})


def _train_rl_page() -> str:
    curves = pl.DataFrame({"seed": [0] * 5 + [1] * 5, "step": list(range(0, 500, 100)) * 2,
                           "reward": [0.1, 0.3, 0.4, 0.5, 0.55, 0.0, 0.2, 0.35, 0.4, 0.6]})
    seeds = pl.DataFrame({"seed": [0, 1], "sharpe": [1.2, 0.9], "total_return": [0.05, 0.03]})
    ts = pd.bdate_range("2024-01-01", periods=60).to_numpy()
    test = {"ppo": {"total_return": 0.04, "sharpe": 1.1, "max_drawdown": -0.02},
            "equal_weight": {"total_return": 0.02, "sharpe": 0.7, "max_drawdown": -0.03}}
    rets = {k: pl.DataFrame({"ts": ts, "return": np.full(ts.size, v["total_return"] / 60)})
            for k, v in test.items()}
    return render_train_rl(title="Train-RL demo", curves=curves, seeds=seeds, test=test,
                           test_returns=rets, test_span=("2024-01-01", "2024-03-22"))


PAGES = {
    "walkforward": (_walkforward_page, ["walkforward-equity", "walkforward-folds",
                                        "walkforward-is-oos"],
                    ["In-sample vs out-of-sample", "Out-of-sample (stitched)", "3.10%"]),
    "stress": (_stress_page, ["stress-fan-0", "stress-quantiles", "stress-beats"],
               ["13 of 20", "65.00%", "Max drawdown"]),
    "sweep": (_sweep_page, ["sweep-ranked", "sweep-heatmap"],
              ["Deflated Sharpe", "strategy.upper", "Parameter heat map"]),
    "train-rl": (_train_rl_page, ["train-rl-curves", "train-rl-seeds", "train-rl-test"],
                 ["seed 1", "equal_weight", "Test span vs baselines"]),
}


@needs_chromium
@pytest.mark.parametrize("kind", sorted(PAGES))
def test_each_report_kind_renders_with_its_content(kind, tmp_path, shots):
    build, ids, texts = PAGES[kind]
    path = write_page(tmp_path / f"{kind}.html", build())
    report = check_page(path, screenshot=shots / f"{kind}.png")
    assert report.kind == kind and report.charts >= 1
    html = path.read_text(encoding="utf-8")
    for element in ids:
        assert f'id="{element}"' in html, element
    for text in texts:
        assert text in report.text, text
    assert report.screenshot_ink > 0.01


@needs_chromium
def test_comparison_and_index_render(run_folders, shots):
    root, folders = run_folders
    write_comparison(root / "cmp3", folders)
    report = check_page(root / "cmp3" / "comparison.html", screenshot=shots / "comparison.png")
    assert report.kind == "comparison" and report.charts == 1
    assert "S&P 500" in report.text and "Closed trades" in report.text
    index = write_page(root / "index.html", render_run_index(
        [{"name": f.name, "metrics": read_metrics(f), "href": f"{f.name}/tearsheet.html"}
         for f in folders]))
    report = check_page(index, screenshot=shots / "run_index.png")
    assert report.kind == "run-index" and "Open trades" in report.text
