"""The embedded archive, the default store: one SQLite file in the data directory.

Files in ``data_dir``:

* ``archive.sqlite3`` (WAL mode): ``series``; ``chunks``, runs of about ``chunk_points``
  points of one series compressed by :mod:`watchkeeper.archive.codec`; and
  ``ingest_log``, one row per acknowledged write not yet compacted into chunks.
* ``archive.lock``: held by the writing process, and holding its pid.

**Durability.** ``write()`` commits the whole batch as one ``ingest_log`` row (a single
transaction, ``PRAGMA synchronous=FULL`` by default, so the WAL is fsynced) before it
returns; its points then wait in an in-memory head per series. Compaction turns heads
into chunks and deletes the log rows it has covered, again in one transaction. A
restart replays the log, so an acknowledged point survives SIGKILL and, with ``full``,
power loss. ``synchronous="normal"`` skips the per-commit fsync: a power cut may then
lose the last writes, a process crash still loses nothing.

**Group commit.** Writes that arrive while a commit is in flight wait together and share
the next commit (one transaction, one fsync; each write keeps its own log row and is
validated on its own). Each caller is answered once the commit holding its write has
returned, so still nothing is acknowledged before it is durable.

**One writer, many readers.** ``start()`` takes an exclusive, non-blocking ``flock`` on
``archive.lock``. The instance that gets it is the writer until it closes; the kernel
drops the lock when the process dies, even by SIGKILL, so a crashed writer never leaves
a stale lock. An instance that cannot take it (another process, or another instance in
the same process: flock locks belong to the open file) opens read-only: each query
reads the chunks and the whole ingest log in one SQLite snapshot, so it sees every
acknowledged point, including those still in the writer's head; ``write()`` and
``delete()`` raise :class:`ArchiveError`. A read-only instance stays so; open a new one
to take over after the writer has gone. ``flock`` makes this backend POSIX-only.

**Threads.** The SQLite connection and the heads belong to one dedicated thread per
archive; the async methods hand work to it, so the event loop never waits on the disk
and operations on one archive run one at a time.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from watchkeeper.archive.abc import (
    Archive,
    Columns,
    FloatPieces,
    FloatRuns,
    Points,
    Rollup,
    SeriesMeta,
    SeriesQuery,
)
from watchkeeper.archive.backends._reader import Reader
from watchkeeper.archive.backends._store import Store
from watchkeeper.archive.backends._writer import Write, Writer
from watchkeeper.clock import Clock
from watchkeeper.errors import ArchiveError, ConfigError
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

log = logging.getLogger(__name__)

DB_NAME: Final = "archive.sqlite3"
LOCK_NAME: Final = "archive.lock"

_T = TypeVar("_T")


class EmbeddedOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of the embedded archive (``archive.options`` in the settings)."""

    chunk_points: Annotated[int, msgspec.Meta(ge=2, le=100_000)] = 480
    """Points per chunk; a series' head is compacted once it holds this many."""
    max_log_points: Annotated[int, msgspec.Meta(ge=1)] = 4_000_000
    """Compact every head once the ingest log keeps more points than this."""
    synchronous: Literal["full", "normal"] = "full"
    """SQLite ``synchronous``: ``full`` fsyncs every write, ``normal`` survives crashes only."""
    close_seconds: Annotated[float, msgspec.Meta(ge=0)] = 3.0
    """At close, compaction stops after this long; what is left stays in the durable ingest
    log and is replayed at the next start (a stop never waits on a flush of every head)."""
    decoded_mb: Annotated[float, msgspec.Meta(ge=0)] = 128.0
    """Float chunks kept decoded for queries that read them again (MB; 0: none), the
    least recently read dropped first: a day of 1,000 series at 15 s takes ~92 MB."""


