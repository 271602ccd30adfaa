"""Turning runs of points into chunk rows: the flush logic every chunked backend shares.

A flush appends whole chunks of ``chunk_points`` points; it merges with the partial
last chunk of a series (the *tail*) to top it up, and with every chunk the new points
reach into when they arrive out of order, so a series' chunks never overlap. Which old
chunks a flush needs is decided by :func:`old_range`; the backend fetches them its own
way (SQLite one series at a time, PostgreSQL in one query) and hands them to
:meth:`Flush.add`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import Kind
from watchkeeper.archive.backends._head import latest
from watchkeeper.archive.backends._points import decode_chunks
from watchkeeper.archive.backends._rollups import chunk_summaries
from watchkeeper.archive.codec import encode_float_chunks, encode_objects_ms

Int64Array = npt.NDArray[np.int64]
Values = npt.NDArray[Any]


class ChunkRow(NamedTuple):
    sid: int
    start_ms: int
    end_ms: int
    n: int
    blob: bytes
    summary: bytes = b""  # of a float chunk: its hourly rollup (see _rollups)


@dataclass(frozen=True)
class ChunkColumns:
    """Chunk rows as columns: the many chunks of a flush of many series, in row order
    (a :class:`ChunkRow` each cost ~1 µs to build and again to take apart)."""

    sids: Int64Array
    start_ms: Int64Array
    end_ms: Int64Array
    n: Int64Array
    blobs: list[bytes]
    summaries: list[bytes]

    def __len__(self) -> int:
        return len(self.blobs)

    @classmethod
    def of_rows(cls, rows: Sequence[ChunkRow]) -> ChunkColumns:
        ints = np.array([row[:4] for row in rows], dtype=np.int64).reshape(-1, 4)
        return cls(ints[:, 0], ints[:, 1], ints[:, 2], ints[:, 3],
                   [row.blob for row in rows], [row.summary for row in rows])

    @classmethod
    def joined(cls, parts: Sequence[ChunkColumns]) -> ChunkColumns:
        """The rows of ``parts`` ordered by series (stable: each series' rows keep their
        order, as one flush of the series in turn would give them)."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls.of_rows([])
        sids = np.concatenate([part.sids for part in parts])
        order = np.argsort(sids, kind="stable")
        blobs = [blob for part in parts for blob in part.blobs]
        summaries = [summary for part in parts for summary in part.summaries]
        picked = order.tolist()
        start_ms, end_ms, n = (np.concatenate([getattr(part, name) for part in parts])[order]
                               for name in ("start_ms", "end_ms", "n"))
        return cls(sids[order], start_ms, end_ms, n, [blobs[i] for i in picked],
                   [summaries[i] for i in picked])

    def select(self, mask: npt.NDArray[np.bool_]) -> ChunkColumns:
        picked = np.flatnonzero(mask).tolist()
        return ChunkColumns(self.sids[mask], self.start_ms[mask], self.end_ms[mask],
                            self.n[mask], [self.blobs[i] for i in picked],
                            [self.summaries[i] for i in picked])

    def rows(self) -> list[ChunkRow]:
        return list(map(ChunkRow._make, zip(*self.columns(), self.summaries, strict=True)))

    def columns(self) -> tuple[list[int], list[int], list[int], list[int], list[bytes]]:
        """The columns ``sid, start_ms, end_ms, n, blob`` as lists (to zip into rows)."""
        return (self.sids.tolist(), self.start_ms.tolist(), self.end_ms.tolist(),
                self.n.tolist(), self.blobs)

    def summary_tuples(self) -> zip[tuple[int, int, int, int, bytes]]:
        """``(sid, start_ms, end_ms, n, summary)`` of each row."""
        return zip(*self.columns()[:4], self.summaries, strict=True)


class Tail(NamedTuple):
    """The last chunk of a series: where it starts and ends, and how many points it has."""

    start_ms: int
    end_ms: int
    n: int


