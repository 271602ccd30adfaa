"""The PostgreSQL archive's background compactions, in an OS process of their own (D54).

Right after a bulk load a ``serve`` process compacts for seconds. On a thread of its own
process that CPU-bound work took the GIL from the event loop at every one of its waits
(a statement, a socket write): a read queued behind it up to the switch interval (5 ms)
several times over. In a process of its own it shares only the CPUs, which the operating
system divides fairly, and the ``serve`` process's GIL serves reads alone.

The ``serve`` process asks for one shard at a time, ``(shard, upto)``, and gets back a
:class:`ShardOutcome`; the compaction process does what the thread did (D53): it leaves
a shard whose lock another transaction holds, and one that no longer has a log row up to
``upto``, else compacts it (:mod:`._pgcompact`) on a connection of its own. It holds no
log row in memory, so it decodes every row from the table. It is started at the first
compaction, never at start-up; it ends when asked, or when its pipe closes (the ``serve``
process went away); a transaction it leaves unfinished is rolled back by PostgreSQL, the
log keeping its rows. Errors come back as messages, for the ``serve`` process to report.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection as Pipe
from multiprocessing.process import BaseProcess
from typing import Final

import psycopg

from watchkeeper.archive.backends._pgcompact import ShardOutcome, compact_shard
from watchkeeper.archive.backends._pgpool import Pool
from watchkeeper.archive.backends._pgstore import PgStore
from watchkeeper.errors import ArchiveError

STOP_WAIT: Final = 10.0  # seconds a stopping compaction process may take to finish its shard
NICENESS: Final = 10  # the CPU goes to reads first; compaction takes what they leave


class CompactionProcess:
    """A process compacting shards of one schema, one at a time, on request."""

    def __init__(self, dsn: str, schema: str, *, chunk_points: int) -> None:
        self._args = (dsn, schema, chunk_points)
        self._process: BaseProcess | None = None
        self._pipe: Pipe | None = None
        self._lock = asyncio.Lock()

    async def compact_shard(self, shard: int, upto: int) -> ShardOutcome:
        """Compact ``shard`` there (see the module); raises ArchiveError on failure."""
        async with self._lock:
            pipe = await self._started()
            try:
                pipe.send((shard, upto))
                answer = await asyncio.to_thread(pipe.recv)
            except (EOFError, OSError) as exc:
                self._abandon()
                raise ArchiveError(f"the compaction process ended: {exc!r}") from exc
            except BaseException:
                self._abandon()  # its answer would come to the next request
                raise
        if isinstance(answer, str):
            raise ArchiveError(answer)
        return ShardOutcome(*answer)

    async def close(self) -> None:
        """Ask the process to end after its shard; stop it if it takes too long."""
        process, pipe = self._process, self._pipe
        self._process = self._pipe = None
        if process is None or pipe is None:
            return
        with contextlib.suppress(OSError):  # it ended already
            pipe.send(None)
        await asyncio.to_thread(process.join, STOP_WAIT)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join)
        pipe.close()

    async def _started(self) -> Pipe:
        if self._pipe is not None and self._process is not None and self._process.is_alive():
            return self._pipe
        self._abandon()
        # spawn, not fork: the serve process has threads and open connections.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=_main, args=(theirs, *self._args), daemon=True,
                                  name="watchkeeper-pg-compaction")
        await asyncio.to_thread(process.start)
        theirs.close()
        self._process, self._pipe = process, ours
        return ours

    def _abandon(self) -> None:
        """Stop a process whose state is unknown (a request interrupted, a pipe broken)."""
        process, pipe = self._process, self._pipe
        self._process = self._pipe = None
        if process is not None and process.is_alive():
            process.kill()
        if pipe is not None:
            pipe.close()


def _main(pipe: Pipe, dsn: str, schema: str, chunk_points: int) -> None:
    """The compaction process: answer requests until told to stop or the pipe closes."""
    # A Ctrl-C stops the serve process, which stops this one after its shard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(NICENESS)
    asyncio.run(_serve(pipe, PgStore(schema), Pool(
        dsn, size=1, application_name=f"watchkeeper:{schema}:compaction"[:63]), chunk_points))


async def _serve(pipe: Pipe, store: PgStore, pool: Pool, chunk_points: int) -> None:
    try:
        while (request := pipe.recv()) is not None:
            shard, upto = request
            try:
                answer: tuple[object, ...] | str = tuple(
                    await _compact_shard(store, pool, shard, upto, chunk_points))
            except (psycopg.Error, ArchiveError) as exc:
                answer = f"compacting shard {shard} of {store.schema}: {exc}"
            pipe.send(answer)
    except EOFError:
        pass  # the serve process went away
    finally:
        await pool.close()


async def _compact_shard(store: PgStore, pool: Pool, shard: int, upto: int,
                         chunk_points: int) -> ShardOutcome:
    async with pool.connection() as conn, conn.transaction():
        return await compact_shard(store, conn, shard, upto, chunk_points=chunk_points)
