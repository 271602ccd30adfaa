"""Task registration by name (``@register_task``) and resolution of task references.

A reference is a registered name or ``package.module:function``. Registries are
objects, injectable in tests; :data:`TASKS` is the default one the decorator fills.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from watchkeeper import plugins
from watchkeeper.errors import PluginError

F = TypeVar("F", bound=Callable[..., Any])

TASK_GROUP = "watchkeeper.tasks"


class TaskRegistry:
    """Named event and beat tasks."""

    def __init__(self) -> None:
        self._tasks: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator: register a task under ``name`` (default: the function's name)."""

        def decorate(func: F) -> F:
            key = name or func.__name__
            if key in self._tasks and self._tasks[key] is not func:
                raise PluginError("a different task is already registered under this name",
                                  group=TASK_GROUP, plugin=key)
            self._tasks[key] = func
            return func

        return decorate

    def resolve(self, ref: str) -> Callable[..., Any]:
        """The task named ``ref``, or the callable at ``module:function``."""
        if ref in self._tasks:
            return self._tasks[ref]
        if ":" not in ref:
            known = ", ".join(sorted(self._tasks)) or "none"
            raise PluginError(f"no task registered under this name (known: {known}; "
                              "or give module:function)", group=TASK_GROUP, plugin=ref)
        task: Callable[..., Any] = plugins.load(TASK_GROUP, ref, _callable)
        return task


def _callable(obj: Any) -> str | None:
    return None if callable(obj) else f"is {obj!r}, not callable"


TASKS = TaskRegistry()
register_task = TASKS.register
