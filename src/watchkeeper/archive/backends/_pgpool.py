"""A small pool of async psycopg connections.

(psycopg_pool is not among the ``postgres`` extra's dependencies, so the archive keeps
its own: it needs only checkout, checkin and close.)

Connections are opened on demand up to ``size``, kept for reuse, and checked out one
task at a time. A connection that comes back broken or inside a transaction (the task
failed mid-way) is closed rather than reused. ``close()`` closes every idle connection
and makes later checkouts fail; connections checked out at that moment are closed
when they come back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import pq

from watchkeeper.errors import ArchiveError

Connection = psycopg.AsyncConnection[Any]


class Pool:
    """Up to ``size`` autocommit connections to ``dsn``."""

    def __init__(self, dsn: str, *, size: int, application_name: str) -> None:
        self._dsn = dsn
        self._application_name = application_name
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def open(self) -> None:
        """Open one connection now, so a wrong DSN fails at start rather than later."""
        async with self.connection():
            pass

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._slots:
            conn = await self._checkout()
            try:
                yield conn
            finally:
                self._checkin(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def _checkout(self) -> Connection:
        if self._closed:
            raise ArchiveError("the PostgreSQL archive is closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        try:
            return await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, application_name=self._application_name)
        except psycopg.OperationalError as exc:
            raise ArchiveError(f"cannot connect to PostgreSQL ({self._dsn}): {exc}") from exc

    def _checkin(self, conn: Connection) -> None:
        healthy = not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE
        if healthy and not self._closed:
            self._idle.append(conn)
        elif not conn.closed:
            # A sync close of an async connection is allowed: it just drops the socket.
            conn.pgconn.finish()
