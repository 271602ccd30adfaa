"""The pipeline contracts: engine definitions, tasks, and the bus that carries events.

An event task is ``(engine, event, **ctx) -> Event | None`` (None drops the event);
a beat task is ``(engine, **ctx)``, run every ``beat_interval`` seconds and once more
at shutdown so engines can flush. Either may be sync or async. ``ctx`` holds the
engine's configured options when it has no typed ``Options``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import msgspec

from watchkeeper.clock import Clock
from watchkeeper.model import Event, MeasurementSink
from watchkeeper.telemetry import SelfMetrics

EventTask = Callable[..., Any]
BeatTask = Callable[..., Any]
BatchTask = Callable[[Any, list[Event]], Awaitable[list[Event]]]
Handler = Callable[[list[Event]], Awaitable[None]]


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An engine without options."""


@dataclass(frozen=True)
class EngineDefinition:
    """A reusable engine, registered in the ``watchkeeper.engines`` entry-point group.

    ``batch_task``, when given, processes a whole batch at once and replaces
    ``event_task`` on the hot path; ``event_task`` stays the reference semantics.
    """

    event_task: EventTask | None = None
    beat_task: BeatTask | None = None
    batch_task: BatchTask | None = None
    options: type[msgspec.Struct] = NoOptions
    beat_interval: float = 10.0


@dataclass(frozen=True)
class Services:
    """What the runtime lends to engines: where measurements go, the clock, self-metrics."""

    clock: Clock
    metrics: SelfMetrics
    sink: MeasurementSink | None = None


class Bus(ABC):
    """Carries batches of events to named queues, one per engine.

    ``publish`` waits when the queue is full (back-pressure). A handler registered
    with ``consume`` gets batches; a batch counts as delivered when the handler
    returns, and is redelivered (at least once) when the handler raised.
    """

    @abstractmethod
    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Connect; disconnect when the stack unwinds."""

    @abstractmethod
    async def publish(self, queue: str, events: Sequence[Event]) -> None:
        """Send a batch to ``queue``."""

    @abstractmethod
    async def consume(self, queue: str, handler: Handler, *, workers: int = 1) -> None:
        """Run ``workers`` consumers of ``queue`` until :meth:`stop_consuming`."""

    @abstractmethod
    async def drain(self, queue: str) -> None:
        """Wait until every batch published to ``queue`` so far has been handled."""

    @abstractmethod
    async def stop_consuming(self, queue: str) -> None:
        """Stop the consumers of ``queue`` after their current batch."""
