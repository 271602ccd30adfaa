"""The PostgreSQL archive: the embedded layout (chunks + ingest log) in a PostgreSQL schema.

Row-per-point tables cost 84-94 bytes and 3 µs per point here, so this backend stores
what the embedded one stores: ``series``; ``chunks`` of compressed points
(:mod:`watchkeeper.archive.codec`); and ``ingest_log``, the acknowledged writes not yet
in chunks (see :mod:`._pgstore` for the tables).

**Writes.** ``write()`` validates the batch (as every backend does), creates its new
series, splits it by *shard* (``series id % shards``, 64) and appends one log row per
shard with a binary COPY, all in one transaction: when it returns, the commit is
durable (``synchronous_commit``, on by default) and visible to every process. The
instance keeps the rows it wrote in memory until they are compacted, so neither its
reads nor its compactions fetch them back.

**Several writers.** Any number of instances, in any number of processes or hosts,
may write the same schema at once. Series are created with ``INSERT ... ON CONFLICT``
(the first writer's unit and kind win; a batch that disagrees with the kind fails
whole). Compaction works per shard under a transaction-scoped advisory lock, so one
process at a time compacts a given shard: it takes *every* log row of the shard (those
it holds from memory, the others from the table) in sequence order, merges them into
the chunks (a later row wins on equal timestamps), and deletes them, in one
transaction. A writer compacts a shard once its own pending points there reach about
``chunk_points`` per series (at most ``max_log_points / shards``), in a background task
off the write path, and at close. In the background an instance leaves a shard whose
lock another one holds (that one takes every row there; the next look catches the
rest), and one whose rows up to the seq it was marked at are gone already: after a
load every instance marks every shard, and each is compacted once, not once by each.
With ``compact_in: process`` the background compactions run in an OS process of the
instance's own (:mod:`._pgcompactor`), whose CPU work does not take the GIL from the
reads; the instance lets go of the rows it reports moved (D54: better with one server
per host, worse with several on two cores).

**Compaction by age.** Every read merges its shard's log, so a log that never fills a
chunk (a bulk load of short series, a crashed writer's rows) would slow reads for good.
Every ``compact_after`` seconds each instance looks at the log and compacts, in the
background, every shard holding rows it already saw at its previous look: no row stays
in the log much longer than twice that, whoever wrote it. The first look comes at start
and takes in whatever is there (a crashed writer's backlog), but start-up never waits
for it: reads are exact while the log drains. Compaction deletes log rows and rewrites
partial chunks, which leaves dead tuples that autovacuum reaches late (after a bulk
load: tables three times the size of their data); so at every look after compactions the
instance vacuums the tables they changed, and the space is reused at once.

**Reads** from any instance are exact: one statement (one snapshot) returns the
series' chunks in range and its shard's log rows; the log rows are applied over the
chunks in sequence order. Rows held in memory (through one concatenated view per shard
when there are many, :mod:`._pgheld`) are left out of the statement's answer: those
this instance wrote, and those of other writers it *follows* (every ``FOLLOW_EVERY``
seconds it fetches and decodes their new rows, a slice at a time between other work, up
to ``max_log_points`` points); what is not held is decoded. While a read is in flight,
a compaction on a thread of this process (at close, by ``delete()``, or all of them
with ``compact_in: thread``) waits (``READS_FIRST`` at most, between series and between
parts of its encoding). ``delete()`` compacts the shard and rewrites the chunks in the
same locked transaction, so no log row can bring deleted points back.

**Rollups** use stored summaries as the embedded archive does (:mod:`._rollups`): every
float chunk row carries the hourly summary of its points, so a rollup with an
hour-multiple step reads, in one snapshot, the summaries of all its series (with the
blobs of just the chunks they cannot answer for: the partial hours at the edges, chunks
without a summary) and the log rows of their shards.

Sequence numbers come from a PostgreSQL sequence when the write starts, so for the
same series and timestamp a write that started after another was acknowledged wins;
two truly concurrent writes of the same point may end either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("the PostgreSQL archive needs psycopg 3: install watchkeeper[postgres]"
                      ) from exc

from watchkeeper.archive.abc import (
    KINDS,
    Archive,
    Columns,
    FloatRuns,
    Kind,
    Points,
    Rollup,
    SeriesMeta,
    check_rollup,
    require_numbers,
    rollup_points,
)
from watchkeeper.archive.backends._batch import (
    Batch,
    Column,
    columnize,
    columnize_columns,
    decode_batch,
    encode_batch,
)
from watchkeeper.archive.backends._catalog import NO_FIRST, NO_LAST, Catalog, NewSeries
from watchkeeper.archive.backends._chunks import ChunkRow, Flush
from watchkeeper.archive.backends._head import latest, rows_of
from watchkeeper.archive.backends._pgcompact import ShardOutcome, compact_locked, compact_shard
from watchkeeper.archive.backends._pgcompactor import CompactionProcess
from watchkeeper.archive.backends._pgheld import VIEW_FROM, HeldRow, HeldViews, series_points
from watchkeeper.archive.backends._pgpool import Connection, Pool
from watchkeeper.archive.backends._pgstore import Held, PgStore
from watchkeeper.archive.backends._points import (
    decode_chunks,
    overlay,
    to_points,
    window_ms,
)
from watchkeeper.archive.backends._rollups import RollupPlan
from watchkeeper.archive.backends._runs import (
    assemble,
    decoded_pieces,
    float_sids,
    newer_points,
)
from watchkeeper.archive.backends._store import SeriesRow, prefix_upper
from watchkeeper.clock import Clock
from watchkeeper.errors import ArchiveError, ConfigError, InvalidData, SeriesNotFound
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

log = logging.getLogger(__name__)

SHARDS: Final = 64
FOLLOW_EVERY: Final = 0.5  # seconds between looks for other writers' new log rows
FOLLOW_ROWS: Final = 1_000  # log rows fetched at once by the follower
DECODE_SLICE: Final = 32  # followed rows decoded between two turns of the event loop
READS_FIRST: Final = 0.02  # longest a compaction's thread waits for reads in flight, seconds
DEFAULT_DSN: Final = "host=127.0.0.1 user=postgres dbname=watchkeeper_test"

Ids = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
Values = npt.NDArray[Any]


class PostgresOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of the PostgreSQL archive (``archive.options`` in the settings)."""

    dsn: str = DEFAULT_DSN
    """libpq connection string (or URI)."""
    schema: Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "watchkeeper"
    """The PostgreSQL schema holding the archive's tables (created if missing)."""
    chunk_points: Annotated[int, msgspec.Meta(ge=2, le=100_000)] = 240
    """Points per chunk."""
    max_log_points: Annotated[int, msgspec.Meta(ge=1)] = 4_000_000
    """Bound on the points this instance keeps in the log (and in memory) before compacting."""
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    """Connections to keep open."""
    compact_after: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """Seconds between looks at the log; rows seen at one look are compacted at the next."""
    compact_in: Literal["thread", "process"] = "thread"
    """Where background compactions run: ``thread``, a thread of this process, which
    pauses while reads are in flight; ``process``, an OS process of this instance's own
    at a lower priority, with its own connection: its CPU work does not hold up reads
    for the GIL, but it decodes the log rows from the table again (more CPU). Reads
    right after a bulk load were faster with ``process`` for one server per host, slower
    with two or four servers sharing two cores (D54). Compactions at close and by
    ``delete()`` always run in this process."""


