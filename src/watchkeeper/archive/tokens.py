"""API tokens: ``Authorization: Token <key>`` for writes (and, if configured, reads).

A key is 40 random hex digits, shown once when it is created. Stores keep only its
SHA-256, so a stolen database or backup reveals no key, and nothing here logs one. A
token's *id* is the first 12 hex digits of that hash: safe to show, list and revoke by.
Rights are cumulative scopes: every token reads, ``write`` also writes, ``admin`` also
manages tokens (``/api/v1/tokens``) and so implies ``write``.

Two stores behind :class:`TokenStore`: :class:`SqliteTokenStore` (``auth.sqlite3`` in
the data directory, WAL mode with a busy timeout, so ``watchkeeper token create`` works
while a server runs on the same data) and :class:`PostgresTokenStore`.

**Revocation is immediate.** Servers cache the keys they have seen (``api.auth``), so a
store also keeps a *revision*, a counter that every revocation raises in the same
transaction as its delete. A server reads it once per request and drops its cache when
it moved: a key revoked by any process is refused by every server from the next request
on. The read is cheap: SQLite answers it from a second connection on the caller's thread
(one indexed row, ~10 µs; WAL readers never wait for writers); PostgreSQL in one round
trip that all requests arriving meanwhile share (see docs/decisions.md, D-entry on token
revocation).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
import sqlite3
from abc import ABC, abstractmethod
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final

import msgspec

from watchkeeper.errors import ArchiveError, InvalidData

DB_NAME: Final = "auth.sqlite3"
ID_DIGITS: Final = 12
_BUSY_TIMEOUT_S: Final = 10.0
_SCHEMA: Final = (
    ("CREATE TABLE IF NOT EXISTS api_tokens (key_hash TEXT PRIMARY KEY, username TEXT NOT NULL, "
     "can_write BOOLEAN NOT NULL, created BIGINT NOT NULL, last_used BIGINT)"),
    ("CREATE TABLE IF NOT EXISTS api_token_revision (id INTEGER PRIMARY KEY, "
     "revision BIGINT NOT NULL)"),
    "INSERT INTO api_token_revision (id, revision) VALUES (1, 0) ON CONFLICT DO NOTHING",
)
_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Statements of both stores, written with SQLite's "?" (PostgreSQL's "%s" replaces it).
_INSERT: Final = ("INSERT INTO api_tokens (key_hash, username, can_write, created, can_admin) "
                  "VALUES (?, ?, ?, ?, ?)")
_LOOKUP: Final = ("SELECT key_hash, username, can_write, created, last_used, can_admin "
                  "FROM api_tokens WHERE key_hash = ?")
_LIST: Final = ("SELECT key_hash, username, can_write, created, last_used, can_admin "
                "FROM api_tokens ORDER BY created, username")
_REVOKE_USER: Final = ("DELETE FROM api_tokens WHERE username = ? "
                       "RETURNING key_hash, username, can_write, created, last_used, can_admin")
_REVOKE_ID: Final = ("DELETE FROM api_tokens WHERE key_hash LIKE ? "
                     "RETURNING key_hash, username, can_write, created, last_used, can_admin")
# Added by ALTER TABLE to new and older stores alike (older rows are no admins).
_ADMIN_COLUMN: Final = "can_admin BOOLEAN NOT NULL DEFAULT FALSE"
SCOPES: Final = ("read", "write", "admin")
"""Every scope, each implying the ones before it."""
_TOUCH: Final = "UPDATE api_tokens SET last_used = ? WHERE key_hash = ?"
_REVISION: Final = "SELECT revision FROM api_token_revision WHERE id = 1"
_BUMP: Final = "UPDATE api_token_revision SET revision = revision + 1 WHERE id = 1"

Statements = list[tuple[str, tuple[Any, ...]]]


class Token(msgspec.Struct, frozen=True, kw_only=True):
    """Who a key belongs to and what it may do (never the key itself)."""

    user: str
    write: bool
    created: int
    id: str = ""
    last_used: int | None = None
    admin: bool = False

    @property
    def scopes(self) -> tuple[str, ...]:
        """The rights as words: every token reads; ``write`` also writes; ``admin`` (which
        a store only grants with ``write``) also manages tokens."""
        return SCOPES[:3 if self.admin else 2 if self.write else 1]


def new_key() -> str:
    """A fresh key: 40 random hex digits (160 bits), like DRF's tokens."""
    return secrets.token_hex(20)


