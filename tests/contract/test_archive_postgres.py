"""What only the PostgreSQL archive promises: writers in several processes, its options,
and refusing what it cannot read. The contract suite runs every common behaviour on it."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.contract.conftest import PG_DSN
from watchkeeper.archive.backends.postgres import PostgresArchive
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ArchiveError, ConfigError
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

pytestmark = pytest.mark.external_service

T0 = 1_700_000_000.0
SHARED = SeriesKey.make("shared", "w", "all")

_WRITER = textwrap.dedent(
    """
    import asyncio, json, sys
    from contextlib import AsyncExitStack
    from pathlib import Path
    from watchkeeper.archive.backends.postgres import PostgresArchive
    from watchkeeper.clock import SystemClock
    from watchkeeper.model import Measurement, SeriesKey
    from watchkeeper.telemetry import SelfMetrics

    async def main():
        p, writes = int(sys.argv[2]), int(sys.argv[3])
        async with AsyncExitStack() as stack:
            archive = PostgresArchive(
                data_dir=Path("."), options=PostgresArchive.Options(**json.loads(sys.argv[1])),
                clock=SystemClock(), metrics=SelfMetrics())
            await archive.start(stack)
            own = SeriesKey.make(f"p{p}", "w", "own")
            shared = SeriesKey.make("shared", "w", "all")
            status = SeriesKey.make("shared", "w", "status")
            for i in range(writes):
                await archive.write([
                    Measurement(key=own, ts=1_700_000_000 + i, value=float(i)),
                    Measurement(key=shared, ts=1_700_000_000 + 2 * i + p, value=p * 1000.0 + i),
                    Measurement(key=status, ts=1_700_000_000 + 2 * i + p, obj={"p": p, "i": i}),
                ])

    asyncio.run(main())
    """
)


@asynccontextmanager
async def postgres(schema: str, **options: Any) -> AsyncIterator[PostgresArchive]:
    async with AsyncExitStack() as stack:
        archive = PostgresArchive(
            data_dir=Path("."),
            options=PostgresArchive.Options(**{"dsn": PG_DSN, "schema": schema, **options}),
            clock=FakeClock(),
            metrics=SelfMetrics(),
        )
        await archive.start(stack)
        yield archive


async def test_writers_in_several_processes(pg_schema: str) -> None:
    """Two processes and this one write shared and own series at once; nothing is lost."""
    options = {"dsn": PG_DSN, "schema": pg_schema, "chunk_points": 5, "max_log_points": 200}
    writes = 150
    async with postgres(pg_schema, chunk_points=5, max_log_points=200) as mine:
        await mine.write([Measurement(key=SHARED, ts=T0 - 1, value=-1.0)])  # makes the schema
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", _WRITER, json.dumps(options), str(p), str(writes),
                stderr=asyncio.subprocess.PIPE)
            for p in (0, 1)
        ]
        for i in range(writes):
            await mine.write([Measurement(key=SHARED, ts=T0 - 2 - i, value=-2.0 - i)])
        for proc in procs:
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()

        points = await mine.read(SHARED, -math.inf, math.inf)
        expected = {T0 + 2 * i + p: p * 1000.0 + i for i in range(writes) for p in (0, 1)}
        expected |= {T0 - 1 - i: -1.0 - i for i in range(writes + 1)}
        assert dict(zip(points.ts.tolist(), points.values.tolist(), strict=True)) == expected
        for p in (0, 1):
            own = await mine.read(SeriesKey.make(f"p{p}", "w", "own"), -math.inf, math.inf)
            assert own.values.tolist() == [float(i) for i in range(writes)]
        status = await mine.read(SeriesKey.make("shared", "w", "status"), T0, T0 + 9)
        assert list(status.objects) == [{"p": (t % 2), "i": t // 2} for t in range(10)]
        _, total = await mine.list_series()
        assert total == 4


async def test_a_wrong_dsn_fails_at_start(pg_schema: str) -> None:
    with pytest.raises(ArchiveError, match="cannot connect to PostgreSQL"):
        async with postgres(pg_schema, dsn="host=127.0.0.1 port=1 user=postgres"):
            pass


@pytest.mark.parametrize(
    "options", [{"schema": "Bad-Name"}, {"chunk_points": 1}, {"pool_size": 0}],
    ids=["schema-name", "tiny-chunks", "no-connections"],
)
async def test_options_are_checked(options: dict[str, Any]) -> None:
    """Options out of range are refused at start, even when built in code."""
    archive = PostgresArchive(data_dir=Path("."), options=PostgresArchive.Options(**options),
                              clock=FakeClock(), metrics=SelfMetrics())
    with pytest.raises(ConfigError, match=r"archive\.options"):
        async with AsyncExitStack() as stack:
            await archive.start(stack)


async def test_calls_before_start_are_refused() -> None:
    archive = PostgresArchive(data_dir=Path("."), options=PostgresArchive.Options(),
                              clock=FakeClock(), metrics=SelfMetrics())

    with pytest.raises(ArchiveError, match="not started"):
        await archive.write([Measurement(key=SHARED, ts=T0, value=1.0)])


async def test_a_newer_schema_is_refused(pg_schema: str) -> None:
    async with postgres(pg_schema) as archive:
        await archive.write([Measurement(key=SHARED, ts=T0, value=1.0)])
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"UPDATE {pg_schema}.meta SET value = '99' WHERE key = 'schema_version'")

    with pytest.raises(ArchiveError, match="version 99"):
        async with postgres(pg_schema):
            pass


async def test_a_corrupt_log_row_fails_the_reads_of_its_shard(pg_schema: str) -> None:
    """A log row that cannot be read is an error, never silently dropped data: start-up
    does not wait for the log, so it starts; reads of that shard fail; the row stays."""
    async with postgres(pg_schema) as archive:
        await archive.write([Measurement(key=SHARED, ts=T0, value=1.0)])
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {pg_schema}.ingest_log SELECT 0, id % 64, 'x', 1,"
                     f" '\\x02dead' FROM {pg_schema}.series")

    async with postgres(pg_schema) as archive:
        with pytest.raises(ArchiveError, match="corrupt ingest log row"):
            await archive.read(SHARED, T0, T0)
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        (rows,) = conn.execute(f"SELECT count(*) FROM {pg_schema}.ingest_log").fetchone() or (0,)
    assert rows == 1


def _log_rows(schema: str) -> int:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        (rows,) = conn.execute(f"SELECT count(*) FROM {schema}.ingest_log").fetchone() or (0,)
    return int(rows)


async def _until(condition: Any, what: str) -> None:
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.parametrize("compact_in", ["thread", "process"])
async def test_the_log_is_compacted_by_age_and_vacuumed(pg_schema: str, compact_in: str) -> None:
    """Points that fill no chunk leave the log by themselves, and the log is vacuumed;
    the instance lets go of the rows it held (compacted in a thread or in a process)."""
    def vacuumed() -> bool:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            row = conn.execute("SELECT vacuum_count FROM pg_stat_user_tables WHERE"
                               " schemaname = %s AND relname = 'ingest_log'",
                               (pg_schema,)).fetchone()
        return bool(row and row[0])

    async with postgres(pg_schema, compact_after=0.05, compact_in=compact_in) as archive:
        await archive.write([Measurement(key=SHARED, ts=T0 + i, value=float(i))
                             for i in range(10)])
        await archive.write([Measurement(key=SHARED, ts=T0 + 10, value=10.0)])
        await _until(lambda: _log_rows(pg_schema) == 0, "the log drained")
        await _until(vacuumed, "the log was vacuumed")
        await _until(lambda: not any(archive._own), "the held rows let go")
        points = await archive.read(SHARED, T0, T0 + 10)
    assert points.values.tolist() == [float(i) for i in range(11)]


async def test_start_does_not_wait_for_compaction(pg_schema: str) -> None:
    """With every shard's compaction lock held elsewhere, an archive starts beside another
    one's backlog and reads it exactly; the backlog drains once the locks go."""
    async with postgres(pg_schema, compact_after=3600) as writer:
        await writer.write([Measurement(key=SHARED, ts=T0 + i, value=float(i))
                            for i in range(5)])
        with psycopg.connect(PG_DSN, autocommit=True) as locks:
            locks.execute("SELECT pg_advisory_lock(hashtext(%s), s) FROM"
                          " generate_series(0, 63) AS s", (pg_schema,))
            async with postgres(pg_schema, compact_after=0.05) as restarted:
                assert _log_rows(pg_schema) > 0
                points = await restarted.read(SHARED, T0, T0 + 10)
                assert points.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
                locks.execute("SELECT pg_advisory_unlock_all()")
                await _until(lambda: _log_rows(pg_schema) == 0, "the backlog drained")


