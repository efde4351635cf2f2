"""``Costs`` lives in :mod:`engine.settings` with the rest of the simulation settings."""

from engine.settings import Costs

__all__ = ["Costs"]
