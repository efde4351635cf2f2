"""Open a tear sheet in headless Chromium and check that it really renders.

A tear sheet can be a valid file and still show nothing (a broken data URI, a template
change in quantstats, a chart that never decodes). This script loads the page the way a
user's browser would, offline, and checks what the browser built:

* the DOM holds the Alfred metrics table (with a Sharpe row), quantstats' "Key
  Performance Metrics" table and its inline SVG charts;
* the embedded equity chart *decoded*: a copy of the page gets a one-line onload script
  that writes the image's natural size into the DOM, which ``--dump-dom`` then shows;
* the page references nothing on the network;
* optionally, a screenshot is taken and checked to be a PNG of the requested size that
  is not blank.

Usage::

    python -m reports.check_render runs/x/tearsheet.html --screenshot /tmp/tearsheet.png

Exit status 0 when every check passes, 1 with the failed check on stderr otherwise, 2 when
Chromium is not installed (``apt-get install -y chromium`` on Debian).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import RunError
from reports._tearsheet import EQUITY_IMAGE_ID, METRICS_TABLE_ID, count_remote_urls

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
# Offline and root-safe: no sandbox (root), no GPU, nothing that phones home.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--disable-dev-shm-usage", "--virtual-time-budget=10000")
_PROBE = ("<script>window.addEventListener('load',function(){var i=document.getElementById("
          f"'{EQUITY_IMAGE_ID}');document.body.setAttribute('data-equity-size',"
          "i?i.naturalWidth+'x'+i.naturalHeight:'missing');});</script>")


@dataclass(frozen=True)
class RenderReport:
    """What the browser showed."""

    equity_image_size: tuple[int, int]
    metric_rows: int
    svg_charts: int
    screenshot: Path | None
    screenshot_ink: float | None  # share of pixels that are not (near) white


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _run_chromium(chromium: str, args: list[str], profile: Path, timeout_s: float) -> str:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        raise RunError(f"chromium did not finish within {timeout_s:.0f} s: "
                       f"{' '.join(command)}") from None
    if done.returncode != 0:
        raise RunError(f"chromium exited with {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _dom_checks(dom: str) -> tuple[tuple[int, int], int, int]:
    size = re.search(r'data-equity-size="(\d+)x(\d+)"', dom)
    if size is None:
        raise RunError(f"the equity chart (img#{EQUITY_IMAGE_ID}) is missing from the page "
                       "or never loaded")
    width, height = int(size.group(1)), int(size.group(2))
    if width == 0 or height == 0:
        raise RunError(f"the equity chart img#{EQUITY_IMAGE_ID} did not decode (0x0 pixels)")
    table = re.search(rf'<table id="{METRICS_TABLE_ID}".*?</table>', dom, re.S)
    if table is None:
        raise RunError(f"the metrics table table#{METRICS_TABLE_ID} is missing from the DOM")
    rows = table.group(0).count("<tr>") - 1
    if "Sharpe" not in table.group(0) or rows < 5:
        raise RunError(f"the metrics table has {rows} rows and no Sharpe row; expected the "
                       "headline metrics")
    if "Key Performance Metrics" not in dom:
        raise RunError("quantstats' 'Key Performance Metrics' table is missing")
    svg = dom.count("<svg")
    if svg == 0:
        raise RunError("the page holds no SVG chart: quantstats' figures did not render")
    return (width, height), rows, svg


def _screenshot_ink(path: Path, width: int, height: int) -> float:
    from matplotlib import image

    if not path.is_file() or path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise RunError(f"chromium wrote no PNG screenshot at {path}")
    pixels = image.imread(str(path))
    if pixels.shape[0] != height or pixels.shape[1] != width:
        raise RunError(f"screenshot is {pixels.shape[1]}x{pixels.shape[0]}, expected "
                       f"{width}x{height}")
    ink = float(np.mean(pixels[..., :3].min(axis=2) < 0.9))
    if ink < 0.01:
        raise RunError(f"the screenshot is blank ({ink:.2%} of pixels are not white)")
    return ink


def check_tearsheet(path: str | Path, *, screenshot: str | Path | None = None,
                    chromium: str | None = None, window: tuple[int, int] = (1280, 2400),
                    timeout_s: float = 120.0) -> RenderReport:
    """Render ``path`` in headless Chromium; raise ``RunError`` naming the failed check."""
    page_path = Path(path).resolve()
    if not page_path.is_file():
        raise RunError(f"{page_path} does not exist; write a tear sheet first")
    browser = chromium or find_chromium()
    if browser is None:
        raise RunError("chromium is not installed (Debian: apt-get install -y chromium)")
    page = page_path.read_text(encoding="utf-8")
    remote = count_remote_urls(page)
    if remote:
        raise RunError(f"{page_path} loads {remote} resource(s) from the network; a tear "
                       "sheet must open offline")
    with tempfile.TemporaryDirectory(prefix="alfred-render-") as tmp:
        work = Path(tmp)
        probe = work / "probe.html"
        probe.write_text(page.replace("</body>", _PROBE + "</body>", 1), encoding="utf-8")
        dom = _run_chromium(browser, ["--dump-dom", probe.as_uri()], work / "profile-dom",
                            timeout_s)
        size, rows, svg = _dom_checks(dom)
        shot, ink = None, None
        if screenshot is not None:
            shot = Path(screenshot).resolve()
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot.unlink(missing_ok=True)
            _run_chromium(browser, [f"--screenshot={shot}",
                                    f"--window-size={window[0]},{window[1]}",
                                    page_path.as_uri()], work / "profile-shot", timeout_s)
            ink = _screenshot_ink(shot, *window)
    return RenderReport(size, rows, svg, shot, ink)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.check_render",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("tearsheet", help="path to a tearsheet.html")
    parser.add_argument("--screenshot", help="also save a PNG screenshot here and check it")
    parser.add_argument("--chromium", help="browser binary (default: found on PATH)")
    args = parser.parse_args(argv)
    if (args.chromium or find_chromium()) is None:
        print("chromium is not installed (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2
    try:
        report = check_tearsheet(args.tearsheet, screenshot=args.screenshot,
                                 chromium=args.chromium)
    except RunError as exc:
        print(f"render check failed: {exc}", file=sys.stderr)
        return 1
    w, h = report.equity_image_size
    print(f"ok: equity chart {w}x{h} px decoded, {report.metric_rows} metric rows, "
          f"{report.svg_charts} SVG charts"
          + (f", screenshot {report.screenshot} ({report.screenshot_ink:.1%} ink)"
             if report.screenshot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
