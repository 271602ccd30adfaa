"""The metadata store contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.unit.esmond.stores import KINDS, store_location
from tests.unit.esmond.support import UPSTREAM, read_json
from watchkeeper.archive.esmond.abc import MetadataQuery, MetadataStore
from watchkeeper.archive.esmond.fixtures import parse_fixture
from watchkeeper.archive.esmond.model import MetadataSpec, parse_metadata
from watchkeeper.archive.esmond.postgres import PostgresMetadataStore
from watchkeeper.archive.esmond.sqlite import SqliteMetadataStore

OpenStore = Callable[[], Any]


def _spec(**changes: Any) -> MetadataSpec:
    body: dict[str, Any] = {
        "subject-type": "point-to-point", "source": "10.0.0.1", "destination": "10.0.0.2",
        "measurement-agent": "10.0.0.1", "tool-name": "bwctl/iperf3", "input-source": "h1",
        "input-destination": "h2", "time-duration": 20,
        "event-types": [{"event-type": "throughput",
                         "summaries": [{"summary-type": "average", "summary-window": 86400}]},
                        {"event-type": "failures"}],
    }
    body.update(changes)
    return parse_metadata(body)


@pytest.fixture(params=KINDS)
async def where(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str | Path]:
    async with store_location(request.param, tmp_path) as location:
        yield location


def _make(where: str | Path) -> MetadataStore:
    if isinstance(where, Path):
        return SqliteMetadataStore(where)
    return PostgresMetadataStore(where)


@pytest.fixture
async def store(where: str | Path) -> AsyncIterator[MetadataStore]:
    async with AsyncExitStack() as stack:
        opened = _make(where)
        await opened.start(stack)
        yield opened


async def test_create_is_deduplicated_by_checksum(store: MetadataStore) -> None:
    """The same spec gives the same metadata; a different one another key."""
    first, created = await store.create(_spec())
    again, created_again = await store.create(_spec(**{"time-duration": "20"}))
    other, _ = await store.create(_spec(**{"time-duration": 30}))
    assert created
    assert not created_again
    assert again == first
    assert other.key != first.key
    assert first.subject[0] == ("source", "10.0.0.1")
    assert first.parameters == (("time-duration", "20"),)
    assert [(r.event_type, r.summary_type, r.summary_window) for r in first.event_types] == [
        ("failures", "base", 0), ("throughput", "average", 86400), ("throughput", "base", 0)]
    assert all(r.time_updated is None for r in first.event_types)


async def test_concurrent_creates_store_once(where: str | Path) -> None:
    """Two stores (as two processes would) creating one spec at once agree on one key."""
    async with AsyncExitStack() as stack:
        stores = [_make(where) for _ in range(2)]
        for opened in stores:
            await opened.start(stack)
        results = await asyncio.gather(*(s.create(_spec()) for s in stores for _ in range(3)))
        assert len({m.key for m, _ in results}) == 1
        assert sum(created for _, created in results) == 1
        _, total = await stores[0].search(MetadataQuery(), limit=None)
        assert total == 1


async def test_search_filters_and_pages(store: MetadataStore) -> None:
    """Filters AND together; event-type conditions hold for one row; pages sort by key."""
    for metadata, checksum in parse_fixture(read_json(
            UPSTREAM / "fixtures" / "perfsonar_api_metadata.json")):
        await store.load(metadata, checksum)
    everything, total = await store.search(MetadataQuery(), limit=None)
    assert total == len(everything) == 16
    keys = [m.key for m in everything]
    assert keys == sorted(keys)
    page, total = await store.search(MetadataQuery(), limit=5, offset=10)
    assert total == 16
    assert [m.key for m in page] == keys[10:15]
    tail, _ = await store.search(MetadataQuery(), limit=None, offset=14)
    assert [m.key for m in tail] == keys[14:]

    async def count(**conditions: Any) -> int:
        return (await store.search(MetadataQuery(**conditions), limit=None))[1]

    assert await count(event_type="packet-trace") == 4
    assert await count(event_type="throughput", summary_type="average") == 5
    assert await count(event_type="throughput", summary_type="average",
                       summary_window=86400) == 4
    assert await count(subject=(("source", ("198.129.254.30",)),)) == 4
    assert await count(subject=(("source", ("198.129.254.187", "2001:400:201:11ff::87")),)) == 2
    assert await count(subject=(("source", ()),)) == 0
    assert await count(parameters=(("ip-transport-protocol", "tcp"),)) == 8
    assert await count(updated=(1398798900, None)) == 4
    assert await count(updated=(0, 1398798900)) == 12
    assert await count(updated=(1398798840, 1398798960)) == 2
    assert await count(event_type="throughput", updated=(1398798900, None)) == 0


async def test_touch_sets_every_row_of_an_event_type(store: MetadataStore) -> None:
    """time_updated moves for all rows (base and summaries) of the touched event types."""
    metadata, _ = await store.create(_spec())
    await store.touch([(metadata.key, "throughput")], 1_400_000_000)
    found = await store.get(metadata.key)
    assert found is not None
    times = {(r.event_type, r.summary_type): r.time_updated for r in found.event_types}
    assert times == {("throughput", "base"): 1_400_000_000,
                     ("throughput", "average"): 1_400_000_000, ("failures", "base"): None}
    await store.touch([], 1)  # nothing to do


async def test_load_keeps_keys_and_replaces(store: MetadataStore) -> None:
    """Loading keeps the given key, rows and times; loading the key again replaces it."""
    records = read_json(UPSTREAM / "fixtures" / "perfsonar_client_metadata.json")
    loaded = parse_fixture(records)
    for metadata, checksum in loaded:
        await store.load(metadata, checksum)
        await store.load(metadata, checksum)
    for metadata, _ in loaded:
        assert await store.get(metadata.key) == metadata
    assert await store.get("nope") is None


async def test_data_survives_reopening(where: str | Path) -> None:
    """What was stored is there after the store is closed and opened again."""
    async with AsyncExitStack() as stack:
        first = _make(where)
        await first.start(stack)
        metadata, _ = await first.create(_spec())
        await first.touch([(metadata.key, "failures")], 7)
    async with AsyncExitStack() as stack:
        second = _make(where)
        await second.start(stack)
        found = await second.get(metadata.key)
        assert found is not None
        assert {r.time_updated for r in found.event_types if r.event_type == "failures"} == {7}
        _, created = await second.create(_spec())
        assert not created
