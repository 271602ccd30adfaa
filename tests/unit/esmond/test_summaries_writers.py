"""Summaries under several writers: turns per metadata, and the bin cache that follows them.

Two :class:`EsmondArchive` instances over one archive and one PostgreSQL metadata store
stand in for two servers (the real processes: tests/integration/test_scaled_esmond.py).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.unit.esmond.stores import PG_DSN, pg_schema
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.esmond import EsmondArchive, MetadataStore
from watchkeeper.archive.esmond.model import MetadataSpec
from watchkeeper.archive.esmond.postgres import PostgresMetadataStore
from watchkeeper.archive.esmond.service import RawPoint, _BinCache
from watchkeeper.archive.esmond.sqlite import SqliteMetadataStore
from watchkeeper.archive.esmond.summaries import summarize
from watchkeeper.archive.esmond.types import Summary
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ArchiveError, Conflict
from watchkeeper.model import SeriesKey
from watchkeeper.telemetry import SelfMetrics

START = 1_600_000_000 - 1_600_000_000 % 3600
SPEC = MetadataSpec(
    subject_type="point-to-point",
    subject=(("source", "10.0.0.1"), ("destination", "10.0.0.2")), parameters=(),
    rows=(("throughput", "base", 0), ("throughput", "aggregation", 3600),
          ("throughput", "average", 86400)),
)
postgres = pytest.mark.external_service


def _point(i: int, value: int | None = None) -> RawPoint:
    return RawPoint(START + 60 * i, "throughput", i + 1 if value is None else value, "test")


@asynccontextmanager
async def _two(stores: Sequence[MetadataStore]) -> AsyncIterator[list[EsmondArchive]]:
    """An esmond archive per metadata store, all over one memory archive, started."""
    clock = FakeClock(START)
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=Path("."), options=MemoryArchive.Options(),
                                clock=clock, metrics=SelfMetrics())
        await archive.start(stack)
        out = []
        for store in stores:
            await store.start(stack)
            esmond = EsmondArchive(metadata=store, archive=archive, clock=clock)
            await esmond.start(stack)
            out.append(esmond)
        yield out


@asynccontextmanager
async def _pg_pair() -> AsyncIterator[list[EsmondArchive]]:
    async with pg_schema() as dsn, _two([PostgresMetadataStore(dsn),
                                         PostgresMetadataStore(dsn)]) as pair:
        yield pair


@postgres
async def test_alternating_instances_give_exact_summaries() -> None:
    """Points written alternately through two instances sum as one instance's would."""
    async with _pg_pair() as (a, b):
        key = (await a.create(SPEC))[0].key
        for i in range(30):
            await (a, b)[i % 2].write(key, [_point(i)])
        base = await a.read(key, "throughput", Summary("base", 0), begin=0, end=2 * START)
        hourly = await b.read(key, "throughput", Summary("aggregation", 3600), begin=0,
                              end=2 * START)
    assert sum(v for _, v in base) == 465
    assert hourly == summarize("integer", "aggregation", 3600, base)


@postgres
async def test_duplicate_through_the_other_instance_is_refused() -> None:
    """A timestamp another instance stored after this one's last write is a Conflict."""
    async with _pg_pair() as (a, b):
        key = (await a.create(SPEC))[0].key
        await b.write(key, [_point(0)])
        await a.write(key, [_point(1)])
        with pytest.raises(Conflict):
            await b.write(key, [_point(1, value=99)])
        base = await b.read(key, "throughput", Summary("base", 0), begin=0, end=2 * START)
    assert base == [(START, 1.0), (START + 60, 2.0)]


@postgres
async def test_turns_are_counted_and_exclusive() -> None:
    """Each turn counts one more whichever store takes it; a second store's turn on the
    same metadata begins only after the first ends."""
    async with pg_schema() as dsn, AsyncExitStack() as stack:
        first, second = PostgresMetadataStore(dsn), PostgresMetadataStore(dsn)
        await first.start(stack)
        await second.start(stack)
        order: list[str] = []

        async def later() -> Mapping[str, int]:
            async with second.writing([("k", "throughput"), ("j", "throughput")]) as turns:
                order.append("second begins")
                return dict(turns)

        async with first.writing([("k", "throughput")]) as turns:
            assert turns == {("k", "throughput"): 1}
            waiting = asyncio.create_task(later())
            await _until_waiting_for_lock()
            order.append("first ends")
        assert await waiting == {("k", "throughput"): 2, ("j", "throughput"): 1}
    assert order == ["first ends", "second begins"]


