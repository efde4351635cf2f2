"""Alfred's exception hierarchy.

Every error a user can cause by their input derives from :class:`AlfredError` and
carries a message that names the file, key, asset or row at fault and says how to fix
it. ``ValueError`` is a base too, so generic handlers keep working.
"""

from __future__ import annotations


class AlfredError(Exception):
    """Base class of every error Alfred raises on purpose."""


class DataError(AlfredError, ValueError):
    """Bars or signals that break the data contract (DESIGN.md "Bars", "Signals")."""


class ConfigError(AlfredError, ValueError):
    """A scenario, strategy or engine setting that cannot be used as given."""


class RunError(AlfredError, RuntimeError):
    """A run that started on valid input but could not finish."""
