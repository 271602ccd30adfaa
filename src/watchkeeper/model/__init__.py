"""Core value types shared by every subsystem."""

from __future__ import annotations

from watchkeeper.model.device import Device
from watchkeeper.model.event import Event
from watchkeeper.model.families import Families, MetricMetadata
from watchkeeper.model.measurement import Measurement, SeriesKey
from watchkeeper.model.sinks import EventSink, MeasurementSink, MetadataSink
from watchkeeper.model.status import CheckResult, Message, Status

__all__ = [
    "CheckResult",
    "Device",
    "Event",
    "EventSink",
    "Families",
    "Measurement",
    "MeasurementSink",
    "Message",
    "MetadataSink",
    "MetricMetadata",
    "SeriesKey",
    "Status",
]
