"""The alarm state machine, its book (dedup, partitions, durable store) and its API view."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import msgspec
import pytest

from watchkeeper.clock import FakeClock
from watchkeeper.model import Event
from watchkeeper.pipeline import Engine, Pipeline, Services
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.pipeline.engines.alarms import (
    ENGINE,
    NO_DATA,
    AlarmBook,
    AlarmNotFound,
    AlarmOptions,
    Alarms,
    book,
)
from watchkeeper.pipeline.engines.alarms.model import Step
from watchkeeper.pipeline.engines.alarms.store import MemoryStore, SqliteStore, StaleState
from watchkeeper.telemetry import SelfMetrics

T0 = 1_700_000_000.0
ENTITY = "resource/web1/http"


def check(state: int, t: float, *, component: str = "web1", resource: str = "http",
          **kw: object) -> Event:
    return Event(event_type="check", component=component, resource=resource,
                 timestamp=T0 + t, state=state, output=f"state {state}",
                 **kw)  # type: ignore[arg-type]


def action(kind: str, t: float, **attrs: str) -> Event:
    return Event(event_type=kind, component="web1", resource="http", timestamp=T0 + t,
                 output=f"{kind}!", attrs={"author": "ann", **attrs})


def memory_book(**options: object) -> AlarmBook:
    return AlarmBook(msgspec.convert(options, AlarmOptions), MemoryStore())


def log(alarms: AlarmBook, entity: str = ENTITY) -> list[tuple[str, float, float | None]]:
    track = alarms.track(entity)
    assert track is not None
    assert track.alarm is not None
    return [(s.type, s.t - T0, s.val) for s in track.alarm.steps]


def test_ok_checks_open_nothing_and_trouble_opens_an_alarm() -> None:
    alarms = memory_book()
    assert alarms.apply_batch([check(0, 0), check(0, 10)]) == []
    changes = alarms.apply_batch([check(2, 20), check(2, 30), check(3, 40)])
    assert log(alarms) == [("stateinc", 20, 2), ("statusinc", 20, 1), ("stateinc", 40, 3)]
    assert [e.attrs["step"] for e in changes] == ["stateinc", "statusinc", "stateinc"]
    alarm_id = f"{ENTITY}@{T0 + 20!r}"
    assert [e.id for e in changes] == [f"{alarm_id}#0", f"{alarm_id}#1", f"{alarm_id}#2"]
    assert changes[0].attrs["author"] == "watchkeeper.watchkeeper"
    assert {e.event_type for e in changes} == {"alarm"}


def test_recovery_stealth_and_resolution_happen_when_due() -> None:
    alarms = memory_book(stealthy_time=300, stealthy_show=300, resolve_after=3600)
    alarms.apply_batch([check(2, 0), check(0, 60)])  # trouble lasted 60 s < 300: stealthy
    assert log(alarms)[-2:] == [("statedec", 60, 0), ("statusinc", 60, 2)]
    alarms.apply_batch([check(0, 1000)])  # the stealth ended at 60 + 300, logged then
    assert log(alarms)[-1] == ("statusdec", 360, 0)
    changes = alarms.apply_batch([check(0, 360 + 3600 + 1)])
    assert [(e.attrs["step"], e.timestamp - T0) for e in changes] == [("resolve", 3960)]
    track = alarms.track(ENTITY)
    assert track is not None
    assert track.alarm is None
    [resolved] = alarms.store.resolved(ENTITY, 10)
    assert resolved.resolved == T0 + 3960


def test_a_long_trouble_recovers_to_off_and_a_relapse_reopens_the_same_alarm() -> None:
    alarms = memory_book()
    alarms.apply_batch([check(1, 0), check(0, 1000), check(2, 2000)])
    assert log(alarms) == [("stateinc", 0, 1), ("statusinc", 0, 1), ("statedec", 1000, 0),
                           ("statusdec", 1000, 0), ("stateinc", 2000, 2),
                           ("statusinc", 2000, 1)]


def test_flapping_after_ten_changes_within_the_hour_and_back() -> None:
    alarms = memory_book()
    alarms.apply_batch([check(n % 2 * 2, n * 60) for n in range(1, 11)])
    statuses = [(t, v) for kind, t, v in log(alarms) if kind.startswith("status")]
    assert statuses[-1] == (600, 3)  # the tenth change makes it flapping
    alarms.apply_batch([check(0, 5000)])
    # the flapping ended when the first of those changes left the window: 60 + 3600
    assert ("statusdec", 3660, 0) in log(alarms)


def test_soft_states_need_consecutive_results() -> None:
    alarms = memory_book(hard_after=3)
    assert alarms.apply_batch([check(2, 0), check(2, 10)]) == []
    track = alarms.track(ENTITY)
    assert track is not None
    assert (track.state, track.soft_state, track.soft_count) == (0, 2, 2)
    alarms.apply_batch([check(2, 20)])
    assert log(alarms)[0] == ("stateinc", 20, 2)
    alarms.apply_batch([check(0, 30)])  # recovery is immediate
    assert log(alarms)[2] == ("statedec", 30, 0)


def test_declared_state_types_are_obeyed() -> None:
    alarms = memory_book(hard_after=5)
    alarms.apply_batch([check(2, 0, attrs={"state_type": "soft"}),
                        check(2, 1, attrs={"state_type": "soft"})])
    assert alarms.track(ENTITY).alarm is None  # type: ignore[union-attr]
    alarms.apply_batch([check(2, 2, attrs={"state_type": "hard"})])
    assert log(alarms)[0] == ("stateinc", 2, 2)


def test_no_data_is_its_own_state_at_last_seen_plus_ttl() -> None:
    by_beat = memory_book()
    by_beat.apply_batch([check(0, 0, ttl=60.0)])
    changes = by_beat.expire(T0 + 500)
    assert [(e.attrs["step"], e.timestamp - T0) for e in changes] == [
        ("stateinc", 60), ("statusinc", 60)]
    assert by_beat.track(ENTITY).alarm.state == NO_DATA  # type: ignore[union-attr]
    assert changes[0].attrs["alarm_state"] == "no data"
    by_beat.apply_batch([check(0, 600, ttl=60.0)])
    # the same stream without any beat: the late check finds the silence itself
    by_event = memory_book()
    by_event.apply_batch([check(0, 0, ttl=60.0), check(0, 600, ttl=60.0)])
    assert log(by_event) == log(by_beat)
    assert log(by_event)[-2:] == [("statedec", 600, 0), ("statusdec", 600, 0)]


def test_ack_expires_snooze_ends_cancel_and_tickets() -> None:
    alarms = memory_book()
    alarms.apply_batch([check(2, 0), action("ack", 10, duration="100"),
                        action("snooze", 20, duration="50"), action("cancel", 30),
                        action("assocticket", 40, ticket="INC-7")])
    track = alarms.track(ENTITY)
    assert track is not None
    alarm = track.alarm
    assert alarm is not None
    assert alarm.ack == Step(type="ack", t=T0 + 10, author="ann", message="ack!",
                             val=T0 + 110)
    assert alarm.status == 4
    assert alarm.ticket == "INC-7"
    alarms.apply_batch([check(2, 200), action("uncancel", 210)])
    assert log(alarms)[4:] == [("cancel", 30, None), ("statusinc", 30, 4),
                               ("assocticket", 40, None), ("unsnooze", 70, None),
                               ("ackremove", 110, None), ("uncancel", 210, None),
                               ("statusdec", 210, 1)]
    kinds = [k for k, _, _ in log(alarms)]
    assert kinds == ["stateinc", "statusinc", "ack", "snooze", "cancel", "statusinc",
                     "assocticket", "unsnooze", "ackremove", "uncancel", "statusdec"]
    assert alarm.ack is None


def test_changestate_is_sticky_until_resolved() -> None:
    alarms = memory_book()
    alarms.apply_batch([check(3, 0), action("changestate", 5, state="1"), check(2, 10)])
    alarm = alarms.track(ENTITY).alarm  # type: ignore[union-attr]
    assert alarm is not None
    assert alarm.state == 1
    assert log(alarms)[-1] == ("statedec", 10, 2)  # logged, but the manual state holds


def test_actions_without_an_alarm_change_nothing() -> None:
    alarms = memory_book()
    assert alarms.apply_batch([action("ack", 0), check(0, 1)]) == []


def test_the_hard_limit_stops_the_log_but_not_the_state() -> None:
    alarms = memory_book(hard_limit=5, flap_changes=1000)
    alarms.apply_batch([check(1 + n % 2, n) for n in range(10)])
    kinds = [k for k, _, _ in log(alarms)]
    assert kinds == ["stateinc", "statusinc", "stateinc", "statedec", "stateinc", "hardlimit"]
    alarm = alarms.track(ENTITY).alarm  # type: ignore[union-attr]
    assert alarm is not None
    assert alarm.state == 2
    assert alarm.unlogged == 6  # the change at t=4 and the five after it


def test_events_are_applied_once_by_id() -> None:
    alarms = memory_book()
    batch = [check(2, 0), check(0, 10), check(2, 20)]
    first = alarms.apply_batch(batch)
    assert alarms.apply_batch(batch) == []
    assert alarms.duplicates == 3
    assert len(first) == len(log(alarms))


def test_partitions_split_entities_and_results_do_not_depend_on_them() -> None:
    events = [check((n * 7) % 4, n, component=f"h{n % 13}") for n in range(400)]
    one = memory_book()
    many = AlarmBook(AlarmOptions(), MemoryStore(), partitions=4)
    assert [e.id for e in one.apply_batch(events)] == [e.id for e in many.apply_batch(events)]
    assert len({many.partition_of(t.entity_id) for t in many.tracks()}) == 4


def test_the_sqlite_store_survives_a_restart_and_knows_what_it_applied(tmp_path: Path) -> None:
    options = AlarmOptions(store="sqlite")
    first = AlarmBook(options, SqliteStore(tmp_path, 2, dedup_window=1000), partitions=2,
                      durable=True)
    batch = [check(2, n, component=f"h{n % 5}") for n in range(20)]
    first.apply_batch(batch[:10])
    first.commit()
    first.apply_batch(batch[10:])  # applied, never committed: lost with the "crash"
    again = AlarmBook(options, SqliteStore(tmp_path, 2, dedup_window=1000), partitions=2,
                      durable=True)
    again.apply_batch(batch)  # the redelivery: the first ten are known, the rest applied
    again.commit()
    assert again.duplicates == 10
    reference = memory_book()
    reference.apply_batch(batch)
    for n in range(5):
        entity = f"resource/h{n}/http"
        assert log(again, entity) == log(reference, entity)


def test_a_worker_reloads_a_partition_another_one_committed_to(tmp_path: Path) -> None:
    options = AlarmOptions(store="sqlite")
    a = AlarmBook(options, SqliteStore(tmp_path, 1, dedup_window=100), durable=True)
    b = AlarmBook(options, SqliteStore(tmp_path, 1, dedup_window=100), durable=True)
    a.apply_batch([check(2, 0)])
    a.commit()
    b.apply_batch([check(3, 10)])  # b takes over the partition: it must see a's alarm
    b.commit()
    a.apply_batch([check(1, 20)])  # and a, back again, must see b's step
    assert [k for k, _, _ in log(a)] == ["stateinc", "statusinc", "stateinc", "statedec"]


def test_a_stale_worker_cannot_commit_and_redoes_its_batch(tmp_path: Path) -> None:
    options = AlarmOptions(store="sqlite")
    a = AlarmBook(options, SqliteStore(tmp_path, 1, dedup_window=100), durable=True)
    b = AlarmBook(options, SqliteStore(tmp_path, 1, dedup_window=100), durable=True)
    a.apply_batch([check(2, 0)])
    b.apply_batch([check(3, 0, component="db")])  # both loaded version 0
    a.commit()
    with pytest.raises(StaleState):
        b.commit()  # b's changes were computed on a stale partition: refused
    b.apply_batch([check(3, 0, component="db")])  # the redelivery, on fresh state
    b.apply_batch([check(3, 5, component="db")])
    a.apply_batch([check(3, 5)])
    b.commit()
    with pytest.raises(StaleState):
        a.apply_batch([check(1, 6)])  # a's uncommitted work is stale now
    fresh = AlarmBook(options, SqliteStore(tmp_path, 1, dedup_window=100), durable=True)
    assert [k for k, _, _ in log(fresh)] == ["stateinc", "statusinc"]
    assert [k for k, _, _ in log(fresh, "resource/db/http")] == ["stateinc", "statusinc"]


def test_the_beat_covers_partitions_without_new_events(tmp_path: Path) -> None:
    options = AlarmOptions(store="sqlite")
    first = AlarmBook(options, SqliteStore(tmp_path, 2, dedup_window=100), partitions=2,
                      durable=True)
    first.apply_batch([check(0, 0, component=f"h{n}", ttl=60.0) for n in range(6)])
    first.commit()
    restarted = AlarmBook(options, SqliteStore(tmp_path, 2, dedup_window=100), partitions=2,
                          durable=True)
    changes = restarted.expire(T0 + 100)  # no event since the restart: silence is found
    assert {e.component for e in changes} == {f"h{n}" for n in range(6)}
    restarted.commit()
    other = AlarmBook(options, SqliteStore(tmp_path, 2, dedup_window=100), partitions=2,
                      durable=True)
    assert other.expire(T0 + 100) == []  # already done, and stored


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + 1000)


async def test_engine_in_a_chain_with_the_api_view(clock: FakeClock) -> None:
    services = Services(clock=clock, metrics=SelfMetrics())
    seen: list[Event] = []

    async def collect(engine: Engine, batch: list[Event]) -> list[Event]:
        seen.extend(batch)
        return []

    alarms_engine = Engine(name="alarms", services=services, event_task=ENGINE.event_task,
                           batch_task=ENGINE.batch_task, beat_task=ENGINE.beat_task,
                           commit_task=ENGINE.commit_task, options=AlarmOptions(),
                           next_engines=("out",), ordered=True)
    out = Engine(name="out", services=services, event_task=None, batch_task=collect)
    bus = LocalBus()
    async with AsyncExitStack() as stack:
        await bus.start(stack)
        pipeline = Pipeline([alarms_engine, out], bus)
        await pipeline.start(stack)
        api = Alarms(alarms_engine, pipeline.send)
        await pipeline.publish([check(2, 0), check(0, 1, component="db")])
        await bus.drain("alarms")
        [listed] = api.list()
        assert (listed.entity_id, listed.status_name, listed.steps) == (ENTITY, "ongoing", ())
        sent = await api.act(ENTITY, "ack", author="bob", message="on it", duration=60)
        assert sent.event_type == "ack"
        await bus.drain("alarms")
        detail = api.get(listed.id)
        assert [s.type for s in detail.steps] == ["stateinc", "statusinc", "ack"]
        assert detail.ack is not None
        assert detail.ack.author == "bob"
        await api.act(ENTITY, "snooze", author="bob", duration=600)
        await bus.drain("alarms")
        assert api.list(include_snoozed=False) == []
        with pytest.raises(AlarmNotFound):
            await api.act("resource/nope/x", "ack", author="bob")
        with pytest.raises(AlarmNotFound):
            api.get("resource/nope/x")
        await pipeline.stop()
    steps = [e.attrs["step"] for e in seen if e.event_type == "alarm"]
    assert steps == ["stateinc", "statusinc", "ack", "snooze"]
    assert sum(1 for e in seen if e.event_type == "check") == 2  # checks pass on too
    assert isinstance(book(alarms_engine), AlarmBook)
