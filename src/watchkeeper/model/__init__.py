"""Core value types shared by every subsystem."""

from __future__ import annotations

from watchkeeper.model.device import Device
from watchkeeper.model.event import Event
from watchkeeper.model.measurement import Measurement, SeriesKey
from watchkeeper.model.sinks import EventSink, MeasurementSink
from watchkeeper.model.status import CheckResult, Message, Status

__all__ = [
    "CheckResult",
    "Device",
    "Event",
    "EventSink",
    "Measurement",
    "MeasurementSink",
    "Message",
    "SeriesKey",
    "Status",
]
