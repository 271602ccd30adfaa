"""The archive contract (watchkeeper.archive.abc), run against every backend.

The first part runs on each backend of ``conftest.BACKENDS``. The second part covers
what only the embedded backend promises or does: surviving SIGKILL, a second process
reading while the first writes, and compaction into chunks.
"""

from __future__ import annotations

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
from watchkeeper.archive import Archive
from watchkeeper.archive.backends.embedded import DB_NAME, EmbeddedArchive
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ArchiveError, ConfigError, InvalidData, SeriesNotFound
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

T0 = 1_700_000_000.0
CPU = SeriesKey.make("web1", "system", "cpu.percent")
LOAD = SeriesKey.make("web1", "system", "load1")
RTT = SeriesKey.make("web1", "ping", "rtt", {"target": "db1"})


def floats(key: SeriesKey, *points: tuple[float, float], unit: str = "") -> list[Measurement]:
    return [Measurement(key=key, ts=ts, value=value, unit=unit) for ts, value in points]


def hist(key: SeriesKey, ts: float, histogram: dict[str, int]) -> Measurement:
    return Measurement(key=key, ts=ts, histogram=histogram)


def bits(values: Any) -> list[int]:
    """Values as their IEEE bit patterns, so NaN == NaN and -0.0 != 0.0."""
    patterns: list[int] = np.asarray(values, dtype=np.float64).view(np.uint64).tolist()
    return patterns


async def everything(archive: Archive, key: SeriesKey) -> list[tuple[float, Any]]:
    points = await archive.read(key, -math.inf, math.inf)
    values = points.histograms if points.kind == "histogram" else points.values.tolist()
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
    """The unit of a series is the one of its first measurement."""
    await archive.write(floats(CPU, (T0, 1.0), unit="%"))
    await archive.write(floats(CPU, (T0 + 1, 1.0), unit="ratio"))

    (meta,), _ = await archive.list_series()

    assert meta.unit == "%"


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
        await archive.write(floats(CPU, (T0 + 5, -1.0)))
        await archive.delete(CPU, T0 + 10, T0 + 19)

    async with open_archive() as archive:
        expected = [(T0 + i, -1.0 if i == 5 else i / 4) for i in range(300) if not 10 <= i < 20]
        assert await everything(archive, CPU) == expected
        assert await everything(archive, RTT) == [(T0, {"1": 2})]
        metas = {m.key: m for m in (await archive.list_series())[0]}
        assert (metas[CPU].unit, metas[CPU].first_ts, metas[CPU].last_ts) == ("%", T0, T0 + 299)
        await archive.write(floats(CPU, (T0 + 1, 100.0)))

    async with open_archive() as archive:
        assert (await everything(archive, CPU))[:2] == [(T0, 0.0), (T0 + 1, 100.0)]


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


_KILL_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from contextlib import AsyncExitStack
    from pathlib import Path
    from watchkeeper.archive.backends.embedded import EmbeddedArchive
    from watchkeeper.clock import SystemClock
    from watchkeeper.model import Measurement, SeriesKey
    from watchkeeper.telemetry import SelfMetrics

    async def main():
        async with AsyncExitStack() as stack:
            archive = EmbeddedArchive(
                data_dir=Path(sys.argv[1]),
                options=EmbeddedArchive.Options(chunk_points=7, max_log_points=60),
                clock=SystemClock(), metrics=SelfMetrics())
            await archive.start(stack)
            keys = [SeriesKey.make("host", "kill", f"m{j}") for j in range(4)]
            hist = SeriesKey.make("host", "kill", "hist")
            for i in range(1_000_000):
                # Series m_j gets a point every j+1 writes, so heads fill unevenly and
                # log rows outlive partial compactions.
                batch = [Measurement(key=k, ts=1_700_000_000 + i, value=i * 10 + j + 0.25)
                         for j, k in enumerate(keys) if i % (j + 1) == 0]
                if i % 5 == 0:
                    batch.append(Measurement(key=hist, ts=1_700_000_000 + i, histogram={"i": i}))
                await archive.write(batch)
                print(f"acked {i}", flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("kill_after", [3, 40, 157])
async def test_embedded_acknowledged_writes_survive_sigkill(
    tmp_path: Path, kill_after: int
) -> None:
    """Every write acknowledged before SIGKILL is there after reopening."""
    with subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(tmp_path)],
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
    acked = max(int(line.split()[-1]) for line in lines if line.startswith("acked"))

    in_flight = acked + 1  # its write may or may not have committed before the kill
    async with embedded(tmp_path) as archive:
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
    assert table_counts(tmp_path)["overlapping"] == 0


async def test_embedded_second_instance_reads_everything_and_cannot_write(
    tmp_path: Path,
) -> None:
    """A second instance is read-only and sees acknowledged points, chunked or not."""
    async with embedded(tmp_path, chunk_points=5) as writer:
        for i in range(12):
            await writer.write(floats(CPU, (T0 + i, float(i)), unit="%"))
        await writer.write([hist(RTT, T0, {"a": 1})])
        await writer.write(floats(CPU, (T0 + 1, -1.0)))  # replaces a point already in a chunk
        counts = table_counts(tmp_path)
        assert (counts["chunk_points"], counts["log_rows"]) == (10, 4)  # the rest: in heads

        async with embedded(tmp_path, chunk_points=5) as reader:
            expected = [(T0 + i, -1.0 if i == 1 else float(i)) for i in range(12)]
            assert (reader.read_only, writer.read_only) == (True, False)
            assert await everything(reader, CPU) == expected
            assert await everything(reader, RTT) == [(T0, {"a": 1})]
            assert (await reader.read(CPU, T0 + 10.5, T0 + 11)).ts.tolist() == [T0 + 11]
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

        counts = table_counts(tmp_path)
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
        assert table_counts(tmp_path)["log_rows"] == 0  # 12 points > 10: all compacted
        await archive.write(floats(CPU, (T0 + 10, 1.0)))
        assert table_counts(tmp_path)["log_rows"] == 1
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