def old_range(tail: Tail | None, first_ms: int, last_ms: int,
              chunk_points: int) -> tuple[int, int] | None:
    """The time range of the old chunks a flush of ``[first_ms, last_ms]`` merges with."""
    if tail is None:
        return None
    if first_ms <= tail.end_ms:  # out of order: every chunk these points reach into
        return first_ms, last_ms
    if tail.n < chunk_points:  # top up the partial last chunk rather than start another
        return tail.start_ms, tail.end_ms
    return None


@dataclass
class Flush:
    """The chunk changes of one compaction: chunks deleted and inserted, and new tails."""

    kind: Kind
    chunk_points: int
    deleted: list[tuple[int, int]] = field(default_factory=list)  # (sid, start_ms)
    tails: dict[int, Tail] = field(default_factory=dict)  # series whose last chunk changes
    _builder: ChunkBuilder | None = None

    def add(  # noqa: PLR0917  (a series' points, its tail and old chunks: one each)
        self, sid: int, ts: Int64Array, values: Values, tail: Tail | None,
        old: list[ChunkRow], decoded: tuple[Int64Array, Values] | None = None,
    ) -> None:
        """Queue a series' new points (sorted, one per timestamp), merged with ``old``
        (``decoded``: their points, when the caller decoded many series' chunks at once)."""
        if self._builder is None:
            self._builder = ChunkBuilder(self.kind, self.chunk_points)
        if old:
            old_ts, old_values = decoded or decode_chunks(self.kind,
                                                          (row.blob for row in old))
            ts, values = latest(np.concatenate((old_ts, ts)), np.concatenate((old_values, values)))
            self.deleted.extend((sid, row.start_ms) for row in old)
        last = self._builder.add(sid, ts, values)
        # The last piece is the new tail unless all these points went in before the tail.
        replaced = any(row.start_ms == tail.start_ms for row in old) if tail else False
        if tail is None or ts[-1] > tail.end_ms or replaced:
            self.tails[sid] = last

    def inserted(self) -> list[ChunkRow]:
        return [] if self._builder is None else self._builder.rows()

    def columns(self) -> ChunkColumns:
        return ChunkColumns.of_rows([]) if self._builder is None else self._builder.columns()


class ChunkBuilder:
    """Cuts runs of points into chunks, and encodes them all in one call at the end."""

    def __init__(self, kind: Kind, size: int | None) -> None:
        self.kind = kind
        self.size = size  # None: one chunk per run, however long
        self._ts: list[Int64Array] = []
        self._values: list[Values] = []
        self._pieces: list[tuple[int, int, int]] = []  # sid, lo, hi in the joined arrays
        self._rows = 0

    def add(self, sid: int, ts: Int64Array, values: Values) -> Tail:
        """Queue ``ts``/``values`` (sorted, one per timestamp) as chunks of ``sid``."""
        size = self.size or len(ts)
        for lo in range(0, len(ts), size):
            self._pieces.append((sid, self._rows + lo, self._rows + min(lo + size, len(ts))))
        self._ts.append(ts)
        self._values.append(values)
        self._rows += len(ts)
        last_lo = (len(ts) - 1) // size * size
        return Tail(int(ts[last_lo]), int(ts[-1]), len(ts) - last_lo)

    def rows(self) -> list[ChunkRow]:
        return self.columns().rows()

    def columns(self) -> ChunkColumns:
        if not self._pieces:
            return ChunkColumns.of_rows([])
        ts = np.concatenate(self._ts)
        values = np.concatenate(self._values)
        sids, lo, hi = np.array(self._pieces, dtype=np.int64).T
        if self.kind == "float":
            blobs = encode_float_chunks(ts, values, np.append(lo, self._rows))
            summaries = chunk_summaries(ts, values, lo, hi)
        else:
            blobs = [encode_objects_ms(ts[a:b], values[a:b].tolist())
                     for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
            summaries = [b""] * len(blobs)
        return ChunkColumns(sids, ts[lo], ts[hi - 1], hi - lo, blobs, summaries)