class PostgresArchive(Archive):
    """Chunks of compressed points in PostgreSQL, several writers, exact reads anywhere."""

    Options = PostgresOptions

    def __init__(
        self, *, data_dir: Path, options: Any, clock: Clock, metrics: SelfMetrics
    ) -> None:
        super().__init__(data_dir=data_dir, options=options, clock=clock, metrics=metrics)
        self._opts = PostgresOptions()
        self._store = PgStore(self._opts.schema)
        self._pool: Pool | None = None
        self._writer = uuid.uuid4().hex
        self._catalog = Catalog()
        self._shards = SHARDS
        # Per shard, the log rows held in memory (own and followed, see _pgheld), by seq.
        self._own: list[dict[int, HeldRow]] = []
        self._upto: dict[str, int] = {}  # per writer: its rows held up to this seq
        self._followed = 0  # points of followed rows held
        self._skipped: set[str] = set()  # writers with a row that cannot be decoded
        self._views = HeldViews(SHARDS)
        self._pending = np.zeros(0, dtype=np.int64)  # own points logged per shard
        self._series_in_shard = np.zeros(0, dtype=np.int64)
        self._write_lock = asyncio.Lock()
        # Shards to compact, each with a seq: compacted only while it still holds a log
        # row up to that seq (another instance may have taken them meanwhile).
        self._dirty: dict[int, int] = {}
        self._compactor: asyncio.Task[None] | None = None
        self._compaction_process: CompactionProcess | None = None
        self._looker: asyncio.Task[None] | None = None
        self._follower: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._rewritten = 0  # chunk rows deleted by compactions since the last vacuum
        self._compacted = 0  # shards compacted since the last vacuum
        self._closing = False
        self._reads = 0  # reads in flight; a compaction's thread waits while there are any
        self._no_reads = threading.Event()
        self._no_reads.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, exit_stack: AsyncExitStack) -> None:
        self._opts = _checked(self.options)
        self._store = PgStore(self._opts.schema)
        if self._opts.compact_in == "process":  # it starts at the first compaction
            self._compaction_process = CompactionProcess(
                self._opts.dsn, self._opts.schema, chunk_points=self._opts.chunk_points)
        pool = Pool(self._opts.dsn, size=self._opts.pool_size,
                    application_name=f"watchkeeper:{self._opts.schema}"[:63])
        await pool.open()
        self._pool = pool
        exit_stack.push_async_callback(self._close)
        with _errors():
            async with pool.connection() as conn:
                self._shards = await self._store.create(conn, SHARDS)
                self._own = [{} for _ in range(self._shards)]
                self._views = HeldViews(self._shards)
                self._pending = np.zeros(self._shards, dtype=np.int64)
                self._series_in_shard = np.zeros(self._shards, dtype=np.int64)
                for row in await self._store.all_series(conn):
                    self._learn(row)
        # What a crashed writer left is marked now, before this instance takes a write (a
        # first look later would take new rows for old ones), and compacted in the
        # background.
        seen = await self._look_once(None)
        self._looker = asyncio.create_task(self._look_loop(seen), name="pg-archive-look")
        self._follower = asyncio.create_task(self._follow_loop(), name="pg-archive-follow")

    async def _close(self) -> None:
        self._closing = True
        self._stop.set()
        try:
            if self._looker is not None:
                await self._looker
            if self._follower is not None:
                await self._follower
            if self._compactor is not None:
                await self._compactor
            if self._compaction_process is not None:
                await self._compaction_process.close()
            await self._compact(range(len(self._own)))  # none if the start failed
        except (psycopg.Error, ArchiveError):
            log.exception("compacting %s at close failed; the ingest log keeps the data",
                          self._opts.schema)
        finally:
            if self._compaction_process is not None:
                await self._compaction_process.close()  # if the close above failed first
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.close()

    # -- writes ---------------------------------------------------------------------------

    async def write(self, measurements: Sequence[Measurement]) -> int:
        return await self._write(functools.partial(columnize, measurements))

    async def write_columns(self, columns: Columns) -> int:
        return await self._write(functools.partial(columnize_columns, columns))

    async def _write(self, columnize_: Callable[[Catalog], Batch]) -> int:
        async with self._write_lock:
            with _errors():
                stored = await self._commit(columnize_)
        if stored:
            self.metrics.points_ingested.inc(stored)
            self.metrics.ingest_batches.inc()
        return stored

    async def _commit(self, columnize_: Callable[[Catalog], Batch]) -> int:
        batch = columnize_(self._catalog)
        if batch.new_series and await self._learn_keys(s.text for s in batch.new_series):
            batch = columnize_(self._catalog)  # another process made some
        if not len(batch):
            return 0
        async with self._connection() as conn, conn.transaction():
            created: list[NewSeries] = []
            if batch.new_series:
                batch, created = await self._create_series(conn, batch)
            parts = _by_shard(batch, self._shards)
            seqs = await self._store.next_seqs(conn, len(parts))
            await self._store.copy_log(conn, (
                (seq, shard, self._writer, len(part), encode_batch(part))
                for seq, (shard, part) in zip(seqs, parts, strict=True)
            ))
        for series in created:
            self._add(series)
        for seq, (shard, part) in zip(seqs, parts, strict=True):
            self._own[shard][seq] = HeldRow(part, len(part))
            self._views.changed(shard)
            self._pending[shard] += len(part)
        self._upto[self._writer] = max(seqs)
        self._schedule_compaction()
        if self._pending.sum() > 2 * self._opts.max_log_points and self._compactor is not None:
            await asyncio.shield(self._compactor)  # back-pressure when compaction lags
        return len(batch)

    async def _create_series(
        self, conn: Connection, batch: Batch
    ) -> tuple[Batch, list[NewSeries]]:
        """Insert the batch's new series; returns the batch with their real ids."""
        try:
            await self._store.insert_series(conn, batch.new_series)
        except psycopg.DataError as exc:  # e.g. a NUL character, which text cannot hold
            raise InvalidData(f"cannot be stored: {exc}", field="key") from None
        rows = {str(row.key): row for row in
                await self._store.series_by_keys(conn, [s.text for s in batch.new_series])}
        base = batch.new_series[0].sid
        remap = np.empty(len(batch.new_series), dtype=np.int64)
        created = []
        for i, series in enumerate(batch.new_series):
            row = rows[series.text]
            if row.kind != series.kind:  # made by another process since we looked
                raise InvalidData(f"series {series.key} holds {row.kind} points, got"
                                  f" {series.kind} points", field="series", value=series.text)
            remap[i] = row.sid
            created.append(NewSeries(row.sid, row.key, series.text, row.unit, row.kind))
        columns = tuple(
            Column(np.where(c.sids >= base, remap[np.maximum(c.sids - base, 0)], c.sids)
                   .astype(np.int32), c.ts, c.values)
            for c in batch.columns
        )
        return Batch((), (columns[0], columns[1], columns[2])), created

    # -- reads ----------------------------------------------------------------------------

    async def read(self, key: SeriesKey, start: float, end: float) -> Points:
        lo, hi = window_ms(start, end)
        with self._reading():
            with _errors():
                sid, kind = await self._series(key)
                shard = sid % self._shards
                own = dict(self._own[shard])  # rows compacted meanwhile are still here
                held = self._held()  # with the copy, before any await (_held)
                version = self._views.version(shard)
                async with self._connection() as conn:
                    blobs, logged = await self._store.read_series(
                        conn, sid, shard=shard, lo=lo, hi=hi, held=held)
            ts, values = decode_chunks(kind, blobs)
            view = None
            if len(own) >= VIEW_FROM and self._views.version(shard) == version:  # still own
                view = self._views.view(shard, kind, own)
            ts, values = overlay(ts, values, *series_points(kind, sid, logged, view, own))
            if sum(blob is None for _, blob in logged) < len(own):
                # Held rows this statement did not see were compacted by another instance
                # (each was held before it began): let them go now, not at the next look.
                seen = {seq for seq, _ in logged}
                if gone := [seq for seq in own if seq not in seen]:
                    self._forget(shard, gone)
            return to_points(kind, ts, values, start, end, unit=self._catalog.unit(sid))

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Mark a read in flight: a compaction's thread pauses meanwhile (a bulk load
        leaves seconds of compaction, and reads waited for it: p99 ~25 ms in process)."""
        self._reads += 1
        self._no_reads.clear()
        try:
            yield
        finally:
            self._reads -= 1
            if not self._reads:
                self._no_reads.set()

    def _reads_first(self) -> None:
        """On a compaction's thread: let the reads in flight finish first (a while at most)."""
        self._no_reads.wait(READS_FIRST)

    async def read_floats(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int
                          ) -> FloatRuns:
        """Many float series in one statement (chunks and their shards' log rows), decoded
        together (see _runs); held log rows come from memory, as in :meth:`read`."""
        with self._reading():
            with _errors():
                if any(self._catalog.ids.get(key) is None for key in keys):
                    await self._learn_keys({str(key) for key in keys
                                            if self._catalog.ids.get(key) is None})
                sids = float_sids(self._catalog.ids.get, self._catalog.kinds, keys)
                shards = sorted({sid % self._shards for sid in sids.tolist() if sid >= 0})
                own = {shard: dict(self._own[shard]) for shard in shards}
                held = self._held()  # with the copy, before any await (_held)
                async with self._connection() as conn:
                    chunks, logged = await self._store.read_many(
                        conn, sids.tolist(), lo=start_ms, hi=end_ms, shards=shards,
                        held=held)
            columns = [(own[shard][seq].batch if blob is None else decode_batch(blob))
                       .column("float") for shard, seq, blob in sorted(logged)]
            newer = newer_points(columns, np.unique(sids[sids >= 0]))
            return assemble(sids, decoded_pieces(len(sids), chunks), newer, start_ms, end_ms)

    async def rollup(
        self,
        keys: Sequence[SeriesKey],
        *,
        start: float,
        end: float,
        step: float,
        aggs: Sequence[str] = ("avg",),
    ) -> list[Rollup]:
        """Rollups from the chunks' stored summaries (see :mod:`._rollups`), points where
        needed: as the embedded archive, in one snapshot of chunks and log."""
        step_ms = check_rollup(step, aggs)
        lo, hi = window_ms(start, end)
        with _errors():
            series = [await self._series(key) for key in keys]
            for key, (_, kind) in zip(keys, series, strict=True):
                require_numbers(key, kind)
            rolled: list[Rollup | None] = [None] * len(keys)
            if RollupPlan.applies(step_ms, aggs) and keys:
                rolled = await self._rollup_summaries(RollupPlan(
                    keys, [sid for sid, _ in series], lo, hi, step_ms, aggs))
            return [r if r is not None else
                    rollup_points(key, await self.read(key, start, end), start=start, end=end,
                                  step=step, aggs=aggs)
                    for key, r in zip(keys, rolled, strict=True)]

    async def _rollup_summaries(self, plan: RollupPlan) -> list[Rollup | None]:
        """:meth:`RollupPlan.run` over one snapshot: the summaries with the chunks they
        cannot answer for (one statement), where each series' chunks end, and the log."""
        unique = list(dict.fromkeys(plan.sids))
        shards = sorted({sid % self._shards for sid in unique})
        # Taken before the snapshot: a row compacted since is in the chunks it sees.
        own = {seq: mine for shard in shards for seq, mine in self._own[shard].items()}
        held = self._held()
        async with self._connection() as conn, self._store.snapshot(conn):
            rows, blobs = await self._store.summaries(conn, unique, plan.lo, plan.hi,
                                                      plan.full)
            ends = await self._store.chunks_end(conn, unique)
            logged = await self._store.log_rows(conn, shards, held)
        pending = _Pending([own[seq].batch if blob is None else decode_batch(blob)
                            for seq, _, blob in logged], unique)

        def chunk_blob(sid: int, start_ms: int) -> bytes:
            try:
                return blobs[sid, start_ms]
            except KeyError:
                raise ArchiveError(f"chunk ({sid}, {start_ms}) was not fetched with its"
                                   " summary") from None

        return plan.run(rows, chunk_blob, pending.points, ends.get)

    async def list_series(
        self, *, prefix: str = "", limit: int | None = None, offset: int = 0
    ) -> tuple[list[SeriesMeta], int]:
        # Taken before the snapshot: a row compacted since is in the ranges it sees.
        own = {seq: row for rows in self._own for seq, row in rows.items()}
        held = self._held()
        with _errors():
            async with self._connection() as conn, self._store.snapshot(conn):
                rows, total = await self._store.list_series(
                    conn, prefix, prefix_upper(prefix), limit, offset)
                shards = sorted({row.sid % self._shards for row in rows})
                logged = await self._store.log_rows(conn, shards, held) if rows else []
        for row in rows:
            self._learn(row)
        batches = [own[seq].batch if blob is None else decode_batch(blob)
                   for seq, _, blob in logged]
        return _widened(rows, batches), total

    async def delete(self, key: SeriesKey, start: float, end: float) -> int:
        lo, hi = window_ms(start, end)
        with _errors():
            sid, kind = await self._series(key)
            shard = sid % self._shards
            async with self._connection() as conn:
                async with conn.transaction():
                    await self._store.lock_shard(conn, shard)
                    forget = await self._compact_locked(conn, shard)
                    removed = await self._delete_in_chunks(conn, sid, kind, window=(lo, hi),
                                                           start=start, end=end)
                self._forget(shard, forget)
        return removed

    async def _delete_in_chunks(self, conn: Connection, sid: int, kind: Kind, *,
                                window: tuple[int, int], start: float, end: float) -> int:
        deleted: list[tuple[int, int]] = []
        kept: list[ChunkRow] = []
        removed = 0
        for row in await self._store.chunks(conn, sid, *window):
            ts, values = decode_chunks(kind, (row.blob,))
            seconds = ts / 1000.0
            doomed = (seconds >= start) & (seconds <= end)
            if doomed.any():
                removed += int(doomed.sum())
                deleted.append((sid, row.start_ms))
                if not doomed.all():  # a chunk that loses points stays one chunk
                    flush = Flush(kind, len(ts))
                    flush.add(sid, ts[~doomed], values[~doomed], None, [])
                    kept.extend(flush.inserted())
        if removed:
            await self._store.replace_chunks(conn, deleted, kept)
            await self._store.reset_range(conn, sid)
        return removed

    # -- compaction -----------------------------------------------------------------------

    def _schedule_compaction(self) -> None:
        limit = np.minimum(self._opts.chunk_points * np.maximum(self._series_in_shard, 1),
                           max(self._opts.max_log_points // self._shards, 1))
        for shard in np.flatnonzero(self._pending >= limit).tolist():
            self._mark(shard, max(self._own[shard], default=-1))
        self._kick()

    def _mark(self, shard: int, upto: int) -> None:
        """Compact ``shard`` if it still holds a log row up to seq ``upto`` then."""
        self._dirty[shard] = max(self._dirty.get(shard, -1), upto)

    async def _compact_dirty(self) -> None:
        # Each instance starts at a shard of its own: several instances marking the same
        # shards (after a load, every look marks every shard) take different ones first.
        first = int(self._writer, 16) % self._shards
        while self._dirty and not self._closing:
            shard = min(self._dirty, key=lambda s: (s - first) % self._shards)
            upto = self._dirty.pop(shard)
            try:
                await self._compact_shard(shard, upto)
            except (psycopg.Error, ArchiveError):
                # The log keeps the data; the next look (or write over the limit) retries.
                log.exception("compacting shard %d of %s failed", shard, self._opts.schema)

    async def _compact_shard(self, shard: int, upto: int) -> None:
        """Compact ``shard`` unless another instance compacts it now (it takes every row
        there: the next look catches what it may miss) or has taken its rows up to
        ``upto`` already. So after a load marked every shard in every instance, a shard is
        compacted once, not once by each after waiting for the others."""
        if self._compaction_process is not None:
            held = list(self._own[shard])  # held now: moved by it, or gone before it looked
            outcome = await self._compaction_process.compact_shard(shard, upto)
        else:
            async with self._connection() as conn, conn.transaction():
                rows = dict(self._own[shard])  # taken with _held(): no await between
                held = list(rows)
                outcome = await compact_shard(
                    self._store, conn, shard, upto, chunk_points=self._opts.chunk_points,
                    held=self._held(), rows=rows, pause=self._reads_first)
        self._let_go(shard, upto, held, outcome)

    def _let_go(self, shard: int, upto: int, held: list[int], outcome: ShardOutcome) -> None:
        """After a background compaction committed: the held rows it moved (every one
        held before it, and those it reports), or those up to ``upto`` another instance
        moved; a shard left locked keeps its rows."""
        if outcome.status == "locked":
            return
        if outcome.status == "gone":
            self._forget(shard, [seq for seq in self._own[shard] if seq <= upto])
            return
        self._compacted += 1
        self._rewritten += outcome.rewritten
        self._forget(shard, [*held, *outcome.seqs])

    def _kick(self) -> None:
        """Start compacting the dirty shards, unless a compaction runs already."""
        if self._dirty and not self._closing and (
            self._compactor is None or self._compactor.done()
        ):
            self._compactor = asyncio.create_task(self._compact_dirty())

    async def _look_loop(self, seen: int | None) -> None:
        """Compact by age and vacuum, every ``compact_after`` seconds until closing;
        ``seen`` is the log's last seq at the previous look (None: all)."""
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._opts.compact_after)
            if not self._closing:
                seen = await self._look_once(seen)

    async def _look_once(self, seen: int | None) -> int | None:
        """:meth:`_look`, a failure logged (the next look tries again from ``seen``)."""
        try:
            return await self._look(seen)
        except (psycopg.Error, ArchiveError):
            log.exception("looking after the ingest log of %s failed", self._opts.schema)
            return seen

    async def _look(self, seen: int | None) -> int:
        """Mark the shards holding rows up to ``seen`` dirty; vacuum after compactions.
        Returns the log's last seq now."""
        if self._compacted:
            await self._vacuum()
        held = [seq for rows in self._own for seq in rows]
        async with self._connection() as conn:
            last, shards = await self._store.aged_shards(conn, seen)
            gone = set(await self._store.gone(conn, held)) if held else set()
        for shard in shards:
            self._mark(shard, last if seen is None else seen)
        self._kick()
        if gone:  # compacted by other instances
            for shard, rows in enumerate(self._own):
                if not gone.isdisjoint(rows):
                    self._forget(shard, [seq for seq in rows if seq in gone])
        # A writer none of whose rows is held has none left up to its ``upto``.
        writers = {row.writer for rows in self._own for row in rows.values()}
        self._upto = {w: seq for w, seq in self._upto.items()
                      if w == self._writer or w in writers}
        return last

    async def _vacuum(self) -> None:
        tables = ["ingest_log", "chunks"] if self._rewritten else ["ingest_log"]
        async with self._connection() as conn:
            for table in tables:
                if not await self._store.vacuum(conn, table):
                    return  # another instance vacuums it: this one tries at its next look
        self._compacted = self._rewritten = 0

    async def _compact(self, shards: Sequence[int] | range) -> None:
        for shard in shards:
            async with self._connection() as conn:
                async with conn.transaction():
                    await self._store.lock_shard(conn, shard)
                    forget = await self._compact_locked(conn, shard)
                self._forget(shard, forget)
            self._compacted += 1

    async def _compact_locked(self, conn: Connection, shard: int) -> list[int]:
        """Move every log row of ``shard`` into chunks; returns the held seqs now gone."""
        own = dict(self._own[shard])
        # The decoding and encoding run in a thread: reads keep being answered meanwhile.
        done = await compact_locked(self._store, conn, shard, chunk_points=self._opts.chunk_points,
                                    held=self._held(), rows=own, pause=self._reads_first)
        self._rewritten += done.rewritten
        # Every held row was compacted now, or by another process before.
        return [*own, *done.seqs]

    def _held(self) -> Held:
        """The log rows a statement may leave out, its blobs being held: for each writer,
        every row up to its ``upto`` (take it with the copy of the held rows, no await
        between)."""
        return list(self._upto), list(self._upto.values())

    def _forget(self, shard: int, seqs: Sequence[int]) -> None:
        rows = self._own[shard]
        for seq in seqs:
            row = rows.pop(seq, None)
            if row is not None and not row.own:
                self._followed -= row.points
        self._views.changed(shard, let_go=True)
        self._pending[shard] = sum(row.points for row in rows.values() if row.own)

    # -- following other writers ----------------------------------------------------------

    async def _follow_loop(self) -> None:
        """Hold other writers' new log rows, decoded, until closing (see _pgheld)."""
        while not self._closing:
            more = False
            try:
                more = await self._follow()
            except (psycopg.Error, ArchiveError):
                log.exception("following the ingest log of %s failed", self._opts.schema)
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), FOLLOW_EVERY)

    async def _follow(self) -> bool:
        """Fetch and hold the next rows of other writers; whether there may be more."""
        if self._followed >= self._opts.max_log_points:
            return False  # reads fetch the rest, as without following
        async with self._connection() as conn:
            rows = await self._store.follow(conn, self._writer, self._held(),
                                            sorted(self._skipped), FOLLOW_ROWS)
        upto: dict[str, int] = {}
        for i, (seq, shard, writer, blob) in enumerate(rows):
            if writer in self._skipped:
                continue
            try:
                batch = decode_batch(blob)
            except ArchiveError:
                # Reads fetch its rows and fail on this one, as they would unfollowed.
                log.exception("log row %d of %s (writer %s) cannot be decoded; its writer's"
                              " rows are no longer followed", seq, self._opts.schema, writer)
                self._skipped.add(writer)
                continue
            if seq > self._upto.get(writer, -1) and not self._closing:
                self._own[shard][seq] = HeldRow(batch, len(batch), writer)
                self._followed += len(batch)
                self._views.changed(shard)
                upto[writer] = seq
            if i % DECODE_SLICE == DECODE_SLICE - 1:
                await asyncio.sleep(0)  # reads go first
        # Every row of a writer up to its last one here is held now (or compacted: a
        # compaction by this instance meanwhile forgot it), as rows come in seq order.
        for writer, seq in upto.items():
            if writer not in self._skipped:
                self._upto[writer] = seq
        return len(rows) == FOLLOW_ROWS

    # -- series ---------------------------------------------------------------------------

    async def _series(self, key: SeriesKey) -> tuple[int, Kind]:
        """The id and kind of ``key``, asking the database for series made elsewhere."""
        sid = self._catalog.ids.get(key) if isinstance(key, SeriesKey) else None
        if sid is None and isinstance(key, SeriesKey):
            await self._learn_keys([str(key)])
            sid = self._catalog.ids.get(key)
        if sid is None:
            raise SeriesNotFound(str(key))
        return sid, self._catalog.kind(sid)

    async def _learn_keys(self, texts: Any) -> bool:
        """Add the series among ``texts`` that exist in the database; whether there were any."""
        async with self._connection() as conn:
            rows = await self._store.series_by_keys(conn, list(texts))
        for row in rows:
            self._learn(row)
        return bool(rows)

    def _learn(self, row: SeriesRow) -> None:
        if row.key not in self._catalog.ids:
            self._add(NewSeries(row.sid, row.key, str(row.key), row.unit, row.kind))

    def _add(self, series: NewSeries) -> None:
        self._catalog.add(series)
        self._series_in_shard[series.sid % self._shards] += 1

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise ArchiveError("the archive is not started")
        async with self._pool.connection() as conn:
            yield conn


