"""The embedded archive in the process that writes it: ingest log, heads and compaction.

A write is one ingest-log row (the whole batch, columnar) committed in one transaction;
its points then join the in-memory heads. Compaction moves heads into chunks and deletes
the log rows no head still needs, in one transaction:

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

import logging
import sqlite3
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import Kind, Points, SeriesMeta
from watchkeeper.archive.backends._batch import Batch, columnize, decode_batch, encode_batch
from watchkeeper.archive.backends._catalog import Catalog, NewSeries
from watchkeeper.archive.backends._head import NO_SEQ, Grouped, Head, latest
from watchkeeper.archive.backends._points import (
    decode_chunks,
    overlay,
    to_points,
    window_ms,
)
from watchkeeper.archive.backends._store import ChunkRow, Store
from watchkeeper.archive.codec import encode_float_chunks, encode_objects_ms
from watchkeeper.errors import ArchiveError, SeriesNotFound
from watchkeeper.model import Measurement, SeriesKey

log = logging.getLogger(__name__)

Ids = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
Values = npt.NDArray[Any]


class _Tail(NamedTuple):
    """The last chunk of a series: where it starts and ends, and how many points it has."""

    start_ms: int
    end_ms: int
    n: int


@dataclass
class _Plan:
    """The changes one compaction commits together."""

    deleted: list[tuple[int, int]] = field(default_factory=list)
    inserted: list[ChunkRow] = field(default_factory=list)
    ranges: list[tuple[int | None, int | None, int]] = field(default_factory=list)
    tails: dict[int, _Tail] = field(default_factory=dict)  # series whose last chunk changes


class Writer:
    """Catalog, heads, ingest log and compaction policy over one :class:`Store`."""

    def __init__(self, store: Store, *, chunk_points: int, max_log_points: int) -> None:
        self.store = store
        self.chunk_points = chunk_points
        self.max_log_points = max_log_points
        self.catalog = Catalog()
        self.heads: dict[Kind, Head] = {"float": Head(np.float64), "histogram": Head(object)}
        self._tails: dict[int, _Tail | None] = {}  # absent: unknown, None: no chunk yet
        self._log: deque[tuple[int, int]] = deque()  # (seq, points) of the rows kept
        self._log_points = 0
        self._next_seq = 1

    def load(self) -> None:
        """Read the catalog, replay the ingest log into the heads, and compact it."""
        for row in self.store.all_series():
            series = NewSeries(row.sid, row.key, str(row.key), row.unit, row.kind)
            self.catalog.add(series, row.first_ms, row.last_ms)
        for seq, blob in self.store.log():
            self._apply(seq, decode_batch(blob))
            self._next_seq = seq + 1
        if self._log:
            log.info("replayed %d points from the ingest log of %s", self._log_points,
                     self.store.path)
        self.compact()

    def close(self) -> None:
        """Compact everything (so the next start replays nothing) and close the file."""
        try:
            self.compact()
            self.store.checkpoint()
        finally:
            self.store.close()  # should compaction fail, the log still holds every point

    # -- writes -----------------------------------------------------------------------

    def write(self, measurements: Sequence[Measurement]) -> int:
        """Make the batch durable (one committed log row), then add it to the heads."""
        batch = columnize(measurements, self.catalog)
        if not len(batch):
            return 0
        blob = encode_batch(batch)
        seq = self._next_seq
        with self.store.transaction():
            self.store.insert_series(batch.new_series)
            self.store.append_log(seq, blob)
        self._next_seq += 1
        for series in batch.new_series:
            self.catalog.add(series)
            self._tails[series.sid] = None
        self._compact_after_write(self._apply(seq, batch))
        return len(batch)

    def _apply(self, seq: int, batch: Batch) -> Ids:
        """Add a durable batch to the heads; returns the series whose head is now full."""
        self.catalog.widen(batch.f_sids, batch.f_ts)
        self.catalog.widen(batch.h_sids, batch.h_ts)
        full = []
        for head, sids, ts, values in (
            (self.heads["float"], batch.f_sids, batch.f_ts, batch.f_values),
            (self.heads["histogram"], batch.h_sids, batch.h_ts, batch.h_values),
        ):
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
        for kind, head in self.heads.items():
            self._plan_flush(plan, kind, head.take(sids))
        keep_from = NO_SEQ if sids is None else min(h.min_seq(sids) for h in self.heads.values())
        trim_before = min(keep_from, self._next_seq)
        if not plan.inserted and not plan.deleted and not self._log:
            return
        with self.store.transaction():
            self.store.replace_chunks(plan.deleted, plan.inserted)
            self.store.set_ranges(plan.ranges)
            self.store.trim_log(trim_before)
        for head in self.heads.values():
            head.drop(sids)
        self._tails.update(plan.tails)
        while self._log and self._log[0][0] < trim_before:
            self._log_points -= self._log.popleft()[1]

    def _plan_flush(self, plan: _Plan, kind: Kind, grouped: Grouped) -> None:
        chunks = _ChunkBuilder(kind, self.chunk_points)
        for i in range(len(grouped.sids)):
            sid, ts, values = grouped.series(i)
            tail = self._tail(sid)
            old: list[ChunkRow] = []
            if tail is not None and ts[0] <= tail.end_ms:
                # Out of order: merge with every chunk these points reach into.
                old = self.store.chunks(sid, int(ts[0]), int(ts[-1]))
            elif tail is not None and tail.n < self.chunk_points:
                # Top up the partial last chunk rather than start another small one.
                old = self.store.chunks(sid, tail.start_ms, tail.end_ms)
            if old:
                old_ts, old_values = decode_chunks(kind, (row.blob for row in old))
                ts, values = latest(np.concatenate((old_ts, ts)),
                                    np.concatenate((old_values, values)))
                plan.deleted.extend((sid, row.start_ms) for row in old)
            last = chunks.add(sid, ts, values)
            # The last piece is the new tail unless all these points went in before the tail.
            replaced = any(row.start_ms == tail.start_ms for row in old) if tail else False
            if tail is None or ts[-1] > tail.end_ms or replaced:
                plan.tails[sid] = last
            plan.ranges.append((*self.catalog.range(sid), sid))
        plan.inserted.extend(chunks.rows())

    def _tail(self, sid: int) -> _Tail | None:
        if sid not in self._tails:
            row = self.store.last_chunk(sid)
            self._tails[sid] = None if row is None else _Tail(row.start_ms, row.end_ms, row.n)
        return self._tails[sid]

    # -- reads ------------------------------------------------------------------------

    def read(self, key: SeriesKey, start: float, end: float) -> Points:
        sid = self._sid(key)
        kind = self.catalog.kind(sid)
        lo, hi = window_ms(start, end)
        ts, values = decode_chunks(kind, (row.blob for row in self.store.chunks(sid, lo, hi)))
        ts, values = overlay(ts, values, *self.heads[kind].points(sid))
        return to_points(kind, ts, values, start, end)

    def list_series(
        self, prefix: str, limit: int | None, offset: int
    ) -> tuple[list[SeriesMeta], int]:
        rows, total = self.store.list_series(prefix, limit, offset)
        return [self.catalog.meta(row.sid) for row in rows], total

    def delete(self, key: SeriesKey, start: float, end: float) -> int:
        """Remove points; the log is emptied first so a replay cannot bring them back."""
        sid = self._sid(key)
        kind = self.catalog.kind(sid)
        self.compact()
        lo, hi = window_ms(start, end)
        plan = _Plan()
        kept = _ChunkBuilder(kind, None)  # a chunk that loses points stays one chunk
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
        plan.inserted.extend(kept.rows())
        with self.store.transaction():
            self.store.replace_chunks(plan.deleted, plan.inserted)
            first, last = self.store.chunk_range(sid)
            self.store.set_ranges([(first, last, sid)])
        self.catalog.set_range(sid, first, last)
        self._tails.pop(sid, None)
        return removed

    def _sid(self, key: SeriesKey) -> int:
        sid = self.catalog.ids.get(key)
        if sid is None:
            raise SeriesNotFound(str(key))
        return sid


class _ChunkBuilder:
    """Cuts runs of points into chunks, and encodes them all in one call at the end."""

    def __init__(self, kind: Kind, size: int | None) -> None:
        self.kind = kind
        self.size = size  # None: one chunk per run, however long
        self._ts: list[Int64Array] = []
        self._values: list[Values] = []
        self._pieces: list[tuple[int, int, int]] = []  # sid, lo, hi in the joined arrays
        self._rows = 0

    def add(self, sid: int, ts: Int64Array, values: Values) -> _Tail:
        """Queue ``ts``/``values`` (sorted, one per timestamp) as chunks of ``sid``."""
        size = self.size or len(ts)
        for lo in range(0, len(ts), size):
            self._pieces.append((sid, self._rows + lo, self._rows + min(lo + size, len(ts))))
        self._ts.append(ts)
        self._values.append(values)
        self._rows += len(ts)
        last_lo = (len(ts) - 1) // size * size
        return _Tail(int(ts[last_lo]), int(ts[-1]), len(ts) - last_lo)

    def rows(self) -> list[ChunkRow]:
        if not self._pieces:
            return []
        ts = np.concatenate(self._ts)
        values = np.concatenate(self._values)
        if self.kind == "float":
            bounds = [lo for _, lo, _ in self._pieces] + [self._rows]
            blobs = encode_float_chunks(ts, values, bounds)
        else:
            blobs = [encode_objects_ms(ts[lo:hi], values[lo:hi].tolist())
                     for _, lo, hi in self._pieces]
        return [
            ChunkRow(sid, int(ts[lo]), int(ts[hi - 1]), hi - lo, blob)
            for (sid, lo, hi), blob in zip(self._pieces, blobs, strict=True)
        ]