async def test_reads_of_a_long_own_log_are_exact(pg_schema: str) -> None:
    """Many of this instance's rows in one shard (read through one view of them), the
    first ones compacted by another instance meanwhile, another writer's rows among
    them: a read gives every point once, the later write winning."""
    options = {"compact_after": 3600, "chunk_points": 1000}
    async with postgres(pg_schema, **options) as mine, postgres(pg_schema, **options) as other:
        for i in range(20):
            await mine.write([Measurement(key=SHARED, ts=T0 + i, value=float(i))])
        await other.write([Measurement(key=SHARED, ts=T0 + 5, value=500.0)])
        await other.delete(SHARED, 0, 0)  # compacts the shard first (mine cannot know)
        for i in range(20, 40):
            await mine.write([Measurement(key=SHARED, ts=T0 + i, value=float(i))])
        await other.write([Measurement(key=SHARED, ts=T0 + 25, value=2500.0)])
        await mine.write([Measurement(key=SHARED, ts=T0 + 25, value=-25.0)])
        points = await mine.read(SHARED, T0, T0 + 100)
        again = await mine.read(SHARED, T0, T0 + 100)  # from the same view
    expected = [float(i) for i in range(40)]
    expected[5], expected[25] = 500.0, -25.0
    assert points.values.tolist() == expected
    assert again.values.tolist() == expected


