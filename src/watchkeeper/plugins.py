"""Find plugins by entry-point name or by ``package.module:Name``, and check their contract.

Built-in collectors, engines, archives and buses register through the same
entry-point groups as third-party ones, so there is one way in for everybody.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Final

from watchkeeper.errors import PluginError

COLLECTORS: Final = "watchkeeper.collectors"
ENGINES: Final = "watchkeeper.engines"
ARCHIVES: Final = "watchkeeper.archives"
BUSES: Final = "watchkeeper.buses"
INVENTORY_COLLECTORS: Final = "watchkeeper.inventory_collectors"

Check = Callable[[Any], str | None]
"""A contract check: returns what is wrong with the loaded object, or None."""


def available(group: str) -> list[str]:
    """Names registered in an entry-point group, sorted."""
    return sorted({ep.name for ep in entry_points(group=group)})


def load(group: str, ref: str, check: Check | None = None) -> Any:
    """Load ``ref`` (an entry-point name in ``group`` or ``module:attr``) and check it."""
    obj = _import_ref(group, ref) if ":" in ref else _from_entry_point(group, ref)
    if check is not None:
        problem = check(obj)
        if problem:
            raise PluginError(problem, group=group, plugin=ref)
    return obj


def subclass_of(base: type) -> Check:
    """A check that accepts subclasses of ``base`` that are not abstract."""

    def check(obj: Any) -> str | None:
        if not isinstance(obj, type) or not issubclass(obj, base):
            return f"is {obj!r}, not a subclass of {base.__module__}.{base.__qualname__}"
        abstract = sorted(getattr(obj, "__abstractmethods__", ()))
        if abstract:
            return f"does not implement {', '.join(abstract)}"
        return None

    return check


def instance_of(cls: type) -> Check:
    """A check that accepts instances of ``cls``."""

    def check(obj: Any) -> str | None:
        if not isinstance(obj, cls):
            return f"is {obj!r}, not a {cls.__module__}.{cls.__qualname__}"
        return None

    return check


def _from_entry_point(group: str, name: str) -> Any:
    matches = [ep for ep in entry_points(group=group) if ep.name == name]
    if not matches:
        known = ", ".join(available(group)) or "none"
        raise PluginError(f"no such plugin (known: {known}; or give module:Name)",
                          group=group, plugin=name)
    try:
        return matches[0].load()
    except Exception as exc:  # a broken plugin must name itself, whatever it raised
        raise PluginError(f"failed to load: {exc!r}", group=group, plugin=name) from exc


def _import_ref(group: str, ref: str) -> Any:
    module_name, _, attr_path = ref.partition(":")
    if not module_name or not attr_path:
        raise PluginError("expected package.module:Name", group=group, plugin=ref)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import {module_name!r}: {exc}", group=group, plugin=ref) from exc
    except Exception as exc:  # importing runs arbitrary plugin code
        raise PluginError(f"importing {module_name!r} failed: {exc!r}",
                          group=group, plugin=ref) from exc
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise PluginError(f"{module_name!r} has no attribute {attr_path!r}",
                              group=group, plugin=ref) from None
    return obj
