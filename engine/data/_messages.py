"""Small helpers that make data errors say *where* and *how to fix*.

Every DataError in ``engine.data`` names the source, the asset, the timestamp and the row,
so a user with a 500-file directory can go straight to the broken line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" Did you mean 'x'?"`` for near matches of ``word`` (case-insensitive), or ``""``."""
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"


def preview(items: Iterable[object], limit: int = 10) -> str:
    """Comma-separated repr of the first ``limit`` items, with a count of the rest."""
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    if len(items) > limit:
        shown += f", ... ({len(items) - limit} more)"
    return shown


def fmt_ts(value: object) -> str:
    """A timestamp as ISO text without a trailing ``00:00:00`` for daily bars."""
    text = str(value)
    return text[:-9] if text.endswith(" 00:00:00") else text
