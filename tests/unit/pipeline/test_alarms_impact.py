"""Impact along the topology: an alarm caused by an upstream device's alarm."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path

import msgspec

from watchkeeper.clock import FakeClock
from watchkeeper.model import Event
from watchkeeper.pipeline import Engine, Pipeline, Services
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.pipeline.engines.alarms import ENGINE, AlarmBook, AlarmOptions, Alarms
from watchkeeper.pipeline.engines.alarms.store import MemoryStore, SqliteStore
from watchkeeper.telemetry import SelfMetrics
from watchkeeper.wire import AlarmInfo

T0 = 1_700_000_000.0
UPSTREAM = {"web1": {"upstream": "core1", "site": "par"}, "web2": {"upstream": "sw9,core1"}}


class FakeLookup:
    """The inventory as the alarms engine sees it: component -> attributes."""

    def __init__(self, table: Mapping[str, Mapping[str, str]]) -> None:
        self.table = dict(table)
        self.calls = 0

    def __call__(self, component: str) -> Mapping[str, str]:
        self.calls += 1
        return self.table.get(component, {})


def check(state: int, t: float, component: str, resource: str = "") -> Event:
    return Event(event_type="check", component=component, resource=resource,
                 source_type="resource" if resource else "component",
                 timestamp=T0 + t, state=state, output=f"state {state}")


def memory_book(lookup: FakeLookup | None, **options: object) -> AlarmBook:
    return AlarmBook(msgspec.convert(options, AlarmOptions), MemoryStore(), lookup=lookup)


def alarm_of(alarms: AlarmBook, entity: str) -> tuple[str | None, list[str]]:
    track = alarms.track(entity)
    assert track is not None
    assert track.alarm is not None
    return track.alarm.caused_by, [s.type for s in track.alarm.steps]


def test_an_alarm_behind_an_alarming_device_is_caused_by_it() -> None:
    alarms = memory_book(FakeLookup(UPSTREAM))
    alarms.apply_batch([check(3, 0, "core1")])
    changes = alarms.apply_batch([check(2, 10, "web1", "http")])
    assert alarm_of(alarms, "resource/web1/http") == (
        "component/core1", ["stateinc", "statusinc", "impact"])
    impact = [e for e in changes if e.attrs["step"] == "impact"]
    assert [e.output for e in impact] == ["component/core1"]
    assert alarm_of(alarms, "component/core1")[0] is None  # the root cause has none


def test_resource_alarms_upstream_and_several_upstream_devices() -> None:
    alarms = memory_book(FakeLookup(UPSTREAM))
    # core1 has no component-level alarm, only one on a resource; sw9 is fine
    alarms.apply_batch([check(0, 0, "sw9"), check(2, 0, "core1", "ping"),
                        check(2, 5, "web2", "http")])
    assert alarm_of(alarms, "resource/web2/http")[0] == "resource/core1/ping"


def test_no_cause_without_an_upstream_alarm_or_without_a_lookup() -> None:
    alarms = memory_book(FakeLookup(UPSTREAM))
    alarms.apply_batch([check(0, 0, "core1"), check(2, 10, "web1", "http"),
                        check(2, 10, "db1")])
    assert alarm_of(alarms, "resource/web1/http") == (None, ["stateinc", "statusinc"])
    assert alarm_of(alarms, "component/db1")[0] is None
    off = memory_book(FakeLookup(UPSTREAM), impact=False)
    off.apply_batch([check(3, 0, "core1"), check(2, 10, "web1", "http")])
    assert alarm_of(off, "resource/web1/http")[0] is None
    without = memory_book(None)
    without.apply_batch([check(3, 0, "core1"), check(2, 10, "web1", "http")])
    assert alarm_of(without, "resource/web1/http")[0] is None


def test_an_upstream_alarm_opening_later_is_found_on_the_next_step_or_beat() -> None:
    alarms = memory_book(FakeLookup(UPSTREAM))
    alarms.apply_batch([check(2, 0, "web1", "http")])
    alarms.apply_batch([check(3, 5, "core1")])
    assert alarm_of(alarms, "resource/web1/http")[0] is None
    changes = alarms.expire(T0 + 6)
    assert alarm_of(alarms, "resource/web1/http")[0] == "component/core1"
    assert [(e.component, e.attrs["step"]) for e in changes] == [("web1", "impact")]
    assert changes[0].timestamp == T0 + 5  # when both were in trouble, not when the beat ran
    assert alarms.expire(T0 + 7) == []  # marked once for the alarm's life
    # a new step of an already caused alarm adds no second mark
    alarms.apply_batch([check(3, 8, "web1", "http")])
    assert alarm_of(alarms, "resource/web1/http")[1].count("impact") == 1


def test_the_mark_survives_a_restart(tmp_path: Path) -> None:
    options = AlarmOptions(store="sqlite")
    lookup = FakeLookup(UPSTREAM)
    first = AlarmBook(options, SqliteStore(tmp_path, 1, dedup_window=100), durable=True,
                      lookup=lookup)
    first.apply_batch([check(3, 0, "core1"), check(2, 1, "web1", "http")])
    first.commit()
    again = AlarmBook(options, SqliteStore(tmp_path, 1, dedup_window=100), durable=True,
                      lookup=lookup)
    assert alarm_of(again, "resource/web1/http") == (
        "component/core1", ["stateinc", "statusinc", "impact"])


async def test_the_engine_uses_the_lent_lookup_and_the_view_shows_the_cause() -> None:
    clock = FakeClock(T0 + 100)
    services = Services(clock=clock, metrics=SelfMetrics(), lookup=FakeLookup(UPSTREAM))
    engine = Engine(name="alarms", services=services, event_task=ENGINE.event_task,
                    batch_task=ENGINE.batch_task, beat_task=ENGINE.beat_task,
                    commit_task=ENGINE.commit_task, options=AlarmOptions(), ordered=True)
    bus = LocalBus()
    async with AsyncExitStack() as stack:
        await bus.start(stack)
        pipeline = Pipeline([engine], bus)
        await pipeline.start(stack)
        await pipeline.publish([check(3, 0, "core1"), check(2, 1, "web1", "http")])
        await bus.drain("alarms")
        api = Alarms(engine, pipeline.send)
        detail = api.get("resource/web1/http")
        assert detail.caused_by == "component/core1"
        assert detail.steps[-1].type == "impact"
        listed = {a.entity_id: a.caused_by for a in api.list()}
        assert listed == {"component/core1": None, "resource/web1/http": "component/core1"}
        wire = msgspec.json.decode(msgspec.json.encode(detail), type=AlarmInfo)
        assert wire.caused_by == "component/core1"
