"""API tokens: ``Authorization: Token <key>`` for writes (and, if configured, reads).

A key is 40 random hex digits, shown once when it is created. Stores keep only its
SHA-256, so a stolen database or backup reveals no key, and nothing here logs one.

Two stores behind :class:`TokenStore`: :class:`SqliteTokenStore` (``auth.sqlite3`` in
the data directory, WAL mode with a busy timeout, so ``watchkeeper token create`` works
while a server runs on the same data) and :class:`PostgresTokenStore`.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
from abc import ABC, abstractmethod
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final

import msgspec

from watchkeeper.errors import ArchiveError, InvalidData

DB_NAME: Final = "auth.sqlite3"
_BUSY_TIMEOUT_S: Final = 10.0
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS api_tokens (key_hash TEXT PRIMARY KEY, username TEXT NOT NULL, "
    "can_write BOOLEAN NOT NULL, created BIGINT NOT NULL)"
)


class Token(msgspec.Struct, frozen=True, kw_only=True):
    """Who a key belongs to and what it may do (never the key itself)."""

    user: str
    write: bool
    created: int


def new_key() -> str:
    """A fresh key: 40 random hex digits (160 bits), like DRF's tokens."""
    return secrets.token_hex(20)


def key_hash(key: str) -> str:
    """What a store keeps of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _check_user(user: str) -> None:
    if not user or len(user) > 150 or any(c.isspace() for c in user):
        raise InvalidData("must be 1 to 150 characters without spaces", field="user",
                          value=user)


class TokenStore(ABC):
    """Keys (hashed) and the users and rights they stand for."""

    @abstractmethod
    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Open (creating if needed); close when the stack unwinds."""

    @abstractmethod
    async def create(self, user: str, *, write: bool, now: int) -> str:
        """Make a key for ``user``; returns the key, which is not stored."""

    @abstractmethod
    async def lookup(self, key: str) -> Token | None:
        """The token a key stands for, or None."""


class SqliteTokenStore(TokenStore):
    """Tokens in ``data_dir/auth.sqlite3``, its own file, writable by several processes."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DB_NAME
        self._lock = asyncio.Lock()
        self._db: sqlite3.Connection | None = None

    async def start(self, exit_stack: AsyncExitStack) -> None:
        await asyncio.to_thread(self._open)
        exit_stack.push_async_callback(asyncio.to_thread, self._close)

    async def create(self, user: str, *, write: bool, now: int) -> str:
        _check_user(user)
        key = new_key()
        await self._run("INSERT INTO api_tokens (key_hash, username, can_write, created) "
                        "VALUES (?, ?, ?, ?)", (key_hash(key), user, write, now))
        return key

    async def lookup(self, key: str) -> Token | None:
        rows = await self._run("SELECT username, can_write, created FROM api_tokens "
                               "WHERE key_hash = ?", (key_hash(key),))
        if not rows:
            return None
        user, write, created = rows[0]
        return Token(user=user, write=bool(write), created=int(created))

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    async def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        async with self._lock:  # one statement at a time on the shared connection
            return await asyncio.to_thread(self._execute, sql, params)

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        if self._db is None:
            raise ArchiveError("the token store is not started")
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise ArchiveError(f"{self.path}: {exc}") from exc


class PostgresTokenStore(TokenStore):
    """Tokens in the ``api_tokens`` table of a PostgreSQL database (psycopg 3)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = asyncio.Lock()
        self._conn: Any = None

    async def start(self, exit_stack: AsyncExitStack) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ArchiveError("the PostgreSQL token store needs psycopg: "
                               "pip install 'watchkeeper[postgres]'") from exc
        try:
            self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            await self._conn.execute(_SCHEMA)
        except psycopg.Error as exc:
            raise ArchiveError(f"PostgreSQL token store: {exc}") from exc
        exit_stack.push_async_callback(self._conn.close)

    async def create(self, user: str, *, write: bool, now: int) -> str:
        _check_user(user)
        key = new_key()
        await self._run("INSERT INTO api_tokens (key_hash, username, can_write, created) "
                        "VALUES (%s, %s, %s, %s)", (key_hash(key), user, write, now))
        return key

    async def lookup(self, key: str) -> Token | None:
        rows = await self._run("SELECT username, can_write, created FROM api_tokens "
                               "WHERE key_hash = %s", (key_hash(key),))
        if not rows:
            return None
        user, write, created = rows[0]
        return Token(user=user, write=bool(write), created=int(created))

    async def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        import psycopg

        if self._conn is None:
            raise ArchiveError("the token store is not started")
        async with self._lock:
            try:
                cursor = await self._conn.execute(sql, params)
                return list(await cursor.fetchall()) if cursor.description else []
            except psycopg.Error as exc:
                raise ArchiveError(f"PostgreSQL token store: {exc}") from exc