@pytest.mark.parametrize("many", [False, True], ids=["read", "read_floats"])
async def test_a_read_waiting_for_a_connection_sees_a_write_committed_meanwhile(
        pg_schema: str, monkeypatch: pytest.MonkeyPatch, many: bool) -> None:
    """While a read waits for a pooled connection, this instance commits another log row:
    the read must know which rows it holds as of the same moment as the copy it reads them
    from (CI once met a KeyError when the two were taken on either side of that wait)."""
    async with postgres(pg_schema, compact_after=3600, chunk_points=1000) as mine:
        await mine.write([Measurement(key=SHARED, ts=T0, value=1.0)])
        connection = mine._connection
        waited: list[bool] = []

        @asynccontextmanager
        async def pooled() -> AsyncIterator[Any]:
            if not waited:  # the read's turn: another write commits first
                waited.append(True)
                await mine.write([Measurement(key=SHARED, ts=T0 + 1, value=2.0)])
            async with connection() as conn:
                yield conn

        monkeypatch.setattr(mine, "_connection", pooled)
        if many:
            runs = await mine.read_floats([SHARED], int(T0 * 1000), int((T0 + 10) * 1000))
            got = runs.values.tolist()
        else:
            got = (await mine.read(SHARED, T0, T0 + 10)).values.tolist()
        assert waited
        assert got in ([1.0], [1.0, 2.0])
        assert (await mine.read(SHARED, T0, T0 + 10)).values.tolist() == [1.0, 2.0]


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every chunk a rollup decodes, from its summary path or by reading points."""
    from watchkeeper.archive.backends import _points, _rollups

    decoded: list[int] = []
    real, real_many = _rollups.decode_floats_ms, _points.decode_floats_many

    def counting(blob: bytes) -> Any:
        decoded.append(len(blob))
        return real(blob)

    def counting_many(blobs: Any) -> Any:
        blobs = list(blobs)
        decoded.extend(len(blob) for blob in blobs)
        return real_many(blobs)

    monkeypatch.setattr(_rollups, "decode_floats_ms", counting)
    monkeypatch.setattr(_points, "decode_floats_many", counting_many)
    return decoded


async def _write_hours(archive: PostgresArchive, keys: list[SeriesKey], day: float,
                       hours: range) -> None:
    for hour in hours:
        await archive.write([
            Measurement(key=key, ts=day + hour * 3600 + 10.0 * i, value=float(i % 50) + k)
            for k, key in enumerate(keys) for i in range(360)])


async def test_hourly_rollups_read_summaries_not_points(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hour-aligned rollup decodes no chunk: stored summaries answer it, in every
    instance, with another instance's unflushed points added from the log; the edges of
    an unaligned one decode only the chunks there."""
    from tests.contract.test_archive_contract import rollups_agree

    decoded = _count_decodes(monkeypatch)
    day = T0 - T0 % 86400
    keys = [SeriesKey.make("r", "p", f"m{i}") for i in range(3)]
    async with postgres(pg_schema, chunk_points=60) as archive:
        await _write_hours(archive, keys, day, range(48))
    async with postgres(pg_schema, chunk_points=60) as a, \
            postgres(pg_schema, chunk_points=60) as b:
        await b.write([Measurement(key=keys[0], ts=day + 48 * 3600 + 5.0 * i, value=-1.0)
                       for i in range(20)])  # in b's log, after the chunks
        for archive in (a, b):
            for start, end in ((day, day + 86400 - 0.001), (day, day + 49 * 3600)):
                decoded.clear()
                rolled = await archive.rollup(keys, start=start, end=end, step=3600,
                                              aggs=("avg", "min", "max", "count"))
                assert decoded == []
                whole = end > day + 86400
                assert [len(r.ts) for r in rolled] == [49, 48, 48] if whole else [24] * 3
                await rollups_agree(archive, keys, start, end, 3600, ("avg", "min", "max"))
            decoded.clear()
            await archive.rollup(keys, start=day + 1800, end=day + 86400 + 1, step=3600)
            assert len(decoded) == 3 * (3 + 1)  # 10-min chunks in the partial hours
            await rollups_agree(archive, keys, day + 1800, day + 86400 + 1, 3600, ("avg",))
    async with postgres(pg_schema, chunk_points=60) as archive:  # blobs fetched: only those
        for start, end in ((day + 1800, day + 86400 + 1), (day + 7200, day + 7300)):
            await _fetches_what_the_plan_needs(archive, keys, start, end)