def _by_shard(batch: Batch, shards: int) -> list[tuple[int, Batch]]:
    """The batch split into one batch per shard it touches, in shard order."""
    parts: dict[int, list[Column]] = {}
    for k, column in enumerate(batch.columns):
        if not len(column.sids):
            continue
        keys = column.sids % shards
        order = np.argsort(keys, kind="stable")  # keeps write order within a shard
        keys = keys[order]
        starts = np.flatnonzero(np.append(True, keys[1:] != keys[:-1]))
        for lo, hi in zip(starts.tolist(), [*starts[1:].tolist(), len(keys)], strict=True):
            rows = order[lo:hi]
            part = parts.setdefault(int(keys[lo]), [Column.empty(kind) for kind in KINDS])
            part[k] = Column(column.sids[rows], column.ts[rows], column.values[rows])
    return [(shard, Batch((), (c[0], c[1], c[2]))) for shard, c in sorted(parts.items())]


class _Pending:
    """The float points of some series in log batches (in seq order), by series."""

    def __init__(self, batches: list[Batch], sids: Sequence[int]) -> None:
        wanted = np.zeros(max(sids, default=-1) + 1, dtype=np.bool_)
        wanted[list(sids)] = True
        parts = []
        for batch in batches:
            column = batch.column("float")
            ids = column.sids
            keep = ids < len(wanted)
            keep[keep] = wanted[ids[keep]]
            if keep.any():
                parts.append((ids[keep], column.ts[keep], column.values[keep]))
        ids = np.concatenate([np.empty(0, np.int32), *(p[0] for p in parts)])
        order = np.argsort(ids, kind="stable")  # keeps log order within a series
        self._sids = ids[order]
        self._ts = np.concatenate([np.empty(0, np.int64), *(p[1] for p in parts)])[order]
        self._values = np.concatenate([np.empty(0), *(p[2] for p in parts)])[order]

    def points(self, sid: int) -> tuple[Int64Array, Values]:
        """One series' points, sorted by time, the latest write per timestamp."""
        lo, hi = rows_of(self._sids, sid)
        return latest(self._ts[lo:hi], self._values[lo:hi])


