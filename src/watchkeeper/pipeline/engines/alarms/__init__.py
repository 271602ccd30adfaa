"""The alarms engine: per-entity alarm state machines with an append-only step log."""

from __future__ import annotations

from watchkeeper.pipeline.engines.alarms.book import AlarmBook
from watchkeeper.pipeline.engines.alarms.engine import ENGINE, book
from watchkeeper.pipeline.engines.alarms.model import (
    NO_DATA,
    STATE_NAMES,
    STATUS_NAMES,
    Alarm,
    AlarmOptions,
    Step,
    Track,
)
from watchkeeper.pipeline.engines.alarms.view import AlarmNotFound, Alarms, AlarmView

__all__ = [
    "ENGINE",
    "NO_DATA",
    "STATE_NAMES",
    "STATUS_NAMES",
    "Alarm",
    "AlarmBook",
    "AlarmNotFound",
    "AlarmOptions",
    "AlarmView",
    "Alarms",
    "Step",
    "Track",
    "book",
]
