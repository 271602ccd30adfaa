"""The archive contract (watchkeeper.archive.abc), run against every backend.

The first part runs on each backend of ``conftest.BACKENDS`` (durability, SIGKILL
included, on the durable ones; several concurrent writers on those that allow them).
The rest covers what only one backend promises or does: for the embedded one, a
read-only second instance, compaction into chunks and crash images; for PostgreSQL,
writers in several processes at once.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.contract.conftest import Backend, OpenArchive
from watchkeeper.archive import Archive, Columns
from watchkeeper.archive.backends.embedded import DB_NAME, EmbeddedArchive
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ArchiveError, ConfigError, InvalidData, SeriesNotFound
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

T0 = 1_700_000_000.0
CPU = SeriesKey.make("web1", "system", "cpu.percent")
LOAD = SeriesKey.make("web1", "system", "load1")
RTT = SeriesKey.make("web1", "ping", "rtt", {"target": "db1"})
LOSS = SeriesKey.make("bwctl1", "esmond", "packet-loss-rate", {"metadata": "abc"})


def floats(key: SeriesKey, *points: tuple[float, float], unit: str = "") -> list[Measurement]:
    return [Measurement(key=key, ts=ts, value=value, unit=unit) for ts, value in points]


def hist(key: SeriesKey, ts: float, histogram: dict[str, int]) -> Measurement:
    return Measurement(key=key, ts=ts, histogram=histogram)


def obj(key: SeriesKey, ts: float, value: Any) -> Measurement:
    return Measurement(key=key, ts=ts, obj=value)


def bits(values: Any) -> list[int]:
    """Values as their IEEE bit patterns, so NaN == NaN and -0.0 != 0.0."""
    patterns: list[int] = np.asarray(values, dtype=np.float64).view(np.uint64).tolist()
    return patterns


async def everything(archive: Archive, key: SeriesKey) -> list[tuple[float, Any]]:
    points = await archive.read(key, -math.inf, math.inf)
    values: Any = {"float": points.values.tolist(), "histogram": points.histograms,
                   "object": points.objects}[points.kind]
    return list(zip(points.ts.tolist(), values, strict=True))


# -- every backend ----------------------------------------------------------------------


async def test_floats_round_trip_exactly(archive: Archive) -> None:
    """Values come back bit for bit, NaN, infinities and -0.0 included."""
    values = [1.5, -0.0, 0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]
    stored = await archive.write(floats(CPU, *[(T0 + i, v) for i, v in enumerate(values)]))

    points = await archive.read(CPU, T0, T0 + 100)

    assert stored == len(values)
    assert points.kind == "float"
    assert points.ts.tolist() == [T0 + i for i in range(len(values))]
    assert bits(points.values) == bits(values)


async def test_histograms_round_trip(archive: Archive) -> None:
    """Histogram points come back as the dicts written, in time order."""
    await archive.write([hist(RTT, T0 + 10, {"0.5": 3, "1.0": 7}), hist(RTT, T0, {"0.5": 1})])

    points = await archive.read(RTT, T0, T0 + 10)

    assert points.kind == "histogram"
    assert points.ts.tolist() == [T0, T0 + 10]
    assert points.histograms == ({"0.5": 1}, {"0.5": 3, "1.0": 7})
    assert len(points.values) == 0


async def test_histograms_are_copied_in_and_out(archive: Archive) -> None:
    """Changing a histogram after writing it, or one read back, changes nothing stored."""
    written = {"a": 1}
    await archive.write([hist(RTT, T0, written)])
    written["a"] = 99
    (read,) = (await archive.read(RTT, T0, T0)).histograms
    read["a"] = 42

    assert (await archive.read(RTT, T0, T0)).histograms == ({"a": 1},)


OBJECTS = [
    {"numerator": 4, "denominator": 100},
    [{"start": 0.0, "duration": 1.5, "val": None}, {"start": 1.5, "duration": 1.0, "val": "7"}],
    "a string",
    {"nested": {"list": [1, 2.5, True, False, None], "big": 2**63 - 1, "neg": -(2**63)}},
    1.25,
    7,
    True,
]


async def test_objects_round_trip(archive: Archive) -> None:
    """Any JSON value but null comes back equal, in time order, whatever the write order."""
    await archive.write([obj(LOSS, T0 + 10 * i, value) for i, value in enumerate(OBJECTS)][::-1])

    points = await archive.read(LOSS, T0, T0 + 1000)

    assert points.kind == "object"
    assert points.ts.tolist() == [T0 + 10 * i for i in range(len(OBJECTS))]
    assert list(points.objects) == OBJECTS
    assert (len(points.values), points.histograms) == (0, ())
    (meta,), _ = await archive.list_series()
    assert (meta.key, meta.kind, meta.first_ts, meta.last_ts) == (
        LOSS, "object", T0, T0 + 10 * (len(OBJECTS) - 1))


async def test_objects_are_json_copies(archive: Archive) -> None:
    """Objects are stored as JSON reads them back (tuples become lists) and copied in and out."""
    written = {"numerator": 1, "denominator": 2, "tags": ("a", "b"), 3: "int key"}
    await archive.write([obj(LOSS, T0, written)])
    written["numerator"] = 99
    (read,) = (await archive.read(LOSS, T0, T0)).objects
    read["tags"].append("c")

    assert (await archive.read(LOSS, T0, T0)).objects == (
        {"numerator": 1, "denominator": 2, "tags": ["a", "b"], "3": "int key"},)


async def test_objects_replace_and_delete_like_other_points(archive: Archive) -> None:
    """The latest object of a timestamp wins; delete removes objects by range."""
    await archive.write([obj(LOSS, T0, {"v": 1}), obj(LOSS, T0 + 1, {"v": 2}), obj(LOSS, T0, [0])])
    await archive.write([obj(LOSS, T0 + 1, "replaced"), obj(LOSS, T0 + 2, {"v": 3})])

    assert await everything(archive, LOSS) == [(T0, [0]), (T0 + 1, "replaced"), (T0 + 2, {"v": 3})]
    assert await archive.delete(LOSS, T0 + 1, T0 + 1) == 1
    assert await everything(archive, LOSS) == [(T0, [0]), (T0 + 2, {"v": 3})]


@pytest.mark.parametrize(
    ("first", "then", "got"),
    [
        pytest.param(floats(CPU, (T0, 1.0)), [obj(CPU, T0 + 1, {"a": 1})], "an object",
                     id="object-to-float"),
        pytest.param([obj(CPU, T0, {"a": 1})], floats(CPU, (T0 + 1, 1.0)), "a number",
                     id="number-to-object"),
        pytest.param([obj(CPU, T0, {"a": 1})], [hist(CPU, T0 + 1, {"a": 1})], "a histogram",
                     id="histogram-to-object"),
        pytest.param([hist(CPU, T0, {"a": 1})], [obj(CPU, T0 + 1, {"a": 1})], "an object",
                     id="object-to-histogram"),
    ],
)
async def test_object_kind_mismatch_stores_nothing(
    archive: Archive, first: list[Measurement], then: list[Measurement], got: str
) -> None:
    """A series keeps the kind of its first point; a batch mixing kinds fails whole."""
    await archive.write(first)

    with pytest.raises(InvalidData, match=f"got {got}"):
        await archive.write([*floats(LOAD, (T0, 1.0)), *then])

    assert len(await everything(archive, CPU)) == 1
    assert (await archive.list_series())[1] == 1


async def test_read_is_ascending_with_inclusive_bounds(archive: Archive) -> None:
    """Points come back sorted whatever the write order; both bounds are inclusive."""
    await archive.write(floats(CPU, (T0 + 30, 3.0), (T0 + 10, 1.0), (T0 + 40, 4.0)))
    await archive.write(floats(CPU, (T0 + 20, 2.0), (T0, 0.0)))

    inside = await archive.read(CPU, T0 + 10, T0 + 30)
    between = await archive.read(CPU, T0 + 10.001, T0 + 29.999)

    assert inside.ts.tolist() == [T0 + 10, T0 + 20, T0 + 30]
    assert inside.values.tolist() == [1.0, 2.0, 3.0]
    assert between.ts.tolist() == [T0 + 20]


async def test_empty_range_keeps_the_kind(archive: Archive) -> None:
    """A range without points is an empty result of the series' kind, not an error."""
    await archive.write([hist(RTT, T0, {"1": 1})])

    points = await archive.read(RTT, T0 + 1, T0 + 2)

    assert (points.kind, len(points), points.histograms) == ("histogram", 0, ())


