"""Small contracts one subsystem offers another, kept here so subsystems never import each other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from watchkeeper.model.event import Event
from watchkeeper.model.measurement import Measurement


class MeasurementSink(Protocol):
    """Somewhere measurements are made durable; the archive is one."""

    async def write(self, measurements: Sequence[Measurement]) -> int:
        """Store the measurements durably and return how many were stored."""
        ...


class EventSink(Protocol):
    """Somewhere events are sent; the pipeline's ingress is one."""

    async def publish(self, events: Sequence[Event]) -> None: ...
