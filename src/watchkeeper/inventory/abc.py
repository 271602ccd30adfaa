"""The model collector contract: a full build, plus notification endpoints between builds.

A model collector (OpenStack Watcher's cluster-data-model collector, without its faults)
is a small class::

    class Racks(ModelCollector):
        class Options(CollectorOptions, frozen=True, kw_only=True):
            url: str

        async def build(self, ctx: BuildContext) -> Graph:
            edit = Graph().edit()
            for rack in await fetch(self.options.url, timeout=ctx.remaining()):
                edit.add("rack", rack["name"], attrs={"room": rack["room"]})
            return edit.commit()

        def endpoints(self) -> list[NotificationEndpoint]:
            return [NotificationEndpoint(publisher_id=r"dcim\\.", event_type=r"rack\\.moved$",
                                         handler=self._moved)]

        def _moved(self, edit: GraphEdit, n: Notification) -> None:
            edit.update(node_id("rack", n.payload["name"]), attrs={"room": n.payload["room"]})

``build`` returns the *whole* model or raises: the manager keeps the previous model
(marked stale) when it raises or runs past ``timeout``, never a partial one. Handlers
apply one notification to a draft; they must be idempotent, because a notification that
arrives during a build is applied to the current model at once and replayed onto the new
model before it is swapped in.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec

from watchkeeper.clock import Clock
from watchkeeper.inventory.graph import Graph, GraphEdit


class CollectorOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options every model collector has; plugins subclass this for their own."""

    period: float = 3600.0  # seconds between full rebuilds; the first runs at start
    timeout: float = 600.0  # a build running longer is abandoned and the model marked stale

    def __post_init__(self) -> None:
        for name in ("period", "timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be a positive number of seconds")


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """Something that happened, told to the inventory between builds.

    ``publisher_id`` says who tells (``snmp-trap.core1``, ``pipeline.enrich``), ``event_type``
    what happened (``interface.down``); the payload carries the details.
    """

    publisher_id: str
    event_type: str
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: str = "info"
    timestamp: float | None = None
    message_id: str = ""


Handler = Callable[[GraphEdit, Notification], None]
"""Applies one notification to a draft of the model (never to the published model)."""


@dataclass(frozen=True, slots=True)
class NotificationEndpoint:
    """Which notifications a collector handles, and how.

    ``publisher_id`` and ``event_type`` are regexes matched from the start (``re.match``,
    as oslo.messaging's filters); ``payload`` maps a dotted payload path to a regex its
    value (as text) must match. A notification matching every rule goes to ``handler``.
    """

    handler: Handler
    publisher_id: str = ""
    event_type: str = ""
    payload: Mapping[str, str] = field(default_factory=dict)
    _publisher: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _event: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _payload: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled once here; a bad pattern fails when the collector is loaded.
        object.__setattr__(self, "_publisher", re.compile(self.publisher_id))
        object.__setattr__(self, "_event", re.compile(self.event_type))
        object.__setattr__(self, "_payload", tuple(
            (tuple(path.split(".")), re.compile(pattern)) for path, pattern in self.payload.items()
        ))

    @property
    def has_payload_rule(self) -> bool:
        return bool(self._payload)

    def matches_route(self, publisher_id: str, event_type: str) -> bool:
        """The publisher and event-type rules alone (cacheable per pair)."""
        return (self._publisher.match(publisher_id) is not None
                and self._event.match(event_type) is not None)

    def matches(self, notification: Notification) -> bool:
        return (self.matches_route(notification.publisher_id, notification.event_type)
                and self.matches_payload(notification))

    def matches_payload(self, notification: Notification) -> bool:
        return all(_payload_matches(notification.payload, path, pattern)
                   for path, pattern in self._payload)


def _payload_matches(payload: Mapping[str, Any], path: tuple[str, ...],
                     pattern: re.Pattern[str]) -> bool:
    value: Any = payload
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return pattern.match(value if isinstance(value, str) else str(value)) is not None


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a build may need: its name, the time, its deadline and the model it replaces."""

    collector: str
    clock: Clock
    started: float
    deadline: float
    previous: Graph

    def remaining(self) -> float:
        """Seconds left before the build is abandoned (never negative)."""
        return max(0.0, self.deadline - self.clock.time())


class ModelCollector(ABC):
    """Base of every model collector plugin (entry-point group
    ``watchkeeper.inventory_collectors``).

    ``Options`` is a :class:`CollectorOptions` subclass validated at start-up from the
    ``inventory.collectors.<name>`` section. Construction must not do I/O.
    """

    Options: ClassVar[type[CollectorOptions]] = CollectorOptions

    def __init__(self, options: Any, *, name: str) -> None:
        self.options = options
        self.name = name

    @abstractmethod
    async def build(self, ctx: BuildContext) -> Graph:
        """The whole model, built from scratch; raise when it cannot be built completely."""

    def endpoints(self) -> list[NotificationEndpoint]:
        """The notifications this collector applies between builds; none by default."""
        return []

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections; called once when the manager stops."""
