"""The PostgreSQL metadata store (psycopg 3, async): esmond's relational part in PostgreSQL.

Same tables and queries as the SQLite store (:mod:`._sql`); keys sort bytewise
(``COLLATE "C"``) so pages come out in the same order. Several servers may share the
database: metadata creation is de-duplicated by the unique checksum (``ON CONFLICT``),
and the schema is created under an advisory lock.

**Writers take turns per metadata and event type** (:meth:`writing`): a session
advisory lock per pair, held on a connection of its own while the points and summaries are read,
folded and stored, and a counter of turns in ``esmond_writes``, raised (and committed)
as the turn begins, before anything is stored: a writer that dies mid-turn leaves the
counter raised, so the others still know their caches are stale. The locks go with the
connection if the process dies.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final

from watchkeeper.archive.esmond import _sql
from watchkeeper.archive.esmond.abc import MetadataQuery, MetadataStore
from watchkeeper.archive.esmond.model import Metadata, MetadataSpec, new_key
from watchkeeper.errors import ArchiveError

_SCHEMA_LOCK: Final = 0x65736D6F6E64  # "esmond"
_WRITE_LOCKS: Final = 0x65736D77  # "esmw": the first half of every writing lock id
# Locks in the order given (unnest keeps it; every process sorts the same way, so two
# turns never wait for each other crosswise), then counts the turn.
_BEGIN_TURN: Final = """
    WITH locked AS (SELECT count(pg_advisory_lock(%s, h)) FROM unnest(%s::int[]) AS u(h))
    INSERT INTO esmond_writes AS w (metadata_key, event_type, turns)
    SELECT k, e, 1 FROM unnest(%s::text[], %s::text[]) AS u(k, e), locked
    ON CONFLICT (metadata_key, event_type) DO UPDATE SET turns = w.turns + 1
    RETURNING metadata_key, event_type, turns"""
SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS esmond_metadata (
        id BIGSERIAL PRIMARY KEY,
        metadata_key TEXT COLLATE "C" NOT NULL UNIQUE,
        checksum TEXT NOT NULL UNIQUE,
        subject_type TEXT NOT NULL,
        source TEXT, destination TEXT, measurement_agent TEXT, tool_name TEXT,
        input_source TEXT, input_destination TEXT)""",
    "CREATE INDEX IF NOT EXISTS esmond_metadata_source ON esmond_metadata (source)",
    "CREATE INDEX IF NOT EXISTS esmond_metadata_destination ON esmond_metadata (destination)",
    """CREATE TABLE IF NOT EXISTS esmond_event_types (
        metadata_id BIGINT NOT NULL REFERENCES esmond_metadata (id),
        event_type TEXT NOT NULL,
        summary_type TEXT NOT NULL,
        summary_window BIGINT NOT NULL,
        time_updated BIGINT,
        PRIMARY KEY (metadata_id, event_type, summary_type, summary_window))""",
    "CREATE INDEX IF NOT EXISTS esmond_event_types_updated ON esmond_event_types (time_updated)",
    """CREATE TABLE IF NOT EXISTS esmond_parameters (
        metadata_id BIGINT NOT NULL REFERENCES esmond_metadata (id),
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (metadata_id, position))""",
    "CREATE INDEX IF NOT EXISTS esmond_parameters_name ON esmond_parameters (name, value)",
    """CREATE TABLE IF NOT EXISTS esmond_writes (
        metadata_key TEXT COLLATE "C" NOT NULL,
        event_type TEXT NOT NULL,
        turns BIGINT NOT NULL,
        PRIMARY KEY (metadata_key, event_type))""",
)


