"""Small contracts one subsystem offers another, kept here so subsystems never import each other."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from watchkeeper.model.event import Event
from watchkeeper.model.families import MetricMetadata
from watchkeeper.model.measurement import Measurement


class MeasurementSink(Protocol):
    """Somewhere measurements are made durable; the archive is one."""

    async def write(self, measurements: Sequence[Measurement]) -> int:
        """Store the measurements durably and return how many were stored."""
        ...


class EventSink(Protocol):
    """Somewhere events are sent; the pipeline's ingress is one."""

    async def publish(self, events: Sequence[Event]) -> None: ...


class MetadataSink(Protocol):
    """Somewhere metric families' metadata is kept (a file next to the archive)."""

    def update(self, entries: Iterable[tuple[str, MetricMetadata]]) -> int:
        """Keep the entries (family, metadata) durably; how many changed. Blocking I/O:
        call it from a worker thread."""
        ...