async def _until_waiting_for_lock() -> None:
    """Until some session waits for an advisory lock of esmond's writes."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
        for _ in range(600):
            row = await (await conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid = %s", (0x65736D77,))).fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the second turn never waited for the first")


async def test_single_process_store_takes_no_lock(tmp_path: Path) -> None:
    """The embedded store yields no counts: its one process's cache is always current."""
    store = SqliteMetadataStore(tmp_path)
    async with AsyncExitStack() as stack:
        await store.start(stack)
        async with store.writing([("k", "throughput")]) as turns:
            assert turns == {}


class _Refusing(SqliteMetadataStore):
    """A store whose turns cannot be taken (the database went away)."""

    @asynccontextmanager
    async def writing(self, series: Sequence[tuple[str, str]]
                      ) -> AsyncIterator[Mapping[tuple[str, str], int]]:
        raise ArchiveError("PostgreSQL metadata store: connection refused")
        yield {}  # pragma: no cover - unreachable, makes this a generator


async def test_a_turn_that_cannot_be_taken_fails_the_write(tmp_path: Path) -> None:
    """The write fails with the store's error and nothing of it is stored."""
    async with _two([_Refusing(tmp_path)]) as (esmond,):
        key = (await esmond.create(SPEC))[0].key
        with pytest.raises(ArchiveError, match="connection refused"):
            await esmond.write(key, [_point(0)])
        assert await esmond.read(key, "throughput", Summary("base", 0), begin=0,
                                 end=2 * START) == []


async def test_a_failed_store_forgets_the_cached_bins(tmp_path: Path) -> None:
    """When storing fails, the metadata's cached bins are dropped and read again."""
    async with _two([SqliteMetadataStore(tmp_path)]) as (esmond,):
        key = (await esmond.create(SPEC))[0].key
        await esmond.write(key, [_point(0)])
        failing = esmond.archive.write

        async def broken(measurements: Any) -> int:
            raise ArchiveError("disk full")

        esmond.archive.write = broken  # type: ignore[method-assign]
        with pytest.raises(ArchiveError, match="disk full"):
            await esmond.write(key, [_point(1)])
        esmond.archive.write = failing  # type: ignore[method-assign]
        await esmond.write(key, [_point(2)])
        hourly = await esmond.read(key, "throughput", Summary("aggregation", 3600), begin=0,
                                   end=2 * START)
    assert hourly == [(START, 4.0)]


def _series(metadata: str, metric: str = "throughput") -> SeriesKey:
    return SeriesKey.make(metadata, "esmond", metric, {})


def test_bin_cache_forgets_one_event_type_of_one_metadata() -> None:
    """forget() hides the states of one metadata's event type; others stay; new ones count."""
    cache = _BinCache(10)
    cache.update({(_series("m1"), 0): 1.0, (_series("m2"), 0): 2.0,
                  (_series("m1", "packet-count-sent"), 0): 4.0})
    cache.forget(("m1", "throughput"))
    assert cache.get((_series("m1"), 0)) is None
    assert cache.get((_series("m2"), 0)) == 2.0
    assert cache.get((_series("m1", "packet-count-sent"), 0)) == 4.0
    cache.update({(_series("m1"), 0): 3.0})
    assert cache.get((_series("m1"), 0)) == 3.0


async def test_bin_cache_reads_the_end_again_after_forget() -> None:
    """The newest stored ts is read from the archive again once its metadata is forgotten."""
    cache = _BinCache(10)
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=Path("."), options=MemoryArchive.Options(),
                                clock=FakeClock(), metrics=SelfMetrics())
        await archive.start(stack)
        key = _series("m1")
        assert await cache.last_ts(archive, key) == -math.inf
        cache.stored({key: 100})
        assert await cache.last_ts(archive, key) == 100
        cache.forget(("m1", "throughput"))
        cache.stored({key: 200})  # a stale entry is not advanced
        assert await cache.last_ts(archive, key) == -math.inf


def test_a_disabled_bin_cache_keeps_nothing() -> None:
    """With size 0 nothing is cached, and forget() has nothing to do."""
    cache = _BinCache(0)
    cache.forget(("m1", "throughput"))
    cache.update({(_series("m1"), 0): 1.0})
    assert cache.get((_series("m1"), 0)) is None


async def test_a_turn_needs_a_started_store() -> None:
    """Taking a turn before start() is an error that says so, not a hang."""
    store = PostgresMetadataStore(PG_DSN)
    with pytest.raises(ArchiveError, match="not started"):
        async with store.writing([("k", "throughput")]):
            pass  # pragma: no cover - never reached
