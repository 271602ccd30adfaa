"""What the API needs from the alarms engine: list and read alarms, and act on them.

Reads come from the engine's book (in this process, or from its SQLite store when the
engine runs elsewhere). Acting publishes a Canopsis-style action event (``ack``,
``snooze``, ``cancel``...) to the engine's queue, so an action is ordered with the
entity's checks, logged as a step with its author, and applied exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import msgspec

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event
from watchkeeper.pipeline.engine import Engine
from watchkeeper.pipeline.engines.alarms.engine import book
from watchkeeper.pipeline.engines.alarms.model import (
    STATE_NAMES,
    STATUS_NAMES,
    Alarm,
    Step,
    Track,
    is_snoozed,
)

Action = Literal["ack", "ackremove", "snooze", "unsnooze", "cancel", "uncancel",
                 "assocticket", "changestate"]
Send = Callable[[str, Sequence[Event]], Awaitable[None]]


class AlarmNotFound(PipelineError, LookupError):
    """No alarm (open, or resolved when asked for) under that entity or alarm id."""


class AlarmView(msgspec.Struct, frozen=True, kw_only=True):
    """One alarm as the API shows it; ``steps`` only when asked for one alarm."""

    id: str
    entity_id: str
    component: str
    resource: str
    opened: float
    state: int
    state_name: str
    status: int
    status_name: str
    ack: Step | None
    snoozed: bool
    snooze_until: float | None
    canceled: Step | None
    ticket: str | None
    resolved: float | None
    events: int
    last_change: float
    caused_by: str | None = None  # the upstream alarm's entity id (impact)
    steps: tuple[Step, ...] = ()


def view(alarm: Alarm, track: Track | None, *, now: float, steps: bool) -> AlarmView:
    snoozed = is_snoozed(track, now) if track is not None and track.alarm is alarm else False
    return AlarmView(
        id=alarm.id, entity_id=alarm.entity_id, component=alarm.component,
        resource=alarm.resource, opened=alarm.opened, state=alarm.state,
        state_name=STATE_NAMES[alarm.state], status=alarm.status,
        status_name=STATUS_NAMES[alarm.status], ack=alarm.ack, snoozed=snoozed,
        snooze_until=alarm.snooze_until, canceled=alarm.canceled, ticket=alarm.ticket,
        resolved=alarm.resolved, events=alarm.events,
        last_change=alarm.steps[-1].t if alarm.steps else alarm.opened,
        caused_by=alarm.caused_by, steps=tuple(alarm.steps) if steps else (),
    )


class Alarms:
    """The read/act interface over one alarms engine; ``send`` is ``Pipeline.send``."""

    def __init__(self, engine: Engine, send: Send) -> None:
        self._engine = engine
        self._send = send

    def list(self, *, status: str | None = None, include_snoozed: bool = True,
             resolved: bool = False, limit: int = 1000) -> list[AlarmView]:
        """Open alarms, most recently changed first (plus resolved ones if asked)."""
        alarms = book(self._engine)
        now = self._engine.services.clock.time()
        if alarms.durable:
            alarms.load_all()  # another process may own the partitions: read what it wrote
        found = [view(t.alarm, t, now=now, steps=False) for t in alarms.tracks()
                 if t.alarm is not None]
        if resolved:
            found += [view(a, None, now=now, steps=False)
                      for a in alarms.store.resolved(None, limit)]
        if status is not None:
            found = [a for a in found if a.status_name == status]
        if not include_snoozed:
            found = [a for a in found if not a.snoozed]
        found.sort(key=lambda a: a.last_change, reverse=True)
        return found[:limit]

    def get(self, key: str) -> AlarmView:
        """One alarm with its steps, by entity id (its open alarm) or by alarm id."""
        alarms = book(self._engine)
        now = self._engine.services.clock.time()
        entity_id = key.rsplit("@", 1)[0] if "@" in key else key
        track = alarms.track(entity_id)
        if track is not None and track.alarm is not None and key in (entity_id, track.alarm.id):
            return view(track.alarm, track, now=now, steps=True)
        for alarm in alarms.store.resolved(entity_id, 1000):
            if key in (alarm.id, entity_id):
                return view(alarm, None, now=now, steps=True)
        raise AlarmNotFound(f"no alarm {key!r}")

    async def act(self, key: str, action: Action, *, author: str, message: str = "",
                  duration: float | None = None, ticket: str | None = None,
                  state: int | None = None) -> Event:
        """Send ``action`` for the open alarm of ``key``; return the action event sent."""
        entity_id = key.rsplit("@", 1)[0] if "@" in key else key
        track = book(self._engine).track(entity_id)
        if track is None or track.alarm is None:
            raise AlarmNotFound(f"no open alarm for {key!r}")
        attrs = {"author": author}
        if duration is not None:
            if not math.isfinite(duration) or duration <= 0:
                raise ValueError(f"duration must be a positive number of seconds, "
                                 f"not {duration!r}")
            attrs["duration"] = repr(float(duration))
        if ticket is not None:
            attrs["ticket"] = ticket
        if state is not None:
            attrs["state"] = str(state)
        event = Event(event_type=action, connector="watchkeeper", connector_name="api",
                      source_type="resource" if track.resource else "component",
                      component=track.component, resource=track.resource,
                      timestamp=self._engine.services.clock.time(), output=message,
                      attrs=attrs)
        await self._send(self._engine.name, [event])
        return event
