"""An alarm raised while watchkeeper's poller was saturated is marked so (issue 17 §4)."""

from __future__ import annotations

import msgspec

from watchkeeper.model import Event
from watchkeeper.pipeline.engines.alarms import AlarmBook, AlarmOptions
from watchkeeper.pipeline.engines.alarms.store import MemoryStore

T0 = 1_700_000_000.0


def check(state: int, t: float, component: str, **attrs: str) -> Event:
    return Event(event_type="check", component=component, resource="http",
                 timestamp=T0 + t, state=state, output=f"state {state}", attrs=attrs)


def test_only_alarms_raised_while_saturated_carry_the_mark() -> None:
    alarms = AlarmBook(msgspec.convert({}, AlarmOptions), MemoryStore())
    alarms.apply_batch([check(2, 0, "web1", poller_saturated="true"), check(2, 0, "web2")])
    marked = alarms.track("resource/web1/http")
    plain = alarms.track("resource/web2/http")
    assert marked is not None
    assert marked.alarm is not None
    assert marked.alarm.poller_saturated
    assert plain is not None
    assert plain.alarm is not None
    assert not plain.alarm.poller_saturated
