"""A module imported on its first use, so that importing a pipeline never needs an optional
heavy dependency that the chosen path does not touch (e.g. SimpleITK for an evaluation without
the Dice experiment, on a GPU machine that has torch but no SimpleITK)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for `import NAME`: the real module is imported at the first attribute access.
    A missing module then fails with one line naming it and what needed it."""

    def __init__(self, name: str, needed_for: str) -> None:
        self._name = name
        self._needed_for = needed_for
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            try:
                self._module = importlib.import_module(self._name)
            except ImportError as error:
                raise ImportError(
                    f"{self._needed_for} needs the Python package {self._name!r}, which is not "
                    f"installed ({error})"
                ) from error
        return getattr(self._module, attribute)