def _widened(rows: list[SeriesRow], batches: list[Batch]) -> list[SeriesMeta]:
    """Metadata of ``rows``, their time ranges widened by the points in the log."""
    index = {row.sid: i for i, row in enumerate(rows)}
    first = np.array([NO_FIRST if r.first_ms is None else r.first_ms for r in rows], np.int64)
    last = np.array([NO_LAST if r.last_ms is None else r.last_ms for r in rows], np.int64)
    lookup = np.full(max(index, default=-1) + 1, -1, dtype=np.int64)
    lookup[list(index)] = list(index.values())
    for batch in batches:
        sids, ts = batch.all_sids, batch.all_ts
        sids_in = sids < len(lookup)
        pos = np.full(len(sids), -1, dtype=np.int64)
        pos[sids_in] = lookup[sids[sids_in]]
        listed = pos >= 0
        np.minimum.at(first, pos[listed], ts[listed])
        np.maximum.at(last, pos[listed], ts[listed])
    return [
        SeriesMeta(key=row.key, unit=row.unit, kind=row.kind,
                   first_ts=None if f == NO_FIRST else f / 1000.0,
                   last_ts=None if la == NO_LAST else la / 1000.0)
        for row, f, la in zip(rows, first.tolist(), last.tolist(), strict=True)
    ]


@contextmanager
def _errors() -> Iterator[None]:
    """psycopg's errors as the archive's."""
    try:
        yield
    except psycopg.Error as exc:
        raise ArchiveError(f"PostgreSQL: {exc}") from exc


def _checked(options: Any) -> PostgresOptions:
    """Options validated against their constraints, also when built in code."""
    try:
        return msgspec.convert(msgspec.to_builtins(options), PostgresOptions)
    except (msgspec.ValidationError, TypeError) as exc:
        raise ConfigError(str(exc), key="archive.options", value=options) from exc