async def test_duplicate_timestamps_replace(archive: Archive) -> None:
    """The latest write of a (series, ts) wins, within a batch and across batches."""
    await archive.write(floats(CPU, (T0, 1.0), (T0 + 10, 2.0), (T0, 3.0)))
    await archive.write(floats(CPU, (T0 + 10, 4.0)))
    await archive.write([hist(RTT, T0, {"a": 1}), hist(RTT, T0, {"b": 2})])

    assert await everything(archive, CPU) == [(T0, 3.0), (T0 + 10, 4.0)]
    assert await everything(archive, RTT) == [(T0, {"b": 2})]


async def test_timestamps_are_kept_to_the_millisecond(archive: Archive) -> None:
    """Timestamps are stored in ms: sub-ms differences name the same point."""
    await archive.write(floats(CPU, (T0 + 0.0012, 1.0), (T0 + 0.0014, 2.0), (T0 + 0.0026, 3.0)))

    assert await everything(archive, CPU) == [(T0 + 0.001, 2.0), (T0 + 0.003, 3.0)]


async def test_kind_mismatch_stores_nothing(archive: Archive) -> None:
    """A histogram sent to a float series fails the whole batch and names the series."""
    await archive.write(floats(CPU, (T0, 1.0)))
    batch = [*floats(LOAD, (T0, 0.5)), *floats(CPU, (T0 + 1, 2.0)), hist(CPU, T0 + 2, {"a": 1})]

    with pytest.raises(InvalidData, match=r"web1/system/cpu\.percent"):
        await archive.write(batch)

    assert await everything(archive, CPU) == [(T0, 1.0)]
    assert [m.key for m in (await archive.list_series())[0]] == [CPU]
    with pytest.raises(SeriesNotFound):
        await archive.read(LOAD, T0, T0)


async def test_kind_mismatch_within_one_batch(archive: Archive) -> None:
    """A new series that gets numbers and histograms in the same batch is refused."""
    with pytest.raises(InvalidData, match="web1/ping/rtt"):
        await archive.write([hist(RTT, T0, {"a": 1}), *floats(RTT, (T0 + 1, 2.0))])

    assert await archive.list_series() == ([], 0)


@pytest.mark.parametrize("bad_ts", [math.nan, math.inf, 1e300])
async def test_impossible_timestamps_are_refused(archive: Archive, bad_ts: float) -> None:
    """A batch with a timestamp that is not a finite time fails whole."""
    with pytest.raises(InvalidData, match="ts"):
        await archive.write([*floats(CPU, (T0, 1.0)), *floats(LOAD, (bad_ts, 2.0))])

    assert await archive.list_series() == ([], 0)


@pytest.mark.parametrize(
    ("measurement", "field"),
    [
        pytest.param(Measurement(key=LOAD, ts=T0, value="1.5"), "value",  # type: ignore[arg-type]
                     id="value-not-a-number"),
        pytest.param(Measurement(key=LOAD, ts=T0, histogram={"a": 1.5}),  # type: ignore[dict-item]
                     "histogram", id="count-not-an-integer"),
        pytest.param(Measurement(key=LOAD, ts=T0, histogram={1: 1}),  # type: ignore[dict-item]
                     "histogram", id="bucket-not-a-string"),
        pytest.param(Measurement(key=LOAD, ts=T0, histogram={"a": -1}), "histogram",
                     id="count-negative"),
        pytest.param(Measurement(key=LOAD, ts=T0, histogram={"a": 2**64}), "histogram",
                     id="count-too-large"),
        pytest.param(Measurement(key=LOAD, ts=T0, histogram={"a": 1, "b": True}), "histogram",
                     id="count-a-boolean"),
        pytest.param(Measurement(key=LOAD, ts=T0, obj={"a": object()}), "obj",
                     id="obj-not-json"),
        pytest.param(Measurement(key=LOAD, ts=T0, obj=[2**64]), "obj", id="obj-int-too-large"),
        pytest.param(Measurement(key=LOAD, ts="soon", value=1.0), "ts",  # type: ignore[arg-type]
                     id="ts-not-a-number"),
        pytest.param(Measurement(key="web1/system/load1", ts=T0, value=1.0),  # type: ignore[arg-type]
                     "key", id="key-not-a-series-key"),
        pytest.param(Measurement(key=SeriesKey(subject="a", plugin="b", metric="c",
                                               labels=(("z", "1"), ("a", "2"))), ts=T0, value=1.0),
                     "key", id="labels-unsorted"),
        pytest.param(Measurement(key=SeriesKey(subject="a/b", plugin="c", metric="d"), ts=T0,
                                 value=1.0), "key", id="slash-in-a-name"),
        pytest.param(Measurement(key=SeriesKey(subject="a", plugin="b", metric="c",
                                               labels=[("z", "1")]),  # type: ignore[arg-type]
                                 ts=T0, value=1.0), "key", id="labels-unhashable"),
    ],
)
async def test_malformed_measurements_are_refused(
    archive: Archive, measurement: Measurement, field: str
) -> None:
    """A batch with one malformed measurement fails whole, naming the field."""
    with pytest.raises(InvalidData) as raised:
        await archive.write([*floats(CPU, (T0, 1.0)), measurement])

    assert raised.value.field == field
    assert await archive.list_series() == ([], 0)


async def test_nan_bounds_are_refused(archive: Archive) -> None:
    await archive.write(floats(CPU, (T0, 1.0)))

    with pytest.raises(InvalidData, match="start"):
        await archive.read(CPU, math.nan, T0)
    with pytest.raises(InvalidData, match="end"):
        await archive.delete(CPU, T0, math.nan)


async def test_writes_count_and_metrics(archive: Archive) -> None:
    """write() returns the points stored and counts points and batches."""
    assert await archive.write([]) == 0
    assert await archive.write([*floats(CPU, (T0, 1.0), (T0 + 1, 2.0)), hist(RTT, T0, {})]) == 3
    assert await archive.write(floats(CPU, (T0 + 2, 3.0))) == 1

    registry = archive.metrics.registry
    assert registry.get_sample_value("watchkeeper_points_ingested_total") == 4
    assert registry.get_sample_value("watchkeeper_ingest_batches_total") == 2


async def test_concurrent_writes_all_land(archive: Archive) -> None:
    """Writes issued concurrently are all stored."""
    import asyncio

    await asyncio.gather(*(archive.write(floats(CPU, (T0 + i, float(i)))) for i in range(50)))

    assert await everything(archive, CPU) == [(T0 + i, float(i)) for i in range(50)]


def columns(series: list[str], points: list[tuple[int, float, float]],
            others: list[Measurement] | None = None, units: dict[str, str] | None = None
            ) -> Columns:
    index, ts, values = zip(*points, strict=True) if points else ((), (), ())
    return Columns(series=series, index=np.array(index, dtype=np.int32),
                   ts=np.array(ts, dtype=np.float64), values=np.array(values, dtype=np.float64),
                   units=units or {}, others=others or [])


