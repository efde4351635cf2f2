"""Modules that can be called as their workflow: ``alfred.run(path)``, ``alfred.sweep(path)``.

``alfred.run``, ``alfred.sweep``, ``alfred.walkforward`` and ``alfred.stress`` are modules
(``import alfred.sweep`` binds the package attribute to the module, so a function of the
same name on ``alfred`` would be replaced on first import). Each module is therefore made
callable: calling it calls the function it names, e.g. ``alfred.sweep(...)`` is
``alfred.sweep.run_sweep(...)``.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class WorkflowModule(types.ModuleType):
    """A module whose call runs its workflow function (``__workflow__`` names it)."""

    __workflow__: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__workflow__)(*args, **kwargs)


def make_callable(module_name: str, workflow: str) -> None:
    """Make ``sys.modules[module_name]`` callable as its function ``workflow``."""
    module = sys.modules[module_name]
    module.__class__ = WorkflowModule
    module.__workflow__ = workflow