async def _fetches_what_the_plan_needs(archive: PostgresArchive, keys: list[SeriesKey],
                                       start: float, end: float) -> None:
    from watchkeeper.archive.backends._points import window_ms
    from watchkeeper.archive.backends._rollups import RollupPlan

    sids = [archive._catalog.ids[key] for key in keys]
    plan = RollupPlan(keys, sids, *window_ms(start, end), 3_600_000, ("avg",))
    async with archive._connection() as conn:
        rows, blobs = await archive._store.summaries(conn, sids, plan.lo, plan.hi, plan.full)
    assert rows
    assert set(blobs) == {(row.sid, row.start_ms) for row in rows if plan.needs_chunk(row)}


async def test_a_version_1_schema_gets_summaries(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema of version 1 (chunks without summaries) is upgraded at start: its old
    chunks are rolled up from their points, the chunks written since from summaries."""
    from tests.contract.test_archive_contract import rollups_agree

    day = T0 - T0 % 86400
    keys = [SeriesKey.make("r", "p", f"m{i}") for i in range(2)]
    async with postgres(pg_schema, chunk_points=60) as archive:
        await _write_hours(archive, keys, day, range(6))
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {pg_schema}.chunks DROP COLUMN summary")
        conn.execute(f"UPDATE {pg_schema}.meta SET value = '1' WHERE key = 'schema_version'")

    decoded = _count_decodes(monkeypatch)
    async with postgres(pg_schema, chunk_points=60) as archive, \
            postgres(pg_schema, chunk_points=60) as second:  # finds it upgraded
        await rollups_agree(archive, keys, day, day + 6 * 3600, 3600, ("avg", "max", "count"))
        await _write_hours(archive, keys, day, range(6, 12))
        await _write_hours(second, keys, day, range(12, 14))
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        version, summarised, bare = conn.execute(
            f"SELECT (SELECT value FROM {pg_schema}.meta WHERE key = 'schema_version'),"
            f" count(*) FILTER (WHERE summary IS NOT NULL),"
            f" count(*) FILTER (WHERE summary IS NULL) FROM {pg_schema}.chunks").fetchone() or ()
    assert (version, summarised, bare) == ("2", 2 * 8 * 6, 2 * 6 * 6)
    async with postgres(pg_schema, chunk_points=60) as archive:
        decoded.clear()
        await archive.rollup(keys, start=day + 6 * 3600, end=day + 14 * 3600 - 0.001,
                             step=3600)
        assert decoded == []
        decoded.clear()
        await archive.rollup(keys, start=day, end=day + 6 * 3600 - 0.001, step=3600)
        assert len(decoded) == 2 * 6 * 6  # the old chunks
        for start, end in ((day, day + 14 * 3600), (day + 100, day + 9 * 3600 + 5)):
            await rollups_agree(archive, keys, start, end, 3600, ("avg", "min", "sum", "count"))


async def test_other_writers_rows_are_followed_and_read_exactly(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance holds another writer's log rows once it followed them: its reads and
    rollups decode none of them, and stay exact as both write over each other's points;
    once the other compacts them, the follower lets them go."""
    from watchkeeper.archive.backends import _pgheld
    from watchkeeper.archive.backends import postgres as pg_module

    options = {"compact_after": 3600, "chunk_points": 1000}
    async with postgres(pg_schema, **options) as other, postgres(pg_schema, **options) as mine:
        for i in range(30):
            await other.write([Measurement(key=SHARED, ts=T0 + i, value=float(i))])
        await mine.write([Measurement(key=SHARED, ts=T0 + 3, value=-3.0)])
        await other.write([Measurement(key=SHARED, ts=T0 + 4, value=400.0)])
        await _until(lambda: mine._upto.get(other._writer) == other._upto[other._writer],
                     "the other writer's rows followed")
        decoded: list[bytes] = []
        real = _pgheld.decode_batch

        def counting(blob: bytes) -> Any:
            decoded.append(blob)
            return real(blob)

        monkeypatch.setattr(_pgheld, "decode_batch", counting)
        monkeypatch.setattr(pg_module, "decode_batch", counting)
        points = await mine.read(SHARED, T0, T0 + 100)
        (rolled,) = await mine.rollup([SHARED], start=T0, end=T0 + 99, step=3600)
        listed, _ = await mine.list_series()
        assert decoded == []
        expected = [float(i) for i in range(30)]
        expected[3], expected[4] = -3.0, 400.0
        assert points.values.tolist() == expected
        assert rolled.values["avg"].tolist() == [sum(expected) / 30]
        assert [(m.first_ts, m.last_ts) for m in listed] == [(T0, T0 + 29)]

        await other.delete(SHARED, 0, 0)  # compacts the shard: every row leaves the log
        await mine._look(None)
        assert not any(mine._own[SHARED_SHARD(mine)])
        assert mine._followed == 0
        again = await mine.read(SHARED, T0, T0 + 100)
        assert again.values.tolist() == expected


def SHARED_SHARD(archive: PostgresArchive) -> int:  # noqa: N802 - reads as a constant
    return archive._catalog.ids[SHARED] % archive._shards


async def test_an_undecodable_row_of_another_writer_is_not_followed(pg_schema: str) -> None:
    """A follower meeting a row it cannot decode stops following that writer; the rows
    it held before stay exact, and reads of the bad row's shard fail as without it."""
    async with postgres(pg_schema, compact_after=3600) as mine:
        await mine.write([Measurement(key=SHARED, ts=T0, value=1.0)])
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"INSERT INTO {pg_schema}.ingest_log SELECT nextval("
                         f"'{pg_schema}.log_seq'), id % 64, 'x', 1, '\\x02dead'"
                         f" FROM {pg_schema}.series")
        await _until(lambda: "x" in mine._skipped, "the bad writer skipped")
        with pytest.raises(ArchiveError, match="corrupt ingest log row"):
            await mine.read(SHARED, T0, T0)


