"""One contract for every durable alarm store: SQLite (one host) and PostgreSQL (shared).

Each test opens stores through ``open_store``; two stores opened by one test stand for
two workers (on one host for SQLite, on two hosts for PostgreSQL) sharing the state. The
PostgreSQL stores get a schema of their own per test, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from watchkeeper.model import Event
from watchkeeper.pipeline.engines.alarms import AlarmBook, AlarmOptions
from watchkeeper.pipeline.engines.alarms.pgstore import PostgresStore
from watchkeeper.pipeline.engines.alarms.store import (
    AlarmStore,
    Changes,
    MemoryStore,
    SqliteStore,
    StaleState,
)
from watchkeeper.pipeline.pgconnect import DEFAULT_DSN

PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG_DSN", DEFAULT_DSN)
PARTITIONS = 4
WINDOW = 50
T0 = 1_700_000_000.0
OPTIONS = AlarmOptions(resolve_after=60, stealthy_time=0, flap_changes=100,
                       dedup_window=WINDOW)

OpenStore = Callable[[], AlarmStore]


@pytest.fixture(params=["sqlite", pytest.param("postgres",
                                               marks=pytest.mark.external_service)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens stores of one backend over the same state; closes them (and drops the
    PostgreSQL schema) at the end."""
    kind: str = request.param
    schema = f"wk_alarms_{uuid.uuid4().hex[:12]}"
    opened: list[AlarmStore] = []

    def make() -> AlarmStore:
        store: AlarmStore
        if kind == "sqlite":
            store = SqliteStore(tmp_path / "alarms", PARTITIONS, dedup_window=WINDOW)
        else:
            store = PostgresStore(PG_DSN, "alarms", PARTITIONS, dedup_window=WINDOW,
                                  schema=schema)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    if kind == "postgres":
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _check(n: int, state: int, component: str = "web1") -> Event:
    return Event(event_type="check", component=component, resource="HTTP",
                 timestamp=T0 + n, state=state, id=f"{component}-{n}")


