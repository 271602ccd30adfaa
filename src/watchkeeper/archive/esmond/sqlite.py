"""The embedded metadata store: ``esmond.sqlite3`` in the data directory.

Its own SQLite file in WAL mode, apart from the archive's (whose single writer holds
an exclusive lock): any number of processes may read and write it, writers waiting for
each other through ``busy_timeout``. Every write commits with ``synchronous=FULL``.
The connection belongs to one thread per store, so the event loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

from watchkeeper.archive.esmond import _sql
from watchkeeper.archive.esmond.abc import MetadataQuery, MetadataStore
from watchkeeper.archive.esmond.model import Metadata, MetadataSpec, new_key
from watchkeeper.errors import ArchiveError

DB_NAME: Final = "esmond.sqlite3"
BUSY_TIMEOUT_MS: Final = 10_000

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS esmond_metadata (
    id INTEGER PRIMARY KEY,
    metadata_key TEXT NOT NULL UNIQUE,
    checksum TEXT NOT NULL UNIQUE,
    subject_type TEXT NOT NULL,
    source TEXT, destination TEXT, measurement_agent TEXT, tool_name TEXT,
    input_source TEXT, input_destination TEXT
);
CREATE INDEX IF NOT EXISTS esmond_metadata_source ON esmond_metadata (source);
CREATE INDEX IF NOT EXISTS esmond_metadata_destination ON esmond_metadata (destination);
CREATE TABLE IF NOT EXISTS esmond_event_types (
    metadata_id INTEGER NOT NULL REFERENCES esmond_metadata (id),
    event_type TEXT NOT NULL,
    summary_type TEXT NOT NULL,
    summary_window INTEGER NOT NULL,
    time_updated INTEGER,
    PRIMARY KEY (metadata_id, event_type, summary_type, summary_window)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS esmond_event_types_updated ON esmond_event_types (time_updated);
CREATE TABLE IF NOT EXISTS esmond_parameters (
    metadata_id INTEGER NOT NULL REFERENCES esmond_metadata (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (metadata_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS esmond_parameters_name ON esmond_parameters (name, value);
"""

_T = TypeVar("_T")


def _q(sql: str) -> str:
    return sql.replace("%s", "?")


class SqliteMetadataStore(MetadataStore):
    """Metadata in ``data_dir/esmond.sqlite3``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DB_NAME
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    async def start(self, exit_stack: AsyncExitStack) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wk-esmond")
        exit_stack.callback(self._executor.shutdown)
        await self._call(self._open)
        exit_stack.push_async_callback(self._call, self._close)

    async def create(self, spec: MetadataSpec, *, key: str | None = None) -> tuple[Metadata, bool]:
        return await self._call(self._create, spec, key or new_key())

    async def search(self, query: MetadataQuery, *, limit: int | None,
                     offset: int = 0) -> tuple[list[Metadata], int]:
        return await self._call(self._search, query, limit, offset)

    async def touch(self, touched: Sequence[tuple[str, str]], now: int) -> None:
        if touched:
            await self._call(self._touch, touched, now)

    async def load(self, metadata: Metadata, checksum: str) -> None:
        await self._call(self._load, metadata, checksum)

    # -- on the store's thread ----------------------------------------------------------

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            with _transaction(db):
                _run_script(db, SCHEMA)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _create(self, spec: MetadataSpec, key: str) -> tuple[Metadata, bool]:
        db = self._conn()
        checksum = spec.checksum
        with _transaction(db):
            found = db.execute(_q(_sql.BY_CHECKSUM), (checksum,)).fetchone()
            if found is None:
                self._insert(db, spec.stored(key), checksum)
                key_now, created = key, True
            else:
                key_now, created = found[0], False
        stored, _ = self._search(MetadataQuery(metadata_key=key_now), 1, 0)
        return stored[0], created

    def _insert(self, db: sqlite3.Connection, metadata: Metadata, checksum: str) -> None:
        cursor = db.execute(_q(_sql.INSERT_METADATA),
                            _sql.metadata_params(metadata.key, checksum, metadata))
        mid = cursor.lastrowid
        db.executemany(_q(_sql.INSERT_ROW), [
            (mid, r.event_type, r.summary_type, r.summary_window, r.time_updated)
            for r in metadata.event_types])
        db.executemany(_q(_sql.INSERT_PARAMETER), [
            (mid, i, name, value) for i, (name, value) in enumerate(metadata.parameters)])

    def _load(self, metadata: Metadata, checksum: str) -> None:
        db = self._conn()
        with _transaction(db):
            found = db.execute(_q(_sql.ID_OF_KEY), (metadata.key,)).fetchone()
            if found is not None:
                for statement in _sql.DELETE_METADATA:
                    db.execute(_q(statement), (found[0],))
            self._insert(db, metadata, checksum)

    def _search(self, query: MetadataQuery, limit: int | None,
                offset: int) -> tuple[list[Metadata], int]:
        db = self._conn()
        where_sql, params = _sql.where(query)
        with _transaction(db, write=False):  # one snapshot for the count and the page
            total = db.execute(_q(_sql.count_sql(where_sql)), params).fetchone()[0]
            page_sql, page_params = _sql.page_sql(where_sql, limit, offset, "-1")
            heads = db.execute(_q(page_sql), [*params, *page_params]).fetchall()
            ids = [head[0] for head in heads]
            if not ids:
                return [], total
            rows_sql, params_sql = _sql.details_sql(len(ids))
            rows = db.execute(_q(rows_sql), ids).fetchall()
            parameters = db.execute(_q(params_sql), ids).fetchall()
        return _sql.assemble(heads, rows, parameters), total

    def _touch(self, touched: Sequence[tuple[str, str]], now: int) -> None:
        db = self._conn()
        with _transaction(db):
            db.executemany(_q(_sql.TOUCH), [(now, et, key) for key, et in touched])

    # -- plumbing -------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ArchiveError("the esmond metadata store is not started")
        return self._db

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._executor is None:
            raise ArchiveError("the esmond metadata store is not started")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except sqlite3.Error as exc:
            raise ArchiveError(f"{self.path}: {exc}") from exc


@contextmanager
def _transaction(db: sqlite3.Connection, *, write: bool = True) -> Iterator[None]:
    """BEGIN IMMEDIATE (plain BEGIN for reads) ... COMMIT, or ROLLBACK on error."""
    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the current transaction (executescript commits)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
