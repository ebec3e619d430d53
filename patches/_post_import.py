"""Run a patch when a module is imported: now if it already is, else right after its first import.

Why: some upstream modules import vLLM (seconds, and memory) and only some processes need them; patching them at
install time would import them everywhere.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

Callback = Callable[[ModuleType], None]


class _PatchingLoader(importlib.abc.Loader):
    """The module's own loader, then the callbacks on the executed module; anything else asked of it goes to the
    original loader (``get_source`` for ``inspect``, for instance)."""

    def __init__(self, loader: Any, callbacks: list[Callback]):
        self._loader, self._callbacks = loader, callbacks

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        for callback in self._callbacks:
            callback(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: for a watched name, asks the finders after it and wraps the loader they give."""

    def __init__(self) -> None:
        self.waiting: dict[str, list[Callback]] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.waiting:
            return None
        finders = sys.meta_path[sys.meta_path.index(self) + 1 :] if self in sys.meta_path else []
        for finder in finders:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader, self.waiting.pop(fullname))
        return spec


_FINDER = _PostImportFinder()


def when_imported(name: str, callback: Callback) -> None:
    """``callback(module)`` once ``name`` is imported in this process: at once when it already is."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    _FINDER.waiting.setdefault(name, []).append(callback)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


__all__ = ["when_imported"]
