"""Open an Alfred HTML report in headless Chromium and check what the browser shows.

A report can be a valid file and still be wrong on screen: a chart whose year labels sit
under the wrong bars, a label drawn with a glyph no installed font has (a box), a table
that runs off the page, an image that never decodes. This script loads the page offline,
the way a reader's browser would, and a small script added to a copy of the page writes
what the browser laid out into the DOM (``--dump-dom`` prints it):

* page and element widths against the window: nothing may stick out of the page;
  tables may scroll inside their own box, which is reported (a tear sheet has none);
* every character of the rendered text (SVG chart text included) must have a glyph in an
  installed font (fontconfig's list, read with FreeType), so no box is drawn;
* the end-of-year chart's year labels: their text, their order and their position under
  their own year's bars;
* every ``<img>`` decoded; the charts present; no resource fetched from the network;
* optionally a full-page screenshot, checked to be a PNG that is not blank.

Usage::

    python -m reports.check_render runs/x/tearsheet.html --screenshot /tmp/tearsheet.png

Exit status 0 when every check passes, 1 with the failed check on stderr otherwise, 2 when
Chromium is not installed (``apt-get install -y chromium`` on Debian).
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import RunError
from reports._tearsheet import EOY_CHART_ID, METRICS_TABLE_ID, count_remote_urls

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
# Offline and root-safe: no sandbox (root), no GPU, nothing that phones home.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--disable-dev-shm-usage", "--virtual-time-budget=10000")
PROBE_ID = "alfred-probe"
_PROBE_JS = """
window.addEventListener('load', function () {
  var W = window.innerWidth, out = {width: W, scroll_width:
    document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
    kind: (document.querySelector('meta[name=alfred-report]') || {}).content || null,
    outside: [], scrolled_tables: [], images: [], years: [], bars: {}, charts: 0, text: ''};
  document.querySelectorAll('body *').forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > W + 1 && !el.closest('.table-wrap'))
      out.outside.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' ends at ' +
                       Math.round(r.right) + ' px');
  });
  document.querySelectorAll('.table-wrap').forEach(function (w) {
    if (w.scrollWidth > w.clientWidth + 1) {
      var t = w.querySelector('table');
      out.scrolled_tables.push((t && t.id) || 'table');
    }
  });
  document.querySelectorAll('img').forEach(function (i) {
    out.images.push([i.id || i.alt || 'img', i.naturalWidth, i.naturalHeight]);
  });
  out.charts = document.querySelectorAll('figure svg').length;
  document.querySelectorAll('[id^="eoy-year-"]').forEach(function (g) {
    var r = g.getBoundingClientRect();
    out.years.push([g.id.slice(9), r.left + r.width / 2, g.textContent.trim()]);
  });
  document.querySelectorAll('[id^="eoy-bar-"]').forEach(function (g) {
    var r = g.getBoundingClientRect();
    out.bars[g.id.slice(8)] = [r.left, r.right];
  });
  var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), n, parts = [];
  while ((n = walker.nextNode())) {
    var p = n.parentNode && n.parentNode.nodeName.toLowerCase();
    if (p !== 'style' && p !== 'script') parts.push(n.nodeValue);
  }
  out.text = parts.join(' ');
  var pre = document.createElement('pre');
  pre.id = 'alfred-probe'; pre.style.display = 'none';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
"""


@dataclass(frozen=True)
class PageReport:
    """What the browser laid out."""

    kind: str | None
    width: int
    scroll_width: int
    height: int
    outside: list[str]
    scrolled_tables: list[str]
    images: list[tuple[str, int, int]]
    charts: int
    years: list[int]
    missing_glyphs: list[str]
    text: str = field(repr=False)
    screenshot: Path | None = None
    screenshot_ink: float | None = None


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


@functools.cache
def installed_glyphs() -> frozenset[int]:
    """Code points some installed font (fontconfig's list) has a glyph for."""
    from matplotlib.ft2font import FT2Font

    listed = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True,
                            check=False).stdout
    covered: set[int] = set()
    for line in listed.splitlines():
        path = line.split(":")[0].strip()
        if not path:
            continue
        try:
            covered.update(FT2Font(path).get_charmap())
        except (OSError, RuntimeError, ValueError):
            continue  # a font FreeType cannot open cannot draw anything either
    return frozenset(covered)


