"""The embedded archive seen from a process that does not write it (a CLI, a second server).

It has no head of its own: every query reads, in one SQLite read transaction, the
chunks *and* the whole ingest log, so it sees every acknowledged point whether or not
the writer has compacted it yet. The log is bounded by the writer's ``max_log_points``,
so this costs at most a few tens of milliseconds per query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import (
    FloatRuns,
    Points,
    Rollup,
    SeriesMeta,
    check_rollup,
    require_numbers,
    rollup_points,
)
from watchkeeper.archive.backends._batch import Batch, decode_batch, logged_points
from watchkeeper.archive.backends._catalog import NO_FIRST, NO_LAST
from watchkeeper.archive.backends._points import (
    decode_chunks,
    overlay,
    to_points,
    window_ms,
)
from watchkeeper.archive.backends._rollups import RollupPlan
from watchkeeper.archive.backends._runs import assemble, decoded_pieces, newer_points
from watchkeeper.archive.backends._store import SeriesRow, Store
from watchkeeper.errors import SeriesNotFound
from watchkeeper.model import SeriesKey

Int64Array = npt.NDArray[np.int64]
Values = npt.NDArray[Any]


class Reader:
    """Queries over chunks plus the ingest log, each in one consistent snapshot."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def close(self) -> None:
        self.store.close()

    def read(self, key: SeriesKey, start: float, end: float) -> Points:
        lo, hi = window_ms(start, end)
        with self.store.snapshot():
            row = self.store.series_by_key(str(key)) if self.store.has_schema() else None
            if row is None:
                raise SeriesNotFound(str(key))
            chunks = self.store.chunks(row.sid, lo, hi)
            logged = self.store.log()
        # Decoding happens after the snapshot ends, so it never holds the writer back.
        batches = [decode_batch(blob) for _, blob in logged]
        ts, values = decode_chunks(row.kind, (chunk.blob for chunk in chunks))
        ts, values = overlay(ts, values, *logged_points(row.kind, row.sid, batches))
        return to_points(row.kind, ts, values, start, end, unit=row.unit)

    def read_floats(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int) -> FloatRuns:
        """Many float series at once, chunks and log in one snapshot (see _runs)."""
        with self.store.snapshot():
            ready = bool(keys) and self.store.has_schema()  # the writer may not have begun
            found = self.store.series_ids([str(key) for key in keys]) if ready \
                else [None] * len(keys)
            sids = np.array([-1 if f is None or f[1] != "float" else f[0] for f in found],
                            dtype=np.int32)
            chunks = self.store.chunks_of(sids.tolist(), start_ms, end_ms) if ready else []
            logged = self.store.log() if ready else []
        columns = [decode_batch(blob).column("float") for _, blob in logged]
        newer = newer_points(columns, np.unique(sids[sids >= 0]))
        return assemble(sids, decoded_pieces(len(sids), chunks), newer, start_ms, end_ms)

    def rollup(self, keys: Sequence[SeriesKey], start: float, end: float, step: float,
               aggs: Sequence[str]) -> list[Rollup]:
        """Rollups from stored summaries plus the ingest log, in one snapshot."""
        step_ms = check_rollup(step, aggs)
        lo, hi = window_ms(start, end)
        with self.store.snapshot():
            if not (self.store.has_schema() and self.store.has_summaries()
                    and RollupPlan.applies(step_ms, aggs)):
                rows = None
            else:
                rows = [self.store.series_by_key(str(key)) for key in keys]
            if rows is not None and all(row is not None for row in rows):
                series = [row for row in rows if row is not None]
                for key, row in zip(keys, series, strict=True):
                    require_numbers(key, row.kind)
                sids = [row.sid for row in series]
                plan = RollupPlan(keys, sids, lo, hi, step_ms, aggs)
                summaries = self.store.summaries_of(sids, lo, hi)
                batches = [decode_batch(blob) for _, blob in self.store.log()]

                def chunks_end(sid: int) -> int | None:
                    return self.store.chunk_range(sid)[1]

                def pending(sid: int) -> tuple[Int64Array, Values]:
                    return logged_points("float", sid, batches)

                rolled = plan.run(summaries, self.store.chunk_blob, pending, chunks_end)
            else:
                rolled = [None] * len(keys)
        return [r if r is not None else
                rollup_points(key, self.read(key, start, end), start=start, end=end,
                              step=step, aggs=aggs)
                for key, r in zip(keys, rolled, strict=True)]

    def list_series(
        self, prefix: str, limit: int | None, offset: int
    ) -> tuple[list[SeriesMeta], int]:
        with self.store.snapshot():
            if not self.store.has_schema():
                return [], 0
            rows, total = self.store.list_series(prefix, limit, offset)
            logged = self.store.log() if rows else []
        ranges = _LogRanges([decode_batch(blob) for _, blob in logged])
        return [ranges.meta(row) for row in rows], total



class _LogRanges:
    """First and last timestamp (ms) of every series in the log, by series id."""

    def __init__(self, batches: list[Batch]) -> None:
        sids = np.concatenate([np.empty(0, np.int32)] + [b.all_sids for b in batches])
        ts = np.concatenate([np.empty(0, np.int64)] + [b.all_ts for b in batches])
        size = int(sids.max()) + 1 if len(sids) else 0
        self.first = np.full(size, NO_FIRST, dtype=np.int64)
        self.last = np.full(size, NO_LAST, dtype=np.int64)
        np.minimum.at(self.first, sids, ts)
        np.maximum.at(self.last, sids, ts)

    def meta(self, row: SeriesRow) -> SeriesMeta:
        """The series' metadata, its time range widened by points not yet compacted."""
        first = NO_FIRST if row.first_ms is None else row.first_ms
        last = NO_LAST if row.last_ms is None else row.last_ms
        if row.sid < len(self.first):
            first = min(first, int(self.first[row.sid]))
            last = max(last, int(self.last[row.sid]))
        return SeriesMeta(
            key=row.key,
            unit=row.unit,
            kind=row.kind,
            first_ts=None if first == NO_FIRST else first / 1000.0,
            last_ts=None if last == NO_LAST else last / 1000.0,
        )
