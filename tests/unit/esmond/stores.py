"""Metadata and token stores under test: SQLite, and PostgreSQL in a schema of its own.

PostgreSQL is the real server ``scripts/services`` starts (127.0.0.1:5432, trust auth,
user postgres, database watchkeeper_test); each test gets a fresh schema, dropped after.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=watchkeeper_test"
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.external_service)]


@asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """A DSN whose search_path is a new, empty schema (dropped at the end)."""
    import psycopg

    schema = f"esmond_test_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as admin:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{PG_DSN} options='-c search_path={schema}'"
        finally:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@asynccontextmanager
async def store_location(kind: str, tmp_path: Path) -> AsyncIterator[str | Path]:
    """Where a store of ``kind`` lives: a data directory, or a PostgreSQL DSN."""
    if kind == "sqlite":
        yield tmp_path
    else:
        async with pg_schema() as dsn:
            yield dsn