def missing_glyphs(text: str) -> list[str]:
    """Characters of ``text`` that no installed font can draw (shown as boxes)."""
    covered = installed_glyphs()
    if not covered:
        raise RunError("no fonts found with fc-list; install fontconfig and a font "
                       "(apt-get install -y fonts-dejavu-core)")
    chars = {c for c in text if not c.isspace() and ord(c) >= 32}
    return sorted(f"U+{ord(c):04X} {c!r}" for c in chars if ord(c) not in covered)


def parse_probe(dom: str) -> PageReport:
    found = re.search(rf'<pre id="{PROBE_ID}"[^>]*>(.*?)</pre>', dom, re.S)
    if found is None:
        raise RunError("the page never finished loading (the probe wrote nothing)")
    data = json.loads(html.unescape(found.group(1)))
    return PageReport(
        kind=data["kind"], width=int(data["width"]), scroll_width=int(data["scroll_width"]),
        height=int(data["height"]), outside=list(data["outside"]),
        scrolled_tables=list(data["scrolled_tables"]),
        images=[(str(a), int(b), int(c)) for a, b, c in data["images"]],
        charts=int(data["charts"]), years=_checked_years(data),
        missing_glyphs=missing_glyphs(data["text"]), text=data["text"])


def _checked_years(data: dict) -> list[int]:
    """The EOY chart's year labels, checked: text = year, left to right, under own bars."""
    years = []
    previous = -np.inf
    for year, centre, text in data["years"]:
        if text != year:
            raise RunError(f"the end-of-year chart labels year {year}'s bars '{text}'")
        if centre <= previous:
            raise RunError(f"the end-of-year chart's label {year} is not right of the "
                           "previous year's")
        previous = centre
        bars = [v for k, v in data["bars"].items() if k.endswith(f"-{year}")]
        if not bars:
            raise RunError(f"the end-of-year chart has a label {year} but no bar for it")
        left, right = min(b[0] for b in bars), max(b[1] for b in bars)
        if not (left - 2 <= centre <= right + 2):
            raise RunError(f"the end-of-year chart's label {year} (at x={centre:.0f}) is not "
                           f"under its bars (x={left:.0f}..{right:.0f})")
        years.append(int(year))
    return years


def check_layout(report: PageReport, *, allow_scrolled_tables: bool = True) -> None:
    """Raise ``RunError`` for what a reader would see broken."""
    if report.scroll_width > report.width + 1:
        raise RunError(f"the page is {report.scroll_width} px wide in a {report.width} px "
                       f"window: {'; '.join(report.outside[:5]) or 'something'} sticks out")
    if report.outside:
        raise RunError(f"element(s) past the page's right edge: {'; '.join(report.outside[:5])}")
    if report.scrolled_tables and not allow_scrolled_tables:
        raise RunError(f"table(s) wider than the page: {', '.join(report.scrolled_tables)}")
    if report.missing_glyphs:
        raise RunError(f"no installed font can draw {', '.join(report.missing_glyphs[:10])}: "
                       "the browser shows boxes")
    for name, w, h in report.images:
        if w == 0 or h == 0:
            raise RunError(f"image {name} did not decode (0x0 pixels)")


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