async def test_columns_store_what_measurements_store(archive: Archive) -> None:
    """A columnar batch stores the points, units and kinds its measurements would."""
    await archive.write(floats(LOAD, (T0, 1.0)))
    web2 = SeriesKey.make("web2", "system", "load1")
    batch = columns(
        [str(CPU), str(LOAD), 'web1/ping/rtt{target="db1"}', str(web2)],
        [(0, T0, 1.5), (1, T0 + 1, 2.0), (0, T0 + 10, math.nan), (0, T0, 3.0), (3, T0, 0.5)],
        others=[hist(RTT, T0, {"a": 1}), obj(LOSS, T0, {"numerator": 1, "denominator": 2}),
                *floats(CPU, (T0 + 10, 9.0), (T0 + 20, 4.0), unit="%")],
        units={str(LOAD): "ignored: the series exists", str(web2): "load"},
    )

    assert len(batch) == 9
    assert await archive.write_columns(batch) == 9

    cpu = await everything(archive, CPU)
    assert cpu[0] == (T0, 3.0)  # the columns come after the others, the latest wins
    assert math.isnan(cpu[1][1])
    assert cpu[2] == (T0 + 20, 4.0)
    assert await everything(archive, LOAD) == [(T0, 1.0), (T0 + 1, 2.0)]
    assert await everything(archive, RTT) == [(T0, {"a": 1})]
    assert await everything(archive, LOSS) == [(T0, {"numerator": 1, "denominator": 2})]
    metas = {m.key: m for m in (await archive.list_series())[0]}
    assert (metas[CPU].unit, metas[LOAD].unit, metas[web2].unit) == ("%", "", "load")
    assert await everything(archive, web2) == [(T0, 0.5)]
    registry = archive.metrics.registry
    assert registry.get_sample_value("watchkeeper_points_ingested_total") == 10


async def test_columns_find_series_by_any_text_form(archive: Archive) -> None:
    """Labels in another order name the same series, known or new in the batch."""
    key = SeriesKey.make("a", "b", "c", {"x": "1", "y": "2"})
    batch = columns(['a/b/c{y="2",x="1"}', str(key)], [(0, T0, 1.0), (1, T0 + 1, 2.0)])

    await archive.write_columns(batch)
    await archive.write_columns(columns(['a/b/c{y="2",x="1"}'], [(0, T0 + 2, 3.0)]))

    assert await everything(archive, key) == [(T0, 1.0), (T0 + 1, 2.0), (T0 + 2, 3.0)]
    assert (await archive.list_series())[1] == 1


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        pytest.param(columns([str(CPU)], [(1, T0, 1.0)]), "index", id="index-past-the-end"),
        pytest.param(columns([str(CPU)], [(-1, T0, 1.0)]), "index", id="negative-index"),
        pytest.param(Columns(series=[str(CPU)], index=np.zeros(2, np.int32),
                             ts=np.zeros(1), values=np.zeros(2)), "index", id="ragged"),
        pytest.param(columns(["web1/system"], [(0, T0, 1.0)]), "series[0]", id="bad-series"),
        pytest.param(columns([str(CPU)], [(0, math.nan, 1.0)]), "ts", id="nan-ts"),
        pytest.param(columns([str(CPU)], [(0, 1e300, 1.0)]), "ts", id="ts-out-of-range"),
        pytest.param(columns([str(LOAD)], [(0, T0, 1.0)], [hist(LOAD, T0, {"a": 1})]), "series",
                     id="number-to-a-histogram-of-the-batch"),
        pytest.param(columns([str(LOAD)], [(0, T0, 1.0)], [hist(CPU, T0, {"a": -1})]),
                     "histogram", id="bad-other"),
    ],
)
async def test_malformed_columns_are_refused(archive: Archive, batch: Columns, field: str) -> None:
    """A columnar batch with anything malformed fails whole, naming the field."""
    with pytest.raises(InvalidData) as raised:
        await archive.write_columns(batch)

    assert raised.value.field == field
    assert await archive.list_series() == ([], 0)


async def test_columns_refuse_numbers_for_other_kinds(archive: Archive) -> None:
    await archive.write([hist(RTT, T0, {"a": 1})])

    with pytest.raises(InvalidData, match="holds histogram points, got a number"):
        await archive.write_columns(columns([str(CPU), str(RTT)], [(0, T0, 1.0), (1, T0, 1.0)]))

    assert (await archive.list_series())[1] == 1


ROLLUP_CASES = [
    pytest.param(0, 86400 * 3, 3600, ("avg", "min", "max", "count", "sum"), id="hour-aligned"),
    pytest.param(1234.5, 86400 * 2 + 77, 3600, ("avg", "min", "max"), id="unaligned-edges"),
    pytest.param(0, 86400 * 3, 86400, ("avg", "count"), id="daily"),
    pytest.param(-3600, 7200 * 5, 7200, ("max", "sum"), id="two-hourly"),
    pytest.param(0, 86400, 600, ("avg",), id="step-below-an-hour"),
    pytest.param(0, 86400, 3600, ("first", "last", "avg"), id="first-last"),
]


async def rollups_agree(archive: Archive, keys: list[SeriesKey], start: float, end: float,
                        step: float, aggs: tuple[str, ...]) -> None:
    """archive.rollup() gives what bucketize gives over read() (sums to rounding)."""
    from watchkeeper.archive.abc import rollup_points

    rolled = await archive.rollup(keys, start=start, end=end, step=step, aggs=aggs)
    assert [r.key for r in rolled] == keys
    for key, got in zip(keys, rolled, strict=True):
        want = rollup_points(key, await archive.read(key, start, end), start=start, end=end,
                             step=step, aggs=aggs)
        assert got.ts.tolist() == want.ts.tolist()
        for agg in aggs:
            if agg in ("avg", "sum"):
                np.testing.assert_allclose(got.values[agg], want.values[agg], rtol=1e-12)
            else:
                assert bits(got.values[agg]) == bits(want.values[agg]), agg


@pytest.mark.parametrize(("start", "end", "step", "aggs"), ROLLUP_CASES)
async def test_rollups_match_the_points(
    backend: Backend, open_archive: OpenArchive, start: float, end: float, step: float,
    aggs: tuple[str, ...],
) -> None:
    """Rollups of series long enough for many chunks, before and after a restart, with
    late points, sparse series and NaN, agree with the points."""
    dense = SeriesKey.make("r", "p", "dense")
    sparse = SeriesKey.make("r", "p", "sparse")
    late = SeriesKey.make("r", "p", "late")
    rng = np.random.default_rng(4)
    day = T0 - T0 % 86400
    ts = day + np.arange(0, 3 * 86400, 60) + rng.integers(0, 60_000, 4320) / 1000
    values = np.round(rng.normal(50, 10, len(ts)), 2)
    values[100] = math.nan
    keys = [dense, sparse, late]
    async with open_archive() as archive:
        for lo in range(0, len(ts), 500):
            await archive.write(floats(dense, *zip(ts[lo:lo + 500].tolist(),
                                                   values[lo:lo + 500].tolist(), strict=True)))
        await archive.write(floats(sparse, *[(day + 7200.0 * i, float(i)) for i in range(40)]))
        await archive.write(floats(late, *[(day + 30.0 * i, float(i % 7)) for i in range(3000)]))
        await rollups_agree(archive, keys, day + start, day + end, step, aggs)
        await archive.write(floats(late, *[(day + 30.0 * i, -1.0) for i in range(0, 3000, 97)]))
        await archive.write(floats(dense, (day + 3 * 86400 + 5, 1.0)))  # head after chunks
        await rollups_agree(archive, keys, day + start, day + end, step, aggs)
    if backend.durable:
        async with open_archive() as archive:
            await rollups_agree(archive, keys, day + start, day + end, step, aggs)


async def test_rollup_refuses_what_it_cannot_do(archive: Archive) -> None:
    await archive.write([hist(RTT, T0, {"a": 1}), *floats(CPU, (T0, 1.0))])

    with pytest.raises(InvalidData, match="not numbers"):
        await archive.rollup([CPU, RTT], start=T0, end=T0 + 1, step=60)
    with pytest.raises(InvalidData, match="agg"):
        await archive.rollup([CPU], start=T0, end=T0 + 1, step=60, aggs=("median",))
    with pytest.raises(InvalidData, match="step"):
        await archive.rollup([CPU], start=T0, end=T0 + 1, step=0)
    with pytest.raises(SeriesNotFound):
        await archive.rollup([LOAD], start=T0, end=T0 + 1, step=3600)
    assert await archive.rollup([], start=T0, end=T0 + 1, step=3600) == []


