"""One look for every HTML report: one stylesheet, one page template, tables and charts.

Every page Alfred writes (tear sheet, run index, comparison, walk-forward, stress, sweep,
train-rl) is built from these pieces, so they look alike and open offline: the CSS is
inlined, charts are inline SVG (text kept as text, so a browser - and our browser tests -
can read the axis labels) and nothing is fetched from the network.

Pages are laid out for a 1000 px column; wide tables scroll inside their own box
(``.table-wrap``) instead of pushing the page wider than the window.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Sequence
from pathlib import Path

from reports._definitions import format_metric, metric_label

CSS = """
:root{--ink:#1d2430;--muted:#5b6676;--line:#d9dee5;--accent:#1f5fa8;--bad:#b03a2e;
--good:#1e7b45;--zebra:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 "DejaVu Sans","Liberation Sans",Arial,sans-serif;color:var(--ink);
background:#fff}
main{max-width:1040px;margin:0 auto;padding:24px 20px 48px}
header.page{border-bottom:2px solid var(--accent);margin-bottom:18px;padding-bottom:8px}
header.page h1{font-size:22px;margin:0 0 4px}
header.page p{margin:2px 0;color:var(--muted)}
nav.crumbs{font-size:13px;margin-bottom:6px}
nav.crumbs a{color:var(--accent);text-decoration:none}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
p.note{color:var(--muted);font-size:13px;margin:4px 0 10px}
.table-wrap{max-width:100%;overflow-x:auto;margin:6px 0 12px}
table{border-collapse:collapse;font-size:13px}
th,td{padding:4px 7px;border-bottom:1px solid var(--line);text-align:right;
white-space:nowrap}
th{background:#eef1f5;font-weight:600;white-space:normal;vertical-align:bottom;
min-width:4.5em}
tbody tr:nth-child(even){background:var(--zebra)}
th.text,td.text{text-align:left}
tr.benchmark td{color:var(--muted);font-style:italic}
td.neg{color:var(--bad)}
figure{margin:10px 0 16px;max-width:100%}
figure svg,figure img{max-width:100%;height:auto;display:block}
figcaption{color:var(--muted);font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:12px 28px}
.grid>div{flex:1 1 300px;min-width:0}
a{color:var(--accent)}
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, body: str, *, subtitle: Sequence[str] = (),
         crumbs: Sequence[tuple[str, str]] = (), kind: str = "report") -> str:
    """A complete HTML document in the house style; ``crumbs`` are (href, text) links up."""
    nav = ""
    if crumbs:
        nav = ('<nav class="crumbs">' + " / ".join(f'<a href="{esc(h)}">{esc(t)}</a>'
                                                   for h, t in crumbs) + "</nav>")
    lines = "".join(f"<p>{esc(line)}</p>" for line in subtitle)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="alfred"><meta name="alfred-report" '
            f'content="{esc(kind)}"><title>{esc(title)}</title><style>{CSS}</style></head>'
            f'<body><main>{nav}<header class="page"><h1>{esc(title)}</h1>{lines}</header>'
            f"{body}</main></body></html>\n")


def section(title: str, content: str, *, note: str = "", id: str | None = None) -> str:
    anchor = f' id="{esc(id)}"' if id else ""
    text = f'<p class="note">{esc(note)}</p>' if note else ""
    return f"<section{anchor}><h2>{esc(title)}</h2>{text}{content}</section>"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, id: str | None = None,
          text_columns: int = 1, row_classes: Sequence[str] | None = None) -> str:
    """An HTML table; cells are escaped, the first ``text_columns`` are left-aligned.

    A cell may be a ``(text, href)`` pair to make it a link.
    """
    def cell(value: object, index: int, tag: str) -> str:
        cls = ' class="text"' if index < text_columns else ""
        if isinstance(value, tuple):
            text, href = value
            return f'<{tag}{cls}><a href="{esc(href)}">{esc(text)}</a></{tag}>'
        if tag == "td" and index >= text_columns and str(value).startswith("-") \
                and str(value) != "-":
            cls = ' class="neg"'
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    head = "".join(cell(h, i, "th") for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = row_classes[r] if row_classes and row_classes[r] else ""
        attr = f' class="{esc(cls)}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(cell(v, i, "td") for i, v in enumerate(row))
                    + "</tr>")
    anchor = f' id="{esc(id)}"' if id else ""
    return (f'<div class="table-wrap"><table{anchor}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def metrics_table(columns: Sequence[tuple[str, dict]], names: Sequence[str], *,
                  id: str | None = None, definitions: dict[str, str] | None = None) -> str:
    """Metric per row, one column per (header, metrics dict), in the house formats."""
    headers = ["Metric", *[h for h, _ in columns]]
    rows = [[metric_label(n), *[format_metric(n, m.get(n)) for _, m in columns]]
            for n in names]
    out = table(headers, rows, id=id)
    if definitions:  # the definition as a tooltip on the metric's name
        for n in names:
            label = esc(metric_label(n))
            tip = esc(definitions.get(n, ""))
            out = out.replace(f'<td class="text">{label}</td>',
                              f'<td class="text" title="{tip}">{label}</td>', 1)
    return out


def svg(fig, *, id: str, caption: str = "") -> str:
    """A matplotlib figure as inline SVG whose text stays text (searchable, testable)."""
    from matplotlib import rc_context

    from reports._plots import freeze_layout, plot_style

    buffer = io.StringIO()
    freeze_layout(fig)  # laid out as for a PNG (once, whatever is rendered first)
    with plot_style(), rc_context({"svg.fonttype": "none", "svg.hashsalt": "alfred",
                                   "font.family": "DejaVu Sans"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure id="{esc(id)}">{text}{cap}</figure>'


def relative_link(target: str | os.PathLike[str], start: str | os.PathLike[str]) -> str:
    """``target`` as a link from a page in folder ``start`` (forward slashes)."""
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def write_page(path: str | os.PathLike[str], text: str) -> Path:
    """Write a page atomically (a temporary name moved into place)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target