def check_page(path: str | Path, *, screenshot: str | Path | None = None,
               chromium: str | None = None, width: int = 1100, max_height: int = 12000,
               timeout_s: float = 120.0, allow_scrolled_tables: bool = True) -> PageReport:
    """Render ``path`` in headless Chromium, run the layout checks, optionally take a
    full-page screenshot; raise ``RunError`` naming the failed check."""
    page_path = Path(path).resolve()
    if not page_path.is_file():
        raise RunError(f"{page_path} does not exist; write the report first")
    browser = chromium or find_chromium()
    if browser is None:
        raise RunError("chromium is not installed (Debian: apt-get install -y chromium)")
    page = page_path.read_text(encoding="utf-8")
    remote = count_remote_urls(page)
    if remote:
        raise RunError(f"{page_path} loads {remote} resource(s) from the network; a report "
                       "must open offline")
    with tempfile.TemporaryDirectory(prefix="alfred-render-") as tmp:
        work = Path(tmp)
        probe = page_path.with_name(f".{page_path.stem}.probe.html")  # same folder: links
        try:
            probe.write_text(page.replace("</body>", f"<script>{_PROBE_JS}</script></body>",
                                          1), encoding="utf-8")
            dom = _run_chromium(browser, [f"--window-size={width},900", "--dump-dom",
                                          probe.as_uri()], work / "profile-dom", timeout_s)
        finally:
            probe.unlink(missing_ok=True)
        report = parse_probe(dom)
        check_layout(report, allow_scrolled_tables=allow_scrolled_tables)
        if screenshot is None:
            return report
        shot = Path(screenshot).resolve()
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.unlink(missing_ok=True)
        height = min(max(report.height, 300), max_height)
        _run_chromium(browser, [f"--screenshot={shot}", f"--window-size={width},{height}",
                                page_path.as_uri()], work / "profile-shot", timeout_s)
        ink = _screenshot_ink(shot, width, height)
    return PageReport(**{**report.__dict__, "screenshot": shot, "screenshot_ink": ink})


def check_tearsheet(path: str | Path, *, years: list[int] | None = None,
                    **kwargs) -> PageReport:
    """:func:`check_page` plus the tear sheet's own content: the metrics table, the
    end-of-year chart with one label per year of ``years`` (when given), no table wider
    than the page."""
    kwargs.setdefault("allow_scrolled_tables", False)
    report = check_page(path, **kwargs)
    if report.kind != "tearsheet":
        raise RunError(f"{path} is a {report.kind!r} report, not a tear sheet")
    text = Path(path).read_text(encoding="utf-8")
    if f'id="{METRICS_TABLE_ID}"' not in text or "Sharpe" not in report.text:
        raise RunError(f"the metrics table table#{METRICS_TABLE_ID} is missing")
    if f'id="{EOY_CHART_ID}"' not in text or not report.years:
        raise RunError("the end-of-year chart or its year labels are missing")
    if years is not None and report.years != list(years):
        raise RunError(f"the end-of-year chart shows years {report.years}, the data has "
                       f"{list(years)}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.check_render",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("page", help="path to an Alfred HTML report (tearsheet.html, ...)")
    parser.add_argument("--screenshot", help="also save a full-page PNG here and check it")
    parser.add_argument("--chromium", help="browser binary (default: found on PATH)")
    args = parser.parse_args(argv)
    if (args.chromium or find_chromium()) is None:
        print("chromium is not installed (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2
    try:
        if 'content="tearsheet"' in Path(args.page).read_text(encoding="utf-8"):
            report = check_tearsheet(args.page, screenshot=args.screenshot,
                                     chromium=args.chromium)
        else:
            report = check_page(args.page, screenshot=args.screenshot, chromium=args.chromium)
    except (RunError, OSError) as exc:
        print(f"render check failed: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {report.kind} page, {report.charts} charts, {len(report.images)} images, "
          f"{report.scroll_width} px wide in {report.width} px"
          + (f", years {report.years[0]}..{report.years[-1]}" if report.years else "")
          + (f", screenshot {report.screenshot} ({report.screenshot_ink:.1%} ink)"
             if report.screenshot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
