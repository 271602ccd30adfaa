"""One contract for the durable state of the threshold and dedup engines: SQLite and PostgreSQL.

Two engine instances over one store stand for a worker and the one that takes over
after it (restarted on the host for SQLite, on another host for PostgreSQL). The
PostgreSQL stores get a schema of their own per test, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from watchkeeper.clock import SystemClock
from watchkeeper.model import Event, Measurement, SeriesKey
from watchkeeper.pipeline import Engine, EngineDefinition, Services
from watchkeeper.pipeline.engines import dedup, threshold
from watchkeeper.pipeline.pgconnect import DEFAULT_DSN
from watchkeeper.pipeline.state import (
    PartitionedState,
    PartitionStore,
    StaleState,
    StateOptions,
    open_store,
)
from watchkeeper.telemetry import SelfMetrics

PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG_DSN", DEFAULT_DSN)
PARTITIONS = 4
CPU_RULE = {"metric": "cpu.*", "warning": 80, "critical": 90, "hysteresis": 5}

Options = Callable[[], dict[str, Any]]
MakeEngine = Callable[[EngineDefinition, dict[str, Any]], Engine]


@pytest.fixture(params=["sqlite", pytest.param("postgres",
                                               marks=pytest.mark.external_service)])
def state_options(request: pytest.FixtureRequest) -> Iterator[Options]:
    """The ``state`` options of one backend (a fresh schema for PostgreSQL, dropped after)."""
    kind: str = request.param
    schema = f"wk_state_{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        yield lambda: {"state": "sqlite"}
        return
    yield lambda: {"state": "postgres", "dsn": PG_DSN, "schema": schema}
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    """Engines made by the test; closed (their stores with them) at the end."""
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.close()


@pytest.fixture
def make_engine(engines: list[Engine], tmp_path: Path) -> MakeEngine:
    def make(definition: EngineDefinition, options: dict[str, Any]) -> Engine:
        engine = Engine(name="e", services=Services(clock=SystemClock(), metrics=SelfMetrics(),
                                                    data_dir=tmp_path),
                        event_task=definition.event_task, batch_task=definition.batch_task,
                        beat_task=definition.beat_task, commit_task=definition.commit_task,
                        partitions=PARTITIONS,
                        options=msgspec.convert(options, definition.options))
        engines.append(engine)
        return engine

    return make


def _metric(value: float, t: float, host: str = "web1") -> Event:
    m = Measurement(key=SeriesKey.make(host, "system", "cpu.percent"), ts=t, value=value)
    return Event(event_type="check", component=host, resource="system", timestamp=t,
                 measurements=(m,), id=f"{host}-{t}")


def _store(options: dict[str, Any], tmp_path: Path, window: int = 5) -> PartitionStore:
    store = open_store(msgspec.convert(options, StateOptions), engine="e",
                       partitions=PARTITIONS, data_dir=tmp_path, window=window)
    assert store is not None
    return store


async def test_held_levels_survive_a_worker(state_options: Options,
                                            make_engine: MakeEngine) -> None:
    """A level reached before the worker went away is held by the one that takes over:
    88 after 92 stays critical (hysteresis 5), as in an uninterrupted run."""
    options = {"rules": [CPU_RULE], **state_options()}
    first = make_engine(threshold.ENGINE, options)
    out = await first.process([_metric(50, 0), _metric(92, 1), _metric(70, 2, "web2")])
    assert [e.state for e in out] == [0, 3, 0]
    await first.commit()
    second = make_engine(threshold.ENGINE, options)
    [held] = await second.process([_metric(88, 3)])
    assert held.state == 3
    second.event_task(second, _metric(84, 4))  # the event task keeps the same state
    await second.beat()  # commits too (the local bus commits nowhere else)
    third = make_engine(threshold.ENGINE, options)
    assert [e.state for e in await third.process([_metric(86, 5)])] == [1]
    memory = make_engine(threshold.ENGINE, {"rules": [CPU_RULE]})
    assert [e.state for e in await memory.process([_metric(88, 3)])] == [1]  # not held


async def test_a_threshold_worker_that_lost_its_partition_starts_again(
        state_options: Options, make_engine: MakeEngine) -> None:
    """Two workers on one partition: the one whose commit comes second is refused, and its
    next batch is computed on the levels the other committed."""
    options = {"rules": [CPU_RULE], **state_options()}
    one = make_engine(threshold.ENGINE, options)
    two = make_engine(threshold.ENGINE, options)
    await one.process([_metric(95, 1)])
    await two.process([_metric(85, 1)])
    await one.commit()
    with pytest.raises(StaleState):
        await two.commit()
    await two.beat()  # nothing left to commit: the stale work was dropped
    [again] = await two.process([_metric(87, 3)])
    assert again.state == 3  # one's critical, held


async def test_rolled_back_levels_are_forgotten(state_options: Options,
                                                make_engine: MakeEngine) -> None:
    """A batch rolled back (its results did not go out) leaves no level behind: redone,
    it gives what an uninterrupted run gives."""
    engine = make_engine(threshold.ENGINE, {"rules": [CPU_RULE], **state_options()})
    await engine.process([_metric(50, 0)])
    await engine.commit()
    assert [e.state for e in await engine.process([_metric(95, 1)])] == [3]
    engine.rollback()
    assert [e.state for e in await engine.process([_metric(88, 2)])] == [1]  # 95 forgotten
    await engine.commit()
    again = make_engine(threshold.ENGINE, {"rules": [CPU_RULE], **state_options()})
    assert [e.state for e in await again.process([_metric(76, 3)])] == [1]  # held warning


async def test_recent_ids_survive_a_worker(state_options: Options,
                                           make_engine: MakeEngine) -> None:
    """A batch redelivered to the worker that takes over is recognised: nothing passes
    twice."""
    options = {"window": 1000, **state_options()}
    first = make_engine(dedup.ENGINE, options)
    batch = [_metric(n, n, f"h{n % 7}") for n in range(40)]
    assert len(await first.process(batch[:30])) == 30
    await first.commit()
    second = make_engine(dedup.ENGINE, options)
    out = await second.process(batch)  # 30 again (redelivered), then 10 new ones
    assert [e.id for e in out] == [e.id for e in batch[30:]]
    await second.beat()
    third = make_engine(dedup.ENGINE, {**options, "throttle": 100})
    assert dedup.filter_event(third, batch[5]) is None
    assert [e.id for e in await third.process([_metric(1, 99)])] == ["web1-99"]


def test_the_store_keeps_entries_ids_and_versions(state_options: Options,
                                                  tmp_path: Path) -> None:
    """Entries are replaced by key, the last ``window`` ids are kept, and a commit on a
    version that moved on is refused and writes nothing."""
    store = _store(state_options(), tmp_path)
    try:
        assert store.load(1).version == 0
        assert store.version(1) == 0
        version = store.commit(1, entries={"a": b"\x01", "b": b"\x03"},
                               seen=["e1", "e2", "e3"], expected=0)
        version = store.commit(1, entries={"a": b"\x00"}, seen=["e4", "e5", "e6"],
                               expected=version)
        assert version == 2
        with pytest.raises(StaleState, match="changed since it was loaded"):
            store.commit(1, entries={"b": b"\x00"}, seen=["x"], expected=1)
        other = _store(state_options(), tmp_path)
        loaded = other.load(1)
        assert (loaded.entries, loaded.seen, loaded.version) == (
            {"a": b"\x00", "b": b"\x03"}, ["e2", "e3", "e4", "e5", "e6"], 2)
        assert other.load(2).entries == {}
        other.close()
    finally:
        store.close()


def test_partitioned_state_reloads_what_another_worker_committed(state_options: Options,
                                                                 tmp_path: Path) -> None:
    """A partition another worker committed to is reloaded on next use; with uncommitted
    work on it, that work is refused (the batch comes again)."""
    mine = PartitionedState(_store(state_options(), tmp_path), window=5)
    theirs = PartitionedState(_store(state_options(), tmp_path), window=5)
    part, loaded = mine.part(0)
    assert loaded
    assert mine.part(0) == (part, False)
    theirs_part, _ = theirs.part(0)
    theirs_part.put["k"] = b"\x02"
    theirs.commit()
    part, loaded = mine.part(0)
    assert loaded
    assert part.entries == {"k": b"\x02"}
    part.new_ids.append("e1")
    theirs_part.new_ids.append("e2")
    theirs.commit()
    with pytest.raises(StaleState, match="uncommitted work"):
        mine.part(0)
    mine.close()
    theirs.close()


def test_postgres_state_needs_a_dsn() -> None:
    with pytest.raises(msgspec.ValidationError, match="state: postgres needs a dsn"):
        msgspec.convert({"state": "postgres"}, StateOptions)
    assert open_store(StateOptions(), engine="e", partitions=1, data_dir=None,
                      window=1) is None
