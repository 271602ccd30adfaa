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


async def test_a_corrupt_log_row_stops_the_start(pg_schema: str) -> None:
    """A log row that cannot be read is an error, never silently dropped data."""
    async with postgres(pg_schema) as archive:
        await archive.write([Measurement(key=SHARED, ts=T0, value=1.0)])
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {pg_schema}.ingest_log VALUES (0, 0, 'x', 1, '\\x02dead')")

    with pytest.raises(ArchiveError, match="corrupt ingest log row"):
        async with postgres(pg_schema):
            pass
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        (rows,) = conn.execute(f"SELECT count(*) FROM {pg_schema}.ingest_log").fetchone() or (0,)
    assert rows == 1
