"""Text helpers for messages: one "did you mean", one timestamp format, bounded echoes.

Every error that echoes user input goes through :func:`shorten`, so a huge value (an
expanded YAML alias bomb, a megabyte string) never turns into a huge message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

ECHO_LIMIT = 200  # characters of a user value repeated in a message


def did_you_mean(word: object, options: Iterable[str], *, n: int = 1,
                 sentence: bool = False) -> str:
    """A suggestion suffix for an unknown name, or ``""``.

    Case-insensitive near matches (difflib), falling back to an option containing the
    word. ``sentence=False`` gives ``" (did you mean 'x'?)"`` for key errors;
    ``sentence=True`` gives ``" Did you mean 'x' or 'y'?"`` for data errors.
    """
    word = str(word)
    by_lower: dict[str, str] = {}
    for option in options:
        by_lower.setdefault(str(option).lower(), str(option))
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.6)
    if not close and word:
        close = [low for low in by_lower if word.lower() in low][:1]
    if not close:
        return ""
    names = " or ".join(repr(by_lower[c]) for c in close)
    return f" Did you mean {names}?" if sentence else f" (did you mean {names}?)"


def shorten(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def preview(items: Iterable[object], limit: int = 10) -> str:
    """Comma-separated repr of the first ``limit`` items, with a count of the rest."""
    items = list(items)
    shown = ", ".join(shorten(i, 60) for i in items[:limit])
    if len(items) > limit:
        shown += f", ... ({len(items) - limit} more)"
    return shown


def fmt_ts(value: object) -> str:
    """A timestamp as ISO text without a trailing ``00:00:00`` for daily bars."""
    text = str(value)
    return text[:-9] if text.endswith(" 00:00:00") else text