# Ranges (seconds from midnight) and steps the summary path must get right: whole hours,
# partial hours at either or both ends, a range inside one hour, an end exactly on an
# hour (that point opens the next bucket), the whole of time, wider steps.
SUMMARY_RANGES = [
    (0, 2 * 86400 - 0.001, 3600),
    (1234.5, 86400 + 77.25, 3600),
    (1800, 3600 * 30, 3600),
    (3600 * 5, 3600 * 7, 3600),
    (3600 * 5 + 1, 3600 * 5 + 1799, 3600),
    (-math.inf, math.inf, 3600),
    (555, 2 * 86400 - 3, 7200),
    (-3600, 3 * 86400, 86400),
]


async def summary_rollups_agree(archive: Archive, keys: list[SeriesKey], day: float) -> None:
    for start, end, step in SUMMARY_RANGES:
        await rollups_agree(archive, keys, day + start, day + end, step,
                            ("avg", "min", "max", "sum", "count"))


async def test_rollups_from_summaries_match_the_points(
    backend: Backend, open_archive: OpenArchive
) -> None:
    """Hour-multiple rollups (what stored summaries answer) equal bucketize over the
    points through the life of the data: unflushed points, compacted chunks, points
    rewritten inside summarised chunks, points after the chunks, deletes cutting
    chunks, NaN and infinities, a key asked for twice."""
    options = {"chunk_points": 60} if backend.durable else {}
    day = T0 - T0 % 86400
    steady = SeriesKey.make("s", "p", "steady")  # 10-s points: summarised chunks
    odd = SeriesKey.make("s", "p", "odd")  # NaN and infinities
    sparse = SeriesKey.make("s", "p", "sparse")  # chunks too sparse for a summary
    keys = [steady, odd, sparse]
    rng = np.random.default_rng(11)
    ts = day + np.arange(0, 2 * 86400, 10.0) + rng.integers(0, 10_000, 17280) / 1000
    values = np.round(rng.normal(50, 10, len(ts)), 2)
    special = values.copy()
    special[[700, 3001, 9000]] = [math.nan, math.inf, -math.inf]  # in different hours
    async with AsyncExitStack() as stack:
        archive = await stack.enter_async_context(open_archive(**options))

        async def reopen() -> Archive:
            """Close and open again (closing compacts): the points move into chunks."""
            if not backend.durable:
                return archive
            await stack.aclose()
            return await stack.enter_async_context(open_archive(**options))

        for lo in range(0, len(ts), 1000):
            await archive.write([
                *floats(steady, *zip(ts[lo:lo + 1000].tolist(), values[lo:lo + 1000].tolist(),
                                     strict=True)),
                *floats(odd, *zip(ts[lo:lo + 1000].tolist(), special[lo:lo + 1000].tolist(),
                                  strict=True)),
            ])
        await archive.write(floats(sparse, *[(day + 5000.0 * i, float(i)) for i in range(30)]))
        await summary_rollups_agree(archive, keys, day)
        archive = await reopen()
        await summary_rollups_agree(archive, keys, day)
        # Rewrite points inside summarised chunks (the same times, new values), add some
        # between them: while unflushed they reach back into the chunks.
        rewritten = [(float(t), -5.0) for t in ts[2000:2400:7]]
        between = [(float(t) + 0.5, 1e6) for t in ts[5000:5100:3]]
        await archive.write(floats(steady, *rewritten, *between))
        await archive.write(floats(steady, *rewritten[:3]))  # duplicates of the same points
        await summary_rollups_agree(archive, keys, day)
        await archive.write(floats(odd, (day + 2 * 86400 + 30, 2.0)))  # after the chunks
        await summary_rollups_agree(archive, keys, day)
        archive = await reopen()
        await summary_rollups_agree(archive, keys, day)
        assert await archive.delete(steady, day + 5000.5, day + 9000.25) > 0  # cuts chunks
        assert await archive.delete(odd, day + 36000.1, day + 36000.9) == 0
        assert await archive.delete(odd, day + 40000, day + 40100) > 0  # inside one chunk
        assert await archive.delete(sparse, day + 9999, day + 20001) == 3
        await summary_rollups_agree(archive, keys, day)
        a, b, a2 = await archive.rollup([steady, odd, steady], start=day + 100,
                                        end=day + 86400, step=3600, aggs=("avg", "count"))
        assert (a.key, b.key, a2.key) == (steady, odd, steady)
        assert a.ts.tolist() == a2.ts.tolist()
        assert bits(a.values["avg"]) == bits(a2.values["avg"])
        assert bits(a.values["count"]) == bits(a2.values["count"])
        archive = await reopen()
        await summary_rollups_agree(archive, keys, day)


async def test_columns_with_a_series_token(archive: Archive) -> None:
    """A token names its series list: batches reusing it land in the same series, and a
    list holding a histogram series still refuses numbers for it."""
    texts = [str(CPU), str(LOAD)]
    token = b"cpu+load"
    for i in range(3):
        batch = columns(texts, [(0, T0 + i, float(i)), (1, T0 + i, -float(i))])
        await archive.write_columns(Columns(**{**batch.__dict__, "series_token": token}))
    await archive.write([hist(RTT, T0, {"a": 1})])
    mixed = columns([str(CPU), str(RTT)], [(0, T0 + 5, 5.0)])
    await archive.write_columns(Columns(**{**mixed.__dict__, "series_token": b"mixed"}))
    bad = columns([str(CPU), str(RTT)], [(1, T0 + 6, 6.0)])

    with pytest.raises(InvalidData, match="holds histogram points"):
        await archive.write_columns(Columns(**{**bad.__dict__, "series_token": b"mixed"}))

    assert await everything(archive, CPU) == [(T0 + i, float(i)) for i in range(3)] + [
        (T0 + 5, 5.0)]
    assert await everything(archive, LOAD) == [(T0 + i, -float(i)) for i in range(3)]


async def test_several_writers_share_the_data(backend: Backend, open_archive: OpenArchive) -> None:
    """Instances writing the same data at once all see every acknowledged point."""
    if not backend.several_writers:
        pytest.skip(f"{backend.cls.__name__} has one writer at a time")
    import asyncio

    options = {"chunk_points": 3, "max_log_points": 40}
    async with open_archive(**options) as a, open_archive(**options) as b:
        await asyncio.gather(
            *(a.write(floats(CPU, (T0 + 2 * i, float(i)))) for i in range(30)),
            *(b.write(floats(CPU, (T0 + 2 * i + 1, -float(i)))) for i in range(30)),
            *(b.write([obj(LOSS, T0 + i, {"i": i})]) for i in range(10)),
        )
        await a.write(floats(LOAD, (T0, 1.0), (T0 + 1, 1.0)))
        await b.write(floats(LOAD, (T0, 2.0)))  # acknowledged after a's: it wins
        await a.write([hist(RTT, T0, {"a": 1})])

        expected_cpu = sorted([(T0 + 2 * i, float(i)) for i in range(30)]
                              + [(T0 + 2 * i + 1, -float(i)) for i in range(30)])
        for reader in (a, b):
            assert await everything(reader, CPU) == expected_cpu
            assert await everything(reader, LOAD) == [(T0, 2.0), (T0 + 1, 1.0)]
            assert await everything(reader, LOSS) == [(T0 + i, {"i": i}) for i in range(10)]
            assert await everything(reader, RTT) == [(T0, {"a": 1})]
            metas = {m.key: m for m in (await reader.list_series())[0]}
            assert (metas[CPU].first_ts, metas[CPU].last_ts) == (T0, T0 + 59)
            assert metas[LOSS].kind == "object"
        with pytest.raises(InvalidData, match="holds histogram points"):
            await b.write(floats(RTT, (T0 + 1, 1.0)))  # a series b learns of from the database
        assert await b.delete(CPU, T0 + 10, T0 + 19) == 10
        assert len(await everything(a, CPU)) == 50

    async with open_archive(**options) as c:
        assert len(await everything(c, CPU)) == 50
        assert await everything(c, LOAD) == [(T0, 2.0), (T0 + 1, 1.0)]


