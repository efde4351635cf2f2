"""The numbers written in a heat map's cells, drawn by one artist.

The monthly-returns heat map carries a number in each of ~300 cells. As ``Text`` artists
each one is built, measured and positioned on its own at every save, which made that
chart the dearest of a run's report. :class:`CellLabels` draws them in one pass with
the same glyphs at the same places: each label is centred the way
``ax.text(x, y, s, ha="center", va="center")`` centres it (the font's ascent and
descent from its OS/2 or hhea table, as ``Text`` uses), so the PNG is pixel for pixel
the same, and the SVG keeps every number as a ``<text>`` element.

matplotlib is imported here at module level: import this module only where a figure is
being drawn (``reports._plots`` does so inside the function that needs it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.artist import Artist, allow_rasterization
from matplotlib.font_manager import FontProperties, findfont, get_font

_FONT_TABLES = (("OS/2", "sTypoAscender", "sTypoDescender"), ("hhea", "ascent", "descent"))


class CellLabels(Artist):
    """Labels centred on data points (a heat map's cells), one colour each."""

    zorder = 3  # as Text: above the image

    def __init__(self, x: Sequence[float], y: Sequence[float], texts: Sequence[str],
                 colours: Sequence[str], *, fontsize: float) -> None:
        super().__init__()
        if not len(x) == len(y) == len(texts) == len(colours):
            raise ValueError("CellLabels needs one x, y, text and colour per label")
        self._xy = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
        self._texts = list(texts)
        self._colours = list(colours)
        self._prop = FontProperties(size=fontsize)
        # the labels sit inside their cells: the layout has nothing to make room for, and
        # nothing to clip (as ax.text, which leaves text unclipped)
        self.set_in_layout(False)
        self.set_clip_on(False)

    def get_texts(self) -> list[str]:
        return list(self._texts)

    def _font_box(self, renderer) -> tuple[float, float]:
        """Ascent and descent (pixels) that ``Text`` gives every line in this font."""
        font = get_font(findfont(self._prop))
        per_unit = (renderer.points_to_pixels(self._prop.get_size_in_points())
                    / font.get_sfnt_table("head")["unitsPerEm"])
        for table_name, ascent_key, descent_key in _FONT_TABLES:
            table = font.get_sfnt_table(table_name)
            if table is not None:
                return table[ascent_key] * per_unit, -table[descent_key] * per_unit
        _, height, descent = renderer.get_text_width_height_descent("lp", self._prop,
                                                                    ismath=False)
        return height - descent, descent

    @allow_rasterization
    def draw(self, renderer) -> None:
        if not self.get_visible() or not self._texts:
            return
        renderer.open_group("cell-labels", self.get_gid())
        min_ascent, min_descent = self._font_box(renderer)
        canvas_height = renderer.get_canvas_width_height()[1]
        gc = renderer.new_gc()
        self._set_gc_clip(gc)
        sizes: dict[str, tuple[float, float, float]] = {}
        points = self.get_transform().transform(self._xy)
        for (px, py), text, colour in zip(points, self._texts, self._colours, strict=True):
            if text not in sizes:
                sizes[text] = renderer.get_text_width_height_descent(text, self._prop,
                                                                     ismath=False)
            width, height, descent = sizes[text]
            ascent, descent = max(height - descent, min_ascent), max(descent, min_descent)
            x, y = px - width / 2.0, py - (ascent - descent) / 2.0  # baseline, left end
            gc.set_foreground(colour)
            renderer.draw_text(gc, x, canvas_height - y if renderer.flipy() else y, text,
                               self._prop, 0.0)
        gc.restore()
        renderer.close_group("cell-labels")
        self.stale = False
