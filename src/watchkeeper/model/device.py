"""Devices: the things collectors poll, as the inventory describes them."""

from __future__ import annotations

from typing import Any

import msgspec


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """One device or target: a name, where to reach it, and how to select it."""

    name: str
    address: str = ""
    tags: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    interval: float | None = None
    connections: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)

    def matches(self, selector: str) -> bool:
        """``*``, a name, ``tag:NAME`` or ``group:NAME``."""
        if selector == "*":
            return True
        kind, _, value = selector.partition(":")
        if kind == "tag" and value:
            return value in self.tags
        if kind == "group" and value:
            return value in self.groups
        return selector == self.name