class PostgresMetadataStore(MetadataStore):
    """Metadata in the PostgreSQL database ``dsn`` names (tables ``esmond_*``)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = asyncio.Lock()
        self._conn: Any = None
        self._turns = asyncio.Lock()
        self._turn_conn: Any = None

    async def start(self, exit_stack: AsyncExitStack) -> None:
        psycopg = _psycopg()
        try:
            self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            async with self._conn.transaction():
                await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in SCHEMA:
                    await self._conn.execute(statement)
        except psycopg.Error as exc:
            raise ArchiveError(f"PostgreSQL metadata store: {exc}") from exc
        exit_stack.push_async_callback(self._close)

    async def create(self, spec: MetadataSpec, *, key: str | None = None) -> tuple[Metadata, bool]:
        checksum = spec.checksum
        metadata = spec.stored(key or new_key())
        async with self._session() as conn, conn.transaction():
            cursor = await conn.execute(
                _sql.INSERT_METADATA + " ON CONFLICT (checksum) DO NOTHING RETURNING id",
                _sql.metadata_params(metadata.key, checksum, metadata))
            row = await cursor.fetchone()
            if row is not None:
                await self._insert_details(conn, row[0], metadata)
                created, stored_key = True, metadata.key
            else:
                cursor = await conn.execute(_sql.BY_CHECKSUM, (checksum,))
                created, stored_key = False, (await cursor.fetchone())[0]
        found, _ = await self.search(MetadataQuery(metadata_key=stored_key), limit=1)
        return found[0], created

    async def search(self, query: MetadataQuery, *, limit: int | None,
                     offset: int = 0) -> tuple[list[Metadata], int]:
        where_sql, params = _sql.where(query)
        page_sql, page_params = _sql.page_sql(where_sql, limit, offset, "ALL")
        async with self._session() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            total = (await (await conn.execute(_sql.count_sql(where_sql), params)
                            ).fetchone())[0]
            heads = await (await conn.execute(page_sql, [*params, *page_params])).fetchall()
            ids = [head[0] for head in heads]
            if not ids:
                return [], int(total)
            rows_sql, params_sql = _sql.details_sql(len(ids))
            rows = await (await conn.execute(rows_sql, ids)).fetchall()
            parameters = await (await conn.execute(params_sql, ids)).fetchall()
        return _sql.assemble(heads, rows, parameters), int(total)

    async def touch(self, touched: Sequence[tuple[str, str]], now: int) -> None:
        if not touched:
            return
        async with self._session() as conn, conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(_sql.TOUCH, [(now, et, key) for key, et in touched])

    @asynccontextmanager
    async def writing(self, series: Sequence[tuple[str, str]]
                      ) -> AsyncIterator[Mapping[tuple[str, str], int]]:
        unique = sorted(set(series))
        hashes = sorted({_lock_id(*pair) for pair in unique})
        keys, event_types = [k for k, _ in unique], [e for _, e in unique]
        psycopg = _psycopg()
        async with self._turns:
            try:
                conn = await self._turn_connection()
                rows = await (await conn.execute(
                    _BEGIN_TURN, (_WRITE_LOCKS, hashes, keys, event_types))).fetchall()
            except psycopg.Error as exc:
                await self._drop_turn_connection()  # with it, any lock it took
                raise ArchiveError(f"PostgreSQL metadata store: {exc}") from exc
            try:
                yield {(key, event_type): int(turns) for key, event_type, turns in rows}
            finally:
                try:
                    await conn.execute("SELECT pg_advisory_unlock_all()")
                except psycopg.Error:
                    await self._drop_turn_connection()

    async def _turn_connection(self) -> Any:
        if self._conn is None:
            raise ArchiveError("the PostgreSQL metadata store is not started")
        if self._turn_conn is None or self._turn_conn.closed or self._turn_conn.broken:
            self._turn_conn = await _psycopg().AsyncConnection.connect(self.dsn,
                                                                       autocommit=True)
        return self._turn_conn

    async def _drop_turn_connection(self) -> None:
        conn, self._turn_conn = self._turn_conn, None
        if conn is not None:
            await conn.close()

    async def load(self, metadata: Metadata, checksum: str) -> None:
        async with self._session() as conn, conn.transaction():
            row = await (await conn.execute(_sql.ID_OF_KEY, (metadata.key,))).fetchone()
            if row is not None:
                for statement in _sql.DELETE_METADATA:
                    await conn.execute(statement, (row[0],))
            cursor = await conn.execute(_sql.INSERT_METADATA + " RETURNING id",
                                        _sql.metadata_params(metadata.key, checksum, metadata))
            await self._insert_details(conn, (await cursor.fetchone())[0], metadata)

    async def _insert_details(self, conn: Any, mid: int, metadata: Metadata) -> None:
        async with conn.cursor() as cursor:
            await cursor.executemany(_sql.INSERT_ROW, [
                (mid, r.event_type, r.summary_type, r.summary_window, r.time_updated)
                for r in metadata.event_types])
            if metadata.parameters:
                await cursor.executemany(_sql.INSERT_PARAMETER, [
                    (mid, i, name, value) for i, (name, value) in enumerate(metadata.parameters)])

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[Any]:
        """The connection, one user at a time (reconnecting if it broke); database errors
        become ArchiveError."""
        if self._conn is None:
            raise ArchiveError("the PostgreSQL metadata store is not started")
        psycopg = _psycopg()
        async with self._lock:
            try:
                if self._conn.closed or self._conn.broken:
                    self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                yield self._conn
            except psycopg.Error as exc:
                raise ArchiveError(f"PostgreSQL metadata store: {exc}") from exc

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        async with self._turns:
            await self._drop_turn_connection()


def _lock_id(key: str, event_type: str) -> int:
    """The second half of a pair's lock id: a stable 32-bit hash (two pairs that collide
    merely take turns with each other)."""
    return zlib.crc32(f"{key}/{event_type}".encode()) - 2**31


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ArchiveError("the PostgreSQL metadata store needs psycopg: "
                           "pip install 'watchkeeper[postgres]'") from exc
    return psycopg