@pytest.mark.parametrize("compact_in", ["process", "thread"])
async def test_a_shard_another_instance_compacts_is_left_to_it(
    pg_schema: str, compact_in: str
) -> None:
    """Two instances on one schema: while a shard's compaction lock is held, the other
    instance leaves that shard rather than waiting its turn (after a load every instance
    marks every shard), reads from both staying exact; once another instance compacted
    the rows it marked, it compacts nothing, and lets its copies of them go."""
    options = {"compact_after": 3600, "chunk_points": 1000, "compact_in": compact_in}
    async with postgres(pg_schema, **options) as first, postgres(pg_schema, **options) as second:
        for i in range(10):
            await second.write([Measurement(key=SHARED, ts=T0 + i, value=float(i))])
        await first.write([Measurement(key=SHARED, ts=T0 + 3, value=-3.0)])
        shard = SHARED_SHARD(second)
        expected = [float(i) for i in range(10)]
        expected[3] = -3.0

        async def both_read(values: list[float]) -> None:
            for archive in (first, second):
                points = await archive.read(SHARED, T0, T0 + 100)
                assert points.values.tolist() == values

        with psycopg.connect(PG_DSN, autocommit=True) as locks:
            locks.execute("SELECT pg_advisory_lock(hashtext(%s), %s)", (pg_schema, shard))
            await second._look(None)  # marks the shard
            assert second._compactor is not None
            # Before: it waited for the lock, its connection held, as long as it was held.
            await asyncio.wait_for(asyncio.shield(second._compactor), 60)
            assert _log_rows(pg_schema) == 11
            await both_read(expected)
            locks.execute("SELECT pg_advisory_unlock_all()")

        marked = max(second._own[shard])
        await first._compact([shard])
        assert _log_rows(pg_schema) == 0
        await first.write([Measurement(key=SHARED, ts=T0 + 20, value=20.0)])
        compacted = second._compacted  # shards it compacted (since its last vacuum)
        second._mark(shard, marked)  # every row up to there was compacted by the first
        await second._compact_dirty()
        assert second._compacted == compacted
        assert not [seq for seq in second._own[shard] if seq <= marked]
        await both_read([*expected, 20.0])

        second._mark(shard, marked + 1_000_000)  # the first's new row is up to that
        await second._compact_dirty()
        assert second._compacted == compacted + 1
        assert _log_rows(pg_schema) == 0
        await both_read([*expected, 20.0])


