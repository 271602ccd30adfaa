"""The token stores' failures: named, never half-done, never leaving a caller waiting."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.unit.esmond.stores import PG_DSN
from watchkeeper.archive.tokens import PostgresTokenStore, SqliteTokenStore
from watchkeeper.errors import ArchiveError


async def test_a_store_not_started_says_so(tmp_path: Path) -> None:
    """Every operation of a store that was never started is an ArchiveError."""
    for store in (SqliteTokenStore(tmp_path), PostgresTokenStore(PG_DSN)):
        with pytest.raises(ArchiveError, match="not started"):
            await store.create("a", write=False, now=1)
    with pytest.raises(ArchiveError, match="not started"):
        await SqliteTokenStore(tmp_path).revision()


async def test_sqlite_failures_name_the_file_and_a_failed_revoke_deletes_nothing(
        tmp_path: Path) -> None:
    """Without its revision row a revocation cannot move the revision, so it deletes
    nothing (one transaction); reading the revision then fails, naming the file."""
    async with AsyncExitStack() as stack:
        store = SqliteTokenStore(tmp_path)
        await store.start(stack)
        await store.create("kept", write=True, now=1)
        with sqlite3.connect(tmp_path / "auth.sqlite3") as db:
            db.execute("DROP TABLE api_token_revision")
        db.close()
        with pytest.raises(ArchiveError, match=r"auth\.sqlite3"):
            await store.revoke(user="kept")
        assert [t.user for t in await store.tokens()] == ["kept"]
        with pytest.raises(ArchiveError, match=r"auth\.sqlite3"):
            await store.revision()


@pytest.mark.external_service
async def test_postgres_in_a_schema_of_its_own() -> None:
    """With ``schema`` the tables go there (created if missing); concurrent revision
    reads share round trips; a broken table is an ArchiveError, for reads of the
    revision too, and a revocation that cannot move it deletes nothing."""
    import psycopg

    schema = f"tokens_test_{uuid.uuid4().hex[:10]}"
    try:
        async with AsyncExitStack() as stack:
            store = PostgresTokenStore(PG_DSN, schema=schema)
            await store.start(stack)
            await store.create("kept", write=True, now=1)
            assert len(set(await asyncio.gather(*(store.revision() for _ in range(20))))) == 1
            async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as c:
                await c.execute(f'DROP TABLE "{schema}".api_token_revision')
            with pytest.raises(ArchiveError, match="PostgreSQL token store"):
                await store.revoke(user="kept")
            assert [t.user for t in await store.tokens()] == ["kept"]
            with pytest.raises(ArchiveError, match="PostgreSQL token store"):
                await store.revision()
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.external_service
async def test_postgres_that_cannot_be_reached_is_an_archive_error() -> None:
    """Start-up names the store; nothing is left open."""
    async with AsyncExitStack() as stack:
        store = PostgresTokenStore("host=127.0.0.1 port=9 user=x dbname=x connect_timeout=2")
        with pytest.raises(ArchiveError, match="PostgreSQL token store"):
            await store.start(stack)


@pytest.mark.external_service
async def test_postgres_connections_lost_are_opened_again() -> None:
    """A killed backend (a database restart): the revision read reconnects and answers at
    once; a statement on the lost main connection fails once, the next one works."""
    import psycopg

    schema = f"tokens_test_{uuid.uuid4().hex[:10]}"
    try:
        async with AsyncExitStack() as stack:
            store = PostgresTokenStore(PG_DSN, schema=schema)
            await store.start(stack)
            key = await store.create("u", write=True, now=1)
            before = await store.revision()
            async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as admin:
                for conn in (store._probe, store._conn):  # the backends to kill
                    await admin.execute("SELECT pg_terminate_backend(%s)",
                                        (conn.info.backend_pid,))
            assert await store.revision() == before
            with pytest.raises(ArchiveError, match="PostgreSQL token store"):
                await store.lookup(key)
            found = await store.lookup(key)
            assert found is not None
            assert found.user == "u"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