def key_hash(key: str) -> str:
    """What a store keeps of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key: str) -> str:
    """The id shown for a key: the start of its hash."""
    return key_hash(key)[:ID_DIGITS]


def _check_user(user: str) -> None:
    if not user or len(user) > 150 or any(c.isspace() for c in user):
        raise InvalidData("must be 1 to 150 characters without spaces", field="user",
                          value=user)


def _check_id(token_id: str) -> None:
    # Exactly an id as listed: a shorter prefix could name (and revoke) several tokens.
    if len(token_id) != ID_DIGITS or any(c not in "0123456789abcdef" for c in token_id):
        raise InvalidData(f"a token id is {ID_DIGITS} lowercase hex digits, as `watchkeeper "
                          "token list` shows it", field="id", value=token_id)


def _token(row: tuple[Any, ...]) -> Token:
    digest, user, write, created, last_used, admin = row
    return Token(user=user, write=bool(write or admin), created=int(created),
                 id=digest[:ID_DIGITS], admin=bool(admin),
                 last_used=None if last_used is None else int(last_used))


class TokenStore(ABC):
    """Keys (hashed) and the users and rights they stand for."""

    @abstractmethod
    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Open (creating if needed); close when the stack unwinds."""

    @abstractmethod
    async def create(self, user: str, *, write: bool, now: int, admin: bool = False) -> str:
        """Make a key for ``user`` (``admin`` implies ``write``); returns the key, which
        is not stored."""

    @abstractmethod
    async def lookup(self, key: str) -> Token | None:
        """The token a key stands for, or None."""

    @abstractmethod
    async def tokens(self) -> list[Token]:
        """Every token, oldest first."""

    @abstractmethod
    async def revoke(self, *, user: str | None = None, token_id: str | None = None
                     ) -> list[Token]:
        """Delete the tokens of ``user`` or the one with ``token_id``; the revision
        moves in the same transaction. Returns what was revoked."""

    @abstractmethod
    async def touch(self, key: str, now: int) -> None:
        """Record that ``key`` was used at ``now`` (epoch seconds)."""

    @abstractmethod
    async def revision(self) -> int:
        """A number that changes whenever a token is revoked, read fresh from the store."""


def _revoke_statement(user: str | None, token_id: str | None) -> tuple[str, tuple[str]]:
    if (user is None) == (token_id is None):
        raise InvalidData("name either a user or a token id", field="revoke")
    if token_id is not None:
        _check_id(token_id)
        return _REVOKE_ID, (f"{token_id}%",)
    _check_user(user or "")
    return _REVOKE_USER, (user or "",)


class _SqlTokenStore(TokenStore):
    """The statements both stores run; a subclass runs them (``_run``) in its database."""

    _PARAM = "?"

    async def create(self, user: str, *, write: bool, now: int, admin: bool = False) -> str:
        _check_user(user)
        key = new_key()
        await self._sql(_INSERT, key_hash(key), user, write or admin, now, admin)
        return key

    async def lookup(self, key: str) -> Token | None:
        rows = await self._sql(_LOOKUP, key_hash(key))
        return _token(rows[0]) if rows else None

    async def tokens(self) -> list[Token]:
        return [_token(row) for row in await self._sql(_LIST)]

    async def revoke(self, *, user: str | None = None, token_id: str | None = None
                     ) -> list[Token]:
        sql, params = _revoke_statement(user, token_id)
        rows = await self._run([(self._param(sql), params), (_BUMP, ())])
        return sorted((_token(row) for row in rows), key=lambda t: (t.created, t.id))

    async def touch(self, key: str, now: int) -> None:
        await self._sql(_TOUCH, now, key_hash(key))

    def _param(self, sql: str) -> str:
        return sql if self._PARAM == "?" else sql.replace("?", self._PARAM)

    async def _sql(self, sql: str, *params: Any) -> list[Any]:
        return await self._run([(self._param(sql), params)])

    @abstractmethod
    async def _run(self, statements: Statements) -> list[Any]:
        """Run ``statements`` in one transaction; the first one's rows are the answer."""


