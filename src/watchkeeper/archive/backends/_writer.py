"""The embedded archive in the process that writes it: ingest log, heads and compaction.

A write is one ingest-log row (the whole batch, columnar) committed in one transaction;
its points then join the in-memory heads in :meth:`Writer.settle`: before the answer for a
small batch, right after it for a large one (the archive queues it on its thread, so
joining overlaps the reply); every other operation settles first, so nothing ever sees
an acknowledged write missing. Compaction moves heads into chunks and deletes the log
rows no head still needs, in one transaction:

* a series whose head reaches ``chunk_points`` is flushed on its own; log rows are
  deleted up to the oldest row still holding an unflushed point of another series;
* when the kept log exceeds ``max_log_points``, and at start-up (after replaying the
  log) and close, every head is flushed and the log emptied.

A flush appends whole chunks; it rewrites a partial last chunk to top it up, and merges
with the chunks it overlaps when points arrive out of order, keeping chunks disjoint.
After a crash the log is replayed in order, so the head again holds the latest value of
every timestamp it has, and the head wins over chunks on reads.

Everything here runs on the archive's single thread.
"""

from __future__ import annotations

import ctypes
import logging
import sqlite3
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import (
    KINDS,
    Columns,
    FloatPieces,
    FloatRuns,
    Kind,
    Points,
    Rollup,
    SeriesMeta,
    SeriesQuery,
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
from watchkeeper.archive.backends._catalog import Catalog, NewSeries, new_ids
from watchkeeper.archive.backends._chunks import (
    ChunkBuilder,
    ChunkColumns,
    ChunkRow,
    Flush,
    Tail,
    old_range,
)
from watchkeeper.archive.backends._decoded import DecodedChunks
from watchkeeper.archive.backends._flushmany import flush_floats, in_order, subset, to_top_up
from watchkeeper.archive.backends._head import NO_SEQ, Grouped, Head
from watchkeeper.archive.backends._index import SeriesIndex
from watchkeeper.archive.backends._points import (
    decode_chunks,
    overlay,
    to_points,
    window_ms,
)
from watchkeeper.archive.backends._rollups import RollupPlan
from watchkeeper.archive.backends._runs import (
    Piece,
    assemble,
    assemble_pieces,
    float_sids,
    kept_pieces,
)
from watchkeeper.archive.backends._store import Store
from watchkeeper.archive.backends._tails import UNKNOWN, TailArrays, Tails
from watchkeeper.errors import ArchiveError, InvalidData, SeriesNotFound
from watchkeeper.model import Measurement, SeriesKey

log = logging.getLogger(__name__)

_TABLES = 16  # series lists remembered (one per regular writer, typically)
SETTLE_LATER_FROM: Final = 1_000  # points; smaller batches join the heads before the answer
FLUSH_SLICE_POINTS: Final = 100_000
"""A compaction decodes and encodes at most about this many points at once (head points
plus the old chunk points they top up), slice after slice in the one transaction. A fixed
set of series written evenly fills its heads together, and flushing 5,000 of them at once
decoded and encoded 2.4 M points in one go: ~300 MB of work arrays, RSS raised for good by
each larger wave (issue 17 §4: the soak's linear RSS growth). A slice of 200,000 points
peaked at ~26 MB of work arrays (tracemalloc), the closing compaction's peak RSS: halved
(D52)."""

Write = Columns | Sequence[Measurement]
"""One write request's points, columnar or as measurements."""

Ids = npt.NDArray[np.int32]
AnyIds = npt.NDArray[np.signedinteger[Any]]
Int64Array = npt.NDArray[np.int64]
Values = npt.NDArray[Any]


@dataclass
class _Plan:
    """The changes one compaction commits together."""

    deleted: list[tuple[int, int]] = field(default_factory=list)
    inserted: list[ChunkColumns] = field(default_factory=list)
    ranges: list[tuple[int | None, int | None, int]] = field(default_factory=list)
    tails: list[tuple[Ids, TailArrays]] = field(default_factory=list)  # last chunks changed


class Writer:
    """Catalog, heads, ingest log and compaction policy over one :class:`Store`."""

    def __init__(self, store: Store, *, chunk_points: int, max_log_points: int,
                 decoded_bytes: int = 0) -> None:
        self.store = store
        self.chunk_points = chunk_points
        self.max_log_points = max_log_points
        self.catalog = Catalog()
        self.heads: dict[Kind, Head] = {
            kind: Head(np.float64 if kind == "float" else object) for kind in KINDS
        }
        self._tails = Tails()
        self._log: deque[tuple[int, int]] = deque()  # (seq, points) of the rows kept
        self._log_points = 0
        self._next_seq = 1
        self._unsettled: deque[tuple[int, Batch]] = deque()  # committed, not in the heads yet
        self._tables: dict[bytes, npt.NDArray[np.int64]] = {}  # series lists seen, resolved
        self._index = SeriesIndex(self.catalog)  # built by the first find_series
        self._decoded = DecodedChunks(decoded_bytes)  # float chunks queries read again

    def load(self) -> None:
        """Read the catalog, replay the ingest log into the heads, and compact it."""
        self.load_catalog()
        for seq, blob in self.store.log():
            self._apply(seq, decode_batch(blob))
            self._next_seq = seq + 1
        if self._log:
            log.info("replayed %d points from the ingest log of %s", self._log_points,
                     self.store.path)
        self.compact()

    def load_catalog(self) -> None:
        """Read every series into the catalog."""
        add = self.catalog.add_text
        for sid, text, unit, kind, first_ms, last_ms in self.store.series_texts():
            add(sid, text, unit, kind, first_ms, last_ms)

    def close(self, *, now: Callable[[], float] | None = None, until: float = 0.0) -> None:
        """Compact (so the next start replays little) and close the file.

        With ``now``, compaction goes slice by slice and stops at the first slice that ends
        past ``until``: a stop must not wait on a flush of a million heads (issue 17 §4:
        ``up`` ends within 15 s of Ctrl-C). What is left stays in the durable ingest log
        and is replayed at the next start."""
        try:
            self.settle()
            if now is None:
                self.compact()
            else:
                self._compact_until(now, until)
            self.store.release_free_pages()
            self.store.checkpoint()
        finally:
            self.store.close()  # should compaction fail, the log still holds every point

    # -- writes -----------------------------------------------------------------------

    def write(self, measurements: Sequence[Measurement]) -> int:
        """Make the batch durable (one committed log row); :meth:`settle` adds it to the
        heads."""
        return _raised(self.write_group([tuple(measurements)]))

    def write_columns(self, columns: Columns) -> int:
        """The same for a columnar batch."""
        return _raised(self.write_group([columns]))

    def write_group(self, writes: Sequence[Write]) -> list[int | InvalidData]:
        """Make several writes durable in one commit (group commit: one fsync for all).

        Each write is validated on its own against the catalog as the writes before it
        in the group leave it; a write refused with InvalidData gets its error in the
        answer and the others are stored. Each write keeps its own log row, in order.
        Should the commit fail, nothing of the group is stored and the error is raised.
        """
        self.settle()
        outcomes: list[int | InvalidData] = []
        batches: list[tuple[Batch, Columns | None]] = []
        created: list[Sequence[NewSeries]] = []  # each write's, a block when many
        try:
            for write in writes:
                try:
                    batch = self._columnize(write)
                except InvalidData as exc:  # this write alone is refused
                    outcomes.append(exc)
                    continue
                outcomes.append(len(batch))
                if len(batch):
                    self.catalog.add_new(batch.new_series)  # the group's next writes see them
                    created.append(batch.new_series)
                    batches.append((batch, write if isinstance(write, Columns) else None))
            self._commit(batches, created)
        except BaseException:
            for series in reversed(created):
                self.catalog.forget(series)
            raise
        return outcomes

    def _columnize(self, write: Write) -> Batch:
        if isinstance(write, Columns):
            return columnize_columns(write, self.catalog, self._tables)
        return columnize(write, self.catalog)

    def _commit(self, batches: list[tuple[Batch, Columns | None]],
                created: list[Sequence[NewSeries]]) -> None:
        if not batches:
            return
        # cheaper than zstd on a local disk
        blobs = [encode_batch(batch, compress=False) for batch, _ in batches]
        first = self._next_seq
        with self.store.transaction():
            for series in created:
                self.store.insert_series(series)
            for seq, blob in enumerate(blobs, first):
                self.store.append_log(seq, blob)
        self._next_seq += len(blobs)
        self._tails.set_none(np.concatenate([new_ids(series) for series in created]
                                            or [np.zeros(0, np.int64)]))
        for seq, (batch, columns) in enumerate(batches, first):
            self._unsettled.append((seq, batch))
            if columns is not None:
                self._remember_table(columns.series_token, batch.series_table)
        if sum(len(batch) for batch, _ in batches) < SETTLE_LATER_FROM:
            self.settle()  # small: not worth a second trip through the archive's thread

    def _remember_table(self, token: bytes | None, table: Int64Array | None) -> None:
        if (token is not None and table is not None and token not in self._tables
                and not self.catalog.kinds[table].any()):  # number series only
            # The ids are final now (committed); series are never renumbered.
            if len(self._tables) >= _TABLES:
                del self._tables[next(iter(self._tables))]
            self._tables[token] = table

    @property
    def unsettled(self) -> bool:
        """Whether committed batches wait for :meth:`settle`."""
        return bool(self._unsettled)

    def settle(self) -> None:
        """Add the committed batches to the heads, all at once, compacting heads that are
        full.

        The batches leave the queue once added: should adding fail, the next operation
        retries them (adding points a head already has changes nothing) and fails too.
        """
        if not self._unsettled:
            return
        batches = list(self._unsettled)
        if len(batches) == 1:
            full = self._apply(*batches[0])
        else:  # one append per kind: a head's cost is mostly per append, not per point
            full = self._apply(batches[0][0], _joined([batch for _, batch in batches]))
            self._log.pop()
            self._log.extend((seq, len(batch)) for seq, batch in batches)
        self._unsettled.clear()
        self._compact_after_write(full)

    def _apply(self, seq: int, batch: Batch) -> Ids:
        """Add a durable batch to the heads as log row ``seq`` (or rows from ``seq`` on, the
        earliest holding each of its series: a later flush keeps them all); returns the
        series whose head is now full."""
        full = []
        for kind, (sids, ts, values) in zip(KINDS, batch.columns, strict=True):
            self.catalog.widen(sids, ts)
            head = self.heads[kind]
            touched = head.append(seq, sids, ts, values)
            full.append(touched[head.counts[touched] >= self.chunk_points])
        self._log.append((seq, len(batch)))
        self._log_points += len(batch)
        return np.concatenate(full)

    def _compact_after_write(self, full: Ids) -> None:
        try:
            if self._log_points > self.max_log_points:
                self.compact()
            elif len(full):
                self.compact(full)
        except (sqlite3.Error, ArchiveError):
            # The write is durable in the log already; compaction is retried next time.
            log.exception("compacting %s failed; the ingest log keeps the data", self.store.path)

    # -- compaction -------------------------------------------------------------------

    def compact(self, sids: Ids | None = None) -> None:
        """Flush the heads of ``sids`` (every series when None) into chunks."""
        plan = _Plan()
        flushed = 0
        for kind, head in self.heads.items():
            for part in _slices(head, sids, self._tails.old_points(self.chunk_points)):
                grouped = head.take(part)
                flushed += len(grouped.ts)
                self._plan_flush(plan, kind, grouped)
        keep_from = NO_SEQ if sids is None else min(h.min_seq(sids) for h in self.heads.values())
        trim_before = min(keep_from, self._next_seq)
        if not plan.inserted and not plan.deleted and not self._log:
            return
        with self.store.transaction():
            self.store.replace_chunks(plan.deleted, ChunkColumns.joined(plan.inserted),
                                      self.chunk_points)
            self._decoded.forget(plan.deleted, series=[sid for *_, sid in plan.ranges])
            self.store.set_ranges(plan.ranges)
            self.store.trim_log(trim_before)
        for head in self.heads.values():
            head.drop(sids)
        for tail_sids, tails in plan.tails:
            self._tails.set_many(tail_sids, tails)
        while self._log and self._log[0][0] < trim_before:
            self._log_points -= self._log.popleft()[1]
        if flushed >= FLUSH_SLICE_POINTS // 4:
            _return_free_memory()

    def _compact_until(self, now: Callable[[], float], until: float) -> None:
        """:meth:`compact`, a slice (one transaction) at a time, while ``now() < until``."""
        for head in self.heads.values():
            for part in _slices(head, None, self._tails.old_points(self.chunk_points)):
                if now() >= until:
                    left = sum(int(h.counts.sum()) for h in self.heads.values())
                    log.warning("closing %s: %d points left in the ingest log for the next "
                                "start (compaction stopped at its time budget)",
                                self.store.path, left)
                    return
                self.compact(part if part is not None else np.flatnonzero(head.counts)
                             .astype(np.int32))
        self.compact()  # what is left: the log rows no head needs any more

    def _plan_flush(self, plan: _Plan, kind: Kind, grouped: Grouped) -> None:
        tails = self._tails.of(grouped.sids, self.store.last_chunks)
        plan.ranges.extend(self.catalog.ranges(grouped.sids))
        # Float series continuing after their last chunk: all at once (_flushmany).
        batched = (in_order(grouped, tails) if kind == "float"
                   else np.zeros(len(grouped.sids), dtype=np.bool_))
        if batched.any():
            part, part_tails = subset(grouped, batched), tails.select(batched)
            old_counts, old_ts, old_values = self._old_tails(plan, part.sids, part_tails)
            columns, new_tails = flush_floats(part, old_counts, old_ts, old_values,
                                              self.chunk_points)
            plan.inserted.append(columns)
            plan.tails.append((part.sids, new_tails))
        if not batched.all():  # the others (and histograms, objects) a series at a time
            self._plan_flush_apart(plan, kind, subset(grouped, ~batched), tails.select(~batched))

    def _old_tails(self, plan: _Plan, sids: Ids, tails: TailArrays
                   ) -> tuple[Int64Array, Int64Array, Values]:
        """The points of the partial last chunks that a flush of ``sids`` tops up, all
        fetched in one statement and decoded in one call; how many each series has."""
        counts = np.zeros(len(sids), dtype=np.int64)
        topped = np.flatnonzero(to_top_up(tails, self.chunk_points))
        if not len(topped):
            return counts, counts[:0], np.zeros(0, dtype=np.float64)
        keys = list(zip(sids[topped].tolist(), tails.start_ms[topped].tolist(), strict=True))
        rows = self.store.chunks_at(keys)
        found = [at for at, row in enumerate(rows) if row is not None]
        blobs = [row.blob for row in rows if row is not None]
        counts[topped[found]] = [row.n for row in rows if row is not None]
        plan.deleted.extend(keys[at] for at in found)
        ts, values = decode_chunks("float", blobs)
        if len(ts) != int(counts.sum()):
            raise ArchiveError("a chunk's point count disagrees with its blob")
        return counts, ts, values

    def _plan_flush_apart(self, plan: _Plan, kind: Kind, grouped: Grouped,
                          tail_arrays: TailArrays) -> None:
        flush = Flush(kind, self.chunk_points)
        tails = [tail_arrays.tail(i) for i in range(len(grouped.sids))]
        olds = self._old_chunks(grouped, tails)
        decoded = _decoded_apart(kind, olds)
        for i in range(len(grouped.sids)):
            sid, ts, values = grouped.series(i)
            flush.add(sid, ts, values, tails[i], olds[i], decoded[i])
        plan.deleted.extend(flush.deleted)
        plan.inserted.append(flush.columns())
        tail_sids = np.array(list(flush.tails), dtype=np.int32)
        plan.tails.append((tail_sids, TailArrays(*np.array(
            list(flush.tails.values()), dtype=np.int64).reshape(-1, 3).T)))

    def _old_chunks(self, grouped: Grouped, tails: list[Tail | None]) -> list[list[ChunkRow]]:
        """The chunks each series' flush merges with: its partial last chunk, fetched for
        all series in one statement (with many series, one statement each took ~0.1 ms
        a series), or every chunk new points reach into when they came out of order."""
        olds: list[list[ChunkRow]] = [[] for _ in tails]
        last: list[tuple[int, int]] = []  # (position, sid) of series topping up their tail
        for i, tail in enumerate(tails):
            sid, ts, _ = grouped.series(i)
            needed = old_range(tail, int(ts[0]), int(ts[-1]), self.chunk_points)
            if needed is None or tail is None:
                continue
            if needed == (tail.start_ms, tail.end_ms) and ts[0] > tail.end_ms:
                last.append((i, sid))
            else:
                olds[i] = self.store.chunks(sid, *needed)
        if last:
            rows = self.store.chunks_at([(sid, tails[i].start_ms)  # type: ignore[union-attr]
                                         for i, sid in last])
            for (i, _), row in zip(last, rows, strict=True):
                olds[i] = [] if row is None else [row]
        return olds

    def _tail(self, sid: int) -> Tail | None:
        tail = self._tails.get(sid)
        if tail is UNKNOWN:
            row = self.store.last_chunk(sid)
            tail = None if row is None else Tail(row.start_ms, row.end_ms, row.n)
            self._tails.set(sid, tail)
        return tail

    # -- reads ------------------------------------------------------------------------

    def read(self, key: SeriesKey, start: float, end: float) -> Points:
        self.settle()
        sid = self._sid(key)
        kind = self.catalog.kind(sid)
        lo, hi = window_ms(start, end)
        ts, values = decode_chunks(kind, (row.blob for row in self.store.chunks(sid, lo, hi)))
        ts, values = overlay(ts, values, *self.heads[kind].points(sid))
        return to_points(kind, ts, values, start, end, unit=self.catalog.unit(sid))

    def read_floats(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int) -> FloatRuns:
        """Many float series at once: one statement for their chunks, one decode (_runs)."""
        return assemble(*self._float_parts(keys, start_ms, end_ms), start_ms, end_ms)

    def read_float_pieces(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int
                          ) -> FloatPieces:
        """As read_floats, each series' points its own arrays: views of its kept run."""
        return assemble_pieces(*self._float_parts(keys, start_ms, end_ms), start_ms, end_ms)

    def _float_parts(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int
                     ) -> tuple[Ids, list[Piece], Grouped]:
        self.settle()
        sids = float_sids(self.catalog.ids.get, self.catalog.kinds, keys)
        # the chunks' places first, then the blobs of those not kept decoded (no write
        # comes between: this is the archive's one thread)
        chunks = kept_pieces(sids, start_ms, end_ms, cache=self._decoded,
                             newest=self.catalog.last_ms, chunks_of=self._chunk_places,
                             fetch=self._blobs)
        return sids, chunks, self.heads["float"].gather(np.unique(sids[sids >= 0]))

    def _chunk_places(self, sids: list[int], lo_ms: int, hi_ms: int
                      ) -> list[tuple[int, int, int, bytes]]:
        return self.store.chunks_of(sids, lo_ms, hi_ms, blobs=False)

    def _blobs(self, keys: list[tuple[int, int]]) -> list[bytes]:
        found = self.store.chunks_at(keys)
        if any(row is None for row in found):
            raise ArchiveError("a chunk vanished while it was read")
        return [row.blob for row in found if row is not None]

    def rollup(self, keys: Sequence[SeriesKey], start: float, end: float, step: float,
               aggs: Sequence[str]) -> list[Rollup]:
        """Rollups from the chunks' stored summaries (see _rollups), points where needed."""
        self.settle()
        step_ms = check_rollup(step, aggs)
        sids = [self._sid(key) for key in keys]
        for key, sid in zip(keys, sids, strict=True):
            require_numbers(key, self.catalog.kind(sid))
        lo, hi = window_ms(start, end)
        plan = RollupPlan(keys, sids, lo, hi, step_ms, aggs)
        if not RollupPlan.applies(step_ms, aggs):
            return [rollup_points(key, self.read(key, start, end), start=start, end=end,
                              step=step, aggs=aggs)
                    for key in keys]
        rows = self.store.summaries_of(sids, lo, hi)
        head = self.heads["float"]

        def chunks_end(sid: int) -> int | None:
            tail = self._tail(sid)
            return None if tail is None else tail.end_ms

        rolled = plan.run(rows, self.store.chunk_blob, head.points, chunks_end)
        return [r if r is not None else
                rollup_points(key, self.read(key, start, end), start=start, end=end,
                              step=step, aggs=aggs)
                for key, r in zip(keys, rolled, strict=True)]

    def list_series(
        self, prefix: str, limit: int | None, offset: int
    ) -> tuple[list[SeriesMeta], int]:
        self.settle()  # the heads' points widen the series' time ranges
        # Every series, when listing them all: the catalog knows how many without a count.
        known = len(self.catalog) if not prefix else None
        rows, total = self.store.list_series(prefix, limit, offset, total=known)
        return [self.catalog.meta(row.sid, row.key) for row in rows], total

    def find_series(
        self, query: SeriesQuery, limit: int | None, offset: int
    ) -> tuple[list[SeriesMeta], int]:
        if query.only_prefix:
            return self.list_series(query.prefix, limit, offset)
        self.settle()
        sids, total = self._index.find(query, limit, offset)
        return [self.catalog.meta(sid) for sid in sids], total

    def delete(self, key: SeriesKey, start: float, end: float) -> int:
        """Remove points; the log is emptied first so a replay cannot bring them back."""
        self.settle()
        sid = self._sid(key)
        kind = self.catalog.kind(sid)
        self.compact()
        lo, hi = window_ms(start, end)
        plan = _Plan()
        kept = ChunkBuilder(kind, None)  # a chunk that loses points stays one chunk
        removed = 0
        for row in self.store.chunks(sid, lo, hi):
            ts, values = decode_chunks(kind, (row.blob,))
            seconds = ts / 1000.0
            doomed = (seconds >= start) & (seconds <= end)
            if doomed.any():
                removed += int(doomed.sum())
                plan.deleted.append((sid, row.start_ms))
                if not doomed.all():
                    kept.add(sid, ts[~doomed], values[~doomed])
        if not removed:
            return 0
        with self.store.transaction():
            self.store.replace_chunks(plan.deleted, kept.columns(), self.chunk_points)
            self._decoded.forget(plan.deleted)
            first, last = self.store.chunk_range(sid)
            self.store.set_ranges([(first, last, sid)])
        self.catalog.set_range(sid, first, last)
        self._tails.forget(sid)
        return removed

    def _sid(self, key: SeriesKey) -> int:
        sid = self.catalog.ids.get(key)
        if sid is None:
            raise SeriesNotFound(str(key))
        return sid


def _return_free_memory() -> None:
    """Hand the C heap's free pages back to the OS after a large flush (glibc only): the
    flush's work arrays come and go in sizes that leave the heap fragmented, and RSS
    then stays at its high-water mark (the soak: ~25 MB of it; D32)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (musl): nothing to trim
        return None


_LIBC: Final = _load_libc()


def _slices(head: Head, sids: Ids | None, old_points: int | Callable[[AnyIds], Int64Array]
            ) -> list[Ids | None]:
    """``sids`` (None: every series) cut so that each part holds at most about
    :data:`FLUSH_SLICE_POINTS` points to decode and encode; ``[sids]`` when one part does.
    ``old_points``: what each series' flush may read back (its partial last chunk), or
    the same bound for all."""
    counts = head.counts
    present = (np.flatnonzero(counts) if sids is None
               else sids[(sids < len(counts)) & (counts[np.minimum(sids, len(counts) - 1)] > 0)]
               if len(counts) else sids[:0])
    # Its head and its partial last chunk: counting a whole chunk for each made a flush
    # of 100,000 series with short tails 250 slices, each a pass over the whole head.
    weights = counts[present] + (old_points if isinstance(old_points, int)
                                 else old_points(present))
    if int(weights.sum()) <= FLUSH_SLICE_POINTS:
        return [sids]
    part = (np.cumsum(weights) - 1) // FLUSH_SLICE_POINTS
    cuts = np.flatnonzero(np.diff(part)) + 1
    return [piece.astype(np.int32) for piece in np.split(present, cuts)]


def _decoded_apart(kind: Kind, olds: list[list[ChunkRow]]
                   ) -> list[tuple[Int64Array, Values] | None]:
    """Each series' old float chunks decoded, all series in one batch (chunkscan's
    fixed cost per call was ~0.5 ms a series when each topped up its tail alone)."""
    if kind != "float" or not any(olds):
        return [None] * len(olds)
    ts, values = decode_chunks(kind, [row.blob for rows in olds for row in rows])
    out: list[tuple[Int64Array, Values] | None] = []
    at = 0
    for rows in olds:
        n = sum(row.n for row in rows)
        out.append((ts[at:at + n], values[at:at + n]) if rows else None)
        at += n
    return out


def _joined(batches: Sequence[Batch]) -> Batch:
    """The points of ``batches``, in their order, as one batch."""
    columns = [Column(*(np.concatenate(parts) for parts in zip(*kind, strict=True)))
               for kind in zip(*(batch.columns for batch in batches), strict=True)]
    return Batch((), (columns[0], columns[1], columns[2]))


def _raised(outcomes: list[int | InvalidData]) -> int:
    """The one outcome of a group of one write: its count, or its error raised."""
    (outcome,) = outcomes
    if isinstance(outcome, InvalidData):
        raise outcome
    return outcome
