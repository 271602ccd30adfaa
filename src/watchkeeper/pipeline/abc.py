"""The pipeline contracts: engine definitions, tasks, and the bus that carries events.

An event task is ``(engine, event, **ctx) -> Event | None`` (None drops the event);
a beat task is ``(engine, **ctx)``, run every ``beat_interval`` seconds and once more
at shutdown so engines can flush. Either may be sync or async. ``ctx`` holds the
engine's configured options when it has no typed ``Options``.

A bus delivers batches at least once: a batch whose handler raised, or whose worker
died before acknowledging it, comes again. Stateful engines therefore de-duplicate by
event id, and make their state durable in ``commit_task`` before a durable bus
acknowledges the batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from watchkeeper.clock import Clock
from watchkeeper.model import Event, MeasurementSink, MetadataSink
from watchkeeper.telemetry import SelfMetrics

EventTask = Callable[..., Any]
BeatTask = Callable[..., Any]
BatchTask = Callable[[Any, list[Event]], Awaitable[list[Event]]]
CommitTask = Callable[[Any], Awaitable[None]]
Handler = Callable[[list[Event]], Awaitable[None]]
INGRESS = "ingress"
"""The queue name of events from outside sources (Canopsis connectors), fed to the roots."""
Lookup = Callable[[str], Mapping[str, str]]
"""Attributes of a component (site, role, tags...) by its name; empty when unknown."""
Notify = Callable[[Sequence[Mapping[str, Any]]], Awaitable[None]]
"""Hands the inventory a batch of notifications as plain mappings (``publisher_id``,
``event_type``, ``payload``, optionally ``priority``, ``timestamp``, ``message_id``)."""


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An engine without options."""


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An event whose task kept failing, with the error (a traceback) that stopped it."""

    engine: str
    event: Event
    error: str
    attempts: int


@dataclass(frozen=True)
class EngineDefinition:
    """A reusable engine, registered in the ``watchkeeper.engines`` entry-point group.

    ``batch_task``, when given, processes a whole batch at once and replaces
    ``event_task`` on the hot path; ``event_task`` stays the reference semantics.
    ``commit_task`` makes what the engine did durable; the pipeline calls it after the
    batch's results are published and before a durable bus acknowledges the batch.
    ``partitioned`` engines keep state per entity: the bus routes each entity to one
    partition, so no two workers ever process the same entity out of order.
    """

    event_task: EventTask | None = None
    beat_task: BeatTask | None = None
    batch_task: BatchTask | None = None
    commit_task: CommitTask | None = None
    options: type[msgspec.Struct] = NoOptions
    beat_interval: float = 10.0
    partitioned: bool = False


@dataclass(frozen=True)
class Services:
    """What the runtime lends to engines.

    ``sink``: where measurements go (the archive); ``metadata``: where the metric
    families' metadata events carry goes (a file beside it). ``lookup``: inventory attributes of a
    component, so the pipeline never imports the inventory. ``data_dir``: where engines
    may keep durable state. ``notify``: tells the inventory what happened (plain data,
    see :data:`Notify`), for the ``inventory_notify`` engine.
    """

    clock: Clock
    metrics: SelfMetrics
    sink: MeasurementSink | None = None
    lookup: Lookup | None = None
    data_dir: Path | None = None
    notify: Notify | None = None
    metadata: MetadataSink | None = None


class Bus(ABC):
    """Carries batches of events to named queues, one per engine.

    ``publish`` waits when the queue is full (back-pressure). A handler registered
    with ``consume`` gets batches; a batch counts as delivered when the handler
    returns, and is redelivered (at least once) when the handler raised. A queue
    declared with ``partitions > 1`` keeps the events of one entity in one partition,
    handled by one worker at a time, in the order they were published.
    """

    durable: ClassVar[bool] = False
    """True when an acknowledged batch survives a crash of the process (AMQP)."""

    async def declare(self, queue: str, *, partitions: int = 1,  # noqa: B027
                      ordered: bool = False) -> None:
        """Make ``queue`` known before anything is published to it (default: nothing).

        ``ordered``: one worker at a time, in publishing order (implied by partitions > 1).
        """

    async def fan_out(self, queues: Sequence[str], events: Sequence[Event]) -> None:
        """Publish ``events`` to each of ``queues`` (a bus that encodes does it once)."""
        for queue in queues:
            await self.publish(queue, events)

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

    @abstractmethod
    async def dead_letter(self, queue: str, letters: Sequence[DeadLetter]) -> None:
        """Keep events that ``queue``'s engine gave up on, with their errors."""

    def take_queued(self) -> dict[str, list[list[Event]]]:
        """Remove and return the batches still queued (queue → batches), once nothing
        consumes; a broker keeps its own queues, so the default is nothing."""
        return {}

    async def consume_ingress(self, handler: Handler, *, now: Callable[[], float]) -> bool:
        """Feed ``handler`` with events from outside sources the bus was configured to take
        (Canopsis connectors on AMQP); False when there are none (the default)."""
        return False