def _stream(entities: int = 12, rounds: int = 40) -> list[Event]:
    return [_check(n, (3 if (n // 5 + i) % 4 == 0 else 0), f"h{i}")
            for n in range(rounds) for i in range(entities)]


def _state(book: AlarmBook) -> dict[str, object]:
    return {t.entity_id: msgspec.to_builtins(t) for t in book.tracks()}


def test_a_fresh_partition_is_empty(open_store: OpenStore) -> None:
    """Nothing stored yet: no tracks, no ids, version 0, no resolved alarms."""
    store = open_store()
    loaded = store.load(2)
    assert (loaded.tracks, loaded.seen, loaded.version) == ({}, [], 0)
    assert store.version(2) == 0
    assert store.resolved(None, 10) == []


def test_a_second_worker_continues_where_the_first_stopped(open_store: OpenStore) -> None:
    """Half the stream through one worker's book, the rest through another's on the same
    store: the state (alarm ids, steps, counters) equals one uninterrupted run."""
    events = _stream()
    reference = AlarmBook(OPTIONS, MemoryStore(), partitions=PARTITIONS)
    for start in range(0, len(events), 30):
        reference.apply_batch(events[start:start + 30])
    half = len(events) // 2
    first = AlarmBook(OPTIONS, open_store(), partitions=PARTITIONS, durable=True)
    for start in range(0, half, 30):
        first.apply_batch(events[start:start + 30])
        first.commit()
    second = AlarmBook(OPTIONS, open_store(), partitions=PARTITIONS, durable=True)
    # the first worker's last batch comes again (it died before the ack): recognised
    second.apply_batch(events[half - 30:half])
    assert second.duplicates == 30
    for start in range(half, len(events), 30):
        second.apply_batch(events[start:start + 30])
        second.commit()
    second.load_all()
    assert _state(second) == _state(reference)
    assert any(t.alarm is not None and len(t.alarm.steps) > 1 for t in second.tracks())
    again = AlarmBook(OPTIONS, open_store(), partitions=PARTITIONS, durable=True)
    again.load_all()
    assert _state(again) == _state(reference)  # what is stored, read back by a third


def test_a_stale_commit_is_refused_and_writes_nothing(open_store: OpenStore) -> None:
    """Two workers load version 0; the first commits; the second's commit is refused and
    its changes are not stored."""
    one, two = open_store(), open_store()
    book_one = AlarmBook(OPTIONS, one, partitions=PARTITIONS, durable=True)
    book_two = AlarmBook(OPTIONS, two, partitions=PARTITIONS, durable=True)
    book_one.apply_batch([_check(0, 3)])
    book_two.apply_batch([_check(1, 2)])
    book_one.commit()
    with pytest.raises(StaleState, match="changed since it was loaded"):
        book_two.commit()
    partition = book_one.partition_of("resource/web1/HTTP")
    loaded = two.load(partition)
    assert loaded.version == 1
    assert loaded.seen == ["web1-0"]
    track = loaded.tracks["resource/web1/HTTP"]
    assert track.state == 3
    assert track.alarm is not None
    assert [s.type for s in track.alarm.steps] == ["stateinc", "statusinc"]
    with pytest.raises(StaleState):
        two.commit(partition, Changes(seen=["x"]), expected=0)
    assert two.version(partition) == 1


def test_seen_ids_are_kept_for_the_window(open_store: OpenStore) -> None:
    """The last ``dedup_window`` event ids of a partition are stored, oldest first."""
    store = open_store()
    version = 0
    for start in range(0, 120, 40):
        version = store.commit(1, Changes(seen=[f"e{n}" for n in range(start, start + 40)]),
                               expected=version)
    assert version == 3
    assert store.load(1).seen == [f"e{n}" for n in range(70, 120)]
    assert open_store().load(1).seen == [f"e{n}" for n in range(70, 120)]


def test_resolved_alarms_newest_first_with_their_steps(open_store: OpenStore) -> None:
    """An alarm resolved after ``resolve_after`` is listed with its steps, by entity too;
    its entity keeps no open alarm."""
    book = AlarmBook(OPTIONS, open_store(), partitions=PARTITIONS, durable=True)
    for component, start in (("a", 0), ("b", 10)):
        book.apply_batch([_check(start, 3, component), _check(start + 1, 0, component),
                          _check(start + 200, 0, component)])
    book.commit()
    store = open_store()
    resolved = store.resolved(None, 10)
    assert [a.entity_id for a in resolved] == ["resource/b/HTTP", "resource/a/HTTP"]
    assert resolved[0].steps[-1].type == "resolve"
    assert [s.type for s in resolved[0].steps][:2] == ["stateinc", "statusinc"]
    assert [a.id for a in store.resolved("resource/a/HTTP", 10)] == [resolved[1].id]
    assert store.resolved("resource/a/HTTP", 0) == []
    partition = book.partition_of("resource/a/HTTP")
    assert store.load(partition).tracks["resource/a/HTTP"].alarm is None


def test_dropped_entities_are_forgotten(open_store: OpenStore) -> None:
    """An entity listed in ``dropped`` has no track after the commit."""
    book = AlarmBook(OPTIONS, open_store(), partitions=PARTITIONS, durable=True)
    book.apply_batch([_check(0, 3)])
    book.commit()
    store = open_store()
    partition = book.partition_of("resource/web1/HTTP")
    version = store.version(partition)
    store.commit(partition, Changes(dropped=["resource/web1/HTTP"]), expected=version)
    assert store.load(partition).tracks == {}


def test_a_rolled_back_batch_is_applied_again(open_store: OpenStore) -> None:
    """A batch whose results did not go out is forgotten by a rollback: applied again, it
    gives the same alarm events, and the state counts it once."""
    book = AlarmBook(OPTIONS, open_store(), partitions=PARTITIONS, durable=True)
    book.apply_batch([_check(0, 0)])
    book.commit()
    batch = [_check(1, 3), _check(2, 3)]
    first = book.apply_batch(batch)
    assert first
    book.rollback()
    again = book.apply_batch(batch)
    assert [e.id for e in again] == [e.id for e in first]
    assert book.duplicates == 0
    book.commit()
    track = book.track("resource/web1/HTTP")
    assert track is not None
    assert track.events == 3
    memory = AlarmBook(OPTIONS, MemoryStore(), partitions=PARTITIONS)
    memory.apply_batch(batch)
    memory.rollback()  # nothing to go back to: kept
    assert memory.apply_batch(batch) == []