@pytest.mark.parametrize("seed", range(4))
async def test_several_writers_match_a_model(
    backend: Backend, open_archive: OpenArchive, seed: int
) -> None:
    """Random writes, late points, duplicates and deletes from two instances agree with a dict."""
    if not backend.several_writers:
        pytest.skip(f"{backend.cls.__name__} has one writer at a time")
    rng = random.Random(seed)
    keys = [SeriesKey.make("h", "p", f"m{i}") for i in range(5)]
    model: dict[SeriesKey, dict[float, float]] = {key: {} for key in keys}
    options = {"chunk_points": rng.choice([2, 3, 8]), "max_log_points": rng.choice([5, 40, 500])}
    async with open_archive(**options) as first, open_archive(**options) as second:
        for _step in range(120):
            archive = rng.choice((first, second))
            if rng.random() < 0.1:
                key = rng.choice(keys)
                lo = T0 + rng.randrange(200)
                hi = lo + rng.randrange(30)
                doomed = [ts for ts in model[key] if lo <= ts <= hi]
                if model[key] or doomed:
                    assert await archive.delete(key, lo, hi) == len(doomed)
                for ts in doomed:
                    del model[key][ts]
                continue
            batch = []
            for _ in range(rng.randrange(1, 12)):
                key = keys[min(int(rng.expovariate(0.7)), len(keys) - 1)]
                ts = T0 + rng.randrange(200)
                value = float(rng.randrange(1000)) / 10
                batch.append(Measurement(key=key, ts=ts, value=value))
                model[key][ts] = value
            await archive.write(batch)
        for key in keys:
            if model[key]:
                assert await everything(first, key) == sorted(model[key].items())
                assert await everything(second, key) == sorted(model[key].items())
    async with open_archive(**options) as reopened:
        for key in keys:
            if model[key]:
                assert await everything(reopened, key) == sorted(model[key].items())


async def test_list_series_by_prefix_with_paging(archive: Archive) -> None:
    """Series are listed by text key; the total counts every match, not just the page."""
    keys = [
        SeriesKey.make("web2", "system", "load1"),
        SeriesKey.make("db1", "system", "load1"),
        SeriesKey.make("web1", "system", "load1"),
        SeriesKey.make("web1", "system", "cpu.percent"),
        SeriesKey.make("web10", "snmp", "if.in", {"if": "eth0"}),
    ]
    for i, key in enumerate(keys):
        await archive.write(floats(key, (T0 + i, 1.0), (T0 + 100, 2.0), unit="%"))

    listed, total = await archive.list_series()
    web1, web1_total = await archive.list_series(prefix="web1")
    page, page_total = await archive.list_series(prefix="web", limit=2, offset=1)
    rest, _ = await archive.list_series(prefix="web", offset=3)
    none, none_total = await archive.list_series(prefix="zzz")

    assert [str(m.key) for m in listed] == sorted(str(k) for k in keys)
    assert total == 5
    assert [str(m.key) for m in web1] == [
        "web1/system/cpu.percent", "web1/system/load1", 'web10/snmp/if.in{if="eth0"}',
    ]
    assert web1_total == 3
    assert [str(m.key) for m in page] == ["web1/system/load1", 'web10/snmp/if.in{if="eth0"}']
    assert page_total == 4
    assert [str(m.key) for m in rest] == ["web2/system/load1"]
    assert (none, none_total) == ([], 0)
    meta = listed[0]
    assert (meta.key, meta.unit, meta.kind) == (keys[1], "%", "float")
    assert (meta.first_ts, meta.last_ts) == (T0 + 1, T0 + 100)


async def test_series_count_is_the_listing_s_total(archive: Archive) -> None:
    """The count the PromQL engine asks at every query moves with new series only, and is
    list_series' total."""
    assert await archive.series_count() == 0
    await archive.write(floats(CPU, (T0, 1.0)))
    await archive.write(floats(CPU, (T0 + 1, 2.0)))  # no new series
    assert await archive.series_count() == 1
    await archive.write_columns(Columns(series=[f"h{i}/p/m" for i in range(3)],
                                        index=np.arange(3, dtype=np.int32),
                                        ts=np.full(3, T0), values=np.ones(3)))
    assert await archive.series_count() == (await archive.list_series())[1] == 4


async def test_list_series_prefix_with_any_character(archive: Archive) -> None:
    """Prefixes match by code point, up to the last one (U+10FFFF) and past surrogates."""
    top, before_surrogates = "\U0010ffff", "\ud7ff"
    keys = [SeriesKey.make("a", "b", "c", {"x": value})
            for value in (top, top + "z", "é", before_surrogates, "\ue000")]
    await archive.write([Measurement(key=key, ts=T0, value=1.0) for key in keys])

    async def listed(prefix: str) -> list[str]:
        metas, total = await archive.list_series(prefix=prefix)
        assert total == len(metas)
        return [m.key.labels[0][1] for m in metas]

    assert await listed(f'a/b/c{{x="{top}') == [top, top + "z"]
    assert await listed(f'a/b/c{{x="{before_surrogates}') == [before_surrogates]
    assert await listed('a/b/c{x="é') == ["é"]
    assert len(await listed("a/b/c{")) == 5


async def test_series_keeps_the_unit_it_was_created_with(archive: Archive) -> None:
    """The unit of a series is the one of its first measurement; reads carry it."""
    await archive.write(floats(CPU, (T0, 1.0), unit="%"))
    await archive.write(floats(CPU, (T0 + 1, 1.0), unit="ratio"))
    await archive.write([hist(RTT, T0, {"a": 1})])

    metas = {m.key: m for m in (await archive.list_series())[0]}

    assert (metas[CPU].unit, metas[RTT].unit) == ("%", "")
    assert (await archive.read(CPU, T0, T0 + 1)).unit == "%"
    assert (await archive.read(CPU, T0 + 5, T0 + 6)).unit == "%"  # no points, still the unit
    assert (await archive.read(RTT, T0, T0)).unit == ""


async def test_unknown_series_is_not_found(archive: Archive) -> None:
    """Reading or deleting a series never written raises SeriesNotFound with its key."""
    with pytest.raises(SeriesNotFound, match=r"web1/system/cpu\.percent"):
        await archive.read(CPU, T0, T0 + 1)
    with pytest.raises(SeriesNotFound):
        await archive.delete(CPU, T0, T0 + 1)


async def test_delete_a_range(archive: Archive) -> None:
    """delete() removes [start, end] inclusive, returns the count, and moves first/last."""
    await archive.write(floats(CPU, *[(T0 + i, float(i)) for i in range(10)]))
    await archive.write([hist(RTT, T0 + i, {"x": i}) for i in range(3)])

    middle = await archive.delete(CPU, T0 + 3, T0 + 5)
    first = await archive.delete(CPU, T0 - 100, T0)
    nothing = await archive.delete(CPU, T0 + 3, T0 + 5)
    histograms = await archive.delete(RTT, T0 + 1, T0 + 1)

    assert (middle, first, nothing, histograms) == (3, 1, 0, 1)
    assert await everything(archive, CPU) == [(T0 + i, float(i)) for i in (1, 2, 6, 7, 8, 9)]
    assert await everything(archive, RTT) == [(T0, {"x": 0}), (T0 + 2, {"x": 2})]
    metas = {m.key: m for m in (await archive.list_series())[0]}
    assert (metas[CPU].first_ts, metas[CPU].last_ts) == (T0 + 1, T0 + 9)


async def test_delete_everything_keeps_the_series(archive: Archive) -> None:
    """A series emptied by delete() is still listed, with no time range, and readable."""
    await archive.write(floats(CPU, (T0, 1.0), (T0 + 1, 2.0)))

    assert await archive.delete(CPU, -math.inf, math.inf) == 2

    (meta,), _ = await archive.list_series()
    assert (meta.first_ts, meta.last_ts) == (None, None)
    assert await everything(archive, CPU) == []
    await archive.write(floats(CPU, (T0 + 5, 5.0)))
    assert await everything(archive, CPU) == [(T0 + 5, 5.0)]