class EmbeddedArchive(Archive):
    """Chunks of compressed points in SQLite, with a durable ingest log in front."""

    Options = EmbeddedOptions

    def __init__(
        self, *, data_dir: Path, options: Any, clock: Clock, metrics: SelfMetrics
    ) -> None:
        super().__init__(data_dir=data_dir, options=options, clock=clock, metrics=metrics)
        self._executor: ThreadPoolExecutor | None = None
        self._core: Writer | Reader | None = None
        self._lock: _WriterLock | None = None
        self._writer_pid = ""
        self._waiting: list[tuple[Write, asyncio.Future[int]]] = []  # for the next commit
        self._in_flight = False  # a commit is running: new writes wait in _waiting
        self._committer: asyncio.Task[None] | None = None  # commits what waited

    @property
    def path(self) -> Path:
        return self.data_dir / DB_NAME

    @property
    def read_only(self) -> bool:
        """Whether another instance holds the writer lock (known after ``start``)."""
        return isinstance(self._core, Reader)

    async def start(self, exit_stack: AsyncExitStack) -> None:
        options = _checked(self.options)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wk-archive")
        exit_stack.callback(self._executor.shutdown)  # runs after _close, pushed below
        self._core = await self._call(self._open, options)
        exit_stack.push_async_callback(self._call, self._close, options.close_seconds)

    async def write(self, measurements: Sequence[Measurement]) -> int:
        return await self._grouped(tuple(measurements))

    async def write_columns(self, columns: Columns) -> int:
        return await self._grouped(columns)

    async def _grouped(self, write: Write) -> int:
        """Store ``write`` in the next group commit; its count once that is durable.

        Writes that arrive while a commit is in flight wait together and share the next
        one (one fsync for all of them); each caller is answered when the commit that
        holds its write has returned, so nothing is acknowledged before it is durable.
        A write that finds no commit in flight commits at once, from its own task.
        """
        writer = self._writer()
        if self._in_flight:
            done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._waiting.append((write, done))
            return await done
        self._in_flight = True
        try:
            (outcome,) = await self._call(writer.write_group, [write])
        finally:
            if self._waiting:  # they came during this commit: the next one is theirs
                self._committer = asyncio.create_task(self._commit_waiting(writer))
            else:
                self._in_flight = False
        self._count(outcome)
        self._settle_soon(writer)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _commit_waiting(self, writer: Writer) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    outcomes = await self._call(writer.write_group,
                                                [write for write, _ in group])
                except BaseException as exc:
                    for _, done in group:
                        if not done.done():
                            done.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                self._answer(writer, group, outcomes)
        finally:
            self._in_flight = False

    def _answer(self, writer: Writer, group: list[tuple[Write, asyncio.Future[int]]],
                outcomes: Sequence[int | Exception]) -> None:
        for (_, done), outcome in zip(group, outcomes, strict=True):
            self._count(outcome)
            if done.done():  # the caller has gone (cancelled)
                continue
            if isinstance(outcome, Exception):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)
        self._settle_soon(writer)

    def _count(self, outcome: int | Exception) -> None:
        if isinstance(outcome, int) and outcome:
            self.metrics.points_ingested.inc(outcome)
            self.metrics.ingest_batches.inc()

    def _settle_soon(self, writer: Writer) -> None:
        """A large write joins the heads in a job queued now, which runs while the callers
        are answered (every later operation would run it first)."""
        if writer.unsettled:
            assert self._executor is not None  # _call ran
            self._executor.submit(self._settle, writer)

    @staticmethod
    def _settle(writer: Writer) -> None:
        try:
            writer.settle()
        except Exception:  # the next operation on the archive retries and reports it
            log.exception("adding acknowledged points to the heads failed")

    async def list_series(
        self, *, prefix: str = "", limit: int | None = None, offset: int = 0
    ) -> tuple[list[SeriesMeta], int]:
        return await self._call(self._started().list_series, prefix, limit, offset)

    async def series_count(self) -> int:
        core = self._started()
        if isinstance(core, Writer):
            # its catalog counts every series, the new ones as they are written: one int,
            # read here without a trip to the archive thread (a count of a write that then
            # fails is only a reason to list the series again)
            return len(core.catalog)
        return await super().series_count()

    async def find_series(
        self, query: SeriesQuery, *, limit: int | None = None, offset: int = 0
    ) -> tuple[list[SeriesMeta], int]:
        core = self._started()
        if isinstance(core, Writer):  # its catalog holds every series: an index of them
            return await self._call(core.find_series, query, limit, offset)
        return await super().find_series(query, limit=limit, offset=offset)

    async def read(self, key: SeriesKey, start: float, end: float) -> Points:
        return await self._call(self._started().read, key, start, end)

    async def read_floats(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int
                          ) -> FloatRuns:
        return await self._call(self._started().read_floats, tuple(keys), start_ms, end_ms)

    async def read_float_pieces(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int
                                ) -> FloatPieces:
        core = self._started()
        if isinstance(core, Writer):  # it keeps series decoded: views of them, no copy
            return await self._call(core.read_float_pieces, tuple(keys), start_ms, end_ms)
        return await super().read_float_pieces(keys, start_ms, end_ms)

    async def rollup(
        self,
        keys: Sequence[SeriesKey],
        *,
        start: float,
        end: float,
        step: float,
        aggs: Sequence[str] = ("avg",),
    ) -> list[Rollup]:
        core = self._started()
        return await self._call(core.rollup, tuple(keys), start, end, step, tuple(aggs))

    async def delete(self, key: SeriesKey, start: float, end: float) -> int:
        return await self._call(self._writer().delete, key, start, end)

    # -- on the archive thread --------------------------------------------------------

    def _open(self, options: EmbeddedOptions) -> Writer | Reader:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = _WriterLock.acquire(self.data_dir / LOCK_NAME)
        if lock is None:
            self._writer_pid = _WriterLock.holder(self.data_dir / LOCK_NAME)
            log.warning("%s is written by process %s; this instance is read-only",
                        self.path, self._writer_pid)
            return Reader(Store.open(self.path, writer=False))
        try:
            store = Store.open(self.path, writer=True, synchronous=options.synchronous)
            writer = Writer(store, chunk_points=options.chunk_points,
                            max_log_points=options.max_log_points,
                            decoded_bytes=int(options.decoded_mb * 1_000_000))
            try:
                writer.load()
            except BaseException:
                store.close()
                raise
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        return writer

    def _close(self, budget: float) -> None:
        core, self._core = self._core, None
        try:
            if isinstance(core, Writer):
                now = self.clock.time
                core.close(now=now, until=now() + budget)
            elif core is not None:
                core.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    # -- plumbing ---------------------------------------------------------------------

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._executor is None:
            raise ArchiveError("the archive is not started")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except sqlite3.Error as exc:
            raise ArchiveError(f"{self.path}: {exc}") from exc

    def _started(self) -> Writer | Reader:
        if self._core is None:
            raise ArchiveError("the archive is not started")
        return self._core

    def _writer(self) -> Writer:
        core = self._started()
        if isinstance(core, Reader):
            raise ArchiveError(
                f"{self.path} is open for writing by process {self._writer_pid}; "
                "this instance is read-only"
            )
        return core


class _WriterLock:
    """An exclusive flock on ``archive.lock``, released when closed or when the process dies."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def acquire(cls, path: Path) -> _WriterLock | None:
        """Take the lock without waiting; None when another open file holds it."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd)

    @staticmethod
    def holder(path: Path) -> str:
        """The pid the writer wrote into the lock file, for messages."""
        try:
            return path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        os.close(self._fd)  # closing the file drops the flock


def _checked(options: Any) -> EmbeddedOptions:
    """Options validated against their constraints, also when built in code."""
    try:
        return msgspec.convert(msgspec.to_builtins(options), EmbeddedOptions)
    except (msgspec.ValidationError, TypeError) as exc:
        raise ConfigError(str(exc), key="archive.options", value=options) from exc