class SqliteTokenStore(_SqlTokenStore):
    """Tokens in ``data_dir/auth.sqlite3``, its own file, writable by several processes."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DB_NAME
        self._lock = asyncio.Lock()
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    async def start(self, exit_stack: AsyncExitStack) -> None:
        await asyncio.to_thread(self._open)
        exit_stack.push_async_callback(asyncio.to_thread, self._close)

    async def revision(self) -> int:
        # On the caller's thread, on a connection of its own: one indexed row from a WAL
        # snapshot costs ~10 µs, less than a hop to a worker thread.
        if self._reader is None:
            raise ArchiveError("the token store is not started")
        try:
            # fetchall: the statement runs to its end, so no read transaction (and no old
            # snapshot) outlives the call.
            rows = self._reader.execute(_REVISION).fetchall()
        except sqlite3.Error as exc:
            raise ArchiveError(f"{self.path}: {exc}") from exc
        return int(rows[0][0]) if rows else 0

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(api_tokens)")}
            if "last_used" not in columns:  # a store made before last_used existed
                db.execute("ALTER TABLE api_tokens ADD COLUMN last_used BIGINT")
            if "can_admin" not in columns:
                db.execute(f"ALTER TABLE api_tokens ADD COLUMN {_ADMIN_COLUMN}")
            db.execute("COMMIT")
            self._reader = self._connect()
        except BaseException:
            db.close()
            raise
        self._db = db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        return db

    def _close(self) -> None:
        for db in (self._db, self._reader):
            if db is not None:
                db.close()
        self._db = self._reader = None

    async def _run(self, statements: Statements) -> list[Any]:
        async with self._lock:  # one transaction at a time on the shared connection
            return await asyncio.to_thread(self._execute, statements)

    def _execute(self, statements: Statements) -> list[Any]:
        db = self._db
        if db is None:
            raise ArchiveError("the token store is not started")
        try:
            if len(statements) == 1:
                return db.execute(*statements[0]).fetchall()
            return self._transaction(db, statements)
        except sqlite3.Error as exc:
            raise ArchiveError(f"{self.path}: {exc}") from exc

    @staticmethod
    def _transaction(db: sqlite3.Connection, statements: Statements) -> list[Any]:
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(*statements[0]).fetchall()
            for statement in statements[1:]:
                db.execute(*statement)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return rows


class PostgresTokenStore(_SqlTokenStore):
    """Tokens in the ``api_tokens`` table of a PostgreSQL database (psycopg 3), in
    ``schema`` when given (created if missing), else where the DSN's search_path says."""

    _PARAM = "%s"

    def __init__(self, dsn: str, *, schema: str | None = None) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise InvalidData("must be a lowercase SQL name", field="schema", value=schema)
        self.dsn = dsn
        self.schema = schema
        self._lock = asyncio.Lock()
        self._conn: Any = None
        self._probe: Any = None
        self._next: asyncio.Future[int] | None = None
        self._reading: asyncio.Task[None] | None = None

    async def start(self, exit_stack: AsyncExitStack) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ArchiveError("the PostgreSQL token store needs psycopg: "
                               "pip install 'watchkeeper[postgres]'") from exc
        exit_stack.push_async_callback(self._close)
        try:
            self._conn = await self._connect(psycopg)
            async with self._conn.transaction():
                # Servers starting together must not race on CREATE TABLE.
                await self._conn.execute("SELECT pg_advisory_xact_lock(7285830213)")
                if self.schema is not None:
                    await self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                for statement in _SCHEMA:
                    await self._conn.execute(statement)
                await self._conn.execute(
                    "ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS last_used BIGINT")
                await self._conn.execute(
                    f"ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS {_ADMIN_COLUMN}")
            self._probe = await self._connect(psycopg)
        except psycopg.Error as exc:
            raise ArchiveError(f"PostgreSQL token store: {exc}") from exc

    async def _connect(self, psycopg: Any) -> Any:
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        if self.schema is not None:
            await conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    async def _close(self) -> None:
        await self._stop_reading()
        for conn in (self._conn, self._probe):
            if conn is not None:
                await conn.close()

    async def _usable(self, name: str) -> Any:
        """The connection ``name`` (_conn or _probe), opened again if it was lost (a
        server restart, a killed backend): one failed request, not a dead store."""
        import psycopg

        conn = getattr(self, name)
        if conn.closed:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
            conn = await self._connect(psycopg)
            setattr(self, name, conn)
        return conn

    async def revision(self) -> int:
        """One round trip, shared: a caller joins the next read to *start*, never one
        already under way (it might predate a revocation the caller must see)."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._reading is None or self._reading.done():
                self._reading = asyncio.create_task(self._read_revisions())
        return await asyncio.shield(self._next)

    async def _read_revisions(self) -> None:
        import psycopg

        while self._next is not None:
            waiting, self._next = self._next, None
            try:
                row = await self._read_revision(psycopg)
            except asyncio.CancelledError:  # closing: never leave a caller hanging
                waiting.set_exception(ArchiveError("the token store is closed"))
                raise
            except psycopg.Error as exc:
                waiting.set_exception(ArchiveError(f"PostgreSQL token store: {exc}"))
            else:
                waiting.set_result(int(row[0]) if row else 0)

    async def _read_revision(self, psycopg: Any) -> Any:
        probe = await self._usable("_probe")
        try:
            cursor = await probe.execute(_REVISION)
            return await cursor.fetchone()
        except psycopg.OperationalError:
            if not probe.closed:
                raise
        probe = await self._usable("_probe")  # lost: a read may be repeated, once
        cursor = await probe.execute(_REVISION)
        return await cursor.fetchone()

    async def _stop_reading(self) -> None:
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)

    async def _run(self, statements: Statements) -> list[Any]:
        import psycopg

        if self._conn is None:
            raise ArchiveError("the token store is not started")
        async with self._lock:
            try:
                await self._usable("_conn")
                if len(statements) == 1:  # autocommit: one round trip
                    rows = await self._fetch(*statements[0])
                else:
                    rows = await self._transaction(statements)
            except psycopg.Error as exc:
                raise ArchiveError(f"PostgreSQL token store: {exc}") from exc
        return rows

    async def _transaction(self, statements: Statements) -> list[Any]:
        async with self._conn.transaction():
            rows = await self._fetch(*statements[0])
            for statement in statements[1:]:
                await self._conn.execute(*statement)
        return rows

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        cursor = await self._conn.execute(sql, params)
        return list(await cursor.fetchall()) if cursor.description else []
