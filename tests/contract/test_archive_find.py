"""``Archive.find_series`` (series by subject, plugin, metric, label, substring and kind),
run against every backend of ``conftest.BACKENDS``: each answer is checked against the
plain filter of the whole listing, pages and totals included."""

from __future__ import annotations

import random

import pytest

from tests.contract.conftest import Backend, OpenArchive
from watchkeeper.archive import Archive, SeriesQuery
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.model import Measurement, SeriesKey

T0 = 1_700_000_000.0
# Values a label may hold that the text form escapes, or that look like another label.
ODD = ['a"b', "back\\slash", "new\nline", 'x",host="web1', "é", ""]


def _keys(rng: random.Random, count: int) -> list[SeriesKey]:
    keys = set()
    while len(keys) < count:
        labels = {}
        for name in rng.sample(["host", "if", "dir", "q"], rng.randint(0, 3)):
            labels[name] = rng.choice(["web1", "web2", "eth0", "in", *ODD])
        keys.add(SeriesKey.make(rng.choice(["web1", "web2", "db1"]),
                                rng.choice(["http", "snmp", "esmond"]),
                                rng.choice(["latency", "if.in", "histogram-owdelay"]), labels))
    return sorted(keys, key=str)


async def _write(archive: Archive, keys: list[SeriesKey]) -> None:
    points = []
    for i, key in enumerate(keys):
        if key.metric == "histogram-owdelay":
            points.append(Measurement(key=key, ts=T0 + i, histogram={"1.5": 3, "2.0": 1}))
        else:
            points.append(Measurement(key=key, ts=T0 + i, value=float(i)))
    await archive.write(points)


def _queries(rng: random.Random, keys: list[SeriesKey]) -> list[SeriesQuery]:
    queries = [
        SeriesQuery(plugin="http"), SeriesQuery(metric="if.in"), SeriesQuery(subject="db1"),
        SeriesQuery(labels=(("host", "web1"),)), SeriesQuery(labels=(("host", 'x",host="web1'),)),
        SeriesQuery(labels=(("host", "web1"), ("if", "eth0"))), SeriesQuery(match=("eth",)),
        SeriesQuery(match=('\\"',)), SeriesQuery(kind="histogram"),
        SeriesQuery(plugin="snmp", prefix="web"), SeriesQuery(plugin="nothing"),
        SeriesQuery(labels=(("nothing", "x"),)), SeriesQuery(prefix="db1/"),
    ]
    for _ in range(40):  # the conditions of a random series, some of them
        key = rng.choice(keys)
        labels = tuple(pair for pair in key.labels if rng.random() < 0.6)
        queries.append(SeriesQuery(
            subject=key.subject if rng.random() < 0.3 else "",
            plugin=key.plugin if rng.random() < 0.5 else "",
            metric=key.metric if rng.random() < 0.5 else "", labels=labels,
            match=(str(key)[3:7],) if rng.random() < 0.2 else (),
            kind=rng.choice([None, None, "float"])))
    return queries


async def _check(archive: Archive, queries: list[SeriesQuery]) -> None:
    every, _ = await archive.list_series()
    for query in queries:
        expected = [str(m.key) for m in every if query.matches(m.key, m.kind)]
        found, total = await archive.find_series(query)
        assert ([str(m.key) for m in found], total) == (expected, len(expected)), query
        page, page_total = await archive.find_series(query, limit=3, offset=2)
        assert ([str(m.key) for m in page], page_total) == (expected[2:5], len(expected))


async def test_find_series_is_the_filter_of_the_listing(archive: Archive) -> None:
    rng = random.Random(16)
    keys = _keys(rng, 150)
    await _write(archive, keys[:100])
    await _check(archive, _queries(rng, keys[:100]))
    await _write(archive, keys[100:])  # series created after the first search count too
    await _check(archive, _queries(rng, keys))


async def test_find_series_answers_what_the_listing_says(archive: Archive) -> None:
    key = SeriesKey.make("web1", "http", "latency", {"host": "web1"})
    await archive.write([Measurement(key=key, ts=T0, value=1.0, unit="ms"),
                         Measurement(key=key, ts=T0 + 10, value=2.0)])
    (listed,), _ = await archive.list_series()
    assert await archive.find_series(SeriesQuery(labels=(("host", "web1"),))) == ([listed], 1)
    assert (listed.unit, listed.kind, listed.first_ts, listed.last_ts) == (
        "ms", "float", T0, T0 + 10)
    assert await archive.find_series(SeriesQuery(plugin="http"), limit=0) == ([], 1)


async def test_find_series_after_a_restart(backend: Backend, open_archive: OpenArchive) -> None:
    if not backend.durable:
        pytest.skip("keeps nothing across instances")
    rng = random.Random(7)
    keys = _keys(rng, 60)
    async with open_archive() as archive:
        await _write(archive, keys)
    async with open_archive() as archive:
        await _check(archive, _queries(rng, keys))


async def test_embedded_read_only_instance_finds_series(open_archive: OpenArchive,
                                                        backend: Backend) -> None:
    if backend.cls is not EmbeddedArchive:
        pytest.skip("the embedded backend's read-only second instance")
    rng = random.Random(3)
    keys = _keys(rng, 40)
    async with open_archive() as writer, open_archive() as reader:
        assert isinstance(reader, EmbeddedArchive)
        assert reader.read_only
        await _write(writer, keys)
        for query in _queries(rng, keys):
            assert await reader.find_series(query) == await writer.find_series(query)