async def test_everything_survives_a_restart(backend: Backend, open_archive: OpenArchive) -> None:
    """Close, reopen on the same data_dir: series, points and histograms are all there."""
    if not backend.durable:
        pytest.skip(f"{backend.cls.__name__} keeps nothing across instances")
    async with open_archive() as archive:
        await archive.write(floats(CPU, *[(T0 + i, i / 4) for i in range(300)], unit="%"))
        await archive.write([hist(RTT, T0, {"1": 2})])
        await archive.write([obj(LOSS, T0 + i, {"numerator": i, "denominator": 10})
                             for i in range(3)])
        await archive.write(floats(CPU, (T0 + 5, -1.0)))
        await archive.delete(CPU, T0 + 10, T0 + 19)

    async with open_archive() as archive:
        assert await everything(archive, LOSS) == [
            (T0 + i, {"numerator": i, "denominator": 10}) for i in range(3)]
        expected = [(T0 + i, -1.0 if i == 5 else i / 4) for i in range(300) if not 10 <= i < 20]
        assert await everything(archive, CPU) == expected
        assert await everything(archive, RTT) == [(T0, {"1": 2})]
        metas = {m.key: m for m in (await archive.list_series())[0]}
        assert (metas[CPU].unit, metas[CPU].first_ts, metas[CPU].last_ts) == ("%", T0, T0 + 299)
        await archive.write(floats(CPU, (T0 + 1, 100.0)))

    async with open_archive() as archive:
        assert (await everything(archive, CPU))[:2] == [(T0, 0.0), (T0 + 1, 100.0)]