async def test_a_killed_compaction_process_loses_nothing_and_is_replaced(
        pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``compact_in: process``: the process killed between two compactions is replaced
    at the next one; killed under a request, the request fails (the log keeps its rows,
    the caller reports it) and the one after starts a new process. Reads stay exact."""
    async with postgres(pg_schema, compact_after=3600, chunk_points=1000,
                        compact_in="process") as archive:
        await archive.write([Measurement(key=SHARED, ts=T0 + i, value=float(i))
                             for i in range(10)])
        shard = SHARED_SHARD(archive)
        compactor = archive._compaction_process
        assert compactor is not None
        await archive._compact_shard(shard, 2**62)
        assert _log_rows(pg_schema) == 0
        first = compactor._process
        assert first is not None
        assert first.is_alive()
        assert first.pid is not None

        await archive.write([Measurement(key=SHARED, ts=T0 + 10, value=10.0)])
        first.kill()
        first.join(10)
        await archive._compact_shard(shard, 2**62)  # between two: a new process
        second = compactor._process
        assert second is not None
        assert second.pid != first.pid
        assert _log_rows(pg_schema) == 0

        await archive.write([Measurement(key=SHARED, ts=T0 + 11, value=11.0)])
        pipe = compactor._pipe
        assert pipe is not None
        second.kill()
        second.join(10)

        async def dead_one() -> Any:  # as when it dies after the liveness check
            return pipe

        monkeypatch.setattr(compactor, "_started", dead_one)
        with pytest.raises(ArchiveError, match="compaction process ended"):
            await archive._compact_shard(shard, 2**62)
        assert _log_rows(pg_schema) == 1
        monkeypatch.undo()
        await archive._compact_shard(shard, 2**62)
        assert compactor._process is not None
        assert compactor._process.pid != second.pid
        assert _log_rows(pg_schema) == 0
        points = await archive.read(SHARED, T0, T0 + 20)
    assert points.values.tolist() == [float(i) for i in range(12)]
