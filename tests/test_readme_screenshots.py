"""The README shows one screenshot of each HTML report kind, made by
docs/make_screenshots.py: each picture exists, is small, and is the script's output."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _script():
    spec = importlib.util.spec_from_file_location("make_screenshots",
                                                  ROOT / "docs" / "make_screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_shows_one_small_screenshot_per_report_kind():
    from PIL import Image

    script = _script()
    shown = re.findall(r"!\[[^\]]*\]\((docs/img/[^)]+\.png)\)", README.read_text())
    expected = [f"docs/img/report_{kind.replace('-', '_')}.png" for kind in script.BUILDERS]
    assert sorted(shown) == sorted(expected)
    assert set(script.BUILDERS) == {"run", "comparison", "walkforward", "stress", "sweep",
                                    "train-rl"}
    for name in expected:
        path = ROOT / name
        assert path.stat().st_size <= script.MAX_BYTES, name
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode == "P", name  # palette, as shot
            assert image.width == script.WIDTH and 300 <= image.height <= script.HEIGHT
            # a page, not a blank: a good share of the pixels carry ink
            assert (np.asarray(image.convert("L")) < 230).mean() > 0.02, name


def test_shoot_checks_the_page_and_fits_the_png_under_the_limit(tmp_path):
    from PIL import Image

    from reports import render_sweep, write_page
    from reports.check_render import find_chromium

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    import polars as pl

    script = _script()
    rows = [{"variant": f"v{i}", "k": k, "lookback": lb, "sharpe": 0.1 * i, "dsr": 0.05 * i}
            for i, (k, lb) in enumerate((k, lb) for k in (1, 2, 3) for lb in (21, 63))]
    page = write_page(tmp_path / "sweep.html", render_sweep(
        title="Sweep demo", summary=pl.DataFrame(rows), metric="sharpe",
        params=["k", "lookback"]))
    full = script.shoot(page, tmp_path / "full.png")
    small = script.shoot(page, tmp_path / "small.png", max_bytes=full.stat().st_size - 1)
    assert small.stat().st_size < full.stat().st_size
    for png in (full, small):
        with Image.open(png) as image:
            assert image.mode == "P" and image.width == script.WIDTH
    with Image.open(full) as a, Image.open(small) as b:
        assert len(b.getcolors(256)) < len(a.getcolors(256)) <= 256  # fewer colours