_KILL_SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib, json, sys
    from contextlib import AsyncExitStack
    from pathlib import Path
    from watchkeeper.clock import SystemClock
    from watchkeeper.model import Measurement, SeriesKey
    from watchkeeper.telemetry import SelfMetrics

    async def main():
        module, _, name = sys.argv[1].partition(":")
        cls = getattr(importlib.import_module(module), name)
        async with AsyncExitStack() as stack:
            archive = cls(data_dir=Path(sys.argv[2]),
                          options=cls.Options(**json.loads(sys.argv[3])),
                          clock=SystemClock(), metrics=SelfMetrics())
            await archive.start(stack)
            keys = [SeriesKey.make("host", "kill", f"m{j}") for j in range(4)]
            hist = SeriesKey.make("host", "kill", "hist")
            loss = SeriesKey.make("host", "kill", "loss")
            for i in range(1_000_000):
                # Series m_j gets a point every j+1 writes, so heads fill unevenly and
                # log rows outlive partial compactions.
                batch = [Measurement(key=k, ts=1_700_000_000 + i, value=i * 10 + j + 0.25)
                         for j, k in enumerate(keys) if i % (j + 1) == 0]
                if i % 5 == 0:
                    batch.append(Measurement(key=hist, ts=1_700_000_000 + i, histogram={"i": i}))
                if i % 3 == 0:
                    batch.append(Measurement(key=loss, ts=1_700_000_000 + i, obj=[i, {"n": i}]))
                await archive.write(batch)
                print(f"acked {i}", flush=True)

    asyncio.run(main())
    """
)


def kill_writer_after(args: list[str], kill_after: int) -> int:
    """Run the kill script, SIGKILL it once it acknowledged ``kill_after``; the last ack."""
    with subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        lines: list[str] = []
        try:
            while not lines or lines[-1] != f"acked {kill_after}":
                line = proc.stdout.readline()
                if not line:
                    pytest.fail(f"writer exited early: {proc.stderr.read()}")
                lines.append(line.strip())
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        lines += proc.stdout.read().split("\n")  # acks printed between the read and the kill
    return max(int(line.split()[-1]) for line in lines if line.startswith("acked"))


@pytest.mark.parametrize("kill_after", [3, 40, 157])
async def test_acknowledged_writes_survive_sigkill(
    backend: Backend, open_archive: OpenArchive, base_options: dict[str, Any], tmp_path: Path,
    kill_after: int,
) -> None:
    """Every write acknowledged before SIGKILL is there after reopening."""
    if not backend.durable:
        pytest.skip(f"{backend.cls.__name__} keeps nothing across instances")
    options = {**base_options, "chunk_points": 7, "max_log_points": 60}
    plugin = f"{backend.cls.__module__}:{backend.cls.__name__}"
    acked = kill_writer_after([plugin, str(tmp_path), json.dumps(options)], kill_after)

    in_flight = acked + 1  # its write may or may not have committed before the kill
    async with open_archive() as archive:
        for j in range(4):
            every = j + 1
            points = await everything(archive, SeriesKey.make("host", "kill", f"m{j}"))
            acked_points = [(T0 + i, i * 10 + j + 0.25) for i in range(0, acked + 1, every)]
            maybe = [(T0 + in_flight, in_flight * 10 + j + 0.25)] if in_flight % every == 0 else []
            assert points in (acked_points, acked_points + maybe)
        histograms = await everything(archive, SeriesKey.make("host", "kill", "hist"))
        acked_histograms = [(T0 + i, {"i": i}) for i in range(0, acked + 1, 5)]
        maybe_h = [(T0 + in_flight, {"i": in_flight})] if in_flight % 5 == 0 else []
        assert histograms in (acked_histograms, acked_histograms + maybe_h)
        objects = await everything(archive, SeriesKey.make("host", "kill", "loss"))
        acked_objects = [(T0 + i, [i, {"n": i}]) for i in range(0, acked + 1, 3)]
        maybe_o = [(T0 + in_flight, [in_flight, {"n": in_flight}])] if in_flight % 3 == 0 else []
        assert objects in (acked_objects, acked_objects + maybe_o)
    if backend.cls is EmbeddedArchive:
        assert table_counts(tmp_path)["overlapping"] == 0


# -- the embedded backend ------------------------------------------------------------


@asynccontextmanager
async def embedded(data_dir: Path, **options: Any) -> AsyncIterator[EmbeddedArchive]:
    async with AsyncExitStack() as stack:
        archive = EmbeddedArchive(
            data_dir=data_dir,
            options=EmbeddedArchive.Options(**options),
            clock=FakeClock(),
            metrics=SelfMetrics(),
        )
        await archive.start(stack)
        yield archive


async def settled_counts(archive: Archive, data_dir: Path) -> dict[str, int]:
    """:func:`table_counts` once the archive has done what follows its last write (the
    heads take a write, and compact, after it is acknowledged: any operation waits)."""
    await archive.list_series(limit=1)
    return table_counts(data_dir)


def table_counts(data_dir: Path) -> dict[str, int]:
    """Rows and points per table, read with a plain sqlite3 connection."""
    conn = sqlite3.connect(data_dir / DB_NAME)
    try:
        chunks, chunk_points = conn.execute(
            "SELECT count(*), coalesce(sum(n), 0) FROM chunks"
        ).fetchone()
        (log_rows,) = conn.execute("SELECT count(*) FROM ingest_log").fetchone()
        overlapping = conn.execute(
            "SELECT count(*) FROM chunks a JOIN chunks b ON a.series_id = b.series_id"
            " AND a.start_ts < b.start_ts AND a.end_ts >= b.start_ts"
        ).fetchone()[0]
    finally:
        conn.close()
    return {"chunks": chunks, "chunk_points": chunk_points, "log_rows": log_rows,
            "overlapping": overlapping}


async def test_embedded_second_instance_reads_everything_and_cannot_write(
    tmp_path: Path,
) -> None:
    """A second instance is read-only and sees acknowledged points, chunked or not."""
    async with embedded(tmp_path, chunk_points=5) as writer:
        for i in range(12):
            await writer.write(floats(CPU, (T0 + i, float(i)), unit="%"))
        await writer.write([hist(RTT, T0, {"a": 1})])
        await writer.write(floats(CPU, (T0 + 1, -1.0)))  # replaces a point already in a chunk
        counts = await settled_counts(writer, tmp_path)
        assert (counts["chunk_points"], counts["log_rows"]) == (10, 4)  # the rest: in heads

        async with embedded(tmp_path, chunk_points=5) as reader:
            expected = [(T0 + i, -1.0 if i == 1 else float(i)) for i in range(12)]
            assert (reader.read_only, writer.read_only) == (True, False)
            assert await everything(reader, CPU) == expected
            assert await everything(reader, RTT) == [(T0, {"a": 1})]
            assert (await reader.read(CPU, T0 + 10.5, T0 + 11)).ts.tolist() == [T0 + 11]
            assert (await reader.read(CPU, T0, T0)).unit == "%"
            metas = {m.key: m for m in (await reader.list_series())[0]}
            assert (metas[CPU].unit, metas[CPU].first_ts, metas[CPU].last_ts) == ("%", T0, T0 + 11)
            assert metas[RTT].kind == "histogram"
            with pytest.raises(ArchiveError, match="read-only"):
                await reader.write(floats(CPU, (T0 + 99, 1.0)))
            with pytest.raises(ArchiveError, match="read-only"):
                await reader.delete(CPU, T0, T0 + 1)
            with pytest.raises(SeriesNotFound):
                await reader.read(LOAD, T0, T0)

            await writer.write(floats(CPU, (T0 + 12, 12.0)))  # the reader caches nothing
            assert (await everything(reader, CPU))[-1] == (T0 + 12, 12.0)

    async with embedded(tmp_path) as reopened:  # the lock went with the writer
        assert not reopened.read_only


async def test_embedded_compaction_moves_points_into_chunks(tmp_path: Path) -> None:
    """Full heads become chunks and the ingest log shrinks; nothing is lost."""
    async with embedded(tmp_path, chunk_points=16) as archive:
        for i in range(100):
            await archive.write([*floats(CPU, (T0 + i, i / 8)), *floats(LOAD, (T0 + i, -i / 8))])

        counts = await settled_counts(archive, tmp_path)
        assert counts["chunk_points"] == 2 * 96
        assert counts["chunks"] == 2 * 6
        assert counts["log_rows"] == 4  # the last four writes, still in the heads
        assert await everything(archive, CPU) == [(T0 + i, i / 8) for i in range(100)]

    counts = table_counts(tmp_path)  # closing compacts what is left
    assert (counts["chunk_points"], counts["log_rows"], counts["overlapping"]) == (200, 0, 0)


async def test_embedded_log_limit_compacts_every_head(tmp_path: Path) -> None:
    """When the ingest log holds more than max_log_points, every head is flushed."""
    async with embedded(tmp_path, chunk_points=1000, max_log_points=10) as archive:
        for i in range(4):
            await archive.write(floats(CPU, (T0 + i, 1.0), (T0 + i + 0.5, 2.0), (T0 - 9 - i, 3.0)))
        assert (await settled_counts(archive, tmp_path))["log_rows"] == 0  # 12 > 10 points
        await archive.write(floats(CPU, (T0 + 10, 1.0)))
        assert (await settled_counts(archive, tmp_path))["log_rows"] == 1
        assert len(await everything(archive, CPU)) == 13


async def test_embedded_late_points_merge_into_chunks(tmp_path: Path) -> None:
    """Points older than the chunks are merged in; chunks never overlap."""
    async with embedded(tmp_path, chunk_points=10) as archive:
        await archive.write(floats(CPU, *[(T0 + 2 * i, float(i)) for i in range(50)]))
        await archive.write(floats(CPU, *[(T0 + 2 * i + 1, -float(i)) for i in range(0, 50, 3)]))
        await archive.write(floats(CPU, *[(T0 + 2 * i, 100.0 + i) for i in range(10, 15)]))
        await archive.write(floats(CPU, *[(T0 - 10 + i, 0.5) for i in range(10)]))

    expected = {T0 + 2 * i: float(i) for i in range(50)}
    expected |= {T0 + 2 * i + 1: -float(i) for i in range(0, 50, 3)}
    expected |= {T0 + 2 * i: 100.0 + i for i in range(10, 15)}
    expected |= {T0 - 10 + i: 0.5 for i in range(10)}
    async with embedded(tmp_path, chunk_points=10) as archive:
        assert await everything(archive, CPU) == sorted(expected.items())
    assert table_counts(tmp_path)["overlapping"] == 0


def crash_image(src: Path, dst: Path) -> None:
    """Copy the database as a crash would leave it: the file and its WAL, no close."""
    dst.mkdir()
    for suffix in ("", "-wal"):
        if (src / f"{DB_NAME}{suffix}").exists():
            shutil.copyfile(src / f"{DB_NAME}{suffix}", dst / f"{DB_NAME}{suffix}")


@pytest.mark.parametrize("seed", range(6))
async def test_embedded_matches_a_model_under_random_operations(
    tmp_path: Path, seed: int
) -> None:
    """Random writes, late points, duplicates, deletes, crashes and restarts agree with a dict."""
    rng = random.Random(seed)
    keys = [SeriesKey.make("h", "p", f"m{i}") for i in range(5)]
    model: dict[SeriesKey, dict[float, float]] = {key: {} for key in keys}
    options = {"chunk_points": rng.choice([2, 3, 8]), "max_log_points": rng.choice([5, 40])}
    data_dir = tmp_path / "0"
    for session in range(1, 5):
        async with embedded(data_dir, **options) as archive:
            for _step in range(60):
                if rng.random() < 0.1:
                    key = rng.choice(keys)
                    lo = T0 + rng.randrange(200)
                    hi = lo + rng.randrange(30)
                    doomed = [ts for ts in model[key] if lo <= ts <= hi]
                    if model[key] or doomed:
                        assert await archive.delete(key, lo, hi) == len(doomed)
                    for ts in doomed:
                        del model[key][ts]
                    continue
                batch = []
                for _ in range(rng.randrange(1, 12)):
                    # Skewed: the first series get most points, so heads fill unevenly.
                    key = keys[min(int(rng.expovariate(0.7)), len(keys) - 1)]
                    ts = T0 + rng.randrange(200)
                    value = float(rng.randrange(1000)) / 10
                    batch.append(Measurement(key=key, ts=ts, value=value))
                    model[key][ts] = value
                await archive.write(batch)
            for key in keys:
                if model[key]:
                    assert await everything(archive, key) == sorted(model[key].items())
            if session % 2:  # every other session ends in a crash, the others close cleanly
                crash_image(data_dir, tmp_path / str(session))
                data_dir = tmp_path / str(session)
        assert table_counts(data_dir)["overlapping"] == 0


async def test_embedded_refuses_calls_before_start(tmp_path: Path) -> None:
    archive = EmbeddedArchive(data_dir=tmp_path, options=EmbeddedArchive.Options(),
                              clock=FakeClock(), metrics=SelfMetrics())

    with pytest.raises(ArchiveError, match="not started"):
        await archive.read(CPU, T0, T0)
    with pytest.raises(ArchiveError, match="not started"):
        await archive.write(floats(CPU, (T0, 1.0)))


@pytest.mark.parametrize(
    "options", [{"chunk_points": 1}, {"max_log_points": 0}, {"synchronous": "off"}],
    ids=["tiny-chunks", "no-log", "unknown-synchronous"],
)
async def test_embedded_checks_its_options(tmp_path: Path, options: dict[str, Any]) -> None:
    """Options out of range are refused at start, even when built in code."""
    with pytest.raises(ConfigError, match=r"archive\.options"):
        async with embedded(tmp_path, **options):
            pass


async def test_embedded_refuses_a_newer_schema(tmp_path: Path) -> None:
    async with embedded(tmp_path) as archive:
        await archive.write(floats(CPU, (T0, 1.0)))
    def set_version(version: int) -> None:
        conn = sqlite3.connect(tmp_path / DB_NAME)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.close()

    set_version(99)
    with pytest.raises(ArchiveError, match="schema version 99"):
        async with embedded(tmp_path):
            pass
    set_version(1)
    async with embedded(tmp_path) as archive:  # the failed start released the lock
        assert not archive.read_only
        assert await everything(archive, CPU) == [(T0, 1.0)]


def _downgrade_chunks(path: Path, version: int) -> None:
    """Give a file the chunks layout of schema versions 1 and 2 (a WITHOUT ROWID table);
    version 1 files also had no summaries."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript("""
            BEGIN;
            CREATE TABLE chunks_old (
                series_id INTEGER NOT NULL, start_ts INTEGER NOT NULL,
                end_ts INTEGER NOT NULL, n INTEGER NOT NULL, blob BLOB NOT NULL,
                PRIMARY KEY (series_id, start_ts)
            ) WITHOUT ROWID;
            INSERT INTO chunks_old SELECT series_id, start_ts, end_ts, n, blob FROM chunks;
            DROP TABLE chunks;
            ALTER TABLE chunks_old RENAME TO chunks;
            COMMIT;
        """)
        if version == 1:
            conn.execute("DROP TABLE summaries")
        conn.execute(f"PRAGMA user_version = {version}")
    finally:
        conn.close()


def _chunks_layout(path: Path) -> tuple[int, str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'chunks'").fetchone()
        indexes = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'chunks'")]
    finally:
        conn.close()
    return version, sql, indexes


@pytest.mark.parametrize("version", [1, 2])
async def test_embedded_upgrades_older_files(tmp_path: Path, version: int) -> None:
    """Files of schema versions 1 and 2 open: a read-only instance reads the old layout
    as it is, the writer moves the chunks into the rowid table, and nothing is lost."""
    keys = [SeriesKey.make("r", "p", f"m{i}") for i in range(3)]
    points = {key: [(T0 + 10.0 * i, float(i * (k + 1))) for i in range(95)]
              for k, key in enumerate(keys)}
    async with embedded(tmp_path, chunk_points=20) as archive:
        await archive.write([m for key in keys for m in floats(key, *points[key])])
    before = table_counts(tmp_path)
    assert before["chunks"] > len(keys)
    _downgrade_chunks(tmp_path / DB_NAME, version)
    assert "WITHOUT ROWID" in _chunks_layout(tmp_path / DB_NAME)[1]

    async with embedded(tmp_path, chunk_points=20) as writer:
        version_now, sql, indexes = _chunks_layout(tmp_path / DB_NAME)
        assert version_now == 3
        assert "WITHOUT ROWID" not in sql.upper()
        assert indexes == ["chunks_by_series"]
        assert table_counts(tmp_path) == before
        for key in keys:
            assert await everything(writer, key) == points[key]
        await rollups_agree(writer, keys, T0, T0 + 950, 60, ("avg", "min", "max", "count"))
        more = [(T0 + 10.0 * i, -1.0) for i in range(90, 130)]  # replaces 5, adds 35
        await writer.write(floats(keys[0], *more))
        points[keys[0]] = points[keys[0]][:90] + more
    async with embedded(tmp_path, chunk_points=20) as reopened:
        for key in keys:
            assert await everything(reopened, key) == points[key]
    assert table_counts(tmp_path)["overlapping"] == 0


async def test_embedded_keeps_partial_chunks_apart_from_full_ones(tmp_path: Path) -> None:
    """Full chunks are appended in id order; partial ones (replaced by the next flush of
    their series) get negative ids, so their holes do not fragment the full chunks."""
    keys = [SeriesKey.make("r", "p", f"m{i}") for i in range(3)]
    for lo in range(0, 105, 15):  # closing compacts the partial heads each time
        async with embedded(tmp_path, chunk_points=20) as archive:
            await archive.write([m for key in keys for m in floats(
                key, *[(T0 + 10.0 * i, float(i)) for i in range(lo, lo + 15)])])
    async with embedded(tmp_path, chunk_points=20) as archive:
        for key in keys:
            assert await everything(archive, key) == [(T0 + 10.0 * i, float(i))
                                                      for i in range(105)]
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        rows = conn.execute("SELECT id, n FROM chunks ORDER BY id").fetchall()
    finally:
        conn.close()
    assert [n for _, n in rows if n < 20] == [5, 5, 5]  # the tails: 105 = 5 x 20 + 5
    assert all(i < 0 for i, n in rows if n < 20)
    assert all(i > 0 for i, n in rows if n == 20)
    assert len(rows) == 3 * 6


async def test_embedded_reader_reads_the_old_chunks_layout(tmp_path: Path) -> None:
    """A read-only connection (it never upgrades) reads version 2 chunks as they are."""
    from watchkeeper.archive.backends._store import Store

    async with embedded(tmp_path, chunk_points=20) as archive:
        await archive.write(floats(CPU, *[(T0 + 10.0 * i, float(i)) for i in range(50)]))
    _downgrade_chunks(tmp_path / DB_NAME, 2)
    store = Store.open(tmp_path / DB_NAME, writer=False)
    try:
        (row,) = [r for r in store.all_series() if r.key == CPU]
        chunks = store.chunks(row.sid, int(T0 * 1000), int((T0 + 1000) * 1000))
        assert sum(chunk.n for chunk in chunks) == 50
        assert store.last_chunk(row.sid) == chunks[-1]
    finally:
        store.close()


async def test_embedded_refuses_to_start_on_a_corrupt_log(tmp_path: Path) -> None:
    """A log row that cannot be read stops the start instead of dropping acknowledged data."""
    async with embedded(tmp_path) as archive:
        await archive.write(floats(CPU, (T0, 1.0)))
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("INSERT INTO ingest_log (seq, blob) VALUES (1, x'01deadbeef')")
    conn.commit()
    conn.close()

    with pytest.raises(ArchiveError, match="corrupt ingest log row"):
        async with embedded(tmp_path):
            pass


async def write_hours(archive: Archive, keys: list[SeriesKey], day: float, hours: int) -> None:
    """``hours`` hours from ``day`` of every 10 s, one write per hour for all ``keys``."""
    for hour in range(hours):
        await archive.write([m for key in keys for m in floats(
            key, *[(day + hour * 3600 + 10.0 * i, float(i)) for i in range(360)])])


async def test_embedded_summaries_of_many_series_in_one_statement_or_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows a rollup fetches are the same whether SQLite can take the series as one
    JSON list (3.38 and later) or is asked series by series."""
    from watchkeeper.archive.backends import _store

    day = T0 - T0 % 86400
    keys = [SeriesKey.make("r", "p", f"m{i}") for i in range(3)]
    async with embedded(tmp_path, chunk_points=60) as writer:
        await write_hours(writer, keys, day, 5)
    store = _store.Store.open(tmp_path / DB_NAME, writer=False)
    try:
        sids = [row.sid for row in store.all_series()]
        asked = [*sids, sids[0]]  # a series asked twice gives its rows twice
        lo, hi = int(day * 1000) + 1_800_000, int(day * 1000) + 4 * 3_600_000
        together = store.summaries_of(asked, lo, hi)
        monkeypatch.setattr(_store, "_JSON_EACH", False)
        one_by_one = store.summaries_of(asked, lo, hi)
    finally:
        store.close()
    assert sorted(together) == sorted(one_by_one)
    # 0:30 to 4:00 touches 22 chunks of 10 minutes (4:00 starts one); the first series twice
    assert len(together) == 4 * 22
    assert {row[0] for row in together} == set(sids)


async def test_embedded_rollups_read_summaries_not_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hour-aligned rollup decodes no chunk: summaries answer it, in the writer and in
    a read-only instance; the edges of an unaligned one decode only the edge chunks."""
    from watchkeeper.archive.backends import _rollups

    decoded: list[int] = []
    real = _rollups.decode_floats_ms

    def counting(blob: bytes) -> Any:
        decoded.append(len(blob))
        return real(blob)

    monkeypatch.setattr(_rollups, "decode_floats_ms", counting)
    day = T0 - T0 % 86400
    keys = [SeriesKey.make("r", "p", f"m{i}") for i in range(3)]
    async with embedded(tmp_path, chunk_points=60) as writer:
        await write_hours(writer, keys, day, 48)
        async with embedded(tmp_path) as reader:
            for archive in (writer, reader):
                decoded.clear()
                await rollups_agree(archive, keys, day, day + 86400 - 0.001, 3600,
                                    ("avg", "min", "max"))
                assert decoded == []
                await rollups_agree(archive, keys, day + 1800, day + 86400, 3600, ("avg",))
                assert 0 < len(decoded) <= 3 * 2 * 2  # edge chunks (and the comparison's)
