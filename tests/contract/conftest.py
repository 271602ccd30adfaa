"""Archive fixtures: every backend behind one parametrized ``archive`` fixture.

To run the contract suite against another backend, add one line to ``BACKENDS``
(mark it ``external_service`` when it needs a server).

The PostgreSQL backend gets a schema of its own per test (dropped afterwards, after
checking that closing the archives left no connection open), in the database of
``WATCHKEEPER_TEST_PG_DSN`` (default: the ``watchkeeper_test`` database on 127.0.0.1
that ``scripts/services up`` starts).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.archive import Archive
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.backends.postgres import DEFAULT_DSN, PostgresArchive
from watchkeeper.clock import FakeClock
from watchkeeper.telemetry import SelfMetrics

PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG_DSN", DEFAULT_DSN)


@dataclass(frozen=True)
class Backend:
    """A backend under test, and what the suite may expect of it."""

    cls: type[Archive]
    durable: bool = True  # keeps its data across instances on the same data_dir
    several_writers: bool = False  # several instances may write the same data at once
    needs_schema: bool = False  # gets a PostgreSQL schema of its own per test


BACKENDS = [
    pytest.param(Backend(MemoryArchive, durable=False), id="memory"),
    pytest.param(Backend(EmbeddedArchive), id="embedded"),
    pytest.param(Backend(PostgresArchive, several_writers=True, needs_schema=True),
                 id="postgres", marks=pytest.mark.external_service),
]

OpenArchive = Callable[..., AbstractAsyncContextManager[Archive]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    param: Backend = request.param
    return param


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name; the schema is dropped after the test, which must leave no
    connection behind."""
    import psycopg

    schema = f"wk_test_{uuid.uuid4().hex[:16]}"
    yield schema
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for _ in range(50):  # a closed connection's backend takes a moment to go away
            (left,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (f"watchkeeper:{schema}",),
            ).fetchone() or (0,)
            if not left:
                break
            time.sleep(0.05)
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    assert left == 0, f"{left} connections of the archive were left open"


@pytest.fixture
def base_options(backend: Backend, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Options every instance opened in this test gets (where its data lives)."""
    if backend.needs_schema:
        return {"dsn": PG_DSN, "schema": request.getfixturevalue("pg_schema")}
    return {}


@pytest.fixture
def open_archive(backend: Backend, tmp_path: Path, base_options: dict[str, Any]) -> OpenArchive:
    """Open (and on exit close) an instance of the backend on this test's data."""

    @asynccontextmanager
    async def open_(**options: Any) -> AsyncIterator[Archive]:
        async with AsyncExitStack() as stack:
            archive = backend.cls(
                data_dir=tmp_path,
                options=backend.cls.Options(**base_options, **options),
                clock=FakeClock(),
                metrics=SelfMetrics(),
            )
            await archive.start(stack)
            yield archive

    return open_


@pytest.fixture
async def archive(open_archive: OpenArchive) -> AsyncIterator[Archive]:
    async with open_archive() as opened:
        yield opened
